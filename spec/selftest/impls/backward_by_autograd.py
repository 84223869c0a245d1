"""Wrong on purpose (moons.manual-backward, manual-train): right gradients, but computed with
loss.backward(), which the sheet forbids."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import manual_backward as _reference


def manual_backward(x, y, params, cache):
    _reference(x, y, params, cache)  # its input checks
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    with torch.enable_grad():
        logits = torch.relu(x @ leaves["W1"].T + leaves["b1"]) @ leaves["W2"].T + leaves["b2"]
        torch.nn.functional.cross_entropy(logits, y).backward()
    return {k: v.grad for k, v in leaves.items()}
