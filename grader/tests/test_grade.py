"""The grader (python -m spec.grade): points per exercise for another implementation, isolation from
crashes, loops and tampering, notebooks, and clear reports for submissions that cannot be loaded."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

import pytest

from grader.judge.grade import grade, main, write_reports
from spec.catalogue import load

IMPLS = Path(__file__).resolve().parents[2] / "spec" / "selftest" / "impls"
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
    # --profile: the worker's launch and the CPU seconds of both sides come from the judge's records
    profile = data["profile"]
    assert 0 < profile["worker launch"] < profile["judge start-up"], profile
    assert profile["worker CPU, start and load"] > 0, profile
    per_test = [t.cpu for t in result.tests.values() if t.cpu is not None]
    assert len(per_test) == len(result.tests) and profile["worker CPU, tests"] == pytest.approx(sum(per_test),
                                                                                                abs=0.01)
    assert 0 < profile["judge CPU, tests"] < profile["judge CPU, in all"], profile


def test_wrong_solution_loses_only_its_exercise_with_a_message(tmp_path):
    result = grade(str(IMPLS / "ps09_sigmoid_plus.py"), selection=("ps09.1",), hide_reference=False)
    assert statuses(result) == expect({"ps09.1-2"})
    data = write_reports(result, tmp_path)
    row = next(r for r in data["sheets"]["ps09"]["exercises"] if r["id"] == "ps09.1-2")
    assert row["earned"] == 0 and row["failures"], "all-or-nothing: one failing test costs the exercise"
    assert any("should be" in f["message"] for f in row["failures"]), "failure messages a student can act on"
    markdown = (tmp_path / "grade.md").read_text()
    assert "4 / 5 points" in markdown and "ps09.1-2" in markdown
    suites = ET.parse(tmp_path / "junit.xml").getroot()
    failed = {s.get("name") for s in suites if int(s.get("failures")) > 0}
    assert failed == {"ps09.1-2"}
    assert json.loads((tmp_path / "grade.json").read_text())["earned"] == 4


def test_crash_costs_only_the_test_that_crashed(tmp_path):
    """The worker ends (os._exit(7)) in every trace-gradient call: those tests fail with the cause, the
    judge starts a fresh worker for the next test, and nothing else is lost."""
    result = grade(str(IMPLS / "crash_in_trace.py"), selection=("ps09.1",), hide_reference=False)
    assert statuses(result) == expect({"ps09.1-4"})
    failed = [t for t in result.tests.values() if t.outcome == "failed"]
    assert failed and all("exit status 7" in t.message or "no further start" in t.message for t in failed), failed[0]
    assert {e for t in failed for e in t.exercises} == {"ps09.1-4"}
    assert result.runs == 1, "the judge itself never crashed"
    write_reports(result, tmp_path)
    assert (tmp_path / "grade.md").exists()


@pytest.mark.slow   # a whole grade (a judge and a worker): the default run keeps three of them
def test_infinite_loop_hits_the_per_test_cpu_limit():
    """A loop burns the submission's CPU time: its test fails at the limit of 2 CPU seconds, with the
    seconds said, long before the wall clock's hang guard (20 s); its exercise's other tests are not run."""
    import time

    started = time.monotonic()
    result = grade(str(IMPLS / "loop_in_second_derivative.py"), selection=("ps09.1-5", "ps09.1-1"), timeout=2,
                   hide_reference=False)
    got = {k: v for k, v in statuses(result).items() if k in ("ps09.1-1", "ps09.1-5")}
    assert got == {"ps09.1-1": "passed", "ps09.1-5": "failed"}
    failed = [t for t in result.tests.values() if t.outcome == "failed"]
    assert any("CPU seconds during this test, over the limit of 2" in t.message for t in failed), failed[:1]
    assert not any("Timeout" in t.message for t in failed), "the wall clock decided nothing"
    assert result.as_dict()["limits"]["cpu_seconds_per_test"] == 2
    assert time.monotonic() - started < 300


@pytest.mark.slow
def test_thread_left_running_does_not_stall_the_grader():
    """A non-daemon thread that never ends lives in the worker, which the judge ends with the session:
    the grade finishes at once and the (correct) gradient keeps its points."""
    import time

    started = time.monotonic()
    result = grade(str(IMPLS / "thread_left_running.py"), selection=("ps09.1",), hide_reference=False)
    assert statuses(result) == expect(set())
    assert result.runs == 1 and time.monotonic() - started < 120, "ended after its session, not at run_timeout"


@pytest.mark.slow   # a whole grade (a judge and a worker): the default run keeps three of them
def test_tampering_with_pytest_in_the_worker_changes_nothing():
    """Replacing pytest's call_and_report at import patches the worker's pytest, which runs no test: the
    judge's verdicts are untouched, and the honest part (the reference) earns exactly its points."""
    result = grade(str(IMPLS / "tamper_with_pytest.py"), selection=("ps09.1",), hide_reference=False)
    assert result.tampered == []
    assert statuses(result) == expect(set())


@pytest.mark.slow   # a whole grade (a judge and a worker): the default run keeps three of them
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
    result = grade(str(path), selection=("ps09.1",), hide_reference=False)
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
    package = ["--package"] if kind == "syntax error package" else []
    assert main([str(target), "--exercise", "ps09.1-1", "--out", str(out), *package]) == 0
    printed = capsys.readouterr().out
    assert "Traceback" not in printed
    data = json.loads((out / "grade.json").read_text())
    assert data["earned"] == 0
    text = (out / "grade.md").read_text()
    expected = {"missing": "no such file", "not json notebook": "not a readable Jupyter notebook",
                "syntax error package": "SyntaxError", "wrong suffix": "expected a .py file"}[kind]
    assert expected in text, text[:1500]


NOTEBOOKS = Path(__file__).resolve().parents[2] / "spec" / "selftest" / "notebooks"
EX08_AUTO = ["ex08.linreg-tensors", "ex08.linreg-module", "ex08.linreg-nn", "ex08.mlp"]


class StudentCase(NamedTuple):
    """A notebook written from a sheet (and its course template) alone, in a student's style, with the
    exercises it must fail; ``alias`` maps its own names onto the interface."""
    sheet: str
    notebook: str
    failing: frozenset = frozenset()
    alias: str | None = None
    message: str = ""         # a failure message the student must see
    slow: bool = False
    named: str = ""           # the likely mistake its grade must name ("Looks like ..."); none for a correct one


STUDENTS = [
    StudentCase("ex08", "ex08_solution", slow=True),   # 20 s; the default run grades a notebook in the magics test
    StudentCase("ex08", "ex08_wrong_shape", frozenset({"ex08.linreg-tensors"}),
                message="but should be (1, 1)", slow=True, named="a column squeezed to a vector"),
    StudentCase("ex08", "ex08_no_zero_grad", frozenset({"ex08.linreg-tensors", "ex08.linreg-nn"}),
                message="zero_grad() missing", slow=True, named="gradients accumulated"),
    StudentCase("ps09", "ps09_solution", alias="ps09_aliases.toml", slow=True),
    StudentCase("ps09", "ps09_wrong_trace", frozenset({"ps09.1-4"}), alias="ps09_aliases.toml", slow=True,
                named="the transpose"),
    StudentCase("moons", "moons_solution", slow=True),
    # the training step uses the broken backward pass: both exercises lose their point
    StudentCase("moons", "moons_wrong_backward", frozenset({"moons.manual-backward", "moons.manual-train"}),
                message="by hand vs autograd", slow=True, named="the ReLU's derivative left out"),
    StudentCase("a7", "a7_solution", slow=True),
    StudentCase("a7", "a7_wrong_conv", frozenset({"a7.conv2d"}), message="conv2d vs F.conv2d", slow=True,
                named="the kernel not flipped"),
    StudentCase("dl-a1", "dl-a1_solution", slow=True),
    StudentCase("dl-a1", "dl-a1_wrong_q1a", frozenset({"dl-a1.q1a"}), message="dJ/db2", slow=True,
                named="the sign flipped"),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.notebook, marks=[pytest.mark.slow] if c.slow else [])
                                  for c in STUDENTS])
def test_student_notebook_written_from_the_sheet(tmp_path, case):
    """Graded unedited, with the course's helper module staged beside it (its classmates in the same folder are
    not), from a copy of its folder, so that what the cells write stays out of the checkout: a correct
    notebook earns every automatic point, a wrong one loses exactly the exercises its mistake breaks."""
    import shutil

    folder = shutil.copytree(NOTEBOOKS / case.sheet, tmp_path / case.sheet)
    alias = str(folder / case.alias) if case.alias else None
    helpers = tuple(sorted(p.name for p in folder.glob("*.py")))   # the course's helper module, handed out
    result = grade(str(folder / f"{case.notebook}.ipynb"), selection=(case.sheet,), alias=alias, helpers=helpers)
    catalogue = load()
    expected = {e.id: ("by hand" if e.fully_manual else "failed" if e.id in case.failing else "passed")
                for e in catalogue.of_sheet(case.sheet)}
    assert {row["id"]: row["status"] for row in result.exercise_rows()} == expected
    data = write_reports(result, tmp_path / "grade")
    sheet = catalogue.of_sheet(case.sheet)
    assert data["points"] == sum(e.auto_points for e in sheet)
    assert data["manual_points"] == sum(e.manual_points for e in sheet)
    assert data["earned"] == sum(e.auto_points for e in sheet if e.id not in case.failing)
    errors = [c for c in data["notebook"]["cells"] if c["status"] == "error"]
    assert data["notebook"] and (case.failing or not errors), errors   # a wrong one may trip its own asserts
    markdown = (tmp_path / "grade" / "grade.md").read_text()
    assert "robustness" in markdown and ("Reference answer" in markdown) == (data["manual_points"] > 0)
    messages = " ".join(f["message"] for info in data["sheets"].values() for row in info["exercises"]
                        for f in row["failures"])
    assert case.message in messages
    # the likely mistake named in the grade a student reads, and never a hint on a correct notebook
    hints = {line.split("Looks like", 1)[1][:120] for line in markdown.splitlines() if "Looks like" in line}
    assert any(case.named in hint for hint in hints) if case.named else not hints, hints


@pytest.mark.slow   # a whole grade (a judge and a worker): the default run keeps three of them
def test_no_points_leak_through_tests_that_never_reach_the_submission(tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    result = grade(str(empty), selection=("ex08",))
    data = write_reports(result, tmp_path)
    assert data["earned"] == 0, data
    assert {row["id"] for info in data["sheets"].values() for row in info["exercises"]} == \
        {e for e in EX08_AUTO} | {"ex08.vanishing-bound"}, "only the selected exercises are reported"


@pytest.mark.slow   # a whole grade (a judge and a worker): the default run keeps three of them
def test_a_selected_exercise_does_not_report_its_neighbour():
    result = grade(str(Path(__file__).resolve().parents[2] / "impl"), selection=("dl-a1.q2b",))
    assert [row["id"] for row in result.exercise_rows()] == ["dl-a1.q2b"]
    assert all(t.exercises == ["dl-a1.q2b"] for t in result.tests.values()), "a shared test reports q2b only"


@pytest.mark.parametrize("helper", ["/course/test_utils.py", "utils/test_utils.py", "..", "."])
def test_a_helper_given_as_a_path_is_a_usage_error(tmp_path, helper, capsys):
    """--helpers names a file taken from beside each submission: a path would stage nothing, silently."""
    (tmp_path / "a.py").write_text("", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "a.py"), "--out", str(tmp_path / "out"), "--helpers", helper])
    assert exit_.value.code == 2 and f"--helpers {helper}: give the file's name" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_malformed_records_are_ignored_never_a_crash(tmp_path):
    from grader.judge.grade import _read_records

    path = tmp_path / "records.jsonl"
    path.write_text("\n".join([
        '{"event": "collected", "nodeid": "t::a", "exercises": ["ps09.1-1"]}',
        "not json at all", "[1, 2]", '{"event": "result"}', '{"event": "result", "nodeid": 3, "outcome": "passed",'
        ' "message": ""}', '{"event": "nonsense", "nodeid": "t::a"}', '{"event": "start", "nodeid": "t::a"}',
        "[" * 100000, '{"event": "result", "nodeid": "t::a", "outcome": "passed", "message": ""', ""]))
    assert [e["event"] for e in _read_records(path)] == ["collected", "start"]


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan"), 10 ** 400, -1, True, "3", None])
def test_the_worker_s_account_of_a_notebook_has_a_finite_time(bad):
    """The worker (where the submission runs) reports the cells' seconds: a value that is no count of
    seconds is read as 0, never an infinity in the reports or an OverflowError in the judge."""
    from grader.judge.remote import _notebook_record

    assert _notebook_record({"path": "n.ipynb", "cells": [], "seconds": bad}).seconds == 0.0
    assert _notebook_record({"path": "n.ipynb", "cells": [], "seconds": 2.5}).seconds == 2.5


@pytest.mark.parametrize("bad", ["1e999", "-1e999", "NaN", "1" + "0" * 400, "-1", "true", '"3"', "[1]", "1e12"])
def test_a_count_of_seconds_that_is_no_count_is_left_out_of_the_grade(bad):
    """Seconds in the records (a test's CPU, the judge's and worker's CPU, the cells' time) count only as
    finite numbers from 0 up to a year: anything else is left out, never a crash or an infinity."""
    from grader.judge.grade import Grade, _add_profile, _parse, _take_events

    lines = ['{"event": "collected", "nodeid": "t::a", "exercises": ["ps09.1-1"]}',
             '{"event": "start", "nodeid": "t::a", "t": 1.0}',
             f'{{"event": "result", "nodeid": "t::a", "outcome": "passed", "message": "", "cpu": {bad}, "t": 2.0}}',
             f'{{"event": "finished", "exitstatus": 0, "cpu": {bad}, "tests_cpu": {bad}, "load_cpu": {bad}}}',
             f'{{"event": "notebook", "path": "n.ipynb", "seconds": {bad}, "cells": []}}']
    events = [e for line in lines if (e := _parse(line)) is not None]
    result = Grade(target="t")
    _take_events(result, load(), events)
    profile: dict = {}
    _add_profile(profile, events, 0.0, 3.0)
    assert result.tests["t::a"].cpu is None
    assert profile["worker CPU, tests"] == 0.0
    assert not {"worker CPU, start and load", "judge CPU, tests", "judge CPU, in all", "notebook cells"} & set(profile)
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile


@pytest.mark.slow   # a whole grade (a judge and a worker): the default run keeps three of them
def test_what_the_submission_starts_ends_with_the_grade(tmp_path):
    """Children started at import, one of them in a session of its own (setsid), do not outlive the
    grade: bubblewrap's pid namespace ends them all; without it the process group ends the plain one."""
    import os
    import random
    import time

    marks = [f"{300 + random.random():.9f}" for _ in range(2)]
    submission = tmp_path / "spawner.py"
    submission.write_text("import subprocess\n"
                          f"subprocess.Popen(['sleep', '{marks[0]}'])\n"
                          f"subprocess.Popen(['sleep', '{marks[1]}'], start_new_session=True)\n"
                          "from impl import derivative, ps09_f\n")
    result = grade(str(submission), selection=("ps09.1-1",), hide_reference=False)
    assert ("bubblewrap" in result.isolation) == shielded(), result.isolation
    assert statuses(result)["ps09.1-1"] == "passed", "the honest part keeps its points"

    def running(mark):
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmd, open(f"/proc/{entry}/stat") as stat:
                    if mark.encode() in cmd.read() and not stat.read().split(") ")[-1].startswith("Z"):
                        return True
            except OSError:
                continue
        return False

    time.sleep(1)
    assert not running(marks[0]), "a child started by the submission outlived the grade"
    if shielded():
        assert not running(marks[1]), "a setsid child outlived the grade despite the pid namespace"


HOSTILE = Path(__file__).resolve().parents[2] / "spec" / "selftest" / "hostile"


def shielded() -> bool:
    from grader.judge.sandbox import bwrap_works

    return bwrap_works()


class Hostile(NamedTuple):
    path: Path
    earned: float            # the points of its honest part, of ps09 part 1's 5
    hide_reference: bool = True
    slow: bool = True
    timeout: float = 60
    budget: float = 1800
    helpers: tuple = ("_nothing.py",)   # the hostile files' shared helper, staged beside each


HOSTILE_CASES = {
    # forged verdicts: records appended from the worker, a pytest plugin registered, the writer shadowed
    "forge_records": Hostile(HOSTILE / "forge_records.py", 0),
    "plugin_makereport": Hostile(HOSTILE / "plugin_makereport.py", 0),
    # the reference imported; the spec written on disk
    "import_reference": Hostile(HOSTILE / "import_reference.py", 0),
    "write_spec": Hostile(HOSTILE / "write_spec.py", 0),
    # patches the identity check missed: lazy, assert helpers and their __code__, tolerances, the check itself
    "patch_the_spec": Hostile(HOSTILE / "patch_the_spec.py", 0),
    "tamper_with_pytest": Hostile(IMPLS / "tamper_with_pytest.py", 5, hide_reference=False),
    # lying return values (ps09 1.1 and 1.4 lie, the rest is the reference)
    "lying_results": Hostile(IMPLS / "lying_results.py", 3, hide_reference=False),
    # skips raised from the submission (1.1 is honest)
    "skip_everywhere": Hostile(IMPLS / "skip_everywhere.py", 1, hide_reference=False),
    # the report and the grader: a setsid child rewriting grade.json later, the parent killed
    "outlive_the_grade": Hostile(HOSTILE / "outlive_the_grade.py", 0),
    # time and resources: alarms ignored, 200 MB of output, 64 threads, 64 GiB asked for
    "ignores_alarms": Hostile(HOSTILE / "ignores_alarms.py", 0, timeout=2, budget=120),
    "flood_and_threads": Hostile(HOSTILE / "flood_and_threads.py", 0),
    # found by attacking the grader: expected values steered through in-place changes to the arguments,
    # the reference read from the checkout's .git or another copy, a reply that would make the judge
    # allocate 5 GB, the disk and /dev/shm filled
    "mutate_inputs": Hostile(HOSTILE / "mutate_inputs.py", 0),
    "read_reference": Hostile(HOSTILE / "read_reference.py", 0),
    "channel_bomb": Hostile(HOSTILE / "channel_bomb.py", 0),
    # global state changed at import (the reference otherwise)
    "global_state_at_import": Hostile(IMPLS / "global_state_at_import.py", 5, hide_reference=False),
    # found by attacking a class's grade: the spec's own solution notebooks (or a classmate's) run as
    # one's own, the grader's environment raised into the report, a forged notebook record of Markdown,
    # raw HTML, an HTML comment, ANSI and XML-forbidden characters
    "copy_solution_notebook": Hostile(HOSTILE / "copy_solution_notebook.py", 0),
    "read_environment": Hostile(HOSTILE / "read_environment.py", 0),
    "forge_notebook_record": Hostile(HOSTILE / "forge_notebook_record.py", 0),
    # found by a third pass: a wrong answer hidden behind a robustness check that raises "Timeout" or ends
    # the worker, so that the exercise's later (failing) tests would be skipped as lost and count neutral
    "skip_by_robustness": Hostile(HOSTILE / "skip_by_robustness.py", 4, hide_reference=False),
    "skip_by_crash": Hostile(HOSTILE / "skip_by_crash.py", 4, hide_reference=False,
                             helpers=("_nothing.py", "skip_by_robustness.py")),
}
SECRET = "GRADER_TOKEN", "s3cr3t-0f-the-grader-5b1e"   # in the judge's environment during every hostile grade


def assert_reports_are_data(out: Path) -> None:
    """The reports show what a submission controls as data: junit.xml parses, grade.json is strict JSON
    (no NaN or Infinity), grade.md has no raw HTML (a comment included) and one table per sheet, and no
    report holds a control character or the judge's secret."""
    from markdown_it import MarkdownIt

    ET.fromstring((out / "junit.xml").read_text(encoding="utf-8"))
    markdown = (out / "grade.md").read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    kinds = [t.type for t in tokens] + [c.type for t in tokens for c in (t.children or [])]
    assert "html_block" not in kinds and "html_inline" not in kinds, "raw HTML in grade.md"
    sheets = json.loads((out / "grade.json").read_text(encoding="utf-8"),
                        parse_constant=lambda name: pytest.fail(f"{name} in grade.json"))["sheets"]
    assert kinds.count("table_open") == len(sheets), "a table the grader did not write"
    for name in ("grade.md", "junit.xml", "grade.json"):
        text = (out / name).read_text(encoding="utf-8")
        assert SECRET[1] not in text, f"the judge's secret reached {name}"
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]", text), \
            f"a control or bidirectional character in {name}"


@pytest.mark.skipif(not shielded(), reason="bubblewrap is not available on this machine (the grade says so)")
@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if c.slow else [])
                                  for n, c in HOSTILE_CASES.items()])
def test_hostile_submission_earns_its_honest_part_and_harms_nothing(name, tmp_path, monkeypatch):
    """Every category of attack the issue lists, graded as a student's submission: it earns exactly the
    points of its honest part, the spec and catalogue are unchanged, the report is written and stays as
    written, nothing it started is left running, and the grade keeps to its budget."""
    import hashlib
    import os
    import time

    case = HOSTILE_CASES[name]
    spec_dir = Path(__file__).resolve().parents[2] / "spec"
    digest = lambda: {p: hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in [*spec_dir.glob("*.toml"), *spec_dir.glob("*.py")]}
    before = digest()
    started = time.monotonic()
    monkeypatch.setenv(*SECRET)
    result = grade(str(case.path), selection=("ps09.1",), hide_reference=case.hide_reference,
                   timeout=case.timeout, budget=case.budget, helpers=case.helpers)
    elapsed = time.monotonic() - started
    data = write_reports(result, tmp_path / "out")
    assert_reports_are_data(tmp_path / "out")
    assert data["earned"] == case.earned, {r["id"]: r["failures"][:1] for r in result.exercise_rows()}
    assert digest() == before and not (spec_dir / "conftest.py").exists(), "the spec changed on disk"
    assert elapsed < case.budget + 60, f"{elapsed:.0f} s against a budget of {case.budget:g} s"
    assert "bubblewrap" in result.isolation and (("but for the reference itself" not in result.isolation)
                                                 == case.hide_reference)
    written = (tmp_path / "out" / "grade.json").read_bytes()
    assert REFERENCE_MARK not in written, "the reference leaked"
    time.sleep(6 if name == "outlive_the_grade" else 0.5)
    assert (tmp_path / "out" / "grade.json").read_bytes() == written, "the report changed after the grade"
    mine = str(os.getpid())
    leftovers = [e for e in os.listdir("/proc") if e.isdigit() and _started_by_a_grade(e, mine)]
    assert not leftovers, f"processes of the grade still running: {leftovers}"


#: a line of the reference's ps09 module that no error message of the spec's own contains
REFERENCE_MARK = (Path(__file__).resolve().parents[2] / "impl" / "calculus.py").read_bytes().splitlines()[0][3:60]


def _started_by_a_grade(pid: str, me: str) -> bool:
    """Whether the process belongs to a grade run by this test's process: its judge and worker name
    their scratch folder, which carries the grader's pid (other tests' grades run beside it)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read()
    except OSError:
        return False
    from grader.judge.grade import TMP_PREFIX

    return f"{TMP_PREFIX}{me}-".encode() in command


def test_notebook_magics_mean_what_ipython_makes_them_mean(tmp_path):
    """A correct notebook with a %%bash cell, ``files = !ls``, a string whose lines start with ``!`` and
    a %%script false cell: the magics are not run, the code is, and every point is earned."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%%bash\necho hello"),
        nbformat.v4.new_code_cell("files = !ls\nfrom impl.calculus import *\nimport torch"),
        nbformat.v4.new_code_cell('NOTE = """\n!this line starts with a bang\n!and so does this\n"""'),
        nbformat.v4.new_code_cell("%%script false\ntrace_square_gradient = None"),
    ]
    path = tmp_path / "magics.ipynb"
    nbformat.write(notebook, path)
    result = grade(str(path), selection=("ps09.1",), hide_reference=False)
    assert statuses(result) == expect(set()), {r["id"]: r["failures"][:1] for r in result.exercise_rows()}
    not_run = [m for c in result.notebook["cells"] for m in c["not_run"]]
    assert any(m.startswith("%%bash") for m in not_run) and any(m.startswith("%%script") for m in not_run)
    assert "!ls" in not_run


@pytest.mark.slow   # waits out a 15 s budget
def test_the_whole_grade_has_a_time_budget():
    """A submission that loops in every call: each test fails at its timeout and the worker is restarted,
    until the starts run out or the grade's budget is spent, whichever comes first."""
    import time

    started = time.monotonic()
    result = grade(str(HOSTILE / "ignores_alarms.py"), selection=("ps09.1",), timeout=2, budget=15)
    elapsed = time.monotonic() - started
    assert elapsed < 15 + 20, f"the grade took {elapsed:.0f} s against a budget of 15 s (+ start and stop)"
    assert result.as_dict()["earned"] == 0


def test_a_killed_graders_scratch_folder_is_removed_by_the_next_grade(tmp_path, monkeypatch):
    """The grader's scratch folder carries its pid: one left by a grader that no longer runs (killed
    with SIGKILL, say) is removed when the next grade starts; a live grader's folder is kept."""
    import subprocess
    import tempfile

    from grader.judge import grade as grading

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{grading.TMP_PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{grading.TMP_PREFIX}{__import__('os').getpid()}-def"
    for folder in (stale, live):
        (folder / "work").mkdir(parents=True)
    grading._remove_stale_folders()
    assert not stale.exists() and live.exists()


@pytest.mark.slow   # a whole grade (a judge and a worker): the default run keeps three of them
def test_a_changed_spec_file_during_a_grade_scores_zero(monkeypatch):
    from grader.judge import grade as grading

    digests = iter([{"spec/catalogue.toml": "a"}, {"spec/catalogue.toml": "b"}])
    monkeypatch.setattr(grading, "spec_digest", lambda: next(digests))
    result = grade(str(Path(__file__).resolve().parents[2] / "impl"), selection=("ps09.1-1",))
    assert result.tampered == ["spec file changed during the grade: spec/catalogue.toml"]
    assert result.as_dict()["earned"] == 0


@pytest.mark.slow   # two whole grades
def test_a_grade_reads_the_spec_s_runs_from_the_cache_and_fills_it(tmp_path, monkeypatch):
    """The judge reads the spec's own runs from the grader's cache (spec/runs.py) and computes only
    what is not there: a first grade fills it; a run planted in it (here one that no solution can
    match) is what the second grade judges against, so it was read, not computed again."""
    import pickle

    import numpy as np

    from grader.judge.sandbox import worker_cannot_write_the_judges_files
    from spec import runs

    if not worker_cannot_write_the_judges_files():
        pytest.skip("a worker could write the cache here: grades do not use it")
    monkeypatch.setenv(runs.CACHE_ENV, str(tmp_path / "cache"))
    reference = str(Path(__file__).resolve().parents[2] / "impl")
    first = grade(reference, selection=("a7.depth-study",))
    kept = tmp_path / "cache" / runs._key() / "a7-depth-study.pickle"
    assert kept.is_file() and first.as_dict()["earned"] == first.as_dict()["points"] > 0
    study = runs.read(kept)
    kept.write_bytes(pickle.dumps({key: np.full_like(value, 100.0) for key, value in study.items()}))
    second = grade(reference, selection=("a7.depth-study",)).as_dict()
    assert second["earned"] == 0, "judged against the planted run: read from the cache"
    messages = [f["message"] for s in second["sheets"].values() for r in s["exercises"] for f in r["failures"]]
    assert any("the spec's own run gives 100.000" in m for m in messages), messages[:2]


@pytest.mark.slow   # a new interpreter that imports torch, torch._dynamo and scikit-learn (4 s)
def test_the_judge_imports_what_its_first_tests_need_only_while_the_worker_loads():
    """torch._dynamo (1 s, imported by the first torch.optim optimizer a test builds) and what the spec's
    data sets import (sklearn.datasets) are imported while the worker has not answered yet, where the
    judge would wait anyway; once the worker's reply is there, not (a new interpreter each time: nothing
    imported them before)."""
    import os
    import subprocess
    import sys

    script = """
import os, sys
from grader.judge.plugin import WHILE_LOADING, _while_it_loads

class Worker:
    pass

worker = Worker()
read, write = os.pipe()
os.write(write, b"ready")                # the worker's reply is waiting: it has loaded
worker.receive_fd = read
_while_it_loads(worker)
answered = [name in sys.modules for name in WHILE_LOADING]
worker.receive_fd = os.pipe()[0]         # nothing to read yet: still loading
_while_it_loads(worker)
print(any(answered), all(name in sys.modules for name in WHILE_LOADING))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    cores = len(os.sched_getaffinity(0))
    assert done.stdout.split() == ["False", "True" if cores >= 2 else "False"], done.stdout


@pytest.mark.slow   # two judges; every grade of the default run starts its judge this way
@pytest.mark.parametrize("early", [True, False], ids=["judge's own start", "arguments that differ"])
def test_the_worker_launches_at_the_judge_s_start_with_the_arguments_the_plugin_computes(tmp_path, early,
                                                                                          monkeypatch):
    """A grade's judge (python -m grader.judge.early) launches its worker before pytest's plugins import
    torch, and the plugin takes it only with the same arguments as its own; where they differ (here a
    guess made to differ), the early worker is ended and the plugin launches its own, and the grade is
    the same."""
    from grader.judge import early as early_module
    from grader.judge import grade as grading

    if not early:   # the judge is a new interpreter: its guess is made to differ through its environment
        monkeypatch.setenv("PYTHONPATH", str(tmp_path))
        (tmp_path / "sitecustomize.py").write_text(
            "import grader.judge.early as e\n_guess = e.guess_arguments\n"
            "e.guess_arguments = lambda args: {**(_guess(args) or {}), 'call_timeout': 12345.0} or None\n")
    records = tmp_path / "records.jsonl"
    (tmp_path / "work").mkdir()
    grading._run_spec(str(IMPLS / "ps09_sigmoid_plus.py"), records, selection=("ps09.1-1",), only=None,
                      timeout=60, slow=False, run_timeout=600, work=tmp_path / "work", hide_reference=False)
    events = [json.loads(line) for line in records.read_text().splitlines()]
    launch = [e for e in events if e["event"] == "worker"]
    assert [e["early"] for e in launch] == [early]
    results = {e["nodeid"]: e["outcome"] for e in events if e["event"] == "result" and e["tier"] == "points"}
    assert results and set(results.values()) == {"passed"}, results   # its mistake is in ps09.1-2 only
    assert early_module.EARLY == []


@pytest.mark.slow   # a sandboxed worker's start
def test_an_early_worker_is_ended_when_pytest_stops_before_taking_it(tmp_path, monkeypatch, capsys):
    """A judge whose pytest ends before the plugin's configure takes the early worker (here a usage error)
    ends that worker itself: a forked judge exits with os._exit, where no atexit would."""
    from grader.judge import early, remote

    launched = []
    launch = remote.launch
    monkeypatch.setattr(remote, "launch", lambda **kwargs: launched.append(launch(**kwargs)) or launched[-1])
    code = early.main(["--isolate", f"--impl={IMPLS / 'ps09_sigmoid_plus.py'}", f"--worker-dir={tmp_path}",
                       "--no-such-option"])
    assert code == 4, capsys.readouterr().err
    assert len(launched) == 1 and launched[0].process is None, "the early worker is still running"
    assert early.EARLY == []


def _worker_group_parents() -> set[Path]:
    """Where the workers' cgroups are made (grader/judge/sandbox.py), found by making one; a group made
    also removes the groups of judges that have ended, so the folders are listed without one after."""
    from grader.judge import sandbox

    probe = sandbox.Cgroup.make(f"spec-probe-{os.getpid()}-test", sandbox.Limits())
    if probe is None:
        pytest.skip("no cgroup can be made here: a worker leaves no group behind")
    parents = {folder.parent for folder in probe.folders.values()}
    probe.remove()
    return parents


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def test_a_worker_no_test_called_is_ended_by_its_judge(tmp_path):
    """A judge that runs no test that reaches the submission (here the one test asked for is the spec's
    own check of a derivative, which a grade deselects) still ends the worker it launched at its start,
    cgroup and all, before it exits (with os._exit, where no atexit runs)."""
    from grader.judge import grade as grading

    parents = _worker_group_parents()
    groups = lambda: {folder for parent in parents for folder in parent.glob("spec-worker-*")}
    before = groups()
    records, only = tmp_path / "records.jsonl", tmp_path / "only.txt"
    only.write_text("spec/test_jacobians.py::test_sympy_log_cosh_derivative_is_tanh\n")
    (tmp_path / "work").mkdir()
    grading._run_spec(str(IMPLS.parents[2] / "impl"), records, selection=("dl-a1.q1a",), only=only,
                      timeout=60, slow=False, run_timeout=600, work=tmp_path / "work", hide_reference=False)
    events = [json.loads(line) for line in records.read_text().splitlines()]
    assert [(e["event"], e.get("exitstatus")) for e in events] == [("worker", None), ("finished", 5)], events
    judge = events[0]["judge"]
    assert not _alive(judge)
    left = [str(f) for f in groups() - before if f.name.split("-")[2] == str(judge)]
    assert not left, f"cgroups of a judge that has exited: {left}"


@pytest.mark.slow   # a judge forked from a new interpreter that has imported the warm process's libraries
def test_a_forked_judge_launches_its_worker_before_pytest_starts(tmp_path):
    """A class's judges are forks of a warm process (grader/judge/warm.py, grader/judge/grade.py
    _fork_judge): each launches its worker before pytest's own start too (grader/judge/early.py), and the
    plugin takes that worker."""
    import subprocess
    import sys

    script = f"""
import json, sys
from pathlib import Path
import grader.judge.warm
from grader.judge import grade
forked = []
_fork = grade._fork_judge
grade._fork_judge = lambda *args: forked.append(True) or _fork(*args)
tmp = Path({str(tmp_path)!r})
(tmp / "work").mkdir()
code = grade._run_spec({str(IMPLS / "ps09_sigmoid_plus.py")!r}, tmp / "records.jsonl", selection=("ps09.1-1",),
                       only=None, timeout=60, slow=False, run_timeout=600, work=tmp / "work",
                       hide_reference=False, fork_judge=True)
events = [json.loads(line) for line in (tmp / "records.jsonl").read_text().splitlines()]
print(json.dumps([code, forked, [e["early"] for e in events if e["event"] == "worker"],
                  sorted({{e["outcome"] for e in events if e["event"] == "result" and e["tier"] == "points"}})]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [0, [True], [True], ["passed"]]


@pytest.mark.slow   # four grades
@pytest.mark.parametrize("submission", ["crash_in_trace.py", "momentum_dampened.py"])
def test_judges_side_by_side_give_the_verdicts_of_one(submission):
    """A single grade on spare cores shares the topic modules among judges, each with its own worker: the
    same outcomes and messages as one judge, crashes and restarts included (ps09: calculus and linear;
    crash_in_trace.py ends its worker in ps09.1-4, momentum_dampened.py fails ps09.2)."""
    from grader.judge.grade import graded_paths, split_paths

    assert len([g for g in split_paths(graded_paths(("ps09.1-1", "ps09.2-1")), 2) if g]) == 2
    verdicts = []
    for judges in (1, 2):
        result = grade(str(IMPLS / submission), selection=("ps09",), hide_reference=False, judges=judges)
        assert not result.error, result.error
        verdicts.append(({row["id"]: row["status"] for row in result.exercise_rows()},
                         {t.nodeid: (t.outcome, re.sub(r"\(\d+ s\)", "(N s)", t.message))
                          for t in result.tests.values()}))
    assert verdicts[0] == verdicts[1]
    assert "failed" in verdicts[0][0].values()
