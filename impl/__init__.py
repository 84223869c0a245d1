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
from impl.finite_differences import finite_difference_gradient, logcosh_numerical_gradients
from impl.jacobians import (
    cheaper_mode,
    jacobian_autograd,
    jacobian_forward,
    jacobian_reverse,
    network,
    op_counts,
    random_weights,
    time_jacobians,
)
from impl.logcosh_net import (
    logcosh_autograd_gradients,
    logcosh_cost,
    logcosh_forward,
    logcosh_gradients,
)

__all__ = [
    "cheaper_mode",
    "derivative",
    "finite_difference_gradient",
    "jacobian_autograd",
    "jacobian_forward",
    "jacobian_reverse",
    "logcosh_autograd_gradients",
    "logcosh_cost",
    "logcosh_forward",
    "logcosh_gradients",
    "logcosh_numerical_gradients",
    "network",
    "op_counts",
    "plot_sigmoid_and_derivative",
    "ps09_f",
    "ps09_vector_f",
    "random_weights",
    "sigmoid",
    "sigmoid_and_derivative",
    "sigmoid_derivatives",
    "time_jacobians",
    "trace_square",
    "trace_square_gradient",
    "vector_function_gradients",
]
