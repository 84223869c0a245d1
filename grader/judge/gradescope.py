"""A grade as Gradescope's autograder ``results.json``, and the autograder's entry point.

The format follows Gradescope's "Autograder Specifications"
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): a top-level ``score`` (optional
where every test has one), ``execution_time`` (seconds), ``output``, ``output_format``,
``visibility`` and ``stdout_visibility`` (``hidden``, ``after_due_date``, ``after_published`` or
``visible``), ``extra_data`` and ``tests``; each test has ``score``, ``max_score``, ``status``
(``passed`` or ``failed``), ``name``, ``number``, ``output``, ``tags``, ``visibility``, ... .
:data:`RESULTS_SCHEMA` writes that down as a JSON schema (stricter than Gradescope: unknown keys are
refused, to catch typos), and :func:`check` validates against it without the jsonschema package.

One test entry per graded exercise: its automatic points, all-or-nothing as in the grade, with the
first failures as output. An exercise with points graded by hand gets a second entry "(graded by
hand)": 0 of those points, with the question as a note, for the course staff to replace.

    python -m spec.grade SUBMISSION --format gradescope --out DIR     # DIR/results.json besides the reports
    python -m grader.judge.gradescope run --exercise ex08                     # inside Gradescope (run_autograder)

``run`` grades the submission in ``$AUTOGRADER_ROOT/submission`` (default ``/autograder``; see
:func:`grader.judge.batch.find_submission` for what is graded there) into ``$AUTOGRADER_ROOT/results/results.json``
and always writes one, also when the grader itself fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from grader.judge.escape import printable
from spec.catalogue import load

VISIBILITY = ["hidden", "after_due_date", "after_published", "visible"]
FORMATS = ["text", "html", "simple_format", "md", "ansi"]

TEST_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "max_score": {"type": "number", "minimum": 0},
        "status": {"enum": ["passed", "failed"]},
        "name": {"type": "string"},
        "name_format": {"enum": FORMATS},
        "number": {"type": "string"},
        "output": {"type": "string"},
        "output_format": {"enum": FORMATS},
        "tags": {"type": "array", "items": {"type": "string"}},
        "visibility": {"enum": VISIBILITY},
        "extra_data": {"type": "object"},
    },
    "additionalProperties": False,
}

RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Gradescope autograder results.json",
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": {"enum": FORMATS},
        "test_output_format": {"enum": FORMATS},
        "test_name_format": {"enum": FORMATS},
        "visibility": {"enum": VISIBILITY},
        "stdout_visibility": {"enum": VISIBILITY},
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": TEST_SCHEMA},
        "leaderboard": {"type": "array", "items": {
            "type": "object", "required": ["name", "value"],
            "properties": {"name": {"type": "string"}, "value": {"type": ["number", "string"]},
                           "order": {"enum": ["asc", "desc"]}}}},
    },
    "additionalProperties": False,
    # the score on the top level, or on every test
    "anyOf": [{"required": ["score"]},
              {"required": ["tests"], "properties": {"tests": {"items": {"required": ["score"]}}}}],
}

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is_type(value, name: str) -> bool:
    if name in ("number", "integer"):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return number and (name == "number" or float(value).is_integer())
    return isinstance(value, _TYPES[name])


def check(instance, schema=RESULTS_SCHEMA, where: str = "results") -> list[str]:
    """The ways ``instance`` breaks ``schema`` (empty when it is valid). Knows the keywords the schema
    above uses: type, enum, minimum, properties, required, additionalProperties, items, anyOf."""
    errors = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(instance, n) for n in names):
            return [f"{where}: {instance!r:.60} is not of type {' or '.join(names)}"]
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{where}: {instance!r:.60} is not one of {schema['enum']}")
    if "minimum" in schema and _is_type(instance, "number") and instance < schema["minimum"]:
        errors.append(f"{where}: {instance} is below the minimum {schema['minimum']}")
    if isinstance(instance, dict):
        errors += [f"{where}: '{key}' is required" for key in schema.get("required", []) if key not in instance]
        properties = schema.get("properties", {})
        for key, value in instance.items():
            if key in properties:
                errors += check(value, properties[key], f"{where}.{key}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{where}: unexpected key '{key}'")
    if isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            errors += check(item, schema["items"], f"{where}[{index}]")
    if "anyOf" in schema and not any(not check(instance, option, where) for option in schema["anyOf"]):
        errors.append(f"{where}: matches none of the alternatives ("
                      + "; ".join(e for option in schema["anyOf"] for e in check(instance, option, where)) + ")")
    return errors


def _short(text: str, limit: int) -> str:
    text = str(text).strip()
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _exercise_output(row: dict) -> str:
    """The exercise's feedback as grade.md gives it: the first failure in full (the error, the student's
    own lines, the call), the others grouped by cause."""
    from grader.judge.grade import failure_cause

    lines = [f"{row['status']}: {row['passed']} of {row['tests']} tests passed "
             f"(all-or-nothing: every test of the exercise must pass)"]
    if row["failures"]:
        first = row["failures"][0]
        lines += [f"First failure, {first['test'].split('::')[-1]} ({first['outcome']}):",
                  _short(first["message"], 3000)]
        groups: dict[str, list] = {}
        for failure in row["failures"][1:]:
            groups.setdefault(failure_cause(failure["message"]), []).append(failure)
        for cause, members in list(groups.items())[:5]:
            lines.append(f"- {len(members)} more failed with {_short(cause, 300)}" if len(members) > 1 else
                         f"- {members[0]['test'].split('::')[-1]}: {_short(members[0]['message'], 600)}")
        if len(groups) > 5:
            lines.append(f"- ... and {sum(len(m) for m in list(groups.values())[5:])} more")
    robust = row["robustness"]
    checked = robust["passed"] + len(robust["failed"])
    if checked:
        lines.append(f"robustness (no points): {robust['passed']} of {checked} checks passed")
    return "\n".join(lines)


def results(data: dict, selection=(), *, seconds: float | None = None, visibility: str = "visible") -> dict:
    """Gradescope's results.json for one grade (``data`` as in grade.json) of the exercises in
    ``selection`` (all where empty): exercises the grade could not reach count 0 of their points."""
    from grader.judge.grade import _selected

    rows = {row["id"]: row for info in data.get("sheets", {}).values() for row in info["exercises"]}
    tests = []
    for exercise in load().exercises:
        if not _selected(exercise.id, selection):
            continue
        row = rows.get(exercise.id)
        if exercise.auto_points:
            if row is None or row["status"] == "not graded":
                entry = {"score": 0, "max_score": exercise.auto_points, "status": "failed",
                         "output": "not graded: " + (data.get("error") or "no test of this exercise ran")}
            else:
                earned = row["earned"]
                entry = {"score": earned, "max_score": exercise.auto_points,
                         "status": "passed" if earned == exercise.auto_points else "failed",
                         "output": _exercise_output(row)}
            tests.append({"name": f"{exercise.id}: {exercise.title}", "number": exercise.id, **entry,
                          "tags": [exercise.sheet, "automatic"], "visibility": visibility})
        if exercise.manual_points:
            # no status: Gradescope derives it from the score, and nothing has failed yet
            tests.append({"name": f"{exercise.id} (graded by hand): {exercise.title}", "number": f"{exercise.id}.hand",
                          "score": 0, "max_score": exercise.manual_points,
                          "output": f"Graded by hand after the deadline, not by the autograder (0 of "
                                    f"{exercise.manual_points:g} points until then).\nQuestion: {exercise.manual}",
                          "tags": [exercise.sheet, "by hand"], "visibility": visibility})
    summary = [f"{sum(t['score'] for t in tests if 'automatic' in t['tags']):g} of "
               f"{sum(t['max_score'] for t in tests if 'automatic' in t['tags']):g} automatic points; "
               f"{sum(t['max_score'] for t in tests if 'by hand' in t['tags']):g} points to be graded by hand."]
    if data.get("error"):
        summary.append(f"The submission could not be graded: {data['error']}")
    if data.get("tampered"):
        summary.append("The submission replaced parts of the grader while it was imported "
                       f"({', '.join(data['tampered'])}): every exercise scores 0.")
    notebook = data.get("notebook") or {}
    failed = [c for c in notebook.get("cells", []) if c.get("status") in ("error", "not run")]
    if failed:
        summary.append(f"{len(failed)} notebook cell(s) failed:")
        summary += [f"- cell {c.get('index')} ({c.get('first_line', '')}): {_short(c.get('error', ''), 300)}"
                    for c in failed[:10]]
    robust = data.get("robustness") or {"passed": 0, "failed": 0}
    summary.append(f"Robustness (no points): {robust['passed']} of {robust['passed'] + robust['failed']} "
                   "checks passed.")
    for test in tests:   # what a submission controls (messages, cell text) is shown as data
        test["output"] = printable(test["output"], keep_newlines=True)
    out = {"score": sum(t["score"] for t in tests), "output": printable("\n".join(summary), keep_newlines=True),
           "output_format": "text",
           "visibility": visibility, "stdout_visibility": "hidden",
           "extra_data": {"robustness": robust, "isolation": data.get("isolation", ""),
                          "manual_points": sum(t["max_score"] for t in tests if "by hand" in t["tags"])},
           "tests": tests}
    if seconds is not None:
        out["execution_time"] = round(seconds, 1)
    return out


def automatic_points(data: dict, selection=()) -> tuple[float, float]:
    """(automatic points earned, automatic points of the selection): the available points come from
    the catalogue, so a submission that could not be graded at all is 0 of them, not 0 of 0."""
    tests = results(data, selection)["tests"]
    automatic = [t for t in tests if "automatic" in t["tags"]]
    return sum(t["score"] for t in automatic), sum(t["max_score"] for t in automatic)


def write_results(data: dict, out, selection=(), *, seconds: float | None = None) -> Path:
    path = Path(out) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results(data, selection, seconds=seconds), indent=2), encoding="utf-8")
    return path


def autograder_root() -> Path:
    return Path(os.environ.get("AUTOGRADER_ROOT", "/autograder"))


def autograde(root: Path, selection=(), **grade_options) -> dict:
    """Grade ``root/submission`` into ``root/results/results.json`` (the reports beside it); a failure
    of the grader itself still writes a results.json that says so."""
    from grader.judge.batch import find_submission
    from grader.judge.grade import Grade, grade, write_reports

    started = time.perf_counter()
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    try:
        path, problem = find_submission(root / "submission")
        if path is None:
            result = Grade(str(root / "submission"), selection=tuple(selection))
            result.error = problem
        else:
            own = root / "submission"   # the student's own folder, staged whole (a package is staged as itself)
            result = grade(str(path), selection=tuple(selection), own_folder=str(own) if path != own else None,
                           **grade_options)
        data = write_reports(result, results_dir)
    except Exception:   # the autograder's own failure: the student still gets a results.json
        data = {"error": "the autograder failed (the course staff can see why in its output):\n"
                         + traceback.format_exc(limit=3), "sheets": {}}
        traceback.print_exc()
    write_results(data, results_dir, selection, seconds=time.perf_counter() - started)
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.judge.gradescope", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="grade $AUTOGRADER_ROOT/submission (inside Gradescope)")
    run.add_argument("--root", default=None, help="the autograder root (default $AUTOGRADER_ROOT or /autograder)")
    run.add_argument("--exercise", action="append", default=[], help="grade only this ID, part or sheet")
    run.add_argument("--timeout", type=float, default=60, help="CPU seconds of the submission per test")
    run.add_argument("--budget", type=float, default=1800, help="seconds for the whole grade")
    run.add_argument("--notebook-budget", type=float, default=None, help="seconds for a notebook's cells")
    args = parser.parse_args(argv)
    root = Path(args.root) if args.root else autograder_root()
    from grader.judge.grade import default_judges

    # one submission per container: spare cores share its tests among judges (grader.judge.grade's judges)
    data = autograde(root, tuple(args.exercise), timeout=args.timeout, budget=args.budget,
                     notebook_budget=args.notebook_budget, judges=default_judges())
    written = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    print(f"score {written['score']:g}; {data.get('error') or 'graded'}; results in {root / 'results'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
