"""Wrong on purpose (dl-a1.q4a only): the hidden layers held in an nn.Sequential, where the sheet
asks for an nn.ModuleList (the net computes the same function)."""

from torch import nn

import impl.initialization as _init
from impl import *  # noqa: F403 - the reference, with one function broken below


class _SequentialModel(_init.MyModel):
    def __init__(self, depth):
        super().__init__(depth)
        self.hidden = nn.Sequential(*self.hidden)


def my_model(depth):
    return _SequentialModel(depth)
