"""The narrow channel between the spec (the judge, trusted) and a submission's worker process (the
judged, untrusted): framing and the two encodings.

* judge -> worker: requests pickled by cloudpickle (the spec's own functions, lambdas, modules and
  optimizers go over by copy). The worker may unpickle anything: it runs untrusted code anyway.
* worker -> judge: replies as *data only*. The worker turns every result into a tree of plain types
  (None, bool, int, float, str, list, tuple, plain tensors) with marker dictionaries for the few others
  (ndarray, numpy scalar, complex, dtype, Size, device, set, dict, handle), and ``torch.save``s it. The
  judge reads it with ``torch.load(weights_only=True)``, an unpickler that builds nothing but those
  types and runs no code of the sender's, then validates the tree type by type (:func:`from_wire`).
  Objects that are not data (a submission's model, a history object, a function) stay in the worker;
  the judge gets a handle (a number) to reach them.

Each frame is an 8-byte length and the payload; a frame over :data:`MAX_FRAME` bytes, a cut frame or
one that does not decode is a :class:`ChannelError`, which fails the test that was waiting on it.
"""

from __future__ import annotations

import io
import os
import struct

import numpy as np
import torch

MAX_FRAME = 512 * 2**20      # bytes of one reply: a frame announcing more ends the worker
MAX_DEPTH = 64               # nesting of a reply's containers
MARK = "~"                   # the key of a marker dictionary (every dict on the wire is one)
NUMERIC_KINDS = "biufc"      # numpy dtype kinds that cross as raw bytes: bool, ints, floats, complex
_HEADER = struct.Struct("!Q")


class ChannelError(Exception):
    """The worker's reply is missing, cut, too large or not data of the agreed shapes."""


# ---------------------------------------------------------------------------------------- framing
def send(fd: int, payload: bytes) -> None:
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def receive(fd: int, *, limit: int = MAX_FRAME) -> bytes:
    size = _HEADER.unpack(_read_exactly(fd, _HEADER.size))[0]
    if size > limit:
        raise ChannelError(f"the worker announced a reply of {size} bytes (the limit is {limit})")
    return _read_exactly(fd, size)


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the channel closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------ worker side: to the wire
def to_wire(value, keep, depth: int = 0):
    """``value`` as plain data. ``keep(obj)`` stores an object that is not data in the worker and
    returns its handle number. Runs in the worker, where the submission's code may run too: nothing
    here is trusted by the judge, which validates what arrives."""
    if depth > MAX_DEPTH:
        raise ValueError(f"the result nests deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if isinstance(value, torch.Tensor):
        return _tensor(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in NUMERIC_KINDS:
        return {MARK: "ndarray", "dtype": value.dtype.str, "shape": list(value.shape),
                "data": _raw(np.ascontiguousarray(value))}
    if isinstance(value, np.generic) and value.dtype.kind in NUMERIC_KINDS:
        return {MARK: "npscalar", "dtype": value.dtype.str, "data": _raw(np.asarray(value).reshape(1))}
    if kind is complex:
        return {MARK: "complex", "re": value.real, "im": value.imag}
    if kind is list:
        return [to_wire(v, keep, depth + 1) for v in value]
    if kind is tuple:
        return tuple(to_wire(v, keep, depth + 1) for v in value)
    if kind in (dict,) or (isinstance(value, dict) and type(value).__module__ == "collections"):
        items = list(value.items())
        return {MARK: "dict", "keys": [to_wire(k, keep, depth + 1) for k, _ in items],
                "values": [to_wire(v, keep, depth + 1) for _, v in items]}
    if kind in (set, frozenset):
        return {MARK: kind.__name__, "items": [to_wire(v, keep, depth + 1) for v in value]}
    if kind is torch.dtype:
        return {MARK: "torch.dtype", "name": str(value).removeprefix("torch.")}
    if kind is torch.Size:
        return {MARK: "torch.Size", "items": [int(v) for v in value]}
    if kind is torch.device:
        return {MARK: "torch.device", "name": str(value)}
    if isinstance(value, np.dtype) and value.kind in NUMERIC_KINDS:
        return {MARK: "np.dtype", "dtype": value.str}
    if kind is range:
        return {MARK: "range", "start": value.start, "stop": value.stop, "step": value.step}
    if isinstance(value, torch.nn.Module) and _torch_only(value):
        return _module(value, keep, depth)
    return {MARK: "handle", "id": keep(value), "type": f"{kind.__module__}.{kind.__qualname__}",
            "callable": callable(value)}


def _tensor(value: torch.Tensor) -> dict:
    plain = torch.Tensor.as_subclass(value, torch.Tensor).detach()
    device = str(plain.device)
    if plain.layout != torch.strided:
        plain = plain.to_dense()
    plain = plain.cpu().clone().contiguous()
    if plain.is_floating_point() or plain.is_complex():
        plain.requires_grad_(bool(value.requires_grad))
    return {MARK: "tensor", "data": plain, "device": device}


TORCH_LAYERS = "torch.nn.modules."    # classes of this package come back as copies, built from data


def _torch_only(module: torch.nn.Module) -> bool:
    """Whether every part of the model is one of torch's own layers, with no hooks and no method
    replaced on an instance: then a copy of its data is the same model in the judge."""
    for part in module.modules():
        kind = type(part)
        if not kind.__module__.startswith(TORCH_LAYERS) or kind.__qualname__ != kind.__name__:
            return False
        hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                 "_state_dict_hooks", "_load_state_dict_pre_hooks")
        if any(getattr(part, h, None) for h in hooks) or any(callable(v) and not isinstance(v, torch.nn.Module)
                                                             for v in vars(part).values()):
            return False
    return True


def _module(value: torch.nn.Module, keep, depth: int) -> dict:
    skip = {"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set", "training"}
    attrs = {k: v for k, v in vars(value).items() if k not in skip and not isinstance(v, dict)
             and (not k.startswith("_") or k == "_reversed_padding_repeated_twice")}
    return {MARK: "module", "class": f"{type(value).__module__}.{type(value).__name__}",
            "training": bool(value.training),
            "attrs": to_wire(attrs, keep, depth + 1),
            "params": to_wire({k: p for k, p in value._parameters.items()}, keep, depth + 1),
            "buffers": to_wire(dict(value._buffers), keep, depth + 1),
            "modules": to_wire(dict(value._modules), keep, depth + 1)}


def _raw(array: np.ndarray) -> torch.Tensor:
    return torch.frombuffer(bytearray(array.tobytes()), dtype=torch.uint8) if array.nbytes else \
        torch.zeros(0, dtype=torch.uint8)


def dump(tree) -> bytes:
    buffer = io.BytesIO()
    torch.save(tree, buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------ judge side: from the wire
PLAIN = (type(None), bool, int, float, str)


def load(payload: bytes):
    """Read a reply: torch's weights-only unpickler builds tensors, primitives and containers only."""
    try:
        return torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise ChannelError(f"the worker's reply does not decode as data: {type(exc).__name__}: {exc}"[:500]) from None


def from_wire(tree, handle, depth: int = 0):
    """The reply's tree as the judge's own objects, checked type by type; ``handle(info)`` makes the
    judge's proxy for a handle. Anything else is a :class:`ChannelError`. The tensors of one reply hold
    at most MAX_FRAME bytes in all, each dense and contiguous: a reply cannot make the judge allocate
    more than it sent (views of one storage, or zero strides, would)."""
    if depth > MAX_DEPTH:
        raise ChannelError(f"the reply nests deeper than {MAX_DEPTH} levels")
    kind = type(tree)
    if kind in PLAIN:
        return tree
    if kind is list:
        return [from_wire(v, handle, depth + 1) for v in tree]
    if kind is tuple:
        return tuple(from_wire(v, handle, depth + 1) for v in tree)
    if kind is not dict or not isinstance(tree.get(MARK), str):
        raise ChannelError(f"the reply holds a {kind.__name__}, which the channel does not carry")
    mark = tree[MARK]
    rebuild = _REBUILD.get(mark)
    if rebuild is None:
        raise ChannelError(f"the reply holds an unknown marker {mark!r}")
    try:
        return rebuild(tree, handle, depth)
    except ChannelError:
        raise
    except Exception as exc:
        raise ChannelError(f"malformed {mark} in the reply: {type(exc).__name__}: {exc}"[:500]) from None


def _field(tree: dict, key: str, *types):
    value = tree[key]
    if type(value) not in types:
        raise ChannelError(f"field {key!r} of a {tree[MARK]} is a {type(value).__name__}")
    return value


def _ints(values) -> list[int]:
    if type(values) is not list or any(type(v) is not int for v in values):
        raise ChannelError("a shape in the reply is not a list of integers")
    return values


def _check_dtype(text: str) -> np.dtype:
    dtype = np.dtype(text)
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ChannelError(f"dtype {text!r} does not cross the channel")
    return dtype


def _array(tree, handle, depth) -> np.ndarray:
    dtype = _check_dtype(_field(tree, "dtype", str))
    shape = _ints(_field(tree, "shape", list))
    data = _field(tree, "data", torch.Tensor)
    if data.dtype != torch.uint8 or data.dim() != 1 or any(n < 0 for n in shape):
        raise ChannelError("malformed ndarray in the reply")
    return np.frombuffer(data.numpy().tobytes(), dtype=dtype).reshape(shape).copy()


_BUDGET = [MAX_FRAME]   # bytes the tensors of the reply being read may still take


def new_reply() -> None:
    """Start the byte budget of a new reply (every tree read from it shares one budget)."""
    _BUDGET[:] = [MAX_FRAME]


def _plain_tensor(tree, handle, depth) -> torch.Tensor:
    data = _field(tree, "data", torch.Tensor)
    if data.layout != torch.strided or not data.is_contiguous():
        raise ChannelError("a tensor in the reply is not a dense, contiguous tensor")
    size = data.numel() * data.element_size()
    if size > data.untyped_storage().nbytes() - data.storage_offset() * data.element_size() or size > _BUDGET[0]:
        raise ChannelError("the tensors of the reply are larger than the reply")
    _BUDGET[0] -= size
    plain = torch.Tensor.as_subclass(data, torch.Tensor)
    device = _field(tree, "device", str)
    if device != "cpu" and torch.device(device).type == "cuda" and torch.cuda.is_available():
        plain = plain.detach().to(device).requires_grad_(plain.requires_grad)
    return plain


def _dict(tree, handle, depth) -> dict:
    keys = [from_wire(k, handle, depth + 1) for k in _field(tree, "keys", list)]
    values = [from_wire(v, handle, depth + 1) for v in _field(tree, "values", list)]
    if len(keys) != len(values):
        raise ChannelError("a dict in the reply has as many keys as values")
    return dict(zip(keys, values, strict=True))


def _dtype(tree, handle, depth):
    value = getattr(torch, _field(tree, "name", str), None)
    if type(value) is not torch.dtype:
        raise ChannelError("unknown torch dtype in the reply")
    return value


ATTRIBUTE_TYPES = (type(None), bool, int, float, str, tuple, list, torch.dtype, torch.device, torch.Size)


def _rebuilt_module(tree, handle, depth) -> torch.nn.Module:
    """A copy of a model made of torch's own layers: the class must be one of torch.nn's, built without
    its __init__, given plain attributes, parameters, buffers and parts checked the same way."""
    import importlib

    path = _field(tree, "class", str)
    module_name, _, class_name = path.rpartition(".")
    if not module_name.startswith(TORCH_LAYERS):
        raise ChannelError(f"{path} is not one of torch's layers")
    kind = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(kind, type) and issubclass(kind, torch.nn.Module)):
        raise ChannelError(f"{path} is not one of torch's layers")
    model = kind.__new__(kind)
    torch.nn.Module.__init__(model)
    attrs = from_wire(_field(tree, "attrs", dict), handle, depth + 1)
    for key, value in attrs.items():
        if type(key) is not str or key in vars(torch.nn.Module) or type(value) not in ATTRIBUTE_TYPES or \
                (type(value) in (tuple, list) and any(type(v) not in ATTRIBUTE_TYPES[:5] for v in value)):
            raise ChannelError(f"attribute {key!r} of a {class_name} is not plain data")
        object.__setattr__(model, key, value)
    for key, value in from_wire(_field(tree, "params", dict), handle, depth + 1).items():
        if type(key) is not str or (value is not None and type(value) is not torch.Tensor):
            raise ChannelError(f"parameter {key!r} of a {class_name} is not a tensor")
        model._parameters[key] = None if value is None else torch.nn.Parameter(
            value.detach(), requires_grad=value.requires_grad)
    for key, value in from_wire(_field(tree, "buffers", dict), handle, depth + 1).items():
        if type(key) is not str or (value is not None and type(value) is not torch.Tensor):
            raise ChannelError(f"buffer {key!r} of a {class_name} is not a tensor")
        model._buffers[key] = value
    for key, value in from_wire(_field(tree, "modules", dict), handle, depth + 1).items():
        if type(key) is not str or (value is not None and not isinstance(value, torch.nn.Module)):
            raise ChannelError(f"part {key!r} of a {class_name} is not a layer")
        model._modules[key] = value
    model.training = _field(tree, "training", bool)
    return model


_REBUILD = {
    "module": _rebuilt_module,
    "tensor": _plain_tensor,
    "ndarray": _array,
    "npscalar": lambda t, h, d: _array({**t, "shape": []}, h, d)[()],
    "complex": lambda t, h, d: complex(_field(t, "re", float, int), _field(t, "im", float, int)),
    "dict": _dict,
    "set": lambda t, h, d: {from_wire(v, h, d + 1) for v in _field(t, "items", list)},
    "frozenset": lambda t, h, d: frozenset(from_wire(v, h, d + 1) for v in _field(t, "items", list)),
    "torch.dtype": _dtype,
    "torch.Size": lambda t, h, d: torch.Size(_ints(_field(t, "items", list))),
    "torch.device": lambda t, h, d: torch.device(_field(t, "name", str)),
    "np.dtype": lambda t, h, d: _check_dtype(_field(t, "dtype", str)),
    "range": lambda t, h, d: range(_field(t, "start", int), _field(t, "stop", int), _field(t, "step", int)),
    "handle": lambda t, h, d: h({"id": _field(t, "id", int), "type": _field(t, "type", str)[:200],
                                 "callable": _field(t, "callable", bool)}),
}
