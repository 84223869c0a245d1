"""Resolve the implementation under test: the one place where the spec meets a solution.

The target is, in this order of precedence, ``pytest --impl=<target>``, the environment variable
``SPEC_IMPL``, or ``impl`` (the reference solutions). A target is a module name (``impl``,
``mypkg.solutions``) or a path to a ``.py`` file, a Jupyter notebook (``.ipynb``) or a package folder. Tests receive an
:class:`Implementation`; a name it lacks fails only the test that asks for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import zlib
from pathlib import Path
from types import ModuleType

ENV_VAR = "SPEC_IMPL"
DEFAULT = "impl"


#: names of the interface the running test has used (the interface page is built from these)
ACCESSED: set[str] = set()


class MissingName(AttributeError):
    """The implementation under test does not define a name of the interface."""


class ImplementationNotFound(Exception):
    """The target names neither an importable module nor a ``.py`` file, notebook or package folder."""


EXPLORATION_TAGS = {"exploration", "skip-grading"}


def notebook_source(path: Path) -> str:
    """The code cells of a Jupyter notebook as one module source, in order. Cells tagged
    ``exploration`` or ``skip-grading`` (cell metadata tags), or whose first line is the comment
    ``# exploration``, are left out, and so are IPython magics and shell lines (``%...``, ``!...``)."""
    import nbformat

    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # nbformat raises NotJSONError, ValidationError, KeyError, ...
        raise ImplementationNotFound(f"--impl={path}: not a readable Jupyter notebook ({type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    chunks = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        lines = cell.source.splitlines()
        first = next((line.strip() for line in lines if line.strip()), "")
        if tags & EXPLORATION_TAGS or first.lower() == "# exploration":
            continue
        code = [line for line in lines if not line.lstrip().startswith(("%", "!"))]
        chunks.append(f"# cell {index}\n" + "\n".join(code))
    return "\n\n".join(chunks) + "\n"


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


def load(target: str) -> ModuleType:
    """Import the target. Errors raised by the target's own code propagate unchanged."""
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
    elif path.suffix == ".py":
        spec = importlib.util.spec_from_file_location(_module_name_for(path), path)
    elif path.suffix == ".ipynb":
        source = notebook_source(path)
        module = ModuleType(_module_name_for(path))
        module.__file__ = str(path)
        sys.modules[module.__name__] = module
        try:
            exec(compile(source, str(path), "exec"), module.__dict__)
        except BaseException:
            del sys.modules[module.__name__]
            raise
        return module
    else:
        raise ImplementationNotFound(
            f"--impl={target}: expected a module name, a .py file, a .ipynb notebook or a package folder"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


class Implementation:
    """The solution under test. ``impl.name`` raises :class:`MissingName` if the solution lacks it,
    which fails only the test that asked for the name."""

    def __init__(self, module: ModuleType, label: str):
        self._module = module
        self._label = label

    @property
    def label(self) -> str:
        return self._label

    def has(self, name: str) -> bool:
        return hasattr(self._module, name)

    def __getattr__(self, name: str):
        # an AttributeError subclass, so that tools probing attributes (getattr with a default)
        # see a plain missing attribute, while a test that uses the name fails with this message
        ACCESSED.add(name)
        try:
            return getattr(self._module, name)
        except AttributeError:
            raise MissingName(f"{name} is not defined in {self._label}") from None

    def __repr__(self) -> str:
        return f"<implementation under test: {self._label}>"


def integrity_snapshot(objects: dict) -> dict[str, int]:
    """The identity of every protected object, to compare before and after importing a solution."""
    return {label: id(value) for label, value in objects.items()}


def integrity_changes(before: dict[str, int], objects: dict) -> list[str]:
    """Labels of the protected objects that are no longer the same objects."""
    after = integrity_snapshot(objects)
    return sorted(label for label in before if after.get(label) != before[label])
