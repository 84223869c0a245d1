"""dl-a1, Deep Learning assignment 1: log-cosh gradients, Jacobians, hand-built nets, initialization,
least squares."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from report.core import Options, Section, file_source, plot_curves, save_figure
from spec import data as datasets

TITLE = "dl-a1: Deep Learning, assignment 1"
STEPS = 5
BATCH = 128
MNIST_TRAIN = 60000
SHEET_EPOCHS = 5
CHANCE = 0.10


# ----------------------------------------------------------------------------- claims (pure functions)
def op_count_answer(counts: dict, D: int, P: int) -> str:
    """2(e): which mode needs fewer multiplies and by how much, from ``counts[L] = (forward, reverse)``."""
    ratios = {L: r / f for L, (f, r) in counts.items()}
    low, high = min(ratios.values()), max(ratios.values())
    Ls = sorted(counts)
    general = ("Both modes first run the primal through the hidden layers; forward mode then pushes D tangents "
               "through the L - 1 hidden layers and $W_F$, reverse mode pulls P adjoints back through them and "
               "$W_1$, so their difference is $(L-1) K^2 (D - P)$.")
    span = f"{low:.1f}x" if high - low < 0.05 else f"{low:.1f}x to {high:.1f}x"
    if low > 1:
        claim = (f"With D = {D} inputs and P = {P} outputs, forward mode needs {span} fewer multiplies "
                 f"(L = {Ls[0]} to {Ls[-1]}); reverse mode would win only with fewer outputs than inputs (P < D).")
    elif high < 1:
        inverse = f"{1 / high:.1f}x" if high - low < 0.05 else f"{1 / high:.1f}x to {1 / low:.1f}x"
        claim = (f"With D = {D} inputs and P = {P} outputs, reverse mode needs {inverse} fewer multiplies "
                 f"(L = {Ls[0]} to {Ls[-1]}); forward mode would win only with fewer inputs than outputs (D < P).")
    else:
        claim = (f"With D = {D} and P = {P} neither mode is cheaper at every L (reverse/forward ratio {span}).")
    return "(e) " + general + " " + claim


def housing_answer(train: list[float], test: list[float], source: str | None) -> str:
    """1(d): what the 15 epochs did to the two MSEs; ``source`` None means the diabetes stand-in."""
    def move(values):
        change = (values[-1] - values[0]) / values[0]
        if abs(change) < 0.05:
            return f"stays near {values[0]:.3f} (to {values[-1]:.3f}, {change:+.0%})"
        return f"{'falls' if change < 0 else 'rises'} from {values[0]:.3f} to {values[-1]:.3f} ({change:+.0%})"
    gap = test[-1] - train[-1]
    text = (f"(d) Over {len(train)} epochs the train MSE {move(train)} and the test MSE {move(test)}; after the last "
            f"epoch the test MSE is {'above' if gap > 0 else 'below'} the train MSE by {abs(gap):.3f}.")
    if source is None:
        text += (" The sheet asks for Boston house prices (sklearn's load_boston, gone since scikit-learn 1.2); "
                 "with no Boston csv or openml/ cache in --data-dir this run used the diabetes table instead, so "
                 "these are not the sheet's numbers, only the same protocol.")
    return text


def _label(d) -> str:
    return "Xavier" if d == "xavier" else f"d = {d:g}"


def learning_state(accuracies: list[float], window: int = 3, still: float = 0.01) -> tuple[bool, float]:
    """(still improving?, gain over the last ``window`` epochs) of a training-accuracy curve."""
    window = min(window, len(accuracies) - 1)
    gain = accuracies[-1] - accuracies[-1 - window] if window > 0 else 0.0
    return gain > still, gain


def init_answer(results: dict, steps_per_epoch: int, stand_in: bool, long: dict | None = None,
                long_steps: int | None = None) -> str:
    """4(e) from the measured study: ``results[init]`` has ``before`` (mean_abs_activation, grad_norm per
    layer), ``train_accuracy`` and ``test_accuracy`` per epoch; ``long`` is the same study run longer."""
    epochs = len(next(iter(results.values())).test_accuracy)
    steps = epochs * steps_per_epoch
    finals = ", ".join(f"{_label(d)} {r.test_accuracy[-1]:.2f}" for d, r in results.items())
    parts = [f"After {epochs} epochs ({steps} SGD steps of batch {BATCH}) the test accuracies are {finals} "
             f"(chance is {CHANCE:.2f})."]
    for d, r in results.items():
        act, grad = r.before.mean_abs_activation, r.before.grad_norm
        final = r.test_accuracy[-1]
        improving, gain = learning_state(r.train_accuracy)
        if act[-1] < 0.2 * act[0] or max(act) < 0.05:
            shape = (f"the signal dies with depth (mean |activation| {act[0]:.2g} in layer 1, {act[-1]:.2g} in layer "
                     f"{len(act)} before training)")
        elif min(act) > 0.7:
            shape = f"the tanh units saturate (mean |activation| {min(act):.2f} to {max(act):.2f} in every layer)"
        else:
            shape = f"the activations stay in a moderate band ({min(act):.2f} to {max(act):.2f} across the layers)"
        ratio = grad[0] / grad[-1]
        flow = (f"the gradient norm is {ratio:.2g} times as large at the first hidden layer as at the last"
                if ratio >= 1 else f"the gradient norm at the first hidden layer is {ratio:.2g} of the last's")
        if final < CHANCE + 0.05:
            outcome = "it does not learn (chance level)"
        elif improving:
            outcome = (f"it learns but has not converged (train accuracy still rose by {gain:.2f} over the last "
                       f"{min(3, epochs - 1)} epochs)")
        else:
            outcome = (f"it has levelled off (train accuracy changed by {gain:+.2f} over the last "
                       f"{min(3, epochs - 1)} epochs)")
        parts.append(f"{_label(d)}: {shape}; {flow}; {outcome}, {final:.2f}.")
    best = max(results, key=lambda d: results[d].test_accuracy[-1])
    parts.append(f"Depth multiplies these per-layer factors, so the deeper the net the more the initialization "
                 f"matters; the best here is {_label(best)}.")
    if stand_in:
        mnist_steps = SHEET_EPOCHS * math.ceil(MNIST_TRAIN / BATCH)
        parts.append(f"Caveat: this runs on the embedded stand-in, where an epoch is {steps_per_epoch} steps, so "
                     f"{epochs} epochs are {steps} steps against {mnist_steps} for {SHEET_EPOCHS} epochs on MNIST; "
                     f"the stand-in cannot show what the sheet's protocol shows on MNIST after {SHEET_EPOCHS} "
                     f"epochs.")
    if long:
        long_epochs = len(next(iter(long.values())).test_accuracy)
        finals = ", ".join(f"{_label(d)} {r.test_accuracy[-1]:.2f}" for d, r in long.items())
        states = []
        for d, r in long.items():
            improving, gain = learning_state(r.train_accuracy)
            if r.test_accuracy[-1] >= CHANCE + 0.05:
                states.append(f"{_label(d)} {'still improving' if improving else 'levelled off'}")
        parts.append(f"A longer run, labelled as such (same code, {long_epochs} epochs = {long_steps} SGD steps, "
                     f"as many as MNIST's {SHEET_EPOCHS} epochs): test accuracies {finals}"
                     + (f"; {', '.join(states)}." if states else "."))
    return "(e) " + " ".join(parts)


# ----------------------------------------------------------------------------- the section
def _housing_source(data_dir):
    if data_dir is None:
        return None, None
    csv = next((p for p in sorted(Path(data_dir).glob("*.csv")) if "boston" in p.name.lower()), None)
    openml = Path(data_dir) / "openml"
    return (csv, None) if csv else (None, openml if openml.is_dir() else None)


def _mnist_files(folder) -> list[Path]:
    folder = Path(folder)
    return [base / name for base in (folder, folder / "MNIST" / "raw")
            for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz") if (base / name).exists()]


def build(opts: Options, out: Path, progress) -> Section:
    import impl

    s = Section("dl-a1", TITLE)
    s.heading("1 Gradients of the log-cosh net")
    g = torch.Generator().manual_seed(0)
    f64 = {"generator": g, "dtype": torch.float64}
    x, y = torch.randn(32, 10, **f64), torch.randn(32, **f64)
    params = {"W1": torch.randn(20, 10, **f64), "b1": torch.randn(20, **f64), "w2": torch.randn(20, **f64),
              "b2": torch.randn((), **f64)}
    closed = impl.logcosh_gradients(x, y, params)
    auto = impl.logcosh_autograd_gradients(x, y, params)
    numeric = impl.logcosh_numerical_gradients(x, y, params)
    s.table(["gradient", "max abs(closed - autograd)", "max abs(closed - central differences)"],
            [[f"dJ/d{k}", s.num("1(c)", f"{k} vs autograd", (closed[k] - auto[k]).abs().max(), ".1e"),
              s.num("1(c)", f"{k} vs differences", (closed[k] - numeric[k]).abs().max(), ".1e")] for k in closed])
    s.text("(a) With $r = \\hat y - y$ and $g = \\tanh(r) / N$:")
    s.math("\\frac{\\partial J}{\\partial w_2} = \\sum_n g_n h_n,\\quad \\frac{\\partial J}{\\partial b_2} = "
           "\\sum_n g_n,\\quad \\delta_n = g_n\\, w_2 \\odot (1 - h_n^2),\\quad \\frac{\\partial J}{\\partial W_1} = "
           "\\sum_n \\delta_n x_n^\\top,\\quad \\frac{\\partial J}{\\partial b_1} = \\sum_n \\delta_n,\\quad "
           "\\frac{\\partial J}{\\partial x_n} = W_1^\\top \\delta_n")
    csv, openml = _housing_source(opts.data_dir)
    housing_data = datasets.housing_data(csv, openml)
    if csv or openml:
        s.uses("1(d)", file_source(csv or openml))
    else:
        s.uses("1(d)", "embedded stand-in: scikit-learn's diabetes table (no Boston csv or openml/ given)")
    housing = impl.train_housing(*housing_data)
    s.table(["epoch", "train MSE", "test MSE"],
            [[i + 1, s.num("1(d)", f"train MSE epoch {i + 1}", a), s.num("1(d)", f"test MSE epoch {i + 1}", b)]
             for i, (a, b) in enumerate(zip(housing.train_mse, housing.test_mse, strict=True))])

    def housing_plot(figure):
        epochs = range(1, len(housing.train_mse) + 1)
        axes = figure.subplots()
        axes.plot(epochs, housing.train_mse, "o-", label="train")
        axes.plot(epochs, housing.test_mse, "o-", label="test")
        axes.set(xlabel="epoch", ylabel="MSE (standardised target)", title="1(d)")
        axes.legend()
        axes.grid(alpha=0.3)
    save_figure(out / "dl_a1_housing.png", housing_plot)
    s.figure("dl_a1_housing.png", "1(d) MSE after every epoch.")
    s.text(housing_answer(housing.train_mse, housing.test_mse, str(csv or openml) if (csv or openml) else None))
    progress.step("dl-a1 question 1")

    s.heading("2 Jacobians: reverse vs forward mode")
    timings = impl.time_jacobians((3, 5, 10), batch=1024, device=opts.device, min_run_time=0.05 if opts.quick else 0.2)
    s.table(["L", "method", "median ms", "x forward pass"],
            [[r["L"], r["method"],
              s.num("2(d)", f"L={r['L']} {r['method']} ms", r["seconds"] * 1e3, ".3f", volatile=True),
              s.num("2(d)", f"L={r['L']} {r['method']} ratio", r["ratio_to_forward_pass"], ".2f", volatile=True)]
             for r in timings])
    s.text(f"Timings on {opts.device} with {torch.get_num_threads()} torch thread(s); they vary from run to run "
           f"and are not compared by `--compare`.")

    def timing(figure):
        axes = figure.subplots()
        for method in sorted({r["method"] for r in timings}):
            sel = [r for r in timings if r["method"] == method]
            axes.plot([r["L"] for r in sel], [r["seconds"] * 1e3 for r in sel], "o-", label=method)
        axes.set(xlabel="L (layers)", ylabel="ms per batch of 1024", title=f"Jacobian timing ({opts.device})")
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    save_figure(out / "dl_a1_jacobian_timing.png", timing)
    s.figure("dl_a1_jacobian_timing.png", "2(d) Time per batch of 1024 Jacobians (float32).")
    D, K, P = 2, 30, 10
    counts = {L: (impl.op_counts(D, K, P, L)["forward"], impl.op_counts(D, K, P, L)["reverse"]) for L in (3, 5, 10)}
    s.table(["L", "forward-mode MACs", "reverse-mode MACs", "reverse / forward"],
            [[L, s.num("2(e)", f"forward L={L}", f, "d"), s.num("2(e)", f"reverse L={L}", r, "d"),
              s.num("2(e)", f"ratio L={L}", r / f, ".2f")] for L, (f, r) in counts.items()])
    s.text(op_count_answer(counts, D, P))
    progress.step("dl-a1 question 2")

    s.heading("3 Networks by hand")
    for name, net in (("XNOR", impl.xnor_net()), ("tent", impl.tent_net()),
                      ("soft threshold, s = 1", impl.soft_threshold_net(1.0))):
        s.text(f"{name}: " + "; ".join(f"W{i + 1} = {w.tolist()}, b{i + 1} = {b.tolist()}"
                                        for i, (w, b) in enumerate(net.layers)))
    s.text(" ".join(" ".join(f.__doc__.split()) for f in (impl.xnor_net, impl.tent_net, impl.soft_threshold_net)))
    grid = torch.linspace(-1.5, 2.0, 701, dtype=torch.float64)

    def hand(figure):
        left, right = figure.subplots(1, 2)
        left.plot(grid.numpy(), impl.tent_net()(grid).numpy())
        left.set(title="tent", xlabel="x", ylabel="net(x)")
        for s_ in (0.0, 0.5, 1.0):
            right.plot(grid.numpy(), impl.soft_threshold_net(s_)(grid).numpy(), label=f"s = {s_}")
        right.set(title="soft threshold", xlabel="x", ylabel="net(x)")
        right.legend()
        for ax in (left, right):
            ax.grid(alpha=0.3)
    save_figure(out / "dl_a1_handbuilt.png", hand, size=(9, 3.4))
    s.figure("dl_a1_handbuilt.png", "3 The hand-built ReLU nets on a grid.")
    progress.step("dl-a1 question 3")

    s.heading("4 Initialization (depth 8, width 50, tanh)")
    files = _mnist_files(opts.data_dir) if opts.data_dir else []
    data = datasets.load_mnist(opts.data_dir) if files else datasets.digits_784()
    s.uses("4", file_source(files[0].parent) if files else
           f"embedded stand-in for MNIST: scikit-learn's digits scaled to 28 x 28 ({len(data.y_train)} train, "
           f"{len(data.y_test)} test); no MNIST files given")
    epochs = 2 if opts.quick else SHEET_EPOCHS
    results = impl.init_study(depth=8, data=data, epochs=epochs)
    steps_per_epoch = math.ceil(len(data.y_train) / BATCH)
    long, long_steps = None, None
    if not files and not opts.quick:
        long_epochs = math.ceil(SHEET_EPOCHS * math.ceil(MNIST_TRAIN / BATCH) / steps_per_epoch)
        long = impl.init_study(depth=8, data=data, epochs=long_epochs, inits=("xavier",))
        long_steps = long_epochs * steps_per_epoch
    for when in ("before", "after"):
        save_figure(out / f"dl_a1_init_{when}.png", lambda f, when=when: _plot_init(f, results, when), size=(9, 3.6))
        s.figure(f"dl_a1_init_{when}.png", f"4(c) Mean |post-activation| and gradient norm per layer, {when} "
                                           f"training.")
    save_figure(out / "dl_a1_init_accuracy.png", lambda f: _plot_accuracy(f, results, long), size=(9, 3.6))
    s.figure("dl_a1_init_accuracy.png", f"4(d) Train and test accuracy per epoch (SGD, lr 0.01, batch {BATCH})"
             + (f"; dashed: Xavier's longer run of {len(next(iter(long.values())).test_accuracy)} epochs (log epoch "
                f"axis)" if long else "")
             + ".")
    for d, r in results.items():   # every number the figures and 4(e) quote
        for when in ("before", "after"):
            stats = getattr(r, when)
            s.nums("4(c)", f"{_label(d)} mean |activation| {when}", stats.mean_abs_activation, ".3g")
            s.nums("4(c)", f"{_label(d)} gradient norm {when}", stats.grad_norm, ".3g")
        s.nums("4(d)", f"{_label(d)} train accuracy per epoch", r.train_accuracy)
        s.nums("4(d)", f"{_label(d)} test accuracy per epoch", r.test_accuracy)
    for d, r in (long or {}).items():
        s.nums("4(d) long run", f"{_label(d)} train accuracy per epoch", r.train_accuracy)
        s.nums("4(d) long run", f"{_label(d)} test accuracy per epoch", r.test_accuracy)
    rows = []
    for d, r in results.items():
        row = [_label(d), s.num("4(d)", f"{d} train", r.train_accuracy[-1]), s.num("4(d)", f"{d} test",
                                                                                     r.test_accuracy[-1])]
        if long:
            row.append(s.num("4(d) long run", f"{d} test", long[d].test_accuracy[-1]) if d in long else "not run")
        rows.append(row)
    header = ["init", f"train accuracy after {epochs} epochs", f"test accuracy after {epochs} epochs"]
    if long:
        header.append(f"test accuracy after {long_steps} steps (longer run, Xavier only)")
    s.table(header, rows)
    s.text(init_answer(results, steps_per_epoch, stand_in=not files, long=long, long_steps=long_steps))
    progress.step("dl-a1 question 4")

    s.heading("5 Least squares and gradient descent")
    s.text("(a) $\\nabla L = X^\\top (X w - y)$; the minimiser solves $X^\\top X w = X^\\top y$: "
           "$w^* = (X^\\top X)^{-1} X^\\top y$, in general the minimum-norm $w^* = X^+ y$. (b) and (c), with "
           "$A = I - \\alpha X^\\top X$:")
    s.math("w_1 = A w_0 + \\alpha X^\\top y,\\qquad w_2 = A^2 w_0 + (I + A)\\, \\alpha X^\\top y")
    s.math("w_k = A^k w_0 + \\sum_{j<k} A^j \\alpha X^\\top y = w^* + A^k (w_0 - w^*),\\qquad "
           "0 < \\alpha < 2 / \\lambda_{\\max}(X^\\top X)")
    rng = np.random.default_rng(0)
    X, yv = torch.tensor(rng.normal(size=(20, 3))), torch.tensor(rng.normal(size=20))
    w0 = torch.zeros(3, dtype=torch.float64)
    limit = impl.step_size_limit(X)
    w_star = impl.lsq_minimiser(X, yv)
    paths = {f"a = {f} x 2/lambda_max": [float((impl.gd_iterate(X, yv, w0, f * limit, k) - w_star).norm()) + 1e-16
                                         for k in range(60)] for f in (0.2, 0.9, 1.05)}
    save_figure(out / "dl_a1_gd.png", lambda f: plot_curves(f, paths, "k (iteration)", "|w_k - w*| (log)",
                                                            "5(c) closed-form iterates", log=True))
    s.figure("dl_a1_gd.png", "5(c) Distance to the minimiser: converging below the step-size limit, diverging above.")
    progress.step("dl-a1 question 5")
    return s


def _plot_init(figure, results, when):
    left, right = figure.subplots(1, 2)
    for d, r in results.items():
        stats = getattr(r, when)
        layers = range(1, len(stats.mean_abs_activation) + 1)
        left.plot(layers, stats.mean_abs_activation, "o-", label=_label(d))
        right.semilogy(layers, stats.grad_norm, "o-", label=_label(d))
    left.set(xlabel="layer", ylabel="mean |post-activation|", title="activations")
    right.set(xlabel="layer", ylabel="gradient norm (log)", title="gradients")
    right.legend(title="init")
    figure.suptitle(f"{when} training")
    for ax in (left, right):
        ax.grid(alpha=0.3)


def _plot_accuracy(figure, results, long=None):
    left, right = figure.subplots(1, 2, sharey=True)
    colours = {}
    for d, r in results.items():
        epochs = range(1, len(r.train_accuracy) + 1)
        (line,) = left.plot(epochs, r.train_accuracy, "o-", label=_label(d))
        colours[d] = line.get_color()
        right.plot(epochs, r.test_accuracy, "o-", label=_label(d), color=colours[d])
    if long:
        for d, r in long.items():
            epochs = range(1, len(r.train_accuracy) + 1)
            left.plot(epochs, r.train_accuracy, "--", color=colours[d], alpha=0.6)
            right.plot(epochs, r.test_accuracy, "--", color=colours[d], alpha=0.6)
        for ax in (left, right):
            ax.set_xscale("log")
    left.set(xlabel="epoch", ylabel="accuracy", title="train")
    right.set(xlabel="epoch", title="test")
    right.legend(title="init")
    for ax in (left, right):
        ax.grid(alpha=0.3)
