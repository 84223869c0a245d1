"""dl-a1 2(d): reverse mode (torch autograd, and by hand) vs our forward mode, with torch.func's
jacrev / jacfwd (vmapped over the batch) and one plain forward pass as peers in the same run.

L = 3, 5, 10; a single x and a batch of 1024; float32; CPU, and CUDA where present (the timed
function synchronises the device, so a CUDA time covers the kernels, not only their launch).
`python -m spec.bench.summarise .benchmarks/bench.json` prints the ratios.
"""

from __future__ import annotations

import pytest
import torch

DEPTHS = (3, 5, 10)
BATCHES = (None, 1024)
DEVICES = ("cpu", pytest.param("cuda", marks=pytest.mark.gpu))
METHODS = ("forward pass", "autograd", "reverse by hand", "forward mode", "jacrev", "jacfwd")


def _callable(impl, method, weights, single):
    def f(z):
        return impl.network(z, weights)
    if method == "forward pass":
        return lambda x: impl.network(x, weights)
    if method == "autograd":
        return lambda x: impl.jacobian_autograd(x, weights)
    if method == "reverse by hand":
        return lambda x: impl.jacobian_reverse(x, weights)
    if method == "forward mode":
        return lambda x: impl.jacobian_forward(x, weights)
    transform = torch.func.jacrev(f) if method == "jacrev" else torch.func.jacfwd(f)
    return transform if single else torch.func.vmap(transform)


@pytest.mark.exercise("dl-a1.q2d")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: "single x" if b is None else f"batch {b}")
@pytest.mark.parametrize("depth", DEPTHS, ids=lambda d: f"L={d}")
@pytest.mark.parametrize("method", METHODS)
def test_jacobian_speed(benchmark, impl, method, depth, batch, device):
    generator = torch.Generator().manual_seed(depth)
    weights = impl.random_weights(2, 30, 10, depth, generator=generator, dtype=torch.float32,
                                  device=device)
    shape = (2,) if batch is None else (batch, 2)
    x = torch.randn(shape, generator=generator).to(device)
    function = _callable(impl, method, weights, batch is None)
    synchronise = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run():
        out = function(x)
        synchronise()
        return out

    benchmark.group = f"{device} L={depth} {'single x' if batch is None else f'batch {batch}'}"
    benchmark.extra_info.update(method=method, depth=depth, batch=batch or 1, device=device)
    out = benchmark(run)
    assert torch.isfinite(out).all()
