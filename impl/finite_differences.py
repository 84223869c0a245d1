"""dl-a1 question 1 (c): gradients by finite differences, our own (no torch.autograd.gradcheck).

    central:  (f(x + h e_i) - f(x - h e_i)) / 2h    error O(h^2)
    forward:  (f(x + h e_i) - f(x)) / h             error O(h)
"""

from __future__ import annotations

import torch

from impl._checks import as_float_tensor
from impl.logcosh_net import checked_inputs, logcosh_cost

SCHEMES = ("central", "forward")


def _evaluate_all(f, points: torch.Tensor) -> torch.Tensor:
    """f at every point of a stack, vectorised with torch.func.vmap where f allows it."""
    try:
        values = torch.func.vmap(f)(points)
    except Exception:  # f is not vmap-able (in-place ops, .item(), data-dependent control flow)
        values = torch.stack([torch.as_tensor(f(p)) for p in points])
    return values.reshape(points.shape[0])


def finite_difference_gradient(f, x, h: float = 1e-6, scheme: str = "central") -> torch.Tensor:
    """The gradient of a scalar function ``f`` at ``x`` (a tensor of any shape), by finite
    differences along every coordinate, all perturbed points evaluated in one batch: with the step
    ``h`` and the ``scheme`` given, central (f(x + h e_i) - f(x - h e_i)) / 2h or forward
    (f(x + h e_i) - f(x)) / h."""
    if not callable(f):
        raise TypeError(f"f must be a callable returning a scalar, got {type(f).__name__}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if not isinstance(h, (int, float)) or isinstance(h, bool) or not h > 0:
        raise ValueError(f"h must be a positive step size, got {h!r}")
    x = as_float_tensor(x, "x")
    with torch.no_grad():
        steps = h * torch.eye(x.numel(), dtype=x.dtype).reshape(x.numel(), *x.shape)
        if scheme == "central":
            diff = _evaluate_all(f, x + steps) - _evaluate_all(f, x - steps)
            grad = diff / (2 * h)
        else:
            diff = _evaluate_all(f, x + steps) - torch.as_tensor(f(x), dtype=x.dtype)
            grad = diff / h
    return grad.reshape(x.shape)


def logcosh_numerical_gradients(x, y, params: dict, h: float = 1e-6,
                                scheme: str = "central") -> dict[str, torch.Tensor]:
    """dl-a1 1(c): dJ/dW1, dJ/db1, dJ/dw2, dJ/db2 and dJ/dx by finite differences (of the step ``h``
    and the ``scheme`` given, as in finite_difference_gradient)."""
    x, y, p = checked_inputs(x, y, params)
    tensors = {"x": x, **p}
    grads = {}
    for name, value in tensors.items():
        def cost_of(v, name=name):
            args = {**tensors, name: v}
            return logcosh_cost(args["x"], y, args["W1"], args["b1"], args["w2"], args["b2"])
        grads[name] = finite_difference_gradient(cost_of, value, h=h, scheme=scheme)
    return grads
