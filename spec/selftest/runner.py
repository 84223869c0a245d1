"""Run the spec in a separate pytest process and read back its per-exercise JSON report.

A separate process keeps the run under test apart from the one testing it: a fresh import of the
implementation, its own plugins and options, no shared state.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: CPU seconds a spec run (and what it starts) may use; the wall clock only bounds a hang, at WALL_FACTOR x
TIMEOUT_S = 300
WALL_FACTOR = 10


def run_limited(command: list[str], *, cpu_seconds: float = TIMEOUT_S, **popen) -> subprocess.CompletedProcess:
    """``subprocess.run(command, capture_output=True, text=True, **popen)``, ended (TimeoutExpired) once
    the process and its children have used ``cpu_seconds`` of CPU, or after WALL_FACTOR times that by
    the wall clock (a hang): a busy machine makes a run slower, never a failure."""
    from grader.judge.sandbox import tree_cpu_seconds

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True, start_new_session=True, **popen)
        deadline = time.monotonic() + WALL_FACTOR * cpu_seconds
        try:
            while True:
                try:
                    process.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    if tree_cpu_seconds(process.pid) > cpu_seconds or time.monotonic() > deadline:
                        raise
        except BaseException:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                process.kill()
            process.wait()
            raise
        out.seek(0), err.seek(0)
        return subprocess.CompletedProcess(command, process.returncode, out.read(), err.read())


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
        process = run_limited(command, cwd=ROOT, env=env)
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
# paying the 3-4 s of importing torch, numpy, scipy, sympy and sklearn again. Up to ``jobs`` children
# run side by side; one whose processes use more than its ``timeout`` of CPU seconds (or that outlives
# WALL_FACTOR times it, a hang) is killed with everything it started (its own process group). Each
# finished run is reported at once, one JSON line on stdout.
_FORK_SERVER = r"""
import json, os, signal, sys, time
import pytest
import grader.judge.warm  # noqa: F401 - the judge's libraries and pytest's plugins, imported once before the forks
from grader.judge.sandbox import tree_cpu_seconds
batch = json.loads(sys.stdin.read())
runs, jobs, timeout, wall_factor = batch["runs"], max(1, batch["jobs"]), batch["timeout"], batch["wall_factor"]

def start(run):
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.setpgid(0, 0)
            out = os.open(run["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, 1), os.dup2(out, 2)
            sys.path[:0] = run.get("path", [])
            os.environ.update(run.get("env", {}))
            code = int(pytest.main(run["args"]))
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os._exit(code)
    return pid

signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # a terminated server ends its runs first
running, queue = {}, list(range(len(runs)))   # pid -> (run index, CPU limit, wall deadline, killed)
looked = 0.0
try:
    while queue or running:
        while queue and len(running) < jobs:
            i = queue.pop(0)
            seconds = runs[i].get("timeout") or timeout
            running[start(runs[i])] = (i, seconds, time.monotonic() + wall_factor * seconds if seconds else None,
                                       False)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            i, _, _, killed = running.pop(pid)
            try:
                os.killpg(pid, signal.SIGKILL)   # whatever the run left behind
            except OSError:
                pass
            print(json.dumps({"index": i, "code": os.waitstatus_to_exitcode(status), "timed_out": killed}),
                  flush=True)
            continue
        now = time.monotonic()
        look, looked = now - looked > 0.5, looked if now - looked <= 0.5 else now
        for pid, (i, seconds, deadline, killed) in list(running.items()):
            over = deadline is not None and (now > deadline or (look and tree_cpu_seconds(pid) > seconds))
            if over and not killed:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    os.kill(pid, signal.SIGKILL)
                running[pid] = (i, seconds, deadline, True)
        time.sleep(0.02)
finally:
    for pid in running:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
"""


def batch_env(hypothesis_profile: str) -> dict[str, str]:
    """The environment of a batch of spec runs: this one's, less what would steer its pytest, with
    one thread a computation (runs go side by side) and the given hypothesis profile."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "SPEC_IMPL")) or k == "PYTEST_THEME"}
    env.update(OMP_NUM_THREADS="1", HYPOTHESIS_PROFILE=hypothesis_profile)
    return env


def fork_runs(runs: list[dict], *, env: dict[str, str], jobs: int = 1, timeout: float | None = TIMEOUT_S,
              nice: int = 0):
    """``pytest.main(run["args"])`` for each run (a dict: "args", "output" the file its stdout and
    stderr go to, optionally "path" folders put first on sys.path and "env" variables set), each in a
    child forked from one process that imported the heavy libraries once, ``jobs`` at a time, each
    killed once its processes have used ``timeout`` CPU seconds (or the run's own "timeout"), or after
    WALL_FACTOR times that by the wall clock. Yields (run index, exit code, timed out) as runs finish."""
    process = subprocess.Popen([sys.executable, "-c", _FORK_SERVER], cwd=ROOT, env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=(lambda: os.nice(nice)) if nice else None)
    with tempfile.TemporaryFile(mode="w+") as errors:
        stderr_reader = threading.Thread(target=lambda: shutil.copyfileobj(process.stderr, errors), daemon=True)
        stderr_reader.start()
        try:
            process.stdin.write(json.dumps({"runs": runs, "jobs": jobs, "timeout": timeout,
                                            "wall_factor": WALL_FACTOR}))
            process.stdin.close()
            done = 0
            for line in process.stdout:
                if line.startswith("{"):
                    result = json.loads(line)
                    done += 1
                    yield result["index"], result["code"], result["timed_out"]
            process.wait()
            stderr_reader.join()
            if process.returncode != 0 or done != len(runs):
                errors.seek(0)
                raise RuntimeError(f"the batch runner failed (exit {process.returncode}, {done} of {len(runs)} "
                                   f"runs reported):\n{errors.read()[-3000:]}")
        finally:
            if process.poll() is None:
                process.terminate()   # the server kills its runs
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


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
        # ten examples a property: enough for a wrong solution to fail
        codes = {i: code for i, code, _ in fork_runs(specs, env=batch_env("corpus"), jobs=1)}
        results = []
        for i, spec in enumerate(specs):
            output = Path(spec["output"]).read_text(encoding="utf-8", errors="replace")
            report = Path(spec["report"])
            results.append((json.loads(report.read_text(encoding="utf-8")) if report.exists() else None,
                            subprocess.CompletedProcess(spec["args"], codes[i], output, "")))
        return results
