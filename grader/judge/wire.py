"""The judge's half of the channel (grader/sandboxed/channel.py holds the framing and the worker's
half): a reply of the worker is parsed as JSON (the standard library's parser builds only plain
types), its tensor entries are rebuilt from the bytes that follow, each checked against its dtype and
shape, and the tree is validated type by type into the judge's own objects. Nothing the worker sends is
trusted: a reply that is not data of the agreed shapes is a :class:`ChannelError`.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from grader.sandboxed.channel import (
    BLOB,
    JSON_HEADER,
    MARK,
    MAX_DEPTH,
    MAX_FRAME,
    NUMERIC_KINDS,
    TENSOR_DTYPES,
    TORCH_LAYERS,
    ChannelError,
    owned_bytes,
)

PLAIN = (type(None), bool, int, float, str)
TENSOR_ENTRY = {BLOB, "dtype", "shape", "grad"}


def load(payload: bytes):
    """Read a reply: JSON, whose tensor entries take their bytes, in order, from what follows it; every
    byte after the JSON belongs to exactly one tensor."""
    try:
        if len(payload) < JSON_HEADER.size:
            raise ValueError("the reply is shorter than its header")
        size = JSON_HEADER.unpack_from(payload)[0]
        start = JSON_HEADER.size + size
        if start > len(payload):
            raise ValueError("the reply is shorter than its JSON")
        blobs = np.frombuffer(payload, dtype=np.uint8, offset=start)
        cursor = [0]
        tree = json.loads(payload[JSON_HEADER.size:start].decode("utf-8"),
                          object_hook=lambda entry: _tensor_entry(entry, blobs, cursor))
        if cursor[0] != len(blobs):
            raise ValueError(f"{len(blobs) - cursor[0]} bytes of the reply belong to no tensor")
        return tree
    except ChannelError:
        raise
    except Exception as exc:   # RecursionError and MemoryError included: nothing of a reply gets past here
        raise ChannelError(f"the worker's reply does not decode as data: {type(exc).__name__}: {exc}"[:500]) from None


def _tensor_entry(entry: dict, blobs: np.ndarray, cursor: list[int]):
    """A tensor entry of the JSON as a tensor owning a copy of its bytes (the next ``nbytes`` bytes after
    the JSON); any other object as it is."""
    if BLOB not in entry:
        return entry
    nbytes, name, shape, grad = entry[BLOB], entry.get("dtype"), entry.get("shape"), entry.get("grad")
    if set(entry) != TENSOR_ENTRY or type(name) is not str or name not in TENSOR_DTYPES or type(grad) is not bool \
            or type(shape) is not list or len(shape) > MAX_DEPTH or any(type(n) is not int or n < 0 for n in shape):
        raise ChannelError("malformed tensor entry in the reply")
    dtype = TENSOR_DTYPES[name]
    if type(nbytes) is not int or nbytes != math.prod(shape) * dtype.itemsize or cursor[0] + nbytes > len(blobs):
        raise ChannelError("a tensor entry of the reply does not match its bytes")
    if nbytes == 0:
        tensor = torch.empty(shape, dtype=dtype)
    else:
        raw = owned_bytes(blobs.ctypes.data + cursor[0], nbytes)   # the judge's own: a test may grow it
        cursor[0] += nbytes
        tensor = raw.ne(0) if dtype is torch.bool else raw.view(dtype)   # a bool is 0 or 1, whatever was sent
        tensor = tensor.reshape(shape)
    if grad and (tensor.is_floating_point() or tensor.is_complex()):
        tensor.requires_grad_(True)
    return tensor


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
    "tuple": lambda t, h, d: tuple(from_wire(v, h, d + 1) for v in _field(t, "items", list)),
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
