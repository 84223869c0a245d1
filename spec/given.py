"""What the course hands its students whole, in the templates (``python -m spec.interface template``):
the small containers the interface's functions take or return, the sampler whose order ps09 part 2's
runs follow, and the options of ps09 2.5's multiple-choice question. The spec reads these fields and
nothing else; the reference solutions use these very definitions, and a student's notebook holds a
copy of them (a copy of its own is as good: the spec reads the fields by name).

The data the spec owns (splits, loaders) is in spec/data.py; what each name of the interface must do
is stated in spec/interface.toml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch


# ------------------------------------------------------------------------------------ moons
@dataclass
class MoonsHistory:
    """What train_moons records."""

    loss: list[float] = field(default_factory=list)              # the loss before each step's update
    grad_norms: list[list[float]] = field(default_factory=list)  # [step][hidden layer]: ||dL/dW|| per layer
    train_accuracy: float = float("nan")                         # after the last step, on the training split
    test_accuracy: float = float("nan")                          # after the last step, on the test split


class ForwardCache(NamedTuple):
    """What manual_forward keeps for manual_backward (N samples, H hidden units, C classes)."""

    z1: torch.Tensor      # N x H, hidden pre-activations x W1^T + b1
    a1: torch.Tensor      # N x H, hidden activations relu(z1)
    logits: torch.Tensor  # N x C, a1 W2^T + b2
    probs: torch.Tensor   # N x C, softmax(logits) row by row


@dataclass
class ManualHistory:
    """What train_manual records."""

    loss: list[float] = field(default_factory=list)            # the loss before each step's update
    snapshots: dict[int, dict] = field(default_factory=dict)   # step -> a copy of the params before that step
    #                                                          (every snapshot_every steps, and the final at steps)
    params: dict = field(default_factory=dict)                 # the final parameters
    train_accuracy: float = float("nan")                       # of the final parameters, training split
    test_accuracy: float = float("nan")                        # of the final parameters, test split


# ------------------------------------------------------------------------------------ dl-a1
@dataclass
class HousingRun:
    """What train_housing records."""

    train_mse: list[float] = field(default_factory=list)   # after every epoch, on the training split's
    test_mse: list[float] = field(default_factory=list)    # and the test split's standardised targets
    params: dict = field(default_factory=dict)             # the final "W1", "b1", "w2", "b2"


@dataclass(frozen=True)
class HandNet:
    """A ReLU network with hand-set weights: ``layers`` holds (W, b) per layer, W of shape
    (units out, units in); every layer but the last is followed by ReLU. Called on a tensor of
    inputs (N, or N x inputs) it returns the outputs (N, or N x outputs) in float64."""

    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    def __call__(self, x) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        h = x[:, None] if x.ndim == 1 else x
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return h[:, 0] if h.shape[1] == 1 else h


@dataclass
class LayerStats:
    """Per hidden layer, from the input side (index 0) to the last hidden layer."""

    mean_activation: list[float]       # mean post-activation
    mean_abs_activation: list[float]   # mean |post-activation|
    grad_norm: list[float]             # ||dL/dh_l||, the loss's gradient at the post-activation (retain_grad)
    weight_grad_norm: list[float]      # ||dL/dW_l||, the gradient of the layer's weight matrix


@dataclass
class InitResult:
    """One initialisation's part of init_study."""

    d: object                                                  # 0.01, 0.1, 2.0 or "xavier"
    before: LayerStats                                         # on the probe batch, before training
    after: LayerStats                                          # on the same probe batch, after training
    train_accuracy: list[float] = field(default_factory=list)  # after every epoch, on the training split
    test_accuracy: list[float] = field(default_factory=list)   # after every epoch, on the test split


# ------------------------------------------------------------------------------------- ps09
class EpochShuffle(torch.utils.data.Sampler):
    """The order ps09 part 2's runs visit the samples in: each epoch one permutation
    torch.randperm(n, generator=g), g = torch.Generator().manual_seed(seed) made once, when the
    sampler is. Use it as DataLoader(dataset, batch_size=32, sampler=EpochShuffle(len(dataset), seed)).
    (DataLoader(..., shuffle=True, generator=g) draws from g once more per epoch, for its workers'
    seeds, and so visits the samples in other orders.)"""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.generator = n, torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


@dataclass
class SGDRun:
    """What sgd_linear records."""

    params: torch.Tensor                                         # the final [slope, bias]
    batch_losses: list[float] = field(default_factory=list)     # the minibatch's loss before each update (2.2)
    snapshots: list[torch.Tensor] = field(default_factory=list)  # a copy of [slope, bias] after each epoch (2.4)
    train_mse: list[float] = field(default_factory=list)        # after each epoch, on all of x, y (2.3)
    val_mse: list[float] = field(default_factory=list)          # after each epoch, on x_val, y_val when given


#: ps09 2.5's multiple-choice options as the sheet lists them (purple to light green): a label per
#: option and its four momenta
MOMENTUM_OPTIONS = {
    "a": (0.0, 0.1, 0.2, 0.3), "b": (0.0, 0.5, 0.9, 1.0), "c": (1.0, 0.9, 0.5, 0.1),
    "d": (0.2, 0.4, 0.6, 0.8), "e": (0.0, 1.0, 2.0, 3.0), "f": (-1.0, 0.0, 1.0, 2.0),
}
