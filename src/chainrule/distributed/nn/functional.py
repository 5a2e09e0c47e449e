"""torch.distributed.nn.functional: collectives recorded in the graph, so the gradient of a
loss on every rank reaches every rank's inputs."""

from __future__ import annotations

from ...ops.collective import AllReduceSum
from ...tensor import Tensor
from .. import distributed_c10d as c10d
from ..distributed_c10d import ReduceOp

__all__ = ["all_reduce"]


def _sum_over_ranks(group):
    def sum_over_ranks(array):
        staged = Tensor._make(array.copy())
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
