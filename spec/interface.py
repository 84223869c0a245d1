"""The interface a solution implements, as data, and a notebook template per sheet built from it.

    python -m spec.interface template SHEET [--out FILE.ipynb]

``spec/interface.json`` (written by ``pytest --interface-doc``) lists, per exercise, the names the
spec's tests use. A template is what a course hands its students: for each exercise of the sheet that
is graded automatically, the names to define with their signatures and contracts (the reference's
docstrings) and a body to fill in; the small result containers (dataclasses, named tuples) the
contracts return are given whole. Names the sheet or its course template gives are marked as such.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import sys
import tomllib
from pathlib import Path

INTERFACE_JSON = Path(__file__).with_name("interface.json")
SHEET_NAMES = Path(__file__).with_name("catalogue.toml")


def sheet_names() -> dict[str, str]:
    """{name: where the sheet or its course template gives it} (catalogue.toml, [sheet_names])."""
    return dict(tomllib.loads(SHEET_NAMES.read_text(encoding="utf-8")).get("sheet_names", {}))


def names_by_exercise() -> dict[str, list[str]]:
    return json.loads(INTERFACE_JSON.read_text(encoding="utf-8"))


def _signature(name: str, obj) -> str:
    if not callable(obj):
        return f"{name} (a value)"
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def describe_names(module, names) -> dict[str, dict]:
    given = sheet_names()
    described = {}
    for name in names:
        obj = getattr(module, name, None)
        doc = (inspect.getdoc(obj) or "").split("\n")[0] if callable(obj) else ""
        described[name] = {"signature": _signature(name, obj), "doc": doc, "from_sheet": name in given}
    return described


def _is_container(obj) -> bool:
    return inspect.isclass(obj) and (dataclasses.is_dataclass(obj) or
                                     (issubclass(obj, tuple) and hasattr(obj, "_fields")))


def _base_name(base) -> str:
    """How a template names a base class: nn.Module as the template's imports spell it, other torch
    classes by their full path, the rest by their name."""
    import torch

    if base is torch.nn.Module:
        return "nn.Module"
    return f"{base.__module__}.{base.__qualname__}" if base.__module__.startswith("torch") else base.__name__


def _stub(name: str, obj) -> str:
    """A definition to fill in: the signature, the contract, and NotImplementedError."""
    if _is_container(obj):
        return inspect.getsource(obj)
    if not callable(obj):
        return f"{name} = ...  # {type(obj).__name__}: fill in"
    doc = inspect.getdoc(obj) or ""
    quoted = '    """' + doc.replace("\n", "\n    ") + '\n    """\n' if doc else ""
    if inspect.isclass(obj):
        bases = ", ".join(_base_name(b) for b in obj.__bases__ if b is not object)
        lines = [f"class {name}({bases}):" if bases else f"class {name}:", quoted.rstrip("\n") or "    pass"]
        for method, function in vars(obj).items():
            if inspect.isfunction(function) and (not method.startswith("_") or method in ("__init__", "__call__")):
                signature = str(inspect.signature(function))
                body = inspect.cleandoc(function.__doc__) if function.__doc__ else ""   # its own, not nn.Module's
                lines += ["", f"    def {method}{signature}:"]
                if body:
                    lines.append('        """' + body.replace("\n", "\n        ") + '"""')
                lines.append("        raise NotImplementedError")
        return "\n".join(lines) + "\n"
    return f"def {name}{inspect.signature(obj)}:\n{quoted}    raise NotImplementedError\n"


def template(sheet: str, module) -> dict:
    """The notebook (nbformat dict) a student fills in for ``sheet``."""
    import nbformat

    from spec.catalogue import load

    catalogue = load()
    used = names_by_exercise()
    given = sheet_names()
    cells = [nbformat.v4.new_markdown_cell(
        f"# {sheet}: {catalogue.sheets[sheet]}\n\nFill in the definitions below (keep their names and "
        "signatures: the grader calls them). Script cells, prints and plots of your own are welcome "
        "anywhere. Answers graded by hand go in markdown cells."),
        nbformat.v4.new_code_cell("import math\nfrom dataclasses import dataclass, field\nfrom typing import NamedTuple"
                                  "\n\nimport numpy as np\nimport torch\nfrom torch import nn")]
    done: set[str] = set()
    for exercise in catalogue.of_sheet(sheet):
        text = f"## {exercise.id}: {exercise.title}"
        if exercise.manual_points:
            text += f"\n\n**By hand ({exercise.manual_points:g} points):** {exercise.manual}"
        cells.append(nbformat.v4.new_markdown_cell(text))
        if exercise.fully_manual:
            continue
        names = [n for n in used.get(exercise.id, []) if n not in done]
        objects = {n: getattr(module, n, None) for n in names}
        for name, obj in list(objects.items()):   # the classes their signatures name, from their own modules
            scope = vars(inspect.getmodule(obj)) if inspect.getmodule(obj) else {}
            for other in re.findall(r"\b[A-Z]\w+", _signature(name, obj)):
                if other not in objects and other not in done and inspect.isclass(scope.get(other)) \
                        and scope[other].__module__.split(".")[0] in ("impl", "spec"):
                    objects = {other: scope[other], **objects}
        for name, obj in objects.items():
            done.add(name)
            header = f"# {name}: given by the sheet ({given[name]})\n" if name in given else ""
            if _is_container(obj):
                header = "# given: a container the definitions below take or return\n"
            cells.append(nbformat.v4.new_code_cell(header + _stub(name, obj)))
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
    import impl

    out = Path(args.out or f"{args.sheet}_template.ipynb")
    nbformat.write(template(args.sheet, impl), str(out))
    print(f"template of {args.sheet} written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
