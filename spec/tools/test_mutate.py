"""The mutation tool: an exercise selection for every impl module (each naming catalogue IDs), mutant
copies that never reach the original package, seeded samples, and (slow) a whole run that kills a wrong
mutant and spares an equivalent one."""

import re
from pathlib import Path

import pytest

from spec.catalogue import load
from spec.tools.mutate import ROOT, TOPIC_OF_MODULE, mutants_of, run_mutants, write_package


def test_every_impl_module_has_an_exercise_selection():
    modules = {path.stem for path in Path(ROOT, "impl").glob("*.py")}
    assert modules - set(TOPIC_OF_MODULE) == set(), "impl modules the mutation tool cannot grade"
    for module, selections in TOPIC_OF_MODULE.items():
        for selection in selections:
            assert load().select(selection), f"{module}: {selection} selects no catalogue ID"


def test_a_mutant_copy_never_imports_the_original_package(tmp_path):
    package = write_package(tmp_path, {"calculus.py": "from impl._checks import as_float_tensor\nX = 1\n"})
    assert (package / "calculus.py").read_text(encoding="utf-8").startswith("from impl_mutant._checks import")
    for path in package.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import)\s+impl(\s|\.)", text, re.MULTILINE), path.name
    assert {p.name for p in package.glob("*.py")} == {p.name for p in Path(ROOT, "impl").glob("*.py")}


def test_a_sample_is_seeded_and_in_source_order():
    module = Path(ROOT, "impl", "calculus.py")
    first, again = mutants_of(module, sample=5, seed=3), mutants_of(module, sample=5, seed=3)
    assert [str(m) for m in first] == [str(m) for m in again]
    assert [m.line for m in first] == sorted(m.line for m in first)
    assert len({str(m) for m in mutants_of(module)}) > 5


@pytest.mark.slow
def test_the_tool_kills_a_wrong_sigmoid_and_spares_an_equivalent_one():
    # exp(+x) on the positive branch is wrong everywhere but 0; x > 0 for x >= 0 moves 0 to the
    # other branch, whose value (1/2) and derivative (1/4) there are the same: an equivalent mutant
    wrong = "drop unary minus", "torch.exp(+torch.where(positive, x, zero))"
    equivalent = "GtE -> Gt", "positive = x > 0"
    lines = []
    results = run_mutants([Path(ROOT, "impl", "calculus.py")], topics={"calculus": ("ps09.1-2",)}, jobs=2,
                          choose=lambda m: any(m.description == change and text in m.source
                                               for change, text in (wrong, equivalent)), out=lines.append)
    killed, count, survivors = results["calculus.py"]
    assert (killed, count) == (1, 2), lines
    assert len(survivors) == 1 and survivors[0].endswith("GtE -> Gt"), lines
    assert any(line.lstrip().startswith("killed calculus.py:") and "drop unary minus" in line for line in lines)
