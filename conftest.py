"""The spec's pytest plugin: selects the implementation under test, registers markers and options,
ties every test to the exercise it verifies, and prints a per-sheet summary at the end.

Options:
  --impl TARGET        implementation under test: a module name, a .py file or a package folder
                       (else $SPEC_IMPL, else ``impl``)
  --exercise ID        run only the tests of this exercise; a sheet or a prefix selects a group
                       (``--exercise ps09``, ``--exercise ps09.1``); repeatable
  --exercise-report P  also write the per-exercise results as JSON to P
  --session-budget S   past S seconds, every process of the run dumps its threads' stacks and exits 1

Every test is checked for what it leaves behind (the autouse ``leak_guard``, see spec/leaks.py): a
new non-daemon thread still alive or a child process still running or never waited for fails it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

from spec import catalogue as catalogue_module
from spec import implementation, leaks, runs
from spec.summary import Results

ROOT = Path(__file__).parent
SPEC_DIR = ROOT / "spec"

# Hypothesis draws some examples from the literals of the local modules imported so far (its "local
# constants"; test files excepted). Every support module of the spec is imported here, so that a
# property draws the same examples whatever else the process imported: whichever test modules a run
# selects, and whether a grade's judge started afresh or was forked from a class's warm grader (which
# has imported the grader's own modules). spec/warm.py is left out: importing it imports the judge's
# libraries and freezes the heap, and its only literals are strings, which no property of the spec draws.
SUPPORT_MODULES = tuple(f"spec.{path.stem}" for path in sorted(SPEC_DIR.glob("*.py"))
                        if not path.stem.startswith("test_") and path.stem not in ("__init__", "warm"))
for _name in SUPPORT_MODULES:
    importlib.import_module(_name)

COVERED_IDS = pytest.StashKey[set]()
ALL_MODULES_COLLECTED = pytest.StashKey[bool]()
UNMARKED = pytest.StashKey[list]()  # (nodeid, problem) of tests in topic modules that break the rules
RESULTS = pytest.StashKey[Results]()
LOADED = pytest.StashKey[tuple]()   # (Implementation or None, why it could not be loaded or None)
SESSION_DEADLINE = pytest.StashKey[float]()  # time.time() at which --session-budget runs out
WORKER = pytest.StashKey[object]()  # isolated mode: the worker process that runs the implementation
LOST = pytest.StashKey[dict]()      # isolated mode: exercises whose test crashed the worker or timed out

# The autouse ``seed`` fixture is function-scoped; it only seeds, so hypothesis reusing it across
# examples is harmless.
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=50,
                          suppress_health_check=_HEALTH, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=50, suppress_health_check=_HEALTH)
settings.register_profile("thorough", deadline=None, max_examples=1000, suppress_health_check=_HEALTH)
# the self-tests' runs of the wrong-solution corpus (spec/selftest/runner.py): each member must fail its
# exercises within these examples, which the harness asserts, so a miss is a red test, never silence;
# a failing example is reported as found (the harness needs the verdict, not the smallest example)
settings.register_profile("corpus", derandomize=True, deadline=None, max_examples=10,
                          suppress_health_check=_HEALTH, print_blob=True,
                          phases=(Phase.explicit, Phase.reuse, Phase.generate))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser):
    group = parser.getgroup("spec", "course spec")
    group.addoption("--impl", default=None, metavar="TARGET",
                    help=f"implementation under test: module name, .py file or package folder "
                         f"(default: ${implementation.ENV_VAR} or '{implementation.DEFAULT}')")
    group.addoption("--exercise", action="append", default=[], metavar="ID",
                    help="run only the tests of this exercise ID, sheet or ID prefix (repeatable)")
    group.addoption("--exercise-report", default=None, metavar="PATH",
                    help="write per-exercise results as JSON to PATH")
    group.addoption("--records", default=None, metavar="PATH",
                    help="write one JSON line per collected test, test start and test result (for the grader)")
    group.addoption("--only-nodeids", default=None, metavar="FILE",
                    help="keep only the tests whose node IDs FILE lists, one per line")
    group.addoption("--alias", default=None, metavar="FILE",
                    help="a TOML file mapping the implementation's own names onto the interface, one line each: "
                         f"their_name = \"interface_name\" (else ${implementation.ALIAS_ENV_VAR})")
    group.addoption("--notebook-budget", type=float, default=None, metavar="SECONDS",
                    help="time budget of a notebook implementation's cells, apart from the tests' timeouts "
                         "(default 120)")
    group.addoption("--isolate", action="store_true", default=os.environ.get("SPEC_ISOLATE") == "1",
                    help="run the implementation in a separate, sandboxed worker process and reach it through a "
                         "data-only channel (spec/remote.py; always on under python -m spec.grade; $SPEC_ISOLATE=1)")
    group.addoption("--hide-reference", action="store_true", default=False,
                    help="isolated mode: hide the reference solutions (impl/) from the worker")
    group.addoption("--worker-dir", default=None, metavar="DIR",
                    help="isolated mode: the folder the worker may write (default: a fresh temporary folder)")
    group.addoption("--worker-call-timeout", type=float, default=None, metavar="SECONDS",
                    help="isolated mode: a call the worker does not answer within SECONDS fails and the worker "
                         "is restarted (default: none beyond the test's own timeout)")
    group.addoption("--exercise-first-failure", action="store_true", default=False,
                    help="once a test of an exercise fails, skip the exercise's other tests (all-or-nothing: it "
                         "is lost already); for runs that only need each exercise's status")
    group.addoption("--interface-doc", default=None, metavar="PATH",
                    help="write the interface page (the names tests use, per exercise) to PATH")
    group.addoption("--session-budget", type=float, default=None, metavar="SECONDS",
                    help="past SECONDS, every process of the run (xdist workers a little earlier) dumps "
                         "its threads' stacks to stderr and exits 1: a hang becomes a failure")


def pytest_configure(config):
    config.addinivalue_line("markers", "exercise(*ids): the catalogue exercise(s) this test verifies")
    config.addinivalue_line("markers", "slow: longer than a second or two; runs in `tox -e slow`")
    config.addinivalue_line("markers", "gpu: needs CUDA; skipped cleanly where CUDA is absent")
    config.addinivalue_line("markers", "benchmark: pytest-benchmark timing; runs in `tox -e bench`")
    config.addinivalue_line("markers", "robustness: a quality check no sheet asks for (clear errors for bad input, "
                                       "dtype kept, inputs left alone); reported apart, costs no points")
    config.stash[RESULTS] = Results(catalogue_module.load())
    config.pluginmanager.register(ExerciseRecorder(config.stash[RESULTS]), "exercise-recorder")
    if config.getoption("records") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(RecordsWriter(config.getoption("records")), "records-writer")
    if hasattr(config, "workerinput"):
        torch.set_num_threads(1)  # xdist: one thread per worker, no oversubscription of the cores
    budget = config.getoption("session_budget")
    if budget is not None:
        if budget <= 0:
            raise pytest.UsageError(f"--session-budget {budget:g}: give a positive number of seconds")
        if float(config.getini("faulthandler_timeout") or 0) > 0:
            raise pytest.UsageError("--session-budget and faulthandler_timeout both need faulthandler's "
                                    "one watchdog: use one of them")
        if hasattr(config, "workerinput"):
            # the controller's deadline, less a margin: a stuck worker's stacks come before the controller's
            deadline = config.workerinput.get("spec_session_deadline", time.time() + budget)
            leaks.arm_session_budget(max(1.0, deadline - min(10.0, budget / 10) - time.time()))
        else:
            config.stash[SESSION_DEADLINE] = time.time() + budget
            leaks.arm_session_budget(budget)
    for pattern in config.getoption("exercise"):
        if not catalogue_module.load().select(pattern):
            raise pytest.UsageError(f"--exercise {pattern}: no catalogue ID is or starts with it")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist: a worker (a replacement included) ends at the controller's deadline, not its own."""
    deadline = node.config.stash.get(SESSION_DEADLINE, None)
    if deadline is not None:
        node.workerinput["spec_session_deadline"] = deadline


def pytest_report_header(config):
    target = implementation.target_from(config.getoption("impl"))
    lines = [
        f"implementation under test: {implementation.describe(target)}",
        f"torch {torch.__version__}, hypothesis profile {settings.get_current_profile_name()}",
    ]
    budget = config.getoption("session_budget")
    if budget is not None:
        lines.append(f"session budget: {budget:g} s (past it every process dumps its stacks, "
                     f"'Timeout (h:mm:ss)!', and exits 1)")
    return lines


def _exercise_ids(item) -> list[str]:
    return [eid for mark in item.iter_markers("exercise") for eid in mark.args]


def _tier(item) -> str:
    return "robustness" if item.get_closest_marker("robustness") else "points"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    catalogue = catalogue_module.load()
    unknown = sorted({(eid, item.nodeid) for item in items for eid in _exercise_ids(item)
                      if eid not in catalogue}, key=lambda pair: pair[0])
    if unknown:
        listing = "\n".join(f"  {eid!r} in {nodeid}" for eid, nodeid in unknown)
        raise pytest.UsageError(f"tests name exercise IDs missing from spec/catalogue.toml:\n{listing}")

    patterns = config.getoption("exercise")
    wanted = {e.id for p in patterns for e in catalogue.select(p)} if patterns else set(catalogue.ids)
    covered, problems = set(), []
    for item in items:
        ids = _exercise_ids(item)
        covered.update(ids)
        # a test that verifies several exercises reports only to those selected: `--exercise dl-a1.q2b`
        # must not earn dl-a1.q2c through a test the two share
        item.user_properties.extend(("exercise", eid) for eid in ids if eid in wanted)
        item.user_properties.append(("tier", _tier(item)))
        item.user_properties.append(("requests_impl", "impl" in getattr(item, "fixturenames", ())))
        problems.extend(_placement_problems(item, ids, catalogue))
    collected_files = {Path(str(item.path)).resolve() for item in items}
    complete = _exercise_modules() <= collected_files
    config.stash[COVERED_IDS] = covered
    config.stash[ALL_MODULES_COLLECTED] = complete
    config.stash[UNMARKED] = problems
    if complete:
        config.stash[RESULTS].covered = covered
        config.stash[RESULTS].problems = problems

    only = config.getoption("only_nodeids")
    if only:
        wanted_ids = set(Path(only).read_text(encoding="utf-8").split("\n")) - {""}
        dropped = [item for item in items if item.nodeid not in wanted_ids]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.nodeid in wanted_ids]

    if patterns:
        keep = [item for item in items if wanted & set(_exercise_ids(item))]
        deselected = [item for item in items if not wanted & set(_exercise_ids(item))]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = keep


def _exercise_modules() -> set[Path]:
    """The test modules that may verify exercises: all but the spec's self-tests."""
    selftest = SPEC_DIR / "selftest"
    return {p.resolve() for p in SPEC_DIR.rglob("test_*.py") if selftest not in p.parents}


def _placement_problems(item, ids, catalogue):
    """Tests of a topic module (spec/test_<topic>.py) each verify exercises of that topic."""
    path = Path(str(item.path))
    if path.parent != SPEC_DIR or path.stem == "test_catalogue":
        return []  # self-tests, benchmarks and the completeness check verify no exercise
    topic = path.stem.removeprefix("test_")
    if not ids:
        return [(item.nodeid, "carries no @pytest.mark.exercise(...) marker")]
    return [(item.nodeid, f"verifies {eid}, whose topic is {catalogue[eid].topic!r}, not {topic!r}")
            for eid in ids if catalogue[eid].topic != topic]


def pytest_runtest_setup(item):
    implementation.ACCESSED.clear()   # names used from here on (fixtures included) belong to this test
    if item.config.getoption("isolate"):
        from spec.remote import CHANGED_INPUTS

        CHANGED_INPUTS.clear()
    if item.get_closest_marker("gpu") and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    lost = item.config.stash.get(LOST, {})
    why = [f"{eid} {lost[eid]}" for eid in _exercise_ids(item) if eid in lost]
    if why:
        # all-or-nothing: the exercise is lost already; restarting the worker for each of its tests
        # would only spend the grade's time
        pytest.skip(f"not run: an earlier test of {'; '.join(why)}")


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    finally:
        item.user_properties.append(("impl_names", sorted(implementation.ACCESSED - implementation.PROBES)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if item.config.getoption("isolate") and report.when == "call" and report.passed and _tier(item) == "robustness":
        from spec.remote import CHANGED_INPUTS

        if CHANGED_INPUTS:   # isolated mode never copies such a change back: it is reported here
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid}: " + "; ".join(dict.fromkeys(CHANGED_INPUTS))
    if report.failed and report.when == "call" and item.config.getoption("exercise_first_failure") \
            and _tier(item) == "points":
        lost = item.config.stash.setdefault(LOST, {})
        for eid in _exercise_ids(item):
            lost.setdefault(eid, "failed")
    if call.excinfo is not None and item.config.getoption("isolate") and report.failed:
        from spec.remote import WorkerCrashed

        if call.excinfo.errisinstance(WorkerCrashed) or "Timeout" in call.excinfo.exconly()[:200]:
            lost = item.config.stash.setdefault(LOST, {})
            for eid in _exercise_ids(item):
                lost.setdefault(eid, "ended the submission's process or ran out of time")
    if call.excinfo is not None and call.excinfo.errisinstance(implementation.MissingName):
        report.longrepr = f"{item.nodeid}: {call.excinfo.value}"  # the message says it all
    elif call.excinfo is not None and report.skipped and not _raised_by_the_spec(call.excinfo):
        # a skip raised from the submission's code would otherwise leave its test neutral
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid}: the implementation raised a skip ({call.excinfo.exconly()[:300]}); " \
                          "only the spec may skip a test"
    return report


def _raised_by_the_spec(excinfo) -> bool:
    """Whether the innermost frame outside pytest's own code that raised belongs to the spec."""
    import _pytest

    internals = (Path(_pytest.__file__).parent, Path(pytest.__file__).parent)
    frames = [Path(str(entry.path)) for entry in excinfo.traceback]
    ours = [f for f in frames if not any(root in f.parents for root in internals)]
    corpus = (SPEC_DIR / "selftest" / "impls", SPEC_DIR / "selftest" / "notebooks")   # submissions, not spec
    last = ours[-1] if ours else None
    return last is not None and (last == Path(__file__) or (SPEC_DIR in last.parents and
                                                             not any(c in last.parents for c in corpus)))


class RecordsWriter:
    """One JSON object per line, flushed at once: the tests collected (with their exercises), each
    test's start and its result. A grader outside the pytest process reads this file, so a run that
    crashes still tells which tests finished and which one was running."""

    def __init__(self, path):
        self.handle = open(path, "a", encoding="utf-8")  # open for the whole session
        self.pending: dict[str, dict] = {}
        self.timed_out: set[str] = set()   # exercises lost to a timeout: their other tests are skipped

    def pytest_runtest_setup(self, item):
        lost = self.timed_out & set(_exercise_ids(item))
        if lost:
            pytest.skip(f"not run: an earlier test of {', '.join(sorted(lost))} timed out")

    def write(self, **event):
        self.handle.write(json.dumps(event) + "\n")
        self.handle.flush()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            self.write(event="collected", nodeid=item.nodeid, exercises=_property(item, "exercise"), tier=_tier(item))

    def pytest_runtest_logstart(self, nodeid):
        self.write(event="start", nodeid=nodeid)

    def pytest_runtest_logreport(self, report):
        record = self.pending.setdefault(report.nodeid, {"outcome": "passed", "message": "", "counted": False,
                                                         "tier": _property(report, "tier", ["points"])[0]})
        record["counted"] = record["counted"] or counted_outcome(report) is not None
        if report.failed and record["outcome"] != "failed":
            record.update(outcome="failed", message=_failure_text(report))
            if "Timeout" in record["message"]:
                self.timed_out.update(_property(report, "exercise"))
        elif report.skipped and record["outcome"] == "passed" and report.when != "teardown":
            record.update(outcome="skipped", message=_failure_text(report))
        if report.when == "teardown":
            self.write(event="result", nodeid=report.nodeid, **self.pending.pop(report.nodeid))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, exitstatus):
        self.write(event="finished", exitstatus=int(exitstatus))   # what follows is the process's exit

    def pytest_unconfigure(self):
        self.handle.close()


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
    return text[:2000]


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
    from spec.interface import describe_names

    catalogue = catalogue_module.load()
    module = implementation.load(target)
    described = describe_names(module, {n for names in names_by_exercise.values() for n in names})
    lines = ["# The interface of the course's solutions", "",
             f"Generated by `pytest --interface-doc` from the names the spec's tests use (implementation: "
             f"`{target}`). A solution defines, at the top level of one module, package or notebook, the names "
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
                info = described[name]
                cells = [f"`{name}`", "sheet" if info["from_sheet"] else "spec", f"`{info['signature']}`", info["doc"]]
                lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
            lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- fixtures
@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Load the implementation under test once, after collection and before the first test, so that
    a notebook's cells run under their own time budget, not inside the first test's timeout."""
    if any("impl" in getattr(item, "fixturenames", ()) for item in session.items):
        session.config.stash[LOADED] = _load_implementation(session.config)


def _load_implementation(config) -> tuple:
    if config.getoption("isolate"):
        return _start_worker(config)
    target = implementation.target_from(config.getoption("impl"))
    before = implementation.integrity_snapshot(_protected(config))
    state = implementation.GlobalState()
    try:
        aliases = _aliases(config)
        module = implementation.load(target, notebook_budget=config.getoption("notebook_budget"))
    except implementation.ImplementationNotFound as exc:
        return None, str(exc)
    except BaseException as exc:  # the solution's own import-time error, SystemExit included
        return None, f"could not import {target}: {type(exc).__name__}: {exc}"
    finally:
        state.restore()   # torch.set_default_dtype(float64) at import must not change every test after it
    changed = implementation.integrity_changes(before, _protected(config))
    writer = config.pluginmanager.get_plugin("records-writer")
    if changed:
        if writer is not None:
            writer.write(event="tampered", changed=changed)
        pytest.exit(f"{target} patched the spec's machinery while it was imported: {', '.join(changed)}", returncode=3)
    loaded = implementation.Implementation(module, target, aliases)
    _record_loaded(config, loaded)
    return loaded, None


def _aliases(config) -> dict:
    alias_file = config.getoption("alias") or os.environ.get(implementation.ALIAS_ENV_VAR)
    return implementation.read_aliases(alias_file) if alias_file else {}


def _record_loaded(config, loaded) -> None:
    writer = config.pluginmanager.get_plugin("records-writer")
    if writer is None:
        return
    writer.write(event="isolation", what=loaded.isolation if loaded is not None else "")
    if loaded is not None and loaded.notebook_run is not None:
        writer.write(event="notebook", **loaded.notebook_run.as_dict())


def _start_worker(config) -> tuple:
    """Isolated mode: the implementation runs in a sandboxed worker process (spec/remote.py); this
    process, which computes every verdict, never imports it."""
    import cloudpickle

    from spec import remote

    target = implementation.target_from(config.getoption("impl"))
    try:
        _aliases(config)   # a malformed alias file or a missing path: the same one line as in process
        path = implementation._as_path(target)
    except implementation.ImplementationNotFound as exc:
        return None, str(exc)
    for name, module in list(sys.modules.items()):
        if name.startswith("spec.test_") or name.startswith("spec.bench.test_"):
            cloudpickle.register_pickle_by_value(module)   # the spec's test helpers go over by copy
    alias = config.getoption("alias") or os.environ.get(implementation.ALIAS_ENV_VAR)
    loaded, error, worker = remote.start(
        str(path) if path is not None else target, alias=str(Path(alias).resolve()) if alias else None,
        notebook_budget=config.getoption("notebook_budget"), hide_reference=config.getoption("hide_reference"),
        scratch=Path(config.getoption("worker_dir")) if config.getoption("worker_dir") else None,
        call_timeout=config.getoption("worker_call_timeout"))
    config.stash[WORKER] = worker
    if loaded is not None:
        loaded._label = target
    writer = config.pluginmanager.get_plugin("records-writer")
    if writer is not None:
        writer.write(event="isolation", what=worker.isolation)
        if worker.notebook is not None:
            writer.write(event="notebook", **worker.notebook.as_dict())
    return loaded, error


def pytest_unconfigure(config):
    worker = config.stash.get(WORKER, None)
    if worker is not None:
        worker.close()


@pytest.fixture(scope="session")
def impl(pytestconfig) -> implementation.Implementation:
    """The implementation under test (see spec/implementation.py), loaded before the first test."""
    if LOADED not in pytestconfig.stash:
        pytestconfig.stash[LOADED] = _load_implementation(pytestconfig)
    loaded, error = pytestconfig.stash[LOADED]
    if error is not None:
        pytest.fail(error, pytrace=False)
    return loaded


def _protected(config) -> dict:
    """What a solution must not replace: pytest's running and reporting, the spec's plugin, helpers,
    rules and catalogue, and the numerical comparisons the helpers rely on."""
    import _pytest.python
    import _pytest.reports
    import _pytest.runner

    import spec.asserts
    import spec.rules
    targets = {
        "_pytest.runner": (_pytest.runner, ("call_and_report", "runtestprotocol", "pytest_runtest_protocol",
                                             "call_runtest_hook", "pytest_runtest_makereport")),
        "_pytest.reports.TestReport": (_pytest.reports.TestReport, ("from_item_and_call", "__init__")),
        "_pytest.python": (_pytest.python, ("pytest_pyfunc_call",)),
        "_pytest.python.Function": (_pytest.python.Function, ("runtest",)),
        "pytest": (pytest, ("fail", "raises", "skip", "exit")),
        "conftest": (sys.modules[__name__], ("pytest_collection_modifyitems", "pytest_runtest_makereport",
                                             "pytest_runtest_setup", "_exercise_outcome", "_failure_text")),
        "ExerciseRecorder": (ExerciseRecorder, ("pytest_runtest_logreport",)),
        "conftest.counted": (sys.modules[__name__], ("counted_outcome", "_property", "_tier")),
        "RecordsWriter": (RecordsWriter, ("write", "pytest_runtest_logreport", "pytest_runtest_logstart")),
        "Results": (Results, ("record", "status")),
        "spec.asserts": (spec.asserts, ("assert_close", "assert_equal", "assert_tensor", "assert_rounded")),
        "spec.rules": (spec.rules, ("forbid", "_targets")),
        "spec.catalogue": (catalogue_module, ("load", "parse")),
        "numpy": (np, ("isclose", "allclose", "array_equal")),
        "torch": (torch, ("equal", "allclose", "isclose")),
    }
    return {f"{label}.{name}": inspect.getattr_static(owner, name, None) for label, (owner, names) in targets.items()
            for name in names}


@pytest.fixture(scope="session")
def catalogue():
    return catalogue_module.load()


@pytest.fixture(scope="session")
def spec_collection(pytestconfig) -> tuple[frozenset, tuple]:
    """(IDs that some test of the spec verifies, tests misplaced or unmarked), from this session's
    collection when it saw every spec module, else from a ``--collect-only`` run over the spec."""
    if pytestconfig.stash.get(ALL_MODULES_COLLECTED, False):
        return frozenset(pytestconfig.stash[COVERED_IDS]), tuple(pytestconfig.stash[UNMARKED])
    from spec.selftest.runner import collect_spec
    return collect_spec()


@pytest.fixture(autouse=True, scope="session")
def _shared_runs(tmp_path_factory) -> None:
    """The spec's own runs (spec/runs.py) are computed once for the session and the runs it starts."""
    runs.share_runs(tmp_path_factory)


@pytest.fixture(autouse=True)
def _global_state():
    """Whatever a test's calls into the implementation do to torch's and numpy's global settings is
    undone before the next test, so no test's verdict depends on the one before it."""
    state = implementation.GlobalState()
    yield
    state.restore()


@pytest.fixture(autouse=True)
def seed(request) -> int:
    """Seed torch, numpy's global state and Python's ``random`` from the test's own ID, so every
    test draws the same numbers whatever the order or the worker that runs it."""
    value = zlib.crc32(request.node.nodeid.encode())
    torch.manual_seed(value)
    np.random.seed(value)
    import random
    random.seed(value)
    return value


@pytest.fixture(autouse=True)
def leak_guard():
    """Fail the test (at teardown) when it leaves a new non-daemon thread alive or a child process
    running or unreaped: either can keep an xdist worker from exiting or slow the rest of the run.
    Leaked children are killed and reaped. Fixtures of a wider scope are set up before and torn down
    after this check, so their threads and processes are theirs to manage."""
    before = leaks.Snapshot.take()
    yield
    threads, kids = before.left_behind()
    if threads or kids:
        leaks.reap(kids)
        pytest.fail(leaks.report(threads, kids), pytrace=False)


@pytest.fixture
def rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)
