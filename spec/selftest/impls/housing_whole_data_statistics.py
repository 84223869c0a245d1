"""Wrong on purpose (dl-a1.q1d): features and targets standardised with the statistics of the whole
data set, before the split, so the test rows leak into the training (the reference standardises with
the training split's statistics)."""

import numpy as np

import impl.housing as _housing
from impl import *  # noqa: F403 - the reference, with one function broken below
from spec.data import housing_data


def train_housing(x=None, y=None, *, hidden=20, epochs=15, lr=0.01, batch_size=32, seed=0):
    from sklearn.model_selection import train_test_split

    if x is None:
        x, y = housing_data()
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-12)       # the whole data's statistics
    y = (y - y.mean()) / (y.std() + 1e-12)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed)
    return _housing._fit_standardised(x_tr, x_te, y_tr, y_te, hidden=hidden, epochs=epochs, lr=lr,
                                      batch_size=batch_size, seed=seed)
