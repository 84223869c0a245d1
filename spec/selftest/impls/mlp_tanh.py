"""Wrong on purpose (ex08.mlp only): the MLP's non-linearity is tanh, not sigmoid or ReLU."""

import torch

import impl.linear as _linear
from impl import *  # noqa: F403 - the reference, with one class broken below


class MLP(_linear.MLP):
    def __init__(self, hidden_size):
        super().__init__(hidden_size)
        self.activation = torch.nn.Tanh()
