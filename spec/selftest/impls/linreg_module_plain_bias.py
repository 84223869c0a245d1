"""Wrong on purpose (ex08.linreg-module only): the bias declared as a plain tensor, not an
nn.Parameter, so the optimiser never sees it and it stays at 0."""

import torch
from torch import nn

from impl import *  # noqa: F403 - the reference, with one class broken below


class NNLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.b = torch.zeros(1)

    def forward(self, x):
        return x * self.w + self.b
