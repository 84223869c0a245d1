"""Grade an implementation of the course's interface: points per exercise and per sheet.

    python -m spec.grade PATH [--out DIR] [--exercise ID ...] [--timeout SECONDS] [--slow]

PATH is a package folder, a single .py file or a Jupyter notebook (.ipynb; cells tagged
``exploration`` or starting with ``# exploration`` are not run). The spec runs in a separate pytest
process; this process never imports the submission and collects the verdicts itself from a record
file the spec's plugin writes line by line, so

* a wrong name, an import error or an exception costs only the tests (and so the exercises) that
  touch it;
* an infinite loop or very slow code fails its test at the per-test timeout (pytest-timeout), and the
  other tests of that exercise are skipped (the exercise is lost anyway); a watchdog ends a run
  whose current test outlives 3 x the timeout + 30 s;
* a submission that crashes the interpreter (os._exit, a segfault) or hangs it past the run limit
  loses the test that was running; the grader starts a fresh process for the tests still to run;
* a submission that replaces pytest's or the spec's machinery while it is imported is detected
  (the identities of the protected objects are compared before and after the import) and scores 0.

Points are all-or-nothing per exercise: an exercise earns its catalogue points when at least one of
its tests passed and none failed (skipped tests, e.g. CUDA-only ones on a machine without CUDA, do
not count against it). The points come from the catalogue loaded here, outside the graded process.
Writes grade.json, grade.md and junit.xml to the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from spec.catalogue import load

ROOT = Path(__file__).resolve().parents[1]
GRADED_PATHS = ("spec",)
NOT_GRADED = ("spec/selftest", "spec/tools", "spec/bench")
EXIT_GRACE_S = 20   # seconds a spec process may take to exit after its session has finished


@dataclass
class TestResult:
    nodeid: str
    exercises: list[str]
    outcome: str = "not run"     # passed | failed | skipped | crashed | not run
    message: str = ""
    seconds: float = 0.0


@dataclass
class Grade:
    target: str
    tests: dict[str, TestResult] = field(default_factory=dict)
    error: str = ""              # a problem with the submission as a whole
    tampered: list[str] = field(default_factory=list)
    runs: int = 0

    def exercise_rows(self) -> list[dict]:
        catalogue = load()
        by_exercise: dict[str, list[TestResult]] = {e.id: [] for e in catalogue.exercises}
        for test in self.tests.values():
            for exercise_id in test.exercises:
                by_exercise.setdefault(exercise_id, []).append(test)
        rows = []
        for exercise in catalogue.exercises:
            tests = by_exercise[exercise.id]
            outcomes = [t.outcome for t in tests]
            if not tests:
                status = "not graded"
            elif self.tampered:
                status = "failed"
            elif any(o in ("failed", "crashed", "not run") for o in outcomes):
                status = "failed"
            elif "passed" in outcomes:
                status = "passed"
            else:
                status = "skipped"
            failures = [{"test": t.nodeid, "outcome": t.outcome, "message": t.message}
                        for t in tests if t.outcome in ("failed", "crashed", "not run")]
            rows.append({"id": exercise.id, "sheet": exercise.sheet, "title": exercise.title,
                         "points": exercise.points, "earned": exercise.points if status == "passed" else 0,
                         "status": status, "tests": len(tests), "passed": outcomes.count("passed"),
                         "failures": failures})
        return rows

    def as_dict(self) -> dict:
        rows = self.exercise_rows()
        sheets = {}
        for row in rows:
            if row["status"] == "not graded":
                continue
            sheet = sheets.setdefault(row["sheet"], {"points": 0, "earned": 0, "exercises": []})
            sheet["points"] += row["points"]
            sheet["earned"] += row["earned"]
            sheet["exercises"].append(row)
        return {"target": self.target, "error": self.error, "tampered": self.tampered, "runs": self.runs,
                "earned": sum(s["earned"] for s in sheets.values()),
                "points": sum(s["points"] for s in sheets.values()), "sheets": sheets}


def _run_spec(target: str, records: Path, *, selection, only: Path | None, timeout: float, slow: bool,
              run_timeout: float) -> int | str:
    command = [sys.executable, "-m", "pytest", *GRADED_PATHS, "-q", "-p", "no:randomly", "-p", "no:xdist",
               "-p", "no:cacheprovider", "-p", "timeout", f"--timeout={timeout}", "--timeout-method=signal",
               f"--impl={target}", f"--records={records}",
               "-m", "not benchmark" if slow else "not slow and not benchmark",
               *(f"--ignore={p}" for p in NOT_GRADED), *(f"--exercise={s}" for s in selection)]
    if only is not None:
        command.append(f"--only-nodeids={only}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SPEC_IMPL"))}
    env.update(OMP_NUM_THREADS="1", HYPOTHESIS_PROFILE="ci", MPLBACKEND="Agg")
    # a watchdog beside pytest-timeout: a test still running 3 x timeout + 30 s after its start
    # (code that swallows the timeout, a property test re-running a hanging example) ends the run;
    # so does a process that has finished its session but does not exit (a non-daemon thread the
    # submission left behind keeps the interpreter waiting): its results are all recorded by then
    stuck_after = 3 * timeout + 30
    finished_status = None
    with open(records.with_suffix(".log"), "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)
        started = last_seen = time.monotonic()
        running, offset = None, 0
        while process.poll() is None:
            time.sleep(0.25)
            if records.exists():
                with open(records, encoding="utf-8", errors="replace") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                complete = chunk[:chunk.rfind("\n") + 1]
                offset += len(complete.encode("utf-8", errors="replace"))
                for line in complete.splitlines():
                    record = json.loads(line) if line.startswith("{") else {}
                    event = record.get("event")
                    if event in ("start", "result"):
                        running, last_seen = (line if event == "start" else None), time.monotonic()
                    elif event == "finished":
                        finished_status, last_seen = record.get("exitstatus", 1), time.monotonic()
            now = time.monotonic()
            if finished_status is not None and now - last_seen > EXIT_GRACE_S:
                process.kill()
                process.wait()
                return finished_status
            if (running is not None and now - last_seen > stuck_after) or now - started > run_timeout:
                process.kill()
                process.wait()
                return "timeout"
    return process.returncode


def _read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue   # a line cut off by a crash
    return events


def grade(target, *, selection=(), timeout: float = 60, slow: bool = False, run_timeout: float = 1800,
          max_runs: int = 25) -> Grade:
    """Run the spec on ``target`` (see the module docstring) and return its grade."""
    target = str(target)
    result = Grade(target)
    path = Path(target)
    if not path.exists():
        result.error = f"{target}: no such file or folder"
    elif path.is_dir() and not (path / "__init__.py").is_file():
        result.error = f"{target}: a package folder needs an __init__.py"
    elif path.is_file() and path.suffix not in (".py", ".ipynb"):
        result.error = f"{target}: expected a .py file, a .ipynb notebook or a package folder"
    if result.error:
        return result
    target = str(path.resolve())
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        only = None
        while result.runs < max_runs:
            result.runs += 1
            records = Path(tmp) / f"records-{result.runs}.jsonl"
            started = time.perf_counter()
            code = _run_spec(target, records, selection=selection, only=only, timeout=timeout, slow=slow,
                             run_timeout=run_timeout)
            events = _read_records(records)
            for event in events:
                if event["event"] == "collected" and event["nodeid"] not in result.tests:
                    result.tests[event["nodeid"]] = TestResult(event["nodeid"], event["exercises"])
                elif event["event"] == "result" and event["nodeid"] in result.tests:
                    test = result.tests[event["nodeid"]]
                    test.outcome, test.message = event["outcome"], event["message"]
                elif event["event"] == "tampered":
                    result.tampered = event["changed"]
            if result.tampered:
                for test in result.tests.values():
                    test.outcome, test.message = "failed", "the submission patched the spec: " + ", ".join(
                        result.tampered)
                break
            if not result.tests:
                result.error = f"the spec collected no tests (pytest exit code {code})"
                break
            finished = {e["nodeid"] for e in events if e["event"] == "result"}
            running = [e["nodeid"] for e in events if e["event"] == "start" and e["nodeid"] not in finished]
            for nodeid in running:
                why = ("the run exceeded its time limit" if code == "timeout"
                       else f"the test process died (exit code {code})")
                result.tests[nodeid].outcome = "crashed"
                result.tests[nodeid].message = f"{why} while this test ran ({time.perf_counter() - started:.0f} s)"
                # the exercise is lost (all-or-nothing): its other tests are not run in a new process
                lost = set(result.tests[nodeid].exercises)
                for test in result.tests.values():
                    if test.outcome == "not run" and lost & set(test.exercises):
                        test.outcome, test.message = "crashed", f"not run: {nodeid} of this exercise crashed the spec"
            remaining = [t.nodeid for t in result.tests.values() if t.outcome == "not run"]
            if not remaining:
                break
            if not running and not finished:
                for nodeid in remaining:
                    result.tests[nodeid].message = f"the spec process stopped before this test (exit code {code})"
                break
            only = Path(tmp) / f"only-{result.runs}.txt"
            only.write_text("\n".join(remaining) + "\n", encoding="utf-8")
    return result


# ------------------------------------------------------------------------------------ output
def to_markdown(data: dict) -> str:
    lines = [f"# Grade of {data['target']}", "", f"**{data['earned']:g} / {data['points']:g} points** "
             f"(all-or-nothing per exercise)", ""]
    if data["error"]:
        lines += [f"**The submission could not be graded:** {data['error']}", ""]
    if data["tampered"]:
        lines += ["**The submission replaced parts of the spec while it was imported "
                  f"({', '.join(data['tampered'])}); every exercise scores 0.**", ""]
    for sheet, info in data["sheets"].items():
        lines += [f"## {sheet}: {info['earned']:g} / {info['points']:g}", "",
                  "| exercise | points | status | tests passed |", "|---|---|---|---|"]
        lines += [f"| {r['id']} | {r['earned']:g} / {r['points']:g} | {r['status']} | {r['passed']} / {r['tests']} |"
                  for r in info["exercises"]]
        lines.append("")
        for row in info["exercises"]:
            if row["failures"]:
                lines += [f"### {row['id']}: {row['title']}", ""]
                for failure in row["failures"][:5]:
                    message = " ".join(failure["message"].split())[:400]
                    lines.append(f"- `{failure['test'].split('::')[-1]}` ({failure['outcome']}): {message}")
                if len(row["failures"]) > 5:
                    lines.append(f"- ... and {len(row['failures']) - 5} more")
                lines.append("")
    return "\n".join(lines)


def to_junit(grade_: Grade) -> str:
    suites = ET.Element("testsuites", name=f"grade of {grade_.target}")
    by_exercise: dict[str, list[TestResult]] = {}
    for test in grade_.tests.values():
        for exercise_id in test.exercises or ["(no exercise)"]:
            by_exercise.setdefault(exercise_id, []).append(test)
    for exercise_id, tests in sorted(by_exercise.items()):
        failures = [t for t in tests if t.outcome in ("failed", "crashed", "not run")]
        suite = ET.SubElement(suites, "testsuite", name=exercise_id, tests=str(len(tests)),
                              failures=str(len(failures)), skipped=str(sum(t.outcome == "skipped" for t in tests)))
        for test in tests:
            module, _, name = test.nodeid.partition("::")
            case = ET.SubElement(suite, "testcase", classname=f"{exercise_id}.{Path(module).stem}", name=name)
            if test.outcome in ("failed", "crashed", "not run"):
                ET.SubElement(case, "failure", message=test.message[:500], type=test.outcome).text = test.message
            elif test.outcome == "skipped":
                ET.SubElement(case, "skipped", message=test.message[:500])
    if grade_.error:
        suite = ET.SubElement(suites, "testsuite", name="submission", tests="1", failures="1")
        case = ET.SubElement(suite, "testcase", classname="submission", name="load")
        ET.SubElement(case, "failure", message=grade_.error, type="error").text = grade_.error
    return ET.tostring(suites, encoding="unicode")


def write_reports(grade_: Grade, out) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = grade_.as_dict()
    (out / "grade.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (out / "grade.md").write_text(to_markdown(data), encoding="utf-8")
    (out / "junit.xml").write_text(to_junit(grade_), encoding="utf-8")
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spec.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="a package folder, a .py file or a .ipynb notebook")
    parser.add_argument("--out", default="grade", help="folder for grade.json, grade.md and junit.xml")
    parser.add_argument("--exercise", action="append", default=[], help="grade only this ID, part or sheet")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per test (default 60)")
    parser.add_argument("--slow", action="store_true", help="also run the tests marked slow")
    args = parser.parse_args(argv)
    catalogue = load()
    for pattern in args.exercise:
        if not catalogue.select(pattern):
            parser.error(f"--exercise {pattern}: no catalogue ID is or starts with it")
    result = grade(args.target, selection=tuple(args.exercise), timeout=args.timeout, slow=args.slow)
    data = write_reports(result, args.out)
    for sheet, info in data["sheets"].items():
        print(f"{sheet:<6} {info['earned']:g} / {info['points']:g}")
    if result.error:
        print(f"could not grade: {result.error}")
    print(f"total  {data['earned']:g} / {data['points']:g}   (reports in {Path(args.out).resolve()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
