"""nn.Parameter: a Tensor that a Module registers as one of its parameters."""

from __future__ import annotations

import numpy as np

from .. import _dtype, _layout
from .._backend import allocate_on, array_module, memory_order, module_for_device
from .._naming import in_torchs_words
from .._torch_function import disabled_torch_function_impl
from ..ops.creation import _shape_args, empty
from ..ops.elementwise import SPARSE_COO_TYPES
from ..ops.memory_format import copy_preserving_format
from ..sparse import SparseCOOTensor
from ..storage import pickled_view, rebuilt_view
from ..tensor import Size, Tensor, _in_memory_order

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer"]


class _ParameterMeta(type):
    """A tensor of a user's subclass made a Parameter stays of its class, marked ``_is_param``;
    ``isinstance(t, Parameter)`` answers True for it, as torch's metaclass does."""

    def __instancecheck__(cls, instance) -> bool:
        kind = type(instance)
        if kind is cls:
            return True
        if kind is Tensor:  # (the common question, answered first: a plain tensor is no parameter)
            return False
        if cls is Parameter and isinstance(instance, Tensor) and instance.__dict__.get("_is_param", False):
            return True
        return type.__instancecheck__(cls, instance)


class Parameter(Tensor, metaclass=_ParameterMeta):
    """A leaf Tensor that requires grad by default and that ``Module.__setattr__`` registers.

    Like ``torch.nn.Parameter`` it shares memory with the tensor it is built from, and ops on it
    return plain Tensors (its ``__torch_function__`` is torch's disabled one). Built from a tensor
    of a user's subclass it is that subclass's ``detach()``, marked as a parameter (torch's path
    for custom tensors: a wrapper subclass keeps its inner tensors).
    """

    __torch_function__ = disabled_torch_function_impl

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        if isinstance(data, Tensor) and type(data) is not Tensor and not type(data).__module__.startswith("chainrule"):
            return _custom_tensor_parameter(data, requires_grad)
        if isinstance(data, Tensor) and data.layout is _layout.sparse_coo:
            return _sparse_coo_parameter(data, requires_grad)
        if data is None:
            array = np.empty((0,), dtype=np.float32)
            version_box = [0]
        elif isinstance(data, Tensor):
            array = data._data
            version_box = data._version_box
        else:
            raise TypeError(f"Parameter(): argument 'data' must be Tensor, not {type(data).__name__}")
        if requires_grad and array.dtype.kind not in _dtype.FLOAT_KINDS + "c":
            # torch's words here (its _make_subclass), which differ from requires_grad_()'s; a
            # constructor building the parameter (ParameterList's, Linear's) raises them bare too
            raise in_torchs_words(RuntimeError("Only Tensors of floating point and complex dtype can require gradients"))
        param = object.__new__(cls)
        param._init(array)
        param._version_box = version_box
        param._set_requires_grad(requires_grad)
        if data is not None and data._conj_bit:  # torch's Parameter of a conj view is one too
            param._conj_bit = True
        return param

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        # torch's Parameter copies its data and requires_grad only: a deepcopied model has no .grad;
        # the data cloned with preserve_format, so a channels-last weight stays channels-last
        param = Parameter(Tensor._make(copy_preserving_format(self._data)), self._requires_grad)
        param._name = self._name
        memo[id(self)] = param
        return param

    def __reduce_ex__(self, protocol):
        view = pickled_view(self._data) if type(self._data) is np.ndarray else None
        if view is not None:  # a Parameter over a view keeps its storage, offset and strides, as torch's
            return (_rebuild_parameter_view, (*view, self._requires_grad))
        array = np.asarray(self._data)
        order = memory_order(array)  # a channels-last weight comes back channels-last, as torch's
        if order is None:
            return (_rebuild_parameter, (array, self._requires_grad))
        return (_rebuild_parameter, (np.ascontiguousarray(array.transpose(order)), self._requires_grad, order))


def _custom_tensor_parameter(data: Tensor, requires_grad: bool) -> Tensor:
    made = data.detach().requires_grad_(requires_grad)
    if type(made) is not type(data):
        raise RuntimeError(
            f"Creating a Parameter from an instance of type {type(data).__name__} requires that detach() returns "
            f"an instance of the same type, but return type {type(made).__name__} was found instead. To use the "
            "type as a Parameter, please correct the detach() semantics defined by its __torch_dispatch__() "
            "implementation.")
    made._is_param = True
    return made


class _SparseCOOParameter(SparseCOOTensor):
    """``nn.Parameter`` of a sparse COO tensor: sparse, as torch's (its entries take the gradient and
    the optimizer's step), named and printed as a Parameter."""

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        # torch's Parameter.__deepcopy__ clones its data with memory_format=preserve_format, which a
        # sparse tensor refuses
        raise RuntimeError("unsupported memory format option Preserve")


_SparseCOOParameter.__name__ = _SparseCOOParameter.__qualname__ = "Parameter"
SPARSE_COO_TYPES.add(_SparseCOOParameter)


def _sparse_coo_parameter(data: Tensor, requires_grad: bool) -> Tensor:
    made = data.detach().requires_grad_(requires_grad)
    made.__class__ = _SparseCOOParameter
    made._is_param = True  # isinstance(made, Parameter), by _ParameterMeta
    return made


def _rebuild_parameter(array, requires_grad, order=None):
    return Parameter(Tensor._make(_in_memory_order(array, order)), requires_grad)


def _rebuild_parameter_view(storage, byte_offset, shape, byte_strides, requires_grad):
    return Parameter(Tensor._make(rebuilt_view(storage, byte_offset, shape, byte_strides)), requires_grad)


class Buffer(Tensor):
    """``nn.Buffer(data, persistent=True)``: marks a tensor that ``Module.__setattr__`` registers as a buffer."""

    __torch_function__ = disabled_torch_function_impl

    def __new__(cls, data: Tensor, *, persistent: bool = True):
        buffer = object.__new__(cls)
        buffer._init(data._data)
        buffer._version_box = data._version_box
        if data._conj_bit:  # (as a Parameter: torch's Buffer of a conj view is one too)
            buffer._conj_bit = True
        buffer.persistent = persistent
        return buffer

    def __init__(self, data: Tensor, *, persistent: bool = True) -> None:
        pass


class UninitializedTensorMixin:
    """A parameter or buffer whose shape is not known yet (a Lazy module's, before its first forward).

    It holds an empty array of its dtype on its device; ``materialize(shape)`` gives it storage of
    that shape and turns it, in place and keeping its identity (so an optimizer built on it sees the
    materialised tensor), into ``cls_to_become``. Its shape cannot be read until then, as in torch.
    """

    __torch_function__ = disabled_torch_function_impl  # chainrule's own subclass: ops give plain Tensors

    cls_to_become: type = Tensor

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give the tensor uninitialised storage of ``shape`` and make it a ``cls_to_become``."""
        xp = array_module(self._data) if device is None else module_for_device(device)
        if device is not None and xp.__name__ != "numpy":
            allocate_on(device)  # CuPy allocates on its current GPU
        np_dtype = self._data.dtype if dtype is None else _dtype.to_dtype(dtype).np
        # torch's size checks: a negative dimension is a RuntimeError naming the shape
        shape = _shape_args((shape,))
        self._data = xp.empty(shape, dtype=np_dtype)
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError(
            "Can't access the shape of an uninitialized parameter or buffer. This error usually happens in "
            "`load_state_dict` when trying to load an uninitialized parameter into an initialized one. Call "
            "`forward` to initialize the parameters before accessing their attributes."
        )

    def size(self, dim: int | None = None):
        # torch lets size() through (an uninitialised tensor reports torch.Size([0]))
        return Size((0,)) if dim is None else (0,)[dim]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def __reduce_ex__(self, protocol):
        # the state of an uninitialised tensor is its class, dtype and grad flag; it unpickles on the default device
        return (type(self), (self._requires_grad, None, _dtype._BY_NP[self._data.dtype]))


def _empty_storage(device, dtype):
    # the default dtype and device apply, as for any factory-made tensor
    try:
        if isinstance(dtype, str):
            raise TypeError  # torch's empty() takes a dtype, not its name (chainrule's creation functions would)
        dtype = None if dtype is None else _dtype.to_dtype(dtype)
    except TypeError:
        raise TypeError(f"empty(): argument 'dtype' must be torch.dtype, not {type(dtype).__name__} "
                        f"({dtype!r})") from None
    return empty(0, dtype=dtype, device=device)._data


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """``nn.parameter.UninitializedParameter``: a Parameter whose shape a Lazy module infers on its first forward."""

    cls_to_become = Parameter

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        param = Parameter.__new__(cls, Tensor._make(_empty_storage(device, dtype)), requires_grad)
        return param

    def __init__(self, requires_grad: bool = True, device=None, dtype=None) -> None:
        pass

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        copy = type(self)(self._requires_grad, self.device, _dtype._BY_NP[self._data.dtype])
        memo[id(self)] = copy
        return copy


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """``nn.parameter.UninitializedBuffer``: a buffer whose shape a Lazy module infers on its first forward."""

    cls_to_become = Tensor

    def __new__(cls, requires_grad: bool = False, device=None, dtype=None, persistent: bool = True):
        buffer = object.__new__(cls)
        buffer._init(_empty_storage(device, dtype), requires_grad)
        buffer.persistent = persistent
        return buffer

    def __init__(self, requires_grad: bool = False, device=None, dtype=None, persistent: bool = True) -> None:
        pass

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        copy = type(self)(self._requires_grad, self.device, _dtype._BY_NP[self._data.dtype], self.persistent)
        memo[id(self)] = copy
        return copy
