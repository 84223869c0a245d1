"""Hostile (the judge's memory): replaces the worker's tensor encoder so that a zero-stride tensor of
640 M elements crosses the channel as one stored number, hoping the judge materialises 5 GB per reply;
and fills its folder and /dev/shm. The judge refuses the reply; the tmpfs limits stop the writes."""

import os

import torch
from _nothing import *  # noqa: F403

import grader.sandboxed.channel as channel


def _tensor(value):
    return {channel.MARK: "tensor", "data": torch.Tensor.as_subclass(value, torch.Tensor).detach(), "device": "cpu"}


channel._tensor = _tensor
for folder in (os.getcwd(), "/dev/shm", "/tmp"):
    try:
        with open(os.path.join(folder, "fill.bin"), "wb") as handle:
            for _ in range(2048):
                handle.write(b"\0" * (1 << 20))
    except OSError:
        pass


def trace_square_gradient(A):
    return torch.zeros((), dtype=torch.float64).expand(640 * 2**20)


def derivative(f, x):
    return torch.zeros((), dtype=torch.float64).expand(640 * 2**20)
