"""Wrong on purpose (dl-a1.q1c): the net's finite-difference gradients never pass ``h`` and
``scheme`` on: every call takes finite_difference_gradient's defaults (central, h = 1e-6), whatever
the caller asks for. finite_difference_gradient itself is right."""

import impl.finite_differences as _fd
from impl import *  # noqa: F403 - the reference, with one function broken below


def logcosh_numerical_gradients(x, y, params, h=1e-6, scheme="central"):
    return _fd.logcosh_numerical_gradients(x, y, params)      # h and scheme never passed on
