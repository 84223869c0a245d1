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


def momentum_sgd_curves(x, y, mus, *, lr: float = 1e-3, epochs: int = 50, batch: int = 32,
                        seed: int = 0, dampened: bool = False) -> dict[float, list[float]]:
    """ps09 2.5's protocol run by the spec, every momentum at once: a line fit from zero by
    minibatch SGD on the MSE with the sheet's b_t = mu b_(t-1) + g_t (b_0 = g_0), theta -= lr b_t,
    the samples of each epoch in the order torch.randperm(N, generator seeded with ``seed``).
    Returns the per-batch loss curve of each mu (float64, so no run overflows before the end of its
    curve says whether it settles). ``dampened``: the slip b_t = mu b_(t-1) + (1 - mu) g_t (b_0 = g_0),
    for naming that mistake."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    mu = torch.tensor([float(m) for m in mus], dtype=torch.float64)
    theta = torch.zeros(len(mu), 2, dtype=torch.float64)
    velocity = torch.zeros_like(theta)
    g = torch.Generator().manual_seed(seed)
    losses = []
    with torch.no_grad():
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=g)
            for start in range(0, len(x), batch):
                idx = order[start:start + batch]
                xb, yb = x[idx], y[idx]
                residual = theta[:, :1] * xb + theta[:, 1:] - yb          # mus x batch
                losses.append((residual**2).mean(1))
                grad = torch.stack([2 * (residual * xb).mean(1), 2 * residual.mean(1)], 1)
                first = not losses[:-1]
                velocity = grad if first else mu[:, None] * velocity + (1 - mu[:, None] if dampened else 1) * grad
                theta = theta - lr * velocity
    curves = torch.stack(losses, 1)
    return {m: curves[i].tolist() for i, m in enumerate(mus)}
