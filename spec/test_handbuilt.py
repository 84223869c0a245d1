"""dl-a1 question 3: networks with hand-set weights (XNOR, the tent, the soft threshold).

Convention of the interface: a net has ``layers``, a sequence of (W, b); every layer but the last
is followed by ReLU, the last is linear. Exactness is proved with exact rational arithmetic (sympy):
a ReLU net is continuous and piecewise linear, so it equals a continuous piecewise-linear target on
all of R when both agree at every kink of either, between kinks and at two points beyond the outer
kinks. The kinks of the net are found exactly, layer by layer. A dense float grid and hypothesis
then check the floating-point evaluation.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

from spec.asserts import assert_close, assert_equal

exercise = pytest.mark.exercise
X = sp.Symbol("x", real=True)


def rational_layers(net):
    return [(sp.Matrix(w.detach().double().numpy()).applyfunc(sp.Rational),
             sp.Matrix(b.detach().double().numpy().reshape(-1, 1)).applyfunc(sp.Rational)) for w, b in net.layers]


def exact_eval(layers, point) -> list:
    """The net at a point (a list of inputs), in exact arithmetic."""
    h = sp.Matrix(point)
    for i, (w, b) in enumerate(layers):
        h = w * h + b
        if i < len(layers) - 1:
            h = h.applyfunc(lambda v: sp.Max(0, v))
    return list(h)


def kinks(layers) -> list:
    """Every x where some unit of a 1-D-input net changes slope, found exactly layer by layer."""
    points: list = []
    for depth in range(len(layers) - 1):
        # between consecutive kinks of the layers below, this layer's pre-activations are linear
        grid = sorted(set(points))
        probes = [grid[0] - 1, *grid, grid[-1] + 1] if grid else [sp.Integer(-1), sp.Integer(1)]
        values = [exact_eval_linear_top(layers[:depth + 1], p) for p in probes]
        for unit in range(len(values[0])):
            f = [v[unit] for v in values]
            points += [p for p, fp in zip(probes, f, strict=True) if fp == 0]
            for (a, fa), (b, fb) in itertools.pairwise(zip(probes, f, strict=True)):
                if fa * fb < 0:
                    points.append(a + (b - a) * fa / (fa - fb))
            # beyond the outer probes a unit is linear: extend the two outermost segments
            for (a, fa), (b, fb) in (((probes[0], f[0]), (probes[1], f[1])),
                                     ((probes[-2], f[-2]), (probes[-1], f[-1]))):
                if fa != fb:
                    root = a - fa * (b - a) / (fb - fa)
                    if root < min(a, b) or root > max(a, b):
                        points.append(root)
    return sorted(set(points))


def exact_eval_linear_top(layers, point) -> list:
    """Pre-activations of the last given layer (ReLU after every layer before it)."""
    h = sp.Matrix([point])
    for i, (w, b) in enumerate(layers):
        h = w * h + b
        if i < len(layers) - 1:
            h = h.applyfunc(lambda v: sp.Max(0, v))
    return list(h)


def equal_everywhere(net, target, target_kinks) -> tuple[bool, object]:
    layers = rational_layers(net)
    points = sorted(set(kinks(layers)) | set(target_kinks))
    probes = [points[0] - 2, points[0] - 1, *points, points[-1] + 1, points[-1] + 2]
    probes += [(a + b) / 2 for a, b in itertools.pairwise(points)]
    for p in probes:
        got, expected = exact_eval(layers, [p])[0], target(p)
        if sp.simplify(got - expected) != 0:
            return False, (p, got, expected)
    return True, None


def tent(x):
    return sp.Piecewise((0, x < 0), (2 * x, x <= sp.Rational(1, 2)), (2 * (1 - x), x <= 1), (0, True))


def soft(s):
    return lambda x: sp.Max(sp.Abs(x) - s, 0) * sp.sign(x)


def float_tent(x):
    with np.errstate(over="ignore"):
            return np.where((x >= 0) & (x <= 0.5), 2 * x, np.where((x > 0.5) & (x <= 1), 2 * (1 - x), 0.0))


def float_soft(x, s):
    return np.maximum(np.abs(x) - s, 0) * np.sign(x)


DENSE = np.concatenate([np.linspace(-3, 4, 7001), [-1e300, -1e10, -1e-300, 0.0, 0.5, 1.0, 1e-300, 1e10, 1e300],
                        np.nextafter(np.array([0.0, 0.5, 1.0]), 2), np.nextafter(np.array([0.0, 0.5, 1.0]), -2)])


def perturbations(net):
    """Copies of the net with one weight or bias moved by 1/64 (each in turn)."""
    for i, (w, b) in enumerate(net.layers):
        for tensor_index, tensor in enumerate((w, b)):
            for flat in range(tensor.numel()):
                moved = tensor.detach().clone().double()
                moved.view(-1)[flat] += 1 / 64
                layers = list(net.layers)
                layers[i] = (moved, b) if tensor_index == 0 else (w, moved)
                yield f"layer {i + 1} {'W' if tensor_index == 0 else 'b'}[{flat}]", type(
                    "Perturbed", (), {"layers": tuple(layers)})()


def float_eval(net, x: np.ndarray) -> np.ndarray:
    """The spec's own float64 evaluation of a layers-only net on 1-D inputs."""
    h = x[:, None]
    for i, (w, b) in enumerate(net.layers):
        h = h @ w.detach().double().numpy().T + b.detach().double().numpy()
        if i < len(net.layers) - 1:
            h = np.maximum(h, 0)
    return h[:, 0]


def assert_check_is_sensitive(net, is_exact, grid):
    """Every single-weight perturbation that changes the function on ``grid`` must fail the exact
    check, and most perturbations must change it (a weight that only feeds a ReLU clipped to 0 on
    the whole relevant range may legitimately not matter)."""
    __tracebackhide__ = True
    reference = float_eval(net, grid)
    changed = 0
    for where, moved in perturbations(net):
        if not np.array_equal(float_eval(moved, grid), reference):
            changed += 1
            assert not is_exact(moved), f"perturbing {where} changed the function, but the check passed"
    total = sum(t.numel() for layer in net.layers for t in layer)
    assert changed >= total / 2, f"only {changed} of {total} perturbations change the function"


# ---------------------------------------------------------------------------- dl-a1.q3-xnor
XNOR_TABLE = {(0, 0): 1, (0, 1): 0, (1, 0): 0, (1, 1): 1}


@exercise("dl-a1.q3-xnor")
def test_xnor_is_exact_with_a_margin(impl):
    """The output is on the right side of 1/2 for all four inputs, in exact arithmetic; the margin (the
    smallest distance to 1/2) is the spec's own measurement and must be positive."""
    net = impl.xnor_net()
    layers = rational_layers(net)
    assert len(layers) in (2, 3), "one or two hidden layers"
    outputs = {inputs: exact_eval(layers, list(inputs))[0] for inputs in XNOR_TABLE}
    for inputs, truth in XNOR_TABLE.items():
        assert (outputs[inputs] > sp.Rational(1, 2)) == bool(truth), \
            f"XNOR{inputs}: output {outputs[inputs]} on the wrong side of 1/2"
    margin = min(abs(out - sp.Rational(1, 2)) for out in outputs.values())
    assert margin > 0, f"an output sits exactly at 1/2 (margin {margin})"
    got = net(torch.tensor(list(XNOR_TABLE), dtype=torch.float64))
    assert_equal([int(v > 0.5) for v in got], list(XNOR_TABLE.values()), "the net's own evaluation")


@exercise("dl-a1.q3-xnor")
def test_xnor_check_catches_every_perturbed_weight(impl):
    """The check is sensitive: moving any single weight or bias by 1/64 breaks exactness."""
    for where, moved in perturbations(impl.xnor_net()):
        outs = [exact_eval(rational_layers(moved), list(i))[0] for i in XNOR_TABLE]
        exact = [sp.Rational(t) for t in XNOR_TABLE.values()]
        assert outs != exact, f"perturbing {where} left the XNOR outputs unchanged"


# ---------------------------------------------------------------------------- dl-a1.q3-tent
@exercise("dl-a1.q3-tent")
def test_tent_equals_f_on_all_of_r_exactly(impl):
    net = impl.tent_net()
    assert len(net.layers) in (2, 3), "one or two hidden layers"
    ok, where = equal_everywhere(net, tent, [0, sp.Rational(1, 2), 1])
    assert ok, f"the tent net differs from f at x={where[0]}: got {where[1]}, but should be {where[2]}"


@exercise("dl-a1.q3-tent")
def test_tent_on_a_dense_float_grid(impl):
    # exactness is proved in exact arithmetic above; in floating point the net may round differently
    # (tent(0.01) = 0.020000000000000018), so the grid is compared within float64's tolerance
    got = impl.tent_net()(torch.as_tensor(DENSE))
    assert_close(got, float_tent(DENSE), "the tent net on a dense grid")


@exercise("dl-a1.q3-tent")
@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_tent_property(impl, point):
    got = impl.tent_net()(torch.tensor([point], dtype=torch.float64))
    assert_close(got, float_tent(np.array([point])), f"tent({point!r})", scale="expected")


@exercise("dl-a1.q3-tent")
def test_tent_check_catches_perturbed_weights(impl):
    assert_check_is_sensitive(impl.tent_net(), lambda n: equal_everywhere(n, tent, [0, sp.Rational(1, 2), 1])[0],
                              np.linspace(-3, 4, 701))


# ------------------------------------------------------------------- dl-a1.q3-softthreshold
S_VALUES = [0.0, 0.25, 1.0, 3.0, 1e-300, 1e10, 0.1]


@exercise("dl-a1.q3-softthreshold")
@pytest.mark.parametrize("s", S_VALUES, ids=lambda s: f"s={s:g}")
def test_soft_threshold_exact_on_all_of_r(impl, s):
    net = impl.soft_threshold_net(s)
    assert len(net.layers) in (2, 3), "one or two hidden layers"
    r = sp.Rational(s)
    ok, where = equal_everywhere(net, soft(r), [-r, 0, r])
    assert ok, f"s={s}: differs at x={where[0]}: got {where[1]}, but should be {where[2]}"


@exercise("dl-a1.q3-softthreshold")
def test_soft_threshold_identity_symbolically():
    """The target itself, for a symbolic s >= 0: relu(x - s) - relu(-x - s) on each region."""
    s = sp.Symbol("s", positive=True)
    net = lambda v: sp.Max(0, v - s) - sp.Max(0, -v - s)
    for point in (-2 * s - 1, -s, -s / 2, 0, s / 2, s, 2 * s + 1):
        assert sp.simplify(net(point) - soft(s)(point)) == 0, f"at x = {point}"


@exercise("dl-a1.q3-softthreshold")
@given(point=st.floats(allow_nan=False, allow_infinity=False, width=64),
       s=st.floats(0, 1e300, allow_nan=False))
def test_soft_threshold_property(impl, point, s):
    got = impl.soft_threshold_net(s)(torch.tensor([point], dtype=torch.float64))
    assert_close(got, float_soft(np.array([point]), s), f"soft threshold s={s!r} at {point!r}")


@exercise("dl-a1.q3-softthreshold")
def test_soft_threshold_dense_grid(impl):
    for s in S_VALUES:
        got = impl.soft_threshold_net(s)(torch.as_tensor(DENSE)).numpy()
        assert_close(got, float_soft(DENSE, s), f"soft threshold on a dense grid, s={s}")


@exercise("dl-a1.q3-softthreshold")
@pytest.mark.parametrize("s", [-1e-9, -1.0, float("nan"), "1"])
@pytest.mark.robustness
def test_soft_threshold_rejects_negative_s(impl, s):
    with pytest.raises(ValueError):
        impl.soft_threshold_net(s)


@exercise("dl-a1.q3-softthreshold")
def test_soft_threshold_check_catches_perturbed_weights(impl):
    assert_check_is_sensitive(impl.soft_threshold_net(1.0),
                              lambda n: equal_everywhere(n, soft(sp.Integer(1)), [-1, 0, 1])[0],
                              np.linspace(-4, 4, 801))
