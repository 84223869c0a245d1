"""Run a submission's notebook cell by cell, as a student's kernel would, and keep what it defines.

Decision: in-process execution (as otter-grader does), not a Jupyter kernel through nbclient. The
spec reaches a solution's functions and classes as Python objects; a kernel would keep them in
another process, behind messages that carry only text and rich outputs. In-process, the namespace the
cells build up is the module the spec tests, and a cell's failure is an exception we catch and report.
(Keeping the submission away from the judge is the job of the process that runs it, not of this module.)

* Each code cell is turned into Python by IPython's own input transformers, so ``%magic``, ``!shell``
  and ``files = !ls`` mean what IPython makes them mean, and a string whose lines start with ``!``
  stays a string. Line magics ``%time`` and ``%timeit`` run their statement once, cell magics
  ``%%time``, ``%%timeit`` and ``%%capture`` run their body once; every other magic and every shell
  escape is not run (``!x`` gives an empty list), and the run lists them.
* The cells run in order in the notebook's own folder: that folder is the working directory while they
  run and stays on ``sys.path``, so helper files beside the notebook import.
* A cell that raises is reported (number, first line, error) and costs only the names it would have
  defined: the later cells still run. Cells tagged ``exploration`` or ``skip-grading``, or whose first
  line is ``# exploration``, are not run.
* Network access fails at once (``OSError``) while the cells run, never a hang.
* The whole notebook has a CPU budget (``budget`` CPU seconds of this process, all its threads,
  default :data:`DEFAULT_BUDGET`) of its own, apart from any test's limit: the cell that runs past it
  is interrupted, later cells are not run. A busy machine does not spend it; the wall clock only
  bounds a hang (a cell that sleeps or waits), at :data:`WALL_FACTOR` times the budget. Outputs stored
  in the notebook are never read.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

DEFAULT_BUDGET = 120.0
#: where a limit counts CPU seconds, the wall clock bounds only a hang, at this many times the limit
WALL_FACTOR = 10
EXPLORATION_TAGS = {"exploration", "skip-grading"}


def finite_seconds(value) -> float | None:
    """A count of seconds the judge reads (the worker's account of a notebook, the grade's records) as a
    float: a finite number from 0 up to a year, else None (a bool, a string, NaN, an infinity or an int too
    large for a float are not counts)."""
    if type(value) not in (int, float) or not 0 <= value <= 3.2e7:
        return None
    return float(value)
TIMING_LINE_MAGICS = {"time", "timeit"}
RUN_CELL_MAGICS = {"time", "timeit", "capture"}


class NotebookError(Exception):
    """The notebook file cannot be read as a notebook."""


class BudgetExceeded(BaseException):
    """The notebook's CPU budget (or its hang guard) ran out (a BaseException, so ``except Exception``
    does not hide it)."""


@dataclass
class Cell:
    index: int           # the cell's position in the notebook, counting every cell from 0
    first_line: str
    status: str = "ok"   # ok | error | not run | skipped
    error: str = ""
    defines: list[str] = field(default_factory=list)   # names the cell binds at its top level
    not_run: list[str] = field(default_factory=list)   # magics and shell escapes left out

    def describe(self) -> str:
        where = f"cell {self.index} ({self.first_line!r})"
        return f"{where}: {self.error}" if self.error else where


@dataclass
class NotebookRun:
    path: Path
    cells: list[Cell] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Cell]:
        return [c for c in self.cells if c.status in ("error", "not run")]

    @property
    def not_run_magics(self) -> list[str]:
        return [f"cell {c.index}: {m}" for c in self.cells for m in c.not_run]

    def as_dict(self) -> dict:
        return {"path": str(self.path), "seconds": round(self.seconds, 3),
                "cells": [vars(c) for c in self.cells]}


class _Shell:
    """The part of ``get_ipython()`` that transformed cells call."""

    def __init__(self, namespace: dict, cell: Cell, transform):
        self.namespace, self.cell, self.transform = namespace, cell, transform

    def run_line_magic(self, name: str, line: str):
        if name in TIMING_LINE_MAGICS:
            exec(compile(self.transform(line), f"<cell {self.cell.index}: %{name}>", "exec"), self.namespace)
        else:
            self.cell.not_run.append(f"%{name} {line}".rstrip())

    def run_cell_magic(self, name: str, line: str, body: str):
        if name in RUN_CELL_MAGICS:
            exec(compile(self.transform(body), f"<cell {self.cell.index}: %%{name}>", "exec"), self.namespace)
        else:
            self.cell.not_run.append(f"%%{name} {line}".rstrip())

    def system(self, command: str):
        self.cell.not_run.append(f"!{command}")

    def getoutput(self, command: str, split: bool = True):
        self.cell.not_run.append(f"!{command}")
        return [] if split else ""

    def __getattr__(self, name):
        raise AttributeError(f"get_ipython().{name} is not available while grading")


def read_cells(path: Path) -> list:
    import nbformat

    try:
        return nbformat.read(str(path), as_version=4).cells
    except Exception as exc:  # nbformat raises NotJSONError, ValidationError, KeyError, ...
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise NotebookError(f"{path}: not a readable Jupyter notebook ({type(exc).__name__}: {first})") from None


def _skipped(cell, first_line: str) -> bool:
    tags = set(cell.get("metadata", {}).get("tags", []))
    return bool(tags & EXPLORATION_TAGS) or first_line.lower() == "# exploration"


def _no_network(*args, **kwargs):
    raise OSError("network access is disabled while a submission is graded (the data must come with it)")


@contextlib.contextmanager
def no_network():
    """Within the block, opening a connection or resolving a host name raises OSError at once."""
    patches = [(socket.socket, "connect"), (socket.socket, "connect_ex"), (socket, "create_connection"),
               (socket, "getaddrinfo"), (socket, "gethostbyname")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in patches]
    try:
        for owner, name in patches:
            setattr(owner, name, _no_network)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


@contextlib.contextmanager
def in_folder(folder: Path):
    """Run with ``folder`` as the working directory and first on sys.path (it stays on sys.path)."""
    previous = os.getcwd()
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


class _Clock:
    """The notebook's CPU budget: SIGPROF once this process has used ``seconds`` of CPU (ITIMER_PROF:
    user and system time of all its threads), and every 0.5 CPU seconds after, so that a bare
    ``except:`` inside a loop cannot swallow it for good; and a hang guard, SIGALRM once
    WALL_FACTOR x ``seconds`` of wall clock have passed (a cell that sleeps uses no CPU), every 0.5 s
    after. Either interrupts a running cell only; between cells it just marks the budget as spent."""

    TIMERS = ((signal.ITIMER_PROF, signal.SIGPROF, 1.0, "CPU budget of {seconds:g} CPU seconds"),
              (signal.ITIMER_REAL, signal.SIGALRM, WALL_FACTOR, "hang guard of {wall:g} s (wall clock)")) \
        if hasattr(signal, "setitimer") else ()

    def __init__(self, seconds: float | None):
        self.seconds, self.in_cell, self.spent = seconds, False, False

    def _expired(self, what: str):
        def handler(signum, frame):
            self.spent = True
            if self.in_cell:
                raise BudgetExceeded(f"the notebook's {what} ran out in this cell")
        return handler

    def __enter__(self):
        self.armed = bool(self.seconds and self.seconds > 0 and self.TIMERS)
        if self.armed:   # timers already running (a test's timeout) are put back afterwards
            self.started, self.saved = time.monotonic(), []
            for timer, number, factor, what in self.TIMERS:
                text = what.format(seconds=self.seconds, wall=self.seconds * WALL_FACTOR)
                self.saved.append((signal.getitimer(timer), signal.signal(number, self._expired(text))))
                signal.setitimer(timer, self.seconds * factor, 0.5)
        return self

    def __exit__(self, *exc):
        if self.armed:
            for (timer, number, _, _), (saved, previous) in zip(self.TIMERS, self.saved, strict=True):
                signal.setitimer(timer, 0)
                signal.signal(number, previous)
                remaining, interval = saved
                if remaining > 0:
                    elapsed = time.monotonic() - self.started if timer == signal.ITIMER_REAL else 0.0
                    signal.setitimer(timer, max(remaining - elapsed, 0.01), interval)


def run(path: Path, module: ModuleType, *, seconds: float | None = DEFAULT_BUDGET) -> NotebookRun:
    """Execute the notebook's code cells into ``module`` (see the module docstring)."""
    from IPython.core.inputtransformer2 import TransformerManager

    path = Path(path).resolve()
    cells = read_cells(path)
    transform = TransformerManager().transform_cell
    report = NotebookRun(path)
    namespace = module.__dict__
    namespace.setdefault("display", lambda *objects, **kwargs: None)
    started = time.perf_counter()
    with in_folder(path.parent), no_network(), _Clock(seconds) as clock:
        for index, source in enumerate(cells):
            if source.cell_type != "code":
                continue
            first = next((line.strip() for line in source.source.splitlines() if line.strip()), "")
            cell = Cell(index, first[:80])
            report.cells.append(cell)
            if _skipped(source, first):
                cell.status = "skipped"
                continue
            if clock.spent:
                cell.status, cell.error = "not run", "not run: the notebook's budget ran out before it"
                continue
            namespace["get_ipython"] = lambda cell=cell: _Shell(namespace, cell, transform)
            try:
                python = transform(source.source)
                cell.defines = _top_level_names(python)
                code = compile(python, f"<cell {index}>", "exec")
                # the cell's source where tracebacks look lines up: a failure shows the student's own line
                linecache.cache[f"<cell {index}>"] = (len(python), None, python.splitlines(True), f"<cell {index}>")
                clock.in_cell = True
                exec(code, namespace)
            except BudgetExceeded as exc:
                cell.status, cell.error = "error", str(exc)
            except BaseException as exc:  # SystemExit and KeyboardInterrupt of a cell cost only the cell
                cell.status, cell.error = "error", _one_line(exc)
            finally:
                clock.in_cell = False
    report.seconds = time.perf_counter() - started
    return report


def _top_level_names(python: str) -> list[str]:
    import ast

    names = []
    for node in ast.parse(python).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
    return names


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
