"""dl-a1 question 1 (a)-(b): a one-hidden-layer net with the log-cosh loss, its gradients in closed
form, and the same gradients by autograd.

    y_hat = w2^T tanh(W1 x + b1) + b2,   l(y_hat, y) = log cosh(y_hat - y),   J = mean_i l_i

Rows of ``x`` are the N samples (x is N x D, W1 is K x D, b1 and w2 have K entries, b2 is a scalar).
"""

from __future__ import annotations

import math

import torch

from impl._checks import as_float_tensor

PARAMETERS = ("W1", "b1", "w2", "b2")


def log_cosh(r: torch.Tensor) -> torch.Tensor:
    """log(cosh(r)) without overflow: |r| + log(1 + exp(-2|r|)) - log 2."""
    a = r.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2.0)


def logcosh_forward(x, W1, b1, w2, b2) -> torch.Tensor:
    """dl-a1 1(b): y_hat for every row of x, with tensors and functions only (no nn.Module)."""
    return torch.tanh(x @ W1.T + b1) @ w2 + b2


def logcosh_cost(x, y, W1, b1, w2, b2) -> torch.Tensor:
    """J = (1/N) sum_i log cosh(y_hat_i - y_i)."""
    return log_cosh(logcosh_forward(x, W1, b1, w2, b2) - y).mean()


def checked_inputs(x, y, params: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
    missing = [name for name in PARAMETERS if name not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; expected keys {list(PARAMETERS)}")
    x = as_float_tensor(x, "x")
    y = as_float_tensor(y, "y")
    p = {name: as_float_tensor(params[name], f"params[{name!r}]") for name in PARAMETERS}
    if x.ndim != 2:
        raise ValueError(f"x must be N x D (one sample per row), got shape {tuple(x.shape)}")
    n, d = x.shape
    k = p["W1"].shape[0] if p["W1"].ndim == 2 else -1
    expected = {"W1": (k, d), "b1": (k,), "w2": (k,), "b2": ()}
    for name, shape in expected.items():
        if p["W1"].ndim != 2 or tuple(p[name].shape) != shape:
            raise ValueError(f"params[{name!r}] must have shape {shape} for x of shape {(n, d)} "
                             f"and W1 of shape K x D, got {tuple(p[name].shape)}")
    if tuple(y.shape) != (n,):
        raise ValueError(f"y must hold one target per row of x, shape ({n},), got {tuple(y.shape)}")
    dtypes = {x.dtype, y.dtype, *(t.dtype for t in p.values())}
    if len(dtypes) > 1:
        raise TypeError(f"x, y and params must share one dtype, got {sorted(map(str, dtypes))}")
    return x, y, p


def logcosh_gradients(x, y, params: dict) -> dict[str, torch.Tensor]:
    """dl-a1 1(a): dJ/dW1, dJ/db1, dJ/dw2, dJ/db2 and dJ/dx in closed form.

    With r_i = y_hat_i - y_i, h_i = tanh(W1 x_i + b1) and g_i = dJ/dy_hat_i = tanh(r_i) / N
    (since d log cosh(r)/dr = tanh(r)):

        dJ/dw2 = sum_i g_i h_i             dJ/db2 = sum_i g_i
        delta_i = g_i * w2 * (1 - h_i^2)   (the gradient at the hidden pre-activation)
        dJ/dW1 = sum_i delta_i x_i^T       dJ/db1 = sum_i delta_i
        dJ/dx_i = W1^T delta_i             (row i of the returned N x D matrix)
    """
    x, y, p = checked_inputs(x, y, params)
    h = torch.tanh(x @ p["W1"].T + p["b1"])
    r = h @ p["w2"] + p["b2"] - y
    g = torch.tanh(r) / x.shape[0]
    delta = g[:, None] * p["w2"] * (1 - h**2)
    return {
        "W1": delta.T @ x,
        "b1": delta.sum(0),
        "w2": h.T @ g,
        "b2": g.sum(),
        "x": delta @ p["W1"],
    }


def logcosh_autograd_gradients(x, y, params: dict) -> dict[str, torch.Tensor]:
    """dl-a1 1(b): the same five gradients by torch autograd."""
    x, y, p = checked_inputs(x, y, params)
    leaves = {"x": x, **p}
    for tensor in leaves.values():
        tensor.requires_grad_(True)
    cost = logcosh_cost(x, y, p["W1"], p["b1"], p["w2"], p["b2"])
    grads = torch.autograd.grad(cost, list(leaves.values()))
    return {name: grad.detach() for name, grad in zip(leaves, grads, strict=True)}
