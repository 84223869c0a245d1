"""Wrong on purpose (dl-a1.q3-softthreshold only): the soft threshold that ignores s (it is x)."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import HandNet
from impl import soft_threshold_net as _reference


def soft_threshold_net(s):
    _reference(s)  # its check of s
    one = lambda v: torch.tensor(v, dtype=torch.float64)
    return HandNet(((one([[1.0], [-1.0]]), one([0.0, 0.0])), (one([[1.0, -1.0]]), one([0.0]))))
