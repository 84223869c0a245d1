"""Wrong on purpose (moons.baseline): the recorded "test" accuracy measured on the training data."""

import impl.moons as _moons
from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import accuracy as _accuracy
from impl import train_moons as _reference


def train_moons(model, data=None, **kwargs):
    history = _reference(model, data, **kwargs)
    data = data or _moons.two_moons(seed=kwargs.get("seed", 0))
    history.test_accuracy = _accuracy(model, data.x_train, data.y_train)
    return history
