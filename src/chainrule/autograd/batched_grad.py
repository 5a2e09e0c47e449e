"""Batched gradients: the table of batched backward rules, ``autograd.grad(...,
is_grads_batched=True)``, and the row stacking the Jacobian paths share.

A Jacobian's rows are B vector-Jacobian products through one graph. Run as B backward passes,
each node's rule does B matrix-vector products where one matrix-matrix product would do
(``jacrev`` of a 2,048-output linear layer: 2,048 GEMVs against one GEMM). The batched walk
(autograd/batched_walk.py) runs the graph once instead, every gradient of shape ``(B,) + shape``:
a node whose Function class has a rule in ``BATCHED_RULES`` runs it once on the batched gradient,
any other node runs its ordinary backward once per row. The rules live beside the ops, in
``ops/batched_rules.py``, and register here: autograd imports no ops.
"""

from __future__ import annotations

from .._backend import array_module
from .function import Function

__all__ = ["BATCHED_RULES", "register_batched_rule", "broadcasting_rule", "batched_grad", "StackRows", "UnstackRows", "CatRows"]

# Function class -> rule(node, *grads): each of ``grads`` is the gradient of one of the node's
# outputs with a leading batch dim B (None for an output no gradient reached, which only a node
# of several outputs has); the rule returns one gradient per input (or None), each with the same
# leading dim B and otherwise the input's shape or one broadcastable to it, or NotImplemented to
# have this node run row by row. Keyed by the exact class: a subclass may change the backward.
BATCHED_RULES: dict = {}

# autograd.batched_walk.batched_backward, set when that module loads: it imports the engine,
# and the engine imports this module (for is_grads_batched), so neither imports the other back
walk = None


def register_batched_rule(*functions):
    """Decorator: ``rule`` is the batched backward of each Function class in ``functions``."""
    def register(rule):
        for function in functions:
            BATCHED_RULES[function] = rule
        return rule

    return register


def broadcasting_rule(node, *grads):
    """The node's own backward, for a rule that is elementwise in the gradient (the gradient
    times factors computed from the saved values, which have the output's shape or broadcast to
    it): a leading batch dim on the gradient broadcasts through it unchanged."""
    return node._forward_cls.backward(node, *grads)


def batched_grad(grad, outputs: tuple, inputs: tuple, grad_outputs, retain_graph, create_graph, allow_unused,
                 materialize_grads):
    """``autograd.grad(..., is_grads_batched=True)``: each grad_output's first dim is a batch, and
    each gradient gets the same first dim, the vector-Jacobian products of its rows.

    torch vmaps one backward over the batch; so does the batched walk here, recorded under
    ``create_graph``. Where that walk declines the graph it is one
    backward per batch element, the graph retained between them (the caller's ``retain_graph``
    applies after the last): the same numbers, B backwards' time. An input no output reaches gets
    None (``allow_unused``) or, with ``materialize_grads``, zeros of its own unbatched shape, as
    torch's. ``grad`` is the unbatched ``autograd.grad``; ``outputs``, ``inputs`` and a given
    ``grad_outputs`` are tuples.
    """
    grad_outputs = (None,) * len(outputs) if grad_outputs is None else grad_outputs[:len(outputs)]
    short = len(grad_outputs) < len(outputs)  # torch checks the pairs zip() makes, then counts
    if short and not grad_outputs:
        raise IndexError("list index out of range")  # torch's vmap over no gradients
    sizes = []
    for i, (g, out) in enumerate(zip(grad_outputs, outputs)):
        if g is None:
            if out.dim() == 0:
                raise ValueError("vmap(vjp, in_dims=0, ...)(<inputs>): Got in_dim=0 for some input, but that "
                                 "input is a Tensor of dimensionality 0 so expected in_dim to satisfy "
                                 "0 <= in_dim < 0.")
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        if g.dim() == 0 or tuple(g.shape[1:]) != tuple(out.shape):
            raise RuntimeError(
                "If `is_grads_batched=True`, we interpret the first dimension of each grad_output as the batch "
                "dimension. The sizes of the remaining dimensions are expected to match the shape of "
                f"corresponding output, but a mismatch was detected: grad_output[{i}] has a shape of "
                f"torch.Size({list(g.shape[1:])}) and output[{i}] has a shape of torch.Size({list(out.shape)}). "
                "If you only want some tensors in `grad_output` to be considered batched, consider using vmap.")
        sizes.append(g.shape[0])
    if short:
        raise RuntimeError(f"got {len(outputs)} tensors and {len(grad_outputs)} gradients")
    if len(set(sizes)) > 1:
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                         f"{sizes} for the mapped dimension")
    batch = sizes[0] if sizes else 0
    if batch == 0:
        raise IndexError("index 0 is out of bounds for dimension 0 with size 0")
    if retain_graph is None:
        retain_graph = create_graph
    unused_allowed = bool(allow_unused) or materialize_grads
    found = walk(outputs, inputs, grad_outputs, retain_graph, create_graph)
    if found is not None:
        for i, g in enumerate(found):
            if g is None and not unused_allowed:
                raise RuntimeError(
                    f"The differentiated Tensor at index {i} appears to not have been used in "
                    "the graph. Set allow_unused=True if this is the desired behavior.")
        return tuple(g if g is not None else _zeros(x, create_graph) if materialize_grads else None
                     for g, x in zip(found, inputs))
    rows = [grad(outputs, inputs, [g[b] for g in grad_outputs], retain_graph=retain_graph or b < batch - 1,
                 create_graph=create_graph, allow_unused=unused_allowed) for b in range(batch)]
    result = []
    for j, x in enumerate(inputs):
        per_row = [row[j] for row in rows]
        if per_row[0] is None:
            result.append(_zeros(x, create_graph) if materialize_grads else None)
        else:
            result.append(StackRows.apply(*per_row))
    return tuple(result)


class StackRows(Function):
    """Rows stacked along a new first dim: the Jacobian's (functional.jacobian), the batched
    gradients' (batched_grad). torch.stack's job (hence its node name), kept here so that autograd
    imports no ops.
    """

    node_name = "StackBackward0"
    label = "stack"
    rule = "each input gets its own slice of the gradient"
    formula = None
    _array_forward = True

    @staticmethod
    def forward(ctx, *rows):
        return array_module(rows[0]).stack(rows)

    @staticmethod
    def backward(ctx, grad):
        return grad.unbind(0)


class CatRows(Function):
    """Chunks of a Jacobian's rows joined along the first dim (a recorded chunked jacrev).
    torch.cat's job (hence its node name), kept here so that autograd imports no ops."""

    node_name = "CatBackward0"
    label = "cat"
    rule = "each input gets back its own slab of the gradient"
    formula = None
    _array_forward = True

    @staticmethod
    def forward(ctx, *chunks):
        ends = [0]
        for chunk in chunks:
            ends.append(ends[-1] + chunk.shape[0])
        ctx.bounds = tuple(zip(ends[:-1], ends[1:]))
        return array_module(chunks[0]).concatenate(chunks)

    @staticmethod
    def backward(ctx, grad):
        return tuple(grad[start:stop] for start, stop in ctx.bounds)


class UnstackRows(Function):
    """A batched gradient's rows, each an output of its own: what a recorded batched walk hands a
    node it has no batched rule for, one row per backward (batched_walk._row_by_row), as one node
    (not one indexing node per row, each of whose gradients in an outer walk would be as large
    as all the rows). torch.unbind's job (hence its node name), kept here so that autograd
    imports no ops."""

    node_name = "UnbindBackward0"
    label = "unbind"
    rule = "the rows' gradients stacked back"
    formula = None
    _array_forward = True

    @staticmethod
    def forward(ctx, stacked):
        return tuple(stacked)

    @staticmethod
    def backward(ctx, *grads):
        return StackRows.apply(*grads)


def _zeros(x, create_graph: bool):
    """A materialized gradient: torch's zeros_like(input, requires_grad=create_graph)."""
    return x.new_zeros(tuple(x.shape)).requires_grad_(bool(create_graph))
