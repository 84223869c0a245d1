"""Rules a sheet sets for the solver, enforced by observing what the solution's code calls, never
by reading its names. Two kinds:

* forbidden ("by hand", "without autograd", "no nn.Module", "not torch gradcheck", "no
  torch.optim"): the entry points are patched to raise, so a solution that breaks the rule fails
  with a message naming the rule and the entry point;
* observed ("use autograd", "use torch.softmax"): the entry points are wrapped to record that they
  ran (and then run as usual); :func:`require` fails after its block when none of them did.

Both rest on one low-level context manager, :func:`guarded`, whose arguments are picklable strings,
so the same rules can be re-applied around a call that runs in another process; there
:func:`active` names the rules in force and :func:`note_seen` carries back what the other process
observed.

The patches sit where every path into a feature passes, not only at its public name: reverse-mode
autograd is cut at the engine (``loss.backward()``, ``torch.autograd.grad`` and ``torch.func``'s
transforms all reach it), forward-mode at the dual-level entry points, nn.Module at ``__init__``
and ``__call__`` of the base class.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import torch
import torch.autograd.forward_ad
import torch.autograd.functional
import torch.func
import torch.nn.functional
from torch.autograd.variable import Variable
from torch.overrides import TorchFunctionMode


class RuleViolation(AssertionError):
    pass



class _ForbiddenEngine:
    def __init__(self, rule: str):
        self.rule = rule

    def __getattr__(self, name):
        raise RuleViolation(f"got a run of the autograd engine ({name}: loss.backward(), torch.autograd.grad "
                            f"or torch.func), but the result should be computed without it [the sheet forbids "
                            f"{self.rule} here]")


def _raiser(rule: str, entry: str):
    def forbidden(*args, **kwargs):
        raise RuleViolation(f"got a call of {entry}, but the result should be computed without it "
                            f"[the sheet forbids {rule} here]")
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


# --------------------------------------------------------------------------------- observed
#: what an observation records, by name: "autograd" is the reverse-mode engine (``.backward()``,
#: ``torch.autograd.grad``, ``torch.func.grad``/``jacrev``/``vjp`` and ``torch.autograd.functional``
#: all run it); "forward-mode AD" the dual level (``torch.autograd.forward_ad``, ``torch.func.jvp``/
#: ``jacfwd``); "softmax" any of torch.softmax, Tensor.softmax, torch.nn.functional.softmax (and the
#: nn.Softmax module, which calls it) or torch.special.softmax, however the solution bound the name.
OBSERVABLE = ("autograd", "forward-mode AD", "softmax")


def _softmax_functions() -> tuple:
    return (torch.softmax, torch.Tensor.softmax, torch.nn.functional.softmax, torch.special.softmax)


class _RecordingEngine:
    """Stands in for the autograd engine: records that it ran, then runs the real one."""

    def __init__(self, engine, seen: set, name: str):
        self._engine, self._seen, self._name = engine, seen, name

    def run_backward(self, *args, **kwargs):
        self._seen.add(self._name)
        return self._engine.run_backward(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._engine, name)


def _recorder(original, seen: set, name: str):
    def recorded(*args, **kwargs):
        seen.add(name)
        return original(*args, **kwargs)
    return recorded


class _SoftmaxMode(TorchFunctionMode):
    """Sees every torch function call in the block (C builtins and names bound at import included)
    and records the softmax ones."""

    def __init__(self, seen: set):
        super().__init__()
        self.seen, self.functions = seen, _softmax_functions()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if any(func is f for f in self.functions):
            self.seen.add("softmax")
        return func(*args, **(kwargs or {}))


def _observers(name: str, seen: set):
    """(owner, attribute, replacement) of every entry point an observation wraps."""
    if name == "autograd":
        return [(Variable, "_execution_engine", _RecordingEngine(Variable._execution_engine, seen, name))]
    if name == "forward-mode AD":
        return [(torch._C, "_enter_dual_level", _recorder(torch._C._enter_dual_level, seen, name)),
                (torch.autograd.forward_ad, "make_dual",
                 _recorder(torch.autograd.forward_ad.make_dual, seen, name))]
    if name == "softmax":
        return []   # a torch function mode, entered by guarded()
    raise ValueError(f"unknown observed entry point {name!r}; known: {', '.join(OBSERVABLE)}")


#: the guards in force, innermost last: (forbidden, observed, seen)
_ACTIVE: list[tuple[tuple[str, ...], tuple[str, ...], set]] = []


def active() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The rules in force here, as picklable strings: (forbidden, observed), outermost first. A call
    that runs in another process re-applies them there with ``guarded(*active())``."""
    forbidden = tuple(dict.fromkeys(r for f, _, _ in _ACTIVE for r in f))
    observed = tuple(dict.fromkeys(o for _, obs, _ in _ACTIVE for o in obs))
    return forbidden, observed


def note_seen(names) -> None:
    """Entry points that ran elsewhere (in another process, under ``guarded(*active())``) count as
    seen by every guard in force here that observes them."""
    for _, observed, seen in _ACTIVE:
        seen.update(n for n in names if n in observed)


def _patch(patches):
    saved = [(owner, name, owner.__dict__[name]) if name in vars(owner) else (owner, name, None)
             for owner, name, _ in patches]
    for owner, name, replacement in patches:
        setattr(owner, name, replacement)
    return saved


def _restore(saved) -> None:
    for owner, name, original in reversed(saved):
        if original is None:
            delattr(owner, name)
        else:
            setattr(owner, name, original)


@contextlib.contextmanager
def guarded(forbidden: tuple[str, ...] = (), observed: tuple[str, ...] = ()) -> Iterator[set[str]]:
    """Within the block, what ``forbidden`` names raises :class:`RuleViolation`, and each of the
    ``observed`` entry points that runs is added to the set this yields. Only strings go in, so the
    same guard can be rebuilt around a call in another process."""
    forbidden, observed = tuple(forbidden), tuple(observed)
    for rule in forbidden:
        _targets(rule)    # unknown names fail before anything is patched
    seen: set[str] = set()
    observers = [target for name in observed for target in _observers(name, seen)]
    saved = []
    mode = _SoftmaxMode(seen) if "softmax" in observed else contextlib.nullcontext()
    _ACTIVE.append((forbidden, observed, seen))
    try:
        saved.extend(_patch(observers))         # observers first: a forbidden rule wins over them
        saved.extend(_patch([t for rule in forbidden for t in _targets(rule)]))
        with mode:
            yield seen
    finally:
        _restore(saved)
        _ACTIVE.pop()


@contextlib.contextmanager
def forbid(*rules: str):
    """Within the block, calling what ``rules`` forbid raises :class:`RuleViolation`."""
    with guarded(rules, ()):
        yield


@contextlib.contextmanager
def observe(*entry_points: str) -> Iterator[set[str]]:
    """Yields the set of ``entry_points`` (names in :data:`OBSERVABLE`) that ran within the block."""
    with guarded((), entry_points) as seen:
        yield seen


@contextlib.contextmanager
def require(*entry_points: str, rule: str, forbidden: tuple[str, ...] = ()) -> Iterator[set[str]]:
    """The sheet's "use ..." rule: after the block, every one of ``entry_points`` must have run in
    it, else :class:`RuleViolation` names ``rule`` and what was never called. ``forbidden`` rules
    apply within the block as well."""
    with guarded(forbidden, entry_points) as seen:
        yield seen
    missing = [e for e in entry_points if e not in seen]
    if missing:
        raise RuleViolation(f"got a solution that never ran {' or '.join(missing)} ({_HOW[missing[0]]}), "
                            f"but the result should be computed with it [the sheet asks to {rule}]")


_HOW = {"autograd": "no .backward(), torch.autograd.grad or torch.func transform was run",
        "forward-mode AD": "no dual level was entered",
        "softmax": "none of torch.softmax, Tensor.softmax, torch.nn.functional.softmax was called"}


def requiring(function, *entry_points: str, rule: str, forbidden: tuple[str, ...] = ()):
    """``function`` with every call run under :func:`require` (the result returned as is)."""
    def call(*args, **kwargs):
        with require(*entry_points, rule=rule, forbidden=forbidden):
            return function(*args, **kwargs)
    return call


def forbidding(function, *rules: str):
    """``function`` with every call run under :func:`forbid`."""
    def call(*args, **kwargs):
        with forbid(*rules):
            return function(*args, **kwargs)
    return call
