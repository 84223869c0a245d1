"""A submission's limits count its own CPU time (grader/judge/remote.py's watcher): a test fails when the
submission's processes burn more CPU seconds during it than its limit, in the worker, in a child it
forks or in a thread it leaves running; never because the submission waits, because the judge takes its
time, or because the machine is busy. The wall clock only bounds a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.judge import remote, sandbox

ROOT = Path(__file__).resolve().parents[2]

SUBMISSION = '''
import os
import subprocess
import sys
import threading
import time


def quick():
    return 1


def sleeper(seconds):
    time.sleep(seconds)
    return "slept"


def spinner(seconds):
    """Burns ``seconds`` of this process's CPU time."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return "spun"


def child_spinner(seconds):
    code = f"import time\\nend = time.process_time() + {seconds}\\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", code], check=True)
    return "spun in a child"


def background(seconds):
    threading.Thread(target=spinner, args=(seconds,), daemon=True).start()
    return "started"
'''

LIMIT = 1.5   # CPU seconds per test


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    """One worker for these tests (restarted by the tests that end it)."""
    path = tmp_path_factory.mktemp("limits") / "submission.py"
    path.write_text(SUBMISSION)
    loaded, error, worker = remote.start(str(path), test_cpu_seconds=LIMIT, hide_reference=True)
    assert error is None, error
    yield loaded, worker
    worker.close()


def in_test(worker, function):
    worker.begin_test()
    try:
        return function()
    finally:
        worker.end_test()


# the default run has these cases in one isolated session (below); the slow tier has each alone too
@pytest.mark.slow
def test_a_submission_that_waits_passes_and_one_that_spins_fails(worker):
    impl, process = worker
    started = time.monotonic()
    assert in_test(process, lambda: impl.sleeper(2 * LIMIT)) == "slept", "waiting costs no CPU time"
    assert time.monotonic() - started >= 2 * LIMIT
    with pytest.raises(remote.CpuLimitExceeded, match=f"used [0-9.]+ CPU seconds during this test, over the "
                                                      f"limit of {LIMIT:g}"):
        in_test(process, lambda: impl.spinner(10 * LIMIT))
    assert in_test(process, impl.quick) == 1, "the next test gets a fresh worker"


@pytest.mark.slow
def test_cpu_spent_in_a_child_the_submission_forks_counts(worker):
    impl, process = worker
    with pytest.raises(remote.CpuLimitExceeded, match="CPU seconds during this test"):
        in_test(process, lambda: impl.child_spinner(10 * LIMIT))
    assert in_test(process, impl.quick) == 1


@pytest.mark.slow
def test_a_thread_left_burning_while_the_judge_waits_fails_the_test(worker):
    """The worker's CPU time during the test counts, whoever waits: a thread the submission leaves
    spinning while the judge computes is ended, and the test's next call fails."""
    impl, process = worker

    def test():
        assert impl.background(10 * LIMIT) == "started"
        deadline = time.monotonic() + 60
        while not process.cpu_exceeded and time.monotonic() < deadline:
            time.sleep(0.1)
        return impl.quick()

    with pytest.raises(remote.CpuLimitExceeded):
        in_test(process, test)


@pytest.mark.slow
def test_the_judge_s_own_time_does_not_count(worker):
    """The judge burns twice the limit of its own CPU and waits as long (its expected values, its
    reference runs): the submission's few calls stay far under the limit."""
    impl, process = worker

    def test():
        _burn(2 * LIMIT)
        time.sleep(LIMIT)
        return [impl.quick() for _ in range(20)]

    assert in_test(process, test) == [1] * 20
    process.begin_test()
    assert process.test_cpu_used() < LIMIT / 2
    process.end_test()


def test_the_worker_s_cpu_time_is_counted_in_its_cgroup_or_its_process_tree(worker):
    impl, process = worker
    process.begin_test()
    try:
        impl.spinner(0.5)
        impl.child_spinner(0.3)
        used = process.test_cpu_used()
    finally:
        process.end_test()
    assert 0.7 <= used < LIMIT, used
    assert sandbox.tree_cpu_seconds(os.getpid()) >= time.process_time() - 0.05, "this process's own time at least"


@pytest.mark.slow   # the default run counts in a cgroup where one is made (here); this is the fallback
def test_without_a_cgroup_the_worker_s_process_tree_is_counted(tmp_path, monkeypatch):
    """Where no cgroup can be made (many containers), the CPU time of the worker's process tree is the
    measure: the worker's own and that of a child it forks both end the test."""
    monkeypatch.setattr(sandbox.Cgroup, "make", classmethod(lambda cls, name, limits: None))
    path = tmp_path / "submission.py"
    path.write_text(SUBMISSION)
    impl, error, process = remote.start(str(path), test_cpu_seconds=LIMIT, hide_reference=True)
    try:
        assert error is None and process.cgroup is None and not process.has_cgroup
        assert in_test(process, lambda: impl.sleeper(LIMIT + 0.5)) == "slept"
        with pytest.raises(remote.CpuLimitExceeded, match="CPU seconds during this test"):
            in_test(process, lambda: impl.spinner(10 * LIMIT))
        with pytest.raises(remote.CpuLimitExceeded, match="CPU seconds during this test"):
            in_test(process, lambda: impl.child_spinner(10 * LIMIT))
        assert in_test(process, impl.quick) == 1
    finally:
        process.close()


# ------------------------------------------------------------------------------ a whole session
SESSION = '''
import time


def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_slow_judge(impl):
    burn(2)            # the judge's own computation (an expected value, a reference run)
    time.sleep(1)
    assert impl.quick() == 1


def test_a_submission_that_waits(impl):
    assert impl.sleeper(2) == "slept"


def test_a_submission_that_works_within_its_limit(impl):
    assert impl.spinner(0.6) == "spun"


def test_a_submission_that_spins(impl):
    impl.spinner(60)


def test_a_submission_whose_child_spins(impl):
    impl.child_spinner(60)


def test_a_thread_that_spins_while_the_judge_waits(impl):
    impl.background(60)
    time.sleep(8)


def test_after_them_a_fresh_worker(impl):
    assert impl.quick() == 1
'''
EXPECTED = {"test_a_slow_judge": "passed", "test_a_submission_that_waits": "passed",
            "test_a_submission_that_works_within_its_limit": "passed", "test_a_submission_that_spins": "failed",
            "test_a_submission_whose_child_spins": "failed", "test_a_thread_that_spins_while_the_judge_waits": "failed",
            "test_after_them_a_fresh_worker": "passed"}


def isolated_session(tmp_path: Path) -> tuple[dict, str, float]:
    """pytest --isolate on SESSION with a CPU limit of 1.5 s per test (a wall-clock guard of 120 s):
    ({test: outcome}, the failures' messages, seconds)."""
    (tmp_path / "submission.py").write_text(SUBMISSION)
    (tmp_path / "test_session.py").write_text(textwrap.dedent(SESSION))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SPEC_IMPL"))}
    env["OMP_NUM_THREADS"] = "1"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_session.py"), "-p", "conftest", "-p", "no:randomly",
         "-p", "no:xdist", "-p", "no:cacheprovider", f"--rootdir={tmp_path}", "-c", str(tmp_path / "pytest.ini"),
         "-p", "timeout", "--timeout=120", "--timeout-method=signal", "--isolate", "--hide-reference",
         f"--impl={tmp_path / 'submission.py'}", f"--worker-cpu-limit={LIMIT}", f"--junitxml={junit}", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    assert junit.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    outcomes, messages = {}, []
    for case in ET.parse(junit).getroot().iter("testcase"):
        problems = [c for c in case if c.tag in ("failure", "error")]
        outcomes[case.get("name")] = "failed" if problems else "passed"
        messages += [(p.get("message") or "") + (p.text or "") for p in problems]
    return outcomes, "\n".join(messages), seconds


def _assert_the_limit_decides(outcomes: dict, messages: str) -> None:
    assert outcomes == EXPECTED, messages[-3000:]
    assert messages.count(f"CPU seconds during this test, over the limit of {LIMIT:g}") >= 3, messages[-3000:]
    assert "Timeout" not in messages, "no test was decided by the wall clock"


def test_in_a_session_the_cpu_limit_fails_what_burns_cpu_and_nothing_else(tmp_path):
    outcomes, messages, _ = isolated_session(tmp_path)
    _assert_the_limit_decides(outcomes, messages)


@pytest.mark.slow   # a whole isolated session beside four CPU-bound processes
def test_a_busy_machine_changes_no_outcome(tmp_path):
    """The same session with four CPU-bound processes beside it on this machine's cores: every test
    takes longer by the wall clock (the sleeping submission and the slow judge alone outlast the
    limit several times over), and every outcome is the same."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(4)]
    try:
        outcomes, messages, seconds = isolated_session(tmp_path)
    finally:
        for hog in hogs:
            os.killpg(hog.pid, signal.SIGKILL)
            hog.wait()
    _assert_the_limit_decides(outcomes, messages)
    assert seconds > 10 * LIMIT, f"{seconds:.0f} s"
