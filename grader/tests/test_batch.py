"""Grading a whole class (grader/judge/batch.py), Gradescope's results.json and autograder zip
(grader/judge/gradescope.py, grader/judge/export.py), and the exit status and points line for CI."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader.judge import batch, gradescope
from grader.judge.grade import Grade, main

NOTEBOOKS = Path(__file__).resolve().parents[2] / "spec" / "selftest" / "notebooks"

# ps09 1.1 written as a student would: the one exercise these tests grade (quick to run)
GOOD = '''import torch


def ps09_f(x):
    return 2.0 / ((5.0 - x) ** 2 + 2.0**2)


def derivative(f, x):
    x = torch.as_tensor(x).detach().clone().requires_grad_(True)
    f(x).sum().backward()
    return x.grad
'''
CRASH = "import os\nos._exit(3)\n"
HANG = "while True:\n    pass\n"
SLEEPS = "import time\ntime.sleep(10**6)\n"   # a hang that leaves the cores to the other students' grades
BUDGET = 40   # seconds per student: a correct one needs a few, more on a loaded machine


def write_class(folder: Path) -> Path:
    folder.mkdir()
    (folder / "good.py").write_text(GOOD)
    (folder / "package_student").mkdir()
    (folder / "package_student" / "__init__.py").write_text(GOOD)
    (folder / "crash.py").write_text(CRASH)
    (folder / "hang.py").write_text(SLEEPS)
    (folder / "two_notebooks").mkdir()                         # nothing gradable: a row that says why
    for name in ("a.ipynb", "b.ipynb"):
        (folder / "two_notebooks" / name).write_text("{}")
    (folder / "helper.py").write_text("raise SystemExit('a helper, not a student')\n")   # --skip
    (folder / "notes.txt").write_text("not a submission")
    (folder / "_private.py").write_text(CRASH)
    return folder


@pytest.fixture
def graded_class(tmp_path_factory):
    """A class graded through the command line: two correct students (a .py file and a package), one
    that crashes the interpreter, one that hangs at import, and a folder with two notebooks."""
    base = tmp_path_factory.mktemp("class")
    folder, out = write_class(base / "submissions"), base / "grades"
    started = time.monotonic()
    code = main([str(folder), "--out", str(out), "--exercise", "ps09.1-1", "--budget", str(BUDGET),
                 "--timeout", "5", "--jobs", "2", "--skip", "helper.py", "--format", "gradescope"])
    elapsed = time.monotonic() - started
    with open(out / "gradebook.csv", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return code, rows, out, elapsed


@pytest.mark.slow   # the hanging student waits out its budget
def test_a_class_folder_gives_each_student_a_row_that_explains_itself(graded_class):
    """... and its grades as Gradescope's results.json."""
    code, rows, out, elapsed = graded_class
    assert code == 0
    assert set(rows) == {"good", "package_student", "crash", "hang", "two_notebooks"}, "helper, notes, _private"
    for name in ("good", "package_student"):
        row = rows[name]
        assert (row["status"], row["ps09 points"], row["ps09 max"], row["errors"]) == ("graded", "1", "1", ""), row
        assert float(row["seconds"]) < BUDGET, "a correct student is not held up by the hanging one"
        assert row["robustness"].endswith("passed") and row["robustness"] != "0/0 passed"
    assert rows["crash"]["ps09 points"] == "0" and "exit status 3" in rows["crash"]["errors"], rows["crash"]
    hang = rows["hang"]
    assert (hang["status"], hang["ps09 points"]) == ("timed out", "0")
    assert f"time budget of {BUDGET} s" in hang["errors"] and "ps09.1-1" in hang["errors"], hang
    nothing = rows["two_notebooks"]
    assert nothing["status"] == "not graded" and "2 notebooks (a.ipynb, b.ipynb)" in nothing["errors"]
    for name in rows:
        data = json.loads((out / name / "grade.json").read_text())
        assert {"grade.md", "junit.xml", "batch.json"} <= {p.name for p in (out / name).iterdir()}
        assert data["earned"] == float(rows[name]["total points"])
    assert elapsed < 3 * BUDGET + 60, f"the class took {elapsed:.0f} s"
    # the same grades as Gradescope's results.json (one test class, so the class is graded once)
    for name, score in (("good", 1), ("crash", 0), ("hang", 0), ("two_notebooks", 0)):
        results = json.loads((out / name / "results.json").read_text())
        assert gradescope.check(results) == [], name
        assert results["score"] == score and [t["max_score"] for t in results["tests"]] == [1]
        assert results["tests"][0]["status"] == ("passed" if score else "failed")
    data = json.loads((out / "hang" / "grade.json").read_text())
    assert "exit code timeout" in gradescope.results(data, ("ps09.1-1",))["tests"][0]["output"]


def test_the_manual_items_still_to_grade_come_from_the_catalogue():
    from spec.catalogue import load

    expected = [f"{e.id} ({e.manual_points:g})" for e in load().of_sheet("ex08") if e.manual_points]
    assert batch.manual_items(("ex08",)) == expected and expected, "ex08 has items graded by hand"
    assert batch.manual_items(("ps09.1-1",)) == []


def test_a_folder_with_init_is_what_the_course_says_and_without_it_a_class(tmp_path):
    """A student's entry named __init__.py must not make the class one package (a red-team finding):
    a folder holding one is graded only as the course says, --package or --class."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    assert batch.is_class_folder(tmp_path)
    with pytest.raises(batch.AmbiguousTarget, match="--package"):
        batch.is_class_folder(tmp_path / "pkg")
    assert not batch.is_class_folder(tmp_path / "pkg", package=True)
    assert batch.is_class_folder(tmp_path / "pkg", class_=True)
    student = tmp_path / "student"
    student.mkdir()
    (student / "helpers.py").write_text("")
    (student / "sheet.ipynb").write_text("{}")
    assert batch.find_submission(student) == (student / "sheet.ipynb", ""), "the notebook, its helper beside it"
    (student / "sheet.ipynb").unlink()
    assert batch.find_submission(student) == (student / "helpers.py", "")
    (tmp_path / "alice.py").write_text("")
    (tmp_path / "alice.ipynb").write_text("{}")
    names = {s.student for s in batch.find_class(tmp_path)}
    assert names == {"alice.py", "alice.ipynb", "pkg", "student"}, "clashing stems keep their suffix"


def test_a_grade_past_its_limit_is_killed_and_a_rerun_skips_reports_that_are_up_to_date(tmp_path):
    """The workers here are killed at once (budget 1 s, no grace), which makes grading cheap: the
    skipping only compares the report with the submission and the options."""
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.py").write_text(HANG)
    out = tmp_path / "grades"

    def run(**options):
        options = {"selection": ("ps09.1-1",), "budget": 1, "grace": 0, "jobs": 2, "progress": False, **options}
        rows = batch.grade_class(folder, out, **options)
        return {row["student"]: row["rerun"] for row in rows}, {row["student"]: row for row in rows}

    reran, rows = run()
    assert reran == {"a": "graded now", "b": "graded now"}
    assert rows["a"]["status"] == "killed" and "stopped after 1 s" in rows["a"]["errors"], rows["a"]
    assert "stopped after 1 s" in (out / "a" / "grade.md").read_text(), "the killed student still has reports"
    stamps = {n: (out / n / "grade.json").stat().st_mtime_ns for n in "ab"}
    assert run()[0] == {"a": "skipped (report up to date)", "b": "skipped (report up to date)"}
    assert {n: (out / n / "grade.json").stat().st_mtime_ns for n in "ab"} == stamps
    later = time.time() + 5
    os.utime(folder / "b.py", (later, later))   # b resubmitted
    assert run()[0] == {"a": "skipped (report up to date)", "b": "graded now"}
    os.utime(folder / "b.py", (stamps["b"] / 1e9, stamps["b"] / 1e9))
    assert run(force=True)[0] == {"a": "graded now", "b": "graded now"}
    assert run(timeout=7)[0] == {"a": "graded now", "b": "graded now"}, "other options, a new grade"


# ------------------------------------------------------------------------------ Gradescope
def test_manual_items_are_zero_of_their_points_with_a_note():
    from spec.catalogue import load

    failed = Grade("nothing.ipynb", selection=("ex08",))
    failed.error = "nothing.ipynb: no such file or folder"
    results = gradescope.results(failed.as_dict(), ("ex08",))
    assert gradescope.check(results) == []
    by_hand = {t["number"]: t for t in results["tests"] if "by hand" in t["tags"]}
    manual = {e.id: e.manual_points for e in load().of_sheet("ex08") if e.manual_points}
    assert {n.removesuffix(".hand"): t["max_score"] for n, t in by_hand.items()} == manual
    assert all(t["score"] == 0 and "Graded by hand" in t["output"] and "status" not in t for t in by_hand.values())
    automatic = [t for t in results["tests"] if "automatic" in t["tags"]]
    assert sum(t["max_score"] for t in automatic) == sum(e.auto_points for e in load().of_sheet("ex08"))
    assert results["score"] == 0 and "no such file" in results["output"]


def _valid():
    return {"score": 1.5, "execution_time": 3, "output": "x", "visibility": "visible", "stdout_visibility": "hidden",
            "tests": [{"name": "a", "score": 1.5, "max_score": 2, "status": "failed", "output": "o",
                       "tags": ["t"], "visibility": "after_due_date"}]}


BROKEN = {
    "visibility": lambda r: r.update(visibility="everyone"),
    "status": lambda r: r["tests"][0].update(status="partial"),
    "negative score": lambda r: r["tests"][0].update(score=-1),
    "score as text": lambda r: r.update(score="1.5"),
    "unknown key": lambda r: r["tests"][0].update(maxscore=2),
    "no score anywhere": lambda r: (r.pop("score"), r["tests"][0].pop("score")),
    "tags not strings": lambda r: r["tests"][0].update(tags=[1]),
    "tests not a list": lambda r: r.update(tests={"name": "a"}),
}


@pytest.mark.parametrize("breakage", [None, *BROKEN])
def test_the_results_schema_and_its_checker_refuse_what_gradescope_would(breakage):
    jsonschema = pytest.importorskip("jsonschema")
    results = _valid()
    if breakage:
        BROKEN[breakage](results)
    errors = gradescope.check(results)
    assert bool(errors) == (breakage is not None), errors
    jsonschema.Draft202012Validator.check_schema(gradescope.RESULTS_SCHEMA)
    assert jsonschema.Draft202012Validator(gradescope.RESULTS_SCHEMA).is_valid(results) == (breakage is None), \
        "the hand-written checker and jsonschema agree"
    if breakage is None:   # the score may live on the tests alone
        results.pop("score")
        assert gradescope.check(results) == []


@pytest.mark.slow   # two whole grades
def test_command_line_points_summary_strict_exit_and_gradescope_format(tmp_path, capsys):
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "crash.py").write_text(CRASH)
    common = ["--exercise", "ps09.1-1", "--points-summary", "--strict", "--timeout", "5"]
    assert main([str(tmp_path / "good.py"), "--out", str(tmp_path / "g"), "--format", "gradescope", *common]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "Points 1/1"
    results = json.loads((tmp_path / "g" / "results.json").read_text())
    assert gradescope.check(results) == [] and results["score"] == 1 and results["execution_time"] > 0
    assert main([str(tmp_path / "crash.py"), "--out", str(tmp_path / "c"), *common]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == "Points 0/1"
    assert not (tmp_path / "c" / "results.json").exists(), "results.json only with --format gradescope"


@pytest.mark.parametrize("sheet, submission, score", [
    pytest.param("ps09.1-1", "good.py", 1, marks=pytest.mark.slow),
    pytest.param("ex08", "ex08_solution.ipynb", 3.5, marks=pytest.mark.slow),
])
def test_the_autograder_zip_grades_a_submission_in_a_fake_autograder_tree(tmp_path, sheet, submission, score):
    """The zip unpacked as Gradescope does (source/, run_autograder beside it), run_autograder run with
    AUTOGRADER_ROOT on a temporary tree and this interpreter (setup.sh's installation skipped)."""
    from grader.judge.export import gradescope_zip

    path = gradescope_zip(tmp_path / "autograder.zip", selection=(sheet,), budget=300)
    root = tmp_path / "autograder"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert {"setup.sh", "run_autograder", "project/conftest.py", "project/grader/judge/grade.py"} <= set(names)
        assert not [n for n in names if n.startswith("project/impl/") and n.endswith(".py")], "no reference"
        # no solution of any kind: no selftest notebook, wrong solution or hostile case, no grader test
        assert not [n for n in names if n.endswith(".ipynb") or "/selftest/" in n or "/tests/" in n], names
        archive.extractall(root / "source")
        modes = {n: archive.getinfo(n).external_attr >> 16 for n in ("setup.sh", "run_autograder")}
    assert all(mode & 0o111 for mode in modes.values()), "the scripts are executable in the zip"
    setup = (root / "source" / "setup.sh").read_text()
    assert "download.pytorch.org/whl/cpu" in setup and "constraints.txt" in setup
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    if submission == "good.py":
        (root / "submission" / "good.py").write_text(GOOD)
    else:
        for name in (submission, "test_utils.py"):
            shutil.copy(NOTEBOOKS / "ex08" / name, root / "submission" / name)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert gradescope.check(results) == [], results
    assert results["score"] == score, results["output"]
    assert all(t["status"] == "passed" for t in results["tests"] if "automatic" in t["tags"])


def test_the_autograder_s_setup_builds_the_spec_s_runs_that_its_grades_read(tmp_path):
    """setup.sh's last step (run here with this interpreter as the container's venv) computes the runs of
    the graded sheet into /autograder/spec-runs under the key of the zip's own spec, which is the
    checkout's: the zip ships the same files the key is made of. run_autograder points the grades there."""
    from grader.judge.export import gradescope_zip
    from spec import runs

    path = gradescope_zip(tmp_path / "autograder.zip", selection=("a7.depth-study",))
    root = tmp_path / "autograder"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(root / "source")
        setup = archive.read("setup.sh").decode()
        assert 'SPEC_RUNS_CACHE="$ROOT/spec-runs"' in archive.read("run_autograder").decode()
    step = setup[setup.index("# the spec's own runs"):]
    assert "python\" -m spec.runs build --sheet a7.depth-study" in step
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "venv" / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (root / "venv" / "bin" / "python").chmod(0o755)
    script = f'set -euo pipefail\nROOT="{root}"\nPROJECT="$ROOT/source/project"\n{step}'
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPEC_")}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "a7-depth-study" in done.stdout, done.stdout + done.stderr
    assert runs.cache_key(root / "source" / "project" / "spec") == runs._key(), "the zip's spec has the checkout's key"
    kept = sorted(p.name for p in (root / "spec-runs" / runs._key()).glob("*.pickle"))
    assert kept == ["a7-depth-study.pickle"], kept


def test_the_autograder_writes_results_even_without_a_submission(tmp_path):
    (tmp_path / "submission").mkdir()
    data = gradescope.autograde(tmp_path, ("ps09.1-1",))
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert gradescope.check(results) == [] and results["score"] == 0
    assert "no notebook, .py file or package folder" in data["error"] and data["error"] in results["output"]


# ------------------------------------------------------------------------------ a hostile class
ROOT = Path(__file__).resolve().parents[2]
THIEF = '''import json, pathlib
# a student who hands in no work: it looks for a classmate's notebook beside it, above it, and where
# the class folder lies on the grader's machine, and runs its cells as its own
for place in {places!r}:
    path = pathlib.Path(place)
    try:
        cells = json.loads(path.read_text())["cells"]
    except Exception:
        continue
    for cell in cells:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            try:
                exec(compile("\\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))),
                             str(path), "exec"), globals())
            except Exception:
                pass
    break
'''
FORMULA = '=HYPERLINK("x.example","y")'
CONTROL = "eve\r\x1b[2J\x1b[1;1Hzed"
INVISIBLE = "alice\u200b"   # looks like alice


def write_hostile_class(folder: Path) -> Path:
    """alice: the honest ex08 solution; bob and carol link to alice's notebook and to the reference;
    dave hands in a script that runs alice's cells; frank's folder holds a 300-byte link; three entries
    are named to collide with the gradebook, to be a spreadsheet formula and to rewrite the terminal."""
    folder.mkdir()
    shutil.copy(NOTEBOOKS / "ex08" / "ex08_solution.ipynb", folder / "alice.ipynb")
    shutil.copy(NOTEBOOKS / "ex08" / "test_utils.py", folder / "test_utils.py")   # the course's helper
    (folder / "bob").mkdir()
    os.symlink("../alice.ipynb", folder / "bob" / "sol.ipynb")
    (folder / "carol").mkdir()
    os.symlink(ROOT / "impl", folder / "carol" / "sol")
    os.symlink(ROOT / "impl", folder / "carl")
    os.symlink(folder / "alice.ipynb", folder / "beth.ipynb")
    places = ["alice.ipynb", "../alice.ipynb", "../../alice.ipynb", str(folder / "alice.ipynb")]
    (folder / "dave.py").write_text(THIEF.format(places=places))
    (folder / "frank").mkdir()
    os.symlink("x" * 300, folder / "frank" / "sol.ipynb")
    for name in ("gradebook.csv", FORMULA, CONTROL, INVISIBLE):
        (folder / f"{name}.py").write_text("answer = 42\n")
    # found by a third pass: an entry __init__.py that would make the class one package of alice's code,
    # a hard link to alice's notebook (a student's archive extracted into the class folder), a .git
    # nested 1100 deep (which ended a rerun), 2100 empty folders (past the staging limit)
    (folder / "__init__.py").write_text("from .alice import *\n")
    (folder / "mallory").mkdir()
    os.link(folder / "alice.ipynb", folder / "mallory" / "mine.ipynb")
    deep = folder / "gus" / ".git"
    deep.mkdir(parents=True)
    (folder / "gus" / "gus.py").write_text("answer = 42\n")
    os.chdir(deep)
    try:
        for _ in range(1100):
            os.mkdir("a")
            os.chdir("a")
    finally:
        os.chdir(ROOT)
    for i in range(2100):
        (folder / "hal" / f"d{i}").mkdir(parents=True)
    (folder / "hal" / "hal.py").write_text("answer = 42\n")
    return folder


@pytest.mark.slow   # one whole ex08 grade and six cheap ones
def test_a_hostile_class_leaves_the_honest_student_her_points_and_the_reports_intact(tmp_path, capsys):
    from xml.etree import ElementTree

    from grader.judge import sandbox
    from grader.judge.escape import printable

    folder, out = write_hostile_class(tmp_path / "class"), tmp_path / "grades"
    options = [str(folder), "--out", str(out), "--exercise", "ex08", "--helpers", "test_utils.py", "--jobs", "2",
               "--budget", "600"]
    with pytest.raises(SystemExit):   # the entry __init__.py: a package or a class? the course says which
        main(options)
    code = main([*options, "--class"])
    printed = capsys.readouterr()
    assert code == 0
    assert not any(c in printed.out + printed.err for c in "\r\x1b"), "names are shown escaped"
    text = (out / "gradebook.csv").read_text(encoding="utf-8")
    with open(out / "gradebook.csv", encoding="utf-8", newline="") as handle:
        rows = {row["student"].lstrip("'"): row for row in csv.DictReader(handle)}
    shown = printable(CONTROL)   # a name's control and invisible characters are escaped in the gradebook too
    assert printable(INVISIBLE) == "alice\\u200b"
    assert set(rows) == {"alice", "beth", "bob", "carl", "carol", "dave", "frank", "gradebook.csv", FORMULA,
                         shown, printable(INVISIBLE), "gus", "hal", "mallory"}, sorted(rows)
    assert rows["alice"]["ex08 points"] == "3.5" and rows["alice"]["status"] == "graded", rows["alice"]
    # the hard link: which name came first is not on disk, so both grades stand, flagged for a check
    for name in ("alice", "mallory"):
        assert "hard link" in rows[name]["errors"] and "check by hand" in rows[name]["errors"], rows[name]
    assert rows["gus"]["status"] == "graded" and rows["hal"]["status"] == "graded"
    assert "past 2000 entries" in json.loads((out / rows["hal"]["folder"] / "grade.json").read_text())["left_out"][-1]
    for name in ("beth", "bob", "carl", "carol", "frank"):
        assert rows[name]["status"] == "not graded" and "link" in rows[name]["errors"], rows[name]
        assert rows[name]["ex08 points"] == "0"
    if sandbox.bwrap_works():   # without bubblewrap a script can read any path the grader's user can
        assert rows["dave"]["ex08 points"] == "0" and rows["dave"]["status"] == "graded", rows["dave"]
    for name in ("gradebook.csv", FORMULA, shown):
        assert rows[name]["ex08 points"] == "0"
    cells = [cell for line in csv.reader(text.splitlines()) for cell in line]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], "no cell is a formula"
    folders = [row["folder"] for row in rows.values()]
    assert len(set(folders)) == len(folders) and "gradebook.csv" not in folders
    assert all((out / f / "grade.md").is_file() for f in folders)
    reference = (ROOT / "impl" / "linear.py").read_text().splitlines()[0]
    for report in out.rglob("*"):
        if report.is_file():
            assert reference not in report.read_text(encoding="utf-8", errors="replace"), report
        if report.name == "junit.xml":
            ElementTree.parse(report)
    # a rerun skips every student whose report is up to date (gus's deep .git ended it once)
    assert main([*options, "--class"]) == 0
    assert "0 graded now" in capsys.readouterr().out
    remove_deep(folder / "gus" / ".git")   # pytest's own clean-up of tmp_path recurses, and would fail


def remove_deep(path: Path) -> None:
    """Remove a chain of nested folders without recursion, deepest first."""
    os.chdir(path)
    try:
        while True:
            inner = [e.name for e in os.scandir(".") if e.is_dir(follow_symlinks=False)]
            if not inner:
                break
            os.chdir(inner[0])
        while os.getcwd() != str(path.parent):
            here = os.getcwd()
            os.chdir("..")
            shutil.rmtree(here)
    finally:
        os.chdir(ROOT)
