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


# One process imports the heavy libraries once, then forks a fresh child per run: each child runs
# pytest.main on its own (a fresh import of its implementation, its own plugins and options) without
# paying the 3-4 s of importing torch, numpy, scipy, sympy and sklearn again.
_BATCH_CHILD = r"""
import gc, json, os, sys
# imported once, before the forks: the libraries, torch's compiler (the first optimizer imports it), the plugins
import numpy, scipy, sklearn, sympy, torch, torch._dynamo, hypothesis, pytest  # noqa: F401
import hypothesis.extra.pytestplugin, pytest_benchmark.plugin, pytest_timeout, xdist.plugin  # noqa: F401
runs = json.loads(sys.stdin.read())
gc.freeze()   # what the imports made is never collected: each child's collections walk only its own objects
codes = []
for run in runs:
    pid = os.fork()
    if pid == 0:
        out = os.open(run["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1), os.dup2(out, 2)
        code = 3
        try:
            code = int(pytest.main(run["args"]))
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os._exit(code)
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(json.dumps(codes))
"""


def run_spec_batch(runs: list[tuple[tuple[str, ...], tuple[str, ...], str | None]]
                   ) -> list[tuple[dict | None, subprocess.CompletedProcess]]:
    """Several ``run_spec(*args, paths=paths, impl=impl)`` runs, given as (args, paths, impl), in one
    subprocess that forks a child per run; returns (the JSON report or None, the run) for each."""
    with tempfile.TemporaryDirectory() as tmp:
        specs = []
        for i, (args, paths, impl) in enumerate(runs):
            report_path = Path(tmp) / f"exercises-{i}.json"
            command = [*paths, "-q", "-p", "no:randomly", "-p", "no:xdist", "-p", "no:cacheprovider",
                       "--ignore=spec/selftest", f"--exercise-report={report_path}", "--exercise-first-failure",
                       *args]
            if impl is not None:
                command.append(f"--impl={impl}")
            specs.append({"args": command, "output": str(Path(tmp) / f"output-{i}.txt"), "report": str(report_path)})
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_", "SPEC_IMPL")) or k == "PYTEST_THEME"}
        env["OMP_NUM_THREADS"] = "1"
        env["HYPOTHESIS_PROFILE"] = "corpus"   # ten examples a property: enough for a wrong solution to fail
        process = subprocess.run([sys.executable, "-c", _BATCH_CHILD], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=TIMEOUT_S, input=json.dumps(specs))
        if process.returncode != 0:
            raise RuntimeError(f"the batch runner failed (exit {process.returncode}):\n{process.stderr[-3000:]}")
        codes = json.loads(process.stdout.strip().splitlines()[-1])
        results = []
        for spec, code in zip(specs, codes, strict=True):
            output = Path(spec["output"]).read_text(encoding="utf-8", errors="replace")
            report = Path(spec["report"])
            results.append((json.loads(report.read_text(encoding="utf-8")) if report.exists() else None,
                            subprocess.CompletedProcess(spec["args"], code, output, "")))
        return results
