"""Wrong on purpose (a7.cnn only): the parameter count without the biases, k*k*c_in*c_out + n_in*n_out."""

from impl import *  # noqa: F403 - the reference, with one function broken below


def cnn_parameter_count(convs, linears):
    return sum(k * k * c_in * c_out for k, c_in, c_out in convs) + sum(a * b for a, b in linears)
