"""The spec's own runs of a sheet's protocol (the references that empirical claims are judged
against), computed once per test session: under xdist the first worker that needs one computes it
and the others read its result (a file under the session's shared temporary folder, behind a lock).
A run is a pure function of the spec's code and its seeds, so sharing it changes no value."""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from filelock import FileLock  # a dependency of torch's

T = TypeVar("T")


RUNS_DIR = "SPEC_RUNS_DIR"   # where a session keeps its runs; the spec runs it starts inherit it


def share_runs(tmp_path_factory) -> str:
    """The folder of this session's runs, put in the environment for the spec runs it starts."""
    if RUNS_DIR not in os.environ:
        base = tmp_path_factory.getbasetemp()
        os.environ[RUNS_DIR] = str(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)
    return os.environ[RUNS_DIR]


def once_per_session(tmp_path_factory, name: str, compute: Callable[[], T]) -> T:
    """``compute()``, or the value another process of this session already computed under ``name``:
    another xdist worker, or the session that started this one (the corpus batches, which fork a child
    per wrong solution, read the runs of the session that started them instead of repeating them)."""
    path = Path(share_runs(tmp_path_factory)) / f"spec-run-{name}.pickle"
    with FileLock(f"{path}.lock"):
        if path.is_file():
            return pickle.loads(path.read_bytes())
        value = compute()
        path.write_bytes(pickle.dumps(value))
        return value


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
