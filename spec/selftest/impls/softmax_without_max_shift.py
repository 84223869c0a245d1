"""Wrong on purpose (moons.manual-forward only): softmax as exp(z) / sum exp(z) without subtracting
the row maximum first, so large logits overflow to inf / inf = nan."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import ForwardCache
from impl import manual_forward as _reference


def manual_forward(x, params):
    cache = _reference(x, params)
    e = torch.exp(cache.logits)
    return ForwardCache(cache.z1, cache.a1, cache.logits, e / e.sum(dim=1, keepdim=True))
