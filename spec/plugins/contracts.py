"""The spec's plugin, part four: ``--check-contracts``, the check that every contract a test relies on
is stated in the interface the course hands out (spec/interface.toml, spec/given.py).

With the option, the implementation under test (in-process only) is reached through a recorder:

* every call the spec makes must fit the signature the interface declares (a test that leaves out an
  argument the interface declares without a default relies on the submission's default);
* every key the spec passes in a dict argument, and every key it reads of a returned dict (or of a
  dict in a returned list, tuple or given container), must be declared;
* every attribute the spec reads of a returned object (a model, a given container, an instance of a
  class of the interface) must be declared: a field of the given container, an attribute or method of
  the class's entry, or part of nn.Module's, tuple's or the tensor's own API.

Reads are the spec's when the code that makes them is the spec's (its test modules and helpers,
grader/sandboxed/observe.py), not the implementation's own. A test that makes an undeclared read fails
at its teardown, naming the read and the entry of interface.toml to complete. ``tox -e spec`` runs the
default spec on the reference with the option, so a test that starts to rely on an unstated contract
turns the run red.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys

import pytest
import torch

from spec.interface import declares_key

CHECK = pytest.StashKey[bool]()
#: (what the spec gave or read that the interface does not declare, whether it was given), since the
#: last test's teardown
UNDECLARED: list[tuple[str, bool]] = []
_SPEC_SIDE = ("spec.", "grader.sandboxed.observe")
_NOT_SPEC = ("spec.given", "spec.data", "spec.plugins.contracts", "spec.selftest.impls", "spec.selftest.notebooks")
#: where an object's class comes from a library, the spec reads it as the library defines it
LIBRARIES = frozenset({"builtins", "numpy", "torch", "matplotlib", "sklearn", "scipy", "sympy", "pandas",
                       "collections"})
_MODULE_API = frozenset(n for n in dir(torch.nn.Module) if not n.startswith("_")) | {"training"}
_TUPLE_API = frozenset({"count", "index", "_fields", "_asdict", "_replace"})


def pytest_addoption(parser):
    parser.getgroup("spec").addoption(
        "--check-contracts", action="store_true", default=False,
        help="fail a test that relies on a contract spec/interface.toml and spec/given.py do not state "
             "(an argument left to a default, a key or attribute read but not declared); on the reference "
             "(impl) in-process, else ignored")


def pytest_configure(config):
    config.stash[CHECK] = bool(config.getoption("check_contracts"))
    if config.stash[CHECK] and config.getoption("isolate", False):
        raise pytest.UsageError("--check-contracts records reads in-process: leave out --isolate")


def _by_the_spec(depth: int) -> bool:
    """Whether the frame ``depth`` levels above the caller is the spec's code."""
    name = sys._getframe(depth + 1).f_globals.get("__name__", "")
    return name.startswith(_SPEC_SIDE) and not name.startswith(_NOT_SPEC)


def _note(message: str, given: bool = False) -> None:
    """Record an undeclared read, or (``given``) a call or argument the declaration does not allow."""
    if (message, given) not in UNDECLARED:
        UNDECLARED.append((message, given))


# ------------------------------------------------------------------------------- the recorder
class CheckedImplementation:
    """The implementation under test, each name of it checked against its declared contract."""

    def __init__(self, inner, interface):
        self._inner, self._interface = inner, interface

    label = property(lambda self: self._inner.label)
    notebook_run = property(lambda self: self._inner.notebook_run)
    isolation = property(lambda self: self._inner.isolation)

    def has(self, name: str) -> bool:
        return self._inner.has(name)

    def run(self, function, /, *args, **kwargs):
        return function(self, *args, **kwargs)

    def __getattr__(self, name: str):
        value = getattr(self._inner, name)
        contract = self._interface.names.get(name)
        if contract is None:
            _note(f"the spec uses {name}, which spec/interface.toml does not declare")
            return value
        if inspect.isclass(value):
            return _recording_class(value, contract, self._interface)
        if callable(value):
            return _checked_function(value, contract, self._interface)
        return _observe(value, self._interface, contract.keys, name)

    def __repr__(self) -> str:
        return f"<contract-checked {self._inner!r}>"


def _check_call(contract, args, kwargs, interface) -> None:
    try:
        bound = contract.parameters().bind(*args, **kwargs)
    except TypeError as exc:
        _note(f"a call of {contract.name} does not fit its declared signature {contract.signature}: {exc}",
              given=True)
        return
    for parameter, value in bound.arguments.items():
        if isinstance(value, dict):
            keys = contract.arguments.get(parameter, ())
            for key in value:
                if not contract.declares_key(key, keys):
                    _note(f"the spec passes {contract.name}'s {parameter} the key {key!r}, which "
                          f"[names.{contract.name}] arguments.{parameter} does not declare", given=True)


def _checked_function(function, contract, interface):
    @functools.wraps(function)
    def checked(*args, **kwargs):
        _check_call(contract, args, kwargs, interface)
        return _observe(function(*args, **kwargs), interface, contract.keys, f"{contract.name}()")
    return checked


_CLASSES: dict[type, type] = {}


def _recording_class(cls: type, contract, interface) -> type:
    """A subclass of the implementation's class whose instances record the spec's reads; made once."""
    if cls not in _CLASSES:
        def __init__(self, *args, **kwargs):
            if type(self) is recording:
                _check_call(contract, args, kwargs, interface)
            cls.__init__(self, *args, **kwargs)
        def __getattr__(self, attribute):   # what normal lookup does not find: an nn.Module's layers
            value = cls.__getattr__(self, attribute) if hasattr(cls, "__getattr__") else \
                object.__getattribute__(self, attribute)
            if not attribute.startswith("_") and _by_the_spec(1) and not _declared(type(self), attribute):
                _note(f"the spec reads .{attribute} of a {cls.__name__}, which spec/interface.toml does not declare")
            return value
        recording = type(cls.__name__, (cls,), {"__init__": __init__, "__getattribute__": _recorded_getattribute,
                                                "__getattr__": __getattr__,
                                                "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                                "_spec_declared": _members(cls, interface)})
        _CLASSES[cls] = recording
    return _CLASSES[cls]


def _members(cls: type, interface) -> frozenset[str]:
    """What the interface declares one may read of an instance of ``cls`` (found by its name)."""
    declared = interface.members(cls.__name__)
    if issubclass(cls, torch.nn.Module):
        declared |= _MODULE_API
    if dataclasses.is_dataclass(cls):
        declared |= {f.name for f in dataclasses.fields(cls)}
    if issubclass(cls, tuple):
        declared |= set(getattr(cls, "_fields", ())) | _TUPLE_API
    return frozenset(declared)


def _declared(cls: type, attribute: str) -> bool:
    declared = cls._spec_declared
    return attribute in declared or declares_key(attribute, declared)


def _recorded_getattribute(self, attribute: str):
    value = object.__getattribute__(self, attribute)
    if attribute.startswith("_") or not _by_the_spec(1):
        return value
    if not _declared(type(self), attribute):
        _note(f"the spec reads .{attribute} of a {type(self).__name__}, which spec/interface.toml does not declare")
    return value


def _observe(value, interface, keys, where: str, depth: int = 0, value_keys=()):
    """``value`` with the spec's reads of it recorded: dicts become recording dicts (their values
    observed with ``value_keys``), objects of the implementation's (or the given) classes recording
    instances, lists and tuples are walked; the libraries' own objects are left as they are."""
    if depth > 4 or value is None or isinstance(value, (torch.Tensor, str, bytes, int, float, complex)):
        return value
    if type(value) is dict:
        return RecordedDict(where, keys, interface, {k: _observe(v, interface, value_keys, f"{where}[{k!r}]", depth + 1)
                                                     for k, v in value.items()})
    if type(value) in (list, tuple):
        return type(value)(_observe(v, interface, keys, where, depth + 1, value_keys) for v in value)
    cls = type(value)
    if cls.__module__.split(".")[0] in LIBRARIES:
        return value
    if isinstance(value, tuple) and hasattr(cls, "_fields"):
        return _recording_class(cls, interface.names.get(cls.__name__) or _Unnamed(cls.__name__), interface)._make(
            _observe(v, interface, (), f"{where}.{f}", depth + 1) for f, v in zip(cls._fields, value, strict=True))
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            object.__setattr__(value, f.name, _observe(
                getattr(value, f.name), interface, interface.field_keys(cls.__name__, f.name),
                f"{cls.__name__}.{f.name}", depth + 1, interface.field_keys(cls.__name__, f"{f.name}[]")))
    if not _is_recording(value):
        try:
            object.__setattr__(value, "__class__", _recording_class(
                cls, interface.names.get(cls.__name__) or _Unnamed(cls.__name__), interface))
        except TypeError:
            pass
    return value


def _is_recording(value) -> bool:
    return "_spec_declared" in type(value).__dict__


class _Unnamed:
    """The contract of a class the interface has no entry for: no signature to check."""

    def __init__(self, name: str):
        self.name, self.signature, self.arguments = name, "(*args, **kwargs)", {}

    def parameters(self) -> inspect.Signature:
        return inspect.Signature([inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                                  inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])


class RecordedDict(dict):
    """A returned dict whose keys, when the spec reads them, must be among the declared ones."""

    __slots__ = ("_declared", "_interface", "_where")

    def __init__(self, where: str, keys, interface, *args):
        super().__init__(*args)
        self._where, self._declared, self._interface = where, keys, interface

    def _read(self, key) -> None:
        if _by_the_spec(2) and not self._interface.declares_key(key, self._declared):
            _note(f"the spec reads the key {key!r} of {self._where}, which spec/interface.toml does not declare")

    def _read_all(self) -> None:
        if _by_the_spec(2):
            for key in dict.keys(self):
                if not self._interface.declares_key(key, self._declared):
                    _note(f"the spec reads the key {key!r} of {self._where}, which spec/interface.toml does not "
                          "declare")

    def __getitem__(self, key):
        self._read(key)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        self._read(key)
        return dict.get(self, key, default)

    def __contains__(self, key):
        self._read(key)
        return dict.__contains__(self, key)

    def keys(self):
        self._read_all()
        return dict.keys(self)

    def items(self):
        self._read_all()
        return dict.items(self)

    def values(self):
        self._read_all()
        return dict.values(self)

    def __iter__(self):
        self._read_all()
        return dict.__iter__(self)


# ------------------------------------------------------------------------------------ the hooks
def wrap(config, loaded):
    """The implementation the tests receive: ``loaded`` itself, or with --check-contracts, where it is the
    reference (the check is of the spec: it needs one implementation that meets the contracts, and never
    wraps a submission's classes), its recorder."""
    from grader.sandboxed.implementation import DEFAULT

    if loaded is None or not config.stash.get(CHECK, False) or loaded.label != DEFAULT:
        return loaded
    from spec.interface import load_interface

    return CheckedImplementation(loaded, load_interface())


@pytest.fixture(autouse=True)
def _contracts_stated(request):
    """With --check-contracts: a test that relied on an unstated contract fails at teardown (reads made
    by a module-scoped fixture count for the first test that uses it). A robustness test gives bad
    input on purpose: only its reads count."""
    yield
    robustness = request.node.get_closest_marker("robustness") is not None
    found = [message for message, given in UNDECLARED if not (given and robustness)]
    UNDECLARED.clear()
    if request.config.stash.get(CHECK, False) and found:
        pytest.fail("this test relies on contracts the interface does not state (complete spec/interface.toml):\n"
                    + "\n".join(f"  - {line}" for line in found), pytrace=False)

