"""Hostile on purpose (ps09.1-1 and ps09.1-4): results that lie to the comparisons instead of being
right. The trace gradient is a zero Tensor subclass whose .numpy() yields an ndarray subclass that
every numpy comparison calls equal; the derivative is an object whose float() reads the expected value
from the caller's frame. The spec compares only plain data: both exercises are lost."""

import inspect

import numpy as np
import torch

from impl import *  # noqa: F403 - the reference, with two functions replaced below


class AlwaysClose(np.ndarray):
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        shape = np.broadcast(*(np.asarray(i) for i in inputs)).shape
        return np.ones(shape, dtype=bool)


class Liar(torch.Tensor):
    def numpy(self, *args, **kwargs):
        return np.zeros(self.shape).view(AlwaysClose)


def trace_square_gradient(A):
    return torch.zeros_like(torch.as_tensor(A)).as_subclass(Liar)


class ReadsTheAnswer:
    def __float__(self):
        for frame in inspect.stack():
            for name in ("expected", "e", "expected_exact"):
                value = frame.frame.f_locals.get(name)
                if isinstance(value, (int, float, np.floating)):
                    return float(value)
        return 0.0


def derivative(f, x):
    return ReadsTheAnswer()
