"""BackwardHookFunction: the identity node a module's full backward hooks hang on.

``Module.register_full_backward_hook`` needs to see the gradients arriving at a module's outputs
and leaving at its inputs; both sides pass their tensors through one identity node each, and the
module's hooks hang on those nodes as node hooks (a pre-hook on the outputs' node, a post-hook on
the inputs'), as torch's BackwardHook hangs them: the engine then knows user code has seen those
gradients and never lets a leaf's ``.grad`` steal their memory.
"""

from __future__ import annotations

from .function import Function


class BackwardHookFunction(Function):
    """y = x for each tensor, and its gradients passed back as they are (torch's node name)."""

    _array_forward = True
    node_name = "BackwardHookFunctionBackward"
    label = "backward_hook"
    rule = "passes the gradient through, after the module's backward hooks have seen it"
    formula = "{0}"

    @staticmethod
    def forward(ctx, *arrays, materialize_grads=True):
        if any(ctx.needs_input_grad):  # keep nothing on the shared no-grad ctx
            # the outputs' node passes None on for an output no gradient reached, as torch's
            ctx.set_materialize_grads(materialize_grads)
        return arrays if len(arrays) > 1 else arrays[0]

    @staticmethod
    def backward(ctx, *grads):
        return grads if len(grads) > 1 else grads[0]
