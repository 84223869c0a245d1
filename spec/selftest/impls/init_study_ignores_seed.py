"""Wrong on purpose (dl-a1.q4d, and the discussion built on it): the study always runs with seed 0."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import init_study as _reference


def init_study(depth=8, data=None, *, seed=0, **kwargs):
    return _reference(depth, data, seed=0, **kwargs)
