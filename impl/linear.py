"""Linear models and training loops: ex08 exercises 2-3 (three linear regressions), dl-a1 question 5
(least squares and gradient descent in closed form) and ps09 part 2 (SGD with a DataLoader,
train/validation/test split, parameter snapshots, momentum by hand)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from impl._checks import as_float_tensor
from spec.given import MOMENTUM_OPTIONS, EpochShuffle, SGDRun


# ---------------------------------------------------------------------------------- ex08
# The course template's interface: MyLinearRegression(), mselossfunc(pred, y),
# train(features, labels, model, lossfunc, optimizer, num_epoch), NNLinearRegression(), MLP(hidden_size).
class MyLinearRegression:
    """ex08 exercise 2: y = w x + b on raw tensors. ``parameters()`` is the list [w, b] (each of shape
    (1,), requiring grad); zero init."""

    def __init__(self):
        self.w = torch.zeros(1, requires_grad=True)
        self.b = torch.zeros(1, requires_grad=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions of the shape of x: an N x 1 column for an N x 1 column."""
        return x * self.w + self.b

    def parameters(self) -> list[torch.Tensor]:
        return [self.w, self.b]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)


def mselossfunc(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean squared error, averaged like nn.MSELoss. pred and y must have one shape (an N
    vector against an N x 1 column would broadcast to N x N)."""
    if pred.shape != y.shape:
        raise ValueError(f"pred and y must have one shape, got {tuple(pred.shape)} and {tuple(y.shape)}")
    return ((pred - y) ** 2).mean()


def train(features, labels, model, lossfunc, optimizer, num_epoch: int) -> list[float]:
    """ex08: ``num_epoch`` full-batch steps of ``optimizer`` on ``lossfunc(model(features), labels)``.
    features and labels are float32 numpy arrays of shape (N, 1). The gradients are cleared before
    every backward pass (otherwise they accumulate across steps). Returns the loss before each step."""
    if isinstance(num_epoch, bool) or not isinstance(num_epoch, int) or num_epoch < 0:
        raise ValueError(f"num_epoch must be a non-negative integer, got {num_epoch!r}")
    inputs, targets = torch.as_tensor(features), torch.as_tensor(labels)
    if len(inputs) == 0 or len(inputs) != len(targets):
        raise ValueError(f"features and labels must be non-empty and of one length, got {len(inputs)} "
                         f"and {len(targets)}")
    losses = []
    for _ in range(num_epoch):
        optimizer.zero_grad()
        loss = lossfunc(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


class NNLinearRegression(nn.Module):
    """ex08 exercise 3: the same model as an nn.Module subclass declaring its own nn.Parameters
    (no pre-existing modules of the nn package)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w + self.b


class MLP(nn.Module):
    """ex08: Linear(1, hidden_size) -> sigmoid -> Linear(hidden_size, 1)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        self.hidden = nn.Linear(1, hidden_size)
        self.activation = nn.Sigmoid()
        self.output = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.activation(self.hidden(x)))


# ---------------------------------------------------------------------------- dl-a1 question 5
def _xy(X, y):
    X = as_float_tensor(X, "X")
    y = as_float_tensor(y, "y")
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ValueError(f"X must be N x D and y of length N (N > 0), got {tuple(X.shape)} and {tuple(y.shape)}")
    return X, y


def lsq_loss(X, w, y) -> torch.Tensor:
    """L(X, w, y) = 1/2 ||X w - y||^2."""
    X, y = _xy(X, y)
    return 0.5 * ((X @ as_float_tensor(w, "w") - y) ** 2).sum()


def lsq_gradient(X, w, y) -> torch.Tensor:
    """dl-a1 5(a): grad_w L = X^T (X w - y)."""
    X, y = _xy(X, y)
    w = as_float_tensor(w, "w")
    if w.shape != (X.shape[1],):
        raise ValueError(f"w must have D = {X.shape[1]} entries, got shape {tuple(w.shape)}")
    return X.T @ (X @ w - y)


def lsq_minimiser(X, y) -> torch.Tensor:
    """dl-a1 5(a): argmin_w L. Setting the gradient to 0 gives the normal equations X^T X w = X^T y;
    w = (X^T X)^-1 X^T y when X has full column rank, and in general the minimum-norm solution
    w = X^+ y (the pseudo-inverse), which is what this returns."""
    X, y = _xy(X, y)
    return torch.linalg.pinv(X) @ y


def gd_first_iterates(X, y, w0, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """dl-a1 5(b): w1 = w0 - alpha X^T (X w0 - y) = (I - alpha X^T X) w0 + alpha X^T y and
    w2 = (I - alpha X^T X)^2 w0 + (I + (I - alpha X^T X)) alpha X^T y."""
    X, y = _xy(X, y)
    w0 = as_float_tensor(w0, "w0")
    A = torch.eye(X.shape[1], dtype=X.dtype) - alpha * X.T @ X
    c = alpha * X.T @ y
    return A @ w0 + c, A @ A @ w0 + (torch.eye(X.shape[1], dtype=X.dtype) + A) @ c


def gd_iterate(X, y, w0, alpha: float, k: int) -> torch.Tensor:
    """dl-a1 5(c): w_k = A^k w0 + sum_{j<k} A^j alpha X^T y with A = I - alpha X^T X.

    Since X^T y = X^T X w* for w* = X^+ y, the sum telescopes: sum_{j<k} A^j alpha X^T X = I - A^k,
    so w_k = w* + A^k (w0 - w*). It converges for 0 < alpha < 2 / lambda_max(X^T X) (every
    eigenvalue of A in (-1, 1] and the ones equal to 1 only on the null space of X) and diverges
    for larger alpha when w0 - w* has a component along the top eigenvector.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    X, y = _xy(X, y)
    w0 = as_float_tensor(w0, "w0")
    w_star = lsq_minimiser(X, y)
    A = torch.eye(X.shape[1], dtype=X.dtype) - alpha * X.T @ X
    return w_star + torch.linalg.matrix_power(A, k) @ (w0 - w_star)


def step_size_limit(X) -> float:
    """2 / lambda_max(X^T X): gradient descent on L converges below it and diverges above."""
    X = as_float_tensor(X, "X")
    return 2.0 / float(torch.linalg.eigvalsh(X.T @ X).max())


# ------------------------------------------------------------------------------- ps09 part 2
def linear_predict(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The linear model of ps09 part 2, params = [slope, bias]."""
    return params[0] * x + params[1]


def sgd_linear(x, y, *, batch_size: int = 32, lr: float = 0.01, epochs: int = 10, momentum: float = 0.0,
               seed: int = 0, x_val=None, y_val=None) -> SGDRun:
    """ps09 2.1-2.5: the sheet's loop, TensorDataset + DataLoader(shuffle), zero init, MSE.

    Shuffling draws from its own generator seeded with ``seed``: each epoch visits the samples in
    the order torch.randperm(N, generator) (EpochShuffle, the shuffle=True of the sheet with a
    stated rule, so that a plain loop can reproduce the batches). With ``momentum`` mu > 0 the update is the
    sheet's b_t = mu b_(t-1) + g_t (b_0 = g_0), theta_t = theta_(t-1) - lr b_t. Any real mu runs
    (the sheet's options include mu < 0 and mu >= 1, which torch.optim.SGD would refuse or diverge on).
    """
    from torch.utils.data import DataLoader, TensorDataset

    x, y = as_float_tensor(x, "x").float(), as_float_tensor(y, "y").float()
    if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
        raise ValueError(f"x and y must be non-empty vectors of one length, got {tuple(x.shape)}, {tuple(y.shape)}")
    for name, value in {"batch_size": batch_size, "epochs": epochs}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not math.isfinite(momentum):
        raise ValueError(f"momentum must be a finite number, got {momentum!r}")
    dataset = TensorDataset(x, y)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=EpochShuffle(len(dataset), seed))
    params = torch.zeros(2, requires_grad=True)
    velocity = None
    run = SGDRun(params=params)
    for _ in range(epochs):
        for inputs, targets in loader:
            params.grad = None
            loss = mselossfunc(linear_predict(params, inputs), targets)
            loss.backward()
            with torch.no_grad():
                step = params.grad if velocity is None or momentum == 0 else momentum * velocity + params.grad
                velocity = step.clone()
                params.add_(step, alpha=-lr)  # theta - lr * step, rounded as torch.optim.SGD does
            run.batch_losses.append(loss.item())
        run.snapshots.append(params.detach().clone())
        with torch.no_grad():
            run.train_mse.append(mselossfunc(linear_predict(params, x), y).item())
            if x_val is not None:
                run.val_mse.append(mselossfunc(linear_predict(params, x_val), y_val).item())
    run.params = params.detach().clone()
    return run


def split_80_10_10(x, y, seed: int = 42):
    """ps09 2.3: train 80 %, validation 10 %, test 10 %, by two train_test_split calls (80:20, then
    the 20 % halved), random_state = seed both times. Returns (x_train, y_train, x_val, y_val,
    x_test, y_test)."""
    from sklearn.model_selection import train_test_split

    if len(x) < 10 or len(x) != len(y):
        raise ValueError(f"x and y need one length of at least 10 samples, got {len(x)} and {len(y)}")
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.2, random_state=seed)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, random_state=seed)
    return x_train, y_train, x_val, y_val, x_test, y_test


def best_epochs(run: SGDRun) -> tuple[int, int]:
    """ps09 2.3: (index of the minimal train MSE, index of the minimal validation MSE), 0-based."""
    return int(np.argmin(run.train_mse)), int(np.argmin(run.val_mse))


def test_mse_last_vs_best(run: SGDRun, x_test, y_test) -> tuple[float, float]:
    """ps09 2.4: test MSE with the last epoch's parameters and with the best-validation epoch's."""
    _, best = best_epochs(run)
    with torch.no_grad():
        last = mselossfunc(linear_predict(run.snapshots[-1], x_test), y_test).item()
        at_best = mselossfunc(linear_predict(run.snapshots[best], x_test), y_test).item()
    return last, at_best


def momentum_curves(x, y, mus, *, lr: float = 1e-3, epochs: int = 50, seed: int = 0) -> dict[float, list[float]]:
    """ps09 2.5: the per-batch loss curve for each momentum mu."""
    return {mu: sgd_linear(x, y, lr=lr, epochs=epochs, momentum=mu, seed=seed).batch_losses for mu in mus}


def converging(curve: list[float]) -> bool:
    """A loss curve that settles: finite throughout, and its last 32 values (the last epoch of the
    sheet's 1000 samples at batch 32) average below a tenth of its first value."""
    return all(math.isfinite(v) for v in curve) and sum(curve[-32:]) / len(curve[-32:]) < 0.1 * curve[0]


def consistent_momentum_options(curves: dict[float, list[float]]) -> list[str]:
    """ps09 2.5: the options whose four momenta all give converging curves (the figure's curves
    all fall). mu >= 1 keeps every past gradient (no decay) and mu > 1 amplifies them: those curves
    blow up or oscillate, which rules out every option that contains such a mu."""
    return [key for key, mus in MOMENTUM_OPTIONS.items() if all(converging(curves[m]) for m in mus)]
