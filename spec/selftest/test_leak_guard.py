"""The leak guard (conftest.py's autouse ``leak_guard``, spec/plugins/leaks.py) and the hang timeout: run
pytest with the spec's plugin on small test files, in a separate process, and read the outcomes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest

from spec.plugins import leaks
from spec.selftest.runner import ROOT

needs_children = pytest.mark.skipif(leaks.children() is None or not hasattr(os, "waitid"),
                                    reason="child processes are listed from /proc or psutil (neither here)")

LEAKY = '''
import os
import subprocess
import sys
import threading
import time

import pytest

release = threading.Event()
kept = []


@pytest.fixture(scope="module", autouse=True)
def let_the_threads_go():
    yield               # torn down after the guard looked: the leaked thread ends, the run can exit
    release.set()


def test_leaks_a_thread():
    threading.Thread(target=release.wait, name="forgotten-watchdog").start()


def test_leaks_a_child_process():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_leaves_a_zombie():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)   # it has exited; WNOWAIT: not reaped
    kept.append(child)  # a Popen collected as garbage polls (and so reaps) its process; this one is kept


def test_clean_thread_and_process():
    thread = threading.Thread(target=time.sleep, args=(0.05,), name="joined")
    thread.start()
    thread.join()
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_daemon_thread_may_outlive_the_test():
    threading.Thread(target=release.wait, name="daemon-helper", daemon=True).start()


def test_thread_that_ends_just_after_the_test():
    threading.Thread(target=time.sleep, args=(0.3,), name="finishing").start()
'''


def run_pytest(tmp_path, source: str, *args: str, timeout: float = 120, workers: int = 0
               ) -> tuple[dict, subprocess.CompletedProcess]:
    """pytest with the spec's plugin (conftest.py) on ``source``; returns ({test name: (outcome,
    message)}, the finished process). The outcome is the worst of setup, call and teardown."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_subject.py").write_text(textwrap.dedent(source))
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SPEC_IMPL"))}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "pytest", str(tmp_path / "test_subject.py"), "-p", "conftest",
               "-p", "no:randomly", *(("-p", "xdist", "-n", str(workers)) if workers else ("-p", "no:xdist")),
               "-p", "no:cacheprovider", f"--rootdir={tmp_path}",
               "-c", str(tmp_path / "pytest.ini"), f"--junitxml={junit}", "-q", *args]
    process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    outcomes = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            problems = [child for child in case if child.tag in ("failure", "error")]
            outcomes[case.get("name")] = (("failed", problems[0].get("message", "") + (problems[0].text or ""))
                                          if problems else ("passed", ""))
    return outcomes, process


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    return run_pytest(tmp_path_factory.mktemp("leaky"), LEAKY, "--hang-timeout=120", "-v")


def test_a_leaked_non_daemon_thread_fails_its_test(leaky):
    outcomes, process = leaky
    outcome, message = outcomes["test_leaks_a_thread"]
    assert outcome == "failed", process.stdout[-3000:]
    assert "non-daemon thread 'forgotten-watchdog'" in message and "still alive" in message, message


@needs_children
def test_a_leaked_child_process_fails_its_test_and_is_killed(leaky):
    outcomes, process = leaky
    outcome, message = outcomes["test_leaks_a_child_process"]
    assert outcome == "failed", process.stdout[-3000:]
    assert "child process pid" in message and "time.sleep(60)" in message and "still running" in message, message
    pid = int(message.split("child process pid ")[1].split()[0])
    assert not os.path.exists(f"/proc/{pid}") or "Z" not in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1][:3], \
        "the guard kills and reaps what it reports"


@needs_children
def test_an_unreaped_child_fails_its_test(leaky):
    outcome, message = leaky[0]["test_leaves_a_zombie"]
    assert outcome == "failed" and "a zombie (exited, never waited for)" in message, message


@pytest.mark.parametrize("name", ["test_clean_thread_and_process", "test_daemon_thread_may_outlive_the_test",
                                  "test_thread_that_ends_just_after_the_test"])
def test_what_ends_or_may_outlive_the_test_passes(leaky, name):
    outcomes, process = leaky
    assert outcomes[name] == ("passed", ""), process.stdout[-3000:]


def test_the_run_reports_the_leaks_and_exits(leaky):
    outcomes, process = leaky
    assert len(outcomes) == 6, process.stdout[-3000:]
    assert process.returncode == 1, f"exit code {process.returncode}: the leaks are failures"
    assert "hang timeout: 120 s" in process.stdout, "the header announces the hang timeout (which did not expire)"


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)], ids=["plain", "xdist"])
def test_hang_timeout_ends_a_run_stuck_in_one_place_with_every_stack(tmp_path, workers):
    """A test stuck where no per-test timeout reaches (here: a wait with signals blocked) ends the run
    once nothing has progressed for the hang timeout, exit code 1, with the stuck thread's stack on
    stderr (under xdist the stuck worker's, a little before the controller's). The tests that
    finished before it count as progress: the wait is from the last of them, not from the start."""
    source = '''
        import signal
        import threading
        import time


        def test_a_first_test_that_takes_its_time():
            time.sleep(SECONDS * 0.6)


        def test_hangs():
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGALRM})
            threading.Event().wait()
        '''
    seconds = 20 if workers else 2   # under xdist: time for the workers to start, even on a busy machine
    started = time.monotonic()
    _, process = run_pytest(tmp_path, source.replace("SECONDS", str(seconds)), f"--hang-timeout={seconds}",
                            timeout=90, workers=workers)
    elapsed = time.monotonic() - started
    assert process.returncode == 1, process.stdout[-2000:] + process.stderr[-2000:]
    output = process.stdout + process.stderr
    assert f"Timeout (0:00:{seconds:02d})!" in output, output[-3000:]
    assert "in test_hangs" in output, output[-3000:]
    assert elapsed < 2 * seconds + 60, f"{elapsed:.0f} s"
    if not workers:
        assert elapsed > 1.5 * seconds, f"{elapsed:.1f} s: the first test's progress re-armed the watchdog"


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)], ids=["plain", "xdist"])
def test_a_slow_run_that_keeps_progressing_is_never_ended(tmp_path, workers):
    """Every test here is slow and the whole run takes several times the hang timeout, as on a busy
    machine, but no process goes the hang timeout without a test finishing: the run passes (a session
    budget of the same length would have ended it)."""
    seconds = 30 if workers else 2   # under xdist: longer than a worker's start on a busy machine
    count = 6 if workers else 4
    source = f'''
        import time

        import pytest


        @pytest.mark.parametrize("step", range({count}))
        def test_slow_step(step):
            time.sleep({seconds * 0.45})
        '''
    started = time.monotonic()
    outcomes, process = run_pytest(tmp_path, source, f"--hang-timeout={seconds}", timeout=120, workers=workers)
    elapsed = time.monotonic() - started
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    assert len(outcomes) == count and all(o == ("passed", "") for o in outcomes.values()), outcomes
    assert "Timeout (" not in process.stdout + process.stderr
    assert elapsed > 1.3 * seconds, f"{elapsed:.1f} s: the run outlasted its hang timeout"


def test_hang_timeout_must_be_positive(tmp_path):
    _, process = run_pytest(tmp_path, "def test_nothing():\n    pass\n", "--hang-timeout=0")
    assert process.returncode == 4 and "give a positive number of seconds" in process.stderr, process.stderr
