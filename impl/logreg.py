"""a7 companion notebook: logistic regression in PyTorch, compared with scikit-learn (the data and
the Titanic CSV loader are the spec's: spec/data.py)."""

from __future__ import annotations

import torch


def fit_logistic_regression(x, y, *, C: float | None = 1.0, max_iter: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, b) minimising scikit-learn's objective: C * sum_i logloss_i + ||w||^2 / 2 (the intercept
    is not penalised), or the plain log loss when C is None. L-BFGS in the data's dtype."""
    x = torch.as_tensor(x)
    y = torch.as_tensor(y, dtype=x.dtype)
    if x.ndim != 2 or y.shape != (x.shape[0],) or not x.is_floating_point():
        raise ValueError(f"x must be a floating N x D matrix and y N labels, got {tuple(x.shape)}, {tuple(y.shape)}")
    if not set(torch.unique(y).tolist()) <= {0.0, 1.0}:
        raise ValueError("y must hold the labels 0 and 1")
    if C is not None and not C > 0:
        raise ValueError(f"C must be > 0 (or None for no penalty), got {C!r}")
    w = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    b = torch.zeros((), dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-12,
                                  tolerance_change=1e-15, history_size=50, line_search_fn="strong_wolfe")
    scale = 1.0 if C is None else C

    def objective():
        optimizer.zero_grad()
        loss = scale * torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y, reduction="sum")
        if C is not None:
            loss = loss + 0.5 * (w @ w)
        loss.backward()
        return loss

    optimizer.step(objective)
    return w.detach(), b.detach()
