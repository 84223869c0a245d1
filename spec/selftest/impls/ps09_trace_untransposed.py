"""Wrong on purpose (ps09.1-4 only): the gradient of trace(A^2) given as 2A, not 2A^T."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import trace_square_gradient as _reference


def trace_square_gradient(A):
    return _reference(A).T
