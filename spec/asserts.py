"""Assert helpers whose failures a student can act on without reading the test.

Messages have the form ``got X, but should be Y [what]``; ``__tracebackhide__`` keeps the helper
itself out of the traceback.
"""

from __future__ import annotations

import numpy as np
import torch

from spec.tolerances import Tolerance, tolerance

PLAIN_NUMBERS = (bool, int, float, np.bool_, np.integer, np.floating)


def plain(value):
    """``value`` as plain data the spec can trust: a base-class tensor (a subclass's methods and
    ``__torch_function__`` stripped), a base-class float64 ndarray, a builtin number, or a list of
    these. Anything else (an object whose ``__float__`` or ``__array__`` could compute its answer from
    the caller) is refused with a TypeError naming its type."""
    if isinstance(value, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            return torch.Tensor.as_subclass(value, torch.Tensor).detach().cpu().clone()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"got an array of dtype {value.dtype}, but should be numbers")
        return np.array(value, dtype=np.float64, subok=False)
    if type(value) in PLAIN_NUMBERS or isinstance(value, (np.integer, np.floating, np.bool_)):
        return float(value) if type(value) in (bool, int, float) else float(value.item())
    if type(value) in (list, tuple):
        return [plain(v) for v in value]
    raise TypeError(f"got a {type(value).__module__}.{type(value).__qualname__}, but should be a tensor, "
                    "an array, a number or a list of them")


def _to_numpy(value) -> np.ndarray:
    value = plain(value)
    if isinstance(value, torch.Tensor):
        return torch.Tensor.numpy(value.to(torch.float64) if value.is_floating_point() else value)
    if isinstance(value, list):
        return np.asarray([_to_numpy(v) for v in value], dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


def _short(array: np.ndarray) -> str:
    with np.printoptions(precision=8, threshold=12, edgeitems=3, linewidth=100):
        return np.array2string(array) if array.ndim else repr(float(array))


def _precision_of(value) -> Tolerance | None:
    """The tolerance of a result's own floating-point dtype: a solution that computes in float32 (as
    ``torch.tensor(2.0)`` does) is judged at float32's precision; whether it keeps the caller's dtype
    is a robustness check of its own."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return tolerance(value.dtype)
    if isinstance(value, (np.ndarray, np.floating)) and value.dtype == np.float32:
        return tolerance(torch.float32)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        found = [_precision_of(v) for v in value]
        return max((t for t in found if t is not None), key=lambda t: t.rtol, default=None)
    return None


def _loosest(first: Tolerance, second: Tolerance | None) -> Tolerance:
    return first if second is None else Tolerance(max(first.rtol, second.rtol), max(first.atol, second.atol))


class SpecDefect(Exception):
    """A comparison that could not fail: the spec's own mistake, reported as an error (never as the
    implementation's failure, never as a pass)."""


def assert_close(got, expected, what: str, *, dtype: torch.dtype = torch.float64,
                 tol: Tolerance | None = None, scale: float | str | None = None,
                 slips: dict | None = None, count: int | None = None) -> None:
    """``got`` equals ``expected`` within the tolerance of ``dtype`` (or ``tol``), loosened to the
    precision of ``got``'s own dtype where that is lower, shape included.

    ``scale``: the magnitude the absolute tolerance is relative to (``atol * scale``), for values
    that are legitimately tiny, such as a gradient of (3/4)^L; ``scale="expected"`` takes the largest
    ``|expected|``. A comparison in which every nonzero expected entry and every difference sit under
    the absolute tolerance checks nothing (returning zeros would pass): that raises
    :class:`SpecDefect`, naming the comparison.

    A failure names the likely mistake where exactly one known slip reproduces ``got``
    (spec/diagnose.py): the generic ones, ``slips`` ({the mistake: the value it gives}, declared
    beside the claim) and, with ``count`` (the samples a mean runs over), a sum for a mean."""
    __tracebackhide__ = True
    tol = tol or _loosest(tolerance(dtype), _precision_of(got))
    if isinstance(got, torch.Tensor) and got.requires_grad:
        got = got.detach()
    g, e = _to_numpy(got), _to_numpy(expected)
    if g.shape != e.shape:
        raise AssertionError(_hint(g, e, tol, slips, count) + f"got shape {g.shape}, but should be shape {e.shape} "
                             f"[{what}]")
    if scale is not None:
        magnitude = float(np.max(np.abs(e), initial=0.0)) if scale == "expected" else float(scale)
        tol = Tolerance(tol.rtol, tol.atol * max(magnitude, np.finfo(np.float64).tiny))
    close = np.isclose(g, e, rtol=tol.rtol, atol=tol.atol, equal_nan=False)
    if close.all():
        _refuse_vacuous(g, e, tol, what)
    if not close.all():
        first = tuple(int(i) for i in np.argwhere(~close)[0]) if close.ndim else ()
        raise AssertionError(
            _hint(g, e, tol, slips, count) +
            f"got {_short(g)}, but should be {_short(e)} [{what}]; "
            f"{int((~close).sum())} of {close.size} entries differ, first at index {first}: "
            f"{g[first]!r} vs {e[first]!r} (rtol={tol.rtol:g}, atol={tol.atol:g})"
        )


def _hint(g: np.ndarray, e: np.ndarray, tol: Tolerance, slips, count) -> str:
    """'Looks like ...: ' where one known mistake explains ``g`` (first, so that no cut of a long message
    loses it), else ''."""
    from spec.diagnose import diagnose

    declared = {says: _to_numpy(value) for says, value in (slips or {}).items()}
    found = diagnose(g, e, tol, slips=declared, count=count)
    return f"Looks like {found}: " if found else ""


def _refuse_vacuous(g: np.ndarray, e: np.ndarray, tol: Tolerance, what: str) -> None:
    nonzero = e[e != 0]
    if nonzero.size and np.all(np.abs(nonzero) <= tol.atol) and np.all(np.abs(g - e) <= tol.atol):
        raise SpecDefect(
            f"vacuous comparison [{what}]: every nonzero expected value (largest "
            f"{float(np.max(np.abs(nonzero))):.3g}) lies under atol={tol.atol:g}, so any value as small "
            "would pass; compare at the expected value's own scale (assert_close(..., scale=...))")


def assert_equal(got, expected, what: str, *, slips: dict | None = None) -> None:
    """``got == expected``; a failure names the one slip of ``slips`` ({the mistake: the value it
    gives}) that ``got`` equals, if exactly one does."""
    __tracebackhide__ = True
    if got != expected:
        fitting = [says for says, value in (slips or {}).items() if value != expected and got == value]
        hint = f"Looks like {fitting[0]}: " if len(fitting) == 1 else ""
        raise AssertionError(f"{hint}got {got!r}, but should be {expected!r} [{what}]")


def assert_tensor(value, what: str, *, shape=None, floating: bool = True) -> None:
    """``value`` is a torch tensor (of ``shape``, floating point) before any numeric comparison."""
    __tracebackhide__ = True
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"got {type(value).__name__}, but should be a torch.Tensor [{what}]")
    if shape is not None and tuple(value.shape) != tuple(shape):
        shape, found = tuple(shape), tuple(value.shape)
        hint = ("Looks like the transpose (the last two axes swapped: rows and columns exchanged?): "
                if len(shape) >= 2 and found == shape[:-2] + shape[:-3:-1] and found != shape else
                "Looks like a column squeezed to a vector (a size-1 axis lost: .squeeze(), .ravel() or indexing "
                "with [:, 0]?): " if found != shape and tuple(s for s in shape if s != 1) == found else "")
        raise AssertionError(f"{hint}got shape {found}, but should be {shape} [{what}]")
    if floating and not value.is_floating_point():
        raise AssertionError(f"got dtype {value.dtype}, but should be floating point [{what}]")


def assert_rounded(got, expected_exact: float, digits: int, what: str) -> None:
    """The value the sheet asks to report: ``got`` rounded to ``digits`` equals the exact value so
    rounded."""
    __tracebackhide__ = True
    g, e = round(float(got), digits), round(float(expected_exact), digits)
    if g != e:
        raise AssertionError(f"got {g}, but should be {e} [{what}, rounded to {digits} digits]")
