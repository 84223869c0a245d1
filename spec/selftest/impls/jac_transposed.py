"""Wrong on purpose (dl-a1.q2c only): forward mode returns the transposed Jacobian (D x P)."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import jacobian_forward as _reference


def jacobian_forward(x, weights):
    return _reference(x, weights).transpose(-1, -2)
