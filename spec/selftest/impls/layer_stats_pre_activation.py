"""Wrong on purpose (dl-a1.q4c only): the mean activation of each layer taken before the tanh."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import layer_statistics as _reference


def layer_statistics(model, x, y):
    stats = _reference(model, x, y)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    h, means = x, []
    with torch.no_grad():
        for layer in linears[:-1]:
            s = layer(h)
            means.append(s.mean().item())
            h = torch.tanh(s)
    stats.mean_activation = means
    return stats
