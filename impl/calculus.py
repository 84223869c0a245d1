"""Derivatives by automatic differentiation (ps09 part 1).

Every function returns plain tensors detached from the graph it built, so callers can zero or reuse
gradients without changing the values they were given.
"""

from __future__ import annotations

import warnings

import torch

from impl._checks import as_float_tensor, require_square_matrix


def ps09_f(x: torch.Tensor) -> torch.Tensor:
    """ps09 1.1: f(x) = 2 / ((5 - x)^2 + 2^2), elementwise."""
    return 2.0 / ((5.0 - x) ** 2 + 2.0**2)


def derivative(f, x) -> torch.Tensor:
    """d f / d x by autograd at every entry of ``x`` (ps09 1.1, 1.2).

    ``f`` must act elementwise, so that entry i of f(x) depends on entry i of x alone. Then
    d(sum_i f(x)_i)/dx_j = f'(x_j): one backward pass of the sum gives every derivative at once
    (the "sum trick" of ps09 1.2).
    """
    if not callable(f):
        raise TypeError(f"f must be a callable acting elementwise on tensors, got {type(f).__name__}")
    x = as_float_tensor(x, "x").requires_grad_(True)
    y = f(x)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise ValueError(
            f"f must return a tensor of the shape of x {tuple(x.shape)}, "
            f"got {getattr(y, 'shape', type(y).__name__)}"
        )
    (grad,) = torch.autograd.grad(y.sum(), x)
    return grad


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """ps09 1.2: the logistic function 1 / (1 + exp(-x)), without overflow.

    The naive form overflows exp(-x) for very negative x, and its autograd derivative is then
    inf/inf = nan. Each branch here only sees inputs where its exp is at most 1: x >= 0 uses
    1 / (1 + exp(-x)), x < 0 the equal exp(x) / (1 + exp(x)). The other branch gets 0 as input, so
    neither its value nor its (masked) gradient can be inf or nan.
    """
    positive = x >= 0
    zero = torch.zeros_like(x)
    exp_neg = torch.exp(-torch.where(positive, x, zero))
    exp_pos = torch.exp(torch.where(positive, zero, x))
    return torch.where(positive, 1.0 / (1.0 + exp_neg), exp_pos / (1.0 + exp_pos))


def sigmoid_and_derivative(x=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ps09 1.2: (x, sigmoid(x), sigmoid'(x)), the derivative by autograd with the sum trick.

    The default x is the sheet's ``torch.arange(-5, 5)`` (as floats: -5, -4, ..., 4).
    """
    x = torch.arange(-5.0, 5.0) if x is None else as_float_tensor(x, "x")
    values = sigmoid(x).detach()
    return x, values, derivative(sigmoid, x)


def plot_sigmoid_and_derivative(x=None):
    """ps09 1.2: a figure with two panels, the sigmoid (left) and its derivative (right)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    x, values, slopes = sigmoid_and_derivative(x)
    figure = Figure(figsize=(9, 3.5), layout="constrained")
    left, right = figure.subplots(1, 2)
    left.plot(x.numpy(), values.numpy(), marker="o")
    left.set(title="sigmoid(x)", xlabel="x")
    right.plot(x.numpy(), slopes.numpy(), marker="o", color="tab:orange")
    right.set(title="d sigmoid / dx (autograd)", xlabel="x")
    for axes in (left, right):
        axes.grid(alpha=0.3)
    return figure


def ps09_vector_f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ps09 1.3: f(x, y) = [x^2 + y^2, 2 x^2 y^2]."""
    return torch.stack([x**2 + y**2, 2 * x**2 * y**2])


def vector_function_gradients(x=1.376, y=2.123) -> torch.Tensor:
    """ps09 1.3: the 2 x 2 matrix G with G[i] = (d f_i / d x, d f_i / d y), one backward per f_i."""
    x = as_float_tensor(x, "x").requires_grad_(True)
    y = as_float_tensor(y, "y").requires_grad_(True)
    if x.ndim or y.ndim:
        raise ValueError(f"x and y must be scalars, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    f = ps09_vector_f(x, y)
    rows = [torch.stack(torch.autograd.grad(f[i], (x, y), retain_graph=True)) for i in range(2)]
    return torch.stack(rows)


def trace_square(A: torch.Tensor) -> torch.Tensor:
    """ps09 1.4: trace(A @ A)."""
    return torch.trace(A @ A)


def trace_square_gradient(A) -> torch.Tensor:
    """ps09 1.4: d trace(A^2) / dA by autograd, a matrix of the shape of A (it equals 2 A^T)."""
    A = as_float_tensor(A, "A")
    require_square_matrix(A, "A")
    A.requires_grad_(True)
    (grad,) = torch.autograd.grad(trace_square(A), A)
    return grad


def sigmoid_derivatives(x=0.173) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ps09 1.5: (sigma(x), sigma'(x), sigma''(x)) by two backward passes.

    The first backward keeps its graph (``create_graph=True``) so that x.grad is itself
    differentiable. Its value is cloned before x.grad is zeroed for the second pass: ``x.grad``
    is a reference to the buffer that zeroing overwrites (the sheet's hint).
    """
    x = as_float_tensor(x, "x").requires_grad_(True)
    s = sigmoid(x)
    with warnings.catch_warnings():  # torch warns of the cycle that the last line below breaks
        warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
        s.sum().backward(create_graph=True)
    first = x.grad.clone()
    x.grad.zero_()
    first.sum().backward()
    second = x.grad.clone()
    x.grad = None  # breaks the grad <-> graph reference cycle that create_graph=True makes
    return s.detach(), first.detach(), second.detach()
