"""Run the spec in a separate pytest process and read back its per-exercise JSON report.

A separate process keeps the run under test apart from the one testing it: a fresh import of the
implementation, its own plugins and options, no shared state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def run_spec(*args: str, paths: tuple[str, ...] = ("spec",), impl: str | None = None
             ) -> tuple[dict, subprocess.CompletedProcess]:
    """``pytest <paths> <args>`` in a subprocess (no xdist, fixed order, the self-tests left out so
    that they never start themselves); returns (the JSON report, the finished process)."""
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "exercises.json"
        command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:randomly",
                   "-p", "no:xdist", "-p", "no:cacheprovider", "--ignore=spec/selftest",
                   f"--exercise-report={report_path}", *args]
        if impl is not None:
            command.append(f"--impl={impl}")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_", "SPEC_IMPL")) or k == "PYTEST_THEME"}
        env["OMP_NUM_THREADS"] = "1"   # beside the xdist workers: no oversubscribed (spinning) threads
        process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=TIMEOUT_S)
        if not report_path.exists():
            raise RuntimeError(f"the spec run wrote no report (exit {process.returncode}):\n"
                               f"{process.stdout[-3000:]}\n{process.stderr[-3000:]}")
        return json.loads(report_path.read_text(encoding="utf-8")), process


def statuses(report: dict) -> dict[str, str]:
    """exercise ID -> status, over every sheet of a report."""
    return {row["id"]: row["status"]
            for sheet in report["sheets"].values() for row in sheet["exercises"]}


def collect_spec() -> tuple[frozenset, tuple]:
    """(IDs some test verifies, (nodeid, problem) of unmarked or misplaced tests) of the whole
    spec, from a ``--collect-only`` run."""
    report, _ = run_spec("--collect-only")
    return frozenset(report["covered"]), tuple(tuple(p) for p in report["problems"])
