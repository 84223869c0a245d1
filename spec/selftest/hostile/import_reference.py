"""Hostile: implements nothing and imports the reference solutions instead. The grader hides them."""

from impl import *  # noqa: F403
