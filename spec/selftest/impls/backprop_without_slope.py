"""Wrong on purpose (a7.backprop-eqs only): equations (1)-(2) without the sigma'(s) factor."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import backprop_sigmoid_mlp as _reference
from impl import log_loss_output_gradient


def backprop_sigmoid_mlp(x, y, weights):
    _reference(x, y, weights)  # the reference's input checks
    units = [x]
    for w in weights:
        units.append(torch.sigmoid(w @ units[-1]))
    upstream = log_loss_output_gradient(units[-1], float(y))
    grads = [None] * len(weights)
    for k in range(len(weights) - 1, -1, -1):
        grads[k] = upstream[:, None] * units[k][None, :]
        upstream = weights[k].T @ upstream
    return grads
