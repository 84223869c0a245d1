"""The catalogue against the spec: every exercise has tests, every test names its exercise.

Exercises still without tests are marked ``pending`` in spec/catalogue.toml and show up here as
expected failures, each with its ID, so every run shows the gap. The expectation is strict: once an
exercise gains tests its check passes unexpectedly, which fails the run until ``pending`` is removed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spec.catalogue import load

CATALOGUE = load()
EXERCISES_MD = Path(__file__).resolve().parents[2] / "shared" / "EXERCISES.md"


def _case(exercise):
    marks = [pytest.mark.xfail(strict=True, reason=f"{exercise.id} has no tests yet (pending)")] \
        if exercise.pending else []
    return pytest.param(exercise, id=exercise.id, marks=marks)


def test_catalogue_is_not_empty():
    assert len(CATALOGUE.exercises) == 47, f"got {len(CATALOGUE.exercises)} exercises, but should be 47"
    assert set(CATALOGUE.sheets) == {"ex08", "moons", "a7", "dl-a1", "ps09"}


@pytest.mark.parametrize("exercise", [_case(e) for e in CATALOGUE.exercises])
def test_exercise_has_tests(exercise, spec_collection):
    covered, _ = spec_collection
    assert exercise.id in covered, (
        f"{exercise.id} ({exercise.title}) has no test: mark its tests with "
        f"@pytest.mark.exercise({exercise.id!r}) in spec/test_{exercise.topic}.py"
    )


def test_every_test_of_a_topic_module_names_an_exercise_of_its_topic(spec_collection):
    _, problems = spec_collection
    assert not problems, "tests that break the convention:\n" + "\n".join(
        f"  {nodeid}: {problem}" for nodeid, problem in problems)


@pytest.mark.skipif(not EXERCISES_MD.is_file(), reason="shared/EXERCISES.md is not beside the checkout")
def test_catalogue_transcribes_exercises_md():
    """Same IDs, same titles' sheets and the same points as the table of EXERCISES.md, except where
    the sheet itself gives other points (the catalogue's stated rule)."""
    rows = re.findall(r"^\| (\S+\.\S+) \| ([\d.]+) \|", EXERCISES_MD.read_text(encoding="utf-8"), re.M)
    table = {exercise_id: float(points) for exercise_id, points in rows}
    assert set(table) == set(CATALOGUE.ids), (
        f"only in EXERCISES.md: {sorted(set(table) - set(CATALOGUE.ids))}; "
        f"only in the catalogue: {sorted(set(CATALOGUE.ids) - set(table))}")
    sheet_points = {"ps09.2-4": 0.5, "ps09.2-5": 1.5}  # ps09-autodiff.md gives these
    for exercise in CATALOGUE.exercises:
        expected = sheet_points.get(exercise.id, table[exercise.id])
        assert exercise.points == expected, \
            f"got {exercise.points} points, but should be {expected} [{exercise.id}]"
