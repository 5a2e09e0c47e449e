"""A gradient recorded as depending on the op's saved tensors, with derivative zero in them.

Under ``create_graph=True`` torch's backward formulas take the op's saved tensors as inputs
(``threshold_backward(grad, self)``, ``max_pool2d_with_indices_backward(grad, self, ...)``,
``convolution_backward(grad, input, weight)``): the first-order gradient of a piecewise-linear or
linear op requires grad whenever those tensors do, even for a constant cotangent (a gradient
penalty's ``ones``), and differentiates to zero in them. A chainrule rule that selects or scales
the gradient by constants computed from the saved tensors has no such edge, so a second
``backward`` through it raised "does not require grad" where torch gives zeros; ``depending_on``
adds the edge.
"""

from __future__ import annotations

from .._backend import array_module
from ..autograd.batched_grad import broadcasting_rule, register_batched_rule
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor


class DependsOn(Function):
    """The gradient unchanged; zeros to the tensors it is recorded against."""

    _array_forward = True
    label = "depends_on"
    rule = "passes the gradient through; 0 to the saved tensors (constant between kinks)"
    formula = None

    @staticmethod
    def forward(ctx, grad, *tensors):
        ctx.likes = [(t.shape, t.dtype) for t in tensors]
        return grad.copy()

    @staticmethod
    def backward(ctx, grad_grad):
        xp = array_module(grad_grad._data)
        return (grad_grad, *(Tensor._make(xp.zeros(shape, dtype)) for shape, dtype in ctx.likes))


def _batched(node, grad):
    # a batched gradient passes unchanged, batch dim and all; nothing reaches the saved tensors
    return (grad, *(None for _ in node.likes))


_NAMED = {}


def depending_on(grad: Tensor, *tensors, node: str) -> Tensor:
    """``grad``, recorded (only while a backward is itself recorded and one of ``tensors`` requires
    grad) as a function of ``tensors`` whose derivative in them is zero, under torch's node name
    ``node`` (``ThresholdBackwardBackward0``, ...)."""
    # (relu's and the pools' backward call this in every walk: a plain one, grad mode off, leaves at once)
    if grad is None or not is_grad_enabled():
        return grad
    tensors = [t for t in tensors if isinstance(t, Tensor) and t._requires_grad]
    if not tensors:
        return grad
    named = _NAMED.get(node)
    if named is None:
        named = _NAMED[node] = type(DependsOn)(node.removesuffix("Backward0"), (DependsOn,),
                                               {"node_name": node, "__module__": __name__})
        register_batched_rule(named)(_batched)  # jacrev/hessian's batched walk runs it once, not per row
    return named.apply(grad, *tensors)


class GradientAgainst(Function):
    """Its input unchanged (copied); its gradient recorded by ``depending_on`` against ``kept``.

    For a composed op whose parameter reaches the output by an add alone (a norm's bias): the
    gradient there is the summed cotangent, constant for a constant one, where torch's one fused
    node computes it from the saved input too."""

    _array_forward = True
    label = "gradient_against"
    rule = "passes the gradient through, recorded against the op's saved tensors (derivative 0 in them)"
    formula = None

    @staticmethod
    def forward(ctx, x, kept, node):
        ctx.kept, ctx.node = kept, node
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return depending_on(grad, *ctx.kept, node=ctx.node)


register_batched_rule(GradientAgainst)(broadcasting_rule)


def gradient_against(x: Tensor | None, *kept, node: str) -> Tensor | None:
    """``x`` itself, or (while recording, when ``x`` and one of ``kept`` require grad) a copy whose
    gradient is recorded as depending on ``kept`` under torch's node name ``node`` in a backward
    that is itself recorded."""
    if x is None or not x._requires_grad or not is_grad_enabled():
        return x
    kept = tuple(t for t in kept if isinstance(t, Tensor) and t._requires_grad)
    return GradientAgainst.apply(x, kept=kept, node=node) if kept else x
