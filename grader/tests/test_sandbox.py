"""What the sandbox holds and what limits the worker as a whole (grader/judge/sandbox.py), checked on the
plan itself and on real processes."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.judge import sandbox

ROOT = Path(__file__).resolve().parents[2]


def _binds(prefix: list[str]) -> list[str]:
    """The host paths bubblewrap's command line binds."""
    return [prefix[i + 1] for i, arg in enumerate(prefix) if arg in ("--ro-bind", "--ro-bind-try", "--bind")]


@pytest.mark.parametrize("extra", ["parent", "root", "cwd", "spec", "grandparent"])
def test_the_interpreter_paths_never_hold_the_checkout_or_the_folder_graded_from(extra, monkeypatch, tmp_path):
    """However the grader was started (PYTHONPATH above the checkout, an editable install, a class
    folder as the working directory), only the interpreter's own folders are bound."""
    entry = {"parent": ROOT.parent, "root": ROOT, "cwd": tmp_path, "spec": ROOT / "spec",
             "grandparent": ROOT.parent.parent}[extra]
    monkeypatch.setattr(sys, "path", [str(entry), *sys.path])
    monkeypatch.chdir(tmp_path)
    paths = sandbox._python_paths()
    for path in paths:
        assert not sandbox._under(str(ROOT), path), f"{path} holds the checkout"
        assert not sandbox._under(os.path.realpath(tmp_path), path), f"{path} holds the working directory"
        assert not sandbox._under(path, str(ROOT)) or sandbox._under(path, os.path.realpath(sys.prefix))
    assert any(sandbox._under(os.path.realpath(sys.executable), p) or
               os.path.dirname(os.path.realpath(sys.executable)) == p for p in paths), paths


def test_the_sandbox_binds_the_workers_code_and_the_courses_data_only(tmp_path):
    if not sandbox.bwrap_works():
        pytest.skip("bubblewrap is not available on this machine (the grade says so)")
    prefix, _, what = sandbox.plan(tmp_path, hide_reference=True)
    project = [p for p in _binds(prefix) if sandbox._under(p, str(ROOT)) and not
               sandbox._under(p, os.path.realpath(sys.prefix))]
    assert sorted(project) == sorted(str(p) for p in sandbox.WORKER_FILES), project
    assert not any(sandbox._under(str(ROOT / "spec" / "selftest"), p) for p in _binds(prefix))
    assert "course's data" in what


def test_the_workers_environment_is_an_allowlist(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADER_TOKEN", "s3cr3t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "k3y")
    env = sandbox.worker_environment(tmp_path)
    assert "GRADER_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert set(env) <= {*sandbox.PASSED_ENVIRONMENT, "PATH", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "HOME",
                        "TMPDIR", "XDG_CACHE_HOME", "MPLCONFIGDIR", "MPLBACKEND", "OMP_NUM_THREADS",
                        "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
    assert env["HOME"] == env["TMPDIR"] == str(tmp_path) and env["PYTHONPATH"] == str(ROOT)


def _group(limits):
    group = sandbox.Cgroup.make(f"spec-test-{os.getpid()}-{time.monotonic_ns()}", limits)
    if group is None:
        pytest.skip("no cgroup can be made on this machine: the grade states the per-process fallback")
    return group


FORKS = """
import os, sys, time
kind, n = sys.argv[1], int(sys.argv[2])
kids = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if kind == "memory":
            block = b"x" * (700 * 2**20)
            time.sleep(3)
            os._exit(0)
        while True:
            pass
    kids.append(pid)
print(" ".join(str(os.waitpid(k, 0)[1]) for k in kids), flush=True)
"""


def test_a_cgroup_limits_the_memory_of_the_worker_and_its_children_together():
    """Three children of 700 MiB each, setsid included, under a 1.5 GiB limit for the group: the group
    never holds more, and at least one child is killed."""
    group = _group(dataclasses.replace(sandbox.Limits(), memory_bytes=3 * 2**29))
    try:
        done = subprocess.run([sys.executable, "-c", FORKS, "memory", "3"], preexec_fn=group.enter,
                              capture_output=True, text=True, timeout=60)
        statuses = [int(s) for s in done.stdout.split()]
        assert len(statuses) == 3 and any(s != 0 for s in statuses), done
        assert 0 < group.memory_peak() <= 3 * 2**29 + 2**24, group.memory_peak()
    finally:
        group.remove()


def test_a_cgroup_caps_the_cpu_of_spinning_setsid_children_and_ends_them_all():
    """Four spinning setsid children get one core between them, and removing the group ends every one."""
    group = _group(sandbox.Limits())
    process = subprocess.Popen([sys.executable, "-c", FORKS, "cpu", "4"], preexec_fn=group.enter,
                               stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        before, started = group.cpu_seconds(), time.monotonic()
        time.sleep(2.0)
        rate = (group.cpu_seconds() - before) / (time.monotonic() - started)
        assert rate < 1.3, f"{rate:.2f} cores for four spinning children"
        assert len(group._pids()) == 5
    finally:
        group.remove()
        process.wait(timeout=30)
    assert group._pids() == []
