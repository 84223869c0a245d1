"""Throughput of grading a class (grader/judge/batch.py): N ex08 notebooks, the self-test's correct one and its
two wrong variants in turn, each student in a folder of their own with the sheet's helper file,
graded with ``--jobs J`` (N from CLASS_BENCH_N, default 8; J from CLASS_BENCH_JOBS, default the
cores). One round: a class takes minutes. The seconds per student and the extrapolation to 100
students land in the benchmark's extra_info (``python -m spec.bench.summarise`` prints them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.judge.batch import grade_class
from spec.catalogue import load

EX08 = Path(__file__).resolve().parents[1] / "selftest" / "notebooks" / "ex08"
# each notebook's mistake and the exercises it costs (grader/tests/test_grade.py grades them one by one)
VARIANTS = {"ex08_solution": (), "ex08_wrong_shape": ("ex08.linreg-tensors",),
            "ex08_no_zero_grad": ("ex08.linreg-tensors", "ex08.linreg-nn")}


def write_class(folder: Path, students: int) -> dict[str, float]:
    """The class folder; returns each student's expected automatic points."""
    points = {e.id: e.auto_points for e in load().of_sheet("ex08")}
    expected = {}
    for index in range(students):
        variant = list(VARIANTS)[index % len(VARIANTS)]
        student = folder / f"student{index:03d}"
        student.mkdir(parents=True)
        shutil.copy(EX08 / f"{variant}.ipynb", student / "ex08.ipynb")
        shutil.copy(EX08 / "test_utils.py", student / "test_utils.py")
        expected[student.name] = sum(points.values()) - sum(points[e] for e in VARIANTS[variant])
    return expected


def test_grade_a_class_of_ex08_notebooks(benchmark, tmp_path):
    students = int(os.environ.get("CLASS_BENCH_N", "8"))
    jobs = int(os.environ.get("CLASS_BENCH_JOBS", "0")) or len(os.sched_getaffinity(0))
    expected = write_class(tmp_path / "class", students)
    out = tmp_path / "grades"

    def run():
        shutil.rmtree(out, ignore_errors=True)
        return grade_class(tmp_path / "class", out, selection=("ex08",), jobs=jobs, budget=600, progress=False)

    started = time.perf_counter()
    rows = benchmark.pedantic(run, rounds=1, iterations=1)
    seconds = time.perf_counter() - started
    per_student = seconds / students
    # the notebooks' own cells, run once per student in its worker: what no grader design can share
    cells = [json.loads((out / r["folder"] / "grade.json").read_text(encoding="utf-8"))["notebook"]["seconds"]
             for r in rows]
    benchmark.extra_info.update(sheet="ex08", students=students, jobs=jobs, seconds_per_student=per_student,
                                seconds_for_100=100 * per_student, notebook_cells_seconds=sum(cells) / students,
                                cells_share=sum(cells) / (seconds * jobs), load_average=os.getloadavg()[0])
    assert {r["student"]: float(r["total points"]) for r in rows} == expected
    assert all(r["status"] == "graded" for r in rows), [r["errors"] for r in rows]


# ------------------------------------------------------------------ every sheet: ours against bare execution
NOTEBOOKS = Path(__file__).resolve().parents[1] / "selftest" / "notebooks"
SHEETS = sorted(p.name for p in NOTEBOOKS.iterdir() if p.is_dir())


def write_sheet_class(sheet: str, folder: Path) -> list[Path]:
    """The sheet's selftest notebooks as a class, each student in a folder of their own with the
    sheet's helper files; returns the notebooks."""
    notebooks = []
    for notebook in sorted((NOTEBOOKS / sheet).glob("*.ipynb")):
        student = folder / notebook.stem
        student.mkdir(parents=True)
        for helper in (NOTEBOOKS / sheet).iterdir():
            if helper.suffix in (".py", ".toml"):
                shutil.copy(helper, student / helper.name)
        shutil.copy(notebook, student / notebook.name)
        notebooks.append(student / notebook.name)
    return notebooks


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and of the children it has waited for (a kernel)."""
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def bare_execution(notebooks: list[Path], jobs: int) -> float:
    """Seconds to execute the notebooks with nbclient (a fresh Jupyter kernel each, as a course runs
    them), ``jobs`` at a time, one torch thread each as the grader's workers have."""
    import nbformat
    from nbclient import NotebookClient

    def run(path: Path) -> None:
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=900, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute(env={**os.environ,
                                                                                         "OMP_NUM_THREADS": "1"})

    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(run, notebooks))
    return time.perf_counter() - started


@pytest.mark.parametrize("sheet", SHEETS)
def test_grade_each_sheets_class_against_its_bare_execution(benchmark, tmp_path, sheet):
    """A class of the sheet's selftest notebooks graded with --jobs J (the cores), and the same
    notebooks executed bare by nbclient J at a time, measured in one run on the same cores; then one
    notebook (the sheet's correct one) alone, both ways. The ratios land in extra_info."""
    pytest.importorskip("nbclient", reason="the bare execution needs nbclient and ipykernel (the bench extra)")
    jobs = int(os.environ.get("CLASS_BENCH_JOBS", "0")) or len(os.sched_getaffinity(0))
    notebooks = write_sheet_class(sheet, tmp_path / "class")
    alias = next((str(p) for p in (NOTEBOOKS / sheet).glob("*.toml")), None)
    out = tmp_path / "grades"

    def run():
        shutil.rmtree(out, ignore_errors=True)
        return grade_class(tmp_path / "class", out, selection=(sheet,), jobs=jobs, budget=900, progress=False,
                           alias=alias)

    started = time.perf_counter()
    rows = benchmark.pedantic(run, rounds=1, iterations=1)
    ours = time.perf_counter() - started
    bare = bare_execution(notebooks, jobs)
    solution = next(p for p in notebooks if p.stem.endswith("_solution"))
    helpers = [a for h in solution.parent.glob("*.py") for a in ("--helpers", h.name)]
    started = time.perf_counter()   # one notebook as a course grades it: python -m spec.grade, a fresh process
    subprocess.run([sys.executable, "-m", "spec.grade", str(solution), "--exercise", sheet, "--out",
                    str(tmp_path / "single"), *helpers, *(["--alias", alias] if alias else [])],
                   check=True, capture_output=True, cwd=Path(__file__).resolve().parents[2])
    ours_single = time.perf_counter() - started
    cpu = cpu_seconds()
    bare_single = bare_execution([solution], 1)
    bare_single_cpu = cpu_seconds() - cpu
    single = [json.loads((tmp_path / "single" / "grade.json").read_text(encoding="utf-8"))]
    # where the single grade's CPU went (the judge measures its worker's through its cgroup): the worker's
    # share is the submission's start, cells and the spec's calls, which any grader that runs this spec's
    # cases in a fresh process per student pays; over the bare run's CPU, it is the least a class's ratio
    # can be for notebooks that earn their points (a lost exercise's other tests are not run) where the
    # cores are kept busy, even with a judge that costs nothing
    profile = single[0]["profile"]
    worker_cpu = profile.get("worker CPU, start and load", 0.0) + profile.get("worker CPU, tests", 0.0)
    benchmark.extra_info.update(sheet=sheet, students=len(notebooks), jobs=jobs, ours_class=ours, bare_class=bare,
                                class_ratio=ours / bare, ours_single=ours_single, bare_single=bare_single,
                                single_ratio=ours_single / bare_single, load_average=os.getloadavg()[0],
                                bare_single_cpu=bare_single_cpu, single_cpu=profile,
                                worker_cpu_per_bare_cpu=worker_cpu / bare_single_cpu)
    assert all(r["status"] == "graded" for r in rows), [r["errors"] for r in rows]
    assert single[0]["earned"] == sum(e.auto_points for e in load().of_sheet(sheet)), single[0]["earned"]
