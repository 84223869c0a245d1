"""a7 sections 3-4: 2-D convolution by hand with edge modes, what kernels do, and a small CNN.

Oracles: scipy.signal.convolve2d (a true convolution), torch.nn.functional.conv2d (a
cross-correlation, so the spec flips the kernel) with torch's own padding modes, and constructions
(constant images, the identity kernel, white noise).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.signal import convolve2d

from grader.sandboxed.observe import forward_shapes
from spec import data as datasets
from spec.asserts import assert_close, assert_equal, assert_tensor
from spec.runs import once_per_session, reference_run, within_spread
from spec.tolerances import Tolerance

exercise = pytest.mark.exercise
TORCH_MODES = {"zero": "constant", "reflect": "reflect", "replicate": "replicate"}


def torch_reference(image, kernel, mode, stride=1):
    """F.conv2d on the kernel flipped (cross-correlation -> convolution), padded by F.pad so that
    'same' keeps the size: (k-1)//2 before and k//2 after in each direction."""
    kh, kw = kernel.shape
    x = image[None, None]
    if mode != "valid":
        x = F.pad(x, ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2), mode=TORCH_MODES[mode])
    return F.conv2d(x, kernel.flip(0, 1)[None, None], stride=stride)[0, 0]


SIZES = [(5, 5, 3, 3), (8, 11, 3, 3), (9, 7, 5, 5), (6, 6, 1, 1), (10, 12, 2, 4), (7, 7, 4, 3), (16, 16, 7, 7)]


@exercise("a7.conv2d")
@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("mode", ["valid", "zero", "reflect", "replicate"])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv2d_equals_torch_with_the_kernel_flipped(impl, size, mode, stride, rng):
    h, w, kh, kw = size
    image, kernel = torch.tensor(rng.normal(size=(h, w))), torch.tensor(rng.normal(size=(kh, kw)))
    got = impl.conv2d(image, kernel, mode=mode, stride=stride)
    expected = torch_reference(image, kernel, mode, stride)
    assert_tensor(got, f"conv2d {mode}", shape=expected.shape)
    assert_close(got, expected, f"conv2d vs F.conv2d(flipped kernel), {mode}, stride {stride}, {size}",
                 slips={"the kernel not flipped (a cross-correlation, which F.conv2d computes; the convolution "
                        "flips the kernel)": torch_reference(image, kernel.flip(0, 1), mode, stride)})


@exercise("a7.conv2d")
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_conv2d_equals_scipy(impl, size, rng):
    h, w, kh, kw = size
    image, kernel = rng.normal(size=(h, w)), rng.normal(size=(kh, kw))
    valid = impl.conv2d(torch.tensor(image), torch.tensor(kernel), mode="valid")
    assert_close(valid, convolve2d(image, kernel, mode="valid"), "valid vs scipy convolve2d")
    if kh % 2 and kw % 2:   # for odd kernels 'same' with zero fill is our zero mode
        zero = impl.conv2d(torch.tensor(image), torch.tensor(kernel), mode="zero")
        assert_close(zero, convolve2d(image, kernel, mode="same", boundary="fill"), "zero vs scipy same/fill")


@exercise("a7.conv2d")
def test_conv2d_is_a_convolution_not_a_correlation(impl):
    image = torch.zeros(5, 5, dtype=torch.float64)
    image[2, 2] = 1.0   # an impulse: the convolution reproduces the kernel, a correlation flips it
    kernel = torch.arange(9.0, dtype=torch.float64).reshape(3, 3)
    assert_close(impl.conv2d(image, kernel, mode="zero")[1:4, 1:4], kernel, "impulse response = kernel")


@exercise("a7.conv2d")
@given(n=st.integers(1, 40), k=st.integers(1, 9), padding=st.integers(0, 5), stride=st.integers(1, 5))
def test_output_size_formula(impl, n, k, padding, stride):
    assume(n + 2 * padding >= k)
    expected = F.conv2d(torch.zeros(1, 1, n, 1), torch.zeros(1, 1, k, 1), padding=(padding, 0), stride=stride).shape[2]
    assert_equal(impl.conv_output_size(n, k, padding, stride), expected, f"n={n} k={k} p={padding} s={stride}")


@exercise("a7.conv2d")
@pytest.mark.robustness
@pytest.mark.parametrize("n, k, padding", [(1, 2, 0), (3, 9, 2), (4, 7, 1)])
def test_output_size_refuses_a_kernel_larger_than_the_padded_input(impl, n, k, padding):
    with pytest.raises(ValueError):
        impl.conv_output_size(n, k, padding, 1)


SUM_ONE = ["identity", "box3", "gaussian3", "sharpen"]
EDGES = ["sobel_x", "sobel_y", "laplacian"]


@exercise("a7.conv2d")
@pytest.mark.parametrize("name", SUM_ONE)
@pytest.mark.parametrize("mode", ["valid", "reflect", "replicate"])
@pytest.mark.parametrize("value", [0.0, 1.0, -3.5, 255.0])
def test_sum_one_kernels_keep_a_constant_image(impl, name, mode, value):
    kernel = impl.kernel(name)
    assert_close(float(kernel.sum()), 1.0, f"{name} sums to 1")
    image = torch.full((9, 10), value, dtype=torch.float64)
    out = impl.conv2d(image, kernel, mode=mode)
    assert_close(out, torch.full_like(out, value), f"{name} on a constant image, {mode}")


@exercise("a7.conv2d")
@pytest.mark.parametrize("name", EDGES)
@pytest.mark.parametrize("mode", ["valid", "reflect", "replicate"])
def test_edge_kernels_send_a_constant_image_to_zero(impl, name, mode):
    kernel = impl.kernel(name)
    assert_close(float(kernel.sum()), 0.0, f"{name} sums to 0")
    out = impl.conv2d(torch.full((8, 8), 7.0, dtype=torch.float64), kernel, mode=mode)
    assert_close(out, torch.zeros_like(out), f"{name} on a constant image, {mode}", tol=Tolerance(0, 1e-12))


@exercise("a7.conv2d")
@pytest.mark.parametrize("mode", ["zero", "reflect", "replicate"])
def test_identity_kernel_is_the_identity(impl, mode, rng):
    image = torch.tensor(rng.normal(size=(6, 9)))
    assert_close(impl.conv2d(image, impl.kernel("identity"), mode=mode), image, f"identity kernel, {mode}")


@exercise("a7.conv2d")
@pytest.mark.parametrize("seed_", range(3))
def test_box_blur_lowers_the_variance_of_noise(impl, seed_):
    noise = torch.tensor(np.random.default_rng(seed_).normal(size=(120, 120)))
    blurred = impl.conv2d(noise, impl.kernel("box3"), mode="valid")
    ratio = float(blurred.var() / noise.var())
    # averaging 9 independent values divides the variance by 9
    assert abs(ratio - 1 / 9) < 0.02, f"variance ratio {ratio:.3f}, expected about 1/9"


@exercise("a7.conv2d")
@pytest.mark.robustness
def test_conv2d_rejects_bad_input(impl):
    image, kernel = torch.ones(5, 5, dtype=torch.float64), torch.ones(3, 3, dtype=torch.float64)
    with pytest.raises(ValueError):
        impl.conv2d(image, kernel, mode="wrap")
    with pytest.raises(ValueError):
        impl.conv2d(image[0], kernel)
    with pytest.raises(ValueError):
        impl.conv2d(image[:2, :2], kernel, mode="valid")
    with pytest.raises(ValueError):
        impl.conv2d(image, kernel, stride=0)
    with pytest.raises(TypeError):
        impl.conv2d(torch.ones(5, 5, dtype=torch.int64), kernel)
    with pytest.raises(ValueError):
        impl.kernel("blurry")


# -------------------------------------------------------------------------------- a7.cnn
def sheet_cnn_layers(channels, size: int = 8) -> tuple[list, list]:
    """The sheet's SmallCNN(channels) as the spec builds it (conv 3x3 1 -> c1, pad 1, pool 2, conv 3x3
    c1 -> c2, pad 1, pool 2, Linear(c2 * (size/4)^2, 10)): torch's own layers, never the submission's."""
    c1, c2 = channels
    return ([torch.nn.Conv2d(1, c1, 3, padding=1), torch.nn.Conv2d(c1, c2, 3, padding=1)],
            [torch.nn.Linear(c2 * (size // 4) ** 2, 10)])


@exercise("a7.cnn")
@pytest.mark.parametrize("channels", [(8, 16), (4, 4), (1, 32), (3, 7)])
def test_parameter_count_formula(impl, channels):
    """The expected count is the parameters torch's own layers of the sheet's architecture hold (a
    construction); the submission's model and its formula must both give it."""
    convs, linears = sheet_cnn_layers(channels)
    expected = sum(p.numel() for layer in (*convs, *linears) for p in layer.parameters())
    model = impl.SmallCNN(channels)
    assert_equal(sum(p.numel() for p in model.parameters()), expected,
                 f"parameters of SmallCNN({channels}): (k*k*c_in + 1)*c_out summed")
    convs_spec = [(c.kernel_size[0], c.in_channels, c.out_channels) for c in convs]
    linears_spec = [(lin.in_features, lin.out_features) for lin in linears]
    without_biases = sum(k * k * a * b for k, a, b in convs_spec) + sum(a * b for a, b in linears_spec)
    assert_equal(impl.cnn_parameter_count(convs_spec, linears_spec), expected,
                 f"cnn_parameter_count({convs_spec}, {linears_spec})",
                 slips={"the count without the biases (+1 per output channel and unit missing)": without_biases})


@exercise("a7.cnn")
def test_shapes_follow_the_formula(impl):
    """Every convolution and pooling layer, whatever the model's structure: its output size is
    floor((n + 2 padding - k) / stride) + 1, by impl's formula and by the spec's own arithmetic."""
    seen, logits = impl.run(forward_shapes, impl.SmallCNN(), torch.rand(5, 1, 8, 8))
    assert seen, "the CNN has no Conv2d or MaxPool2d layer"
    pair = lambda v: v if isinstance(v, tuple) else (v, v)
    for m, before, after in seen:
        (k, _), (p, _), (s, _) = pair(m.kernel_size), pair(m.padding), pair(m.stride)
        expected = (before[2] + 2 * p - k) // s + 1
        assert_equal(impl.conv_output_size(before[2], k, p, s), expected, f"conv_output_size for {type(m).__name__}")
        assert_equal(after[2], expected, f"output rows of {type(m).__name__} (k={k}, p={p}, s={s}) on {before[2]} rows")
    assert_tensor(logits, "logits", shape=(5, 10))


def spec_cnn_run(seed: int, *, epochs: int = 15, lr: float = 0.01, batch_size: int = 64) -> float:
    """The protocol of a7.cnn run by the spec: conv 3x3 (1 -> 8, padding 1) -> ReLU -> max-pool 2 ->
    conv 3x3 (8 -> 16, padding 1) -> ReLU -> max-pool 2 -> Linear(64, 10), PyTorch's default init
    under the spec's own seed, Adam (lr 0.01) on the cross-entropy in minibatches of 64 for 15 epochs
    on digits_images(seed); the final test accuracy."""
    data = datasets.digits_images(seed=seed)
    torch.manual_seed(40_000 + seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(40_000 + seed)
    for _ in range(epochs):
        order = torch.randperm(len(data.y_train), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(data.x_train[batch]), data.y_train[batch]).backward()
            optimizer.step()
    with torch.no_grad():
        return float((net(data.x_test).argmax(1) == data.y_test).float().mean())


@pytest.fixture(scope="module")
def spec_cnn_accuracy(tmp_path_factory):
    """The spec's own run of the CNN protocol, 6 seeds: the final test accuracies."""
    return once_per_session(tmp_path_factory, "a7-cnn", spec_cnn_accuracies)


@reference_run("a7-cnn", exercises=("a7.cnn",))
def spec_cnn_accuracies() -> np.ndarray:
    return np.array([spec_cnn_run(s) for s in range(6)])


@exercise("a7.cnn")
def test_cnn_trains_on_the_embedded_digits(impl, spec_cnn_accuracy):
    """The final test accuracy after 15 epochs, over seeds 0-2, within the seed spread of the spec's
    own run of the same protocol (spec's run: ~0.97); each seed's recorded accuracy is the trained
    model's on the held-out split."""
    finals = []
    for seed_ in (0, 1, 2):
        data = datasets.digits_images(seed=seed_)
        torch.manual_seed(seed_)
        model = impl.SmallCNN()
        accuracies = impl.train_cnn(model, data, seed=seed_)
        assert_equal(len(accuracies), 15, "one test accuracy per epoch")
        with torch.no_grad():
            held_out = float((model(data.x_test).argmax(1) == data.y_test).float().mean())
        assert_close(accuracies[-1], held_out, f"recorded final test accuracy (seed {seed_})", dtype=torch.float32)
        finals.append(held_out)
    within_spread(finals, spec_cnn_accuracy, "final test accuracy of the CNN", floor=1 / 450)
