"""The judge's pytest plugin: isolated mode (``--isolate``, always on under ``python -m spec.grade``),
where the implementation runs in a sandboxed worker process (grader/judge/remote.py) and this process,
which decides every verdict, never imports it; and the records (``--records``): one JSON line per
collected test, test start and test result, which the grade (grader/judge/grade.py) reads from outside
the pytest process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from grader.sandboxed import implementation
from spec.plugins.selection import LOST, _aliases, _exercise_ids, _tier
from spec.plugins.summary import _failure_text, _property, counted_outcome

WORKER = pytest.StashKey[object]()  # isolated mode: the worker process that runs the implementation
LAUNCHED = pytest.StashKey[object]()   # a grade's worker, launched before collection (grader/judge/remote.py)


def pytest_addoption(parser):
    group = parser.getgroup("spec", "course spec")
    group.addoption("--records", default=None, metavar="PATH",
                    help="write one JSON line per collected test, test start and test result (for the grader)")
    group.addoption("--isolate", action="store_true", default=os.environ.get("SPEC_ISOLATE") == "1",
                    help="run the implementation in a separate, sandboxed worker process and reach it through a "
                         "data-only channel (grader/judge/remote.py; always on under python -m spec.grade; "
                         "$SPEC_ISOLATE=1)")
    group.addoption("--hide-reference", action="store_true", default=False,
                    help="isolated mode: hide the reference solutions (impl/) from the worker")
    group.addoption("--worker-dir", default=None, metavar="DIR",
                    help="isolated mode: the folder the worker may write (default: a fresh temporary folder)")
    group.addoption("--worker-cpu-limit", type=float, default=None, metavar="SECONDS",
                    help="isolated mode: a test fails when the submission's processes use more than SECONDS of "
                         "CPU time during it (the worker is ended); the judge's own time and a busy machine never "
                         "count (python -m spec.grade: its --timeout)")
    group.addoption("--worker-call-timeout", type=float, default=None, metavar="SECONDS",
                    help="isolated mode: a call the worker does not answer within SECONDS fails and the worker "
                         "is restarted (default: none beyond the test's own timeout)")


def pytest_configure(config):
    if config.getoption("isolate"):
        from grader.judge.sandbox import worker_cannot_write_the_judges_files
        from spec import runs

        if not worker_cannot_write_the_judges_files():   # a worker could write the cache of the spec's runs
            os.environ[runs.CACHE_ENV] = "off"
    from grader.judge import early

    if config.getoption("records") and not hasattr(config, "workerinput"):
        writer = RecordsWriter(config.getoption("records"), config)
        config.pluginmanager.register(writer, "records-writer")
        if config.getoption("isolate") and not config.getoption("collectonly"):
            # a grade's judge: the submission loads in its worker while this process collects the spec;
            # launched at this process's start where it began as python -m grader.judge.early, and with
            # the same arguments as computed here
            from grader.judge import remote

            arguments = _worker_arguments(config)
            if isinstance(arguments, dict):
                worker = early.take(arguments)
                launched_early = worker is not None
                if worker is None:
                    worker = remote.launch(**arguments)
                config.stash[LAUNCHED] = worker
                writer.write(event="worker", t=getattr(worker, "launched_wall", time.time()), early=launched_early,
                             judge=os.getpid())
    early.take(None)   # an early worker that was not taken is ended


def pytest_runtest_setup(item):
    if item.config.getoption("isolate"):
        from grader.judge.remote import CHANGED_INPUTS, FUNCTIONS

        CHANGED_INPUTS.clear()
        FUNCTIONS.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Isolated mode: the CPU seconds the submission's processes use from the test's setup to its
    teardown are the test's (the worker's watcher ends them past ``--worker-cpu-limit``)."""
    worker = item.config.stash.get(WORKER, None)
    if worker is not None:
        worker.begin_test()
    try:
        return (yield)
    finally:
        if worker is not None:
            worker.end_test()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    worker = item.config.stash.get(WORKER, None)
    if worker is not None and report.when == "call" and report.passed and worker.cpu_exceeded:
        # ended by the watcher while the judge was not waiting on it: the test fails all the same
        report.outcome, report.longrepr = "failed", f"{item.nodeid}: {worker.cpu_exceeded}"
        report.user_properties.append(("timed_out", True))
        if _tier(item) == "points":   # a robustness test costs nothing, and the exercise's tests go on
            lost = item.config.stash.setdefault(LOST, {})
            for eid in _exercise_ids(item):
                lost.setdefault(eid, "ended the submission's process or ran out of time")
    if item.config.getoption("isolate") and report.when == "call" and report.passed and _tier(item) == "robustness":
        from grader.judge.remote import CHANGED_INPUTS

        if CHANGED_INPUTS:   # isolated mode never copies such a change back: it is reported here
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid}: " + "; ".join(dict.fromkeys(CHANGED_INPUTS))
    if call.excinfo is not None and item.config.getoption("isolate") and report.failed:
        from grader.judge.remote import CpuLimitExceeded, WorkerCrashed

        # the judge's own verdict of time, never the submission's words: pytest-timeout's hang guard,
        # or the watcher's CPU limit (an exception of the judge's, raised in this process)
        timed_out = timed_out_by_the_judge(call.excinfo) or call.excinfo.errisinstance(CpuLimitExceeded)
        if timed_out:
            report.user_properties.append(("timed_out", True))
        # all-or-nothing: a points test that ended the worker or ran out of time loses its exercise, whose
        # other tests are then not run; a robustness test costs nothing, and the exercise's tests go on
        if (call.excinfo.errisinstance(WorkerCrashed) or timed_out) and _tier(item) == "points":
            lost = item.config.stash.setdefault(LOST, {})
            for eid in _exercise_ids(item):
                lost.setdefault(eid, "ended the submission's process or ran out of time")
    return report


def timed_out_by_the_judge(excinfo) -> bool:
    """Whether the test was stopped by the judge's own per-test timeout (pytest-timeout's failure, raised
    in this process), never by what the submission raised: its exceptions reach the judge as
    SubmissionError or a builtin exception, whatever their text."""
    return excinfo.type is pytest.fail.Exception and str(excinfo.value).startswith("Timeout")


class RecordsWriter:
    """One JSON object per line, flushed at once: the tests collected (with their exercises), each
    test's start and its result. A grader outside the pytest process reads this file, so a run that
    crashes still tells which tests finished and which one was running."""

    def __init__(self, path, config=None):
        self.handle = open(path, "a", encoding="utf-8")  # open for the whole session
        self.config = config
        self.pending: dict[str, dict] = {}
        self.timed_out: set[str] = set()   # exercises lost to a timeout: their other tests are skipped
        # the judge's own CPU seconds (all its threads) spent in tests, from each test's start to its result
        self.tests_cpu, self.test_began = 0.0, None

    def pytest_runtest_setup(self, item):
        lost = self.timed_out & set(_exercise_ids(item))
        if lost:
            pytest.skip(f"not run: an earlier test of {', '.join(sorted(lost))} ran out of time")

    def write(self, **event):
        event.setdefault("t", time.time())   # when: the grade's profile of where its seconds went
        self.handle.write(json.dumps(event) + "\n")
        self.handle.flush()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            self.write(event="collected", nodeid=item.nodeid, exercises=_property(item, "exercise"), tier=_tier(item))

    def pytest_runtest_logstart(self, nodeid):
        self.write(event="start", nodeid=nodeid)
        self.test_began = time.process_time()

    def pytest_runtest_logreport(self, report):
        record = self.pending.setdefault(report.nodeid, {"outcome": "passed", "message": "", "counted": False,
                                                         "tier": _property(report, "tier", ["points"])[0]})
        record["counted"] = record["counted"] or counted_outcome(report) is not None
        if report.failed and record["outcome"] != "failed":
            record.update(outcome="failed", message=_failure_text(report))
            if _property(report, "timed_out") and record["tier"] == "points":
                self.timed_out.update(_property(report, "exercise"))
        elif report.skipped and record["outcome"] == "passed" and report.when != "teardown":
            record.update(outcome="skipped", message=_failure_text(report))
        if report.when == "teardown":
            worker = self.config.stash.get(WORKER, None) if self.config is not None else None
            if worker is not None:   # the submission's CPU seconds in this test (its limit's measure)
                self.pending[report.nodeid]["cpu"] = round(worker.test_cpu_used(), 2)
            self.write(event="result", nodeid=report.nodeid, **self.pending.pop(report.nodeid))
            if self.test_began is not None:
                self.tests_cpu += time.process_time() - self.test_began
                self.test_began = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, exitstatus):
        self.exitstatus = int(exitstatus)
        # what follows is the process's exit; with the judge's CPU seconds, in all and in the tests, and its
        # worker's from each launch to ready
        worker = self.config.stash.get(WORKER, None) if self.config is not None else None
        load_cpu = {"load_cpu": round(worker.load_cpu_used, 3)} if worker is not None else {}
        self.write(event="finished", exitstatus=self.exitstatus, cpu=round(time.process_time(), 3),
                   tests_cpu=round(self.tests_cpu, 3), **load_cpu)

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config):
        self.handle.close()
        if getattr(self, "exitstatus", None) is not None and config.getoption("isolate"):
            # a grade's judge: everything is recorded, so it ends its worker and exits here, first: the other
            # plugins' unconfigure (pytest's full garbage collection for unraisable exceptions: 0.2 s with
            # torch & co loaded) and the interpreter's teardown decide nothing, and cost a second
            worker = config.stash.get(WORKER, None)
            if worker is None:   # launched at configure, never started: no test called the submission
                worker = config.stash.get(LAUNCHED, None)
            if worker is not None:
                worker.close()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(self.exitstatus)


def _start_worker(config) -> tuple:
    """Isolated mode: the implementation runs in a sandboxed worker process (grader/judge/remote.py); this
    process, which computes every verdict, never imports it."""
    import cloudpickle

    from grader.judge import remote, sandbox

    launched = config.stash.get(LAUNCHED, None)   # launched at configure, where a grade's judge could
    if launched is None:
        arguments = _worker_arguments(config)
        if isinstance(arguments, str):
            return None, arguments
        launched = remote.launch(**arguments)
    for name, module in list(sys.modules.items()):
        # the spec's functions (test helpers, loops, asserts) go over by copy: the sandbox holds none of
        # spec/ but its data module (grader/judge/sandbox.py), which is imported there by name
        if name.startswith("spec.") and name not in sandbox.COURSE_MODULES and not name.startswith("spec.plugins"):
            cloudpickle.register_pickle_by_value(module)
    _while_it_loads(launched)
    loaded, error, worker = remote.finish_start(launched)
    target = implementation.target_from(config.getoption("impl"))
    worker.isolation += "; " + limits_text(worker.test_cpu_seconds, _wall_timeout(config), worker.has_cgroup)
    config.stash[WORKER] = worker
    if loaded is not None:
        loaded._label = target
    writer = config.pluginmanager.get_plugin("records-writer")
    if writer is not None:
        writer.write(event="isolation", what=worker.isolation)
        if worker.notebook is not None:
            writer.write(event="notebook", **worker.notebook.as_dict())
    return loaded, error


#: what a judge imports at its first use anyway, in this order: torch._dynamo, which the first optimizer a
#: test builds imports (0.7 to 1 s), and what the spec's data sets import (spec/data.py: 0.8 s)
WHILE_LOADING = ("torch._dynamo", "sklearn.datasets", "sklearn.model_selection")


def _while_it_loads(worker) -> None:
    """What this process would import at its first tests anyway (:data:`WHILE_LOADING`), imported while
    the worker still loads the submission (a notebook's cells), where this process has nothing else to
    do and a core of its own, each only if the worker is still loading. A judge forked from a warm process
    (grader/judge/warm.py) has them already; on one core they would take the worker's time."""
    if len(os.sched_getaffinity(0)) < 2:
        return
    import importlib
    import select

    for name in WHILE_LOADING:
        if name in sys.modules:
            continue
        try:
            loading = not select.select([worker.receive_fd], [], [], 0)[0]
        except (OSError, ValueError, AttributeError):   # no channel: the launch failed, finish_start says why
            return
        if not loading:
            return
        importlib.import_module(name)


def _worker_arguments(config) -> dict | str:
    """The worker's arguments for :func:`grader.judge.remote.launch`, or why there can be none."""
    target = implementation.target_from(config.getoption("impl"))
    try:
        _aliases(config)   # a malformed alias file or a missing path: the same one line as in process
        path = implementation._as_path(target)
    except implementation.ImplementationNotFound as exc:
        return str(exc)
    alias = config.getoption("alias") or os.environ.get(implementation.ALIAS_ENV_VAR)
    return {"target": str(path) if path is not None else target,
            "alias": str(Path(alias).resolve()) if alias else None,
            "notebook_budget": config.getoption("notebook_budget"),
            "hide_reference": config.getoption("hide_reference"),
            "scratch": Path(config.getoption("worker_dir")) if config.getoption("worker_dir") else None,
            "call_timeout": config.getoption("worker_call_timeout"),
            "test_cpu_seconds": config.getoption("worker_cpu_limit")}


def _wall_timeout(config) -> float | None:
    """pytest-timeout's per-test timeout, where it is on (the wall-clock hang guard)."""
    try:
        value = config.getoption("timeout")
    except ValueError:
        return None
    return float(value) if value else None


def limits_text(cpu: float | None, wall: float | None, cgroup: bool) -> str:
    """The grade's words on what limits a test: the submission's own CPU time, the wall clock a hang."""
    counted = ("the CPU time of its cgroup" if cgroup else "the CPU time of the worker's process tree, its "
               "waited-for children included")
    cpu_text = (f"each test may use {cpu:g} CPU seconds of the submission's processes ({counted}), past which "
                "the test fails and the worker is ended" if cpu is not None else
                "no CPU limit per test")
    wall_text = (f"the wall clock only bounds a hang, at {wall:g} s a test" if wall is not None
                 else "no wall-clock bound per test")
    return (f"limits: {cpu_text}; the judge's own time (expected values, the spec's reference runs) and a busy "
            f"machine never count against the submission; {wall_text}")


def pytest_unconfigure(config):
    worker = config.stash.get(WORKER, None)
    if worker is not None:
        worker.close()
