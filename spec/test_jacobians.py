"""dl-a1 questions 1(a)-(c) and 2(b)-(e): closed-form gradients of the log-cosh net, finite
differences, Jacobians by reverse and forward mode, and the op-count model.

Oracles: sympy (symbolic gradients and Jacobians of small nets, evaluated in 40-digit mpmath), the
spec's own float64 torch code differentiated by autograd / torch.func, FlopCounterMode for op counts.
"""

from __future__ import annotations

import itertools
import time
from typing import NamedTuple

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.sandboxed.observe import count_macs
from grader.sandboxed.rules import forbid, forbidding, requiring
from spec.asserts import SpecDefect, assert_close, assert_equal, assert_tensor
from spec.runs import kept
from spec.tolerances import Tolerance

exercise = pytest.mark.exercise
PARAMS = ("W1", "b1", "w2", "b2")
GRAD_NAMES = (*PARAMS, "x")


# ------------------------------------------------------------------ the spec's own reference code
def ref_cost(x, y, W1, b1, w2, b2):
    r = torch.tanh(x @ W1.T + b1) @ w2 + b2 - y
    return (r.abs() + torch.log1p(torch.exp(-2 * r.abs())) - np.log(2.0)).mean()


def ref_gradients(x, y, params):
    """float64 autograd on the spec's own code."""
    leaves = {name: t.detach().clone().requires_grad_(True) for name, t in {**params, "x": x}.items()}
    cost = ref_cost(leaves["x"], y, *(leaves[n] for n in PARAMS))
    return dict(zip(leaves, torch.autograd.grad(cost, list(leaves.values())), strict=True))


class NetCase(NamedTuple):
    id: str
    n: int
    d: int
    k: int
    distribution: str
    scale: float = 1.0


NET_CASES = [
    NetCase("sheet: N=32, D=10, K=20, gaussian", 32, 10, 20, "gaussian"),
    NetCase("sheet sizes, uniform", 32, 10, 20, "uniform"),
    NetCase("N=1, D=1, K=1", 1, 1, 1, "gaussian"),
    NetCase("N=5, D=3, K=4, uniform", 5, 3, 4, "uniform"),
    NetCase("N=64, D=13, K=7, gaussian", 64, 13, 7, "gaussian"),
    NetCase("N=8, D=2, K=50, wide", 8, 2, 50, "gaussian"),
    NetCase("large residuals (log cosh ~ |r|)", 16, 4, 6, "gaussian", 30.0),
    NetCase("saturated tanh", 16, 4, 6, "uniform", 10.0),
]
assert NET_CASES


def make_net(case: NetCase, seed: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    draw = (lambda *s: torch.randn(*s, generator=g, dtype=dtype)) if case.distribution == "gaussian" \
        else (lambda *s: 2 * torch.rand(*s, generator=g, dtype=dtype) - 1)
    x = draw(case.n, case.d) * case.scale
    y = draw(case.n) * case.scale
    params = {"W1": draw(case.k, case.d), "b1": draw(case.k), "w2": draw(case.k), "b2": draw(())}
    return x, y, params


SEEDS = [0, 1, 2]


def closed_form(function):
    """(a) asks to derive the gradients: the closed forms run with autograd patched to raise."""
    return forbidding(function, "autograd")


def by_autograd(function):
    """2(b): "use torch autograd" to compute the Jacobian; a hand-written chain rule fails here."""
    return requiring(function, "autograd", rule="compute the Jacobian with torch autograd")


# ------------------------------------------------------------------------------- dl-a1.q1a
@exercise("dl-a1.q1a")
def test_sympy_log_cosh_derivative_is_tanh():
    r = sp.Symbol("r", real=True)
    assert sp.simplify(sp.diff(sp.log(sp.cosh(r)), r) - sp.tanh(r)) == 0


@kept
def sympy_gradients(n: int, d: int, k: int, values: dict) -> dict[str, np.ndarray]:
    """The five gradients of J derived by sympy for a small net, evaluated at ``values`` (kept per spec
    version: spec/runs.py)."""
    X = sp.Matrix(n, d, lambda i, j: sp.Symbol(f"x{i}_{j}", real=True))
    Y = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"y{i}", real=True))
    W1 = sp.Matrix(k, d, lambda i, j: sp.Symbol(f"W{i}_{j}", real=True))
    b1 = sp.Matrix(k, 1, lambda i, _: sp.Symbol(f"b{i}", real=True))
    w2 = sp.Matrix(k, 1, lambda i, _: sp.Symbol(f"v{i}", real=True))
    b2 = sp.Symbol("c", real=True)
    J = 0
    for i in range(n):
        hidden = (W1 * X[i, :].T + b1).applyfunc(sp.tanh)
        J += sp.log(sp.cosh((w2.T * hidden)[0, 0] + b2 - Y[i, 0]))
    J = J / n
    blocks = {"W1": W1, "b1": b1, "w2": w2, "b2": sp.Matrix([[b2]]), "x": X}
    inputs = [*X, *Y, *W1, *b1, *w2, b2]
    values_in_order = [*np.ravel(values["x"]), *np.ravel(values["y"]), *np.ravel(values["W1"]),
                       *np.ravel(values["b1"]), *np.ravel(values["w2"]), float(values["b2"])]
    derivatives = [sp.diff(J, symbol) for block in blocks.values() for symbol in block]
    evaluate = sp.lambdify(inputs, derivatives, modules="mpmath")
    with mpmath.workdps(40):
        flat = [float(v) for v in evaluate(*(mpmath.mpf(float(v)) for v in values_in_order))]
    result, start = {}, 0
    for name, block in blocks.items():
        result[name] = np.array(flat[start:start + len(block)]).reshape(block.shape)
        start += len(block)
    result["b1"], result["w2"], result["b2"] = result["b1"].ravel(), result["w2"].ravel(), result["b2"][0, 0]
    return result


@exercise("dl-a1.q1a")
@pytest.mark.parametrize("n, d, k", [(1, 1, 1), (2, 1, 2), (1, 2, 3), (3, 2, 2)], ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_forms_equal_sympy(impl, n, d, k, seed):
    x, y, params = make_net(NetCase("", n, d, k, "gaussian"), seed)
    expected = sympy_gradients(n, d, k, {"x": x, "y": y, **params})
    got = closed_form(impl.logcosh_gradients)(x, y, params)
    for name in GRAD_NAMES:
        assert_tensor(got[name], f"dJ/d{name}", shape=expected[name].shape)
        assert_close(got[name], expected[name], f"dJ/d{name}, N={n} D={d} K={k}")


# ------------------------------------------------------------------------------- dl-a1.q1b
@exercise("dl-a1.q1a")
@pytest.mark.parametrize("case", NET_CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("seed", SEEDS)
def test_closed_forms_equal_autograd(impl, case, seed):
    """(a)'s closed forms against float64 autograd on the spec's own code: a check of (a) itself, so a
    wrong closed form costs (a) alone, not (b)'s or (c)'s own code."""
    x, y, params = make_net(case, seed)
    expected = ref_gradients(x, y, params)
    got = closed_form(impl.logcosh_gradients)(x, y, params)
    for name in GRAD_NAMES:
        assert_close(got[name], expected[name], f"closed-form dJ/d{name} vs autograd [{case.id}]")


# residuals near 1000: cosh overflows float64 beyond 710, so log(cosh(r)) taken literally gives inf
BEYOND_COSH = NetCase("residuals beyond cosh's float64 range", 16, 4, 6, "gaussian", 1000.0)


@exercise("dl-a1.q1b")
@pytest.mark.parametrize("case", [*NET_CASES, BEYOND_COSH], ids=lambda c: c.id)
def test_net_autograd_gradients_and_cost(impl, case):
    x, y, params = make_net(case, seed=7)
    expected = ref_gradients(x, y, params)
    with forbid("nn.Module"):
        got = requiring(impl.logcosh_autograd_gradients, "autograd",
                        rule="compute (b)'s gradients with pytorch's autograd")(x, y, params)
        cost = impl.logcosh_cost(x, y, *(params[n] for n in PARAMS))
        y_hat = impl.logcosh_forward(x, *(params[n] for n in PARAMS))
    for name in GRAD_NAMES:
        # saturated units give gradients far below atol: compared at their own scale
        assert_close(got[name], expected[name], f"autograd dJ/d{name} [{case.id}]", scale="expected")
    assert_close(cost, ref_cost(x, y, *(params[n] for n in PARAMS)), f"J [{case.id}]")
    r = (y_hat - y).double().numpy()
    assert_close(cost, np.mean([float(sp.log(sp.cosh(sp.Float(v, 40)))) for v in r]),
                 f"J = mean log cosh(y_hat - y) [{case.id}]")


@exercise("dl-a1.q1b")
@pytest.mark.robustness
def test_net_inputs_are_not_modified(impl):
    x, y, params = make_net(NET_CASES[0], seed=3)
    copies = {k: v.clone() for k, v in params.items()}
    impl.logcosh_autograd_gradients(x, y, params)
    closed_form(impl.logcosh_gradients)(x, y, params)
    for name, value in params.items():
        assert not value.requires_grad and value.grad is None, f"params[{name!r}] was changed"
        assert_close(value, copies[name], f"params[{name!r}] untouched")


BAD_NET_INPUTS = {
    "missing b2": (lambda x, y, p: (x, y, {k: v for k, v in p.items() if k != "b2"}), ValueError),
    "W1 of wrong width": (lambda x, y, p: (x, y, {**p, "W1": p["W1"][:, :-1]}), ValueError),
    "w2 of wrong length": (lambda x, y, p: (x, y, {**p, "w2": p["w2"][:-1]}), ValueError),
    "y of wrong length": (lambda x, y, p: (x, y[:-1], p), ValueError),
    "x not a matrix": (lambda x, y, p: (x[0], y, p), ValueError),
    "integer x": (lambda x, y, p: (x.long(), y, p), TypeError),
    "mixed dtypes": (lambda x, y, p: (x.float(), y, p), TypeError),
}


@exercise("dl-a1.q1b")
@pytest.mark.parametrize("name", BAD_NET_INPUTS)
@pytest.mark.parametrize("function", ["logcosh_gradients", "logcosh_autograd_gradients"])
@pytest.mark.robustness
def test_net_rejects_bad_input(impl, name, function):
    make_bad, error = BAD_NET_INPUTS[name]
    x, y, params = make_net(NetCase("", 4, 3, 5, "gaussian"), seed=0)
    with pytest.raises(error):
        getattr(impl, function)(*make_bad(x, y, params))


# ------------------------------------------------------------------------------- dl-a1.q1c
FD_TOL = {"central": Tolerance(rtol=1e-6, atol=1e-8), "forward": Tolerance(rtol=1e-4, atol=1e-5)}
FD_STEP = {"central": 1e-6, "forward": 1e-7}


@exercise("dl-a1.q1c")
@pytest.mark.parametrize("case", NET_CASES[:6], ids=lambda c: c.id)
@pytest.mark.parametrize("scheme", ["central", "forward"])
def test_finite_differences_agree_with_closed_forms(impl, case, scheme):
    x, y, params = make_net(case, seed=11)
    expected = ref_gradients(x, y, params)
    with forbid("gradcheck", "autograd"):
        got = impl.logcosh_numerical_gradients(x, y, params, h=FD_STEP[scheme], scheme=scheme)
    for name in GRAD_NAMES:   # against the exact gradient (the spec's float64 autograd), not impl's (a)
        assert_close(got[name], expected[name], f"{scheme} differences dJ/d{name}", tol=FD_TOL[scheme])


class FunctionCase(NamedTuple):
    id: str
    function: object
    shape: tuple


FUNCTIONS = [
    FunctionCase("sum(sin(X) X^2), scalar", lambda t: (torch.sin(t) * t**2).sum(), ()),
    FunctionCase("sum(exp(sin X)), vector", lambda t: torch.exp(torch.sin(t)).sum(), (5,)),
    FunctionCase("logsumexp, matrix", lambda t: torch.logsumexp(t.reshape(-1), 0), (3, 4)),
    FunctionCase("x^T A x, 3-D", lambda t: (t.reshape(-1) @ torch.arange(1.0, 9, dtype=t.dtype)
                                           .outer(torch.ones(8, dtype=t.dtype)) @ t.reshape(-1)),
                 (2, 2, 2)),
    FunctionCase("not vmap-able (.item())", lambda t: torch.tensor(float(torch.cos(t).sum().item()),
                                                                   dtype=t.dtype), (4,)),
]
assert FUNCTIONS


def autograd_gradient(function, at):
    at = at.detach().clone().requires_grad_(True)
    value = function(at)
    if not value.requires_grad:  # the .item() case: differentiate the same formula
        value = torch.cos(at).sum()
    return torch.autograd.grad(value, at)[0]


@exercise("dl-a1.q1c")
@pytest.mark.parametrize("case", FUNCTIONS, ids=lambda c: c.id)
@pytest.mark.parametrize("scheme", ["central", "forward"])
def test_finite_differences_of_any_callable_and_shape(impl, case, scheme, seed):
    at = torch.randn(case.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with forbid("gradcheck", "autograd"):
        got = impl.finite_difference_gradient(case.function, at, h=FD_STEP[scheme], scheme=scheme)
    assert_tensor(got, f"finite_difference_gradient on shape {case.shape}", shape=case.shape)
    assert_close(got, autograd_gradient(case.function, at), f"{scheme} differences [{case.id}]",
                 tol=FD_TOL[scheme])


def fitted_order(impl, function, at, scheme, steps) -> float:
    exact = autograd_gradient(function, at)
    errors = [float((impl.finite_difference_gradient(function, at, h=h, scheme=scheme) - exact)
                    .abs().max()) for h in steps]
    slope, _ = np.polyfit(np.log(steps), np.log(errors), 1)
    return slope


ORDER_STEPS = {"central": np.geomspace(1e-1, 1e-3, 7), "forward": np.geomspace(1e-1, 1e-5, 9)}


# smooth, non-polynomial functions: the quadratic form's central difference is exact (its third
# derivative vanishes), so no order can be fitted to its round-off
ORDER_FUNCTIONS = FUNCTIONS[:3]


@exercise("dl-a1.q1c")
@pytest.mark.parametrize("case", ORDER_FUNCTIONS, ids=lambda c: c.id)
@pytest.mark.parametrize("scheme, order", [("central", 2), ("forward", 1)])
@pytest.mark.parametrize("seed_", [0, 1])
def test_error_order_of_finite_differences(impl, case, scheme, order, seed_):
    at = torch.randn(case.shape, generator=torch.Generator().manual_seed(seed_), dtype=torch.float64)
    got = fitted_order(impl, case.function, at, scheme, ORDER_STEPS[scheme])
    assert abs(got - order) < 0.25, \
        f"got a fitted error order of {got:.2f}, but should be {order} [{scheme} differences, {case.id}]"


@exercise("dl-a1.q1c")
@pytest.mark.parametrize("scheme", ["central", "forward"])
def test_error_order_on_the_log_cosh_net(impl, scheme):
    x, y, params = make_net(NET_CASES[3], seed=5)

    def cost_of_w1(w1):
        return ref_cost(x, y, w1, params["b1"], params["w2"], params["b2"])

    got = fitted_order(impl, cost_of_w1, params["W1"], scheme, ORDER_STEPS[scheme])
    expected = 2 if scheme == "central" else 1
    assert abs(got - expected) < 0.25, f"got order {got:.2f}, but should be {expected} [{scheme}, dJ/dW1]"


def spec_difference_quotient(function, at: torch.Tensor, h: float, scheme: str) -> torch.Tensor:
    """The spec's own finite differences in float64, one coordinate at a time:
    central (f(x + h e_i) - f(x - h e_i)) / 2h, forward (f(x + h e_i) - f(x)) / h."""
    flat = at.detach().to(torch.float64).reshape(-1)
    value = lambda point: float(function(point.reshape(at.shape)))
    here = value(flat)
    quotients = []
    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = h
        if scheme == "central":
            quotients.append((value(flat + step) - value(flat - step)) / (2 * h))
        else:
            quotients.append((value(flat + step) - here) / h)
    return torch.tensor(quotients, dtype=torch.float64).reshape(at.shape)


# the quotient's rounding (eps |f| / h) lies far below this, its truncation error at these steps
# (h^2 f'''/6 central, h f''/2 forward) far above it
QUOTIENT_TOL = Tolerance(rtol=1e-8, atol=1e-10)
LARGE_STEPS = [1e-1, 3e-2]


def require_truncation_visible(quotients: dict, exact: dict, what: str) -> None:
    """The spec's own check that the comparison can fail: at the chosen step its quotients lie far
    from the exact gradient, so a result at another step (or of the other scheme) cannot match them."""
    gap = max(float((quotients[k] - exact[k]).abs().max() / (1 + exact[k].abs().max())) for k in quotients)
    if gap < 100 * QUOTIENT_TOL.rtol:
        raise SpecDefect(f"[{what}] the difference quotients lie within {gap:.1e} of the exact gradient: "
                         "choose a larger step or another function")


@exercise("dl-a1.q1c")
@pytest.mark.parametrize("case", [c for c in FUNCTIONS if "x^T A x" not in c.id], ids=lambda c: c.id)
@pytest.mark.parametrize("scheme", ["central", "forward"])
@pytest.mark.parametrize("h", LARGE_STEPS, ids=lambda h: f"h={h:g}")
def test_finite_differences_take_the_step_and_scheme_asked_for(impl, case, scheme, h, seed):
    """The sheet's claim, an error O(h^2) for central and O(h) for forward differences, is about the
    quotient at the step h and the scheme the caller gives: at a step large enough that the truncation
    error dominates, the result is that quotient (the spec's own, in float64), not one at another step
    or of the other scheme. (The quadratic form is left out: its central quotient is exact at any h.)"""
    at = torch.randn(case.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    expected = spec_difference_quotient(case.function, at, h, scheme)
    require_truncation_visible({"f": expected}, {"f": autograd_gradient(case.function, at)}, case.id)
    with forbid("gradcheck", "autograd"):
        got = impl.finite_difference_gradient(case.function, at, h=h, scheme=scheme)
    assert_close(got, expected, f"{scheme} difference quotient at h={h:g} [{case.id}]; the result should "
                 "use the step h and the scheme it is given", tol=QUOTIENT_TOL)


@exercise("dl-a1.q1c")
@pytest.mark.parametrize("case", [NET_CASES[2], NET_CASES[3], NET_CASES[5]], ids=lambda c: c.id)
@pytest.mark.parametrize("scheme", ["central", "forward"])
@pytest.mark.parametrize("h", LARGE_STEPS, ids=lambda h: f"h={h:g}")
def test_net_finite_differences_take_the_step_and_scheme_asked_for(impl, case, scheme, h):
    """logcosh_numerical_gradients(x, y, params, h=h, scheme=scheme) gives, for each of the five
    gradients, the spec's own quotient of J at that step and scheme: h and scheme are passed on to
    the finite differences, not left at their defaults."""
    x, y, params = make_net(case, seed=13)
    inputs = {**params, "x": x}

    def cost_of(name):
        def cost(value):
            args = {**inputs, name: value}
            return ref_cost(args["x"], y, *(args[n] for n in PARAMS))
        return cost

    expected = {name: spec_difference_quotient(cost_of(name), inputs[name], h, scheme) for name in GRAD_NAMES}
    require_truncation_visible(expected, ref_gradients(x, y, params), case.id)
    with forbid("gradcheck", "autograd"):
        got = impl.logcosh_numerical_gradients(x, y, params, h=h, scheme=scheme)
    for name in GRAD_NAMES:
        assert_close(got[name], expected[name], f"{scheme} difference quotient of J at h={h:g}, dJ/d{name} "
                     f"[{case.id}]; pass h and scheme on to the finite differences", tol=QUOTIENT_TOL)


@exercise("dl-a1.q1c")
@pytest.mark.parametrize("kwargs, error", [
    ({"h": 0.0}, ValueError), ({"h": -1e-3}, ValueError), ({"scheme": "backward"}, ValueError),
], ids=["h=0", "h<0", "unknown scheme"])
@pytest.mark.robustness
def test_finite_differences_reject_bad_arguments(impl, kwargs, error):
    with pytest.raises(error):
        impl.finite_difference_gradient(lambda t: t.sum(), torch.ones(3, dtype=torch.float64), **kwargs)


@exercise("dl-a1.q1c")
@pytest.mark.robustness
def test_finite_differences_reject_non_callable_and_integer_x(impl):
    with pytest.raises(TypeError):
        impl.finite_difference_gradient("sum", torch.ones(3, dtype=torch.float64))
    with pytest.raises(TypeError):
        impl.finite_difference_gradient(lambda t: t.sum(), torch.ones(3, dtype=torch.int64))


# ------------------------------------------------------------------------ dl-a1.q2b ... q2e
def ref_network(x, weights):
    hidden = [weights[f"W{i}"] for i in range(1, len(weights))]
    h = x
    for w in hidden:
        h = torch.tanh(w @ h)
    return weights["WF"] @ h


def make_weights(d, k, p, depth, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shapes = {"W1": (k, d), **{f"W{i}": (k, k) for i in range(2, depth + 1)}, "WF": (p, k)}
    return {name: torch.randn(s, generator=g, dtype=dtype) / s[1] ** 0.5 for name, s in shapes.items()}


def ref_jacobian(x, weights):
    """torch.func.jacrev on the spec's own network, vmapped over a batch (kept per spec version)."""
    return torch.from_numpy(_ref_jacobian(x, weights))


@kept
def _ref_jacobian(x, weights) -> np.ndarray:
    jac = torch.func.jacrev(lambda z: ref_network(z, weights))
    return (jac(x) if x.ndim == 1 else torch.func.vmap(jac)(x)).numpy()


class JacCase(NamedTuple):
    id: str
    d: int
    k: int
    p: int
    depth: int
    batch: int | None  # None: one x of shape (D,)


JAC_CASES = [
    JacCase("sheet: D=2 K=30 P=10 L=3", 2, 30, 10, 3, None),
    JacCase("sheet sizes, batch 16", 2, 30, 10, 3, 16),
    *(JacCase(f"D=3 K=5 P=4 L={depth}", 3, 5, 4, depth, None) for depth in range(1, 11)),
    *(JacCase(f"D=2 K=8 P=3 L={depth} batch 7", 2, 8, 3, depth, 7) for depth in (1, 2, 5, 10)),
    JacCase("D > P: D=12 K=6 P=2 L=4", 12, 6, 2, 4, 5),
    JacCase("D=1 P=1 L=2", 1, 4, 1, 2, None),
    JacCase("batch of 1", 4, 9, 3, 3, 1),
]
assert JAC_CASES


def jac_params(cases):
    """The sheet asks for the Jacobian "for a given value of x": batches of x are the robustness tier."""
    return [pytest.param(c, id=c.id, marks=[pytest.mark.robustness] if c.batch is not None else []) for c in cases]


def jac_inputs(case: JacCase, seed: int, dtype=torch.float64):
    weights = make_weights(case.d, case.k, case.p, case.depth, seed, dtype)
    g = torch.Generator().manual_seed(seed + 1000)
    shape = (case.d,) if case.batch is None else (case.batch, case.d)
    return torch.randn(shape, generator=g, dtype=dtype), weights


def expected_jac_shape(case: JacCase):
    return (case.p, case.d) if case.batch is None else (case.batch, case.p, case.d)


@exercise("dl-a1.q2b")
@pytest.mark.parametrize("case", jac_params(JAC_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_autograd_jacobian_equals_jacrev(impl, case, seed):
    x, weights = jac_inputs(case, seed)
    got = by_autograd(impl.jacobian_autograd)(x, weights)
    assert_tensor(got, "jacobian_autograd", shape=expected_jac_shape(case))
    assert_close(got, ref_jacobian(x, weights), f"autograd Jacobian vs torch.func.jacrev [{case.id}]")


@exercise("dl-a1.q2b")
@pytest.mark.parametrize("case", jac_params(JAC_CASES[:6]))
def test_network_is_the_sheets_f(impl, case):
    x, weights = jac_inputs(case, seed=3)
    expected = ref_network(x, weights) if x.ndim == 1 else torch.stack([ref_network(r, weights) for r in x])
    assert_close(impl.network(x, weights), expected, f"f(x) = W_F tanh(W_L ... tanh(W_1 x)) [{case.id}]")


@exercise("dl-a1.q2b")
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_autograd_jacobian_equals_sympy(impl, depth, seed):
    weights, point, expected = make_weights(2, 2, 2, depth, seed), *sympy_jacobian(depth, seed)
    got = by_autograd(impl.jacobian_autograd)(torch.as_tensor(point), weights)
    assert_close(got, expected, f"sympy Jacobian, L={depth}")


@kept
def sympy_jacobian(depth: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A point and the Jacobian of the sheet's f there, derived by sympy for D = K = P = 2 and the
    weights make_weights draws from ``seed`` (kept per spec version)."""
    d, k, p = 2, 2, 2
    weights = make_weights(d, k, p, depth, seed)
    xs = sp.Matrix(sp.symbols(f"x0:{d}", real=True))
    h = xs
    for i in range(1, depth + 1):
        h = (sp.Matrix(weights[f"W{i}"].numpy()) * h).applyfunc(sp.tanh)
    f = sp.Matrix(weights["WF"].numpy()) * h
    point = np.random.default_rng(seed).normal(size=d)
    return point, np.array(f.jacobian(xs).evalf(30, subs=dict(zip(xs, point, strict=True))), dtype=np.float64)


@exercise("dl-a1.q2b")
@pytest.mark.robustness
@pytest.mark.parametrize("case, seed", [(JAC_CASES[0], 0), (JAC_CASES[1], 1), (JAC_CASES[4], 2), (JAC_CASES[-3], 3)],
                         ids=lambda v: v.id if isinstance(v, JacCase) else str(v))
def test_autograd_jacobian_leaves_x_and_the_weights_alone(impl, case, seed):
    """The caller's x and weights come back as they went in: no requires_grad, no .grad, the same
    values. Differentiating the caller's own x (``x.requires_grad_()``, ``.backward()``) leaves it
    marked and holding a gradient, which the next computation with x then carries along. The
    Jacobian itself, the sheet's claim, stays right: robustness, no points."""
    x, weights = jac_inputs(case, seed)
    arguments = {"x": x, **{f"weights[{name!r}]": w for name, w in weights.items()}}
    copies = {name: value.clone() for name, value in arguments.items()}
    impl.jacobian_autograd(x, weights)
    for name, value in arguments.items():
        assert not value.requires_grad, \
            (f"got {name}.requires_grad == True after jacobian_autograd(x, weights), but should be False: "
             f"differentiate a copy (x.detach().requires_grad_()), not the caller's tensor [{case.id}]")
        assert value.grad is None, \
            (f"got a .grad on the caller's {name} after jacobian_autograd(x, weights), but should be None: "
             f"use torch.autograd.grad on a copy, or .backward() on a copy [{case.id}]")
        assert_close(value, copies[name], f"the caller's {name} after jacobian_autograd(x, weights), "
                     f"changed in place [{case.id}]", tol=Tolerance(0, 0))


@exercise("dl-a1.q2c")
@pytest.mark.parametrize("case", jac_params(JAC_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_forward_mode_equals_reverse_mode(impl, case, seed):
    x, weights = jac_inputs(case, seed)
    with forbid("autograd"):
        got = impl.jacobian_forward(x, weights)
    assert_tensor(got, "jacobian_forward", shape=expected_jac_shape(case))
    assert_close(got, ref_jacobian(x, weights), f"forward mode vs torch.func.jacrev [{case.id}]")
    assert_close(got, impl.jacobian_autograd(x, weights), f"forward mode vs (b) [{case.id}]")


def forward_mode_property(impl, d, k, p, depth, batch, seed):
    x, weights = jac_inputs(JacCase("", d, k, p, depth, batch), seed)
    with forbid("autograd"):
        got = impl.jacobian_forward(x, weights)
    assert_close(got, ref_jacobian(x, weights), f"forward mode, D={d} K={k} P={p} L={depth} batch={batch}")


@exercise("dl-a1.q2c")
@given(d=st.integers(1, 6), k=st.integers(1, 12), p=st.integers(1, 6), depth=st.integers(1, 10),
       seed=st.integers(0, 2**16))
def test_forward_mode_property(impl, d, k, p, depth, seed):
    forward_mode_property(impl, d, k, p, depth, None, seed)


@exercise("dl-a1.q2c")
@pytest.mark.robustness
@given(d=st.integers(1, 6), k=st.integers(1, 12), p=st.integers(1, 6), depth=st.integers(1, 10),
       batch=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_forward_mode_property_on_batches(impl, d, k, p, depth, batch, seed):
    forward_mode_property(impl, d, k, p, depth, batch, seed)


@exercise("dl-a1.q2c")
@pytest.mark.parametrize("case", jac_params(JAC_CASES[:4]))
@pytest.mark.robustness
def test_forward_mode_in_float32(impl, case):
    x, weights = jac_inputs(case, seed=4, dtype=torch.float32)
    got = impl.jacobian_forward(x, weights)
    assert got.dtype == torch.float32, f"got dtype {got.dtype}, but should be torch.float32"
    x64, w64 = x.double(), {k: v.double() for k, v in weights.items()}
    assert_close(got, ref_jacobian(x64, w64), f"float32 forward mode [{case.id}]", dtype=torch.float32)


def _drop(key):
    return lambda w: {k: v for k, v in w.items() if k != key}


BAD_WEIGHTS = {
    "no WF": (_drop("WF"), ValueError),
    "no W1": (_drop("W1"), ValueError),
    "gap: W2 missing before W3": (_drop("W2"), ValueError),
    "W2 not K x K": (lambda w: {**w, "W2": w["W2"][:, :-1]}, ValueError),
    "WF not P x K": (lambda w: {**w, "WF": w["WF"][:, :-1]}, ValueError),
    "unknown key": (lambda w: {**w, "bias": w["W1"]}, ValueError),
    "integer weight": (lambda w: {**w, "W2": w["W2"].long()}, TypeError),
    "not a dict": (lambda w: list(w.values()), TypeError),
}


@exercise("dl-a1.q2b", "dl-a1.q2c")
@pytest.mark.parametrize("name", BAD_WEIGHTS)
@pytest.mark.parametrize("function", ["jacobian_autograd", "jacobian_forward"])
@pytest.mark.robustness
def test_jacobians_reject_bad_weights(impl, name, function):
    x, weights = jac_inputs(JacCase("", 2, 5, 3, 3, None), seed=0)
    make_bad, error = BAD_WEIGHTS[name]
    with pytest.raises(error):
        getattr(impl, function)(x, make_bad(weights))


@exercise("dl-a1.q2b", "dl-a1.q2c")
@pytest.mark.parametrize("bad_x, error", [
    (torch.ones(3, dtype=torch.float64), ValueError),
    (torch.ones(4, 2, 2, dtype=torch.float64), ValueError),
    (torch.ones(2, dtype=torch.int64), TypeError),
    (torch.ones(2, dtype=torch.float32), TypeError),
], ids=["wrong D", "3-D", "integer", "dtype differs from weights"])
@pytest.mark.parametrize("function", ["jacobian_autograd", "jacobian_forward"])
@pytest.mark.robustness
def test_jacobians_reject_bad_x(impl, bad_x, error, function):
    _, weights = jac_inputs(JacCase("", 2, 5, 3, 3, None), seed=0)
    with pytest.raises(error):
        getattr(impl, function)(bad_x, weights)


# ------------------------------------------------------------------------------- dl-a1.q2e
def model_macs(d, k, p, depth, batch, mode):
    """The spec's own count, matmul by matmul (M1 x M2 @ M2 x M3 = M1*M2*M3)."""
    products = [(batch, d, k)] + [(batch, k, k)] * (depth - 1)   # primal through the hidden layers
    if mode == "forward":
        products += [(batch * d, k, k)] * (depth - 1) + [(batch * d, k, p)]
    else:
        products += [(batch * p, k, k)] * (depth - 1) + [(batch * p, k, d)]
    return sum(a * b * c for a, b, c in products)


OP_CASES = [(2, 30, 10, depth, batch) for depth in (1, 3, 5, 10) for batch in (1, 4)] + \
    [(d, k, p, depth, 3) for d, k, p, depth in itertools.product((1, 7), (3, 16), (2, 9), (2, 4))]


@exercise("dl-a1.q2e")
@pytest.mark.parametrize("d, k, p, depth, batch", OP_CASES)
def test_op_count_model_equals_counted_flops(impl, d, k, p, depth, batch):
    x, weights = jac_inputs(JacCase("", d, k, p, depth, None if batch == 1 else batch), seed=0)
    model = impl.op_counts(d, k, p, depth, batch=batch)
    for mode in ("forward", "reverse"):
        counted = impl.run(count_macs, f"jacobian_{mode}", x, weights)   # counted where the code runs
        assert_equal(model[mode], model_macs(d, k, p, depth, batch, mode), f"{mode}-mode model",
                     slips={"L hidden K x K products counted, where there are L - 1 (the first layer is K x D)":
                            model_macs(d, k, p, depth + 1, batch, mode)})
        assert_equal(counted, model[mode], f"matmul MACs that FlopCounterMode counts, {mode} mode")


@exercise("dl-a1.q2e")
@pytest.mark.parametrize("case", jac_params(JAC_CASES[:8]))
def test_hand_reverse_mode_equals_jacrev(impl, case):
    x, weights = jac_inputs(case, seed=2)
    with forbid("autograd"):
        got = impl.jacobian_reverse(x, weights)
    assert_close(got, ref_jacobian(x, weights), f"reverse mode by hand [{case.id}]")


@exercise("dl-a1.q2e")
@given(d=st.integers(1, 200), p=st.integers(1, 200), k=st.integers(1, 64), depth=st.integers(1, 12))
def test_cheaper_mode_prediction(impl, d, p, k, depth):
    # forward - reverse = (L-1) K^2 (D - P): forward wins iff D < P, a tie at L = 1 or D = P
    expected = None if depth == 1 or d == p else ("forward" if d < p else "reverse")
    assert_equal(impl.cheaper_mode(d, k, p, depth), expected, f"cheaper mode, D={d} P={p} K={k} L={depth}")
    counts = impl.op_counts(d, k, p, depth)
    assert_equal(counts["forward"], model_macs(d, k, p, depth, 1, "forward"), "forward count")
    assert_equal(counts["reverse"], model_macs(d, k, p, depth, 1, "reverse"), "reverse count")


@exercise("dl-a1.q2e")
@pytest.mark.parametrize("bad", [{"D": 0}, {"K": -1}, {"L": 2.5}, {"P": True}], ids=str)
@pytest.mark.robustness
def test_op_counts_reject_non_positive_integers(impl, bad):
    args = {"D": 2, "K": 30, "P": 10, "L": 3, **bad}
    with pytest.raises(ValueError):
        impl.op_counts(args["D"], args["K"], args["P"], args["L"])


# ------------------------------------------------------------------------------- dl-a1.q2d
def spec_forward_seconds(depth: int, batch: int, *, calls: int = 50, repeats: int = 7) -> float:
    """The spec's own timing of one call of the plain forward pass (D=2, K=30, P=10, float32, a
    batch): the median over ``repeats`` blocks of ``calls`` calls, divided by ``calls``."""
    weights = make_weights(2, 30, 10, depth, seed=0, dtype=torch.float32)
    x = torch.randn(batch, 2, generator=torch.Generator().manual_seed(1))
    forward = lambda: ref_network(x.T, weights)
    forward()
    blocks = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            forward()
        blocks.append((time.perf_counter() - start) / calls)
    return float(np.median(blocks))


@exercise("dl-a1.q2d")
def test_timing_is_seconds_per_call(impl):
    """"seconds" is the time of one call: the plain forward pass's lies within a factor of 20 of the
    spec's own per-call timing of the same pass (a total over a timer's block of calls is hundreds of
    times longer, a time per sample of the batch of 64 is 64 times shorter)."""
    for depth in (1, 3):
        records = impl.time_jacobians((depth,), batch=64, min_run_time=0.02)
        got = next(r["seconds"] for r in records if r["ratio_to_forward_pass"] == 1.0)
        expected = spec_forward_seconds(depth, 64)
        assert expected / 20 < got < expected * 20, \
            (f"L={depth}: the plain forward pass timed {got:.2e} s, but one call takes {expected:.2e} s "
             f"(the spec's own timing): not a time per call")


@exercise("dl-a1.q2d")
def test_timing_records_every_method_and_depth(impl):
    records = impl.time_jacobians((1, 3), batch=8, min_run_time=0.01)
    methods = {r["method"] for r in records}
    assert len(records) == 2 * len(methods) and len(methods) >= 3, f"got records {records}"
    for record in records:
        assert record["seconds"] > 0 and record["device"] == "cpu" and record["batch"] == 8
    plain = {r["L"]: r["seconds"] for r in records if r["ratio_to_forward_pass"] == 1.0}
    assert set(plain) == {1, 3}, "every depth has its plain forward pass as the reference (ratio 1)"
    for L, seconds in plain.items():
        for record in (r for r in records if r["L"] == L):
            assert_close(record["ratio_to_forward_pass"], record["seconds"] / seconds,
                         f"L={L}, {record['method']}: ratio = seconds / seconds of the plain forward pass")
            # every Jacobian costs P = 10 backward (or D forward) passes on top of the forward pass
            # (measured: 3-15x its time), so nothing runs twice as fast as the ratios' reference; the
            # margin absorbs the noise of 10 ms timings on a loaded machine
            assert record["ratio_to_forward_pass"] > 0.5, \
                f"L={L}: {record['method']} timed far faster than the plain forward pass, the ratios' reference"


@exercise("dl-a1.q2d")
@pytest.mark.robustness
def test_timing_on_the_cpu_leaves_the_accelerator_alone(impl, monkeypatch):
    """CPU timings read a plain clock: no accelerator is queried or synchronised. (torch.utils.benchmark's
    default timer synchronises any accelerator present, so on a CUDA machine timing CPU code created a
    CUDA context in the process and waited on the GPU at every reading.)"""
    def touched(*args, **kwargs):
        raise AssertionError("timing on the CPU queried or synchronised an accelerator")

    for owner in (torch.cuda, getattr(torch, "accelerator", None)):
        for name in ("is_available", "synchronize", "current_accelerator"):
            if owner is not None and hasattr(owner, name):
                monkeypatch.setattr(owner, name, touched)
    records = impl.time_jacobians((1,), batch=4, min_run_time=0.01)
    assert records and all(r["device"] == "cpu" and r["seconds"] > 0 for r in records)


@exercise("dl-a1.q2d")
@pytest.mark.robustness
def test_timing_on_cuda_is_refused_without_cuda(impl):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal cannot be observed")
    with pytest.raises(ValueError, match="CUDA"):
        impl.time_jacobians((3,), batch=4, device="cuda", min_run_time=0.01)


@exercise("dl-a1.q2d")
@pytest.mark.gpu
def test_timing_on_cuda(impl):
    records = impl.time_jacobians((3,), batch=64, device="cuda", min_run_time=0.05)
    assert all(r["device"] == "cuda" and r["seconds"] > 0 for r in records)


# ------------------------------------------------- extreme but legal: residuals beyond cosh's range
@exercise("dl-a1.q1a", "dl-a1.q1b")
@pytest.mark.parametrize("dtype, residual", [(torch.float64, 800.0), (torch.float64, 5e4),
                                             (torch.float32, 100.0), (torch.float32, 1e3)], ids=str)
@pytest.mark.robustness
def test_log_cosh_beyond_the_overflow_of_cosh(impl, dtype, residual):
    """cosh(r) overflows for |r| > 710 in float64 and > 89 in float32, while log cosh(r) ~ |r| - log 2
    is a modest number: the cost and both gradients must stay finite and right there."""
    x, y, params = make_net(NetCase("", 6, 3, 4, "gaussian"), 3)
    y = y.sign() * residual + torch.arange(6, dtype=torch.float64)   # residuals of both signs
    expected_cost = ref_cost(x, y, *(params[n] for n in PARAMS))
    expected = ref_gradients(x, y, params)
    x_, y_, p_ = x.to(dtype), y.to(dtype), {k: v.to(dtype) for k, v in params.items()}
    cost = impl.logcosh_cost(x_, y_, *(p_[n] for n in PARAMS))
    assert bool(torch.isfinite(torch.as_tensor(cost))), f"J = {cost} at residuals ~{residual:g} ({dtype})"
    assert_close(cost, expected_cost, f"J at residuals ~{residual:g} ({dtype})", dtype=dtype)
    for source, got in (("closed form", closed_form(impl.logcosh_gradients)(x_, y_, p_)),
                        ("autograd", impl.logcosh_autograd_gradients(x_, y_, p_))):
        for name in GRAD_NAMES:
            assert bool(torch.isfinite(got[name]).all()), f"{source} dJ/d{name} not finite ({dtype})"
            assert_close(got[name], expected[name], f"{source} dJ/d{name} at residuals ~{residual:g}",
                         dtype=dtype, scale="expected")
