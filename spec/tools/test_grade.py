"""The grader (python -m spec.grade): points per exercise for another implementation, isolation from
crashes, loops and tampering, notebooks, and clear reports for submissions that cannot be loaded."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from spec.grade import grade, main, write_reports

IMPLS = Path(__file__).resolve().parents[1] / "selftest" / "impls"
PS09_1 = [f"ps09.1-{i}" for i in range(1, 6)]


def statuses(result) -> dict[str, str]:
    return {row["id"]: row["status"] for row in result.exercise_rows() if row["id"] in PS09_1}


def expect(failing):
    return {eid: ("failed" if eid in failing else "passed") for eid in PS09_1}


def test_reference_earns_every_point(tmp_path):
    result = grade(str(Path(__file__).resolve().parents[2] / "impl"), selection=("ps09.1",))
    assert statuses(result) == expect(set())
    data = write_reports(result, tmp_path)
    assert (data["earned"], data["points"]) == (5, 5)


def test_wrong_solution_loses_only_its_exercise_with_a_message(tmp_path):
    result = grade(str(IMPLS / "ps09_sigmoid_plus.py"), selection=("ps09.1",))
    assert statuses(result) == expect({"ps09.1-2"})
    data = write_reports(result, tmp_path)
    row = next(r for r in data["sheets"]["ps09"]["exercises"] if r["id"] == "ps09.1-2")
    assert row["earned"] == 0 and row["passed"] > 0, "all-or-nothing: one failing test costs the exercise"
    assert any("should be" in f["message"] for f in row["failures"]), "failure messages a student can act on"
    markdown = (tmp_path / "grade.md").read_text()
    assert "4 / 5 points" in markdown and "ps09.1-2" in markdown
    suites = ET.parse(tmp_path / "junit.xml").getroot()
    failed = {s.get("name") for s in suites if int(s.get("failures")) > 0}
    assert failed == {"ps09.1-2"}
    assert json.loads((tmp_path / "grade.json").read_text())["earned"] == 4


def test_crash_costs_only_the_test_that_crashed(tmp_path):
    result = grade(str(IMPLS / "crash_in_trace.py"), selection=("ps09.1",))
    assert statuses(result) == expect({"ps09.1-4"})
    crashed = [t for t in result.tests.values() if t.outcome == "crashed"]
    assert sum("died (exit code 7)" in t.message for t in crashed) == 1, "one test ran and crashed"
    assert all("crashed" in t.message or "died" in t.message for t in crashed)
    assert {e for t in crashed for e in t.exercises} == {"ps09.1-4"}
    assert result.runs > 1, "the grader restarted the spec after the crash"
    write_reports(result, tmp_path)
    assert (tmp_path / "grade.md").exists()


def test_infinite_loop_hits_the_per_test_timeout():
    result = grade(str(IMPLS / "loop_in_second_derivative.py"), selection=("ps09.1-5", "ps09.1-1"), timeout=2)
    got = {k: v for k, v in statuses(result).items() if k in ("ps09.1-1", "ps09.1-5")}
    assert got == {"ps09.1-1": "passed", "ps09.1-5": "failed"}
    assert any("Timeout" in t.message for t in result.tests.values() if t.outcome == "failed")


@pytest.mark.slow   # waits out the grader's grace for the stuck process to exit
def test_thread_left_running_costs_its_exercise_and_does_not_stall_the_grader():
    """The leak guard fails the tests whose solution leaves a non-daemon thread behind; the spec process,
    which that thread keeps from exiting, is ended once its session has finished."""
    import time

    started = time.monotonic()
    result = grade(str(IMPLS / "thread_left_running.py"), selection=("ps09.1",))
    assert statuses(result) == expect({"ps09.1-4"})
    failed = [t for t in result.tests.values() if t.outcome == "failed"]
    assert failed and all("non-daemon thread 'never-ends'" in t.message for t in failed), failed[:1]
    assert result.runs == 1 and time.monotonic() - started < 120, "ended after its session, not at run_timeout"


def test_tampering_with_pytest_is_detected_and_scores_zero():
    result = grade(str(IMPLS / "tamper_with_pytest.py"), selection=("ps09.1",))
    assert result.tampered == ["_pytest.runner.call_and_report"]
    assert set(statuses(result).values()) == {"failed"}
    assert result.as_dict()["earned"] == 0


def test_notebook_submission_skips_exploration_cells(tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# My solutions"),
        nbformat.v4.new_code_cell("%matplotlib inline\nfrom impl.calculus import *\nimport torch"),
        nbformat.v4.new_code_cell("raise RuntimeError('exploring')", metadata={"tags": ["exploration"]}),
        nbformat.v4.new_code_cell("# exploration\nwhile True: pass"),
        nbformat.v4.new_code_cell("def trace_square_gradient(A):\n    return 2 * torch.as_tensor(A)"),
    ]
    path = tmp_path / "solution.ipynb"
    nbformat.write(notebook, path)
    result = grade(str(path), selection=("ps09.1",))
    assert statuses(result) == expect({"ps09.1-4"}), "the notebook's own trace gradient (2A) is wrong"


@pytest.mark.parametrize("kind", ["missing", "not json notebook", "syntax error package", "wrong suffix"])
def test_unloadable_submissions_get_a_clear_report(tmp_path, kind, capsys):
    if kind == "missing":
        target = tmp_path / "nothing_here.py"
    elif kind == "not json notebook":
        target = tmp_path / "broken.ipynb"
        target.write_text("this is not JSON")
    elif kind == "syntax error package":
        target = tmp_path / "package"
        target.mkdir()
        (target / "__init__.py").write_text("def broken(:\n    pass\n")
    else:
        target = tmp_path / "solution.txt"
        target.write_text("x = 1")
    out = tmp_path / "out"
    assert main([str(target), "--exercise", "ps09.1-1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Traceback" not in printed
    data = json.loads((out / "grade.json").read_text())
    assert data["earned"] == 0
    text = (out / "grade.md").read_text()
    expected = {"missing": "no such file", "not json notebook": "not a readable Jupyter notebook",
                "syntax error package": "SyntaxError", "wrong suffix": "expected a .py file"}[kind]
    assert expected in text, text[:1500]
