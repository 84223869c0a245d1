"""The narrow channel between the spec (the judge, trusted) and a submission's worker process (the
judged, untrusted): framing and the two encodings.

* judge -> worker: requests pickled by cloudpickle (the spec's own functions, lambdas, modules and
  optimizers go over by copy). The worker may unpickle anything: it runs untrusted code anyway.
* worker -> judge: replies as *data only*. The worker turns every result into a tree of plain types
  (None, bool, int, float, str, list, plain tensors) with marker dictionaries for the few others
  (tuple, ndarray, numpy scalar, complex, dtype, Size, device, set, dict, handle), and writes it as
  JSON followed by the tensors' raw bytes (:func:`dump`). The judge reads it with the standard
  library's JSON parser, which builds nothing but those plain types, turns each tensor's entry into a
  tensor of an allowed dtype whose bytes it counts off the frame (grader/judge/wire.py), then validates
  the tree type by type (``from_wire``). Objects that are not data (a submission's model, a history
  object, a function) stay in the worker; the judge gets a handle (a number) to reach them.

Each frame is an 8-byte length and the payload; a frame over :data:`MAX_FRAME` bytes, a cut frame or
one that does not decode is a :class:`ChannelError`, which fails the test that was waiting on it. A
payload is a 4-byte length, that many bytes of JSON, then the raw bytes of the tensors in the order
their entries appear in the JSON (each entry ``{"~blob": nbytes, "dtype": ..., "shape": [...],
"grad": ...}``), and nothing after them.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct

import numpy as np
import torch

MAX_FRAME = 512 * 2**20      # bytes of one reply: a frame announcing more ends the worker
MAX_DEPTH = 64               # nesting of a reply's containers
MARK = "~"                   # the key of a marker dictionary (every dict on the wire is one)
NUMERIC_KINDS = "biufc"      # numpy dtype kinds that cross as raw bytes: bool, ints, floats, complex
_HEADER = struct.Struct("!Q")
JSON_HEADER = struct.Struct("!I")
BLOB = "~blob"               # the key of a tensor's entry in a payload's JSON
#: the tensor dtypes that cross the channel, by name (their bytes as the worker's machine lays them out)
TENSOR_DTYPES = {name: getattr(torch, name) for name in (
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
    "complex64", "complex128")}


def storage_bytes(storage) -> tuple | None:
    """A request's CPU storage as ``(storage_from_bytes, (its bytes, its dtype's name))``, what the judge's
    pickler sends in place of torch's own reduction (which runs torch.save on each storage, and the
    worker torch.load: a request with four small tensors took 174 and 200 microseconds to pickle and
    unpickle, 80 and 48 this way); None for a storage of another device or dtype, which keeps torch's."""
    raw = getattr(storage, "_untyped_storage", None)   # (TypedStorage's public properties warn: deprecated)
    name = str(getattr(storage, "dtype", "")).removeprefix("torch.")
    if raw is None or name not in TENSOR_DTYPES or raw.device.type != "cpu":
        return None
    # read where it lies (a numpy view of it would leave the caller's storage fixed in size from then on)
    data = ctypes.string_at(raw.data_ptr(), raw.nbytes()) if raw.nbytes() else b""
    return storage_from_bytes, (data, name)


def owned_bytes(source, nbytes: int) -> torch.Tensor:
    """``nbytes`` bytes copied from ``source`` (a bytes object, or the address of bytes its caller has
    checked) into a uint8 tensor in memory torch allocates on the CPU, whatever default device is set: as
    torch's own tensors are, resizable (code may grow one in place, ``out=`` or ``resize_``) and aligned.
    A tensor over numpy's or Python's buffer, or a numpy view of this one, would stay fixed in size."""
    raw = torch.empty(nbytes, dtype=torch.uint8, device="cpu")
    if nbytes:
        ctypes.memmove(raw.data_ptr(), source, nbytes)
    return raw


def storage_from_bytes(data: bytes, dtype: str):
    """The storage :func:`storage_bytes` sent (the worker's end of a request), in memory torch allocates, as
    torch.load's is (:func:`owned_bytes`): a submission may grow an argument in place."""
    raw = owned_bytes(data, len(data))
    return torch.storage.TypedStorage(wrap_storage=raw.untyped_storage(), dtype=TENSOR_DTYPES[dtype], _internal=True)


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
        return {MARK: "tuple", "items": [to_wire(v, keep, depth + 1) for v in value]}
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


def dump(message) -> bytes:
    """A payload: ``message`` (plain data: dicts with string keys, lists, str, numbers, None, and the
    tensors of trees made by :func:`to_wire`) as JSON, then the tensors' bytes."""
    blobs: list[bytes] = []

    def tensor(value):
        if type(value) is not torch.Tensor:
            raise TypeError(f"a {type(value).__name__} does not cross the channel")
        name = str(value.dtype).removeprefix("torch.")
        if name not in TENSOR_DTYPES or value.layout != torch.strided or not value.is_contiguous() or \
                value.device.type != "cpu":
            raise TypeError(f"a {name} tensor that is not dense, contiguous and on the CPU does not cross the channel")
        # a fresh 1-D copy: a contiguous tensor may still carry any stride on a dimension of size 1
        data = torch.empty(value.numel(), dtype=value.dtype)
        data.copy_(value.detach().resolve_conj().resolve_neg().reshape(-1))
        raw = data.view(torch.uint8).numpy().tobytes() if data.numel() else b""
        blobs.append(raw)
        return {BLOB: len(raw), "dtype": name, "shape": list(value.shape), "grad": bool(value.requires_grad)}

    text = json.dumps(message, default=tensor, separators=(",", ":")).encode("ascii")
    return b"".join([JSON_HEADER.pack(len(text)), text, *blobs])
