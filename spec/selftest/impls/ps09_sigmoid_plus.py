"""Wrong on purpose (ps09.1-2 only): sigmoid' written as sigma(1 + sigma)."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import sigmoid


def sigmoid_and_derivative(x=None):
    import torch

    x = torch.arange(-5.0, 5.0) if x is None else x
    s = sigmoid(x)
    return x, s, s * (1 + s)
