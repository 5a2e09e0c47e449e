"""The safetensors format behind ``chainrule.save`` / ``chainrule.load``, read as untrusted input.

A file is an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape
and byte range, then the raw little-endian bytes. A nested object (a state dict, an optimizer's
state_dict with int keys, ``{"model": ..., "epoch": 3}``) is flattened: each tensor is stored under
its dotted path ("state.0.exp_avg") and the structure with its plain leaves goes as JSON into the
header's ``__metadata__``.

Reading validates everything before it allocates anything beyond the file's own bytes (the rules
of the safetensors project): the header's size and nesting, a dtype whitelist, non-negative shapes
whose byte count is exactly their byte range, byte ranges that are sorted, non-overlapping and
cover the data exactly, metadata of strings, and a structure of known node types in which every
tensor is used once. Tensors are views of the file's buffer, so loading costs the file's size.
Every problem raises ``RuntimeError`` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import struct
from collections import OrderedDict

import numpy as np

from . import _dtype
from .tensor import Tensor

FORMAT_KEY = "chainrule"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit
MAX_NESTING = 64  # of the stored structure: a state dict nests 4-6 deep
MAX_DIMS = 64
# safetensors dtype codes; the data is little-endian
CODES = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
         np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8", np.dtype(np.int16): "I16",
         np.dtype(np.int32): "I32", np.dtype(np.int64): "I64", np.dtype(np.bool_): "BOOL",
         np.dtype(np.uint16): "U16", np.dtype(np.uint32): "U32", np.dtype(np.uint64): "U64"}
CODES[np.dtype(np.complex64)] = "C64"  # safetensors has no complex128 code
DTYPES = {code: dt.newbyteorder("<") for dt, code in CODES.items()}
# bfloat16 (ml_dtypes' NumPy dtype, loaded on first use) is written as its uint16 bits; read back as
# bfloat16, or widened to float32 without ml_dtypes (_dtype.bfloat16_from_bits)
BFLOAT16_BITS = np.dtype([("bfloat16 bits", "<u2")])
DTYPES["BF16"] = BFLOAT16_BITS
# the float8 types (ml_dtypes', loaded on first use) are written as their bytes and read back as
# the float8 dtype of their code
FLOAT8_CODES = {"float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2", "float8_e8m0fnu": "F8_E8M0"}
FLOAT8_BYTES = {code: np.dtype([(f"{name} bytes", "u1")]) for name, code in FLOAT8_CODES.items()}
DTYPES.update(FLOAT8_BYTES)


class Unsupported(TypeError):
    """An object safetensors can't hold: ``save`` then falls back to the pickle format."""


# ---------------------------------------------------------------------------------------- save
def _flatten(obj, path: str, tensors: dict, where: str):
    """The JSON description of ``obj``; tensors go to ``tensors`` under a unique dotted name."""
    if isinstance(obj, (Tensor, np.ndarray)):
        array = obj._data if isinstance(obj, Tensor) else obj
        if hasattr(array, "get"):  # a CuPy array: bring it to the host
            array = array.get()
        if array.dtype not in CODES and array.dtype.name != "bfloat16" and array.dtype.name not in FLOAT8_CODES:
            # complex128 has no safetensors code: the whole object goes to torch's zip format instead
            error = Unsupported if array.dtype.kind == "c" else TypeError
            raise error(f"chainrule.save: can't store an array of dtype {array.dtype} at {where}")
        name, n = path or "tensor", 1
        while name in tensors:
            n += 1
            name = f"{path or 'tensor'}#{n}"
        tensors[name] = array
        if not isinstance(obj, Tensor):
            return {"ndarray": name}
        where_from = str(obj.device)
        # a CPU tensor's entry stays as before; a device tensor's records where it was, as torch's
        # checkpoints do, so load() can put it back there or map_location can move it
        return {"tensor": name} if where_from == "cpu" else {"tensor": name, "device": where_from}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return {"value": obj.item()}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise Unsupported(f"chainrule.save: dict keys must be str or int, got {type(key).__name__} "
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
    raise Unsupported(f"chainrule.save: can't save an object of type {type(obj).__name__} at {where}: "
                      "supported are tensors, NumPy arrays, dicts, lists, tuples, str, int, float, bool, None")


def header(obj) -> tuple[bytes, list]:
    """The length-prefixed header of ``obj`` and the arrays to write after it, in order."""
    tensors: dict = {}
    structure = _flatten(obj, "", tensors, "the top level")
    entries, arrays, offset = {}, [], 0
    for name, array in tensors.items():
        # safetensors wants C order; a transposed or sliced view is copied here (and only here)
        # (np.ascontiguousarray would turn a 0-d array into 1-d)
        if array.dtype.name in FLOAT8_CODES:  # one byte each: no byte order, written as bytes
            code, array = FLOAT8_CODES[array.dtype.name], np.array(array, order="C").view(np.uint8)
            entries[name] = {"dtype": code, "shape": list(array.shape),
                             "data_offsets": [offset, offset + array.nbytes]}
            offset += array.nbytes
            arrays.append(array)
            continue
        array = np.asarray(array).astype(array.dtype.newbyteorder("<"), order="C", copy=False)
        code = "BF16" if array.dtype.name == "bfloat16" else CODES[array.dtype.newbyteorder("=")]
        if code == "BF16":  # its bits: a buffer of a NumPy user dtype can't be written directly
            array = array.view(np.uint16)
        entries[name] = {"dtype": code, "shape": list(array.shape),
                         "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    entries["__metadata__"] = {FORMAT_KEY: json.dumps({"version": FORMAT_VERSION, "structure": structure}),
                               "format": "pt"}
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data start to 8 bytes
    return struct.pack("<Q", len(text)) + text, arrays


def write(obj, out, encoded: tuple[bytes, list] | None = None) -> None:
    """Write ``obj`` to the binary stream ``out`` as a safetensors file (``Unsupported`` if it can't
    hold it); ``encoded`` is its ``header(obj)`` when the caller already has it."""
    head, arrays = header(obj) if encoded is None else encoded
    out.write(head)
    for array in arrays:
        out.write(memoryview(array.reshape(-1)).cast("B") if array.size else b"")


# ---------------------------------------------------------------------------------------- load
def _no_duplicate_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _json(text: bytes | str, what: str, fail):
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except RecursionError:
        raise fail(f"{what} nests too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise fail(f"{what} is not valid JSON ({' '.join(str(exc).split())[:200]})") from None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_entry(key: str, entry, fail) -> tuple[np.dtype, list, int, int]:
    """(dtype, shape, begin, end) of one header entry, every field checked."""
    def bad(problem):
        return fail(f"tensor {key!r} is garbled: {problem}")

    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise bad("its header entry is not an object with exactly dtype, shape and data_offsets")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        raise bad(f"unknown dtype {code!r} (chainrule reads {', '.join(DTYPES)})")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_is_int(s) and s >= 0 for s in shape):
        raise bad(f"bad shape {str(shape)[:100]} (expected at most {MAX_DIMS} non-negative integers)")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        raise bad(f"bad data_offsets {str(offsets)[:100]} (expected two integers)")
    dtype, (begin, end) = DTYPES[code], offsets
    count = 1
    for size in shape:  # Python ints: no wrap-around, however large the claim
        count *= size
    expected = count * dtype.itemsize
    if not 0 <= begin <= end or end - begin != expected:
        raise bad(f"its byte range [{begin}, {end}) does not hold shape {shape} of {code} ({expected} bytes)")
    return dtype, shape, begin, end


def parse(buffer, name: str) -> tuple[dict, dict]:
    """The arrays (views of ``buffer``) and the string metadata of a safetensors file."""
    def fail(problem):
        return RuntimeError(f"chainrule.load: {name!r} is not a valid checkpoint: {' '.join(problem.split())}")

    if len(buffer) < 8:
        raise RuntimeError(f"chainrule.load: {name!r} is not a checkpoint: {len(buffer)} bytes is too short "
                           "for a safetensors header")
    (size,) = struct.unpack("<Q", bytes(buffer[:8]))
    if size > len(buffer) - 8:
        raise fail(f"the header claims {size} bytes but the file has {len(buffer) - 8} after the length "
                   "(truncated, or not a safetensors file)")
    if size > MAX_HEADER_BYTES:
        raise fail(f"its header of {size} bytes is over the {MAX_HEADER_BYTES}-byte limit")
    text = bytes(buffer[8:8 + size])
    if not text.startswith(b"{"):
        raise fail("its header is not a JSON object")
    entries = _json(text, "its header", fail)
    if not isinstance(entries, dict):
        raise fail("its header is not a JSON object")
    metadata = entries.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise fail("its __metadata__ is not an object of strings")

    start, data_size = 8 + size, len(buffer) - 8 - size
    checked = sorted(((key, _check_entry(key, entry, fail)) for key, entry in entries.items()),
                     key=lambda item: (item[1][2], item[1][3]))
    # the byte ranges, in order, must tile the data exactly: no gaps, no overlaps, no extra bytes
    position = 0
    for key, (_, _, begin, end) in checked:
        if begin != position:
            problem = "overlaps the one before it" if begin < position else f"leaves a gap at byte {position}"
            raise fail(f"tensor {key!r} is garbled: its byte range [{begin}, {end}) {problem}")
        if end > data_size:
            raise fail(f"tensor {key!r} is garbled: its data ends at byte {start + end} but the file has "
                       f"{len(buffer)} bytes (truncated)")
        position = end
    if position != data_size:
        raise fail(f"{data_size - position} bytes after the last tensor belong to no tensor")
    arrays = {}
    for key, (dtype, shape, begin, end) in checked:
        if dtype is BFLOAT16_BITS:
            bits = np.frombuffer(buffer, dtype="<u2", count=(end - begin) // 2, offset=start + begin)
            arrays[key] = _dtype.bfloat16_from_bits(bits.astype(np.uint16, copy=False).reshape(shape))
            continue
        if dtype.names and dtype.names[0].startswith("float8_"):
            target = _dtype.to_dtype(dtype.names[0][:-len(" bytes")]).np
            arrays[key] = np.frombuffer(buffer, dtype=np.uint8, count=end - begin, offset=start + begin).reshape(
                shape).view(target)
            continue
        array = np.frombuffer(buffer, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=start + begin)
        arrays[key] = array.reshape(shape).astype(dtype.newbyteorder("="), copy=False)
    return arrays, metadata


def rebuild(arrays: dict, metadata: dict, name: str, to_tensor):
    """The object ``save`` flattened: its stored structure with the arrays put back, each used
    once; a safetensors file from another tool is a flat dict of tensors."""
    def fail(problem):
        return RuntimeError(f"chainrule.load: {name!r} is not a valid checkpoint: {' '.join(problem.split())}")

    if FORMAT_KEY not in metadata:
        return {key: to_tensor(array, "cpu") for key, array in arrays.items()}
    stored = _json(metadata[FORMAT_KEY], "the structure stored in its metadata", fail)
    if not isinstance(stored, dict) or "structure" not in stored:
        raise fail("the structure stored in its metadata is garbled")
    used: set = set()
    return _rebuild(stored["structure"], arrays, used, to_tensor, fail, 0)


_KINDS = {"tensor", "ndarray", "value", "list", "tuple", "dtype", "dict"}


def _rebuild(spec, arrays: dict, used: set, to_tensor, fail, depth: int):
    if depth > MAX_NESTING:
        raise fail(f"the stored structure nests more than {MAX_NESTING} deep")
    if not isinstance(spec, dict) or not (
            (len(spec) == 1 and next(iter(spec)) in _KINDS) or set(spec) in ({"dict", "ordered"},
                                                                              {"tensor", "device"})):
        raise fail(f"the stored structure has an unknown entry {str(spec)[:100]}")
    kind, value = next(iter(spec.items())) if "dict" not in spec else ("dict", spec["dict"])
    location = spec.get("device", "cpu")
    if not _is_location(location):
        raise fail(f"the stored structure names an unknown device {str(location)[:100]!r}")
    ordered = spec.get("ordered", False)
    if kind in ("tensor", "ndarray"):
        if not isinstance(value, str) or value not in arrays:
            raise fail(f"it is missing tensor {str(value)[:100]!r} named in its structure")
        if value in used:
            raise fail(f"its structure uses tensor {value!r} twice")
        used.add(value)
        return to_tensor(arrays[value], location) if kind == "tensor" else arrays[value]
    if kind == "value":
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise fail(f"the stored structure has a value of type {type(value).__name__}")
        return value
    if kind == "dtype":
        from . import _dtype

        if not isinstance(value, str) or value not in _dtype._BY_NAME:
            raise fail(f"the stored structure names an unknown dtype {str(value)[:100]!r}")
        return _dtype._BY_NAME[value]
    if not isinstance(value, list):
        raise fail(f"the stored structure has a {kind} that is not a list")
    if kind in ("list", "tuple"):
        items = [_rebuild(v, arrays, used, to_tensor, fail, depth + 1) for v in value]
        return items if kind == "list" else tuple(items)
    if not isinstance(ordered, bool):
        raise fail("the stored structure has a dict whose 'ordered' flag is not true/false")
    out = OrderedDict() if ordered else {}
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))
                and not isinstance(item[0], bool)):
            raise fail(f"the stored structure has a dict item that is not a [str or int key, value] pair: "
                       f"{str(item)[:100]}")
        out[item[0]] = _rebuild(item[1], arrays, used, to_tensor, fail, depth + 1)
    return out


def _is_location(location) -> bool:
    """'cpu', 'cuda' or 'cuda:N': a device a tensor can have been saved from."""
    if not isinstance(location, str):
        return False
    kind, colon, index = location.partition(":")
    return location == "cpu" or (kind == "cuda" and (not colon or (index.isdigit() and index.isascii())))
