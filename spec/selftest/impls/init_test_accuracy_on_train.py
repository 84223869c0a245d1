"""Wrong on purpose (dl-a1.q4d): the "test accuracy" after every epoch measured on the training
split."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import init_study as _reference
from spec.data import Split, digits_784


def init_study(depth=8, data=None, *, seed=0, **kwargs):
    data = data or digits_784(seed=seed)
    return _reference(depth, Split(data.x_train, data.y_train, data.x_train, data.y_train), seed=seed, **kwargs)
