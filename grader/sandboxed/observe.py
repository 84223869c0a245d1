"""Functions the spec runs where the submission's objects live, through ``impl.run(function, ...)``:
in the worker process in isolated mode (grader/judge/remote.py), in the spec's own process otherwise. Each
returns plain data or torch's own layers (which come back as copies); the tests judge what they return.
What they observe is the submission's, so they are not oracles: the expected values stay the tests'.
"""

from __future__ import annotations

import copy

import torch


def model_facts(impl, model) -> dict:
    """What a model is made of: whether it is an nn.Module, the class names of its parts in order,
    its parts themselves (torch's own layers come back as copies), and its parameter count."""
    if not isinstance(model, torch.nn.Module):
        return {"is_module": False, "types": [], "modules": [], "parameters": 0}
    parts = list(model.modules())
    return {"is_module": True, "types": [type(m).__name__ for m in parts], "modules": parts,
            "parameters": sum(p.numel() for p in model.parameters())}


def linear_layers(impl, model) -> list:
    """The model's nn.Linear layers in order (copies, in isolated mode)."""
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)]


def forward_shapes(impl, model, x, kinds=("Conv2d", "MaxPool2d")) -> tuple[list, torch.Tensor]:
    """Run ``model(x)`` with a hook on every part whose class is one of ``kinds``: ([(part, input
    shape, output shape), ...], the output)."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, args, out: seen.append((m, tuple(args[0].shape), tuple(out.shape))))
             for m in model.modules() if type(m).__name__ in kinds]
    try:
        out = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return [(copy.copy(m), before, after) for m, before, after in seen], out


def count_macs(impl, name: str, *args) -> int:
    """Multiply-accumulates of ``impl.<name>(*args)`` as torch's FlopCounterMode counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        getattr(impl, name)(*args)
    return counter.get_total_flops() // 2


def first_step_gradient_norms(impl, model, x, y, layer_names) -> list[float]:
    """|dl/dW| of the named layers of an untrained copy of ``model`` on the cross-entropy of (x, y)."""
    return first_step_loss_and_gradient_norms(impl, model, x, y, layer_names)[1]


def first_step_loss_and_gradient_norms(impl, model, x, y, layer_names) -> tuple[float, list[float]]:
    """The cross-entropy of (x, y) at ``model``'s current parameters and |dl/dW| of the named layers,
    computed on an untrained copy (``model`` itself is left as it is)."""
    untrained = copy.deepcopy(model)
    loss = torch.nn.functional.cross_entropy(untrained(x), y)
    loss.backward()
    return float(loss.detach()), [float(getattr(untrained, name).weight.grad.norm()) for name in layer_names]
