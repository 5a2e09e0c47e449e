"""Tensor: an array plus what autograd needs — requires_grad, grad, grad_fn and a version counter.

Methods for ops (``x.exp()``, ``x + y``, ``x.sum(dim)``...) are bound onto the class in
``chainrule/_methods.py`` from the op modules, so each op is defined once, as a function. This
module sits below the ops and imports none of them: where a method here needs one (``Tensor(data)``
converts data, ``to()`` casts), it calls a private method that ``_methods.py`` binds
(``_to_array``, ``_cast``, ``_to_device``). ``tensor.pyi`` lists every method for IDEs.
"""

from __future__ import annotations

import collections.abc
import numbers
import operator
import os
import sys
import weakref
from collections import OrderedDict

import numpy as np

from . import _config, _dtype, _torch_function, _vmap_frames
from ._backend import (
    array_module,
    contiguous_strides,
    device_of,
    memory_order,
    resolve,
    suggests_channels_last,
    to_device,
)
from ._backend import device as _device
from .autograd import forward_ad as _forward_ad
from .autograd import function as _autograd_function
from .autograd.function import AccumulateGrad, _keep_hook, is_recording
from .autograd.grad_mode import (
    INFERENCE_VERSION,
    INFERENCE_WRITE,
    DetachedInference,
    check_requires_grad_allowed,
    is_inference_mode_enabled,
)
from .storage import mark_not_resizable, pickled_view, rebuilt_view

__all__ = ["Tensor"]

_ndarray = np.ndarray



_SCALAR_WARNING = ("Converting a tensor with requires_grad=True to a scalar may lead to unexpected behavior.\n"
                   "Consider using tensor.detach() first. (Triggered internally at "
                   "/__w/pytorch/pytorch/torch/csrc/autograd/generated/python_variable_methods.cpp:822.)")


def _warn_scalar_leaves_the_graph() -> None:
    """torch's TORCH_WARN_ONCE, with its "(Triggered internally at ...)" tail, when float() or complex()
    of a tensor being recorded drops its graph (``total += float(loss)``, ``'%.3f' % loss``): once per
    process, at every call under set_warn_always(True); item() and int() do not warn."""
    _config.warn_once(_SCALAR_WARNING)

_PACKAGE_DIR = __file__.rsplit("tensor.py", 1)[0]


def _called_by_user() -> bool:
    """Whether the Tensor method asking was called from outside chainrule. Inside vmap only the
    user's own reads of a batched value are refused, as torch refuses them: chainrule's ops read
    0-d operands as numbers where torch's kernels need not."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename == _torch_function.WRAPPER_FILE:
        frame = frame.f_back  # the method's __torch_function__ wrapper
    return frame is None or not frame.f_code.co_filename.startswith(_PACKAGE_DIR)


_NOT_READ = object()


def _local_scalar_dense(tensor):
    """aten._local_scalar_dense's func: a user's item(), float(), int(), bool(), index() or complex()
    of a one-element tensor while active_dispatch is set, the innermost mode seeing the op (an outer one
    when its handler calls func); the number as item() reads it."""
    if tensor._wrapper_strides is not None:
        return Tensor.item(tensor)  # (its handler answers, as item() asks it)
    made = _autograd_function.factory_dispatch("_local_scalar_dense", _local_scalar_dense, (tensor,), {})
    if made is not _autograd_function.RUN_UNDISPATCHED:
        return made
    data = tensor._data
    return data.reshape(()).item() if isinstance(data, np.ndarray) else data.item()


def _is_built(tensor) -> bool:
    try:
        tensor._data  # noqa: B018
    except AttributeError:
        return False
    return True


def _suggested_format(array) -> str:
    """The name of torch's ``suggest_memory_format()`` for ``array``'s strides."""
    if suggests_channels_last(array):
        return "channels_last" if array.ndim == 4 else "channels_last_3d"
    return "contiguous_format"


class ConjugateViews:
    """The version counter of a family of tensors that has conj() views, and what keeps those views'
    values torch's: the conjugate of the memory they view.

    torch's conj() is a view that conjugates on read; chainrule's holds the conjugate in its own
    memory, so every read stays one plain array read. What ties that copy to the memory it conjugates
    is this counter, which the family shares in place of its one-element list: every in-place write
    bumps it (``box[0] += 1``, after the write), and the bump writes a changed copy's conjugate back
    into its source, then refreshes every copy from its source. Real tensors never hold one.

    ``counter``: the family's list, kept so that a tensor that still holds it counts the same
    versions (a write through such a tensor, made before the first conj() and not tracked by its
    root, does not refresh the copies). ``pairs``: per conj view, a weak reference to its copy
    (the array the view reads, a compact one for an expanded view), the source array the copy
    conjugates, the copy as last made (to tell which side was written), and weak references to the
    view, to the tensor it conjugates and to that tensor's root.

    A write while grad mode is on to a family where a pair's view, source or root requires grad
    waits in ``pending`` for the in-place op to record its node (``_methods._inplace`` then calls
    ``_methods.record_conj_write``), which writes the values and gives the other side a graph: the
    source the conj of the written view, or the view the conj of the written source. A pending pair
    no such op recorded (another in-place path, a leaf that requires grad, a source that is itself
    a view) ends at the next write: its view is a copy from then on, chainrule's behaviour before.
    ``busy`` while that recording writes (its own writes sync nothing)."""

    __slots__ = ("counter", "pairs", "pending", "busy")

    def __init__(self, counter: list) -> None:
        self.counter = counter
        self.pairs = []
        self.pending = None
        self.busy = False

    def __getitem__(self, index: int) -> int:
        return self.counter[index]

    def __setitem__(self, index: int, value: int) -> None:
        self.counter[index] = value
        if not self.busy:
            self.sync()

    def add(self, view: Tensor, copy, source_array, source: Tensor) -> None:
        """``view`` reads ``copy``, the conjugate of ``source_array``, the memory of ``source``."""
        self.pairs = [pair for pair in self.pairs if pair[0]() is not None]
        root = source if source._base is None else source._base
        self.pairs.append((weakref.ref(copy), source_array, copy.copy(), weakref.ref(view),
                           weakref.ref(source), weakref.ref(root)))

    def end(self, pair: tuple) -> None:
        self.pairs = [kept for kept in self.pairs if kept is not pair]

    def sync(self) -> None:
        # a pair lives while its copy does (the view, a view of it, or a later pair reading it)
        ended = self.pending or ()
        recording = _autograd_function.is_grad_enabled()
        kept, live, pending = [], [], []
        for pair in self.pairs:
            copy = pair[0]()
            if copy is None or any(pair is gone for gone in ended):
                continue
            kept.append(pair)
            if recording and any(tensor is not None and tensor._requires_grad for tensor in (ref() for ref in pair[3:])):
                pending.append(pair)
            else:
                live.append((copy, pair[1], pair[2]))
        self.pending = pending or None
        self.pairs = kept
        xp = array_module(live[0][0]) if live else None
        # newest first: a later view's source may be an earlier view's copy (the conj of a conj view)
        for copy, source, seen in reversed(live):
            if not xp.array_equal(copy, seen, equal_nan=True):  # written through the view
                source[...] = xp.conj(copy)
        for copy, source, seen in live:  # oldest first, for the same reason
            copy[...] = xp.conj(source)
            seen[...] = copy

    def is_conj_view(self, tensor: Tensor) -> bool:
        """Whether ``tensor`` is one of the family's conj() results (torch's is a view: ``_is_view()``)."""
        return any(pair[3]() is tensor for pair in self.pairs)


_COMPLEX_TO_REAL = ("Casting complex values to real discards the imaginary part (Triggered internally at "
                    "/__w/pytorch/pytorch/aten/src/ATen/native/Copy.cpp:307.)")


# set by ops/index.py: views_follow_root(root) gives the live views of ``root`` made while it did not
# require grad its new flag (torch's view reads requires_grad from its base)
views_follow_root = None


def warn_discarding_imaginary(source: _dtype.dtype, target: _dtype.dtype) -> None:
    """torch's copy kernel's once-a-process warning where a complex ``source`` is written into a real
    ``target`` (to(), copy_, ``x[i] = z``); a bool target takes ``z != 0`` and says nothing."""
    if source.is_complex and not target.is_complex and target is not _dtype.bool:
        _config.warn_once(_COMPLEX_TO_REAL)


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    Mirrors ``torch.Tensor``: float32 by default, ``requires_grad`` opts in to recording,
    ``backward()`` fills ``.grad`` of the leaves. ``numpy()`` and ``from_numpy`` share memory.
    """

    # Slots for what every tensor sets; what few tensors set (hooks, a leaf's accumulator, a
    # retained grad, a parameter's name) are class-level defaults instead, so the ops' fast
    # constructor ``_make`` stores 7 attributes rather than 12, and a tensor that sets one gets
    # its ``__dict__`` (which also lets users set attributes on tensors, as torch does).
    __slots__ = ("_data", "_requires_grad", "_grad_fn", "_output_nr", "_grad", "_vbox", "_base",
                 "__dict__", "__weakref__")
    _hooks = None
    _post_accumulate_grad_hooks = None
    _accumulator = None
    _retains_grad = False
    # torch's "wrapped number": a 0-d tensor made from a Python number operand (ops/elementwise.py's
    # _as_operand); saved-tensor hooks never see one (autograd/graph.py's _pack_outputs)
    _wrapped_number = False
    _grad_dtype = False  # torch's grad_dtype: False = the tensor's dtype, None = any, else that dtype
    # a wrapper subclass's strides as its constructor gave them (its array is a zero-strided placeholder)
    _wrapper_strides = None
    # (shape, strides in elements) of the empty ndarray a constructor made this tensor of: torch keeps
    # the array's strides there (NumPy's zeroed ones too) where a fresh empty tensor's are contiguous
    _numpy_empty_strides = None
    _name = None
    _live_views = None  # weak references to the views made from this tensor while recording
    _nondifferentiable_view = False  # a view(dtype): shares memory, never the graph (ops/shape.py _share)
    _view_state = None  # a view whose grad_fn is regenerated or refused when next read (ops/index.py)
    _multi_output_view = False  # an unbind/split output or a view of one: never written in place (ops/shape.py)
    _sparse_layout = False  # COO or compressed (sparse.py): the engine sums and accumulates such gradients apart
    _conj_bit = False  # conj()'s result: torch's lazily conjugated view, which is_conj() and view_as_real see (ops/complex.py)

    # make ndarray <op> Tensor defer to Tensor's reflected operators
    __array_priority__ = 1000

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        _torch_function.note_tensor_subclass(cls)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """torch's default handler: run ``func`` with the arguments' handlers off and give Tensor
        results (in tuples and lists too) the class ``cls``, unless ``func`` reads ``grad`` or
        ``_base`` (torch.overrides.get_default_nowrap_functions). NotImplemented when a type among
        ``types`` is not a superclass of ``cls``, so that type's own handler is asked."""
        if not all(issubclass(cls, kind) for kind in types):
            return NotImplemented
        with _torch_function.DisableTorchFunctionSubclass():
            result = func(*args, **(kwargs or {}))
            if func in DEFAULT_NOWRAP_FUNCTIONS:
                return result
            return _convert(result, cls)

    def __new__(cls, *args, **kwargs):
        """torch's legacy constructor given one tensor, ``Tensor(t)`` or ``MySubclass(t)``, returns an
        alias of it: the same memory and version counter, on its autograd graph (AliasBackward0), in
        its own dtype. Everything else is built by ``__init__``."""
        if len(args) == 1 and not kwargs and isinstance(args[0], Tensor) and cls.__init__ is Tensor.__init__:
            return cls._legacy_alias(args[0], cls)
        return object.__new__(cls)

    def __init__(self, *args, **kwargs) -> None:
        """``Tensor(data)`` copies data as the default float dtype; ``Tensor(2, 3)``, ``Tensor(Size)``
        and ``Tensor(size=...)`` make a zero-filled tensor of that shape (torch's is uninitialised).
        ``Tensor(tensor)`` is an alias, made by ``__new__``. As torch's legacy constructor, it takes
        ``device`` (a CPU one) and no ``dtype`` or ``requires_grad``."""
        if _is_built(self):
            # __new__ built it (an alias, or a subclass's __new__: tv_tensors.BoundingBoxes(data,
            # format=...) returns ``tensor.as_subclass(cls)``) and Python now calls __init__ with
            # __new__'s arguments: torch's Tensor does all its construction in __new__
            return
        if type(self) is not Tensor:
            self._init_subclass_instance(args, **kwargs)
            return
        args, device = legacy_keywords(args, kwargs)
        check_legacy_device(device, "cpu")
        if device is not None and args and isinstance(args[0], Tensor):
            raise RuntimeError("Legacy tensor constructor of the form torch.Tensor(tensor, device=device) is not "
                               "supported.  Use torch.tensor(...) or torch.as_tensor(...) instead.")
        dt = _dtype.get_default_dtype()
        sizes, data = legacy_arguments(args) if args else (None, [])
        if sizes is not None:
            array = np.zeros(sizes, dtype=dt.np)
        else:
            array = self._legacy_data_array(data, dt)
        self._init(array)
        if type(data) is np.ndarray and not data.size:
            self._keep_numpy_empty_strides(self, data)

    def _init_subclass_instance(self, args: tuple, requires_grad: bool = False, dtype=None,
                                **subclass_arguments) -> None:
        if subclass_arguments:
            raise TypeError(f"Tensor.__init__() got an unexpected keyword argument '{next(iter(subclass_arguments))}'")
        dt = _dtype.to_dtype(dtype) if dtype is not None else _dtype.get_default_dtype()
        sizes, data = legacy_arguments(args) if args else (None, [])
        array = np.zeros(sizes, dtype=dt.np) if sizes is not None else self._legacy_data_array(data, dt)
        self._init(array, requires_grad)

    @classmethod
    def _legacy_of_dtype(cls, args: tuple, dtype: _dtype.dtype) -> Tensor:
        """``x.new(*args)``'s tensor of ``dtype`` (the legacy constructor's parse of ``args``)."""
        sizes, data = legacy_arguments(args)
        if sizes is not None:
            return cls._make(np.zeros(sizes, dtype=dtype.np))
        return cls._make(cls._legacy_data_array(data, dtype))

    def _init(self, array, requires_grad: bool = False, grad_fn=None, output_nr: int = 0) -> None:
        self._data = array
        self._requires_grad = requires_grad or grad_fn is not None
        self._grad_fn = grad_fn
        self._output_nr = output_nr
        self._grad = None
        self._vbox = None
        self._base = None

    @classmethod
    def _make(cls, array, grad_fn=None, output_nr: int = 0) -> Tensor:
        """Wrap an array without copying or checks (the ops' fast constructor)."""
        if type(array) is not _ndarray and isinstance(array, np.generic):
            array = np.asarray(array)  # NumPy reductions and 0-d math return scalars
        t = object.__new__(cls)
        t._data = array
        t._requires_grad = grad_fn is not None
        t._grad_fn = grad_fn
        t._output_nr = output_nr
        t._grad = None
        t._vbox = None  # no version counter object until one is needed (see _version_box)
        t._base = None
        return t

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self) -> Size:
        return tuple.__new__(Size, self._data.shape)  # (an array's sizes are ints: Size() would check them)

    def size(self, dim: int | None = None):
        if dim is None:
            return tuple.__new__(Size, self._data.shape)
        shape = self._data.shape
        if not shape:  # torch's size(dim) of a 0-d tensor: no dim is in range, not even 0 or -1
            raise IndexError(f"Dimension specified as {dim if type(dim) is int else _dim_index(dim, 'size')} "
                             f"but tensor has no dimensions")
        return shape[_wrap_dim(dim, len(shape), "size")]

    @property
    def dtype(self) -> _dtype.dtype:
        return _dtype._BY_NP[self._data.dtype]

    @property
    def device(self) -> _device:
        return device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def numel(self) -> int:
        return self._data.size

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of the elements (numel * itemsize), as torch's: a view counts its own elements."""
        return self._data.size * self._data.itemsize

    def stride(self, dim: int | None = None):
        if self._wrapper_strides is not None:
            strides = self._wrapper_strides
        elif self._data.size == 0 and (self._numpy_empty_strides is not None or not any(self._data.strides)):
            # NumPy zeroes a fresh empty array's strides (a view keeps its own, as torch's does: x[:, 4:]
            # of a (3, 4) is (4, 1)); torch gives a fresh one the contiguous strides of its shape,
            # counting a 0-length dim as 1 ((2, 0, 3) → (3, 3, 1)), and keeps an empty NumPy array's
            # (kept here, through copies and permutations of it, whatever strides their arrays have)
            kept = self._numpy_empty_strides
            strides = kept[1] if kept is not None and kept[0] == self._data.shape else \
                contiguous_strides(self._data.shape) if not any(self._data.strides) else \
                tuple(s // self._data.itemsize for s in self._data.strides)
        else:
            strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[_wrap_dim(dim, self._data.ndim, "stride")]

    def is_contiguous(self, memory_format=None) -> bool:
        rank = None if memory_format is None else _CHANNELS_LAST_RANKS.get(getattr(memory_format, "_name", None))
        if rank is not None:  # laid out (N, ..., C) in memory; torch answers False for another rank
            if self._data.ndim != rank:
                return False
            if self._data.size == 0:
                # NumPy keeps no strides for an empty array: torch's channels-last test on the
                # contiguous strides stride() reports (every dim but size-1 ones in (C, W, H, [D,] N) order)
                expected, strides = 1, self.stride()
                for d in (1, *range(rank - 1, 1, -1), 0):
                    if self._data.shape[d] != 1:
                        if strides[d] != expected:
                            return False
                        expected *= self._data.shape[d]
                return True
            return bool(array_module(self._data).moveaxis(self._data, 1, -1).flags.c_contiguous)
        if self._wrapper_strides is not None:
            expected = 1
            for length, step in zip(reversed(self._data.shape), reversed(self._wrapper_strides)):
                if length != 1 and step != expected:
                    return self._data.size == 0
                expected *= length
            return True
        return bool(self._data.flags.c_contiguous)

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind in _dtype.FLOAT_KINDS

    def is_complex(self) -> bool:
        return self._data.dtype.kind == "c"

    def data_ptr(self) -> int:
        return self._data.__array_interface__["data"][0] if isinstance(self._data, np.ndarray) else 0

    @property
    def _cdata(self) -> int:
        """torch's address of the tensor's C++ object: one per tensor object (a view or ``detach()``
        is another), so Pyro's ``pyro.module`` asks by it whether the param store handed back the
        same parameter. Here each tensor object is its own, so its ``id``."""
        return id(self)

    def _is_view(self) -> bool:
        """Whether this tensor is a view of ``_base`` (torch's private check; torchviz reads it). A view
        of an inference tensor is none, as torch's (its ``_base`` is kept for writes through it)."""
        return self._base is not None and self._vbox is not INFERENCE_VERSION

    @property
    def _version_box(self) -> list:
        """The version counter: a one-element list, shared with the views of this tensor.

        Made on first use: most tensors (an op's output, a gradient) are never written in
        place nor viewed, and a list per tensor is one more object for the cyclic garbage
        collector to visit in a long graph. Until then ``_vbox`` is None and the version 0;
        the hot paths read ``_vbox`` directly."""
        box = self._vbox
        if box is None:
            box = self._vbox = [0]
        elif box is INFERENCE_VERSION:
            return INFERENCE_WRITE  # an inference tensor: writes are refused outside inference mode
        elif type(box) is DetachedInference:  # (its detach outside inference_mode: writes allowed)
            return box.counter
        return box

    @_version_box.setter
    def _version_box(self, box: list) -> None:
        self._vbox = box

    @property
    def _version(self) -> int:
        box = self._vbox
        if box is INFERENCE_VERSION:  # none kept, so none to read (torch's words)
            raise RuntimeError("Inference tensors do not track version counter.")
        return 0 if box is None else self._version_box[0]

    def _bump_version(self) -> None:
        self._version_box[0] += 1

    # ------------------------------------------------------------------ autograd state
    @property
    def grad_fn(self):
        """The node that made this tensor; None for a leaf. A view whose base changed in place
        since gets its node regenerated from the base's graph here, or refused (one made under
        no_grad), as torch's: the state that says so is ``_view_state``, set by ops/index.py."""
        if self._base is None or self._view_state is None:  # (slots first: a plain tensor's read stays cheap)
            return self._grad_fn
        return self._view_state.grad_fn(self)

    @grad_fn.setter
    def grad_fn(self, node) -> None:
        self._grad_fn = node
        if self._view_state is not None:
            self._view_state.assigned(self)

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        # torch's attribute setter (python_variable.cpp) words its dtype refusal apart from requires_grad_()'s
        self._set_requires_grad(
            value, dtype_refusal="only Tensors of floating point and complex dtype can require gradients")

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self._set_requires_grad(requires_grad)
        return self

    def _set_requires_grad(
        self, value: bool, dtype_refusal: str = "only Tensors of floating point dtype can require gradients"
    ) -> None:
        value = bool(value)
        if self.grad_fn is not None:
            if not value:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to use "
                    "a computed variable in a subgraph that doesn't require differentiation use "
                    "var_no_grad = var.detach()."
                )
            return
        if value:
            check_requires_grad_allowed(self._vbox)
        if value and self._data.dtype.kind not in _dtype.FLOAT_KINDS + "c":
            raise RuntimeError(dtype_refusal)
        if value and self._view_state is not None:
            self._view_state.leaf = True  # a view made under no_grad, now a leaf of its own (ops/shape.py)
        if not value and self._base is not None and self._base._requires_grad and not self._nondifferentiable_view:
            # torch's view requires grad while its base does, whatever its own flag says
            if self._view_state is not None:
                self._view_state.leaf = False
            return
        was, self._requires_grad = self._requires_grad, value
        if self._live_views and was != value and self._base is None:
            views_follow_root(self)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self) -> Tensor | None:
        if self._grad is None and self.grad_fn is not None and not self._retains_grad:
            import warnings

            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
                ".grad attribute won't be populated during autograd.backward(). If you indeed want "
                "the .grad field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf "
                "Tensor. If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
                "instead. See github.com/pytorch/pytorch/pull/30531 for more information. (Triggered "
                "internally at /__w/pytorch/pytorch/build/aten/src/ATen/core/TensorBody.h:493.)",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}")
            if value._data.shape != self._data.shape:
                raise RuntimeError(
                    f"attempting to assign a gradient of size '{list(value.shape)}' to a tensor of size "
                    f"'{list(self.shape)}'. Please ensure that the gradient and the tensor are the same size"
                )
            wanted = self.dtype if self._grad_dtype is False else self._grad_dtype
            if wanted is not None and value.dtype is not wanted:
                raise RuntimeError(
                    f"attempting to assign a gradient with dtype '{_dtype.cpp_type_name(value.dtype)}' to a tensor "
                    f"with grad_dtype '{_dtype.scalar_name(wanted)}'. The gradient must match the tensor's grad_dtype (defaults "
                    "to the tensor's dtype). You can set the tensor's grad_dtype attribute with a specific "
                    "dtype, or None to allow any dtype. Set grad_dtype with caution. Diverging the dtypes of "
                    "a tensor and its gradient may break downstream systems that assume they match."
                )
            if value is self:  # torch compares the tensors themselves: a view of self may be assigned
                raise RuntimeError("can't assign Variable as its own grad")
        self._grad = value

    @property
    def grad_dtype(self):
        """The dtype a leaf's ``.grad`` must have: the tensor's own unless set; ``None`` allows any,
        and a dtype makes backward accumulate the gradient in it."""
        if self.grad_fn is not None:
            raise RuntimeError("grad_dtype can only be accessed on leaf tensors.")
        return self.dtype if self._grad_dtype is False else self._grad_dtype

    @grad_dtype.setter
    def grad_dtype(self, value) -> None:
        from ._dtype import dtype as _dtype_class

        if self.grad_fn is not None:
            raise RuntimeError("grad_dtype can only be set on leaf tensors.")
        if value is not None and not isinstance(value, _dtype_class):
            raise RuntimeError(f"grad_dtype must be a torch.dtype or None, but got {type(value).__name__}")
        if value is not None and self._grad is not None and self._grad.dtype is not value:
            raise RuntimeError(
                f"Cannot set grad_dtype to '{value.name}' because there is already a gradient with dtype "
                f"'{self._grad.dtype.name}'. Please clear the gradient (.grad = None) before changing grad_dtype, "
                "or ensure the new grad_dtype matches the existing gradient's dtype.")
        self._grad_dtype = value

    @grad.deleter
    def grad(self) -> None:
        self._grad = None

    @property
    def name(self) -> str | None:
        """An optional label (parameters get theirs from modules) used by graph drawings."""
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value

    def _get_accumulator(self) -> AccumulateGrad | None:
        if self._base is not None and self._view_state is not None:
            return self._view_state.accumulator(self)  # a view made under no_grad: none, as torch
        return self._leaf_accumulator()

    def _leaf_accumulator(self) -> AccumulateGrad:
        acc = self._accumulator() if self._accumulator is not None else None
        if acc is None:
            acc = AccumulateGrad(self)
            self._accumulator = weakref.ref(acc)
        return acc

    def retain_grad(self) -> None:
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        fn = self.grad_fn
        if fn._retained is None:
            fn._retained = {}
            fn._hooked = True  # the engine's walk runs this node's retained-grad step
        fn._retained[self._output_nr] = weakref.ref(self)

    def _move_retained_grad(self, old) -> None:
        """This tensor took a new grad_fn in place of ``old`` (an in-place op, a view regenerated
        from its base): its retained grad follows it to the new node, as torch's does."""
        if old is not None and old._retained:
            old._retained = {nr: ref for nr, ref in old._retained.items() if ref() is not self} or None
        fn = self._grad_fn
        if fn is None or fn is old:
            return
        if fn._retained is None:
            fn._retained = {}
            fn._hooked = True
        fn._retained[self._output_nr] = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor replaces it."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        hook = _checked_hook(hook)
        if self.grad_fn is not None:
            return self.grad_fn._register_tensor_hook(self._output_nr, hook)
        if self._hooks is None:
            self._hooks = OrderedDict()
        return _keep_hook(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` after backward has accumulated into this leaf's ``.grad``
        (torch's post-accumulate-grad hook; DistributedDataParallel starts its all-reduces here)."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if self._post_accumulate_grad_hooks is None:
            self._post_accumulate_grad_hooks = OrderedDict()
        return _keep_hook(self._post_accumulate_grad_hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into each leaf's ``.grad``; see ``chainrule.autograd.backward``."""
        from .autograd.engine import backward

        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> Tensor:
        """A tensor sharing data (and version counter) with this one, outside the graph."""
        if _autograd_function.factory_dispatch is not None and _autograd_function.active_dispatch is not None:
            # a dispatch mode or a wrapper subclass answers it as aten.detach (a wrapper's values are inside it)
            made = _autograd_function.factory_dispatch("detach", Tensor._plain_detach, (self,), {})
            if made is not _autograd_function.RUN_UNDISPATCHED:
                return made
        return self._plain_detach()

    def _plain_detach(self) -> Tensor:
        t = Tensor._make(self._data)
        box = self._vbox
        if box is None:  # (the _version_box property's first use, inline: made at version 0 and shared)
            box = self._vbox = [0]
        elif box is INFERENCE_VERSION or box is INFERENCE_WRITE or type(box) is DetachedInference:
            # torch: detached outside inference_mode, an inference tensor is still one (never saved
            # for backward) but may be written in place, with a version counter of its own (each
            # detach a new one: an inference tensor shares none)
            box = INFERENCE_VERSION if is_inference_mode_enabled() else DetachedInference([0])
        t._vbox = box
        if self._conj_bit:  # torch's detach keeps the conj bit
            t._conj_bit = True
        if self._numpy_empty_strides is not None:  # (a view: an empty NumPy array's strides, as torch's)
            t._numpy_empty_strides = self._numpy_empty_strides
        if _vmap_frames._frames:  # batched where self is, as torch's detach of a batched tensor
            _vmap_frames.note_results((self,), None, t)
        return t

    def detach_(self) -> Tensor:
        box = self._vbox
        if ((self._base is not None and not self._nondifferentiable_view)  # any view, as torch's is_view()
                or (type(box) is ConjugateViews and box.is_conj_view(self))):
            raise RuntimeError(
                "Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel "
                "(DDP) for training, and gradient_as_bucket_view is set as True, gradients are views of DDP "
                "buckets, and hence detach_() cannot be called on these gradients. To fix this error, please "
                "refer to the Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution."
            )
        self.grad_fn = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> Tensor:
        if self._wrapper_strides is not None:  # a wrapper subclass's values are inside it: its handler detaches
            return self.detach()
        t = Tensor._make(self._data)
        if self._conj_bit:  # (as detach: torch's .data keeps the conj bit)
            t._conj_bit = True
        if _vmap_frames._frames:  # batched (or not) where self is, as torch's
            _vmap_frames.note_results((self,), None, t)
        return t

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {_dtype.c_type_name(value)}")
        if self.requires_grad and not (value.dtype.is_floating_point or value.dtype.is_complex):
            raise RuntimeError("data set to a tensor that requires gradients must be floating point or complex dtype")
        self._data = value._data

    # ------------------------------------------------------------------ conversion
    def item(self):
        if _vmap_frames._frames:  # (one list's truth outside vmap)
            _vmap_frames.refuse_item(self) if _called_by_user() else _vmap_frames.note_value_read(self)
        if self._wrapper_strides is not None and _autograd_function.active_dispatch is not None:
            # a wrapper subclass's value is inside it: its handler answers aten._local_scalar_dense
            made = _autograd_function.factory_dispatch("_local_scalar_dense", Tensor.item, (self,), {})
            if made is not _autograd_function.RUN_UNDISPATCHED:
                return made
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        if _autograd_function.active_dispatch is not None and _called_by_user():
            return _local_scalar_dense(self)  # (a mode sees torch's aten._local_scalar_dense)
        return self._data.reshape(()).item() if isinstance(self._data, np.ndarray) else self._data.item()

    def tolist(self):
        if _vmap_frames._frames:
            _vmap_frames.refuse_data_access(self) if _called_by_user() else _vmap_frames.note_value_read(self)
        return _host(self._data).tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        if _vmap_frames._frames:
            _vmap_frames.refuse_data_access(self) if _called_by_user() else _vmap_frames.note_value_read(self)
        # refused only where grad mode is on, as torch: under no_grad the array is shared (BoTorch
        # reads its parameters for SciPy's optimizer this way)
        if not force and is_recording(self):
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        if type(self._data) is not np.ndarray:
            if not force:
                raise TypeError(
                    f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy "
                    "the tensor to host memory first."
                )
            return _host(self._data)
        if self._conj_bit and not force and _called_by_user():
            raise RuntimeError("Can't call numpy() on Tensor that has conjugate bit set. Use tensor.resolve_conj().numpy() "
                               "instead.")
        if _called_by_user():
            # the user now holds the tensor's memory as a NumPy array: torch's storage can no
            # longer grow (resize_ past its end raises)
            mark_not_resizable(self._data)
        return self._data

    def __array__(self, dtype=None, copy=None):
        # torch's __array__ is numpy(): a cuda tensor never converts implicitly
        if self._conj_bit and _called_by_user():
            raise RuntimeError("Can't call numpy() on Tensor that has conjugate bit set. Use tensor.resolve_conj().numpy() "
                               "instead.")
        array = self.numpy()
        if _called_by_user():  # (np.asarray(t), np.exp(t): NumPy's C code asks)
            mark_not_resizable(array)
        # NumPy 2 passes copy=True for np.array(t) and trusts the answer: a copy, as torch's gives
        return array.astype(array.dtype if dtype is None else dtype, copy=bool(copy))

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # torch's: what a NumPy ufunc or function computes from tensors (np.exp(t), np.add(t, 1),
        # ndarray + t, np.argmax(t)) comes back as a tensor sharing the result's memory, a bool
        # result as uint8 and a 0-d result as a 0-d tensor (return_scalar is not honoured either)
        if array.dtype == np.bool_:
            array = array.astype(np.uint8)
        return Tensor._make(array)

    def __dlpack__(self, *args, **kwargs):
        if self._requires_grad:
            raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def to(self, *args, **kwargs) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)``; ``copy=False``."""
        dtype = _dtype.dtype_argument("to", kwargs.pop("dtype", None), overloaded=True)
        dev = kwargs.pop("device", None)
        if dev is not None and not isinstance(dev, (str, _device, int)):
            raise _dtype.argument_error("to", "device", "torch.device", dev, overloaded=True)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        memory_format = kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        # torch's overloads end in the positional flags ``non_blocking, copy``: ``to(device, dtype, False, True)``
        flags = [a for a in args if isinstance(a, bool)]
        if len(flags) > 2 or args[len(args) - len(flags):] != tuple(flags) or (flags and len(flags) == len(args)):
            raise TypeError(f"to() received an invalid argument {flags[0]!r}")
        if len(flags) == 2:
            copy = flags[1]
        args = args[:len(args) - len(flags)]
        for position, a in enumerate(args):
            if a is None and position < 2:
                continue  # ``to(None)``, ``to(None, dtype)``: torch's defaults (device=None, dtype=None)
            if isinstance(a, Tensor):
                dtype, dev = a.dtype, a.device
            elif isinstance(a, _dtype.dtype) or isinstance(a, type):  # a Python type, or refused there
                dtype = _dtype.dtype_argument("to", a, overloaded=True)
            elif isinstance(a, (str, _device)) or (isinstance(a, int) and not isinstance(a, bool)):
                dev = _device(a)  # an int is an accelerator index, as torch reads ``x.to(local_rank)``
            else:
                raise TypeError(f"to() received an invalid argument {a!r}")
        if _autograd_function.active_dispatch is not None and (dev is None or resolve(dev) == self.device):
            made = self._copy_as_to(dtype, dev is not None, memory_format, copy)  # (torch's one _to_copy)
            if made is not None:
                if _vmap_frames._frames:
                    _vmap_frames.note_results((self,), None, made)
                return made
        out = self
        if dev is not None and resolve(dev) != self.device:
            out = out._to_device(_device(dev))
        if dtype is not None and _dtype.to_dtype(dtype) is not out.dtype:
            warn_discarding_imaginary(out.dtype, _dtype.to_dtype(dtype))
            out = out._cast(_dtype.to_dtype(dtype))
        name = getattr(memory_format, "_name", None)
        # nothing else changing, torch hands back self when its strides suggest the format asked for
        if name not in (None, "preserve_format") and (out is not self or name != _suggested_format(self._data)):
            out = out._copy_in_memory_format(memory_format, fresh=out is not self)
        if copy and out is self:  # (torch's _to_copy: ToCopyBackward0)
            out = self._copy_as_to(None, False, None, True)
            if out is None:
                out = self.clone()
        if out is not self and not self._data.size and name in (None, "preserve_format") and self._data.ndim:
            # torch's _to_copy is empty_like's preserve_format: an empty input's strides, whatever they are
            out._numpy_empty_strides = (self._data.shape, self.stride())
        if out is not self and _vmap_frames._frames:  # a cast is batched where self is (``int(x.long())``)
            _vmap_frames.note_results((self,), None, out)
        return out

    def type(self, dtype=None, non_blocking: bool = False, **kwargs):
        """torch's legacy type API: no argument gives the type's name as torch spells it
        ('torch.FloatTensor', 'torch.cuda.LongTensor', which old scripts compare against);
        a dtype, such a name or a legacy type (chainrule.LongTensor) casts, returning self
        when nothing changes. ``async`` is the old spelling of ``non_blocking``, as in torch."""
        non_blocking = kwargs.pop("async", non_blocking)
        if kwargs:
            raise TypeError(f"type() got unexpected keyword arguments {sorted(kwargs)}")
        if dtype is None:
            layout = "sparse." if self.is_sparse else ""  # torch.sparse.FloatTensor, torch.cuda.sparse.FloatTensor
            name = _TYPE_NAMES.get(self.dtype.name) or f"{_dtype.scalar_name(self.dtype)}Tensor"  # UInt16Tensor
            return f"torch.{'cuda.' if self.is_cuda else ''}{layout}{name}"
        if dtype is Tensor:  # the default tensor type, as torch.Tensor names it (nflows' `mask.type(torch.Tensor)`)
            dtype = "torch.Tensor"
        if isinstance(dtype, str) or isinstance(getattr(dtype, "dtype", None), _dtype.dtype):
            target, on_cuda = legacy_type_of(dtype)
            return self.to("cuda" if on_cuda else "cpu", target, non_blocking=non_blocking)
        if isinstance(dtype, type):  # torch's type() takes its own dtypes and legacy types, not float
            plain = dtype.__module__ == "builtins" or issubclass(dtype, Tensor)  # (torch names a subclass bare)
            name = dtype.__name__ if plain else f"{dtype.__module__}.{dtype.__qualname__}"
            raise ValueError(f"invalid type: '{name}'")
        if not isinstance(dtype, _dtype.dtype):
            raise TypeError("dtype must be a type, str, or dtype object")
        return self.to(dtype, non_blocking=non_blocking)

    def float(self, memory_format=None) -> Tensor:
        return self.to(_dtype.float32, memory_format=memory_format)

    def double(self, memory_format=None) -> Tensor:
        return self.to(_dtype.float64, memory_format=memory_format)

    def half(self, memory_format=None) -> Tensor:
        return self.to(_dtype.float16, memory_format=memory_format)

    def bfloat16(self, memory_format=None) -> Tensor:
        return self.to(_dtype.bfloat16, memory_format=memory_format)

    def long(self, memory_format=None) -> Tensor:
        return self.to(_dtype.int64, memory_format=memory_format)

    def int(self, memory_format=None) -> Tensor:
        return self.to(_dtype.int32, memory_format=memory_format)

    def short(self, memory_format=None) -> Tensor:
        return self.to(_dtype.int16, memory_format=memory_format)

    def bool(self, memory_format=None) -> Tensor:
        return self.to(_dtype.bool, memory_format=memory_format)

    def byte(self, memory_format=None) -> Tensor:
        return self.to(_dtype.uint8, memory_format=memory_format)

    def char(self, memory_format=None) -> Tensor:
        return self.to(_dtype.int8, memory_format=memory_format)

    def cfloat(self, memory_format=None) -> Tensor:
        return self.to(_dtype.complex64, memory_format=memory_format)

    def cdouble(self, memory_format=None) -> Tensor:
        return self.to(_dtype.complex128, memory_format=memory_format)

    def chalf(self, memory_format=None) -> Tensor:
        # (torch's experimental complex32: the cast names what chainrule lacks, after torch's argument checks)
        return self.to(_dtype.complex32, memory_format=memory_format)

    def cpu(self, memory_format=None) -> Tensor:
        return self.to("cpu", memory_format=memory_format)

    def cuda(self, device=None, non_blocking: bool = False, memory_format=None) -> Tensor:
        device = "cuda" if device is None else _device("cuda", device) if isinstance(device, int) else device
        return self.to(device, non_blocking=non_blocking, memory_format=memory_format)

    # ------------------------------------------------------------------ python protocol
    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self.dim() == 0:  # the method, as torch's __iter__ calls it (a mode sees dim, then unbind)
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __bool__(self) -> bool:
        if _vmap_frames._frames:
            _vmap_frames.refuse_control_flow(self) if _called_by_user() else _vmap_frames.note_value_read(self)
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        if _autograd_function.active_dispatch is not None and _called_by_user():
            return bool(_local_scalar_dense(self))
        return bool(self._data.reshape(()))

    def __contains__(self, element) -> bool:
        if not isinstance(element, (Tensor, int, float, bool, np.number, np.bool_)):
            raise RuntimeError(
                f"Tensor.__contains__ only supports Tensor or scalar, but you passed in a {type(element)}."
            )
        # an op, not NumPy's ==: a tensor that does not broadcast is torch's RuntimeError naming the sizes
        return bool((element == self).any().item())

    def __float__(self) -> float:
        if _vmap_frames._frames:
            _vmap_frames.refuse_item(self) if _called_by_user() else _vmap_frames.note_value_read(self)
        if self._data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        if is_recording(self):
            _warn_scalar_leaves_the_graph()
        if _autograd_function.active_dispatch is not None and _called_by_user():
            return float(self._real_item("double", _local_scalar_dense(self)))
        return float(self._real_item("double"))

    def __int__(self) -> int:
        if _vmap_frames._frames:
            _vmap_frames.refuse_item(self) if _called_by_user() else _vmap_frames.note_value_read(self)
        if self._data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        if _autograd_function.active_dispatch is not None and _called_by_user():
            return int(self._real_item("int64_t", _local_scalar_dense(self)))
        return int(self._real_item("int64_t"))

    def _real_item(self, c_type: str, value=_NOT_READ):
        """item() (or ``value``, read through a dispatch mode), a complex one as its real part when its
        imaginary part is 0: torch's float() and int() convert through c10's checked cast, which
        refuses a nonzero imaginary part."""
        if value is _NOT_READ:
            value = self.item()
        if isinstance(value, complex):
            if value.imag != 0:
                raise RuntimeError(f"value cannot be converted to type {c_type} without overflow")
            return value.real
        return value

    def __index__(self) -> int:
        if _vmap_frames._frames:  # range(t), seq[t]: a number per slice
            _vmap_frames.refuse_item(self) if _called_by_user() else _vmap_frames.note_value_read(self)
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        if _autograd_function.active_dispatch is not None and _called_by_user():
            return int(_local_scalar_dense(self))
        return int(self.item())

    def __complex__(self) -> complex:
        if self._data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        if is_recording(self):
            _warn_scalar_leaves_the_graph()
        if _autograd_function.active_dispatch is not None and _called_by_user():
            return complex(_local_scalar_dense(self))
        return complex(self.item())

    def __hash__(self) -> int:
        return id(self)  # torch hashes a tensor by identity, and code reads hash(t) == id(t)

    def __reversed__(self) -> Tensor:
        """reversed(t): the tensor flipped along dim 0 (a 0-d tensor is itself), as torch."""
        return self if self.dim() == 0 else self.flip(0)

    def __repr__(self, *, tensor_contents: str | None = None) -> str:
        from ._format import format_tensor

        return format_tensor(self, tensor_contents)

    def __format__(self, spec: str) -> str:
        # as torch: only a plain 0-d tensor with values formats as its number; a Parameter, a subclass's
        # tensor or a meta tensor formats as its repr (and refuses a format spec, as object's does)
        if self._data.ndim == 0 and type(self) is Tensor and self.device.type != "meta":
            if _autograd_function.active_dispatch is not None:  # (a mode sees torch's detach, _local_scalar_dense)
                return _local_scalar_dense(self.detach()).__format__(spec)
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __reduce_ex__(self, protocol):
        view = pickled_view(self._data) if type(self._data) is _ndarray else None
        if view is not None:
            reduced = (_rebuild_view, (*view, self._requires_grad))
        else:
            array = _host(self._data)
            order = memory_order(array)
            # torch pickles the storage with the strides: a channels-last (or transposed) tensor comes
            # back laid out as it went, so the array travels in memory order and is transposed back
            reduced = (_rebuild, (array, self._requires_grad, str(self.device)) if order is None else
                       (np.ascontiguousarray(array.transpose(order)), self._requires_grad, str(self.device), order))
        # torch pickles the conj bit with the tensor: it comes back set (the instance's own attribute);
        # and an empty tensor's strides, which its rebuilt empty array cannot hold when they are zeros
        state = {"_conj_bit": True} if self._conj_bit else {}
        if self._numpy_empty_strides is not None:
            state["_numpy_empty_strides"] = self._numpy_empty_strides
        return (*reduced, state) if state else reduced

    def __deepcopy__(self, memo):
        user_class = type(self) is not Tensor and not type(self).__module__.startswith("chainrule")
        if user_class and _torch_function.has_torch_function_unary(self):
            return _torch_function.handle_torch_function(Tensor.__deepcopy__, (self,), self, memo)
        if self.grad_fn is not None:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol at the "
                "moment.  If you were attempting to deepcopy a module, this may be because of a "
                "torch.nn.utils.weight_norm usage, see https://github.com/pytorch/pytorch/pull/103001"
            )
        if user_class:
            from ._subclass_copy import deepcopy_subclass

            return deepcopy_subclass(self, memo)
        t = Tensor._make(_deepcopied_array(self._data, memo))
        t._requires_grad = self._requires_grad
        if self._grad is not None:
            t._grad = Tensor._make(_deepcopied_array(self._grad._data, memo))
        t._name = self._name
        if self._numpy_empty_strides is not None:  # (an empty tensor's strides, as pickling keeps them)
            t._numpy_empty_strides = self._numpy_empty_strides
        memo[id(self)] = t
        return t


def _deepcopied_array(array, memo: dict):
    """``array``'s copy for copy.deepcopy: as torch, the memory it views (its storage) is copied whole,
    once per memo, and the copy views it with the same sizes, strides and offset, so a base and its
    views deep-copied together still share memory."""
    from .storage import storage_root

    if type(array) is not np.ndarray:  # a device or meta array: copied on its own
        return array.copy()
    root, _ = storage_root(array)
    if type(root) is not np.ndarray:
        return array.copy()
    copied_root = memo.get(id(root))
    if copied_root is None:
        copied_root = memo[id(root)] = root.copy(order="K")
        # id(root) names this storage only while root lives: kept in the memo's keep-alive list, as copy does
        memo.setdefault(id(memo), []).append(root)
    if not isinstance(copied_root, np.ndarray) or copied_root.strides != root.strides:
        return array.copy()  # a layout NumPy's copy did not keep (a root that is not contiguous)
    byte_offset = array.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return np.ndarray(array.shape, array.dtype, buffer=copied_root, offset=byte_offset, strides=array.strides)


_torch_function.PLAIN.add(Tensor)
_torch_function.TENSOR_TYPE = Tensor

# what Tensor.__torch_function__ returns as the function gives it, unconverted (filled by _methods.py,
# which makes the dispatching properties that hand these to handlers)
DEFAULT_NOWRAP_FUNCTIONS: set = set()


def _checked_hook(hook):
    """``hook`` as torch runs a tensor hook: a result replaces the gradient only when it is a tensor
    of the gradient's dtype, device and size; anything else is refused with torch's error, naming
    the hook, before the walk goes on with a gradient of the wrong shape."""
    def checked(grad):
        result = hook(grad)
        if result is None:
            return None
        if grad is None:  # no gradient reached the tensor
            raise RuntimeError("can't replace a None gradient with a non-None value")
        if not isinstance(result, Tensor):
            raise TypeError(f"expected Variable, but hook returned '{type(result).__name__}'")
        name = getattr(hook, "__name__", "<unknown>")
        if result.dtype is not grad.dtype or result.device != grad.device:
            raise RuntimeError(f"hook '{name}' has changed the type of value (was {grad.type()} got {result.type()})")
        if result.shape != grad.shape:
            raise RuntimeError(f"hook '{name}' has changed the size of value")
        return result

    checked.__wrapped__ = hook
    return checked


def _convert(result, cls):
    """torch's _convert: a Tensor result becomes a ``cls`` view of itself (on the graph through an
    alias node, as Tensor.as_subclass), tuples and lists converted item by item."""
    if cls is Tensor:
        return result
    if isinstance(result, Tensor) and not isinstance(result, cls):
        return result.as_subclass(cls)
    if isinstance(result, (tuple, list)):
        items = [_convert(item, cls) for item in result]
        return type(result)(*items) if hasattr(result, "_fields") else type(result)(items)
    return result


def _in_memory_order(array, order):
    """``array`` (row-major, dims in ``order``) transposed back to its logical dims: the inverse of
    ``np.ascontiguousarray(a.transpose(order))``."""
    return array if order is None else array.transpose(np.argsort(order))


def _rebuild(array, requires_grad, device="cpu", order=None):
    array = _in_memory_order(array, order)
    t = Tensor._make(array if device == "cpu" else to_device(array, _device(device)))
    t._requires_grad = requires_grad
    return t


def _rebuild_view(storage, byte_offset, shape, byte_strides, requires_grad):
    t = Tensor._make(rebuilt_view(storage, byte_offset, shape, byte_strides))
    t._requires_grad = requires_grad
    return t


def _host(array) -> np.ndarray:
    return array if isinstance(array, np.ndarray) else to_device(array, _device("cpu"))


_TYPE_NAMES = {"float16": "HalfTensor", "bfloat16": "BFloat16Tensor", "float32": "FloatTensor", "float64": "DoubleTensor",
               "uint8": "ByteTensor", "int8": "CharTensor", "int16": "ShortTensor",
               "int32": "IntTensor", "int64": "LongTensor", "bool": "BoolTensor",
               "complex64": "ComplexFloatTensor", "complex128": "ComplexDoubleTensor"}


# torch's C++ names of the dtypes, as its legacy constructors' TensorOptions errors print them
_CPP_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
                   "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
                   "uint8": "unsigned char", "uint16": "short unsigned int", "uint32": "unsigned int",
                   "uint64": "long unsigned int", "bool": "bool", "complex64": "c10::complex<float>",
                   "complex128": "c10::complex<double>", "complex32": "c10::complex<c10::Half>",
                   "float8_e4m3fn": "c10::Float8_e4m3fn", "float8_e5m2": "c10::Float8_e5m2",
                   "float8_e4m3fnuz": "c10::Float8_e4m3fnuz", "float8_e5m2fnuz": "c10::Float8_e5m2fnuz"}


def tensor_options_error(expected: _dtype.dtype, got: _dtype.dtype, device: str = "cpu",
                         got_device: str | None = None) -> TypeError:
    """torch's error for a legacy constructor given a tensor of another dtype or device
    (``FloatTensor(long_tensor)``, ``x.new(double_tensor)``)."""
    def options(dtype, on):
        return (f"TensorOptions(dtype={_CPP_TYPE_NAMES.get(dtype.name, dtype.name)}, device={on}, "
                "layout=Strided, requires_grad=false (default), pinned_memory=false (default), "
                "memory_format=(nullopt))")
    return TypeError(f"expected {options(expected, device)} (got {options(got, got_device or device)})")


def legacy_arguments(args: tuple) -> tuple:
    """torch's parser of the legacy constructors' positional arguments (``Tensor(...)``,
    ``FloatTensor(...)``, ``x.new(...)``): ``(sizes, None)`` for sizes (ints, spread or one
    ``Size``), ``(None, data)`` for data (a sequence, an array or a tensor), with torch's errors for
    what is neither and for negative sizes."""
    first = args[0]
    if len(args) > 1:
        if not _sizes_first(args):
            raise legacy_combination_error(args, {})
        # torch reads Tensor(2, 3) as one size list: a bool or a one-element integer tensor counts as
        # an int after the first place; anything else fails to unpack
        for position, a in enumerate(args[1:], start=2):
            if not _size_like(a):
                raise TypeError(f"new(): argument 'size' failed to unpack the object at pos {position} with "
                                f"error \"type must be tuple of ints,but got {type(a).__name__}\"")
        sizes = [int(a) for a in args]
    elif isinstance(first, Size) or _size_like(first) and not isinstance(first, (bool, Tensor)):
        sizes = [int(s) for s in first] if isinstance(first, Size) else [int(first)]
    elif isinstance(first, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{_dtype.parser_type_name(first)}'")
    elif isinstance(first, (Tensor, np.ndarray, collections.abc.Sequence)):
        # torch takes any Python sequence (pygcn's LongTensor(range(140)), a bytearray), not a set,
        # dict or iterator
        return None, list(first) if isinstance(first, (range, bytearray)) else first
    else:
        raise TypeError(f"new(): data must be a sequence (got {_dtype.parser_type_name(first)})")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(sizes)}: {sizes}")
    return tuple(sizes), None


# the signatures of torch's legacy constructor, as its parser lists them when none matches; the
# notes "didn't match because some of the keywords were incorrect" go beside some of them, chosen
# by the count of the arguments (positional and keyword together) as torch's parser chooses
_LEGACY_SIGNATURES = ("(*, torch.device device = None)", "(torch.Storage storage)", "(Tensor other)",
                      "(tuple of ints size, *, torch.device device = None)",
                      "(object data, *, torch.device device = None)")
_LEGACY_NOTED_BY_COUNT = {1: (1, 2), 2: (0,), 3: (3, 4)}


def legacy_keywords(args: tuple, kwargs: dict) -> tuple:
    """The positional arguments and the device of a legacy constructor's call (``Tensor(...)``,
    ``FloatTensor(...)``), its keywords read as torch's parser reads them: ``device``, and the
    size, data or tensor by keyword when nothing is positional (``Tensor(size=(2, 3))``). Anything
    else (``dtype``, ``requires_grad``, an int ``size``) is torch's TypeError."""
    device = kwargs.get("device")
    others = [key for key in kwargs if key != "device"]
    if not others:
        if len(args) > 1 and not _sizes_first(args):  # (refused with the device= the call gave)
            raise legacy_combination_error(args, kwargs)
        return args, device
    if not args and len(others) == 1:
        key = others[0]
        value = kwargs[key]
        if key == "size" and isinstance(value, (tuple, list)) and all(_size_like(v) for v in value):
            return (Size(int(v) for v in value),), device
        if key == "data" or key == "other" and isinstance(value, Tensor):
            return (value,), device
    raise legacy_combination_error(args, kwargs)


def _sizes_first(args: tuple) -> bool:
    """Whether several positional arguments of a legacy constructor can be its size list: torch's
    parser checks the first one's type (an int, not a bool); a later one fails as it is unpacked."""
    return _size_like(args[0]) and not isinstance(args[0], bool)


def legacy_combination_error(args: tuple, kwargs: dict) -> TypeError:
    # torch's parser lists the keywords last given first
    kwargs = dict(reversed(kwargs.items()))
    given = [_legacy_type_name(a) for a in args] + [f"{key}={_legacy_type_name(v)}" for key, v in kwargs.items()]
    got = ", ".join(given) + (", " if kwargs and not args else "")
    noted = _LEGACY_NOTED_BY_COUNT.get(len(args) + len(kwargs), ())
    # no printed word of these signatures takes a value by its type name (each has a default, or is a
    # 'tuple of ints', a 'torch.Storage', an 'object'), so a note marks every argument
    note = (f"some of the keywords were incorrect: {', '.join(kwargs)}" if kwargs else
            f"some of the arguments have invalid types: ({', '.join(f'!{_legacy_described(a)}!' for a in args)})")
    lines = []
    for i, signature in enumerate(_LEGACY_SIGNATURES):
        lines.append(f" * {signature}\n")
        if i in noted:
            lines.append(f"      didn't match because {note}\n")
    return TypeError(f"new() received an invalid combination of arguments - got ({got}), but expected one of:\n"
                     + "".join(lines))


def _legacy_described(value) -> str:
    """An argument as torch's parser describes it in a note: a sequence with its items' types."""
    if isinstance(value, tuple):  # (Size too)
        return f"{_legacy_type_name(value)} of ({', '.join(map(_legacy_type_name, value))}{',' * (len(value) == 1)})"
    if isinstance(value, list):
        return f"{_legacy_type_name(value)} of [{', '.join(map(_legacy_type_name, value))}]"
    return _legacy_type_name(value)


def _legacy_type_name(value) -> str:
    if isinstance(value, Tensor):
        return "Tensor"
    for kind, name in ((Size, "torch.Size"), (_dtype.dtype, "torch.dtype"), (_device, "torch.device")):
        if isinstance(value, kind):
            return name
    return _dtype.parser_type_name(value)


def check_legacy_device(device, expected: str) -> None:
    """torch's legacy constructors build on their own device type only (``FloatTensor(device='cuda')`` fails)."""
    if device is not None and _device(device).type != expected:
        raise RuntimeError(f"legacy constructor expects device type: {expected} but device type: "
                           f"{_device(device).type} was passed")


def _size_like(value) -> bool:
    """An int for a legacy constructor's size list: a Python/NumPy integer (bool included) or an
    integer tensor of one element or a 0-d integer NumPy array, as torch's parser unpacks."""
    if isinstance(value, Tensor):
        return value.numel() == 1 and not value.dtype.is_floating_point and not value.dtype.is_complex
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and value.dtype.kind in "iu"
    return isinstance(value, numbers.Integral)


def legacy_type_of(name_or_type) -> tuple[_dtype.dtype, bool]:
    """(dtype, on CUDA) of a legacy type (chainrule.FloatTensor) or its name ('torch.cuda.LongTensor')."""
    if not isinstance(name_or_type, str):
        return name_or_type.dtype, name_or_type.is_cuda
    prefix, _, name = name_or_type.rpartition(".")
    if name == "Tensor" and prefix in ("torch", "torch.cuda", "chainrule", "chainrule.cuda"):
        return _dtype.get_default_dtype(), prefix.endswith("cuda")  # the default tensor type
    dtype_names = {type_name: dtype_name for dtype_name, type_name in _TYPE_NAMES.items()}
    if prefix not in ("torch", "torch.cuda", "chainrule", "chainrule.cuda") or name not in dtype_names:
        raise ValueError(f"invalid type: {name_or_type!r}")  # torch's words, no hint
    return _dtype._BY_NAME[dtype_names[name]], prefix.endswith("cuda")


class Size(tuple):
    """torch.Size: a tuple of ints with torch's repr and ``numel()``. Made of any iterable of
    integers, as torch's: an object with ``__index__`` or a one-element integer tensor is taken
    as its int, anything else refused with torch's TypeError."""

    __slots__ = ()  # (no attributes of its own, as torch's C type: see as_torch_c_type below)

    def __new__(cls, *args, **kwargs):
        if kwargs or len(args) != 1 or type(args[0]) is cls:  # (tuple's own refusals; a Size was checked when made)
            return tuple.__new__(cls, *args, **kwargs)
        sizes = tuple(args[0])
        for item in sizes:
            if type(item) is not int or not -_INT64_BOUND <= item < _INT64_BOUND:
                return tuple.__new__(cls, [_size_item(position, item) for position, item in enumerate(sizes)])
        return tuple.__new__(cls, sizes)

    def __repr__(self) -> str:
        return f"{_dtype.package_prefix()}Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, item):
        out = tuple.__getitem__(self, item)
        return tuple.__new__(Size, out) if isinstance(item, slice) else out

    # sizes joined or repeated stay sizes (BoTorch: ``shape[:i] + Size([1]) + shape[j:]``, then .numel())
    def __add__(self, other):
        if not isinstance(other, tuple):
            raise TypeError(f"can only concatenate tuple (not {type(other).__name__}) to torch.Size")  # torch's words name its type
        return Size(tuple.__add__(self, other))

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple.__add__(other, self))

    def __mul__(self, times):
        if not hasattr(times, "__index__"):
            raise TypeError(f"can't multiply sequence by non-int of type '{type(times).__name__}'")
        return Size(tuple.__mul__(self, times))

    __rmul__ = __mul__


_INT64_BOUND = 1 << 63
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python, whose C name is its __name__


def _size_item(position: int, item) -> int:
    """``item`` of a torch.Size as torch reads it: an int (a bool, an ``__index__``, a one-element
    integer tensor) in int64's range, or a symbolic size (a nested tensor's ragged one) as it is."""
    if isinstance(item, Tensor) and item._data.size == 1 and item._data.dtype.kind in "biu":
        item = item._data.item()
    elif getattr(type(item), "is_symbolic_size", False):
        return item
    elif isinstance(item, Tensor) or not hasattr(type(item), "__index__"):
        kind = type(item)
        name = kind.__name__ if kind.__flags__ & _HEAP_TYPE or kind.__module__ == "builtins" else \
            f"{kind.__module__}.{kind.__qualname__}"
        raise TypeError(f"torch.Size() takes an iterable of 'int' (item {position} is '{name}')")
    value = operator.index(item)
    if not -_INT64_BOUND <= value < _INT64_BOUND:
        raise ValueError("Overflow when unpacking long long")
    return value


def preserve_layout(array, like):
    """``array`` (shaped as ``like``) laid out as torch's ``empty_like(like)`` would be: in ``like``'s
    stride order when ``like`` is non-overlapping and dense (a transposed input gives a transposed
    output), C-contiguous otherwise (a strided slice gives a contiguous output)."""
    xp = array_module(array)
    if like.flags.c_contiguous:  # (the common case, and what the stride walk below answers for it)
        return xp.asarray(array, order="C")
    sizes, strides = like.shape, like.strides
    order = sorted((i for i in range(like.ndim) if sizes[i] != 1), key=lambda i: -abs(strides[i]))
    expected = like.itemsize
    for i in reversed(order):
        if strides[i] != expected:
            return xp.asarray(array, order="C")
        expected *= sizes[i]
    if like.size == 0 or order == sorted(order):
        return xp.asarray(array, order="C")
    order += [i for i in range(like.ndim) if sizes[i] == 1]
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return xp.ascontiguousarray(array.transpose(order)).transpose(inverse)


def _wrap_dim(dim: int, ndim: int, op: str = "") -> int:
    """Normalise a possibly negative dim, raising torch's IndexError when out of range."""
    if type(dim) is not int:
        dim = _dim_index(dim, op)
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        if not -2**63 <= dim < 2**63:  # torch's argument parser refuses it before the op sees it
            raise ValueError("Overflow when unpacking long long")
        # torch's message names no op (``op`` names it in the TypeError above only)
        raise IndexError(f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got {dim})")
    return dim + rank if dim < 0 else dim


def _dim_index(dim, op: str) -> int:
    """An integer dim from any integer type; floats, bools (and other types) raise torch's TypeError."""
    if isinstance(dim, (bool, np.bool_)):
        raise TypeError(f"{op or 'dim'}(): argument 'dim' must be int, not bool")
    try:
        return operator.index(dim)
    except TypeError:
        raise TypeError(f"{op or 'dim'}(): argument 'dim' must be int, not {type(dim).__name__}") from None


def write_out(result: Tensor, out, op: str) -> Tensor:
    """torch's ``out=``: ``result`` written into ``out``, which is resized to the result's shape
    (with torch's warning at the user's line when it held elements) and returned. Raises before writing
    when a gradient would be needed (torch refuses out= under autograd) or the dtype can't hold it;
    for the ops torch's autograd runs through its not-implemented fallback (``_fallback_records``)
    it writes and records the node that fallback records instead."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{op}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if _fallback_records(op, out, result):
        _check_out(result, out, op, autograd=False)
        return _record_not_implemented(op, result, _write_checked_out(result.detach(), out))
    _check_out(result, out, op)
    return _write_checked_out(result, out)


def _fallback_records(op: str, out: Tensor, result: Tensor) -> bool:
    """Whether torch writes this ``out=`` call and records a NotImplemented node on ``out``: its
    autograd not-implemented fallback (the ops it names ``aten::X``) refuses only an ``out`` that is
    a leaf requiring grad. (An ``out`` that is a view keeps the refusal here.)"""
    if not _autograd_out_name(op, (result,)).startswith("aten::") or op in _FACTORY_OUT:
        return False
    if not is_recording(result, out) or out._base is not None:
        return False
    return not (out._requires_grad and out.grad_fn is None)


_FACTORY_OUT = frozenset({"arange", "range"})  # (refused before out is resized: creation.arange)


def _record_not_implemented(op: str, result: Tensor, out: Tensor) -> Tensor:
    """``out``, just written, as the output of torch's NotImplemented node, whose backward raises
    torch's "derivative for aten::X is not implemented"."""
    from .autograd.function import name_node

    sources = tuple(t for t in (result, out) if t._requires_grad)
    recorded = name_node(_NoDerivative.apply(*sources, result=out._data, kernel=_autograd_out_name(op, (result,))),
                         "torch::autograd::NotImplemented", label="out=",
                         rule="none: torch defines no derivative of this out= call, and backward raises")
    old = out._grad_fn
    out.grad_fn, out._output_nr, out._requires_grad = recorded.grad_fn, 0, True
    if out._retains_grad:
        out._move_retained_grad(old)
    return out


class _NoDerivative(_autograd_function.Function):
    """An op torch computes but defines no derivative for (an ``out=`` written by torch's autograd
    fallback, sparse hspmm/spdiags): ``result`` (an array) in the graph of the operands given, and a
    backward that raises torch's "derivative for <kernel> is not implemented". Callers name the node
    torch's NotImplemented."""

    _array_forward = True
    label = "no derivative"
    rule = "refused: torch has no derivative for this op"

    @staticmethod
    def forward(ctx, *operands, result, kernel):
        ctx.kernel = kernel
        return result

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError(f"derivative for {ctx.kernel} is not implemented")


# The name torch's refusal gives, where it is not the op's own: the ATen kernel whose out= variant the
# call reaches (a composite op's last step: outer's mul, hstack's cat, multi_dot's mm; a linalg
# function's _ex kernel), or a factory's registered aten:: name. Other linalg functions are named
# linalg_X (a kernel name has no dot).
_AUTOGRAD_OUT_NAMES = {
    "arange": "aten::arange", "range": "aten::range",
    "norm": "linalg_vector_norm", "vector_norm": "linalg_vector_norm", "vecdot": "sum",
    "solve": "_linalg_solve_ex", "inv": "linalg_inv_ex", "inverse": "linalg_inv_ex", "linalg.inv_ex": "linalg_inv_ex",
    "linalg.cholesky": "linalg_cholesky_ex", "linalg.lu_factor": "linalg_lu_factor_ex",
    "linalg.eigh": "_linalg_eigh", "linalg.eigvalsh": "_linalg_eigh", "linalg.svd": "_linalg_svd",
    "linalg.svdvals": "_linalg_svd", "multi_dot": "mm", "chain_matmul": "mm", "cross": "linalg_cross",
    "outer": "mul", "kron": "mul", "expit": "sigmoid", "float_power": "pow", "true_divide": "div",
    "negative": "neg", "hstack": "cat", "vstack": "cat", "dstack": "cat", "column_stack": "cat",
    "eig": "linalg_eig", "ldl_factor": "aten::linalg_ldl_factor_ex", "eigvals": "aten::linalg_eigvals",
    "histogram": "aten::histogram",
    "linalg_det": "_linalg_det", "linalg_slogdet": "_linalg_slogdet", "slogdet": "_linalg_slogdet",
    "linalg.solve_ex": "_linalg_solve_ex", "lu_solve": "linalg_lu_solve", "qr": "linalg_qr",
    "orgqr": "linalg_householder_product", "ldl_solve": "aten::linalg_ldl_solve", "frobenius_norm": "norm",
    "diff": "sub", "msort": "sort", "nanmean": "nansum", "take_along_dim": "gather", "linalg.matrix_rank": "sum",
    # torch.fft's functions reach one of three kernels (ihfft conjugates rfft's result last)
    **dict.fromkeys(("fft", "fft2", "fftn", "ifft", "ifft2", "ifftn", "ihfft2", "ihfftn"), "_fft_c2c"),
    **dict.fromkeys(("hfft", "hfft2", "hfftn", "irfft", "irfft2", "irfftn"), "_fft_c2r"),
    **dict.fromkeys(("rfft", "rfft2", "rfftn"), "_fft_r2c"), "ihfft": "aten::conj_physical",
    # torch.special's own kernels, named special_X
    **{name: f"special_{name}" for name in ("entr", "erfcx", "i0e", "i1", "i1e", "log_ndtr", "ndtri")},
    # ops whose out= variants torch's autograd runs through its not-implemented fallback, which names
    # the registered op
    **{name: f"aten::{name}" for name in (
        "alias_copy", "as_strided_copy", "conj_physical", "detach_copy", "diagonal_copy", "expand_copy",
        "floor_divide", "heaviside", "log_softmax", "permute_copy", "select_copy", "slice_copy", "slice_scatter",
        "softmax", "squeeze_copy", "t_copy", "transpose_copy", "unfold_copy", "unsqueeze_copy",
        "view_as_complex_copy", "view_as_real_copy", "view_copy")},
}
# ops torch's autograd does not record at all (no derivative formula, outputs never require grad): their
# out= may be a tensor that requires grad, written as a plain tensor (comparisons: a bool result)
_NOT_RECORDED_OUT = frozenset({
    "histc", "eq", "ne", "lt", "le", "gt", "ge", "logical_not",
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1",
    "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
    "spherical_bessel_j0", "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
    "legendre_polynomial_p", *(f"{shifted}chebyshev_polynomial_{kind}" for shifted in ("", "shifted_")
                               for kind in "tuvw"),
})


def _refuse_other_dtype(result: Tensor, out: Tensor, op: str) -> None:
    """torch's refusal of an ``out`` of another dtype than the result's, for the ops whose out= takes
    no cast (``_STRUCTURED_OUT``, ``_SAME_DTYPE_OUT``)."""
    if result.dtype == out.dtype:
        return
    if op in _STRUCTURED_OUT:
        raise RuntimeError(f"Expected out tensor to have dtype {_dtype.cpp_type_name(result.dtype)}, but got "
                           f"{_dtype.cpp_type_name(out.dtype)} instead")
    if op in _SAME_DTYPE_OUT:
        raise RuntimeError(_SAME_DTYPE_OUT[op].format(result=_dtype.scalar_name(result.dtype),
                                                      out=_dtype.scalar_name(out.dtype)))


# torch.linalg's functions (one result) whose out= refuses a dtype the result can't be cast to in
# their own words ("linalg.pinv: Expected result to be safely castable from Double dtype, ..."): the prefix
_CASTABLE_OUT = {
    "linalg.householder_product": "torch.linalg.householder_product", "orgqr": "torch.linalg.householder_product",
    "linalg.pinv": "linalg.pinv", "pinv": "linalg.pinv", "linalg.matrix_rank": "torch.linalg.matrix_rank",
    "matrix_rank": "torch.linalg.matrix_rank", "linalg.cond": "linalg.cond", "cond": "linalg.cond",
    "linalg.tensorinv": "tensorinv", "tensorinv": "tensorinv", "linalg.tensorsolve": "tensorsolve",
    "tensorsolve": "tensorsolve", "cholesky_solve": "cholesky_solve", "cholesky_inverse": "cholesky_inverse",
    "cholesky": "cholesky",
}


# composite ops whose out= checks the dtype itself, before it copies: their messages
_SAME_DTYPE_OUT = {
    "quantile": "quantile() out tensor must be same dtype as the input tensor",
    "nanquantile": "quantile() out tensor must be same dtype as the input tensor",
    "nuclear_norm": "linalg.matrix_norm expected out tensor dtype {result} but got: {out}",
}


# ops whose out= torch writes through a structured kernel (or reaches one: msort's sort, qr's linalg_qr):
# each out must have its result's own dtype, not one the result can be cast to
_STRUCTURED_OUT = frozenset({
    "frobenius_norm", "index_add", "linalg.cholesky", "linalg.cholesky_ex", "linalg_cross", "linalg.eigh",
    "linalg.eigvalsh", "linalg.inv_ex", "ldl_factor", "ldl_factor_ex", "linalg.lu", "linalg.lu_factor",
    "linalg.lu_factor_ex", "linalg.lu_solve", "linalg.qr", "linalg.solve_ex", "linalg.svdvals", "lu_solve",
    "lu_unpack", "msort", "qr", "renorm", "scatter_add", "slogdet", "take_along_dim", "triangular_solve",
})


def _autograd_out_name(op: str, tensors: tuple) -> str:
    if op == "diag" and tensors:  # diag of a matrix writes its diagonal, of a vector a diagonal matrix
        return "aten::diagonal_copy" if tensors[-1].ndim == 1 else "aten::diag_embed"
    name = _AUTOGRAD_OUT_NAMES.get(op, op)
    return name.replace(".", "_") if name.startswith("linalg.") else name


def write_composite_out(result: Tensor, out, op: str) -> Tensor:
    """torch's ``out=`` of a composite op (a CompositeImplicitAutograd ``_out``: tensordot, inner,
    special.ndtr, linalg.norm, linalg.tensorsolve...): the result is computed with autograd and
    copied into ``out`` by the differentiable copy_ (resized first as ``write_out`` resizes), so a
    result or an ``out`` that requires grad is no refusal: ``out`` takes a CopyBackwards, and a leaf
    ``out`` that requires grad is refused as any in-place op on it. Without grad: ``write_out``."""
    if not isinstance(out, Tensor):
        return write_out(result, out, op)
    if not is_recording(result, out):
        if (_autograd_function.active_dispatch is None or out._data.shape != result._data.shape
                or out.dtype != result.dtype):
            return write_out(result, out, op)
        return out.copy_(result)  # (a mode sees torch's composite out=: the result copied in by copy_)
    _refuse_other_dtype(result, out, op)
    if out.requires_grad and out.is_leaf:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    if out._data.shape != result._data.shape:
        warn_resized_out(out, result.shape)
        out._data = np.empty_like(result._data, dtype=out._data.dtype)
    return out.copy_(result)


def refuse_out_under_autograd(op: str, out, *tensors) -> None:
    """torch's refusal of an ``out=`` call that autograd would record (``out`` or one of ``tensors``
    requires grad); an op whose kernel checks shapes and dtypes calls it first, as torch's autograd
    layer runs before the kernel."""
    if isinstance(out, Tensor) and is_recording(*tensors, out) and op not in _NOT_RECORDED_OUT:
        raise RuntimeError(f"{_autograd_out_name(op, tensors)}(): functions with out=... arguments don't support "
                           "automatic differentiation, but one of the arguments requires grad.")


def _check_out(result: Tensor, out: Tensor, op: str, autograd: bool = True) -> None:
    """torch's refusals of an ``out=``: under autograd (``autograd``), or a dtype that can't hold the result."""
    if autograd:
        refuse_out_under_autograd(op, out, result)
    if _autograd_function.active_extension is not None and (
            _forward_ad.carries_tangent(result) or _forward_ad.carries_tangent(out)):
        # torch's out= kernels have no forward-AD formula: refused before out is written
        raise NotImplementedError(f"Trying to use forward AD with {op}_out that does not support it because it "
                                  "is an out= function")
    _refuse_other_dtype(result, out, op)
    if result.dtype._category > out.dtype._category and op in _CASTABLE_OUT:
        raise RuntimeError(f"{_CASTABLE_OUT[op]}: Expected result to be safely castable from "
                           f"{_dtype.scalar_name(result.dtype)} dtype, but got result with dtype "
                           f"{_dtype.scalar_name(out.dtype)}")
    if result.dtype._category > out.dtype._category:
        raise RuntimeError(f"result type {_TYPE_NAMES[result.dtype.name][:-6]} can't be cast to the desired output "
                           f"type {_TYPE_NAMES[out.dtype.name][:-6]}")
    if _vmap_frames._frames:  # torch's vmap has no rule for out= variants (honours_out names pow's overload)
        _vmap_frames.refuse_out(op, (out,), result)


def warn_resized_out(out: Tensor, shape) -> None:
    """torch's resize_output warning (its C++ TORCH_WARN, so ending where it was raised), for an
    ``out`` with elements about to take another ``shape``."""
    if out._data.size:
        import warnings

        warnings.warn(f"An output with one or more elements was resized since it had shape {list(out.shape)}, "
                      f"which does not match the required output shape {list(shape)}. This behavior is "
                      "deprecated, and in a future PyTorch release outputs will not be resized unless they have "
                      "zero elements. You can explicitly reuse an out tensor t by resizing it, inplace, to zero "
                      "elements with t.resize_(0). (Triggered internally at "
                      "/__w/pytorch/pytorch/aten/src/ATen/native/Resize.cpp:30.)", UserWarning,
                      stacklevel=_torch_function.user_stacklevel())


def _write_checked_out(result: Tensor, out: Tensor) -> Tensor:
    if out._data.shape != result._data.shape:
        warn_resized_out(out, result.shape)
        # (laid out as the result: torch lays a resized out as the op's fresh output)
        out._data = np.empty_like(result._data, dtype=out._data.dtype)
    out._data[...] = result._data
    out._version_box[0] += 1
    return out


_PARTIAL_OVERLAP = ("unsupported operation: some elements of the input tensor and the written-to tensor refer to a "
                    "single memory location. Please clone() the tensor before performing the operation.")


def one_root(self: Tensor, operand) -> bool:
    """Whether ``operand`` is a tensor other than self on the same root (a view of it, or its base):
    the one case where an elementwise write may read elements it has written (a plain attribute
    test, so the common call pays almost nothing)."""
    if operand.__class__ is not Tensor and not isinstance(operand, Tensor) or operand is self:
        return False
    root, other_root = self._base, operand._base
    if root is None and other_root is None:
        return False
    return (self if root is None else root) is (operand if other_root is None else other_root)


def _dense_span(array):
    """The bytes [begin, end) a non-overlapping, dense array covers (in some order of its dims), or
    None where it is not so (torch's is_non_overlapping_and_dense)."""
    dims = sorted((abs(stride), size) for stride, size in zip(array.strides, array.shape) if size != 1)
    expected = array.itemsize
    for stride, size in dims:
        if stride != expected or any(s < 0 for s in array.strides):
            return None
        expected *= size
    begin = array.__array_interface__["data"][0]
    return begin, begin + array.size * array.itemsize


def refuse_partial_overlap(self: Tensor, operands) -> None:
    """torch's refusal of an elementwise write into ``self`` reading an operand whose memory
    partly overlaps self's (``t[1:].add_(t[:-1])``; its get_overlap_status PARTIAL): the result
    would depend on the order of the writes. The same elements, as self has them, are allowed, and
    so is any layout torch cannot judge (an operand or self not dense: its TOO_HARD)."""
    for operand in operands:
        if not one_root(self, operand):
            continue
        target, data = self._data, operand._data
        if type(target) is not np.ndarray or type(data) is not np.ndarray or not target.size or not data.size:
            continue
        spans = _dense_span(target), _dense_span(data)
        if spans[0] is None or spans[1] is None:
            continue
        (begin, end), (other_begin, other_end) = spans
        if begin == other_begin and end == other_end:
            if target.strides != data.strides:
                raise RuntimeError(_PARTIAL_OVERLAP)
        elif begin < other_end and other_begin < end:
            raise RuntimeError(_PARTIAL_OVERLAP)


def honours_out(fn, name: str | None = None, composite: bool = False):
    """Give ``fn`` torch's keyword ``out=`` (see ``write_out``; a tuple result, max(dim)'s
    (values, indices), goes into a tuple of as many tensors); ``fn`` itself ignores it. ``name``:
    the op's name in messages, when not ``fn.__name__``; ``composite``: torch's op is composite, its
    out= a differentiable copy (``write_composite_out``)."""
    op = name or fn.__name__
    # torch's elementwise kernels (TensorIterator) refuse an out partly overlapping an input
    elementwise = getattr(fn, "__module__", None) == "chainrule.ops.elementwise"

    def with_out(*args, out, **kwargs):
        if _vmap_frames._frames:  # torch's vmap has no rule for out= variants
            _vmap_frames.refuse_out(op, (*args, *kwargs.values(), out))
        if elementwise and isinstance(out, Tensor):
            operands = (*args, *kwargs.values()) if kwargs else args
            refuse_out_under_autograd(op, out, *(a for a in operands if isinstance(a, Tensor)))  # (torch's first)
            refuse_partial_overlap(out, operands)
        if _autograd_function.active_dispatch is not None and not composite:  # (a composite's ops are plain)
            result = call_noting_out(fn, args, kwargs, out, op)
        else:
            result = fn(*args, **kwargs)
        if isinstance(result, tuple):
            return _write_outs(result, out, op)
        return (write_composite_out if composite else write_out)(result, out, op)

    return out_keyword_front(fn, with_out)


def call_noting_out(fn, args: tuple, kwargs: dict, out, op: str, dtype_from_out: bool = False):
    """``fn(*args, **kwargs)`` for an ``out=`` call while a dispatch mode may see it: a mode is handed
    the op computing the result as torch's out overload (``aten.add.out``, ``out=`` among its kwargs),
    not the plain one (``function.pending_out``). ``dtype_from_out``: the out= front put out's dtype
    in ``kwargs`` (torch's op is given none, so the mode is shown none)."""
    if not isinstance(out, Tensor) and not (isinstance(out, (tuple, list)) and len(out) == 2
                                            and all(isinstance(each, Tensor) for each in out)):
        return fn(*args, **kwargs)  # (a (values, indices) pair of outs is shown under torch's two keywords)
    previous = _autograd_function.pending_out
    _autograd_function.pending_out = (out, op, dtype_from_out)
    try:
        return fn(*args, **kwargs)
    finally:
        _autograd_function.pending_out = previous


_FRONT_NAMES = {"out", "_function", "_with_out"}


def out_keyword_front(fn, with_out):
    """``fn`` with torch's keyword ``out=``: calls without it go straight to ``fn``, calls with it to
    ``with_out(*args, out=out, **kwargs)``. The front is compiled with ``fn``'s own parameters, so
    the common no-``out`` call costs one plain call instead of packing ``*args, **kwargs`` (a few
    hundred ns on every ``chainrule.sum(...)``); a signature it cannot copy gets the generic front."""
    import functools
    import inspect

    try:
        parameters = list(inspect.signature(fn, follow_wrapped=False).parameters.values())
    except (TypeError, ValueError):
        parameters = None
    name = getattr(fn, "__name__", "")
    out_in_place = False
    if parameters is not None:
        # an ``out`` keyword ``fn`` declares only for its signature's sake: the front owns it
        parameters = [p for p in parameters if not (p.name == "out" and p.kind is p.KEYWORD_ONLY)]
        # one ``fn`` declares positionally stands where torch's Python function takes it (torch.norm's
        # fifth, tensordot's fourth, F.normalize's): the front takes it in that place, and owns it too
        out_in_place = any(p.name == "out" and p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)
    if parameters is None or not name.isidentifier() or any(
            (p.name in _FRONT_NAMES and not (out_in_place and p.name == "out")) or p.name.startswith("_default")
            for p in parameters):
        def front(*args, out=None, **kwargs):
            if out is None:
                return fn(*args, **kwargs)
            return with_out(*args, out=out, **kwargs)
    else:
        namespace = {"_function": fn, "_with_out": with_out}
        declared, passed = [], []
        star_written = False
        after_out = False  # (fn's parameters after its ``out`` are passed by keyword: fn is called without it)
        for index, p in enumerate(parameters):
            if p.name == "out" and out_in_place:
                declared.append("out=None")
                after_out = True
                continue
            default = ""
            if p.default is not inspect.Parameter.empty:
                namespace[f"_default{index}"] = p.default
                default = f"=_default{index}"
            if p.kind is p.VAR_KEYWORD:
                break
            if p.kind is p.KEYWORD_ONLY and not star_written:
                declared.append("*")
                star_written = True
            if p.kind is p.VAR_POSITIONAL:
                declared.append(f"*{p.name}")
                passed.append(f"*{p.name}")
                star_written = True
            else:
                declared.append(p.name + default)
                passed.append(f"{p.name}={p.name}" if p.kind is p.KEYWORD_ONLY or after_out else p.name)
            if p.kind is p.POSITIONAL_ONLY and (index + 1 == len(parameters)
                                                or parameters[index + 1].kind is not p.POSITIONAL_ONLY):
                declared.append("/")
        if not out_in_place:
            declared += ([] if star_written else ["*"]) + ["out=None"]
        if parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD:
            declared.append(f"**{parameters[-1].name}")
            passed.append(f"**{parameters[-1].name}")
        arguments = ", ".join(passed)
        source = (f"def {name}({', '.join(declared)}):\n"
                  f"    if out is None:\n        return _function({arguments})\n"
                  f"    return _with_out({arguments}{', ' if arguments else ''}out=out)\n")
        # named inside the package, so a warning raised beneath names the user's line (user_stacklevel)
        exec(compile(source, os.path.join(os.path.dirname(__file__), f"<out= front of {name}>"), "exec"), namespace)
        front = namespace[name]
    functools.update_wrapper(front, fn)
    if "__signature__" in fn.__dict__ and parameters is not None:  # fn's own names, and out=
        del front.__signature__
        front.__signature__ = inspect.signature(front, follow_wrapped=False)
    front.honours_out = True
    return front


# the (values, indices) ops whose kernels take no cast into out=: values in the input's dtype,
# indices int64, each refused in torch's own words (values first)
_VALUES_INDICES_OUT_MESSAGES = {
    **dict.fromkeys(("sort", "topk", "max", "min"),
                    lambda want, got, what: f"Expected out tensor to have dtype {_dtype.cpp_type_name(want)}, "
                                            f"but got {_dtype.cpp_type_name(got)} instead"),
    "mode": lambda want, got, what: (f"expected scalar type '{_dtype.scalar_name(want)}' but got "
                                     f"'{_dtype.scalar_name(got)}' for {what} output"),
    **dict.fromkeys(("cummax", "cummin"),
                    lambda want, got, what: f"expected scalar_type {_dtype.scalar_name(want)} "
                                            f"but found {_dtype.scalar_name(got)}"),
}


def _refuse_values_indices_out(results: tuple, outs, op: str) -> None:
    if op in ("median", "nanmedian"):
        _refuse_median_out(results, outs)
        return
    message = _VALUES_INDICES_OUT_MESSAGES[op]
    for result, out, what in zip(results, outs, ("values", "indices")):
        if out.dtype != result.dtype:
            raise RuntimeError(message(result.dtype, out.dtype, what))


def _refuse_median_out(results: tuple, outs) -> None:
    """median(dim)/nanmedian(dim)'s (values, indices) outs as torch's kernel checks them (both naming
    median): indices int64 first, then values of the input's dtype, in legacy tensor-type names."""
    values, indices = outs
    if indices.dtype.name != "int64":
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have scalar type Long; but got "
                           f"torch.{_TYPE_NAMES[indices.dtype.name]} instead (while checking arguments for median)")
    if values.dtype != results[0].dtype:
        raise RuntimeError(f"Expected tensor for 'values' to have the same type as tensor for argument #2 'self'; but "
                           f"type torch.{_TYPE_NAMES[values.dtype.name]} does not equal "
                           f"torch.{_TYPE_NAMES[results[0].dtype.name]} (while checking arguments for median)")


def _write_outs(results: tuple, outs, op: str) -> tuple:
    """Each of ``results`` written into the matching tensor of ``outs`` (all checked first), as
    the same kind of tuple (torch returns its named tuple of the out tensors)."""
    if not isinstance(outs, (tuple, list)) or len(outs) != len(results) or not all(isinstance(o, Tensor) for o in outs):
        raise TypeError(f"{op}(): argument 'out' must be tuple of {len(results)} Tensors, not {type(outs).__name__}")
    if op in _VALUES_INDICES_OUT_MESSAGES or op == "median" or op == "nanmedian":
        _refuse_values_indices_out(results, outs, op)
    for result, out in zip(results, outs):
        _check_out(result, out, op)
    written = [_write_checked_out(result, out) for result, out in zip(results, outs)]
    return type(results)(*written) if hasattr(type(results), "_fields") else tuple(written)


# the memory formats is_contiguous asks about by their rank (a dict made once, not per call)
_CHANNELS_LAST_RANKS = {"channels_last": 4, "channels_last_3d": 5}


def _check_tensor(value, op: str, name: str, position: int, optional: bool = False) -> None:
    """torch's TypeError for a non-Tensor where a Tensor argument is expected (a list as a weight)."""
    if not isinstance(value, Tensor) and not (optional and value is None):
        raise TypeError(f"{op}(): argument '{name}' (position {position}) must be Tensor, "
                        f"not {_dtype.c_type_name(value)}")


def _int_sequence(values, op: str, name: str = "size") -> tuple:
    """Sizes given as varargs (``view(2, 3)``) or one sequence (``view((2, 3))``), as ints.

    torch refuses a float size rather than truncating it (``view(2.5, -1)`` is a TypeError), and a
    bool first size (``empty((True, 2))``: its parser checks the first element's type, and takes a
    later bool as 0 or 1).
    """
    if not isinstance(values, (tuple, list)):  # one argument given as is (as_strided's size): an int or a sequence
        if not hasattr(values, "__index__"):
            raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, not {type(values).__name__}")
        values = (values,)
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        values = tuple(values[0])
    # the common call, plain ints (``view(1, -1)``): nothing to convert or refuse, so the tuple is
    # returned as it is (a bool is not of class int, so a bool first size still takes the loop)
    for v in values:
        if v.__class__ is not int or not -2**63 <= v < 2**63:
            break
    else:
        return values if values.__class__ is tuple else tuple(values)
    out = []
    for i, v in enumerate(values):
        try:
            if i == 0 and v.__class__ is bool:
                raise TypeError
            out.append(operator.index(v))
        except TypeError:
            raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, but found element of type "
                            f"{type(v).__name__} at pos {i}") from None
        if not -2**63 <= out[-1] < 2**63:
            raise TypeError(f"{op}(): argument '{name}' failed to unpack the object at pos {i + 1} with error "
                            '"Overflow when unpacking long long"')
    return tuple(out)


_torch_function.PLAIN.add(Size)
_dtype.as_torch_c_type(Size, "torch.Size")
