"""Wrong on purpose (dl-a1.q1c only): "finite differences" that call autograd instead."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below


def finite_difference_gradient(f, x, h=1e-6, scheme="central"):
    if scheme not in ("central", "forward") or not h > 0 or not callable(f):
        raise ValueError("bad arguments")
    if not x.is_floating_point():
        raise TypeError("x must be floating point")
    x = x.detach().clone().requires_grad_(True)
    return torch.autograd.grad(f(x), x)[0]
