"""Wrong on purpose (ex08.vanishing-bound only): the bound written as (3/4)^L, without |x_1| / 3."""

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import vanishing_bound as _reference


def vanishing_bound(L, x):
    _reference(L, x)  # its input checks
    return 0.75**L
