"""Wrong on purpose (ex08.linreg-tensors, robustness only: the sheet asks for no return value): train()
returns the loss after each step (evaluated again at the updated parameters), not the loss before
each step that the interface promises."""

import torch

from impl import *  # noqa: F403 - the reference, with one function broken below


def train(features, labels, model, lossfunc, optimizer, num_epoch):
    inputs, targets = torch.as_tensor(features), torch.as_tensor(labels)
    losses = []
    for _ in range(num_epoch):
        optimizer.zero_grad()
        lossfunc(model(inputs), targets).backward()
        optimizer.step()
        with torch.no_grad():
            losses.append(lossfunc(model(inputs), targets).item())
    return losses
