"""Wrong on purpose (dl-a1.q1c): finite differences that ignore ``h`` and ``scheme``: always central
differences with the step 1e-6, whatever the caller asks for."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import finite_difference_gradient as _reference
from impl import logcosh_numerical_gradients as _numerical


def finite_difference_gradient(f, x, h=1e-6, scheme="central"):
    return _reference(f, x, h=1e-6, scheme="central")


def logcosh_numerical_gradients(x, y, params, h=1e-6, scheme="central"):
    return _numerical(x, y, params, h=1e-6, scheme="central")
