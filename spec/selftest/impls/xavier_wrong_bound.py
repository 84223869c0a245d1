"""Wrong on purpose (dl-a1.q4b, and the study built on it): Xavier taken as sqrt(6 / n_in)."""

import math

import torch

import impl.initialization as _study
from impl import *  # noqa: F403 - the reference, with one function broken below


def _wrong_initialize(model, d):
    if d != "xavier":
        return _reference_initialize(model, d)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.Linear):
                bound = math.sqrt(6.0 / layer.in_features)
                torch.nn.init.uniform_(layer.weight, -bound, bound)
                torch.nn.init.zeros_(layer.bias)
    return model


_reference_initialize = _study.initialize
_study.initialize = _wrong_initialize   # MyModel.initialize looks the function up in its module
