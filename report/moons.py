"""Two moons: the vanishing gradient (sigmoid against ReLU at depths 3 and 10) and backprop by hand."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from report.core import Options, Section, save_figure
from spec import data as datasets

TITLE = "Two moons: vanishing gradient and backprop by hand"
STEPS = 2
DEPTHS = (3, 10)
ACTIVATIONS = ("sigmoid", "relu")
FAIL = 0.6          # a test accuracy below this on two balanced classes counts as "failed to train"
TIE = 0.005         # accuracies closer than this count as a tie (one test point in 250 is 0.004)


# ----------------------------------------------------------------------------- claims (pure functions)
def baseline_answer(accuracies: list[float], seeds) -> str:
    low, high = min(accuracies), max(accuracies)
    spread = f"{low:.3f}" if high - low < 5e-4 else f"between {low:.3f} and {high:.3f}"
    return (f"1. Baseline (Linear 2-16, ReLU, Linear 16-2, Adam): test accuracy {spread} over the {len(seeds)} "
            f"seeds {list(seeds)}.")


def _wins(acc: dict, depth: int) -> tuple[int, int, int]:
    """(seeds where sigmoid is better, where ReLU is better, ties) at one depth."""
    sig, relu = acc[(depth, "sigmoid")], acc[(depth, "relu")]
    s = sum(a - b > TIE for a, b in zip(sig, relu, strict=True))
    r = sum(b - a > TIE for a, b in zip(sig, relu, strict=True))
    return s, r, len(sig) - s - r


def architecture_answer(acc: dict) -> str:
    """2. "Is one architecture always better? Why?" from ``acc[(depth, activation)]``, the test
    accuracies per seed (same seed order for both activations)."""
    parts, always = [], None
    for depth in sorted({d for d, _ in acc}):
        s, r, t = _wins(acc, depth)
        n = s + r + t
        parts.append(f"at depth {depth} ReLU is better on {r} of {n} seeds, sigmoid on {s}, {t} tied")
        winner = "relu" if s == 0 and r > 0 else "sigmoid" if r == 0 and s > 0 else "none" if s or r else "tie"
        always = winner if always in (None, winner) else "none"
    if always in ("relu", "sigmoid"):
        name = "ReLU" if always == "relu" else "sigmoid"
        head = f"On these runs, yes: {name} is better or tied on every seed ({'; '.join(parts)})."
    elif always == "tie":
        head = f"No: the two tie on every seed ({'; '.join(parts)})."
    else:
        head = f"No, not always: {'; '.join(parts)}."
    deepest = max(d for d, _ in acc)
    sig = acc[(deepest, "sigmoid")]
    relu = acc[(deepest, "relu")]
    failed = [a for a in sig if a < FAIL]
    relu_failed = [a for a in relu if a < FAIL]
    tail = (f" At depth {deepest} the sigmoid net fails to train (test accuracy below {FAIL}) on {len(failed)} of "
            f"{len(sig)} seeds (accuracies {', '.join(f'{a:.2f}' for a in sig)}), ReLU on {len(relu_failed)} "
            f"(accuracies {', '.join(f'{a:.2f}' for a in relu)}).")
    why = (" Why: the deeper the net, the more factors of the activation's slope multiply the gradient that "
           "reaches the first layers (see 3); the seed decides the init and the data, and with it how much "
           "signal gets through.")
    return "2. " + head + tail + why


def _scale_words(factor: float) -> str:
    if factor >= 100:
        return "orders of magnitude"
    if factor >= 10:
        return "an order of magnitude"
    if factor >= 2:
        return f"{factor:.0f} times"
    return ""


def gradient_answer(init_ratios: dict, history_ratios: dict, depth: int, tenth: float = 0.1) -> str:
    """3. "Does the sigmoid net show the vanishing gradient more clearly?" from
    ``init_ratios[(depth, activation)]`` (first/last hidden weight-gradient norm at init, per seed) and
    ``history_ratios[activation]`` (the same ratio at every training step of one seed, at ``depth``)."""
    medians = {k: statistics.median(v) for k, v in init_ratios.items()}
    sig, relu = medians[(depth, "sigmoid")], medians[(depth, "relu")]
    factor = relu / sig
    if factor >= 2:
        verdict = (f"Yes: at initialization the sigmoid net's first hidden layer gets {_scale_words(factor)} less "
                   f"gradient, relative to its last hidden layer, than the ReLU net's")
    elif factor <= 0.5:
        verdict = (f"No: at initialization the ReLU net's first hidden layer gets {_scale_words(1 / factor)} less "
                   f"gradient, relative to its last hidden layer, than the sigmoid net's")
    else:
        verdict = ("Not clearly: at initialization both nets' first hidden layers get a similar share of the "
                   "gradient relative to their last hidden layer")
    init = (f"{verdict} (depth {depth}, median first/last ratio over the seeds: sigmoid {sig:.1e}, ReLU "
            f"{relu:.1e}). ")
    both_small = sig < tenth and relu < tenth
    if both_small:
        init += (f"Both ratios are below {tenth:g}: at this depth the ReLU net's first layer also starts with a "
                 f"much smaller gradient than its last. ")
    steps = {}
    for act, ratios in history_ratios.items():
        ratios = np.asarray(ratios, dtype=float)
        below = np.flatnonzero(ratios >= tenth)
        steps[act] = (int(below[0]) if below.size else len(ratios), len(ratios), float(ratios[-1]))
    s_first, total, s_end = steps["sigmoid"]
    r_first, _, r_end = steps["relu"]

    def stay(first):
        return (f"for all {total} steps" if first == total else "never" if first == 0
                else f"for the first {first} of {total} steps")
    during = (f"During training (seed 0) the ratio stays below {tenth:g} {stay(s_first)} for sigmoid and "
              f"{stay(r_first)} for ReLU, ending at {s_end:.1e} and {r_end:.1e}: ")
    if s_first > r_first:
        during += "the sigmoid net's first layers are held back for longer."
    elif s_first < r_first:
        during += "here the ReLU net's first layers are held back for longer."
    else:
        during += "the two are held back equally long."
    return "3. " + init + during


# ----------------------------------------------------------------------------- the section
def build(opts: Options, out: Path, progress) -> Section:
    import impl

    s = Section("moons", TITLE)
    seeds = (0, 1, 2) if opts.quick else (0, 1, 2, 3, 4)
    steps = 100 if opts.quick else 300
    s.uses("all", "embedded: sklearn make_moons, 1000 points per seed (noise 0.15, 25 % test)")
    s.heading("Vanishing gradient")
    baseline = []
    for seed in seeds:
        model = impl.make_moons_net(16, 1, "relu", seed)
        baseline.append(impl.train_moons(model, datasets.two_moons(seed=seed), seed=seed).test_accuracy)
    s.nums("1", "baseline accuracy", baseline)
    s.text(baseline_answer(baseline, seeds))
    acc, init_ratios, histories = {}, {}, {}
    for depth in DEPTHS:
        for seed in seeds:
            data = datasets.two_moons(seed=seed)
            for act in ACTIVATIONS:
                model = impl.make_moons_net(16, depth, act, seed)
                history = impl.train_moons(model, data, steps=steps, seed=seed)
                acc.setdefault((depth, act), []).append(history.test_accuracy)
                init_ratios.setdefault((depth, act), []).append(impl.first_to_last_grad_ratio(history))
                if seed == 0:
                    histories[(depth, act)] = history
    table = []
    for depth in DEPTHS:
        for act in ACTIVATIONS:
            q = f"2 depth {depth} {act}"
            table.append([depth, act, s.nums(q, "test accuracy", acc[(depth, act)], ".2f", " "),
                          s.nums(q, "grad ratio at init", init_ratios[(depth, act)], ".1e", " ")])
    s.table(["depth", "activation", f"test accuracy per seed {list(seeds)}",
             "first/last hidden grad-norm ratio at init"], table)
    s.text(architecture_answer(acc))

    def draw(figure):
        axes = figure.subplots(len(DEPTHS), len(ACTIVATIONS), sharex=True, squeeze=False)
        for row, depth in enumerate(DEPTHS):
            for col, act in enumerate(ACTIVATIONS):
                ax = axes[row][col]
                norms = np.array(histories[(depth, act)].grad_norms)
                colours = __import__("matplotlib").colormaps["viridis"](np.linspace(0, 0.9, norms.shape[1]))
                for layer in range(norms.shape[1]):
                    ax.semilogy(norms[:, layer], color=colours[layer],
                                label=f"hidden{layer + 1}" if layer in (0, norms.shape[1] - 1) else None)
                ax.set(title=f"{act}, depth {depth}", ylabel="|dl/dW| (log)")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=7)
                if row == len(DEPTHS) - 1:
                    ax.set_xlabel("training step")
    save_figure(out / "moons_grad_norms.png", draw, size=(9, 6))
    s.figure("moons_grad_norms.png", "3. Weight-gradient norm of every hidden layer during training, seed 0, at "
                                     "the table's depths (log scale; purple = hidden1, yellow = last).")
    deepest = max(DEPTHS)
    history_ratios = {act: [row[0] / row[-1] for row in histories[(deepest, act)].grad_norms] for act in ACTIVATIONS}
    for act in ACTIVATIONS:
        s.num("3", f"final ratio depth {deepest} {act}", history_ratios[act][-1], ".1e")
    s.text(gradient_answer(init_ratios, history_ratios, deepest))
    progress.step("moons vanishing gradient")

    s.heading("Backpropagation by hand")
    s.text("Forward and backward pass of the one-hidden-layer ReLU net with softmax cross-entropy:")
    s.math("z_1 = x W_1^\\top + b_1,\\quad a_1 = \\mathrm{relu}(z_1),\\quad z_2 = a_1 W_2^\\top + b_2,\\quad "
           "p = \\mathrm{softmax}(z_2),\\quad L = -\\frac{1}{N} \\sum_n \\log p_{n, y_n}")
    s.math("\\delta_2 = \\frac{p - e_y}{N},\\quad \\frac{\\partial L}{\\partial W_2} = \\delta_2^\\top a_1,\\quad "
           "\\frac{\\partial L}{\\partial b_2} = \\sum_n \\delta_2,\\quad \\delta_1 = (\\delta_2 W_2) \\odot "
           "[z_1 > 0],\\quad \\frac{\\partial L}{\\partial W_1} = \\delta_1^\\top x,\\quad "
           "\\frac{\\partial L}{\\partial b_1} = \\sum_n \\delta_1")
    data = datasets.two_moons(seed=0)
    history = impl.train_manual(data, seed=0, steps=200 if opts.quick else 500)
    s.text(f"Gradient descent (lr 0.5, {len(history.loss)} steps): test accuracy "
           f"{s.num('backprop', 'test accuracy', history.test_accuracy)}, loss "
           f"{s.num('backprop', 'first loss', history.loss[0])} to {s.num('backprop', 'last loss', history.loss[-1])}.")

    def loss_plot(figure):
        axes = figure.subplots()
        axes.plot(history.loss)
        axes.set(xlabel="step", ylabel="cross-entropy", title="training by hand")
        axes.grid(alpha=0.3)
    save_figure(out / "moons_manual_loss.png", loss_plot)
    s.figure("moons_manual_loss.png", "Loss curve of the hand-written training.")
    snapshot_steps = sorted(history.snapshots)

    def boundary(figure):
        chosen = [snapshot_steps[0], snapshot_steps[len(snapshot_steps) // 2], snapshot_steps[-1]]
        axes = figure.subplots(1, 3, sharey=True)
        for ax, step in zip(axes, chosen, strict=True):
            xx, yy, p1 = impl.decision_grid(history.snapshots[step], n=150)
            ax.contourf(xx.numpy(), yy.numpy(), p1.numpy(), levels=20, cmap="RdBu", alpha=0.7)
            ax.contour(xx.numpy(), yy.numpy(), p1.numpy(), levels=[0.5], colors="k")
            ax.scatter(data.x_test[:, 0], data.x_test[:, 1], c=data.y_test, s=6, cmap="RdBu", edgecolors="k",
                       linewidths=0.2)
            ax.set(title=f"step {step}", xlabel="x1")
        axes[0].set_ylabel("x2")
    save_figure(out / "moons_boundary.png", boundary, size=(10, 3.4))
    s.figure("moons_boundary.png", "Decision boundary (p = 1/2, black) during training, on the test points.")
    progress.step("moons backprop by hand")
    return s
