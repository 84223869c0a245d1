"""Grade an implementation of the course's interface: points per exercise and per sheet.

    python -m spec.grade PATH [--out DIR] [--exercise ID ...] [--timeout SECONDS] [--slow]
    python -m spec.grade CLASS_FOLDER --out DIR [--jobs N] [--force]     (a whole class: grader/judge/batch.py)
    python -m spec.grade PATH --format gradescope                        (results.json: grader/judge/gradescope.py)

PATH is a package folder, a single .py file or a Jupyter notebook (.ipynb; cells tagged
``exploration`` or starting with ``# exploration`` are not run). Three processes:

* this one (the grader) copies the submission into a scratch folder, starts the judge, reads its
  records, and writes the reports once the judge and everything under it have ended;
* the judge, ``pytest --isolate`` on the spec, computes every verdict and never imports the
  submission; it writes the records file line by line;
* the worker (grader/sandboxed/worker.py), started by the judge in a sandbox (grader/judge/sandbox.py: bubblewrap where
  it runs, rlimits, no network), imports the submission and runs its code on request, answering with
  data only (grader/judge/remote.py, grader/sandboxed/channel.py).

So a wrong name, an import error or an exception costs only the tests (and so the exercises) that
touch it. A test's limit is the submission's own CPU time: ``--timeout`` CPU seconds of the worker and
all it starts during the test (its cgroup's count, else its process tree's), past which the judge's
watcher ends the worker, the test fails ("used N CPU seconds during this test, over the limit of M")
and the worker is started afresh; the judge's own time (its expected values, the spec's reference
runs) and a busy machine never count. The wall clock only bounds a hang: pytest-timeout in the judge,
where the submission cannot reach the alarm, at 10 x the limit (a submission that sleeps or waits);
a crash of the worker (os._exit, a segfault) fails the test that was waiting on it; a watchdog here
ends a judge whose test outlives 1.5 x that bound + 30 s, and the whole grade has a time budget.

Points are all-or-nothing per exercise: an exercise earns its catalogue points when at least one of
its tests passed and none failed (skipped tests, e.g. CUDA-only ones on a machine without CUDA, do
not count against it). The points come from the catalogue loaded here, outside the graded process.
Writes grade.json, grade.md and junit.xml to the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from grader.judge.escape import md_block, md_code, printable, xml_text
from grader.sandboxed.notebook import WALL_FACTOR
from grader.sandboxed.notebook import finite_seconds as _seconds
from spec import runs as spec_runs
from spec.catalogue import load
from spec.runs import CACHE_ENV, RUNS_DIR

ROOT = Path(__file__).resolve().parents[2]
NOT_GRADED = ("spec/selftest", "spec/tools", "spec/bench")
EXIT_GRACE_S = 20   # seconds a spec process may take to exit after its session has finished


def graded_paths(selection) -> list[str]:
    """The topic modules that hold the selected exercises' tests (collecting only those saves the
    import of the others)."""
    catalogue = load()
    return sorted({f"spec/test_{catalogue[eid].topic}.py" for eid in selection})


@dataclass
class TestResult:
    nodeid: str
    exercises: list[str]
    outcome: str = "not run"     # passed | failed | skipped | crashed | not run
    message: str = ""
    seconds: float = 0.0
    cpu: float | None = None     # CPU seconds the submission's processes used in this test (its limit's measure)
    tier: str = "points"         # points | robustness (reported apart, no points)
    counted: bool = True         # False: the test never reached the submission (a check of the spec itself)


@dataclass
class Grade:
    target: str
    tests: dict[str, TestResult] = field(default_factory=dict)
    error: str = ""              # a problem with the submission as a whole
    tampered: list[str] = field(default_factory=list)
    runs: int = 0
    notebook: dict | None = None  # the cell-by-cell run of a notebook submission
    isolation: str = ""           # what shielded the grader from the submission
    selection: tuple = ()
    left_out: list[str] = field(default_factory=list)   # files of the submission's folder not staged, and why
    limits: dict = field(default_factory=dict)   # per test: the submission's CPU seconds, the wall-clock hang guard
    profile: dict = field(default_factory=dict)  # where the grade's seconds went (see profile())

    def exercise_rows(self) -> list[dict]:
        catalogue = load()
        by_exercise: dict[str, list[TestResult]] = {e.id: [] for e in catalogue.exercises}
        robust: dict[str, list[TestResult]] = {e.id: [] for e in catalogue.exercises}
        for test in self.tests.values():
            for exercise_id in test.exercises:
                if test.tier == "robustness":
                    robust.setdefault(exercise_id, []).append(test)
                elif test.counted or test.outcome in ("crashed", "not run"):
                    by_exercise.setdefault(exercise_id, []).append(test)
        rows = []
        for exercise in catalogue.exercises:
            if not _selected(exercise.id, self.selection):
                continue
            tests = by_exercise[exercise.id]
            outcomes = [t.outcome for t in tests]
            if exercise.fully_manual:
                status = "by hand"
            elif not tests:
                status = "not graded"
            elif self.tampered:
                status = "failed"
            elif any(o in ("failed", "crashed", "not run") for o in outcomes):
                status = "failed"
            elif "passed" in outcomes:
                status = "passed"
            else:
                status = "skipped"
            failures = [{"test": t.nodeid, "outcome": t.outcome, "message": t.message}
                        for t in tests if t.outcome in ("failed", "crashed", "not run")]
            quality = robust[exercise.id]
            rows.append({"id": exercise.id, "sheet": exercise.sheet, "title": exercise.title,
                         "points": exercise.auto_points, "earned": exercise.auto_points if status == "passed" else 0,
                         "manual_points": exercise.manual_points, "status": status, "tests": len(tests),
                         "passed": outcomes.count("passed"), "failures": failures,
                         "robustness": {"passed": sum(t.outcome == "passed" for t in quality),
                                        "failed": [{"test": t.nodeid, "message": t.message} for t in quality
                                                   if t.outcome in ("failed", "crashed")]},
                         "manual": ({"question": exercise.manual, "answer": exercise.answer}
                                    if exercise.manual_points else None)})
        return rows

    def cpu_summary(self) -> dict:
        """The per-test limits and the most CPU time the submission used in one test."""
        measured = [t for t in self.tests.values() if t.cpu is not None]
        most = max(measured, key=lambda t: t.cpu, default=None)
        return {**self.limits, "most_cpu_seconds": most.cpu if most else None,
                "most_cpu_test": most.nodeid if most else None}

    def as_dict(self) -> dict:
        rows = self.exercise_rows()
        sheets = {}
        for row in rows:
            if row["status"] == "not graded":
                continue
            sheet = sheets.setdefault(row["sheet"], {"points": 0, "earned": 0, "manual_points": 0,
                                                     "robustness": {"passed": 0, "failed": 0}, "exercises": []})
            sheet["points"] += row["points"]
            sheet["earned"] += row["earned"]
            sheet["manual_points"] += row["manual_points"]
            sheet["robustness"]["passed"] += row["robustness"]["passed"]
            sheet["robustness"]["failed"] += len(row["robustness"]["failed"])
            sheet["exercises"].append(row)
        total = lambda key: sum(s[key] for s in sheets.values())
        return {"target": self.target, "error": self.error, "tampered": self.tampered, "runs": self.runs,
                "isolation": self.isolation, "left_out": self.left_out, "limits": self.cpu_summary(),
                "profile": self.profile,
                "earned": total("earned"), "points": total("points"), "manual_points": total("manual_points"),
                "robustness": {k: sum(s["robustness"][k] for s in sheets.values()) for k in ("passed", "failed")},
                "notebook": self.notebook, "sheets": sheets}


BUDGET_S = 1800.0              # seconds for a whole grade, every restart included
JUDGE_MEMORY = 8 * 2**30     # address space of the judge: what a reply makes it allocate stays bounded
FILE_LIMIT = 64 * 2**20       # bytes of any file the spec's child writes, its log included
STAGE_BYTES = 200 * 2**20     # bytes of a submission's own files staged (the notebook, helper files, data)
STAGE_FILES = 2000            # entries (files and folders) of a submission's own folder staged
STAGE_DEPTH = 32              # folders nested in a submission's own folder
SKIPPED_IN_COPY = (".git", "__pycache__", ".ipynb_checkpoints", ".venv", ".tox")


def _copy_alias(path, folder: Path) -> Path:
    """The alias file, copied where the sandboxed spec can read it whatever its original place."""
    import shutil

    return Path(shutil.copy2(path, folder / f"aliases-{Path(path).name}"))


class StagingError(Exception):
    """The submission cannot be staged as its own files (a link, a special file, too large)."""


def _copy_file(source: Path, target: Path) -> None:
    """Copy one regular file, never through a link (O_NOFOLLOW: a link swapped in meanwhile fails)."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as reading, open(target, "xb") as writing:
        shutil.copyfileobj(reading, writing)


class _Stager:
    """Copies a submission's own files into the scratch folder: regular files and folders only, never
    following a link, folders at most STAGE_DEPTH deep, up to STAGE_BYTES and STAGE_FILES entries (files
    and folders); says what it left out. (A file with two names, a hard link, is copied: in a class, a
    file that two students' entries share is flagged by the batch, grader/judge/batch.py.)"""

    def __init__(self):
        self.bytes = self.files = 0
        self.left_out: list[str] = []

    def _entry(self) -> bool:
        """Count one more entry; False past STAGE_FILES."""
        self.files += 1
        return self.files <= STAGE_FILES

    def file(self, source: Path, target: Path, shown: str, *, required: bool = False) -> None:
        info = os.lstat(source)
        if not stat.S_ISREG(info.st_mode):
            what = "a link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
            if required:
                raise StagingError(f"{shown} is {what}: a submission is graded from the student's own files only")
            self.left_out.append(f"{shown} ({what})")
            return
        if self.bytes + info.st_size > STAGE_BYTES or not self._entry():
            if required:
                raise StagingError(f"{shown} is past the {STAGE_FILES} files and {STAGE_BYTES // 2**20} MiB a "
                                   "submission may have")
            self.left_out.append(f"{shown} (past the limit of {STAGE_FILES} files, {STAGE_BYTES // 2**20} MiB)")
            return
        self.bytes += info.st_size
        _copy_file(source, target)

    def tree(self, source: Path, target: Path, shown: str, *, first: Path | None = None, depth: int = 0) -> None:
        """Copy the folder ``source`` to ``target``; ``first`` (the submission itself) is copied first and
        must be staged."""
        if not stat.S_ISDIR(os.lstat(source).st_mode):
            raise StagingError(f"{shown} is a link or not a folder: a submission is graded from its own files only")
        if depth > STAGE_DEPTH or (depth and not self._entry()):
            if first is not None:
                raise StagingError(f"{shown} is nested deeper than {STAGE_DEPTH} folders or past {STAGE_FILES} entries")
            self.left_out.append(f"{shown} (folders nested deeper than {STAGE_DEPTH}, or past {STAGE_FILES} entries)")
            return
        target.mkdir(parents=True)
        if first is not None and first.parent == source and first.name not in SKIPPED_IN_COPY:
            if stat.S_ISDIR(os.lstat(first).st_mode):
                self.tree(first, target / first.name, f"{shown}/{first.name}", depth=depth + 1)
            else:
                self.file(first, target / first.name, f"{shown}/{first.name}", required=True)
        for entry in sorted(os.scandir(source), key=lambda e: e.name):
            if entry.name in SKIPPED_IN_COPY or (first is not None and entry.name == first.name):
                continue
            path, name = Path(entry.path), f"{shown}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                self.tree(path, target / entry.name, name, depth=depth + 1)
            else:
                self.file(path, target / entry.name, name)


def scratch_copy(path: Path, scratch: Path, *, own_folder: Path | None = None, helpers=()) -> tuple[Path, list[str]]:
    """Stage the submission in the scratch folder: exactly the student's own files, so that what its code
    writes stays out of the student's folder and nothing else is within its reach. Returns (the staged
    submission, what was left out). ``own_folder``: the student's own folder holding ``path`` (a class
    folder's entry, Gradescope's submission folder), staged whole; else a package folder is staged whole
    and a file alone, with the course's ``helpers`` (file names) from beside it. Never resolves a path
    and never follows a link: a link is left out (and is no submission); regular files and folders only,
    at most STAGE_FILES files and STAGE_BYTES bytes."""
    path = Path(path)
    stager = _Stager()
    if own_folder is not None:
        own_folder = Path(own_folder)
        if path.parent != own_folder:
            raise StagingError(f"{path.name} is not in the student's folder {own_folder.name}")
        stager.tree(own_folder, scratch, own_folder.name, first=path)
        return scratch / path.name, stager.left_out
    scratch.mkdir(parents=True)
    if stat.S_ISDIR(os.lstat(path).st_mode):
        stager.tree(path, scratch / path.name, path.name)
    else:
        stager.file(path, scratch / path.name, path.name, required=True)
        for name in helpers:
            helper = path.parent / name
            if os.sep in name or name in (".", "..") or not os.path.lexists(helper):
                stager.left_out.append(f"{name} (a helper the course names, not found beside {path.name})")
            else:
                stager.file(helper, scratch / name, name)
    return scratch / path.name, stager.left_out


def _selected(exercise_id: str, selection) -> bool:
    return not selection or any(exercise_id.startswith(pattern) for pattern in selection)


def _run_spec(target: str, records: Path, *, selection, only: Path | None, timeout: float, slow: bool,
              run_timeout: float, alias: str | None = None, notebook_budget: float | None = None,
              work: Path, hide_reference: bool, fork_judge: bool = False, runs: str | None = None,
              wall_timeout: float | None = None, paths: list[str] | None = None) -> int | str:
    """One run of the judge: pytest on the spec, in isolated mode (the submission in a sandboxed worker
    whose only writable folder is ``work``); a new interpreter, or with ``fork_judge`` a fork of this
    process (a warm one: grader/judge/warm.py). ``runs``: a folder where judges share the spec's own runs
    (spec/runs.py: pure functions of the spec, so a class's judges compute each once). ``timeout``: the
    CPU seconds of the submission per test; ``wall_timeout`` (default WALL_FACTOR x that): a test's hang guard;
    ``paths``: the topic modules to collect (default: all that hold the selection's tests)."""
    wall = wall_timeout if wall_timeout is not None else WALL_FACTOR * timeout
    # pytest, with the worker launched before pytest's plugins import torch (grader/judge/early.py)
    command = [sys.executable, "-m", "grader.judge.early", "--isolate", f"--worker-dir={work}",
               *(["--hide-reference"] if hide_reference else []), *(paths or graded_paths(selection)), "-q",
               "-p", "no:randomly",
               "-p", "no:xdist", "-p", "no:cacheprovider", "-p", "timeout", f"--timeout={wall:g}",
               # log capture: a judge's records carry no log lines (the worker's output is its own)
               "-p", "no:logging",
               "--timeout-method=signal", f"--worker-cpu-limit={timeout:g}",
               # a failure's record is its message (and the student's lines, in its notes): the log keeps
               # Python's own traceback, without pytest's source excerpts (which parse the module per failure)
               "--tb=native",
               f"--impl={target}", f"--records={records}",
               # all-or-nothing: once a points test of an exercise fails, its other tests decide nothing
               "--exercise-first-failure",
               "-m", "not benchmark" if slow else "not slow and not benchmark",
               *(f"--ignore={p}" for p in NOT_GRADED), *(f"--exercise={s}" for s in selection)]
    if alias:
        command.append(f"--alias={alias}")
    if notebook_budget is not None:
        command.append(f"--notebook-budget={notebook_budget}")
    if only is not None:
        command.append(f"--only-nodeids={only}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SPEC_"))}
    # the judge is trusted code: its bytecode (the spec's, assertion-rewritten) is cached as Python does,
    # where the checkout is writable; the worker never writes any (grader/judge/sandbox.py)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if runs is not None:
        env[RUNS_DIR] = runs
    env[CACHE_ENV] = runs_cache()   # before HOME and XDG_CACHE_HOME become the grade's scratch folders
    caches = records.parent / "caches"
    caches.mkdir(exist_ok=True)
    command.append(f"--basetemp={records.parent / f'pytest-{records.stem}'}")
    env.update(OMP_NUM_THREADS="1", HYPOTHESIS_PROFILE="ci", MPLBACKEND="Agg", MPLCONFIGDIR=str(caches / "mpl"),
               HYPOTHESIS_STORAGE_DIRECTORY=str(caches / "hypothesis"), XDG_CACHE_HOME=str(caches),
               HOME=str(caches), TMPDIR=str(caches))
    # a watchdog beside pytest-timeout: a test still running 1.5 x its wall-clock bound + 30 s after its
    # start (code that swallows the timeout, a property test re-running a hanging example) ends the run;
    # so does a process that has finished its session but does not exit (a non-daemon thread the
    # submission left behind keeps the interpreter waiting): its results are all recorded by then
    stuck_after = 1.5 * wall + 30
    with open(records.with_suffix(".log"), "w", encoding="utf-8") as log:
        # its own session and process group, so that the whole group, children included, ends with it
        if fork_judge:
            process = _fork_judge(command[3:], env, log)
        else:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_limits)
        try:
            return _watch(process, records, stuck_after, run_timeout)
        finally:
            _end_group(process)


class _ForkedJudge:
    """The judge forked from this process, seen as the few parts of a Popen that the grade uses."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def _fork_judge(args: list[str], env: dict, log) -> _ForkedJudge:
    """``pytest ARGS`` in a child of this process, set up as the new interpreter would be: its own
    session, the judge's limits, the judge's environment and folders, output to ``log``. Only for a
    process that runs nothing else (one thread, no pytest session of its own): a class's grades."""
    import signal
    import threading

    if threading.active_count() != 1:
        raise RuntimeError("a judge is forked only from a single-threaded grader")
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid:
        return _ForkedJudge(pid)
    code = 70
    try:
        os.setsid()
        _limits()
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
        os.chdir(ROOT)
        os.environ.clear()
        os.environ.update(env)
        tempfile.tempdir = None          # computed again, from the judge's TMPDIR
        if "torch" in sys.modules:       # imported under the grader's environment
            sys.modules["torch"].set_num_threads(int(env.get("OMP_NUM_THREADS", "1")))
        # the worker launched first, as a new interpreter's judge does
        from grader.judge import early

        code = early.main(args)
    except BaseException:                # the judge never returns into the grader's code
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush(), sys.stderr.flush()
        finally:
            os._exit(code)


def _limits() -> None:
    """In the judge's process: no core dumps, no file (the log included) beyond FILE_LIMIT, and killed
    when the grader dies (its worker then dies with it)."""
    import ctypes
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_AS, (JUDGE_MEMORY, JUDGE_MEMORY))
    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)   # PR_SET_PDEATHSIG, SIGKILL


TMP_PREFIX = "spec-grade-"


def _remove_stale_folders() -> None:
    """Scratch folders of graders that were killed (their pid is in the name and no longer runs): a
    killed grader leaves nothing behind for long, and a rerun starts clean."""
    import shutil

    for folder in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        try:
            pid = int(folder.name.removeprefix(TMP_PREFIX).split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def runs_cache() -> str:
    """The cache of the spec's own runs (spec/runs.py) a judge reads and fills: this grader's (its
    $SPEC_RUNS_CACHE, else its user's cache folder), or "off" where it is off or where a worker could
    write it (no bubblewrap and the same user as the judge): a run the judge reads must be the spec's."""
    from grader.judge.sandbox import worker_cannot_write_the_judges_files

    root = spec_runs.cache_root()
    return str(root) if root is not None and worker_cannot_write_the_judges_files() else "off"


def spec_digest() -> dict[str, str]:
    """SHA-256 of every file of the spec (tests, helpers, catalogue), the grader's and the project's conftest."""
    import hashlib

    files = [ROOT / "conftest.py", *(f for folder in ("spec", "grader") for pattern in ("*.py", "*.toml")
                                     for f in sorted((ROOT / folder).rglob(pattern)))]
    return {str(f.relative_to(ROOT)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def _watch(process, records: Path, stuck_after: float, run_timeout: float) -> int | str:
    started = last_seen = time.monotonic()
    running, offset, finished_status = None, 0, None
    while process.poll() is None:
        pause = time.monotonic() + 0.25    # the records are read 4 times a second, the exit seen within 20 ms
        while time.monotonic() < pause and process.poll() is None:
            time.sleep(0.02)
        if records.exists():
            with open(records, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            complete = chunk[:chunk.rfind(b"\n") + 1]
            offset += len(complete)
            for line in complete.decode("utf-8", errors="replace").splitlines():
                event = _parse(line)
                if event is not None and event["event"] in ("start", "result"):
                    running, last_seen = (line if event["event"] == "start" else None), time.monotonic()
                elif event is not None and event["event"] == "finished":
                    finished_status, last_seen = event["exitstatus"], time.monotonic()
        now = time.monotonic()
        if finished_status is not None and now - last_seen > EXIT_GRACE_S:
            return finished_status   # every result is recorded; what keeps it from exiting is killed
        if (running is not None and now - last_seen > stuck_after) or now - started > run_timeout:
            return "timeout"
    return process.returncode


def _end_group(process) -> None:
    """Kill the child's whole process group (what it started and left behind) and reap the child."""
    import signal

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


EVENT_FIELDS = {"collected": {"nodeid": str, "exercises": list}, "start": {"nodeid": str},
                "result": {"nodeid": str, "outcome": str, "message": str}, "tampered": {"changed": list},
                "notebook": {"path": str, "seconds": (int, float), "cells": list}, "finished": {"exitstatus": int},
                "isolation": {"what": str}, "worker": {"early": bool}}


def _parse(line: str) -> dict | None:
    """One record as the spec's plugin writes it, or None for anything else (a line cut off by a crash,
    a malformed or unknown one): the grader never fails on what the records file holds."""
    try:
        event = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(event, dict) or event.get("event") not in EVENT_FIELDS:
        return None
    fields = EVENT_FIELDS[event["event"]]
    return event if all(isinstance(event.get(k), t) for k, t in fields.items()) else None


def _read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [e for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if (e := _parse(line)) is not None]


def grade(target, *, selection=(), timeout: float = 60, slow: bool = False, run_timeout: float = 1800,
          max_runs: int = 25, alias: str | None = None, notebook_budget: float | None = None,
          hide_reference: bool = True, budget: float = BUDGET_S, fork_judge: bool = False,
          runs: str | None = None, own_folder: str | None = None, helpers=(), wall_timeout: float | None = None,
          judges: int = 1) -> Grade:
    """Run the spec on ``target`` (see the module docstring) and return its grade. ``timeout``: the CPU
    seconds the submission's processes may use in one test; ``wall_timeout`` (default 10 x that) bounds
    a test's hang by the wall clock. ``budget`` bounds the
    whole grade, every restart included (the remaining tests are reported as not run once it is
    spent, and the run in progress is ended at it, whatever it writes to look alive). ``hide_reference``
    False leaves the reference solutions importable: only for the spec's own corpus of wrong solutions,
    which are the reference with one piece broken. ``fork_judge``: the judge is a fork of this process
    (grader/judge/warm.py; only where this process runs nothing else), else a new interpreter; ``runs``: a
    folder of the spec's own runs shared with other grades (a class's), one no worker can write to.
    ``own_folder`` and ``helpers``: what is staged beside the submission (see :func:`scratch_copy`).
    ``judges``: judges (each with its own worker, the submission loaded in each) that share the first run's
    topic modules between them, side by side: a single grade on spare cores; a class's grades are side by
    side already (one judge each). The verdicts are the same for any number."""
    target = str(target)
    wall = wall_timeout if wall_timeout is not None else WALL_FACTOR * timeout
    result = Grade(target, selection=tuple(selection),
                   limits={"cpu_seconds_per_test": timeout, "wall_seconds_per_test": wall})
    # the exercises graded by hand alone are not run on a submission: their tests check the
    # reference's worked answer, whose names no sheet asks a student to define
    catalogue = load()
    selection = tuple(e.id for e in catalogue.exercises if not e.fully_manual and _selected(e.id, selection))
    path = Path(target)
    if os.path.islink(path):
        result.error = f"{path.name} is a link: a submission is graded from the student's own files only"
    elif not path.exists():
        result.error = f"{target}: no such file or folder"
    elif path.is_dir() and not (path / "__init__.py").is_file():
        result.error = f"{target}: a package folder needs an __init__.py"
    elif path.is_file() and path.suffix not in (".py", ".ipynb"):
        result.error = f"{target}: expected a .py file, a .ipynb notebook or a package folder"
    if result.error:
        return result
    _remove_stale_folders()
    before = spec_digest()
    with tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-") as tmp:
        _grade_in(tmp, result, path, catalogue, selection=selection, timeout=timeout, slow=slow,
                  run_timeout=run_timeout, max_runs=max_runs, alias=alias, notebook_budget=notebook_budget,
                  hide_reference=hide_reference, budget=budget, fork_judge=fork_judge, runs=runs,
                  own_folder=own_folder, helpers=helpers, wall_timeout=wall_timeout,
                  judges=1 if fork_judge else max(1, judges))
    after = spec_digest()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if changed:   # the spec is read-only to a sandboxed worker: this is a defence in depth
        result.tampered = [f"spec file changed during the grade: {name}" for name in changed]
    return result


def _grade_in(tmp, result, path, catalogue, *, selection, timeout, slow, run_timeout, max_runs, alias,
              notebook_budget, hide_reference, budget, fork_judge, runs, own_folder, helpers, wall_timeout,
              judges=1) -> None:
    work = Path(tmp) / "work"   # the worker's: the submission's copy, its caches; the judge's records stay apart
    work.mkdir()
    started = time.time()
    try:
        staged, result.left_out = scratch_copy(path, work / "submission", own_folder=own_folder, helpers=helpers)
    except (StagingError, OSError) as error:
        result.error = f"the submission could not be staged: {error}"
        return
    result.profile["staging"] = time.time() - started
    target = str(staged)
    if alias:
        alias = str(_copy_alias(alias, work))
    only = None
    deadline = time.monotonic() + budget
    while result.runs < max_runs:
        left = deadline - time.monotonic()
        if left <= 0:
            for test in result.tests.values():
                if test.outcome == "not run":
                    test.message = f"not run: the grade's time budget of {budget:g} s was spent"
            break
        result.runs += 1
        groups = split_paths(graded_paths(selection), judges) if only is None else [None]
        started, launched = time.perf_counter(), time.time()
        outcomes = _run_judges(groups, tmp, result.runs, work, target, alias, selection=selection, only=only,
                               timeout=timeout, slow=slow, run_timeout=min(run_timeout, left),
                               notebook_budget=notebook_budget, hide_reference=hide_reference,
                               fork_judge=fork_judge, runs=runs, wall_timeout=wall_timeout)
        ended = time.time()
        parts: dict = {}
        any_started = False
        for records, code in outcomes:
            events = _read_records(records)
            part: dict = {}
            _add_profile(part, events, launched, ended)
            for name, seconds in part.items():   # judges side by side: the longest of them, CPU summed
                parts[name] = (parts.get(name, 0.0) + seconds if " CPU" in name
                               else max(parts.get(name, 0.0), seconds))
            _take_events(result, catalogue, events)
            if result.tampered:
                break
            finished = {e["nodeid"] for e in events if e["event"] == "result"}
            running = [e["nodeid"] for e in events if e["event"] == "start" and e["nodeid"] not in finished]
            any_started = any_started or bool(running or finished)
            _crashed(result, running, code, started)
        for name, seconds in parts.items():
            result.profile[name] = round(result.profile.get(name, 0.0) + seconds, 3)
        if result.tampered:
            for test in result.tests.values():
                test.outcome, test.message = "failed", "the submission patched the spec: " + ", ".join(
                    result.tampered)
            break
        code = outcomes[-1][1] if len(outcomes) == 1 else ", ".join(str(c) for _, c in outcomes)
        if not result.tests:
            result.error = f"the spec collected no tests (pytest exit code {code})"
            break
        remaining = [t.nodeid for t in result.tests.values() if t.outcome == "not run"]
        if not remaining:
            break
        if not any_started:
            for nodeid in remaining:
                result.tests[nodeid].message = f"the spec process stopped before this test (exit code {code})"
            break
        only = Path(tmp) / f"only-{result.runs}.txt"
        only.write_text("\n".join(remaining) + "\n", encoding="utf-8")


def default_judges() -> int:
    """Judges for a single grade: two where there are four cores or more, else one. A judge and its worker
    keep about two cores busy between them (the worker's calls and the judge's expected values
    alternate, and the submission loads in each worker): measured on 2 cores, two judges took 14.1 s
    where one took 11.8 s (a7), and saved at most 1.2 s of 18 to 21 s on the other sheets."""
    return 2 if len(os.sched_getaffinity(0)) >= 4 else 1


def split_paths(paths: list[str], judges: int) -> list[list[str] | None]:
    """The topic modules shared among at most ``judges`` judges, the largest files first, each to the
    judge with the fewest bytes so far (an exercise's tests are all in its topic's module, so each
    exercise is decided by one judge); [None] (one judge, every module) where there is one of either."""
    if judges < 2 or len(paths) < 2:
        return [None]
    shares: list[list[str]] = [[] for _ in range(min(judges, len(paths)))]
    sizes = [0] * len(shares)
    for path in sorted(paths, key=lambda p: -(ROOT / p).stat().st_size):
        lightest = sizes.index(min(sizes))
        shares[lightest].append(path)
        sizes[lightest] += (ROOT / path).stat().st_size
    return [sorted(share) for share in shares]


def _run_judges(groups, tmp, run: int, work: Path, target: str, alias, **options) -> list[tuple[Path, int | str]]:
    """One run: a judge per group of topic modules, side by side, each with a worker of its own in a copy
    of the worker's folder (the staged submission); (records, exit code) of each."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    folders = [work]
    for index in range(1, len(groups)):   # copied before any worker writes its own caches into ``work``
        folders.append(Path(tmp) / f"work-{index + 1}")
        if not folders[-1].exists():
            shutil.copytree(work, folders[-1], symlinks=True)

    def one(index: int, paths):
        folder = folders[index]
        moved = lambda value: str(folder / Path(value).relative_to(work)) if value else value
        records = Path(tmp) / (f"records-{run}.jsonl" if not index else f"records-{run}-{index + 1}.jsonl")
        return records, _run_spec(moved(target), records, work=folder, alias=moved(alias), paths=paths, **options)

    if len(groups) == 1:
        return [one(0, groups[0])]
    with ThreadPoolExecutor(len(groups)) as pool:
        return list(pool.map(one, range(len(groups)), groups))


def _take_events(result, catalogue, events: list[dict]) -> None:
    for event in events:
        if event["event"] == "collected" and event["nodeid"] not in result.tests:
            known = [e for e in event["exercises"] if isinstance(e, str) and e in catalogue]
            result.tests[event["nodeid"]] = TestResult(event["nodeid"], known, tier=event.get("tier", "points"))
        elif event["event"] == "result" and event["nodeid"] in result.tests:
            test = result.tests[event["nodeid"]]
            known = event["outcome"] in ("passed", "failed", "skipped")
            test.outcome = event["outcome"] if known else "failed"
            test.message = (event["message"] if known
                            else f"an unknown outcome was recorded: {event['outcome']!r}")
            test.counted = bool(event.get("counted", True))
            test.cpu = _seconds(event.get("cpu"))
        elif event["event"] == "isolation" and not result.isolation:
            result.isolation = event["what"]
        elif event["event"] == "notebook" and result.notebook is None:
            result.notebook = {k: event[k] for k in ("path", "seconds", "cells")}
        elif event["event"] == "tampered":
            result.tampered = event["changed"]


def _crashed(result, running: list[str], code, started: float) -> None:
    """The tests a judge was running when it ended: crashed, and with them their exercises' tests not run
    yet (all-or-nothing: the exercise is lost)."""
    for nodeid in running:
        why = ("the run exceeded its time limit" if code == "timeout"
               else f"the test process died (exit code {code})")
        result.tests[nodeid].outcome = "crashed"
        result.tests[nodeid].message = f"{why} while this test ran ({time.perf_counter() - started:.0f} s)"
        lost = set(result.tests[nodeid].exercises)
        for test in result.tests.values():
            if test.outcome == "not run" and lost & set(test.exercises):
                test.outcome, test.message = "crashed", f"not run: {nodeid} of this exercise crashed the spec"


# ------------------------------------------------------------------------------------ output
def _robustness_line(robust: dict) -> str:
    checked = robust["passed"] + robust["failed"]
    return f"robustness {robust['passed']} / {checked} checks passed (a quality line: no points depend on it)"


def _add_profile(profile: dict, events: list[dict], launched: float, ended: float) -> None:
    """Where one run of the judge spent its seconds, from its records' times (the judge's own clock):
    the launch of the worker (from the judge's start), the judge's start-up (interpreter, libraries,
    collection), the worker's start with the submission's load (a notebook's cells among it), the tests,
    and the judge's end; and the CPU seconds of the worker and of the judge (names with " CPU"). Summed
    over the runs of a grade."""
    times = lambda kind: [e["t"] for e in events if e.get("event") == kind and type(e.get("t")) is float]
    collected, loaded, finished = times("collected"), times("isolation"), times("finished")
    starts = {e["nodeid"]: e["t"] for e in events if e.get("event") == "start" and type(e.get("t")) is float}
    tests = sum(e["t"] - starts[e["nodeid"]] for e in events if e.get("event") == "result"
                and type(e.get("t")) is float and e.get("nodeid") in starts)
    worker = times("worker")
    parts = {"worker launch": (worker[0] - launched) if worker else 0.0,
             "judge start-up": (collected[0] - launched) if collected else 0.0,
             "worker start and load": (loaded[0] - collected[-1]) if collected and loaded else 0.0,
             "tests": tests, "judge end": (ended - finished[-1]) if finished else 0.0, "judge in all": ended - launched}
    notebook = [_seconds(e.get("seconds")) for e in events if e.get("event") == "notebook"]
    if notebook and notebook[0] is not None:
        parts["notebook cells"] = notebook[0]
    # CPU seconds, measured by the judge: the worker's (its cgroup's, else its process tree's) from each
    # launch to ready and in the tests, and the judge's own in the tests and in all (a judge that was
    # killed records none of them)
    end = ([e for e in events if e.get("event") == "finished"] or [{}])[-1]
    cpu = {"worker CPU, start and load": _seconds(end.get("load_cpu")),
           "worker CPU, tests": sum(_seconds(e.get("cpu")) or 0.0 for e in events if e.get("event") == "result"),
           "judge CPU, tests": _seconds(end.get("tests_cpu")), "judge CPU, in all": _seconds(end.get("cpu"))}
    parts.update((name, seconds) for name, seconds in cpu.items() if seconds is not None)
    for name, seconds in parts.items():
        profile[name] = round(profile.get(name, 0.0) + max(0.0, seconds), 3)


def failure_cause(message: str) -> str:
    """What two failures must share to have one cause: the error's first line (the call that showed
    it, on a line of its own, may differ)."""
    return str(message).split("\n", 1)[0]


def failure_lines(failures: list[dict], shown: int = 5) -> list[str]:
    """An exercise's failures for grade.md: the first in full (the error, the student's own lines of
    the traceback, the call that failed, as code), then the others grouped by cause."""
    first = failures[0]
    lines = [f"First failure, {md_code(first['test'].split('::')[-1])} ({first['outcome']}):", "",
             md_block(first["message"], 4000), ""]
    groups: dict[str, list[dict]] = {}
    for failure in failures:
        groups.setdefault(failure_cause(failure["message"]), []).append(failure)
    for cause, members in list(groups.items())[:shown]:
        others = [f for f in members if f is not first]
        if not others:
            continue
        if len(members) > 1:
            names = ", ".join(md_code(f["test"].split("::")[-1]) for f in members[:3])
            lines.append(f"- {len(members)} tests failed with the same error {md_code(cause, 400)} "
                         f"({names}{', ...' if len(members) > 3 else ''})")
        else:
            lines.append(f"- {md_code(others[0]['test'].split('::')[-1])} ({others[0]['outcome']}): "
                         f"{md_code(others[0]['message'], 400)}")
    if len(groups) > shown:
        lines.append(f"- ... and {sum(len(m) for m in list(groups.values())[shown:])} more, of "
                     f"{len(groups) - shown} other causes")
    return [*lines, ""]


def to_markdown(data: dict) -> str:
    lines = [f"# Grade of {md_code(Path(data['target']).name)}", "",
             f"**{data['earned']:g} / {data['points']:g} points graded automatically** (all-or-nothing per exercise)",
             f"**{data['manual_points']:g} points to grade by hand** (listed below with the reference answers)",
             f"**{_robustness_line(data['robustness'])}**", "", f"Isolation: {data['isolation']}.", ""]
    limits = data.get("limits") or {}
    if limits.get("most_cpu_seconds") is not None:
        lines += [f"CPU time of the submission: at most {limits['most_cpu_seconds']:.1f} of the "
                  f"{limits['cpu_seconds_per_test']:g} CPU seconds a test may use "
                  f"({md_code(limits['most_cpu_test'].split('::')[-1], 120)}).", ""]
    if data["error"]:
        lines += [f"**The submission could not be graded:** {md_code(data['error'], 2000)}", ""]
    if data.get("left_out"):
        lines += [f"Not staged with the submission ({len(data['left_out'])} entries; only the student's own regular "
                  f"files are graded): " + ", ".join(md_code(item, 200) for item in data["left_out"][:20]), ""]
    if data["tampered"]:
        lines += ["**The spec was tampered with during the grade; every exercise scores 0:** "
                  f"{md_code(', '.join(data['tampered']), 1000)}", ""]
    notebook = data.get("notebook")
    if notebook:
        cells = notebook["cells"]
        failed = [c for c in cells if c["status"] in ("error", "not run")]
        lines += [f"## The notebook, as its worker reports it: {len(cells)} code cells run in "
                  f"{notebook['seconds']:.1f} s, {len(failed)} failed", ""]
        # the worker's word: shown as code, never as Markdown or HTML, and no point depends on it
        lines += [f"- cell {c['index']:d} ({md_code(c['first_line'], 120)}): {md_code(c['error'], 400)}"
                  for c in failed]
        lines += [f"- cell {c['index']:d}: not run: {md_code(m, 120)}" for c in cells for m in c["not_run"]]
        lines.append("")
    for sheet, info in data["sheets"].items():
        lines += [f"## {sheet}: {info['earned']:g} / {info['points']:g} automatic, "
                  f"{info['manual_points']:g} by hand", "",
                  "| exercise | points | status | tests passed | robustness |", "|---|---|---|---|---|"]
        for r in info["exercises"]:
            robust = r["robustness"]
            checked = robust["passed"] + len(robust["failed"])
            lines.append(f"| {r['id']} | {r['earned']:g} / {r['points']:g} | {r['status']} | "
                         f"{r['passed']} / {r['tests']} | {robust['passed']} / {checked} |")
        lines.append("")
        for row in info["exercises"]:
            if row["failures"]:
                lines += [f"### {row['id']}: {row['title']}", "", *failure_lines(row["failures"])]
    manual = [row for info in data["sheets"].values() for row in info["exercises"] if row["manual"]]
    if manual:
        lines += ["## To grade by hand", ""]
        for row in manual:
            lines += [f"### {row['id']} ({row['manual_points']:g} points by hand)", "",
                      f"**Question:** {row['manual']['question']}", "",
                      f"**Reference answer:** {row['manual']['answer']}", ""]
    fragile = [(row["id"], f) for info in data["sheets"].values() for row in info["exercises"]
               for f in row["robustness"]["failed"]]
    if fragile:
        lines += ["## Robustness checks that failed (no points lost)", ""]
        lines += [f"- {eid} {md_code(f['test'].split('::')[-1])}: {md_code(f['message'], 300)}"
                  for eid, f in fragile[:20]]
        lines.append("")
    return "\n".join(lines)


def to_junit(grade_: Grade) -> str:
    suites = ET.Element("testsuites", name=xml_text(f"grade of {grade_.target}"))
    by_exercise: dict[str, list[TestResult]] = {}
    for test in grade_.tests.values():
        for exercise_id in test.exercises or ["(no exercise)"]:
            by_exercise.setdefault(exercise_id, []).append(test)
    for exercise_id, tests in sorted(by_exercise.items()):
        failures = [t for t in tests if t.outcome in ("failed", "crashed", "not run")]
        suite = ET.SubElement(suites, "testsuite", name=exercise_id, tests=str(len(tests)),
                              failures=str(len(failures)), skipped=str(sum(t.outcome == "skipped" for t in tests)))
        for test in tests:
            module, _, name = test.nodeid.partition("::")
            case = ET.SubElement(suite, "testcase", classname=f"{exercise_id}.{Path(module).stem}", name=xml_text(name))
            message = xml_text(test.message)
            if test.outcome in ("failed", "crashed", "not run"):
                ET.SubElement(case, "failure", message=message[:500], type=test.outcome).text = message
            elif test.outcome == "skipped":
                ET.SubElement(case, "skipped", message=message[:500])
    if grade_.error:
        suite = ET.SubElement(suites, "testsuite", name="submission", tests="1", failures="1")
        case = ET.SubElement(suite, "testcase", classname="submission", name="load")
        ET.SubElement(case, "failure", message=xml_text(grade_.error), type="error").text = xml_text(grade_.error)
    return ET.tostring(suites, encoding="unicode")


def _write_atomically(path: Path, text: str) -> None:
    """Write beside the file, then rename over it: a reader sees the old report or the new, never half."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8", errors="backslashreplace")   # a lone surrogate stays visible
    os.replace(partial, path)


def write_reports(grade_: Grade, out) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = grade_.as_dict()
    _write_atomically(out / "grade.json", json.dumps(data, indent=2))
    _write_atomically(out / "grade.md", to_markdown(data))
    _write_atomically(out / "junit.xml", to_junit(grade_))
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spec.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="a package folder, a .py file or a .ipynb notebook")
    parser.add_argument("--out", default="grade", help="folder for grade.json, grade.md and junit.xml")
    parser.add_argument("--exercise", action="append", default=[], help="grade only this ID, part or sheet")
    parser.add_argument("--timeout", type=float, default=60,
                        help="CPU seconds the submission's processes may use per test (default 60; the judge's own "
                             "time and a busy machine do not count; the wall clock bounds a hang at 10 x that)")
    parser.add_argument("--budget", type=float, default=BUDGET_S,
                        help=f"seconds for the whole grade, restarts included (default {BUDGET_S:g})")
    parser.add_argument("--slow", action="store_true", help="also run the tests marked slow")
    parser.add_argument("--alias", default=None, metavar="FILE",
                        help='a TOML file mapping the submission\'s names onto the interface: '
                             'their_name = "interface_name"')
    parser.add_argument("--notebook-budget", type=float, default=None, metavar="SECONDS",
                        help="CPU budget of a notebook's cells (default 120 CPU seconds; the wall clock bounds a hang "
                             "at 10 x that), apart from the per-test limit")
    parser.add_argument("--helpers", action="append", default=[], metavar="NAME",
                        help="a file the course hands out beside the notebook (test_utils.py, say), staged with a "
                             "flat submission from beside it (a student's own folder is staged whole); repeatable")
    # ---- a class folder, Gradescope's format, CI exit status (grader/judge/batch.py, grader/judge/gradescope.py)
    from grader.judge import batch
    batch.add_arguments(parser)
    parser.add_argument("--format", choices=["reports", "gradescope"], default="reports",
                        help="gradescope: also write Gradescope's results.json to --out")
    parser.add_argument("--points-summary", action="store_true",
                        help='end with the line "Points X/Y" (automatic points), for CI and GitHub Classroom')
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 unless every automatic point of the selection was earned")
    parser.add_argument("--profile", action="store_true",
                        help="print where the grade's seconds and CPU seconds went (also in grade.json's profile)")
    # ----
    args = parser.parse_args(argv)
    catalogue = load()
    for pattern in args.exercise:
        if not catalogue.select(pattern):
            parser.error(f"--exercise {pattern}: no catalogue ID is or starts with it")
    for name in args.helpers:
        if os.sep in name or name in (".", ".."):
            parser.error(f"--helpers {name}: give the file's name (it is taken from beside each submission), "
                         "not a path")
    try:
        is_class = batch.is_class_folder(args.target, package=args.package, class_=args.class_)
    except batch.AmbiguousTarget as exc:
        parser.error(str(exc))
    if is_class:
        return batch.run(args)
    started = time.perf_counter()
    alias = str(Path(args.alias).resolve()) if args.alias else None
    # one submission: spare cores share its tests among judges side by side (the submission loads in each)
    judges = args.jobs if args.jobs else default_judges()
    result = grade(args.target, selection=tuple(args.exercise), timeout=args.timeout, slow=args.slow, alias=alias,
                   notebook_budget=args.notebook_budget, budget=args.budget, helpers=tuple(args.helpers),
                   judges=judges)
    writing = time.perf_counter()
    data = write_reports(result, args.out)
    if args.profile:
        seconds = {**result.profile, "reports": time.perf_counter() - writing,
                   "grade in all": time.perf_counter() - started}
        print("profile: " + ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items()
                                      if " CPU" not in name))
        cpu = [f"{name} {value:.1f} s" for name, value in seconds.items() if " CPU" in name]
        if cpu:
            print("CPU: " + ", ".join(cpu))
    for sheet, info in data["sheets"].items():
        print(f"{sheet:<6} {info['earned']:g} / {info['points']:g} automatic, {info['manual_points']:g} by hand")
    if result.error:
        print(f"could not grade: {printable(result.error)}")
    print(f"total  {data['earned']:g} / {data['points']:g} automatic, {data['manual_points']:g} to grade by hand; "
          f"{_robustness_line(data['robustness'])}   (reports in {Path(args.out).resolve()})")
    # ---- Gradescope's results.json, the points line and the exit status (grader/judge/gradescope.py)
    from grader.judge import gradescope
    if args.format == "gradescope":
        gradescope.write_results(data, args.out, tuple(args.exercise), seconds=time.perf_counter() - started)
    earned, available = gradescope.automatic_points(data, tuple(args.exercise))
    if args.points_summary:
        print(f"Points {earned:g}/{available:g}")
    return 1 if args.strict and (earned < available or result.error) else 0


if __name__ == "__main__":
    sys.exit(main())
