"""Argument checks shared by the reference solutions: bad input gets a clear error naming the
argument and what was expected, never a silent wrong answer or a deep torch traceback."""

from __future__ import annotations

import numbers

import numpy as np
import torch


def as_float_tensor(value, name: str, *, default_dtype=torch.float64) -> torch.Tensor:
    """``value`` as a floating-point tensor (a copy that does not share autograd history).

    Python and numpy real numbers and arrays become ``default_dtype``; tensors keep their dtype and
    must already be floating point (autograd differentiates only floating-point tensors).
    """
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
        return value.detach().clone()
    if isinstance(value, bool) or isinstance(value, np.bool_):
        raise TypeError(f"{name} must be a real number or a floating-point tensor, got a bool")
    if isinstance(value, numbers.Real):
        return torch.tensor(float(value), dtype=default_dtype)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got a numpy array of dtype {value.dtype}")
        return torch.as_tensor(value, dtype=default_dtype).clone()
    raise TypeError(
        f"{name} must be a real number, a numpy array or a floating-point tensor, "
        f"got {type(value).__name__}"
    )


def require_square_matrix(matrix: torch.Tensor, name: str) -> None:
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square matrix (n x n), got shape {tuple(matrix.shape)}")
