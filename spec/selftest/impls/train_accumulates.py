"""Wrong on purpose (ex08 linear regressions): train() never clears the gradients, so they
accumulate across steps (the sheet's HINT)."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below


def train(features, labels, model, lossfunc, optimizer, num_epoch):
    inputs, targets = torch.from_numpy(features), torch.from_numpy(labels)
    for _ in range(num_epoch):
        loss = lossfunc(model(inputs), targets)
        loss.backward()
        optimizer.step()
