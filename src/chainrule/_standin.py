"""A NumPy-backed stand-in for CuPy: the 'cuda' device of CI machines that have no GPU.

It behaves like CuPy where chainrule's code depends on it and fails where CuPy fails, so the GPU
code path runs (and breaks) on the CPU:

* ``ndarray.__array__`` raises CuPy's TypeError: nothing converts to NumPy implicitly;
* a ``numpy.ndarray`` (any ndim, 0-d included) passed to one of its functions, ufuncs, operators
  or indexing raises CuPy's ``TypeError: Unsupported type <class 'numpy.ndarray'>``; Python
  scalars and NumPy scalar types (``np.float32(2)``) are accepted;
* reductions and integer indexing return 0-d arrays, never NumPy scalars;
* NumPy's ufuncs and ``__array_function__`` calls dispatch to it, as they do to CuPy;
* it has only what CuPy 14.2 has (``chainrule._cupy_surface``, read off a real CuPy by
  ``tools/gen_cupy_namespace.py``): a NumPy name CuPy lacks raises AttributeError, a keyword its
  function does not take raises TypeError, a ufunc method CuPy implements for few ufuncs raises
  NotImplementedError for the others (reduce/accumulate: add, multiply; reduceat: add; at: add,
  subtract, maximum, minimum, bitwise and/or/xor, and only for dtypes with CUDA atomics),
  and an ndarray attribute or method CuPy's ndarray lacks raises AttributeError. Each name is
  checked at its first lookup and cached, so the check costs nothing after.

Several GPUs: ``set_device_count(n)`` (or ``CHAINRULE_STANDIN_CUDA=n``) makes ``n`` "devices".
Each array remembers the device it was made on (the current one, or its source's for a view),
and, as CuPy on GPUs without peer access, a function, ufunc, operator, method or write whose
array operands live on another device than the current one raises CuPy's ValueError; so code
that forgets to run an op under its tensors' device (``with cupy.cuda.Device(i)``) fails in CI.

Every copy between host and "device" is counted in ``transfers`` (``xp.asarray(host_data)``,
``xp.asnumpy``, ``.get()``, ``float()/int()/bool()/.item()/.tolist()``, printing), so a test can
assert that a training step makes none. Turn it on as chainrule's 'cuda' device with
``chainrule._backend.use_standin_cuda()`` or the environment variable ``CHAINRULE_STANDIN_CUDA=1``.
"""

from __future__ import annotations

import contextlib
import types

import numpy

from . import _cupy_surface as _surface

__all__ = ["ndarray", "module", "transfers", "reset_transfers", "on_transfer", "asnumpy", "get_array_module",
           "set_device_count"]


class _TransferCounter:
    __slots__ = ("count", "hook")

    def __init__(self) -> None:
        self.count = 0
        self.hook = None

    def add(self) -> None:
        self.count += 1
        if self.hook is not None:
            self.hook()


_counter = _TransferCounter()


def transfers() -> int:
    """Host<->device copies made so far (see the module docstring for what counts)."""
    return _counter.count


def reset_transfers() -> None:
    _counter.count = 0


def on_transfer(hook) -> None:
    """Call ``hook()`` at every counted copy (``traceback.print_stack`` finds who made it); None stops."""
    _counter.hook = hook


class _Devices:
    """How many "devices" there are and which is current (CUDA's per-thread current device; one
    here, as CI's tests run one thread at a time)."""

    __slots__ = ("count", "current")

    def __init__(self) -> None:
        self.count = 1
        self.current = 0


_devices = _Devices()


def set_device_count(count: int) -> None:
    """Pretend ``count`` GPUs (device 0 becomes current again)."""
    if count < 1:
        raise ValueError(f"the stand-in needs at least one device, got {count}")
    _devices.count = int(count)
    _devices.current = 0


def _check_on_current(value) -> None:
    """CuPy's error for a kernel whose operand lives on another GPU (no peer access)."""
    kind = type(value)
    if kind is ndarray:
        if value._device != _devices.current:
            raise ValueError(f"The device where the array resides ({value._device}) is different from the current "
                             f"device ({_devices.current}). Peer access is unavailable between these devices.")
    elif kind is tuple or kind is list:
        for item in value:
            _check_on_current(item)


def _check_operands(args, kwargs) -> None:
    if _devices.count > 1:
        _check_on_current(args)
        if kwargs:
            _check_on_current(tuple(kwargs.values()))


_NO_BASE = object()  # an ndarray._owner: CuPy gives the array no base, though it shares memory


def _view(source: ndarray, array: numpy.ndarray) -> ndarray:
    """A view of ``source``'s memory: on source's device, whichever device is current. Its
    ``base`` is the stand-in array that owns the memory, one object for all its views, as CuPy's
    (the engine tells gradients that share memory apart by their base's identity)."""
    view = ndarray(array)
    view._device = source._device
    if array.base is not None and (array.base is source._array or array.base is source._array.base):
        owns = source._owner is _NO_BASE or (source._owner is None and source._array.base is None)
        view._owner = source if owns else source._owner  # (None: a view of memory no stand-in array owns)
    return view


def _writable_diagonal(source: ndarray, array: numpy.ndarray) -> numpy.ndarray:
    """NumPy's diagonal is a read-only view; CuPy's writes through (CuPy has no read-only arrays),
    so ``x.diagonal().fill(-1)`` and torch's ``x.diagonal().fill_(-1)`` on the device write ``x``."""
    if source._array.flags.writeable:
        array.flags.writeable = True
    return array


def _views_of(source: ndarray, value):
    """NumPy results of a view function wrapped on ``source``'s device (lists and tuples too)."""
    if isinstance(value, numpy.ndarray):
        return _view(source, value)
    if type(value) is tuple or type(value) is list:
        return type(value)(_views_of(source, v) for v in value)
    return _wrap(value)


def _unsupported(value) -> TypeError:
    return TypeError(f"Unsupported type {type(value)}")


def _unwrap(value):
    """The NumPy array behind a stand-in array; a host ndarray is refused, as CuPy refuses it."""
    kind = type(value)
    if kind is ndarray:
        return value._array
    if kind is numpy.ndarray or isinstance(value, numpy.ndarray):
        raise _unsupported(value)
    if kind is tuple or kind is list:
        return kind(_unwrap(v) for v in value)
    return value


def _wrapped_indices(key, shape: tuple):
    """CuPy's integer-array indexing wraps an out-of-bounds index around (``x[[1, 3]]`` of 3
    elements reads x[1], x[0]) where NumPy raises IndexError: checking would cost a device sync.
    Python integers and slices are checked on the host, as in NumPy."""
    parts = key if type(key) is tuple else (key,)
    if not any(type(part) is numpy.ndarray and part.dtype.kind in "iu" for part in parts):
        return key
    if any(part is Ellipsis or part is None or (type(part) is numpy.ndarray and part.dtype.kind == "b")
           for part in parts):
        return key  # dims harder to line up; NumPy's check stays
    wrapped = tuple(numpy.mod(part, shape[d]) if type(part) is numpy.ndarray and part.dtype.kind in "iu"
                    and d < len(shape) and shape[d] else part for d, part in enumerate(parts))
    return wrapped if type(key) is tuple else wrapped[0]


def _unwrap_kwargs(kwargs: dict) -> dict:
    return {k: _unwrap(v) for k, v in kwargs.items()} if kwargs else kwargs


def _wrap(value):
    """NumPy results back on the "device": arrays wrapped, NumPy scalars made 0-d arrays."""
    if isinstance(value, numpy.ndarray):
        return ndarray(value)
    if isinstance(value, numpy.generic):
        return ndarray(numpy.asarray(value))
    if type(value) is tuple or type(value) is list:
        return type(value)(_wrap(v) for v in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # linalg's named results
        return type(value)(*(_wrap(v) for v in value))
    return value


def _call(fn, args, kwargs):
    _check_operands(args, kwargs)
    return _wrap(fn(*_unwrap(args), **_unwrap_kwargs(kwargs)))


def _refuse_keywords(qualified: str, kwargs: dict) -> None:
    """CuPy's TypeError for a keyword its function does not take (NumPy's may take more)."""
    allowed = _surface.KEYWORDS.get(qualified)
    if allowed is not None:
        for key in kwargs:
            if key not in allowed:
                raise TypeError(f"{qualified}() got an unexpected keyword argument '{key}' "
                                f"(CuPy {_surface.VERSION} does not take it)")


def _missing(owner: str, name: str) -> AttributeError:
    return AttributeError(f"{owner} has no attribute '{name}' (CuPy {_surface.VERSION} does not have it)")


_NDARRAY_ATTRIBUTES = _surface.ATTRIBUTES["ndarray"]


class _DeviceId:
    """``cupy.cuda.Device(i)``: ``with`` it, ``i`` is the current device (the previous one after)."""

    __slots__ = ("id", "_previous")

    def __init__(self, index: int = 0) -> None:
        self.id = index
        self._previous = []

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"

    def synchronize(self) -> None:
        pass

    def use(self) -> None:
        _devices.current = self.id

    def __enter__(self):
        self._previous.append(_devices.current)
        _devices.current = self.id
        return self

    def __exit__(self, *exc) -> None:
        _devices.current = self._previous.pop()


_HOST_ONLY = frozenset({"ctypes", "tobytes", "tofile", "dump", "dumps", "byteswap", "getfield",
                        "setfield", "item", "itemset", "tolist", "data"})


class ndarray:
    """A "device" array: a NumPy array that never leaves the device implicitly."""

    __slots__ = ("_array", "_device", "_owner", "__weakref__")  # CuPy's ndarray takes weak references too
    # NumPy defers to this type's operators and ufunc overrides, as it does for CuPy's
    __array_priority__ = 100

    def __init__(self, array: numpy.ndarray) -> None:
        self._array = array
        self._device = _devices.current  # made on the current device, as CuPy allocates
        self._owner = None  # the stand-in array a view's memory belongs to (its base), when known

    # -- what CuPy refuses --------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct "
            "a NumPy array explicitly."
        )

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        target = getattr(ufunc, method)
        _check_operands(inputs, kwargs)
        out = kwargs.get("out")
        result = target(*_unwrap(inputs), **_unwrap_kwargs(kwargs))
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        namespace = _SUBMODULES.get(func.__module__, module)
        own = getattr(namespace, func.__name__, None)
        if own is None:
            return NotImplemented
        return own(*args, **kwargs)

    # -- explicit copies to the host (counted) ------------------------------------------
    def get(self, stream=None, order="C", out=None) -> numpy.ndarray:
        _counter.add()
        return numpy.array(self._array, order=order)

    def item(self):  # CuPy's takes no index
        _counter.add()
        return self._array.item()

    def tolist(self):
        _counter.add()
        return self._array.tolist()

    def __float__(self) -> float:
        _counter.add()
        return float(self._array)

    def __int__(self) -> int:
        _counter.add()
        return int(self._array)

    def __complex__(self) -> complex:
        _counter.add()
        return complex(self._array)

    def __bool__(self) -> bool:
        _counter.add()
        return bool(self._array)

    def __repr__(self) -> str:
        _counter.add()
        return repr(self._array)

    def __str__(self) -> str:
        _counter.add()
        return str(self._array)

    def __format__(self, spec: str) -> str:
        _counter.add()
        return format(self._array, spec)

    # -- metadata (no copies) -------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._array.shape

    @shape.setter
    def shape(self, value) -> None:
        # a reshape that never copies; AttributeError when the strides cannot express it (as CuPy)
        self._array.shape = value

    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    strides = property(lambda self: self._array.strides)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    flags = property(lambda self: _Flags(self._array.flags))
    T = property(lambda self: _view(self, self._array.T))
    mT = property(lambda self: _view(self, self._array.mT))
    device = property(lambda self: _DEVICES[self._device])

    @property
    def real(self):
        return _view(self, self._array.real)

    @property
    def imag(self):
        return _view(self, self._array.imag)

    @property
    def base(self):
        if self._owner is _NO_BASE:
            return None
        if self._owner is not None:
            return self._owner
        base = self._array.base  # a view of memory no stand-in array owns (a function's temporary)
        return None if base is None else _view(self, base)

    @property
    def data(self):
        return _MemoryPointer(self._array.__array_interface__["data"][0])

    def __dlpack_device__(self):
        return (2, self._device)  # kDLCUDA

    def __len__(self) -> int:
        return len(self._array)

    def __iter__(self):
        if self._array.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (_view(self, numpy.asarray(row)) for row in self._array)

    def __getattr__(self, name):
        # array methods (sum, reshape, astype, transpose, ...) run on the device array; NumPy's
        # protocols (__array_interface__, __array_struct__, ctypes, tobytes) would hand NumPy the
        # host buffer behind the "device" array, so they are not there, as on CuPy's
        if name.startswith("__") or name in _HOST_ONLY:
            raise AttributeError(f"'ndarray' object has no attribute '{name}'")
        if name not in _NDARRAY_ATTRIBUTES:
            raise _missing("'cupy.ndarray' object", name)
        method = getattr(self._array, name)
        if not callable(method):
            return method

        if name in _VIEW_METHODS:  # no kernel: a view on self's device, from any current device
            def view_method(*args, **kwargs):
                if kwargs:
                    _refuse_keywords(f"ndarray.{name}", kwargs)
                result = method(*_unwrap(args), **_unwrap_kwargs(kwargs))
                if name == "diagonal":
                    result = _writable_diagonal(self, result)
                return _view(self, result) if isinstance(result, numpy.ndarray) else _wrap(result)

            return view_method

        def device_method(*args, **kwargs):
            if kwargs:
                _refuse_keywords(f"ndarray.{name}", kwargs)
            _check_operands((self,), None)
            return _call(method, args, kwargs)

        return device_method

    def __getitem__(self, key):
        result = self._array[_wrapped_indices(_unwrap(key), self._array.shape)]
        if not _has_array_index(key):  # basic indexing: a view, no kernel
            return _view(self, result if isinstance(result, numpy.ndarray) else numpy.asarray(result))
        _check_operands((self, key), None)
        return _wrap(result)

    def __setitem__(self, key, value) -> None:
        _check_operands((self, key, value), None)
        self._array[_wrapped_indices(_unwrap(key), self._array.shape)] = _unwrap(value)

    def __copy__(self):
        _check_operands((self,), None)
        return ndarray(self._array.copy())

    def __deepcopy__(self, memo):
        _check_operands((self,), None)
        return ndarray(self._array.copy())

    def __reduce__(self):
        raise TypeError("pickling a device array copies it to the host implicitly; use .get() first")

    def __hash__(self):
        raise TypeError("unhashable type: 'ndarray'")


def _has_array_index(key) -> bool:
    parts = key if type(key) is tuple else (key,)
    return any(type(part) is ndarray or isinstance(part, (list, numpy.ndarray)) for part in parts)


# ndarray methods that return a view of the same memory without a kernel (when they can)
_VIEW_METHODS = frozenset({"reshape", "view", "transpose", "swapaxes", "squeeze", "diagonal"})


def _binary(name: str):
    def operator(self, other):
        _check_operands((self, other), None)
        return _wrap(getattr(self._array, name)(_unwrap(other)))

    operator.__name__ = name
    return operator


def _inplace(name: str):
    def operator(self, other):
        _check_operands((self, other), None)
        getattr(self._array, name)(_unwrap(other))
        return self

    operator.__name__ = name
    return operator


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
              "xor", "lshift", "rshift", "divmod"):
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__"))
    setattr(ndarray, f"__r{_name}__", _binary(f"__r{_name}__"))
    if _name != "divmod":
        setattr(ndarray, f"__i{_name}__", _inplace(f"__i{_name}__"))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__"))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", (lambda n: lambda self: _call(getattr(self._array, n), (), {}))(f"__{_name}__"))


class _Flags:
    """CuPy's flags: contiguity and ownership only (no ``writeable``: CuPy has no read-only arrays)."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, flags) -> None:
        self.c_contiguous = flags.c_contiguous
        self.f_contiguous = flags.f_contiguous
        self.owndata = flags.owndata

    def __getitem__(self, name: str) -> bool:
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[name]


class _MemoryPointer:
    __slots__ = ("ptr",)

    def __init__(self, ptr: int) -> None:
        self.ptr = ptr


class _DeviceTable:
    """``cupy.cuda.Device(i)`` objects, one per index (an array's ``.device``)."""

    def __getitem__(self, index: int) -> _DeviceId:
        device = _DEVICE_OBJECTS.get(index)
        if device is None:
            device = _DEVICE_OBJECTS[index] = _DeviceId(index)
        return device


_DEVICE_OBJECTS: dict = {}
_DEVICES = _DeviceTable()


class ufunc:
    """A NumPy ufunc on device arrays, with ``.at``, ``.reduce``, ``.accumulate``, ``.outer``,
    taking only the keywords CuPy's take (``out``, ``dtype``, ``casting``: no ``where``)."""

    def __init__(self, numpy_ufunc, name: str | None = None) -> None:
        self._ufunc = numpy_ufunc
        self.__name__ = name or numpy_ufunc.__name__
        self.nin = numpy_ufunc.nin
        self.nout = numpy_ufunc.nout
        self._qualified = f"cupy.{self.__name__}"

    def __call__(self, *args, **kwargs):
        if kwargs:
            _refuse_keywords(self._qualified, kwargs)
        out = kwargs.get("out")
        result = _call(self._ufunc, args, kwargs)
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return result

    def at(self, a, indices, b=None) -> None:
        self._implemented("at")  # CuPy's ufunc.at is its scatter kernels (cupyx.scatter_add & co.)
        dtype = _unwrap(a).dtype
        if dtype.name not in _surface.SCATTER_DTYPES[self.__name__]:
            # the scatter kernel calls a CUDA atomic on the element type, which exists for a few types
            raise TypeError(f"cupy.{self.__name__}.at on {dtype}: CuPy's scatter kernel (CUDA atomics) takes only "
                            f"{sorted(_surface.SCATTER_DTYPES[self.__name__])}")
        if b is None:
            self._ufunc.at(_unwrap(a), _unwrap(indices))
        else:
            self._ufunc.at(_unwrap(a), _unwrap(indices), _unwrap(b))

    def _implemented(self, method: str) -> None:
        """CuPy's NotImplementedError for a method it has only for some ufuncs (reduce and
        accumulate: add, multiply; reduceat: add; at: the ufuncs with a scatter kernel)."""
        if method not in _surface.UFUNCS.get(self.__name__, (0, 0, frozenset()))[2]:
            raise NotImplementedError(f"`{self.__name__}.{method}` is not supported in CuPy {_surface.VERSION}")

    def reduce(self, *args, **kwargs):
        self._implemented("reduce")
        _refuse_method_keywords("reduce", kwargs)
        return _call(self._ufunc.reduce, args, kwargs)

    def accumulate(self, *args, **kwargs):
        self._implemented("accumulate")
        _refuse_method_keywords("accumulate", kwargs)
        return _call(self._ufunc.accumulate, args, kwargs)

    def outer(self, *args, **kwargs):
        self._implemented("outer")
        return _call(self._ufunc.outer, args, kwargs)

    def reduceat(self, *args, **kwargs):
        self._implemented("reduceat")
        _refuse_method_keywords("reduceat", kwargs)
        return _call(self._ufunc.reduceat, args, kwargs)

    def __repr__(self) -> str:
        return f"<ufunc '{self.__name__}'>"


# functions whose first argument is host data (a shape, a dtype, Python numbers), as in CuPy
_HOST_FIRST = frozenset({"zeros", "ones", "empty", "full", "eye", "identity", "arange", "linspace", "logspace",
                         "array", "asarray", "tri", "indices", "fromfunction", "result_type", "can_cast",
                         "promote_types", "dtype", "broadcast_shapes", "iinfo", "finfo", "isscalar", "ndim",
                         "shape", "size", "ndindex", "einsum", "einsum_path", "mgrid", "ogrid", "frombuffer"})


def _refuse_method_keywords(method: str, kwargs: dict) -> None:
    allowed = _surface.UFUNC_METHODS[method]
    for key in kwargs:
        if key not in allowed:
            raise TypeError(f"ufunc.{method}() got an unexpected keyword argument '{key}' "
                            f"(CuPy {_surface.VERSION} does not take it)")


def _check_sequence(name: str, value) -> None:
    """CuPy takes no Python list or tuple where it wants an array (``cupy.sum([1, 2])`` fails); a
    sequence of device arrays (``concatenate((a, b))``) is fine."""
    if (type(value) is list or type(value) is tuple) and name not in _HOST_FIRST:
        for item in value:
            if type(item) is not ndarray:
                raise _unsupported(item if isinstance(item, numpy.ndarray) else value)


# functions that return views of their first argument (no kernel), on its device from any current one
_VIEW_FUNCTIONS = frozenset({"reshape", "transpose", "swapaxes", "moveaxis", "squeeze", "expand_dims",
                             "broadcast_to", "broadcast_arrays", "atleast_1d", "atleast_2d", "atleast_3d",
                             "ravel", "split", "array_split", "hsplit", "vsplit", "dsplit", "diagonal", "flip",
                             "fliplr", "flipud", "rot90", "real", "imag", "may_share_memory", "shares_memory",
                             "shape", "ndim", "size", "result_type", "sliding_window_view", "as_strided"})


def _function(fn, host_first: bool = False, qualified: str = ""):
    name = getattr(fn, "__name__", "function")

    if name in _VIEW_FUNCTIONS:
        def view_function(*args, **kwargs):
            if kwargs and qualified:
                _refuse_keywords(qualified, kwargs)
            source = args[0] if args else None
            if type(source) is list or type(source) is tuple:
                source = source[0] if source else None
            result = fn(*_unwrap(args), **_unwrap_kwargs(kwargs))
            if type(source) is not ndarray:
                return _wrap(result)
            if name == "diagonal":
                result = _writable_diagonal(source, result)
            return _views_of(source, result)

        view_function.__name__ = name
        view_function.__doc__ = getattr(fn, "__doc__", None)
        return view_function

    def device_function(*args, **kwargs):
        if kwargs and qualified:
            _refuse_keywords(qualified, kwargs)
        if args and not host_first:
            _check_sequence(name, args[0])
        return _call(fn, args, kwargs)

    device_function.__name__ = name
    device_function.__doc__ = getattr(fn, "__doc__", None)
    return device_function


class _Namespace(types.ModuleType):
    """A wrapped NumPy namespace: functions take and return device arrays; constants, dtypes
    and classes pass through unchanged (``cupy.float32 is numpy.float32`` too). Only the names
    CuPy's namespace ``surface`` has are there, taking only its keywords."""

    def __init__(self, name: str, numpy_namespace, surface: str = "cupy") -> None:
        super().__init__(name)
        self._numpy = numpy_namespace
        self._surface = surface

    def __getattr__(self, name: str):
        if name not in _surface.NAMES[self._surface]:
            raise _missing(f"module '{self._surface}'", name)
        value = getattr(self._numpy, name)
        if isinstance(value, numpy.ufunc):
            value = ufunc(value, name)
        elif isinstance(value, type) or isinstance(value, (types.ModuleType, numpy.dtype)):
            return value
        elif callable(value):
            value = _function(value, qualified=f"{self._surface}.{name}")
        setattr(self, name, value)  # cached: the next lookup costs a dict read
        return value


def _host_copy(value, dtype=None):
    """``asarray``/``array`` of host data: a counted host-to-device copy."""
    _counter.add()
    return ndarray(numpy.array(value, dtype=dtype))


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    if type(a) is ndarray:
        array = numpy.asarray(a._array, dtype=dtype, order=order, copy=copy)
        return a if array is a._array else ndarray(array)
    return _host_copy(a, dtype)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if type(obj) is ndarray:
        out = numpy.array(obj._array, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        return ndarray(out)
    _counter.add()
    return ndarray(numpy.array(obj, dtype=dtype, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True) -> numpy.ndarray:
    if type(a) is ndarray:
        return a.get(order=order)
    return numpy.asarray(a, order=order)


def get_array_module(*args):
    for a in args:
        if type(a) is ndarray:
            return module
    return numpy


def _like(name: str):
    numpy_fn = getattr(numpy, name)

    def like(a, *args, **kwargs):
        if kwargs:
            _refuse_keywords(f"cupy.{name}", kwargs)
        return _wrap(numpy_fn(_unwrap(a), *args, **_unwrap_kwargs(kwargs)))

    like.__name__ = name
    return like


def _as_strided(x, shape=None, strides=None):
    """``cupy.lib.stride_tricks.as_strided``: CuPy's takes no ``writeable``, and makes a new
    array on the same memory (``ndarray(shape, dtype, memptr=x.data, strides)``), so its ``base``
    is None, not ``x``'s owner."""
    view = _view(x, numpy.lib.stride_tricks.as_strided(_unwrap(x), shape, strides))
    view._owner = _NO_BASE
    return view


class _Generator:
    """``cupy.random.Generator``: draws land on the device. CuPy's has only some of NumPy's
    distributions (no ``normal``, ``permutation``, ``choice``: ``standard_normal`` and friends)."""

    def __init__(self, numpy_generator, surface: str | None = "random.Generator") -> None:
        self._generator = numpy_generator
        self._surface = surface

    def __getattr__(self, name: str):
        qualified = ""
        if self._surface is not None:
            if name not in _surface.ATTRIBUTES[self._surface]:
                raise _missing("'cupy.random.Generator' object", name)
            qualified = f"{self._surface}.{name}"
        return _function(getattr(self._generator, name), host_first=True, qualified=qualified)  # size first


class _RandomNamespace(_Namespace):
    def default_rng(self, seed=None):
        return _Generator(numpy.random.default_rng(seed))

    def RandomState(self, seed=None):  # noqa: N802 (numpy's name)
        return _Generator(numpy.random.RandomState(seed), surface=None)


class _MemoryPool:
    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_all_blocks(self) -> None:
        pass

    def set_limit(self, size=None, fraction=None) -> None:
        pass

    def get_limit(self) -> int:
        return 0


_MEMORY_POOL = _MemoryPool()
_PINNED_MEMORY_POOL = _MemoryPool()


class _Runtime:
    @staticmethod
    def getDeviceCount() -> int:  # noqa: N802 (CUDA's name)
        return _devices.count

    @staticmethod
    def getDevice() -> int:  # noqa: N802
        return _devices.current

    @staticmethod
    def setDevice(index: int) -> None:  # noqa: N802
        _device(index).use()

    @staticmethod
    def getDeviceProperties(index: int) -> dict:  # noqa: N802
        return {"name": b"chainrule stand-in (NumPy)", "totalGlobalMem": 0, "major": 0, "minor": 0,
                "multiProcessorCount": 1}

    @staticmethod
    def deviceSynchronize() -> None:  # noqa: N802
        pass

    @staticmethod
    def memGetInfo() -> tuple:  # noqa: N802
        return (0, 0)


def _device(index: int | None = None) -> _DeviceId:
    """``cupy.cuda.Device(index)``; no index: the current device."""
    if index is None:
        return _DEVICES[_devices.current]
    index = int(index)
    if not 0 <= index < _devices.count:
        raise RuntimeError(f"CUDA error: invalid device ordinal {index} (the stand-in has {_devices.count} "
                           f"device{'s' if _devices.count > 1 else ''})")
    return _DEVICES[index]


class _Stream:
    null = None

    def __init__(self, *args, **kwargs) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


_cuda = types.ModuleType("chainrule.testing.standin.cuda")
_cuda.runtime = _Runtime()
_cuda.Device = _device
_cuda.Stream = _Stream
_cuda.get_current_stream = lambda device=None: _Stream()
_cuda.is_available = lambda: True


class _ErrorConfig:
    """``cupyx.errstate``'s ``linalg`` setting: 'ignore' (CuPy's default) or 'raise'."""

    __slots__ = ("linalg",)

    def __init__(self) -> None:
        self.linalg = "ignore"


_errors = _ErrorConfig()


@contextlib.contextmanager
def errstate(*, divide=None, over=None, under=None, invalid=None, linalg=None):
    """``cupyx.errstate``: with ``linalg='raise'`` CuPy's solvers check cuSOLVER's info (a device
    sync) and raise LinAlgError as NumPy does; by default they do not check."""
    saved = _errors.linalg
    if linalg is not None:
        _errors.linalg = linalg
    try:
        yield
    finally:
        _errors.linalg = saved


def _unchecked_linalg(name: str):
    """``cupy.linalg.<name>``: a singular (inv, solve) or non-positive-definite (cholesky) input
    raises only under ``errstate(linalg='raise')``; otherwise, as on the GPU, the result is
    whatever the factorisation left: inf/NaN from a zero pivot for inv and solve; for cholesky
    cuSOLVER's potrf stops at the failing pivot and CuPy returns the lower triangle of what is
    there, finite numbers (here the input's lower triangle), so no NaN check can tell. ``solve``
    also keeps CuPy's shape rule: a matrix ``b`` must have ``a``'s batch dims (CuPy does not
    broadcast them, NumPy 2 does)."""
    numpy_fn = getattr(numpy.linalg, name)

    def checked(a, *args):
        a_ = _unwrap(a)
        if name == "solve":
            b_ = _unwrap(args[0])
            if b_.ndim > 1 and a_.shape[:-1] != b_.shape[:-1]:
                raise ValueError("a must have (..., M, M) shape and b must have (..., M, K) for multidimensional b")
        try:
            return _wrap(numpy_fn(a_, *_unwrap(args)))
        except numpy.linalg.LinAlgError:
            if _errors.linalg == "raise":
                raise
            if name == "cholesky":
                return ndarray(numpy.tril(a_).astype(numpy.result_type(a_.dtype, numpy.float32)))
            shape = a_.shape if name != "solve" else numpy.broadcast_shapes(a_.shape[:-1], b_.shape)
            dtype = numpy.result_type(a_.dtype, numpy.float32) if name != "solve" else numpy.result_type(
                a_.dtype, b_.dtype, numpy.float32)
            return ndarray(numpy.full(shape, numpy.nan, dtype=dtype))

    checked.__name__ = name
    return checked


def _build_module() -> _Namespace:
    xp = _Namespace("chainrule.testing.standin", numpy, "cupy")
    xp.ndarray = ndarray
    xp.asarray = asarray
    xp.array = array
    xp.asnumpy = asnumpy
    xp.get_array_module = get_array_module
    xp.ascontiguousarray = _function(numpy.ascontiguousarray, qualified="cupy.ascontiguousarray")
    for name in ("zeros_like", "ones_like", "empty_like", "full_like"):
        setattr(xp, name, _like(name))
    xp.random = _RandomNamespace("chainrule.testing.standin.random", numpy.random, "cupy.random")
    xp.lib = types.ModuleType("chainrule.testing.standin.lib")
    xp.lib.stride_tricks = types.ModuleType("chainrule.testing.standin.lib.stride_tricks")
    xp.lib.stride_tricks.as_strided = _as_strided
    xp.lib.stride_tricks.sliding_window_view = _function(numpy.lib.stride_tricks.sliding_window_view,
                                                         qualified="cupy.lib.stride_tricks.sliding_window_view")
    xp.linalg = _Namespace("chainrule.testing.standin.linalg", numpy.linalg, "cupy.linalg")
    for name in ("inv", "solve", "cholesky"):
        setattr(xp.linalg, name, _unchecked_linalg(name))
    xp.fft = _Namespace("chainrule.testing.standin.fft", numpy.fft, "cupy.fft")
    xp.cuda = _cuda
    xp.get_default_memory_pool = lambda: _MEMORY_POOL
    xp.get_default_pinned_memory_pool = lambda: _PINNED_MEMORY_POOL
    xp.transfers = transfers
    xp.reset_transfers = reset_transfers
    return xp


def _build_cupyx() -> types.ModuleType:
    """The few ``cupyx`` names chainrule uses (``errstate``, ``scatter_add``)."""
    cupyx = types.ModuleType("chainrule.testing.standin.cupyx")
    cupyx.errstate = errstate
    cupyx.scatter_add = lambda a, slices, value: module.add.at(a, slices, value)
    return cupyx


module = _build_module()
cupyx = _build_cupyx()
# NumPy's dispatched functions by home module, for __array_function__
_SUBMODULES = {"numpy.linalg": module.linalg, "numpy.fft": module.fft, "numpy.random": module.random}
