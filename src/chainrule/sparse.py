"""Sparse COO tensors (torch.sparse_coo_tensor, Tensor.to_sparse, torch.sparse): enough for the
graph networks people write by hand (GCN, GAT), whose adjacency matrices are sparse; and sparse
CSR and CSC matrices (torch.sparse_csr_tensor, Tensor.to_sparse_csr, Tensor.to_sparse_csc) built the
same way.

chainrule stores a sparse tensor's values densely as well: its indices and values are kept as
given (``indices()``, ``values()``, ``coalesce()``, ``_nnz()`` and the repr are torch's), and
its array is the dense matrix they describe. Every op therefore runs on it as on a dense tensor
and gives torch's numbers: ``sparse @ dense``, ``torch.spmm``, ``torch.sparse.mm`` and
``dense + sparse`` return dense tensors, as in torch. ``sparse + sparse`` and ``sparse - sparse``
(operators, methods, torch.add/torch.sub and their in-place forms), ``sparse * sparse``,
``sparse * number`` / ``* dense`` / ``/ number``, ``-sparse``, the entry-wise math torch keeps
sparse (abs, sqrt, sin, tanh, relu, pow(number), ...), ``sparse @ sparse``, ``t()``/``transpose`` of
sparse dims, ``clone()``, ``detach()``, ``zeros_like`` and ``torch.sparse.sum``/``sum`` over some dims
stay sparse, with torch's indices, order and coalesced flag; the math torch refuses on a sparse
tensor (exp, sigmoid, log, mean, ...) raises its NotImplementedError. Indexing by integers and
full slices, ``select``, ``index_select`` and ``narrow_copy`` are sparse too (their backward refused
with torch's words), as are ``unsqueeze`` and ``None`` in an index; slices and tensor indices and
``narrow`` are refused as torch refuses them. Elsewhere (``torch.unsqueeze(s, d)``) chainrule returns a
dense result, the same values in the strided layout. Memory is that of the dense matrix, so a sparse tensor
larger than ``MAX_DENSE_ELEMENTS`` is refused with a message rather than exhausting memory.
Gradients flow through the dense operands of a product, and to the ``values`` a sparse tensor was
built from when they require grad (an attention-weighted adjacency): through ``coalesce()``,
``values()``, ``to_dense()``, ``torch.sparse.sum`` and every op on it, as in torch. A sparse COO
leaf may require grad: ``torch.sparse.mm``/``addmm``/``sum``, ``to_dense()``, ``values()`` and the
sparse arithmetic give it a sparse gradient at its entries, ``torch.mm`` and ``@`` a dense one, as
torch's; SGD steps its entries. A CSR or CSC leaf may require grad too: its ``.grad`` is of torch's layout
(CSR at its entries from ``to_dense()``, ``values()``, ``* dense`` and ``torch.sparse.mm``, strided from ``+ dense``,
``sum`` and ``torch.mm``; a CSC gradient refused, as torch's layout check refuses it). A gradient made sparse (by ``to_dense()``, ``values()``,
``torch.sparse.mm``) keeps its entries through the ops linear in the entries (``+``, ``-``, times
a number, transpose, clone) as torch's does, so ``a`` in ``(a + b).to_dense()`` gets ``b``'s
entries too.
"""

from __future__ import annotations

import builtins
import copy
import inspect
import math
import numbers
import warnings

import numpy as np

from . import _config, _dtype, _torch_function
from ._backend import array_module, ufunc_at
from ._format import add_suffixes, array_body
from ._layout import not_on_sparse as _not_on_sparse
from ._layout import sparse_bsc, sparse_bsr, sparse_coo, sparse_csc, sparse_csr
from ._layout import strided as _layout_strided
from ._torch_function import DisableTorchFunctionSubclass, disabled_torch_function_impl, user_stacklevel
from .autograd.function import Function, is_recording, name_node
from .autograd.grad_mode import is_grad_enabled, no_grad
from .ops import elementwise as _elementwise
from .ops.creation import _to_array
from .ops.elementwise import _TRUE_DIVISION, where
from .ops.elementwise import add as dense_add
from .ops.elementwise import sub as dense_sub
from .ops.index import getitem
from .ops.linalg import (
    _check_sparse_product,
    _entry_by_entry_product,
    _scaled_sum,
    _summed_entry_by_entry,
    _transposed_entries_product,
)
from .ops.linalg import matmul as _matmul
from .ops.reduce import _unstable_order
from .ops.reduce import log_softmax as dense_log_softmax
from .ops.reduce import softmax as dense_softmax
from .ops.shape import clone
from .tensor import (
    _COMPLEX_TO_REAL,
    Size,
    Tensor,
    _host,
    _NoDerivative,
    _write_checked_out,
    refuse_out_under_autograd,
)

__all__ = ["mm", "addmm", "sum", "spmm", "hspmm", "spdiags", "softmax", "log_softmax", "sparse_coo_tensor", "SparseCOOTensor", "sparse_csr_tensor",
           "sparse_csc_tensor", "sparse_compressed_tensor", "sampled_addmm",
           "SparseCSRTensor", "MAX_DENSE_ELEMENTS",
           "check_sparse_tensor_invariants",
           "FloatTensor", "DoubleTensor", "HalfTensor", "ByteTensor", "CharTensor", "ShortTensor", "IntTensor",
           "LongTensor"]

# 2**28 float32 elements is 1 GiB of dense backing
MAX_DENSE_ELEMENTS = 1 << 28

_NO_GRAD = ("chainrule: a sparse tensor cannot require grad (its values are stored densely and "
            "differentiated as such): keep the sparse operand constant and let the gradient flow to the "
            "dense one, or use .to_dense()")


def _densely_stored(cls, op: str, size: tuple, positions: tuple, values):
    """A ``cls`` tensor whose dense backing of ``size`` holds ``values`` added at ``positions``
    (one index array per sparse dim), refused beyond MAX_DENSE_ELEMENTS."""
    elements = math.prod(size)
    if elements > MAX_DENSE_ELEMENTS:
        raise RuntimeError(f"{op}: chainrule stores sparse tensors densely, and size {tuple(size)} "
                           f"has {elements:,} elements (at most {MAX_DENSE_ELEMENTS:,})")
    xp = array_module(values)
    dense = xp.zeros(tuple(size), dtype=values.dtype)
    if values.shape[0]:
        ufunc_at(xp, "add", dense, positions, values)
    tensor = object.__new__(cls)
    tensor._init(dense)
    return tensor


class _ScatterValues(Function):
    """The dense backing of a sparse tensor, made from its ``values`` (nnz × dense dims) added at
    ``positions``: recorded when the values require grad, so the gradient reaches them."""

    node_name = "SparseCooTensorWithDimsAndTensorsBackward0"
    label = "sparse_coo_tensor"
    rule = "each value gets the gradient at its position"
    _array_forward = True

    @staticmethod
    def forward(ctx, values, positions, dense):
        ctx.positions = positions
        return dense

    @staticmethod
    def backward(ctx, grad):
        # the dense backing sums the values at their positions: each reads the gradient there
        return grad[ctx.positions]


class _ScatterCompressedValues(_ScatterValues):
    """The dense backing of a compressed matrix made from ``values`` that require grad: each value reads the
    gradient at its stored entry (a sparse gradient, torch.sparse.mm's, made dense first)."""

    node_name = "SparseCompressedTensorBackward0"
    label = "sparse_compressed_tensor"

    @staticmethod
    def backward(ctx, grad):
        if grad.layout is not _layout_strided:
            grad = grad.to_dense()
        return grad[ctx.positions]


def _joined_graph(tensor: Tensor, recorded: Tensor) -> Tensor:
    """``tensor`` takes ``recorded``'s place in the graph (the same values, another class)."""
    if recorded.grad_fn is not None:
        _reading_entries_directly(recorded.grad_fn)
        tensor.grad_fn, tensor._output_nr, tensor._requires_grad = recorded.grad_fn, recorded._output_nr, True
    return tensor


def _reading_entries_directly(node) -> None:
    """``node``, an op's node over sparse tensors read through ``_in_graph``, made torch's: its edges go
    straight to those tensors (``next_functions`` name their AccumulateGrad or grad_fn, as torch's node's
    do, not a SparseMaskBackward0 between), and the node itself passes each of them the gradient at its
    entries, sparse, as the bypassed node did (torch's sparse kernel's derivative gives that one)."""
    edges = node.next_functions
    masks = {i: edge[0] for i, edge in enumerate(edges)
             if edge[0] is not None and edge[0]._forward_cls is _SparseGradient}
    if not masks:
        return
    node.next_functions = tuple(masks[i].next_functions[0] if i in masks else edge for i, edge in enumerate(edges))

    def at_entries(grad_inputs, grad_outputs):
        return tuple(_SparseGradient.backward(masks[i], grad) if i in masks and grad is not None else grad
                     for i, grad in enumerate(grad_inputs))

    node.register_hook(at_entries)


def _keeping_graph(result: Tensor, dense_op, *inputs) -> Tensor:
    """A sparse result in the graph of the same op computed densely, when that would record (a
    sparse input requires grad, or the values it was built from do): the same values, so the same
    gradient. ``dense_op`` takes ``inputs``, each sparse one as its dense backing in its graph."""
    if is_recording(*(t for t in inputs if isinstance(t, Tensor))):
        _joined_graph(result, dense_op(*(_in_graph(t) if isinstance(t, SparseCOOTensor) else t for t in inputs)))
    return result


class _SparseGradient(Function):
    """A sparse tensor's dense backing, read by an op whose gradient torch makes sparse: a dense
    gradient becomes the gradient at the tensor's (coalesced) entries only, a sparse COO tensor
    (torch's sparse_mask); a sparse one, made further down, passes on as it is, so a leaf gets the
    pattern torch's sparse ops carry back to it (``(a + b).to_dense()``: ``a`` gets ``b``'s entries too)."""

    node_name = "SparseMaskBackward0"
    label = "sparse entries"
    rule = "the gradient at the tensor's entries, sparse"
    _array_forward = True

    @staticmethod
    def forward(ctx, dense, sparse, coalesced, remask):
        ctx.indices, ctx.size, ctx.coalesced = _unique_indices(sparse), tuple(sparse.shape), coalesced
        ctx.remask = remask
        return dense

    @staticmethod
    def backward(ctx, grad):
        if grad.is_sparse and not ctx.remask:
            return grad
        xp = array_module(grad._data)
        values = xp.ascontiguousarray(grad._data[tuple(ctx.indices)])
        # (indices of its own, contiguous, as torch's sparse_mask makes them: AccumulateGrad may steal them)
        return SparseCOOTensor._from_parts(ctx.indices.copy(), values, ctx.size, ctx.coalesced)


class _LinearInEntries(Function):
    """An op linear in a sparse tensor's entries (times a number, negation, transpose, clone), its
    result's dense backing given: the adjoint runs as a tensor op on the gradient, so a sparse
    gradient stays sparse with its entries, as torch's."""

    label = "linear in the entries"
    rule = "the adjoint of the op, on the gradient as it comes (sparse stays sparse)"
    _array_forward = True

    @staticmethod
    def forward(ctx, dense, result, adjoint):
        ctx.adjoint = adjoint
        return result

    @staticmethod
    def backward(ctx, grad):
        return ctx.adjoint(grad)


class _TimesSparse(Function):
    """A sparse tensor's dense backing times a dense factor of its shape: the factor's gradient is
    sparse at the tensor's entries (each entry's value times the gradient at its index, duplicates
    kept), as torch's ``grad * sparse``. The sparse tensor's backing comes first, or second
    (``sparse_first=False``: ``factor * sparse``, whose node takes the factor first, as torch's)."""

    node_name = "MulBackward0"
    label = "mul"
    rule = "d(a*b) = b da + a db, db sparse at a's entries"
    _array_forward = True

    @staticmethod
    def forward(ctx, first, second, sparse, sparse_first=True):
        factor = second if sparse_first else first
        ctx.coo, ctx.size, ctx.factor, ctx.sparse_first = sparse.detach()._coo, tuple(sparse.shape), factor, sparse_first
        return first * second

    @staticmethod
    def backward(ctx, grad):
        dense_at, factor_at = (0, 1) if ctx.sparse_first else (1, 0)
        grad_dense = grad * Tensor._make(ctx.factor) if ctx.needs_input_grad[dense_at] else None
        grad_factor = None
        if ctx.needs_input_grad[factor_at]:
            indices, values, _ = ctx.coo
            entries = (grad._data[tuple(indices)] * values).astype(ctx.factor.dtype, copy=False)
            # (torch's product of the incoming gradient and the sparse tensor is marked uncoalesced)
            grad_factor = SparseCOOTensor._from_parts(indices, entries, ctx.size, False)
        return (grad_dense, grad_factor) if ctx.sparse_first else (grad_factor, grad_dense)


class _SparseTimesSparse(Function):
    """sparse * sparse, recorded over both sparse tensors (its edges theirs): each one's gradient is the
    incoming gradient times the other, by the sparse product itself (so of the entries and the coalesced
    flag torch's product gives: an uncoalesced factor's entries, each times the other's value there), as
    torch's MulBackward0 on two sparse tensors."""

    node_name = "MulBackward0"
    label = "mul"
    rule = "d(a*b) = conj(b) da + conj(a) db, each a sparse product"
    _array_forward = True

    @staticmethod
    def forward(ctx, first, second, result, factors):
        ctx.factors = factors
        return result

    @staticmethod
    def backward(ctx, grad):
        first, second = ctx.factors

        def times(factor):
            factor = _conjugated(factor)  # (torch's grad * other.conj())
            if grad.is_sparse:
                return _intersection_product(grad, factor)
            return factor._product(grad, reflected=True)  # (dense * sparse: sparse at the factor's entries)

        return (times(second) if ctx.needs_input_grad[0] else None,
                times(first) if ctx.needs_input_grad[1] else None)


class _LinearInEntriesByNumber(_LinearInEntries):
    """_LinearInEntries of an op by a number (times, over), which torch's node takes as a wrapped 0-d tensor:
    its second edge, which never requires grad (``next_functions`` end with ``(None, 0)``)."""

    @staticmethod
    def forward(ctx, dense, number, result, adjoint):
        ctx.adjoint = adjoint
        return result

    @staticmethod
    def backward(ctx, grad):
        return ctx.adjoint(grad), None


def _conjugated(tensor):
    """A sparse (COO or compressed) tensor's complex conjugate, of the same pattern, out of the graph; a real one
    as it is: the factor a product's gradient takes, as torch's formulas conjugate it."""
    values = tensor._coo[1] if isinstance(tensor, SparseCOOTensor) else tensor._parts[2]
    if values.dtype.kind != "c":
        return tensor
    xp = array_module(values)
    return tensor._with_values(xp.conj(values))


def _linear_in_entries(result: SparseCOOTensor, input: SparseCOOTensor, adjoint, node: str,
                       number=None) -> SparseCOOTensor:
    """``result``, made from ``input`` by an op linear in its entries whose adjoint is ``adjoint``
    (times or over ``number``, where given), in the graph under torch's node name ``node``, when ``input``
    records."""
    if is_recording(input):
        # (the input itself the node's operand: its edge is the input's own, as torch's)
        if number is None:
            recorded = _LinearInEntries.apply(input, result=result._data, adjoint=adjoint)
        else:
            wrapped = Tensor._make(array_module(result._data).asarray(number))
            recorded = _LinearInEntriesByNumber.apply(input, wrapped, result=result._data, adjoint=adjoint)
        _joined_graph(result, name_node(recorded, node))
    return result


class _NoSparseBackward(Function):
    """An op torch runs on sparse COO tensors but cannot differentiate there (select,
    index_select, narrow_copy, cat): recorded under torch's node name over each of its tensors, its
    backward raises torch's NotImplementedError, naming the kernel torch lacks."""

    label = "no sparse derivative"
    rule = "refused: torch has no sparse kernel for this derivative"
    _array_forward = True

    @staticmethod
    def forward(ctx, *dense, result, refusal):
        ctx.refusal = refusal
        return result

    @staticmethod
    def backward(ctx, grad):
        error, message = ctx.refusal
        raise error(message)


def _without_sparse_backward(result: SparseCOOTensor, input: SparseCOOTensor, kernel: str, node: str,
                             refusal: tuple | None = None, more: tuple = ()):
    """``result`` in the graph of ``input`` (and of ``more``, the op's further tensors: each an edge of
    the node, as torch's cat's) through a node whose backward torch refuses: for want of the sparse
    ``kernel``, or with ``refusal`` (an exception class and its words)."""
    if is_recording(input, *more):
        refusal = refusal or (NotImplementedError, _not_on_sparse(kernel))
        recorded = _NoSparseBackward.apply(*(_in_graph(t) for t in (input, *more)), result=result._data,
                                           refusal=refusal)
        _joined_graph(result, name_node(recorded, node))
    return result


def _unique_indices(tensor: SparseCOOTensor):
    """The sorted, unique indices of ``tensor``'s entries (its coalesced indices)."""
    indices, _, coalesced = tensor._coo
    if coalesced or indices.shape[1] == 0:
        return indices
    xp = array_module(indices)
    shape = tuple(tensor.shape[:indices.shape[0]])
    flat = xp.unique(xp.ravel_multi_index(tuple(indices), shape))
    return xp.stack(xp.unravel_index(flat, shape)).astype(np.int64)


def _in_graph(tensor: Tensor, coalesced_grad: bool = False, remask: bool = False) -> Tensor:
    """``tensor``'s dense backing as a plain tensor in its graph; a sparse one's through the node
    that makes its gradient sparse (marked coalesced when ``coalesced_grad``, as some of torch's;
    a sparse gradient masked again to its entries when ``remask``)."""
    if isinstance(tensor, SparseCOOTensor) and tensor._requires_grad and is_grad_enabled():
        return _SparseGradient.apply(tensor, sparse=tensor, coalesced=coalesced_grad, remask=remask)
    if isinstance(tensor, _CompressedTensor) and tensor._requires_grad and tensor.grad_fn is None \
            and is_grad_enabled():
        return _CompressedLeafGradient.apply(tensor, leaf=tensor)
    return Tensor._make(tensor._data, tensor.grad_fn, tensor._output_nr)


class _CompressedLeafGradient(Function):
    """A compressed leaf's dense backing in the graph: its gradient is of its layout and pattern, as torch
    accumulates a compressed leaf's (the values at the stored entries; explicit zeros kept)."""

    label = "compressed leaf"
    rule = "the gradient at the leaf's stored entries, in its layout"
    _array_forward = True

    @staticmethod
    def forward(ctx, dense, leaf):
        ctx.leaf = leaf
        return dense

    @staticmethod
    def backward(ctx, grad):
        return ctx.leaf._with_values(ctx.leaf._data.dtype.type(0) + grad._data[ctx.leaf._positions()])


def _recorded_copy(tensor: Tensor, node: str, coalesced_grad: bool = False) -> Tensor:
    """A plain dense copy of ``tensor``'s values in its graph, the node named ``node``: over a sparse COO
    tensor that requires grad, torch's one node, its gradient sparse at the tensor's entries."""
    if isinstance(tensor, SparseCOOTensor) and tensor._requires_grad and is_grad_enabled():
        return _read_entries(tensor, tensor._data.copy(), _coo_entries(tensor, coalesced_grad), node)
    return name_node(clone(_in_graph(tensor, coalesced_grad)), node)


class _ReadEntries(Function):
    """An op reading a sparse tensor's entries whose gradient torch makes sparse at them (to_dense, coalesce,
    values): recorded over the sparse tensor itself, so the node's edge is the tensor's own, as torch's
    (``next_functions`` name its AccumulateGrad or grad_fn); ``to_entries`` carries the result's gradient
    back to the tensor's entries, in its layout."""

    label = "read entries"
    rule = "the gradient at the tensor's entries, in its layout"
    _array_forward = True

    @staticmethod
    def forward(ctx, backing, result, to_entries):
        ctx.to_entries = to_entries
        return result

    @staticmethod
    def backward(ctx, grad):
        return ctx.to_entries(grad)


def _read_entries(tensor: Tensor, result, to_entries, node: str) -> Tensor:
    """``result`` (an array read from the sparse ``tensor``) in its graph under torch's node name ``node``."""
    return name_node(_ReadEntries.apply(tensor, result=result, to_entries=to_entries), node)


def _coo_entries(tensor: SparseCOOTensor, coalesced: bool):
    """The gradient of ``tensor``'s dense backing at its (unique) entries, a sparse COO tensor (marked coalesced
    when ``coalesced``, as some of torch's); a sparse one, made further down, passes on as it is (see
    _SparseGradient)."""
    indices, size = _unique_indices(tensor), tuple(tensor.shape)

    def to_entries(grad):
        if grad.is_sparse:
            return grad
        values = array_module(grad._data).ascontiguousarray(grad._data[tuple(indices)])
        # (indices of its own, contiguous, as torch's sparse_mask makes them: AccumulateGrad may steal them)
        return SparseCOOTensor._from_parts(indices.copy(), values, size, coalesced)

    return to_entries


def _compressed_entries(tensor: _CompressedTensor):
    """The gradient of a compressed ``tensor``'s dense backing at its stored entries, of its layout and pattern
    (explicit zeros kept; +0.0 where the math gave -0.0, as torch's kernel gives it)."""
    positions = tensor._positions()

    def to_entries(grad):
        return tensor._with_values(tensor._data.dtype.type(0) + grad._data[positions])

    return to_entries


# the most entries whose order coalesce replays from torch's unstable sort (about 1 microsecond an entry);
# beyond it the stable order stands, which is torch's own from 32768 entries (its radix sort)
_COALESCE_REPLAY_LIMIT = 4096


def _order_sums(values, starts, count: int) -> bool:
    """Whether the order in which coalesce adds an index's values can change their sum: floating values
    (two add up the same either way) on the host, where some index holds three or more, and few enough
    entries to replay torch's sort (see _COALESCE_REPLAY_LIMIT)."""
    if (values.dtype.kind not in "fcV" or type(values) is not np.ndarray or count - starts.shape[0] < 2
            or count > _COALESCE_REPLAY_LIMIT):
        return False
    return bool((np.diff(starts, append=count) >= 3).any())


def _summed_in_order(xp, values, count: int, starts):
    """The ``count`` values, sorted by index, summed over each run of one index (runs beginning at
    ``starts``) as torch's coalesce sums them: the run's first value copied (a -0.0 kept), then each later
    one added to it in turn, in the values' dtype (bool ORed, narrow ints wrapping), not in NumPy's pairwise
    order."""
    summed = values[starts]
    if starts.shape[0] == count:  # no index repeats: nothing to add
        return summed
    later = xp.ones(count, dtype=bool)
    later[starts] = False
    run = xp.cumsum(~later) - 1
    ufunc_at(xp, "add", summed, run[later], values[later])  # (applied one by one, in order)
    return summed


class SparseCOOTensor(Tensor):
    """A tensor in the sparse COO layout: ``sparse_dim`` index rows, one column per stored
    entry, and the entries' values (which may have dense trailing dims)."""

    __torch_function__ = disabled_torch_function_impl  # chainrule's own subclass: ops give plain Tensors
    _sparse_layout = True

    @classmethod
    def _from_parts(cls, indices, values, size: tuple, coalesced: bool, strides_kept: bool = False) -> SparseCOOTensor:
        # repeated indices add up, as coalescing does. torch's kernels write their results' indices into
        # fresh contiguous tensors; only the constructor (the indices given) and the kernels that narrow a
        # larger buffer (coalesce, add) keep other strides, and say so by ``strides_kept``
        if not (strides_kept or indices.flags.c_contiguous):
            indices = array_module(indices).ascontiguousarray(indices)
        tensor = _densely_stored(cls, "sparse_coo_tensor", size, tuple(indices), values)
        tensor._coo = (indices, values, coalesced)
        return tensor

    # --------------------------------------------------------------- what makes it sparse
    @property
    def layout(self):
        return sparse_coo

    @property
    def is_sparse(self) -> bool:
        return True

    def sparse_dim(self) -> int:
        return self._coo[0].shape[0]

    def dense_dim(self) -> int:
        return self.dim() - self.sparse_dim()

    def _nnz(self) -> int:
        return self._coo[0].shape[1]

    def is_coalesced(self) -> bool:
        return self._coo[2]

    def _coalesced_(self, coalesced: bool) -> SparseCOOTensor:
        """torch's in-place promise that the indices are (or are not) sorted and unique, unchecked as in
        torch (PyTorch Geometric marks the adjacency it built from coalesced edges this way)."""
        self._coo = (self._coo[0], self._coo[1], bool(coalesced))
        return self

    def _indices(self) -> Tensor:
        return Tensor._make(self._coo[0])

    def _values(self) -> Tensor:
        return Tensor._make(self._coo[1])

    def indices(self) -> Tensor:
        if not self._coo[2]:
            raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call .coalesce() first")
        return self._indices()

    def values(self) -> Tensor:
        if not self._coo[2]:
            raise RuntimeError("Cannot get values on an uncoalesced tensor, please call .coalesce() first")
        if self._requires_grad and is_grad_enabled():
            # coalesced: each value is the dense backing at its (unique) position, and its gradient the entry's
            indices, size = self._coo[0], tuple(self.shape)

            def to_entries(grad):
                values = array_module(grad._data).ascontiguousarray(grad._data)
                return SparseCOOTensor._from_parts(indices, values, size, True, strides_kept=True)

            return _read_entries(self, self._data[tuple(indices)], to_entries, "ValuesBackward0")
        return self._values()

    def coalesce(self) -> SparseCOOTensor:
        """Sorted, unique indices; the values of repeated indices summed."""
        if self._coo[2]:
            return self
        indices, values, _ = self._coo
        xp = array_module(values)
        if indices.shape[1] == 0:
            coalesced = SparseCOOTensor._from_parts(indices, values, tuple(self.shape), True)
        else:
            flat = xp.ravel_multi_index(tuple(indices), tuple(self.shape[:indices.shape[0]]))
            order = xp.argsort(flat, kind="stable")
            starts = xp.concatenate([xp.asarray([0]), xp.nonzero(xp.diff(flat[order]))[0] + 1])
            if _order_sums(values, starts, flat.shape[0]):
                # torch sums each index's values in the order its unstable sort left them in
                order = _unstable_order(flat, 0, False)
            summed = _summed_in_order(xp, values[order], flat.shape[0], starts)
            # torch writes the unique indices into a buffer as long as the input's and narrows it: strides
            # (nnz before, 1), not contiguous where duplicates merged
            room = xp.empty(indices.shape, dtype=indices.dtype)
            room[:, :starts.shape[0]] = indices[:, order[starts]]
            coalesced = SparseCOOTensor._from_parts(room[:, :starts.shape[0]], summed, tuple(self.shape), True,
                                                    strides_kept=True)
        if self._requires_grad and is_grad_enabled():  # the same dense values: the same gradient
            _joined_graph(coalesced, _recorded_copy(self, "CoalesceBackward0", coalesced_grad=True))
        return coalesced

    # --------------------------------------------------------------- ops that stay sparse in torch
    def add(self, other, *, alpha=1):
        """sparse + sparse is sparse; sparse + dense (or a number) is refused, as torch refuses it
        (dense + sparse is dense)."""
        if not isinstance(other, (Tensor, numbers.Number)):  # (the parser's refusal)
            with DisableTorchFunctionSubclass():
                return Tensor.add(self, other, alpha=alpha)
        if isinstance(other, _CompressedTensor):  # (torch's sparse add asks for a strided tensor's memory format)
            raise RuntimeError("memory format option is only supported by strided tensors")
        if not isinstance(other, SparseCOOTensor):
            raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead.")
        return _keeping_graph(_add_sparse(self, other, alpha), lambda a, b: Tensor.add(a, b, alpha=alpha), self, other)

    def sub(self, other, *, alpha=1):
        if not isinstance(other, (Tensor, numbers.Number)):  # (the parser's refusal)
            with DisableTorchFunctionSubclass():
                return Tensor.sub(self, other, alpha=alpha)
        _elementwise._checked_sub_operands(self, other, alpha)  # torch's bool refusals come first
        if not isinstance(other, SparseCOOTensor):
            raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead.")
        return _keeping_graph(_add_sparse(self, other, -alpha), lambda a, b: Tensor.sub(a, b, alpha=alpha), self, other)

    def __add__(self, other):
        return self.add(other)

    def __sub__(self, other):
        return self.sub(other)

    # Python asks these first for dense ± sparse (a subclass's reflected operator wins): dense +
    # sparse is torch.add(dense, sparse); number + sparse is sparse + number (refused); number -
    # sparse is torch.sub(number, sparse), refused as a dense addend of another size
    def __radd__(self, other):
        return dense_add(other, self) if isinstance(other, Tensor) else self.add(other)

    def __rsub__(self, other):
        return dense_sub(other, self)

    def mul(self, other):
        """sparse * a number, a 0-d tensor or a dense tensor of the same shape (or broadcasting to
        it) is sparse: each stored value times the factor at its index, indices (and coalesced-ness)
        kept, as torch's."""
        return self._product(other, reflected=False)

    def _product(self, other, reflected: bool):
        """``self * other``, or ``other * self`` where ``reflected`` (whose node takes ``other`` first)."""
        if isinstance(other, _CompressedTensor):  # (torch reaches the compressed kernel, which wants a CSR self)
            raise RuntimeError("Expected result Tensor to be of format CSR")
        if isinstance(other, numbers.Number):
            return _linear_in_entries(self._with_values((Tensor._make(self._coo[1]) * other)._data), self,
                                      lambda grad: grad * other, "MulBackward0", other)
        if isinstance(other, SparseCOOTensor):
            result = _intersection_product(self, other)
            if is_recording(self, other):
                first, second = (other, self) if reflected else (self, other)
                recorded = _SparseTimesSparse.apply(first, second, result=result._data,
                                                    factors=(first.detach(), second.detach()))
                _joined_graph(result, recorded)
            return result
        elif type(other) is Tensor and other.dim() == 0:
            result = self._with_values((Tensor._make(self._coo[1]) * other)._data)
        elif type(other) is Tensor and other.dim() <= self.dim() and all(
                size in (1, full) for size, full in zip(other.shape[::-1], self.shape[::-1])):
            xp = array_module(self._coo[1])
            # (a hybrid tensor's entries are dense rows: each takes the factor's row at its index)
            factors = xp.broadcast_to(other._data, tuple(self.shape))[tuple(self._coo[0])]
            result = self._with_values((Tensor._make(self._coo[1]) * Tensor._make(factors))._data)
            if tuple(other.shape) == tuple(self.shape):  # torch gives the dense factor a sparse gradient
                if reflected:
                    return _keeping_graph(result, lambda b, a: _TimesSparse.apply(b, a, sparse=self, sparse_first=False),
                                          other, self)
                return _keeping_graph(result, lambda a, b: _TimesSparse.apply(a, b, sparse=self), self, other)
        elif type(other) is Tensor and other.dim() > self.dim() and _broadcasts(self.shape, other.shape):
            return _broadcast_product(self, other)
        else:
            # dense (torch.mul's delegation would come back here); shapes that do not broadcast are
            # named dense factor first, as torch's sparse kernel names them
            _elementwise._check_broadcast(other, self)
            return Tensor.mul(_in_graph(self), other)
        return _keeping_graph(result, Tensor.mul, *((other, self) if reflected else (self, other)))

    def div(self, other, *, rounding_mode=_TRUE_DIVISION):
        """sparse / a number or a 0-d dense tensor is sparse, as torch's: each stored value divided,
        the indices kept (coalesced first under a rounding mode, whose quotient is not linear in the
        entries); any other divisor torch refuses, before anything changes."""
        if isinstance(other, Tensor) and (other.dim() != 0 or isinstance(other, SparseCOOTensor)):
            raise _sparse_divisor_refused(other)
        if rounding_mode is None:  # written out: torch's node of the rounding modes
            return name_node(self.div(other), "DivBackward2")
        if isinstance(other, numbers.Number) and rounding_mode is _TRUE_DIVISION:
            return _linear_in_entries(self._with_values((Tensor._make(self._coo[1]) / other)._data), self,
                                      lambda grad: grad / other, "DivBackward0", other)
        source = self if rounding_mode is _TRUE_DIVISION else self.coalesce()
        divisor = Tensor._make(other._data) if isinstance(other, Tensor) else other
        mode = {} if rounding_mode is _TRUE_DIVISION else {"rounding_mode": rounding_mode}
        values = Tensor.div(Tensor._make(source._coo[1]), divisor, **mode)._data
        return _keeping_graph(source._with_values(values), lambda a, b: Tensor.div(a, b, **mode), source, other)

    def floor_divide(self, other):
        """sparse // a number or a 0-d dense tensor: sparse, as div(rounding_mode='floor'), under torch's
        NotImplemented node; other divisors refused in torch's words for floor division."""
        _check_floor_divisor(other)
        divisor = other.detach() if isinstance(other, Tensor) else other
        return _without_sparse_backward(self.detach().div(divisor, rounding_mode="floor"), self, "",
                                        _elementwise.FloorDivide.node_name,
                                        (RuntimeError, "derivative for aten::floor_divide is not implemented"))

    def floor_divide_(self, other):
        return self._become(self.floor_divide(other))

    def __floordiv__(self, other):
        return self.floor_divide(other)

    def __ifloordiv__(self, other):
        return self.floor_divide_(other)

    def __rfloordiv__(self, other):
        if isinstance(other, (Tensor, numbers.Number)):  # the sparse tensor is the divisor: refused
            _check_floor_divisor(self)
        return _dense_operator("__rfloordiv__")(self, other)

    def __mul__(self, other):
        return self.mul(other)

    def __rmul__(self, other):
        return self._product(other, reflected=True)

    def __truediv__(self, other):
        return self.div(other)

    def __rtruediv__(self, other):
        if isinstance(other, Tensor):  # dense / sparse: torch's sparse division refuses a sparse divisor
            raise _sparse_divisor_refused(self)
        return Tensor.__rtruediv__(self, other)

    def __neg__(self):
        return _linear_in_entries(self._with_values(-self._coo[1]), self, lambda grad: -grad, "NegBackward0")

    def neg(self):
        return -self

    def neg_(self):
        return self._become(-self.detach())

    def _valuewise(self, dense_op, name: str | None = None):
        """``dense_op`` (one with ``dense_op(0) == 0``) of each entry of the coalesced tensor: sparse,
        coalesced, as torch's abs, sqrt, sin, tanh, relu, pow(number) ... of a sparse COO tensor;
        differentiable where torch's is, its backward refused with torch's words elsewhere."""
        indices, values, _ = self.detach().coalesce()._coo
        result = SparseCOOTensor._from_parts(indices, dense_op(Tensor._make(values))._data, tuple(self.shape), True)
        if name in _ZERO_DERIVATIVE:  # torch's gradient: a sparse tensor with no entries
            detached = self.detach()
            return _linear_in_entries(result, self, lambda grad: detached._without_entries(),
                                      f"{name.capitalize()}Backward0")
        if name in _BACKWARD_REFUSED:
            error, message = _BACKWARD_REFUSED[name]
            return _without_sparse_backward(result, self, "", f"{name.capitalize()}Backward0",
                                            (error, message.format(shape=list(self.shape))))
        if is_recording(self):  # torch's derivative here is at the input's entries, whatever the gradient's
            _joined_graph(result, dense_op(_in_graph(self, remask=True)))
        return result

    def pow(self, exponent):
        if isinstance(exponent, numbers.Number) and exponent == 0:
            raise RuntimeError("pow: cannot raise to zeroth power on sparse tensor; it would make the result tensor "
                               "dense")
        if isinstance(exponent, numbers.Integral) and exponent < 0 and _dtype_category(self.dtype) < 2:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        if isinstance(exponent, numbers.Real):
            # torch's pow_out_sparse_scalar writes into a tensor of self's dtype, refusing a wider result
            wanted = _dtype.result_type(self, exponent)
            if _dtype_category(wanted) > _dtype_category(self.dtype):
                raise RuntimeError(f"result type {_dtype.scalar_name(wanted)} can't be cast to the desired output type "
                                   f"{_dtype.scalar_name(self.dtype)}")
        if not isinstance(exponent, numbers.Number):
            with DisableTorchFunctionSubclass():  # (the dense method, not this one again through the handler)
                return super().pow(exponent)
        return self._valuewise(lambda dense: Tensor.pow(dense, exponent))

    def __pow__(self, exponent):
        return self.pow(exponent)

    def transpose(self, dim0, dim1):
        """Two sparse dims swapped: the index rows exchanged, no longer marked coalesced (as torch's)."""
        return self._transposed(dim0, dim1, "TransposeBackward0")

    def _transposed(self, dim0, dim1, node: str):
        """transpose, its node named ``node`` (t()'s is TBackward0 in torch)."""
        sparse_dims = self.sparse_dim()
        first, second = (d + self.dim() if d < 0 else d for d in (dim0, dim1))
        if not (first < sparse_dims and second < sparse_dims):
            # (two dense dims too: torch's sparse transpose swaps index rows only)
            raise RuntimeError(f"sparse transpose: transposed dimensions must be sparse Got sparse_dim: "
                               f"{sparse_dims}, d0: {first}, d1: {second}")
        indices, values, _ = self._coo
        order = list(range(sparse_dims))
        order[first], order[second] = order[second], order[first]
        size = list(self.shape)
        size[first], size[second] = size[second], size[first]
        return _linear_in_entries(SparseCOOTensor._from_parts(indices[order], values, tuple(size), False), self,
                                  lambda grad: grad.transpose(dim0, dim1), node)

    @property
    def T(self):
        """A sparse matrix's transpose, sparse (as torch's); other ranks through the sparse ``permute``
        of the reversed dims (refused where it would mix sparse and dense dims)."""
        if self.dim() == 2 and self.sparse_dim() == 2:
            return self.transpose(0, 1)
        return Tensor.T.__get__(self)

    @property
    def mT(self):
        """The last two dims swapped by the sparse ``transpose`` (refused unless both are sparse dims, as torch's)."""
        if self.dim() >= 2:
            return self.transpose(-2, -1)
        return Tensor.mT.__get__(self)

    def permute(self, *dims, **kwargs):
        """Sparse dims reordered among themselves (the index rows) and dense dims among themselves (the
        values' trailing axes), sparse (as torch's); still coalesced when the first dim stays first."""
        if "dims" in kwargs and not dims:
            dims = kwargs.pop("dims")
        if kwargs:
            return Tensor.permute(_in_graph(self), *dims, **kwargs)  # torch's TypeError
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        ndim = self.dim()
        if len(dims) != ndim:
            raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
                               f"length of the desired ordering of dimensions i.e. input.dim() = {ndim} is not equal "
                               f"to len(dims) = {len(dims)}")
        order = _dims_order(ndim, lambda probe: Tensor.permute(probe, dims))  # torch's range and duplicate errors
        sparse_dims = self.sparse_dim()
        if any((d < sparse_dims) != (i < sparse_dims) for i, d in enumerate(order)):
            raise RuntimeError("permute(sparse_coo): transpositions between sparse and dense dimensions are not "
                               "allowed.Only transpositions within sparse and dense dimensions are supported.")
        indices, values, coalesced = self._coo
        xp = array_module(values)
        dense_axes = tuple(d - sparse_dims + 1 for d in order[sparse_dims:])
        result = SparseCOOTensor._from_parts(xp.ascontiguousarray(indices[list(order[:sparse_dims])]),
                                             xp.ascontiguousarray(values.transpose((0, *dense_axes))),
                                             tuple(self.shape[d] for d in order),
                                             coalesced and (ndim == 0 or order[0] == 0))
        inverse = tuple(int(d) for d in np.argsort(order))
        return _linear_in_entries(result, self, lambda grad: grad.permute(inverse), "PermuteBackward0")

    def movedim(self, source, destination):
        """torch's movedim of a sparse tensor: the sparse ``permute`` it amounts to."""
        return self.permute(_dims_order(self.dim(), lambda probe: Tensor.movedim(probe, source, destination)))

    moveaxis = movedim

    def t(self):
        if self.sparse_dim() > 2 or self.dense_dim() > 0:
            raise RuntimeError(f"t() expects a tensor with <= 2 sparse and 0 dense dimensions, but got "
                               f"{self.sparse_dim()} sparse and {self.dense_dim()} dense dimensions")
        return self if self.dim() < 2 else self._transposed(0, 1, "TBackward0")

    # in place: the new parts replace the old ones (the dense backing and the indices/values must
    # never disagree)
    def _become(self, result: SparseCOOTensor) -> SparseCOOTensor:
        if tuple(result.shape) != tuple(self.shape) or result.dtype is not self.dtype:
            raise RuntimeError(f"result type {result.dtype!r} of shape {list(result.shape)} can't be cast to the "
                               f"desired output of type {self.dtype!r} and shape {list(self.shape)}")
        self._data[...] = result._data
        self._coo = result._coo
        self._bump_version()
        return self

    def abs_(self):
        return self._become(self.detach().abs())

    def sqrt_(self):
        return self._become(self.detach().sqrt())

    def mul_(self, other):
        self._become(self.mul(other))
        if not isinstance(other, SparseCOOTensor):
            # torch's in-place product by a number or a dense factor leaves the flag unset past one entry
            indices, values, _ = self._coo
            self._coo = (indices, values, indices.shape[1] < 2)
        return self

    def div_(self, other, *, rounding_mode=_TRUE_DIVISION):
        return self._become(self.div(other, rounding_mode=rounding_mode))

    def add_(self, other, *, alpha=1):
        if isinstance(other, _CompressedTensor):
            raise RuntimeError('at::sparse_csr::is_sparse_compressed(self) INTERNAL ASSERT FAILED at "/__w/pytorch/'
                               'pytorch/aten/src/ATen/SparseCsrTensorUtils.h":370, please report a bug to PyTorch. ')
        return self._become(self.add(other, alpha=alpha))

    def sub_(self, other, *, alpha=1):
        return self._become(self.sub(other, alpha=alpha))

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def t_(self) -> SparseCOOTensor:
        result = self.t()
        self._data, self._coo = result._data, result._coo
        return self

    def transpose_(self, dim0, dim1) -> SparseCOOTensor:
        result = self.transpose(dim0, dim1)
        self._data, self._coo = result._data, result._coo
        return self

    def clone(self, *, memory_format=None) -> SparseCOOTensor:
        """A sparse copy: the same indices, values and coalesced flag in new memory."""
        _refuse_clone_format(memory_format)
        indices, values, coalesced = self._coo
        return _linear_in_entries(SparseCOOTensor._from_parts(indices.copy(), values.copy(), tuple(self.shape),
                                                              coalesced), self, lambda grad: grad, "CloneBackward0")

    def __matmul__(self, other):
        if isinstance(other, SparseCOOTensor) and self.dim() > 1 and other.dim() > 1:
            return _sparse_times_sparse(self, other)  # (torch's matmul reaches mm: MmBackward0)
        with DisableTorchFunctionSubclass():  # the dense operator's answer (NotImplemented for a number)
            return super().__matmul__(other)

    def _with_values(self, values) -> SparseCOOTensor:
        # (indices of its own, as torch's value-wise kernels copy them: a gradient made so is one
        # AccumulateGrad may steal)
        indices, _, coalesced = self._coo
        return SparseCOOTensor._from_parts(indices.copy(), values, tuple(self.shape), coalesced)

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        if self._requires_grad and is_grad_enabled():
            # (torch's gradient is the incoming one masked to the coalesced input: marked coalesced)
            dense = _recorded_copy(self, "ToDenseBackward0", coalesced_grad=True)
        else:
            dense = Tensor._make(self._data.copy())
        return dense if dtype is None else dense.to(dtype)

    @property
    def data(self) -> SparseCOOTensor:
        """The same entries, detached and still sparse (``p.grad.data`` of a sparse gradient), as torch's."""
        tensor = object.__new__(SparseCOOTensor)  # (a sparse Parameter's data is no Parameter)
        tensor._init(self._data)
        tensor._coo = self._coo
        return tensor

    @data.setter
    def data(self, value: Tensor) -> None:
        Tensor.data.fset(self, value)

    def detach(self) -> SparseCOOTensor:
        """The same entries out of the graph, still sparse, as torch's."""
        return self.data

    def __deepcopy__(self, memo):
        """A sparse copy with its flags and gradient, as torch's (a non-leaf is refused as a dense one is)."""
        if self.grad_fn is not None:
            return Tensor.__deepcopy__(self, memo)
        indices, values, coalesced = self._coo
        copied = SparseCOOTensor._from_parts(indices.copy(), values.copy(), tuple(self.shape), coalesced)
        copied._requires_grad = self._requires_grad
        memo[id(self)] = copied
        if self._grad is not None:
            copied._grad = copy.deepcopy(self._grad, memo)
        return copied

    def __reduce_ex__(self, protocol):
        # torch pickles a sparse tensor as its parts (torch._utils._rebuild_sparse_tensor): no requires_grad
        indices, values, coalesced = self._coo
        return (_rebuild_sparse_coo, (_host(indices), _host(values), tuple(self.shape), coalesced, str(self.device)))

    def sum(self, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
        """Over every dim a dense 0-d tensor; over some, as torch.sparse.sum (sparse), as torch's; with
        ``keepdim`` that sum unsqueezed at each dim summed over (a sparse dim each where any sparse dim is left)."""
        if dtype is None and not (self.dtype.is_floating_point or self.dtype.is_complex):
            dtype = _dtype.int64  # (Tensor.sum's promotion of integers, which torch.sparse.sum lacks)
        if dim is not None and keepdim:
            _checked_sum_dims(dim, self.dim())
            total = sum(self.detach(), dim, dtype)
        if dim is None:
            with DisableTorchFunctionSubclass():
                result = super().sum(dtype=dtype)
            # torch's sum_coo sums the stored values as they stand (uncoalesced: duplicates apart, in their order)
            result._data = Tensor._make(self._coo[1]).sum(dtype=dtype)._data
            return result
        if keepdim and not isinstance(total, SparseCOOTensor):
            with DisableTorchFunctionSubclass():
                return super().sum(dim, keepdim, dtype=dtype)
        if not keepdim:
            return _summed_over_dims(self, dim, dtype)
        for d in sorted(d % self.dim() for d in ((dim,) if isinstance(dim, int) else dim)):
            total = total.unsqueeze(d)
        # (torch records the sum but its backward expands the sparse gradient, which it refuses)
        return _without_sparse_backward(total, self, "", "SumBackward1",
                                        (RuntimeError, "expand is unsupported for Sparse tensors"))

    # ------------------------------------------------------------------ indexing, as torch's
    def select(self, dim: int, index: int) -> Tensor:
        """The entries at ``index`` along ``dim``: sparse with that dim gone (dense where it was the
        only sparse dim, or from the values where ``dim`` is a dense dim), as torch's."""
        sparse_dims, size = self.sparse_dim(), self.shape[dim] if -self.dim() <= dim < self.dim() else None
        if size is None or not -size <= index < size or (dim % self.dim() < sparse_dims and sparse_dims == 1):
            return Tensor.select(_in_graph(self), dim, index)  # torch's error, or its dense row
        dim, index = dim % self.dim(), index % size
        indices, values, coalesced = self._coo
        if dim >= sparse_dims:  # (the entries anew: marked coalesced only when fewer than two, as torch's)
            result = _entries_of(indices, _take(values, dim - sparse_dims + 1, index),
                                 tuple(n for d, n in enumerate(self.shape) if d != dim))
        else:
            chosen = indices[dim] == index
            kept = [d for d in range(sparse_dims) if d != dim]
            result = _entries_of(indices[kept][:, chosen], values[chosen],
                                 tuple(n for d, n in enumerate(self.shape) if d != dim))
        return _without_sparse_backward(result, self, "select_backward", "SelectBackward0")

    def unbind(self, dim: int = 0) -> tuple:
        """The ``select`` of each index along ``dim``, sparse as torch's; their backward refused with torch's
        words (its UnbindBackward0 expands the sparse gradient)."""
        if self.dim() == 0 or not -self.dim() <= dim < self.dim():
            return Tensor.unbind(_in_graph(self), dim)  # torch's error
        plain = self.detach()
        return tuple(_without_sparse_backward(plain.select(dim, index), self, "expand", "UnbindBackward0",
                                              refusal=_EXPAND_REFUSED)
                     for index in range(self.shape[dim]))

    @staticmethod
    def _cat(tensors: list, dim: int) -> SparseCOOTensor:
        """torch.cat of sparse COO tensors (the first sparse): their entries together, the indices along a
        sparse ``dim`` (or the values along a dense one) shifted past those before; never marked coalesced.
        Its backward refused with torch's words (CatBackward0 narrows the sparse gradient)."""
        first = tensors[0]
        for position, tensor in enumerate(tensors):
            if not isinstance(tensor, SparseCOOTensor):
                raise RuntimeError(f"Concatenating sparse tensors, but a dense tensor was found at position "
                                   f"{position}.")
        if first.dim() == 0:
            raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
        d = _wrap_dim_sparse(dim, first.dim())
        for position, tensor in enumerate(tensors):
            if tensor.dim() != first.dim() or any(a != b for k, (a, b) in enumerate(zip(first.shape, tensor.shape))
                                                  if k != d):
                raise RuntimeError(f"All tensors must have the same shape: {list(first.shape)} (except in the "
                                   f"concatenating dimension), but found shape: {list(tensor.shape)} at position "
                                   f"{position}.")
            if tensor.sparse_dim() != first.sparse_dim():
                raise RuntimeError(f"All tensors must have the same sparse_dim and dense_dim: {first.sparse_dim()}, "
                                   f"{first.dense_dim()}, but tensor at position {position} has {tensor.sparse_dim()}, "
                                   f"{tensor.dense_dim()}.")
        dtype = _dtype.result_type(*tensors)
        xp = array_module(first._coo[1])
        sparse_dims, offset = first.sparse_dim(), 0
        total = builtins.sum(int(t.shape[d]) for t in tensors)
        all_indices, all_values = [], []
        for tensor in tensors:
            indices, values, _ = tensor._coo
            values = values.astype(dtype.np, copy=False)
            if d < sparse_dims:
                indices = indices.copy()
                indices[d] += offset
            else:  # a dense dim: each tensor's values in its own span of the joined dim, zeros elsewhere
                axis = d - sparse_dims + 1
                widths = [(0, 0)] * values.ndim
                widths[axis] = (offset, total - offset - values.shape[axis])
                values = xp.pad(values, widths)
            offset += int(tensor.shape[d])
            all_indices.append(indices)
            all_values.append(values)
        size = tuple(total if k == d else n for k, n in enumerate(first.shape))
        result = SparseCOOTensor._from_parts(xp.concatenate(all_indices, axis=1), xp.concatenate(all_values),
                                             size, False)
        return _without_sparse_backward(result, first, "as_strided", "CatBackward0", more=tuple(tensors[1:]))

    @staticmethod
    def _stack(tensors: list, dim: int) -> SparseCOOTensor:
        """torch.stack of sparse COO tensors: the ``cat`` of each unsqueezed at ``dim``, sparse as torch's; its
        gradient each input's slice of the result's (as torch's StackBackward0)."""
        from .ops.shape import stack as dense_stack

        for position, tensor in enumerate(tensors):
            if not isinstance(tensor, SparseCOOTensor):
                raise RuntimeError(f"Concatenating sparse tensors, but a dense tensor was found at position "
                                   f"{position}.")
            if tuple(tensor.shape) != tuple(tensors[0].shape):
                raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(tensors[0].shape)} at "
                                   f"entry 0 and {list(tensor.shape)} at entry {position}")
        d = _wrap_dim_sparse(dim, tensors[0].dim() + 1)
        result = SparseCOOTensor._cat([t.detach().unsqueeze(d) for t in tensors], d)
        return _keeping_graph(result, lambda *dense: dense_stack(dense, d), *tensors)

    def index_select(self, dim: int, index: Tensor) -> SparseCOOTensor:
        """The entries whose index along ``dim`` is in ``index``, renumbered by their place there
        (an index given twice gives its entries twice), as torch's."""
        dim = dim % self.dim()
        wanted = index._data if isinstance(index, Tensor) else np.asarray(index)
        indices, values, coalesced = self._coo
        xp = array_module(values)
        size = list(self.shape)
        size[dim] = wanted.shape[0]
        sparse_dims = self.sparse_dim()
        if dim >= sparse_dims:
            result = SparseCOOTensor._from_parts(indices, xp.take(values, wanted, axis=dim - sparse_dims + 1),
                                                 tuple(size), coalesced)
        else:
            places, entries = xp.nonzero(wanted[:, None] == indices[dim][None, :])
            selected = indices[:, entries].copy()
            selected[dim] = places
            result = _entries_of(selected, values[entries], tuple(size))
        return _without_sparse_backward(result, self, "index_add_", "IndexSelectBackward0")

    def narrow_copy(self, dim: int, start: int, length: int) -> SparseCOOTensor:
        """The entries with ``start <= index < start + length`` along ``dim``, shifted to start at 0."""
        dim = dim % self.dim()
        start = start % self.shape[dim] if start < 0 else start
        indices, values, coalesced = self._coo
        size = list(self.shape)
        size[dim] = length
        sparse_dims = self.sparse_dim()
        if dim >= sparse_dims:
            axis = dim - sparse_dims + 1
            taken = values[(slice(None),) * axis + (slice(start, start + length),)]
            result = SparseCOOTensor._from_parts(indices, array_module(values).ascontiguousarray(taken),
                                                 tuple(size), coalesced)
        else:
            chosen = (indices[dim] >= start) & (indices[dim] < start + length)
            narrowed = indices[:, chosen].copy()
            narrowed[dim] -= start
            xp = array_module(values)
            # (the entries left keep their order: torch keeps the input's coalesced flag)
            result = SparseCOOTensor._from_parts(narrowed, xp.ascontiguousarray(values[chosen]), tuple(size),
                                                 coalesced)
        return _without_sparse_backward(result, self, "as_strided", "NarrowCopyBackward0")

    def __getitem__(self, item):
        """An integer, or full slices then integers, select as torch's; torch refuses other slices
        and tensor indices of a sparse tensor (its as_strided and index kernels are dense only)."""
        keys = item if isinstance(item, tuple) else (item,)
        if any(isinstance(key, Tensor) for key in keys):
            raise NotImplementedError(_not_on_sparse("index.Tensor"))
        if any(isinstance(key, slice) and key != slice(None) for key in keys):
            raise NotImplementedError(_not_on_sparse("as_strided"))
        if not all(isinstance(key, (numbers.Integral, slice)) or key is None for key in keys) \
                or builtins.sum(key is not None for key in keys) > self.dim():
            with DisableTorchFunctionSubclass():  # (the engine's own indexing of a gradient by arrays)
                return super().__getitem__(item)
        result, dim = self, 0
        for key in keys:
            if key is None:
                result = result.unsqueeze(dim)
                dim += 1
            elif isinstance(key, slice):
                dim += 1
            else:
                result = result.select(dim, key)
        return result

    def unsqueeze(self, dim: int) -> SparseCOOTensor:
        """A dim of size 1 at ``dim``: a sparse dim (an index row of zeros) among or right after the
        sparse dims, else a dense one; its backward refused with torch's words."""
        if not -self.dim() - 1 <= dim <= self.dim():
            return Tensor.unsqueeze(_in_graph(self), dim)  # torch's error
        dim = dim % (self.dim() + 1)
        indices, values, _ = self._coo
        entries = indices.shape[1]  # torch's result is marked coalesced only when it has fewer than two entries
        xp = array_module(values)
        size = tuple(self.shape[:dim]) + (1,) + tuple(self.shape[dim:])
        sparse_dims = self.sparse_dim()
        if dim <= sparse_dims:
            zeros = xp.zeros((1, indices.shape[1]), dtype=indices.dtype)
            result = SparseCOOTensor._from_parts(xp.concatenate([indices[:dim], zeros, indices[dim:]]), values, size,
                                                 entries < 2)
        else:
            result = SparseCOOTensor._from_parts(indices, xp.expand_dims(values, dim - sparse_dims + 1), size,
                                                 entries < 2)
        return _without_sparse_backward(result, self, "as_strided", "UnsqueezeBackward0")

    def narrow(self, dim: int, start, length: int):
        raise NotImplementedError(_not_on_sparse("as_strided"))

    def _without_entries(self, dtype=None) -> SparseCOOTensor:
        """torch.zeros_like of a sparse tensor: its size, no entries, coalesced."""
        indices, values, _ = self._coo
        xp = array_module(values)
        dtype = self.dtype if dtype is None else dtype
        return SparseCOOTensor._from_parts(xp.zeros((indices.shape[0], 0), dtype=indices.dtype),
                                           xp.zeros((0,) + values.shape[1:], dtype=dtype.np), tuple(self.shape), True)

    def zero_(self) -> SparseCOOTensor:
        """No entries left (coalesced), as torch's; what ``zero_grad(set_to_none=False)`` does to a
        sparse gradient."""
        indices, values, _ = self._coo
        xp = array_module(values)
        self._data[...] = 0
        self._coo = (xp.zeros((indices.shape[0], 0), dtype=indices.dtype),
                     xp.zeros((0,) + values.shape[1:], dtype=values.dtype), True)
        self._bump_version()
        return self

    def to_sparse(self, *args, **kwargs) -> SparseCOOTensor:
        return self

    def to(self, *args, **kwargs):
        indices, values, coalesced = self._coo
        moved = _values_moved(values, args, kwargs, "COO")
        if moved._data is values:
            return self
        kwargs = {key: value for key, value in kwargs.items() if key != "memory_format"}
        moved_indices = Tensor._make(indices).to(moved.device)._data
        result = SparseCOOTensor._from_parts(moved_indices, moved._data, tuple(self.shape), coalesced)
        if not (result.dtype.is_floating_point or result.dtype.is_complex):
            return result  # (an integral or bool result is out of the graph)
        # torch's one ToCopyBackward0 over this tensor: the gradient converted back, sparse staying sparse
        return _linear_in_entries(result, self, lambda grad: grad.to(device=self.device, dtype=self.dtype),
                                  "ToCopyBackward0")

    def __repr__(self) -> str:
        # torch's _str_intern for sparse COO: the parts' bodies without their own dtype (the
        # tensor's dtype is a suffix of the whole), an empty part's size stated, then device,
        # size, nnz, dtype (unless a default one) and layout
        indices, values, _ = self._coo
        indent = len("tensor(")
        parts = []
        for name, array in (("indices", indices), ("values", values)):
            prefix = f"{name}=tensor("
            body = array_body(array, indent + len(prefix)) if array.size else "[]"
            if array.size == 0:
                body += f", size={tuple(array.shape)}"
            parts.append(prefix + body + ")")
        suffixes = [] if self.device.type == "cpu" else [f"device='{self.device}'"]
        suffixes += [f"size={tuple(self.shape)}", f"nnz={indices.shape[1]}"]
        if self.dtype not in (_dtype.get_default_dtype(), _dtype.int64, _dtype.bool):
            suffixes.append(f"dtype={self.dtype!r}")
        suffixes.append(f"layout={sparse_coo}")
        if self.grad_fn is not None:
            suffixes.append(f"grad_fn=<{type(self.grad_fn).__name__}>")
        return add_suffixes("tensor(" + (",\n" + " " * indent).join(parts), suffixes, indent, force_newline=True)


# torch's sparse tensor is a torch.Tensor, and Python's own messages name an operand by its type's
# __name__ ("unsupported operand type(s) for @: 'Tensor' and 'int'")
SparseCOOTensor.__name__ = "Tensor"
_elementwise.SPARSE_COO_TYPES.add(SparseCOOTensor)

# the entry-by-entry math torch runs on a sparse COO tensor (each maps 0 to 0, so the result keeps
# the entries), and math it refuses there (each would fill the unspecified entries)
_VALUEWISE = ("abs", "sqrt", "sin", "tanh", "relu", "square", "log1p", "expm1", "floor", "ceil", "round", "trunc",
              "sign", "sgn", "asin", "atan", "sinh", "asinh", "atanh", "erf", "erfinv", "deg2rad", "rad2deg", "frac",
              "signbit", "isnan", "isinf", "nan_to_num", "tan")
_REFUSED = ("exp", "sigmoid", "cos", "log", "cosh", "acos", "log2", "log10", "exp2", "reciprocal", "rsqrt")


# the entry-wise ops whose sparse backward torch refuses, and its words: its derivative formula
# reaches a kernel torch has no sparse version of, or adds a dense tensor to a sparse one
_ZERO_DERIVATIVE = frozenset({"floor", "ceil", "round", "trunc", "sign"})
_ADD_SPARSE_DENSE = (RuntimeError, "add(sparse, dense) is not supported. Use add(dense, sparse) instead.")
_BACKWARD_REFUSED = {
    "sqrt": (RuntimeError, "Sparse division requires a scalar or zero-dim dense tensor divisor (got shape {shape} for "
                           "divisor)"),
    "sin": (NotImplementedError, _not_on_sparse("cos")),
    "sinh": (NotImplementedError, _not_on_sparse("cosh")),
    "tanh": (NotImplementedError, _not_on_sparse("tanh_backward")),
    "erf": (NotImplementedError, _not_on_sparse("exp")),
    "erfinv": (NotImplementedError, _not_on_sparse("exp")),
    "sgn": (NotImplementedError, _not_on_sparse("_efficientzerotensor")),
    "nan_to_num": (NotImplementedError, _not_on_sparse("ne.Scalar")),
    "atanh": (RuntimeError, "memory format option is only supported by strided tensors"),
    "expm1": _ADD_SPARSE_DENSE, "asin": _ADD_SPARSE_DENSE, "atan": _ADD_SPARSE_DENSE, "asinh": _ADD_SPARSE_DENSE,
    "tan": _ADD_SPARSE_DENSE,
}


def _sparse_divisor_refused(divisor: Tensor, division: str = "division") -> RuntimeError:
    return RuntimeError(f"Sparse {division} requires a scalar or zero-dim dense tensor divisor (got shape "
                        f"{list(divisor.shape)} for divisor)")


def _check_floor_divisor(divisor) -> None:
    """torch's sparse floor_divide refuses a sparse divisor or a dense one with dims, in its own words."""
    if isinstance(divisor, Tensor) and (divisor.dim() != 0 or isinstance(divisor, SparseCOOTensor)):
        raise _sparse_divisor_refused(divisor, "floor division")


def _valuewise_method(name: str):
    def method(self, *args, **kwargs):
        return self._valuewise(lambda dense: getattr(Tensor, name)(dense, *args, **kwargs), name)
    method.__name__ = name
    method.__doc__ = f"Tensor.{name} of each entry, sparse (as torch's)."
    return method


def _refused_method(name: str, kernel: str | None = None):
    def method(self, *args, **kwargs):
        raise NotImplementedError(_not_on_sparse(kernel or name))
    method.__name__ = name
    method.refuses_sparse = True
    return method


def _dims_order(ndim: int, reorder) -> tuple:
    """The order of dims that ``reorder`` (a dense permute or movedim) makes of ``ndim`` dims, found on an
    empty tensor whose dim ``d`` has size ``d``, so that its checks raise torch's errors."""
    return tuple(reorder(Tensor._make(np.empty(tuple(range(ndim))))).shape)


def _wrap_dim_sparse(dim: int, ndim: int) -> int:
    """``dim`` wrapped into ``ndim`` dims, torch's IndexError beyond."""
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    return dim % ndim


def _take(values, axis: int, index: int):
    """``values`` at ``index`` along ``axis``, contiguous."""
    return array_module(values).ascontiguousarray(values[(slice(None),) * axis + (index,)])


def _entries_of(indices, values, size: tuple) -> SparseCOOTensor:
    """A sparse tensor of these entries as torch's indexing kernels make it: marked coalesced only
    when it has fewer than two."""
    xp = array_module(values)
    return SparseCOOTensor._from_parts(xp.ascontiguousarray(indices), xp.ascontiguousarray(values), size,
                                       indices.shape[1] < 2)


def _valuewise_in_place(name: str):
    """``name``_: the value-wise op's result becomes this tensor (before, the dense method wrote the backing
    and left indices and values stale)."""
    def method(self):
        return self._become(getattr(self.detach(), name)())
    method.__name__ = f"{name}_"
    return method


for _name in (*_VALUEWISE, "isneginf", "isposinf"):
    setattr(SparseCOOTensor, _name, _valuewise_method(_name))
for _name in _VALUEWISE:
    if f"{_name}_" not in SparseCOOTensor.__dict__ and _name not in ("square", "isnan", "isinf", "signbit"):
        setattr(SparseCOOTensor, f"{_name}_", _valuewise_in_place(_name))
for _name in _REFUSED:
    setattr(SparseCOOTensor, _name, _refused_method(_name))
SparseCOOTensor.mean = _refused_method("mean", "mean.dim")
# (the entry-wise math torch has no sparse COO kernel for at all, by the overload its dispatcher names)
for _name, _kernel in {"angle": "angle", "logical_not": "logical_not.out", "bitwise_not": "bitwise_not",
                       "amax": "amax", "argmax": "argmax", "clamp_min": "clamp_min", "fmod": "fmod.Tensor",
                       "remainder": "remainder.Tensor", "pow_": "pow_.Scalar", "square_": "pow_.Scalar"}.items():
    if _name not in SparseCOOTensor.__dict__:
        setattr(SparseCOOTensor, _name, _refused_method(_name, _kernel))


def _refusing(name: str, error: type, message: str):
    def method(self, *args, **kwargs):
        raise error(message)
    method.__name__ = name
    return method


# shape methods torch has no sparse COO kernel for: its view/reshape/expand refuse at once, whatever
# the sizes (they would otherwise fall through to the dense Tensor method and return a strided tensor)
_RESHAPE_REFUSED = (RuntimeError, "reshape is not implemented for sparse tensors")
_EXPAND_REFUSED = (RuntimeError, "expand is unsupported for Sparse tensors")
for _name, _refusal in {
    "view_as": (NotImplementedError, _not_on_sparse("view")),
    "unflatten": (NotImplementedError, _not_on_sparse("view")),
    "reshape": _RESHAPE_REFUSED,
    "reshape_as": _RESHAPE_REFUSED,
    "expand": _EXPAND_REFUSED,
    "expand_as": _EXPAND_REFUSED,
    "repeat": _EXPAND_REFUSED,
    "flip": (NotImplementedError, _not_on_sparse("flip")),
    "roll": (NotImplementedError, _not_on_sparse("roll")),
}.items():
    setattr(SparseCOOTensor, _name, _refusing(_name, *_refusal))


# ops torch has no sparse COO kernel for, whose dense method would answer here (NotImplementedError
# naming the kernel torch dispatches to): the views made by as_strided, the reductions and comparisons
for _name in ("squeeze", "chunk", "split", "tensor_split", "unsafe_chunk", "unsafe_split", "split_with_sizes",
              "diagonal"):
    setattr(SparseCOOTensor, _name, _refused_method(_name, "as_strided"))
SparseCOOTensor.squeeze_ = _refused_method("squeeze_", "as_strided_")


def _refused_overload(name: str, overload):
    """A method torch refuses on a sparse COO tensor naming the kernel overload its arguments pick:
    ``overload(*args, **kwargs)`` gives the kernel's name. A comparison with what is no tensor or number
    runs the dense method, whose parser refuses it as torch's does before dispatching."""
    def method(self, *args, **kwargs):
        if name in _COMPARISONS and args and not isinstance(args[0], (Tensor, numbers.Number)):
            with DisableTorchFunctionSubclass():
                return getattr(Tensor, name)(self, *args, **kwargs)
        raise NotImplementedError(_not_on_sparse(overload(*args, **kwargs)))
    method.__name__ = name
    method.refuses_sparse = True
    return method


def _scalar_or_tensor(name: str):
    return lambda other, *args, **kwargs: f"{name}.{'Tensor' if isinstance(other, Tensor) else 'Scalar'}"


def _reduction_kernel(name: str, other_name: str):
    def kernel(dim=None, *args, **kwargs):
        if dim is None and not args and kwargs.get("dim") is None:
            return name
        return other_name if isinstance(dim, Tensor) else f"{name}.dim"
    return kernel


def _clamp_kernel(name: str):
    def kernel(min=None, max=None):  # noqa: A002 - torch's names
        return f"{name}.Tensor" if isinstance(min, Tensor) or isinstance(max, Tensor) else name
    return kernel


_COMPARISONS: set = set()
for _name in ("eq", "ne", "gt", "lt", "ge", "le", "greater", "less", "greater_equal", "less_equal", "not_equal"):
    _kernel = {"greater": "gt", "less": "lt", "greater_equal": "ge", "less_equal": "le", "not_equal": "ne"}.get(_name,
                                                                                                             _name)
    setattr(SparseCOOTensor, _name, _refused_overload(_name, _scalar_or_tensor(_kernel)))
    setattr(SparseCOOTensor, _name + "_", _refused_overload(_name + "_", _scalar_or_tensor(_kernel + "_")))
    _COMPARISONS.update((_name, _name + "_"))
SparseCOOTensor.max = _refused_overload("max", _reduction_kernel("max", "maximum"))
SparseCOOTensor.min = _refused_overload("min", _reduction_kernel("min", "minimum"))
for _name in ("maximum", "minimum", "fmax", "fmin", "equal"):
    setattr(SparseCOOTensor, _name, _refused_method(_name))
SparseCOOTensor.where = _refused_method("where", "where.self")
for _name in ("clamp", "clip"):  # (clip is clamp's alias in torch: both name clamp's kernel)
    setattr(SparseCOOTensor, _name, _refused_overload(_name, _clamp_kernel("clamp")))
    setattr(SparseCOOTensor, _name + "_", _refused_overload(_name + "_", _clamp_kernel("clamp_")))
SparseCOOTensor.softmax = _refused_method("softmax", "_softmax")


def _by_dim(whole: str | None, over_dims: str):
    """The kernel torch's dispatcher names for a reduction: ``whole`` without a dim, ``over_dims`` with one."""
    return lambda *args, **kwargs: over_dims if (args and args[0] is not None) or kwargs.get("dim") is not None \
        else whole


def _refused_reduction(name: str, kernel):
    """A reduction torch has no sparse COO kernel for (its NotImplementedError naming ``kernel(...)``), or,
    where ``kernel`` gives None, the dense method (torch's any() of a sparse tensor runs)."""
    def method(self, *args, **kwargs):
        overload = kernel(*args, **kwargs)
        if overload is None:
            with DisableTorchFunctionSubclass():
                return getattr(Tensor, name)(self, *args, **kwargs)
        raise NotImplementedError(_not_on_sparse(overload))
    method.__name__ = name
    method.refuses_sparse = True
    return method


# reductions, scans and sorts torch has no sparse COO kernel for, by the overload its dispatcher names (before,
# the dense method answered)
for _name, _kernel in {
    "prod": _by_dim("prod", "prod.dim_int"), "any": _by_dim(None, "any.dim"), "all": _by_dim("all", "all.dim"),
    "median": _by_dim("median", "median.dim_values"), "std": "std.correction", "var": "var.correction",
    "nansum": "nansum", "nanmean": "ne.Tensor", "count_nonzero": "count_nonzero.dim_IntList", "amin": "amin",
    "argmin": "argmin", "aminmax": "aminmax", "logsumexp": "logsumexp.out", "mode": "mode",
    "kthvalue": "kthvalue.values", "topk": "topk", "sort": "sort.stable", "argsort": "sort.stable",
    "msort": "sort.stable", "nonzero": "nonzero", "logical_not_": "logical_not.out", "cumsum": "cumsum",
    "cumprod": "cumprod", "cummax": "_cummax_helper", "cummin": "_cummin_helper", "logcumsumexp": "_logcumsumexp",
}.items():
    setattr(SparseCOOTensor, _name, _refused_reduction(_name, _kernel if callable(_kernel) else
                                                       (lambda *args, _overload=_kernel, **kwargs: _overload)))
SparseCOOTensor.log_softmax = _refused_method("log_softmax", "_log_softmax")


def _sparse_masked_fill(self, mask, value):
    """Refused as torch's composite refuses it: a mask of another shape expands the sparse tensor (refused),
    one of its shape reaches the contiguous clone that is filled (refused)."""
    if isinstance(mask, Tensor) and tuple(mask.shape) == tuple(self.shape):
        raise RuntimeError("unsupported memory format option Contiguous")
    raise _EXPAND_REFUSED[0](_EXPAND_REFUSED[1])


SparseCOOTensor.masked_fill = _sparse_masked_fill
# (the mask comes first: the overload is named by the value)
SparseCOOTensor.masked_fill_ = _refused_overload(
    "masked_fill_", lambda mask, value, *args: f"masked_fill_.{'Tensor' if isinstance(value, Tensor) else 'Scalar'}")

# no storage: torch answers for its layout, not for the dense array chainrule keeps
_NO_STORAGE = (RuntimeError, "Cannot access data pointer of Tensor that doesn't have storage")
SparseCOOTensor.tolist = _refusing("tolist", *_NO_STORAGE)
SparseCOOTensor.data_ptr = _refusing("data_ptr", *_NO_STORAGE)
SparseCOOTensor.numpy = _refusing("numpy", TypeError,
                                  "can't convert Sparse layout tensor to numpy. Use Tensor.to_dense() first.")


def _sparse_stride(self, dim: int | None = None):
    """torch's strides of a sparse COO tensor: 0 for every dim."""
    strides = (0,) * self.dim()
    if dim is None:
        return strides
    Tensor.size(self, dim)  # torch's IndexError for a dim out of range
    return 0


def _sparse_is_contiguous(self, memory_format=None) -> bool:
    return False


_FORMAT_WORDS = {"contiguous_format": "Contiguous", "preserve_format": "Preserve", "channels_last": "ChannelsLast",
                 "channels_last_3d": "ChannelsLast3d"}


def _format_word(memory_format) -> str:
    """torch's C++ name of a memory format, as its sparse refusals print it."""
    name = getattr(memory_format, "_name", "contiguous_format")
    return _FORMAT_WORDS.get(name, name)


def _sparse_contiguous(self, memory_format=None):
    """Refused as torch refuses it: a sparse COO tensor has no memory format."""
    if getattr(memory_format, "_name", None) == "preserve_format":
        raise RuntimeError("preserve memory format is unsupported by the contiguous operator")
    raise RuntimeError(f"unsupported memory format option {_format_word(memory_format)}")


def _refuse_clone_format(memory_format) -> None:
    """torch's sparse clone kernels take no memory format, not even preserve_format."""
    if memory_format is not None:
        raise RuntimeError(f"unsupported memory format option {_format_word(memory_format)}")


def _values_moved(values, args: tuple, kwargs: dict, kind: str) -> Tensor:
    """Tensor.to on a sparse tensor's ``values`` (an array), ``memory_format`` checked as torch's: anything but
    preserve_format refused where a copy is made (what would alias needs contiguous_format, a sparse tensor's
    suggested format)."""
    memory_format = kwargs.get("memory_format")
    if memory_format is None:
        return Tensor._make(values).to(*args, **kwargs)
    plain = Tensor._make(values)
    moved = plain.to(*args, **{key: value for key, value in kwargs.items() if key != "memory_format"})
    name = getattr(memory_format, "_name", None)
    if name != "preserve_format" and (moved is not plain or name != "contiguous_format"):
        raise RuntimeError(f"to(options): {kind} only supports memory format Preserve, but got "
                           f"{_format_word(memory_format)} instead.")
    return moved


SparseCOOTensor.stride = _sparse_stride
SparseCOOTensor.is_contiguous = _sparse_is_contiguous
SparseCOOTensor.contiguous = _sparse_contiguous


def _sparse_view(self, *shape, dtype=None):
    """torch's view of a sparse tensor: refused; by dtype for want of a storage to reinterpret."""
    if dtype is not None or (len(shape) == 1 and isinstance(shape[0], _dtype.dtype)):
        raise NotImplementedError("Cannot access storage of SparseTensorImpl")
    raise NotImplementedError(_not_on_sparse("view"))


def _sparse_flatten(self, start_dim: int = 0, end_dim: int = -1):
    """torch's flatten: a span of one dim is the tensor itself; any other goes through its reshape, refused."""
    if self.dim() > 0 and start_dim % self.dim() == end_dim % self.dim():
        return self
    raise _RESHAPE_REFUSED[0](_RESHAPE_REFUSED[1])


SparseCOOTensor.view = _sparse_view
SparseCOOTensor.flatten = _sparse_flatten


def _sparse_diag(self, diagonal: int = 0):
    """Refused as torch refuses it: a 1-d tensor's diag embeds (diag_embed), a 2-d one's copies a diagonal
    (diagonal_copy); neither kernel has a sparse COO version."""
    if self.dim() not in (1, 2):
        raise RuntimeError("diag(): Supports 1D or 2D tensors. Got " + f"{self.dim()}D")
    raise NotImplementedError(_not_on_sparse("diag_embed" if self.dim() == 1 else "diagonal_copy"))


SparseCOOTensor.diag = _sparse_diag

# the functions of torch.nn.functional that answer as the sparse tensor's method of their name
_FUNCTIONAL_AS_METHOD = frozenset({"softmax", "log_softmax"})
_JOINING = frozenset({"cat", "concat", "concatenate", "stack"})
_REFLECTED = {"mul": "__rmul__", "multiply": "__rmul__", "floor_divide": "__rfloordiv__"}


def _refused_on_strided(kernel: str) -> str:
    return _not_on_sparse(kernel).replace("'SparseCPU' backend", "'CPU' backend")


def _argument(args: tuple, kwargs: dict, index: int, name: str, default=None):
    """An argument given by position ``index`` or by ``name``, else ``default``."""
    return args[index] if len(args) > index else kwargs.get(name, default)


def _svd_or(kernel: str, index: int, name: str, default, svd_orders: tuple = ("nuc", 2, -2)):
    """A norm-like function's refusal: torch's composite reaches _linalg_svd for the orders in
    ``svd_orders`` of a matrix, ``kernel`` for the others (given at ``index`` or as ``name``)."""
    def kernel_of(args, kwargs):
        order = _argument(args, kwargs, index, name, default)
        matrix = name != "ord" or _argument(args, kwargs, 2, "dim") is not None or _first_sparse(args, kwargs).dim() == 2
        svd = matrix and not isinstance(order, Tensor) and builtins.any(
            order == known and type(order) is type(known) or order == known and isinstance(known, int)
            for known in svd_orders)
        return NotImplementedError, _not_on_sparse("_linalg_svd" if svd else kernel)
    return kernel_of


def _full_refused(args, kwargs):
    """torch's pinv of a sparse matrix with tolerances not given as tensors builds them by full(),
    which has no sparse layout (matrix_rank, pinverse)."""
    if builtins.any(isinstance(value, Tensor) for value in (*args[1:], *kwargs.values())):
        return None
    return RuntimeError, "full(...) is not implemented for sparse layout"


def _norm_refused(args, kwargs):
    """torch.norm of a sparse tensor: the nuclear norm reaches _linalg_svd; a reduction over some of
    its dims reaches norm_sparse, which reduces over all of them only."""
    input, order, dim = args[0] if args else kwargs.get("input"), _argument(args, kwargs, 1, "p", "fro"), \
        _argument(args, kwargs, 2, "dim")
    if order == "nuc":
        return NotImplementedError, _not_on_sparse("_linalg_svd")
    if dim is not None and isinstance(input, SparseCOOTensor):
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if dims and sorted(d % builtins.max(input.dim(), 1) for d in dims) != list(range(input.dim())):
            return RuntimeError, ("norm_sparse currently only supports full reductions, so 'dim' must either be "
                                  "empty or contain all dimensions of the input")
    return None


def _cdist_refused(args, kwargs):
    """torch.cdist reaches _cdist_forward, except for the euclidean distance of more than 25 rows a side,
    which it computes by matrix products (left as they are)."""
    first, second = _argument(args, kwargs, 0, "x1"), _argument(args, kwargs, 1, "x2")
    order, mode = _argument(args, kwargs, 2, "p", 2.0), _argument(args, kwargs, 3, "compute_mode")
    rows = builtins.max(first.shape[-2] if first.dim() > 1 else 0, second.shape[-2] if second.dim() > 1 else 0)
    if order == 2 and (mode == "use_mm_for_euclid_dist" or (mode is None and rows > 25)):
        return None
    return NotImplementedError, _not_on_sparse("_cdist_forward")


# torch's linear-algebra functions (and their Tensor methods) that have no sparse COO kernel: a sparse
# tensor in any argument makes the dispatcher refuse, naming the kernel, before any check of shapes or
# dtypes and before an in-place one writes; each entry is the kernel or a rule giving the refusal
# (None where torch computes)
_LINEAR_ALGEBRA_REFUSALS = {
    "linalg": {
        "cholesky": "linalg_cholesky_ex", "cholesky_ex": "linalg_cholesky_ex", "det": "_linalg_det",
        "slogdet": "_linalg_slogdet", "eigh": "_linalg_eigh", "eigvalsh": "_linalg_eigh",
        "householder_product": "linalg_householder_product", "inv": "linalg_inv_ex", "inv_ex": "linalg_inv_ex",
        "lstsq": "linalg_lstsq.out", "lu": "linalg_lu", "lu_factor": "linalg_lu_factor_ex",
        "lu_factor_ex": "linalg_lu_factor_ex", "ldl_factor": "linalg_ldl_factor_ex",
        "ldl_factor_ex": "linalg_ldl_factor_ex", "matrix_exp": "linalg_matrix_exp", "pinv": "linalg_pinv.atol_rtol_tensor",
        "qr": "linalg_qr", "solve": "_linalg_solve_ex", "solve_ex": "_linalg_solve_ex",
        "solve_triangular": "linalg_solve_triangular", "svd": "_linalg_svd", "svdvals": "_linalg_svd",
        "vector_norm": "linalg_vector_norm", "cross": "linalg_cross", "matrix_rank": _full_refused,
        "norm": _svd_or("linalg_vector_norm", 1, "ord", None),
        "matrix_norm": _svd_or("linalg_vector_norm", 1, "ord", "fro"),
        "cond": _svd_or("linalg_inv_ex", 1, "p", None, (None, 2, -2)),
    },
    "torch": {
        "det": "_linalg_det", "logdet": "_linalg_slogdet", "slogdet": "_linalg_slogdet", "inverse": "linalg_inv_ex",
        "cholesky": "cholesky", "cholesky_inverse": "cholesky_inverse", "cholesky_solve": "_cholesky_solve_helper",
        "matrix_exp": "linalg_matrix_exp", "qr": "linalg_qr", "svd": "_linalg_svd", "lu": "linalg_lu_factor_ex",
        "lu_unpack": "lu_unpack", "triangular_solve": "triangular_solve", "trace": "trace", "tril": "tril",
        "triu": "triu", "diag_embed": "diag_embed", "geqrf": "geqrf", "orgqr": "linalg_householder_product",
        "ormqr": "ormqr", "renorm": "renorm", "logsumexp": "logsumexp.out", "cross": "linalg_cross",
        "nuclear_norm": "_linalg_svd", "baddbmm": "baddbmm", "addbmm": "addbmm", "pinverse": _full_refused,
        "norm": _norm_refused, "cdist": _cdist_refused,
    },
}
# the Tensor methods of the same names refuse as the functions; the in-place ones name their own kernels
_LINEAR_ALGEBRA_REFUSALS["Tensor"] = {
    **{name: rule for name, rule in _LINEAR_ALGEBRA_REFUSALS["torch"].items()
       if name not in ("lu_unpack", "nuclear_norm", "cdist")},
    "tril_": "tril_", "triu_": "triu_", "renorm_": "renorm_", "baddbmm_": "baddbmm_", "addbmm_": "addbmm_",
}
_refusals_by_function: dict = {}


def _first_sparse(args: tuple, kwargs: dict) -> SparseCOOTensor | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, SparseCOOTensor):
            return value
    return None


_NOT_TENSORS = frozenset({"bool", "int", "float", "str"})
# parameters torch's parser takes as a number, a string or dims, never a tensor
_NOT_TENSOR_NAMES = frozenset({"ord", "p", "dim"})
# torch's signatures of the functions defined here over ``*args`` (the parser's arity)
_DECLARED = {
    ("linalg", "det"): "A, *, out=None", ("linalg", "slogdet"): "A, *, out=None", ("linalg", "inv"): "A, *, out=None",
    ("linalg", "lstsq"): "A, B, rcond=None, *, driver=None", ("linalg", "solve"): "A, B, *, left: bool = True, out=None",
    ("linalg", "ldl_factor"): "A, *, hermitian: bool = False, out=None",
    ("linalg", "ldl_factor_ex"): "A, *, hermitian: bool = False, check_errors: bool = False, out=None",
    ("torch", "slogdet"): "input, *, out=None", ("torch", "inverse"): "input, *, out=None",
    ("torch", "lu"): "A, pivot: bool = True, get_infos: bool = False, out=None", ("torch", "geqrf"): "input, *, out=None",
    ("torch", "ormqr"): "input, input2, input3, left: bool = True, transpose: bool = False, *, out=None",
}
_signatures: dict = {}


def _binds(func, args: tuple, kwargs: dict) -> bool:
    """Whether torch's argument parser would accept the call (it runs before the dispatcher refuses a
    sparse tensor): the arguments bind to ``func``'s signature, and no tensor is given for a bool, int,
    float or str parameter. Where they do not, ``func`` raises its own TypeError."""
    try:
        signature = _signatures.get(func) or inspect.signature(func)
        bound = signature.bind(*args, **kwargs)
    except (TypeError, ValueError):
        return False
    parameters = signature.parameters
    return not builtins.any(isinstance(value, Tensor) and (getattr(parameters[name].annotation, "__name__",
                                                                   parameters[name].annotation) in _NOT_TENSORS
                                                           or name in _NOT_TENSOR_NAMES)
                            for name, value in bound.arguments.items())


def _linear_algebra_refusal(func, args: tuple, kwargs: dict):
    """torch's refusal of ``func`` (a linear-algebra function or method) on a sparse COO argument, as
    (exception class, message), or None where torch computes."""
    if not _refusals_by_function:
        import chainrule

        for owner, table in (("linalg", chainrule.linalg), ("torch", chainrule), ("Tensor", Tensor)):
            for name, rule in _LINEAR_ALGEBRA_REFUSALS[owner].items():
                _refusals_by_function[getattr(table, name)] = rule
                if (owner, name) in _DECLARED:
                    namespace: dict = {}
                    exec(f"def {name}({_DECLARED[owner, name]}): pass", namespace)  # noqa: S102 - fixed texts above
                    _signatures[getattr(table, name)] = inspect.signature(namespace[name])
    rule = _refusals_by_function.get(func)
    if rule is None or _first_sparse(args, kwargs) is None or not _binds(func, args, kwargs):
        return None
    if isinstance(rule, str):
        return NotImplementedError, _not_on_sparse(rule)
    return rule(args, kwargs)


def _sparse_torch_function(cls, func, types, args=(), kwargs=None):
    """Function forms on a sparse COO tensor answer as its methods do (``torch.max(s)`` as ``s.max()``,
    ``s == 1`` as ``s.eq(1)``), as torch's dispatcher picks the same sparse kernel (or refusal) for
    both; what has no sparse method of its own runs the dense op, as before. Dense calls never come
    here: the dispatch wrappers look at an argument's class only when it is not a plain Tensor."""
    kwargs = {} if kwargs is None else kwargs
    name = getattr(func, "__name__", "")
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
    owner = getattr(func, "__torch_owner__", "")
    refusal = _linear_algebra_refusal(func, args, kwargs)
    if refusal is not None:
        raise refusal[0](refusal[1])
    with DisableTorchFunctionSubclass():
        if owner == "torch" and name in _JOINING and args and isinstance(args[0], (list, tuple)) and args[0] \
                and not isinstance(args[0][0], SparseCOOTensor) and isinstance(args[0][0], Tensor):
            # a strided first tensor picks the dense kernel, which asks a later sparse one for its values
            if builtins.any(isinstance(item, SparseCOOTensor) for item in args[0]):
                raise NotImplementedError(_refused_on_strided("_values"))
        routed = (owner in ("torch", "torch.Tensor") or (owner == "torch.nn.functional" and name in _FUNCTIONAL_AS_METHOD))
        method = SparseCOOTensor.__dict__.get(name) if routed else None
        if name in (*_COMPARISONS, "add", "sub") and len(args) == 2 and not builtins.all(isinstance(x, (Tensor, numbers.Number))
                                                                      for x in args):
            return func(*args, **kwargs)  # (torch's parser refuses it, naming the function's form)
        if method is not None and getattr(method, "refuses_sparse", False):
            # torch's dispatcher picks the sparse kernel whichever argument is sparse (torch.eq(dense, s),
            # torch.where(cond, s, x)); the refusal names it from the arguments after the first
            return method(*args, **kwargs)
        if name == "sum" and "out" in kwargs and (len(args) > 1 or "dim" in kwargs):
            raise NotImplementedError(_not_on_sparse("sum.IntList_out"))
        if method is not None and "out" not in kwargs:
            if args and isinstance(args[0], SparseCOOTensor):
                return getattr(args[0], name)(*args[1:], **kwargs)
            if not args and isinstance(kwargs.get("input"), SparseCOOTensor):
                rest = dict(kwargs)
                return getattr(rest.pop("input"), name)(**rest)
        if name in _REFLECTED and len(args) == 2 and not kwargs and isinstance(args[1], SparseCOOTensor):
            # dense first, sparse second: torch's sparse kernel still runs (torch.mul(dense, s) is sparse),
            # as the sparse tensor's reflected operator does
            return getattr(args[1], _REFLECTED[name])(args[0])
        return func(*args, **kwargs)


def _dense_operator(name: str):
    """Tensor's operator ``name`` on a sparse tensor as before the handler below: run at once, so that its
    NotImplemented (``2 @ s``) reaches Python, which a handler's answer cannot."""
    def operator(self, other):
        with DisableTorchFunctionSubclass():
            return getattr(Tensor, name)(self, other)
    operator.__name__ = name
    return operator


def _comparison(name: str, method: str):
    """``s == 1``: as ``s.eq(1)``, torch's refusal; against what is no tensor or number, Tensor's operator."""
    dense = _dense_operator(name)

    def operator(self, other):
        if isinstance(other, (Tensor, numbers.Number)):
            return getattr(self, method)(other)
        return dense(self, other)
    operator.__name__ = name
    return operator


for _name in ("radd", "rsub", "rtruediv", "rdiv", "rmatmul", "ipow", "rpow", "floordiv", "rfloordiv", "ifloordiv",
              "mod", "rmod", "imod", "and", "rand", "iand", "or", "ror", "ior", "xor", "rxor", "ixor", "lshift",
              "rlshift", "ilshift", "rshift", "rrshift", "irshift"):
    if f"__{_name}__" not in SparseCOOTensor.__dict__:
        setattr(SparseCOOTensor, f"__{_name}__", _dense_operator(f"__{_name}__"))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(SparseCOOTensor, f"__{_name}__", _comparison(f"__{_name}__", _name))


def _refused_operator(name: str, kernel):
    """An operator torch has no sparse kernel for: its NotImplementedError naming ``kernel(other)``, against a
    tensor or number; else Tensor's operator (NotImplemented reaches Python)."""
    dense = _dense_operator(name)

    def operator(self, other):
        if isinstance(other, (Tensor, numbers.Number)):
            raise NotImplementedError(_not_on_sparse(kernel(other)))
        return dense(self, other)
    operator.__name__ = name
    return operator


def _overload(scalar: str, tensor: str):
    return lambda other: tensor if isinstance(other, Tensor) else scalar


# (torch wraps a number into a tensor for most of these operators, so a number names the Tensor overload too)
for _name, _kernel in {
    "mod": _overload("remainder.Tensor", "remainder.Tensor"),
    "rmod": _overload("remainder.Scalar_Tensor", "remainder.Tensor"),
    "and": _overload("bitwise_and.Tensor", "bitwise_and.Tensor"),
    "rand": _overload("bitwise_and.Tensor", "bitwise_and.Tensor"),
    "or": _overload("bitwise_or.Tensor", "bitwise_or.Tensor"),
    "ror": _overload("bitwise_or.Tensor", "bitwise_or.Tensor"),
    "xor": _overload("bitwise_xor.Tensor", "bitwise_xor.Tensor"),
    "rxor": _overload("bitwise_xor.Tensor", "bitwise_xor.Tensor"),
    "lshift": _overload("__lshift__.Scalar", "__lshift__.Tensor"),
    "rshift": _overload("__rshift__.Scalar", "__rshift__.Tensor"),
    "rlshift": _overload("bitwise_left_shift.Tensor", "bitwise_left_shift.Tensor"),
    "rrshift": _overload("bitwise_right_shift.Tensor", "bitwise_right_shift.Tensor"),
    "rpow": _overload("pow.Scalar", "pow.Tensor_Tensor"),
}.items():
    setattr(SparseCOOTensor, f"__{_name}__", _refused_operator(f"__{_name}__", _kernel))
SparseCOOTensor.__invert__ = _refused_method("__invert__", "bitwise_not")
SparseCOOTensor.__hash__ = Tensor.__hash__  # (defining __eq__ would otherwise unset it)

# (set after the class is made: a plain subclass while it was made, so no dense path is armed for it;
# taken out of the plain classes, so the dispatch wrappers hand calls on it to this handler)
SparseCOOTensor.__torch_function__ = classmethod(_sparse_torch_function)
_torch_function.PLAIN.discard(SparseCOOTensor)
_torch_function.INTERNAL.add(SparseCOOTensor)


def _rebuild_sparse_coo(indices, values, size: tuple, coalesced: bool, device: str) -> SparseCOOTensor:
    moved = [Tensor._make(part).to(device)._data for part in (indices, values)]
    return SparseCOOTensor._from_parts(*moved, size, coalesced)


class _CompressedTensor(Tensor):
    """A matrix in a compressed layout (CSR or CSC): its three parts — compressed indices, the other
    dim's index of each entry, the values — in ``_parts``, and stored densely as well, as a COO
    tensor is (see the module doc). Subclasses name the layout and the parts."""

    __torch_function__ = disabled_torch_function_impl  # chainrule's own subclass: ops give plain Tensors
    _sparse_layout = True
    _part_names: tuple = ()

    def _nnz(self) -> int:
        return self._parts[1].shape[0]

    def values(self) -> Tensor:
        if is_recording(self):  # each value is the dense backing at its position, its gradient the entry's
            def to_entries(grad):
                return self._with_values(array_module(grad._data).ascontiguousarray(grad._data))

            return _read_entries(self, self._data[self._positions()], to_entries, "ValuesBackward0")
        return Tensor._make(self._parts[2])

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        if is_recording(self):  # (torch's ToDenseBackward0 gives the gradient at the stored entries, compressed)
            dense = _read_entries(self, self._data.copy(), _compressed_entries(self), "ToDenseBackward0")
        else:
            dense = Tensor._make(self._data.copy())
        return dense if dtype is None else dense.to(dtype)

    def _with_values(self, values, dense_op=None) -> _CompressedTensor:
        """The same layout and indices with ``values`` (an array): torch's to/clone/detach keep the layout.
        ``dense_op``: the op on the dense backing, recorded when this tensor requires grad (the result's
        own dense backing, so the same gradient); without one the result leaves the graph (detach)."""
        compressed, plain, _ = self._parts
        result = type(self)._from_parts(compressed.copy(), plain.copy(), values, tuple(self.shape))
        if dense_op is not None and is_recording(self):
            _joined_graph(result, dense_op(_in_graph(self)))
        return result

    def to(self, *args, **kwargs):
        """Tensor.to on the values: the same tensor when nothing changes, else one of the same layout
        (the dense Tensor.to made a strided tensor of a dtype change)."""
        moved = _values_moved(self._parts[2], args, kwargs, self._layout_name[len("Sparse"):])
        if moved._data is self._parts[2]:
            return self
        kwargs = {key: value for key, value in kwargs.items() if key != "memory_format"}
        return self._with_values(moved._data, lambda x: x.to(*args, **kwargs))

    def clone(self, *, memory_format=None):
        _refuse_clone_format(memory_format)
        return self._with_values(self._parts[2].copy(), clone)

    def transpose(self, dim0, dim1):
        """A matrix's transpose is the other compressed layout over the same three parts (torch's CSR.t()
        is CSC and CSC.t() CSR)."""
        if not all(isinstance(d, int) and -2 <= d < 2 for d in (dim0, dim1)):  # (the dense method's errors)
            return super().transpose(dim0, dim1)
        if dim0 % 2 == dim1 % 2:
            return self
        compressed, plain, values = self._parts
        result = self._transposed_type()._from_parts(compressed.copy(), plain.copy(), values.copy(),
                                                     tuple(reversed(self.shape)))
        if is_recording(self):
            _joined_graph(result, _in_graph(self).t())
        return result

    def t(self):
        return self.transpose(0, 1)

    @property
    def mT(self):  # noqa: N802 - torch's name
        return self.transpose(-2, -1)

    def _positions(self) -> tuple:
        """(rows, cols) of the stored entries, explicit zeros included."""
        raise NotImplementedError

    def mul(self, other):
        """times a number or a 0-d tensor: the values scaled (torch's promotion), indices and layout kept;
        times a CSR or dense matrix: see _compressed_mul."""
        return _compressed_mul(self, other)

    def __mul__(self, other):
        return self.mul(other)

    def __rmul__(self, other):
        return _compressed_mul(other, self)

    def mul_(self, other):
        result = _compressed_mul(self, other)
        if isinstance(other, (float, complex)) and result.dtype is not self.dtype and not (
                self.dtype.is_floating_point or self.dtype.is_complex):
            # torch's compressed kernel takes a Python number as a double (or complex double) tensor
            raise RuntimeError(f"result type {'ComplexDouble' if isinstance(other, complex) else 'Double'} can't be "
                               f"cast to the desired output type {_dtype.scalar_name(self.dtype)}")
        if isinstance(other, Tensor) and other.dim() == 2:
            # times a matrix, torch's kernel writes the product's values into self's dtype unchecked (as a C
            # cast: towards zero, an imaginary part dropped); a number or 0-d tensor must promote safely
            result = _cast_values(result, self.dtype)
        return self._become(result)

    def __imul__(self, other):
        return self.mul_(other)

    def add(self, other, *, alpha=1):
        if not isinstance(other, (Tensor, numbers.Number)):  # (the parser's refusal)
            with DisableTorchFunctionSubclass():
                return Tensor.add(self, other, alpha=alpha)
        return _compressed_add(self, other, alpha)

    def __add__(self, other):
        return _compressed_add(self, other) if isinstance(other, (Tensor, numbers.Number)) else NotImplemented

    def __radd__(self, other):
        return _compressed_add(other, self) if isinstance(other, (Tensor, numbers.Number)) else NotImplemented

    def add_(self, other, *, alpha=1):
        if isinstance(other, numbers.Number) or (isinstance(other, Tensor) and other.layout is _layout_strided):
            # torch's kernel adds a strided operand into self as if it were strided
            raise RuntimeError(f"Sparse {self._layout_name[len('Sparse'):].upper()} tensors do not have is_contiguous")
        if isinstance(other, _CompressedTensor) and self.dtype.name not in _MKL_TYPES:
            # (the in-place sum is MKL's, for float and complex targets only; out of place any dtype adds)
            raise NotImplementedError(f"\"add_out_sparse_csr_impl_mkl\" not implemented for "
                                      f"'{_dtype.scalar_name(self.dtype)}'")
        if isinstance(other, _CompressedTensor) and other.dtype is not self.dtype:
            raise RuntimeError(f"expected scalar type {_dtype.scalar_name(self.dtype)} but found "
                               f"{_dtype.scalar_name(other.dtype)}")
        return self._become(_compressed_add(self, other, alpha))

    def __iadd__(self, other):
        return self.add_(other)

    def _become(self, result: Tensor) -> _CompressedTensor:
        """in place: the result's parts and dense backing replace this tensor's (they must never disagree)."""
        if type(result) is not type(self):
            raise RuntimeError(f"Expected result Tensor to be of format {self._layout_name[len('Sparse'):].upper()}")
        if result.dtype is not self.dtype:
            raise RuntimeError(f"result type {_dtype.scalar_name(result.dtype)} can't be cast to the desired "
                               f"output type {_dtype.scalar_name(self.dtype)}")
        if self._requires_grad and self.grad_fn is None and is_grad_enabled():
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        if is_recording(self, result):
            # the result takes this tensor's place in the graph; a fresh backing, as the graph recorded may
            # have saved the old one
            self._data = result._data.copy()
            _joined_graph(self, result)
        else:
            self._data[...] = result._data
        # (torch's in-place kernels write into this tensor's own index tensors: their dtypes stay)
        self._parts = _with_index_dtypes(result, _index_dtypes(self))._parts
        self._bump_version()
        return self

    def neg(self):
        return self._with_values(-self._parts[2], lambda dense: -dense)

    def zero_(self):
        """torch's compressed zero_: no stored entries left (not explicit zeros)."""
        xp = array_module(self._parts[2])
        compressed, plain, values = self._parts
        return self._become(type(self)._from_parts(xp.zeros_like(compressed), plain[:0].copy(), values[:0].copy(),
                                                   tuple(self.shape)))

    def coalesce(self):
        raise RuntimeError(f"coalesce expected sparse coordinate tensor layout but got {self._layout_name}")

    def _compressed_like(self, layout, memory_format, fill_kernel, dtype, requires_grad, fill):
        """torch's ``*_like`` (ops/creation.py's sparse_like): the layout kept, another refused; zeros_like
        (no ``fill``, no ``fill_kernel``) stores no entries, whatever the memory format; the others go through
        torch's empty_like, which keeps the pattern and refuses preserve_format and a channels-last format,
        then fill the values (``fill`` on them) in place, where torch has no compressed uniform_ or random_."""
        if layout is not None and layout is not self.layout:
            raise RuntimeError(f"empty_like with different sparse layout is not supported (self is "
                               f"{self._layout_name} but you requested {_LAYOUT_NAMES.get(layout, layout)})")
        dtype = self.dtype if dtype is None else dtype
        compressed, plain, values = self._parts
        if fill is None and fill_kernel is None:
            xp = array_module(values)
            # (both index parts of the compressed indices' dtype, as torch's kernel makes them)
            result = type(self)._from_parts(xp.zeros_like(compressed), plain[:0].astype(compressed.dtype),
                                            values[:0].astype(dtype.np), tuple(self.shape))
            return result.requires_grad_(requires_grad)
        name = getattr(memory_format, "_name", None)
        if name == "preserve_format":
            raise RuntimeError("unsupported memory format Preserve")
        if name in ("channels_last", "channels_last_3d"):  # (the dense check, on a matrix)
            raise RuntimeError(f"required rank {4 if name == 'channels_last' else 5} tensor to use {name} format")
        if fill is None:
            raise _no_compressed_kernel(fill_kernel)
        return self._with_values(fill(Tensor._make(values))._data).requires_grad_(requires_grad)

    def _no_strided_property(self, *args, **kwargs):
        """torch's refusal where a strided kernel asks a compressed tensor for contiguity."""
        raise RuntimeError(f"Sparse {self._layout_name[len('Sparse'):].upper()} tensors do not have is_contiguous")

    # (is_contiguous too: torch asks the layout, whatever the memory format)
    contiguous = flatten = is_contiguous = _no_strided_property

    def _no_strides(self, *args, **kwargs):
        """torch's refusal where a strided kernel asks a compressed tensor for its strides."""
        raise RuntimeError(f"Sparse {self._layout_name[len('Sparse'):].upper()} tensors do not have strides")

    diag = sort = argsort = msort = _no_strides

    def masked_fill(self, mask, value):
        raise RuntimeError("unsupported memory format option Contiguous")

    def sum(self, dim=None, keepdim: bool = False, *, dtype=None):
        """Over every dim a dense 0-d tensor (the dense op); over some dims torch's kernel takes CSR only,
        refuses keepdim=False and answers in CSR: an entry for each row (column) that stores any."""
        if dim is not None and isinstance(self, SparseCSCTensor):
            raise RuntimeError("Currently the only compressed sparse format supported for sum.dim_IntList is CSR, "
                               f"but got layout {self._layout_name}")
        if dim is not None and not keepdim:
            raise RuntimeError("reduction operations on CSR tensors with keepdim=False is unsupported")
        with DisableTorchFunctionSubclass():
            if dim is None:
                return Tensor.sum(self, dtype=dtype)
            total = Tensor.sum(Tensor._make(self._data), dim, keepdim, dtype=dtype)
            # a line of the result is stored where the line summed over stores an entry (explicit zeros count)
            stored = _pattern(self).any(axis=tuple(d for d in range(2) if total.shape[d] == 1 != self.shape[d]),
                                        keepdims=True) if self._nnz() else np.zeros(total.shape, dtype=bool)
            if total.shape == (1, 1):  # (every dim summed: torch's kernel stores the one entry)
                stored = np.ones((1, 1), dtype=bool)
            result = _csr_at(array_module(total._data).asarray(stored), total._data, _index_dtypes(self))
        # (torch records the sum but its backward expands the compressed gradient, which it refuses)
        return _without_sparse_backward(result, self, "", "SumBackward1",
                                        (RuntimeError, "expand is unsupported for SparseCsr tensors"))

    def _refuse_layout(self, *args, **kwargs):
        """torch has no compressed kernel for subtraction or division: they raise naming the layout."""
        raise RuntimeError(f"unsupported tensor layout: {self._layout_name}")

    def _refuse_layout_parsed(name: str):
        """A method torch refuses naming the layout, once its parser took the operand (a tensor or number)."""
        def method(self, other, *args, **kwargs):
            if not isinstance(other, (Tensor, numbers.Number)):
                with DisableTorchFunctionSubclass():
                    return getattr(Tensor, name)(self, other, *args, **kwargs)
            return self._refuse_layout()
        method.__name__ = name
        return method

    sub, sub_, subtract = _refuse_layout_parsed("sub"), _refuse_layout_parsed("sub_"), _refuse_layout_parsed("subtract")
    div, div_, divide = _refuse_layout_parsed("div"), _refuse_layout_parsed("div_"), _refuse_layout_parsed("divide")
    true_divide, true_divide_ = _refuse_layout_parsed("true_divide"), _refuse_layout_parsed("true_divide_")
    del _refuse_layout_parsed
    __sub__ = __rsub__ = __isub__ = _refuse_layout
    __truediv__ = __rtruediv__ = __itruediv__ = _refuse_layout

    def __neg__(self):
        return self.neg()

    def detach(self):
        return self._with_values(self._parts[2])

    def __reduce_ex__(self, protocol):
        # torch pickles a compressed matrix as its parts (torch._utils._rebuild_sparse_tensor), the values requiring
        # grad when it does: it comes back over them, in the graph of a SparseCompressedTensorBackward0
        compressed, plain, values = (_host(part) for part in self._parts)
        return (_rebuild_sparse_compressed, (self.layout._name, compressed, plain, values, tuple(self.shape),
                                             str(self.device), self._requires_grad))

    def __deepcopy__(self, memo):
        if self.grad_fn is not None:  # (torch's refusal of a non-leaf comes first)
            return Tensor.__deepcopy__(self, memo)
        # torch's deepcopy copies a tensor's storage, which a compressed one has none of
        raise NotImplementedError("Cannot access storage of SparseCsrTensorImpl")

    def __repr__(self) -> str:
        return _compressed_repr(self, self._part_names, self._parts)


def _rebuild_sparse_compressed(layout_name: str, compressed, plain, values, size: tuple, device: str,
                               requires_grad: bool) -> _CompressedTensor:
    parts = [Tensor._make(part).to(device) for part in (compressed, plain, values)]
    parts[2].requires_grad_(requires_grad)
    layout = {"sparse_csr": sparse_csr, "sparse_csc": sparse_csc}[layout_name]
    return sparse_compressed_tensor(*parts, size, layout=layout, check_invariants=check_sparse_tensor_invariants.is_enabled())


_compressed_beta_warned = False


def _warn_compressed_beta(layout: str) -> None:
    """torch's warning as its first compressed tensor is made: once a process, naming that one's
    layout (one TORCH_WARN_ONCE for CSR and CSC alike), at every one under set_warn_always(True)."""
    global _compressed_beta_warned
    if _compressed_beta_warned and not _config._warn_always:
        return
    _compressed_beta_warned = True
    warnings.warn(f"Sparse {layout} tensor support is in beta state. If you miss a functionality in the sparse tensor "
                  "support, please submit a feature request to https://github.com/pytorch/pytorch/issues. (Triggered "
                  "internally at /__w/pytorch/pytorch/aten/src/ATen/SparseCsrTensorImpl.cpp:49.)", UserWarning,
                  stacklevel=user_stacklevel())


class SparseCSRTensor(_CompressedTensor):
    """A matrix in the sparse CSR layout: ``crow_indices`` (row r's entries are stored at
    positions crow[r] to crow[r + 1]), each entry's column in ``col_indices`` and its value in
    ``values``."""

    _part_names = ("crow_indices", "col_indices", "values")
    _layout_name = "SparseCsr"

    @classmethod
    def _from_parts(cls, crow, col, values, size: tuple) -> SparseCSRTensor:
        xp = array_module(values)
        rows = xp.repeat(xp.arange(size[0]), xp.diff(crow))
        tensor = _densely_stored(cls, "sparse_csr_tensor", size, (rows, col), values)
        tensor._parts = (crow, col, values)
        _warn_compressed_beta("CSR")
        return tensor

    @property
    def layout(self):
        return sparse_csr

    @property
    def is_sparse_csr(self) -> bool:
        return True

    def crow_indices(self) -> Tensor:
        return Tensor._make(self._parts[0])

    def col_indices(self) -> Tensor:
        return Tensor._make(self._parts[1])

    def to_sparse_csr(self, dense_dim=None) -> SparseCSRTensor:
        return self

    @staticmethod
    def _transposed_type():
        return SparseCSCTensor

    def _positions(self) -> tuple:
        xp = array_module(self._parts[1])
        return xp.repeat(xp.arange(self.shape[0]), xp.diff(self._parts[0])), self._parts[1]


_NOT_OPERANDS = (type(None), list, tuple, dict, set, str, bytes)


def _refusing_non_operands(cls, operators: dict) -> None:
    """``cls``'s binary operators refuse an operand Python has no operator for (None, a list, ...) as a torch
    tensor's do: a TypeError naming the type 'Tensor', whatever the subclass (a sequence times a tensor is
    left to Python, which tries repetition)."""
    for name, symbol in operators.items():
        reflected = name.startswith("__r")

        def operator(self, other, _own=cls.__dict__.get(name), _name=name, _symbol=symbol, _reflected=reflected):
            if isinstance(other, _NOT_OPERANDS) and not (_symbol == "*" and isinstance(other, (list, tuple, str, bytes))):
                names = [type(other).__name__, "Tensor"] if _reflected else ["Tensor", type(other).__name__]
                raise TypeError(f"unsupported operand type(s) for {_symbol}: '{names[0]}' and '{names[1]}'")
            # (an inherited operator looked up as called: Tensor's are installed after this module loads)
            return _own(self, other) if _own is not None else getattr(super(cls, self), _name)(other)

        operator.__name__ = operator.__qualname__ = name
        setattr(cls, name, operator)


def _compressed_comparison(name: str):
    """``s == 1``: torch's refusal naming the layout; against what is no tensor or number (None, a list),
    NotImplemented, so Python answers (``s == None`` is False)."""
    def operator(self, other):
        if isinstance(other, (Tensor, numbers.Number)):
            raise RuntimeError(f"unsupported tensor layout: {self._layout_name}")
        return NotImplemented
    operator.__name__ = name
    return operator


for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(_CompressedTensor, f"__{_name}__", _compressed_comparison(f"__{_name}__"))
_CompressedTensor.__hash__ = Tensor.__hash__  # (defining __eq__ would otherwise unset it)


_OPERATOR_SYMBOLS = {"__add__": "+", "__radd__": "+", "__sub__": "-", "__rsub__": "-", "__mul__": "*",
                     "__rmul__": "*", "__truediv__": "/", "__matmul__": "@", "__rmatmul__": "@"}
_refusing_non_operands(_CompressedTensor, _OPERATOR_SYMBOLS)
_refusing_non_operands(SparseCOOTensor, _OPERATOR_SYMBOLS)


def _compressed_repr(tensor: Tensor, names: tuple, parts: tuple) -> str:
    """torch's repr of a compressed (CSR or CSC) tensor: its three parts, then size, nnz and layout."""
    indent = len("tensor(")
    shown = []
    for name, array in zip(names, parts):
        prefix = f"{name}=tensor("
        body = array_body(array, indent + len(prefix)) if array.size else "[]"
        if array.size == 0:
            body += f", size={tuple(array.shape)}"
        shown.append(prefix + body + ")")
    suffixes = [] if tensor.device.type == "cpu" else [f"device='{tensor.device}'"]
    suffixes += [f"size={tuple(tensor.shape)}", f"nnz={tensor._nnz()}"]
    if tensor.dtype not in (_dtype.get_default_dtype(), _dtype.int64, _dtype.bool):
        suffixes.append(f"dtype={tensor.dtype!r}")
    suffixes.append(f"layout={tensor.layout}")
    return add_suffixes("tensor(" + (",\n" + " " * indent).join(shown), suffixes, indent)


class SparseCSCTensor(_CompressedTensor):
    """A matrix in the sparse CSC layout, the CSR layout of its transpose: ``ccol_indices`` (column
    c's entries are stored at positions ccol[c] to ccol[c + 1]), each entry's row in ``row_indices``
    and its value in ``values``."""

    _part_names = ("ccol_indices", "row_indices", "values")
    _layout_name = "SparseCsc"

    @classmethod
    def _from_parts(cls, ccol, row, values, size: tuple) -> SparseCSCTensor:
        xp = array_module(values)
        cols = xp.repeat(xp.arange(size[1]), xp.diff(ccol))
        tensor = _densely_stored(cls, "sparse_csc_tensor", size, (row, cols), values)
        tensor._parts = (ccol, row, values)
        _warn_compressed_beta("CSC")
        return tensor

    @property
    def layout(self):
        return sparse_csc

    def ccol_indices(self) -> Tensor:
        return Tensor._make(self._parts[0])

    def row_indices(self) -> Tensor:
        return Tensor._make(self._parts[1])

    @staticmethod
    def _transposed_type():
        return SparseCSRTensor

    def _positions(self) -> tuple:
        xp = array_module(self._parts[1])
        return self._parts[1], xp.repeat(xp.arange(self.shape[1]), xp.diff(self._parts[0]))

    def to_sparse_csc(self, dense_dim=None) -> SparseCSCTensor:
        return self


_COMPRESSED_WORDS = {  # the parts' names, the compressed and the plain dim's words, as torch's checks print them
    "SparseCsr": ("crow_indices", "col_indices", "rows", "nrows", "ncols"),
    "SparseCsc": ("ccol_indices", "row_indices", "columns", "ncols", "nrows"),
}


def _index_part(indices):
    return indices if isinstance(indices, Tensor) else Tensor._make(_to_array(indices, None))


def _checked_compressed_parts(cls, compressed: Tensor, plain: Tensor, values, size, check_invariants: bool) -> tuple:
    """The size of the ``cls`` matrix (CSR or CSC) made of these parts, checked in torch's order and words
    (its check_invariants=True checks). chainrule stores the matrix densely, so it always checks what that
    needs; the sortedness of each line's plain indices and the two index parts' one dtype only where torch would
    (``check_invariants``)."""
    compressed_name, plain_name, lines, _, plain_count = _COMPRESSED_WORDS[cls._layout_name]
    if compressed.dim() != plain.dim():
        raise RuntimeError(f"{compressed_name} and {plain_name} dimensionalities must be equal but got "
                           f"{compressed.dim()} and {plain.dim()}, respectively")
    if compressed.dim() != 1 or values.ndim != 1:
        raise NotImplementedError(f"sparse_compressed_tensor: chainrule builds 2-D {cls._layout_name[len('Sparse'):].upper()}"
                                  f" matrices only (1-D {compressed_name}, {plain_name} and values), got {compressed.dim()}-D "
                                  f"indices and {values.ndim}-D values")
    xp = array_module(compressed._data)
    compressed_array, plain_array = compressed._data, plain._data
    nnz = values.shape[0]
    if size is None:  # torch's default: one line per compressed index, and up to the largest plain index
        plain_size = int(plain_array.max()) + 1 if plain_array.shape[0] else 0
        size = (compressed_array.shape[0] - 1, plain_size)
        size = size if cls is SparseCSRTensor else size[::-1]
    size = tuple(int(n) for n in size)
    if len(size) != 2:
        raise RuntimeError(f"tensor dimensionality must be sum of batch, base, and dense dimensionalities (=0 + 2 + 0) "
                           f"but got {len(size)}")
    compressed_size, plain_size = size if cls is SparseCSRTensor else size[::-1]
    if compressed_array.shape[0] != compressed_size + 1:
        raise RuntimeError(f"{compressed_name}.shape[-1] must be equal to the number of {lines} + 1 "
                           f"(={compressed_size + 1}), but got {compressed_array.shape[0]}")
    if plain_array.shape[0] != nnz:
        raise RuntimeError(f"{plain_name}.shape[-1] must be equal to nnz (={nnz}) as defined by values.shape[0], but "
                           f"got {plain_array.shape[0]}")
    if compressed.dtype is not plain.dtype and check_invariants:  # (torch checks this one with the invariants only)
        raise RuntimeError(f"{compressed_name} and {plain_name} must have the same dtype, bot got "
                           f"{_dtype.scalar_name(compressed.dtype)} and {_dtype.scalar_name(plain.dtype)}, respectively")
    for part in (compressed, plain):
        # torch checks Int or Long with the invariants and else keeps any dtype; chainrule's storage needs integers
        if (part.dtype not in (_dtype.int32, _dtype.int64) if check_invariants
                else part.dtype.is_floating_point or part.dtype.is_complex or part.dtype is _dtype.bool):
            raise RuntimeError(f"{compressed_name} and {plain_name} dtype must be Int or Long, but got "
                               f"{_dtype.scalar_name(part.dtype)}")
    # (the checks below in int64: an unsigned index's differences would wrap)
    compressed_array, plain_array = compressed_array.astype(np.int64), plain_array.astype(np.int64)
    if compressed_size == 0 and nnz == 0:  # (torch checks no line of a matrix without lines; nothing is stored)
        return size
    if int(compressed_array[0]) != 0:
        raise RuntimeError(f"`{compressed_name}[..., 0] == 0` is not satisfied.")
    if int(compressed_array[-1]) != nnz:
        raise RuntimeError(f"`{compressed_name}[..., -1] == nnz` is not satisfied.")
    steps = xp.diff(compressed_array)
    if bool(((steps < 0) | (steps > plain_size)).any()):
        raise RuntimeError(f"`0 <= {compressed_name}[..., 1:] - {compressed_name}[..., :-1] <= {plain_count}` is not "
                           "satisfied.")
    if nnz and (int(plain_array.min()) < 0 or int(plain_array.max()) >= plain_size):
        raise RuntimeError(f"`0 <= {plain_name} < {plain_count}` is not satisfied.")
    if check_invariants and nnz > 1:
        # within a line each next plain index is larger; across a line's end anything goes
        line_ends = xp.zeros(nnz, dtype=bool)
        line_ends[compressed_array[1:-1][compressed_array[1:-1] < nnz]] = True
        if bool(((xp.diff(plain_array) <= 0) & ~line_ends[1:]).any()):
            raise RuntimeError(f"`{plain_name}[..., {compressed_name}[..., i - 1]:{compressed_name}[..., i]] for all i = 1, "
                               f"..., {_COMPRESSED_WORDS[cls._layout_name][3]} are sorted and distinct along the last "
                               "dimension values` is not satisfied.")
    return size


def _compressed_tensor(cls, compressed_indices, plain_indices, values, size, dtype, device, requires_grad: bool,
                       check_invariants) -> _CompressedTensor:
    """torch.sparse_csr_tensor / sparse_csc_tensor / sparse_compressed_tensor: the ``cls`` matrix of these parts;
    over values that require grad, in their graph under torch's node (SparseCompressedTensorBackward0, or without a
    size torch's NotImplemented node, whose backward raises)."""
    compressed, plain = _index_part(compressed_indices), _index_part(plain_indices)
    value = values if isinstance(values, Tensor) else Tensor._make(_to_array(values, None))
    if dtype is not None or device is not None:
        value = value.to(device=device, dtype=dtype)
    _warn_if_implicitly_unchecked(check_invariants)
    check_sorted = check_sparse_tensor_invariants.is_enabled() if check_invariants is None else bool(check_invariants)
    size_given = size is not None
    size = _checked_compressed_parts(cls, compressed, plain, value._data, size, check_sorted)
    xp = array_module(value._data)
    # (int32 or int64 each, as given: torch keeps them, and a mix where invariants go unchecked)
    tensor = cls._from_parts(xp.asarray(compressed._data), xp.asarray(plain._data), value._data, size)
    if value._requires_grad and is_grad_enabled():
        if not size_given:  # (torch's overload without a size has no derivative: its node raises in backward)
            recorded = _NoDerivative.apply(value, result=tensor._data, kernel="aten::sparse_compressed_tensor")
            return _joined_graph(tensor, name_node(recorded, "torch::autograd::NotImplemented"))
        # torch's node over the values, as sparse_coo_tensor's
        positions = tensor._positions()
        return _joined_graph(tensor, _ScatterCompressedValues.apply(value, positions=positions, dense=tensor._data))
    return tensor.requires_grad_(requires_grad)


def sparse_csr_tensor(crow_indices, col_indices, values, size=None, *, dtype=None, device=None,
                      pin_memory: bool = False, requires_grad: bool = False, check_invariants=None) -> SparseCSRTensor:
    """torch.sparse_csr_tensor: a (rows × columns) matrix from its CSR parts; ``size`` defaults to
    (len(crow_indices) - 1, one past the largest column index)."""
    return _compressed_tensor(SparseCSRTensor, crow_indices, col_indices, values, size, dtype, device, requires_grad,
                              check_invariants)


def sparse_csc_tensor(ccol_indices, row_indices, values, size=None, *, dtype=None, device=None,
                      pin_memory: bool = False, requires_grad: bool = False, check_invariants=None) -> SparseCSCTensor:
    """torch.sparse_csc_tensor: a (rows × columns) matrix from its CSC parts; ``size`` defaults to
    (one past the largest row index, len(ccol_indices) - 1)."""
    return _compressed_tensor(SparseCSCTensor, ccol_indices, row_indices, values, size, dtype, device, requires_grad,
                              check_invariants)


def sparse_compressed_tensor(compressed_indices, plain_indices, values, size=None, *, dtype=None, layout=None,
                             device=None, pin_memory: bool = False, requires_grad: bool = False,
                             check_invariants=None) -> _CompressedTensor:
    """torch.sparse_compressed_tensor: sparse_csr_tensor or sparse_csc_tensor as ``layout`` names
    (sparse_bsr/sparse_bsc: not in chainrule)."""
    kinds = {sparse_csr: SparseCSRTensor, sparse_csc: SparseCSCTensor}
    if layout not in kinds:
        if layout in (sparse_bsr, sparse_bsc):
            raise NotImplementedError(f"sparse_compressed_tensor: chainrule has no {layout} layout (CSR and CSC only)")
        name = "none" if layout is None else _LAYOUT_NAMES.get(layout, str(layout))
        raise RuntimeError(f"sparse_compressed_tensor expected sparse compressed tensor layout but got {name}")
    return _compressed_tensor(kinds[layout], compressed_indices, plain_indices, values, size, dtype, device,
                              requires_grad, check_invariants)


def _host_list(array) -> list:
    return Tensor._make(array).tolist()


def _cast_values(tensor: _CompressedTensor, dtype) -> _CompressedTensor:
    """``tensor`` with its values cast to ``dtype`` as a C cast does (a complex value's real part), out of
    the graph (what an in-place write takes)."""
    values = tensor._parts[2]
    if tensor.dtype is dtype:
        return tensor
    if tensor.dtype.is_complex and not dtype.is_complex:
        _config.warn_once(_COMPLEX_TO_REAL)  # (torch's copy kernel's warning, once a process)
        values = values.real
    with np.errstate(invalid="ignore"):  # (NaN or inf to an integer: whatever the cast gives, as in C)
        return tensor._with_values(values.astype(dtype.np))


def _csr_at(mask, dense, index_dtypes: tuple | None = None) -> SparseCSRTensor:
    """The CSR matrix holding ``dense``'s entries (an array) where ``mask`` is true, row by row; its indices
    int64, or of ``index_dtypes``."""
    xp = array_module(dense)
    rows, cols = xp.nonzero(mask)  # row-major order, as CSR stores them
    crow = xp.concatenate([xp.zeros(1, dtype=np.int64), xp.cumsum(xp.bincount(rows, minlength=mask.shape[0]))])
    result = SparseCSRTensor._from_parts(crow.astype(np.int64), cols.astype(np.int64),
                                         xp.ascontiguousarray(dense[rows, cols]), tuple(mask.shape))
    return _with_index_dtypes(result, index_dtypes)


def _csc_at(mask, dense, index_dtypes: tuple | None = None) -> SparseCSCTensor:
    """The CSC matrix holding ``dense``'s entries (an array) where ``mask`` is true, column by column; its
    indices int64, or of ``index_dtypes``."""
    xp = array_module(dense)
    cols, rows = xp.nonzero(mask.T)  # column-major order, as CSC stores them
    ccol = xp.concatenate([xp.zeros(1, dtype=np.int64), xp.cumsum(xp.bincount(cols, minlength=mask.shape[1]))])
    result = SparseCSCTensor._from_parts(ccol.astype(np.int64), rows.astype(np.int64),
                                         xp.ascontiguousarray(dense[rows, cols]), tuple(mask.shape))
    return _with_index_dtypes(result, index_dtypes)


def _with_index_dtypes(result: _CompressedTensor, dtypes: tuple | None) -> _CompressedTensor:
    """``result`` (just made) with its compressed and plain indices of ``dtypes`` (None: as they are)."""
    if dtypes is not None:
        compressed, plain, values = result._parts
        result._parts = (compressed.astype(dtypes[0], copy=False), plain.astype(dtypes[1], copy=False), values)
    return result


def _index_dtypes(tensor: _CompressedTensor) -> tuple:
    """The dtypes of ``tensor``'s compressed and plain indices: torch keeps them as given (int32 or int64, even
    a mix where invariants go unchecked), and its ops on the tensor make their results' of the same."""
    return tensor._parts[0].dtype, tensor._parts[1].dtype


def _converted_index_dtypes(tensor: _CompressedTensor) -> tuple:
    """The index dtypes of ``tensor`` converted to the other compressed layout: torch's kernel writes both
    parts in the compressed indices' dtype where that is int32, else in int64."""
    dtype = tensor._parts[0].dtype if tensor._parts[0].dtype == np.int32 else np.dtype(np.int64)
    return dtype, dtype


def _pattern(tensor: _CompressedTensor):
    """A boolean matrix marking the stored entries of a compressed tensor, explicit zeros included."""
    xp = array_module(tensor._data)
    mask = xp.zeros(tuple(tensor.shape), dtype=bool)
    mask[tensor._positions()] = True
    return mask


def _dense_operand(value) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor._make(_to_array(value))


def _refuses_grad(*operands) -> None:
    """A compressed result cannot carry a graph (see _NO_GRAD): refused where torch's would require grad."""
    if is_grad_enabled() and builtins.any(isinstance(x, Tensor) and x.requires_grad for x in operands):
        raise RuntimeError(_NO_GRAD)


def _compressed_add(input, other, alpha=1) -> Tensor:
    """torch.add with a compressed operand: CSR + CSR is CSR over the union of the two patterns (explicit
    zeros kept), of one dtype and shape; with a dense matrix of the same shape the sum is dense; a CSC
    pair is refused, as is broadcasting (a number or a 0-d tensor too)."""
    if isinstance(input, _CompressedTensor) and isinstance(other, SparseCOOTensor):
        raise RuntimeError('at::sparse_csr::is_sparse_compressed(other) INTERNAL ASSERT FAILED at "/__w/pytorch/'
                           'pytorch/aten/src/ATen/SparseCsrTensorUtils.h":371, please report a bug to PyTorch. ')
    if isinstance(input, _CompressedTensor) and isinstance(other, _CompressedTensor):
        if isinstance(input, SparseCSCTensor) or isinstance(other, SparseCSCTensor):
            raise RuntimeError("crow_indices expected sparse row compressed tensor layout but got SparseCsc")
        if input.shape != other.shape:
            raise RuntimeError(f"torch.add: Expected input tensors to have the same shape, but got tensor `self` "
                               f"with shape {list(input.shape)} and tensor `other` with shape {list(other.shape)}")
        if input.dtype is not other.dtype:  # (torch's kernel names the promoted type, then the other one)
            promoted = _dtype.promote_types(input.dtype, other.dtype)
            found = input if promoted is other.dtype else other
            raise RuntimeError(f"expected scalar type {_dtype.scalar_name(promoted)} but found "
                               f"{_dtype.scalar_name(found.dtype)}")
        total = _in_graph(input).add(_in_graph(other), alpha=alpha)
        # (of the first operand's index dtypes, as torch's)
        return _joined_graph(_csr_at(_pattern(input) | _pattern(other), total._data, _index_dtypes(input)), total)
    compressed, dense = (input, _dense_operand(other)) if isinstance(input, _CompressedTensor) \
        else (other, _dense_operand(input))
    if dense.shape != compressed.shape:
        raise RuntimeError(f"add: expected 'self' and 'other' to have same size, but self has size "
                           f"{list(dense.shape)} while other has size {list(compressed.shape)} (FYI: op2-sparse "
                           "addition does not currently support broadcasting)")
    # the compressed tensor itself an operand of the dense add, so its gradient is unmasked and strided, as
    # torch's add gives it (a leaf's too)
    backing = compressed if compressed._requires_grad and is_grad_enabled() else Tensor._make(compressed._data)
    with DisableTorchFunctionSubclass():
        if compressed is not input:
            return Tensor.add(dense, backing, alpha=alpha)
        if alpha == 1:
            return Tensor.add(backing, dense)
    # torch's kernel scales the compressed operand by alpha even when it comes first, while its derivative
    # (the generic one: alpha on ``other``) scales the dense one's gradient: torch's values, torch's gradients
    total = dense.detach().add(Tensor._make(compressed._data), alpha=alpha)
    if not is_recording(compressed, dense):
        return total
    with DisableTorchFunctionSubclass():
        return _joined_graph(total, Tensor.add(backing, dense, alpha=alpha))


def _compressed_mul(input, other, into_csr: bool = False) -> Tensor:
    """torch.mul with a compressed operand: a number or 0-d tensor scales the values (layout kept); else the
    result is CSR: over the intersection of two CSR patterns (or a CSR and a coalesced COO one), over a CSC
    operand's pattern (the other taken as dense; of the second when both are), or over the compressed operand's pattern against a strided
    matrix. Its kernel allocates the result as the first operand, so a CSC or COO first operand (or a CSC
    second after a strided first) is refused unless the result goes into a CSR out= (``into_csr``)."""
    compressed, factor = (input, other) if isinstance(input, _CompressedTensor) else (other, input)
    if isinstance(factor, numbers.Number) or (isinstance(factor, Tensor) and factor.layout is _layout_strided
                                              and factor.dim() == 0):
        _refuses_grad(factor)
        return compressed._with_values((Tensor._make(compressed._parts[2]) * factor)._data,
                                       lambda dense: dense * factor)
    if not isinstance(factor, Tensor):
        with DisableTorchFunctionSubclass():
            return Tensor.mul(input, other)  # (the dense op's TypeError, as before)
    if not (into_csr or isinstance(input, SparseCSRTensor)
            or isinstance(other, SparseCSRTensor) and input.layout is _layout_strided):
        raise RuntimeError("Expected result Tensor to be of format CSR")
    if not isinstance(factor, _CompressedTensor) and factor.shape != compressed.shape:
        raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size {list(factor.shape)} "
                           f"but mask has size {list(compressed.shape)}")
    csc = next((x for x in (other, input) if isinstance(x, SparseCSCTensor)), None)
    if csc is not None:  # (the second operand's when both are CSC)
        mask = _pattern(csc)
    elif isinstance(factor, _CompressedTensor):
        mask = _pattern(input) & _pattern(other)
    elif isinstance(factor, SparseCOOTensor):  # (the COO operand's entries, explicit zeros too)
        entries = array_module(compressed._data).zeros(tuple(compressed.shape), dtype=bool)
        entries[tuple(factor._indices()._data)] = True
        mask = _pattern(compressed) & entries
    else:
        mask = _pattern(compressed)
    product = Tensor._make(input._data).mul(Tensor._make(other._data))
    result = _csr_at(mask, product._data)
    if any(is_recording(x) for x in (input, other)):
        # the gradient torch's MulBackward0 gives an operand is CSR: its engine refuses it for any other layout
        refused = next((index for index, x in enumerate((input, other))
                        if not isinstance(x, SparseCSRTensor) and x._requires_grad), None)
        if refused is None:  # CSR operands only: their dense backings' product, the same values
            return _joined_graph(result, _in_graph(input).mul(_in_graph(other)))
        left, right = (x if x.layout is _layout_strided else _in_graph(x) for x in (input, other))
        _joined_graph(result, name_node(_OtherLayoutGradRefused.apply(
            left, right, result=result, index=refused, layout=_LAYOUT_NAMES[(input, other)[refused].layout]),
            "MulBackward0"))
    return result


_LAYOUT_NAMES = {_layout_strided: "Strided", sparse_coo: "Sparse", sparse_csr: "SparseCsr", sparse_csc: "SparseCsc"}


def _masked_copy(ctx, dense, mask):
    """The forward of a layout change (_ToCompressed): a copy of the dense values, keeping the compressed
    tensor's pattern (``mask``) for the backward."""
    ctx.mask = mask
    return dense.copy()


class _OtherLayoutGradRefused(Function):
    """A CSR product with an operand of another layout (strided, COO, CSC) that requires grad: torch records
    MulBackward0, whose gradient for that operand is CSR, which its engine refuses as the backward runs."""

    label = "CSR times another layout"
    rule = "refused: the other operand's gradient would be CSR"
    _array_forward = True

    @staticmethod
    def forward(ctx, left, right, result, index, layout):
        ctx.index, ctx.layout = index, layout
        return result._data

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError(f"Function MulBackward0 returned an invalid gradient at index {ctx.index} - expected "
                           f"layout {ctx.layout} but got SparseCsr")


# the function forms (torch.add(dense, csr), dense.add_(csr), torch.sub(...)) answer as the operators do
_COMPRESSED_REFUSED = frozenset({"sub", "sub_", "subtract", "isub", "div", "div_", "divide", "true_divide",
                                 "true_divide_", "truediv", "itruediv"})
# ... and those the dispatcher finds no compressed kernel for (the CSC one too is SparseCsrCPU's)
_COMPRESSED_NOT_RUN = {"rsub": "rsub.Tensor", "floor_divide": "floor_divide", "floordiv": "floor_divide", "rfloordiv": "floor_divide",
                       "floor_divide_": "floor_divide_.Tensor", "ifloordiv": "floor_divide_.Tensor"}


_MKL_TYPES = frozenset({"float32", "float64", "complex64", "complex128"})


def _check_compressed_product(left, right) -> None:
    """torch's refusals of a matrix product with a compressed operand: its MKL addmm kernel takes the left
    operand's dtype if it is float or complex and checks the right one against it."""
    if not (isinstance(left, Tensor) and isinstance(right, Tensor) and left.dim() == 2 and right.dim() == 2):
        return
    if left.dtype.name not in _MKL_TYPES:
        raise NotImplementedError(f"\"addmm_out_sparse_csr_impl_mkl\" not implemented for "
                                  f"'{_dtype.scalar_name(left.dtype)}'")
    if right.dtype is not left.dtype:
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(left.dtype)} but found "
                           f"{_dtype.scalar_name(right.dtype)}")


def _compressed_into(name: str, out, input, other, alpha=1):
    """torch.add/torch.mul with a compressed operand and ``out=``: torch's compressed kernels write only a
    compressed ``out`` of the result's own layout (a strided one takes a sum with a strided operand), each
    refusing any other in its words; None where the dense op with out= answers as torch's (a number or a
    COO operand)."""
    refuse_out_under_autograd(name, out, *(x for x in (input, other) if isinstance(x, Tensor)))
    if name == "mul":
        if not isinstance(out, SparseCSRTensor):
            raise RuntimeError("Expected result Tensor to be of format CSR")
        scalar = other if isinstance(input, _CompressedTensor) else input
        if not isinstance(scalar, Tensor) or scalar.dim() == 0:  # (its kernel masks the number by the pattern)
            size = list(scalar.shape) if isinstance(scalar, Tensor) else []
            raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size {size} but mask "
                               f"has size {list(out.shape)}")
        return out._become(_cast_values(_compressed_mul(input, other, into_csr=True), out.dtype))
    if isinstance(input, _CompressedTensor) and isinstance(other, _CompressedTensor):
        if not isinstance(out, _CompressedTensor):
            raise RuntimeError('at::sparse_csr::is_sparse_compressed(out) INTERNAL ASSERT FAILED at "/__w/pytorch/'
                               'pytorch/aten/src/ATen/SparseCsrTensorUtils.h":372, please report a bug to PyTorch. ')
        if type(out) is not type(input):
            raise RuntimeError(f"resize_as_sparse_compressed_tensor_: self and src must have the same layout, but "
                               f"got: self ({out._layout_name}) and source ({input._layout_name})")
        if out.dtype is not input.dtype:
            raise RuntimeError(f"expected scalar type {_dtype.scalar_name(out.dtype)} but found "
                               f"{_dtype.scalar_name(input.dtype)}")
        return out._become(_compressed_add(input, other, alpha))
    if isinstance(out, _CompressedTensor):  # (the strided kernel asks its out for contiguity)
        raise RuntimeError(f"Sparse {out._layout_name[len('Sparse'):].upper()} tensors do not have is_contiguous")
    if isinstance(out, SparseCOOTensor):
        raise RuntimeError("out argument must be contiguous, but got: Contiguous")
    if not (isinstance(input, Tensor) and isinstance(other, Tensor) and input.layout is not sparse_coo
            and other.layout is not sparse_coo):
        return None
    total = _compressed_add(input, other, alpha)  # (alpha on the compressed operand, as torch's kernel)
    if total.dtype._category > out.dtype._category:
        raise RuntimeError(f"Can't convert result type {_dtype.scalar_name(total.dtype)} to output "
                           f"{_dtype.scalar_name(out.dtype)} in add operation")
    return _write_checked_out(total, out)


# the entry-by-entry math torch's compressed kernels run on the values (each maps 0 to 0; the result keeps
# the layout and the pattern), in place too; and the entry-wise math they refuse naming the layout (the
# ones that would fill the unspecified entries, comparisons, pow, binary math other than add and mul)
_COMPRESSED_VALUEWISE = frozenset(_VALUEWISE) - {"nan_to_num", "square"} | {"neg", "angle", "isneginf", "isposinf"}
_COMPRESSED_LAYOUT_REFUSED = frozenset(_REFUSED) | {
    "eq", "ne", "lt", "le", "gt", "ge", "eq_", "ne_", "lt_", "le_", "gt_", "ge_", "greater", "greater_equal", "less",
    "less_equal", "not_equal", "pow", "pow_", "maximum", "minimum", "fmod", "remainder", "bitwise_not", "clamp_min",
    "clamp_max", "square", "square_", "nanmean"} | {f"{name}_" for name in (*_REFUSED, "bitwise_not")}
# ... and the ops the dispatcher finds no compressed kernel for, by the overload it names
_COMPRESSED_NO_KERNEL = {"nan_to_num": "nan_to_num.out", "mean": "mean.out", "amax": "amax.out", "amin": "amin.out",
                         "argmax": "argmax.out", "argmin": "argmin.out", "norm": "norm.out", "softmax": "_softmax.out",
                         "log_softmax": "_log_softmax.out", "trace": "trace", "triu": "triu.out", "tril": "tril.out",
                         "where": "where.self", "nan_to_num_": "nan_to_num.out", "triu_": "triu.out",
                         "tril_": "tril.out"}
_COMPRESSED_NO_KERNEL.update({
    "std": "std.correction", "var": "var.correction", "cumsum": "cumsum.out", "cumprod": "cumprod.out",
    "logcumsumexp": "_logcumsumexp", "nansum": "nansum", "count_nonzero": "count_nonzero.dim_IntList",
    "nonzero": "nonzero", "logical_not_": "logical_not.out", "mode": "mode", "topk": "topk.values"})
_COMPRESSED_NO_KERNEL_PLAIN = {"max": "max", "min": "min", "prod": "prod", "any": "any.all_out",
                               "all": "all.all_out", "median": "median"}  # (without a dim: another overload)
# reductions over some dims whose compressed output torch's kernel cannot allocate, and ops whose output it
# asks for as a compressed tensor of a shape that is no matrix (its words name the size)
_COMPRESSED_RESIZE_REFUSED = frozenset({"prod", "any", "all", "mean", "amax", "argmax"})
_COMPRESSED_EMPTY_REFUSED = frozenset({"logical_not", "logsumexp", "cummin", "cummax", "kthvalue", "median", "max",
                                       "min", "aminmax"})


def _compressed_reduction_refusal(name: str, tensor: _CompressedTensor, args: tuple, kwargs: dict):
    """torch's refusal of the reduction ``name`` of a compressed ``tensor`` over the dims in ``args``/``kwargs``
    (after the tensor), or None."""
    dim = args[0] if args else kwargs.get("dim")
    if name in _COMPRESSED_RESIZE_REFUSED and dim is not None:
        dims = {d % 2 for d in ((dim,) if isinstance(dim, int) else dim) if isinstance(d, int) and -2 <= d < 2}
        if len(dims) == 1:
            return RuntimeError(f"resize_reduction: support for output with {tensor._layout_name} layout is not "
                                "implemented yet")
    if name not in _COMPRESSED_EMPTY_REFUSED or name in ("median", "max", "min") and dim is None:
        return None
    size = []
    if name in ("max", "min", "aminmax") and isinstance(dim, int) and -2 <= dim < 2:
        if (args[1:2] or [kwargs.get("keepdim", False)])[0] and name != "aminmax":
            return _no_compressed_kernel(f"{name}.dim_{name}")
        size = [tensor.shape[1 - dim % 2]]
    elif name not in ("max", "min", "aminmax"):
        size = [0]
    return RuntimeError(f"torch.empty: Only batched sparse compressed (non-block) tensors are supported, but got "
                        f"size {size}")


def _no_compressed_kernel(kernel: str) -> NotImplementedError:
    return NotImplementedError(_not_on_sparse(kernel).replace("'SparseCPU'", "'SparseCsrCPU'"))


def _compressed_valuewise(func, name: str, tensor: _CompressedTensor, rest: tuple, kwargs: dict):
    """``func`` (a value-wise op) of each stored value, or None when its arguments are not the plain form
    (the dense op's errors answer those)."""
    in_place = name.endswith("_")
    op = name[:-1] if in_place else name
    if op not in _COMPRESSED_VALUEWISE or rest or kwargs:
        return None
    values = getattr(Tensor, op)(Tensor._make(tensor._parts[2]))
    result = tensor._with_values(values._data, lambda dense: getattr(dense, op)())
    return tensor._become(result) if in_place else result


# the functions whose compressed answer (or refusal) is the tensor's method's
_COMPRESSED_METHOD_FORMS = frozenset({"sum", "flatten", "diag", "sort", "argsort", "msort", "clone"})


def _compressed_torch_function(cls, func, types, args=(), kwargs=None):
    kwargs = {} if kwargs is None else kwargs
    name = getattr(func, "__name__", "")
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
    owner = getattr(func, "__torch_owner__", "")
    if owner in ("torch", "torch.Tensor") and "out" not in kwargs and name in _COMPRESSED_LAYOUT_REFUSED:
        first = next((x for x in (*args, *kwargs.values()) if isinstance(x, _CompressedTensor)), None)
        if first is not None and all(isinstance(x, (Tensor, numbers.Number)) for x in args):
            raise RuntimeError(f"unsupported tensor layout: {first._layout_name}")
    if owner in ("torch", "torch.Tensor") and "out" not in kwargs and args and isinstance(args[0], _CompressedTensor):
        refusal = _compressed_reduction_refusal(name, args[0], args[1:], kwargs)
        if refusal is not None:
            raise refusal
    if owner in ("torch", "torch.Tensor") and "out" not in kwargs and (
            name in _COMPRESSED_NO_KERNEL or name in _COMPRESSED_NO_KERNEL_PLAIN and len(args) == 1 and not kwargs):
        raise _no_compressed_kernel(_COMPRESSED_NO_KERNEL.get(name) or _COMPRESSED_NO_KERNEL_PLAIN[name])
    if owner == "torch" and name in _COMPRESSED_METHOD_FORMS and args and isinstance(args[0], _CompressedTensor):
        return getattr(args[0], name)(*args[1:], **kwargs)
    if owner in ("torch", "torch.Tensor") and args and isinstance(args[0], _CompressedTensor):
        result = _compressed_valuewise(func, name, args[0], args[1:], kwargs)
        if result is not None:
            return result
    if owner == "torch" and name in ("add", "mul", "multiply") and len(args) == 2 and "out" in kwargs \
            and set(kwargs) <= {"out", "alpha"} and isinstance(kwargs["out"], Tensor):
        written = _compressed_into("mul" if name == "multiply" else name, kwargs["out"], *args,
                                   **({"alpha": kwargs["alpha"]} if "alpha" in kwargs else {}))
        if written is not None:
            return written
    if owner in ("torch", "torch.Tensor") and "out" not in kwargs:
        operands = (*args, *kwargs.values())
        if name in _COMPRESSED_REFUSED and builtins.all(isinstance(x, (Tensor, numbers.Number)) for x in args):
            first = next(x for x in operands if isinstance(x, _CompressedTensor))
            raise RuntimeError(f"unsupported tensor layout: {first._layout_name}")
        if name in _COMPRESSED_NOT_RUN:
            raise NotImplementedError(f"Could not run 'aten::{_COMPRESSED_NOT_RUN[name]}' with arguments from the "
                                      "'SparseCsrCPU' backend. This could be because the operator doesn't exist for "
                                      "this backend, or was omitted during the selective/custom build process (if "
                                      "using custom build).")
        if name in ("add", "mul", "multiply") and len(args) == 2 and builtins.all(
                isinstance(x, (Tensor, numbers.Number)) for x in args):  # (else the parser's refusal)
            rest = {key: value for key, value in kwargs.items() if key == "alpha"}
            if len(rest) == len(kwargs):
                return _compressed_add(*args, **rest) if name == "add" else _compressed_mul(*args)
        if name in ("add_", "iadd") and len(args) == 2 and not isinstance(args[0], _CompressedTensor):
            return func(args[0], args[1].to_dense(), **kwargs)
        if name in ("mul_", "imul") and args and not isinstance(args[0], _CompressedTensor):
            raise RuntimeError("Expected result Tensor to be of format CSR")
        if name in ("matmul", "mm", "rmatmul") and len(args) == 2 and not kwargs:
            left, right = reversed(args) if name == "rmatmul" else args
            _check_compressed_product(left, right)
            if isinstance(left, _CompressedTensor) and isinstance(right, _CompressedTensor):
                with no_grad():  # (recorded by _compressed_product, as torch's one node over the two)
                    product = disabled_torch_function_impl(func, types, args, kwargs)
                return _compressed_product(left, right, product)
    return disabled_torch_function_impl(func, types, args, kwargs)


def _compressed_product(left: _CompressedTensor, right: _CompressedTensor, product: Tensor,
                        node: str = "MmBackward0") -> SparseCSRTensor:
    """compressed @ compressed, whatever the two layouts: CSR as torch's, with int64 indices and an entry wherever
    the two patterns meet (a sum that cancels to 0, or an explicit zero's product, too), each row's columns in
    the order torch's row-by-row product (Gustavson's) first meets them: along the row's entries of ``left``, each
    one's row of ``right`` in turn (both as CSR); ``product`` is the dense product of the two. Recorded as torch's
    ``node`` over the two (see _CompressedMatmul)."""
    xp = array_module(product._data)
    left_csr, right_csr = (t if isinstance(t, SparseCSRTensor) else _csr_at(_pattern(t), t._data) for t in (left, right))
    rows, inner = (part.astype(np.int64) for part in left_csr._positions())
    right_crow, right_col = (part.astype(np.int64) for part in right_csr._parts[:2])
    counts = right_crow[inner + 1] - right_crow[inner]
    met = int(counts.sum())
    # every product term (row, column) in the walk's order, then each pair where it is first met
    offsets = xp.arange(met) - xp.repeat(xp.cumsum(counts) - counts, counts)
    term_rows, term_cols = xp.repeat(rows, counts), right_col[xp.repeat(right_crow[inner], counts) + offsets]
    first = xp.sort(xp.unique(term_rows * product.shape[1] + term_cols, return_index=True)[1])
    entry_rows, entry_cols = term_rows[first], term_cols[first]
    crow = xp.concatenate([xp.zeros(1, dtype=np.int64), xp.cumsum(xp.bincount(entry_rows, minlength=product.shape[0]))])
    result = SparseCSRTensor._from_parts(crow.astype(np.int64), entry_cols,
                                         xp.ascontiguousarray(product._data[entry_rows, entry_cols]), tuple(product.shape))
    if is_recording(left, right):
        recorded = _CompressedMatmul.apply(left, right, result=result._data, node=node,
                                           operands=(left.detach(), right.detach()))
        _joined_graph(result, name_node(recorded, node))
    return result


class _CompressedMatmul(Function):
    """compressed @ compressed, recorded over the two compressed tensors (its edges theirs), as torch's MmBackward0
    (mm, matmul, @) or SparseAddmmBackward0 (torch.sparse.mm): each one's gradient is torch's general formula's
    product, ``grad @ right^T`` and ``left^T @ grad``, by the compressed product itself (so CSR, of its pattern).
    torch refuses a gradient of a compressed layout other than its input's, after computing both, and its sparse
    addmm kernel has no backward for the left operand."""

    node_name = "MmBackward0"
    label = "compressed matmul"
    rule = "d(a @ b) = grad @ b^H da + a^H @ grad db, each a compressed product"
    _array_forward = True

    @staticmethod
    def forward(ctx, left, right, result, node, operands):
        ctx.node, ctx.operands = node, operands
        return result

    @staticmethod
    def backward(ctx, grad):
        left, right = ctx.operands
        first = 1 if ctx.node == "SparseAddmmBackward0" else 0  # (torch's sparse addmm's operands follow its input)
        if first and ctx.needs_input_grad[0]:
            raise RuntimeError(f"sparse_addmm_sparse_backward: unsupported combination of layouts, grad: "
                               f"{_LAYOUT_NAMES[grad.layout]}, mat1: {left._layout_name}, mat2: {right._layout_name}")
        grads = (grad @ _conjugated(right).t() if ctx.needs_input_grad[0] else None,
                 _conjugated(left).t() @ grad if ctx.needs_input_grad[1] else None)
        for index, (gradient, operand) in enumerate(zip(grads, (left, right))):
            if isinstance(gradient, _CompressedTensor) and gradient.layout is not operand.layout:
                raise RuntimeError(f"Function {ctx.node} returned an invalid gradient at index {first + index} - "
                                   f"expected layout {operand._layout_name} but got {gradient._layout_name}")
        return grads


# (a compressed tensor is a torch.Tensor in torch: its parser's and Python's messages name it so, as a COO one)
SparseCSRTensor.__name__ = SparseCSCTensor.__name__ = "Tensor"


def _refuse_complex_grad(self: Tensor, kernel: str) -> None:
    """torch's layout conversions have no complex derivative: its autograd refuses their complex result."""
    if self.dtype.is_complex:
        raise RuntimeError(f"{kernel} does not support automatic differentiation for outputs with complex dtype.")


def _check_coo_to_compressed(self: SparseCOOTensor, layout: str, name: str, dense_dim) -> None:
    """torch's COO to CSR/CSC conversion's refusals, in its words: a dense_dim argument, sparse dims other than
    two. (torch converts a hybrid COO matrix, its values' dense dims kept; chainrule's compressed tensors hold
    plain matrices only, so that one is refused below as any tensor of more than two dims.)"""
    if dense_dim is not None:
        raise RuntimeError(f"coo_to_sparse_{layout}: conversion from Sparse to {name} with dense_dim argument given is "
                           "not supported")
    if self.sparse_dim() != 2:
        raise RuntimeError(f"coo_to_sparse_{layout}: conversion from Sparse to {name} for input tensors with "
                           "sparse_dim()!=2 is not supported")


def to_sparse_csr(self, dense_dim=None) -> SparseCSRTensor:
    """Tensor.to_sparse_csr: the CSR form of a dense matrix, its nonzero entries row by row."""
    if isinstance(self, SparseCOOTensor):
        _check_coo_to_compressed(self, "csr", "SparseCsr", dense_dim)
    if dense_dim is not None:
        raise NotImplementedError("to_sparse_csr: dense_dim is not supported")
    if self.dim() != 2:
        raise RuntimeError(f"to_sparse_csr: expected a 2-D tensor, got {self.dim()} dims")
    if isinstance(self, _CompressedTensor):  # (a CSC matrix: its stored entries, explicit zeros too, and index dtypes)
        result = _csr_at(_pattern(self), self._data, _converted_index_dtypes(self))
    else:
        result = _csr_at(self._data != 0, self._data)
    if is_recording(self):
        _refuse_complex_grad(self, "_to_sparse_csr")
        _joined_graph(result, name_node(_ToCompressed.apply(self, mask=_pattern(result)), "ToSparseCsrBackward0"))
    return result


def to_sparse_csc(self, dense_dim=None) -> SparseCSCTensor:
    """Tensor.to_sparse_csc: the CSC form of a dense matrix, its nonzero entries column by column."""
    if isinstance(self, SparseCOOTensor):
        _check_coo_to_compressed(self, "csc", "SparseCsc", dense_dim)
    if dense_dim is not None:
        raise NotImplementedError("to_sparse_csc: dense_dim is not supported")
    if self.dim() != 2:
        raise RuntimeError(f"to_sparse_csc: expected a 2-D tensor, got {self.dim()} dims")
    if isinstance(self, _CompressedTensor):  # (a CSR matrix: its stored entries, explicit zeros too, and index dtypes)
        result = _csc_at(_pattern(self), self._data, _converted_index_dtypes(self))
    else:
        result = _csc_at(self._data != 0, self._data)
    if is_recording(self):
        _refuse_complex_grad(self, "_to_sparse_csc")
        _joined_graph(result, name_node(_ToCompressed.apply(self, mask=_pattern(result)), "ToSparseCscBackward0"))
    return result


def _size_refused(length: int, sparse_dims: int, dense_dims: int) -> str:
    return (f"'len(size) == sparse_dim + dense_dim' is not satisfied: len(size) = {length}, sparse_dim = "
            f"{sparse_dims}, dense_dim = {dense_dims}")


def _index_array(indices, device, given: tuple | None = None):
    """sparse_coo_tensor's indices as torch's constructor reads them: any data, a tensor of any dtype
    too, cast to int64 on the values' device (a float index truncated, as torch's cast does). ``given``:
    the length of a size given and the values' dense dims, which torch checks against the indices' first
    dim (their sparse_dim, whatever their rank) before their rank."""
    dtype = getattr(indices, "dtype", None)
    if getattr(dtype, "is_complex", False) or getattr(dtype, "kind", "") == "c":
        # (a complex index keeps its real part; only then: a catch_warnings on every call would reset
        # each caller's once-per-line warning registry)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            array = _to_array(indices, _dtype.int64, copy=False, device=device)
    else:
        array = _to_array(indices, _dtype.int64, copy=False, device=device)
    if given is not None and array.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    if given is not None and given[0] != array.shape[0] + given[1]:
        raise RuntimeError(_size_refused(given[0], array.shape[0], given[1]))
    if array.ndim != 2:
        raise RuntimeError(f"indices must be sparse_dim x nnz, but got: {list(array.shape)}")
    return array


def _warn_if_implicitly_unchecked(check_invariants) -> None:
    """torch's sparse constructors' warning, once per process, where neither the call nor the switch
    (check_sparse_tensor_invariants) said whether to check the invariants."""
    if check_invariants is None and not check_sparse_tensor_invariants._explicit:
        _config.warn_once("Sparse invariant checks are implicitly disabled. Memory errors (e.g. SEGFAULT) will occur "
                          "when operating on a sparse tensor which violates the invariants, but checks incur "
                          "performance overhead. To silence this warning, explicitly opt in or out. See "
                          "`torch.sparse.check_sparse_tensor_invariants.__doc__` for guidance.  (Triggered internally "
                          "at /__w/pytorch/pytorch/aten/src/ATen/Context.cpp:816.)")


class check_sparse_tensor_invariants:  # noqa: N801 - torch's name
    """torch.sparse.check_sparse_tensor_invariants: the switch (a context manager, a decorator, or
    ``enable()``/``disable()``) for checking sparse constructors' indices against their size.

    chainrule checks every constructor's indices whatever the switch says, so the switch keeps torch's state
    for the scripts that set it; until one sets it (``enable()``, ``disable()`` or this context), a constructor
    not told ``check_invariants`` gives torch's once-per-process warning that the checks are implicitly off."""

    _enabled = False
    _explicit = False  # (torch's flag is an unset optional until enable(), disable() or a context sets it)

    @staticmethod
    def is_enabled() -> bool:
        return check_sparse_tensor_invariants._enabled

    @staticmethod
    def enable() -> None:
        check_sparse_tensor_invariants._enabled = check_sparse_tensor_invariants._explicit = True

    @staticmethod
    def disable() -> None:
        check_sparse_tensor_invariants._enabled, check_sparse_tensor_invariants._explicit = False, True

    def __init__(self, enable: bool = True) -> None:
        self.state = enable
        self.saved_state = None

    def __enter__(self):
        if self.saved_state is not None:
            raise RuntimeError("This context manager instance is already activated. Use a different context "
                               "manager instance for context nesting.")
        self.saved_state = self.is_enabled()
        check_sparse_tensor_invariants._enabled, check_sparse_tensor_invariants._explicit = self.state, True

    def __exit__(self, exc_type, exc_value, traceback):
        check_sparse_tensor_invariants._enabled = self.saved_state
        self.saved_state = None

    def __call__(self, function):
        import functools

        @functools.wraps(function)
        def checking(*args, **kwargs):
            with type(self)(self.state):
                return function(*args, **kwargs)

        return checking


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None, pin_memory: bool = False,
                      requires_grad: bool = False, check_invariants=None, is_coalesced=None) -> SparseCOOTensor:
    """A sparse COO tensor with entries ``values`` at ``indices`` (sparse_dim × nnz); ``size``
    defaults to one past the largest index in each sparse dim. With ``requires_grad`` it is a leaf
    whose gradient is sparse where torch's is (see ``_SparseGradient``)."""
    _warn_if_implicitly_unchecked(check_invariants)
    # torch's constructor makes the values first, then the indices on their device; a 0-d value is
    # one entry (its expand_values_if_needed)
    value = values if isinstance(values, Tensor) else Tensor._make(_to_array(values, None))
    if dtype is not None or device is not None:
        value = value.to(device=device, dtype=dtype)
    if value.ndim == 0:
        value = value.reshape(1)
    value_array = value._data
    index = _index_array(indices, value.device, None if size is None else (len(size), value_array.ndim - 1))
    if size is not None and any(int(s) < 0 for s in size):  # torch's numel of the size overflows its unsigned count
        raise RuntimeError("numel: integer multiplication overflow")
    if index.shape[1] != value_array.shape[0]:
        raise RuntimeError(f"indices and values must have same nnz, but got nnz from indices: {index.shape[1]}, "
                           f"nnz from values: {value_array.shape[0]}")
    xp = array_module(value_array)
    index = xp.asarray(index)
    sparse_dims = index.shape[0]
    if size is None:
        bounds = tuple(int(b) + 1 for b in index.max(axis=1)) if index.shape[1] else (0,) * sparse_dims
        size = bounds + tuple(value_array.shape[1:])
    size = tuple(int(s) for s in size)
    if len(size) != sparse_dims + value_array.ndim - 1:
        raise RuntimeError(_size_refused(len(size), sparse_dims, value_array.ndim - 1))
    if index.shape[1]:
        lowest, highest = index.min(axis=1), index.max(axis=1)
        for dim in range(sparse_dims):
            if int(lowest[dim]) < 0:
                raise RuntimeError(f"found negative index {int(lowest[dim])} for dim {dim}")
            if int(highest[dim]) >= size[dim]:
                raise RuntimeError(f"size is inconsistent with indices: for dim {dim}, size is {size[dim]} but found "
                                   f"index {int(highest[dim])}")
    if tuple(value_array.shape[1:]) != size[sparse_dims:]:
        raise RuntimeError(f"values has incorrect size, expected {[index.shape[1], *size[sparse_dims:]]}, got "
                           f"{list(value_array.shape)}")
    if is_coalesced is None:  # torch's factory: no two entries can share an index
        is_coalesced = index.shape[1] < 2
    tensor = SparseCOOTensor._from_parts(index, value_array, size, bool(is_coalesced), strides_kept=True)
    if value._requires_grad and is_grad_enabled():
        _joined_graph(tensor, _ScatterValues.apply(value, positions=tuple(index), dense=tensor._data))
    elif requires_grad:
        tensor._requires_grad = True
    return tensor


def _compressed_to_coo(self: _CompressedTensor, sparse_dim: int | None) -> SparseCOOTensor:
    """A compressed matrix's COO form, as torch converts it: its stored entries in its order (explicit zeros
    kept), marked coalesced for CSR's row-major order only."""
    if sparse_dim not in (None, 2):
        raise RuntimeError(f"sparse_compressed_to_sparse: conversion from {self._layout_name} to Sparse with "
                           "sparse_dim argument !=2 is not supported")
    xp = array_module(self._data)
    indices = xp.stack([index.astype(np.int64) for index in self._positions()])
    result = SparseCOOTensor._from_parts(indices, self._parts[2].copy(), tuple(self.shape),
                                         isinstance(self, SparseCSRTensor))
    if is_recording(self):
        _refuse_complex_grad(self, "_to_sparse")
        _joined_graph(result, name_node(_ToSparse.apply(_in_graph(self)),
                                        "ToSparseBackward1" if sparse_dim is None else "ToSparseBackward0"))
    return result


def to_sparse(self, sparse_dim: int | None = None, *, layout=None, blocksize=None, dense_dim=None):
    """Tensor.to_sparse: the COO form of a dense tensor (coalesced: sorted unique indices)."""
    if isinstance(self, _CompressedTensor) and layout in (None, sparse_coo):
        return _compressed_to_coo(self, sparse_dim)
    if layout in (sparse_csr, sparse_csc) and is_recording(self):
        _refuse_complex_grad(self, "_to_sparse")
    if layout is sparse_csr:
        return to_sparse_csr(self)
    if layout is sparse_csc:
        return to_sparse_csc(self)
    if layout not in (None, sparse_coo):
        raise NotImplementedError(f"to_sparse: only the sparse_coo, sparse_csr and sparse_csc layouts are supported, "
                                  f"got {layout}")
    node = "ToSparseBackward1" if sparse_dim is None else "ToSparseBackward0"
    sparse_dim = self.dim() if sparse_dim is None else sparse_dim
    if not 0 < sparse_dim <= self.dim():
        raise RuntimeError(f"to_sparse: sparse_dim must be in [1, {self.dim()}], got {sparse_dim}")
    xp = array_module(self._data)
    data = self._data
    present = data != 0
    if sparse_dim < self.dim():
        present = present.any(axis=tuple(range(sparse_dim, self.dim())))
    index = xp.stack(xp.nonzero(present)).astype(np.int64)  # sparse_dim >= 1, so present has a dim
    values = data[tuple(index)]
    result = SparseCOOTensor._from_parts(index, xp.ascontiguousarray(values), tuple(self.shape), True)
    if is_recording(self):
        _refuse_complex_grad(self, "_to_sparse")
        _joined_graph(result, name_node(_ToSparse.apply(self), node))
    return result


class _ToCompressed(Function):
    """Tensor.to_sparse_csr/to_sparse_csc of a tensor that requires grad: the gradient passes back as it is,
    except that a zero off the result's pattern is +0.0, as torch's gradient is there (a compressed one made
    dense fills what it does not store with +0.0, whatever sign the math on the stored values gave); a sparse
    gradient (torch.sparse.mm's, a compressed one) is made dense, as torch's to_dense does."""

    label = "to sparse compressed"
    rule = "grad, +0.0 where it is zero off the pattern"
    _array_forward = True
    forward = staticmethod(_masked_copy)

    @staticmethod
    def backward(ctx, grad):
        if grad.layout is not _layout_strided:
            return grad.to_dense()
        return where(Tensor._make(ctx.mask) | (grad != 0), grad, 0)


class _ToSparse(Function):
    """Tensor.to_sparse of a tensor that requires grad: the sparse result's values are the input's, so
    the gradient passes back as it is, a sparse one (what the result's own ops make) made dense, as
    torch's ToSparseBackward gives the strided input a strided gradient."""

    label = "to sparse"
    rule = "grad (made dense)"

    @staticmethod
    def forward(ctx, dense):
        return dense.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.to_dense() if grad.is_sparse else grad


def sparse_mask(self, mask) -> SparseCOOTensor:
    """Tensor.sparse_mask: ``self``'s values at the entries of the sparse COO ``mask`` (its indices as given,
    duplicates and coalesced flag kept; a hybrid mask takes whole dense rows), in ``self``'s dtype; the gradient
    reaches ``self`` at those entries (once per entry), as torch's SparseMaskBackward0. A strided ``self`` by a CSR
    or CSC mask: see _strided_at_compressed."""
    if isinstance(mask, _CompressedTensor) and self.layout is _layout_strided:
        return _strided_at_compressed(self, mask)
    if not isinstance(mask, SparseCOOTensor):
        raise NotImplementedError(_refused_on_strided("sparse_mask"))
    if tuple(self.shape) != tuple(mask.shape):
        raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size {list(self.shape)} but "
                           f"mask has size {list(mask.shape)}")
    indices, _, coalesced = mask._coo
    source = _in_graph(self) if isinstance(self, SparseCOOTensor) else self
    values = getitem(source, tuple(Tensor._make(index) for index in indices))
    xp = array_module(indices)
    result = SparseCOOTensor._from_parts(xp.array(indices), xp.ascontiguousarray(values._data), tuple(mask.shape),
                                         coalesced)
    if values.requires_grad and is_grad_enabled():
        scattered = _ScatterValues.apply(values, positions=tuple(indices), dense=result._data)
        _joined_graph(result, name_node(scattered, "SparseMaskBackward0"))
    return result


def _strided_at_compressed(self: Tensor, mask: _CompressedTensor) -> _CompressedTensor:
    """Tensor.sparse_mask of a strided tensor by a CSR or CSC mask: its values at the mask's entries (explicit
    zeros too), in the mask's layout with int64 indices, each line's in sorted order, as torch's; recorded under
    torch's SparseMaskBackward0, whose backward refuses in torch's words (it asks the compressed gradient whether
    it is coalesced)."""
    if tuple(self.shape) != tuple(mask.shape):
        raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size {list(self.shape)} but "
                           f"mask has size {list(mask.shape)}")
    # (an empty mask's own index dtypes, as torch's kernel answers it without converting it)
    result = (_csr_at if isinstance(mask, SparseCSRTensor) else _csc_at)(
        _pattern(mask), self._data, None if mask._nnz() else _index_dtypes(mask))
    if is_recording(self):
        refusal = (RuntimeError, f"is_coalesced expected sparse coordinate tensor layout but got {mask._layout_name}")
        recorded = _NoSparseBackward.apply(self, result=result._data, refusal=refusal)
        _joined_graph(result, name_node(recorded, "SparseMaskBackward0"))
    return result


_NO_REDUCE = object()


def mm(sparse: Tensor, dense: Tensor, reduce: str = _NO_REDUCE) -> Tensor:
    """torch.sparse.mm: sparse (n × m) @ dense (m × p), a dense result; sparse @ sparse is sparse
    and coalesced, with an entry wherever the two index patterns meet (even one summing to 0).
    With ``reduce`` (CSR only, as torch): each row's products reduced by "sum", "mean", "amax"/"max"
    or "amin"/"min" over its specified entries (0 for a row without any)."""
    if reduce is not _NO_REDUCE:
        return _mm_reduce(sparse, dense, reduce)
    if isinstance(sparse, SparseCOOTensor) and isinstance(dense, SparseCOOTensor):
        return _sparse_times_sparse(sparse, dense, "SparseSparseMatmulBackward0")
    if isinstance(dense, SparseCOOTensor) and isinstance(sparse, Tensor) and sparse.layout is _layout_strided:
        # torch's _sparse_mm: dense @ sparse as (sparse^T @ dense^T)^T by its sparse addmm kernel, so the
        # sparse operand's gradient is sparse (torch.mm and @ give it a dense one)
        return mm(dense.transpose(0, 1), sparse.transpose(0, 1)).transpose(0, 1)
    if isinstance(sparse, SparseCOOTensor) and isinstance(dense, Tensor):
        _check_sparse_product("mm", sparse, dense)
    elif isinstance(sparse, _CompressedTensor) and isinstance(dense, _CompressedTensor):
        _check_compressed_product(sparse, dense)
        if isinstance(sparse, SparseCSRTensor) and isinstance(dense, SparseCSCTensor):
            # torch's kernel adds the product to zeros of the right operand's layout
            raise RuntimeError("addmm: computation on CPU is not implemented for SparseCsc + SparseCsr @ SparseCsc")
        with no_grad():
            product = _matmul(sparse, dense)
        return _compressed_product(sparse, dense, product, "SparseAddmmBackward0")
    elif not (isinstance(sparse, _CompressedTensor) and isinstance(dense, Tensor) and dense.layout is _layout_strided):
        return _matmul(sparse, dense)
    # torch adds the product to zeros of the dense operand's dtype by its sparse addmm kernel, whose node
    # users see and which gives a sparse leaf a sparse gradient (torch.mm and @ give it a dense one)
    zeros = Tensor._make(array_module(dense._data).zeros((), dtype=dense._data.dtype))
    return _sparse_addmm(zeros.expand(sparse.shape[0], dense.shape[-1]) if sparse.dim() == 2 == dense.dim()
                         else zeros, sparse, dense, 0, 1)


_MM_REDUCTIONS = {"sum": "sum", "mean": "mean", "amax": "amax", "max": "amax", "amin": "amin", "min": "amin"}


def _mm_reduce(sparse: Tensor, dense: Tensor, reduce) -> Tensor:
    """torch.sparse.mm(csr, dense, reduce): aten's _sparse_mm_reduce_impl, in its checks' words; the
    entries' products a_rk * dense[k] gathered and reduced into their rows, differentiable in ``dense``
    (a CSR operand cannot require grad here)."""
    if not isinstance(reduce, str):
        raise TypeError(f"_sparse_mm(): argument 'reduce' must be str, not {type(reduce).__name__}")
    if not isinstance(sparse, SparseCSRTensor):
        if isinstance(sparse, SparseCSCTensor):
            raise RuntimeError("sparse_mm_reduce: expect self to be SparseCsr, got SparseCsc")
        backend = "SparseCPU" if isinstance(sparse, SparseCOOTensor) else "CPU"
        raise NotImplementedError(f"Could not run 'aten::_sparse_mm_reduce_impl' with arguments from the '{backend}' "
                                  "backend. This could be because the operator doesn't exist for this backend, or was "
                                  "omitted during the selective/custom build process (if using custom build).")
    if reduce not in _MM_REDUCTIONS:
        if reduce == "prod":
            raise RuntimeError("sparse_mm_reduce: reduce type of prod has not been enabled.")
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    if dense.layout is not _layout_strided:
        name = {sparse_coo: "Sparse", sparse_csr: "SparseCsr", sparse_csc: "SparseCsc"}.get(dense.layout, str(dense.layout))
        raise RuntimeError(f"Expected tensor to have Strided Layout, but got tensor with {name} Layout (while checking "
                           "arguments for sparse_mm_reduce)")
    if dense.dtype is not sparse.dtype:
        raise RuntimeError(f"Expected tensor for argument #1 'other' to have scalar type "
                           f"{_dtype.scalar_name(sparse.dtype)}; but got {dense.type()} instead (while checking "
                           "arguments for sparse_mm_reduce)")
    if dense.dim() != 2 or dense.shape[0] != sparse.shape[1]:
        raise RuntimeError(f"Expected a tensor of dimension 2 and tensor.size[0] == {sparse.shape[1]} but got: "
                           f"dimension {dense.dim()} and tensor.size[0] = {dense.shape[0] if dense.dim() else 1}")
    if not sparse.dtype.is_floating_point:
        raise NotImplementedError(f"\"spmm_reduce_kernel\" not implemented for '{_dtype.scalar_name(sparse.dtype)}'")
    from .ops.index import index_add, index_select, scatter_reduce

    crow, col, values = sparse._parts
    xp = array_module(values)
    rows = Tensor._make(xp.repeat(xp.arange(sparse.shape[0]), xp.diff(crow)).astype(np.int64))
    products = Tensor._make(values)[:, None] * index_select(dense, 0, Tensor._make(col.astype(np.int64)))
    out = dense.new_zeros((sparse.shape[0], dense.shape[1]))
    how = _MM_REDUCTIONS[reduce]
    if how in ("sum", "mean"):
        result = index_add(out, 0, rows, products)
        if how == "mean":
            counts = xp.maximum(xp.diff(crow), 1).astype(values.dtype)[:, None]
            result = result / Tensor._make(counts)
    else:
        result = scatter_reduce(out, 0, rows[:, None].expand(products.shape), products, how, include_self=False)
    return name_node(result, "SparseMmReduceImplBackward0")


def addmm(mat: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1.0, alpha=1.0) -> Tensor:
    """torch.sparse.addmm: ``beta * mat + alpha * (mat1 @ mat2)`` for a sparse COO ``mat1`` and dense
    ``mat`` and ``mat2``, a dense result; a sparse leaf ``mat1`` gets a sparse gradient."""
    if isinstance(mat1, SparseCOOTensor) and isinstance(mat2, Tensor) and isinstance(mat, Tensor):
        _check_sparse_product("addmm", mat1, mat2, mat)
    elif isinstance(mat1, SparseCSCTensor) and isinstance(mat2, SparseCSRTensor) and isinstance(mat, Tensor) \
            and mat.layout is _layout_strided:
        raise RuntimeError("addmm: computation on CPU is not implemented for Strided + SparseCsc @ SparseCsr")
    elif not (isinstance(mat1, _CompressedTensor) and isinstance(mat2, Tensor)
              and (mat2.layout is _layout_strided or isinstance(mat2, _CompressedTensor)) and isinstance(mat, Tensor)
              and mat.layout is _layout_strided):
        return name_node(_scaled_sum(mat, _matmul(mat1, mat2), beta, alpha), "SparseAddmmBackward0")
    return _sparse_addmm(mat, mat1, mat2, beta, alpha)


def _check_compressed_addmm(mat: Tensor, mat1: _CompressedTensor, mat2: Tensor) -> None:
    """torch's refusals of its compressed addmm kernel (MKL's): float or complex ``mat`` only, the operands of its
    dtype, multipliable, and a product ``mat`` expands to."""
    if mat.dtype.name not in _MKL_TYPES:
        raise NotImplementedError(f"\"addmm_out_sparse_csr_impl_mkl\" not implemented for "
                                  f"'{_dtype.scalar_name(mat.dtype)}'")
    for operand in (mat1, mat2):
        if operand.dtype is not mat.dtype:
            raise RuntimeError(f"expected scalar type {_dtype.scalar_name(mat.dtype)} but found "
                               f"{_dtype.scalar_name(operand.dtype)}")
    if mat2.dim() != 2 or mat1.shape[1] != mat2.shape[0]:
        rows, cols = (mat2.shape[0], mat2.shape[1]) if mat2.dim() == 2 else (1, mat2.numel())
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({mat1.shape[0]}x{mat1.shape[1]} and "
                           f"{rows}x{cols})")


def _sparse_addmm(mat: Tensor, sparse: Tensor, dense: Tensor, beta, alpha) -> Tensor:
    """torch's _sparse_addmm: ``beta * mat + alpha * (sparse @ dense)`` for a sparse COO or compressed ``sparse``,
    computed on its dense backing, in the graph as torch's one SparseAddmmBackward0 node over the three
    operands (see _SparseAddmm)."""
    if isinstance(sparse, _CompressedTensor):
        _check_compressed_addmm(mat, sparse, dense)
    if isinstance(sparse, SparseCOOTensor) and sparse._coo[1].ndim == 1 and type(dense._data) is np.ndarray \
            and dense._data.dtype == np.float32 and mat._data.dtype == np.float32 and dense.layout is _layout_strided:
        result = Tensor._make(_coo_addmm_entry_by_entry(mat._data, sparse, dense._data, beta, alpha))
    else:
        with no_grad():
            # torch's kernel scales in the tensors' dtype (an integer result stays integer), as addmm's does
            backing = Tensor._make(dense._data) if isinstance(dense, _CompressedTensor) else dense
            result = _scaled_sum(mat, _matmul(Tensor._make(sparse._data), backing), beta, alpha)
    if not is_recording(mat, sparse, dense):
        return result
    return _SparseAddmm.apply(mat, sparse, dense, result=result._data, beta=beta, alpha=alpha)


def _coo_addmm_entry_by_entry(mat, sparse: SparseCOOTensor, dense, beta, alpha):
    """torch's CPU kernel of ``beta·mat + alpha·(COO @ dense)``: the result starts as 0 (beta 0), mat, or
    mat·beta, and takes each stored entry's ``(alpha·v)·dense[c]`` in storage order (_entry_by_entry_product);
    with no entries it is mat·beta, a -0 and NaN kept even at beta 0."""
    xp = array_module(dense)
    shape = (sparse.shape[0], dense.shape[1])
    indices, values, _ = sparse._coo
    if values.shape[0] == 0:
        return xp.broadcast_to(mat * mat.dtype.type(beta), shape).copy()
    start = xp.zeros(shape, mat.dtype) if beta == 0 else xp.broadcast_to(
        mat if beta == 1 else mat * mat.dtype.type(beta), shape).copy()
    scaled = values if alpha == 1 else values * values.dtype.type(alpha)
    return _entry_by_entry_product(indices[0], indices[1], scaled, dense, start)


class _SparseAddmm(Function):
    """torch's SparseAddmmBackward0: the sparse operand's gradient is ``alpha * grad @ dense^H`` at its stored
    entries, in its own layout (COO at its coalesced indices; CSR with its pattern, explicit zeros kept, as
    torch's sampled addmm gives it); a CSC operand's torch's kernel refuses. ``result``: the forward's value."""

    node_name = "SparseAddmmBackward0"
    label = "sparse addmm"
    rule = "d(beta m + alpha s @ d) = beta dm + alpha (g d^H at s's entries) ds + alpha s^H g dd"
    _array_forward = True

    @staticmethod
    def forward(ctx, mat, sparse, dense, result, beta, alpha):
        ctx.beta, ctx.alpha = beta, alpha
        ctx.save_for_backward(sparse, dense)  # (the sparse operand's backing is saved as that tensor)
        return result

    @staticmethod
    def backward(ctx, grad):
        sparse, dense = ctx.saved_values
        grad_mat = grad_sparse = grad_dense = None
        if ctx.needs_input_grad[0]:
            grad_mat = grad if ctx.beta == 1 else grad * ctx.beta
        if ctx.needs_input_grad[1]:
            if isinstance(dense, _CompressedTensor):  # (torch's kernel has no backward here)
                raise RuntimeError(f"sparse_addmm_sparse_backward: unsupported combination of layouts, grad: Strided, "
                                   f"mat1: {sparse._layout_name}, mat2: {dense._layout_name}")
            grad_sparse = _at_entries(sparse, _matmul(grad, _elementwise._conj(dense.mT)) * ctx.alpha)
        if ctx.needs_input_grad[2] and isinstance(sparse, SparseCOOTensor) and sparse._coo[1].ndim == 1 \
                and _summed_entry_by_entry(grad):
            (rows, cols), values, _ = sparse._coo
            product = _transposed_entries_product(rows, cols, values, grad, sparse.shape[1])
            grad_dense = product if ctx.alpha == 1 else Tensor._make(product._data * np.float32(ctx.alpha))
        elif ctx.needs_input_grad[2]:
            grad_dense = _matmul(_elementwise._conj(_in_graph(sparse).mT), grad) * ctx.alpha
        return grad_mat, grad_sparse, grad_dense



def _at_entries(sparse: Tensor, grad: Tensor):
    """``grad`` (dense, of ``sparse``'s shape) at ``sparse``'s stored entries, in its layout, as torch's
    sparse_addmm_sparse_backward gives it: COO at the coalesced indices (marked uncoalesced), CSR with its
    pattern (explicit zeros kept; a -0.0 there is +0.0, sampled addmm's zero plus the product); CSC refused.
    Under create_graph the result is in the graph of ``grad`` masked densely (the same values)."""
    if isinstance(sparse, SparseCSCTensor):
        raise RuntimeError("sparse_addmm_sparse_backward: unsupported combination of layouts, grad: Strided, "
                           "mat1: SparseCsc, mat2: Strided")
    xp = array_module(grad._data)
    if isinstance(sparse, SparseCSRTensor):
        positions = sparse._positions()
        result = sparse._with_values(sparse._data.dtype.type(0) + grad._data[positions])
    else:
        positions = tuple(_unique_indices(sparse))
        result = SparseCOOTensor._from_parts(xp.stack(positions), xp.ascontiguousarray(grad._data[positions]),
                                             tuple(sparse.shape), False)
    if grad.requires_grad:
        mask = xp.zeros(tuple(sparse.shape), dtype=bool)
        mask[positions] = True
        _joined_graph(result, where(Tensor._make(mask), grad, 0))
    return result


_SAMPLED_TYPES = frozenset({"float32", "float64", "complex64", "complex128"})


def _check_sampled_addmm(input: Tensor, mat1: Tensor, mat2: Tensor) -> None:
    """torch's refusals of sampled_addmm, in its order: the layout (its CSR kernel only), the dtypes (one for all
    three, float or complex), the operands' dims, then the shapes."""
    if not isinstance(input, SparseCSRTensor):
        if isinstance(input, SparseCSCTensor):
            raise RuntimeError("sampled_addmm: Expected result to have sparse csr layout, but got SparseCsc")
        backend = "'CPU'" if input.layout is _layout_strided else "'SparseCPU'"
        raise NotImplementedError(_not_on_sparse("sparse_sampled_addmm").replace("'SparseCPU'", backend))
    name = _dtype.scalar_name
    if mat1.dtype is not mat2.dtype:
        raise RuntimeError(f"sampled_addmm: Expected mat1 and mat2 to have the same dtype, but got {name(mat1.dtype)} "
                           f"and {name(mat2.dtype)}")
    if mat1.dtype is not input.dtype:
        raise RuntimeError(f"sampled_addmm: Expected mat1 and self to have the same dtype, but got {name(mat1.dtype)} "
                           f"and {name(input.dtype)}")
    if input.dtype.name not in _SAMPLED_TYPES:
        raise RuntimeError(f"sparse_sampled_addmm: Expected self to be a floating-point or complex tensor, but got "
                           f"{name(input.dtype)}")
    for label, operand in (("mat1", mat1), ("mat2", mat2)):
        if operand.dim() < 2:
            raise RuntimeError(f"sampled_addmm: Expected {label} to be a matrix, got {operand.dim()}-D tensor")
    if mat1.shape[:-2] != mat2.shape[:-2]:
        raise RuntimeError(f"sampled_addmm: Expected mat1 and mat2 to have the same batch size, but got "
                           f"{list(mat1.shape[:-2])} and {list(mat2.shape[:-2])}")
    if mat1.dim() > 2:
        raise NotImplementedError("sampled_addmm: chainrule's CSR matrices are 2-D; batched operands are not supported")
    if mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"sampled_addmm: mat1 and mat2 shapes cannot be multiplied ({mat1.shape[0]}x{mat1.shape[1]} "
                           f"and {mat2.shape[0]}x{mat2.shape[1]})")
    if input.shape[0] != mat1.shape[0]:
        raise RuntimeError("sampled_addmm: self.shape[-2] must match mat1.shape[-2]")
    if input.shape[1] != mat2.shape[1]:
        raise RuntimeError("sampled_addmm: self.shape[-1] must match mat2.shape[-1]")


def sampled_addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1.0, alpha=1.0, out=None) -> SparseCSRTensor:
    """torch.sparse.sampled_addmm: ``beta * input + alpha * (mat1 @ mat2)`` at the stored entries of the CSR matrix
    ``input`` only, a CSR matrix of its pattern (explicit zeros kept); ``mat1`` (m × k) and ``mat2`` (k × n) dense.
    In the graph as torch's SparseSampledAddmmBackward0 (see _SampledAddmm)."""
    if out is not None:
        raise NotImplementedError("sampled_addmm: out= is not supported in chainrule")
    _check_sampled_addmm(input, mat1, mat2)
    positions = input._positions()
    with no_grad():
        product = _matmul(mat1.detach(), mat2.detach())._data[positions]
    values = input._parts[2] * input._data.dtype.type(beta) + product * input._data.dtype.type(alpha)
    result = input._with_values(values.astype(input._data.dtype, copy=False))
    if is_recording(input, mat1, mat2):
        mask = _pattern(input)
        recorded = _SampledAddmm.apply(input, mat1, mat2, result=result._data, mask=mask, beta=beta, alpha=alpha)
        _joined_graph(result, recorded)
    return result


class _SampledAddmm(Function):
    """torch's SparseSampledAddmmBackward0 over (input, mat1, mat2): the result's gradient G, taken at the input's
    stored entries only, gives ``input`` beta G in its layout and pattern, ``mat1`` alpha G mat2^H and ``mat2``
    alpha mat1^H G. ``result``: the forward's dense backing."""

    node_name = "SparseSampledAddmmBackward0"
    label = "sampled addmm"
    rule = "d(beta s + alpha (m1 @ m2) at s's entries) = beta g_s ds + alpha g_s m2^H dm1 + alpha m1^H g_s dm2"
    _array_forward = True

    @staticmethod
    def forward(ctx, input, mat1, mat2, result, mask, beta, alpha):
        ctx.mask, ctx.beta, ctx.alpha = mask, beta, alpha
        ctx.save_for_backward(input, mat1, mat2)  # (the CSR operand's backing is saved as that tensor)
        return result

    @staticmethod
    def backward(ctx, grad):
        input, mat1, mat2 = ctx.saved_values
        if grad.layout is not _layout_strided:  # (a compressed gradient, what the result's to_dense gives back)
            grad = grad.to_dense()
        sampled = where(Tensor._make(ctx.mask), grad, 0)
        grad_input = grad_mat1 = grad_mat2 = None
        if ctx.needs_input_grad[0]:
            grad_input = _at_entries(input, sampled * ctx.beta)
        if ctx.needs_input_grad[1]:
            grad_mat1 = _matmul(sampled, _elementwise._conj(mat2.mT)) * ctx.alpha
        if ctx.needs_input_grad[2]:
            grad_mat2 = _matmul(_elementwise._conj(mat1.mT), sampled) * ctx.alpha
        return grad_input, grad_mat1, grad_mat2


def _sparse_times_sparse(left: SparseCOOTensor, right: SparseCOOTensor, node: str = "MmBackward0") -> SparseCOOTensor:
    """sparse COO @ sparse COO, coalesced, recorded under ``node``: torch.sparse.mm's SparseSparseMatmulBackward0,
    or MmBackward0 (``@``, torch.mm), whose gradients differ (see _SparseMatmul)."""
    # the structure is the product of the two index patterns (as torch's spgemm builds it), the
    # values those of the dense product there
    for name, matrix in (("mat1_", left), ("mat2_", right)):  # torch's sparse @ sparse kernel's checks
        if matrix.dim() != 2:
            raise RuntimeError(f"Expected {name}.dim() == 2 to be true, but got false.  (Could this error "
                               "message be improved?  If so, please report an enhancement request to PyTorch.)")
    for matrix in (left, right):
        if matrix.dense_dim() != 0:
            raise RuntimeError(f"sparse_sparse_matmul_cpu: scalar values expected, got {matrix.dense_dim()}D values")
    if left.shape[1] != right.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({left.shape[0]}x{left.shape[1]} and "
                           f"{right.shape[0]}x{right.shape[1]})")
    if left.dtype is right.dtype and not (left.dtype.is_floating_point and left.dtype.itemsize >= 4 or left.dtype.is_complex):
        # torch's sparse_matmul kernel has float, double and the complex types only
        raise NotImplementedError(f"\"sparse_matmul\" not implemented for '{_dtype.scalar_name(left.dtype)}'")
    result = _sparse_product_of(left, right)
    if is_recording(left, right):
        recorded = _SparseMatmul.apply(left, right, result=result._data, factors=(left.detach(), right.detach()),
                                       masked=node == "SparseSparseMatmulBackward0")
        _joined_graph(result, name_node(recorded, node))
    return result


def _sparse_product_of(left: SparseCOOTensor, right: SparseCOOTensor) -> SparseCOOTensor:
    """The coalesced sparse product of two 2-D COO tensors, out of the graph: an entry wherever the two
    index patterns meet (even one summing to 0), the values those of the dense product there."""
    xp = array_module(left._data)
    patterns = []
    for operand in (left, right):
        pattern = xp.zeros(tuple(operand.shape), dtype=np.int64)
        pattern[tuple(operand._coo[0])] = 1
        patterns.append(pattern)
    present = (patterns[0] @ patterns[1]) > 0
    with no_grad():
        product = _matmul(Tensor._make(left._data), Tensor._make(right._data))._data
    index = xp.stack(xp.nonzero(present)).astype(np.int64)
    return SparseCOOTensor._from_parts(index, xp.ascontiguousarray(product[tuple(index)]),
                                       (left.shape[0], right.shape[1]), True)


def _projected_onto(grad: SparseCOOTensor, mask: SparseCOOTensor) -> SparseCOOTensor:
    """torch's _sparse_mask_projection: ``grad``'s own entries and coalesced flag, each kept where ``mask``
    has an entry at its index and 0 elsewhere (so entries off the mask's pattern stay, as zeros)."""
    indices, values, coalesced = grad._coo
    xp = array_module(values)
    if not (grad.numel() and grad._nnz() and mask._nnz()):
        empty = xp.zeros((indices.shape[0], 0), dtype=np.int64)
        return SparseCOOTensor._from_parts(empty, xp.zeros((0,) + values.shape[1:], dtype=values.dtype),
                                           tuple(grad.shape), coalesced)
    present = xp.zeros(tuple(mask.shape[:mask.sparse_dim()]), dtype=np.bool_)
    present[tuple(mask._coo[0])] = True
    kept = present[tuple(indices)].reshape((-1,) + (1,) * (values.ndim - 1))
    return SparseCOOTensor._from_parts(indices.copy(), xp.where(kept, values, values.dtype.type(0)),
                                       tuple(grad.shape), coalesced)


def _masked_like(operand: SparseCOOTensor, grad: SparseCOOTensor) -> SparseCOOTensor:
    """torch's sparse_mask_like_grad (accumulate_matches false): the gradient of a sparse operand from the
    coalesced product ``grad``, either projected onto the operand's pattern (``grad``'s entries) or read at
    the operand's entries (sparse_mask), whichever torch's search picks."""
    if operand.is_coalesced() and operand._nnz() < grad._nnz():
        return sparse_mask(grad, operand)
    return _projected_onto(grad, operand)


class _SparseMatmul(Function):
    """sparse @ sparse, recorded over both sparse COO tensors (its edges theirs). Under torch.mm / ``@``
    (MmBackward0) each gradient is the whole product, grad @ b^H and a^H @ grad (entries off the operand's
    pattern too), as torch's mm formulas; under torch.sparse.mm (SparseSparseMatmulBackward0, ``masked``) that
    product is taken to the operand's pattern by torch's sparse_mask_like_grad."""

    node_name = "MmBackward0"
    label = "sparse matmul"
    rule = "da = grad @ b^H, db = a^H @ grad (masked to each operand's pattern under torch.sparse.mm)"
    _array_forward = True

    @staticmethod
    def forward(ctx, first, second, result, factors, masked):
        ctx.factors, ctx.masked = factors, masked
        return result

    @staticmethod
    def backward(ctx, grad):
        first, second = ctx.factors

        def product(left, right, operand):
            left, right = (_conjugated(t).t() if t is not grad else t for t in (left, right))
            if not grad.is_sparse:
                return _matmul(left, right) if not ctx.masked else sparse_mask(_matmul(left, right), operand)
            whole = _sparse_product_of(left, right)
            return _masked_like(operand, whole) if ctx.masked else whole

        return (product(grad, second, first) if ctx.needs_input_grad[0] else None,
                product(first, grad, second) if ctx.needs_input_grad[1] else None)


def spmm(input: Tensor, mat2: Tensor) -> Tensor:
    """torch.spmm: the same product as torch.sparse.mm (torch's keywords input= and mat2=)."""
    if isinstance(input, SparseCOOTensor) and isinstance(mat2, Tensor):
        _check_sparse_product("mm", input, mat2)
    return _matmul(input, mat2)


def sum(input: Tensor, dim=None, dtype=None) -> Tensor:  # noqa: A001 (torch.sparse.sum's name)
    """torch.sparse.sum: the sum of the entries (over ``dim``). Dense when every sparse dim is summed
    over; otherwise sparse and coalesced, with an entry for every index left (even one summing to 0),
    as torch's."""
    if isinstance(input, SparseCOOTensor) and dim is not None:
        _checked_sum_dims(dim, input.dim())
    if isinstance(input, Tensor) and not isinstance(input, SparseCOOTensor):
        # torch's sparse sum coalesces its input (or reads its _indices over a dim): COO only
        if dim is None:
            layout = {sparse_csr: "SparseCsr", sparse_csc: "SparseCsc"}.get(input.layout, "Strided")
            raise RuntimeError(f"coalesce expected sparse coordinate tensor layout but got {layout}")
        backend = "SparseCsrCPU" if isinstance(input, _CompressedTensor) else "CPU"
        raise NotImplementedError(f"Could not run 'aten::_indices' with arguments from the '{backend}' backend. This "
                                  "could be because the operator doesn't exist for this backend, or was omitted during "
                                  "the selective/custom build process (if using custom build).")
    if not isinstance(input, SparseCOOTensor):
        dense = Tensor._make(input._data)
        return dense.to(dtype).sum() if dtype is not None else dense.sum()
    if dim is None:  # torch's _sparse_sum: the coalesced values summed (SumBackward0 over ValuesBackward0)
        coalesced = input.coalesce()
        if dtype is None or not is_recording(coalesced):
            return coalesced.values().sum() if dtype is None else coalesced.values().sum(dtype=dtype)
        # (converting as it sums, torch's gradient at the entries is marked uncoalesced, unless it passes torch's
        # CoalesceBackward0 on its way, which marks it coalesced, or there is at most one entry)
        indices, size = coalesced._coo[0], tuple(input.shape)
        flag = indices.shape[1] <= 1 or coalesced is not input

        def to_entries(grad):
            values = array_module(grad._data).ascontiguousarray(grad._data)
            return SparseCOOTensor._from_parts(indices, values, size, flag, strides_kept=True)

        values = _read_entries(coalesced, coalesced._data[tuple(indices)], to_entries, "ValuesBackward0")
        return values.sum(dtype=dtype)
    source = input if dtype is None else input.to(dtype)  # (torch converts first: a ToCopyBackward0)
    dims = sorted({d + input.dim() if d < 0 else d for d in ((dim,) if isinstance(dim, int) else dim)})
    sparse_dims = input.sparse_dim()
    with no_grad():
        if all(d in dims for d in range(sparse_dims)):
            result = Tensor._make(source._data).sum(dims)
        else:
            indices, values, _ = source.coalesce()._coo
            kept = [d for d in range(sparse_dims) if d not in dims]
            dense_summed = tuple(d - sparse_dims + 1 for d in dims if d >= sparse_dims)
            if dense_summed:
                values = values.sum(axis=dense_summed)
            size = tuple(n for d, n in enumerate(input.shape) if d not in dims)
            result = SparseCOOTensor._from_parts(indices[kept], values, size, False).coalesce()
    if not is_recording(source):
        return result
    # torch's one SparseSumBackward0 over the (converted) input: the gradient spread back over the summed dims,
    # at the input's entries (sparse, marked uncoalesced)
    kept_shape = tuple(1 if d in dims else n for d, n in enumerate(input.shape))
    at_entries = _few_or(source, False)

    def to_entries(grad):
        grad = grad.to_dense() if grad.layout is not _layout_strided else grad
        xp = array_module(grad._data)
        return at_entries(Tensor._make(xp.broadcast_to(grad._data.reshape(kept_shape), tuple(input.shape))))

    recorded = _read_entries(source, result._data, to_entries, "SparseSumBackward0")
    return recorded if result.layout is _layout_strided else _joined_graph(result, recorded)


def _summed_over_dims(tensor: SparseCOOTensor, dim, dtype) -> Tensor:
    """Tensor.sum over ``dim`` of a sparse COO tensor: torch.sparse.sum's value, recorded as torch's SumBackward1
    over the tensor itself, whose backward expands a dense gradient (strided, every element's) and refuses a
    sparse one, as torch's expand does."""
    result = sum(tensor.detach(), dim, dtype)
    if not is_recording(tensor):
        return result
    dims = {d % tensor.dim() for d in ((dim,) if isinstance(dim, int) else dim)}
    kept_shape = tuple(1 if d in dims else n for d, n in enumerate(tensor.shape))

    def to_entries(grad):
        if grad.layout is not _layout_strided:
            raise RuntimeError("expand is unsupported for Sparse tensors")
        xp = array_module(grad._data)
        spread = xp.broadcast_to(grad._data.reshape(kept_shape), tuple(tensor.shape))
        return Tensor._make(xp.array(spread, dtype=tensor._data.dtype))

    recorded = _read_entries(tensor, result._data, to_entries, "SumBackward1")
    return recorded if result.layout is _layout_strided else _joined_graph(result, recorded)


def _few_or(tensor: SparseCOOTensor, coalesced: bool):
    """_coo_entries of ``tensor``, marked coalesced when ``coalesced`` or when it has at most one entry (as torch
    marks the gradients of its sparse sum and softmax kernels)."""
    return _coo_entries(tensor, coalesced or _unique_indices(tensor).shape[1] <= 1)


def _checked_sum_dims(dim, ndim: int) -> None:
    """torch's refusals of torch.sparse.sum's ``dim``: out of range (IndexError), or named twice."""
    seen = set()
    for d in (dim,) if isinstance(dim, int) else dim:
        if not -ndim <= d < ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d})")
        if d % ndim in seen:
            raise RuntimeError(f"dim {d % ndim} appears multiple times in the list of dims")
        seen.add(d % ndim)


def _broadcasts(shape, other_shape) -> bool:
    try:
        np.broadcast_shapes(tuple(shape), tuple(other_shape))
    except ValueError:
        return False
    return True


class _RefusedProduct(Function):
    """sparse * a dense tensor of more dims: torch's backward refuses, multiplying the gradient (sparse,
    of the broadcast shape) by the sparse operand (their sparse dims differ) or, when only the sparse
    operand requires grad, viewing the sparse gradient."""

    node_name = "MulBackward0"
    label = "mul"
    rule = "refused: torch's sparse intersection needs equal sparse dims"
    _array_forward = True

    @staticmethod
    def forward(ctx, sparse, dense, result):
        ctx.dense_grad = ctx.needs_input_grad[1]
        return result

    @staticmethod
    def backward(ctx, grad):
        if not ctx.dense_grad:  # (the sparse operand's gradient alone: torch views the dense factor first)
            raise NotImplementedError(_not_on_sparse("view"))
        raise RuntimeError("sparse_binary_op_intersection_cpu(): expects sparse inputs with equal dimensionality, "
                           "number of sparse dimensions, and shape of sparse dimensions")


def _broadcast_product(self: SparseCOOTensor, other: Tensor) -> SparseCOOTensor:
    """sparse * a dense tensor of more dims, as torch's: sparse, of the broadcast shape, its leading
    new dims sparse ones; the coalesced entries repeated for every index of the new dims (in order,
    the new dims outermost; a size-1 dim of the sparse tensor keeps its index 0), each times the
    dense factor there; coalesced."""
    out = np.broadcast_shapes(tuple(self.shape), tuple(other.shape))
    indices, values, _ = self.detach().coalesce()._coo
    xp = array_module(values)
    lead = out[:len(out) - self.dim()]
    count = math.prod(lead)
    grid = xp.stack(xp.unravel_index(xp.arange(count), lead)).astype(np.int64)
    all_indices = xp.concatenate([xp.repeat(grid, indices.shape[1], axis=1), xp.tile(indices, (1, count))])
    repeated = xp.tile(values, (count,) + (1,) * (values.ndim - 1))
    factors = xp.broadcast_to(other._data, out)[tuple(all_indices)]
    product = (Tensor._make(repeated) * Tensor._make(factors))._data
    result = SparseCOOTensor._from_parts(all_indices, product, out, True)
    if is_recording(self, other):
        _joined_graph(result, _RefusedProduct.apply(self, other, result=product))
    return result


def _intersection_product(self: SparseCOOTensor, other: SparseCOOTensor) -> SparseCOOTensor:
    """sparse * sparse as torch's: of two coalesced tensors, an entry wherever both have one, the
    product of the two values there, coalesced (indices narrowed from room for the fewer entries, as
    torch's). Otherwise the entries of the uncoalesced one (of the one with fewer entries when both are,
    ``other`` on a tie), each times the other's summed value at its index (0 where it has none),
    uncoalesced."""
    if self.device.type != other.device.type:  # torch's CUDA kernel: its out is made on self's device
        raise RuntimeError("mul: expected 'out' to be CUDA, but got CPU" if self.device.type == "cpu"
                           else "mul: expected 'other' to be CUDA, but got CPU")
    if tuple(self.shape) != tuple(other.shape):
        raise RuntimeError(f"mul: expected 'self' and 'other' to have same sizes, but {list(self.shape)} != "
                           f"{list(other.shape)}")
    if not (self.is_coalesced() and other.is_coalesced()):
        if self.is_coalesced() or (not other.is_coalesced() and other._nnz() <= self._nnz()):
            kept, looked_up = other, self
        else:
            kept, looked_up = self, other
        indices, values, _ = kept._coo
        factors = looked_up._data[tuple(indices)]  # the dense backing holds the summed values
        product = (Tensor._make(values) * Tensor._make(factors))._data
        return SparseCOOTensor._from_parts(indices.copy(), product, tuple(self.shape), False)
    left, right = self.detach().coalesce(), other.detach().coalesce()
    xp = array_module(left._data)
    shape = tuple(self.shape[:self.sparse_dim()])
    keys = [xp.ravel_multi_index(tuple(t._coo[0]), shape) if t._nnz() else xp.zeros(0, dtype=np.int64)
            for t in (left, right)]
    common, at_left, at_right = xp.intersect1d(keys[0], keys[1], assume_unique=True, return_indices=True)
    values = (Tensor._make(left._coo[1][at_left]) * Tensor._make(right._coo[1][at_right]))._data
    # torch's kernel fills room for the fewer entries and narrows it to those both have: indices with fewer
    # columns than that room are not contiguous, as torch's
    room = xp.empty((len(shape), min(left._nnz(), right._nnz())), dtype=np.int64)
    indices = room[:, :common.size]
    if common.size:
        xp.copyto(indices, xp.stack(xp.unravel_index(common, shape)))
    return SparseCOOTensor._from_parts(indices, values, tuple(self.shape), True, strides_kept=True)


def _dtype_category(dtype) -> int:
    """bool < integers < floating < complex: a result of a higher category cannot be cast into a lower."""
    return 3 if dtype.is_complex else 2 if dtype.is_floating_point else 0 if dtype is _dtype.bool else 1


_NO_CADD_SPARSE = tuple(getattr(_dtype, name) for name in ("bool", "float16", "uint16", "uint32", "uint64")
                        if hasattr(_dtype, name))


def _add_sparse(self: SparseCOOTensor, other: SparseCOOTensor, alpha) -> SparseCOOTensor:
    """torch's add_out_sparse_contiguous: one walk down both index lists in step, taking the
    lexicographically smaller entry (``self``'s first on a tie, the two summed), so the result is
    sorted when both inputs are and marked coalesced only then."""
    if self.device.type != other.device.type:  # torch dispatches to the CUDA kernel, which wants both there
        which = "self" if self.device.type == "cpu" else "other"
        raise RuntimeError(f"add: expected '{which}' to be CUDA, but got CPU")
    if self.sparse_dim() != other.sparse_dim():
        raise RuntimeError(f"add: expected 'self' and 'other' to have same density, but 'self' has "
                           f"{self.sparse_dim()} sparse dimensions while 'other' has {other.sparse_dim()} "
                           "sparse dimensions")
    if tuple(self.shape) != tuple(other.shape):
        raise RuntimeError(f"add: expected sizes of 'self' and 'other' to match, but {list(self.shape)} != "
                           f"{list(other.shape)}")
    # the result's dtype is the operands' (alpha is scaled in it); torch's cadd_sparse kernel, which
    # runs when both have entries, has no bool, half or unsigned-beyond-uint8 version
    dtype = _dtype.promote_types(self.dtype, other.dtype)
    if self._nnz() and other._nnz() and dtype in _NO_CADD_SPARSE:
        raise NotImplementedError(f"\"cadd_sparse\" not implemented for '{_dtype.scalar_name(dtype)}'")
    scaled = Tensor._make(other._coo[1]) * alpha
    self_values = Tensor._make(self._coo[1]).to(dtype)._data
    other_values = scaled.to(dtype)._data
    xp = array_module(self_values)
    shape = tuple(self.shape[:self.sparse_dim()])
    self_keys = _host_list(xp.ravel_multi_index(tuple(self._coo[0]), shape)) if self._nnz() else []
    other_keys = _host_list(xp.ravel_multi_index(tuple(other._coo[0]), shape)) if other._nnz() else []
    take_self, take_other, out = [], [], 0   # output slot of each input entry
    i = j = 0
    while i < len(self_keys) or j < len(other_keys):
        left = self_keys[i] if i < len(self_keys) else None
        right = other_keys[j] if j < len(other_keys) else None
        if right is None or (left is not None and left <= right):
            take_self.append(out)
            i += 1
        if left is None or (right is not None and right <= left):
            take_other.append(out)
            j += 1
        out += 1
    keys = xp.zeros(out, dtype=np.int64)
    values = xp.zeros((out,) + self_values.shape[1:], dtype=self_values.dtype)
    if take_self:
        keys[xp.asarray(take_self)] = xp.asarray(self_keys)
        values[xp.asarray(take_self)] = self_values
    if take_other:
        keys[xp.asarray(take_other)] = xp.asarray(other_keys)
        values[xp.asarray(take_other)] += other_values
    # torch merges into index room for both operands' entries and narrows it to those written: strides
    # (nnz + other's nnz, 1)
    room = xp.zeros((len(shape), len(self_keys) + len(other_keys)), dtype=np.int64)
    if out:
        room[:, :out] = xp.stack(xp.unravel_index(keys, shape))
    return SparseCOOTensor._from_parts(room[:, :out], values, tuple(self.shape),
                                       self.is_coalesced() and other.is_coalesced(), strides_kept=True)


def _softmax_over_entries(input: Tensor, dim: int, dtype, name: str) -> SparseCOOTensor:
    """torch.sparse.softmax / log_softmax: over ``dim`` among the specified entries only (the
    unspecified ones count as -inf), a coalesced sparse tensor with input's indices."""
    if isinstance(input, _CompressedTensor):
        raise _no_compressed_kernel(f"_sparse_{name}")
    if not isinstance(input, SparseCOOTensor):
        raise NotImplementedError(f"Could not run 'aten::_sparse_{name}' with arguments from the 'CPU' backend.")
    source = input if dtype is None else input.to(dtype)  # (torch converts first: a ToCopyBackward0)
    with no_grad():
        coalesced = source.coalesce()
        indices = coalesced._coo[0]
        xp = array_module(indices)
        specified = xp.zeros(tuple(input.shape[:indices.shape[0]]), dtype=bool)
        specified[tuple(indices)] = True
        specified = Tensor._make(specified.reshape(specified.shape + (1,) * coalesced.dense_dim()))
        reduce = dense_softmax if name == "softmax" else dense_log_softmax
        entries = where(specified, reduce(where(specified, Tensor._make(coalesced._data), float("-inf")), dim), 0.0)
    result = SparseCOOTensor._from_parts(indices, entries._data[tuple(indices)], tuple(input.shape), True)
    if not is_recording(source):
        return result
    at_entries = _few_or(source, False)

    def to_entries(grad):
        # over the entries only: softmax's d = y (g - sum(g y)), log_softmax's d = g - softmax(x) sum(g)
        grad = where(specified, grad.to_dense() if grad.layout is not _layout_strided else grad, 0.0)
        if name == "softmax":
            return at_entries(entries * (grad - (grad * entries).sum(dim, keepdim=True)))
        return at_entries(grad - where(specified, entries.exp(), 0.0) * grad.sum(dim, keepdim=True))

    node = "SparseSoftmaxBackward0" if name == "softmax" else "SparseLogSoftmaxBackward0"
    return _joined_graph(result, _read_entries(source, entries._data, to_entries, node))


def _without_derivative(result: SparseCOOTensor, *operands: Tensor, kernel: str) -> SparseCOOTensor:
    """``result`` in the graph of those of ``operands`` that require grad, in order, each an edge of
    its own (torch's NotImplemented node has one edge per such operand, sparse or strided, and none
    for the others); its backward raises torch's error, so no gradient ever reaches them."""
    if is_recording(*operands):
        edges = tuple(operand for operand in operands if operand._requires_grad)
        recorded = _NoDerivative.apply(*edges, result=result._data, kernel=f"aten::{kernel}")
        _joined_graph(result, name_node(recorded, "torch::autograd::NotImplemented"))
    return result


def hspmm(mat1: Tensor, mat2: Tensor) -> SparseCOOTensor:
    """torch.hspmm: a sparse COO matrix (m × k) times a strided matrix (k × n), a hybrid sparse result
    (one sparse dim, one dense) holding a row for every row of ``mat1`` that has entries, in order; not
    differentiable (torch's backward refuses)."""
    if not isinstance(mat1, SparseCOOTensor):
        raise NotImplementedError(_refused_on_strided("hspmm"))
    if isinstance(mat2, SparseCOOTensor):
        raise RuntimeError("addmm_sparse_dense: expected strided result tensor, got tensor with layout Sparse")
    if mat1.sparse_dim() != 2:
        raise RuntimeError(f"hspmm: Argument #2: matrices expected, got {mat1.sparse_dim()}D tensor")
    if mat2.dim() != 2:
        raise RuntimeError(f"hspmm: Argument #3: matrices expected, got {mat2.dim()}D tensor")
    if mat2.shape[0] != mat1.shape[1]:
        raise RuntimeError(f"hspmm: Argument #3: Expected dim 0 size {mat1.shape[1]}, got {mat2.shape[0]}")
    if mat2.dtype is not mat1.dtype:
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(mat1.dtype)} but found "
                           f"{_dtype.scalar_name(mat2.dtype)}")
    if mat1.dtype is _dtype.bool:
        raise NotImplementedError("\"addmm_sparse_dense\" not implemented for 'Bool'")
    xp = array_module(mat1._data)
    rows = xp.unique(mat1._coo[0][0]).astype(np.int64)
    # (NumPy's bfloat16 product is float32: torch's stays in the operands' dtype)
    values = xp.ascontiguousarray((mat1._data[rows] @ mat2._data).astype(mat1._data.dtype, copy=False))
    # (marked coalesced as torch's factory marks it: when it has fewer than two rows)
    result = SparseCOOTensor._from_parts(rows[None], values, (mat1.shape[0], mat2.shape[1]), rows.shape[0] < 2)
    return _without_derivative(result, mat1, mat2, kernel="hspmm")


def sspaddmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> SparseCOOTensor:
    """torch.sspaddmm: ``beta * input + alpha * (mat1 @ mat2)`` for sparse COO ``input`` (n × p) and
    ``mat1`` (n × m) and a strided ``mat2`` (m × p), sparse: ``input``'s entries times ``beta`` as they are,
    then a full row of the product for each row of ``mat1`` that has entries, uncoalesced; not
    differentiable (torch's backward refuses)."""
    if not isinstance(mat1, SparseCOOTensor):
        raise RuntimeError("tensor.sspaddmm(...) can only be called on sparse tensors")
    if isinstance(mat2, SparseCOOTensor):
        raise RuntimeError("sspaddmm: expected 'mat2' to have strided layout, got 'mat2' with layout Sparse")
    if not isinstance(input, SparseCOOTensor):
        raise RuntimeError("sspaddmm: expected 'self' to have sparse layout, got 'self' with layout Strided")
    for argument, ndim in ((2, mat1.sparse_dim()), (3, mat2.dim())):
        if ndim != 2:
            raise RuntimeError(f"sspaddmm: Argument #{argument}: matrices expected, got {ndim}D tensor")
    for argument, dim, size, expected in ((3, 0, mat2.shape[0], mat1.shape[1]), (1, 0, input.shape[0], mat1.shape[0]),
                                          (1, 1, input.shape[1] if input.dim() > 1 else None, mat2.shape[1])):
        if size != expected:
            raise RuntimeError(f"sspaddmm: Argument #{argument}: Expected dim {dim} size {expected}, got {size}")
    for operand in (mat2, input):
        if operand.dtype is not mat1.dtype:
            raise RuntimeError(f"expected scalar type {_dtype.scalar_name(mat1.dtype)} but found "
                               f"{_dtype.scalar_name(operand.dtype)}")
    if mat1.dtype in (_dtype.float16, _dtype.bfloat16):  # outside sspmm's dispatch
        raise NotImplementedError(f"\"sspmm\" not implemented for '{_dtype.scalar_name(mat1.dtype)}'")
    xp = array_module(mat1._data)
    indices, values, _ = mat1.detach().coalesce()._coo
    rows, row_of_entry = xp.unique(indices[0], return_inverse=True)
    columns = mat2.shape[1]
    dtype = mat1._data.dtype
    # torch's kernel adds (alpha * value) * mat2's row into the result's row, entry by entry in order
    product = xp.zeros((rows.shape[0], columns), dtype=dtype)
    scaled = (values * xp.asarray(alpha, dtype=dtype)).astype(dtype, copy=False)
    ufunc_at(xp, "add", product, row_of_entry, (scaled[:, None] * mat2._data[indices[1]]).astype(dtype, copy=False))
    kept_indices, kept_values, _ = input._coo
    product_indices = xp.stack([xp.repeat(rows, columns), xp.tile(xp.arange(columns), rows.shape[0])]).astype(np.int64)
    all_indices = xp.concatenate([kept_indices, product_indices], axis=1)
    # (marked coalesced as torch's: when it has fewer than two entries)
    result = SparseCOOTensor._from_parts(
        all_indices,
        xp.concatenate([(kept_values * xp.asarray(beta, dtype=dtype)).astype(dtype, copy=False), product.reshape(-1)]),
        tuple(input.shape), all_indices.shape[1] < 2)
    return _without_derivative(result, input, mat1, mat2, kernel="sspaddmm")


def smm(input: Tensor, mat2: Tensor) -> SparseCOOTensor:
    """torch.smm: a sparse COO matrix times a strided one, sparse (torch's sspaddmm of an empty sparse
    tensor): a full row of the product for each row of ``input`` that has entries."""
    if not isinstance(input, SparseCOOTensor):
        raise RuntimeError("tensor.sspaddmm(...) can only be called on sparse tensors")
    if input.dtype is _dtype.bool:  # (sspaddmm itself fails on bool scaling its alpha first)
        raise NotImplementedError("\"sspmm\" not implemented for 'Bool'")
    empty = SparseCOOTensor._from_parts(np.zeros((2, 0), dtype=np.int64), input._data[:0, 0].copy(),
                                        (input.shape[0], mat2.shape[-1] if mat2.dim() else 0), True)
    return sspaddmm(empty, input, mat2, beta=0)


_RESIZE_ADVICE = ("on a non-empty sparse tensor is not supported.\nYou could try the following options:\n1. If you need "
                  "an empty sparse tensor of this size, call `x = torch.sparse_coo_tensor(size)`.\n2. If you need to "
                  "resize this tensor, you have the following options:\n    1. For both sparse and dense dimensions, "
                  "keep the number of them constant and the size of them non-shrinking, and then try the same call "
                  "again.\n    2. Or, create a new sparse tensor with the correct indices and values from this sparse "
                  "tensor.")


def _sparse_resize_(self, size, sparse_dim: int, dense_dim: int):
    """Tensor.sparse_resize_: the tensor given ``size`` with ``sparse_dim`` sparse and ``dense_dim``
    dense dims, in place; one with entries may only grow its sizes, keeping both counts (torch's words
    otherwise). The entries are kept; a grown dense dim reads the values' memory flat, as torch's
    (its new tail zeros, where torch's is uninitialised)."""
    if not isinstance(self, SparseCOOTensor):
        raise NotImplementedError(_refused_on_strided("sparse_resize_"))
    size = [int(length) for length in size]
    if len(size) != sparse_dim + dense_dim:
        raise RuntimeError(f"'len(size) == sparse_dim + dense_dim' is not satisfied: len(size) = {len(size)}, "
                           f"sparse_dim = {sparse_dim}, dense_dim = {dense_dim}")
    indices, values, coalesced = self._coo
    old_sparse, old_dense = self.sparse_dim(), self.dense_dim()
    old_size = list(self.shape)
    if indices.shape[1] > 0:
        for word, old, new in (("sparse", old_sparse, sparse_dim), ("dense", old_dense, dense_dim)):
            if old != new:
                raise RuntimeError(f"changing the number of {word} dimensions (from {old} to {new}) {_RESIZE_ADVICE}")
        for word, old, new in (("sparse", old_size[:old_sparse], size[:sparse_dim]),
                               ("dense", old_size[old_sparse:], size[sparse_dim:])):
            if any(b < a for a, b in zip(old, new)):
                raise RuntimeError(f"shrinking the size of {word} dimensions (from {old} to {new}) {_RESIZE_ADVICE}")
    if self.requires_grad and self.grad_fn is None and is_grad_enabled():
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    xp = array_module(values)
    if indices.shape[1] > 0:
        # torch resizes the values' storage: the old values keep their places in memory, flat
        grown = xp.zeros(values.shape[0] * math.prod(size[sparse_dim:]), dtype=values.dtype)
        grown[:values.size] = values.reshape(-1)
        values = grown.reshape((values.shape[0], *size[sparse_dim:]))
    else:
        indices = xp.zeros((sparse_dim, 0), dtype=np.int64)
        values = xp.zeros((0, *size[sparse_dim:]), dtype=values.dtype)
    resized = SparseCOOTensor._from_parts(indices, values, tuple(size), coalesced)
    self._data = resized._data
    self._coo = resized._coo
    self._bump_version()
    return self


def spdiags(diagonals: Tensor, offsets: Tensor, shape: tuple, layout=None) -> Tensor:
    """torch.sparse.spdiags: a (rows × cols) sparse matrix whose diagonal ``offsets[i]`` (0 the main, > 0
    above, < 0 below) holds ``diagonals[i]`` read by column, as scipy.sparse.spdiags; COO (not coalesced)
    unless ``layout`` is sparse_csr or sparse_csc; not differentiable (torch's backward refuses)."""
    diagonals_2d = diagonals.unsqueeze(0) if diagonals.dim() == 1 else diagonals
    if diagonals_2d.dim() != 2:
        raise RuntimeError("Diagonals must be vector or matrix")
    if len(shape) != 2:
        raise RuntimeError("Output shape must be 2d")
    offsets_1d = offsets.unsqueeze(0) if offsets.dim() == 0 else offsets
    if offsets_1d.dim() != 1:
        raise RuntimeError("Offsets must be scalar or vector")
    if diagonals_2d.shape[0] != offsets_1d.shape[0]:
        raise RuntimeError(f"Number of diagonals ({diagonals_2d.shape[0]}) does not match the number of offsets "
                           f"({offsets_1d.shape[0]})")
    if layout not in (None, sparse_coo, sparse_csr, sparse_csc):
        names = {"strided": "Strided", "sparse_bsr": "SparseBsr", "sparse_bsc": "SparseBsc", "jagged": "Jagged"}
        raise RuntimeError("Only output layouts (Sparse, SparseCsc, SparseCsr) are supported, got "
                           f"{names.get(getattr(layout, '_name', ''), layout)}")
    if offsets_1d.dtype is not _dtype.int64:
        raise RuntimeError(f"Offset Tensor must have dtype Long but got {_dtype.scalar_name(offsets_1d.dtype)}")
    offset_list = [int(offset) for offset in _host_list(offsets_1d._data)]
    if len(set(offset_list)) != len(offset_list):
        raise RuntimeError("Offset tensor contains duplicate values")
    rows_out, cols_out = int(shape[0]), int(shape[1])
    columns = builtins.min(cols_out, diagonals_2d.shape[1])
    xp = array_module(diagonals_2d._data)
    counts = [builtins.min(rows_out + offset, columns) if offset < 0 else builtins.min(columns - offset, rows_out)
              for offset in offset_list]
    if builtins.sum(counts) < 0:  # torch sizes its indices by the unclamped total of a diagonal beyond the shape
        raise RuntimeError(f"Trying to create tensor with negative dimension {builtins.sum(counts)}: "
                           f"[2, {builtins.sum(counts)}]")
    row_parts, col_parts, value_parts = [], [], []
    for index, offset in enumerate(offset_list):
        # scipy's layout: the entry in column j of the diagonal is diagonals[i, j]
        count = builtins.max(counts[index], 0)
        first_col = builtins.max(offset, 0)
        cols = xp.arange(first_col, first_col + count, dtype=np.int64)
        row_parts.append(cols - offset)
        col_parts.append(cols)
        value_parts.append(diagonals_2d._data[index, first_col:first_col + count])
    indices = xp.stack([xp.concatenate(row_parts or [xp.zeros(0, np.int64)]),
                        xp.concatenate(col_parts or [xp.zeros(0, np.int64)])])
    values = xp.ascontiguousarray(xp.concatenate(value_parts) if value_parts else diagonals_2d._data[:0, 0])
    result = sparse_coo_tensor(Tensor._make(indices), Tensor._make(values), (rows_out, cols_out), check_invariants=False)
    result = _without_derivative(result, diagonals, offsets, kernel="_spdiags")
    if layout is sparse_csr:
        return to_sparse_csr(result)
    if layout is sparse_csc:
        return to_sparse_csc(result)
    return result


def softmax(input: Tensor, dim: int, *, dtype=None) -> SparseCOOTensor:
    """torch.sparse.softmax: softmax over ``dim`` among the specified entries of a sparse COO tensor
    (the unspecified ones ignored, as if -inf); the result keeps input's (coalesced) indices."""
    return _softmax_over_entries(input, dim, dtype, "softmax")


def log_softmax(input: Tensor, dim: int, *, dtype=None) -> SparseCOOTensor:
    """torch.sparse.log_softmax: log of torch.sparse.softmax, computed stably."""
    return _softmax_over_entries(input, dim, dtype, "log_softmax")


class _SparseLegacyType(type):
    """torch.sparse.FloatTensor and its siblings, the legacy constructors of pygcn-era scripts:
    ``FloatTensor(indices, values[, size])`` wraps ``values`` as they are (torch keeps their dtype
    whatever the type's name), ``FloatTensor(*sizes)`` is an empty sparse tensor, and
    ``isinstance(x, FloatTensor)`` asks for a sparse tensor of that dtype on the CPU."""

    dtype: _dtype.dtype

    def __instancecheck__(cls, instance) -> bool:
        return isinstance(instance, SparseCOOTensor) and instance.dtype is cls.dtype and not instance.is_cuda

    def __repr__(cls) -> str:
        return f"<class 'chainrule.sparse.{cls.__qualname__}'>"

    def __call__(cls, *args, device=None) -> SparseCOOTensor:
        name = f"chainrule.sparse.{cls.__qualname__}"
        if len(args) in (2, 3) and isinstance(args[0], Tensor) and isinstance(args[1], Tensor):
            size = args[2] if len(args) == 3 else None
            if size is not None and not (isinstance(size, (tuple, list))
                                         and all(isinstance(s, numbers.Integral) for s in size)):
                raise TypeError(f"{name}(indices, values, size): size must be a tuple of ints, got {size!r}")
            _warn_legacy_sparse(len(args))
            return sparse_coo_tensor(args[0], args[1], size, device=device,
                                     check_invariants=check_sparse_tensor_invariants.is_enabled())
        sizes = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list, Size)) else args
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in sizes):
            raise TypeError(f"{name}(): expected (indices: Tensor, values: Tensor[, size: tuple of ints]) or sizes, "
                            f"got ({', '.join(type(a).__name__ for a in args)})")
        sizes = tuple(int(s) for s in sizes) or (0,)  # torch: no arguments is an empty 1-d tensor
        if any(s < 0 for s in sizes):
            raise RuntimeError(f"{name}(): negative dimension {min(sizes)} in size {list(sizes)}")
        _warn_legacy_sparse(1 if args else 0)
        no_entries = np.zeros((len(sizes), 0), dtype=np.int64)
        return sparse_coo_tensor(no_entries, Tensor._make(np.zeros(0, dtype=cls.dtype.np)), sizes,
                                 device=device, check_invariants=False)


# torch's TORCH_WARN_ONCE texts (torch/csrc/utils/tensor_new.cpp), one per signature and whatever
# the type's name, by the number of positional arguments: none, sizes, (indices, values), and a size
_LEGACY_SPARSE_WARNINGS = {
    0: ("torch.sparse.SparseTensor() is deprecated.  Please use torch.sparse_coo_tensor((0,), dtype=).", 623),
    1: ("torch.sparse.SparseTensor(shape, *, device=) is deprecated.  Please use "
        "torch.sparse_coo_tensor(shape, dtype=, device=).", 684),
    2: ("torch.sparse.SparseTensor(indices, values, *, device=) is deprecated.  Please use "
        "torch.sparse_coo_tensor(indices, values, dtype=, device=).", 641),
    3: ("torch.sparse.SparseTensor(indices, values, shape, *, device=) is deprecated.  Please use "
        "torch.sparse_coo_tensor(indices, values, shape, dtype=, device=).", 653),
}


def _warn_legacy_sparse(signature: int) -> None:
    text, line = _LEGACY_SPARSE_WARNINGS[signature]
    _config.warn_once(f"{text} (Triggered internally at /__w/pytorch/pytorch/torch/csrc/utils/tensor_new.cpp:{line}.)")


def _sparse_legacy_type(name: str, dtype: _dtype.dtype) -> _SparseLegacyType:
    return _SparseLegacyType(name, (), {"dtype": dtype, "__module__": "chainrule.sparse", "__qualname__": name,
                                        "__doc__": f"chainrule.sparse.{name}: sparse COO tensors of dtype {dtype!r} "
                                                   "(torch's legacy type)"})


FloatTensor = _sparse_legacy_type("FloatTensor", _dtype.float32)
DoubleTensor = _sparse_legacy_type("DoubleTensor", _dtype.float64)
HalfTensor = _sparse_legacy_type("HalfTensor", _dtype.float16)
ByteTensor = _sparse_legacy_type("ByteTensor", _dtype.uint8)
CharTensor = _sparse_legacy_type("CharTensor", _dtype.int8)
ShortTensor = _sparse_legacy_type("ShortTensor", _dtype.int16)
IntTensor = _sparse_legacy_type("IntTensor", _dtype.int32)
LongTensor = _sparse_legacy_type("LongTensor", _dtype.int64)

for _compressed in (SparseCSRTensor, SparseCSCTensor):
    _compressed.__torch_function__ = classmethod(_compressed_torch_function)
    _torch_function.PLAIN.discard(_compressed)
    _torch_function.INTERNAL.add(_compressed)
