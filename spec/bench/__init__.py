"""pytest-benchmark timings (``tox -e bench``); never part of the default run."""
