"""Per-exercise and per-sheet results of a spec run (the table printed at the end, and its JSON).

Only tests that reach the implementation under test count for an exercise: a test that never touches
it checks the spec itself (a sympy identity, say) and carries no points. Of those, tests marked
``robustness`` form a separate quality tier (clear errors for bad input, dtype kept, inputs left
alone, batches where the sheet asks for one x): reported apart, costing no points.

An exercise *passed* when at least one of its counted tests passed and none failed; *failed* when any
of them failed or errored; *skipped* when all were skipped (e.g. CUDA-only tests on a machine without
CUDA); *not run* when it has tests but none ran in this session (deselected); *missing* when no test
of the spec verifies it. Which IDs have tests is known from the session's own collection; where the
session did not collect (the xdist controller), the catalogue's ``pending`` flags stand in for it,
which the completeness test keeps exact. Automatic points are all-or-nothing per exercise; the
catalogue's ``manual_points`` are listed apart, to grade by hand.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from spec.catalogue import Catalogue

STATUSES = ("passed", "failed", "skipped", "not run", "missing")


@dataclass
class ExerciseResult:
    id: str
    outcomes: Counter = field(default_factory=Counter)
    robustness: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def status(self, has_tests: bool) -> str:
        if self.outcomes["failed"]:
            return "failed"
        if self.outcomes["passed"]:
            return "passed"
        if self.outcomes["skipped"]:
            return "skipped"
        return "not run" if has_tests else "missing"


class Results:
    """Collects test outcomes keyed by exercise ID."""

    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue
        self.by_id = {e.id: ExerciseResult(e.id) for e in catalogue.exercises}
        self.covered: set[str] | None = None  # IDs with tests, where this process collected them
        self.problems: list[tuple[str, str]] | None = None  # tests unmarked or in the wrong module

    def has_tests(self, exercise_id: str) -> bool:
        if self.covered is not None:
            return exercise_id in self.covered
        return not self.catalogue[exercise_id].pending

    def record(self, exercise_ids, outcome: str, nodeid: str = "", *, tier: str = "points") -> None:
        """One counted test's outcome; ``tier`` is "points" or "robustness"."""
        if outcome not in ("passed", "failed", "skipped"):
            raise ValueError(f"outcome must be passed, failed or skipped, got {outcome!r}")
        if tier not in ("points", "robustness"):
            raise ValueError(f"tier must be 'points' or 'robustness', got {tier!r}")
        for exercise_id in exercise_ids:
            result = self.by_id[exercise_id]
            (result.outcomes if tier == "points" else result.robustness)[outcome] += 1
            if outcome == "failed" and nodeid:
                result.failures.append(nodeid)

    def status(self, exercise_id: str) -> str:
        return self.by_id[exercise_id].status(self.has_tests(exercise_id))

    def as_dict(self) -> dict:
        sheets = {}
        for sheet, title in self.catalogue.sheets.items():
            rows = []
            for exercise in self.catalogue.of_sheet(sheet):
                result = self.by_id[exercise.id]
                status = self.status(exercise.id)
                rows.append({
                    "id": exercise.id,
                    "title": exercise.title,
                    "status": status,
                    "points": exercise.points,
                    "auto_points": exercise.auto_points,
                    "manual_points": exercise.manual_points,
                    "earned": exercise.auto_points if status == "passed" else 0,
                    "tests": dict(result.outcomes),
                    "robustness": dict(result.robustness),
                    "failures": list(result.failures),
                })
            counts = Counter(row["status"] for row in rows)
            sheets[sheet] = {
                "title": title,
                "exercises": rows,
                "counts": {s: counts.get(s, 0) for s in STATUSES},
                "points": sum(row["auto_points"] for row in rows),
                "earned": sum(row["earned"] for row in rows),
                "manual_points": sum(row["manual_points"] for row in rows),
                "robustness": {o: sum(row["robustness"].get(o, 0) for row in rows) for o in ("passed", "failed")},
            }
        return {"sheets": sheets}

    def to_json(self, implementation: str) -> str:
        data = {"implementation": implementation, **self.as_dict()}
        if self.covered is not None:
            data["covered"] = sorted(self.covered)
        if self.problems is not None:
            data["problems"] = [list(p) for p in self.problems]
        return json.dumps(data, indent=2, sort_keys=False)

    def table(self) -> list[str]:
        data = self.as_dict()["sheets"]
        header = (f"{'sheet':<7}" + "".join(f"{s:>9}" for s in STATUSES) + f"{'auto points':>14}"
                  f"{'by hand':>9}{'robustness':>12}")
        lines = [header]
        for sheet, row in data.items():
            counts = "".join(f"{row['counts'][s]:>9}" for s in STATUSES)
            robust = row["robustness"]
            quality = f"{robust['passed']}/{robust['passed'] + robust['failed']}"
            lines.append(f"{sheet:<7}{counts}{_fmt(row['earned']) + ' / ' + _fmt(row['points']):>14}"
                         f"{_fmt(row['manual_points']):>9}{quality:>12}")
        failed, fragile = defaultdict(list), defaultdict(list)
        for sheet, row in data.items():
            for exercise in row["exercises"]:
                if exercise["status"] == "failed":
                    failed[sheet].append(exercise["id"])
                if exercise["robustness"].get("failed"):
                    fragile[sheet].append(exercise["id"])
        for sheet, ids in failed.items():
            lines.append(f"failed in {sheet}: {', '.join(ids)}")
        for sheet, ids in fragile.items():
            lines.append(f"robustness checks failed in {sheet} (no points lost): {', '.join(ids)}")
        return lines


def _fmt(points: float) -> str:
    return f"{points:g}"
