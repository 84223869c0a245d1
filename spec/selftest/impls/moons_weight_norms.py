"""Wrong on purpose (moons.grad-norms only): records each hidden layer's weight norm, not the norm
of its weight gradient."""

import torch

import impl.moons as _moons
from impl import *  # noqa: F403 - the reference, with one function broken below


def train_moons(model, data=None, *, steps=300, lr=0.01, seed=0):
    history = _moons.train_moons(model, data, steps=steps, lr=lr, seed=seed)
    torch.manual_seed(seed)
    history.grad_norms = [[layer.weight.norm().item() for layer in model.hidden_layers]] * steps
    return history
