"""Hostile (the grader's secrets exfiltrated): raises the whole environment it was started with,
hoping that a token of the grader's (an API key, a Gradescope secret) reaches its own report."""

import os

from _nothing import *  # noqa: F403

LEAK = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()))


def trace_square_gradient(A):
    raise ValueError(LEAK[:1900])


def derivative(f, x):
    raise ValueError(LEAK[-1900:])
