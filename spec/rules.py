"""Rules a sheet sets for the solver ("no autograd", "no nn.Module", "not torch gradcheck",
"no torch.optim"), enforced by running the solution with the forbidden entry points patched to
raise. A solution that breaks a rule fails with a message naming the rule and the entry point.

The patches sit where every path into a feature passes, not only at its public name: reverse-mode
autograd is cut at the engine (``loss.backward()``, ``torch.autograd.grad`` and ``torch.func``'s
transforms all reach it), forward-mode at the dual-level entry points, nn.Module at ``__init__``
and ``__call__`` of the base class.
"""

from __future__ import annotations

import contextlib
import sys

import torch
import torch.autograd.forward_ad
import torch.autograd.functional
import torch.func
from torch.autograd.variable import Variable


class RuleViolation(AssertionError):
    pass


#: the rules in force, innermost last: in isolated mode every call into the worker carries them, and
#: the worker applies them around the call (spec/remote.py)
ACTIVE: list[str] = []


class _ForbiddenEngine:
    def __init__(self, rule: str):
        self.rule = rule

    def __getattr__(self, name):
        raise RuleViolation(f"the sheet forbids {self.rule} here, but the solution ran the autograd "
                            f"engine ({name}: loss.backward(), torch.autograd.grad or torch.func)")


def _raiser(rule: str, entry: str):
    def forbidden(*args, **kwargs):
        raise RuleViolation(f"the sheet forbids {rule} here, but the solution called {entry}")
    return forbidden


def _targets(rule: str):
    """(owner, attribute, replacement) of every entry point a rule closes."""
    if rule == "autograd":
        targets = [(Variable, "_execution_engine", _ForbiddenEngine(rule))]
        for name in ("make_dual", "enter_dual_level"):
            targets.append((torch.autograd.forward_ad, name,
                            _raiser(rule, f"torch.autograd.forward_ad.{name}")))
        targets.append((torch._C, "_enter_dual_level", _raiser(rule, "forward-mode AD (dual level)")))
        for name in ("jvp", "vjp", "jacrev", "jacfwd", "hessian", "grad", "linearize"):
            targets.append((torch.func, name, _raiser(rule, f"torch.func.{name}")))
        for name in ("jacobian", "jvp", "vjp", "hessian", "hvp", "vhp"):
            targets.append((torch.autograd.functional, name,
                            _raiser(rule, f"torch.autograd.functional.{name}")))
        return targets
    if rule == "nn.Module":
        return [(torch.nn.Module, name, _raiser(rule, f"torch.nn.Module.{name} (an nn module)"))
                for name in ("__init__", "__call__")]
    if rule == "gradcheck":
        module = sys.modules["torch.autograd.gradcheck"]
        return [(owner, name, _raiser(rule, f"torch.autograd.{name}"))
                for owner in (torch.autograd, module) for name in ("gradcheck", "gradgradcheck")]
    if rule == "torch.optim":
        return [(torch.optim.Optimizer, name, _raiser(rule, f"torch.optim ({name})"))
                for name in ("__init__", "step")]
    raise ValueError(f"unknown rule {rule!r}; known: autograd, nn.Module, gradcheck, torch.optim")


@contextlib.contextmanager
def forbid(*rules: str):
    """Within the block, calling what ``rules`` forbid raises :class:`RuleViolation`."""
    patches = [target for rule in rules for target in _targets(rule)]
    saved = [(owner, name, owner.__dict__[name]) if name in vars(owner) else (owner, name, None)
             for owner, name, _ in patches]
    ACTIVE.extend(rules)
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        yield
    finally:
        del ACTIVE[len(ACTIVE) - len(rules):]
        for owner, name, original in reversed(saved):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
