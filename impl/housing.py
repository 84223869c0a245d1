"""dl-a1 question 1(d): the question-1 network trained on housing prices for 15 epochs, with the
train and test MSE after every epoch.

``load_boston`` is gone from scikit-learn (1.2), so the default is scikit-learn's bundled diabetes
regression table (442 x 10); Boston housing loads from a CSV file (the usual 14 columns, target
``medv``/``MEDV`` last) or from an OpenML cache folder when given. W1's input size follows the data.
"""

from __future__ import annotations

import numpy as np
import torch

from impl.logcosh_net import logcosh_cost, logcosh_forward
from spec.data import housing_data
from spec.given import HousingRun


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
    return _fit_standardised((x_tr - mean) / std, (x_te - mean) / std, (y_tr - y_mean) / y_std,
                             (y_te - y_mean) / y_std, hidden=hidden, epochs=epochs, lr=lr, batch_size=batch_size,
                             seed=seed)


def _fit_standardised(x_tr, x_te, y_tr, y_te, *, hidden: int, epochs: int, lr: float, batch_size: int,
                     seed: int) -> HousingRun:
    """The training of :func:`train_housing` on splits already standardised (float64 arrays)."""
    as_t = lambda a: torch.tensor(a, dtype=torch.float32)
    x_tr, x_te, y_tr, y_te = as_t(x_tr), as_t(x_te), as_t(y_tr), as_t(y_te)
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
