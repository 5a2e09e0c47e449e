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
from ..autograd import function as _function
from ..autograd.batched_grad import BATCHED_RULES, broadcasting_rule, register_batched_rule
from ..autograd.function import Function, _make_node
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
        return (grad_grad, *(_zeros(xp, shape, dtype) for shape, dtype in ctx.likes))


def _zeros(xp, shape, dtype) -> Tensor:
    """The zero gradient of a saved tensor: inside a vmap that records its ops, a constant of the
    record (every slice's run makes the same zeros)."""
    out = Tensor._make(xp.zeros(shape, dtype))
    if _function.tracing_ops:
        _function.traced_constant(out)
    return out


def _batched(node, grad):
    # a batched gradient passes unchanged, batch dim and all; nothing reaches the saved tensors
    return (grad, *(None for _ in node.likes))


# the node classes depending_on and recorded_against made, by (base class, torch's node name)
_NAMED = {}


def _named(base: type, node: str, batched_rule) -> type:
    """``base``'s subclass under torch's node name ``node``, made once and cached, with its batched
    rule registered (jacrev/hessian's batched walk runs it once, not per row)."""
    named = _NAMED.get((base, node))
    if named is None:
        named = _NAMED[base, node] = type(base)(node.removesuffix("Backward0"), (base,),
                                                {"node_name": node, "__module__": __name__})
        register_batched_rule(named)(batched_rule)
    return named


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
    return _named(DependsOn, node, _batched).apply(grad, *tensors)


class OpAgainst(Function):
    """An op's node, given edges to tensors its output depends on with derivative zero (see
    ``recorded_against``): its rule is the op's, and zeros go to those tensors."""

    _array_forward = True
    label = "op_against"
    rule = "the op's own rule; 0 to the saved tensors (constant between kinks)"
    formula = None

    @staticmethod
    def forward(ctx, *args):
        raise RuntimeError("OpAgainst is recorded by recorded_against, never applied")

    @staticmethod
    def backward(ctx, grad):
        op = ctx.op
        grads = op._forward_cls.backward(op, grad)
        edges = len(op.next_functions)
        grads = grads[:edges] if type(grads) is tuple else (grads,)
        xp = array_module(grad._data)
        return (*grads, *(_zeros(xp, shape, dtype) for shape, dtype in ctx._input_meta[edges:]))


def _batched_op_against(node, grad):
    # the op's own batched rule, once; nothing reaches the saved tensors
    op = node.op
    rule = BATCHED_RULES.get(op._forward_cls)
    result = NotImplemented if rule is None else rule(op, grad)
    if result is NotImplemented:
        return result
    edges = len(op.next_functions)
    result = result[:edges] if type(result) is tuple else (result,)
    return (*result, *(None for _ in node.next_functions[edges:]))


def recorded_against(out: Tensor, *tensors, node: str) -> Tensor:
    """``out``, the output of one op a backward rule just applied to its gradient, recorded (only
    while that backward is itself recorded) as depending on ``tensors`` too, with derivative zero,
    in one node named ``node``: torch's max_pool2d_with_indices_backward(grad, self, ...) is one
    node with edges to both, where ``depending_on`` would put its node above the op's. A gradient
    that does not require grad gets ``depending_on``'s node (its first edge None, as torch's)."""
    if out is None or not is_grad_enabled():
        return out
    op = out._grad_fn
    if op is None or op._num_outputs != 1 or not op._forward_cls._array_forward:
        return depending_on(out, *tensors, node=node)
    tensors = [t for t in tensors if isinstance(t, Tensor) and t._requires_grad]
    if not tensors:
        return out
    against = _make_node(_named(OpAgainst, node, _batched_op_against), tensors)
    against.next_functions = op.next_functions + against.next_functions
    against.needs_input_grad = (*op.needs_input_grad, *against.needs_input_grad)
    against._input_meta = op._input_meta + against._input_meta
    against.op = op
    out.grad_fn = against
    return out


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
