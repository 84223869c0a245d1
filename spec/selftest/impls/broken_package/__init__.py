"""Broken on purpose: a package whose import fails (every exercise that needs it must fail)."""

raise ImportError("this solution imports a module that does not exist")
