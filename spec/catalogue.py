"""The exercise catalogue (``spec/catalogue.toml``) as Python data.

Every test names the exercise it verifies with ``@pytest.mark.exercise("<id>")``; this module is the
one place that knows which IDs exist, which sheet each belongs to and how many points it is worth.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOGUE_PATH = Path(__file__).with_name("catalogue.toml")


@dataclass(frozen=True)
class Exercise:
    id: str
    sheet: str
    title: str
    points: float
    topic: str
    pending: bool = False
    manual_points: float = 0      # graded by hand: prose, proofs, judgements by eye
    manual: str = ""              # what the human grader reads for
    answer: str = ""              # the reference answer shown to them

    def __post_init__(self):
        if not 0 <= self.manual_points <= self.points:
            raise ValueError(f"{self.id}: manual_points {self.manual_points} outside [0, {self.points}]")
        if self.manual_points and not (self.manual and self.answer):
            raise ValueError(f"{self.id}: a manual item needs `manual` (the question) and `answer`")

    @property
    def auto_points(self) -> float:
        """The points the spec's tests award."""
        return self.points - self.manual_points

    @property
    def fully_manual(self) -> bool:
        """Graded by hand only: its tests check the reference's worked answer, never a submission."""
        return self.manual_points == self.points


@dataclass(frozen=True)
class Catalogue:
    sheets: dict[str, str]
    exercises: tuple[Exercise, ...]

    def __post_init__(self):
        ids = [e.id for e in self.exercises]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"catalogue: duplicated exercise IDs {duplicated}")
        unknown = sorted({e.sheet for e in self.exercises} - set(self.sheets))
        if unknown:
            raise ValueError(f"catalogue: exercises name sheets {unknown} missing from [sheets]")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.exercises)

    def __getitem__(self, exercise_id: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        raise KeyError(f"{exercise_id!r} is not an exercise ID of the catalogue")

    def __contains__(self, exercise_id: object) -> bool:
        return exercise_id in self.ids

    def of_sheet(self, sheet: str) -> tuple[Exercise, ...]:
        return tuple(e for e in self.exercises if e.sheet == sheet)

    def select(self, pattern: str) -> tuple[Exercise, ...]:
        """Exercises whose ID starts with ``pattern``: one ID, a part (``ps09.1``, ``dl-a1.q2``) or a
        sheet (``ps09``)."""
        return tuple(e for e in self.exercises if e.id.startswith(pattern))


def sheet_of(exercise_id: str) -> str:
    """``"dl-a1.q2c"`` -> ``"dl-a1"``: the sheet is what precedes the first dot."""
    sheet, dot, rest = exercise_id.partition(".")
    if not dot or not sheet or not rest:
        raise ValueError(f"exercise ID {exercise_id!r} is not of the form '<sheet>.<item>'")
    return sheet


def parse(text: str) -> Catalogue:
    data = tomllib.loads(text)
    exercises = []
    for entry in data.get("exercise", []):
        entry = dict(entry)
        exercises.append(Exercise(sheet=sheet_of(entry["id"]), **entry))
    return Catalogue(sheets=dict(data.get("sheets", {})), exercises=tuple(exercises))


@cache
def load(path: Path = CATALOGUE_PATH) -> Catalogue:
    return parse(Path(path).read_text(encoding="utf-8"))
