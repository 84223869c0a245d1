"""The spec's pytest plugin, one module per job; the project's conftest.py loads them."""
