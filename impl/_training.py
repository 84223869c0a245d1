"""The minibatch loop and the accuracy shared by the solutions that train classifiers."""

from __future__ import annotations

import torch
from torch import nn


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of rows of x whose highest logit is the label in y."""
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def minibatch_epoch(model: nn.Module, optimizer, x: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                    generator: torch.Generator) -> None:
    """One epoch over (x, y) in the order torch.randperm(N, generator), one optimizer step per
    minibatch of the cross-entropy."""
    order = torch.randperm(len(y), generator=generator)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
