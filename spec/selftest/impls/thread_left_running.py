"""Hostile on purpose (ps09.1-4): the gradient of trace(A^2) is right, but it starts a non-daemon
thread that never ends, which would keep the test process from exiting."""

import threading

from impl import *  # noqa: F403 - the reference, with one function changed below
from impl import trace_square_gradient as _reference


def trace_square_gradient(A):
    threading.Thread(target=threading.Event().wait, name="never-ends").start()
    return _reference(A)
