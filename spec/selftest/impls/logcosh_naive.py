"""Wrong on purpose (dl-a1.q1b only): the cost as log(cosh(r)) computed literally, which overflows to
inf for residuals beyond about 710 (float64) or 89 (float32)."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import logcosh_forward


def logcosh_cost(x, y, W1, b1, w2, b2):
    return torch.log(torch.cosh(logcosh_forward(x, W1, b1, w2, b2) - y)).mean()
