"""Vanishing gradients: the (3/4)^L bound of ex08 problem 2 and a7 section 2's backpropagation
equations (1)-(4), the sigmoid factor, ReLU, and the depth study.

ex08 notation: x^(l) = sigma(W^(l)T x^(l-1) + b^(l)), W^(1) is D x K, W^(l) is K x K for l >= 2,
and f(x) = c^T x^(L) (+ an optional output bias). a7 notation: s^(k+1) = W^(k) x^(k) (the row i of
W^(k) holds the weights into unit i of layer k+1), x^(k+1) = a(s^(k+1)), a single sigmoid output
x^(m) and the log loss l = -y log x^(m) - (1 - y) log(1 - x^(m)).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from impl._checks import as_float_tensor
from impl.calculus import sigmoid


# ---------------------------------------------------------------------------------------- ex08
def _check_box_net(x, weights, biases, c):
    x = as_float_tensor(x, "x")
    if x.ndim != 1:
        raise ValueError(f"x must be one input vector (D,), got shape {tuple(x.shape)}")
    if not weights or len(weights) != len(biases):
        raise ValueError(f"weights and biases must be non-empty lists of one entry per layer, got "
                         f"{len(weights or [])} weights and {len(biases or [])} biases")
    weights = [as_float_tensor(w, f"weights[{i}]") for i, w in enumerate(weights)]
    biases = [as_float_tensor(b, f"biases[{i}]") for i, b in enumerate(biases)]
    c = as_float_tensor(c, "c")
    fan_in = x.shape[0]
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        if w.ndim != 2 or w.shape[0] != fan_in or tuple(b.shape) != (w.shape[1],):
            raise ValueError(f"layer {i + 1}: weights must be {fan_in} x K with a bias of K entries, "
                             f"got {tuple(w.shape)} and {tuple(b.shape)}")
        fan_in = w.shape[1]
    if tuple(c.shape) != (fan_in,):
        raise ValueError(f"c must have {fan_in} entries (one per unit of the last layer), got {tuple(c.shape)}")
    return x, weights, biases, c


def sigmoid_net(x, weights, biases, c) -> torch.Tensor:
    """ex08 problem 2: f(x) = c^T x^(L) with x^(l) = sigma(W^(l)T x^(l-1) + b^(l))."""
    h = x
    for w, b in zip(weights, biases, strict=True):
        h = sigmoid(w.T @ h + b)
    return c @ h


def grad_w11_autograd(x, weights, biases, c) -> torch.Tensor:
    """d f / d W^(1)_11 by autograd."""
    x, weights, biases, c = _check_box_net(x, weights, biases, c)
    weights[0].requires_grad_(True)
    (grad,) = torch.autograd.grad(sigmoid_net(x, weights, biases, c), weights[0])
    return grad[0, 0].detach()


def layer_pre_activations(x, weights, biases) -> list[torch.Tensor]:
    """s^(l) = W^(l)T x^(l-1) + b^(l) for l = 1..L."""
    s, h = [], x
    for w, b in zip(weights, biases, strict=True):
        s.append(w.T @ h + b)
        h = sigmoid(s[-1])
    return s


def sigmoid_slope(s: torch.Tensor) -> torch.Tensor:
    """sigma'(s) = sigma(s) (1 - sigma(s))."""
    v = sigmoid(s)
    return v * (1 - v)


def hidden_jacobians(x, weights, biases) -> list[torch.Tensor]:
    """d x^(l) / d x^(l-1) = diag(sigma'(s^(l))) W^(l)T for the hidden-to-hidden layers l = 2..L."""
    x, weights, biases, _ = _check_box_net(x, weights, biases, torch.zeros(weights[-1].shape[1]))
    s = layer_pre_activations(x, weights, biases)
    return [sigmoid_slope(s[l])[:, None] * weights[l].T for l in range(1, len(weights))]


def grad_w11_chain(x, weights, biases, c) -> torch.Tensor:
    """d f / d W^(1)_11 as the chain-rule product written out:

        d f / d x^(L) = c,   d f / d x^(l-1) = W^(l) diag(sigma'(s^(l))) d f / d x^(l),
        d f / d W^(1)_11 = x_1 sigma'(s^(1)_1) (d f / d x^(1))_1.
    """
    x, weights, biases, c = _check_box_net(x, weights, biases, c)
    s = layer_pre_activations(x, weights, biases)
    upstream = c
    for l in range(len(weights) - 1, 0, -1):
        upstream = weights[l] @ (sigmoid_slope(s[l]) * upstream)
    return x[0] * sigmoid_slope(s[0])[0] * upstream[0]


def vanishing_bound(L: int, x) -> float:
    """The tight bound |d f / d W^(1)_11| <= |x_1| (1/4) (3/4)^(L-1) = (|x_1| / 3) (3/4)^L.

    Each sigma' is at most 1/4. Going back through a hidden layer multiplies the vector d f / d x by
    W diag(sigma'): each entry is a sum of K = 3 terms of size at most 1 * 1/4 times the largest
    entry, so the largest entry shrinks by at least 3/4; d f / d x^(L) = c has entries of size <= 1.
    L - 1 such layers and the first layer's own sigma'(s_1) <= 1/4 and x_1 give the bound.
    """
    if isinstance(L, bool) or not isinstance(L, int) or L < 1:
        raise ValueError(f"L must be a positive integer (the number of hidden layers), got {L!r}")
    x = as_float_tensor(x, "x")
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"x must be a non-empty vector, got shape {tuple(x.shape)}")
    return abs(float(x[0])) * 0.25 * 0.75 ** (L - 1)


def extremal_net(x, L: int, K: int = 3):
    """The net that attains the bound: every weight 1, every c_i 1, and biases that put every
    pre-activation at 0 (where sigma' = 1/4): b^(1) = -W^(1)T x, then b^(l) = -K/2."""
    x = as_float_tensor(x, "x")
    weights = [torch.ones(x.shape[0], K, dtype=x.dtype)] + \
        [torch.ones(K, K, dtype=x.dtype) for _ in range(L - 1)]
    biases = [-(weights[0].T @ x)] + [torch.full((K,), -K / 2, dtype=x.dtype) for _ in range(L - 1)]
    return weights, biases, torch.ones(K, dtype=x.dtype)


# ---------------------------------------------------------------------------------- a7 (1)-(3)
def log_loss_output_gradient(output, y) -> torch.Tensor:
    """Equation (3): d l / d x^(m) = -y / x^(m) + (1 - y) / (1 - x^(m))."""
    return -y / output + (1 - y) / (1 - output)


def backprop_sigmoid_mlp(x, y, weights) -> list[torch.Tensor]:
    """Equations (1)-(3) for a sigmoid MLP without biases and with the log loss: the gradient of
    every weight matrix W^(k) (row i = the weights w_i^(k) into unit i of layer k + 1).

    (3) starts the recursion at the output, (2) carries d l / d x^(k) down:
        d l / d x_i^(k) = sum_j w_{j,i}^(k) sigma'(s_j^(k+1)) d l / d x_j^(k+1),
    and (1) gives each weight vector: grad w_i^(k) = x^(k) sigma'(s_i^(k+1)) d l / d x_i^(k+1).
    """
    x = as_float_tensor(x, "x")
    y = float(y)
    if y not in (0.0, 1.0):
        raise ValueError(f"y must be a class label 0 or 1, got {y!r}")
    weights = [as_float_tensor(w, f"weights[{i}]") for i, w in enumerate(weights)]
    if not weights or weights[-1].shape[0] != 1:
        raise ValueError("weights must end with a 1 x n matrix (a single sigmoid output unit)")
    units, sums = [x], []
    for k, w in enumerate(weights):
        if w.ndim != 2 or w.shape[1] != units[-1].shape[0]:
            raise ValueError(f"weights[{k}] must have {units[-1].shape[0]} columns, got shape {tuple(w.shape)}")
        sums.append(w @ units[-1])
        units.append(sigmoid(sums[-1]))
    upstream = log_loss_output_gradient(units[-1], y)                       # (3)
    grads = [None] * len(weights)
    for k in range(len(weights) - 1, -1, -1):
        local = sigmoid_slope(sums[k]) * upstream                           # sigma'(s^(k+1)) dl/dx^(k+1)
        grads[k] = local[:, None] * units[k][None, :]                       # (1)
        upstream = weights[k].T @ local                                     # (2)
    return grads


# ------------------------------------------------------------------------------ a7 sigmoid, (4)
def saturation_threshold(eps: float) -> float:
    """The t >= 0 with sigma'(s) < eps exactly when |s| > t (a7 (a): saturated units).

    sigma'(s) = v (1 - v) with v = sigma(s); v (1 - v) = eps gives v = (1 + sqrt(1 - 4 eps)) / 2 and
    s = log(v / (1 - v)) = log((1 + r)^2 / (4 eps)) with r = sqrt(1 - 4 eps). For eps >= 1/4 every
    s != 0 qualifies (t = 0); eps <= 0 is rejected.
    """
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    if eps >= 0.25:
        return 0.0
    # 1 - root cancels for small eps; (1 - root)(1 + root) = 4 eps rewrites it exactly
    root = math.sqrt(1 - 4 * eps)
    return 2 * math.log1p(root) - math.log(4 * eps)


def relu_slope(s) -> torch.Tensor:
    """ReLU'(s): 1 for s > 0 and 0 for s <= 0 (torch's choice at s = 0)."""
    s = as_float_tensor(s, "s")
    return (s > 0).to(s.dtype)


ACTIVATION_SLOPES = {
    "sigmoid": sigmoid_slope,
    "relu": relu_slope,
    "tanh": lambda s: 1 - torch.tanh(s) ** 2,
}
ACTIVATIONS = {"sigmoid": sigmoid, "relu": torch.relu, "tanh": torch.tanh}


def unit_gradients(upstream, sums, weights, activation: str = "sigmoid") -> list[torch.Tensor]:
    """Equation (4) applied layer after layer: from d l / d x^(m) (``upstream``) and the summation
    units s^(2), ..., s^(m) (``sums``), return [d l / d x^(1), ..., d l / d x^(m)] where
    d l / d x_i^(k) = sum_j w_{j,i}^(k) a'(s_j^(k+1)) d l / d x_j^(k+1)."""
    if activation not in ACTIVATION_SLOPES:
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_SLOPES)}, got {activation!r}")
    if len(sums) != len(weights):
        raise ValueError(f"sums and weights must have one entry per layer, got {len(sums)} and {len(weights)}")
    slope = ACTIVATION_SLOPES[activation]
    upstream = as_float_tensor(upstream, "upstream")
    grads = [upstream]
    for s, w in zip(reversed(sums), reversed(weights), strict=True):
        upstream = as_float_tensor(w, "weights").T @ (slope(as_float_tensor(s, "sums")) * upstream)
        grads.append(upstream)
    return grads[::-1]


# ------------------------------------------------------------------------------ a7 depth study
class DepthMLP(nn.Module):
    """a7 (c): an MLP whose number of hidden layers is a parameter (PyTorch's default init)."""

    def __init__(self, depth: int, width: int = 32, in_features: int = 10,
                 activation: str = "sigmoid"):
        super().__init__()
        for name, value in {"depth": depth, "width": width, "in_features": in_features}.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        sizes = [in_features] + [width] * depth
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.output = nn.Linear(width, 1)
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = self.activation(layer(x))
        return self.output(x).squeeze(-1)


def depth_study(depth: int = 10, width: int = 32, activation: str = "sigmoid", *, batch: int = 64,
                in_features: int = 10, seed: int = 0) -> list[float]:
    """Mean |d l / d W| of every hidden layer (input side first) of an untrained DepthMLP, after
    one backward pass of the logistic loss on a random batch with random labels."""
    torch.manual_seed(seed)
    model = DepthMLP(depth, width, in_features, activation)
    x = torch.randn(batch, in_features)
    y = torch.randint(0, 2, (batch,)).float()
    nn.functional.binary_cross_entropy_with_logits(model(x), y).backward()
    return [layer.weight.grad.abs().mean().item() for layer in model.layers]
