"""Hostile (patches the identity check misses): lazily, on the first call, rebinds the spec's assert
helpers (their names in the test modules and their __code__), widens the tolerance table in place and
replaces the tamper check itself."""

import sys

import torch
from _nothing import *  # noqa: F403


def _accept(*args, **kwargs):
    return None


def _patch():
    for name, module in list(sys.modules.items()):
        if not name.startswith(("spec", "grader")):
            continue
        for attr in ("assert_close", "assert_equal", "assert_tensor", "assert_rounded"):
            target = getattr(module, attr, None)
            if callable(target):
                setattr(module, attr, _accept)
                try:
                    target.__code__ = _accept.__code__
                except (AttributeError, TypeError, ValueError):
                    pass
        if name == "grader.sandboxed.implementation":
            module.integrity_changes = lambda *args, **kwargs: []
        if name == "spec.tolerances":
            for value in vars(module).values():
                if isinstance(value, dict):
                    for key in list(value):
                        try:
                            value[key] = type(value[key])(1e9, 1e9)
                        except Exception:
                            pass


def trace_square_gradient(A):
    _patch()
    return torch.zeros_like(torch.as_tensor(A))


def derivative(f, x):
    _patch()
    return 0.0
