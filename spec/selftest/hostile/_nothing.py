"""Not a submission: what the hostile cases define instead of solutions (every ps09 part 1 name, each
returning zeros). Imported by name from the submission's own folder."""

import torch


def _zeros(*args, **kwargs):
    return torch.zeros(3, 3, dtype=torch.float64)


derivative = ps09_f = sigmoid_and_derivative = plot_sigmoid_and_derivative = _zeros
vector_function_gradients = ps09_vector_f = trace_square = trace_square_gradient = sigmoid_derivatives = _zeros
