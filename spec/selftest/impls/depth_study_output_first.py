"""Wrong on purpose (a7.depth-study only): the per-layer gradient means listed output side first."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import depth_study as _reference


def depth_study(*args, **kwargs):
    return _reference(*args, **kwargs)[::-1]
