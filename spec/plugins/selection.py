"""The spec's plugin, part one: what is tested. Selects the implementation under test and the
exercises, registers the markers and the hypothesis profiles, ties every test to the exercise it
verifies, loads the implementation once before the first test, and gives the tests their fixtures
(``impl``, ``seed``, ``rng``, ``catalogue``, ``spec_collection``).

Options:
  --impl TARGET        implementation under test: a module name, a .py file or a package folder
                       (else $SPEC_IMPL, else ``impl``)
  --exercise ID        run only the tests of this exercise; a sheet or a prefix selects a group
                       (``--exercise ps09``, ``--exercise ps09.1``); repeatable
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

from grader.sandboxed import implementation
from spec import catalogue as catalogue_module
from spec import runs
from spec.plugins import contracts
from spec.plugins.summary import RESULTS

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = ROOT / "spec"

# Hypothesis draws some examples from the literals of the local modules imported so far (its "local
# constants"; test files excepted). Every support module of the spec is imported here, so that a
# property draws the same examples whatever else the process imported: whichever test modules a run
# selects, and whether a grade's judge started afresh or was forked from a class's warm grader (which
# has imported the grader's own modules). The plugin modules are pytest's to import (conftest.py);
# grader/judge/warm.py is left out: importing it imports the judge's
# libraries and freezes the heap, and its only literals are strings, which no property of the spec draws.
SUPPORT_MODULES = (
    *(f"spec.{path.stem}" for path in sorted(SPEC_DIR.glob("*.py"))
      if not path.stem.startswith("test_") and path.stem != "__init__"),
    *(f"grader.{side}.{path.stem}" for side in ("sandboxed", "judge")
      for path in sorted((ROOT / "grader" / side).glob("*.py")) if path.stem not in ("__init__", "warm", "plugin")),
)

COVERED_IDS = pytest.StashKey[set]()
ALL_MODULES_COLLECTED = pytest.StashKey[bool]()
UNMARKED = pytest.StashKey[list]()  # (nodeid, problem) of tests in topic modules that break the rules
LOADED = pytest.StashKey[tuple]()   # (Implementation or None, why it could not be loaded or None)
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
    group.addoption("--only-nodeids", default=None, metavar="FILE",
                    help="keep only the tests whose node IDs FILE lists, one per line")
    group.addoption("--alias", default=None, metavar="FILE",
                    help="a TOML file mapping the implementation's own names onto the interface, one line each: "
                         f"their_name = \"interface_name\" (else ${implementation.ALIAS_ENV_VAR})")
    group.addoption("--notebook-budget", type=float, default=None, metavar="SECONDS",
                    help="CPU budget of a notebook implementation's cells (their CPU seconds; the wall clock "
                         "bounds only a hang, at 10 times it), apart from the tests' limits (default 120)")
    group.addoption("--exercise-first-failure", action="store_true", default=False,
                    help="once a test of an exercise fails, skip the exercise's other tests (all-or-nothing: it "
                         "is lost already), and leave out the tests that never reach the implementation (checks "
                         "of the spec's own oracles, which decide no exercise); for runs that only need each "
                         "exercise's status")


def pytest_configure(config):
    config.addinivalue_line("markers", "exercise(*ids): the catalogue exercise(s) this test verifies")
    config.addinivalue_line("markers", "slow: longer than a second or two; runs in `tox -e slow`")
    config.addinivalue_line("markers", "gpu: needs CUDA; skipped cleanly where CUDA is absent")
    config.addinivalue_line("markers", "benchmark: pytest-benchmark timing; runs in `tox -e bench`")
    config.addinivalue_line("markers", "robustness: a quality check no sheet asks for (clear errors for bad input, "
                                       "dtype kept, inputs left alone); reported apart, costs no points")
    if hasattr(config, "workerinput"):
        torch.set_num_threads(1)  # xdist: one thread per worker, no oversubscription of the cores
    for pattern in config.getoption("exercise"):
        if not catalogue_module.load().select(pattern):
            raise pytest.UsageError(f"--exercise {pattern}: no catalogue ID is or starts with it")


def pytest_report_header(config):
    target = implementation.target_from(config.getoption("impl"))
    return [
        f"implementation under test: {implementation.describe(target)}",
        f"torch {torch.__version__}, hypothesis profile {settings.get_current_profile_name()}",
    ]


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

    if config.getoption("exercise_first_failure"):
        # a run for each exercise's status: a test that never reaches the implementation (a check of the
        # spec's own oracles, a sympy identity) decides no exercise's status (summary.counted_outcome)
        idle = [item for item in items if "impl" not in getattr(item, "fixturenames", ())]
        if idle:
            config.hook.pytest_deselected(items=idle)
            items[:] = [item for item in items if "impl" in getattr(item, "fixturenames", ())]


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
    implementation.CALLS.clear()
    if item.get_closest_marker("gpu") and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    lost = item.config.stash.get(LOST, {})
    why = [f"{eid} {lost[eid]}" for eid in _exercise_ids(item) if eid in lost]
    if why:
        # all-or-nothing: the exercise is lost already; restarting the worker for each of its tests
        # would only spend the grade's time
        pytest.skip(f"not run: an earlier test of {'; '.join(why)}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    finally:
        item.user_properties.append(("impl_names", sorted(implementation.ACCESSED - implementation.PROBES)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and report.when == "call" and item.config.getoption("exercise_first_failure") \
            and _tier(item) == "points":
        lost = item.config.stash.setdefault(LOST, {})
        for eid in _exercise_ids(item):
            lost.setdefault(eid, "failed")
    if report.failed and report.when == "call" and implementation.CALLS:
        # the last call of the implementation the test made, as code the student can run
        report.sections.append(("the last call of your code", implementation.CALLS[-1]))
        report.user_properties.append(("call", implementation.CALLS[-1]))
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
    import pluggy

    internals = (Path(_pytest.__file__).parent, Path(pytest.__file__).parent, Path(pluggy.__file__).parent)
    frames = [Path(str(entry.path)) for entry in excinfo.traceback]
    ours = [f for f in frames if not any(root in f.parents for root in internals)]
    corpus = (SPEC_DIR / "selftest" / "impls", SPEC_DIR / "selftest" / "notebooks")   # submissions, not spec
    if not ours:
        return True     # raised by pytest itself: a skip mark of the spec's (skipif), never the submission
    last = ours[-1]
    judge = ROOT / "grader" / "judge"   # the judge's plugin skips a lost exercise's other tests
    return (last == ROOT / "conftest.py" or judge in last.parents or
            (SPEC_DIR in last.parents and not any(c in last.parents for c in corpus)))


# ------------------------------------------------------------------------------------- fixtures
@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Load the implementation under test once, after collection and before the first test, so that
    a notebook's cells run under their own budget, not inside the first test's limits."""
    if any("impl" in getattr(item, "fixturenames", ()) for item in session.items):
        session.config.stash[LOADED] = _load_implementation(session.config)


def _load_implementation(config) -> tuple:
    if config.getoption("isolate"):
        from grader.judge.plugin import _start_worker

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


@pytest.fixture(scope="session")
def impl(pytestconfig) -> implementation.Implementation:
    """The implementation under test (see grader/sandboxed/implementation.py), loaded before the first test."""
    if LOADED not in pytestconfig.stash:
        pytestconfig.stash[LOADED] = _load_implementation(pytestconfig)
    loaded, error = pytestconfig.stash[LOADED]
    if error is not None:
        pytest.fail(error, pytrace=False)
    return contracts.wrap(pytestconfig, loaded)


def _protected(config) -> dict:
    """What a solution must not replace: pytest's running and reporting, the spec's plugin, helpers,
    rules and catalogue, and the numerical comparisons the helpers rely on."""
    import _pytest.python
    import _pytest.reports
    import _pytest.runner

    import grader.judge.plugin as isolation
    import grader.sandboxed.rules
    import spec.asserts
    from spec.plugins import summary

    targets = {
        "_pytest.runner": (_pytest.runner, ("call_and_report", "runtestprotocol", "pytest_runtest_protocol",
                                             "call_runtest_hook", "pytest_runtest_makereport")),
        "_pytest.reports.TestReport": (_pytest.reports.TestReport, ("from_item_and_call", "__init__")),
        "_pytest.python": (_pytest.python, ("pytest_pyfunc_call",)),
        "_pytest.python.Function": (_pytest.python.Function, ("runtest",)),
        "pytest": (pytest, ("fail", "raises", "skip", "exit")),
        "selection": (sys.modules[__name__], ("pytest_collection_modifyitems", "pytest_runtest_makereport",
                                              "pytest_runtest_setup", "_tier")),
        "isolation": (isolation, ("pytest_runtest_makereport", "pytest_runtest_setup", "_start_worker")),
        "summary": (summary, ("_exercise_outcome", "_failure_text", "counted_outcome", "_property")),
        "ExerciseRecorder": (summary.ExerciseRecorder, ("pytest_runtest_logreport",)),
        "RecordsWriter": (isolation.RecordsWriter, ("write", "pytest_runtest_logreport", "pytest_runtest_logstart")),
        "Results": (summary.Results, ("record", "status")),
        "spec.asserts": (spec.asserts, ("assert_close", "assert_equal", "assert_tensor", "assert_rounded")),
        "grader.sandboxed.rules": (grader.sandboxed.rules, ("forbid", "_targets")),
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


def seed_torch(value: int) -> None:
    """torch.manual_seed(value) for the generators a test can use: the CPU's, and CUDA's where there is
    CUDA (torch.manual_seed also queues a seeding of each accelerator that has not started, and formats
    the caller's stack for it: 0.8 ms under pytest, 0.26 s of a dl-a1 grade's 330 tests)."""
    torch.random.default_generator.manual_seed(value)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(value)


@pytest.fixture(autouse=True)
def seed(request) -> int:
    """Seed torch, numpy's global state and Python's ``random`` from the test's own ID, so every
    test draws the same numbers whatever the order or the worker that runs it."""
    value = zlib.crc32(request.node.nodeid.encode())
    seed_torch(value)
    np.random.seed(value)
    import random
    random.seed(value)
    return value


@pytest.fixture
def rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


# imported last: the grader's plugin among them imports this module's names
for _name in SUPPORT_MODULES:
    importlib.import_module(_name)
