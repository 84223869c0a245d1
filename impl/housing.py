"""dl-a1 question 1(d): the question-1 network trained on housing prices for 15 epochs, with the
train and test MSE after every epoch.

``load_boston`` is gone from scikit-learn (1.2), so the default is scikit-learn's bundled diabetes
regression table (442 x 10); Boston housing loads from a CSV file (the usual 14 columns, target
``medv``/``MEDV`` last) or from an OpenML cache folder when given. W1's input size follows the data.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from impl.logcosh_net import logcosh_cost, logcosh_forward

BOSTON_TARGETS = ("medv", "MEDV", "target", "PRICE", "price")


def load_boston_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """Features and target from a Boston housing CSV (header row, numeric cells, target column
    named medv / MEDV / target / price, or else the last column)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such CSV file")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 3:
        raise ValueError(f"{path}: expected a header and at least two data rows")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    target = next((header.index(t) for t in BOSTON_TARGETS if t in header), len(header) - 1)
    try:
        table = np.array([[float(cell) for cell in row] for row in body])
    except ValueError as exc:
        raise ValueError(f"{path}: every cell must be a number ({exc})") from None
    if table.ndim != 2 or table.shape[1] != len(header):
        raise ValueError(f"{path}: every row must have {len(header)} cells")
    return np.delete(table, target, axis=1), table[:, target]


def load_boston_openml(data_home) -> tuple[np.ndarray, np.ndarray]:
    """Boston housing (OpenML data set 531, "boston") from scikit-learn's OpenML cache folder."""
    from sklearn.datasets import fetch_openml

    if not Path(data_home).is_dir():
        raise FileNotFoundError(f"{data_home}: no such OpenML cache folder")
    bunch = fetch_openml(name="boston", version=1, data_home=str(data_home), as_frame=False, parser="liac-arff")
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.float64)


def housing_data(csv_path=None, openml_home=None):
    """(x, y): Boston from a CSV or OpenML cache when given, else the bundled diabetes table."""
    if csv_path is not None:
        return load_boston_csv(csv_path)
    if openml_home is not None:
        return load_boston_openml(openml_home)
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)


@dataclass
class HousingRun:
    train_mse: list[float] = field(default_factory=list)
    test_mse: list[float] = field(default_factory=list)
    params: dict = field(default_factory=dict)


def train_housing(x=None, y=None, *, hidden: int = 20, epochs: int = 15, lr: float = 0.01, batch_size: int = 32,
                  seed: int = 0) -> HousingRun:
    """Standardise (with the training split's statistics), then train the question-1 net
    y_hat = w2^T tanh(W1 x + b1) + b2 on its log-cosh cost with Adam for ``epochs`` epochs of
    minibatches; the MSE on the standardised targets is recorded after every epoch."""
    from sklearn.model_selection import train_test_split

    if x is None:
        x, y = housing_data()
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],) or len(y) < 10:
        raise ValueError(f"x must be N x D and y N targets with N >= 10, got {x.shape} and {y.shape}")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed)
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-12
    y_mean, y_std = y_tr.mean(), y_tr.std() + 1e-12
    as_t = lambda a: torch.tensor(a, dtype=torch.float32)
    x_tr, x_te = as_t((x_tr - mean) / std), as_t((x_te - mean) / std)
    y_tr, y_te = as_t((y_tr - y_mean) / y_std), as_t((y_te - y_mean) / y_std)
    g = torch.Generator().manual_seed(seed)
    d = x_tr.shape[1]
    params = {"W1": torch.randn(hidden, d, generator=g) / d**0.5, "b1": torch.zeros(hidden),
              "w2": torch.randn(hidden, generator=g) / hidden**0.5, "b2": torch.zeros(())}
    for p in params.values():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    run = HousingRun()
    for _ in range(epochs):
        order = torch.randperm(len(y_tr), generator=g)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            logcosh_cost(x_tr[batch], y_tr[batch], *params.values()).backward()
            optimizer.step()
        with torch.no_grad():
            for xs, ys, record in ((x_tr, y_tr, run.train_mse), (x_te, y_te, run.test_mse)):
                record.append(float(((logcosh_forward(xs, *params.values()) - ys) ** 2).mean()))
    run.params = {k: v.detach() for k, v in params.items()}
    return run
