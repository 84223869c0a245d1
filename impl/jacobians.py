"""dl-a1 question 2: the Jacobian of f(x) = W_F tanh(W_L ... tanh(W_2 tanh(W_1 x))) by reverse mode
(torch autograd, and by hand) and by our own forward mode, with the op-count model of both.

Weights come as a dict ``{"W1": K x D, "W2": K x K, ..., "WL": K x K, "WF": P x K}``. ``x`` is one
point (shape D, Jacobian P x D) or a batch (shape B x D, Jacobians B x P x D). Internally a single
point is a batch of one, so every product is a matrix multiply (and op counts match the model).
"""

from __future__ import annotations

import re
import timeit

import torch

from impl._checks import as_float_tensor

MODES = ("forward", "reverse")


def check_weights(weights) -> tuple[list[torch.Tensor], torch.Tensor]:
    """([W1, ..., WL], WF) after checking keys, shapes and dtypes."""
    if not isinstance(weights, dict):
        raise TypeError(f"weights must be a dict of tensors W1, ..., WL, WF, got {type(weights).__name__}")
    numbered = sorted(int(m.group(1)) for key in weights if (m := re.fullmatch(r"W(\d+)", str(key))))
    unknown = [key for key in weights if not re.fullmatch(r"W(\d+)|WF", str(key))]
    if unknown:
        raise ValueError(f"weights has unknown keys {unknown}; expected W1, ..., WL and WF")
    if "WF" not in weights or not numbered or numbered != list(range(1, len(numbered) + 1)):
        raise ValueError(f"weights must have keys W1, ..., WL (consecutive) and WF, got {sorted(weights)}")
    hidden = [weights[f"W{i}"] for i in numbered]
    final = weights["WF"]
    for name, w in [*((f"W{i}", w) for i, w in zip(numbered, hidden, strict=True)), ("WF", final)]:
        if not isinstance(w, torch.Tensor) or not w.is_floating_point() or w.ndim != 2:
            got = f"{getattr(w, 'dtype', type(w).__name__)} of shape {tuple(getattr(w, 'shape', ()))}"
            raise TypeError(f"weights[{name!r}] must be a 2-D floating-point tensor, got {got}")
    k = hidden[0].shape[0]
    for i, w in enumerate(hidden[1:], start=2):
        if tuple(w.shape) != (k, k):
            raise ValueError(f"weights['W{i}'] must be K x K = {(k, k)}, got {tuple(w.shape)}")
    if final.shape[1] != k:
        raise ValueError(f"weights['WF'] must be P x K with K = {k}, got {tuple(final.shape)}")
    if len({w.dtype for w in (*hidden, final)}) > 1 or len({w.device for w in (*hidden, final)}) > 1:
        raise TypeError("all weights must share one dtype and one device")
    return hidden, final


def _as_batch(x, hidden) -> tuple[torch.Tensor, bool]:
    if not isinstance(x, torch.Tensor):
        x = as_float_tensor(x, "x", default_dtype=hidden[0].dtype)
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    d = hidden[0].shape[1]
    if x.ndim not in (1, 2) or x.shape[-1] != d:
        raise ValueError(f"x must have shape (D,) or (B, D) with D = {d}, got {tuple(x.shape)}")
    if x.dtype != hidden[0].dtype or x.device != hidden[0].device:
        raise TypeError(f"x ({x.dtype}, {x.device}) must match the weights' dtype and device "
                        f"({hidden[0].dtype}, {hidden[0].device})")
    return (x[None] if x.ndim == 1 else x), x.ndim == 1


def network(x, weights) -> torch.Tensor:
    """f(x) = W_F tanh(W_L ... tanh(W_1 x)), for one x (D) or a batch (B x D)."""
    hidden, final = check_weights(weights)
    batch, single = _as_batch(x, hidden)
    h = batch
    for w in hidden:
        h = torch.tanh(h @ w.T)
    out = h @ final.T
    return out[0] if single else out


def jacobian_autograd(x, weights) -> torch.Tensor:
    """dl-a1 2(b): df/dx by torch autograd, one backward pass per output.

    Samples of a batch are independent, so the gradient of sum_b f_p(x_b) with respect to the
    batch holds d f_p / d x_b in row b: P backward passes give every Jacobian of the batch.
    """
    hidden, _final = check_weights(weights)
    batch, single = _as_batch(x, hidden)
    with torch.enable_grad():
        xs = batch.detach().requires_grad_(True)
        out = network(xs, weights)
        rows = [torch.autograd.grad(out[:, p].sum(), xs, retain_graph=True)[0]
                for p in range(out.shape[1])]
    jac = torch.stack(rows, dim=1).detach()
    return jac[0] if single else jac


def jacobian_forward(x, weights) -> torch.Tensor:
    """dl-a1 2(c): df/dx by forward-mode differentiation, written out with tensors.

    The D tangents e_1..e_D are pushed forward with the primal values: after a layer
    h' = tanh(W h) the tangent t = (dh/dx) e_d becomes tanh'(W h) * (W t). Primal and tangents share
    one buffer Z of shape (1 + D, B, K) (Z[0] = h, Z[1:] = tangents), so each layer is a single
    ((1 + D) B x K) @ (K x K) product followed by in-place tanh and scaling over contiguous memory.
    The first layer needs no product for its tangents (the columns of W_1, scaled), and the primal
    output W_F h is never computed.
    """
    hidden, final = check_weights(weights)
    batch, single = _as_batch(x, hidden)
    (n, d), k = batch.shape, hidden[0].shape[0]
    with torch.no_grad():
        z, spare = torch.empty((2, 1 + d, n, k), dtype=batch.dtype, device=batch.device)
        h = torch.matmul(batch, hidden[0].T, out=z[0]).tanh_()
        torch.mul(hidden[0].T.contiguous()[:, None, :], _tanh_slope(h), out=z[1:])
        for w in hidden[1:]:  # two buffers used in turn: no allocation per layer
            torch.mm(z.view((1 + d) * n, k), w.T, out=spare.view((1 + d) * n, k))
            z, spare = spare, z
            h = z[0].tanh_()
            z[1:].mul_(_tanh_slope(h))
        jac = (z[1:].reshape(d * n, k) @ final.T).view(d, n, -1).permute(1, 2, 0)  # (B, P, D)
    return jac[0] if single else jac


def _tanh_slope(h: torch.Tensor) -> torch.Tensor:
    """tanh'(a) = 1 - tanh(a)^2, from h = tanh(a), in one fused kernel."""
    return torch.addcmul(h.new_ones(()), h, h, value=-1)


def jacobian_reverse(x, weights) -> torch.Tensor:
    """df/dx by reverse mode written out by hand (the counterpart of jacobian_forward).

    A forward pass stores each layer's tanh'; then the P adjoint rows, starting from the rows of
    W_F, are pulled back through the layers: A <- (A * tanh'_l) @ W_l. Adjoints are kept as
    (P, B, K), so each layer is one (P*B x K) @ (K x K) product.
    """
    hidden, final = check_weights(weights)
    batch, single = _as_batch(x, hidden)
    n, k, p = batch.shape[0], final.shape[1], final.shape[0]
    with torch.no_grad():
        slopes = []
        h = batch
        for w in hidden:
            h = torch.tanh(h @ w.T)
            slopes.append(_tanh_slope(h))
        adjoint = final[:, None, :] * slopes[-1]                    # (P, B, K): d f / d a_L
        for w, slope in zip(reversed(hidden[1:]), reversed(slopes[:-1]), strict=True):
            adjoint = (adjoint.view(p * n, k) @ w).view(p, n, k).mul_(slope)
        adjoint = (adjoint.view(p * n, k) @ hidden[0]).view(p, n, -1)
        jac = adjoint.permute(1, 0, 2)                              # (B, P, D)
    return jac[0] if single else jac


def op_counts(D: int, K: int, P: int, L: int, batch: int = 1) -> dict[str, int]:
    """dl-a1 2(e): multiply-accumulate counts of the two modes, an M1 x M2 by M2 x M3 product
    counted as M1*M2*M3 (elementwise work not counted).

    Both modes first run the primal through the hidden layers: K*D + (L-1)*K^2 per sample.
      forward: D tangents through every layer after the first, then W_F: D*((L-1)*K^2 + P*K)
      reverse: P adjoints back through every layer, W_1 included:        P*((L-1)*K^2 + K*D)
    Their difference is (L-1) K^2 (D - P): forward mode wins when D < P, reverse when P < D.
    """
    for name, value in {"D": D, "K": K, "P": P, "L": L, "batch": batch}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    primal = K * D + (L - 1) * K * K
    return {
        "forward": batch * (primal + D * ((L - 1) * K * K + P * K)),
        "reverse": batch * (primal + P * ((L - 1) * K * K + K * D)),
    }


def cheaper_mode(D: int, K: int, P: int, L: int) -> str | None:
    """"forward" or "reverse" by the op-count model, None where both cost the same."""
    counts = op_counts(D, K, P, L)
    if counts["forward"] == counts["reverse"]:
        return None
    return min(MODES, key=counts.__getitem__)


def random_weights(D: int, K: int, P: int, L: int, *, generator=None, dtype=torch.float64,
                   device="cpu") -> dict[str, torch.Tensor]:
    """Weights for the dl-a1 2(a) network with entries N(0, 1/fan_in) (keeps tanh unsaturated)."""
    shapes = {"W1": (K, D), **{f"W{i}": (K, K) for i in range(2, L + 1)}, "WF": (P, K)}
    return {name: torch.randn(shape, generator=generator, dtype=dtype) .to(device) / shape[1] ** 0.5
            for name, shape in shapes.items()}


def _clock(device: str):
    """The timer for ``device``: the plain clock on the CPU; on CUDA the clock after a synchronise of
    that device. torch.utils.benchmark's default timer synchronises whatever accelerator the machine
    has, so on a CUDA machine it would create a CUDA context in the process (and wait on the GPU at
    every reading) even when timing CPU code."""
    if not device.startswith("cuda"):
        return timeit.default_timer
    target = torch.device(device)

    def cuda_clock() -> float:
        torch.cuda.synchronize(target)
        return timeit.default_timer()
    return cuda_clock


def time_jacobians(L_values=(3, 5, 10), batch: int = 1024, *, D: int = 2, K: int = 30, P: int = 10,
                   device: str = "cpu", dtype=torch.float32, min_run_time: float = 0.2,
                   seed: int = 0) -> list[dict]:
    """dl-a1 2(d): median seconds per call of the plain forward pass, reverse mode (autograd and
    by hand) and forward mode, for each L (torch.utils.benchmark synchronises CUDA).

    Returns one record (a dict) per (L, method) with the keys "L", "method" (at least three methods,
    the plain forward pass among them), "seconds" (the median), "batch", "device" and
    "ratio_to_forward_pass" (1.0 for the plain forward pass of the same L).
    """
    from torch.utils.benchmark import Timer

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available")
    clock = _clock(device)
    methods = {"forward pass": network, "reverse (autograd)": jacobian_autograd,
               "reverse (by hand)": jacobian_reverse, "forward mode": jacobian_forward}
    generator = torch.Generator().manual_seed(seed)
    records = []
    for L in L_values:
        weights = random_weights(D, K, P, L, generator=generator, dtype=dtype, device=device)
        x = torch.randn(batch, D, generator=generator, dtype=dtype).to(device)
        medians = {}
        for name, function in methods.items():
            timer = Timer("function(x, weights)", timer=clock,
                          globals={"function": function, "x": x, "weights": weights})
            medians[name] = timer.blocked_autorange(min_run_time=min_run_time).median
        for name, median in medians.items():
            records.append({"L": L, "method": name, "seconds": median, "batch": batch,
                            "device": device, "ratio_to_forward_pass": median / medians["forward pass"]})
    return records
