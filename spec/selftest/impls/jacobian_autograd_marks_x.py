"""Wrong on purpose (dl-a1.q2b, robustness only): the Jacobian by autograd is right, but it is taken
with respect to the caller's own x: ``x.requires_grad_(True)`` and ``.backward()`` leave x requiring
grad and holding a ``.grad`` (of the last output) after the call."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import network


def jacobian_autograd(x, weights):
    out = network(x, weights)   # checks the arguments
    x.requires_grad_(True)
    rows = []
    for p in range(out.shape[-1]):
        x.grad = None
        network(x, weights)[..., p].sum().backward()
        rows.append(x.grad.clone())
    return torch.stack(rows, dim=-2)
