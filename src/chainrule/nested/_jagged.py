"""The jagged nested tensor: one packed ``values`` tensor plus ``offsets`` (torch's NJT layout).

A nested tensor of B components holds them end to end in ``values`` along one packed dim; component
i is ``values.narrow(packed_dim, offsets[i], lengths[i])``. Its shape is B followed by ``values``'
shape with the packed dim replaced by a ragged size (``j1``), which sits at ``_ragged_idx =
packed_dim + 1``; every other dim d of the nested tensor is dim d - 1 of ``values``. Ops run on
``values`` with ordinary chainrule ops, so autograd, gradcheck and devices need nothing of their own.
"""

from __future__ import annotations

import copy
import itertools

from .. import _layout
from .._torch_function import DisableTorchFunctionSubclass
from ..tensor import Size, Tensor

__all__ = ["NestedTensor", "RaggedSize", "make_nested"]

_ragged_counter = itertools.count(1)

# torch-function name -> handler(func, args, kwargs); filled by nested/_ops.py
HANDLERS: dict = {}


class RaggedSize:
    """The size of the ragged dim (torch's nested int ``j1``): one per offsets tensor, equal only to
    itself, so two nested tensors combine elementwise only when they share their offsets. Numbered
    when first printed, as torch numbers its nested ints when a shape is first read."""

    __slots__ = ("_number",)
    is_symbolic_size = True  # a torch.Size holds it as it holds torch's nested ints (SymInts)

    def __init__(self) -> None:
        self._number = None

    def __repr__(self) -> str:
        if self._number is None:
            self._number = next(_ragged_counter)
        return f"j{self._number}"


def ragged_size_of(offsets: Tensor) -> RaggedSize:
    """The one ragged size of ``offsets`` (kept on the tensor, as torch caches it per offsets)."""
    size = offsets.__dict__.get("_nested_ragged_size")
    if size is None:
        size = offsets.__dict__["_nested_ragged_size"] = RaggedSize()
    return size


class NestedTensor(Tensor):
    """torch.nested's jagged-layout tensor (``torch.nested.nested_tensor(..., layout=torch.jagged)``).

    The tensor's own storage is the packed ``values``; its metadata (shape, dim, grad, repr) is the
    nested one. Ops reach ``__torch_function__`` and run on ``values`` (nested/_ops.py)."""

    _values: Tensor
    _offsets: Tensor
    _lengths: Tensor | None
    _ragged_idx: int
    _ragged: RaggedSize
    _strided_layout: bool

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        handler = HANDLERS.get(name)
        if handler is None:
            raise NotImplementedError(f"aten.{name}.default")
        return handler(func, name, args, kwargs)

    # ------------------------------------------------------------------ the nested metadata
    @property
    def shape(self) -> Size:
        values_shape = tuple(self._values.shape)
        packed = self._ragged_idx - 1
        return Size((len(self._offsets) - 1, *values_shape[:packed], self._ragged, *values_shape[packed + 1:]))

    def size(self, dim: int | None = None):
        shape = self.shape
        return shape if dim is None else shape[dim]

    def dim(self) -> int:
        return self._values.dim() + 1

    @property
    def ndim(self) -> int:
        return self.dim()

    def numel(self) -> int:
        return self._values.numel()

    @property
    def dtype(self):
        return self._values.dtype

    @property
    def device(self):
        return self._values.device

    @property
    def layout(self):
        return _layout.strided if self._strided_layout else _layout.jagged

    @property
    def is_nested(self) -> bool:
        return True

    def is_contiguous(self, memory_format=None) -> bool:
        return self._lengths is None and self._values.is_contiguous()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    # ------------------------------------------------------------------ autograd goes through values
    @property
    def requires_grad(self) -> bool:
        return self._values.requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self._values.requires_grad = value

    def requires_grad_(self, requires_grad: bool = True) -> NestedTensor:
        self._values.requires_grad_(requires_grad)
        return self

    @property
    def grad_fn(self):
        return self._values.grad_fn

    @property
    def is_leaf(self) -> bool:
        return self._values.is_leaf

    @property
    def grad(self):
        grad = self._values.grad
        return None if grad is None else self._like(grad)

    @grad.setter
    def grad(self, value) -> None:
        self._values.grad = value._values if isinstance(value, NestedTensor) else value

    def retain_grad(self) -> None:
        self._values.retain_grad()

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
        if isinstance(gradient, NestedTensor):
            gradient = gradient._values
        self._values.backward(gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    # ------------------------------------------------------------------ the jagged accessors
    def values(self) -> Tensor:
        """The packed components (a view sharing memory and graph with this tensor)."""
        return self._values.view(self._values.shape)

    def offsets(self) -> Tensor:
        return self._offsets

    def lengths(self) -> Tensor | None:
        return self._lengths

    def unflatten(self, dim: int, sizes) -> NestedTensor:
        # Tensor.unflatten does not dispatch (it is chainrule's composite): hand it to the handler
        return HANDLERS["unflatten"](None, "unflatten", (self, dim, sizes), {})

    def component_bounds(self) -> list[tuple[int, int]]:
        """(start, length) of each component along the packed dim."""
        starts = self._offsets.tolist()
        if self._lengths is None:
            return [(starts[i], starts[i + 1] - starts[i]) for i in range(len(starts) - 1)]
        return list(zip(starts[:-1], self._lengths.tolist()))

    def _like(self, values: Tensor, ragged_idx: int | None = None) -> NestedTensor:
        """A nested tensor of ``values`` with this one's ragged structure."""
        return make_nested(values, self._offsets, self._lengths, self._ragged_idx if ragged_idx is None else ragged_idx,
                           strided_layout=self._strided_layout)

    def __deepcopy__(self, memo):
        # Tensor's deepcopy rebuilds a tensor from its storage: the nested fields are copied here
        if id(self) not in memo:
            memo[id(self)] = make_nested(copy.deepcopy(self._values, memo), copy.deepcopy(self._offsets, memo),
                                         copy.deepcopy(self._lengths, memo), self._ragged_idx, self._strided_layout)
        return memo[id(self)]

    def __repr__(self) -> str:
        if self._strided_layout:
            body = ",\n".join("  " + repr(component).replace("\n", "\n  ") for component in self.unbind())
            return f"nested_tensor([\n{body}\n])"
        size = "(" + ", ".join(str(s) for s in self.shape) + ")"
        fields = [f"size={size}", f"offsets={self._offsets!r}"]
        if self.grad_fn is not None:
            fields.append(f"grad_fn=<{self.grad_fn.name()} object at {hex(id(self.grad_fn))}>")
        elif self.requires_grad:
            fields.append("requires_grad=True")
        fields.append(f"contiguous={self.is_contiguous()}")
        return f"NestedTensor({', '.join(fields)})"

    __str__ = __repr__


def make_nested(values: Tensor, offsets: Tensor, lengths: Tensor | None = None, ragged_idx: int = 1,
                strided_layout: bool = False) -> NestedTensor:
    """A NestedTensor over ``values`` (components along dim ``ragged_idx - 1``) without copying."""
    with DisableTorchFunctionSubclass():
        out = Tensor._make.__func__(NestedTensor, values._data)
    out._values = values
    out._offsets = offsets
    out._lengths = lengths
    out._ragged_idx = ragged_idx
    out._ragged = ragged_size_of(offsets)
    out._strided_layout = strided_layout
    return out


def op_name(func) -> str:
    """The name an op's handler is registered under: ``sin`` for torch.sin, Tensor.sin and
    F-functions, the operator's name without underscores for ``__radd__``, the property's name
    for a dispatched property."""
    owner = getattr(func, "__self__", None)
    if isinstance(owner, property):
        return owner.fget.__name__
    name = getattr(func, "__name__", str(func))
    return name[2:-2] if name.startswith("__") and name.endswith("__") else name
