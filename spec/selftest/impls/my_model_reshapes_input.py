"""Wrong on purpose (dl-a1.q4a only): the net reshapes any input to (-1, 784) instead of refusing
what is not a batch of 784 features."""

import impl.initialization as _init
from impl import *  # noqa: F403 - the reference, with one function broken below


class _Reshaping(_init.MyModel):
    def forward(self, x):
        return super().forward(x.reshape(-1, 784))


def my_model(depth):
    model = _init.my_model(depth)
    model.__class__ = _Reshaping
    return model
