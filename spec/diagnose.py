"""The likely mistake behind a failed comparison, named as a hint ("looks like ..."), never as a verdict.

When ``assert_close`` finds ``got`` far from ``expected``, it asks :func:`diagnose` which known mistake
would have produced ``got``: a catalogue of generic slips (the transpose, the sign, a constant factor
such as N or 2, float32 precision) and the slips a test declares beside its claim (sigma (1 + sigma)
for sigma (1 - sigma), the iterate one step late, a kernel not flipped). A slip is named only when it
reproduces ``got`` within the comparison's own tolerance while the expected value does not, and only
when exactly one explanation fits (a wrong hint is worse than none).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from spec.tolerances import TOLERANCES, Tolerance

#: the generic slips: (the mistake as a student reads it, what it does to the expected value)
FACTORS = {2.0: "twice the expected value (a factor 2 too many: a derivative of x^2 written 2x twice, or "
                "gradients accumulated over two passes?)",
           0.5: "half the expected value (a factor 2 missing?)"}


def _fits(got: np.ndarray, candidate: np.ndarray, expected: np.ndarray, tol: Tolerance) -> bool:
    """``candidate`` reproduces ``got`` and is itself told apart from ``expected``."""
    if candidate.shape != got.shape or not np.isfinite(candidate).all():
        return False
    differs = candidate.shape != expected.shape or not np.allclose(expected, candidate, rtol=tol.rtol, atol=tol.atol)
    return bool(differs and np.allclose(got, candidate, rtol=tol.rtol, atol=tol.atol))


def candidates(expected: np.ndarray, *, count: int | None = None) -> dict[str, np.ndarray]:
    """The generic slips' values for ``expected``; ``count``: the number of samples a mean runs over."""
    found = {"the sign flipped (a minus sign lost or added?)": -expected}
    if expected.ndim == 1 and expected.size > 1:
        found["the expected values in reverse order (listed from the other end?)"] = expected[::-1]
    if expected.ndim == 2:
        found["the transpose of the expected matrix (A where A.T is meant, or the other way round?)"] = expected.T
    if expected.ndim >= 3:
        found["the expected value with its last two axes swapped (a transposed weight matrix?)"] = \
            np.swapaxes(expected, -1, -2)
    for factor, says in FACTORS.items():
        found[says] = factor * expected
    if count and count > 2:
        found[f"{count} times the expected value (a sum over the {count} samples where the mean is asked?)"] = \
            count * expected
        found[f"the expected value divided by {count} (a mean over the {count} samples where the sum is "
              "asked?)"] = expected / count
    return found


def diagnose(got, expected, tol: Tolerance, *, slips: Mapping[str, object] | None = None,
             count: int | None = None) -> str | None:
    """The one known mistake that explains ``got``, as a phrase ("looks like ..."), or None."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    swapped = expected.shape[:-2] + expected.shape[:-3:-1] if expected.ndim >= 2 else None
    if got.shape != expected.shape and got.shape != swapped:
        return None
    if not np.isfinite(got).all() or not np.isfinite(expected).all():
        return None
    declared = {}
    for says, value in (slips or {}).items():
        try:
            declared[says] = np.asarray(value, dtype=np.float64).reshape(expected.shape) \
                if np.size(value) == expected.size else np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            continue
    fitting = [says for says, value in {**declared, **candidates(expected, count=count)}.items()
               if _fits(got, value, expected, tol)]
    single = TOLERANCES[torch.float32]
    if not fitting and tol.rtol < single.rtol and got.shape == expected.shape and \
            np.allclose(got, expected, rtol=single.rtol, atol=single.atol):
        fitting = ["the expected value to float32's precision only (computed in float32 somewhere: a "
                   "float32 tensor or constant on the way?)"]
    return fitting[0] if len(fitting) == 1 else None
