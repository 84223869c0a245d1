"""Hostile on purpose (ps09.1-4): the gradient of trace(A^2) ends the interpreter."""

import os

from impl import *  # noqa: F403 - the reference, with one function broken below


def trace_square_gradient(A):
    os._exit(7)
