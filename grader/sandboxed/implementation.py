"""Resolve the implementation under test: the one place where the spec meets a solution.

The target is, in this order of precedence, ``pytest --impl=<target>``, the environment variable
``SPEC_IMPL``, or ``impl`` (the reference solutions). A target is a module name (``impl``,
``mypkg.solutions``) or a path to a ``.py`` file, a Jupyter notebook (``.ipynb``) or a package folder. Tests receive an
:class:`Implementation`; a name it lacks fails only the test that asks for it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import os
import sys
import zlib
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

ENV_VAR = "SPEC_IMPL"
DEFAULT = "impl"
ALIAS_ENV_VAR = "SPEC_ALIASES"


#: names of the interface the running test has used (the interface page is built from these)
ACCESSED: set[str] = set()
#: the calls of the implementation's functions the running test made, as code (spec/calls.py), last last
CALLS: list[str] = []


def note_call(name: str, args, kwargs) -> None:
    from spec.calls import as_code

    try:
        CALLS[:] = [as_code(name, args, kwargs)]
    except Exception:   # a call that cannot be written out is still a call
        CALLS[:] = [f"{name}(...)"]
#: attributes that tools probe on every test argument (hypothesis), never names of the interface
PROBES = frozenset({"execute_example", "setup_example", "teardown_example", "hypothesis_internal_is_this_a_mock_check"})


class MissingName(AttributeError):
    """The implementation under test does not define a name of the interface."""


class ImplementationNotFound(Exception):
    """The target names neither an importable module nor a ``.py`` file, notebook or package folder."""


def target_from(option: str | None) -> str:
    return option or os.environ.get(ENV_VAR) or DEFAULT


PATH_SUFFIXES = (".py", ".ipynb")


def _as_path(target: str) -> Path | None:
    """The target as a path, or None where it is a module name (``impl``, ``pkg.solutions``)."""
    looks_like_path = ("/" in target or os.sep in target or target.startswith((".", "~"))
                       or target.endswith(PATH_SUFFIXES))
    if not looks_like_path:
        return None
    path = Path(target).expanduser()
    if not path.exists():
        raise ImplementationNotFound(f"--impl={target}: no such file or folder")
    return path.resolve()


def describe(target: str) -> str:
    """Where the target lives, without importing it (for the report header)."""
    try:
        path = _as_path(target)
        if path is not None:
            return f"{target} ({path})"
        spec = importlib.util.find_spec(target)
    except (ImplementationNotFound, ImportError, ValueError) as exc:
        return f"{target} (not found: {exc})"
    if spec is None:
        return f"{target} (not found: no module named {target!r})"
    return f"{target} ({spec.origin})"


def _module_name_for(path: Path) -> str:
    stem = path.stem if path.is_file() else path.name
    safe = "".join(c if c.isalnum() else "_" for c in stem)
    return f"_spec_impl_{safe}_{zlib.crc32(str(path).encode()) & 0xFFFFFF:06x}"


def load(target: str, *, notebook_budget: float | None = None) -> ModuleType:
    """Import the target. Errors raised by the target's own code propagate unchanged, except in a
    notebook, whose cells run one by one (grader/sandboxed/notebook.py): the run is kept as the module's
    ``__notebook_run__``. A file's or package's folder is the working directory while it is imported
    and stays on sys.path (so helper files beside it import), and no network connection can be opened."""
    from grader.sandboxed import notebook

    path = _as_path(target)
    if path is None:
        return importlib.import_module(target)
    if path.is_dir():
        init = path / "__init__.py"
        if not init.is_file():
            raise ImplementationNotFound(f"--impl={target}: the folder has no __init__.py")
        spec = importlib.util.spec_from_file_location(
            _module_name_for(path), init, submodule_search_locations=[str(path)]
        )
        folder = path.parent
    elif path.suffix == ".py":
        spec = importlib.util.spec_from_file_location(_module_name_for(path), path)
        folder = path.parent
    elif path.suffix == ".ipynb":
        try:
            notebook.read_cells(path)
        except notebook.NotebookError as exc:
            raise ImplementationNotFound(f"--impl={target}: {exc}") from None
        module = ModuleType(_module_name_for(path))
        module.__file__ = str(path)
        sys.modules[module.__name__] = module
        budget = notebook.DEFAULT_BUDGET if notebook_budget is None else notebook_budget
        module.__notebook_run__ = notebook.run(path, module, seconds=budget)
        return module
    else:
        raise ImplementationNotFound(
            f"--impl={target}: expected a module name, a .py file, a .ipynb notebook or a package folder"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        with notebook.in_folder(folder), notebook.no_network():
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


def read_aliases(path) -> dict[str, str]:
    """An alias file maps the submission's own names onto the interface, one TOML line each:
    ``compute_jacobian_forward = "jacobian_forward"`` (the submission's name = the interface's name).
    Returns {interface name: submission's name}."""
    import tomllib

    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ImplementationNotFound(f"alias file {path}: {exc}") from None
    table = table.get("aliases", table)
    bad = [k for k, v in table.items() if not isinstance(v, str) or not v.isidentifier() or not k.isidentifier()]
    if bad:
        raise ImplementationNotFound(f"alias file {path}: each line must read their_name = \"interface_name\", "
                                     f"not {', '.join(bad)}")
    inverse: dict[str, str] = {}
    for theirs, ours in table.items():
        if ours in inverse:
            raise ImplementationNotFound(f"alias file {path}: {inverse[ours]} and {theirs} both map to {ours}")
        inverse[ours] = theirs
    return inverse


class Implementation:
    """The solution under test. ``impl.name`` raises :class:`MissingName` if the solution lacks it,
    which fails only the test that asked for the name."""

    def __init__(self, module: ModuleType, label: str, aliases: dict[str, str] | None = None, *,
                 note_calls: bool = True):
        self._module, self._note_calls = module, note_calls
        self._label = label
        self._aliases = dict(aliases or {})   # interface name -> the submission's name

    @property
    def label(self) -> str:
        return self._label

    @property
    def notebook_run(self):
        """The cell-by-cell run of a notebook submission (grader/sandboxed/notebook.py), else None."""
        return vars(self._module).get("__notebook_run__")

    @property
    def isolation(self) -> str:
        return "in the spec's own process (for trusted code: the reference, a course author's solution)"

    def has(self, name: str) -> bool:
        return hasattr(self._module, self._aliases.get(name, name))

    def run(self, function, /, *args, **kwargs):
        """``function(self, *args, **kwargs)``: in isolated mode (grader/judge/remote.py) it runs in the
        submission's process and returns data; here, in this one. For sequences that need the
        submission's objects and the spec's together (an optimizer over its parameters, in-place
        initialisation of its model)."""
        return function(self, *args, **kwargs)

    def __getattr__(self, name: str):
        # an AttributeError subclass, so that tools probing attributes (getattr with a default)
        # see a plain missing attribute, while a test that uses the name fails with this message
        if not name.startswith("_"):   # a tool's probe (IPython's _repr_pretty_), never a name of the interface
            ACCESSED.add(name)
        own = self._aliases.get(name, name)
        try:
            value = getattr(self._module, own)
        except AttributeError:
            alias = f" (as {own}, its alias)" if own != name else ""
            raise MissingName(f"{name}{alias} is not defined in {self._label}{self._why_missing(own)}") from None
        if not self._note_calls or not inspect.isfunction(value):
            return value

        @functools.wraps(value)
        def noted(*args, **kwargs):
            note_call(name, args, kwargs)
            return value(*args, **kwargs)
        return noted

    def _why_missing(self, name: str) -> str:
        run = self.notebook_run
        cells = [c for c in run.failed if name in c.defines] if run is not None else []
        return "".join(f"; {c.describe()}, which defines it, failed" for c in cells[:2])

    def __repr__(self) -> str:
        return f"<implementation under test: {self._label}>"


class GlobalState:
    """The process-wide numerical settings a submission could change for every test after it: torch's
    default dtype, grad mode and thread count, numpy's floating-point error modes. Captured once and
    put back after the implementation is loaded and around every test (every call, in a worker)."""

    def __init__(self):
        self.dtype, self.grad = torch.get_default_dtype(), torch.is_grad_enabled()
        self.threads, self.errors = torch.get_num_threads(), np.geterr()

    def restore(self) -> None:
        torch.set_default_dtype(self.dtype)
        torch.set_grad_enabled(self.grad)
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        np.seterr(**self.errors)


def integrity_snapshot(objects: dict) -> dict[str, int]:
    """The identity of every protected object, to compare before and after importing a solution."""
    return {label: id(value) for label, value in objects.items()}


def integrity_changes(before: dict[str, int], objects: dict) -> list[str]:
    """Labels of the protected objects that are no longer the same objects."""
    after = integrity_snapshot(objects)
    return sorted(label for label in before if after.get(label) != before[label])
