"""The spec's own runs of a sheet's protocol (the references that empirical claims are judged
against), computed once per version of the spec and kept on disk.

A run is a pure function of the spec's code, its seeds and the libraries' versions, computed with one
torch thread and a fixed random state: so its value is kept in a cache folder keyed by a digest of
the spec's files (every file under spec/ but its self-tests, tools and benchmarks: the tests, helpers,
data module, catalogue and interface) and of the versions of Python, torch, numpy, scipy and
scikit-learn and the machine's architecture (:func:`cache_key`). A changed spec file or library is a
new key, a new folder, and the runs are computed again; nothing stale is ever read.

* where: ``$SPEC_RUNS_CACHE/<key>/`` (``off`` turns the cache off), by default
  ``$XDG_CACHE_HOME/dl-course-spec/runs/<key>/`` (``~/.cache/...``);
* written atomically (a temporary file beside, then a rename) behind a lock, so a reader sees a whole
  run or none, and two processes that need one compute it once;
* read back safely: the folder and file must be this user's and writable by no one else, and the
  file is read by an unpickler that builds only containers, numbers, strings and numpy arrays (it
  runs no code); anything else is ignored and computed again. The grader hands the cache to a judge
  only where the sandboxed worker cannot write it (grader/judge/grade.py);
* without a usable cache (none yet, as in CI from a fresh clone, or turned off) a run is computed in
  the session and shared by its xdist workers and the spec runs it starts, as before (a file under
  the session's shared temporary folder, behind a lock); a usable cache is filled on the way;
* ``python -m spec.runs build [--sheet ID ...]`` computes them ahead (the Gradescope autograder's
  setup.sh does, so that no grade in the container computes one); ``python -m spec.runs where`` prints
  the folder.

Each run is registered with :func:`reference_run` (its name and the exercises judged against it) in
the test module that defines it; its fixture reads it with :func:`once_per_session`.

Expected values the spec derives per test case (a sympy derivation, a float64 autograd Jacobian, a
reference SGD loop) are kept the same way, one file per function and call arguments under the folder's
``values/``: a function decorated with :func:`kept` is computed as a run is and read back in every later
process of the same spec version (each grade of a class after the first). Without a usable cache it is
computed at each call, as before; ``build`` does not fill them (their arguments are the tests').
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import platform
import random
import stat
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps
from pathlib import Path
from typing import TypeVar

import numpy as np
from filelock import FileLock  # a dependency of torch's

T = TypeVar("T")

SPEC = Path(__file__).resolve().parent
RUNS_DIR = "SPEC_RUNS_DIR"      # where a session keeps its runs; the spec runs it starts inherit it
CACHE_ENV = "SPEC_RUNS_CACHE"   # the cache's root folder, or "off"
OFF = ("", "off", "0", "no", "none")
#: folders of spec/ that define no run (and are not shipped with the autograder)
NOT_IN_KEY = ("selftest", "tools", "bench", "__pycache__")
#: the libraries whose versions are part of the key (a run's values depend on them)
LIBRARIES = ("torch", "numpy", "scipy", "sklearn")


# ------------------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class Run:
    name: str
    compute: Callable[[], object]
    exercises: tuple[str, ...]   # the exercises judged against it: ``build --sheet`` selects by them


REGISTRY: dict[str, Run] = {}
#: the spec's modules that register runs (imported by ``build``)
RUN_MODULES = ("spec.test_vanishing", "spec.test_init", "spec.test_conv")


def reference_run(name: str, *, exercises: tuple[str, ...]):
    """Register the decorated function as the spec's run ``name``, judged against by ``exercises``."""

    def register(compute: Callable[[], T]) -> Callable[[], T]:
        REGISTRY[name] = Run(name, compute, tuple(exercises))
        return compute

    return register


# ------------------------------------------------------------------------------- the cache key
def spec_files(root: Path = SPEC) -> list[Path]:
    """The files whose content is part of the key: every regular file under spec/ except the folders
    that define no run, hidden ones and compiled bytecode."""
    files = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(p in NOT_IN_KEY or p.startswith(".") for p in parts) or path.suffix == ".pyc":
            continue
        if path.is_file() and not path.is_symlink():
            files.append(path)
    return files


def versions() -> dict[str, str]:
    """The versions a run's values depend on: Python, the libraries, the machine's architecture."""
    import importlib

    found = {"python": f"{sys.implementation.name} {platform.python_version()}", "machine": platform.machine()}
    for name in LIBRARIES:
        try:
            found[name] = importlib.import_module(name).__version__
        except ImportError:
            found[name] = "absent"
    return found


def cache_key(root: Path = SPEC, libraries: dict[str, str] | None = None) -> str:
    """A digest of the spec's files (names and contents, :func:`spec_files`) and of :func:`versions`."""
    digest = hashlib.sha256()
    for path in spec_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for name, version in sorted((libraries if libraries is not None else versions()).items()):
        digest.update(f"{name}={version}\0".encode())
    return digest.hexdigest()[:32]


@lru_cache(maxsize=1)
def _key() -> str:
    return cache_key()


def cache_root() -> Path | None:
    """The cache's root folder ($SPEC_RUNS_CACHE, else $XDG_CACHE_HOME/dl-course-spec/runs), or None
    where it is turned off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in OFF else Path(value).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).absolute() / "dl-course-spec" / "runs"


def _ours(path: Path) -> bool:
    """Whether ``path`` is this user's own and writable by no one else (not a link)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) \
        and not stat.S_ISLNK(info.st_mode)


def cache_folder(create: bool = True) -> Path | None:
    """This spec version's folder of the cache (made if ``create``), or None where the cache is off or
    the folder is not safely this user's own."""
    root = cache_root()
    if root is None:
        return None
    return _private_folder(root / _key(), create)


def _private_folder(folder: Path, create: bool = True) -> Path | None:
    """``folder`` (made with its parents if ``create``, writable by this user alone), or None where it
    cannot be made or is not safely this user's own."""
    try:
        if create and not folder.is_dir():
            old = os.umask(0o022)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            finally:
                os.umask(old)
    except OSError:
        return None
    return folder if folder.is_dir() and _ours(folder) else None


# ---------------------------------------------------------------------- reading and writing
class _Unpickler(pickle.Unpickler):
    """Builds containers, numbers, strings and numpy arrays and scalars; refuses every other global,
    so that reading a run runs no code."""

    ALLOWED = frozenset({("numpy", "ndarray"), ("numpy", "dtype"),
                         *((module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
                           for name in ("_reconstruct", "scalar")),
                         *((module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric"))})

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a run")


def _plain(value, depth: int = 0) -> bool:
    """Whether ``value`` is made only of what a run holds: containers, numbers, strings, arrays."""
    if depth > 20:
        return False
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) is np.ndarray:
        return value.dtype.kind in "biuf"
    if isinstance(value, np.generic):
        return value.dtype.kind in "biuf"
    if type(value) in (list, tuple):
        return all(_plain(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return False


_MISSING = object()


def read(path: Path, *, check_owner: bool = True):
    """The run kept in ``path``, or ``_MISSING`` when there is none, it is not this user's own (with
    ``check_owner``), or it is not a whole, plain run."""
    if check_owner and not _ours(path):
        return _MISSING
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            value = _Unpickler(io.BytesIO(handle.read())).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, RecursionError, MemoryError):
        return _MISSING
    return value if _plain(value) else _MISSING


def write(path: Path, value) -> None:
    """Write ``value`` to ``path`` atomically: a temporary file beside it, flushed, then renamed."""
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


#: the runs this process computed (not read), in order: for the tests of the cache
COMPUTED: list[str] = []


def compute(name: str, function: Callable[[], T]) -> T:
    """``function()`` with one torch thread, float32, grad mode on and a random state seeded from the
    run's name, the process's own put back after: the same value in every process that computes it."""
    import torch

    threads, dtype, grad = torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled()
    numpy_state, python_state = np.random.get_state(), random.getstate()
    seed = zlib.crc32(name.encode())
    with torch.random.fork_rng(devices=[]):
        try:
            torch.set_num_threads(1)
            torch.set_default_dtype(torch.float32)
            torch.set_grad_enabled(True)
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)
            value = function()
        finally:
            torch.set_num_threads(threads)
            torch.set_default_dtype(dtype)
            torch.set_grad_enabled(grad)
            np.random.set_state(numpy_state)
            random.setstate(python_state)
    COMPUTED.append(name)
    return value


def load_or_compute(folder: Path, name: str, function: Callable[[], T], *, check_owner: bool = True) -> T:
    """The run ``name`` kept in ``folder``, else computed (behind a lock, so that processes sharing the
    folder compute it once) and kept there; computed without keeping where the folder cannot be written."""
    path = folder / f"{name}.pickle"
    value = read(path, check_owner=check_owner)
    if value is not _MISSING:
        return value
    try:
        lock = FileLock(f"{path}.lock")
        lock.acquire()
    except OSError:
        return compute(name, function)
    try:
        value = read(path, check_owner=check_owner)   # computed by another process meanwhile
        if value is _MISSING:
            value = compute(name, function)
            try:
                write(path, value)
            except OSError:
                pass
        return value
    finally:
        lock.release()


# ------------------------------------------------------------------ expected values, kept per version
#: the functions whose values are kept (:func:`kept`), by module and name: for the tests of the cache
KEPT: dict[str, Callable] = {}
VALUES = "values"   # the cache folder's subfolder of kept values


def _feed(digest, value, depth: int = 0) -> None:
    """Feed a canonical encoding of an argument to ``digest``: numbers, strings, None, containers,
    numpy arrays and torch tensors (by dtype, shape and bytes); anything else is a TypeError."""
    if depth > 20:
        raise TypeError("arguments nested more than 20 deep")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        digest.update(f"{kind.__name__}:{value!r};".encode())
    elif kind in (list, tuple):
        digest.update(f"{kind.__name__}[{len(value)}](".encode())
        for item in value:
            _feed(digest, item, depth + 1)
        digest.update(b")")
    elif kind is dict:
        digest.update(f"dict[{len(value)}](".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key, depth + 1)
            _feed(digest, value[key], depth + 1)
        digest.update(b")")
    elif kind is np.ndarray or isinstance(value, np.generic):
        array = np.ascontiguousarray(value)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"an array of dtype {array.dtype} is not an argument of a kept value")
        digest.update(f"ndarray:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    else:
        import torch

        if not isinstance(value, torch.Tensor):
            raise TypeError(f"a {kind.__name__} is not an argument of a kept value")
        tensor = value.detach().cpu().resolve_conj().resolve_neg().contiguous()
        digest.update(f"tensor:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def _detached(value):
    """``value`` with each torch tensor in it detached from autograd (a caller's x that a submission
    marked with requires_grad included), containers rebuilt as they were."""
    if type(value) in (list, tuple):
        return type(value)(_detached(item) for item in value)
    if type(value) is dict:
        return {key: _detached(item) for key, item in value.items()}
    return value.detach() if hasattr(value, "detach") and hasattr(value, "requires_grad") else value


def argument_key(args: tuple, kwargs: dict) -> str:
    """A digest of a call's arguments (:func:`_feed`): equal arguments, equal keys."""
    digest = hashlib.sha256()
    _feed(digest, (args, kwargs))
    return digest.hexdigest()[:32]


def kept(function):
    """Keep the decorated function's values in this spec version's cache folder, one file per call's
    arguments: for a pure function of its arguments whose value is plain (numbers, strings, numpy
    arrays and containers of them), an expected value the spec derives (sympy, float64 autograd, a
    reference loop) that every grade of a class would otherwise derive again. Computed as a run is
    (:func:`compute`: one thread, float32 by default, a seeded random state, the caller's put back),
    so a value read back is the value computed; without a usable cache it is computed each call. The
    file's name is the function's module and name and a digest of the arguments (:func:`argument_key`)."""
    name = f"{function.__module__}.{function.__qualname__}"

    @wraps(function)
    def value(*args, **kwargs):
        label = f"{name}-{argument_key(args, kwargs)}"
        folder = _values_folder()
        if folder is not None:
            found = read(folder / f"{label}.pickle")
            if found is not _MISSING:
                return found
        args, kwargs = _detached((args, kwargs))   # a value of the arguments' values: no autograd graph
        result = compute(label, lambda: function(*args, **kwargs))
        if not _plain(result):
            raise TypeError(f"the kept value {name} is not plain (numbers, strings, arrays, containers of them)")
        if folder is not None:
            try:
                write(folder / f"{label}.pickle", result)
            except OSError:
                pass
        return result

    value.uncached = function
    KEPT[name] = value
    return value


def _values_folder() -> Path | None:
    """The cache folder's subfolder of kept values (made), or None where there is no usable one."""
    folder = cache_folder()
    return None if folder is None else _private_folder(folder / VALUES)


# ------------------------------------------------------------------------- in a test session
def share_runs(tmp_path_factory) -> str:
    """The folder of this session's runs, put in the environment for the spec runs it starts."""
    if RUNS_DIR not in os.environ:
        base = tmp_path_factory.getbasetemp()
        os.environ[RUNS_DIR] = str(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)
    return os.environ[RUNS_DIR]


def once_per_session(tmp_path_factory, name: str, compute_: Callable[[], T]) -> T:
    """The spec's run ``name``: from the cache of this spec version where there is a usable one (filled
    on the way), else computed once in this session: by the first xdist worker that needs it, read by
    the others and by the spec runs the session starts (the corpus batches fork a child per wrong
    solution; they read the runs of the session that started them instead of repeating them)."""
    folder = cache_folder()
    if folder is not None:
        return load_or_compute(folder, name, compute_)
    return load_or_compute(Path(share_runs(tmp_path_factory)), name, compute_)


def within_spread(got: np.ndarray, reference: np.ndarray, what: str, k: float = 4.0, floor: float = 0.0,
                  one_run: bool = False) -> None:
    """The mean of ``got`` (the implementation's seeds) lies within k standard errors of the spec's
    mean, the spread being the spec's own seed-to-seed spread (at least ``floor``: the resolution of
    the quantity, e.g. one test point of an accuracy, where the spec's seeds happen to agree).
    ``one_run``: within k spreads of one run instead, for a protocol whose sheet leaves details to the
    solution (an optimizer, a learning rate), so that its mean may sit anywhere one run could."""
    got, reference = np.asarray(got, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    spread = max(float(reference.std(ddof=1)), floor)
    error = k * spread * math.sqrt((1 if one_run else 1 / len(got)) + 1 / len(reference))
    assert abs(got.mean() - reference.mean()) <= error, \
        (f"got a mean {what} of {got.mean():.3f} over seeds {got.round(3)}, but the spec's own run gives "
         f"{reference.mean():.3f} +- {spread:.3f} (seed spread, {len(reference)} seeds); allowed {error:.3f}")


# ------------------------------------------------------------------------------- the command
def selected(patterns=()) -> list[Run]:
    """The registered runs (their modules imported) judged against by an exercise whose ID starts with
    one of ``patterns``, as ``--exercise`` selects (every run without any)."""
    import importlib

    for module in RUN_MODULES:
        importlib.import_module(module)
    if not patterns:
        return list(REGISTRY.values())
    return [run for run in REGISTRY.values() if any(e.startswith(p) for e in run.exercises for p in patterns)]


def build(patterns=(), *, out=print) -> int:
    """Compute the selected runs into the cache (those kept already are left as they are)."""
    folder = cache_folder()
    if folder is None:
        root = cache_root()
        out(f"no usable cache: {CACHE_ENV} turns it off" if root is None else
            f"no usable cache under {root} (it cannot be made, or it is not this user's own and private)")
        return 1
    runs = selected(patterns)
    if not runs:
        out(f"no run of the spec is judged against by {', '.join(patterns)}")
        return 0
    for run in runs:
        started = time.perf_counter()
        kept = read(folder / f"{run.name}.pickle") is not _MISSING
        load_or_compute(folder, run.name, run.compute)
        out(f"{run.name:<20} {'kept already' if kept else f'computed in {time.perf_counter() - started:.1f} s'}"
            f"  ({', '.join(run.exercises)})")
    out(f"{len(runs)} runs in {folder}")
    return 0


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m spec.runs", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    making = commands.add_parser("build", help="compute the spec's runs into the cache ahead of the grades")
    making.add_argument("--sheet", action="append", default=[], metavar="ID",
                        help="only the runs of this sheet, part or exercise (repeatable; default: every run)")
    commands.add_parser("where", help="print this spec version's cache folder (or why there is none)")
    args = parser.parse_args(argv)
    if args.command == "where":
        folder = cache_folder(create=False)
        print(folder if folder is not None else cache_root() / _key() if cache_root() else "off")
        return 0
    from spec.catalogue import load

    catalogue = load()
    for pattern in args.sheet:
        if not catalogue.select(pattern):
            parser.error(f"--sheet {pattern}: no catalogue ID is or starts with it")
    return build(tuple(args.sheet))


if __name__ == "__main__":   # the registry lives in the module spec.runs, which the test modules import
    from spec.runs import main as _main

    sys.exit(_main())
