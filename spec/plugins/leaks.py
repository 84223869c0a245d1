"""What a test leaves behind: non-daemon threads and child processes (the spec's autouse guard here,
``leak_guard``, fails a test that leaves either), and the run's hang timeout (``--hang-timeout``: a
process in which no test makes progress for that long dumps its stacks and exits 1).

A non-daemon thread keeps its process alive at exit (the interpreter joins it), a live child process
outlives the test and competes for the cores, and a zombie child is one nobody waited for; under
xdist either turns into a worker that does not exit or a run that slows down at random. The guard
compares a snapshot taken before the test with one taken after its fixtures are torn down.

Child processes are read from ``/proc/self/task/*/children`` (Linux); elsewhere from psutil when it is
installed, else they are not checked.
"""

from __future__ import annotations

import faulthandler
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

import pytest

#: how long a test's thread or child may take to finish after the test before it counts as left behind
GRACE_S = 1.0
#: helpers that multiprocessing starts once per process on first use and stops itself at exit: not leaks
PROCESS_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
#: pids of the spec's own long-lived children (isolated mode's worker, restarted inside a test after a
#: crash): the judge manages them, they are no test's leak
OWNED: set[int] = set()


@dataclass(frozen=True)
class Child:
    pid: int
    state: str      # the /proc state letter: R, S, D, ... or Z (a zombie: exited, never waited for)
    command: str

    def describe(self) -> str:
        what = "a zombie (exited, never waited for)" if self.state == "Z" else "still running"
        return f"pid {self.pid} ({self.command or '?'}): {what}"


def _proc_children() -> list[int] | None:
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    pids: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as handle:
                pids.extend(int(pid) for pid in handle.read().split())
        except (OSError, ValueError):
            continue   # a thread that ended meanwhile, or a kernel without the children file
    return pids


def _describe_proc(pid: int) -> Child | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            stat = handle.read()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None   # gone (reaped) meanwhile
    name = stat[stat.find("(") + 1:stat.rfind(")")]
    state = stat[stat.rfind(")") + 2:][:1]
    return Child(pid, state, command[:200] or f"[{name}]")


def _psutil_child(pid: int) -> Child | None:
    import psutil

    try:
        process = psutil.Process(pid)
        state = "Z" if process.status() == psutil.STATUS_ZOMBIE else "R"
        return Child(pid, state, " ".join(process.cmdline())[:200])
    except psutil.Error:
        return None


def child_pids() -> set[int] | None:
    """The pids of this process's child processes, or None where they cannot be listed."""
    pids = _proc_children()
    if pids is not None:
        return set(pids)
    try:
        import psutil
    except ImportError:
        return None
    return {process.pid for process in psutil.Process().children()}


def describe(pid: int) -> Child | None:
    """A child process's state and command line; None where it is gone (reaped meanwhile)."""
    return _describe_proc(pid) if os.path.isdir("/proc/self/task") else _psutil_child(pid)


def children() -> dict[int, Child] | None:
    """This process's child processes by pid, or None where they cannot be listed."""
    pids = child_pids()
    if pids is None:
        return None
    found = (describe(pid) for pid in sorted(pids))
    return {child.pid: child for child in found if child is not None}


@dataclass
class Snapshot:
    threads: set[int]
    children: set[int] | None

    @classmethod
    def take(cls) -> Snapshot:
        """The threads and children there are now (pids only: a test's guard describes only the new ones,
        two /proc reads each, where describing all took 8% of a grade's judge time in its tests)."""
        return cls({thread.ident for thread in threading.enumerate()}, child_pids())

    def left_behind(self, grace: float = GRACE_S) -> tuple[list[threading.Thread], list[Child]]:
        """(new non-daemon threads still alive, new children still running or unreaped), after
        giving them up to ``grace`` seconds to finish."""
        deadline = time.monotonic() + grace
        while True:
            threads = [t for t in threading.enumerate()
                       if t.ident not in self.threads and not t.daemon and t.is_alive()
                       and t is not threading.current_thread()]
            pids = child_pids() if self.children is not None else set()
            new = sorted(pid for pid in (pids or ()) if pid not in self.children and pid not in OWNED)
            kids = [c for c in map(describe, new) if c is not None and not any(h in c.command for h in PROCESS_HELPERS)]
            if not (threads or kids) or time.monotonic() >= deadline:
                return threads, kids
            for thread in threads:
                thread.join(max(0.0, min(0.1, deadline - time.monotonic())))
            if not threads:
                time.sleep(0.05)


def report(threads: list[threading.Thread], kids: list[Child]) -> str:
    lines = ["the test left behind what outlives it (it would keep an xdist worker or the run from ending):"]
    lines += [f"  non-daemon thread {t.name!r} (target {_target(t)}), still alive: stop and join it, "
              f"or start it with daemon=True" for t in threads]
    lines += [f"  child process {c.describe()}: wait for it (subprocess.run, Popen.wait/communicate); "
              f"the guard {'reaped' if c.state == 'Z' else 'killed and reaped'} it" for c in kids]
    return "\n".join(lines)


def _target(thread: threading.Thread) -> str:
    target = getattr(thread, "_target", None)
    if target is None:
        return type(thread).__qualname__ + ".run"
    return getattr(target, "__qualname__", repr(target))


def reap(kids: list[Child]) -> None:
    """Kill and wait for leaked children of this process, so they neither run on nor stay zombies."""
    for child in kids:
        try:
            if child.state != "Z":
                os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
        except (ProcessLookupError, ChildProcessError, PermissionError):
            continue


# ---------------------------------------------------------------------------- hang timeout
class HangWatchdog:
    """Past ``seconds`` without progress, dump every thread's stack to stderr and end this process with
    exit code 1; every :meth:`progress` starts the wait afresh. So a run that keeps finishing tests is
    never ended however slow the machine makes it, while one stuck in one place is.

    faulthandler's watchdog is a C thread that needs no GIL, so it also ends a process stuck in C code
    that holds the GIL (where pytest-timeout's thread and signal methods never get to run) and one
    stuck at exit. The dump goes to a copy of stderr taken now, outside pytest's output capture. Only
    one such watchdog exists per process: pytest's ``faulthandler_timeout`` would replace it."""

    #: progress closer than this to the last re-arm does not re-arm (each re-arm starts a C thread)
    EVERY_S = 0.5

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.file = os.fdopen(os.dup(sys.__stderr__.fileno()), "w")
        self.armed_at = -math.inf

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.armed_at >= self.EVERY_S:
            faulthandler.dump_traceback_later(self.seconds, exit=True, file=self.file)
            self.armed_at = now

    def stop(self) -> None:
        faulthandler.cancel_dump_traceback_later()


#: this process's watchdog (faulthandler has one per process), armed by --hang-timeout
_watchdog: HangWatchdog | None = None


def pytest_addoption(parser):
    group = parser.getgroup("spec", "course spec")
    group.addoption("--hang-timeout", type=float, default=None, metavar="SECONDS",
                    help="a process of the run (the xdist controller or a worker) in which no test makes "
                         "progress for SECONDS dumps its threads' stacks to stderr and exits 1: a hang "
                         "becomes a failure, a slow run that keeps finishing tests never does")


def pytest_configure(config):
    global _watchdog
    seconds = config.getoption("hang_timeout")
    if seconds is None:
        return
    if seconds <= 0:
        raise pytest.UsageError(f"--hang-timeout {seconds:g}: give a positive number of seconds")
    if float(config.getini("faulthandler_timeout") or 0) > 0:
        raise pytest.UsageError("--hang-timeout and faulthandler_timeout both need faulthandler's "
                                "one watchdog: use one of them")
    # an xdist controller waits a little longer than its workers: a stuck worker's stacks come first,
    # and the report of its crash (progress for the controller) before the controller's own deadline
    controller = not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))
    _watchdog = HangWatchdog(seconds + (min(30.0, max(2.0, seconds / 10)) if controller else 0.0))
    _watchdog.progress(force=True)


def _progress(force: bool = False) -> None:
    if _watchdog is not None:
        _watchdog.progress(force)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    _progress(force=True)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodeready(node):
    """xdist's controller: a worker that has started is progress (on a busy machine a worker's start,
    importing torch & co, takes a while)."""
    _progress(force=True)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """xdist's controller: a worker that has collected is progress."""
    _progress(force=True)


def pytest_runtest_logreport(report):
    """Each phase of each test that finishes is progress (in xdist's controller: reported by any worker)."""
    _progress()


def pytest_runtest_logfinish(nodeid, location):
    _progress()


#: the least time a process is given to write its summary and exit once its tests are done (the
#: interpreter's teardown with torch loaded takes seconds on a busy machine; a hang there still ends)
EXIT_GRACE_S = 60.0


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    _progress(force=True)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """The tests are done: the process now has max(SECONDS, EXIT_GRACE_S) to exit."""
    if _watchdog is not None:
        faulthandler.dump_traceback_later(max(_watchdog.seconds, EXIT_GRACE_S), exit=True, file=_watchdog.file)


def pytest_report_header(config):
    seconds = config.getoption("hang_timeout")
    if seconds is not None:
        return [f"hang timeout: {seconds:g} s without a test making progress (then every process dumps its "
                f"stacks, 'Timeout (h:mm:ss)!', and exits 1; a slow run that progresses goes on)"]
    return []


@pytest.fixture(autouse=True)
def leak_guard():
    """Fail the test (at teardown) when it leaves a new non-daemon thread alive or a child process
    running or unreaped: either can keep an xdist worker from exiting or slow the rest of the run.
    Leaked children are killed and reaped. Fixtures of a wider scope are set up before and torn down
    after this check, so their threads and processes are theirs to manage."""
    before = Snapshot.take()
    yield
    threads, kids = before.left_behind()
    if threads or kids:
        reap(kids)
        pytest.fail(report(threads, kids), pytrace=False)
