"""The spec's pytest plugin: selects the implementation under test, registers markers and options,
ties every test to the exercise it verifies, and prints a per-sheet summary at the end.

Options:
  --impl TARGET        implementation under test: a module name, a .py file or a package folder
                       (else $SPEC_IMPL, else ``impl``)
  --exercise ID        run only the tests of this exercise; a sheet or a prefix selects a group
                       (``--exercise ps09``, ``--exercise ps09.1``); repeatable
  --exercise-report P  also write the per-exercise results as JSON to P
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

from spec import catalogue as catalogue_module
from spec import implementation
from spec.summary import Results

ROOT = Path(__file__).parent
SPEC_DIR = ROOT / "spec"

COVERED_IDS = pytest.StashKey[set]()
ALL_MODULES_COLLECTED = pytest.StashKey[bool]()
UNMARKED = pytest.StashKey[list]()  # (nodeid, problem) of tests in topic modules that break the rules
RESULTS = pytest.StashKey[Results]()

# The autouse ``seed`` fixture is function-scoped; it only seeds, so hypothesis reusing it across
# examples is harmless.
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=50,
                          suppress_health_check=_HEALTH, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=50, suppress_health_check=_HEALTH)
settings.register_profile("thorough", deadline=None, max_examples=1000, suppress_health_check=_HEALTH)
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


def pytest_configure(config):
    config.addinivalue_line("markers", "exercise(*ids): the catalogue exercise(s) this test verifies")
    config.addinivalue_line("markers", "slow: longer than a second or two; runs in `tox -e slow`")
    config.addinivalue_line("markers", "gpu: needs CUDA; skipped cleanly where CUDA is absent")
    config.addinivalue_line("markers", "benchmark: pytest-benchmark timing; runs in `tox -e bench`")
    config.stash[RESULTS] = Results(catalogue_module.load())
    config.pluginmanager.register(ExerciseRecorder(config.stash[RESULTS]), "exercise-recorder")
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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    catalogue = catalogue_module.load()
    unknown = sorted({(eid, item.nodeid) for item in items for eid in _exercise_ids(item)
                      if eid not in catalogue}, key=lambda pair: pair[0])
    if unknown:
        listing = "\n".join(f"  {eid!r} in {nodeid}" for eid, nodeid in unknown)
        raise pytest.UsageError(f"tests name exercise IDs missing from spec/catalogue.toml:\n{listing}")

    covered, problems = set(), []
    for item in items:
        ids = _exercise_ids(item)
        covered.update(ids)
        item.user_properties.extend(("exercise", eid) for eid in ids)
        problems.extend(_placement_problems(item, ids, catalogue))
    collected_files = {Path(str(item.path)).resolve() for item in items}
    complete = _exercise_modules() <= collected_files
    config.stash[COVERED_IDS] = covered
    config.stash[ALL_MODULES_COLLECTED] = complete
    config.stash[UNMARKED] = problems
    if complete:
        config.stash[RESULTS].covered = covered
        config.stash[RESULTS].problems = problems

    patterns = config.getoption("exercise")
    if patterns:
        wanted = {e.id for p in patterns for e in catalogue.select(p)}
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
    if item.get_closest_marker("gpu") and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")


class ExerciseRecorder:
    """Turns test reports into per-exercise results (on the xdist controller, reports arrive from
    the workers with the exercise IDs in ``user_properties``)."""

    def __init__(self, results: Results):
        self.results = results

    def pytest_runtest_logreport(self, report):
        ids = [value for key, value in report.user_properties if key == "exercise"]
        if ids and (outcome := _exercise_outcome(report)):
            self.results.record(ids, outcome, report.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(implementation.MissingName):
        report.longrepr = f"{item.nodeid}: {call.excinfo.value}"  # the message says it all
    return report


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
    path = config.getoption("exercise_report")
    if path:
        Path(path).write_text(results.to_json(target), encoding="utf-8")



# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def impl(pytestconfig) -> implementation.Implementation:
    """The implementation under test (see spec/implementation.py)."""
    target = implementation.target_from(pytestconfig.getoption("impl"))
    try:
        module = implementation.load(target)
    except implementation.ImplementationNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    except Exception as exc:  # the solution's own import-time error
        pytest.fail(f"could not import {target}: {type(exc).__name__}: {exc}", pytrace=False)
    return implementation.Implementation(module, target)


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


@pytest.fixture
def rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)
