"""Wrong on purpose (moons.manual-backward, and the training built on it): dL/dz2 taken as
e_y - p instead of p - e_y."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import manual_backward as _reference


def manual_backward(x, y, params, cache):
    return {name: -grad for name, grad in _reference(x, y, params, cache).items()}
