"""Hostile (an exercise's later tests skipped): skip_by_robustness.py's wrong default, hidden behind a
robustness check that ends the worker (os._exit) instead of raising."""

import os

os.environ["SKIP_BY"] = "exit"

from skip_by_robustness import *  # noqa: F403
