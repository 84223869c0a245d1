"""The interface as data (spec/interface.json) and the notebook templates built from it."""

from __future__ import annotations

import ast

import pytest

from spec.catalogue import load
from spec.interface import names_by_exercise, sheet_names, template


@pytest.mark.parametrize("sheet", list(load().sheets))
def test_template_defines_every_name_its_sheet_needs(sheet):
    import impl

    notebook = template(sheet, impl)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    defined = set()
    for source in code:
        tree = ast.parse(source)   # every cell is valid Python
        defined |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        defined |= {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
    needed = {name for e in load().of_sheet(sheet) if not e.fully_manual
              for name in names_by_exercise().get(e.id, [])}
    assert needed and needed <= defined, f"missing from the {sheet} template: {sorted(needed - defined)}"
    given = [name for name in sheet_names() if name in needed]
    for name in given:
        assert any(f"# {name}: given by the sheet" in source for source in code), f"{name} not marked as the sheet's"
    manual = [e for e in load().of_sheet(sheet) if e.manual_points]
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert all(e.manual in text for e in manual), "every question graded by hand is in the template"
