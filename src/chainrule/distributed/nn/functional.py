"""torch.distributed.nn.functional: collectives recorded in the graph, so the gradient of a
loss on every rank reaches every rank's inputs. Each returns new tensors and leaves its
arguments unchanged; each backward is the adjoint collective, as torch's."""

from __future__ import annotations

from ... import _backend
from ...ops.collective import AllReduceSum, LinearExchange
from ...ops.shape import stack
from ...tensor import Tensor
from .. import distributed_c10d as c10d
from .._all_to_all import all_to_all_single as _all_to_all_single
from ..distributed_c10d import ReduceOp

__all__ = ["all_reduce", "all_gather", "all_to_all", "all_to_all_single", "broadcast", "gather", "reduce",
           "reduce_scatter", "scatter"]


def _staged(array) -> Tensor:
    """A tensor over a private contiguous copy of ``array``, for a collective to work in."""
    return Tensor._make(array.copy())


def _empty_like(array, shape) -> Tensor:
    xp = _backend.array_module(array)
    return Tensor._make(xp.zeros(shape, array.dtype))


def _sum_over_ranks(group):
    def sum_over_ranks(array):
        staged = _staged(array)
        c10d.all_reduce(staged, op=ReduceOp.SUM, group=group)
        return staged._data
    return sum_over_ranks


def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None) -> Tensor:
    """A new tensor holding ``tensor`` reduced over the group (SUM or AVG), differentiable:
    the gradient is the same reduction of the gradients. ``tensor`` itself is not changed."""
    if op not in (ReduceOp.SUM, ReduceOp.AVG):
        raise RuntimeError(f"distributed.nn.all_reduce: only ReduceOp.SUM and ReduceOp.AVG are differentiable, "
                           f"got {op}")
    total = AllReduceSum.apply(tensor, sum_over_ranks=_sum_over_ranks(group))
    return total / c10d.get_world_size(group) if op is ReduceOp.AVG else total


def _gather_stacked(group):
    def gather(array):
        out = _empty_like(array, (c10d.get_world_size(group),) + tuple(array.shape))
        c10d.all_gather_into_tensor(out, _staged(array), group=group)
        return out._data
    return gather


def all_gather(tensor: Tensor, group=None) -> tuple[Tensor, ...]:
    """Every rank's ``tensor``, as a tuple indexed by group rank; the gradient of rank i's input
    is the sum over ranks of the gradients of entry i (a reduce-scatter)."""
    stacked = LinearExchange.apply(tensor, exchange=_gather_stacked(group), adjoint=_reduce_scatter_stacked(ReduceOp.SUM, group))
    return tuple(stacked.unbind(0))


def _reduce_scatter_stacked(op, group):
    def reduce_scatter(array):
        out = _empty_like(array, tuple(array.shape[1:]))
        c10d.reduce_scatter_tensor(out, _staged(array), op=op, group=group)
        return out._data
    return reduce_scatter


def reduce_scatter(output: Tensor, input_list, op=ReduceOp.SUM, group=None) -> Tensor:
    """A new tensor shaped like ``output`` holding ``input_list[rank]`` reduced over the ranks;
    the gradient of ``input_list[i]`` is rank i's output gradient (an all-gather, whatever the
    op: torch's rule, exact for SUM)."""
    stacked = stack(list(input_list))
    if tuple(stacked.shape[1:]) != tuple(output.shape):
        raise RuntimeError(f"distributed.nn.reduce_scatter: input_list entries of shape {tuple(stacked.shape[1:])} "
                           f"must be shaped like output {tuple(output.shape)}")
    return LinearExchange.apply(stacked, exchange=_reduce_scatter_stacked(op, group),
                                adjoint=_gather_stacked(group))


def _gather_to(dst, group):
    """(shape) -> (world, *shape): every rank's array on ``dst``, zeros elsewhere."""
    def gather(array):
        rows = [_empty_like(array, tuple(array.shape)) for _ in range(c10d.get_world_size(group))]
        mine = _staged(array)
        c10d.gather(mine, rows if c10d.get_rank() == dst else None, dst=dst, group=group)
        xp = _backend.array_module(array)
        return xp.stack([row._data for row in rows])
    return gather


def _scatter_from(src, group):
    """(world, *shape) -> (shape): row i of ``src``'s array to rank i."""
    def scatter(array):
        out = _empty_like(array, tuple(array.shape[1:]))
        rows = [_staged(row) for row in array] if c10d.get_rank() == src else None
        c10d.scatter(out, rows, src=src, group=group)
        return out._data
    return scatter


def gather(tensor: Tensor, dst: int = 0, group=None) -> tuple[Tensor, ...]:
    """Every rank's ``tensor`` on rank ``dst`` as a tuple (zeros on the other ranks); the
    gradient of rank i's input is ``dst``'s gradient of entry i (a scatter)."""
    stacked = LinearExchange.apply(tensor, exchange=_gather_to(dst, group), adjoint=_scatter_from(dst, group))
    return tuple(stacked.unbind(0))


def scatter(tensors, src: int = 0, group=None) -> Tensor:
    """Rank ``src``'s ``tensors[i]`` on rank i (every rank passes tensors of the same shapes);
    the gradients of ``src``'s tensors are gathered from the ranks, the others' are zeros."""
    stacked = stack(list(tensors))
    return LinearExchange.apply(stacked, exchange=_scatter_from(src, group), adjoint=_gather_to(src, group))


def reduce(tensor: Tensor, dst: int, op=ReduceOp.SUM, group=None) -> Tensor:
    """``tensor`` reduced over the ranks on rank ``dst`` (a copy of the rank's own input
    elsewhere); the gradient is ``dst``'s output gradient broadcast to every rank, as torch's."""
    def reduce_to_destination(array):
        out = _staged(array)
        c10d.reduce(out, dst=dst, op=op, group=group)
        return out._data

    def copy_from_destination(array):
        out = _staged(array)
        c10d.broadcast(out, src=dst, group=group)
        return out._data

    return LinearExchange.apply(tensor, exchange=reduce_to_destination, adjoint=copy_from_destination)


def all_to_all(output_tensor_list, input_tensor_list, group=None) -> tuple[Tensor, ...]:
    """``input_tensor_list[i]`` to rank i; returns what each rank sent here, shaped like
    ``output_tensor_list`` (all one shape, as gloo requires); the gradient goes back the same way."""
    shapes = {tuple(t.shape) for t in (*output_tensor_list, *input_tensor_list)}
    if len(shapes) != 1:
        raise RuntimeError(f"distributed.nn.all_to_all: every tensor must have one shape, got {sorted(shapes)}")
    stacked = stack(list(input_tensor_list))
    shape = tuple(stacked.shape)
    # one block per rank along dim 0: sending block i to rank i is its own adjoint (a transpose)
    exchange = _exchange_rows(group, shape, None, None)
    return tuple(LinearExchange.apply(stacked, exchange=exchange, adjoint=exchange).unbind(0))


def _exchange_rows(group, out_shape, send_splits, receive_splits):
    def exchange(array):
        out = _empty_like(array, out_shape)
        _all_to_all_single(out, _staged(array), receive_splits, send_splits, group=group)
        return out._data
    return exchange


def all_to_all_single(output: Tensor, input: Tensor, output_split_sizes=None, input_split_sizes=None,
                      group=None) -> Tensor:
    """A new tensor shaped like ``output`` receiving, along dim 0, each rank's part of its
    ``input`` for this rank; the gradient flows back through the reverse all-to-all."""
    there = _exchange_rows(group, tuple(output.shape), input_split_sizes, output_split_sizes)
    back = _exchange_rows(group, tuple(input.shape), output_split_sizes, input_split_sizes)
    return LinearExchange.apply(input, exchange=there, adjoint=back)


def broadcast(tensor: Tensor, src: int, group=None) -> Tensor:
    """Rank ``src``'s ``tensor`` on every rank; the gradient of ``src``'s input is the sum of
    every rank's output gradient, the other ranks' inputs get zeros."""
    def copy_from_source(array):
        out = _staged(array)
        c10d.broadcast(out, src=src, group=group)
        return out._data

    def sum_to_source(array):
        out = _staged(array)
        c10d.reduce(out, dst=src, op=ReduceOp.SUM, group=group)
        if c10d.get_rank() != src:
            out._data[...] = 0
        return out._data

    return LinearExchange.apply(tensor, exchange=copy_from_source, adjoint=sum_to_source)
