"""ps09 part 1: derivatives by automatic differentiation (exercises ps09.1-1 ... ps09.1-5).

Every value is compared with sympy's exact closed form evaluated in float64; the sheet's own inputs
are one case among many, and the numbers it asks to report are checked rounded as it asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grader.sandboxed.rules import requiring
from spec import oracles
from spec.asserts import assert_close, assert_rounded, assert_tensor
from spec.oracles import x, y
from spec.tolerances import tolerance

exercise = pytest.mark.exercise

SHEET_X_11 = 2.0  # ps09 1.1
SHEET_XY_13 = (1.376, 2.123)  # ps09 1.3
SHEET_A_14 = [[1.0, 2.0], [3.0, 4.0]]  # ps09 1.4
SHEET_X_15 = 0.173  # ps09 1.5
finite = dict(allow_nan=False, allow_infinity=False)


def by_backward(function):
    """The sheet computes every derivative of part 1 "using .backward()": a closed form typed in
    by hand fails here, whatever its values."""
    return requiring(function, "autograd", rule="compute the derivative with autograd (.backward())")


def points(*arrays) -> np.ndarray:
    return np.concatenate([np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in arrays])


# ------------------------------------------------------------------------------- ps09.1-1
F_POINTS = points(SHEET_X_11, np.linspace(-20.0, 30.0, 51), [5.0, 5 - 2 / np.sqrt(3), 1e3, -1e3])


@exercise("ps09.1-1")
def test_f_is_the_sheets_function(impl):
    got = impl.ps09_f(torch.as_tensor(F_POINTS))
    assert_close(got, oracles.numeric(oracles.PS09_F)(F_POINTS), "ps09_f(x) = 2/((5-x)^2 + 2^2)")


@exercise("ps09.1-1")
@pytest.mark.parametrize("point", F_POINTS, ids=lambda p: f"x={p:g}")
def test_derivative_of_f_equals_sympy(impl, point):
    expected = oracles.numeric(oracles.derivative(oracles.PS09_F))(point)
    got = by_backward(impl.derivative)(impl.ps09_f, point)
    assert_tensor(got, f"derivative(ps09_f, {point:g})", shape=())
    assert_close(got, expected, f"f'({point:g}) for f(x) = 2/((5-x)^2 + 2^2)")


@exercise("ps09.1-1")
@given(point=st.floats(-1e4, 1e4, **finite))
def test_derivative_of_f_on_the_real_line(impl, point):
    expected = oracles.numeric(oracles.derivative(oracles.PS09_F))(point)
    # f'(x) ~ 4 / x^3 far from 5: compared at its own scale, whatever the dtype of the answer
    assert_close(by_backward(impl.derivative)(impl.ps09_f, point), expected, f"f'({point!r})", scale="expected")


@exercise("ps09.1-1")
def test_sheet_answer_11(impl):
    exact = oracles.derivative(oracles.PS09_F).subs(x, sp.Rational(2))
    assert exact == sp.Rational(12, 169)  # the oracle itself: f'(2) = 4*3/(9+4)^2
    assert_rounded(by_backward(impl.derivative)(impl.ps09_f, SHEET_X_11), float(exact), 3, "ps09 1.1: f'(2)")


class DerivativeCase(NamedTuple):
    id: str
    function: Callable[[torch.Tensor], torch.Tensor]
    expr: sp.Expr
    domain: tuple[float, float]


DERIVATIVE_CASES = [
    DerivativeCase("sin(x)' == cos(x)", torch.sin, sp.sin(x), (-10, 10)),
    DerivativeCase("exp(x)' == exp(x)", torch.exp, sp.exp(x), (-10, 10)),
    DerivativeCase("(x^3 - 2x)' == 3x^2 - 2", lambda t: t**3 - 2 * t, x**3 - 2 * x, (-10, 10)),
    DerivativeCase("log(1+x^2)' == 2x/(1+x^2)", lambda t: torch.log1p(t**2), sp.log(1 + x**2), (-50, 50)),
    DerivativeCase("tanh(x)' == 1 - tanh^2", torch.tanh, sp.tanh(x), (-8, 8)),
    DerivativeCase("(x exp(-x^2))'", lambda t: t * torch.exp(-(t**2)), x * sp.exp(-(x**2)), (-4, 4)),
]
assert DERIVATIVE_CASES


@exercise("ps09.1-1")
@pytest.mark.parametrize("case", DERIVATIVE_CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("shape", [(), *(pytest.param(s, marks=pytest.mark.robustness)
                                           for s in [(7,), (3, 5), (2, 3, 4)])], ids=str)
def test_derivative_of_any_elementwise_function(impl, case, shape, rng):
    lo, hi = case.domain
    at = rng.uniform(lo, hi, size=shape)
    got = by_backward(impl.derivative)(case.function, torch.as_tensor(at))
    assert_tensor(got, f"derivative at an array of shape {shape}", shape=shape)
    assert_close(got, oracles.numeric(oracles.derivative(case.expr))(at), case.id)


@exercise("ps09.1-1")
@pytest.mark.parametrize("point", [SHEET_X_11, -3.5, 4.9, 12.0])
@pytest.mark.robustness
def test_derivative_keeps_float32(impl, point):
    got = by_backward(impl.derivative)(impl.ps09_f, torch.tensor(point, dtype=torch.float32))
    assert got.dtype == torch.float32, f"got dtype {got.dtype}, but should be torch.float32"
    expected = oracles.numeric(oracles.derivative(oracles.PS09_F))(point)
    assert_close(got, expected, f"float32 f'({point})", dtype=torch.float32)


@exercise("ps09.1-1")
@pytest.mark.parametrize("bad", [torch.tensor(2), torch.tensor([1, 2]), "2.0", None, True],
                         ids=["int tensor", "int vector", "str", "None", "bool"])
@pytest.mark.robustness
def test_derivative_rejects_non_float_x(impl, bad):
    with pytest.raises(TypeError, match="x"):
        by_backward(impl.derivative)(impl.ps09_f, bad)


@exercise("ps09.1-1")
@pytest.mark.robustness
def test_derivative_rejects_bad_f(impl):
    with pytest.raises(TypeError, match="f"):
        by_backward(impl.derivative)("2/((5-x)^2+4)", 2.0)
    with pytest.raises(ValueError, match="f"):
        by_backward(impl.derivative)(lambda t: t.sum(), torch.ones(3, dtype=torch.float64))


# ------------------------------------------------------------------------------- ps09.1-2
def ulp_scale(dtype=torch.float64) -> float:
    """sigma' = sigma(1 - sigma) and sigma'' carry an absolute error of about one ulp of 1 where
    1 - sigma cancels (s >> 0); as a multiple of the dtype's atol, the scale their comparisons use,
    so that a slope of 1e-13 is still compared (at 1e-16), not waved through under atol."""
    return float(torch.finfo(dtype).eps) / tolerance(dtype).atol


def slope_scale(at, dtype=torch.float64) -> float:
    """The scale of sigma' and sigma'' at the points ``at``: one ulp of sigma (of 1 for s >> 0,
    relative to sigma for s << 0, where nothing cancels)."""
    return ulp_scale(dtype) * float(np.max(oracles.sigmoid_numeric(np.asarray(at, dtype=np.float64))))


def sigma_and_slope(at):
    return (oracles.sigmoid_numeric(at),
            oracles.numeric(oracles.derivative(oracles.SIGMA))(at))


@exercise("ps09.1-2")
def test_sigmoid_derivative_is_sigma_one_minus_sigma_symbolically():
    # the oracle's own identity, so that the numbers below stand for sigma(1 - sigma)
    difference = oracles.derivative(oracles.SIGMA) - oracles.SIGMA * (1 - oracles.SIGMA)
    assert sp.simplify(difference) == 0, f"sympy: sigma' - sigma(1 - sigma) = {sp.simplify(difference)}"


def slips_12(sigma) -> dict:
    """The formula slips of sigma' the sheet's exercise invites, as values at the test's points."""
    sigma = np.asarray(sigma, dtype=np.float64)
    return {"sigma (1 + sigma) where sigma (1 - sigma) is meant": sigma * (1 + sigma),
            "sigma itself, not its derivative": sigma}


@exercise("ps09.1-2")
def test_default_grid_is_arange_minus5_to_5(impl):
    grid, values, slopes = by_backward(impl.sigmoid_and_derivative)()
    assert_tensor(grid, "x of sigmoid_and_derivative()", shape=(10,))
    assert_close(grid, np.arange(-5, 5), "x should be torch.arange(-5, 5)")
    expected_values, expected_slopes = sigma_and_slope(grid.detach().numpy())
    assert_close(values, expected_values, "sigmoid on arange(-5, 5)", dtype=grid.dtype)
    assert_close(slopes, expected_slopes, "sigmoid' on arange(-5, 5) == s(1-s)", dtype=grid.dtype,
                 slips=slips_12(expected_values))


GRIDS = {
    "linspace(-30, 30, 601)": lambda rng: np.linspace(-30, 30, 601),
    "normal*10 (3, 4)": lambda rng: rng.normal(scale=10, size=(3, 4)),
    "uniform(-60, 60) (2, 2, 5)": lambda rng: rng.uniform(-60, 60, size=(2, 2, 5)),
    "scalar 0": lambda rng: np.array(0.0),
    "far tails": lambda rng: np.array([-700.0, -40.0, -30.0, 0.0, 30.0, 40.0, 700.0]),
}


@exercise("ps09.1-2")
@pytest.mark.parametrize("make_grid", GRIDS.values(), ids=GRIDS.keys())
@pytest.mark.parametrize("dtype", [torch.float64, pytest.param(torch.float32, marks=pytest.mark.robustness)], ids=str)
def test_sigmoid_and_derivative_on_grids(impl, make_grid, dtype, rng):
    at = make_grid(rng)
    _, values, slopes = by_backward(impl.sigmoid_and_derivative)(torch.as_tensor(at, dtype=dtype))
    assert_tensor(values, "sigmoid values", shape=at.shape)
    assert_tensor(slopes, "sigmoid derivatives", shape=at.shape)
    expected_values, expected_slopes = sigma_and_slope(torch.as_tensor(at, dtype=dtype).double())
    assert_close(values, expected_values, "sigmoid(x)", dtype=dtype, scale="expected")
    assert_close(slopes, expected_slopes, "sigmoid'(x) == s(1-s)", dtype=dtype,
                 scale=slope_scale(torch.as_tensor(at, dtype=dtype).double(), dtype), slips=slips_12(expected_values))


@exercise("ps09.1-2")
@given(st.lists(st.floats(-50, 36, **finite), min_size=1, max_size=40))   # sigma'(s > 36.7) < 1 ulp of 1
def test_sigmoid_derivative_property(impl, values):
    at = np.array(values)
    _, got_values, got_slopes = by_backward(impl.sigmoid_and_derivative)(torch.as_tensor(at))
    expected_values, expected_slopes = sigma_and_slope(at)
    assert_close(got_values, expected_values, "sigmoid(x)", scale="expected")
    assert_close(got_slopes, expected_slopes, "sigmoid'(x) == s(1-s)", scale=slope_scale(at),
                 slips=slips_12(expected_values))


@exercise("ps09.1-2")
def test_sigmoid_plot_has_function_and_derivative_panels(impl):
    figure = impl.plot_sigmoid_and_derivative()
    panels = [axes for axes in figure.axes if axes.lines]
    assert len(panels) == 2, f"got {len(panels)} panels with lines, but should be 2 [sigmoid plot]"
    expected_values, expected_slopes = sigma_and_slope(np.arange(-5, 5))
    for axes, expected, what in zip(panels, (expected_values, expected_slopes),
                                    ("left panel: sigmoid", "right panel: derivative"), strict=True):
        line = axes.lines[0]
        assert_close(line.get_xdata(), np.arange(-5, 5), f"{what}, x data", dtype=torch.float32)
        assert_close(line.get_ydata(), expected, f"{what}, y data", dtype=torch.float32)


# ------------------------------------------------------------------------------- ps09.1-3
JACOBIAN_13 = oracles.PS09_VECTOR_F.jacobian([x, y])
XY_POINTS = [SHEET_XY_13, (0.0, 0.0), (-1.5, 2.0), (3.0, -0.25), (10.0, 10.0), (-7.2, -0.01)]


def expected_13(px, py) -> np.ndarray:
    return np.array(JACOBIAN_13.subs({x: px, y: py}).evalf(30), dtype=np.float64)


@exercise("ps09.1-3")
@pytest.mark.parametrize("point", XY_POINTS, ids=lambda p: f"x={p[0]},y={p[1]}")
def test_vector_function_gradients_equal_sympy(impl, point):
    got = by_backward(impl.vector_function_gradients)(*point)
    assert_tensor(got, "vector_function_gradients(x, y)", shape=(2, 2))
    assert_close(got, expected_13(*point), f"[[df1/dx, df1/dy], [df2/dx, df2/dy]] at {point}")


@exercise("ps09.1-3")
# where float32 resolves the answer: a solution that computes in float32 (torch.tensor of a Python
# float) is right by the sheet; below 1e-6 its squares underflow, which is no claim of the sheet's
@given(st.floats(-100, 100, **finite).filter(lambda v: v == 0 or abs(v) >= 1e-6),
       st.floats(-100, 100, **finite).filter(lambda v: v == 0 or abs(v) >= 1e-6))
def test_vector_function_gradients_everywhere(impl, px, py):
    got = by_backward(impl.vector_function_gradients)(px, py)
    assert_close(got, expected_13(px, py), f"gradients of [x^2+y^2, 2x^2y^2] at ({px!r}, {py!r})",
                 scale="expected")


@exercise("ps09.1-3")
def test_vector_function_is_the_sheets(impl):
    got = impl.ps09_vector_f(torch.tensor(SHEET_XY_13[0]), torch.tensor(SHEET_XY_13[1]))
    expected = np.array(oracles.PS09_VECTOR_F.subs({x: SHEET_XY_13[0], y: SHEET_XY_13[1]}),
                        dtype=np.float64).ravel()
    assert_close(got, expected, "f(x, y) = [x^2 + y^2, 2x^2y^2]", dtype=torch.float32)


@exercise("ps09.1-3")
def test_sheet_answers_13(impl):
    got = by_backward(impl.vector_function_gradients)(*SHEET_XY_13)
    exact = expected_13(*SHEET_XY_13)
    assert_rounded(got[0, 0], exact[0, 0], 3, "ps09 1.3: df1/dx at (1.376, 2.123)")
    assert_rounded(got[1, 1], exact[1, 1], 3, "ps09 1.3: df2/dy at (1.376, 2.123)")


@exercise("ps09.1-3")
def test_without_arguments_it_answers_the_sheets_question(impl):
    assert_close(by_backward(impl.vector_function_gradients)(), expected_13(*SHEET_XY_13), "defaults x=1.376, y=2.123")


@exercise("ps09.1-3")
@pytest.mark.parametrize("bad", [(torch.ones(2), 1.0), (1.0, torch.ones(1, 1))], ids=["x vector", "y matrix"])
@pytest.mark.robustness
def test_vector_function_gradients_rejects_non_scalars(impl, bad):
    with pytest.raises(ValueError):
        by_backward(impl.vector_function_gradients)(*bad)


@exercise("ps09.1-3")
@pytest.mark.robustness
def test_vector_function_gradients_rejects_integer_tensors(impl):
    with pytest.raises(TypeError, match="x"):
        by_backward(impl.vector_function_gradients)(torch.tensor(1), 2.0)


# ------------------------------------------------------------------------------- ps09.1-4
@exercise("ps09.1-4")
@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e3])
def test_trace_square_gradient_is_two_A_transposed(impl, n, scale, rng):
    # d/dA_ij sum_kl A_kl A_lk = A_ji + A_ji: the gradient is 2 A^T
    A = rng.normal(scale=scale, size=(n, n))
    got = by_backward(impl.trace_square_gradient)(torch.as_tensor(A))
    assert_tensor(got, f"trace_square_gradient of a {n}x{n} matrix", shape=(n, n))
    assert_close(got, 2 * A.T, f"d trace(A^2)/dA == 2 A^T, n={n}")


@exercise("ps09.1-4")
@pytest.mark.parametrize("n", [2, 3])
def test_trace_square_gradient_equals_sympy(impl, n, rng):
    M = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"a{i}{j}", real=True))
    grad = sp.Matrix(n, n, lambda i, j: sp.diff((M * M).trace(), M[i, j]))
    values = rng.normal(size=(n, n))
    substitution = {M[i, j]: values[i, j] for i in range(n) for j in range(n)}
    expected = np.array(grad.subs(substitution), dtype=np.float64)
    assert_close(by_backward(impl.trace_square_gradient)(torch.as_tensor(values)), expected, f"sympy gradient, n={n}")
    assert_close(impl.trace_square(torch.as_tensor(values)), np.trace(values @ values), "trace(A@A)")


@exercise("ps09.1-4")
def test_sheet_answer_14(impl):
    M = sp.Matrix(SHEET_A_14)
    a = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"a{i}{j}"))
    exact = sp.diff((a * a).trace(), a[0, 1]).subs(dict(zip(a, M, strict=True)))
    got = by_backward(impl.trace_square_gradient)(torch.tensor(SHEET_A_14, requires_grad=True))
    assert_rounded(got[0, 1], float(exact), 3, "ps09 1.4: gradient element [0, 1]")


@exercise("ps09.1-4")
@pytest.mark.robustness
def test_trace_square_gradient_keeps_float32(impl):
    A = torch.tensor(SHEET_A_14)
    got = by_backward(impl.trace_square_gradient)(A)
    assert got.dtype == torch.float32, f"got dtype {got.dtype}, but should be torch.float32"
    assert_close(got, 2 * A.T.double(), "2 A^T in float32", dtype=torch.float32)
    assert A.grad is None, "the caller's tensor A should be left untouched (A.grad stays None)"


@exercise("ps09.1-4")
@pytest.mark.parametrize("shape", [(2, 3), (3,), (2, 2, 2), ()], ids=str)
@pytest.mark.robustness
def test_trace_square_gradient_rejects_non_square(impl, shape):
    with pytest.raises(ValueError, match="A"):
        by_backward(impl.trace_square_gradient)(torch.ones(shape, dtype=torch.float64))


@exercise("ps09.1-4")
@pytest.mark.robustness
def test_trace_square_gradient_rejects_integer_matrix(impl):
    with pytest.raises(TypeError, match="A"):
        by_backward(impl.trace_square_gradient)(torch.tensor([[1, 2], [3, 4]]))


# ------------------------------------------------------------------------------- ps09.1-5
def expected_15(at):
    return (oracles.sigmoid_numeric(at),
            oracles.numeric(oracles.derivative(oracles.SIGMA, 1))(at),
            oracles.numeric(oracles.derivative(oracles.SIGMA, 2))(at))


def scales_15(at, value=None) -> dict:
    """The scale each of the three answers is judged at: one ulp of sigma in the answer's own dtype (a
    float32 answer, as torch.tensor of a Python float gives, at float32's)."""
    dtype = value.dtype if isinstance(value, torch.Tensor) and value.is_floating_point() else torch.float64
    return {"sigma": {"scale": "expected"}, "sigma'": {"scale": slope_scale(at, dtype)},
            "sigma''": {"scale": slope_scale(at, dtype)}}


def slips_15(at) -> dict:
    """ps09 1.5's pitfalls, per answer: x.grad handed out without a copy (zeroed, then refilled by the
    second pass) and x.grad not zeroed between the two passes (the gradients accumulate)."""
    _, first, second = expected_15(at)
    return {"sigma": {},
            "sigma'": {"sigma'' where sigma' is asked (x.grad handed out without .clone(), then zeroed and "
                       "refilled by the second backward pass?)": second},
            "sigma''": {"sigma' + sigma'' (x.grad not zeroed between the two backward passes, so the "
                        "gradients accumulated?)": np.asarray(first) + np.asarray(second)}}


S15_POINTS = points(SHEET_X_15, np.linspace(-8, 8, 33), [-15.0, 15.0])   # float32 resolves sigma' here


@exercise("ps09.1-5")
@pytest.mark.parametrize("point", S15_POINTS, ids=lambda p: f"x={p:g}")
def test_sigmoid_first_and_second_derivative(impl, point):
    got = by_backward(impl.sigmoid_derivatives)(point)
    assert len(got) == 3, f"got {len(got)} values, but should be 3 (sigma, sigma', sigma'')"
    for value, expected, what in zip(got, expected_15(point), ("sigma", "sigma'", "sigma''"), strict=True):
        assert_tensor(value, f"{what}({point:g})", shape=())
        assert_close(value, expected, f"{what}({point:g})", **scales_15(point, value)[what],
                     slips=slips_15(point)[what])


@exercise("ps09.1-5")
# |s| <= 15: where float32 still resolves sigma' (1 - sigma(17) is under float32's epsilon), so a
# solution computing in float32, as torch.tensor of a Python float does, is judged on what the sheet asks
@given(st.floats(-15, 15, **finite))
@example(1e-12)   # sigma'' under float32's resolution there: a float32 answer is judged within it
def test_sigmoid_derivatives_property(impl, point):
    for value, expected, what in zip(by_backward(impl.sigmoid_derivatives)(point), expected_15(point),
                                     ("sigma", "sigma'", "sigma''"), strict=True):
        scale = scales_15(point, value)[what]
        if what == "sigma''" and abs(float(expected)) < scale["scale"]:
            # sigma'' = sigma'(1 - 2 sigma) near its zero at 0, under what the answer's dtype resolves there
            # (one ulp of sigma: 1e-16 in float64, 6e-8 in float32): the answer must lie within it of zero
            assert abs(float(value)) <= 2 * scale["scale"], \
                f"sigma''({point!r}) = {float(value)!r}, but should be within {scale['scale']:.3g} of 0"
            continue
        assert_close(value, expected, f"{what}({point!r})", **scale, slips=slips_15(point)[what])


@exercise("ps09.1-5")
@pytest.mark.robustness
def test_sigmoid_derivatives_elementwise_on_a_vector(impl, rng):
    at = rng.normal(scale=4, size=25)
    for value, expected, what in zip(by_backward(impl.sigmoid_derivatives)(torch.as_tensor(at)), expected_15(at),
                                     ("sigma", "sigma'", "sigma''"), strict=True):
        assert_close(value, expected, f"{what} on a vector of 25 points")


@exercise("ps09.1-5")
def test_sheet_answers_15(impl):
    s = sp.Rational(173, 1000)
    _, first, second = by_backward(impl.sigmoid_derivatives)(SHEET_X_15)
    exact_first = oracles.derivative(oracles.SIGMA, 1).subs(x, s).evalf(30)
    exact_second = oracles.derivative(oracles.SIGMA, 2).subs(x, s).evalf(30)
    assert_rounded(first, exact_first, 3, "ps09 1.5: sigma'(0.173)")
    assert_rounded(second, exact_second, 3, "ps09 1.5: sigma''(0.173)")


@exercise("ps09.1-5")
def test_without_arguments_it_answers_the_sheets_question_15(impl):
    for value, expected, what in zip(by_backward(impl.sigmoid_derivatives)(), expected_15(SHEET_X_15),
                                     ("sigma", "sigma'", "sigma''"), strict=True):
        assert_close(value, expected, f"{what} at the default x = 0.173", slips=slips_15(SHEET_X_15)[what])


@exercise("ps09.1-5")
def test_derivatives_survive_zeroing(impl):
    """The copy-of-grad pitfall: values handed out must not be views of a grad buffer that a later
    zero_() (or another call) overwrites."""
    results = by_backward(impl.sigmoid_derivatives)(SHEET_X_15)
    snapshot = [r.clone() for r in results]
    by_backward(impl.sigmoid_derivatives)(-2.0)
    for r in results:
        if r.grad is not None:
            r.grad.zero_()
    for value, kept, what in zip(results, snapshot, ("sigma", "sigma'", "sigma''"), strict=True):
        assert_close(value, kept, f"{what}(0.173) after another call")
    assert_close(results[1], expected_15(SHEET_X_15)[1], "sigma'(0.173) is not the zeroed buffer")
    assert results[1].data_ptr() != results[2].data_ptr(), \
        "sigma' and sigma'' share storage: sigma' is a reference to x.grad, not a copy"
