"""The 'meta' device: arrays with a shape and a dtype but no data (torch's meta tensors).

A model built on 'meta' (``nn.Linear(4096, 4096, device='meta')``, ``with torch.device('meta')``,
``model.to('meta')``) allocates nothing; ``Module.to_empty`` gives it storage later. torch runs
every op on meta tensors for its output's shape and dtype only. chainrule gets that from the ops
it already has, through the array-module seam: a meta array's module (``array_module``) is
``module`` below, whose functions run NumPy's own on *placeholders* (a zero-stride broadcast of
one zero, so no memory however large the shape) and keep only the result's shape and dtype.
So every op that is written against ``xp`` propagates meta with no meta code of its own.

Elementwise ufuncs and matmul compute their result's shape from the operands' shapes and their
dtype from one-element samples, so they cost nothing whatever the size; any other function runs
on the placeholders (reading zeros) and its result is dropped to a placeholder. A write into a
meta array is a no-op (there is nothing to write to). Reading data raises torch's errors:
``.item()`` RuntimeError, copying out NotImplementedError ("Cannot copy out of meta tensor; no
data!"), and functions whose result's shape depends on the data (nonzero, unique, boolean masks)
NotImplementedError, as torch's meta kernels do.

Strides are reported C-contiguous (a meta array keeps no layout: ``t().stride()`` is (4, 1)
where torch says (1, 4)).
"""

from __future__ import annotations

import types

import numpy

__all__ = ["ndarray", "module", "NO_DATA", "placeholder", "from_array", "on_meta"]

NO_DATA = "Cannot copy out of meta tensor; no data!"
NO_ITEM = "Tensor.item() cannot be called on meta tensors"
# NumPy functions whose result's shape depends on the data: torch's meta kernels refuse them too
_DATA_DEPENDENT = frozenset({"nonzero", "argwhere", "flatnonzero", "unique", "unique_values", "unique_counts",
                             "unique_inverse", "unique_all", "extract", "compress", "trim_zeros", "bincount"})

_ZEROS: dict = {}


def placeholder(shape, dtype) -> numpy.ndarray:
    """A read-only array of ``shape`` and ``dtype`` that takes no memory: one zero, broadcast."""
    dtype = numpy.dtype(dtype)
    zero = _ZEROS.get(dtype)
    if zero is None:
        zero = _ZEROS[dtype] = numpy.zeros((), dtype=dtype)
    return numpy.broadcast_to(zero, shape)


class _NoMemory:
    """A meta array's memory pointer (``.data.ptr``, CuPy's spelling): none, as torch's data_ptr() is 0."""

    ptr = 0


_NO_MEMORY = _NoMemory()


class _Flags:
    """A meta array's layout flags: C-contiguous, as a fresh torch meta tensor is."""

    __slots__ = ("ndim",)

    def __init__(self, ndim: int) -> None:
        self.ndim = ndim

    c_contiguous = True
    writeable = True

    @property
    def f_contiguous(self) -> bool:
        return self.ndim <= 1

    def __getitem__(self, name: str) -> bool:
        return {"C_CONTIGUOUS": True, "F_CONTIGUOUS": self.f_contiguous, "WRITEABLE": True}[name.upper()]


class ndarray:
    """An array on the meta device: shape and dtype, no data (see the module docstring)."""

    __slots__ = ("_a",)
    __array_priority__ = 100  # NumPy arrays mixed in defer to the meta operators

    def __init__(self, shape, dtype=float) -> None:
        self._a = placeholder(shape, dtype)

    # ---------------------------------------------------------------- metadata
    @property
    def shape(self) -> tuple:
        return self._a.shape

    @shape.setter
    def shape(self, value) -> None:  # NumPy's in-place reshape (chainrule's view() probes with it)
        self._a = self._a.reshape(value)

    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.size * self._a.itemsize)
    flags = property(lambda self: _Flags(self._a.ndim))
    T = property(lambda self: from_array(self._a.T))
    mT = property(lambda self: from_array(numpy.swapaxes(self._a, -1, -2)))
    real = property(lambda self: from_array(self._a.real))
    base = None  # a meta array views no memory (so storage_root stops at it)
    data = property(lambda self: _NO_MEMORY)
    imag = property(lambda self: from_array(self._a.imag))

    @property
    def strides(self) -> tuple:
        strides, step = [], self._a.itemsize
        for length in reversed(self._a.shape):
            strides.append(step)
            step *= max(length, 1)
        return tuple(reversed(strides))

    def __repr__(self) -> str:
        return f"meta.ndarray(shape={self._a.shape}, dtype={self._a.dtype})"

    # ---------------------------------------------------------------- no data to read
    def __array__(self, dtype=None, copy=None):
        raise NotImplementedError(NO_DATA)

    def item(self, *args):
        raise RuntimeError(NO_ITEM)

    __float__ = __int__ = __complex__ = __bool__ = __index__ = item

    def tolist(self):
        raise NotImplementedError(NO_DATA)

    # An op's own check for special values (``if xp.isnan(x).any()``: sort, topk, normal's std) finds
    # none on a meta array, as torch's meta kernels look at no values: a whole-array any() is False
    # (a Python bool, for the branch). With an axis it stays a meta array. (all() keeps raising:
    # allclose's answer is an all(), and torch refuses to give one for meta tensors.)
    def any(self, *args, **kwargs):
        if args or kwargs:
            return _call(self._a.any, args, kwargs)
        return False

    def tobytes(self, *args, **kwargs):
        raise NotImplementedError(NO_DATA)

    def __len__(self) -> int:
        if not self._a.ndim:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # ---------------------------------------------------------------- NumPy dispatch
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _Ufunc(ufunc)._run(method, inputs, kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        return _call(func, args, kwargs)

    # ---------------------------------------------------------------- methods
    def copy(self, order="C"):
        return ndarray(self._a.shape, self._a.dtype)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return ndarray, (self._a.shape, self._a.dtype)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        return ndarray(self._a.shape, dtype)

    def view(self, dtype=None, *args):
        if dtype is None or isinstance(dtype, type) and issubclass(dtype, numpy.ndarray):
            return from_array(self._a)
        dtype = numpy.dtype(dtype)
        shape = self._a.shape
        if dtype.itemsize != self._a.itemsize:  # the last dim is reinterpreted, as NumPy's view does
            numpy.empty(shape[-1:] or (1,), self._a.dtype).view(dtype)  # NumPy's error for a bad size
            shape = shape[:-1] + (shape[-1] * self._a.itemsize // dtype.itemsize,)
        return ndarray(shape, dtype)

    def fill(self, value) -> None:
        pass  # nothing to fill

    def __getitem__(self, key):
        return from_array(self._a[_index(key)])

    def __setitem__(self, key, value) -> None:
        # the write is checked (index in range, value broadcastable) and then has nothing to write to
        target = self._a[_index(key)]
        shape = getattr(value, "shape", None)
        if shape is None:
            shape = numpy.shape(value) if isinstance(value, (list, tuple)) else ()
        numpy.broadcast_shapes(shape, target.shape)

    def __getattr__(self, name):
        # everything else NumPy's ndarray has (reshape, transpose, sum, squeeze, ...), on the placeholder
        if name == "_a":  # not set yet (an object being unpickled): no recursion through this method
            raise AttributeError(name)
        attribute = getattr(self._a, name)
        if not callable(attribute):
            return _wrap(attribute)

        def method(*args, **kwargs):
            return _call(attribute, args, kwargs)

        return method


def _index(key):
    """An index into a placeholder: meta integer arrays become placeholders (any index works on
    a zero), a meta boolean mask is refused: what it selects depends on the data."""
    parts = key if isinstance(key, tuple) else (key,)
    for part in parts:
        if isinstance(part, ndarray) and part.dtype == numpy.bool_ or (
                isinstance(part, numpy.ndarray) and part.dtype == numpy.bool_ and part.ndim):
            raise NotImplementedError("indexing with a boolean mask on the meta device: the result's shape "
                                      "depends on the mask's data, which a meta tensor does not have")
    return _unwrap(key)


def from_array(array) -> ndarray:
    """The meta array with ``array``'s shape and dtype (``array``: NumPy, CuPy or meta)."""
    if isinstance(array, ndarray):
        return array
    meta = object.__new__(ndarray)
    meta._a = placeholder(numpy.shape(array) if isinstance(array, numpy.generic) else array.shape, array.dtype)
    return meta


def _unwrap(value):
    if isinstance(value, ndarray):
        return value._a
    if type(value) is tuple or type(value) is list:
        return type(value)(_unwrap(v) for v in value)
    if type(value) is dict:  # keyword arguments (searchsorted's sorter=, histogram's weights=)
        return {key: _unwrap(v) for key, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, (numpy.ndarray, numpy.generic)):
        return from_array(value)
    if type(value) is tuple or type(value) is list:
        return type(value)(_wrap(v) for v in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NumPy's named results (eig, svd, ...)
        return type(value)(*(_wrap(v) for v in value))
    return value


def _nonsingular(value):
    """``_unwrap`` for ``numpy.linalg``: a square (batch of) matrices becomes identities, not the
    zero placeholder, which LAPACK refuses as singular or not positive-definite; a meta tensor has
    no values to be singular, and torch's meta kernels check shapes only."""
    if isinstance(value, ndarray) and value.ndim >= 2 and value.shape[-1] == value.shape[-2]:
        identity = numpy.eye(value.shape[-1], dtype=value.dtype)
        return numpy.broadcast_to(identity, value.shape)
    if type(value) is tuple or type(value) is list:
        return type(value)(_nonsingular(v) for v in value)
    return _unwrap(value)


def _call(fn, args, kwargs, unwrap=_unwrap):
    """``fn`` on the placeholders (``unwrap``); its result as meta arrays. A write into a placeholder
    (``out=``, copyto, put...) is NumPy's read-only error: a write into a meta array has nowhere to
    go, so it is a no-op that returns the destination."""
    name = getattr(fn, "__name__", "")
    if name in _DATA_DEPENDENT:
        raise NotImplementedError(f"{name} on the meta device: its result's shape depends on the data, which a "
                                  "meta tensor does not have")
    out = kwargs.pop("out", None)
    with numpy.errstate(all="ignore"):
        try:
            result = fn(*unwrap(args), **unwrap(kwargs))
        except ValueError as error:
            if "read-only" not in str(error):
                raise
            return args[0] if args and isinstance(args[0], ndarray) else None
    return _into(out, _wrap(result))


def _into(out, result):
    """``out=``: the result's shape is checked against the meta destination, which is returned."""
    if out is None:
        return result
    outs = out if isinstance(out, tuple) else (out,)
    results = result if isinstance(result, tuple) else (result,)
    for destination, value in zip(outs, results):
        if not isinstance(destination, ndarray):
            raise RuntimeError(f"Tensor on device {_device_name(destination)} is not on the expected device meta!")
        if numpy.broadcast_shapes(destination.shape, value.shape) != destination.shape:
            raise ValueError(f"non-broadcastable output operand with shape {destination.shape} doesn't match the "
                             f"broadcast shape {value.shape}")
    return out


def _device_name(array) -> str:
    if isinstance(array, ndarray):
        return "meta"
    return "cpu" if isinstance(array, (numpy.ndarray, numpy.generic)) else "cuda"


def _sample(value):
    """A one-element stand-in for an operand, of its dtype: the result dtype of an elementwise op
    on it is the op's (a 0-d array is not a "weak" scalar under NumPy 2's promotion)."""
    if isinstance(value, ndarray):
        return _ZEROS.get(value.dtype) if value.dtype in _ZEROS else numpy.zeros((), value.dtype)
    if isinstance(value, numpy.ndarray):
        return numpy.zeros((), value.dtype)
    return value


def _shape_of(value) -> tuple:
    return value.shape if isinstance(value, (ndarray, numpy.ndarray, numpy.generic)) else ()


def _matmul_shape(a: tuple, b: tuple) -> tuple:
    if not a or not b:
        raise ValueError("matmul: Input operand does not have enough dimensions")
    a_mat = a if len(a) > 1 else (1,) + a
    b_mat = b if len(b) > 1 else b + (1,)
    if a_mat[-1] != b_mat[-2]:
        raise ValueError(f"matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc signature "
                         f"(n?,k),(k,m?)->(n?,m?) (size {b_mat[-2]} is different from {a_mat[-1]})")
    shape = numpy.broadcast_shapes(a_mat[:-2], b_mat[:-2]) + (a_mat[-2], b_mat[-1])
    if len(a) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(b) == 1:
        shape = shape[:-1]
    return shape


class _Ufunc:
    """A NumPy ufunc on meta arrays (``module.exp``, ``module.add.reduce``, ``module.add.at``)."""

    __slots__ = ("ufunc",)

    def __init__(self, ufunc) -> None:
        self.ufunc = ufunc

    def __getattr__(self, name):
        if name in ("reduce", "accumulate", "reduceat", "outer", "at"):
            return lambda *args, **kwargs: self._run(name, args, kwargs)
        return getattr(self.ufunc, name)

    def __call__(self, *args, **kwargs):
        return self._run("__call__", args, kwargs)

    def _run(self, method: str, inputs, kwargs):
        ufunc = self.ufunc
        if method == "at":  # an in-place scatter: checked by indexing, then nothing to write
            _unwrap(inputs[0])[_index(inputs[1])]
            return None
        if method != "__call__" or (ufunc.signature is not None and ufunc is not numpy.matmul):
            return _call(getattr(ufunc, method), inputs, kwargs)
        out = kwargs.pop("out", None)
        if out is not None and not isinstance(out, tuple):
            out = (out,)
        if out is not None and all(o is None for o in out):
            out = None
        kwargs.pop("where", None)
        shapes = [_shape_of(value) for value in inputs]
        with numpy.errstate(all="ignore"):
            if ufunc is numpy.matmul:
                shape = _matmul_shape(*shapes)
                samples = ufunc(*(numpy.zeros((1, 1), _sample(v).dtype) if _shape_of(v) else v for v in inputs),
                                **kwargs)
            else:
                shape = numpy.broadcast_shapes(*shapes)
                samples = ufunc(*(_sample(value) for value in inputs), **kwargs)
        result = tuple(ndarray(shape, s.dtype) for s in samples) if ufunc.nout > 1 else ndarray(shape, samples.dtype)
        if out is None:
            return result
        out = _into(out, result)
        return out if ufunc.nout > 1 else out[0]


class _Module(types.ModuleType):
    """The array module of meta arrays: NumPy's names, running on placeholders (``_call``)."""

    ndarray = ndarray

    def __init__(self, name: str, numpy_module) -> None:
        super().__init__(name)
        self._numpy = numpy_module

    def __getattr__(self, name: str):
        attribute = getattr(self._numpy, name)
        if isinstance(attribute, numpy.ufunc):
            value = _Ufunc(attribute)
        elif isinstance(attribute, types.ModuleType):
            value = _Module(f"{self.__name__}.{name}", attribute)
        elif callable(attribute) and not isinstance(attribute, type):
            unwrap = _nonsingular if self._numpy is numpy.linalg else _unwrap

            def value(*args, _fn=attribute, _unwrap_args=unwrap, **kwargs):
                return _call(_fn, args, kwargs, _unwrap_args)
            value.__name__ = name
        else:
            value = attribute
        setattr(self, name, value)  # looked up once
        return value

    # creation: the shape and dtype, with nothing computed or allocated
    @staticmethod
    def empty(shape, dtype=float, order="C", **kwargs):
        return ndarray(shape, dtype)

    zeros = ones = empty

    @staticmethod
    def full(shape, fill_value, dtype=None, order="C", **kwargs):
        return ndarray(shape, numpy.asarray(fill_value).dtype if dtype is None else dtype)

    @staticmethod
    def empty_like(a, dtype=None, order="K", subok=True, shape=None, **kwargs):
        return ndarray(a.shape if shape is None else shape, a.dtype if dtype is None else dtype)

    zeros_like = ones_like = empty_like

    @staticmethod
    def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, **kwargs):
        return ndarray(a.shape if shape is None else shape, a.dtype if dtype is None else dtype)

    @staticmethod
    def asarray(a, dtype=None, order=None, **kwargs):
        """Host data, a device array or a meta one as a meta array (its data is dropped)."""
        if isinstance(a, ndarray):
            return a if dtype is None or numpy.dtype(dtype) == a.dtype else a.astype(dtype)
        if not hasattr(a, "shape"):
            a = numpy.asarray(a, dtype=dtype)
        return ndarray(a.shape, a.dtype if dtype is None else dtype)

    @staticmethod
    def array(a, dtype=None, copy=True, order="K", **kwargs):
        return _Module.asarray(a, dtype)

    @staticmethod
    def ascontiguousarray(a, dtype=None, **kwargs):
        return _Module.asarray(a, dtype)

    @staticmethod
    def asnumpy(a, *args, **kwargs):
        """CuPy's copy to the host: a meta array has nothing to copy (torch's error)."""
        raise NotImplementedError(NO_DATA)

    @staticmethod
    def eye(n, m=None, k=0, dtype=float, **kwargs):
        return ndarray((n, n if m is None else m), dtype)


module = _Module("chainrule.meta", numpy)


class _RandomStream:
    """The meta device's random stream: draws of the right shape, no data, and no generator state
    advanced (torch's meta random ops leave every generator alone)."""

    @staticmethod
    def _draw(shape, dtype):
        return ndarray(() if shape is None else shape if isinstance(shape, tuple) else tuple(numpy.atleast_1d(shape)),
                       dtype)

    def random(self, size=None, dtype=numpy.float64):
        return self._draw(size, dtype)

    def standard_normal(self, size=None, dtype=numpy.float64):
        return self._draw(size, dtype)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self._draw(size, numpy.float64)

    def exponential(self, scale=1.0, size=None):
        return self._draw(size, numpy.float64)

    def geometric(self, p, size=None):
        return self._draw(size, numpy.int64)

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        return self._draw(size, dtype)

    def permutation(self, n):
        return ndarray((n,), numpy.int64)


random_stream = _RandomStream()


def _unchecked_result_device(arrays: list, op: str) -> int | None:
    """Which array's device torch's kernel gives the result of ``op`` when it checks no devices:
    its structured matrix products allocate on one argument's device and run the meta kernel on
    a mix of meta and CPU tensors (mm and a matmul folded into one: the first's; bmm and a
    matmul broadcast to one: the second's), as do its convolutions (the input's) and addmm's
    weight (linear's, its bias checked against the input). None: the devices are checked."""
    if op in ("matmul", "mm") and len(arrays) == 2 and getattr(arrays[1], "ndim", 0) >= 2:
        return 0 if arrays[1].ndim == 2 else 1
    if op == "bmm" and len(arrays) == 2:
        return 1
    if op in ("conv", "conv_transpose"):
        return 0
    if op == "linear" and len(arrays) == 3:  # Addmm's (bias, input, weight.t())
        bias, input = arrays[0], arrays[1]
        if isinstance(bias, ndarray) != isinstance(input, ndarray) and not (
                not isinstance(bias, ndarray) and getattr(bias, "ndim", 0) == 0):
            raise RuntimeError(f"Tensor on device {_device_name(bias)} is not on the expected device "
                               f"{_device_name(input)}!")
        return 1
    return None


def on_meta(arrays: list, op: str) -> list:
    """The arrays of one op with a meta array among them, all meta, or torch's RuntimeError: as in
    torch, a 0-d CPU tensor joins them (as a meta scalar); any other array is on another device,
    and torch expects the device of the first array that is no such scalar (Linear(3, 2,
    device="meta") on a CPU input: "Tensor on device meta is not on the expected device cpu!").
    The ops whose kernels check no devices (see _unchecked_result_device) run instead on the
    device torch's result has: all meta, or all CPU (a meta array read as zeros, where torch's
    result is uninitialised memory)."""
    chosen = _unchecked_result_device(arrays, op)
    if chosen is not None:
        if isinstance(arrays[chosen], ndarray):
            return [None if a is None else from_array(a) for a in arrays]
        return [a._a if isinstance(a, ndarray) else a for a in arrays]
    moved, expected = list(arrays), None
    for i, array in enumerate(arrays):
        if array is None:
            continue
        if not isinstance(array, ndarray) and isinstance(array, (numpy.ndarray, numpy.generic)) and array.ndim == 0:
            moved[i] = from_array(array)
            continue
        if expected is None:
            expected = array
        elif isinstance(array, ndarray) != isinstance(expected, ndarray):
            raise RuntimeError(f"Tensor on device {_device_name(array)} is not on the expected device "
                               f"{_device_name(expected)}!")
    return moved


def _operator(ufunc, reflected: bool = False):
    if reflected:
        return lambda self, other: ufunc(other, self)
    return lambda self, other: ufunc(self, other)


def _inplace_operator(ufunc):
    def operator(self, other):
        ufunc(self, other, out=(self,))
        return self

    return operator


for _name, _ufunc in (("add", numpy.add), ("sub", numpy.subtract), ("mul", numpy.multiply),
                      ("truediv", numpy.true_divide), ("floordiv", numpy.floor_divide), ("mod", numpy.remainder),
                      ("pow", numpy.power), ("matmul", numpy.matmul), ("and", numpy.bitwise_and),
                      ("or", numpy.bitwise_or), ("xor", numpy.bitwise_xor), ("lshift", numpy.left_shift),
                      ("rshift", numpy.right_shift)):
    setattr(ndarray, f"__{_name}__", _operator(_ufunc))
    setattr(ndarray, f"__r{_name}__", _operator(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_name}__", _inplace_operator(_ufunc))
for _name, _ufunc in (("eq", numpy.equal), ("ne", numpy.not_equal), ("lt", numpy.less), ("le", numpy.less_equal),
                      ("gt", numpy.greater), ("ge", numpy.greater_equal)):
    setattr(ndarray, f"__{_name}__", _operator(_ufunc))
for _name, _ufunc in (("neg", numpy.negative), ("pos", numpy.positive), ("abs", numpy.absolute),
                      ("invert", numpy.invert)):
    setattr(ndarray, f"__{_name}__", lambda self, _ufunc=_ufunc: _ufunc(self))
ndarray.__hash__ = None
