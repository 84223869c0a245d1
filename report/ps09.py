"""ps09, automatic differentiation: what the report computes for the sheet and the Markdown it writes."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import torch

from report.core import Options, Section, file_source, plot_curves, save_figure
from spec import data as datasets

TITLE = "ps09: Automatic differentiation"
STEPS = 3


# ----------------------------------------------------------------------------- claims (pure functions)
def early_stopping_answer(best_val_epoch: int, epochs: int, last: float, best: float) -> str:
    """2.4: what the two test MSEs show, each number named next to its label, words chosen by the numbers."""
    if best_val_epoch == epochs - 1:
        return (f"The validation MSE is lowest after the last epoch (index {best_val_epoch}), so the "
                f"best-validation parameters are the last ones: test MSE {last:.5f} for both. Within {epochs} "
                f"epochs this linear model does not overfit, and early stopping changes nothing.")
    relative = (last - best) / last if last else 0.0
    if abs(relative) < 0.01:
        verdict = (f"the two differ by {abs(relative) * 100:.2g} % only: the curves are flat near the end, so "
                   f"early stopping changes little here")
    elif relative > 0:
        verdict = (f"the best-validation parameters are better on the test set by {relative * 100:.1f} %: "
                   f"stopping at the validation minimum helps")
    else:
        verdict = (f"the last epoch's parameters are better on the test set by {-relative * 100:.1f} %: the "
                   f"validation minimum does not carry over to the test set")
    return (f"Test MSE with the last epoch's parameters (epoch index {epochs - 1}): {last:.5f}; with the "
            f"best-validation epoch's (index {best_val_epoch}): {best:.5f}. So {verdict}.")


def separation(curves: dict, mus) -> float:
    """How far apart a plot draws the closest two of ``mus``' loss curves: the minimum over neighbouring
    momenta of the largest relative gap |log(L_i(t) / L_j(t))| over the updates t."""
    ordered = sorted(mus)
    gaps = []
    for a, b in itertools.pairwise(ordered):
        la, lb = np.asarray(curves[a], dtype=float), np.asarray(curves[b], dtype=float)
        with np.errstate(all="ignore"):
            gap = np.abs(np.log(la / lb))
        gap = gap[np.isfinite(gap)]
        gaps.append(float(gap.max()) if gap.size else 0.0)
    return min(gaps)


def unsettled_curves(options: dict, converging: list[str], curves: dict) -> dict:
    """For each option ruled out: (mu, first loss, last loss) of its first momentum whose measured
    curve does not converge (the last loss ``nan`` or ``inf`` where the run overflowed)."""
    found = {}
    for key, mus in options.items():
        if key in converging:
            continue
        for mu in mus:
            curve = np.asarray(curves[mu], dtype=float)
            if not (np.isfinite(curve).all() and curve[-1] < 0.1 * curve[0]):
                found[key] = (mu, float(curve[0]), float(curve[-1]))
                break
    return found


def momentum_answer(options: dict, converging: list[str], separations: dict, threshold: float = 0.1,
                    unsettled: dict | None = None) -> tuple[str, str]:
    """2.5: one option, and the sentence that says why, from which options converge and how separate
    their curves are; ``unsettled`` (from :func:`unsettled_curves`) names the measured curve that
    rules each other option out. Returns (option key, sentence)."""
    names = ", ".join(f"({k})" for k in converging)
    ruled_out = [k for k in options if k not in converging]
    plural = len(ruled_out) > 1
    if ruled_out and unsettled:
        def one(k):
            if k not in unsettled:
                return f"({k})"
            mu, first, last = unsettled[k]
            end = f"ends at {last:.3g}" if math.isfinite(last) else "overflows"
            return f"({k}) by mu = {mu:g}, whose curve starts at {first:.3g} and {end}"
        why_out = ("Ruled out by a measured curve that does not converge: " + "; ".join(map(one, ruled_out)) + ". ")
    else:
        why_out = (f"Option{'s' if plural else ''} {', '.join(f'({k})' for k in ruled_out)} "
                   f"contain{'' if plural else 's'} a momentum whose curve does not converge. " if ruled_out else "")
    if not converging:
        best = max(options, key=lambda k: separations.get(k, -math.inf))
        return best, (why_out + f"No option's four curves all converge in this run, so the curves cannot "
                      f"decide; the closest is ({best}).")
    if len(converging) == 1:
        (only,) = converging
        return only, why_out + f"Only ({only}) {options[only]} has four converging curves: the answer is ({only})."
    apart = [k for k in converging if separations[k] >= threshold]
    detail = "; ".join(f"({k}) {100 * separations[k]:.0f} %" for k in converging)
    best = max(converging, key=separations.__getitem__)
    if len(apart) == 1:
        verdict = (f"Only ({best}) draws four curves that stay apart (the closest two differ by at least "
                   f"{100 * threshold:.0f} % somewhere): the answer is ({best}) {options[best]}.")
    else:
        many = "Both" if len(apart) == len(converging) == 2 else "All" if len(apart) == len(converging) else "None"
        verdict = (f"{many} of them reach the {100 * threshold:.0f} % separation a plot needs to show four "
                   f"curves; the more separated one wins, so the answer is ({best}) {options[best]}.")
    return best, (why_out + f"Options {names} converge. The sheet's figure is not part of its text, so the "
                  f"curves decide by how clearly a plot separates them; the largest gap between the two closest "
                  f"curves of each: {detail}. " + verdict)


# ----------------------------------------------------------------------------- the section
def build(opts: Options, out: Path, progress) -> Section:
    import impl

    s = Section("ps09", TITLE)
    s.heading("1 Intro to AutoDiff")
    gradients = impl.vector_function_gradients()
    q = "1"
    s.table(["question", "value (3 decimals)"], [
        ["1.1 $f'(2)$, $f(x) = 2 / ((5 - x)^2 + 2^2)$", s.num(q, "1.1 f'(2)", impl.derivative(impl.ps09_f, 2.0))],
        ["1.3 $\\partial f_1 / \\partial x$ at (1.376, 2.123)", s.num(q, "1.3 df1/dx", gradients[0, 0])],
        ["1.3 $\\partial f_2 / \\partial y$ at (1.376, 2.123)", s.num(q, "1.3 df2/dy", gradients[1, 1])],
        ["1.4 $\\partial\\, \\mathrm{tr}(A^2) / \\partial A_{01}$, A = [[1, 2], [3, 4]]",
         s.num(q, "1.4 dtr(A^2)/dA[0,1]",
               impl.trace_square_gradient(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))[0, 1])],
        *[[f"1.5 ${name}(0.173)$", s.num(q, f"1.5 {label}(0.173)", v)]
          for name, label, v in zip(("\\sigma'", "\\sigma''"), ("sigma'", "sigma''"),
                                    impl.sigmoid_derivatives()[1:], strict=True)]])
    sheet_x, sheet_s, sheet_d = impl.sigmoid_and_derivative()
    fine_x, fine_s, fine_d = impl.sigmoid_and_derivative(torch.linspace(-5.0, 5.0, 201))

    def sigmoid_plot(figure):
        left, right = figure.subplots(1, 2)
        left.plot(fine_x.numpy(), fine_s.numpy())
        left.plot(sheet_x.numpy(), sheet_s.numpy(), "o", label="torch.arange(-5, 5)")
        left.set(title="sigmoid", xlabel="x", ylabel="sigma(x)")
        right.plot(fine_x.numpy(), fine_d.numpy(), color="tab:orange")
        right.plot(sheet_x.numpy(), sheet_d.numpy(), "o", color="tab:orange", label="torch.arange(-5, 5)")
        right.set(title="derivative by autograd", xlabel="x", ylabel="sigma'(x)")
        for ax in (left, right):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    save_figure(out / "ps09_sigmoid.png", sigmoid_plot, size=(9, 3.5))
    s.figure("ps09_sigmoid.png", "1.2 The sigmoid and its derivative by autograd (sum trick) on 201 points of "
                                 "[-5, 5]; the dots are the sheet's torch.arange(-5, 5).")
    progress.step("ps09 part 1")

    real = opts.data_dir is not None and (opts.data_dir / "X.pt").exists()
    x, y = datasets.ps09_data(opts.data_dir if real else None)
    s.uses("part 2 (X, y)", f"{file_source(opts.data_dir / 'X.pt')}, {file_source(opts.data_dir / 'y.pt')}"
           if real else f"embedded: {len(x)} generated samples, y = 2.5 x - 1 + noise")
    s.heading("2 Using AutoDiff for SGD")
    run = impl.sgd_linear(x, y)
    s.table(["2.1 (batch 32, lr 0.01, 10 epochs)", "value"],
            [["slope", s.num("2.1", "slope", run.params[0])], ["bias", s.num("2.1", "bias", run.params[1])]])
    save_figure(out / "ps09_loss_curve.png", lambda f: plot_curves(
        f, {"batch MSE": run.batch_losses}, "parameter update", "batch MSE", "2.2 Loss of every parameter update",
        log=True))
    s.figure("ps09_loss_curve.png", f"2.2 Learning curve: {s.num('2.2', 'updates', len(run.batch_losses), 'd')} "
                                    f"updates (log scale).")
    x_tr, y_tr, x_va, y_va, x_te, y_te = impl.split_80_10_10(x, y)
    epochs = 150
    long = impl.sgd_linear(x_tr, y_tr, lr=0.001, epochs=epochs, x_val=x_va, y_val=y_va)
    best_train, best_val = impl.best_epochs(long)
    last, best = impl.test_mse_last_vs_best(long, x_te, y_te)
    s.table([f"2.3 / 2.4 (80:10:10, batch 32, lr 0.001, {epochs} epochs)", "value"],
            [["epoch index of the minimal train MSE", s.num("2.3", "best train epoch", best_train, "d")],
             ["epoch index of the minimal validation MSE", s.num("2.3", "best validation epoch", best_val, "d")],
             ["test MSE, last epoch", s.num("2.4", "test MSE last", last, ".5f")],
             ["test MSE, best-validation epoch", s.num("2.4", "test MSE best", best, ".5f")]])
    s.text("2.4: " + early_stopping_answer(best_val, epochs, last, best))
    save_figure(out / "ps09_train_val.png", lambda f: plot_curves(
        f, {"train": long.train_mse, "validation": long.val_mse}, "epoch", "MSE", "2.3 MSE per epoch", log=True))
    s.figure("ps09_train_val.png", "2.3 Train and validation MSE after every epoch (log scale).")
    progress.step("ps09 part 2.1-2.4")

    options = impl.MOMENTUM_OPTIONS
    mus = sorted({m for option in options.values() for m in option})
    momentum_epochs = 20 if opts.quick else 50
    curves = impl.momentum_curves(x, y, mus, epochs=momentum_epochs)
    converging = impl.consistent_momentum_options(curves)
    separations = {k: separation(curves, options[k]) for k in options}
    for k in options:
        s.num("2.5", f"separation ({k})", separations[k])
    unsettled = unsettled_curves(options, converging, curves)
    choice, sentence = momentum_answer(options, converging, separations, unsettled=unsettled)
    panels = converging or [choice]

    def momentum_plot(figure):
        import matplotlib

        axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for ax, key in zip(axes, panels, strict=True):
            shown = options[key]
            colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(shown)))
            for mu, colour in zip(shown, colours, strict=True):
                ax.plot(curves[mu], label=f"mu = {mu}", color=colour, linewidth=0.8)
            chosen = " (the answer)" if key == choice else ""
            ax.set(xlabel="parameter update", yscale="log",
                   title=f"option ({key}){chosen}: closest curves {100 * separations[key]:.0f} % apart")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("batch MSE (log)")
        figure.suptitle(f"2.5 Momentum, lr 1e-3, {momentum_epochs} epochs")
    save_figure(out / "ps09_momentum.png", momentum_plot, size=(4.8 * len(panels), 3.8))
    s.figure("ps09_momentum.png", f"2.5 Loss curves of the options whose curves all converge, purple to light "
                                  f"green as on the sheet; option ({choice}) is the answer.")
    s.text(f"2.5 ({momentum_epochs} epochs): " + sentence)
    progress.step("ps09 momentum")
    return s
