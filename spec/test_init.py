"""dl-a1 question 4: my_model(depth), the four initializations, per-layer activations and gradient
norms (depth 8, a minibatch of 256) before and after 5 epochs of SGD, and the discussion.

Thresholds come from measurement on the embedded digits (scikit-learn's 8 x 8 digits scaled to
784 inputs) over seeds 0-2, with margins; the measured values are quoted next to each claim.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from spec import data as datasets
from spec.asserts import assert_close, assert_equal, assert_tensor
from spec.observe import linear_layers, model_facts

exercise = pytest.mark.exercise
SEEDS = (0, 1, 2)


# --------------------------------------------------------------------------------- dl-a1.q4a
@exercise("dl-a1.q4a")
@pytest.mark.parametrize("depth", [1, 2, 3, 8, 12])
def test_my_model_shapes_and_parameter_count(impl, depth):
    net = impl.my_model(depth)
    facts = impl.run(model_facts, net)
    assert facts["is_module"], "my_model(depth) should be an nn.Module"
    assert "ModuleList" in facts["types"], "layers held in an nn.ModuleList"
    linears = [m for m in facts["modules"] if isinstance(m, torch.nn.Linear)]
    sizes = [(m.in_features, m.out_features) for m in linears]
    assert_equal(sizes, [(784, 50)] + [(50, 50)] * (depth - 1) + [(50, 10)], f"layer sizes at depth {depth}")
    expected = 785 * 50 + (depth - 1) * 51 * 50 + 51 * 10
    assert_equal(facts["parameters"], expected, "parameter count")
    for batch in (1, 7, 256):
        assert_tensor(net(torch.rand(batch, 784)), "logits", shape=(batch, 10))


@exercise("dl-a1.q4a")
def test_tanh_non_linearity(impl):
    torch.manual_seed(0)
    net = impl.my_model(3)
    x = torch.rand(5, 784)
    linears = impl.run(linear_layers, net)
    h = x
    for layer in linears[:-1]:
        h = torch.tanh(layer(h))
    assert_close(net(x), linears[-1](h), "forward = Linear/tanh stack", dtype=torch.float32)


@exercise("dl-a1.q4a")
@pytest.mark.parametrize("depth", [0, -1, 2.5, "8"])
@pytest.mark.robustness
def test_bad_depth_is_rejected(impl, depth):
    with pytest.raises(ValueError):
        impl.my_model(depth)


@exercise("dl-a1.q4a")
@pytest.mark.parametrize("bad", [torch.rand(4, 783), torch.rand(784), torch.rand(2, 28, 28)], ids=["783", "1-D", "3-D"])
@pytest.mark.robustness
def test_bad_input_is_rejected(impl, bad):
    with pytest.raises(ValueError):
        impl.my_model(2)(bad)


# --------------------------------------------------------------------------------- dl-a1.q4b
@exercise("dl-a1.q4b")
@pytest.mark.parametrize("d", [0.01, 0.1, 2.0])
@pytest.mark.parametrize("seed_", SEEDS)
def test_uniform_init_bounds_and_variance(impl, d, seed_):
    torch.manual_seed(seed_)
    layers = impl.run(linear_layers, impl.my_model(8).initialize(d))
    weights = torch.cat([m.weight.detach().reshape(-1) for m in layers])
    biases = torch.cat([m.bias.detach() for m in layers])
    assert float(weights.abs().max()) <= d, f"a weight outside [-{d}, {d}]"
    assert float(biases.abs().max()) == 0.0, "biases must be zero"
    # U(-d, d) has variance d^2/3; with n = 57,710 weights the sample variance is within 2 % w.p. ~1
    variance = float(weights.double().var())
    assert abs(variance / (d**2 / 3) - 1) < 0.02, f"sample variance {variance:.4g} vs d^2/3 = {d**2 / 3:.4g}"
    assert float(weights.abs().max()) > 0.99 * d, "the draws should reach near the bound"


@exercise("dl-a1.q4b")
@pytest.mark.parametrize("seed_", SEEDS)
@pytest.mark.parametrize("depth", [1, 8])
def test_xavier_init_equals_torch_xavier_uniform(impl, seed_, depth):
    """Same seed, same draws: torch.nn.init.xavier_uniform_ (gain 1) applied to every Linear weight
    in order gives exactly the weights of initialize("xavier"), so the bounds agree."""
    torch.manual_seed(seed_)
    net = impl.run(linear_layers, impl.my_model(depth).initialize("xavier"))
    torch.manual_seed(seed_)
    reference = impl.run(linear_layers, impl.my_model(depth))   # the same construction draws, then torch's Xavier
    for layer in reference:
        torch.nn.init.xavier_uniform_(layer.weight)
    pairs = zip(net, reference, strict=True)
    for ours, theirs in pairs:
        assert torch.equal(ours.weight, theirs.weight), f"layer {tuple(ours.weight.shape)}: not torch's Xavier draw"
        assert ours.bias.abs().max().item() == 0.0, "biases must be zero"


@exercise("dl-a1.q4b")
@pytest.mark.parametrize("n_in, n_out", [(784, 50), (50, 50), (50, 10), (1, 1)])
def test_xavier_bound_formula(impl, n_in, n_out):
    assert_close(impl.xavier_bound(n_in, n_out), np.sqrt(6 / (n_in + n_out)), f"sqrt(6 / ({n_in} + {n_out}))")


@exercise("dl-a1.q4b")
@pytest.mark.parametrize("d", [0, -0.1, "kaiming", None])
@pytest.mark.robustness
def test_bad_d_is_rejected(impl, d):
    with pytest.raises(ValueError):
        impl.my_model(2).initialize(d)


# ----------------------------------------------------------------------------- c, d, e
@pytest.fixture(scope="module")
def studies(impl):
    return {seed: impl.init_study(depth=8, seed=seed) for seed in SEEDS}


@exercise("dl-a1.q4c")
def test_statistics_cover_every_layer(studies):
    for results in studies.values():
        assert set(results) == {0.01, 0.1, 2.0, "xavier"}
        for result in results.values():
            for stats in (result.before, result.after):
                for name in ("mean_activation", "mean_abs_activation", "grad_norm"):
                    assert_equal(len(getattr(stats, name)), 8, f"{name}: one value per layer at depth 8")


@exercise("dl-a1.q4c")
def test_statistics_match_an_independent_pass(impl):
    torch.manual_seed(5)
    net = impl.my_model(8).initialize("xavier")
    data = datasets.digits_784(seed=0)
    x, y = data.x_train[:256], data.y_train[:256]
    stats = impl.layer_statistics(net, x, y)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    h, acts = x, []
    for layer in linears[:-1]:
        h = torch.tanh(layer(h))
        h.retain_grad()
        acts.append(h)
    torch.nn.functional.cross_entropy(linears[-1](h), y).backward()
    assert_close(stats.mean_activation, [a.mean().item() for a in acts], "mean post-activation", dtype=torch.float32)
    assert_close(stats.grad_norm, [a.grad.norm().item() for a in acts], "||dL/dh|| per layer", dtype=torch.float32)


@exercise("dl-a1.q4c")
def test_small_init_shrinks_activations_and_gradients(studies):
    """d = 0.01, measured: mean |activation| 0.05-0.06 in layer 1, below 1e-4 from layer 3 on; gradient
    norm 2.5e-3 at layer 8 and 5e-13 at layer 1."""
    for seed, results in studies.items():
        r = results[0.01].before
        act, grad = np.array(r.mean_abs_activation), np.array(r.grad_norm)
        assert (np.diff(act) < 0).all() and act[-1] < 1e-6, f"seed {seed}: activations {act}"
        assert (np.diff(grad) > 0).all() and grad[0] < 1e-8 * grad[-1], f"seed {seed}: gradient norms {grad}"


@exercise("dl-a1.q4c")
def test_large_init_saturates_and_its_gradients_grow_toward_the_input(studies):
    """d = 2.0, measured: mean |activation| 0.93-0.96 in every layer (saturated tanh); the gradient
    norm grows toward the input about 2x per layer (0.66 at layer 8, 110-170 at layer 1): with
    |W| this large the product of Jacobians explodes rather than vanishes."""
    for seed, results in studies.items():
        r = results[2.0].before
        act, grad = np.array(r.mean_abs_activation), np.array(r.grad_norm)
        assert (act > 0.9).all(), f"seed {seed}: mean |activation| {act} should be near 1"
        assert (np.diff(grad) < 0).all() and grad[0] > 20 * grad[-1], f"seed {seed}: gradient norms {grad}"


@exercise("dl-a1.q4c")
def test_xavier_stays_in_a_band(studies):
    """Xavier, measured: mean |activation| 0.18-0.42 and gradient norms 0.03-0.08 across the 8 layers."""
    for seed, results in studies.items():
        r = results["xavier"].before
        act, grad = np.array(r.mean_abs_activation), np.array(r.grad_norm)
        assert ((act > 0.1) & (act < 0.6)).all(), f"seed {seed}: activations {act} outside [0.1, 0.6]"
        assert grad.max() < 5 * grad.min(), f"seed {seed}: gradient norms {grad} vary by more than 5x"


@exercise("dl-a1.q4d")
def test_xavier_ends_best_and_small_init_stays_at_chance(studies):
    """Measured test accuracy after 5 epochs: Xavier 0.47-0.60, d = 0.01 0.10, d = 0.1 0.05-0.16,
    d = 2.0 0.10-0.18 (chance is 0.10)."""
    for seed, results in studies.items():
        final = {d: r.test_accuracy[-1] for d, r in results.items()}
        assert max(final, key=final.get) == "xavier", f"seed {seed}: final accuracies {final}"
        assert final["xavier"] >= 0.35, f"seed {seed}: Xavier reaches only {final['xavier']:.2f}"
        assert final[0.01] <= 0.15, f"seed {seed}: d = 0.01 should stay near chance, got {final[0.01]:.2f}"
        for result in results.values():
            assert_equal((len(result.train_accuracy), len(result.test_accuracy)), (5, 5), "one value per epoch")


@pytest.fixture(scope="module")
def small_studies(impl):
    """Depth 2 and two epochs: a study cheap enough to draw twice."""
    return {seed: impl.init_study(depth=2, epochs=2, seed=seed) for seed in (0, 1)}


@exercise("dl-a1.q4d")
def test_each_seed_draws_its_own_study(small_studies):
    """The seed draws the initial weights (and the minibatch order): two seeds, two different starts."""
    starts = {tuple(results["xavier"].before.grad_norm) for results in small_studies.values()}
    assert len(starts) == len(small_studies), "studies with different seeds start from identical statistics"
    finals = {tuple(tuple(r.test_accuracy) for r in results.values()) for results in small_studies.values()}
    assert len(finals) == len(small_studies), "studies with different seeds give identical accuracy curves"


@exercise("dl-a1.q4d")
def test_training_changes_the_statistics(studies):
    for results in studies.values():
        before, after = results["xavier"].before, results["xavier"].after
        assert before.grad_norm != after.grad_norm, "(c) repeated after training gives new statistics"


@exercise("dl-a1.q4e")
def test_discussion_quotes_the_measured_numbers(impl, studies):
    results = studies[0]
    text = impl.init_discussion(results)
    numbers = set(re.findall(r"\d+\.\d+(?:e-?\d+)?", text))
    final = {d: r.test_accuracy[-1] for d, r in results.items()}
    for d in (0.01, 2.0, "xavier"):
        assert f"{final[d]:.2f}" in numbers, f"the discussion should quote the final accuracy {final[d]:.2f} of {d}"
    assert "Xavier" in text and len(text.split()) <= 220, "one paragraph that names Xavier"


@exercise("dl-a1.q4e")
@pytest.mark.parametrize("seed_", [0, 1])
def test_discussion_quotes_each_studys_own_final_accuracies(impl, small_studies, seed_):
    """Each study its own numbers: a paragraph written once with one run's numbers fails on another."""
    results = small_studies[seed_]
    numbers = set(re.findall(r"\d+\.\d+(?:e-?\d+)?", impl.init_discussion(results)))
    for d in (0.01, 2.0, "xavier"):
        final = results[d].test_accuracy[-1]
        assert f"{final:.2f}" in numbers, f"seed {seed_}: the discussion should quote the final accuracy {final:.2f}"


# ------------------------------------------------------------------------------ data loaders


