"""The worker's replies (grader/sandboxed/channel.py writes them, grader/judge/wire.py reads them): every
tree of data comes back as itself, types kept; a payload that is not data of the agreed shapes is a
ChannelError and builds nothing; the random state crosses only where it moved, and a test reads the
same random numbers as in one process."""

from __future__ import annotations

import json
import math
import random
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.judge import wire
from grader.sandboxed import channel
from grader.sandboxed.channel import BLOB, JSON_HEADER, MARK, ChannelError

DTYPES = sorted(channel.TENSOR_DTYPES)


def roundtrip(value):
    wire.new_reply()
    return wire.from_wire(wire.load(channel.dump(channel.to_wire(value, lambda obj: 1))), lambda info: info)


def same(a, b) -> bool:
    """Equal values of the same types, all the way down (NaN equal to NaN, -0.0 apart from 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        bits = lambda t: t.detach().reshape(-1).view(torch.uint8) if t.numel() else t.detach().reshape(-1)
        return a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad and \
            torch.equal(bits(a), bits(b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if type(a) is float:
        return struct.pack("!d", a) == struct.pack("!d", b) or (math.isnan(a) and math.isnan(b))
    return a == b


@st.composite
def tensors(draw):
    name = draw(st.sampled_from(DTYPES))
    shape = draw(st.lists(st.integers(0, 4), max_size=3))
    dtype = channel.TENSOR_DTYPES[name]
    raw = draw(st.binary(min_size=math.prod(shape) * dtype.itemsize, max_size=math.prod(shape) * dtype.itemsize))
    if name == "bool":
        tensor = torch.tensor(list(raw), dtype=torch.uint8).ne(0).reshape(shape)
    elif raw:
        tensor = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape).clone()
    else:
        tensor = torch.empty(shape, dtype=dtype)
    if (tensor.is_floating_point() or tensor.is_complex()) and draw(st.booleans()):
        tensor.requires_grad_(True)
    return tensor


leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_subnormal=True),
                   st.text(max_size=20), tensors(), st.complex_numbers(allow_nan=False),
                   st.builds(np.array, st.lists(st.floats(allow_nan=False), max_size=5)),
                   st.sampled_from([torch.float64, torch.Size([2, 3]), torch.device("cpu"), range(1, 9, 2)]))
trees = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
    st.dictionaries(st.one_of(st.text(max_size=5), st.integers(-5, 5)), inner, max_size=4)), max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(trees)
def test_every_tree_of_data_comes_back_as_itself(tree):
    assert same(roundtrip(tree), tree)


@pytest.mark.parametrize("value", [
    torch.randn(3, dtype=torch.complex64).conj(),           # a conjugate view: the values, resolved
    -torch.randn(2, 2, dtype=torch.float64).t(),            # transposed: made contiguous by the worker
    torch.randn(4).expand(3, 4),                            # a zero stride: copied whole
    torch.tensor(2.5),                                      # 0-d
    torch.zeros(0, 3, dtype=torch.int64),                   # empty
    torch.randn(5, 5, dtype=torch.float64)[::3, ::3][:1, :1],   # contiguous, with strides (15, 3)
    torch.arange(9)[::4][1:2],                              # one element, stride 4
], ids=["conj", "transposed", "expanded", "0-d", "empty", "size-1 dims strided", "one element strided"])
def test_tensors_of_every_layout_come_back_with_their_values(value):
    out = roundtrip(value)
    assert type(out) is torch.Tensor and out.is_contiguous() and out.dtype == value.dtype
    assert torch.equal(out, value.resolve_conj().resolve_neg())


REQUEST_TENSORS = {
    "float64": torch.randn(3, 4, dtype=torch.float64),
    "a view with an offset": torch.arange(10)[2:7],
    "transposed": torch.randn(4, 5).t(),
    "strided in two": torch.randn(6, 6, dtype=torch.float64)[::2, 1::3],
    "expanded": torch.randn(4).expand(3, 4),
    "empty": torch.zeros(0, 3, dtype=torch.int64),
    "0-d": torch.tensor(2.5),
    "bfloat16": torch.randn(2, 3).to(torch.bfloat16),
    "float16": torch.randn(5).half(),
    "bool": torch.tensor([True, False, True]),
    "int8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "complex, conjugate": torch.randn(2, 3, dtype=torch.complex128).conj(),
    "negative view": torch.randn(3, dtype=torch.complex64).conj().imag,
    "a leaf that requires grad": torch.randn(3, requires_grad=True),
    "a Parameter": torch.nn.Parameter(torch.randn(2, 2)),
    "sparse": torch.eye(3).to_sparse(),
}


def request_bytes(value) -> bytes:
    """``value`` pickled as the judge pickles a request for the worker (grader/judge/remote.py)."""
    import io

    from grader.judge import remote

    buffer = io.BytesIO()
    remote._Pickler(buffer, None, 0, None).dump(value)
    return buffer.getvalue()


@pytest.mark.parametrize("value", list(REQUEST_TENSORS.values()), ids=list(REQUEST_TENSORS))
def test_a_request_s_tensors_reach_the_worker_as_they_are(value):
    """A request's tensors are pickled with their storages' bytes (grader/sandboxed/channel.py
    storage_bytes), not torch.save: the worker unpickles the same type, dtype, values, shape, strides,
    offset, conjugate and negative bits and requires_grad."""
    import pickle

    data = request_bytes({"args": (value,)})
    out = pickle.loads(data)["args"][0]
    assert type(out) is type(value) and out.dtype == value.dtype and out.shape == value.shape
    assert out.requires_grad == value.requires_grad and out.is_conj() == value.is_conj()
    if value.layout == torch.strided:
        assert out.stride() == value.stride() and out.storage_offset() == value.storage_offset()
        assert out.is_neg() == value.is_neg()
        assert torch.equal(out.detach().resolve_conj().resolve_neg(), value.detach().resolve_conj().resolve_neg())
    else:
        assert torch.equal(out.to_dense(), value.to_dense())
    assert b"storage_from_bytes" in data and b"_load_from_bytes" not in data, "not the channel's reduction"


def test_a_request_s_tensor_can_grow_in_place_in_the_worker():
    """As after torch's own unpickling, the worker's copy of a request's tensor is in memory torch
    allocated: a submission may write a longer result into it (``out=``, ``resize_``), and it is aligned
    as torch aligns its own; the judge's tensor it was sent from can still grow too."""
    import pickle

    sent = [torch.zeros(2, dtype=torch.float64), torch.arange(3)]
    out, small = pickle.loads(request_bytes(sent))
    # and the judge's own tensors stay as they were: sending one leaves it resizable
    assert all(t.untyped_storage().resizable() for t in sent)
    sent[1].resize_(5)
    assert out.tolist() == [0.0, 0.0]
    torch.cat([torch.ones(3, dtype=torch.float64), torch.full((2,), 2.0, dtype=torch.float64)], out=out.resize_(0))
    assert out.tolist() == [1.0, 1.0, 1.0, 2.0, 2.0]
    small.resize_(7)
    assert small.shape == (7,) and small[:3].tolist() == [0, 1, 2]
    assert out.data_ptr() % 64 == 0 and small.data_ptr() % 64 == 0


@pytest.mark.parametrize("name", DTYPES)
def test_a_reply_s_tensor_can_grow_in_place_in_the_judge(name):
    """A tensor the worker returns is the judge's own as one the spec made would be: in memory torch
    allocated, so a test may write a longer result into it (``out=``, ``resize_``), aligned as torch aligns."""
    dtype = channel.TENSOR_DTYPES[name]
    sent = torch.arange(6).reshape(2, 3).to(dtype)
    back = roundtrip([sent, torch.zeros(0, dtype=dtype)])
    for tensor in back:
        assert tensor.untyped_storage().resizable(), f"a returned {name} tensor cannot be resized"
        assert tensor.numel() == 0 or tensor.data_ptr() % 64 == 0
    grown = back[0].reshape(-1).resize_(9)
    assert torch.equal(grown[:6], sent.reshape(-1))
    for out in (back[1], roundtrip(sent)):   # the empty one, and one whose bytes came from the reply
        torch.cat([sent.reshape(-1), sent.reshape(-1)], out=out.resize_(0))
        assert torch.equal(out, torch.cat([sent.reshape(-1)] * 2))


def test_a_storage_the_channel_does_not_carry_keeps_torch_s_own_reduction():
    """A storage of a dtype outside the channel's (complex32) or off the CPU is left to torch's own
    reduction (which is all a tensor on a GPU or of such a dtype got before)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch: ComplexHalf support is experimental
        odd = torch.randn(4, dtype=torch.complex64).to(torch.complex32)
        assert channel.storage_bytes(odd._typed_storage()) is None
        assert b"storage_from_bytes" not in request_bytes(odd)
        assert channel.storage_bytes(torch.zeros(2, device="meta")._typed_storage()) is None
        assert channel.storage_bytes(torch.zeros(2)._typed_storage()) is not None


def payload(text: str, blobs: bytes = b"") -> bytes:
    data = text.encode()
    return JSON_HEADER.pack(len(data)) + data + blobs


def entry(nbytes, dtype="float64", shape=(1,), grad=False, **extra) -> str:
    return json.dumps({BLOB: nbytes, "dtype": dtype, "shape": list(shape), "grad": grad, **extra})


BAD = {
    "shorter than the header": b"\x00\x00",
    "JSON past the end": JSON_HEADER.pack(100) + b"{}",
    "not UTF-8": JSON_HEADER.pack(2) + b"\xff\xfe",
    "not JSON": payload("{'a': 1}"),
    "bytes after the tensors": payload("null", b"\x00"),
    "an unknown dtype": payload(entry(8, dtype="float8_e4m3fn"), bytes(8)),
    "a dtype of numpy's name": payload(entry(8, dtype="<f8"), bytes(8)),
    "bytes short of the shape": payload(entry(8, shape=(2,)), bytes(8)),
    "a length past the end": payload(entry(16, shape=(2,)), bytes(8)),
    "a negative length": payload(entry(-8, shape=(1,)), bytes(8)),
    "a negative dimension": payload(entry(8, shape=(-1, -1)), bytes(8)),
    "a float dimension": payload(entry(8, shape=(1.0,)), bytes(8)),
    "a bool dimension": payload(entry(8, shape=(True,)), bytes(8)),
    "a huge shape": payload(entry(8, shape=(2**62, 2**62)), bytes(8)),
    "an extra key": payload(entry(8, extra=1), bytes(8)),
    "grad not a bool": payload(entry(8, grad=1), bytes(8)),
    "the same bytes twice": payload(f"[{entry(8)}, {entry(8)}]", bytes(8)),
    "nested past the parser": payload("[" * 100_000 + "]" * 100_000),
    "an int of 10000 digits": payload("1" * 10_000),
}


@pytest.mark.parametrize("raw", list(BAD.values()), ids=list(BAD))
def test_a_payload_that_is_not_data_is_refused(raw):
    with pytest.raises(ChannelError):
        wire.load(raw)


@pytest.mark.parametrize("tree", [
    {"class": "os.system"},                                  # a dict without a marker
    {MARK: "pickle", "data": "cos\nsystem"},                 # an unknown marker
    {MARK: "tensor", "data": [1.0, 2.0], "device": "cpu"},   # a tensor's data that is not a tensor
    {MARK: "module", "class": "subprocess.Popen", "training": True, "attrs": {MARK: "dict", "keys": [], "values": []},
     "params": {MARK: "dict", "keys": [], "values": []}, "buffers": {MARK: "dict", "keys": [], "values": []},
     "modules": {MARK: "dict", "keys": [], "values": []}},  # a "layer" that is not torch's
    {MARK: "ndarray", "dtype": "O", "shape": [1], "data": None},   # an object array
])
def test_a_tree_of_other_shapes_is_refused(tree):
    wire.new_reply()
    with pytest.raises(ChannelError):
        wire.from_wire(wire.load(channel.dump(tree)), lambda info: info)


def test_a_bool_tensor_holds_only_zeros_and_ones_whatever_bytes_were_sent():
    out = wire.load(payload(entry(3, dtype="bool", shape=(3,)), bytes([0, 2, 255])))
    assert out.dtype == torch.bool and out.tolist() == [False, True, True]
    assert out.view(torch.uint8).tolist() == [0, 1, 1]


def test_the_worker_refuses_what_is_not_a_dense_cpu_tensor_or_data():
    with pytest.raises(TypeError):
        channel.dump({"x": torch.zeros(()).expand(10)})      # a zero stride (a 5 GB bomb, made small)
    with pytest.raises(TypeError):
        channel.dump({"x": object()})


# --------------------------------------------------------------- the random state, through a real worker
@pytest.fixture(scope="module")
def reference():
    from grader.judge import remote

    impl, error, worker = remote.start("impl", call_timeout=120)
    assert error is None, error
    yield impl, worker
    worker.close()


def draws(run, rounds: int) -> list:
    """Alternating draws of the worker (through ``run``) and the judge, from one seed, of each of torch,
    numpy and random; calls that draw nothing in between."""
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    out = []
    for index in range(rounds):
        out.append(run(lambda impl: (torch.rand(2).tolist(), np.random.rand(2).tolist(), random.random())))
        out.append(run(lambda impl: None))           # draws nothing
        if index % 2:
            out.append((torch.rand(1).tolist(), np.random.rand(1).tolist(), random.random()))   # the judge draws
        out.append(run(lambda impl: None))
    return out


def test_the_random_state_continues_across_the_channel_as_in_one_process(reference):
    impl = reference[0]
    remote_draws = draws(impl.run, 5)
    local_draws = draws(lambda f: f(None), 5)
    assert remote_draws == local_draws


def test_python_s_cached_gaussian_continues_across_the_channel(reference):
    """random.gauss draws two values and keeps the second for its next call: a call that draws one
    leaves the other to whoever draws next, the judge or the worker, as in one process."""
    impl = reference[0]

    def gaussians(run) -> list[float]:
        random.seed(11)
        out = [run(lambda impl: random.gauss(0.0, 1.0))]   # the worker draws two, keeps one
        out.append(random.gauss(0.0, 1.0))                  # the judge's: the kept one
        out.append(random.gauss(0.0, 1.0))                  # the judge draws two, keeps one
        out.append(run(lambda impl: random.gauss(0.0, 1.0)))
        out.append(run(lambda impl: (random.gauss(0.0, 1.0), random.gauss(0.0, 1.0))))
        out.append(random.gauss(0.0, 1.0))
        return out

    assert gaussians(impl.run) == gaussians(lambda f: f(None))


@pytest.mark.parametrize("gauss, taken", [(None, True), (0.25, True), ("0.25", False), (1, False),
                                          (math.inf, False), (math.nan, False)])
def test_a_reply_s_cached_gaussian_is_taken_only_as_a_finite_float_or_none(gauss, taken):
    from grader.judge import remote

    before = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    state = random.getstate()
    numpy_state = np.random.get_state()
    reply = {"rng": {"torch": torch.get_rng_state(), "numpy": list(numpy_state),
                     "random": np.array(state[1], dtype=np.uint32), "gauss": gauss}}
    wire.new_reply()
    ctx = wire.load(channel.dump(channel.to_wire(reply, lambda obj: 1)))
    try:
        if taken:
            held = remote._apply_context(ctx)
            assert random.getstate()[2] == gauss and remote._same_rng(held, remote._rng_now())
        else:
            with pytest.raises(ChannelError, match="random state is malformed"):
                remote._apply_context(ctx)
    finally:
        torch.set_rng_state(before[0]), np.random.set_state(before[1]), random.setstate(before[2])


def test_a_call_that_draws_nothing_sends_no_random_state_back(reference, monkeypatch):
    from grader.judge import remote

    impl, worker = reference
    applied = []
    original = remote._apply_context

    def spy(ctx):
        applied.append("rng" in wire.from_wire(ctx, lambda info: None))
        return original(ctx)

    monkeypatch.setattr(remote, "_apply_context", spy)
    torch.manual_seed(0)
    impl.run(lambda impl: None)              # the judge's state crosses; the worker's comes back unmoved
    assert remote._same_rng(worker.rng_held, remote._rng_now())
    impl.run(lambda impl: (torch.rand(1), np.random.rand(), random.random()))   # moved: it comes back
    # what the judge holds as the worker's state (built from the reply, not read again) is its own now
    assert remote._same_rng(worker.rng_held, remote._rng_now())
    impl.run(lambda impl: None)
    assert applied == [False, True, False]
    assert worker.rng_held is not None and remote._same_rng(worker.rng_held, remote._rng_now())


def test_a_handle_of_a_worker_that_has_ended_fails_instead_of_reaching_another_object(reference):
    """A new worker numbers its objects from 1 again: a handle kept from the one before (a test's
    fixture, a function looked up before a crash) must not reach the new worker's object of that number."""
    from grader.judge import remote

    impl, worker = reference
    old = impl.run(lambda impl: (lambda: "old"))
    worker.stop()                                   # as a crash or the CPU watcher would
    new = impl.run(lambda impl: (lambda: "new"))    # the new worker's first object
    assert new() == "new"
    with pytest.raises(remote.WorkerCrashed, match="has since ended"):
        old()
    with pytest.raises(remote.WorkerCrashed, match="has since ended"):
        _ = old.attribute
