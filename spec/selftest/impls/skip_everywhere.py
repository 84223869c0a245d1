"""Hostile on purpose: every name raises pytest's Skipped, hoping that a skip counts as neutral. A skip
raised from a submission is a failure: every exercise it touches is lost. ps09 1.1 is honest."""

import pytest

from impl import derivative, ps09_f  # noqa: F401


def _skip(*args, **kwargs):
    pytest.skip("not today")


sigmoid_and_derivative = plot_sigmoid_and_derivative = vector_function_gradients = ps09_vector_f = _skip
trace_square = trace_square_gradient = sigmoid_derivatives = _skip
