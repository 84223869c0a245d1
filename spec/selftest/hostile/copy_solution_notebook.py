"""Hostile (a classmate's or the spec's own solution run as one's own): looks for a correct solution
notebook of ps09 wherever a checkout or a class folder may lie (above the grader's own code, beside
the submission, under /work and /tmp), runs its code cells here and takes its names (through the
notebook's alias file), hoping for the points of a solution it did not write."""

import glob
import json
import os
import sys
import tomllib

from _nothing import *  # noqa: F403

import grader

here = os.path.dirname(os.path.abspath(__file__))
roots = {os.path.dirname(os.path.dirname(grader.__file__)), os.path.dirname(here), here}
patterns = [f"{r}/**/ps09_solution.ipynb" for r in roots] + ["/work/*/spec/selftest/notebooks/ps09/*.ipynb",
                                                             "/tmp/**/ps09_solution.ipynb"]
FOUND = ""
for pattern in patterns:
    for path in glob.glob(pattern, recursive=True)[:2]:
        try:
            cells = json.load(open(path))["cells"]
            folder = os.path.dirname(path)
            sys.path.insert(0, folder)
            for cell in cells:
                if cell["cell_type"] == "code":
                    source = "".join(cell["source"])
                    exec("\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))),
                         globals())
            aliases = tomllib.load(open(os.path.join(folder, "ps09_aliases.toml"), "rb"))
            for theirs, interface in aliases.items():
                globals()[interface] = globals()[theirs]
            FOUND = path
        except Exception:
            continue
        break
    if FOUND:
        break
