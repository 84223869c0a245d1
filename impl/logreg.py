"""a7 companion notebook: logistic regression in PyTorch, compared with scikit-learn, and the
Titanic CSV loader."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch


def breast_cancer_data(dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The embedded data set: scikit-learn's bundled breast-cancer table, standardised columns,
    labels 0/1 (569 x 30)."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    return torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)


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


TITANIC_FEATURES = ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare")


def load_titanic_csv(path) -> tuple[torch.Tensor, torch.Tensor]:
    """The Titanic table (Kaggle's train.csv columns): features Pclass, Sex (male = 1), Age (missing
    ages get the median), SibSp, Parch, Fare; target Survived."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such Titanic CSV file")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path}: the CSV file has no data rows")
    missing = [c for c in (*TITANIC_FEATURES, "Survived") if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    ages = [float(r["Age"]) for r in rows if r["Age"].strip()]
    median_age = float(np.median(ages)) if ages else 0.0
    features, target = [], []
    for line, row in enumerate(rows, start=2):
        try:
            features.append([float(row["Pclass"]), 1.0 if row["Sex"].strip().lower() == "male" else 0.0,
                             float(row["Age"]) if row["Age"].strip() else median_age, float(row["SibSp"]),
                             float(row["Parch"]), float(row["Fare"] or 0.0)])
            target.append(float(row["Survived"]))
        except ValueError as exc:
            raise ValueError(f"{path}, line {line}: {exc}") from None
    return torch.tensor(features, dtype=torch.float64), torch.tensor(target, dtype=torch.float64)
