"""Helpers for my a7 notebook: data sets, accuracy and a few plotting functions."""
from typing import NamedTuple

import numpy as np
import torch
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits, load_sample_image
from sklearn.model_selection import train_test_split


class Split(NamedTuple):
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_split(test_size=0.25, seed=0, images=True):
    """sklearn's 8 x 8 digits scaled to [0, 1]; x as N x 1 x 8 x 8 (images=True) or N x 64."""
    d = load_digits()
    x = d.images / 16.0 if images else d.data / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=test_size, random_state=seed, stratify=d.target)
    x_tr = torch.tensor(x_tr, dtype=torch.float32)
    x_te = torch.tensor(x_te, dtype=torch.float32)
    if images:
        x_tr, x_te = x_tr.unsqueeze(1), x_te.unsqueeze(1)
    return Split(x_tr, torch.tensor(y_tr), x_te, torch.tensor(y_te))


def accuracy(scores_or_labels, y):
    """Fraction correct from logits (N x C), probabilities of class 1 (N,) in [0, 1], or labels."""
    s = torch.as_tensor(scores_or_labels)
    y = torch.as_tensor(y)
    if s.dim() == 2 and s.shape[1] > 1:
        pred = s.argmax(dim=1)
    elif s.is_floating_point():
        pred = (s.reshape(-1) > 0.5).long()
    else:
        pred = s.reshape(-1)
    return (pred == y.reshape(-1).long()).float().mean().item()


def gray_test_image(step=2):
    """The 'china.jpg' sample image that ships with scikit-learn, in gray values in [0, 1]."""
    img = load_sample_image("china.jpg").astype(np.float64) / 255.0
    gray = img @ np.array([0.299, 0.587, 0.114])
    return torch.tensor(gray[::step, ::step])


def show_images(images, titles=None, ncols=4, size=3.0, cmap="gray", symmetric=False, vmin=None, vmax=None):
    """Plot a list of 2-D arrays/tensors in a grid."""
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, im in enumerate(images):
        im = np.asarray(im)
        ax = axes.ravel()[i]
        if symmetric:
            m = np.abs(im).max() or 1.0
            ax.imshow(im, cmap="RdBu_r", vmin=-m, vmax=m)
        else:
            ax.imshow(im, cmap=cmap, vmin=vmin, vmax=vmax)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    plt.tight_layout()
    return fig
