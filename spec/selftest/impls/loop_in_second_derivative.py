"""Hostile on purpose (ps09.1-5): the second derivative never returns."""

from impl import *  # noqa: F403 - the reference, with one function broken below


def sigmoid_derivatives(x=0.173):
    while True:
        pass
