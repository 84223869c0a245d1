"""a7: logistic regression, vanishing gradients and a small CNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from report.core import Options, Section, save_figure
from spec import data as datasets

TITLE = "a7: PyTorch, vanishing gradients and CNNs"
STEPS = 3


def build(opts: Options, out: Path, progress) -> Section:
    import impl

    s = Section("a7", TITLE)
    s.heading("1 Logistic regression (companion notebook)")
    x, y = datasets.breast_cancer_data()
    s.uses("1", f"embedded: scikit-learn's breast-cancer table ({len(y)} samples, {x.shape[1]} features)")
    w, b = impl.fit_logistic_regression(x, y, C=1.0)
    s.text(f"On scikit-learn's breast-cancer table (standardised), the PyTorch fit of sklearn's objective (C = 1) "
           f"has $\\lVert w \\rVert$ = {s.num('1', '|w|', w.norm())}, intercept {s.num('1', 'intercept', b)}; the "
           f"spec checks every coefficient against LogisticRegression to 1e-3.")
    progress.step("a7 logistic regression")

    s.heading("2 Vanishing gradients")
    s.table(["$\\varepsilon$", "$\\lvert s \\rvert$ beyond which $\\sigma'(s) < \\varepsilon$"],
            [[f"{eps:g}", s.num("2", f"threshold eps={eps:g}", impl.saturation_threshold(eps))]
             for eps in (0.1, 0.01, 1e-3, 1e-6)])
    s.text("(a) $\\sigma'(s) = \\sigma(s)(1 - \\sigma(s)) \\le 1/4$, and tiny for large $\\lvert s \\rvert$; weights "
           "larger than 1 in magnitude can counteract the shrinking, and summing over more units ($n_{k+1}$ terms "
           "in eq. 2) increases the gradient. (b) $\\mathrm{ReLU}'(s)$ is 1 for $s > 0$ and 0 for $s \\le 0$, so "
           "eq. (4) keeps the gradient through active units instead of shrinking it by at most 1/4 per layer.")
    summaries = {act: impl.depth_study(12, 32, act, seed=0) for act in ("sigmoid", "tanh", "relu")}
    for act, summary in summaries.items():
        s.nums("2(c)", f"mean |dl/dW| {act}", summary, ".3g")

    def draw(figure):
        axes = figure.subplots()
        for act, summary in summaries.items():
            axes.semilogy(range(1, len(summary) + 1), summary, "o-", label=act)
        axes.set(xlabel="layer k (1 = input side)", ylabel="mean |dl/dW^(k)| (log)", title="(c) before training, "
                                                                                          "depth 12")
        axes.legend()
        axes.grid(alpha=0.3)
    save_figure(out / "a7_depth_study.png", draw)
    rate = np.exp(np.mean(np.log(np.array(summaries["sigmoid"][1:-1]) / np.array(summaries["sigmoid"][2:]))))
    s.figure("a7_depth_study.png", f"(c) Mean |dl/dW| per layer: the sigmoid net's gradient changes by a factor of "
                                   f"about {s.num('2(c)', 'sigmoid factor per layer', rate, '.2f')} per layer toward "
                                   f"the input (geometric mean over the inner layers).")
    progress.step("a7 depth study")

    s.heading("3-4 Convolutions and a small CNN")
    images = datasets.digits_images(seed=0)
    s.uses("3-4", f"embedded: scikit-learn's 8 x 8 digits ({len(images.y_train)} train, {len(images.y_test)} test)")
    digit = images.x_train[0, 0].double()

    def kernels(figure):
        names = ["identity", "box3", "sharpen", "sobel_x", "laplacian"]
        axes = figure.subplots(1, len(names))
        for ax, name in zip(axes, names, strict=True):
            ax.imshow(impl.conv2d(digit, impl.kernel(name), mode="replicate").numpy(), cmap="gray")
            ax.set(title=name, xticks=[], yticks=[])
    save_figure(out / "a7_kernels.png", kernels, size=(10, 2.4))
    s.figure("a7_kernels.png", "Kernels applied to a digit (replicate edges).")
    torch.manual_seed(0)
    accuracies = impl.train_cnn(impl.SmallCNN(), images, epochs=5 if opts.quick else 15)
    s.nums("4", "test accuracy per epoch", accuracies)

    def cnn_plot(figure):
        axes = figure.subplots()
        axes.plot(range(1, len(accuracies) + 1), accuracies, "o-")
        axes.set(xlabel="epoch", ylabel="test accuracy", title="small CNN on digits")
        axes.grid(alpha=0.3)
    save_figure(out / "a7_cnn.png", cnn_plot)
    s.figure("a7_cnn.png", f"Small CNN on the 8 x 8 digits: final test accuracy {accuracies[-1]:.3f}.")
    progress.step("a7 convolutions")
    return s
