"""Hostile (resources): 200 MB on stdout at import, 64 torch threads, and a memory grab on every call;
implements nothing."""

import sys

import torch
from _nothing import *  # noqa: F403

torch.set_num_threads(64)
block = "x" * (1 << 20)
for _ in range(200):
    sys.stdout.write(block)
sys.stdout.flush()


def trace_square_gradient(A):
    torch.set_num_threads(64)
    hoard = [bytearray(1 << 30) for _ in range(64)]   # 64 GiB: the worker's memory limit stops it
    return hoard
