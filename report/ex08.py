"""ex08, PyTorch introduction. Every call of impl's ex08 names (MyLinearRegression, train, the nn.Linear
version, the MLP) lives in this module, so that an API change of those names is adapted here only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from report.core import Options, Section, save_figure
from spec import data as datasets

TITLE = "ex08: PyTorch introduction"
STEPS = 2
EARLY, FINAL = 20, 2000


# ----------------------------------------------------------------------------- claims (pure functions)
def nn_linear_answer(params: dict, early: int = EARLY, final: int = FINAL, decimals: int = 3) -> str:
    """"Does nn.Linear differ, and why?" from the fitted (a, b) of each version after ``early`` and
    ``final`` steps: ``params[version] = {"early": (a, b), "final": (a, b)}``; the first version is the
    reference (zero init). "Differs" means a difference visible at ``decimals`` decimals."""
    names = list(params)
    reference, others = names[0], names[1:]
    visible = 0.5 * 10.0 ** -decimals

    def gap(when):
        return max(abs(params[n][when][i] - params[reference][when][i]) for n in others for i in (0, 1))

    early_gap, final_gap = gap("early"), gap("final")
    if final_gap < visible:
        end = (f"No, not after {final} steps: all {len(names)} versions reach the same a and b to {decimals} "
               f"decimals (largest difference {final_gap:.1e}), because full-batch gradient descent on this "
               f"convex loss converges to the one least-squares fit from any start.")
    else:
        end = (f"Yes, after {final} steps the versions still differ by up to {final_gap:.3g} in a or b: "
               f"training has not yet reached the common least-squares fit.")
    if early_gap >= visible:
        path = (f" On the way they do differ: after {early} steps by up to {early_gap:.3g}, because nn.Linear "
                f"starts from its own random init (U(-1, 1) for one input) instead of zeros.")
    else:
        path = f" Even after {early} steps they agree to {decimals} decimals (largest difference {early_gap:.1e})."
    return end + path + " nn.MSELoss averages over the samples like our MSE, so the step sizes are the same."


# ----------------------------------------------------------------------------- impl calls (ex08 API)
def _linear_versions(x, y, steps: int) -> dict:
    """The three versions of exercises 2-3 through the template's train(features, labels, model,
    lossfunc, optimizer, num_epoch), each with SGD at lr 0.02 (below 2 / lambda_max on the sheet's points)."""
    from torch import nn

    import impl

    fits = {}
    torch.manual_seed(0)
    for name, model, lossfunc in (("tensors (MyLinearRegression)", impl.MyLinearRegression(), impl.mselossfunc),
                                  ("nn.Module + nn.Parameter", impl.NNLinearRegression(), impl.mselossfunc),
                                  ("nn.Linear + nn.MSELoss (own init)", nn.Linear(1, 1), nn.MSELoss())):
        impl.train(x, y, model, lossfunc, torch.optim.SGD(model.parameters(), lr=0.02), steps)
        fits[name] = model
    return fits


def _slope_bias(model) -> tuple[float, float]:
    a, b = list(model.parameters())
    return float(a.detach().reshape(())), float(b.detach().reshape(()))


def _fit_mlp(xn, yn, hidden: int, lr: float, steps: int, rows=None):
    """MLP(hidden_size) through the template's train with full-batch Adam, from a seeded init."""
    from torch import nn

    import impl

    rows = np.arange(len(xn)) if rows is None else rows
    torch.manual_seed(0)
    model = impl.MLP(hidden)
    impl.train(xn[rows], yn[rows], model, nn.MSELoss(), torch.optim.Adam(model.parameters(), lr=lr), steps)
    return model


def _mlps(xn, yn, steps: int):
    """A hyper-parameter grid (hidden size x learning rate) scored on a held-out quarter (seeded split)."""
    order = np.random.default_rng(0).permutation(len(xn))
    cut = len(xn) * 3 // 4
    grid = []
    for hidden in (2, 8, 32):
        for lr in (0.01, 0.05):
            model = _fit_mlp(xn, yn, hidden, lr, steps, order[:cut])
            with torch.no_grad():
                val = float(((model(torch.as_tensor(xn[order[cut:]])) - torch.as_tensor(yn[order[cut:]])) ** 2).mean())
            grid.append({"hidden_size": hidden, "lr": lr, "val_mse": val})
    best = min(grid, key=lambda r: (r["val_mse"], r["hidden_size"], r["lr"]))
    return best, grid, _fit_mlp(xn, yn, best["hidden_size"], best["lr"], steps), _fit_mlp(xn, yn, 2, 0.05, steps)


# ----------------------------------------------------------------------------- the section
def build(opts: Options, out: Path, progress) -> Section:
    import impl

    s = Section("ex08", TITLE)
    s.heading("Exercises 2-3: linear regression three ways, and an MLP")
    x, y = datasets.ex08_linear_data()
    s.uses("exercises 2-3", f"embedded: the sheet's {len(x)} (x, y) points; MLP data generated (100 points)")
    early = {name: _slope_bias(m) for name, m in _linear_versions(x, y, EARLY).items()}
    fits = _linear_versions(x, y, FINAL)
    final = {name: _slope_bias(m) for name, m in fits.items()}
    params = {name: {"early": early[name], "final": final[name]} for name in fits}
    rows = []
    for name in fits:
        q = "2-3 " + name
        rows.append([name, s.num(q, f"a after {EARLY}", early[name][0]), s.num(q, f"b after {EARLY}", early[name][1]),
                     s.num(q, f"a after {FINAL}", final[name][0]), s.num(q, f"b after {FINAL}", final[name][1])])
    s.table(["version (gradient descent, lr 0.02)", f"a after {EARLY} steps", f"b after {EARLY} steps",
             f"a after {FINAL} steps", f"b after {FINAL} steps"], rows)
    s.text("Does nn.Linear differ, and why? " + nn_linear_answer(params))
    xn, yn = datasets.ex08_nonlinear_data()
    steps = 300 if opts.quick else 1500
    best, grid, mlp, small = _mlps(xn, yn, steps)
    s.table(["hidden", "lr", "validation MSE"],
            [[r["hidden_size"], r["lr"], s.num("4 grid", f"{r['hidden_size']} {r['lr']}", r["val_mse"], ".4f")]
             for r in grid])
    s.text(f"Chosen by the lowest validation MSE ({s.num('4 grid', 'best', best['val_mse'], '.4f')}): hidden size "
           f"{best['hidden_size']}, lr {best['lr']} (sigmoid, Adam, full batch, {steps} steps).")

    def draw(figure):
        left, right = figure.subplots(1, 2)
        grid_x = torch.linspace(float(x.min()), float(x.max()), 100)[:, None]
        left.scatter(x, y, s=12, color="k", label="data")
        with torch.no_grad():
            for name, model in fits.items():
                left.plot(grid_x.numpy(), model(grid_x).numpy(), label=name.split(" (")[0])
            left.set(title=f"linear models after {FINAL} steps", xlabel="x", ylabel="y")
            left.legend(fontsize=7)
            gx = torch.linspace(float(xn.min()), float(xn.max()), 200)[:, None]
            right.scatter(xn, yn, s=8, color="k", label="data")
            right.plot(gx.numpy(), mlp(gx).numpy(), label=f"MLP, hidden {best['hidden_size']}")
            right.plot(gx.numpy(), small(gx).numpy(), label="MLP, hidden 2 (sigmoid)")
        right.set(title="MLP", xlabel="x", ylabel="y")
        right.legend(fontsize=7)
    save_figure(out / "ex08_predictions.png", draw, size=(9, 3.6))
    s.figure("ex08_predictions.png", "Figure 1: predictions of the linear models (left) and of MLPs (right).")
    progress.step("ex08 regressions and MLP")

    s.heading("Problem 2: the vanishing gradient bound")
    point = torch.tensor([1.0, -0.5], dtype=torch.float64)
    depths = [1, 2, 5, 10, 20, 30]
    attained, bounds, rows = [], [], []
    for depth in depths:
        value = abs(float(impl.grad_w11_chain(point, *impl.extremal_net(point, depth))))
        bound = impl.vanishing_bound(depth, point)
        attained.append(value)
        bounds.append(bound)
        rows.append([depth, s.num("P2", f"bound L={depth}", bound, ".4g"),
                     s.num("P2", f"extremal L={depth}", value, ".4g")])
    s.table(["L", "bound $\\lvert x_1 \\rvert / 4 \\cdot (3/4)^{L-1}$",
             "$\\lvert \\partial f / \\partial W_{11} \\rvert$ of the extremal net"], rows)
    s.text("Each $\\sigma'$ is at most 1/4, and going back through one hidden layer multiplies the largest entry of "
           "$\\partial f / \\partial x$ by at most $3 \\cdot 1 \\cdot 1/4 = 3/4$ (K = 3 terms, "
           "$\\lvert W \\rvert \\le 1$); $\\lvert c \\rvert \\le 1$ starts the product. Hence")
    s.math("\\left\\lvert \\frac{\\partial f}{\\partial W_{11}} \\right\\rvert \\le \\lvert x_1 \\rvert "
           "\\frac{1}{4} \\left(\\frac{3}{4}\\right)^{L-1} = \\frac{\\lvert x_1 \\rvert}{3} "
           "\\left(\\frac{3}{4}\\right)^{L},")
    s.text("attained by all weights 1 and biases that put every pre-activation at 0.")

    def plot_bound(figure):
        axes = figure.subplots()
        axes.semilogy(depths, bounds, "o-", label="bound")
        axes.semilogy(depths, attained, "x--", label="extremal net")
        axes.set(xlabel="L (hidden layers)", ylabel="|df/dW11|", title="Problem 2 (log scale)")
        axes.legend()
        axes.grid(alpha=0.3)
    save_figure(out / "ex08_bound.png", plot_bound)
    s.figure("ex08_bound.png", "The bound and the extremal net's gradient against L (log scale).")
    progress.step("ex08 bound")
    return s
