"""The call a failed test made, written as code a student can paste into a notebook cell.

Every call of the implementation's functions a test makes is noted (grader/sandboxed/implementation.py
in-process, grader/judge/remote.py in isolated mode); when the test fails, its report shows the last
one: ``trace_square_gradient(torch.tensor([[0.5, -1.25], [2.0, 0.0]], dtype=torch.float64))``. Small
tensors and arrays are written out in full, larger ones as what they are (dtype and shape), and the
objects of the submission as themselves (``<your MoonsNet>``).
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

#: the largest tensor or array written out number by number
SMALL = 24


def literal(value, depth: int = 0) -> str:
    """``value`` as Python source where that is short and exact, else a description in angle brackets."""
    if depth > 3:
        return "..."
    if isinstance(value, torch.Tensor):
        value = value.detach()
        dtype = str(value.dtype).removeprefix("torch.")
        if value.numel() <= SMALL and value.device.type == "cpu":
            data = value.tolist()
            grad = ", requires_grad=True" if value.requires_grad else ""
            return f"torch.tensor({data!r}, dtype=torch.{dtype}{grad})"
        return f"<a {dtype} tensor of shape {tuple(value.shape)}>"
    if isinstance(value, np.ndarray):
        if value.size <= SMALL:
            return f"np.array({value.tolist()!r}, dtype=np.{value.dtype})"
        return f"<a {value.dtype} array of shape {value.shape}>"
    if value is None or isinstance(value, (bool, int, float, str, complex)):
        return repr(value)
    if isinstance(value, (np.integer, np.floating)):
        return repr(value.item())
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k, depth + 1)}: {literal(v, depth + 1)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        items = [literal(v, depth + 1) for v in value[:12]] + (["..."] if len(value) > 12 else [])
        return ("[" + ", ".join(items) + "]") if isinstance(value, list) else \
            ("(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")")
    if isinstance(value, torch.nn.Module) and type(value).__module__.startswith("torch."):
        return f"<torch's {type(value).__name__}: {value!r}>".replace("\n", " ")
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return f"<the grader's function {value.__qualname__}>"
    if type(value).__name__ == "Handle":   # an object that stays in the submission's process
        kind = str(object.__getattribute__(value, "_type")).rsplit(".", 1)[-1]
        return f"<your {kind}>"
    return f"<your {type(value).__name__}>"


def as_code(name: str, args=(), kwargs=None) -> str:
    """``name(args..., key=value...)`` with every argument as :func:`literal` writes it."""
    parts = [literal(a) for a in args] + [f"{k}={literal(v)}" for k, v in (kwargs or {}).items()]
    return f"{name}({', '.join(parts)})"
