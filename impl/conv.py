"""a7 sections 3-4: discrete 2-D convolution by hand with edge modes, kernels, and a small CNN.

conv2d computes the true convolution out[i, j] = sum_{u, v} K[u, v] * I[i*s - u + ..., ...], i.e. it
flips the kernel; torch.nn.functional.conv2d computes cross-correlation (no flip), and
scipy.signal.convolve2d the convolution. Edge modes for a k_h x k_w kernel:
  valid      no padding: the output shrinks to (H - k_h) // s + 1 rows
  zero       pad with zeros to keep the size (for odd kernels, stride 1)
  reflect    pad with the mirror image, the edge pixel not repeated (d c b | a b c d)
  replicate  pad by repeating the edge pixel (a a a | a b c d)
"""

from __future__ import annotations

import torch
from torch import nn

from impl._training import accuracy, minibatch_epoch

MODES = ("valid", "zero", "reflect", "replicate")

KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box3": [[1 / 9] * 3] * 3,
    "gaussian3": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
}


def kernel(name: str, dtype=torch.float64) -> torch.Tensor:
    """A named 3 x 3 kernel: "identity", "box3" (mean of 9), "gaussian3", "sharpen" (these sum to 1),
    "sobel_x", "sobel_y", "laplacian" (these sum to 0); an unknown name is a ValueError."""
    if name not in KERNELS:
        raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {name!r}")
    return torch.tensor(KERNELS[name], dtype=dtype)


def conv_output_size(n: int, k: int, padding: int = 0, stride: int = 1) -> int:
    """floor((n + 2 padding - k) / stride) + 1."""
    for name, value in {"n": n, "k": k, "stride": stride}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
    if n + 2 * padding < k:
        raise ValueError(f"the kernel ({k}) is larger than the padded input ({n + 2 * padding})")
    return (n + 2 * padding - k) // stride + 1


def _pad(image: torch.Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> torch.Tensor:
    """Pad a 2-D image by indexing (no torch padding helpers): rows first, then columns."""
    def indices(n, before, after):
        idx = torch.arange(-before, n + after)
        if mode == "replicate":
            return idx.clamp(0, n - 1)
        period = 2 * (n - 1) if n > 1 else 1                      # reflect: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
        idx = idx.remainder(period)
        return torch.where(idx >= n, period - idx, idx)

    if mode == "zero":
        out = image.new_zeros((image.shape[0] + top + bottom, image.shape[1] + left + right))
        out[top:top + image.shape[0], left:left + image.shape[1]] = image
        return out
    rows = indices(image.shape[0], top, bottom)
    cols = indices(image.shape[1], left, right)
    return image[rows][:, cols]


def conv2d(image, kernel_, mode: str = "valid", stride: int = 1) -> torch.Tensor:
    """The 2-D convolution (the kernel flipped, as scipy.signal.convolve2d) of an H x W image with a
    k_h x k_w kernel, by hand, with a stride and an edge mode: "valid" (no padding: (H - k_h) // s + 1
    rows), "zero" (zero padding that keeps the size at stride 1: (k-1)//2 before, k//2 after),
    "reflect" (mirror padding, the edge pixel not repeated: d c b | a b c d) or "replicate" (the edge
    pixel repeated: a a a | a b c d)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    image, kernel_ = torch.as_tensor(image), torch.as_tensor(kernel_)
    if image.ndim != 2 or kernel_.ndim != 2:
        raise ValueError(f"image and kernel must be 2-D, got shapes {tuple(image.shape)} and {tuple(kernel_.shape)}")
    if not image.is_floating_point() or not kernel_.is_floating_point():
        raise TypeError(f"image and kernel must be floating point, got {image.dtype} and {kernel_.dtype}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    kh, kw = kernel_.shape
    if mode != "valid":
        if mode == "reflect" and (kh // 2 >= image.shape[0] or kw // 2 >= image.shape[1]):
            raise ValueError("reflect padding needs an image larger than half the kernel in each direction")
        image = _pad(image, (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2, mode)
    if image.shape[0] < kh or image.shape[1] < kw:
        raise ValueError(f"the kernel {tuple(kernel_.shape)} is larger than the image {tuple(image.shape)}")
    out_h = conv_output_size(image.shape[0], kh, 0, stride)
    out_w = conv_output_size(image.shape[1], kw, 0, stride)
    flipped = kernel_.flip(0, 1)
    out = image.new_zeros((out_h, out_w))
    for u in range(kh):
        for v in range(kw):
            window = image[u:u + (out_h - 1) * stride + 1:stride, v:v + (out_w - 1) * stride + 1:stride]
            out += flipped[u, v] * window
    return out


class SmallCNN(nn.Module):
    """a7 section 4 on the embedded 8 x 8 digits:
    conv 3x3 (1 -> 8, zero padding 1) -> ReLU -> max-pool 2 -> conv 3x3 (8 -> 16, padding 1) -> ReLU
    -> max-pool 2 -> flatten (16 x 2 x 2) -> Linear(64, 10)."""

    def __init__(self, channels=(8, 16), classes: int = 10, size: int = 8):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.flat = c2 * (size // 4) ** 2
        self.classifier = nn.Linear(self.flat, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def cnn_parameter_count(convs, linears) -> int:
    """sum over conv layers of (k*k*c_in + 1) * c_out, plus (n_in + 1) * n_out per linear layer."""
    return sum((k * k * c_in + 1) * c_out for k, c_in, c_out in convs) + sum((a + 1) * b for a, b in linears)


def train_cnn(model: nn.Module, data, *, epochs: int = 15, lr: float = 0.01, batch_size: int = 64,
              seed: int = 0) -> list[float]:
    """Adam on the cross-entropy; the test accuracy after every epoch."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    accuracies = []
    for _ in range(epochs):
        minibatch_epoch(model, optimizer, data.x_train, data.y_train, batch_size=batch_size, generator=generator)
        accuracies.append(accuracy(model, data.x_test, data.y_test))
    return accuracies
