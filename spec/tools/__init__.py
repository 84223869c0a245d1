"""Tests of the project's own tools (the solutions report), which verify no exercise."""
