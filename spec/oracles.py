"""Independent oracles: closed forms derived by sympy, evaluated in float64 (never impl's code)."""

from __future__ import annotations

from functools import cache

import mpmath
import numpy as np
import sympy as sp

x, y = sp.symbols("x y", real=True)

#: ps09 1.1
PS09_F = 2 / ((5 - x) ** 2 + 2**2)
#: the logistic sigmoid
SIGMA = 1 / (1 + sp.exp(-x))
#: ps09 1.3
PS09_VECTOR_F = sp.Matrix([x**2 + y**2, 2 * x**2 * y**2])


PRECISION = 40  # decimal digits of the mpmath evaluation: exact to float64 after rounding


@cache
def numeric(expr: sp.Expr, *symbols: sp.Symbol):
    """A numpy function of ``symbols`` giving ``expr`` rounded to float64, elementwise (made once per
    expression: lambdify is most of a call's cost).

    Evaluated in ``PRECISION``-digit arithmetic (mpmath), so that no overflow or cancellation of
    float64 leaks into the expected value (e.g. exp(750) / (1 + exp(750))^2 in the sigmoid's tail).
    """
    function = sp.lambdify(symbols or (x,), expr, modules="mpmath")

    def at_point(*values):
        with mpmath.workdps(PRECISION):
            return float(function(*(mpmath.mpf(float(v)) for v in values)))

    vectorised = np.vectorize(at_point, otypes=[np.float64])

    def evaluate(*args):
        return np.asarray(vectorised(*(np.asarray(a, dtype=np.float64) for a in args)))

    return evaluate


@cache
def derivative(expr: sp.Expr, order: int = 1, symbol: sp.Symbol = x) -> sp.Expr:
    return sp.diff(expr, symbol, order)


def sigmoid_numeric(values) -> np.ndarray:
    """sigma in float64 by scipy (its expit), an implementation independent of torch."""
    from scipy.special import expit

    return expit(np.asarray(values, dtype=np.float64))
