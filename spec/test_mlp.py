"""ex08 exercise 3, last part: an MLP with one hidden layer, and a reproducible hyper-parameter search.

Oracle for "beats the linear fit": numpy's least-squares line on the same data.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spec.asserts import assert_equal, assert_tensor

exercise = pytest.mark.exercise


@exercise("ex08.mlp")
@pytest.mark.parametrize("hidden", [1, 2, 7, 64])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_mlp_structure(impl, hidden, activation):
    torch.manual_seed(0)
    model = impl.MLP(hidden, activation)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert_equal([(m.in_features, m.out_features) for m in linears], [(1, hidden), (hidden, 1)], "layers")
    kinds = {type(m) for m in model.modules()}
    expected = torch.nn.ReLU if activation == "relu" else torch.nn.Sigmoid
    assert expected in kinds, f"the MLP should use {expected.__name__}"
    assert_equal(sum(p.numel() for p in model.parameters()), 3 * hidden + 1, "parameter count 3h + 1")
    assert_tensor(model(torch.randn(5, 1)), "MLP output", shape=(5, 1))


@exercise("ex08.mlp")
@pytest.mark.parametrize("bad", [0, -2, 1.5, "relu"])
def test_mlp_rejects_bad_hidden_size(impl, bad):
    with pytest.raises(ValueError):
        impl.MLP(bad)


@exercise("ex08.mlp")
def test_mlp_rejects_unknown_activation(impl):
    with pytest.raises(ValueError):
        impl.MLP(4, "tanhh")


SMALL_GRID = dict(hidden_sizes=(2, 16), activations=("relu", "sigmoid"), lrs=(0.05,), steps=800)


@pytest.fixture(scope="module")
def searched(impl):
    x, y = impl.ex08_nonlinear_data()
    return x, y, impl.search_mlp(x, y, seed=0, **SMALL_GRID)


@exercise("ex08.mlp")
def test_search_is_deterministic(impl, searched):
    x, y, (best, rows) = searched
    again = impl.search_mlp(x, y, seed=0, **SMALL_GRID)
    assert_equal(again, (best, rows), "the same seed must give the same search")
    assert_equal(len(rows), 4, "one row per grid point")
    assert best == min(rows, key=lambda r: r["val_mse"]), "the best row has the lowest validation MSE"


@exercise("ex08.mlp")
def test_tuned_mlp_beats_the_linear_fit(impl, searched):
    """Measured: least-squares line MSE 0.89, tuned MLP 0.01 on the embedded non-linear data."""
    x, y, (best, _) = searched
    model = impl.fit_mlp(x, y, hidden_size=best["hidden_size"], activation=best["activation"], lr=best["lr"],
                         steps=800, seed=0)
    design = np.c_[x.numpy(), np.ones(len(x))]
    coef = np.linalg.lstsq(design, y.numpy(), rcond=None)[0]
    linear_mse = float(((design @ coef - y.numpy()) ** 2).mean())
    with torch.no_grad():
        mlp_mse = float(((model(x) - y) ** 2).mean())
    assert mlp_mse <= 0.2 * linear_mse, f"MLP MSE {mlp_mse:.4f} should be <= 0.2 x the linear fit's {linear_mse:.4f}"
