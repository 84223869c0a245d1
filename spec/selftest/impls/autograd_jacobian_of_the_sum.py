"""Wrong on purpose (dl-a1.q2b only): one backward pass of the sum of all outputs, its gradient
repeated as every row of the Jacobian."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import jacobian_autograd as _reference
from impl import network


def jacobian_autograd(x, weights):
    shape = _reference(x, weights).shape   # the reference's checks and output shape
    with torch.enable_grad():
        xs = torch.as_tensor(x).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(network(xs, weights).sum(), xs)
    return grad.unsqueeze(-2).expand(shape).clone()
