"""The interface a solution implements, as data, and a notebook template per sheet built from it.

    python -m spec.interface template SHEET [--out FILE.ipynb]

Stated once, in two files the course owns:

* ``spec/interface.toml``: per name of the interface, the exercise whose cell holds it, its signature,
  its contract (what it takes and returns: keys, orders, shapes, layouts, conventions), the attributes
  and methods the spec uses of its objects, and the keys of the dicts the spec passes it or reads of
  what it returns; per exercise, how it is judged where its cell defines no name of its own;
* ``spec/given.py``: what the course hands out whole (the result containers, ps09's sampler and
  multiple-choice options), with ``Split`` of spec/data.py.

The templates are written from these alone (never from a solution), one code cell per exercise graded
automatically; ``spec/interface.json`` (written by ``pytest --interface-doc``) lists which names each
exercise's tests use. ``pytest --check-contracts`` (spec/plugins/contracts.py) fails a test that
relies on anything these files do not state.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import json
import re
import sys
import tomllib
from pathlib import Path

INTERFACE_JSON = Path(__file__).with_name("interface.json")
INTERFACE_TOML = Path(__file__).with_name("interface.toml")
KINDS = ("function", "class", "value")


@dataclasses.dataclass(frozen=True)
class Method:
    signature: str
    text: str = ""


@dataclasses.dataclass(frozen=True)
class Contract:
    """One name of the interface, as spec/interface.toml states it."""

    name: str
    exercise: str
    kind: str
    signature: str = ""
    text: str = ""
    sheet: str | None = None                        # where the sheet (or its course template) gives the name
    bases: tuple[str, ...] = ()                     # of a class, as the template spells them
    methods: dict[str, Method] = dataclasses.field(default_factory=dict)
    attributes: dict[str, str] = dataclasses.field(default_factory=dict)   # of its objects, read by the spec
    keys: tuple = ()                                # of the dict it returns (or of each dict in a list)
    arguments: dict[str, tuple] = dataclasses.field(default_factory=dict)  # parameter -> keys of a dict passed
    value: str = ""                                 # a value's type and layout, as the template states it

    def parameters(self) -> inspect.Signature:
        """The declared signature (of the constructor, for a class), annotations kept as text."""
        return _parse_signature(self.signature)

    def members(self) -> set[str]:
        return set(self.methods) | set(self.attributes)

    @staticmethod
    def declares_key(key, declared) -> bool:
        return declares_key(key, declared)


@functools.cache
def _parse_signature(signature: str) -> inspect.Signature:
    head = signature.split(" -> ")[0] if signature.startswith("(") else "(*args, **kwargs)"
    import torch

    namespace: dict = {"torch": torch}
    exec(compile(f"from __future__ import annotations\ndef _declared{head}: pass\n", "<interface.toml>", "exec"),
         namespace)
    return inspect.signature(namespace["_declared"])


def declares_key(key, declared) -> bool:
    """Whether ``key`` is one of ``declared``: a literal key, or a pattern where ``{n}`` stands for a
    positive integer (``"W{n}"``), ``{int}`` for any int key and ``{float}`` for any number."""
    for entry in declared:
        if isinstance(entry, str) and "{" in entry:
            if (entry == "{int}" and type(key) is int) or (entry == "{float}" and type(key) in (int, float)):
                return True
            if isinstance(key, str) and re.fullmatch(re.escape(entry).replace(r"\{n\}", "[1-9][0-9]*"), key):
                return True
        elif (type(entry) is type(key) and entry == key) or (type(key) is float and entry == key):
            return True
    return False


@dataclasses.dataclass(frozen=True)
class Interface:
    names: dict[str, Contract]
    exercises: dict[str, str]                 # exercise ID -> how it is judged, where its cell adds no name
    conventions: dict[str, str]               # sheet -> what holds for every name of the sheet
    given_keys: dict[str, dict[str, tuple]]   # given container -> field -> keys of the dict it holds

    def members(self, class_name: str) -> set[str]:
        contract = self.names.get(class_name)
        return contract.members() if contract is not None else set()

    def field_keys(self, class_name: str, field: str) -> tuple:
        return self.given_keys.get(class_name, {}).get(field, ())

    def declares_key(self, key, declared) -> bool:
        return declares_key(key, declared)

    def of_exercise(self, exercise_id: str) -> list[Contract]:
        return [c for c in self.names.values() if c.exercise == exercise_id]


def _contract(name: str, entry: dict) -> Contract:
    unknown = set(entry) - {f.name for f in dataclasses.fields(Contract)}
    if unknown:
        raise ValueError(f"interface.toml, [names.{name}]: unknown fields {sorted(unknown)}")
    if entry.get("kind") not in KINDS:
        raise ValueError(f"interface.toml, [names.{name}]: kind must be one of {KINDS}")
    methods = {m: Method(**(v if isinstance(v, dict) else {"signature": v}))
               for m, v in entry.get("methods", {}).items()}
    return Contract(name=name, **{**entry, "methods": methods, "bases": tuple(entry.get("bases", ())),
                                  "keys": tuple(entry.get("keys", ())),
                                  "arguments": {k: tuple(v) for k, v in entry.get("arguments", {}).items()}})


@functools.lru_cache(maxsize=1)
def load_interface(path: Path = INTERFACE_TOML) -> Interface:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return Interface(names={name: _contract(name, entry) for name, entry in data.get("names", {}).items()},
                     exercises={k: v["judged"] for k, v in data.get("exercises", {}).items()},
                     conventions={k: v for k, v in data.get("conventions", {}).items()},
                     given_keys={k: {f: tuple(v) for f, v in fields.items()}
                                 for k, fields in data.get("given_keys", {}).items()})


def names_by_exercise() -> dict[str, list[str]]:
    return json.loads(INTERFACE_JSON.read_text(encoding="utf-8"))


def given_objects() -> dict[str, object]:
    """What the templates give whole: spec/given.py's public definitions and spec/data.py's Split."""
    from spec import data, given

    objects = {name: obj for name, obj in vars(given).items()
               if not name.startswith("_") and getattr(obj, "__module__", given.__name__) == given.__name__
               and (inspect.isclass(obj) or name.isupper())}
    return {"Split": data.Split, **objects}


def given_source(name: str, obj) -> str:
    if inspect.isclass(obj):
        source = inspect.getsource(obj)
        return source if not dataclasses.is_dataclass(obj) else _with_decorator(obj, source)
    from spec import given

    text = inspect.getsource(given)
    match = re.search(rf"(?ms)^((?:#:.*\n)*){name} = .*?\n}}\n", text)
    return match.group(0) if match else f"{name} = {obj!r}\n"


def _with_decorator(obj, source: str) -> str:
    return source if source.lstrip().startswith("@") else f"@dataclass\n{source}"


# --------------------------------------------------------------------------------- the template
def _docstring(text: str, indent: str) -> str:
    text = inspect.cleandoc(text).replace('"""', "'''")
    lines = text.split("\n")
    body = f"\n{indent}".join(lines)
    return f'{indent}"""{body}\n{indent}"""' if len(lines) > 1 else f'{indent}"""{body}"""'


def stub(contract: Contract) -> str:
    """A definition to fill in: the declared signature, the contract, and NotImplementedError."""
    header = f"# {contract.name}: a name the sheet gives ({contract.sheet})\n" if contract.sheet else ""
    if contract.kind == "value":
        return header + f"{contract.name} = ...  # {contract.value}\n" + \
            "".join(f"# {line}\n" for line in inspect.cleandoc(contract.text).split("\n") if contract.text)
    if contract.kind == "function":
        return header + f"def {contract.name}{contract.signature}:\n{_docstring(contract.text, '    ')}\n" \
                        "    raise NotImplementedError\n"
    bases = ", ".join(contract.bases)
    lines = [f"class {contract.name}({bases}):" if bases else f"class {contract.name}:",
             _docstring(contract.text + _attributes(contract), "    "), "",
             f"    def __init__(self{_after_self(contract.signature)}:",
             "        raise NotImplementedError"]
    for method, declared in contract.methods.items():
        # the class's own name is not bound yet in its body: an annotation naming it is a string
        signature = re.sub(rf"\b{contract.name}\b", f"'{contract.name}'", declared.signature)
        lines += ["", f"    def {method}(self{_after_self(signature)}:"]
        if declared.text:
            lines.append(_docstring(declared.text, "        "))
        lines.append("        raise NotImplementedError")
    return header + "\n".join(lines) + "\n"


def _after_self(signature: str) -> str:
    """'(x, y) -> T' as the rest of a method's signature after self: ', x, y) -> T'."""
    inner = signature[1:]
    return inner if inner.startswith(")") else ", " + inner


def _attributes(contract: Contract) -> str:
    if not contract.attributes:
        return ""
    return "\n\nAttributes the grader reads:\n" + "\n".join(f"    {a}: {t}" for a, t in contract.attributes.items())


def _mentioned(text: str, pool) -> list[str]:
    return [name for name in pool if re.search(rf"\b{re.escape(name)}\b", text)]


def template(sheet: str) -> dict:
    """The notebook (nbformat dict) a student fills in for ``sheet``: written from spec/interface.toml
    and spec/given.py alone."""
    import nbformat

    from spec.catalogue import load

    catalogue, interface, given = load(), load_interface(), given_objects()
    intro = (f"# {sheet}: {catalogue.sheets[sheet]}\n\nFill in the definitions below: keep their names and "
             "signatures (the grader calls them), and return exactly what each contract says (keys, orders, "
             "shapes). Definitions marked *given* are the course's: keep them as they are. Script cells, "
             "prints and plots of your own are welcome anywhere. Answers graded by hand go in markdown cells.")
    if sheet in interface.conventions:
        intro += "\n\n**For every function of this sheet:** " + interface.conventions[sheet]
    cells = [nbformat.v4.new_markdown_cell(intro),
             nbformat.v4.new_code_cell("import math\nfrom dataclasses import dataclass, field\nfrom typing import "
                                       "NamedTuple\n\nimport numpy as np\nimport torch\nfrom torch import nn")]
    done: set[str] = set()
    for exercise in catalogue.of_sheet(sheet):
        text = f"## {exercise.id}: {exercise.title}"
        if exercise.manual_points:
            text += f"\n\n**By hand ({exercise.manual_points:g} points):** {exercise.manual}"
        cells.append(nbformat.v4.new_markdown_cell(text))
        if exercise.fully_manual:
            continue
        own = sorted((c for c in interface.of_exercise(exercise.id) if c.name not in done),
                     key=lambda c: c.name not in given)   # what the course gives first
        parts = []
        words = " ".join(c.signature + " " + c.text + " " + " ".join(m.signature + m.text for m in c.methods.values())
                         + " " + c.value for c in own) + " " + interface.exercises.get(exercise.id, "")
        for name in _mentioned(words, given):
            if name not in done and name not in {c.name for c in own}:
                done.add(name)
                parts.append("# given by the course: keep as it is\n" + given_source(name, given[name]))
        for contract in own:
            done.add(contract.name)
            parts.append("# given by the course: keep as it is\n" + given_source(contract.name, given[contract.name])
                         if contract.name in given else stub(contract))
        if exercise.id in interface.exercises:
            note = inspect.cleandoc(interface.exercises[exercise.id])
            parts.insert(0, "".join(f"# {line}\n" if line else "#\n" for line in note.split("\n")))
        if not parts:
            raise ValueError(f"{exercise.id}: no name of its own and no [exercises] entry saying how it is judged")
        cells.append(nbformat.v4.new_code_cell("\n\n\n".join(p.rstrip("\n") for p in parts)))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    return notebook


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spec.interface", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("template", help="write the notebook template of one sheet")
    make.add_argument("sheet")
    make.add_argument("--out", default=None, help="the .ipynb to write (default: <sheet>_template.ipynb)")
    args = parser.parse_args(argv)
    import nbformat

    from spec.catalogue import load

    if args.sheet not in load().sheets:
        parser.error(f"unknown sheet {args.sheet!r}; known: {', '.join(load().sheets)}")
    out = Path(args.out or f"{args.sheet}_template.ipynb")
    nbformat.write(template(args.sheet), str(out))
    print(f"template of {args.sheet} written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
