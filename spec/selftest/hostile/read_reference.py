"""Hostile (the reference exfiltrated): looks for the reference solutions wherever a checkout may
lie (the spec's own folder's parent, its .git, other checkouts) and raises their text, hoping the
grade report carries it out."""

import glob
import os
import subprocess

from _nothing import *  # noqa: F403

import spec

root = os.path.dirname(os.path.dirname(spec.__file__))
found = []
for pattern in (f"{root}/impl/*.py", "/work/*/impl/*.py", "/tmp/*/impl/*.py", "/root/**/impl/calculus.py"):
    for path in glob.glob(pattern, recursive=True)[:3]:
        try:
            found.append(open(path).read())
        except OSError:
            continue
try:
    found.append(subprocess.run(["git", "-C", root, "show", "HEAD:impl/calculus.py"], capture_output=True,
                                text=True, timeout=20).stdout)
except Exception:
    pass
LEAK = "\n".join(found) or "nothing found"


def trace_square_gradient(A):
    raise ValueError(LEAK[:1900])


def derivative(f, x):
    raise ValueError(LEAK[-1900:])
