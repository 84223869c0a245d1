"""Wrong on purpose (ps09.1-5 only): the sheet's pitfall, y_prime = x.grad without a copy, so
zeroing x.grad for the second derivative wipes the first."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import sigmoid


def sigmoid_derivatives(x=0.173):
    x = torch.as_tensor(x, dtype=torch.float64).clone().requires_grad_(True)
    s = sigmoid(x)
    s.sum().backward(create_graph=True)
    first = x.grad  # a reference, not a copy
    second_input = first.clone()
    x.grad.zero_()
    second_input.sum().backward()
    return s.detach(), first.detach(), x.grad.detach()
