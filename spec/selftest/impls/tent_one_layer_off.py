"""Wrong on purpose (dl-a1.q3-tent only): 2 relu(x) - 4 relu(x - 1/2) + 2 relu(x - 1) with the last
kink misplaced at 1.25."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import HandNet


def tent_net():
    one = lambda v: torch.tensor(v, dtype=torch.float64)
    return HandNet(((one([[1.0], [1.0], [1.0]]), one([0.0, -0.5, -1.25])), (one([[2.0, -4.0, 2.0]]), one([0.0]))))
