"""Backpropagation by hand (moons sheet): x -> Linear -> ReLU -> Linear -> SoftMax -> CE.

Matrix products and torch.softmax only: no nn.Linear, no torch.optim, no automatic
differentiation. Shapes: x is N x D, W1 is H x D, b1 has H entries, W2 is C x H, b2 has C entries,
y holds N class labels in 0..C-1.

Forward:   z1 = x W1^T + b1,  a1 = relu(z1),  z2 = a1 W2^T + b2 (logits),  p = softmax(z2),
           L = -(1/N) sum_n log p[n, y_n]
Backward:  dL/dz2 = (p - e_y) / N           (softmax and cross-entropy together)
           dL/dW2 = dz2^T a1,   dL/db2 = sum_n dz2[n]
           dL/da1 = dz2 W2,     dL/dz1 = dL/da1 * [z1 > 0]
           dL/dW1 = dz1^T x,    dL/db1 = sum_n dz1[n]
"""

from __future__ import annotations

import torch

from impl.data import Split, two_moons
from spec.given import ForwardCache, ManualHistory

PARAMETERS = ("W1", "b1", "W2", "b2")


def _check(x, params, y=None):
    missing = [name for name in PARAMETERS if name not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; expected {list(PARAMETERS)}")
    W1, b1, W2, b2 = (params[name] for name in PARAMETERS)
    for name, tensor in {"x": x, **params}.items():
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {getattr(tensor, 'dtype', type(tensor))}")
    if x.ndim != 2 or W1.ndim != 2 or W2.ndim != 2 or W1.shape[1] != x.shape[1] \
            or tuple(b1.shape) != (W1.shape[0],) or W2.shape[1] != W1.shape[0] or tuple(b2.shape) != (W2.shape[0],):
        raise ValueError("shapes must be x: N x D, W1: H x D, b1: H, W2: C x H, b2: C; got "
                         + ", ".join(f"{k}: {tuple(v.shape)}" for k, v in {"x": x, **params}.items()))
    if y is not None:
        if not isinstance(y, torch.Tensor) or y.dtype not in (torch.int64, torch.int32) \
                or tuple(y.shape) != (x.shape[0],):
            raise TypeError(f"y must be an integer tensor of N = {x.shape[0]} class labels, got "
                            f"{getattr(y, 'dtype', type(y))} of shape {tuple(getattr(y, 'shape', ()))}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= W2.shape[0]):
            raise ValueError(f"y must hold class labels in 0..{W2.shape[0] - 1}")


def manual_forward(x, params) -> ForwardCache:
    """Forward pass from weight matrices and bias vectors: x is N x D, params holds "W1" (H x D, the
    layout of nn.Linear's weight), "b1" (H), "W2" (C x H) and "b2" (C). Returns the ForwardCache
    (z1, a1, logits, probs): hidden pre-activations and ReLU activations (N x H), logits and softmax
    probabilities (N x C)."""
    _check(x, params)
    z1 = x @ params["W1"].T + params["b1"]
    a1 = torch.clamp_min(z1, 0)
    logits = a1 @ params["W2"].T + params["b2"]
    return ForwardCache(z1, a1, logits, torch.softmax(logits, dim=1))


def cross_entropy(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L = -(1/N) sum_n log p[n, y_n]."""
    return -torch.log(probs[torch.arange(len(y)), y]).mean()


def manual_backward(x, y, params, cache: ForwardCache) -> dict[str, torch.Tensor]:
    """Gradients of the mean cross-entropy L = -(1/N) sum_n log p[n, y_n] with respect to W1, b1, W2
    and b2, by hand (no autograd): a dict with those four keys, each tensor of its parameter's shape
    (the layout of manual_forward); y holds N class labels in 0..C-1; cache is manual_forward(x, params)."""
    _check(x, params, y)
    n, classes = cache.probs.shape
    one_hot = torch.nn.functional.one_hot(y, num_classes=classes).to(cache.probs.dtype)
    dz2 = (cache.probs - one_hot) / n
    da1 = dz2 @ params["W2"]
    dz1 = da1 * (cache.z1 > 0).to(da1.dtype)
    return {"W1": dz1.T @ x, "b1": dz1.sum(0), "W2": dz2.T @ cache.a1, "b2": dz2.sum(0)}


def manual_step(params, grads, lr: float) -> dict[str, torch.Tensor]:
    """One gradient-descent step: new tensors theta - lr * grad (the inputs are left unchanged)."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    missing = [name for name in PARAMETERS if name not in params or name not in grads]
    if missing:
        raise ValueError(f"params and grads must both hold {list(PARAMETERS)}; missing {missing}")
    return {name: params[name] - lr * grads[name] for name in PARAMETERS}


def init_params(in_features: int = 2, hidden: int = 16, classes: int = 2, *, seed: int = 0,
                dtype=torch.float32) -> dict[str, torch.Tensor]:
    """He-normal weights (std sqrt(2 / fan_in), suited to ReLU) and zero biases."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "W1": torch.randn(hidden, in_features, generator=generator, dtype=dtype) * (2 / in_features) ** 0.5,
        "b1": torch.zeros(hidden, dtype=dtype),
        "W2": torch.randn(classes, hidden, generator=generator, dtype=dtype) * (2 / hidden) ** 0.5,
        "b2": torch.zeros(classes, dtype=dtype),
    }


def predict(x, params) -> torch.Tensor:
    return manual_forward(x, params).logits.argmax(1)


def train_manual(data: Split | None = None, *, hidden: int = 16, lr: float = 0.5, steps: int = 500,
                 seed: int = 0, snapshot_every: int = 100) -> ManualHistory:
    """Full-batch gradient descent with the hand-written forward, backward and step."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    data = data or two_moons(seed=seed)
    params = init_params(data.x_train.shape[1], hidden, int(data.y_train.max()) + 1, seed=seed)
    history = ManualHistory()
    for step in range(steps):
        if step % snapshot_every == 0:
            history.snapshots[step] = {k: v.clone() for k, v in params.items()}
        cache = manual_forward(data.x_train, params)
        history.loss.append(float(cross_entropy(cache.probs, data.y_train)))
        params = manual_step(params, manual_backward(data.x_train, data.y_train, params, cache), lr)
    history.snapshots[steps] = {k: v.clone() for k, v in params.items()}
    history.params = params
    history.train_accuracy = float((predict(data.x_train, params) == data.y_train).float().mean())
    history.test_accuracy = float((predict(data.x_test, params) == data.y_test).float().mean())
    return history


def decision_grid(params, x_range=(-2.0, 3.0), y_range=(-1.5, 2.0), n: int = 200):
    """(xx, yy, p1): a grid over the plane and the probability of class 1 at each point, the data
    of a decision-boundary plot (the boundary is the contour p1 = 1/2)."""
    xs = torch.linspace(*x_range, n, dtype=params["W1"].dtype)
    ys = torch.linspace(*y_range, n, dtype=params["W1"].dtype)
    xx, yy = torch.meshgrid(xs, ys, indexing="xy")
    probs = manual_forward(torch.stack([xx.ravel(), yy.ravel()], 1), params).probs
    return xx, yy, probs[:, 1].reshape(xx.shape)
