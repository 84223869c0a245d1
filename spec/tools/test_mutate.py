"""The mutation tool knows an exercise selection for every impl module, and each names catalogue IDs."""

from pathlib import Path

from spec.catalogue import load
from spec.tools.mutate import ROOT, TOPIC_OF_MODULE


def test_every_impl_module_has_an_exercise_selection():
    modules = {path.stem for path in Path(ROOT, "impl").glob("*.py")}
    assert modules - set(TOPIC_OF_MODULE) == set(), "impl modules the mutation tool cannot grade"
    for module, selections in TOPIC_OF_MODULE.items():
        for selection in selections:
            assert load().select(selection), f"{module}: {selection} selects no catalogue ID"
