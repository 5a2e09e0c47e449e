"""Collectives as differentiable ops: the graph of a model trained across processes passes
through a sum over ranks (SyncBatchNorm's statistics, ``torch.distributed.nn.functional``).

ops sit below ``chainrule.distributed``, so the op takes the collective as an argument: a
function that sums an array over the ranks of a group, supplied by ``distributed.nn``.
"""

from __future__ import annotations

from ..autograd.function import Function

__all__: list[str] = []


class AllReduceSum(Function):
    """y = Σ over ranks of x, on every rank."""

    _array_forward = True
    node_name = "_AllReduceBackward"
    label = "all_reduce"
    rule = "every rank's output depends on every rank's input, so the gradient is all-reduced too"
    formula = "all_reduce({0})"

    @staticmethod
    def forward(ctx, x, sum_over_ranks):
        ctx.sum_over_ranks = sum_over_ranks
        return sum_over_ranks(x)

    @staticmethod
    def backward(ctx, grad):
        # L = Σ_r L_r and y = Σ_r x_r, so ∂L/∂x_r = Σ_r' ∂L_r'/∂y: the same all-reduce
        return AllReduceSum.apply(grad, sum_over_ranks=ctx.sum_over_ranks)
