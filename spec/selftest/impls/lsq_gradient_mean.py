"""Wrong on purpose (dl-a1.q5a only): the gradient of the mean squared error, X^T (X w - y) / N,
not of L = 1/2 ||X w - y||^2."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import lsq_gradient as _reference


def lsq_gradient(X, w, y):
    return _reference(X, w, y) / len(y)
