"""Grade a whole class: every submission in a folder, each in its own process with its own time budget.

    python -m spec.grade SUBMISSIONS_DIR --out DIR [--jobs N] [--force] [--skip GLOB] [grade options]

A folder WITHOUT ``__init__.py`` is a class folder; a folder with one is a single package submission
(``python -m spec.grade`` dispatches on that). In a class folder every entry is one student, named by
the entry (its stem for a file):

* a ``.py`` file or a ``.ipynb`` notebook;
* a folder with ``__init__.py``: a package submission;
* any other folder: the student's own folder (a download from Moodle, Classroom or Gradescope), graded
  by :func:`find_submission`: its one notebook, else its one ``.py`` file, else its one package folder;
  helper files beside it (``test_utils.py``, data) travel with it.

Names starting with ``.`` or ``_``, ``__pycache__`` and other files are ignored, as are the entries that
match a ``--skip`` glob (a course's helper module lying beside flat notebooks: ``--skip test_utils.py``).

Each student is graded by a process of its own that calls :func:`grader.judge.grade.grade` with the grade's
``--budget``: a fork of one warm process that has imported the judge's libraries once (grader/judge/warm.py),
whose judges are forks of it in turn; the submission itself still runs in a new sandboxed interpreter.
The batch kills a student's process still running ``GRACE_S`` seconds past that budget (SIGTERM, so
that the grade ends its own spec process, then SIGKILL) and writes that student's reports itself. So a
crash, a hang or a timeout costs its own student's row only. ``--jobs N`` students are graded at once
(default: the cores).

Writes ``DIR/<student>/`` (grade.json, grade.md, junit.xml, and ``batch.json``: the options, time and
status of that grade) and ``DIR/gradebook.csv``, one row per student; ``--format gradescope`` adds
each student's results.json (``--strict`` and ``--points-summary`` are for one submission). A rerun
skips a student whose grade.json is newer than every file of the submission and was made with the same
options (unless the grading process itself crashed); ``--force`` regrades everyone.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from grader.judge import sandbox
from grader.judge.escape import csv_cell, folder_name, printable
from spec.catalogue import load

GRACE_S = 60.0          # seconds a worker may run past the grade's own budget (start, reports, stop)
TERM_WAIT_S = 10.0      # seconds between SIGTERM and SIGKILL for a worker past its limit
IGNORED = ("__pycache__", ".ipynb_checkpoints")


# ------------------------------------------------------------------------------ finding the class
@dataclass
class Submission:
    student: str               # the entry's name as the class folder has it (data: shown escaped)
    path: Path | None          # what grade() gets; None where the entry holds nothing gradable
    entry: Path                # the class folder's entry (the file, or the student's folder)
    problem: str = ""          # why path is None
    folder: str = ""           # the student's report folder: a safe name, unique in the class (escape.py)

    @property
    def own_folder(self) -> Path | None:
        """The student's own folder, staged whole; None for a flat entry (its file alone is staged)."""
        return self.entry if self.path is not None and self.path != self.entry else None


def is_class_folder(path, *, package: bool = False, class_: bool = False) -> bool:
    """A folder of submissions, as opposed to one package submission. A folder without __init__.py is a
    class; one with it is what the course says (``--package`` or ``--class``): an entry named
    __init__.py in a flat class folder must not turn the whole class into one student's package."""
    path = Path(path)
    if not path.is_dir() or package:
        return False
    if class_ or not os.path.lexists(path / "__init__.py"):
        return True
    raise AmbiguousTarget(f"{path} has an __init__.py: pass --package to grade it as one package submission, or "
                          "--class to grade it as a class folder (the entry __init__.py is then ignored)")


class AmbiguousTarget(ValueError):
    """A folder that could be one package submission or a class folder."""


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "_")) and path.name not in IGNORED


def _kind(path: Path) -> str:
    """'file', 'folder', 'link' or 'other', never following a link (lstat)."""
    mode = os.lstat(path).st_mode
    return ("link" if stat.S_ISLNK(mode) else "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode)
            else "other")


def find_submission(folder: Path) -> tuple[Path | None, str]:
    """The submission in one student's folder (or Gradescope's /autograder/submission): the folder
    itself if it is a package, else its one notebook, else its one .py file, else its one package
    folder. Links are never followed: a link is no submission. Returns (path, "") or (None, why)."""
    folder = Path(folder)
    try:
        if _kind(folder) != "folder":
            return None, f"{folder.name} is not a folder of the student's own (a link or a special file)"
        if (folder / "__init__.py").exists() and _kind(folder / "__init__.py") == "file":
            return folder, ""
        entries = [(p, _kind(p)) for p in sorted(folder.iterdir()) if _visible(p)]
        packages = [p for p, kind in entries if kind == "folder" and (p / "__init__.py").exists()
                    and _kind(p / "__init__.py") == "file"]
    except OSError as error:
        return None, f"{folder.name}/ could not be read: {error.strerror or error}"
    for kind, found in (("notebook", [p for p, k in entries if k == "file" and p.suffix == ".ipynb"]),
                        (".py file", [p for p, k in entries if k == "file" and p.suffix == ".py"]),
                        ("package folder", packages)):
        if len(found) == 1:
            return found[0], ""
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            return None, f"{folder.name}/ holds {len(found)} {kind}s ({names}): expected one submission"
    links = [p.name for p, k in entries if k == "link"]
    also = f" (links are not followed: {', '.join(links[:5])})" if links else ""
    return None, f"{folder.name}/ holds no notebook, .py file or package folder{also}"


def linked_files(entry: Path) -> dict[tuple[int, int], str]:
    """{(device, inode): name} of the files of one student's entry that have other names too (hard
    links), among what staging copies."""
    from grader.judge.grade import SKIPPED_IN_COPY, STAGE_DEPTH

    found: dict[tuple[int, int], str] = {}
    try:
        base = str(entry).count(os.sep)
        tops = [(str(entry.parent), [], [entry.name])] if _kind(entry) == "file" else os.walk(entry)
        for top, folders, files in tops:
            if top.count(os.sep) - base >= STAGE_DEPTH:
                folders[:] = []
            folders[:] = [f for f in folders if f not in SKIPPED_IN_COPY]
            for name in files:
                info = os.lstat(os.path.join(top, name))
                if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                    found[info.st_dev, info.st_ino] = os.path.relpath(os.path.join(top, name), entry.parent)
    except (OSError, RecursionError):
        pass
    return found


def shared_files(submissions: list[Submission]) -> dict[str, list[str]]:
    """{student: why} for the students whose entries share a file (one file under two names, a hard
    link: what extracting a student's archive into the shared class folder can make of a classmate's
    file). Their grades stand as computed, flagged for a check by hand: which name came first is not
    on disk."""
    owners: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for submission in submissions:
        for key, name in linked_files(submission.entry).items():
            owners.setdefault(key, []).append((submission.student, name))
    flagged: dict[str, list[str]] = {}
    for sharing in owners.values():
        for student, name in sharing:
            others = sorted({f"{printable(s)}'s {printable(n)}" for s, n in sharing if s != student})
            if others:
                flagged.setdefault(student, []).append(
                    f"{printable(name)} is the same file as {', '.join(others)} (a hard link): check by hand")
    return flagged


def find_class(folder, skip=()) -> list[Submission]:
    """Every student's submission in a class folder, sorted by student name. An entry that cannot be
    read, or is a link, is that student's row (not graded), never the end of the class run."""
    found = []
    for entry in sorted(Path(folder).iterdir()):
        if not _visible(entry) or any(fnmatch.fnmatch(entry.name, pattern) for pattern in skip):
            continue
        try:
            kind = _kind(entry)
        except OSError as error:
            found.append(Submission(entry.name, None, entry, f"could not be read: {error.strerror or error}"))
            continue
        if kind == "file" and entry.suffix in (".py", ".ipynb"):
            found.append(Submission(entry.stem, entry, entry))
        elif kind == "folder":
            path, problem = find_submission(entry)
            found.append(Submission(entry.name, path, entry, problem))
        elif kind == "link" and (entry.suffix in (".py", ".ipynb") or not entry.suffix):
            found.append(Submission(entry.stem, None, entry, f"{entry.name} is a link: a submission is graded "
                                                             "from the student's own files only"))
    stems = [s.student for s in found]
    for submission in found:   # alice.py beside alice.ipynb: both keep their suffix
        if stems.count(submission.student) > 1:
            submission.student = submission.entry.name
    taken: set[str] = set()
    for submission in found:
        submission.folder = folder_name(submission.student, taken)
    return found


# ------------------------------------------------------------------------------ one student
def newest_mtime(path: Path) -> float:
    """The newest change under ``path`` among what staging would copy (grade.py's SKIPPED_IN_COPY and
    STAGE_DEPTH), links not followed (an unreadable or too deep entry: now, so it is regraded)."""
    from grader.judge.grade import SKIPPED_IN_COPY, STAGE_DEPTH

    try:
        newest, base = os.lstat(path).st_mtime, str(path).count(os.sep)
        for top, folders, files in os.walk(path, followlinks=False):
            if top.count(os.sep) - base > STAGE_DEPTH:
                return float("inf")
            folders[:] = [f for f in folders if f not in IGNORED and f not in SKIPPED_IN_COPY]
            newest = max([newest, *(os.lstat(os.path.join(top, f)).st_mtime for f in files)])
        return newest
    except (OSError, RecursionError):
        return float("inf")


def up_to_date(submission: Submission, folder: Path, options: dict) -> bool:
    """Whether the student's report is newer than every file of the submission and was made with
    these options."""
    report, stamp = folder / "grade.json", folder / "batch.json"
    if not (report.is_file() and stamp.is_file()):
        return False
    try:
        previous = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # a grader that crashed (not the student's code) is tried again
    return (previous.get("options") == options and previous.get("submission") == str(submission.path)
            and previous.get("status") != "grader crashed"
            and report.stat().st_mtime > newest_mtime(submission.entry))


def _kill_group(process, sig) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def grade_one(submission: Submission, folder: Path, options: dict, *, grace: float = GRACE_S,
              runs: str | None = None) -> dict:
    """Grade one student in a process of its own (a fork of the warm fork server); returns the stamp
    written to folder/batch.json. Always leaves grade.json, grade.md and junit.xml in folder, also when
    that process was killed or crashed."""
    from grader.judge.grade import Grade, write_reports

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("grade.json", "grade.md", "junit.xml", "batch.json"):
        (folder / name).unlink(missing_ok=True)
    started = time.perf_counter()
    status, detail = "graded", ""
    if submission.path is None:
        status, detail = "not graded", submission.problem
    else:
        limit = options["budget"] + grace
        own = str(submission.own_folder) if submission.own_folder is not None else None
        process = _warm().Process(target=_student, name=f"grade {submission.folder}",
                                  args=(str(submission.path), str(folder), options, str(folder / "worker.log"), runs,
                                        own))
        process.start()
        process.join(limit)
        code = process.exitcode
        if code is None:
            _kill_group(process, signal.SIGTERM)     # the grade ends its own spec process
            process.join(TERM_WAIT_S)
            if process.exitcode is None:
                _kill_group(process, signal.SIGKILL)
                process.kill()                       # in case it had not yet made its own group
                process.join()
            status, code = "killed", None
            detail = (f"the grade was stopped after {limit:g} s (its budget of {options['budget']:g} s "
                      f"plus {grace:g} s to start and stop)")
        process.close()
        if status == "graded" and (code != 0 or not (folder / "grade.json").is_file()):
            tail = (folder / "worker.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
            status, detail = "grader crashed", f"the grading process ended with exit code {code}: " + " / ".join(tail)
    seconds = time.perf_counter() - started
    if status == "graded" and seconds >= options["budget"]:
        status, detail = "timed out", f"the grade spent its whole time budget of {options['budget']:g} s"
    if status not in ("graded", "timed out"):
        fallback = Grade(str(submission.path or submission.entry), selection=tuple(options["selection"]))
        fallback.error = detail
        write_reports(fallback, folder)
    stamp = {"student": submission.student, "submission": str(submission.path), "options": options,
             "status": status, "detail": detail, "seconds": round(seconds, 2)}
    (folder / "batch.json").write_text(json.dumps(stamp, indent=2), encoding="utf-8")
    return stamp


_CONTEXT = None


def _warm():
    """The processes that grade students: forks of one fork server that has imported grader/judge/warm.py
    (torch, sympy, pytest & co), each of which forks its own judges (grader.judge.grade's ``fork_judge``)."""
    global _CONTEXT
    if _CONTEXT is None:
        import multiprocessing

        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["grader.judge.warm"])
    return _CONTEXT


def _student(target: str, out: str, options: dict, log: str, runs: str | None, own_folder: str | None) -> None:
    """In a student's grading process: its own session (the batch ends the whole group at its limit),
    ended with the fork server, output to ``log``; grade the submission and write its reports. SIGTERM
    becomes SystemExit, so that the grade's own clean-up (ending its judge, its scratch folder) runs."""
    import ctypes

    from grader.judge.grade import grade, write_reports

    os.setsid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(output, 1), os.dup2(output, 2)

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    result = grade(target, selection=tuple(options["selection"]), timeout=options["timeout"], slow=options["slow"],
                   alias=options["alias"], notebook_budget=options["notebook_budget"], budget=options["budget"],
                   fork_judge=True, runs=runs, own_folder=own_folder, helpers=tuple(options.get("helpers", ())))
    write_reports(result, Path(out))


# ------------------------------------------------------------------------------ the gradebook
def sheet_points(selection) -> dict[str, float]:
    """The automatic points of each sheet within the selection (the maximum of a gradebook column)."""
    from grader.judge.grade import _selected

    points: dict[str, float] = {}
    for exercise in load().exercises:
        if _selected(exercise.id, selection):
            points[exercise.sheet] = points.get(exercise.sheet, 0) + exercise.auto_points
    return points


def manual_items(selection) -> list[str]:
    from grader.judge.grade import _selected

    return [f"{e.id} ({e.manual_points:g})" for e in load().exercises
            if e.manual_points and _selected(e.id, selection)]


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def explain(data: dict, stamp: dict) -> str:
    """Why a student lost points, in one cell: the grade's error, tampering, failed notebook cells and
    the first failure of each failed exercise."""
    parts = []
    if stamp.get("status") not in (None, "graded") and stamp.get("detail"):
        parts.append(f"{stamp['status']}: {stamp.get('detail', '')}")
    elif data.get("error"):
        parts.append(f"could not be graded: {data['error']}")
    if data.get("tampered"):
        parts.append("patched the spec (" + ", ".join(data["tampered"]) + "): 0 points")
    notebook = data.get("notebook") or {}
    failed_cells = [c for c in notebook.get("cells", []) if c.get("status") in ("error", "not run")]
    if failed_cells:
        first = failed_cells[0]
        parts.append(f"{len(failed_cells)} notebook cell(s) failed, first cell {first.get('index')}: "
                     f"{first.get('error', '')}")
    by_reason: dict[str, list[str]] = {}   # exercises lost for the same reason are named together
    for info in data.get("sheets", {}).values():
        for row in info["exercises"]:
            if row["status"] == "failed" and row["failures"]:
                failure = row["failures"][0]
                by_reason.setdefault(f"{failure['outcome']}: {_short(failure['message'])}", []).append(row["id"])
    parts += [f"{', '.join(ids)} {reason}" for reason, ids in by_reason.items()]
    return " | ".join(_short(p, 400) for p in parts)


def gradebook_row(submission: Submission, folder: Path, selection) -> dict:
    try:
        data = json.loads((folder / "grade.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        data = {"error": f"no readable grade.json ({error})", "sheets": {}}
    try:
        stamp = json.loads((folder / "batch.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamp = {}
    maxima = sheet_points(selection)
    row = {"student": submission.student, "folder": submission.folder,
           "submission": str(submission.path or submission.entry), "status": stamp.get("status", "unknown")}
    for sheet, points in maxima.items():
        earned = data.get("sheets", {}).get(sheet, {}).get("earned", 0)
        row[f"{sheet} points"] = f"{earned:g}"
        row[f"{sheet} max"] = f"{points:g}"
    row["total points"] = f"{sum(data.get('sheets', {}).get(s, {}).get('earned', 0) for s in maxima):g}"
    row["total max"] = f"{sum(maxima.values()):g}"
    row["manual to grade"] = "; ".join(manual_items(selection))
    robust = data.get("robustness", {"passed": 0, "failed": 0})
    row["robustness"] = f"{robust['passed']}/{robust['passed'] + robust['failed']} passed"
    row["seconds"] = f"{stamp.get('seconds', 0):.1f}"
    row["errors"] = explain(data, stamp)
    return row


def write_gradebook(rows: list[dict], path: Path) -> None:
    """One row per student; every cell is data (a name, a message) and never a spreadsheet formula."""
    fields = list(rows[0]) if rows else ["student"]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows({key: csv_cell(value) for key, value in row.items()} for row in rows)


# ------------------------------------------------------------------------------ the class
class Progress:
    """A plain progress line on stderr (neither tqdm nor rich is a dependency of the project): one
    line per student, rewritten in place on a terminal."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.started = total, 0, time.monotonic()
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def update(self, text: str) -> None:
        with self.lock:
            self.done += 1
            elapsed = time.monotonic() - self.started
            eta = elapsed / self.done * (self.total - self.done)
            line = (f"[{self.done:>{len(str(self.total))}}/{self.total}] {100 * self.done / self.total:3.0f}% "
                    f"{elapsed:6.0f} s elapsed, about {eta:.0f} s left | {text}")
            tty = getattr(self.stream, "isatty", lambda: False)()
            self.stream.write("\r\x1b[K" + line if tty else line + "\n")
            if tty and self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


def grade_class(folder, out, *, selection=(), timeout: float = 60, slow: bool = False, alias: str | None = None,
                notebook_budget: float | None = None, budget: float = 1800, jobs: int | None = None,
                force: bool = False, skip=(), helpers=(), grace: float = GRACE_S, progress: bool = True) -> list[dict]:
    """Grade every submission in ``folder`` (see the module docstring); returns the gradebook rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    submissions = find_class(folder, (*skip, *helpers))   # a helper the course names is nobody's submission
    options = {"selection": list(selection), "timeout": timeout, "slow": slow, "alias": alias,
               "notebook_budget": notebook_budget, "budget": budget, "helpers": list(helpers)}
    jobs = max(1, jobs or len(os.sched_getaffinity(0)))
    todo = [s for s in submissions if force or not up_to_date(s, out / s.folder, options)]
    bar = Progress(len(todo)) if progress and todo else None
    # the spec's own runs (spec/runs.py) are read from the cache of this spec version, which the judges
    # share (grade.runs_cache); where there is none, the first judge that needs one computes it and the
    # others read it from a folder of the batch's, shared only where no worker can write to it
    with tempfile.TemporaryDirectory(prefix="spec-runs-") as shared, ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = shared if sandbox.worker_cannot_write_the_judges_files() else None
        futures = {pool.submit(grade_one, s, out / s.folder, options, grace=grace, runs=runs): s for s in todo}
        for future in as_completed(futures):
            stamp = future.result()
            if bar:
                bar.update(f"{printable(stamp['student'])}: {stamp['status']} in {stamp['seconds']:.0f} s")
    rows = [gradebook_row(s, out / s.folder, selection) for s in submissions]
    skipped = {s.folder for s in submissions} - {s.folder for s in todo}
    flagged = shared_files(submissions)
    for row, submission in zip(rows, submissions, strict=True):
        row["rerun"] = "skipped (report up to date)" if row["folder"] in skipped else "graded now"
        if submission.student in flagged:
            row["errors"] = "; ".join([*flagged[submission.student], *filter(None, [row["errors"]])])
    write_gradebook(rows, out / "gradebook.csv")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The batch options of ``python -m spec.grade`` (used when its target is a class folder)."""
    group = parser.add_argument_group(
        "a class folder (one submission per entry; a folder without __init__.py, or --class)")
    group.add_argument("--jobs", type=int, default=None,
                       help="students graded at once (default: the cores); for one submission, the judges that "
                            "share its tests, each with a worker of its own (default: 2 on 4 cores or more, else 1)")
    group.add_argument("--force", action="store_true", help="regrade students whose report is up to date")
    group.add_argument("--skip", action="append", default=[], metavar="GLOB",
                       help="entries of the class folder that are not students (helper files), repeatable")
    kind = group.add_mutually_exclusive_group()
    kind.add_argument("--class", dest="class_", action="store_true",
                      help="the target folder is a class folder, even if it holds an __init__.py")
    kind.add_argument("--package", action="store_true",
                      help="the target folder is one package submission (it has __init__.py)")


def run(args) -> int:
    """``python -m spec.grade CLASS_FOLDER ...``: grade the class, print a summary."""
    started = time.perf_counter()
    rows = grade_class(args.target, args.out, selection=tuple(args.exercise), timeout=args.timeout, slow=args.slow,
                       alias=str(Path(args.alias).resolve()) if args.alias else None,
                       notebook_budget=args.notebook_budget, budget=args.budget, jobs=args.jobs, force=args.force,
                       skip=tuple(args.skip), helpers=tuple(args.helpers))
    elapsed = time.perf_counter() - started
    if getattr(args, "format", "reports") == "gradescope":   # each student's results.json beside the reports
        from grader.judge.gradescope import write_results

        for row in rows:
            folder = Path(args.out) / row["folder"]
            data = json.loads((folder / "grade.json").read_text(encoding="utf-8"))
            write_results(data, folder, tuple(args.exercise), seconds=float(row["seconds"]))
    graded = [r for r in rows if r["rerun"] == "graded now"]
    print(f"{len(rows)} students, {len(graded)} graded now in {elapsed:.0f} s"
          + (f" ({elapsed / len(graded):.1f} s per student with {args.jobs or len(os.sched_getaffinity(0))} jobs)"
             if graded else "") + f"; gradebook: {Path(args.out).resolve() / 'gradebook.csv'}")
    for row in rows:
        flag = "" if row["status"] == "graded" else f"  [{row['status']}]"
        print(f"  {printable(row['student']):<24} {row['total points']:>6} / {row['total max']}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit("usage: python -m spec.grade CLASS_FOLDER --out DIR [--jobs N]")
