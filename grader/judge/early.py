"""A grade's judge as a new interpreter (``python -m grader.judge.early PYTEST_ARGS``): pytest on the
spec, as ``python -m pytest PYTEST_ARGS`` would run it, but with the submission's worker launched first.

The worker's own start (its sandbox, an interpreter, torch) and the submission's load (a notebook's
cells) then run while this process imports torch, pytest's plugins and the spec, about two seconds
earlier than a launch at pytest's configure. The worker's arguments are read here from the same
options the plugin reads (``--impl``, ``--alias``, ``--worker-dir``, ...); at configure the plugin
computes them again (grader/judge/plugin.py) and takes this worker only where they are the same, else
ends it and launches its own: a guess here can cost time, never change what is graded. A class's judges,
forks of a warm process (grader/judge/grade.py ``_fork_judge``), start through :func:`main` too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: the worker launched here, with the arguments it was launched with; taken by the plugin at configure
EARLY: list = []


def guess_arguments(args: list[str]) -> dict | None:
    """The worker's arguments (grader.judge.remote.launch) the options in ``args`` give, or None where
    they name no file or folder to grade or do not ask for isolation."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--isolate", action="store_true")
    parser.add_argument("--impl")
    parser.add_argument("--alias")
    parser.add_argument("--notebook-budget", type=float)
    parser.add_argument("--hide-reference", action="store_true")
    parser.add_argument("--worker-dir")
    parser.add_argument("--worker-call-timeout", type=float)
    parser.add_argument("--worker-cpu-limit", type=float)
    try:
        known, _ = parser.parse_known_args(args)
    except SystemExit:
        return None
    if not known.isolate or not known.impl:
        return None
    path = Path(known.impl).expanduser()
    if not path.exists():
        return None
    return {"target": str(path.resolve()), "alias": str(Path(known.alias).resolve()) if known.alias else None,
            "notebook_budget": known.notebook_budget, "hide_reference": known.hide_reference,
            "scratch": Path(known.worker_dir) if known.worker_dir else None,
            "call_timeout": known.worker_call_timeout, "test_cpu_seconds": known.worker_cpu_limit}


def take(arguments: dict):
    """The early worker if it was launched with ``arguments``, else None (an early worker launched with
    others is ended)."""
    if not EARLY:
        return None
    launched_with, worker = EARLY.pop()
    if launched_with == arguments:
        return worker
    worker.close()
    return None


def main(args: list[str]) -> int:
    arguments = guess_arguments(args)
    if arguments is not None:
        try:
            from grader.judge import remote  # imports neither torch nor numpy (they come with pytest's plugins)

            EARLY.append((arguments, remote.launch(**arguments)))
        except Exception:   # whatever failed fails again at configure, where the plugin reports it
            EARLY.clear()
    import pytest

    try:
        return int(pytest.main(args))
    finally:   # a run that ended before the plugin's configure took the worker (a usage error, a conftest
        take(None)   # that failed): a forked judge exits with os._exit, where no atexit would end it


if __name__ == "__main__":
    # python -m grader.judge.early runs this file as __main__: the plugin must find EARLY in the module
    # it imports by name, so the work is done there
    from grader.judge import early

    sys.exit(early.main(sys.argv[1:]))
