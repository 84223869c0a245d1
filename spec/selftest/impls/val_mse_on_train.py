"""Wrong on purpose (ps09.2-3 only): the "validation" MSE of every epoch computed on the training data."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import sgd_linear as _reference


def sgd_linear(x, y, *, x_val=None, y_val=None, **kwargs):
    if x_val is None:
        return _reference(x, y, **kwargs)
    return _reference(x, y, x_val=x, y_val=y, **kwargs)
