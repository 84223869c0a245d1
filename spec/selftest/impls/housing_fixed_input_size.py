"""Wrong on purpose (dl-a1.q1d only): W1 left at the default data's 10 inputs; other data is cut to
its first 10 features instead of resizing W1 (the sheet: "adjust the size of W1 to fit the data")."""

import numpy as np

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import train_housing as _reference


def train_housing(x=None, y=None, **kwargs):
    if x is not None:
        x = np.asarray(x, dtype=np.float64)[:, :10]
    return _reference(x, y, **kwargs)
