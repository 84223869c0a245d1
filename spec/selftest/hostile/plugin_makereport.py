"""Hostile (forged verdicts): finds pytest's config among the live objects and the calling frames and
registers a plugin whose makereport wrapper turns every failure into a pass; also shadows the records
writer's ``write`` to report passes."""

import gc
import sys

from _nothing import *  # noqa: F403


class _Pass:
    def pytest_runtest_makereport(self, item, call):
        return None

    try:
        import pytest

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_makereport(self, item, call):
            report = yield
            report.outcome = "passed"
            return report
    except ImportError:
        pass


def _attack():
    frames = []
    frame = sys._getframe()
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    for obj in gc.get_objects() + [f.f_locals.get("self") for f in frames]:
        kind = type(obj).__name__
        try:
            if kind == "Config":
                obj.pluginmanager.register(_Pass(), "always-pass")
            elif kind == "RecordsWriter":
                obj.write = lambda **event: None
        except Exception:
            continue


_attack()


def trace_square_gradient(A):
    _attack()
    return A
