"""Wrong on purpose (dl-a1.q2c only): right numbers, but "forward mode" is torch.func.jacrev,
which the sheet forbids (own forward-mode code with tensors)."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below
from impl import jacobian_forward as _reference
from impl import network


def jacobian_forward(x, weights):
    _reference(x, weights)  # the input checks of the reference
    jac = torch.func.jacrev(lambda z: network(z, weights))
    return jac(x) if x.ndim == 1 else torch.func.vmap(jac)(x)
