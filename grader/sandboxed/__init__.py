"""Runs inside the sandbox, with the submission: nothing here decides a verdict."""
