"""torch.storage's UntypedStorage and TypedStorage, as far as scripts use them: the memory under a
tensor, shared by all its views.

A tensor's storage is the root array its data views (NumPy's or CuPy's ``.base`` chain ends at it),
so ``x.untyped_storage().data_ptr() == x[1:].untyped_storage().data_ptr()``, the test scripts use
for "these two share memory", holds exactly when torch's does. A storage reads the memory; it does
not resize it or hold gradients.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from . import _dtype, _meta
from ._backend import array_module, device_of, memory_order

__all__ = ["UntypedStorage", "TypedStorage", "storage_root", "note_strided_view", "LEGACY_STORAGES"]


# id(view) -> (weak reference to the view, its root): the roots of as_strided results that have no
# base. CuPy's as_strided makes ``ndarray(..., memptr=x.data)``, a new array on x's memory whose
# base is None, so climbing ``.base`` stops at it; chainrule notes where it came from instead. An
# entry goes with its view (the weak reference's callback), so it keeps no memory alive longer.
_strided_roots: dict[int, tuple] = {}


def note_strided_view(view, root) -> None:
    """Record that ``view``, made by as_strided on ``root``'s memory, belongs to ``root``'s storage
    (a no-op where the array library keeps a base, as NumPy does)."""
    if getattr(view, "base", None) is not None or view is root or isinstance(view, _meta.ndarray):
        return  # (a meta array has no memory to share)
    key = id(view)
    _strided_roots[key] = (weakref.ref(view, lambda _, key=key: _strided_roots.pop(key, None)), root)


# id(root) -> weak reference to it: the memory of NumPy arrays and Python buffers that tensors
# share (from_numpy, as_tensor, frombuffer). torch wraps such memory in a storage it does not own
# and so cannot grow: resize_ past its end raises instead of reallocating (the array would no
# longer see the tensor's writes).
_not_resizable: dict[int, weakref.ref] = {}


def mark_not_resizable(array) -> None:
    """Record that ``array``'s memory belongs to its owner outside chainrule (torch's non-resizable
    storage)."""
    root = _root_of(array)
    key = id(root)
    entry = _not_resizable.get(key)
    if entry is None or entry() is not root:
        _not_resizable[key] = weakref.ref(root, lambda _, key=key: _not_resizable.pop(key, None))


def is_resizable(root) -> bool:
    """Whether a storage root may be replaced by a larger one (it is not memory shared with NumPy)."""
    entry = _not_resizable.get(id(root))
    return entry is None or entry() is not root


def _noted_root(array):
    entry = _strided_roots.get(id(array))
    return entry[1] if entry is not None and entry[0]() is array else None


def storage_root(array):
    """The root array whose memory ``array`` views, and the element offset of ``array``'s first
    element in it (torch's storage and storage_offset)."""
    root = _root_of(array)
    return root, (_address(array) - _address(root)) // array.itemsize


def pickled_view(array) -> tuple | None:
    """What pickle sends for a NumPy ``array`` that does not cover its storage densely (a gapped,
    offset or expanded view, or one of several views of a larger array): ``(storage, byte_offset,
    shape, byte_strides)``, its storage's whole memory (flat, in memory order) with where and how
    ``array`` views it — torch pickles a tensor as its whole storage with offset and strides
    (``_rebuild_tensor_v2``), so the copy has the same ``stride()``, ``storage_offset()`` and
    storage size. None where ``array`` is its storage's dense layout (it travels as itself) or
    where a layout cannot be described so (negative strides, a storage that is not contiguous)."""
    root, _ = storage_root(array)
    if type(root) is not np.ndarray or not (root.flags.c_contiguous or root.flags.f_contiguous):
        return None
    if any(stride < 0 for stride in array.strides):
        return None
    byte_offset = _address(array) - _address(root)
    dense = array.flags.c_contiguous or array.flags.f_contiguous or memory_order(array) is not None
    if byte_offset == 0 and array.nbytes == root.nbytes and dense:
        return None
    # a fresh view object per tensor: pickle's memo keeps one storage per tensor, as torch's pickling
    # does (torch.save alone keeps views saved together on one storage)
    storage = root.reshape(-1, order="A").view()
    return storage, byte_offset, array.shape, array.strides


def rebuilt_view(storage: np.ndarray, byte_offset: int, shape: tuple, byte_strides: tuple) -> np.ndarray:
    """The inverse of ``pickled_view``: ``storage`` viewed with ``shape`` and ``byte_strides`` from
    ``byte_offset``, read-only where elements overlap (an expanded view, as torch's in-place refusal)."""
    view = np.ndarray(shape, storage.dtype, buffer=storage, offset=byte_offset, strides=byte_strides)
    if any(stride == 0 and size > 1 for stride, size in zip(byte_strides, shape)) and view.size:
        view.flags.writeable = False
    return view


def _root_of(array):
    root = array
    while True:
        base = getattr(root, "base", None)
        if base is not None and not isinstance(base, type(array)):
            base = getattr(base, "base", None)  # NumPy's as_strided keeps its source one object further
        if base is None and _strided_roots:
            base = _noted_root(root)
        if not isinstance(base, type(array)):
            return root
        root = base


def _address(array) -> int:
    return array.__array_interface__["data"][0] if isinstance(array, np.ndarray) else array.data.ptr


class _Storage:
    def __init__(self, root) -> None:
        self._root = root

    def data_ptr(self) -> int:
        return _address(self._root)

    def nbytes(self) -> int:
        return self._root.nbytes

    @property
    def device(self):
        return device_of(self._root)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def __len__(self) -> int:
        return self.size()

    def __sizeof__(self) -> int:
        # torch counts the bytes a storage holds (sys.getsizeof is torchinfo's "Input size (MB)")
        return super().__sizeof__() + self.nbytes()

    def __iter__(self):
        return iter(self.tolist())

    def _flat(self):
        """The root's memory as one 1-D array of this storage's elements."""
        root = self._root
        contiguous = root if root.flags.c_contiguous else array_module(root).ascontiguousarray(root)
        return contiguous.reshape(-1).view(self._element_dtype)

    def tolist(self) -> list:
        flat = self._flat()
        return (flat if isinstance(flat, np.ndarray) else flat.get()).tolist()

    def __getitem__(self, index):
        return self.tolist()[index]

    def __repr__(self) -> str:
        # torch prints the elements one a line above the bracketed heading
        elements = " " + "\n ".join(str(value) for value in self.tolist())
        return f"{elements}\n{self._heading()}"

    __str__ = __repr__


class UntypedStorage(_Storage):
    """torch.UntypedStorage: the bytes under a tensor (``x.untyped_storage()``); ``size()`` and
    ``len()`` count bytes."""

    _element_dtype = np.uint8

    def size(self) -> int:
        return self._root.nbytes

    def element_size(self) -> int:
        return 1

    def _heading(self) -> str:
        return f"[chainrule.storage.UntypedStorage(device={self.device}) of size {self.size()}]"


class TypedStorage(_Storage):
    """torch.TypedStorage (deprecated in torch, as ``x.storage()`` warns): the elements under a
    tensor; ``size()`` and ``len()`` count elements of ``dtype``."""

    # the element dtype of a legacy class (FloatStorage: float32), set on those subclasses below
    _legacy_dtype: _dtype.dtype | None = None

    def __init__(self, *args, wrap_storage=None, dtype=None, device=None, _internal: bool = False) -> None:
        """Over a tensor's root array (chainrule's own use), or as torch builds one: empty (of
        ``dtype`` on ``device``: ``device="meta"`` holds no memory), ``wrap_storage``'s bytes read
        as ``dtype``, or a size. Checkpoint readers (Lightning's lazy loader) build them these ways."""
        self._dtype = None
        if len(args) == 1 and hasattr(args[0], "dtype") and wrap_storage is dtype is device is None:
            root = args[0]
        else:
            dtype = dtype or self._legacy_dtype or _dtype.get_default_dtype()
            if wrap_storage is not None:
                if args or device is not None:
                    raise RuntimeError("TypedStorage: with wrap_storage, only dtype may be given as well")
                if not isinstance(wrap_storage, UntypedStorage):
                    raise TypeError(f"TypedStorage: wrap_storage must be an UntypedStorage, not "
                                    f"{type(wrap_storage).__name__}")
                raw = wrap_storage._root.reshape(-1).view(np.uint8)
                if raw.size % dtype.itemsize:
                    raise RuntimeError(f"TypedStorage: {raw.size} bytes do not hold whole {dtype} elements")
                root = raw.view(dtype.np)
            else:
                if len(args) > 1 or (args and isinstance(args[0], bool)):
                    raise TypeError(f"TypedStorage: expected a size or a sequence, got {args}")
                size = args[0] if args and isinstance(args[0], int) else None
                values = args[0] if args and size is None else None
                from ._backend import device as as_device
                where = as_device(device) if device is not None else None
                if where is not None and where.type == "meta":
                    from . import _meta

                    root = _meta.from_array(np.empty((size or 0,), dtype=dtype.np))
                elif values is not None:
                    root = np.asarray(list(values), dtype=dtype.np)
                else:
                    root = np.zeros((size or 0,), dtype=dtype.np)
            self._dtype = dtype
        super().__init__(root)
        self._element_dtype = root.dtype

    @property
    def dtype(self) -> _dtype.dtype:
        return self._dtype or _dtype._BY_NP[self._root.dtype]

    def size(self) -> int:
        return self._root.size

    def element_size(self) -> int:
        return self._root.itemsize

    def untyped(self) -> UntypedStorage:
        return UntypedStorage(self._root)

    _untyped_storage = property(untyped)

    def _heading(self) -> str:
        return (f"[chainrule.storage.TypedStorage(dtype={self.dtype}, device={self.device}) of size "
                f"{self.size()}]")

    def _check_index(self, index) -> None:
        if isinstance(index, bool) or not isinstance(index, (int, slice)):
            raise RuntimeError(f"can't index a {type(self)} with {type(index)}")

    def __getitem__(self, index):
        self._check_index(index)
        if isinstance(index, slice):
            raise RuntimeError("slices are only supported in UntypedStorage.__getitem__")
        if not -self.size() <= index < self.size():
            raise IndexError(f"index {index} out of range for storage of size {self.size()}")
        return self.tolist()[index]

    def __setitem__(self, index, value) -> None:
        """A write into the storage is a write into every tensor on it, as in torch (which writes
        through a 1-D tensor on the storage, hence its tensor-indexing message)."""
        self._check_index(index)
        if isinstance(index, int) and not -self.size() <= index < self.size():
            raise IndexError(f"index {index} is out of bounds for dimension 0 with size {self.size()}")
        if isinstance(value, _Storage):
            raise RuntimeError(f"cannot set item with value type {type(value)}")
        if not self._root.flags.c_contiguous:  # the root is an allocation, so contiguous; be sure
            raise RuntimeError("TypedStorage.__setitem__: the storage's memory is not one contiguous block")
        if hasattr(value, "_data"):  # a tensor value
            value = value._data
        self._root.reshape(-1)[index] = value


def untyped_storage(tensor) -> UntypedStorage:
    """Tensor.untyped_storage: the bytes under ``tensor``, shared with its views."""
    return UntypedStorage(storage_root(tensor._data)[0])


_typed_storage_warned = False


def _reset_warn_typed_storage_removal() -> None:
    """Let the next Tensor.storage warn again (torch's function of this name, used by tests)."""
    global _typed_storage_warned
    _typed_storage_warned = False


def typed_storage(tensor) -> TypedStorage:
    """Tensor.storage: the elements under ``tensor``. torch warns that TypedStorage is deprecated the
    first time a process uses one, not at every call site."""
    global _typed_storage_warned
    if not _typed_storage_warned:
        _typed_storage_warned = True
        warnings.warn("TypedStorage is deprecated. It will be removed in the future and UntypedStorage will be the only "
                      "storage class. This should only matter to you if you are using storages directly.  To access "
                      "UntypedStorage directly, use tensor.untyped_storage() instead of tensor.storage()",
                      UserWarning, stacklevel=2)
    return TypedStorage(storage_root(tensor._data)[0])


def typed_storage_quietly(tensor) -> TypedStorage:
    """Tensor._typed_storage: Tensor.storage without the deprecation warning (torch's internal
    spelling, which checkpoint readers call)."""
    return TypedStorage(storage_root(tensor._data)[0])


# torch's legacy per-dtype storage classes (torch.FloatStorage, ...), what Tensor.storage_type()
# returns; here TypedStorage's subclasses by name, for ``x.storage_type() is torch.FloatStorage``
# checks and printing, and built as torch's are (``torch.FloatStorage()``: an empty float32 storage)
_LEGACY_STORAGE_NAMES = {
    "float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage", "bfloat16": "BFloat16Storage",
    "int64": "LongStorage", "int32": "IntStorage", "int16": "ShortStorage", "int8": "CharStorage",
    "uint8": "ByteStorage", "bool": "BoolStorage", "complex64": "ComplexFloatStorage",
    "complex128": "ComplexDoubleStorage",
}
LEGACY_STORAGES = {name: type(name, (TypedStorage,), {"__module__": "chainrule",
                                                       "_legacy_dtype": getattr(_dtype, dtype_name)})
                   for dtype_name, name in _LEGACY_STORAGE_NAMES.items()}


def storage_type(tensor) -> type:
    """Tensor.storage_type: the legacy storage class of ``tensor``'s dtype (torch.FloatStorage, ...)."""
    name = _LEGACY_STORAGE_NAMES.get(str(tensor.dtype).rsplit(".", 1)[-1])
    if name is None:
        raise RuntimeError(f"storage_type: no legacy storage class for {tensor.dtype}")
    return LEGACY_STORAGES[name]
