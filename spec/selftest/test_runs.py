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
