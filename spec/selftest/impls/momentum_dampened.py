"""Wrong on purpose (ps09.2-5 only): a momentum that dampens, b_t = mu b_(t-1) + (1 - mu) g_t."""

import torch

import impl.linear as _linear
from impl import *  # noqa: F403 - the reference, with one function broken below


def sgd_linear(x, y, *, batch_size=32, lr=0.01, epochs=10, momentum=0.0, seed=0, x_val=None, y_val=None):
    if momentum == 0:
        return _linear.sgd_linear(x, y, batch_size=batch_size, lr=lr, epochs=epochs, seed=seed,
                                  x_val=x_val, y_val=y_val)
    # the reference loop, with the momentum step replaced
    run = _linear.SGDRun(params=torch.zeros(2))
    params, velocity = torch.zeros(2, requires_grad=True), None
    sampler = _linear.EpochShuffle(len(x), seed)
    for _ in range(epochs):
        order = torch.tensor(list(iter(sampler)))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            params.grad = None
            loss = ((params[0] * x[idx] + params[1] - y[idx]) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                g = params.grad
                velocity = g.clone() if velocity is None else momentum * velocity + (1 - momentum) * g
                params.add_(velocity, alpha=-lr)
            run.batch_losses.append(loss.item())
        run.snapshots.append(params.detach().clone())
    run.params = params.detach().clone()
    return run
