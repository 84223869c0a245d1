"""Wrong on purpose (dl-a1.q3-xnor only): the NOR unit written relu(-x1 - x2), its bias +1 forgotten,
so (0, 0) comes out 0 instead of 1."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import HandNet


def xnor_net():
    one = lambda v: torch.tensor(v, dtype=torch.float64)
    return HandNet(((one([[1.0, 1.0], [-1.0, -1.0]]), one([-1.0, 0.0])), (one([[1.0, 1.0]]), one([0.0]))))
