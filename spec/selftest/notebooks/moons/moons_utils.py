"""Small helpers for my two-moons notebook (data, accuracy, plotting)."""
from typing import NamedTuple

import numpy as np
import torch
import matplotlib.pyplot as plt
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split


class Split(NamedTuple):
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def make_moons_split(n_samples=400, noise=0.2, test_size=0.25, seed=0):
    """The two moons from sklearn as float32 / long tensors, split into train and test."""
    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    return Split(torch.tensor(x_tr, dtype=torch.float32), torch.tensor(y_tr, dtype=torch.long),
                 torch.tensor(x_te, dtype=torch.float32), torch.tensor(y_te, dtype=torch.long))


def as_split(data):
    """Turn anything with x_train, y_train, x_test, y_test into a Split of tensors."""
    def fx(a):
        a = torch.as_tensor(a)
        return a if a.is_floating_point() else a.float()
    return Split(fx(data.x_train), torch.as_tensor(data.y_train).long(),
                 fx(data.x_test), torch.as_tensor(data.y_test).long())


def accuracy(scores_or_labels, y):
    """Fraction of correct predictions; takes either logits/probabilities (N x C) or labels (N,)."""
    s = torch.as_tensor(scores_or_labels)
    pred = s.argmax(dim=1) if s.dim() == 2 else s
    return (pred == torch.as_tensor(y)).float().mean().item()


def plot_decision_boundary(ax, xx, yy, p1, x, y, title=""):
    """Filled contour of P(class 1) plus the boundary p1 = 0.5 and the data points."""
    x = np.asarray(x)
    y = np.asarray(y)
    ax.contourf(xx, yy, p1, levels=20, cmap="RdBu_r", alpha=0.6, vmin=0, vmax=1)
    ax.contour(xx, yy, p1, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(x[y == 0, 0], x[y == 0, 1], s=8, c="tab:blue", edgecolors="k", linewidths=0.2)
    ax.scatter(x[y == 1, 0], x[y == 1, 1], s=8, c="tab:red", edgecolors="k", linewidths=0.2)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_grad_norms(ax, grad_norms, title="", style="-"):
    """One line per hidden layer: ||dL/dW_k|| over the training steps (log scale)."""
    g = np.asarray(grad_norms)
    for k in range(g.shape[1]):
        ax.semilogy(g[:, k], style, label=f"hidden{k + 1}")
    ax.set_xlabel("step")
    ax.set_ylabel("||grad W||")
    ax.set_title(title)
    ax.legend(fontsize=7)
