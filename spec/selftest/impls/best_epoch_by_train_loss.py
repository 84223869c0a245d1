"""Wrong on purpose (ps09.2-4 only): the "best" epoch picked by the training MSE, not the validation MSE."""

import numpy as np
import torch

from impl import *  # noqa: F403 - the reference, with one function broken below


def test_mse_last_vs_best(run, x_test, y_test):
    best = int(np.argmin(run.train_mse))
    at = lambda p: float(((p[0] * x_test + p[1] - y_test) ** 2).mean())
    with torch.no_grad():
        return at(run.snapshots[-1]), at(run.snapshots[best])
