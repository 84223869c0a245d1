"""Wrong on purpose (dl-a1.q1d): features and targets standardised with the statistics of the whole
data set, before the split, so the test rows leak into the training (the reference standardises with
the training split's statistics)."""

import numpy as np
import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import HousingRun, logcosh_cost, logcosh_forward
from spec.data import housing_data


def train_housing(x=None, y=None, *, hidden=20, epochs=15, lr=0.01, batch_size=32, seed=0):
    from sklearn.model_selection import train_test_split

    if x is None:
        x, y = housing_data()
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-12)       # the whole data's statistics
    y = (y - y.mean()) / (y.std() + 1e-12)
    x_tr, x_te, y_tr, y_te = (torch.tensor(a, dtype=torch.float32)
                              for a in train_test_split(x, y, test_size=0.2, random_state=seed))
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
