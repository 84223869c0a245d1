"""Wrong on purpose (dl-a1.q4e only): the discussion quotes the accuracy after the first epoch as
the final one."""

from types import SimpleNamespace

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import init_discussion as _reference


def init_discussion(results):
    first = {d: SimpleNamespace(before=r.before, after=r.after, train_accuracy=r.train_accuracy[:1],
                                test_accuracy=r.test_accuracy[:1]) for d, r in results.items()}
    return _reference(first)
