"""Two moons, "Backpropagation Implementation": forward and backward of
x -> Linear -> ReLU -> Linear -> SoftMax -> CE by hand, one gradient-descent step and training.

The sheet forbids nn.Linear, torch.optim and automatic differentiation in this code; every call of
the solution here runs with those entry points patched to raise (grader/sandboxed/rules.py) and on tensors that
do not require grad. Oracles: nn.Linear and float64 autograd on the spec's side, torch.optim.SGD,
and sympy for the softmax/cross-entropy derivative.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import sympy as sp
import torch

from grader.sandboxed.rules import forbid, require
from spec import data as datasets
from spec.asserts import assert_close, assert_equal, assert_tensor
from spec.tolerances import Tolerance

exercise = pytest.mark.exercise
RULES = ("autograd", "nn.Module", "torch.optim")
NAMES = ("W1", "b1", "W2", "b2")


class Case(NamedTuple):
    n: int
    d: int
    h: int
    c: int

    def __repr__(self):
        return f"N={self.n} D={self.d} H={self.h} C={self.c}"


CASES = [Case(1, 2, 3, 2), Case(16, 2, 16, 2), Case(7, 5, 4, 3), Case(64, 3, 32, 10), Case(2, 1, 1, 2),
         Case(33, 8, 50, 4)]


def problem(case: Case, seed: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    params = {"W1": torch.randn(case.h, case.d, generator=g, dtype=dtype),
              "b1": torch.randn(case.h, generator=g, dtype=dtype) * 0.5,
              "W2": torch.randn(case.c, case.h, generator=g, dtype=dtype),
              "b2": torch.randn(case.c, generator=g, dtype=dtype) * 0.5}
    x = torch.randn(case.n, case.d, generator=g, dtype=dtype)
    y = torch.randint(0, case.c, (case.n,), generator=g)
    return x, y, params


def reference(x, y, params):
    """nn.Linear layers holding the same numbers, and autograd of the mean cross-entropy."""
    first = torch.nn.Linear(x.shape[1], params["W1"].shape[0], dtype=x.dtype)
    second = torch.nn.Linear(params["W1"].shape[0], params["W2"].shape[0], dtype=x.dtype)
    with torch.no_grad():
        first.weight.copy_(params["W1"]), first.bias.copy_(params["b1"])
        second.weight.copy_(params["W2"]), second.bias.copy_(params["b2"])
    logits = second(torch.relu(first(x)))
    loss = torch.nn.functional.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, [first.weight, first.bias, second.weight, second.bias])
    return logits.detach(), loss.detach(), dict(zip(NAMES, grads, strict=True)), (first, second)


# ------------------------------------------------------------------------- moons.manual-forward
@exercise("moons.manual-forward")
@pytest.mark.parametrize("case", CASES, ids=repr)
@pytest.mark.parametrize("seed_", [0, 1, 2])
def test_forward_equals_nn_reference(impl, case, seed_):
    x, y, params = problem(case, seed_)
    logits, _, _, _ = reference(x, y, params)
    with require("softmax", rule="use torch.softmax() in the forward pass", forbidden=RULES):
        cache = impl.manual_forward(x, params)
    assert_tensor(cache.logits, "logits", shape=(case.n, case.c))
    assert_close(cache.logits, logits, f"logits vs nn.Linear [{case!r}]")
    assert_close(cache.probs, torch.softmax(logits, 1), f"softmax probabilities [{case!r}]")
    z1 = x @ params["W1"].T + params["b1"]
    assert_close(cache.z1, z1, "hidden pre-activations z1")
    assert_close(cache.a1, torch.relu(z1), "hidden activations relu(z1)")


@exercise("moons.manual-forward")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_softmax_of_large_logits(impl, dtype):
    """Logits in the thousands: exp overflows (float64 beyond 709, float32 beyond 88), so a softmax
    that does not subtract each row's maximum first gives inf / inf = nan. torch.softmax is the oracle."""
    x, y, params = problem(Case(16, 2, 16, 3), 4)
    params = {**params, "W2": params["W2"] * 1000.0, "b2": params["b2"] * 1000.0}
    logits, _, _, _ = reference(x, y, params)
    assert logits.abs().max() > 800, "the case should reach logits beyond exp's range"
    x, params = x.to(dtype), {k: v.to(dtype) for k, v in params.items()}
    with forbid(*RULES):
        cache = impl.manual_forward(x, params)
    assert_close(cache.probs, torch.softmax(logits, 1), f"softmax of logits up to {float(logits.abs().max()):.0f}",
                 dtype=dtype)


@exercise("moons.manual-forward")
@pytest.mark.parametrize("case", CASES[:3], ids=repr)
@pytest.mark.robustness
def test_forward_in_float32(impl, case):
    x, y, params = problem(case, 5, torch.float32)
    logits, _, _, _ = reference(x.double(), y, {k: v.double() for k, v in params.items()})
    with require("softmax", rule="use torch.softmax() in the forward pass", forbidden=RULES):
        cache = impl.manual_forward(x, params)
    assert cache.logits.dtype == torch.float32
    assert_close(cache.logits, logits, "float32 logits", dtype=torch.float32)


BAD_FORWARD = {
    "W1 of wrong width": (lambda x, p: (x, {**p, "W1": p["W1"][:, :-1]}), ValueError),
    "b2 of wrong length": (lambda x, p: (x, {**p, "b2": p["b2"][:-1]}), ValueError),
    "missing W2": (lambda x, p: (x, {k: v for k, v in p.items() if k != "W2"}), ValueError),
    "x a vector": (lambda x, p: (x[0], p), ValueError),
    "integer x": (lambda x, p: (x.long(), p), TypeError),
}


@exercise("moons.manual-forward")
@pytest.mark.parametrize("name", BAD_FORWARD)
@pytest.mark.robustness
def test_forward_rejects_bad_input(impl, name):
    x, _, params = problem(Case(4, 3, 5, 2), 0)
    make_bad, error = BAD_FORWARD[name]
    with pytest.raises(error):
        impl.manual_forward(*make_bad(x, params))


# ------------------------------------------------------------------------ moons.manual-backward
@exercise("moons.manual-backward")
@pytest.mark.parametrize("c", [2, 3, 5])
def test_sympy_softmax_cross_entropy_derivative(c):
    z = sp.symbols(f"z0:{c}", real=True)
    denominator = sum(sp.exp(v) for v in z)
    softmax = [sp.exp(v) / denominator for v in z]
    for label in range(c):
        loss = -sp.log(softmax[label])
        for j in range(c):
            expected = softmax[j] - (1 if j == label else 0)
            assert sp.simplify(sp.diff(loss, z[j]) - expected) == 0, f"dCE/dz_{j} for y={label}"


@exercise("moons.manual-backward")
@pytest.mark.parametrize("case", CASES, ids=repr)
@pytest.mark.parametrize("seed_", [0, 1, 2, 3])
def test_backward_equals_autograd(impl, case, seed_):
    x, y, params = problem(case, seed_)
    _, _, expected, _ = reference(x, y, params)
    with forbid(*RULES), torch.no_grad():
        grads = impl.manual_backward(x, y, params, impl.manual_forward(x, params))
    unmasked = backward_without_relu_mask(x, y, params)
    for name in NAMES:
        assert_tensor(grads[name], f"dL/d{name}", shape=params[name].shape)
        assert_close(grads[name], expected[name], f"dL/d{name} by hand vs autograd [{case!r}]",
                     tol=Tolerance(1e-10, 1e-10), count=case.n,
                     slips={"the ReLU's derivative left out of the backward pass (dL/dz1 taken as dL/da1, "
                            "without the mask z1 > 0)": unmasked[name]} if name in ("W1", "b1") else {})


def backward_without_relu_mask(x, y, params) -> dict:
    """The slip of a backward pass that forgets ReLU'(z1): for naming it."""
    z1 = x @ params["W1"].T + params["b1"]
    a1 = torch.relu(z1)
    p = torch.softmax(a1 @ params["W2"].T + params["b2"], dim=1)
    dz2 = (p - torch.nn.functional.one_hot(y, p.shape[1]).to(p.dtype)) / len(x)
    dz1 = dz2 @ params["W2"]
    return {"W1": dz1.T @ x, "b1": dz1.sum(0), "W2": dz2.T @ a1, "b2": dz2.sum(0)}


@exercise("moons.manual-backward")
def test_backward_on_dead_relu_units(impl):
    """Hidden units with z1 <= 0 for every sample pass no gradient to W1, b1."""
    x, y, params = problem(Case(8, 2, 4, 2), 1)
    params["b1"] = torch.tensor([-100.0, 0.0, 100.0, -100.0], dtype=torch.float64)
    params["W1"][1] = 0.0  # z1 = 0 exactly: ReLU'(0) = 0
    _, _, expected, _ = reference(x, y, params)
    with forbid(*RULES):
        grads = impl.manual_backward(x, y, params, impl.manual_forward(x, params))
    for name in ("W1", "b1"):
        assert_close(grads[name], expected[name], f"dL/d{name} with dead units", tol=Tolerance(1e-10, 1e-10))
    assert float(grads["b1"][[0, 1, 3]].abs().max()) == 0.0, "dead units must get exactly zero gradient"


@exercise("moons.manual-backward")
@pytest.mark.robustness
def test_backward_rejects_bad_labels(impl):
    x, y, params = problem(Case(4, 3, 5, 2), 0)
    cache = impl.manual_forward(x, params)
    with pytest.raises(ValueError):
        impl.manual_backward(x, torch.tensor([0, 1, 2, 0]), params, cache)
    with pytest.raises(TypeError):
        impl.manual_backward(x, y.float(), params, cache)


# --------------------------------------------------------------------------- moons.manual-train
@exercise("moons.manual-train")
@pytest.mark.parametrize("case", CASES[:4], ids=repr)
@pytest.mark.parametrize("lr", [0.01, 0.5, 3.0])
def test_one_step_equals_autograd_and_sgd(impl, case, lr):
    x, y, params = problem(case, 9)
    _, _, _, (first, second) = reference(x, y, params)
    optimizer = torch.optim.SGD([*first.parameters(), *second.parameters()], lr=lr)
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(second(torch.relu(first(x))), y).backward()
    optimizer.step()
    originals = {k: v.clone() for k, v in params.items()}
    with forbid(*RULES):
        grads = impl.manual_backward(x, y, params, impl.manual_forward(x, params))
        stepped = impl.manual_step(params, grads, lr)
    expected = dict(zip(NAMES, (first.weight, first.bias, second.weight, second.bias), strict=True))
    for name in NAMES:
        assert_close(stepped[name], expected[name].detach(), f"{name} after one step, lr={lr}")
        assert_close(params[name], originals[name], f"{name}: the input parameters stay unchanged")


@exercise("moons.manual-train")
@pytest.mark.parametrize("lr", [0, -0.1, "0.1"])
@pytest.mark.robustness
def test_step_rejects_bad_learning_rates(impl, lr):
    x, y, params = problem(Case(4, 3, 5, 2), 0)
    grads = impl.manual_backward(x, y, params, impl.manual_forward(x, params))
    with pytest.raises(ValueError):
        impl.manual_step(params, grads, lr)


@exercise("moons.manual-train")
@pytest.mark.parametrize("seed_", range(4))
def test_training_reaches_95_percent_without_autograd(impl, seed_):
    data = datasets.two_moons(seed=seed_)
    with forbid(*RULES):
        history = impl.train_manual(data, seed=seed_)
    predictions = impl.predict(data.x_test, history.params)
    accuracy = float((predictions == data.y_test).float().mean())
    assert_close(history.test_accuracy, accuracy, "recorded test accuracy", dtype=torch.float32)
    assert accuracy >= 0.95, f"got test accuracy {accuracy:.3f}, but should be >= 0.95 (seed {seed_})"
    loss = np.array(history.loss)
    assert loss[-1] < 0.25 * loss[0], f"loss {loss[0]:.3f} -> {loss[-1]:.3f}: should fall by 4x or more"
    window = max(1, len(loss) // 10)
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid")[::window]
    assert (np.diff(smooth) < 0).all(), f"the smoothed loss curve should decrease: {smooth.round(3)}"


@exercise("moons.manual-train")
def test_snapshots_and_decision_grid(impl):
    data = datasets.two_moons(seed=0)
    history = impl.train_manual(data, steps=120, seed=0, snapshot_every=40)
    assert_equal(sorted(history.snapshots), [0, 40, 80, 120], "snapshot steps")
    assert_equal(len(history.loss), 120, "one loss per step")
    xx, yy, p1 = (torch.as_tensor(np.asarray(v)) for v in impl.decision_grid(history.params, n=25))
    assert_equal(tuple(p1.shape), (25, 25), "shape of the class-1 probability on the grid")
    points = torch.stack([xx.ravel(), yy.ravel()], 1)
    logits, _, _, _ = reference(points.double(), torch.zeros(len(points), dtype=torch.int64),
                                {k: v.double() for k, v in history.params.items()})
    assert_close(p1.ravel(), torch.softmax(logits, 1)[:, 1], "grid probabilities", dtype=torch.float32)
    first = history.snapshots[0]
    assert not torch.equal(first["W1"], history.params["W1"]), "snapshots must be copies, not the live tensors"


# ------------------------------------------------------------- extreme but legal: logits ~ 200
def logits_near_200(dtype):
    """torch.softmax (which the sheet asks for) is stable where exp(logit) overflows: exp(200) is
    inf in float32. A net whose logits reach +-200, the regime of a badly scaled or long-trained net."""
    x, y, params = problem(Case(12, 3, 8, 3), 11)
    params["W2"] = params["W2"] * 40 / params["W2"].abs().max()
    params["W1"] = params["W1"] * 3
    logits, _, expected, _ = reference(x, y, params)
    assert float(logits.abs().max()) > 150, "the construction should reach logits near 200"
    return x.to(dtype), y, {k: v.to(dtype) for k, v in params.items()}, logits, expected


@exercise("moons.manual-forward")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_forward_with_logits_near_200(impl, dtype):
    x, _, params, logits, _ = logits_near_200(dtype)
    with require("softmax", rule="use torch.softmax() in the forward pass", forbidden=RULES):
        cache = impl.manual_forward(x, params)
    assert bool(torch.isfinite(cache.probs).all()), f"softmax of logits ~200 gave {cache.probs}"
    assert_close(cache.probs, torch.softmax(logits, 1), f"softmax probabilities at logits ~200 ({dtype})",
                 dtype=dtype)


@exercise("moons.manual-backward")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_backward_with_logits_near_200(impl, dtype):
    x, y, params, _, expected = logits_near_200(dtype)
    with forbid(*RULES), torch.no_grad():
        grads = impl.manual_backward(x, y, params, impl.manual_forward(x, params))
    tol = Tolerance(1e-10, 1e-10) if dtype == torch.float64 else Tolerance(1e-3, 1e-4)
    for name in NAMES:
        assert bool(torch.isfinite(grads[name]).all()), f"dL/d{name} not finite at logits ~200"
        assert_close(grads[name], expected[name], f"dL/d{name} at logits ~200 ({dtype})", tol=tol,
                     scale="expected")
