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
from pathlib import Path

import pytest

from grader.sandboxed import implementation
from spec.catalogue import Catalogue, load

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


# ------------------------------------------------------------------------- the plugin's hooks
RESULTS = pytest.StashKey[Results]()


def pytest_addoption(parser):
    group = parser.getgroup("spec", "course spec")
    group.addoption("--exercise-report", default=None, metavar="PATH",
                    help="write per-exercise results as JSON to PATH")
    group.addoption("--interface-doc", default=None, metavar="PATH",
                    help="write the interface page (the names tests use, per exercise) to PATH")


def pytest_configure(config):
    config.stash[RESULTS] = Results(load())
    config.pluginmanager.register(ExerciseRecorder(config.stash[RESULTS]), "exercise-recorder")


class ExerciseRecorder:
    """Turns test reports into per-exercise results (on the xdist controller, reports arrive from
    the workers with the exercise IDs in ``user_properties``), and notes which interface names each
    exercise's tests used."""

    def __init__(self, results: Results):
        self.results = results
        self.names: dict[str, set[str]] = {}

    def pytest_runtest_logreport(self, report):
        ids = _property(report, "exercise")
        if ids and (outcome := counted_outcome(report)):
            self.results.record(ids, outcome, report.nodeid, tier=_property(report, "tier", ["points"])[0])
        used = [name for value in _property(report, "impl_names") for name in value]
        for exercise_id in ids:
            self.names.setdefault(exercise_id, set()).update(used)


def _property(item_or_report, key, default=None) -> list:
    """The values a test's user_properties hold under ``key`` (on an item or on one of its reports)."""
    values = [value for k, value in item_or_report.user_properties if k == key]
    return values or (default or [])


def counted_outcome(report) -> str | None:
    """The outcome this phase's report gives the test's exercises, or None where it gives none.

    Only tests that reach the implementation under test count: those whose fixtures include ``impl``
    (directly or through another fixture, such as a module-scoped training run). A test that never
    touches the implementation checks the spec itself (a sympy identity, say) and earns nothing."""
    outcome = _exercise_outcome(report)
    return outcome if outcome is not None and _property(report, "requests_impl", [False])[0] else None


def _failure_text(report) -> str:
    if isinstance(report.longrepr, tuple):          # a skip: (file, line, reason)
        return str(report.longrepr[2])
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    call = _property(report, "call")
    return text[:2000] + (f"\nThe last call of your code: {call[-1][:1000]}" if call else "")


def _exercise_outcome(report) -> str | None:
    if hasattr(report, "wasxfail"):  # an xfail that failed counts as passed, an xpass as failed
        return "passed" if report.skipped else "failed"
    if report.when == "call" or (report.when == "setup" and not report.passed):
        return report.outcome
    if report.when == "teardown" and report.failed:
        return "failed"
    return None


def pytest_terminal_summary(terminalreporter, config):
    results = config.stash[RESULTS]
    target = implementation.target_from(config.getoption("impl"))
    terminalreporter.section(f"exercises of {target}")
    for line in results.table():
        terminalreporter.write_line(line)
    from spec.plugins.selection import LOADED

    loaded, _ = config.stash.get(LOADED, (None, None))
    run = loaded.notebook_run if loaded is not None else None
    if run is not None:
        terminalreporter.section(f"notebook {run.path.name}: {len(run.cells)} code cells in {run.seconds:.1f} s")
        for cell in run.failed:
            terminalreporter.write_line(f"failed: {cell.describe()}")
        for magic in run.not_run_magics:
            terminalreporter.write_line(f"not run: {magic}")
    path = config.getoption("exercise_report")
    if path:
        Path(path).write_text(results.to_json(target), encoding="utf-8")
    page = config.getoption("interface_doc")
    if page:
        from spec.interface import INTERFACE_JSON

        recorder = config.pluginmanager.get_plugin("exercise-recorder")
        names = {eid: sorted(n) for eid, n in recorder.names.items() if n}
        Path(page).write_text(interface_page(recorder.names, target), encoding="utf-8")
        INTERFACE_JSON.write_text(json.dumps(names, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        terminalreporter.write_line(f"interface page written to {page}, names per exercise to {INTERFACE_JSON}")


def interface_page(names_by_exercise: dict[str, set[str]], target: str) -> str:
    """The interface students implement, exercise by exercise: every name the spec's tests use, with its
    signature and the first line of its docstring, and whether the sheet (or its course template)
    gives the name or the spec chose it. Exercises graded by hand alone need no name."""
    from spec.interface import load_interface

    catalogue, contracts = load(), load_interface().names
    lines = ["# The interface of the course's solutions", "",
             f"Generated by `pytest --interface-doc` from the names the spec's tests use (implementation: "
             f"`{target}`) and their contracts in `spec/interface.toml`. A solution defines, at the top level "
             "of one module, package or notebook, the names "
             "of the exercises it solves. *sheet* marks a name the sheet or its course template gives; the "
             "others are the spec's, kept stable so that one spec judges every solution (an alias file maps a "
             "solution's own names onto them: `python -m spec.grade --alias FILE`). The spec owns the data, "
             "grids, training loops and thresholds; robustness checks (bad input, dtype, untouched inputs, "
             "batches) are reported apart and cost no points.", ""]
    for sheet, title in catalogue.sheets.items():
        lines += [f"## {sheet}: {title}", ""]
        for exercise in catalogue.of_sheet(sheet):
            names = sorted(names_by_exercise.get(exercise.id, ()), key=str.lower)
            by_hand = f", {exercise.manual_points:g} by hand" if exercise.manual_points else ""
            lines += [f"### {exercise.id}: {exercise.title} ({exercise.auto_points:g} points automatic{by_hand})", ""]
            if exercise.fully_manual:
                lines += ["Graded by hand; no name is required. " + exercise.manual, ""]
                continue
            lines += ["| name | from | signature | what it is |", "|---|---|---|---|"]
            for name in names:
                contract = contracts[name]
                doc = " ".join((contract.text or contract.value).split())
                cells = [f"`{name}`", "sheet" if contract.sheet else "spec", f"`{name}{contract.signature}`", doc]
                lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
            lines.append("")
    return "\n".join(lines)
