"""Wrong on purpose (a7.activation-eq4 only): ReLU'(0) taken as 1, not torch's 0."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below


def relu_slope(s):
    s = torch.as_tensor(s)
    if not s.is_floating_point():
        raise TypeError("s must be floating point")
    return (s >= 0).to(s.dtype)
