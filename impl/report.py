"""The solutions report: every sheet's requested numbers, figures and discussions, on embedded data
by default. ``python -m impl.report --help``.

Every number comes from the functions of ``impl`` that the spec verifies; this module only calls
them, formats and plots. A run writes into a fresh temporary folder and then replaces the output
folder, so nothing stale from an earlier run survives.
"""

from __future__ import annotations

import argparse
import html
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from spec import data as datasets

SHEETS = ("ps09", "ex08", "moons", "a7", "dl-a1")
TITLES = {
    "ps09": "ps09: Automatic differentiation",
    "ex08": "ex08: PyTorch introduction",
    "moons": "Two moons: vanishing gradient and backprop by hand",
    "a7": "a7: PyTorch, vanishing gradients and CNNs",
    "dl-a1": "dl-a1: Deep Learning, assignment 1",
}


@dataclass
class Section:
    sheet: str
    blocks: list = field(default_factory=list)   # ("h", text) | ("p", text) | ("table", rows) | ("fig", file, caption)

    def heading(self, text):
        self.blocks.append(("h", text))

    def text(self, text):
        self.blocks.append(("p", text))

    def table(self, rows):
        self.blocks.append(("table", [[str(c) for c in row] for row in rows]))

    def figure(self, name, caption):
        self.blocks.append(("fig", name, caption))


@dataclass
class Options:
    out: Path
    sheets: tuple = SHEETS
    data_dir: Path | None = None
    device: str = "cpu"
    quick: bool = False


class Progress:
    """A one-line progress bar on stderr: [#####.....] step 3/12 name (seconds so far)."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.stream, self.start = total, 0, stream, time.perf_counter()

    def step(self, name: str):
        self.done += 1
        filled = int(20 * self.done / self.total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (20 - filled)}] {self.done}/{self.total} {name:<40} "
                          f"{time.perf_counter() - self.start:6.1f}s")
        self.stream.flush()
        if self.done == self.total:
            self.stream.write("\n")


def _figure(path: Path, draw, size=(6.4, 4.0)):
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    draw(figure)
    figure.savefig(path, dpi=100)
    return path.name


def _r3(value) -> str:
    return f"{float(torch.as_tensor(value).detach()):.3f}"


# ------------------------------------------------------------------------------------ ps09
def ps09(opts: Options, out: Path, progress: Progress) -> Section:
    import impl

    s = Section("ps09")
    s.heading("1 Intro to AutoDiff")
    gradients = impl.vector_function_gradients()
    s.table([["question", "value (3 decimals)"],
             ["1.1 f'(2), f(x) = 2/((5-x)^2 + 2^2)", _r3(impl.derivative(impl.ps09_f, 2.0))],
             ["1.3 df1/dx at (1.376, 2.123)", _r3(gradients[0, 0])],
             ["1.3 df2/dy at (1.376, 2.123)", _r3(gradients[1, 1])],
             ["1.4 d trace(A^2)/dA [0, 1], A = [[1, 2], [3, 4]]",
              _r3(impl.trace_square_gradient(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))[0, 1])],
             *[[f"1.5 {name}(0.173)", _r3(v)] for name, v in zip(("sigma'", "sigma''"), impl.sigmoid_derivatives()[1:],
                                                                  strict=True)]])
    impl.plot_sigmoid_and_derivative().savefig(out / "ps09_sigmoid.png", dpi=100)
    s.figure("ps09_sigmoid.png", "1.2 The sigmoid on arange(-5, 5) and its derivative by autograd (sum trick).")
    progress.step("ps09 part 1")

    x, y = datasets.ps09_data(opts.data_dir if opts.data_dir and (opts.data_dir / "X.pt").exists() else None)
    s.heading("2 Using AutoDiff for SGD")
    run = impl.sgd_linear(x, y)
    s.table([["2.1 (batch 32, lr 0.01, 10 epochs)", "value"], ["slope", _r3(run.params[0])],
             ["bias", _r3(run.params[1])]])
    _figure(out / "ps09_loss_curve.png", lambda f: _plot_curve(f, run.batch_losses, "update", "batch MSE",
                                                               "2.2 Loss of every parameter update"))
    s.figure("ps09_loss_curve.png", f"2.2 Learning curve: {len(run.batch_losses)} updates.")
    x_tr, y_tr, x_va, y_va, x_te, y_te = impl.split_80_10_10(x, y)
    long = impl.sgd_linear(x_tr, y_tr, lr=0.001, epochs=150, x_val=x_va, y_val=y_va)
    best_train, best_val = impl.best_epochs(long)
    last, best = impl.test_mse_last_vs_best(long, x_te, y_te)
    s.table([["2.3 / 2.4 (80:10:10, batch 32, lr 0.001, 150 epochs)", "value"],
             ["epoch index of the minimal train MSE", best_train],
             ["epoch index of the minimal validation MSE", best_val],
             ["test MSE, last epoch", _r3(last)], ["test MSE, best-validation epoch", _r3(best)]])
    s.text("2.4: " + ("the best-validation parameters do as well as or better than the last ones on the test set"
                      if best <= last else "the last epoch's parameters are slightly better on the test set")
           + f" ({best:.5f} vs {last:.5f}); with a linear model and this much data the curves are flat near the "
           f"end, so early stopping changes little.")
    _figure(out / "ps09_train_val.png", lambda f: _plot_curves(
        f, {"train": long.train_mse, "validation": long.val_mse}, "epoch", "MSE", "2.3 MSE per epoch"))
    s.figure("ps09_train_val.png", "2.3 Train and validation MSE after every epoch.")
    progress.step("ps09 part 2.1-2.4")

    mus = sorted({m for option in impl.MOMENTUM_OPTIONS.values() for m in option})
    curves = impl.momentum_curves(x, y, mus, epochs=10 if opts.quick else 50)
    shown = [m for m in (0.0, 0.1, 0.2, 0.3, 0.5, 0.9) if m in curves]
    _figure(out / "ps09_momentum.png", lambda f: _plot_curves(
        f, {f"mu = {m}": curves[m] for m in shown}, "update", "batch MSE", "2.5 Momentum, lr 1e-3", log=True))
    s.figure("ps09_momentum.png", "2.5 Loss curves for several momenta (larger mu falls faster).")
    options = impl.consistent_momentum_options(curves)
    s.text("2.5: options whose four curves all converge: " + ", ".join(
        f"({k}) {impl.MOMENTUM_OPTIONS[k]}" for k in options) + ". Every other option contains mu >= 1 or mu < 0, "
        "whose curve does not settle (mu = 1 never forgets a gradient, mu = 2 and 3 overflow).")
    progress.step("ps09 momentum")
    return s


def _plot_curve(figure, values, xlabel, ylabel, title):
    axes = figure.subplots()
    axes.plot(values)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.grid(alpha=0.3)


def _plot_curves(figure, series: dict, xlabel, ylabel, title, log=False):
    axes = figure.subplots()
    for label, values in series.items():
        axes.plot(values, label=label)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if log:
        axes.set_yscale("log")
    axes.legend()
    axes.grid(alpha=0.3)


# ------------------------------------------------------------------------------------ ex08
def ex08(opts: Options, out: Path, progress: Progress) -> Section:
    import impl

    s = Section("ex08")
    s.heading("Exercises 2-3: linear regression three ways, and an MLP")
    from torch import nn

    from impl.data import ex08_linear_data, ex08_nonlinear_data

    x, y = ex08_linear_data()
    fits = {}
    torch.manual_seed(0)
    for name, model, lossfunc in (("tensors (MyLinearRegression)", impl.MyLinearRegression(), impl.mselossfunc),
                                  ("nn.Module + nn.Parameter", impl.NNLinearRegression(), impl.mselossfunc),
                                  ("nn.Linear + nn.MSELoss (own init)", nn.Linear(1, 1), nn.MSELoss())):
        impl.train(x, y, model, lossfunc, torch.optim.SGD(model.parameters(), lr=0.02), 2000)
        fits[name] = model
    rows = [["version", "w (slope)", "b (bias)"]]
    for name, model in fits.items():
        w, b = list(model.parameters())
        rows.append([name, _r3(w.reshape(())), _r3(b.reshape(()))])
    s.table(rows)
    xn, yn = ex08_nonlinear_data()
    epochs = 300 if opts.quick else 1500
    cut = len(xn) * 3 // 4
    order = np.random.default_rng(0).permutation(len(xn))
    fit_rows, val_rows = order[:cut], order[cut:]

    def fit_mlp(hidden, lr, rows):
        torch.manual_seed(0)
        model = impl.MLP(hidden)
        impl.train(xn[rows], yn[rows], model, nn.MSELoss(), torch.optim.Adam(model.parameters(), lr=lr), epochs)
        return model

    grid = []
    for hidden in (2, 8, 32):
        for lr in (0.01, 0.05):
            model = fit_mlp(hidden, lr, fit_rows)
            with torch.no_grad():
                mse = float(nn.functional.mse_loss(model(torch.as_tensor(xn[val_rows])), torch.as_tensor(yn[val_rows])))
            grid.append({"hidden_size": hidden, "lr": lr, "val_mse": mse})
    best = min(grid, key=lambda r: r["val_mse"])
    mlp = fit_mlp(best["hidden_size"], best["lr"], np.arange(len(xn)))
    small = fit_mlp(2, 0.05, np.arange(len(xn)))
    s.table([["hidden", "lr", "validation MSE"]] + [[r["hidden_size"], r["lr"], f"{r['val_mse']:.4f}"] for r in grid])
    s.text(f"Chosen: hidden size {best['hidden_size']}, lr {best['lr']} (Adam, full batch, {epochs} epochs).")

    def draw(figure):
        left, right = figure.subplots(1, 2)
        grid_x = torch.linspace(float(x.min()), float(x.max()), 100)[:, None]
        left.scatter(x, y, s=12, color="k", label="data")
        with torch.no_grad():
            for name, model in fits.items():
                left.plot(grid_x.numpy(), model(grid_x).numpy(), label=name.split(" (")[0])
            left.set(title="linear models", xlabel="x", ylabel="y")
            left.legend(fontsize=7)
            gx = torch.linspace(float(xn.min()), float(xn.max()), 200)[:, None]
            right.scatter(xn, yn, s=8, color="k", label="data")
            right.plot(gx.numpy(), mlp(gx).numpy(), label=f"MLP, hidden {best['hidden_size']}")
            right.plot(gx.numpy(), small(gx).numpy(), label="MLP, hidden 2")
        right.set(title="MLP", xlabel="x")
        right.legend(fontsize=7)
    _figure(out / "ex08_predictions.png", draw, size=(9, 3.6))
    s.figure("ex08_predictions.png", "Figure 1: predictions of the linear models (left) and of MLPs (right).")
    progress.step("ex08 regressions and MLP")

    s.heading("Problem 2: the vanishing gradient bound")
    point = torch.tensor([1.0, -0.5], dtype=torch.float64)
    rows = [["L", "bound |x_1|/4 (3/4)^(L-1)", "|df/dW11| of the extremal net"]]
    depths = [1, 2, 5, 10, 20, 30]
    attained = []
    for depth in depths:
        value = abs(float(impl.grad_w11_chain(point, *impl.extremal_net(point, depth))))
        attained.append(value)
        rows.append([depth, f"{impl.vanishing_bound(depth, point):.4g}", f"{value:.4g}"])
    s.table(rows)
    s.text("Each sigma' is at most 1/4, and going back through one hidden layer multiplies the largest entry of "
           "df/dx by at most 3 x 1 x 1/4 = 3/4 (K = 3 terms, |W| <= 1); |c| <= 1 starts the product. Hence "
           "|df/dW11| <= |x_1| (1/4)(3/4)^(L-1) = (|x_1|/3)(3/4)^L, attained by all weights 1 and biases that put "
           "every pre-activation at 0.")
    _figure(out / "ex08_bound.png", lambda f: _plot_bound(f, depths, attained, [impl.vanishing_bound(d, point)
                                                                               for d in depths]))
    s.figure("ex08_bound.png", "The bound and the extremal net's gradient against L (log scale).")
    progress.step("ex08 bound")
    return s


def _plot_bound(figure, depths, attained, bounds):
    axes = figure.subplots()
    axes.semilogy(depths, bounds, "o-", label="bound")
    axes.semilogy(depths, attained, "x--", label="extremal net")
    axes.set(xlabel="L (hidden layers)", ylabel="|df/dW11|")
    axes.legend()
    axes.grid(alpha=0.3)


# ------------------------------------------------------------------------------------ moons
def moons(opts: Options, out: Path, progress: Progress) -> Section:
    import impl

    s = Section("moons")
    seeds = (0, 1, 2) if opts.quick else (0, 1, 2, 3, 4)
    s.heading("Vanishing gradient")
    baseline = []
    for seed in seeds:
        model = impl.make_moons_net(16, 1, "relu", seed)
        baseline.append(impl.train_moons(model, datasets.two_moons(seed=seed), seed=seed).test_accuracy)
    s.text("1. Baseline (Linear 2-16, ReLU, Linear 16-2, Adam): test accuracy "
           + ", ".join(f"{a:.3f}" for a in baseline) + f" over seeds {list(seeds)}.")
    rows = impl.compare_architectures(depths=(3, 10), seeds=seeds, steps=100 if opts.quick else 300)
    table = [["depth", "activation", "test accuracy per seed", "first/last hidden grad-norm ratio at init"]]
    for depth in (3, 10):
        for act in ("sigmoid", "relu"):
            sel = [r for r in rows if r["depth"] == depth and r["activation"] == act]
            table.append([depth, act, " ".join(f"{r['test_accuracy']:.2f}" for r in sel),
                          " ".join(f"{r['grad_ratio_at_init']:.1e}" for r in sel)])
    s.table(table)
    s.text("2. Is one architecture always better? No: at depth 3 the sigmoid net ties or beats the ReLU net on some "
           "seeds, but its worst seed is worse, and at depth 10 it mostly fails to train (accuracy near 0.5) while "
           "ReLU trains on every seed. The reason is the gradient reaching the first layers: see 3.")
    histories = {}
    for act in ("sigmoid", "relu"):
        model = impl.make_moons_net(16, 5, act, 0)
        histories[act] = impl.train_moons(model, datasets.two_moons(seed=0), steps=100 if opts.quick else 300, seed=0)

    def draw(figure):
        axes = figure.subplots(1, 2, sharey=True)
        for ax, (act, history) in zip(axes, histories.items(), strict=True):
            norms = np.array(history.grad_norms)
            for layer in range(norms.shape[1]):
                ax.semilogy(norms[:, layer], label=f"hidden{layer + 1}")
            ax.set(title=f"{act}, 5 hidden layers", xlabel="step")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("|dl/dW| of the hidden layer")
        axes[1].legend(fontsize=7)
    _figure(out / "moons_grad_norms.png", draw, size=(9, 3.6))
    s.figure("moons_grad_norms.png", "3. Weight-gradient norm of every hidden layer during training (log scale).")
    s.text("3. Yes: in the sigmoid net the first hidden layer's gradient is orders of magnitude below the last's "
           "(each layer multiplies by sigma' <= 1/4), while the ReLU net's layers get gradients of similar size.")
    progress.step("moons vanishing gradient")

    s.heading("Backpropagation by hand")
    s.text("Forward: z1 = x W1^T + b1, a1 = relu(z1), z2 = a1 W2^T + b2, p = softmax(z2), "
           "L = -(1/N) sum log p[y]. Backward: dz2 = (p - e_y)/N, dW2 = dz2^T a1, db2 = sum dz2, "
           "da1 = dz2 W2, dz1 = da1 * [z1 > 0], dW1 = dz1^T x, db1 = sum dz1.")
    data = datasets.two_moons(seed=0)
    history = impl.train_manual(data, seed=0, steps=200 if opts.quick else 500)
    s.text(f"Gradient descent (lr 0.5): test accuracy {history.test_accuracy:.3f}, loss "
           f"{history.loss[0]:.3f} -> {history.loss[-1]:.3f}.")
    _figure(out / "moons_manual_loss.png", lambda f: _plot_curve(f, history.loss, "step", "cross-entropy",
                                                                 "training by hand"))
    s.figure("moons_manual_loss.png", "Loss curve of the hand-written training.")
    steps = sorted(history.snapshots)

    def boundary(figure):
        chosen = [steps[0], steps[len(steps) // 2], steps[-1]]
        axes = figure.subplots(1, 3, sharey=True)
        for ax, step in zip(axes, chosen, strict=True):
            xx, yy, p1 = impl.decision_grid(history.snapshots[step], n=150)
            ax.contourf(xx.numpy(), yy.numpy(), p1.numpy(), levels=20, cmap="RdBu", alpha=0.7)
            ax.contour(xx.numpy(), yy.numpy(), p1.numpy(), levels=[0.5], colors="k")
            ax.scatter(data.x_test[:, 0], data.x_test[:, 1], c=data.y_test, s=6, cmap="RdBu", edgecolors="k",
                       linewidths=0.2)
            ax.set(title=f"step {step}")
    _figure(out / "moons_boundary.png", boundary, size=(10, 3.4))
    s.figure("moons_boundary.png", "Decision boundary (p = 1/2) during training, on the test points.")
    progress.step("moons backprop by hand")
    return s


# ------------------------------------------------------------------------------------ a7
def a7(opts: Options, out: Path, progress: Progress) -> Section:
    import impl

    s = Section("a7")
    s.heading("1 Logistic regression (companion notebook)")
    x, y = datasets.breast_cancer_data()
    w, b = impl.fit_logistic_regression(x, y, C=1.0)
    s.text(f"On scikit-learn's breast-cancer table (standardised), the PyTorch fit of sklearn's objective (C = 1) "
           f"has |w| = {float(w.norm()):.3f}, intercept {float(b):.3f}; the spec checks every coefficient against "
           f"LogisticRegression to 1e-3.")
    progress.step("a7 logistic regression")
    s.heading("2 Vanishing gradients")
    s.table([["eps", "|s| beyond which sigma'(s) < eps"]] +
            [[f"{eps:g}", f"{impl.saturation_threshold(eps):.3f}"] for eps in (0.1, 0.01, 1e-3, 1e-6)])
    s.text("(a) sigma'(s) = sigma(s)(1 - sigma(s)) <= 1/4, and tiny for large |s|; weights larger than 1 in "
           "magnitude can counteract the shrinking, and summing over more units (n_(k+1) terms in eq. 2) "
           "increases the gradient. (b) ReLU' is 1 for s > 0 and 0 for s <= 0, so eq. (4) keeps the gradient "
           "through active units instead of shrinking it by <= 1/4 per layer.")
    summaries = {act: impl.depth_study(12, 32, act, seed=0) for act in ("sigmoid", "tanh", "relu")}

    def draw(figure):
        axes = figure.subplots()
        for act, summary in summaries.items():
            axes.semilogy(range(1, len(summary) + 1), summary, "o-", label=act)
        axes.set(xlabel="layer k (1 = input side)", ylabel="mean |dl/dW^(k)|", title="(c) before training, depth 12")
        axes.legend()
        axes.grid(alpha=0.3)
    _figure(out / "a7_depth_study.png", draw)
    rate = np.exp(np.mean(np.log(np.array(summaries["sigmoid"][1:-1]) / np.array(summaries["sigmoid"][2:]))))
    s.figure("a7_depth_study.png", f"(c) Mean |dl/dW| per layer: the sigmoid net loses a factor of about "
                                   f"{rate:.2f} per layer toward the input.")
    progress.step("a7 depth study")
    s.heading("3-4 Convolutions and a small CNN")
    digit = datasets.digits_images().x_train[0, 0].double()

    def kernels(figure):
        names = ["identity", "box3", "sharpen", "sobel_x", "laplacian"]
        axes = figure.subplots(1, len(names))
        for ax, name in zip(axes, names, strict=True):
            ax.imshow(impl.conv2d(digit, impl.kernel(name), mode="replicate").numpy(), cmap="gray")
            ax.set(title=name, xticks=[], yticks=[])
    _figure(out / "a7_kernels.png", kernels, size=(10, 2.4))
    s.figure("a7_kernels.png", "Kernels applied to a digit (replicate edges).")
    torch.manual_seed(0)
    accuracies = impl.train_cnn(impl.SmallCNN(), datasets.digits_images(seed=0), epochs=5 if opts.quick else 15)
    _figure(out / "a7_cnn.png", lambda f: _plot_curve(f, accuracies, "epoch", "test accuracy", "small CNN on digits"))
    s.figure("a7_cnn.png", f"Small CNN on the 8 x 8 digits: final test accuracy {accuracies[-1]:.3f}.")
    progress.step("a7 convolutions")
    return s


# ------------------------------------------------------------------------------------ dl-a1
def dl_a1(opts: Options, out: Path, progress: Progress) -> Section:
    import impl

    s = Section("dl-a1")
    s.heading("1 Gradients of the log-cosh net")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 10, generator=g, dtype=torch.float64), torch.randn(32, generator=g, dtype=torch.float64)
    params = {"W1": torch.randn(20, 10, generator=g, dtype=torch.float64), "b1": torch.randn(20, generator=g,
              dtype=torch.float64), "w2": torch.randn(20, generator=g, dtype=torch.float64),
              "b2": torch.randn((), generator=g, dtype=torch.float64)}
    closed = impl.logcosh_gradients(x, y, params)
    auto = impl.logcosh_autograd_gradients(x, y, params)
    numeric = impl.logcosh_numerical_gradients(x, y, params)
    s.table([["gradient", "max |closed - autograd|", "max |closed - central differences|"]] +
            [[f"dJ/d{k}", f"{float((closed[k] - auto[k]).abs().max()):.1e}",
              f"{float((closed[k] - numeric[k]).abs().max()):.1e}"] for k in closed])
    s.text("(a) With r = y_hat - y and g = tanh(r)/N: dJ/dw2 = sum g h, dJ/db2 = sum g, delta = g w2 (1 - h^2), "
           "dJ/dW1 = sum delta x^T, dJ/db1 = sum delta, dJ/dx = W1^T delta.")
    housing = impl.train_housing(*datasets.housing_data(*_housing_source(opts.data_dir)))
    s.table([["epoch", "train MSE", "test MSE"]] +
            [[i + 1, f"{a:.3f}", f"{b:.3f}"] for i, (a, b) in enumerate(zip(housing.train_mse, housing.test_mse,
                                                                              strict=True))])
    _figure(out / "dl_a1_housing.png", lambda f: _plot_curves(
        f, {"train": housing.train_mse, "test": housing.test_mse}, "epoch", "MSE (standardised)", "1(d)"))
    s.figure("dl_a1_housing.png", "1(d) MSE after every epoch (Boston housing when given, else the diabetes table).")
    progress.step("dl-a1 question 1")

    s.heading("2 Jacobians: reverse vs forward mode")
    timings = impl.time_jacobians((3, 5, 10), batch=1024, device=opts.device, min_run_time=0.05 if opts.quick else 0.2)
    s.table([["L", "method", "median ms", "x forward pass"]] +
            [[r["L"], r["method"], f"{r['seconds'] * 1e3:.3f}", f"{r['ratio_to_forward_pass']:.2f}"] for r in timings])

    def timing(figure):
        axes = figure.subplots()
        methods = sorted({r["method"] for r in timings})
        for method in methods:
            sel = [r for r in timings if r["method"] == method]
            axes.plot([r["L"] for r in sel], [r["seconds"] * 1e3 for r in sel], "o-", label=method)
        axes.set(xlabel="L", ylabel="ms per batch of 1024", title=f"Jacobian timing ({opts.device})")
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    _figure(out / "dl_a1_jacobian_timing.png", timing)
    s.figure("dl_a1_jacobian_timing.png", "2(d) Time per batch of 1024 Jacobians (float32).")
    counts = [[L, impl.op_counts(2, 30, 10, L)["forward"], impl.op_counts(2, 30, 10, L)["reverse"]] for L in (3, 5, 10)]
    s.table([["L", "forward-mode MACs", "reverse-mode MACs"], *counts])
    s.text("(e) Both modes run the primal through the hidden layers (KD + (L-1)K^2). Forward mode then pushes D "
           "tangents through L-1 hidden layers and W_F: D((L-1)K^2 + PK); reverse mode pulls P adjoints back: "
           "P((L-1)K^2 + KD). The difference is (L-1)K^2 (D - P): with D = 2 inputs and P = 10 outputs forward "
           "mode needs about 5x fewer multiplies, and reverse mode wins only when P < D.")
    progress.step("dl-a1 question 2")

    s.heading("3 Networks by hand")
    for name, net in (("XNOR", impl.xnor_net()), ("tent", impl.tent_net()), ("soft threshold, s = 1",
                                                                            impl.soft_threshold_net(1.0))):
        s.text(f"{name}: " + "; ".join(f"W{i + 1} = {w.tolist()}, b{i + 1} = {b.tolist()}"
                                        for i, (w, b) in enumerate(net.layers)))
    s.text(" ".join(" ".join(f.__doc__.split()) for f in (impl.xnor_net, impl.tent_net, impl.soft_threshold_net)))
    grid = torch.linspace(-1.5, 2.0, 701, dtype=torch.float64)

    def hand(figure):
        left, right = figure.subplots(1, 2)
        left.plot(grid.numpy(), impl.tent_net()(grid).numpy())
        left.set(title="tent", xlabel="x")
        for s_ in (0.0, 0.5, 1.0):
            right.plot(grid.numpy(), impl.soft_threshold_net(s_)(grid).numpy(), label=f"s = {s_}")
        right.set(title="soft threshold", xlabel="x")
        right.legend()
    _figure(out / "dl_a1_handbuilt.png", hand, size=(9, 3.4))
    s.figure("dl_a1_handbuilt.png", "3 The hand-built ReLU nets on a grid.")
    progress.step("dl-a1 question 3")

    s.heading("4 Initialization (depth 8, width 50, tanh)")
    data = datasets.load_mnist(opts.data_dir) if opts.data_dir and _has_mnist(opts.data_dir) else datasets.digits_784()
    results = impl.init_study(depth=8, data=data, epochs=2 if opts.quick else 5)
    for when in ("before", "after"):
        _figure(out / f"dl_a1_init_{when}.png", lambda f, when=when: _plot_init(f, results, when), size=(9, 3.6))
        s.figure(f"dl_a1_init_{when}.png", f"4(c) Mean |post-activation| and gradient norm per layer, {when} training.")
    _figure(out / "dl_a1_init_accuracy.png", lambda f: _plot_accuracy(f, results), size=(9, 3.6))
    s.figure("dl_a1_init_accuracy.png", "4(d) Train and test accuracy per epoch (SGD, lr 0.01, batch 128).")
    s.table([["init", "final train accuracy", "final test accuracy"]] +
            [[str(d), f"{r.train_accuracy[-1]:.3f}", f"{r.test_accuracy[-1]:.3f}"] for d, r in results.items()])
    s.text("(e) " + impl.init_discussion(results))
    progress.step("dl-a1 question 4")

    s.heading("5 Least squares and gradient descent")
    s.text("(a) grad L = X^T (X w - y); the minimiser solves X^T X w = X^T y: w* = (X^T X)^-1 X^T y, in general the "
           "minimum-norm w* = X^+ y. (b) w1 = (I - a X^T X) w0 + a X^T y, w2 = (I - a X^T X)^2 w0 + "
           "(I + (I - a X^T X)) a X^T y. (c) w_k = (I - a X^T X)^k w0 + sum_{j<k} (I - a X^T X)^j a X^T y "
           "= w* + (I - a X^T X)^k (w0 - w*), converging for 0 < a < 2 / lambda_max(X^T X).")
    g = np.random.default_rng(0)
    X, yv = torch.tensor(g.normal(size=(20, 3))), torch.tensor(g.normal(size=20))
    w0 = torch.zeros(3, dtype=torch.float64)
    limit = impl.step_size_limit(X)
    w_star = impl.lsq_minimiser(X, yv)
    paths = {f"a = {f} x 2/lambda_max": [float((impl.gd_iterate(X, yv, w0, f * limit, k) - w_star).norm()) + 1e-16
                                         for k in range(60)] for f in (0.2, 0.9, 1.05)}
    _figure(out / "dl_a1_gd.png", lambda f: _plot_curves(f, paths, "k", "|w_k - w*|", "5(c) closed-form iterates",
                                                         log=True))
    s.figure("dl_a1_gd.png", "5(c) Distance to the minimiser: converging below the step-size limit, diverging above.")
    progress.step("dl-a1 question 5")
    return s


def _housing_source(data_dir):
    if data_dir is None:
        return None, None
    csv = next((p for p in sorted(Path(data_dir).glob("*.csv")) if "boston" in p.name.lower()), None)
    openml = Path(data_dir) / "openml"
    return (csv, None) if csv else (None, openml if openml.is_dir() else None)


def _has_mnist(folder) -> bool:
    folder = Path(folder)
    return any((base / name).exists() for base in (folder, folder / "MNIST" / "raw")
               for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"))


def _plot_init(figure, results, when):
    left, right = figure.subplots(1, 2)
    for d, r in results.items():
        stats = getattr(r, when)
        layers = range(1, len(stats.mean_abs_activation) + 1)
        left.plot(layers, stats.mean_abs_activation, "o-", label=str(d))
        right.semilogy(layers, stats.grad_norm, "o-", label=str(d))
    left.set(xlabel="layer", ylabel="mean |post-activation|", title=when)
    right.set(xlabel="layer", ylabel="gradient norm", title=when)
    right.legend(title="d")
    for ax in (left, right):
        ax.grid(alpha=0.3)


def _plot_accuracy(figure, results):
    left, right = figure.subplots(1, 2, sharey=True)
    for d, r in results.items():
        epochs = range(1, len(r.train_accuracy) + 1)
        left.plot(epochs, r.train_accuracy, "o-", label=str(d))
        right.plot(epochs, r.test_accuracy, "o-", label=str(d))
    left.set(xlabel="epoch", ylabel="accuracy", title="train")
    right.set(xlabel="epoch", title="test")
    right.legend(title="d")


BUILDERS = {"ps09": ps09, "ex08": ex08, "moons": moons, "a7": a7, "dl-a1": dl_a1}
STEPS = {"ps09": 3, "ex08": 2, "moons": 2, "a7": 3, "dl-a1": 5}


# ------------------------------------------------------------------------------------ output
def _markdown(sections) -> str:
    lines = ["# Solutions report", ""]
    for section in sections:
        lines += [f"## {TITLES[section.sheet]}", ""]
        for block in section.blocks:
            if block[0] == "h":
                lines += [f"### {block[1]}", ""]
            elif block[0] == "p":
                lines += [block[1], ""]
            elif block[0] == "table":
                rows = block[1]
                lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
                lines += ["| " + " | ".join(r) + " |" for r in rows[1:]] + [""]
            else:
                lines += [f"![{block[2]}]({block[1]})", "", f"*{block[2]}*", ""]
    return "\n".join(lines)


def _html(sections) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Solutions report</title><style>"
             "body{font-family:sans-serif;max-width:1000px;margin:auto;padding:1em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px}img{max-width:100%}figcaption{font-style:italic}"
             "</style></head><body><h1>Solutions report</h1><ul>"]
    parts += [f"<li><a href='#{s.sheet}'>{html.escape(TITLES[s.sheet])}</a></li>" for s in sections] + ["</ul>"]
    for section in sections:
        parts.append(f"<h2 id='{section.sheet}'>{html.escape(TITLES[section.sheet])}</h2>")
        for block in section.blocks:
            if block[0] == "h":
                parts.append(f"<h3>{html.escape(block[1])}</h3>")
            elif block[0] == "p":
                parts.append(f"<p>{html.escape(block[1])}</p>")
            elif block[0] == "table":
                head, *rows = block[1]
                parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
                             + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                                       for r in rows) + "</table>")
            else:
                parts.append(f"<figure><img src='{block[1]}' alt='{html.escape(block[2])}'>"
                             f"<figcaption>{html.escape(block[2])}</figcaption></figure>")
    return "".join(parts) + "</body></html>"


def build_report(out, sheets=SHEETS, *, data_dir=None, device: str = "cpu", quick: bool = False,
                 stream=sys.stderr) -> Path:
    """Write the report (index.html, report.md, PNG figures) to ``out``, replacing what was there."""
    import matplotlib

    matplotlib.use("Agg")
    unknown = [s for s in sheets if s not in BUILDERS]
    if unknown or not sheets:
        raise ValueError(f"sheets must be a non-empty selection of {list(SHEETS)}, got {list(sheets)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ValueError(f"data_dir {data_dir}: no such folder")
    out = Path(out)
    opts = Options(out, tuple(sheets), Path(data_dir) if data_dir else None, device, quick)
    progress = Progress(sum(STEPS[s] for s in sheets), stream)
    with tempfile.TemporaryDirectory(prefix="report-", dir=out.parent if out.parent.exists() else None) as tmp:
        work = Path(tmp) / "report"
        work.mkdir()
        sections = [BUILDERS[sheet](opts, work, progress) for sheet in SHEETS if sheet in sheets]
        (work / "report.md").write_text(_markdown(sections), encoding="utf-8")
        (work / "index.html").write_text(_html(sections), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(work), str(out))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m impl.report", description="Build the solutions report.")
    parser.add_argument("--out", default="report", help="output folder (replaced), default: report")
    parser.add_argument("--sheets", nargs="+", default=list(SHEETS), choices=SHEETS, help="sheets to include")
    parser.add_argument("--data-dir", default=None,
                        help="folder with real data: MNIST IDX files, a Boston *.csv or openml/ cache, X.pt and y.pt")
    parser.add_argument("--device", default="cpu", help="device for the Jacobian timings (cpu, cuda)")
    parser.add_argument("--quick", action="store_true", help="fewer epochs and seeds (for smoke tests)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        path = build_report(args.out, tuple(args.sheets), data_dir=args.data_dir, device=args.device, quick=args.quick)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"report written to {path / 'index.html'} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
