"""PyTorch's checkpoint formats, read without PyTorch and written so that PyTorch reads them.

``torch.save`` writes a zip archive: ``<name>/data.pkl`` is a pickle of the object in which every
tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and every
storage a persistent id ``('storage', torch.FloatStorage, key, location, numel)`` whose bytes are
the stored (uncompressed, 64-byte aligned) member ``<name>/data/<key>``; uint16/32/64 tensors use
``_rebuild_tensor_v3`` over an untyped (byte) storage. The legacy format (torch < 1.6) is five
pickles in a row, then the storages' bytes. ``write`` and ``write_legacy`` produce exactly these,
naming torch's globals, never chainrule's, and keeping views of one array as one storage.

Reading with ``weights_only=True`` (the default, as in torch) never imports or calls anything
outside a fixed allowlist: the pickle runs on a pure-Python unpickler whose GLOBAL lookup, REDUCE,
NEWOBJ and BUILD opcodes accept only tensor and parameter rebuilds, storage types, dtypes,
``OrderedDict``, ``set``/``frozenset``, ``torch.Size``/``torch.device`` and what the user allowed
with ``add_safe_globals`` — the idea behind torch's ``weights_only=True``. Any other global raises
``pickle.UnpicklingError("Weights only load failed ...")`` before anything is called. Storages are
views of the file's buffer (checked against their CRC), and every tensor's size, stride and offset
are checked to lie inside its storage, so tensors cost no memory of their own.

``weights_only=False`` is the user's explicit opt-in to ordinary unpickling, which runs whatever
code the file names: only for files from a trusted source. A whole Module saved by chainrule needs
it (its class is chainrule's).
"""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
import sys
import types
import warnings
import zipfile
import zlib
from collections import Counter, OrderedDict

import numpy as np

from . import _dtype, _layout, _torch_function
from ._backend import contiguous_strides, strided_view
from .ops import quantized as _quantized
from .tensor import Tensor

# the byte order of a checkpoint that records none (torch.serialization.set_default_load_endianness)
default_load_byteorder = "little"
MAX_DIMS = 64
MAX_MEMBERS = 1 << 16
MIN_FORMAT_VERSION, MAX_FORMAT_VERSION = 1, 10  # the archive format versions torch 2.13's reader takes
_LEGACY_MAGIC = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch's legacy magic number as a pickle's LONG1


def is_zip(buffer) -> bool:
    return bytes(buffer[:4]) == b"PK\x03\x04"


def is_legacy_torch(buffer) -> bool:
    """A file of torch's legacy format: a pickle (PROTO, a FRAME from protocol 4) of its magic number."""
    head = bytes(buffer[:32])
    return head[:1] == b"\x80" and _LEGACY_MAGIC in head[2:]


# ------------------------------------------------------------------------ the allowlisted globals
class StorageType:
    """What ``torch.FloatStorage`` and friends stand for: the element type of a storage."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype) -> None:
        self.name, self.dtype = name, np.dtype(dtype)

    def __reduce__(self):
        return self.name  # pickled as the global of this module with that name

    def __repr__(self) -> str:
        return f"torch.{self.name}"


FloatStorage = StorageType("FloatStorage", np.float32)
DoubleStorage = StorageType("DoubleStorage", np.float64)
HalfStorage = StorageType("HalfStorage", np.float16)
# bfloat16 storages hold its uint16 bits: loaded as bfloat16 (ml_dtypes), or widened exactly to
# float32 without it (_dtype.bfloat16_from_bits)
BFloat16Storage = StorageType("BFloat16Storage", np.uint16)
ByteStorage = StorageType("ByteStorage", np.uint8)
CharStorage = StorageType("CharStorage", np.int8)
ShortStorage = StorageType("ShortStorage", np.int16)
IntStorage = StorageType("IntStorage", np.int32)
LongStorage = StorageType("LongStorage", np.int64)
BoolStorage = StorageType("BoolStorage", np.bool_)
UInt16Storage = StorageType("UInt16Storage", np.uint16)
UInt32Storage = StorageType("UInt32Storage", np.uint32)
UInt64Storage = StorageType("UInt64Storage", np.uint64)
# torch.storage.UntypedStorage: raw bytes, typed by _rebuild_tensor_v3 (torch's format for uint16/32/64)
UntypedStorage = StorageType("UntypedStorage", np.uint8)
_STORAGE_TYPES = {s.name: s for s in (FloatStorage, DoubleStorage, HalfStorage, BFloat16Storage, ByteStorage,
                                      CharStorage, ShortStorage, IntStorage, LongStorage, BoolStorage,
                                      UInt16Storage, UInt32Storage, UInt64Storage)}
ComplexFloatStorage = StorageType("ComplexFloatStorage", np.complex64)
ComplexDoubleStorage = StorageType("ComplexDoubleStorage", np.complex128)
_STORAGE_TYPES.update({s.name: s for s in (ComplexFloatStorage, ComplexDoubleStorage)})
_BY_DTYPE = {s.dtype: s for s in _STORAGE_TYPES.values() if s is not BFloat16Storage}
# a quantized tensor's integers, in torch's storage classes for them (never chosen by NumPy dtype)
QInt8Storage = StorageType("QInt8Storage", np.int8)
QUInt8Storage = StorageType("QUInt8Storage", np.uint8)
QInt32Storage = StorageType("QInt32Storage", np.int32)
_QUANTIZED_STORAGES = {"qint8": QInt8Storage, "quint8": QUInt8Storage, "qint32": QInt32Storage}
_STORAGE_TYPES.update({s.name: s for s in _QUANTIZED_STORAGES.values()})
_STORAGE_TYPES[UntypedStorage.name] = UntypedStorage


class Storage:
    """A storage's elements: a 1-d view of the file's bytes, and the device it was saved from
    ('cpu', 'cuda:0'; a loaded tensor's arrays are listed in ``views`` for map_location to place).
    Pickles can't set its state."""

    __slots__ = ("array", "bfloat16", "location", "views")

    def __init__(self, array: np.ndarray, bfloat16: bool = False, location: str = "cpu") -> None:
        self.array, self.bfloat16, self.location, self.views = array, bfloat16, location, []

    def __setstate__(self, state):
        raise pickle.UnpicklingError("a storage has no state to set")


def _invalid(problem: str) -> pickle.UnpicklingError:
    return _Malformed(problem)


class _Malformed(pickle.UnpicklingError):
    """A structurally wrong checkpoint (reported as RuntimeError), not a refused global."""


_CONJ_METADATA = {"conj": True}


def _empty(value) -> bool:
    """None or an empty dict: hooks and attributes that weights-only loading would have to run."""
    return value is None or (type(value) in (dict, OrderedDict) and not value)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """torch._utils._rebuild_tensor_v2: a tensor viewing ``storage``, every number checked."""
    if not isinstance(storage, Storage):
        raise _invalid(f"a tensor's storage is a {type(storage).__name__}")
    ints = (size, stride) if isinstance(size, tuple) and isinstance(stride, tuple) else None
    if (ints is None or len(size) != len(stride) or len(size) > MAX_DIMS
            or not all(type(n) is int and n >= 0 for n in (*size, *stride, storage_offset))):
        raise _invalid(f"a tensor has a bad size {str(size)[:80]}, stride {str(stride)[:80]} or offset "
                       f"{str(storage_offset)[:40]}")
    # torch's one tensor metadata, its conj bit ({'conj': True}: the storage holds the unconjugated values)
    conj = metadata == _CONJ_METADATA and storage.array.dtype.kind == "c"
    if type(requires_grad) is not bool or not _empty(backward_hooks) or not (conj or _empty(metadata)):
        raise _invalid("a tensor has backward hooks or metadata, which weights-only loading does not run")
    count = len(storage.array)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if 0 not in size and (last >= count or storage_offset >= count):
        raise _invalid(f"a tensor of size {size} and stride {stride} at offset {storage_offset} reaches past "
                       f"its storage of {count} elements")
    base = storage.array
    itemsize = base.dtype.itemsize
    if 0 in size and storage_offset > count:
        array = np.empty(size, dtype=base.dtype)
    elif 0 in size:  # an empty view still views its storage at its offset, as torch's (NumPy's empty
        # slice would point at the storage's start)
        array = np.ndarray(size, base.dtype, buffer=base, offset=storage_offset * itemsize,
                           strides=tuple(s * itemsize for s in stride))
    else:
        array = strided_view(base[storage_offset:], size, tuple(s * itemsize for s in stride))
    if storage.bfloat16:
        array = _dtype.bfloat16_from_bits(array)
    if conj:  # chainrule's conj view holds its values (a copy, no longer sharing the storage)
        array = np.conj(array)
    t = Tensor._make(array)
    t._conj_bit = conj
    if 0 in size:  # the strides written, zeros too, which an empty array cannot hold (tensor.py stride())
        t._numpy_empty_strides = (size, stride)
    storage.views.append(array)
    if requires_grad:
        if array.dtype.kind not in "fVc":
            raise _invalid(f"a tensor of dtype {array.dtype} requires grad")
        t._requires_grad = True
    return t


def _rebuild_parameter(data, requires_grad, backward_hooks=None):
    from .nn.parameter import Parameter

    if not isinstance(data, Tensor) or type(requires_grad) is not bool or not _empty(backward_hooks):
        raise _invalid("a parameter is not a tensor with a requires_grad flag and no hooks")
    return Parameter(data, requires_grad)


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    if not _empty(state):
        raise _invalid("a parameter carries Python attributes, which weights-only loading does not set")
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _encode(text, encoding="latin1"):
    # protocol 2 pickles bytes as _codecs.encode(str, 'latin1'); no other codec is let through
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _invalid("_codecs.encode is only allowed with a str and 'latin1'")
    return text.encode("latin1")


def _size(values=()):
    if not isinstance(values, (tuple, list)) or not all(type(v) is int for v in values):
        raise _invalid("torch.Size holds something other than ints")
    from .tensor import Size

    return Size(values)


def _device(kind, index=None):
    if not isinstance(kind, str) or len(kind) > 32 or (index is not None and type(index) is not int):
        raise _invalid("torch.device is not a device name")
    from ._backend import device

    try:
        return device(kind, index)
    except (RuntimeError, ValueError, TypeError):
        # a device chainrule doesn't have ('mps', 'xla'): its name, as the file gave it
        return kind if index is None else f"{kind}:{index}"


def _dtypes() -> dict:
    from . import _dtype

    return {f"torch.{d.name}": d for d in _dtype._ALL}


def _rebuild_qtensor(storage, storage_offset, size, stride, quantizer_params, requires_grad, backward_hooks):
    """torch._utils._rebuild_qtensor: a quantized tensor over ``storage``'s integers with the scheme,
    scale(s), zero point(s) (and axis) of ``quantizer_params``."""
    integers = _rebuild_tensor_v2(storage, storage_offset, size, stride, False, backward_hooks)
    dtypes = {"int8": _dtype.qint8, "uint8": _dtype.quint8, "int32": _dtype.qint32}
    dtype = dtypes.get(integers._data.dtype.name)
    if dtype is None or not isinstance(quantizer_params, tuple) or not quantizer_params:
        raise _invalid("a quantized tensor has a bad storage or quantizer")
    scheme, *values = quantizer_params
    if scheme is _quantized.per_tensor_affine and len(values) == 2:
        scale, zero_point = values
        return _quantized.make_quantized(integers._data, dtype, scheme, float(scale), int(zero_point))
    if scheme is _quantized.per_channel_affine and len(values) == 3 and all(isinstance(v, Tensor) for v in values[:2]):
        scales, zero_points, axis = values
        return _quantized.make_quantized(integers._data, dtype, scheme, np.asarray(scales._data, np.float64),
                                         np.asarray(zero_points._data, np.int64), int(axis))
    raise _invalid(f"a quantized tensor's scheme {str(scheme)[:40]} is not one chainrule reads")


def _qschemes() -> dict:
    return {f"torch.{name}": getattr(_quantized, name) for name in ("per_tensor_affine", "per_channel_affine",
                                                                    "per_tensor_symmetric", "per_channel_symmetric")}


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    """torch._utils._rebuild_tensor_v3, what torch writes for the dtypes without a typed storage
    (uint16/32/64): an untyped (byte) storage viewed as ``dtype``, then as _rebuild_tensor_v2."""
    if not isinstance(storage, Storage) or storage.array.dtype != np.uint8 or not isinstance(dtype, _dtype.dtype):
        raise _invalid("a tensor's untyped storage or dtype is malformed")
    element = np.dtype(np.uint16) if dtype is _dtype.bfloat16 else dtype.np
    if len(storage.array) % element.itemsize:
        raise _invalid(f"an untyped storage of {len(storage.array)} bytes does not hold whole {dtype.name} elements")
    # a one-byte element has no byte order (and ml_dtypes' float8 types refuse to be given one)
    stored = element if element.itemsize == 1 else element.newbyteorder("<")
    typed = Storage(storage.array.view(stored).astype(element, copy=False),
                    bfloat16=dtype is _dtype.bfloat16, location=storage.location)
    typed.views = storage.views  # map_location places the arrays of the file's storages
    return _rebuild_tensor_v2(typed, storage_offset, size, stride, requires_grad, backward_hooks, metadata)


def _set_module_state(module, state) -> None:
    """Set a pickled chainrule Module's state (what BUILD does), refusing tensors that are not
    chainrule's: torch.load(weights_only=False) of a chainrule.save(model) file gets here with torch's
    tensors, and a chainrule module holding them would fail later with a puzzling error."""
    attributes = state[0] if isinstance(state, tuple) and len(state) == 2 else state
    for slot in ("_parameters", "_buffers"):
        values = attributes.get(slot) if isinstance(attributes, dict) else None
        for value in (values.values() if isinstance(values, dict) else ()):
            if value is not None and not isinstance(value, Tensor):
                kind = type(module)
                raise TypeError(f"{kind.__module__}.{kind.__qualname__} is a chainrule module, but its {slot[1:]} "
                                f"were rebuilt as {type(value).__module__}.{type(value).__qualname__}: a file of "
                                "chainrule.save(model) loads only in chainrule (chainrule.load(f, weights_only=False)). "
                                "To move a model to PyTorch, save model.state_dict() and load it with the PyTorch "
                                "model's load_state_dict")
    module.__setstate__(state)  # as BUILD would


def _get_layout(name):
    """torch.serialization._get_layout: a layout by its name, how torch writes the layout of a sparse tensor."""
    found = getattr(_layout, name[len("torch."):], None) if isinstance(name, str) and name.startswith("torch.") else None
    if not isinstance(found, _layout.layout):
        raise KeyError(name)
    return found


def _rebuild_sparse_tensor(layout, data):
    """torch._utils._rebuild_sparse_tensor: a sparse COO tensor from its indices, values, size and coalesced
    flag (a file of torch < 1.13 has no flag: coalesced is then worked out, as torch's None asks); a CSR or
    CSC matrix from its compressed indices, plain indices, values and size."""
    from .sparse import check_sparse_tensor_invariants, sparse_compressed_tensor, sparse_coo_tensor

    if layout in (_layout.sparse_csr, _layout.sparse_csc):
        if not isinstance(data, tuple) or len(data) != 4 or not all(isinstance(part, Tensor) for part in data[:3]):
            raise _invalid("a sparse tensor's parts are malformed")
        compressed, plain, values, size = data
        # (torch checks the invariants after the load, where check_sparse_tensor_invariants is enabled; chainrule's
        # construction checks them at once, the ones its dense storage needs always)
        return sparse_compressed_tensor(compressed, plain, values, tuple(size), layout=layout,
                                        check_invariants=check_sparse_tensor_invariants.is_enabled())
    if layout is not _layout.sparse_coo:
        raise NotImplementedError(f"rebuilding sparse tensor for layout {layout}")
    if not isinstance(data, tuple) or len(data) not in (3, 4):
        raise _invalid("a sparse tensor's parts are malformed")
    indices, values, size = data[:3]
    coalesced = data[3] if len(data) == 4 else None
    if not (isinstance(indices, Tensor) and isinstance(values, Tensor)) or coalesced not in (None, True, False):
        raise _invalid("a sparse tensor's parts are malformed")
    return sparse_coo_tensor(indices, values, tuple(size), is_coalesced=coalesced, check_invariants=False)


def _rebuild_from_type_v2(func, new_type, args, state):
    """torch._tensor._rebuild_from_type_v2: a tensor of a user's subclass, rebuilt by ``func(*args)``
    (a plain tensor's rebuild, or ``_rebuild_wrapper_subclass``) and given its pickled state."""
    made = func(*args)
    if not (isinstance(new_type, type) and issubclass(new_type, Tensor)):
        raise _invalid("a tensor subclass to rebuild is not a Tensor class")
    if type(made) is not new_type:
        made = made.as_subclass(new_type)
    if getattr(new_type, "__setstate__", None) is not getattr(Tensor, "__setstate__", None):
        made.__setstate__(state)
        return made
    dict_state, slots_state = state if isinstance(state, tuple) and len(state) == 2 else (state, None)
    for attributes in (dict_state, slots_state):
        for name, value in (attributes or {}).items():
            setattr(made, name, value)
    return made


def _rebuild_wrapper_subclass(cls, dtype, size, stride, storage_offset, layout, device, requires_grad):
    """torch._utils._rebuild_wrapper_subclass: an empty wrapper of ``cls`` (its state, set next, holds its values)."""
    if not (isinstance(cls, type) and issubclass(cls, Tensor)) or not isinstance(dtype, _dtype.dtype):
        raise _invalid("a wrapper subclass's class or dtype is malformed")
    return Tensor._make_wrapper_subclass(cls, size, strides=stride, storage_offset=storage_offset, dtype=dtype,
                                         layout=layout, device=device, requires_grad=requires_grad)


_CALLABLES = {
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "torch._utils._rebuild_wrapper_subclass": _rebuild_wrapper_subclass,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_qtensor": _rebuild_qtensor,
    "torch._utils._rebuild_sparse_tensor": _rebuild_sparse_tensor,
    "torch.serialization._get_layout": _get_layout,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
    "collections.OrderedDict": OrderedDict,
    "torch.Size": _size,
    "torch.device": _device,
    "_codecs.encode": _encode,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.complex": complex,
    # what chainrule.save itself writes for tensors and parameters
    f"{__name__}._rebuild_tensor_v2": _rebuild_tensor_v2,
    f"{__name__}._rebuild_parameter": _rebuild_parameter,
}
_CLASSES = (OrderedDict, set, frozenset, complex)


# torch.save pickles with protocol 2, which names globals as Python 2 did (``__builtin__.slice``);
# the weights-only unpickler reads them under their Python 3 names before any allowlist, as torch's
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg", "Queue": "queue", "repr": "reprlib",
                "_abcoll": "collections.abc", "UserDict": "collections", "UserList": "collections",
                "UserString": "collections", "whichdb": "dbm", "StringIO": "io", "cStringIO": "io"}
_PY2_NAMES = {("__builtin__", "xrange"): ("builtins", "range"), ("__builtin__", "reduce"): ("functools", "reduce"),
              ("__builtin__", "intern"): ("sys", "intern"), ("__builtin__", "unichr"): ("builtins", "chr"),
              ("__builtin__", "unicode"): ("builtins", "str"), ("__builtin__", "long"): ("builtins", "int"),
              ("__builtin__", "basestring"): ("builtins", "str"), ("itertools", "izip"): ("builtins", "zip"),
              ("itertools", "imap"): ("builtins", "map"), ("itertools", "ifilter"): ("builtins", "filter"),
              ("itertools", "ifilterfalse"): ("itertools", "filterfalse"),
              ("itertools", "izip_longest"): ("itertools", "zip_longest"),
              ("UserDict", "IterableUserDict"): ("collections", "UserDict"),
              ("UserDict", "UserDict"): ("collections", "UserDict"), ("UserList", "UserList"): ("collections", "UserList"),
              ("UserString", "UserString"): ("collections", "UserString"),
              ("exceptions", "StandardError"): ("builtins", "Exception")}


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """A pickled global's (module, name) as Python 3 spells it."""
    if (module, name) in _PY2_NAMES:
        return _PY2_NAMES[module, name]
    return _PY2_MODULES.get(module, module), name


def _allowed_globals() -> dict:
    allowed = dict(_CALLABLES)
    allowed.update({f"torch.{name}": s for name, s in _STORAGE_TYPES.items()})
    allowed["torch.storage.UntypedStorage"] = UntypedStorage
    allowed.update({f"{__name__}.{name}": s for name, s in _STORAGE_TYPES.items()})
    allowed.update(_dtypes())
    allowed.update(_qschemes())
    allowed["torch.strided"] = _layout.strided
    return allowed


# torch.serialization's words around every weights-only refusal
_UNSAFE_MESSAGE = (
    "In PyTorch 2.6, we changed the default value of the `weights_only` argument in `torch.load` "
    "from `False` to `True`. Re-running `torch.load` with `weights_only` set to `False` will likely succeed, "
    "but it can result in arbitrary code execution. Do it only if you got the file from a trusted source.")
_DOCS_MESSAGE = ("\n\nCheck the documentation of torch.load to learn more about types accepted by default with "
                 "weights_only https://pytorch.org/docs/stable/generated/torch.load.html.")


def refusal(detail: str) -> pickle.UnpicklingError:
    """torch's wording when weights_only=True meets something it won't unpickle: an unsupported
    global gets the two options (allowlist it, or weights_only=False), anything else the request to
    file an issue, as torch.load's ``_get_wo_message``."""
    if " was not an allowed global by default." in detail:
        message = ("Weights only load failed. This file can still be loaded, to do so you have two options, "
                   "\033[1mdo those steps only if you trust the source of the checkpoint\033[0m. "
                   f"\n\t(1) {_UNSAFE_MESSAGE}\n\t(2) Alternatively, to load with `weights_only=True` please check "
                   "the recommended steps in the following error message.\n\tWeightsUnpickler error: " + detail)
    else:
        message = (f"Weights only load failed. {_UNSAFE_MESSAGE}\nPlease file an issue with the following so that "
                   "we can make `weights_only=True` compatible with your use case: WeightsUnpickler error: "
                   "\n\n" + detail)
    return pickle.UnpicklingError(message + _DOCS_MESSAGE)


def _global_path(module: str, name: str) -> str:
    """A global's name as torch's refusal prints it: a builtin by its bare name (``list``)."""
    return name if module == "builtins" else f"{module}.{name}"


# ------------------------------------------------------------------------ reading
class _View(io.RawIOBase):
    """A seekable read-only file over ``buffer[start:end]`` that copies only what is read."""

    def __init__(self, buffer, start: int = 0, end: int | None = None) -> None:
        self.buffer, self.start = buffer, start
        self.end = len(buffer) if end is None else end
        self.position = start

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (self.start, self.position, self.end)[whence]
        self.position = max(self.start, base + offset)
        return self.position - self.start

    def tell(self) -> int:
        return self.position - self.start

    def read(self, n: int = -1) -> bytes:
        end = self.end if n is None or n < 0 else min(self.end, self.position + n)
        data = bytes(self.buffer[self.position:end]) if end > self.position else b""
        self.position = max(self.position, end)
        return data

    def readline(self, limit: int = -1) -> bytes:
        end = self.end if limit is None or limit < 0 else min(self.end, self.position + limit)
        newline = self.buffer.find(b"\n", self.position, end)
        return self.read((newline + 1 if newline >= 0 else end) - self.position)


class _Archive:
    """The members of a zip checkpoint as views of its buffer (stored members only)."""

    def __init__(self, buffer, name: str) -> None:
        self.buffer, self.name = buffer, name
        self.zip = zipfile.ZipFile(_View(buffer))
        infos = self.zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _invalid(f"it has {len(infos)} members (at most {MAX_MEMBERS})")
        # torch's reader (miniz) checks every member's record lies within the file, and a stored one's two sizes
        # agree, when it opens it
        for info in infos:
            if info.header_offset + 30 + info.compress_size > len(buffer):
                raise _invalid(f"invalid header or archive is corrupted: member {info.filename[:200]!r} lies past the "
                               "end of the file")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise _invalid(f"invalid header or archive is corrupted: stored member {info.filename[:200]!r} has "
                               f"two sizes ({info.compress_size} and {info.file_size} bytes)")
        self.members = {info.filename: info for info in infos}
        if len(self.members) != len(infos):
            # two readers could pick different ones of the same name: refuse the ambiguity
            twice = next(name for name, count in Counter(info.filename for info in infos).items() if count > 1)
            raise _invalid(f"it has two members named {twice[:200]!r}")
        pickles = [n for n in self.members if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise _invalid("it is a zip file without exactly one <name>/data.pkl: not a PyTorch checkpoint")
        self.prefix = pickles[0][:-len("data.pkl")]
        # torch's reader refuses a member outside the archive's one folder (a name garbled in the directory)
        stray = next((n for n in self.members if not n.startswith(self.prefix)), None)
        if stray is not None:
            raise _invalid(f"file in archive is not in a subdirectory {self.prefix}: {stray[:200]!r}")
        self._check_version()

    def _check_version(self) -> None:
        """torch's reader's check of the format version record (.data/version, else version)."""
        name = ".data/version" if self.prefix + ".data/version" in self.members else "version"
        if self.prefix + name not in self.members:
            raise _invalid('Expected hasRecord("version") to be true, but got false.')
        text = bytes(self.member(name))
        try:
            version = int(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise _invalid(f"Couldn't parse the version {text[:40]!r} as Long Long.") from None
        if not MIN_FORMAT_VERSION <= version <= MAX_FORMAT_VERSION:
            raise _invalid(f"Attempted to read a PyTorch file with version {version}, but the supported versions for "
                           f"reading are {MIN_FORMAT_VERSION} to {MAX_FORMAT_VERSION}")

    def member(self, relative: str) -> memoryview:
        begin, end = self.member_range(relative)
        return memoryview(self.buffer)[begin:end]

    def member_range(self, relative: str) -> tuple[int, int]:
        info = self.members.get(self.prefix + relative)
        if info is None:
            raise _invalid(f"it has no member {self.prefix + relative!r}")
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise _invalid(f"member {info.filename!r} is compressed; torch.save stores members uncompressed")
        at = info.header_offset
        local = bytes(self.buffer[at:at + 30])
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise _invalid(f"member {info.filename!r} has no local header")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        local_name = bytes(self.buffer[at + 30:at + 30 + name_length])
        if local_name not in (info.filename.encode("utf-8"), info.filename.encode("cp437", "replace")):
            raise _invalid(f"member {info.filename!r} has another name in its local header ({local_name[:100]!r})")
        begin = at + 30 + name_length + extra_length
        end = begin + info.file_size
        if end > len(self.buffer):
            raise _invalid(f"member {info.filename!r} ends past the end of the file (truncated)")
        if zlib.crc32(memoryview(self.buffer)[begin:end]) != info.CRC:
            raise _invalid(f"member {info.filename!r} fails its CRC check (corrupted)")
        return begin, end


class _WeightsOnlyUnpickler(pickle._Unpickler):
    """A pure-Python unpickler whose every route to a callable goes through the allowlist."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, storage, extra_globals: dict) -> None:
        super().__init__(file, encoding="utf-8")
        self.storage = storage
        self.allowed = _allowed_globals()
        self.extra = extra_globals
        self.callables = {id(v) for v in (*_CALLABLES.values(), *extra_globals.values())}
        self.classes = {id(c) for c in (*_CLASSES, *(v for v in extra_globals.values() if isinstance(v, type)))}
        self.classes_allowed = {v for v in extra_globals.values() if isinstance(v, type)}

    def find_class(self, module, name):
        module, name = _python3_name(module, name)
        key = f"{module}.{name}"
        if key in self.allowed:
            return self.allowed[key]
        if key in self.extra:
            return self.extra[key]
        if key == f"{__name__}._set_module_state" and self.classes_allowed:
            return _set_module_state  # applied only to an allowed class's instance (load_reduce)
        path = _global_path(module, name)[:200]
        raise refusal(f"Unsupported global: GLOBAL {path} was not an allowed global by default. "
                      f"Please use `torch.serialization.add_safe_globals([{path}])` or the "
                      f"`torch.serialization.safe_globals([{path}])` context manager to allowlist "
                      "this global if you trust this class/function.")

    def persistent_load(self, pid):
        return self.storage(pid)

    def _check_callable(self, func, opcode: str) -> None:
        if id(func) in self.callables:
            return
        if opcode != "REDUCE":
            raise refusal(f"{opcode} of {type(func).__name__} {str(func)[:80]} is not allowed")
        detail = f"Trying to call reduce for unrecognized function {str(func)[:200]}"
        if hasattr(func, "__self__"):
            detail += f" which belongs to {str(func.__self__)[:200]}"
        raise refusal(detail)

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if func is _set_module_state and isinstance(args, tuple) and len(args) == 2 and type(args[0]) in self.classes_allowed:
            self.stack[-1] = func(*args)  # a module of a class the user allowed (add_safe_globals), as BUILD
            return
        self._check_callable(func, "REDUCE")
        if not isinstance(args, tuple):
            raise _invalid("REDUCE arguments are not a tuple")
        self.stack[-1] = func(*args)

    def _new(self, cls, args, kwargs=None):
        if id(cls) not in self.classes:
            raise refusal("Can only create new object for nn.Parameter or classes allowlisted via `add_safe_globals` "
                          f"but got {str(cls)[:200]}")
        if not isinstance(args, tuple) or not isinstance(kwargs or {}, dict):
            raise _invalid("NEWOBJ arguments are not a tuple")
        return cls.__new__(cls, *args, **(kwargs or {}))

    def load_newobj(self):
        args = self.stack.pop()
        self.stack[-1] = self._new(self.stack[-1], args)

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        self.stack[-1] = self._new(self.stack[-1], args, kwargs)

    def _instantiate(self, klass, args):
        self._check_callable(klass, "INST/OBJ")
        self.append(klass(*args))

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        # torch sets attributes only on allowlisted types (a state dict's _metadata on OrderedDict)
        allowed = type(inst) in self.extra.values()
        setstate = getattr(inst, "__setstate__", None)
        if allowed and callable(setstate):
            # a class the user allowed reads its own state, whatever its form, as pickle hands it over
            # (numpy's dtype a tuple: torch's recipe for a NumPy scalar allows np.dtypes.Float64DType)
            setstate(state)
            return
        if type(inst) is OrderedDict or (allowed and hasattr(inst, "__dict__")):
            if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
                state = state[0]
            if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
                raise _invalid(f"BUILD state for {type(inst).__name__} is not a dict of attributes")
            inst.__dict__.update(state)
            return
        raise refusal("Can only build Tensor, Parameter, OrderedDict or types allowlisted via `add_safe_globals`, "
                      f"but got {type(inst)}")

    # torch fills only plain containers: a dict subclass the user allowed (defaultdict) is refused at
    # its first item, as its items would go through its own __setitem__
    def _check_set_item_target(self, opcode: str) -> None:
        if type(self.stack[-1]) not in (dict, OrderedDict, Counter):
            raise refusal(f"Can only {opcode} for dict, collections.OrderedDict, collections.Counter, "
                          f"but got {type(self.stack[-1])}")

    def load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self._check_set_item_target("SETITEM")
        self.stack[-1][key] = value

    def load_setitems(self):
        items = self.pop_mark()
        self._check_set_item_target("SETITEMS")
        target = self.stack[-1]
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_append(self):
        value = self.stack.pop()
        if type(self.stack[-1]) is not list:
            raise refusal(f"Can only append to lists, but got {type(self.stack[-1])}")
        self.stack[-1].append(value)

    def load_appends(self):
        items = self.pop_mark()
        if type(self.stack[-1]) is not list:
            raise refusal(f"Can only extend lists, but got {type(self.stack[-1])}")
        self.stack[-1].extend(items)

    def load(self):
        try:
            return super().load()
        finally:
            if self.proto not in (0, 2):  # torch's warning at a PROTO opcode of another protocol, on the user's line
                warnings.warn(f"Detected pickle protocol {self.proto} in the checkpoint, which was not the default "
                              "pickle protocol used by `torch.load` (2). The weights_only Unpickler might not support "
                              "all instructions implemented by this protocol, please file an issue for adding support "
                              "if you encounter this.", UserWarning, stacklevel=_torch_function.user_stacklevel())

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.APPEND[0]] = load_append
    dispatch[pickle.APPENDS[0]] = load_appends


# the opcodes torch's weights-only unpickler reads (protocol 2's binary ones, no FRAME, MEMOIZE, BINBYTES, ...):
# any other is refused with torch's words, so a protocol 4 file loads with weights_only=True on neither library.
# POP too, which torch refuses: chainrule's pickle of a whole module (its state_setter) needs it, for a load
# whose classes the user allowed (add_safe_globals)
_TORCH_WEIGHTS_ONLY_OPCODES = frozenset(op[0] for op in (pickle.POP,
    pickle.GLOBAL, pickle.NEWOBJ, pickle.REDUCE, pickle.BUILD, pickle.APPEND, pickle.APPENDS, pickle.SETITEM,
    pickle.SETITEMS, pickle.MARK, pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3, pickle.NONE,
    pickle.NEWFALSE, pickle.NEWTRUE, pickle.EMPTY_TUPLE, pickle.EMPTY_LIST, pickle.EMPTY_DICT, pickle.EMPTY_SET,
    pickle.BININT, pickle.BININT1, pickle.BININT2, pickle.BINFLOAT, pickle.BINUNICODE, pickle.SHORT_BINSTRING,
    pickle.BINPERSID, pickle.BINGET, pickle.LONG_BINGET, pickle.BINPUT, pickle.LONG_BINPUT, pickle.LONG1,
    pickle.PROTO, pickle.STOP))


def _unsupported_opcode(code: int):
    def refuse(unpickler):
        raise refusal(f"Unsupported operand {code}")

    return refuse


_WeightsOnlyUnpickler.dispatch.update({code: _unsupported_opcode(code) for code in range(256)
                                        if code not in _TORCH_WEIGHTS_ONLY_OPCODES})


def _answered_by_chainrule(module: str) -> bool:
    """Whether ``module`` is already imported while ``import torch`` answers chainrule (tests/programs/_alias):
    a tensor subclass defined there (torch's test helpers, run on chainrule) is chainrule's."""
    torch_module = sys.modules.get("torch")
    return (module in sys.modules and torch_module is not None
            and getattr(torch_module, "__name__", "") == __name__.split(".")[0])


class _TrustedUnpickler(pickle.Unpickler):
    """weights_only=False: ordinary unpickling (runs code), with torch's tensor globals mapped to
    chainrule so a torch file loads without torch installed."""

    def __init__(self, file, storage) -> None:
        super().__init__(file, encoding="utf-8")
        self.storage = storage
        self.allowed = _allowed_globals()

    def find_class(self, module, name):
        key = f"{module}.{name}"
        if key in self.allowed and (module == "torch" or module.startswith("torch.")):
            return self.allowed[key]
        if module.startswith("torch.") and _answered_by_chainrule(module):
            return super().find_class(module, name)  # (a class of a module loaded while chainrule answers torch)
        if module == "torch" or module.startswith("torch."):
            # importing torch here would break chainrule's promise never to import it
            raise _invalid(f"it pickles the PyTorch object {key}, which chainrule can't rebuild; save the "
                           "model's state_dict() in PyTorch and load that instead")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        return self.storage(pid)


def _failure(name: str):
    """``fail(problem)``: the RuntimeError of a zip checkpoint chainrule.load cannot read, in one line whatever
    the file put into the problem's text."""
    return lambda problem: RuntimeError(f"chainrule.load: {name!r} is not a valid PyTorch checkpoint: "
                                        f"{' '.join(problem.split())}")


def check_archive(buffer, name: str) -> None:
    """The checks torch's reader makes when it opens a zip checkpoint, with :func:`load`'s errors."""
    with _load_errors(_failure(name), file_code_ran=False):
        _Archive(buffer, name)


def load(buffer, name: str, weights_only: bool, extra_globals: dict, place):
    """The object in a PyTorch-format zip checkpoint; RuntimeError for a malformed file,
    ``pickle.UnpicklingError`` when weights-only loading refuses a global."""
    fail = _failure(name)
    # a corrupt archive or pickle surfaces as whatever zipfile or an opcode trips over
    with _load_errors(fail, file_code_ran=not weights_only, always=(zipfile.BadZipFile, EOFError)):
        archive = _Archive(buffer, name)
        byteorder = (bytes(archive.member("byteorder")) if archive.prefix + "byteorder" in archive.members
                     else default_load_byteorder.encode())
        if byteorder not in (b"little", b"big"):
            raise _invalid(f"its byteorder is {byteorder[:20]!r}")
        storages: dict = {}

        def storage(pid):
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                    and isinstance(pid[1], StorageType) and isinstance(pid[2], str) and pid[2].isalnum()
                    and isinstance(pid[3], str) and type(pid[4]) is int and pid[4] >= 0):
                raise _invalid(f"a persistent id is not a storage: {str(pid)[:100]}")
            kind, key, numel = pid[1], pid[2], pid[4]
            if key in storages:
                if storages[key][0] is not kind:
                    raise _invalid(f"storage {key!r} is used with two element types")
                return storages[key][1]
            data = archive.member(f"data/{key}")
            if len(data) != numel * kind.dtype.itemsize:
                raise _invalid(f"storage {key!r} should hold {numel} elements of {kind!r} but has "
                               f"{len(data)} bytes")
            array = np.frombuffer(data, dtype=kind.dtype.newbyteorder("<" if byteorder == b"little" else ">"))
            if not array.dtype.isnative:
                array = array.astype(array.dtype.newbyteorder("="))
            storages[key] = (kind, Storage(array, bfloat16=kind is BFloat16Storage, location=pid[3]))
            return storages[key][1]

        data_pkl = _View(buffer, *archive.member_range("data.pkl"))
        if weights_only:
            result = _WeightsOnlyUnpickler(data_pkl, storage, extra_globals).load()
        else:
            result = _TrustedUnpickler(data_pkl, storage).load()
    locations = {id(array): s.location for _, s in storages.values() for array in s.views}
    return _place_all(result, lambda t: place(t, locations.get(id(t._data), "cpu")))


class _TruncatedCheckpointError(EOFError, RuntimeError):
    """A checkpoint whose pickle ends early: an EOFError as torch's, and a RuntimeError as every other file
    chainrule.load cannot read."""


@contextlib.contextmanager
def _load_errors(fail, file_code_ran: bool, always: tuple = ()):
    """What reading a checkpoint raises, as ``fail``'s one-line RuntimeError; shared by the zip and
    legacy loaders.

    torch's weights-only refusal and MemoryError pass unchanged. With ``file_code_ran`` (a
    weights_only=False load ran the file's own classes, which may raise anything) any other
    exception passes too, except the ``always`` types a corrupt container raises.
    """
    try:
        yield
    except _Malformed as exc:
        raise fail(str(exc)) from None
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("Weights only load failed"):
            raise
        raise fail(f"its pickle is garbled ({' '.join(str(exc).split())[:200]})") from None
    except RecursionError:
        raise fail("its pickle nests too deeply") from None
    except EOFError as exc:  # a pickle cut short: torch's unpickler raises EOFError, which callers catch by class
        raise _TruncatedCheckpointError(str(fail(f"it ends inside its pickle (truncated) {exc}".strip()))) from None
    except MemoryError:
        raise
    except Exception as exc:
        if file_code_ran and not isinstance(exc, always):
            raise
        raise fail(f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None


def _place_all(obj, place, depth: int = 0, placed: dict | None = None):
    """``obj`` with every tensor moved by ``place`` (map_location); containers rebuilt as they are,
    and a pickled module's parameters, buffers and submodules too (torch restores every storage to
    its device, so ``torch.load`` of a whole CUDA model gives a CUDA model). A tensor met twice (tied
    weights) is moved once: ``placed`` maps its id to the moved tensor."""
    if place is None:
        return obj
    placed = {} if placed is None else placed
    if isinstance(obj, Tensor):
        if id(obj) not in placed:
            placed[id(obj)] = (obj, place(obj))  # (obj kept alive, so its id is not reused meanwhile)
        return placed[id(obj)][1]
    if depth > 1000:
        return obj
    if isinstance(obj, dict):
        for key in list(obj):
            obj[key] = _place_all(obj[key], place, depth + 1, placed)
        return obj
    if isinstance(obj, list):
        obj[:] = [_place_all(v, place, depth + 1, placed) for v in obj]
        return obj
    if isinstance(obj, tuple):
        return type(obj)(_place_all(v, place, depth + 1, placed) for v in obj) if type(obj) is tuple else obj
    tables = [getattr(obj, name, None) for name in ("_parameters", "_buffers", "_modules")]
    if all(isinstance(table, dict) for table in tables):  # an nn.Module (this layer does not import nn)
        for table in tables:
            _place_all(table, place, depth + 1, placed)
    return obj


# ------------------------------------------------------------------------ writing
class _TorchGlobal:
    """A rebuild function that pickles as torch's global ``module.name``: the name torch.load
    resolves (and allows with weights_only=True) and this module's reader maps back, so a file
    chainrule writes names torch's functions, never chainrule's."""

    __slots__ = ("module", "name", "function")

    def __init__(self, module: str, name: str, function) -> None:
        self.module, self.name, self.function = module, name, function

    def __call__(self, *args):
        return self.function(*args)


_WRITE_TENSOR_V2 = _TorchGlobal("torch._utils", "_rebuild_tensor_v2", _rebuild_tensor_v2)
_WRITE_TENSOR_V3 = _TorchGlobal("torch._utils", "_rebuild_tensor_v3", _rebuild_tensor_v3)
_WRITE_SPARSE = _TorchGlobal("torch._utils", "_rebuild_sparse_tensor", _rebuild_sparse_tensor)
_WRITE_GET_LAYOUT = _TorchGlobal("torch.serialization", "_get_layout", _get_layout)
_WRITE_QTENSOR = _TorchGlobal("torch._utils", "_rebuild_qtensor", _rebuild_qtensor)
_WRITE_PARAMETER = _TorchGlobal("torch._utils", "_rebuild_parameter", _rebuild_parameter)
_WRITE_FROM_TYPE = _TorchGlobal("torch._tensor", "_rebuild_from_type_v2", _rebuild_from_type_v2)
_WRITE_WRAPPER = _TorchGlobal("torch._utils", "_rebuild_wrapper_subclass", _rebuild_wrapper_subclass)
_WRITE_SIZE = _TorchGlobal("torch", "Size", _size)
_WRITE_DEVICE = _TorchGlobal("torch", "device", _device)
# the dtypes torch has no typed storage class for: an untyped (byte) storage and _rebuild_tensor_v3
_UNTYPED_DTYPES = {np.dtype(np.uint16), np.dtype(np.uint32), np.dtype(np.uint64)}
ALIGNMENT = 64  # torch aligns every record's bytes to 64 (its .storage_alignment), so mmap=True can view them


_PLAIN = frozenset({str, int, float, bool, type(None), bytes, tuple, list, dict, OrderedDict})


def _torch_global(obj) -> str | None:
    """``"module\\nname"`` of the torch global that ``obj`` is written as, or None."""
    kind = type(obj)
    if kind is _TorchGlobal:
        return f"{obj.module}\n{obj.name}"
    if kind is StorageType:
        return "torch.storage\nUntypedStorage" if obj is UntypedStorage else f"torch\n{obj.name}"
    if isinstance(obj, _dtype.dtype):
        return f"torch\n{obj.name}"
    if obj is _layout.strided:
        return "torch\nstrided"
    if kind is _quantized.qscheme:
        return f"torch\n{obj.name}"
    return None


class _StorageRecord:
    """One storage of the file: its persistent id's fields and the 1-d array of its elements."""

    __slots__ = ("kind", "key", "location", "numel", "array")

    def __init__(self, kind: StorageType, key: str, location: str, array: np.ndarray) -> None:
        self.kind, self.key, self.location, self.array = kind, key, location, array
        self.numel = array.nbytes if kind is UntypedStorage else array.size


def _root(array: np.ndarray) -> np.ndarray:
    """The array that owns ``array``'s memory, following views (and as_strided's wrapper, whose
    ``base`` holds the array it views)."""
    while True:
        base = array.base
        if type(base) is not np.ndarray:
            base = getattr(base, "base", None) if hasattr(base, "__array_interface__") else None
            if type(base) is not np.ndarray:
                return array
        array = base


class _Pickler(pickle._Pickler):
    """torch.save's pickle: a tensor is ``torch._utils._rebuild_tensor_v2`` over a persistent
    storage id, and views of one array share one storage, as torch writes them; chainrule's
    dtypes, Size and device are written as torch's globals. The pure-Python pickler, because
    only its ``save_global`` can name a module (torch) without importing it."""

    def __init__(self, file, protocol: int, legacy: bool = False) -> None:
        from ._backend import device
        from .nn.modules.module import Module
        from .tensor import Size

        super().__init__(file, protocol=protocol)
        self.storages: dict = {}  # identity of the memory -> _StorageRecord, in order of first use
        self.copies: list = []  # arrays copied for the file: kept alive so their ids stay unique
        self.legacy = legacy
        self.device, self.module, self.size = device, Module, Size

    def persistent_id(self, obj):
        if type(obj) is _StorageRecord:
            if self.legacy:  # the legacy format's ids end with a view's metadata, always None
                return ("storage", obj.kind, obj.key, obj.location, obj.numel, None)
            return ("storage", obj.kind, obj.key, obj.location, obj.numel)
        return None

    # pickle._Pickler's table sends functions to its own save_global, past this class's
    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[types.FunctionType] = lambda self, obj: self.save_global(obj)

    def save_global(self, obj, name=None):
        torch_name = _torch_global(obj)
        if torch_name is None:
            try:
                return super().save_global(obj, name)
            except pickle.PicklingError:
                # an object pickle cannot name (a local class or function, a lambda): torch.save's C
                # pickler refuses it with its own class and text ("AttributeError: Can't pickle local
                # object 'outer.<locals>.Foo'"), which users search for; raise that one
                pickle.dumps(obj, protocol=self.proto)
                raise
        self.write(pickle.GLOBAL + torch_name.encode("ascii") + b"\n")
        self.memoize(obj)

    def reducer_override(self, obj):
        kind = type(obj)
        if kind in _PLAIN:  # called for every object: the common ones leave first
            return NotImplemented
        if (kind is _TorchGlobal or kind is StorageType or isinstance(obj, _dtype.dtype) or obj is _layout.strided                or kind is _quantized.qscheme):
            return "written by save_global"
        if isinstance(obj, Tensor):
            return self.reduce_tensor(obj)
        if isinstance(obj, self.module):
            reduced = obj.__reduce_ex__(self.proto)
            if isinstance(reduced, tuple) and len(reduced) >= 3 and reduced[2] is not None:
                # its state goes through _set_module_state (pickle's state_setter), which refuses torch's
                # tensors: a torch unpickler that imports chainrule gets a clear error, not a broken module
                return (*reduced[:5], *(None,) * (5 - len(reduced)), _set_module_state)
        if obj is _layout.sparse_coo or obj is _layout.sparse_csr or obj is _layout.sparse_csc:
            return (_WRITE_GET_LAYOUT, (f"torch.{obj._name}",))
        if kind is self.size:
            return (_WRITE_SIZE, (tuple(obj),))
        if kind is self.device:
            return (_WRITE_DEVICE, (obj.type,) if obj.index is None else (obj.type, obj.index))
        return NotImplemented

    def reduce_tensor(self, t: Tensor):
        from .nn.parameter import Parameter

        if t.layout is _layout.sparse_coo:
            # as torch's Tensor.__reduce_ex__: its parts, each a strided tensor of the file (requires_grad not kept)
            return (_WRITE_SPARSE, (_layout.sparse_coo, (t._indices().detach(), t._values().detach(),
                                                          self.size(t.shape), t.is_coalesced())))
        if t.layout is _layout.sparse_csr or t.layout is _layout.sparse_csc:
            # as torch's: its compressed indices, plain indices and values (these require grad when it does, so
            # the loaded matrix is rebuilt over values that require grad, as torch's is) and its size
            compressed, plain, values = t._parts
            values = Tensor._make(values).requires_grad_(bool(t.requires_grad))
            return (_WRITE_SPARSE, (t.layout, (Tensor._make(compressed), Tensor._make(plain), values,
                                               self.size(t.shape))))
        if isinstance(t, Parameter) and type(t).__module__.startswith("chainrule"):
            # its data pickles through this method again, as a tensor
            return (_WRITE_PARAMETER, (t.detach(), bool(t.requires_grad), OrderedDict()))
        if t.is_quantized:
            return self.reduce_quantized(t)
        if type(t) is not Tensor and not type(t).__module__.startswith("chainrule"):
            return self.reduce_subclass(t)
        if t._conj_bit:
            # torch writes a conj view's unconjugated storage and {'conj': True}: chainrule's holds the
            # conjugated values, so their conjugate goes into a storage of its own
            record, offset, stride = self.storage_of(Tensor._make(np.conj(t._data)))
            return (_WRITE_TENSOR_V2, (record, offset, tuple(t._data.shape), stride, bool(t.requires_grad),
                                       OrderedDict(), dict(_CONJ_METADATA)))
        record, offset, stride = self.storage_of(t)
        args = (record, offset, tuple(t._data.shape), stride, bool(t.requires_grad), OrderedDict())
        if record.kind is UntypedStorage:
            return (_WRITE_TENSOR_V3, (*args, t.dtype))
        return (_WRITE_TENSOR_V2, args)

    def reduce_quantized(self, t: Tensor):
        """A quantized tensor as torch writes it: its integers in a QInt8/QUInt8/QInt32 storage and
        ``(scheme, scale, zero_point)`` (per channel: scales, zero points as tensors, and the axis)."""
        quantizer = t._quantizer
        record, offset, stride = self.storage_of(Tensor._make(t._data), _QUANTIZED_STORAGES[quantizer.dtype.name])
        if quantizer.axis is None:
            params = (quantizer.scheme, float(quantizer.scale), int(quantizer.zero_point))
        else:
            params = (quantizer.scheme, Tensor._make(quantizer.scale), Tensor._make(quantizer.zero_point),
                      int(quantizer.axis))
        return (_WRITE_QTENSOR, (record, offset, tuple(t._data.shape), stride, params, False, OrderedDict()))

    def reduce_subclass(self, t: Tensor):
        """A user's subclass as torch writes it: ``_rebuild_from_type_v2`` of its class, the rebuild of its
        values (a wrapper's: an empty wrapper; its values are in its state) and its state: the
        ``__dict__`` (chainrule's own per-tensor fields left out) and its own ``__slots__``."""
        from ._subclass_copy import own_slots

        attributes = {name: value for name, value in t.__dict__.items()
                      if not (name.startswith("_") and hasattr(Tensor, name))}
        slots = {name: getattr(t, name) for name in own_slots(type(t)) if hasattr(t, name)}
        state = (attributes, slots) if slots else attributes
        if t._wrapper_strides is not None:
            rebuild = (_WRITE_WRAPPER, (type(t), t.dtype, self.size(t.shape), tuple(t.stride()), t.storage_offset(),
                                        _layout.strided, t.device, bool(t.requires_grad)))
        else:
            rebuild = self.reduce_tensor(t._plain_detach().requires_grad_(bool(t.requires_grad)))
        return (_WRITE_FROM_TYPE, (rebuild[0], type(t), rebuild[1], state))

    def storage_of(self, t: Tensor, kind: StorageType | None = None) -> tuple[_StorageRecord, int, tuple]:
        """The storage ``t`` views, its offset and strides in elements: the memory of the array
        that owns ``t``'s data when ``t`` is a plain view of it, else a contiguous copy. ``kind``
        overrides the storage class the array's dtype picks (a quantized tensor's integers)."""
        array = t._data
        on_host = type(array) is np.ndarray
        if not on_host:
            array = array.get()  # a device array: a host copy, a storage of its own
        dtype = array.dtype
        kind_override = kind
        if dtype.name == "bfloat16":
            kind = BFloat16Storage
        elif dtype.name.startswith("float8_"):  # torch writes float8 tensors as bytes with their dtype
            kind = UntypedStorage
        elif dtype.newbyteorder("=") in _UNTYPED_DTYPES:
            kind = UntypedStorage
        else:
            kind = _BY_DTYPE.get(dtype.newbyteorder("="))
        kind = kind_override if kind_override is not None else kind
        if kind is None:
            raise pickle.PicklingError(f"chainrule.save: can't store a tensor of dtype {dtype}")
        if kind is UntypedStorage and self.legacy:
            # torch 2.13 writes these but its own legacy loader fails on them ('UntypedStorage' has no dtype)
            raise pickle.PicklingError(f"chainrule.save: torch's legacy format (_use_new_zipfile_serialization=False) "
                                       f"can't hold a {t.dtype.name} tensor that torch reads back; save it in the "
                                       "default zip format")
        location = str(t.device)
        itemsize = dtype.itemsize
        # (an empty view keeps its storage too: torch saves x[:, 6:] of a (4, 6) with offset 6 and 24 elements)
        root = _root(array) if on_host and dtype.isnative else None
        # (a view of another dtype, view_as_real or view(dtype), views its root's memory as torch's storage does)
        if (root is not None and (root.flags.c_contiguous or root.flags.f_contiguous) and root.dtype.isnative
                and root.nbytes % itemsize == 0):
            begin = root.__array_interface__["data"][0]
            delta = array.__array_interface__["data"][0] - begin
            stride = tuple(s // itemsize for s in array.strides) if array.size else t.stride()
            last = delta // itemsize + sum((n - 1) * s for n, s in zip(array.shape, stride))
            if (delta >= 0 and delta % itemsize == 0 and all(s >= 0 and s % itemsize == 0 for s in array.strides)
                    and last < root.nbytes // itemsize):
                # (memory of no bytes is no storage torch compares: each empty root its own, per dtype)
                identity = (begin, root.nbytes, location) if root.nbytes else (begin, 0, location, dtype.str, kind.name)
                record = self.storages.get(identity)
                if record is None:
                    memory = root.ravel(order="K")
                    record = _StorageRecord(kind, str(len(self.storages)), location,
                                            memory if root.dtype == dtype else memory.view(dtype))
                    self.storages[identity] = record
                elif record.array.dtype != dtype or record.kind is not kind:
                    raise RuntimeError("Cannot save multiple tensors or storages that view the same data as different "
                                       "types")  # torch's words: one storage, one element type in the file
                return record, delta // itemsize, stride
        native = dtype if dtype.itemsize == 1 else dtype.newbyteorder("=")
        copy = np.array(array, dtype=native, order="C", copy=True).reshape(-1)
        self.copies.append(copy)
        record = _StorageRecord(kind, str(len(self.storages)), location, copy)
        self.storages[("copy", id(copy))] = record
        return record, 0, contiguous_strides(array.shape) if array.size else t.stride()  # (an empty one's as torch's)


def _record_bytes(array: np.ndarray) -> memoryview:
    if array.dtype.name == "bfloat16":  # a NumPy user dtype has no buffer format: write its bits
        array = array.view(np.uint16)
    return memoryview(array.view(np.uint8)) if array.size else memoryview(b"")


def write(obj, out, archive_name: str = "archive", protocol: int = 2, skip_data: bool = False,
          byteorder_record: bool = True) -> None:
    """Write ``obj`` to the binary stream ``out`` as torch.save does: a zip archive of stored records
    ``<archive_name>/data.pkl``, ``byteorder`` (last when ``byteorder_record`` is False, where torch's
    writer adds it on closing), one ``data/<key>`` per storage (each aligned to 64 bytes), ``version``;
    torch.load reads it, with weights_only=True when ``obj`` holds only tensors, containers and plain
    values. ``skip_data``: the storage records hold zeros of their size."""
    pickled = io.BytesIO()
    pickler = _Pickler(pickled, protocol)
    pickler.dump(obj)
    records = [("data.pkl", pickled.getbuffer()), (".format_version", b"1"),
               (".storage_alignment", str(ALIGNMENT).encode())]
    byteorder = [("byteorder", sys.byteorder.encode())]
    records += byteorder if byteorder_record else []
    records += [(f"data/{r.key}", bytes(r.array.nbytes) if skip_data else _record_bytes(r.array))
                for r in pickler.storages.values()]
    records.append(("version", b"3\n"))
    # without it torch's writer still adds the record when it closes the archive, after version
    records += [] if byteorder_record else byteorder
    if sum(len(data) + 200 + len(name) for name, data in records) >= _ZIP32_LIMIT:
        # zip64 records: Python's zipfile lays them out (torch reads both, the bytes differ from torch's)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, data in records:
                write_aligned(archive, f"{archive_name}/{name}", data)
        return
    writer = _StreamWriter(out)
    for name, data in records:
        writer.write_record(f"{archive_name}/{name}", data)
    identity = serialization_id([name for name, _ in records], writer.crcs)
    writer.write_record(f"{archive_name}/.data/serialization_id", identity.encode())
    writer.finish()


_ZIP32_LIMIT = 0xFFFFFFFF
_MASK64 = (1 << 64) - 1
# bucket counts of libstdc++'s unordered_set as it grows (it rehashes when an insert passes the count)
_BUCKET_COUNTS = (13, 29, 59, 127, 257, 541, 1109, 2357, 5087, 10273, 20753, 42043, 85229, 172933, 351061,
                  712697, 1447153, 2938679)


class _StreamWriter:
    """Stored records laid out byte for byte as torch's PyTorchStreamWriter (miniz, zip64 end records
    always) writes them: a local header with zero sizes, the name, an "FB" extra field padding the data
    to 64 bytes, the data, a data descriptor; then the central directory and the zip64 and plain ends."""

    def __init__(self, out) -> None:
        self.out = out
        self.cursor = 0
        self.central: list[bytes] = []
        self.crcs: list[int] = []

    def _emit(self, data) -> None:
        self.out.write(data)
        self.cursor += len(data)

    def write_record(self, name: str, data) -> None:
        encoded = name.encode("utf-8")
        crc, size, offset = zlib.crc32(data), len(data), self.cursor
        padding = -(offset + 30 + len(encoded) + 4) % ALIGNMENT
        extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
        # version needed 0, flags 0x0808 (data descriptor, UTF-8 names), stored, zero date and time
        self._emit(struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, 0x0808, 0, 0, 0, 0, 0, 0, len(encoded), len(extra)))
        self._emit(encoded + extra)
        self._emit(data)
        self._emit(struct.pack("<IIII", 0x08074B50, crc, size, size))
        self.central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, 0x0808, 0, 0, 0, crc, size, size,
                                        len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
        self.crcs.append(crc)

    def finish(self) -> None:
        start = self.cursor
        for entry in self.central:
            self._emit(entry)
        size, count, zip64_end = self.cursor - start, len(self.central), self.cursor
        self._emit(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, count, count, size, start))
        self._emit(struct.pack("<IIQI", 0x07064B50, 0, zip64_end, 1))
        short_count = min(count, 0xFFFF)  # the zip64 end record holds the true count
        self._emit(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, short_count, short_count, size, start, 0))


def _std_hash(data: bytes) -> int:
    """libstdc++'s std::hash of a string (_Hash_bytes, 64-bit MurmurHash2 with seed 0xc70f6907)."""
    mul = 0xC6A4A7935BD1E995
    length = len(data)
    result = 0xC70F6907 ^ (length * mul & _MASK64)
    whole = length & ~7
    for start in range(0, whole, 8):
        word = int.from_bytes(data[start:start + 8], "little") * mul & _MASK64
        result = (result ^ ((word ^ word >> 47) * mul & _MASK64)) * mul & _MASK64
    if length & 7:
        result = (result ^ int.from_bytes(data[whole:], "little")) * mul & _MASK64
    result = (result ^ result >> 47) * mul & _MASK64
    return result ^ result >> 47


def _hash_combine(seed: int, value: int) -> int:
    return (seed ^ (value + 0x9E3779B9 + (seed << 6) + (seed >> 2))) & _MASK64


def _unordered_set_order(names: list[str]) -> list[str]:
    """The order in which libstdc++'s unordered_set, filled with ``names`` in turn, iterates them:
    a new bucket's node goes to the front of the list, a node of a filled bucket to the front of its
    bucket's run, and a rehash re-inserts the nodes in list order the same way."""
    hashes = {name: _std_hash(name.encode("utf-8")) for name in names}
    buckets, runs = 1, {}  # runs: bucket -> its names, newest last; dict order: oldest bucket first

    def insert(runs, name, buckets):
        runs.setdefault(hashes[name] % buckets, []).append(name)

    def in_order(runs):
        return [name for run in reversed(runs.values()) for name in reversed(run)]

    for count, name in enumerate(names, 1):
        if count > buckets or buckets == 1:
            buckets = _BUCKET_COUNTS[_BUCKET_COUNTS.index(buckets) + 1] if buckets > 1 else _BUCKET_COUNTS[0]
            rehashed: dict = {}
            for old in in_order(runs):
                insert(rehashed, old, buckets)
            runs = rehashed
        insert(runs, name, buckets)
    return in_order(runs)


def serialization_id(record_names: list[str], crcs: list[int]) -> str:
    """torch's ``.data/serialization_id``: 20 digits of the record names' hashes combined in the order
    its unordered_set holds them, 20 of the records' CRC-32s combined in writing order."""
    name_hash = 0
    for name in _unordered_set_order(record_names):
        name_hash = _hash_combine(name_hash, _std_hash(name.encode("utf-8")))
    crc_hash = 0
    for crc in crcs:
        crc_hash = _hash_combine(crc_hash, crc)
    return f"{name_hash:020d}{crc_hash:020d}"


def write_aligned(archive: zipfile.ZipFile, name: str, data, alignment: int = ALIGNMENT) -> None:
    """One stored member whose bytes start on a multiple of ``alignment`` in the file, as torch's
    writer places them (so mmap=True can view them)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    # pad the local header with an extra field (torch's "FB") so the data starts on the alignment;
    # zipfile adds a 20-byte zip64 field for records this large
    header = 30 + len(info.filename.encode("utf-8")) + (20 if len(data) * 1.05 > zipfile.ZIP64_LIMIT else 0)
    padding = -(archive.fp.tell() + header + 4) % alignment
    info.extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
    archive.writestr(info, data)
    info.extra = b""  # the central directory needs no padding


def dumps(obj) -> bytes:
    """``obj`` in torch's zip format, as bytes."""
    out = io.BytesIO()
    write(obj, out)
    return out.getvalue()


LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


def write_legacy(obj, out, protocol: int = 2) -> None:
    """torch.save(..., _use_new_zipfile_serialization=False): torch's pre-1.6 format, five pickles in a
    row (magic number, protocol version, system info, ``obj``, the storage keys) then each storage as
    a little-endian int64 element count and its little-endian bytes."""
    pickled = io.BytesIO()
    pickler = _Pickler(pickled, protocol, legacy=True)
    pickler.dump(obj)
    system = {"protocol_version": LEGACY_PROTOCOL_VERSION, "little_endian": sys.byteorder == "little",
              "type_sizes": {"short": 2, "int": 4, "long": 4}}
    for value in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, system):
        pickle.dump(value, out, protocol=protocol)
    out.write(pickled.getbuffer())
    records = sorted(pickler.storages.values(), key=lambda r: r.key)  # torch writes the keys sorted
    pickle.dump([r.key for r in records], out, protocol=protocol)
    for record in records:
        array = record.array if sys.byteorder == "little" else record.array.astype(record.array.dtype.newbyteorder("<"))
        out.write(struct.pack("<q", record.numel))
        out.write(_record_bytes(array))


class _Opaque:
    """What a dry-run unpickle builds in place of anything it would have to call: it accepts the
    container opcodes and stands for the result."""

    def append(self, item) -> None:
        pass

    def extend(self, items) -> None:
        pass

    def __setitem__(self, key, value) -> None:
        pass

    def add(self, item) -> None:
        pass


class _DryRun(pickle._Unpickler):
    """Reads a pickle without calling or importing anything, to learn its persistent ids (the
    legacy format's storages, whose bytes come after the pickle): a global is its name, and
    every call, object creation or state setting gives an opaque result."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, size: int) -> None:
        super().__init__(file, encoding="utf-8")
        self.size = size
        self.ids: list = []

    def find_class(self, module, name):
        return ("global", module, name)

    def persistent_load(self, pid):
        self.ids.append(pid)
        return _Opaque()

    def _opaque(self, count: int) -> None:
        del self.stack[len(self.stack) - count:]
        self.append(_Opaque())

    def load_reduce(self):
        self._opaque(2)

    def load_newobj(self):
        self._opaque(2)

    def load_newobj_ex(self):
        self._opaque(3)

    def load_build(self):
        self.stack.pop()

    def _instantiate(self, klass, args):
        self.append(_Opaque())

    def load_bytearray8(self):
        # pickle's own version allocates the claimed length before reading: found by the fuzzer
        (length,) = struct.unpack("<Q", self.read(8))
        if length > self.size:
            raise _invalid(f"BYTEARRAY8 claims {length} bytes in a pickle of {self.size}")
        data = bytearray(length)
        self.readinto(data)
        self.append(data)

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8


class _GlobalsRecorder(_DryRun):
    """A dry run that notes every global the pickle names, in order of first appearance."""

    def __init__(self, file, size: int) -> None:
        super().__init__(file, size)
        self.names: dict[str, None] = {}

    def find_class(self, module, name):
        module, name = _python3_name(module, name)
        self.names[f"{module}.{name}"] = None
        return super().find_class(module, name)


def globals_outside_allowlist(buffer, name: str, extra_globals: dict) -> list[str]:
    """The globals a zip checkpoint's pickle names that weights-only loading would refuse, read
    without importing or calling anything (torch.serialization.get_unsafe_globals_in_checkpoint)."""
    archive = _Archive(buffer, name)
    begin, end = archive.member_range("data.pkl")
    recorder = _GlobalsRecorder(_View(buffer, begin, end), end - begin)
    recorder.load()
    allowed = _allowed_globals()
    return [g for g in recorder.names if g not in allowed and g not in extra_globals]


def _legacy_storages(buffer, ids: list, keys, data_start: int, fail) -> dict:
    """key -> (StorageType, Storage viewing the file's bytes), every record's element count and the
    file's length checked against what the pickle's persistent ids say."""
    kinds: dict = {}
    for pid in ids:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], tuple)
                and len(pid[1]) == 3 and isinstance(pid[2], str) and isinstance(pid[3], str)
                and type(pid[4]) is int and pid[4] >= 0):
            raise fail(f"a persistent id is not a storage: {str(pid)[:100]}")
        kind = _STORAGE_TYPES.get(pid[1][2]) if pid[1][1] in ("torch", "torch.storage") else None
        if kind is None:
            raise fail(f"a storage has the unknown type {pid[1][1]}.{pid[1][2]}"[:200])
        if kinds.setdefault(pid[2], (kind, pid[4], pid[3])) != (kind, pid[4], pid[3]):
            raise fail(f"storage {pid[2]!r} is named with two types, sizes or devices")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) or sorted(set(keys)) != sorted(kinds):
        raise fail("its list of storage keys does not match the storages its pickle uses")
    storages, position = {}, data_start
    for key in keys:
        kind, numel, location = kinds[key]
        if position + 8 > len(buffer):
            raise fail(f"storage {key!r} is missing (truncated)")
        (count,) = struct.unpack("<q", bytes(buffer[position:position + 8]))
        if count != numel:
            raise fail(f"storage {key!r} holds {count} elements but its pickle says {numel}")
        end = position + 8 + numel * kind.dtype.itemsize
        if end > len(buffer):
            raise fail(f"storage {key!r} ends past the end of the file (truncated)")
        array = np.frombuffer(memoryview(buffer)[position + 8:end], dtype=kind.dtype.newbyteorder("<"))
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        storages[key] = (kind, Storage(array, bfloat16=kind is BFloat16Storage, location=location))
        position = end
    if position != len(buffer):
        raise fail(f"{len(buffer) - position} bytes after the last storage belong to no storage")
    return storages


def _legacy_layout(buffer, weights_only: bool) -> tuple[int, int, dict]:
    """Where the object's pickle starts and ends, and its storages: the header pickles read as
    weights-only (or dry-run, as torch reads them with the unpickler of the load, which for
    weights_only=False takes any protocol's opcodes), the object's pickle dry-run (nothing called or
    imported), the keys and the storages' bytes checked against each other and the file's length."""
    view = _View(buffer)

    def no_storage(pid):
        raise _invalid("its header pickles name a storage")

    def header():
        if weights_only:
            return _WeightsOnlyUnpickler(view, no_storage, {}).load()
        dry = _DryRun(view, len(buffer))
        value = dry.load()
        if dry.ids:
            raise _invalid("its header pickles name a storage")
        return value

    magic, version, system = header(), header(), header()
    if magic != LEGACY_MAGIC_NUMBER or version != LEGACY_PROTOCOL_VERSION or not isinstance(system, dict):
        raise _invalid(f"its header is not torch's (magic {str(magic)[:40]}, protocol {str(version)[:40]})")
    pickle_start = view.tell()
    dry = _DryRun(view, len(buffer))
    dry.load()
    pickle_end = view.tell()
    keys = header()
    return pickle_start, pickle_end, _legacy_storages(buffer, dry.ids, keys, view.tell(), _invalid)


def load_legacy(buffer, name: str, weights_only: bool, extra_globals: dict, place):
    """The object in a file of torch's legacy format (see :func:`write_legacy`); the errors of :func:`load`."""
    def fail(problem):
        return RuntimeError(f"chainrule.load: {name!r} is not a valid PyTorch checkpoint (legacy format): "
                            f"{' '.join(problem.split())}")

    with _load_errors(fail, file_code_ran=False):  # the dry run runs nothing of the file's
        pickle_start, pickle_end, storages = _legacy_layout(buffer, weights_only)

    def storage(pid):
        # the same bytes as the dry run: the same ids, checked there
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[2] in storages):
            raise _invalid(f"a persistent id is not a storage: {str(pid)[:100]}")
        return storages[pid[2]][1]

    data_pkl = _View(buffer, pickle_start, pickle_end)
    with _load_errors(fail, file_code_ran=not weights_only):
        if weights_only:
            result = _WeightsOnlyUnpickler(data_pkl, storage, extra_globals).load()
        else:
            result = _TrustedUnpickler(data_pkl, storage).load()
    locations = {id(array): s.location for _, s in storages.values() for array in s.views}
    return _place_all(result, lambda t: place(t, locations.get(id(t._data), "cpu")))
