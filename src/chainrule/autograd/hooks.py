"""BackwardHookFunction: the identity node a module's full backward hooks hang on.

``Module.register_full_backward_hook`` needs to see the gradients arriving at a module's outputs
and leaving at its inputs; both sides pass their tensors through one identity node each, whose
backward hands the gradients to a callback and passes on what the callback returns.
"""

from __future__ import annotations

from .function import Function


class BackwardHookFunction(Function):
    """y = x for each tensor; the backward returns ``on_backward(grads)`` (torch's node name)."""

    _array_forward = True
    node_name = "BackwardHookFunctionBackward"
    label = "backward_hook"
    rule = "passes the gradient through, after the module's backward hooks have seen it"
    formula = "{0}"

    @staticmethod
    def forward(ctx, *arrays, on_backward, materialize_grads=True):
        if any(ctx.needs_input_grad):  # keep nothing on the shared no-grad ctx
            ctx.on_backward = on_backward
            # the outputs' node hands the hooks None for an output no gradient reached, as torch's
            # (its hook reads the node's incoming gradients, before materialisation)
            ctx.set_materialize_grads(materialize_grads)
        return arrays if len(arrays) > 1 else arrays[0]

    @staticmethod
    def backward(ctx, *grads):
        result = tuple(ctx.on_backward(grads))
        return result if len(result) > 1 else result[0]
