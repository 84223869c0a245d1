"""The minibatch loop shared by the solutions that train classifiers with a torch optimizer."""

from __future__ import annotations

import torch
from torch import nn


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
