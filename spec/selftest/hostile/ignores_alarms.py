"""Hostile: every function ignores SIGALRM (the per-test timeout) and loops forever, writing a line now
and then to look alive. Only the grade's total time budget ends it: it earns nothing, and the grade
takes no longer than its budget whatever the restarts."""

import signal
import sys
import time


def _stall(*args, **kwargs):
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        time.sleep(0.5)
        print("still working", file=sys.stderr, flush=True)


derivative = ps09_f = sigmoid_and_derivative = plot_sigmoid_and_derivative = _stall
vector_function_gradients = ps09_vector_f = trace_square = trace_square_gradient = sigmoid_derivatives = _stall
