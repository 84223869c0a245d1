"""Wrong on purpose (ps09.2-1, ps09.2-2 and ps09.2-5): DataLoader(drop_last=True), so the last,
short batch of every epoch is skipped (no update, no loss)."""

import torch

import impl.linear as _linear
from impl import *  # noqa: F403 - the reference, with one class broken below


class _DropLastLoader(torch.utils.data.DataLoader):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "drop_last": True})


_reference = _linear.sgd_linear


def sgd_linear(x, y, **kwargs):
    # the reference imports DataLoader from torch.utils.data when called
    saved, torch.utils.data.DataLoader = torch.utils.data.DataLoader, _DropLastLoader
    try:
        return _reference(x, y, **kwargs)
    finally:
        torch.utils.data.DataLoader = saved
