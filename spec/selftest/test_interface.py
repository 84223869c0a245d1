"""The interface as data (spec/interface.toml, spec/given.py, spec/interface.json), the notebook
templates written from it, and the contract check (spec/plugins/contracts.py) that keeps the tests to
what it states."""

from __future__ import annotations

import ast
import builtins
import inspect
import re
import types

import pytest
import torch

from grader.sandboxed.implementation import Implementation
from spec.catalogue import load
from spec.interface import Contract, Interface, given_objects, load_interface, names_by_exercise, template
from spec.plugins import contracts

SHEETS = list(load().sheets)


def template_code(sheet) -> list[str]:
    return [cell.source for cell in template(sheet).cells if cell.cell_type == "code"]


def defined_names(sources) -> set[str]:
    defined = set()
    for source in sources:
        tree = ast.parse(source)   # every cell is valid Python
        defined |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        defined |= {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
    return defined


def test_every_name_the_tests_use_is_declared_under_an_exercise_of_the_catalogue():
    interface, catalogue = load_interface(), load()
    used = {name for names in names_by_exercise().values() for name in names}
    assert used and used <= set(interface.names), \
        f"undeclared in spec/interface.toml: {sorted(used - set(interface.names))}"
    for contract in interface.names.values():
        assert contract.exercise in catalogue, f"{contract.name}: unknown exercise {contract.exercise}"
        assert contract.text or contract.value, f"{contract.name}: no contract stated"
        contract.parameters()   # a signature Python can read


@pytest.mark.parametrize("sheet", SHEETS)
def test_template_defines_every_name_its_sheet_needs_in_one_cell_per_exercise(sheet):
    notebook = template(sheet)
    code = template_code(sheet)
    defined = defined_names(code)
    exercises = [e for e in load().of_sheet(sheet) if not e.fully_manual]
    needed = {name for e in exercises for name in names_by_exercise().get(e.id, [])}
    assert needed and needed <= defined, f"missing from the {sheet} template: {sorted(needed - defined)}"
    assert len(code) == 1 + len(exercises), "one code cell of imports, then one per exercise graded automatically"
    cells = notebook.cells
    for exercise in exercises:
        (at,) = [i for i, c in enumerate(cells) if c.source.startswith(f"## {exercise.id}:")]
        assert cells[at + 1].cell_type == "code", f"{exercise.id} has a code cell of its own"
    for name, contract in load_interface().names.items():
        if contract.sheet and name in needed:
            assert any(f"# {name}: a name the sheet gives" in source for source in code), \
                f"{name} not marked as the sheet's"
    manual = [e for e in load().of_sheet(sheet) if e.manual_points]
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert all(e.manual in text for e in manual), "every question graded by hand is in the template"


@pytest.mark.parametrize("sheet", SHEETS)
def test_every_name_a_template_mentions_is_defined_in_it(sheet):
    """A contract that names a class, a container or a constant (HandNet, EpochShuffle,
    MOMENTUM_OPTIONS, XNOR_MARGIN, ...) finds it in the template: none is mentioned and left undefined."""
    code = template_code(sheet)
    defined = defined_names(code)
    known = set(dir(torch)) | set(dir(torch.nn)) | set(dir(builtins)) | {
        "NamedTuple", "Figure", "Axes", "Sampler", "DataLoader", "TensorDataset", "Adam", "SGD", "PyTorch"}
    words = set(re.findall(r"\b(?:[A-Z][a-z0-9]+[A-Z]\w*|[A-Z]{2,}[A-Z0-9]*(?:_[A-Z0-9]+)+)\b", "\n".join(code)))
    undefined = sorted(w for w in words if w not in defined and w not in known)
    assert not undefined, f"the {sheet} template mentions names it never defines: {undefined}"


@pytest.mark.parametrize("sheet", SHEETS)
def test_templates_come_from_the_interface_alone(sheet):
    """No solution leaks into a template: it never mentions the reference, and every function and
    method body is NotImplementedError, except the definitions the course gives whole."""
    given = given_objects()
    for source in template_code(sheet):
        assert "impl" not in re.findall(r"\w+", source)
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef):
                assert isinstance(node.body[-1], ast.Raise), f"{node.name} has a body in the template"
            if isinstance(node, ast.ClassDef) and node.name not in given:
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        assert isinstance(item.body[-1], ast.Raise), f"{node.name}.{item.name} has a body"


def test_the_reference_meets_every_declared_signature():
    """Every declared parameter exists in the reference with the same kind and default (a reference may
    give a default the interface does not declare: the spec never relies on it)."""
    import impl

    for name, contract in load_interface().names.items():
        obj = getattr(impl, name)
        if contract.kind == "value":
            continue
        actual = inspect.signature(obj.__init__ if contract.kind == "class" else obj).parameters
        for parameter in contract.parameters().parameters.values():
            assert parameter.name in actual, f"{name}: the reference has no parameter {parameter.name}"
            theirs = actual[parameter.name]
            assert theirs.kind == parameter.kind, f"{name}({parameter.name}): {theirs.kind} vs {parameter.kind}"
            if parameter.default is not inspect.Parameter.empty:
                assert theirs.default == parameter.default, f"{name}({parameter.name}) default"
        for method in contract.methods:
            assert callable(getattr(obj, method, None)), f"{name}.{method} missing in the reference"


def test_the_given_definitions_are_the_references():
    import importlib

    for module, names in {"impl.handbuilt": ["HandNet"], "impl.initialization": ["LayerStats", "InitResult"],
                          "impl.housing": ["HousingRun"], "impl.moons": ["MoonsHistory"],
                          "impl.backprop": ["ForwardCache", "ManualHistory"],
                          "impl.linear": ["SGDRun", "EpochShuffle", "MOMENTUM_OPTIONS"]}.items():
        for name in names:
            assert getattr(importlib.import_module(module), name) is given_objects()[name], f"{module}.{name}"


# ----------------------------------------------------------------------------- the contract check
class Thing:
    def __init__(self):
        self.declared, self.secret = 1, 2


def _fake_interface() -> Interface:
    return Interface(names={
        "f": Contract("f", "ps09.1-1", "function", "(x, data)", "f", keys=("a",), arguments={"params": ()}),
        "g": Contract("g", "ps09.1-1", "function", "(params)", "g", arguments={"params": ("W{n}",)}),
        "make": Contract("make", "ps09.1-1", "function", "()", "make"),
        "Thing": Contract("Thing", "ps09.1-1", "class", "()", "t", attributes={"declared": "d"}),
    }, exercises={}, conventions={}, given_keys={})


def _fake_implementation():
    module = types.ModuleType("fake_solution")
    module.f = lambda x, data=None: {"a": 1, "b": 2}
    module.g = lambda params: sorted(params)
    module.make = lambda: Thing()
    module.Thing = Thing
    module.h = lambda: 0
    return contracts.CheckedImplementation(Implementation(module, "fake"), _fake_interface())


@pytest.mark.parametrize("case, expected", [
    ("data left to its default", "does not fit its declared signature"),
    ("undeclared key read", "the key 'b' of f()"),
    ("every key read by iteration", "the key 'b' of f()"),
    ("undeclared attribute read", ".secret of a Thing"),
    ("undeclared argument key", "passes g's params the key 'bias'"),
    ("undeclared name", "uses h, which"),
])
def test_the_contract_check_catches_each_kind_of_unstated_contract(case, expected):
    checked = _fake_implementation()
    contracts.UNDECLARED.clear()
    if case == "data left to its default":
        checked.f(1)
    elif case == "undeclared key read":
        assert checked.f(1, None)["b"] == 2
    elif case == "every key read by iteration":
        assert sorted(checked.f(1, None).items()) == [("a", 1), ("b", 2)]
    elif case == "undeclared attribute read":
        assert checked.make().secret == 2
    elif case == "undeclared argument key":
        checked.g({"W1": 0, "bias": 1})
    else:
        checked.h()
    found = [message for message, _ in contracts.UNDECLARED]
    contracts.UNDECLARED.clear()
    assert len(found) == 1 and expected in found[0], found


def test_the_contract_check_lets_every_declared_use_pass():
    checked = _fake_implementation()
    contracts.UNDECLARED.clear()
    assert checked.f(1, data=None)["a"] == 1 and "a" in checked.f(1, None)
    assert checked.make().declared == 1 and isinstance(checked.Thing(), Thing)
    assert checked.g({"W1": 0, "W12": 1}) == ["W1", "W12"]
    found, _ = list(contracts.UNDECLARED), contracts.UNDECLARED.clear()
    assert found == []


@pytest.mark.parametrize("sheet", SHEETS)
def test_every_template_cell_runs(sheet):
    """The template as handed out executes cell by cell (definitions only: their bodies are not run),
    annotations naming a class inside its own body included."""
    namespace: dict = {}
    for source in template_code(sheet):
        exec(compile(source, f"<{sheet} template>", "exec"), namespace)
