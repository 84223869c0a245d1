"""Wrong on purpose (ex08 linear regressions): train() never clears the gradients, so they
accumulate across steps (the sheet's HINT)."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import my_mse


def train(model, x, y, *, lr=0.01, steps=100, loss_fn=my_mse):
    if not lr > 0 or steps < 0 or len(x) != len(y) or len(x) == 0:
        raise ValueError("bad arguments")
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        losses.append(loss.item())
    return losses
