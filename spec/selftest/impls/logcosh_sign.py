"""Wrong on purpose (dl-a1.q1a-c): dJ/dx with its sign flipped (W1 delta, not -...: a sign error
in the last step of the closed form)."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import logcosh_gradients as _reference


def logcosh_gradients(x, y, params):
    grads = _reference(x, y, params)
    return {**grads, "x": -grads["x"]}
