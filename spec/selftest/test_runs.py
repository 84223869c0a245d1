"""The cache of the spec's own runs (spec/runs.py): keyed by the spec's files and the libraries'
versions, reused across processes and never recomputed, written atomically, read back safely, and
computed in the session where there is no cache."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from spec import runs
from spec.catalogue import load
from spec.selftest.runner import ROOT

VERSIONS = {"python": "cpython 3.11.7", "machine": "x86_64", "torch": "2.13.0", "numpy": "2.4.6", "scipy": "1.17",
            "sklearn": "1.9.1"}


@pytest.fixture
def spec_copy(tmp_path) -> Path:
    """A copy of the files that make the key (spec/ without its self-tests, tools and benchmarks)."""
    copy = tmp_path / "spec"
    for path in runs.spec_files():
        target = copy / path.relative_to(runs.SPEC)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return copy


def test_the_key_is_the_spec_files_and_the_library_versions(spec_copy):
    key = runs.cache_key(spec_copy, VERSIONS)
    assert key == runs.cache_key(spec_copy, dict(VERSIONS)), "a pure function of the files and versions"
    names = {p.relative_to(spec_copy).as_posix() for p in runs.spec_files(spec_copy)}
    assert {"test_vanishing.py", "data.py", "loops.py", "runs.py", "catalogue.toml"} <= names, names
    assert not [n for n in names if n.startswith(("selftest/", "tools/", "bench/")) or n.endswith(".pyc")], names

    def changed(edit) -> str:
        edit()
        return runs.cache_key(spec_copy, VERSIONS)

    vanishing = spec_copy / "test_vanishing.py"
    original = vanishing.read_bytes()
    assert changed(lambda: vanishing.write_bytes(original + b"\n# one more line\n")) != key, "a changed test module"
    assert changed(lambda: vanishing.write_bytes(original)) == key, "the same content, the same key"
    data = spec_copy / "data.py"
    assert changed(lambda: data.write_text(data.read_text().replace("noise: float = 0.15", "noise: float = 0.2"))) \
        != key, "a changed data module"
    data.write_text((runs.SPEC / "data.py").read_text())
    assert changed(lambda: (spec_copy / "new_helpers.py").write_text("X = 1\n")) != key, "a new file"
    (spec_copy / "new_helpers.py").unlink()
    assert changed(lambda: (spec_copy / "catalogue.toml").write_text("")) != key, "the catalogue is data too"
    (spec_copy / "catalogue.toml").write_text((runs.SPEC / "catalogue.toml").read_text())
    assert runs.cache_key(spec_copy, VERSIONS) == key
    (spec_copy / "selftest").mkdir(exist_ok=True)
    (spec_copy / "selftest" / "test_other.py").write_text("def test(): pass\n")
    assert runs.cache_key(spec_copy, VERSIONS) == key, "the spec's self-tests define no run"
    for library in ("python", "torch", "numpy", "sklearn", "machine"):
        assert runs.cache_key(spec_copy, {**VERSIONS, library: "other"}) != key, library


def test_the_running_spec_s_key_names_its_versions():
    found = runs.versions()
    assert set(found) >= {"python", "torch", "numpy", "scipy", "sklearn", "machine"}
    import numpy
    import torch

    assert found["torch"] == torch.__version__ and found["numpy"] == numpy.__version__


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(runs.CACHE_ENV, str(root))
    return root


def counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def test_a_cached_run_is_reused_and_not_recomputed(cache, tmp_path_factory):
    value = {("relu", 3): np.arange(5.0), "n": 3}
    compute, calls = counting(value)
    first = runs.once_per_session(tmp_path_factory, "a-run", compute)
    again = runs.once_per_session(tmp_path_factory, "a-run", compute)
    assert len(calls) == 1 and first.keys() == again.keys() and np.array_equal(again["relu", 3], np.arange(5.0))
    folder = runs.cache_folder()
    assert folder == cache / runs._key() and (folder / "a-run.pickle").is_file()
    assert not list(folder.glob("*.partial")), "written atomically: no partial file left"


def test_a_changed_spec_is_a_new_folder_and_the_run_is_computed_again(cache, monkeypatch, tmp_path_factory):
    compute, calls = counting(np.ones(3))
    runs.once_per_session(tmp_path_factory, "a-run", compute)
    monkeypatch.setattr(runs, "_key", lambda: "another-spec-version")
    runs.once_per_session(tmp_path_factory, "a-run", compute)
    assert len(calls) == 2 and (cache / "another-spec-version" / "a-run.pickle").is_file()


def test_without_a_cache_the_run_is_computed_once_in_the_session(monkeypatch, tmp_path):
    monkeypatch.setenv(runs.CACHE_ENV, "off")
    monkeypatch.setenv(runs.RUNS_DIR, str(tmp_path))
    assert runs.cache_folder() is None
    compute, calls = counting([1.5, 2.5])

    class Factory:   # the session's folder comes from SPEC_RUNS_DIR, as in an xdist worker
        def getbasetemp(self):
            raise AssertionError("not needed")

    assert runs.once_per_session(Factory(), "a-run", compute) == [1.5, 2.5]
    assert runs.once_per_session(Factory(), "a-run", compute) == [1.5, 2.5]
    assert len(calls) == 1 and (tmp_path / "a-run.pickle").is_file()


def test_a_fresh_clone_computes_into_the_default_cache(monkeypatch, tmp_path, tmp_path_factory):
    """No $SPEC_RUNS_CACHE and an empty cache folder (CI from a fresh clone): the run is computed and
    kept under $XDG_CACHE_HOME/dl-course-spec/runs/<key>/."""
    monkeypatch.delenv(runs.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    compute, calls = counting(np.zeros(2))
    assert np.array_equal(runs.once_per_session(tmp_path_factory, "a-run", compute), np.zeros(2))
    assert calls == [1]
    assert (tmp_path / "xdg" / "dl-course-spec" / "runs" / runs._key() / "a-run.pickle").is_file()


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch exploited",))


@pytest.mark.parametrize("kind", ["code", "truncated", "object", "group-writable", "another user's", "a link"])
def test_a_file_that_is_not_a_safe_whole_run_is_ignored_and_the_run_computed(cache, tmp_path, monkeypatch, kind):
    """What the cache holds is read by an unpickler that runs no code and builds only plain data, from
    files of this user's own that no one else can write: anything else is computed again (and the
    file replaced)."""
    monkeypatch.chdir(tmp_path)
    folder = runs.cache_folder()
    path = folder / "a-run.pickle"
    if kind == "code":
        path.write_bytes(pickle.dumps({"a": Exploit()}))
    elif kind == "truncated":
        path.write_bytes(pickle.dumps({"a": np.arange(100.0)})[:-40])
    elif kind == "object":
        path.write_bytes(pickle.dumps({"a": np.array([object()], dtype=object)}))
    elif kind == "group-writable":
        path.write_bytes(pickle.dumps({"a": np.zeros(1)}))
        path.chmod(0o664)
    elif kind == "another user's":
        if os.geteuid() != 0:
            pytest.skip("giving a file to another user needs root")
        path.write_bytes(pickle.dumps({"a": np.zeros(1)}))
        os.chown(path, 65534, 65534)
    else:
        (tmp_path / "elsewhere.pickle").write_bytes(pickle.dumps({"a": np.zeros(1)}))
        path.symlink_to(tmp_path / "elsewhere.pickle")
    compute, calls = counting({"a": np.ones(1)})
    value = runs.load_or_compute(folder, "a-run", compute)
    assert calls == [1] and np.array_equal(value["a"], np.ones(1)), value
    assert not (tmp_path / "exploited").exists(), "reading a run ran code"
    assert runs.read(path)["a"][0] == 1, "the computed run replaced the file"


def test_a_cache_folder_of_another_user_is_not_used(cache, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    folder = cache / runs._key()
    folder.mkdir(parents=True)
    os.chown(folder, 65534, 65534)
    assert runs.cache_folder() is None, "a folder someone else could fill is not read"
    folder.chmod(0o777)
    os.chown(folder, os.geteuid(), os.getegid())
    assert runs.cache_folder() is None, "nor one that others can write"


def test_a_run_is_computed_with_one_thread_and_its_own_seed_and_the_caller_s_state_is_kept():
    import torch

    torch.manual_seed(1)
    before = torch.get_rng_state(), torch.get_num_threads()
    seen = runs.compute("some-run", lambda: (torch.get_num_threads(), float(torch.rand(1))))
    assert seen == runs.compute("some-run", lambda: (torch.get_num_threads(), float(torch.rand(1))))
    assert seen[0] == 1, "one torch thread: the summation order is the same in every process"
    assert torch.equal(torch.get_rng_state(), before[0]) and torch.get_num_threads() == before[1]


def test_every_run_the_spec_reads_is_registered_with_exercises_of_the_catalogue():
    catalogue = load()
    registered = {run.name: run for run in runs.selected()}
    read = {name for path in sorted(runs.SPEC.glob("test_*.py"))
            for name in re.findall(r'once_per_session\(\s*tmp_path_factory,\s*"([^"]+)"', path.read_text())}
    assert read and read == set(registered), (read, set(registered))
    for run in registered.values():
        assert run.exercises and all(e in catalogue for e in run.exercises), run
    assert [r.name for r in runs.selected(("moons",))] == ["moons-comparison", "moons-grad-ratios"]
    assert [r.name for r in runs.selected(("ps09",))] == []


def test_build_computes_the_selected_runs_ahead_and_keeps_them(cache, monkeypatch):
    compute, calls = counting(np.arange(3.0))
    other, other_calls = counting(np.arange(2.0))
    monkeypatch.setattr(runs, "REGISTRY", {"one": runs.Run("one", compute, ("moons.deep",)),
                                           "two": runs.Run("two", other, ("a7.cnn",))})
    monkeypatch.setattr(runs, "RUN_MODULES", ())
    lines = []
    assert runs.build(("moons",), out=lines.append) == 0
    assert calls == [1] and other_calls == [] and "computed in" in lines[0], lines
    lines.clear()
    assert runs.build((), out=lines.append) == 0
    assert calls == [1] and other_calls == [1], "what is kept is not computed again"
    assert "kept already" in lines[0] and "computed in" in lines[1], lines
    monkeypatch.setenv(runs.CACHE_ENV, "off")
    assert runs.build((), out=lines.append) == 1 and "turns it off" in lines[-1]


def test_the_build_command_runs(cache, capsys):
    """``python -m spec.runs`` is the module the test modules register with (not a second copy)."""
    env = {**os.environ, runs.CACHE_ENV: str(cache)}
    done = subprocess.run([sys.executable, "-m", "spec.runs", "build", "--sheet", "ps09"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "no run of the spec is judged against by ps09" in done.stdout, done
    with pytest.raises(SystemExit) as exit_:
        runs.main(["build", "--sheet", "nonsense"])
    assert exit_.value.code == 2 and "no catalogue ID" in capsys.readouterr().err
    assert runs.main(["where"]) == 0 and capsys.readouterr().out.strip() == str(cache / runs._key())


@pytest.mark.slow   # computes every run of the spec (about 15 s)
def test_the_spec_s_runs_built_ahead_are_the_runs_a_session_computes(cache):
    """``build`` in one process, then every run read back in another without computing it (a compute
    that would fail is never called), and computed again here from scratch: equal to the last bit (the
    cache changes no verdict)."""
    done = subprocess.run([sys.executable, "-m", "spec.runs", "build"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, runs.CACHE_ENV: str(cache)}, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = runs.cache_folder()
    script = textwrap.dedent("""
        import sys
        from spec import runs
        for run in runs.selected():
            runs.load_or_compute(runs.cache_folder(), run.name, lambda: sys.exit("recomputed"))
        print(runs.COMPUTED)
    """)
    again = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, runs.CACHE_ENV: str(cache)})
    assert again.returncode == 0 and again.stdout.strip() == "[]", again.stdout + again.stderr

    def same(a, b) -> bool:
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        return np.array_equal(np.asarray(a), np.asarray(b))

    for run in runs.selected():
        assert same(runs.read(folder / f"{run.name}.pickle"), runs.compute(run.name, run.compute)), run.name


# ------------------------------------------------------------------ expected values kept per version
CALLS: list[tuple] = []


@runs.kept
def _kept_square(x, *, scale=1.0):
    CALLS.append((x, scale))
    return {"value": np.asarray(x, dtype=np.float64) ** 2 * scale, "scale": scale}


def test_a_kept_value_is_computed_once_per_argument_and_read_back_equal(cache):
    CALLS.clear()
    first = _kept_square([1.0, 2.0], scale=3.0)
    again = _kept_square([1.0, 2.0], scale=3.0)
    other = _kept_square([1.0, 2.0], scale=2.0)
    assert CALLS == [([1.0, 2.0], 3.0), ([1.0, 2.0], 2.0)], "read back, not computed again, for equal arguments"
    assert np.array_equal(again["value"], [3.0, 12.0]) and again["scale"] == 3.0
    assert np.array_equal(first["value"], again["value"]) and np.array_equal(other["value"], [2.0, 8.0])
    kept = sorted(p.name for p in (runs.cache_folder() / runs.VALUES).iterdir())
    assert len(kept) == 2 and all(name.startswith(f"{__name__}._kept_square-") for name in kept), kept
    again["value"][0] = -1.0   # a caller's change never reaches the kept value
    assert _kept_square([1.0, 2.0], scale=3.0)["value"][0] == 3.0


def test_without_a_cache_a_kept_value_is_computed_at_each_call(monkeypatch):
    monkeypatch.setenv(runs.CACHE_ENV, "off")
    CALLS.clear()
    assert _kept_square(2.0)["value"] == 4.0 and _kept_square(2.0)["value"] == 4.0
    assert len(CALLS) == 2


@pytest.mark.parametrize("kind", ["code", "truncated", "group-writable", "a link"])
def test_a_kept_value_file_that_is_not_safe_and_whole_is_computed_again(cache, tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    CALLS.clear()
    _kept_square(5.0)
    [path] = (runs.cache_folder() / runs.VALUES).iterdir()
    path.unlink()
    if kind == "code":
        path.write_bytes(pickle.dumps({"value": Exploit()}))
    elif kind == "truncated":
        path.write_bytes(pickle.dumps({"value": np.arange(100.0)})[:-40])
    elif kind == "group-writable":
        path.write_bytes(pickle.dumps({"value": np.zeros(1), "scale": 1.0}))
        path.chmod(0o664)
    else:
        (tmp_path / "elsewhere.pickle").write_bytes(pickle.dumps({"value": np.zeros(1), "scale": 1.0}))
        path.symlink_to(tmp_path / "elsewhere.pickle")
    assert _kept_square(5.0)["value"] == 25.0 and len(CALLS) == 2
    assert not (tmp_path / "exploited").exists(), "reading a kept value ran code"


def test_a_kept_value_must_be_plain_and_its_arguments_encodable(cache):
    import torch

    @runs.kept
    def a_tensor(n):
        return torch.ones(n)

    with pytest.raises(TypeError, match="not plain"):
        a_tensor(2)
    with pytest.raises(TypeError, match="not an argument"):
        _kept_square(object())
    assert not list((runs.cache_folder() / runs.VALUES).iterdir()), "nothing kept of either"


def test_equal_arguments_have_equal_keys_and_any_difference_another():
    import torch

    base = ((1, 2.0, "a", None, True, (3,), [4.5]), {"x": np.arange(3.0), "t": torch.arange(4.0)})
    key = runs.argument_key(*base)
    assert runs.argument_key((1, 2.0, "a", None, True, (3,), [4.5]),
                             {"t": torch.arange(4.0), "x": np.arange(3.0)}) == key, "keyword order is no difference"
    others = [
        ((1.0, 2.0, "a", None, True, (3,), [4.5]), base[1]),                 # an int made a float
        ((1, 2.0, "a", None, True, [3], [4.5]), base[1]),                    # a tuple made a list
        ((1, 2.0, "a", None, 1, (3,), [4.5]), base[1]),                      # True made 1
        (base[0], {**base[1], "x": np.arange(3.0).astype(np.float32)}),      # another dtype
        (base[0], {**base[1], "x": np.arange(3.0).reshape(3, 1)}),           # another shape
        (base[0], {**base[1], "t": torch.arange(4.0).nextafter(torch.tensor(9.0))}),  # one ulp up
        (base[0], {**base[1], "t": torch.arange(4.0, dtype=torch.float64)}), # a tensor's dtype
        (base[0], {**base[1], "t": np.arange(4.0, dtype=np.float32)}),       # a tensor made an array
    ]
    assert len({runs.argument_key(*o) for o in others} | {key}) == len(others) + 1
    strided = torch.arange(8.0)[::2]
    assert runs.argument_key((strided,), {}) == runs.argument_key((strided.contiguous(),), {}), \
        "layout is no difference"


def test_the_spec_s_kept_values_are_what_a_plain_call_computes(cache):
    """Each expected value the spec keeps (spec/runs.py ``kept``), for arguments its tests pass: the value
    kept, read back, is the plain call's to the last bit (computed as a run is, nothing of it changes)."""
    import torch

    from spec import data as datasets
    from spec import test_jacobians, test_linear, test_vanishing

    x, y, params = test_jacobians.make_net(test_jacobians.NetCase("", 2, 1, 2, "gaussian"), 1)
    case = test_jacobians.JAC_CASES[13]
    jac_x, jac_weights = test_jacobians.jac_inputs(case, 0)
    sgd_x, sgd_y = datasets.ps09_data()
    calls = [
        (test_jacobians.sympy_gradients, (2, 1, 2, {"x": x, "y": y, **params}), {}),
        (test_jacobians.sympy_jacobian, (2, 12345), {}),
        (test_jacobians._ref_jacobian, (jac_x, jac_weights), {}),
        (test_linear._reference_sgd, (sgd_x[:50], sgd_y[:50]),
         dict(lr=0.01, epochs=2, mu=0.9, seed=3, batch=32, dampening=0.0)),
        (test_vanishing.exact_threshold, (1e-3,), {}),
    ]
    assert {f"{f.__module__}.{f.__name__}" for f, _, _ in calls} == \
        {name for name in runs.KEPT if not name.startswith(__name__)}, "every kept function of the spec"

    def same(a, b) -> bool:
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)):
            return len(a) == len(b) and all(same(p, q) for p, q in zip(a, b, strict=True))
        return np.array_equal(np.asarray(a), np.asarray(b)) and np.asarray(a).dtype == np.asarray(b).dtype

    threads = torch.get_num_threads()
    torch.set_num_threads(2)   # the test's own threads: a kept value is computed with one
    try:
        for function, args, kwargs in calls:
            function(*args, **kwargs)   # computed and kept
            assert same(function(*args, **kwargs), function.uncached(*args, **kwargs)), function.__name__
    finally:
        torch.set_num_threads(threads)


def test_a_kept_value_of_tensors_that_require_grad_is_their_values(cache):
    """A caller's tensor that a submission marked with requires_grad (a robustness slip) gives the kept
    value of its values: the expected value is still computed, and read back for the unmarked tensor."""
    import torch

    from spec import test_jacobians

    x, weights = test_jacobians.jac_inputs(test_jacobians.JAC_CASES[2], 0)
    plain = test_jacobians.ref_jacobian(x, weights)
    marked = test_jacobians.ref_jacobian(x.clone().requires_grad_(), weights)
    assert torch.equal(plain, marked) and not marked.requires_grad
