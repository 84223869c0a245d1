"""The spec's own training loops: the submission provides a model, the spec owns how it is trained."""

from __future__ import annotations

import torch


def full_batch_mse(model, x, y, optimizer, epochs: int) -> float:
    """``epochs`` full-batch steps of ``optimizer`` on the mean squared error of model(x) against y
    (numpy arrays or tensors); returns the final mean squared error."""
    inputs, targets = torch.as_tensor(x), torch.as_tensor(y)
    for _ in range(epochs):
        optimizer.zero_grad()
        ((model(inputs) - targets) ** 2).mean().backward()
        optimizer.step()
    with torch.no_grad():
        return float(((model(inputs) - targets) ** 2).mean())
