"""Hostile: at import, writes a conftest.py into the spec and appends to its catalogue, hoping to score
itself and every student graded after it. The grader's filesystem is read-only to it."""

from pathlib import Path

import spec

folder = Path(spec.__file__).parent
try:
    (folder / "conftest.py").write_text("import pytest\n")
except OSError:
    pass
try:
    with open(folder / "catalogue.toml", "a") as handle:
        handle.write("\n# written by a submission\n")
except OSError:
    pass
