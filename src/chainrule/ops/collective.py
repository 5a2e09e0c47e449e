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


class LinearExchange(Function):
    """y = A(x) for a linear exchange A between ranks (all-gather, all-to-all, broadcast,
    reduce-scatter), given with its adjoint Aᵀ."""

    _array_forward = True
    node_name = "_LinearExchangeBackward"
    label = "collective exchange"
    rule = ("a linear map across ranks: the gradient goes through the adjoint exchange (all-gather and "
            "reduce-scatter are each other's, an all-to-all's is the all-to-all back, a broadcast's is the sum "
            "to its source)")
    formula = "adjoint_exchange({0})"

    @staticmethod
    def forward(ctx, x, exchange, adjoint):
        ctx.exchange, ctx.adjoint = exchange, adjoint
        return exchange(x)

    @staticmethod
    def backward(ctx, grad):
        # Σ_ranks ⟨A x, g⟩ = Σ_ranks ⟨x, Aᵀ g⟩; Aᵀ's own gradient is A again, so double backward works
        return LinearExchange.apply(grad, exchange=ctx.adjoint, adjoint=ctx.exchange)
