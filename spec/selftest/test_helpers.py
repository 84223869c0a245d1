"""The spec's own helpers: assertions, tolerances, catalogue, summary, implementation loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from grader.sandboxed import implementation
from spec import catalogue as catalogue_module
from spec import oracles
from spec.asserts import assert_close, assert_equal, assert_rounded, assert_tensor
from spec.plugins.summary import Results
from spec.tolerances import TOLERANCES, tolerance


# ----------------------------------------------------------------------------- assertions
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
def test_assert_close_accepts_within_and_rejects_beyond_the_dtype_tolerance(dtype):
    rtol, atol = tolerance(dtype)
    expected = np.array([1.0, -2.0, 3.0])
    assert_close(expected * (1 + rtol / 2), expected, "within", dtype=dtype)
    with pytest.raises(AssertionError, match=r"got .*, but should be .* \[beyond\]"):
        assert_close(expected * (1 + 4 * rtol) + 4 * atol, expected, "beyond", dtype=dtype)


def test_tolerances_tighten_with_precision():
    order = [torch.bfloat16, torch.float16, torch.float32, torch.float64]
    rtols = [tolerance(d).rtol for d in order]
    assert rtols == sorted(rtols, reverse=True) and len(set(rtols)) == len(rtols)
    with pytest.raises(KeyError, match="no tolerance"):
        tolerance(torch.int64)


def test_assert_close_reports_shape_and_nan():
    with pytest.raises(AssertionError, match=r"got shape \(2,\), but should be shape \(3,\)"):
        assert_close(np.zeros(2), np.zeros(3), "shape")
    with pytest.raises(AssertionError, match="nan"):
        assert_close(np.array([np.nan]), np.array([0.0]), "nan")


def test_assert_tensor_rounded_equal():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor"):
        assert_tensor([1.0], "list")
    with pytest.raises(AssertionError, match="floating point"):
        assert_tensor(torch.tensor([1]), "int")
    with pytest.raises(AssertionError, match=r"should be \(2,\)"):
        assert_tensor(torch.zeros(3), "shape", shape=(2,))
    assert_rounded(0.0714, 12 / 169, 3, "rounded")
    with pytest.raises(AssertionError, match="rounded to 3 digits"):
        assert_rounded(0.0725, 12 / 169, 3, "rounded")
    with pytest.raises(AssertionError, match=r"got 1, but should be 2 \[eq\]"):
        assert_equal(1, 2, "eq")


# -------------------------------------------------------------------------------- oracles
@pytest.mark.parametrize("at", [-750.0, -40.0, 0.0, 3.5, 750.0])
def test_numeric_oracle_is_exact_in_the_tails(at):
    slope = oracles.numeric(oracles.derivative(oracles.SIGMA))(at)
    s = oracles.sigmoid_numeric(at)
    assert np.isfinite(slope)
    assert np.isclose(slope, s * (1 - s), rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------ catalogue
def test_catalogue_selects_by_id_prefix_and_sheet():
    cat = catalogue_module.load()
    assert len(cat.select("ps09")) == 10
    assert len(cat.select("ps09.1")) == 5
    assert [e.id for e in cat.select("ps09.1-1")] == ["ps09.1-1"]
    assert [e.id for e in cat.select("dl-a1.q1")] == [f"dl-a1.q1{c}" for c in "abcd"]
    assert cat.select("nosuch") == ()
    assert cat["dl-a1.q2c"].points == 12 and cat["dl-a1.q2c"].sheet == "dl-a1"
    with pytest.raises(KeyError):
        cat["nope.x"]


@pytest.mark.parametrize("text, message", [
    ('[sheets]\na = "A"\n[[exercise]]\nid = "a.1"\ntitle = "t"\npoints = 1\ntopic = "t"\n'
     '[[exercise]]\nid = "a.1"\ntitle = "t"\npoints = 1\ntopic = "t"\n', "duplicated"),
    ('[sheets]\na = "A"\n[[exercise]]\nid = "b.1"\ntitle = "t"\npoints = 1\ntopic = "t"\n', "sheets"),
    ('[sheets]\na = "A"\n[[exercise]]\nid = "a1"\ntitle = "t"\npoints = 1\ntopic = "t"\n', "form"),
], ids=["duplicate", "unknown sheet", "no dot"])
def test_catalogue_rejects_malformed_entries(text, message):
    with pytest.raises(ValueError, match=message):
        catalogue_module.parse(text)


# -------------------------------------------------------------------------------- summary
SMALL_CATALOGUE = """
[sheets]
s = "a sheet"
[[exercise]]
id = "s.1"
title = "one"
points = 1
topic = "t"
[[exercise]]
id = "s.2"
title = "two"
points = 2
topic = "t"
[[exercise]]
id = "s.3"
title = "three"
points = 0.5
topic = "t"
[[exercise]]
id = "s.4"
title = "four"
points = 1
topic = "t"
[[exercise]]
id = "s.5"
title = "five"
points = 1
topic = "t"
pending = true
"""


def test_summary_statuses_and_points():
    results = Results(catalogue_module.parse(SMALL_CATALOGUE))
    results.record(["s.1"], "passed")
    results.record(["s.2"], "passed")
    results.record(["s.2"], "failed", "t::x")
    results.record(["s.3"], "skipped")
    assert results.status("s.1") == "passed"
    assert results.status("s.2") == "failed"
    assert results.status("s.3") == "skipped"
    assert results.status("s.4") == "not run"   # has tests, none ran
    assert results.status("s.5") == "missing"   # pending, no tests
    results.covered = {"s.5"}
    assert results.status("s.5") == "not run" and results.status("s.4") == "missing"
    sheet = results.as_dict()["sheets"]["s"]
    assert sheet["earned"] == 1 and sheet["points"] == 5.5 and sheet["counts"]["failed"] == 1
    assert sheet["exercises"][1]["failures"] == ["t::x"]
    assert any("failed in s: s.2" in line for line in results.table())
    with pytest.raises(ValueError, match="outcome"):
        results.record(["s.1"], "xpassed")


# ------------------------------------------------------------------------- implementation
def test_load_by_module_name_file_and_package(tmp_path):
    assert implementation.load("json").dumps([1]) == "[1]"
    single = tmp_path / "solution.py"
    single.write_text("ANSWER = 42\n")
    assert implementation.load(str(single)).ANSWER == 42
    package = tmp_path / "solution_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .part import ANSWER\n")
    (package / "part.py").write_text("ANSWER = 43\n")
    assert implementation.load(str(package)).ANSWER == 43


def test_load_rejects_what_is_not_an_implementation(tmp_path):
    with pytest.raises(implementation.ImplementationNotFound, match="no such file"):
        implementation.load(str(tmp_path / "missing.py"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(implementation.ImplementationNotFound, match="__init__"):
        implementation.load(str(tmp_path / "folder"))
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(implementation.ImplementationNotFound, match="expected"):
        implementation.load(str(tmp_path / "data.txt"))
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    with pytest.raises(SyntaxError):
        implementation.load(str(broken))


def test_missing_name_is_an_attribute_error_naming_name_and_implementation():
    wrapped = implementation.Implementation(implementation.load("json"), "json-impl")
    assert wrapped.dumps is not None and wrapped.has("dumps") and not wrapped.has("nope")
    with pytest.raises(implementation.MissingName, match="nope is not defined in json-impl"):
        wrapped.nope  # noqa: B018
    assert getattr(wrapped, "nope", None) is None


def test_target_precedence(monkeypatch):
    monkeypatch.delenv(implementation.ENV_VAR, raising=False)
    assert implementation.target_from(None) == "impl"
    monkeypatch.setenv(implementation.ENV_VAR, "other")
    assert implementation.target_from(None) == "other"
    assert implementation.target_from("cli") == "cli"


# ------------------------------------------------------------------------- bench summary
def test_bench_summary_ratios_and_target_check(tmp_path):
    import json

    from spec.bench import summarise

    def bench(method, median, batch=1024):
        return {"extra_info": {"method": method, "depth": 3, "batch": batch, "device": "cpu"},
                "stats": {"median": median}}

    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": [
        bench("forward pass", 1.0), bench("forward mode", 2.5), bench("jacfwd", 10.0),
        bench("jacrev", 5.0)]}))
    lines, misses = summarise.summarise(summarise.load(str(path)))
    assert any("vs jacfwd: 0.25" in line and "vs forward pass: 2.50" in line for line in lines)
    assert misses == ["cpu L=3 batch 1024: forward mode / jacrev = 0.50 > 0.35"]
    assert summarise.main([str(path), "--check"]) == 1 and summarise.main([str(path)]) == 0


def test_assert_close_compares_plain_data_only():
    """A Tensor subclass whose .numpy() yields an always-close ndarray, and an object whose float()
    reads the expected value from the caller's frame, are judged by what they hold, not what they say."""
    import inspect

    import numpy as np
    import pytest
    import torch

    from spec.asserts import assert_close

    class AlwaysClose(np.ndarray):
        def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
            return np.ones(np.broadcast(*(np.asarray(i) for i in inputs)).shape, dtype=bool)

    class Liar(torch.Tensor):
        def numpy(self, *args, **kwargs):
            return np.zeros(self.shape).view(AlwaysClose)

    class ReadsTheAnswer:
        def __float__(self):
            return float(next(f.frame.f_locals["expected"] for f in inspect.stack() if "expected" in f.frame.f_locals))

    with pytest.raises(AssertionError, match="should be"):
        assert_close(torch.zeros(3).as_subclass(Liar), np.ones(3), "a lying tensor")
    with pytest.raises(AssertionError, match="should be"):
        assert_close(np.zeros(3).view(AlwaysClose), np.ones(3), "a lying array")
    with pytest.raises(TypeError, match="ReadsTheAnswer"):
        assert_close(ReadsTheAnswer(), 3.0, "an object that reads the answer")
    assert_close([torch.tensor(1.0), 2.0, np.float32(3.0)], [1.0, 2.0, 3.0], "plain data still compares")


# ----------------------------------------------------------------------------- hypothesis's examples
PACKAGES = ("spec", "spec.plugins", "grader.sandboxed", "grader.judge")   # ``from PACKAGE import module``
PROJECT = ("spec.", "grader.")


def _spec_modules_imported_by(path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module in PACKAGES:
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PROJECT):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.startswith(PROJECT)}
    return names


def test_every_module_the_tests_import_is_imported_by_the_conftest():
    """Hypothesis draws some examples from the literals of the local modules imported so far: the spec
    imports all of them up front, so that neither which test modules a run selects nor what a forked
    judge's grader imported changes an example."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    wanted = set().union(*(_spec_modules_imported_by(p) for p in sorted((root / "spec").glob("test_*.py"))))
    assert "spec.oracles" in wanted and "spec.asserts" in wanted, wanted
    # a fresh interpreter: what importing the conftest's plugins alone brings in
    code = ("import importlib, sys, conftest\n"
            "for plugin in conftest.pytest_plugins: importlib.import_module(plugin)\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('spec.', 'grader.')))))")
    loaded = set(subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                                check=True).stdout.split())
    assert wanted <= loaded, f"imported by the tests but not by the conftest: {sorted(wanted - loaded)}"
    # and the grader's own modules, which a class's warm grader has imported before it forks a judge
    graders = {"grader.judge.grade", "grader.judge.batch", "grader.judge.sandbox", "spec.runs", "spec.catalogue"}
    assert graders <= loaded, f"imported by a forked judge's grader but not by the conftest: {sorted(graders - loaded)}"


# ------------------------------------------------------------------- the likely mistake (spec/diagnose.py)
DIAGNOSED = [
    ("transposed", lambda a: a.T, "transpose"),
    ("sign", lambda a: -a, "sign flipped"),
    ("twice", lambda a: 2 * a, "twice the expected"),
    ("half", lambda a: a / 2, "half the expected"),
    ("sum for mean", lambda a: 6 * a, "a sum over the 6 samples"),
    ("mean for sum", lambda a: a / 6, "a mean over the 6 samples"),
    ("float32", lambda a: a.float().double(), "float32's precision"),
    ("declared slip", lambda a: a + 1, "the declared slip"),
]


@pytest.mark.parametrize("case, wrong, named", DIAGNOSED, ids=[c[0] for c in DIAGNOSED])
@pytest.mark.parametrize("seed_", range(4))
def test_a_failed_comparison_names_the_mistake_that_explains_it(case, wrong, named, seed_):
    expected = torch.randn(4, 5 if case != "transposed" else 4, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(seed_))
    with pytest.raises(AssertionError) as failure:
        assert_close(wrong(expected), expected, "a value", count=6, slips={"the declared slip": expected + 1})
    assert "Looks like" in str(failure.value) and named in str(failure.value).split(": got")[0], \
        str(failure.value)


@pytest.mark.parametrize("seed_", range(20))
def test_no_mistake_is_named_where_none_explains_the_value(seed_):
    """A wrong value that no known slip reproduces gets no hint; a right value raises nothing at all."""
    g = torch.Generator().manual_seed(seed_)
    expected = torch.randn(3, 4, dtype=torch.float64, generator=g)
    unrelated = torch.randn(3, 4, dtype=torch.float64, generator=g)
    with pytest.raises(AssertionError) as failure:
        assert_close(unrelated, expected, "a value", count=6, slips={"a slip": expected + 1})
    assert "Looks like" not in str(failure.value)
    assert_close(expected * (1 + 1e-13), expected, "a value", count=6, slips={"a slip": expected + 1})


def test_two_fitting_explanations_name_neither():
    """A value both the sign and a declared slip explain is ambiguous: no hint (a wrong one is worse)."""
    expected = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    with pytest.raises(AssertionError) as failure:
        assert_close(-expected, expected, "a value", slips={"another slip": -expected})
    assert "Looks like" not in str(failure.value)


# ----------------------------------------------------------------------------- whose skip
@pytest.mark.parametrize("origin, spec_s", [
    ("pytest", True),                                                   # a skipif mark, evaluated by pytest
    ("spec/test_catalogue.py", True),                                   # pytest.skip() in a spec test
    ("spec/selftest/impls/skip_everywhere.py", False),                  # the corpus: a submission
    ("spec/selftest/notebooks/ex08/ex08_solution.py", False),
    ("/elsewhere/student/solution.py", False),                          # anybody else's file
])
def test_a_skip_counts_as_the_spec_s_only_when_the_spec_raised_it(origin, spec_s, request):
    """A skip whose traceback holds no frame outside pytest came from pytest itself (a skip mark the
    spec set); otherwise the innermost such frame decides, and only the spec's own files may skip."""
    from _pytest._code.code import Traceback

    from spec.plugins.selection import ROOT, _raised_by_the_spec

    if origin == "pytest":
        # a skipif mark, raised as in a run: pytest's setup hook, called through pluggy, raises the skip
        request.node.add_marker(pytest.mark.skipif(True, reason="no file"))
        with pytest.raises(pytest.skip.Exception) as info:
            request.config.hook.pytest_runtest_setup(item=request.node)
        # the frames from the runner down, as pytest records them (this test's own frame left out)
        info.traceback = Traceback([e for e in info.traceback if Path(str(e.path)) != Path(__file__)])
        where = {part for e in info.traceback for part in (Path(str(e.path)).stem, Path(str(e.path)).parent.name)}
        assert {"skipping", "pluggy"} <= where, info.traceback
    else:
        path = origin if origin.startswith("/") else str(ROOT / origin)
        code = compile("import pytest\ndef f():\n    pytest.skip('x')\n", path, "exec")
        namespace: dict = {}
        exec(code, namespace)
        with pytest.raises(pytest.skip.Exception) as info:
            namespace["f"]()
    assert _raised_by_the_spec(info) is spec_s


@pytest.mark.parametrize("value", [0, 1, 42, 2**31 - 1, 2**32 - 1, 3_141_592_653])
def test_the_seed_fixture_seeds_torch_as_manual_seed_does(value):
    """The seed fixture's seed_torch leaves the CPU generator (and CUDA's, where there is CUDA) in the state
    torch.manual_seed gives, without queueing the seeding of accelerators that are not there."""
    from spec.plugins.selection import seed_torch

    torch.manual_seed(value)
    expected = torch.get_rng_state()
    expected_cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    torch.manual_seed(value + 1)
    torch.rand(3)
    seed_torch(value)
    assert torch.equal(torch.get_rng_state(), expected)
    assert [torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all() if expected_cuda else [],
                                              expected_cuda, strict=True)] == [True] * len(expected_cuda)
    assert torch.initial_seed() == value
