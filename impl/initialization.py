"""dl-a1 question 4: a variable-depth tanh network on MNIST-sized inputs and the initialization
study (U(-d, d) with d = 0.01, 0.1, 2.0 and Xavier): activations and gradient norms per layer, before
and after 5 epochs of SGD, and accuracy per epoch."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from impl._training import accuracy, minibatch_epoch
from impl.data import Split, digits_784
from spec.given import InitResult, LayerStats

INITS = (0.01, 0.1, 2.0, "xavier")


class MyModel(nn.Module):
    """B x 784 -> [Linear -> tanh] x depth -> Linear -> B x 10, the layers in an nn.ModuleList."""

    def __init__(self, depth: int, width: int = 50, in_features: int = 784, classes: int = 10):
        super().__init__()
        for name, value in {"depth": depth, "width": width, "in_features": in_features, "classes": classes}.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_features = in_features
        sizes = [in_features] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.output = nn.Linear(width, classes)

    def forward_with_activations(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits, [post-activation of every hidden layer]), each activation keeping its grad."""
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x must be a B x {self.in_features} tensor, got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        activations = []
        for layer in self.hidden:
            x = torch.tanh(layer(x))
            if x.requires_grad:
                x.retain_grad()
            activations.append(x)
        return self.output(x), activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_activations(x)[0]

    def initialize(self, d) -> MyModel:
        """Weights ~ U(-d, d) and zero biases; d = "xavier" takes sqrt(6 / (n_in + n_out)) per layer."""
        initialize(self, d)
        return self


def my_model(depth: int) -> MyModel:
    """The sheet's entry point: ``net = my_model(depth)``."""
    return MyModel(depth)


def xavier_bound(n_in: int, n_out: int) -> float:
    return math.sqrt(6.0 / (n_in + n_out))


def initialize(model: nn.Module, d) -> nn.Module:
    """dl-a1 4(b): every Linear weight ~ U(-d, d), every bias 0 (d = "xavier": the Xavier bound)."""
    if d != "xavier" and (isinstance(d, bool) or not isinstance(d, (int, float)) or not d > 0):
        raise ValueError(f"d must be a positive number or 'xavier', got {d!r}")
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear):
                bound = xavier_bound(layer.in_features, layer.out_features) if d == "xavier" else float(d)
                nn.init.uniform_(layer.weight, -bound, bound)
                nn.init.zeros_(layer.bias)
    return model


def layer_statistics(model: MyModel, x: torch.Tensor, y: torch.Tensor) -> LayerStats:
    """dl-a1 4(c): forward and backward one minibatch with the cross-entropy loss."""
    model.zero_grad()
    logits, activations = model.forward_with_activations(x)
    nn.functional.cross_entropy(logits, y).backward()
    stats = LayerStats(
        [a.mean().item() for a in activations], [a.abs().mean().item() for a in activations],
        [a.grad.norm().item() for a in activations], [layer.weight.grad.norm().item() for layer in model.hidden])
    model.zero_grad()
    return stats



def train_sgd(model: MyModel, data: Split, *, epochs: int = 5, lr: float = 0.01, batch_size: int = 128,
              seed: int = 0) -> tuple[list[float], list[float]]:
    """dl-a1 4(d): SGD on the cross-entropy; (train accuracy, test accuracy) after every epoch."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    train_acc, test_acc = [], []
    for _ in range(epochs):
        minibatch_epoch(model, optimizer, data.x_train, data.y_train, batch_size=batch_size, generator=generator)
        train_acc.append(accuracy(model, data.x_train, data.y_train))
        test_acc.append(accuracy(model, data.x_test, data.y_test))
    return train_acc, test_acc


def init_study(depth: int = 8, data: Split | None = None, *, inits=INITS, epochs: int = 5, lr: float = 0.01,
               batch_size: int = 128, probe_size: int = 256, seed: int = 0) -> dict[object, InitResult]:
    """Everything the plots of 4(c) and 4(d) need, for each init d (0.01, 0.1, 2.0 and "xavier", the
    keys of the dict): an InitResult with the LayerStats of one minibatch of ``probe_size`` training
    images before and after training, and the train and test accuracies after every epoch (SGD, lr,
    minibatches of ``batch_size``, cross-entropy). ``data`` defaults to the embedded digits."""
    data = data or digits_784(seed=seed)
    probe = torch.Generator().manual_seed(seed + 1)
    index = torch.randperm(len(data.y_train), generator=probe)[:probe_size]
    x_probe, y_probe = data.x_train[index], data.y_train[index]
    results = {}
    for d in inits:
        torch.manual_seed(seed)
        model = my_model(depth).initialize(d)
        before = layer_statistics(model, x_probe, y_probe)
        train_acc, test_acc = train_sgd(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
        results[d] = InitResult(d, before, layer_statistics(model, x_probe, y_probe), train_acc, test_acc)
    return results


def _label(d) -> str:
    return "Xavier" if d == "xavier" else f"d = {d:g}"


def init_discussion(results: dict) -> str:
    """dl-a1 4(e): one paragraph on depth and initialization, every statement quoting the
    measured numbers of ``init_study``."""
    final = {d: r.test_accuracy[-1] for d, r in results.items()}
    best = max(final, key=final.get)
    parts = []
    small = min((d for d in results if d != "xavier"), key=float)
    r = results[small]
    parts.append(
        f"With {_label(small)} the signal dies with depth: the mean |activation| falls from "
        f"{r.before.mean_abs_activation[0]:.3g} in layer 1 to {r.before.mean_abs_activation[-1]:.3g} in layer "
        f"{len(r.before.mean_abs_activation)}, and the gradient norm from {r.before.grad_norm[-1]:.3g} at the last "
        f"hidden layer to {r.before.grad_norm[0]:.3g} at the first, so the network barely learns "
        f"({final[small]:.2f} test accuracy after {len(r.test_accuracy)} epochs, chance is 0.10).")
    if 2.0 in results:
        r = results[2.0]
        parts.append(
            f"With d = 2 the tanh units saturate (mean |activation| {min(r.before.mean_abs_activation):.2f} to "
            f"{max(r.before.mean_abs_activation):.2f} in every layer); the gradient norm is not small but grows "
            f"toward the input ({r.before.grad_norm[-1]:.3g} at the last hidden layer, {r.before.grad_norm[0]:.3g} "
            f"at the first), an unstable start that trains poorly ({final[2.0]:.2f}).")
    if "xavier" in results:
        r = results["xavier"]
        parts.append(
            f"Xavier keeps activations ({min(r.before.mean_abs_activation):.2f} to "
            f"{max(r.before.mean_abs_activation):.2f}) and gradient norms ({min(r.before.grad_norm):.3g} to "
            f"{max(r.before.grad_norm):.3g}) in a narrow band across the layers and converges fastest "
            f"({final['xavier']:.2f}).")
    parts.append(f"Depth multiplies these per-layer factors, so the deeper the net the more the initialization "
                 f"matters; the best final test accuracy here is {_label(best)}'s {final[best]:.2f}.")
    return " ".join(parts)
