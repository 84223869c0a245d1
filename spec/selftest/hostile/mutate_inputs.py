"""Hostile (expected values steered through the arguments): no sigmoid at all. It zeroes the caller's
tensor in place and answers sigma(0) and sigma'(0), hoping the spec computes its expected values from
the zeroed input. In isolated mode the spec's arguments are never overwritten: it earns nothing."""

import torch
from _nothing import *  # noqa: F403


def sigmoid_and_derivative(x=None):
    if x is None:
        x = torch.linspace(-5, 5, 11, dtype=torch.float64)
    with torch.no_grad():
        x.zero_()
    return x, torch.full_like(x, 0.5), torch.full_like(x, 0.25)


def trace_square_gradient(A):
    with torch.no_grad():
        A.zero_()
    return torch.zeros_like(A)


def derivative(f, x):
    x = torch.as_tensor(x)
    with torch.no_grad():
        x.zero_()
    return torch.zeros_like(x)
