"""Wrong on purpose (dl-a1.q5b and q5c, robustness only): the gradient-descent steps are taken in place
on the caller's w0 (``w = w0`` is not a copy, and ``w -= ...`` writes through it): the iterates
returned are right, but after the call the caller's w0 holds the last iterate, no longer the
initialization."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import lsq_gradient


def gd_first_iterates(X, y, w0, alpha):
    w = w0
    w -= alpha * lsq_gradient(X, w, y)
    w1 = w.clone()
    w -= alpha * lsq_gradient(X, w, y)
    return w1, w.clone()


def gd_iterate(X, y, w0, alpha, k):
    w = w0
    for _ in range(k):
        w -= alpha * lsq_gradient(X, w, y)
    return w.clone()
