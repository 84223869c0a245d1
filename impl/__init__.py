"""Reference solutions of the course's exercise sheets, one module per topic.

The spec reaches these only through the names exported here (the interface a student's solution
implements as well); ``spec/catalogue.toml`` says which exercise each topic serves.
"""

from impl.calculus import (
    derivative,
    plot_sigmoid_and_derivative,
    ps09_f,
    ps09_vector_f,
    sigmoid,
    sigmoid_and_derivative,
    sigmoid_derivatives,
    trace_square,
    trace_square_gradient,
    vector_function_gradients,
)

__all__ = [
    "derivative",
    "plot_sigmoid_and_derivative",
    "ps09_f",
    "ps09_vector_f",
    "sigmoid",
    "sigmoid_and_derivative",
    "sigmoid_derivatives",
    "trace_square",
    "trace_square_gradient",
    "vector_function_gradients",
]
