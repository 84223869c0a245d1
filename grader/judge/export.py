"""Package the grader for a course platform.

    python -m spec.export gradescope --sheet ex08 OUT.zip [--budget SECONDS] [--timeout SECONDS]

writes a Gradescope autograder zip (https://gradescope-autograders.readthedocs.io/en/latest/specs/):

* ``setup.sh`` (run once when Gradescope builds the image): a virtual environment in
  ``/autograder/venv`` with the pinned CPU build of torch (the version in constraints.txt, from
  PyTorch's CPU index) and the project's requirements (its dependencies and test extra, listed in
  ``project/requirements.txt``, under constraints.txt), and bubblewrap where apt has it; then it
  computes the spec's own runs of the graded sheets into ``/autograder/spec-runs`` (``python -m
  spec.runs build``, spec/runs.py), so that no grade in the container computes them;
* ``run_autograder`` (run per submission): grades ``/autograder/submission`` into
  ``/autograder/results/results.json`` with ``python -m grader.judge.gradescope run``, reading the spec's
  runs from ``/autograder/spec-runs`` (``$SPEC_RUNS_CACHE``). ``AUTOGRADER_ROOT``
  replaces ``/autograder`` and ``AUTOGRADER_PYTHON`` the interpreter, so that it can be tried outside
  Gradescope;
* ``project/``: the spec (conftest.py, pyproject.toml, constraints.txt, spec/) WITHOUT the reference
  solutions: ``impl/`` is an empty folder, so no submission can import the reference whether or not
  the container allows bubblewrap. The grader runs from this source tree (its pytest plugin is the
  root conftest.py), not from an installed package.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
import zipfile
from pathlib import Path

from spec.catalogue import load

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("conftest.py", "pyproject.toml", "constraints.txt")
#: never shipped: caches, and every folder of tests of the spec and the grader (spec/selftest holds correct
#: solution notebooks, wrong solutions and hostile cases; spec/tools and spec/bench are not the spec)
SKIPPED = ("__pycache__", ".pytest_cache", ".hypothesis", ".benchmarks", "tests", "selftest", "tools", "bench")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root with network access, when it builds the autograder image.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PROJECT="$ROOT/source/project"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q python3 python3-venv python3-pip
apt-get install -y -q bubblewrap || echo "setup.sh: no bubblewrap; the grade runs in its own process group only"
PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" > /dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        PYTHON="$candidate"
        break
    fi
done
if [ -z "$PYTHON" ]; then
    echo "setup.sh: the grader needs Python >= 3.11; choose an Ubuntu 24.04 base image" >&2
    exit 1
fi
"$PYTHON" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install -q --upgrade pip
# the CPU build of the pinned torch (PyPI's default build for Linux pulls CUDA, gigabytes of it)
TORCH="$(grep -E '^torch==' "$PROJECT/constraints.txt" | cut -d' ' -f1)"
"$ROOT/venv/bin/python" -m pip install -q --index-url https://download.pytorch.org/whl/cpu "$TORCH"
"$ROOT/venv/bin/python" -m pip install -q -c "$PROJECT/constraints.txt" -r "$PROJECT/requirements.txt"
"$ROOT/venv/bin/python" -c "import torch; print('setup.sh: torch', torch.__version__)"
"""

#: the last step of setup.sh: the spec's own runs of the graded sheets, computed once for every grade
BUILD_RUNS = """# the spec's own runs (the references empirical claims are judged against), computed once here
# so that no grade computes them (spec/runs.py: keyed by the spec's files and the libraries' versions)
cd "$PROJECT"
SPEC_RUNS_CACHE="$ROOT/spec-runs" OMP_NUM_THREADS=1 "$ROOT/venv/bin/python" -m spec.runs build {sheets} \\
    || echo "setup.sh: the spec's runs were not built ahead; each grade computes those it needs"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: it grades $ROOT/submission into $ROOT/results/results.json.
# AUTOGRADER_ROOT (default /autograder) and AUTOGRADER_PYTHON (default the venv setup.sh made) let it
# run elsewhere, e.g. in a test.
set -u
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
cd "$ROOT/source/project" || exit 1
export HYPOTHESIS_PROFILE=ci MPLBACKEND=Agg PYTHONHASHSEED=0 OMP_NUM_THREADS=1
export SPEC_RUNS_CACHE="$ROOT/spec-runs"   # the spec's own runs, built by setup.sh
exec "$PYTHON" -m grader.judge.gradescope run --root "$ROOT" {arguments}
"""


def requirements() -> list[str]:
    """The project's dependencies and its test extra (what the spec needs to run), from pyproject."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["test"]]


def _project_files():
    for name in PROJECT_FILES:
        yield ROOT / name
    for path in [*sorted((ROOT / "spec").rglob("*")), *sorted((ROOT / "grader").rglob("*"))]:
        if path.is_file() and not any(part in SKIPPED for part in path.relative_to(ROOT).parts) \
                and path.suffix != ".pyc":
            yield path


def _add(archive: zipfile.ZipFile, name: str, text: str | bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


def gradescope_zip(out, *, selection, timeout: float = 60, budget: float = 480,
                   notebook_budget: float | None = None) -> Path:
    """Write the autograder zip for the exercises in ``selection`` (a sheet, parts or IDs). The
    default budget, 8 minutes, stays under Gradescope's default limit of 10 minutes a submission."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    arguments = [*(f"--exercise {s}" for s in selection), f"--timeout {timeout:g}", f"--budget {budget:g}"]
    if notebook_budget is not None:
        arguments.append(f"--notebook-budget {notebook_budget:g}")
    with zipfile.ZipFile(out, "w") as archive:
        sheets = " ".join(f"--sheet {s}" for s in selection)
        _add(archive, "setup.sh", SETUP_SH + BUILD_RUNS.format(sheets=sheets), executable=True)
        _add(archive, "run_autograder", RUN_AUTOGRADER.format(arguments=" ".join(arguments)), executable=True)
        for path in _project_files():
            _add(archive, f"project/{path.relative_to(ROOT).as_posix()}", path.read_bytes())
        _add(archive, "project/requirements.txt", "\n".join(requirements()) + "\n")
        # an empty impl/: the sandbox hides the reference behind a mount on this folder, which must exist
        _add(archive, "project/impl/README", "The reference solutions are not shipped with the autograder.\n")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spec.export", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="platform", required=True)
    gradescope = commands.add_parser("gradescope", help="a Gradescope autograder zip")
    gradescope.add_argument("out", help="the zip to write")
    gradescope.add_argument("--sheet", action="append", default=[], required=True, metavar="ID",
                            help="the sheet (or part, or exercise ID) the assignment grades; repeatable")
    gradescope.add_argument("--timeout", type=float, default=60,
                            help="CPU seconds of the submission per test (default 60)")
    gradescope.add_argument("--budget", type=float, default=480, help="seconds per submission (default 480)")
    gradescope.add_argument("--notebook-budget", type=float, default=None, help="seconds for a notebook's cells")
    args = parser.parse_args(argv)
    catalogue = load()
    for pattern in args.sheet:
        if not catalogue.select(pattern):
            parser.error(f"--sheet {pattern}: no catalogue ID is or starts with it")
    path = gradescope_zip(args.out, selection=tuple(args.sheet), timeout=args.timeout, budget=args.budget,
                          notebook_budget=args.notebook_budget)
    with zipfile.ZipFile(path) as archive:
        count = len(archive.namelist())
    print(f"{path}: {count} files; upload it as the assignment's autograder (Ubuntu 24.04 base image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
