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
import time
from pathlib import Path

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
