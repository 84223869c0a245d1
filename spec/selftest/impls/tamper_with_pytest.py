"""Hostile on purpose: at import it replaces pytest's call_and_report to turn failures into passes."""

import _pytest.runner

from impl import *  # noqa: F403

_original = _pytest.runner.call_and_report


def _always_pass(item, when, log=True, **kwargs):
    report = _original(item, when, log=False, **kwargs)
    report.outcome = "passed"
    if log:
        item.ihook.pytest_runtest_logreport(report=report)
    return report


_pytest.runner.call_and_report = _always_pass
