"""A warm grader: the libraries every judge imports, imported once, so that judges start by forking
(also the fork server of the spec's own batches of runs, spec/selftest/runner.py).

A class's grades (grader/judge/batch.py) fork each student's grading process from one process that has
imported this module (a ``multiprocessing`` fork server that preloads it), and each grade forks its
judge (grader/judge/grade.py) instead of starting a new interpreter: the 3-4 s of importing torch, numpy,
scipy, scikit-learn, sympy, hypothesis and pytest are paid once per class, not twice per student.

Only the judge's side is warm: the judge is the spec's own trusted code, and every judge is a fresh
fork of a process that has run no grade. The worker that runs a submission is still a new interpreter
in its own sandbox, started by its judge (grader/judge/sandbox.py): isolation is what it was.
"""

from __future__ import annotations

import gc
import os
import warnings

# before torch is imported: a judge computes in one thread (the grades run side by side)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import hypothesis
import hypothesis.extra.pytestplugin  # noqa: F401
import numpy  # noqa: F401
import pytest  # noqa: F401
import pytest_benchmark.plugin  # noqa: F401 - pytest loads its plugins in every judge
import pytest_timeout  # noqa: F401
import scipy  # noqa: F401
import sklearn.datasets  # imported by the spec's data sets (spec/data.py), as is the next
import sklearn.model_selection  # noqa: F401
import sympy  # noqa: F401
import torch
import torch._dynamo  # noqa: F401 - imported by the first optimizer a test builds: about 1 s
import xdist.plugin  # noqa: F401

import grader.judge.grade  # noqa: F401

# a fork server's child runs the parent's main module again as __mp_main__ (its body only: the
# ``if __name__ == "__main__"`` part is not run); under ``python -m spec.grade`` runpy warns that the
# module is imported already, which it is, by this module
for _main in ("grader.judge.grade", "spec.grade", "grader.__main__"):
    warnings.filterwarnings("ignore", message=f"'{_main}' found in sys.modules", category=RuntimeWarning)

# what was imported is never collected: a fork's garbage collections walk only its own objects
gc.freeze()
WARM = True
