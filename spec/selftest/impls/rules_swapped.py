"""Wrong on purpose: every value right, every "how" the sheets set swapped. dl-a1 1(a)'s closed
forms by autograd; 1(b)'s "gradients computed by pytorch" and ps09 1.4's ".backward()" by a closed
form; 2(b)'s "use torch autograd" Jacobian by a hand chain rule; ex08's chain rule and a7's
equations (1)-(3) by autograd; the moons forward pass without torch.softmax. A spec that reads
values only passes it; one that observes the calls fails dl-a1.q1a, q1b, q2b, ps09.1-4,
ex08.vanishing-bound, a7.backprop-eqs and moons.manual-forward."""

import torch

from impl import *  # noqa: F403 - the reference, with the functions below swapped
from impl import backprop_sigmoid_mlp as _reference_backprop
from impl import grad_w11_autograd as _reference_w11_autograd
from impl import logcosh_autograd_gradients as _reference_autograd
from impl import logcosh_gradients as _reference_closed_form


def logcosh_gradients(x, y, params):
    return _reference_autograd(x, y, params)


def logcosh_autograd_gradients(x, y, params):
    return _reference_closed_form(x, y, params)


def trace_square_gradient(A):
    A = torch.as_tensor(A)
    if not A.is_floating_point():
        raise TypeError("A must be a floating-point matrix")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError("A must be a square matrix")
    return 2 * A.detach().T.clone()


def jacobian_autograd(x, weights):
    return jacobian_forward(x, weights)  # noqa: F405 - the hand-written forward mode


def grad_w11_chain(x, weights, biases, c):
    return _reference_w11_autograd(x, weights, biases, c)


def backprop_sigmoid_mlp(x, y, weights):
    _reference_backprop(x, y, weights)   # its input checks
    ws = [w.detach().clone().requires_grad_(True) for w in weights]
    with torch.enable_grad():
        h = x
        for w in ws:
            h = torch.sigmoid(w @ h)
        loss = -(y * torch.log(h[0]) + (1 - y) * torch.log(1 - h[0]))
        return list(torch.autograd.grad(loss, ws))


def manual_forward(x, params):
    z1 = x @ params["W1"].T + params["b1"]
    a1 = torch.relu(z1)
    logits = a1 @ params["W2"].T + params["b2"]
    e = (logits - logits.max(1, keepdim=True).values).exp()
    return ForwardCache(z1, a1, logits, e / e.sum(1, keepdim=True))  # noqa: F405
