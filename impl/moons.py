"""Two moons (moons sheet, "Vanishing Gradient"): the lecture-style MLP classifier, deeper sigmoid
and ReLU versions, and training that records every hidden layer's weight-gradient norm."""

from __future__ import annotations

import torch
from torch import nn

from impl._training import accuracy
from impl.data import Split, two_moons
from spec.given import MoonsHistory

ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid}


class MoonsNet(nn.Module):
    """x (2) -> [Linear(width) -> activation] x depth -> Linear(2 classes).

    Hidden layers are attributes ``hidden1``, ``hidden2``, ... as in the sheet
    (``model.hidden1.weight.grad.norm()``); ``latent`` returns the last hidden activations.
    depth = 1 with ReLU is the lecture's network; the sheet's deeper versions have depth >= 3.
    """

    def __init__(self, width: int = 16, depth: int = 1, activation: str = "relu",
                 in_features: int = 2, classes: int = 2):
        super().__init__()
        for name, value in {"width": width, "depth": depth, "in_features": in_features,
                            "classes": classes}.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.depth, self.activation = depth, activation
        for i in range(1, depth + 1):
            setattr(self, f"hidden{i}", nn.Linear(in_features if i == 1 else width, width))
        self.output = nn.Linear(width, classes)

    @property
    def hidden_layers(self) -> list[nn.Linear]:
        return [getattr(self, f"hidden{i}") for i in range(1, self.depth + 1)]

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        act = ACTIVATIONS[self.activation]
        for layer in self.hidden_layers:
            x = act(layer(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.latent(x))



def train_moons(model: MoonsNet, data: Split | None = None, *, steps: int = 300, lr: float = 0.01,
                seed: int = 0) -> MoonsHistory:
    """Full-batch Adam on the cross-entropy; after every backward pass, the norm of each hidden
    layer's weight gradient is recorded (before the step uses it)."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    data = data or two_moons(seed=seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = MoonsHistory()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(data.x_train), data.y_train)
        loss.backward()
        history.loss.append(loss.item())
        history.grad_norms.append([layer.weight.grad.norm().item() for layer in model.hidden_layers])
        optimizer.step()
    history.train_accuracy = accuracy(model, data.x_train, data.y_train)
    history.test_accuracy = accuracy(model, data.x_test, data.y_test)
    return history


def make_moons_net(width: int = 16, depth: int = 1, activation: str = "relu", seed: int = 0) -> MoonsNet:
    """A MoonsNet with weights drawn from torch's default init under ``seed``."""
    torch.manual_seed(seed)
    return MoonsNet(width=width, depth=depth, activation=activation)


def first_to_last_grad_ratio(history: MoonsHistory, steps: int = 1) -> float:
    """Mean over the first ``steps`` recorded steps of |dl/dW hidden1| / |dl/dW last hidden|."""
    rows = history.grad_norms[:steps]
    return sum(r[0] / r[-1] for r in rows) / len(rows)


def compare_architectures(depths=(3, 6), seeds=(0, 1, 2, 3, 4), *, width: int = 16, steps: int = 300,
                          lr: float = 0.01) -> list[dict]:
    """The sheet's "train a few times": final test accuracy and loss per (activation, depth, seed),
    on the embedded two moons, each seed drawing both the net's init and the data."""
    rows = []
    for depth in depths:
        for seed in seeds:
            data = two_moons(seed=seed)
            for activation in ACTIVATIONS:
                model = make_moons_net(width, depth, activation, seed)
                history = train_moons(model, data, steps=steps, lr=lr, seed=seed)
                rows.append({"activation": activation, "depth": depth, "seed": seed,
                             "test_accuracy": history.test_accuracy, "final_loss": history.loss[-1],
                             "grad_ratio_at_init": first_to_last_grad_ratio(history)})
    return rows
