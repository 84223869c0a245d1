"""Every test under spec/bench is a benchmark: marked so, and deselected from the default run."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "spec/bench/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.benchmark)
