"""Data sets the solutions default to: generated or bundled, never downloaded at run time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    """Tensors of a train/test split: x float32 (N x D), y int64 class labels (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def two_moons(n_samples: int = 1000, noise: float = 0.15, seed: int = 0, test_size: float = 0.25) -> Split:
    """The two-moons data set (scikit-learn's make_moons) with a fixed noise and seed, split
    train/test with a stratified split of the same seed."""
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split

    if not isinstance(n_samples, int) or n_samples < 8:
        raise ValueError(f"n_samples must be an integer >= 8, got {n_samples!r}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must lie in (0, 1), got {test_size!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    as_x = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)
    as_y = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.int64)
    return Split(as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test))
