"""Checkpoints: ``save(obj, path)`` / ``load(path)`` in the safetensors format, never pickle.

The file is a plain safetensors file (an 8-byte little-endian header length, a JSON header naming
each tensor's dtype, shape and byte range, then the raw bytes), written here with NumPy, so no
extra package is needed and any safetensors reader can open it. A nested object — a state dict,
an optimizer's state_dict with int keys and lists, ``{"model": ..., "epoch": 3}`` — is flattened:
each tensor is stored under its dotted path ("state.0.exp_avg"), and the structure with its
non-tensor leaves (ints, floats, strings, bools, None, lists, tuples) goes as JSON into the
header's ``__metadata__``. Writes are atomic: a temporary file in the same directory, flushed and
fsynced, then ``os.replace``d over the target, so a crash mid-save leaves the old file intact.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
from collections import OrderedDict

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load"]

_FORMAT_KEY = "chainrule"
_FORMAT_VERSION = 1
# safetensors dtype codes; the data is little-endian
_CODES = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
          np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8", np.dtype(np.int16): "I16",
          np.dtype(np.int32): "I32", np.dtype(np.int64): "I64", np.dtype(np.bool_): "BOOL"}
_DTYPES = {code: dt.newbyteorder("<") for dt, code in _CODES.items()}


# ---------------------------------------------------------------------------------------- save
def _flatten(obj, path: str, tensors: dict, where: str):
    """The JSON description of ``obj``; tensors go to ``tensors`` under a unique dotted name."""
    if isinstance(obj, (Tensor, np.ndarray)):
        array = obj._data if isinstance(obj, Tensor) else obj
        if hasattr(array, "get"):  # a CuPy array: bring it to the host
            array = array.get()
        if array.dtype not in _CODES:
            raise TypeError(f"chainrule.save: can't store an array of dtype {array.dtype} at {where}")
        name, n = path or "tensor", 1
        while name in tensors:
            n += 1
            name = f"{path or 'tensor'}#{n}"
        tensors[name] = array
        return {"tensor": name} if isinstance(obj, Tensor) else {"ndarray": name}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return {"value": obj.item()}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"chainrule.save: dict keys must be str or int, got {type(key).__name__} "
                                f"{key!r} at {where}")
            child = f"{path}.{key}" if path else str(key)
            items.append([key, _flatten(value, child, tensors, f"{where}[{key!r}]")])
        return {"dict": items, "ordered": isinstance(obj, OrderedDict)}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_flatten(v, f"{path}.{i}" if path else str(i), tensors, f"{where}[{i}]")
                       for i, v in enumerate(obj)]}
    from ._dtype import dtype as _dtype_cls

    if isinstance(obj, _dtype_cls):
        return {"dtype": obj.name}
    raise TypeError(f"chainrule.save: can't save an object of type {type(obj).__name__} at {where}: "
                    "supported are tensors, NumPy arrays, dicts, lists, tuples, str, int, float, bool, None")


def _header(obj) -> tuple[bytes, list]:
    tensors: dict = {}
    structure = _flatten(obj, "", tensors, "the top level")
    header, arrays, offset = {}, [], 0
    for name, array in tensors.items():
        # safetensors wants C order; a transposed or sliced view is copied here (and only here)
        # (np.ascontiguousarray would turn a 0-d array into 1-d)
        array = np.asarray(array).astype(array.dtype.newbyteorder("<"), order="C", copy=False)
        header[name] = {"dtype": _CODES[array.dtype.newbyteorder("=")], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    header["__metadata__"] = {_FORMAT_KEY: json.dumps({"version": _FORMAT_VERSION, "structure": structure}),
                              "format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data start to 8 bytes
    return struct.pack("<Q", len(text)) + text, arrays


def _write_arrays(f, arrays: list) -> None:
    for array in arrays:
        f.write(memoryview(array.reshape(-1)).cast("B") if array.size else b"")


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True) -> None:
    """Save a tensor, or a (nested) dict / list of tensors and plain values, to ``f`` (a path or a
    binary file object). Like torch.save, but as a safetensors file and never by pickling."""
    head, arrays = _header(obj)
    if hasattr(f, "write"):
        f.write(head)
        _write_arrays(f, arrays)
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(head)
            _write_arrays(out, arrays)
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# ---------------------------------------------------------------------------------------- load
def _read_bytes(f) -> tuple[bytearray, str]:
    if hasattr(f, "read"):
        return bytearray(f.read()), getattr(f, "name", "<file object>")
    path = os.fspath(f)
    size = os.path.getsize(path)
    buffer = bytearray(size)
    with open(path, "rb") as stream:
        got = stream.readinto(buffer)
    return buffer[:got] if got != size else buffer, path


def _parse(buffer: bytearray, name: str) -> tuple[dict, dict, int]:
    if len(buffer) < 8:
        raise RuntimeError(f"chainrule.load: {name!r} is not a checkpoint: {len(buffer)} bytes is too short "
                           "for a safetensors header")
    (size,) = struct.unpack("<Q", bytes(buffer[:8]))
    if size > len(buffer) - 8:
        raise RuntimeError(f"chainrule.load: {name!r} is not a valid checkpoint: the header claims {size} "
                           f"bytes but the file has {len(buffer) - 8} after the length (truncated, or not a "
                           "safetensors file)")
    try:
        header = json.loads(bytes(buffer[8:8 + size]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RuntimeError(f"chainrule.load: {name!r} is not a valid checkpoint: its header is not JSON "
                           f"({exc})") from None
    if not isinstance(header, dict):
        raise RuntimeError(f"chainrule.load: {name!r} is not a valid checkpoint: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    return header, metadata, 8 + size


def _tensor_at(buffer: bytearray, start: int, key: str, entry, name: str) -> np.ndarray:
    problem = None
    if not isinstance(entry, dict):
        problem = "its header entry is not an object"
    elif entry.get("dtype") not in _DTYPES:
        problem = f"unknown dtype {entry.get('dtype')!r}"
    elif not isinstance(entry.get("shape"), list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in entry["shape"]):
        problem = f"bad shape {entry.get('shape')!r}"
    elif not (isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
              and all(isinstance(o, int) for o in entry["data_offsets"])):
        problem = f"bad data_offsets {entry.get('data_offsets')!r}"
    if problem is None:
        dt = _DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        expected = int(np.prod(entry["shape"], dtype=np.int64)) * dt.itemsize
        if not 0 <= begin <= end or end - begin != expected:
            problem = (f"its byte range [{begin}, {end}) does not hold shape {entry['shape']} of "
                       f"{entry['dtype']} ({expected} bytes)")
        elif start + end > len(buffer):
            problem = f"its data ends at byte {start + end} but the file has {len(buffer)} bytes (truncated)"
    if problem is not None:
        raise RuntimeError(f"chainrule.load: tensor {key!r} in {name!r} is garbled: {problem}")
    array = np.frombuffer(buffer, dtype=dt, count=expected // dt.itemsize, offset=start + begin)
    return array.reshape(entry["shape"]).astype(dt.newbyteorder("="), copy=False)


def _rebuild(spec, arrays: dict, name: str, to_tensor):
    if not isinstance(spec, dict) or len(spec) == 0:
        raise RuntimeError(f"chainrule.load: the structure stored in {name!r} is garbled")
    if "tensor" in spec or "ndarray" in spec:
        key = spec.get("tensor", spec.get("ndarray"))
        if key not in arrays:
            raise RuntimeError(f"chainrule.load: {name!r} is missing tensor {key!r} named in its structure")
        return to_tensor(arrays[key]) if "tensor" in spec else arrays[key]
    if "value" in spec:
        return spec["value"]
    if "dict" in spec:
        out = OrderedDict() if spec.get("ordered") else {}
        for key, value in spec["dict"]:
            out[key] = _rebuild(value, arrays, name, to_tensor)
        return out
    if "list" in spec:
        return [_rebuild(v, arrays, name, to_tensor) for v in spec["list"]]
    if "tuple" in spec:
        return tuple(_rebuild(v, arrays, name, to_tensor) for v in spec["tuple"])
    if "dtype" in spec:
        from . import _dtype

        return _dtype.to_dtype(spec["dtype"])
    raise RuntimeError(f"chainrule.load: the structure stored in {name!r} has an unknown entry {spec!r}")


def _placer(map_location):
    """A function that puts a loaded array on the device ``map_location`` asks for."""
    if callable(map_location) and not isinstance(map_location, (str, dict)):
        return lambda t: map_location(t, "cpu")
    if isinstance(map_location, dict):
        map_location = map_location.get("cpu", "cpu")
    if map_location is None or str(map_location) == "cpu":
        return lambda t: t
    return lambda t: t.to(map_location)


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = None, mmap=None,
         **pickle_load_args):
    """Load what ``save`` wrote (or any safetensors file: then a flat dict of tensors).

    ``map_location`` ("cpu", a device, a dict or a function) places the tensors; ``weights_only``
    is accepted for torch compatibility: loading never runs code, whatever its value. Raises
    RuntimeError naming the file and the key for truncated, garbled or foreign files.
    """
    if isinstance(f, (str, os.PathLike)) and not os.path.exists(f):
        raise FileNotFoundError(f"[Errno 2] No such file or directory: '{os.fspath(f)}'")
    buffer, name = _read_bytes(f if not isinstance(f, bytes) else io.BytesIO(f))
    header, metadata, start = _parse(buffer, name)
    arrays = {key: _tensor_at(buffer, start, key, entry, name) for key, entry in header.items()}
    place = _placer(map_location)
    to_tensor = lambda a: place(Tensor._make(a))
    if _FORMAT_KEY not in metadata:  # a safetensors file from another tool
        return {key: to_tensor(a) for key, a in arrays.items()}
    try:
        stored = json.loads(metadata[_FORMAT_KEY])
        structure = stored["structure"]
    except (TypeError, KeyError, json.JSONDecodeError):
        raise RuntimeError(f"chainrule.load: the structure stored in {name!r} is garbled "
                           "(metadata is not valid JSON)") from None
    return _rebuild(structure, arrays, name, to_tensor)
