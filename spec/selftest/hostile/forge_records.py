"""Hostile (forged verdicts): looks for the records file the grader reads (in its own argv and every
process's command line) and appends a "passed" result for every test, then ends its process."""

import glob
import json
import os

from _nothing import *  # noqa: F403

paths = set()
for cmdline in glob.glob("/proc/*/cmdline"):
    try:
        with open(cmdline, "rb") as handle:
            words = handle.read().decode(errors="replace").split("\0")
    except OSError:
        continue
    paths.update(w.split("=", 1)[1] for w in words if w.startswith("--records="))
for path in paths:
    try:
        with open(path, encoding="utf-8") as handle:
            ids = [json.loads(line)["nodeid"] for line in handle if '"collected"' in line]
        with open(path, "a", encoding="utf-8") as handle:
            for nodeid in ids:
                handle.write(json.dumps({"event": "result", "nodeid": nodeid, "outcome": "passed", "message": "",
                                         "counted": True, "tier": "points"}) + "\n")
    except OSError:
        continue


def trace_square_gradient(A):
    os._exit(0)
