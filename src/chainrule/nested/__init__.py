"""torch.nested: tensors of components whose sizes differ in one dim (jagged nested tensors).

``nested_tensor([a, b], layout=torch.jagged)`` packs the components into one ``values`` tensor
with ``offsets`` (torch's NJT layout; the ragged dim is dim 1 unless the components differ in a
later dim); elementwise math, ``F.linear``/``matmul`` on the last dims, reductions and softmax over
a dim (the ragged one included), ``F.scaled_dot_product_attention``, ``unbind`` and
``to_padded_tensor`` run on the packed values with ordinary chainrule ops, so gradients reach the
components. ``layout=torch.strided`` (torch's default) uses the same representation and so
accepts only components that differ in one dim. docs/nested.md lists what is covered.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import _layout
from ..ops.creation import tensor as _tensor
from ..ops.shape import cat as _cat
from ..tensor import Tensor
from . import _ops
from ._jagged import NestedTensor, make_nested

__all__ = ["as_nested_tensor", "masked_select", "narrow", "nested_tensor", "nested_tensor_from_jagged",
           "to_padded_tensor"]

_STRIDED_WARNING = ("The PyTorch API of nested tensors is in prototype stage and will change in the near future. We "
                    "recommend specifying layout=torch.jagged when constructing a nested tensor, as this layout "
                    "receives active development, has better operator coverage, and works with torch.compile.")


def _offsets_of(lengths, device) -> Tensor:
    return _tensor(np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))]).astype(np.int64), device=device)


def as_packed(components: list, packed_dim: int, strided_layout: bool = False) -> NestedTensor:
    """The components end to end along ``packed_dim`` (a cat: gradients reach each component)."""
    values = _cat(components, packed_dim)
    lengths = [component.shape[packed_dim] for component in components]
    return make_nested(values, _offsets_of(lengths, values.device), None, packed_dim + 1, strided_layout)


def _checked_components(tensors, dtype, device, strided: bool) -> tuple[list, int]:
    """The components as Tensors of one dtype and device, and the one dim in which they differ."""
    if isinstance(tensors, Tensor) and not isinstance(tensors, NestedTensor):
        tensors = list(tensors.unbind())
    if len(tensors) == 0:
        raise RuntimeError("Cannot construct a nested tensor from an empty tensor list")
    components = [value if isinstance(value, Tensor) else _tensor(value, dtype=dtype) for value in tensors]
    if all(component.dim() == 0 for component in components):
        raise RuntimeError("Cannot construct a nested tensor from a list of zero-dim tensors")
    if len({component.dim() for component in components}) > 1:
        raise RuntimeError("When constructing a nested tensor, all tensors in list must have the same dim")
    if len({component.dtype for component in components}) > 1:
        raise RuntimeError("When constructing a nested tensor, all tensors in list must have the same dtype")
    if dtype is not None or device is not None:
        components = [component.to(device=device, dtype=dtype) for component in components]
    shapes = [tuple(component.shape) for component in components]
    differing = [d for d in range(len(shapes[0])) if len({shape[d] for shape in shapes}) > 1]
    if len(differing) > 1:
        kind = "strided" if strided else "jagged"
        raise RuntimeError(f"nested_tensor(): chainrule's {kind} nested tensors hold components that differ in one "
                           f"dim only, got shapes {[list(shape) for shape in shapes]} (differing in dims {differing}); "
                           "torch's strided layout allows several ragged dims, chainrule does not")
    return components, (differing[0] if differing else 0)


def _strided_requested(layout) -> bool:
    if layout is None or layout is _layout.strided:
        return True
    if layout is _layout.jagged:
        return False
    raise RuntimeError(f"Specified layout is unsupported for nested tensors: {layout}")


def nested_tensor(tensor_list, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                  pin_memory: bool = False) -> NestedTensor:
    """A nested tensor holding copies of ``tensor_list``'s tensors (or nested lists of numbers): a
    new leaf, as torch.nested.nested_tensor; ``layout=torch.jagged`` for torch's NJT."""
    strided = _strided_requested(layout)
    if strided:
        warnings.warn(_STRIDED_WARNING, UserWarning, stacklevel=2)
    components, ragged_dim = _checked_components(tensor_list, dtype, device, strided)
    nested = as_packed([component.detach() for component in components], ragged_dim, strided)
    nested._values = nested._values.detach().requires_grad_(requires_grad)
    nested._data = nested._values._data
    return nested


def as_nested_tensor(ts, dtype=None, device=None, layout=None) -> NestedTensor:
    """A nested tensor of ``ts`` (a list of tensors, or a tensor whose dim 0 is the batch) keeping
    the autograd graph: gradients flow back to ``ts``, as torch.nested.as_nested_tensor."""
    strided = _strided_requested(layout)
    if isinstance(ts, NestedTensor):
        values = ts._values.to(device=device, dtype=dtype) if dtype is not None or device is not None else ts._values
        return make_nested(values, ts._offsets, ts._lengths, ts._ragged_idx, strided)
    if isinstance(ts, Tensor):
        if ts.dim() < 2:
            raise RuntimeError(f"as_nested_tensor(): expected a tensor with at least 2 dims (batch and one more), "
                               f"got shape {list(ts.shape)}")
        if dtype is not None or device is not None:
            ts = ts.to(device=device, dtype=dtype)
        batch, length = ts.shape[0], ts.shape[1]
        values = ts.reshape(batch * length, *ts.shape[2:])
        return make_nested(values, _offsets_of([length] * batch, values.device), None, 1, strided)
    if strided:
        warnings.warn(_STRIDED_WARNING, UserWarning, stacklevel=2)
    components, ragged_dim = _checked_components(list(ts), dtype, device, strided)
    return as_packed(components, ragged_dim, strided)


def nested_tensor_from_jagged(values: Tensor, offsets: Tensor | None = None, lengths: Tensor | None = None,
                              jagged_dim: int | None = None, min_seqlen: int | None = None,
                              max_seqlen: int | None = None) -> NestedTensor:
    """A jagged nested tensor viewing ``values`` (components end to end along dim ``jagged_dim - 1``,
    default 0): component i starts at ``offsets[i]`` and runs to ``offsets[i + 1]`` (or for
    ``lengths[i]``). Given only ``lengths``, offsets are their running sum."""
    if offsets is None:
        if lengths is None:
            raise RuntimeError("nested_tensor_from_jagged(): At least one of offsets or lengths is required.")
        offsets, lengths = _offsets_of(np.asarray(lengths.tolist()), values.device), None
    ragged_idx = 1 if jagged_dim is None else jagged_dim
    if not 1 <= ragged_idx <= values.dim():
        raise RuntimeError(f"nested_tensor_from_jagged(): jagged_dim={jagged_dim} is out of range for values "
                           f"of {values.dim()} dims")
    return make_nested(values.view(values.shape), offsets, lengths, ragged_idx)


def narrow(tensor: Tensor, dim: int, start, length, layout=_layout.strided) -> NestedTensor:
    """A nested tensor of ``tensor[i].narrow(dim - 1, start[i], length[i])`` for each batch entry i
    (``start``/``length``: ints or one per entry). Jagged: a view of ``tensor``'s memory."""
    if isinstance(tensor, NestedTensor):
        raise RuntimeError("narrow(): expected a strided (non-nested) tensor input")
    if dim != 1:
        raise RuntimeError("narrow(): only dim=1 supported for nested tensors")
    batch = tensor.shape[0]
    starts = np.broadcast_to(np.asarray(start.tolist() if isinstance(start, Tensor) else start, dtype=np.int64), (batch,))
    lengths = np.broadcast_to(np.asarray(length.tolist() if isinstance(length, Tensor) else length, dtype=np.int64), (batch,))
    if not _strided_requested(layout):
        values = tensor.reshape(batch * tensor.shape[1], *tensor.shape[2:])
        offsets = np.append(np.arange(batch) * tensor.shape[1] + starts, starts[-1] + (batch - 1) * tensor.shape[1] + lengths[-1])
        return make_nested(values, _tensor(offsets.astype(np.int64), device=values.device),
                           _tensor(np.array(lengths, dtype=np.int64), device=values.device), 1)
    return as_packed([tensor[i].narrow(0, int(starts[i]), int(lengths[i])) for i in range(batch)], 0, True)


def masked_select(tensor: Tensor, mask: Tensor) -> NestedTensor:
    """A jagged nested tensor of each batch entry's elements where ``mask`` is True (torch.masked_select
    per entry: dim 0 of ``tensor`` is the batch, the rest is flattened)."""
    mask = mask.expand_as(tensor) if mask.shape != tensor.shape else mask
    values = tensor[mask]
    counts = mask.reshape(tensor.shape[0], -1).sum(1).tolist()
    return make_nested(values, _offsets_of(counts, values.device), None, 1)


def to_padded_tensor(input: Tensor, padding: float, output_size=None, out=None) -> Tensor:
    """The dense tensor of ``input``'s components, each padded with ``padding`` to the longest (or
    to ``output_size``); the ragged dim stays where it is. Gradients reach the components."""
    if not isinstance(input, NestedTensor):
        raise RuntimeError("to_padded_tensor(): expected a nested tensor input")
    result = _ops.to_padded_tensor(input, padding, output_size)
    if out is not None:
        out.copy_(result)
        return out
    return result


def _to_padded_method(self, padding: float, output_size=None) -> Tensor:
    return _ops.to_padded_tensor(self, padding, output_size)


NestedTensor.to_padded_tensor = _to_padded_method
