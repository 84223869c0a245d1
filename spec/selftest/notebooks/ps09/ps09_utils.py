"""Small helpers for ps09 (so the notebook stays a bit shorter)."""
import torch


def mse(pred, target):
    """Mean squared error, both tensors flattened first (so (N,1) vs (N,) can't broadcast to NxN)."""
    pred = pred.reshape(-1)
    target = target.reshape(-1)
    return ((pred - target) ** 2).mean()


def plot_loss_curve(ax, losses, label=None, logy=True, **kwargs):
    """Plot a list of losses on ax (log scale by default)."""
    ax.plot(range(len(losses)), losses, label=label, **kwargs)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("MSE loss")
    if label is not None:
        ax.legend()
    return ax
