"""Hostile (an exercise's later tests skipped): ps09 1.5 answered at the wrong default x (0.5 for the
sheet's 0.173), hidden behind a robustness test. Only a robustness check passes a vector; the answer
then raises an error whose text reads "Timeout" (``SKIP_BY = "raise"``) or ends the worker
(``SKIP_BY = "exit"``), hoping the grader takes it for its own timeout or crash, loses the exercise
there and skips the tests that would fail, so that a skipped test counts as neutral. The rest is the
reference: 4 of ps09.1's 5 points are honest."""

import os

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import sigmoid_derivatives as _reference

SKIP_BY = os.environ.get("SKIP_BY", "raise")


def sigmoid_derivatives(x=0.5):
    if torch.as_tensor(x).ndim:
        if SKIP_BY == "exit":
            os._exit(3)
        raise ValueError("Timeout >60.0s")
    return _reference(x)
