"""Wrong on purpose (dl-a1.q1c): the net's finite-difference gradients never pass ``h`` and
``scheme`` on: every call takes finite_difference_gradient's defaults (central, h = 1e-6), whatever
the caller asks for. finite_difference_gradient itself is right."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import finite_difference_gradient, logcosh_cost


def logcosh_numerical_gradients(x, y, params, h=1e-6, scheme="central"):
    tensors = {"x": x, **params}
    grads = {}
    for name, value in tensors.items():
        def cost_of(v, name=name):
            args = {**tensors, name: v}
            return logcosh_cost(args["x"], y, args["W1"], args["b1"], args["w2"], args["b2"])
        grads[name] = finite_difference_gradient(cost_of, value)
    return grads
