"""torch.autograd.functional: vjp, jvp, jacobian, hessian, hvp, vhp — built on ``grad``.

``jvp`` uses the double-vjp identity: Jv = d/du ⟨Jᵀu, v⟩, so forward mode needs no second engine.
"""

from __future__ import annotations

from .._backend import array_module
from .engine import _as_tuple, grad
from .function import Function
from .grad_mode import enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


def _tuple(x):
    return (tuple(x), True) if isinstance(x, (tuple, list)) else ((x,), False)


def _prepare(inputs, create_graph):
    # fresh leaves, so the user's tensors' .grad and graphs are untouched
    return tuple(x.detach().requires_grad_(True) if not create_graph or not x.requires_grad
                 else x.view_as(x) for x in inputs)


def _zeros_for_none(grads, like):
    return tuple(g if g is not None else x.new_zeros(x.shape) for g, x in zip(grads, like))


def _finish(values, is_tuple, create_graph):
    values = tuple(v if create_graph else v.detach() for v in values)
    return values if is_tuple else values[0]


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), vᵀ J): the vector-Jacobian product at ``inputs``."""
    inputs, in_tuple = _tuple(inputs)
    with enable_grad():
        xs = _prepare(inputs, create_graph)
        outputs, out_tuple = _tuple(func(*xs))
        vs = _tuple(v)[0] if v is not None else (None,) * len(outputs)
        grads = grad(outputs, xs, grad_outputs=vs, create_graph=create_graph, allow_unused=True)
    grads = _zeros_for_none(grads, xs)
    return _finish(outputs, out_tuple, create_graph), _finish(grads, in_tuple, create_graph)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product, by the double-vjp trick."""
    inputs, in_tuple = _tuple(inputs)
    vs = _tuple(v)[0] if v is not None else tuple(x.new_ones(x.shape) for x in inputs)
    with enable_grad():
        xs = _prepare(inputs, create_graph)
        outputs, out_tuple = _tuple(func(*xs))
        us = tuple(o.new_zeros(o.shape).requires_grad_(True) for o in outputs)
        gs = grad(outputs, xs, grad_outputs=us, create_graph=True, allow_unused=True)
        pairs = [(g, vv) for g, vv in zip(gs, vs) if g is not None and g.requires_grad]
        if pairs:
            jv = grad([g for g, _ in pairs], us, grad_outputs=[vv for _, vv in pairs],
                      create_graph=create_graph, allow_unused=True)
        else:
            jv = (None,) * len(us)
    jv = _zeros_for_none(jv, outputs)
    return _finish(outputs, out_tuple, create_graph), _finish(jv, out_tuple, create_graph)


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """The full Jacobian: for one input and one output a Tensor of shape out.shape + in.shape;
    tuples of them (nested output-major) otherwise, as torch's."""
    inputs, in_tuple = _tuple(inputs)
    with enable_grad():
        xs = _prepare(inputs, create_graph)
        outputs, out_tuple = _tuple(func(*xs))
        result = []
        for out in outputs:
            rows = [[] for _ in xs]
            flat = out.reshape(-1)
            # an output that does not depend on the inputs has a zero Jacobian (torch's, strict=False)
            for k in range(flat.shape[0] if flat.requires_grad else 0):
                gs = grad(flat[k], xs, retain_graph=True, create_graph=create_graph, allow_unused=True)
                for j, g in enumerate(_zeros_for_none(gs, xs)):
                    rows[j].append(g)
            per_input = []
            for j, x in enumerate(xs):
                if rows[j]:
                    jac = _StackRows.apply(*rows[j]).reshape(tuple(out.shape) + tuple(x.shape))
                else:
                    jac = x.new_zeros(tuple(out.shape) + tuple(x.shape))
                per_input.append(jac if create_graph else jac.detach())
            result.append(tuple(per_input) if in_tuple else per_input[0])
    return tuple(result) if out_tuple else result[0]


def batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
    """``autograd.grad(..., is_grads_batched=True)``: each grad_output's first dim is a batch, and
    each gradient gets the same first dim, the vector-Jacobian products of its rows.

    torch vmaps one backward over the batch; here it is one backward per batch element, the graph
    retained between them (the caller's ``retain_graph`` applies after the last): the same
    numbers, B backwards' time. An input no output reaches gets None (``allow_unused``) or, with
    ``materialize_grads``, zeros of its own unbatched shape, as torch's.
    """
    outputs, inputs = _as_tuple(outputs), _as_tuple(inputs)
    grad_outputs = (None,) * len(outputs) if grad_outputs is None else _as_tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):  # the unbatched call raises torch's message
        return grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused=allow_unused)
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
    if len(set(sizes)) > 1:
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                         f"{sizes} for the mapped dimension")
    batch = sizes[0] if sizes else 0
    if batch == 0:
        raise IndexError("index 0 is out of bounds for dimension 0 with size 0")
    if retain_graph is None:
        retain_graph = create_graph
    unused_allowed = bool(allow_unused) or materialize_grads
    rows = [grad(outputs, inputs, [g[b] for g in grad_outputs], retain_graph=retain_graph or b < batch - 1,
                 create_graph=create_graph, allow_unused=unused_allowed) for b in range(batch)]
    result = []
    for j, x in enumerate(inputs):
        per_row = [row[j] for row in rows]
        if per_row[0] is None:
            result.append(x.new_zeros(tuple(x.shape)) if materialize_grads else None)
        else:
            result.append(_StackRows.apply(*per_row))
    return tuple(result)


class _StackRows(Function):
    """The Jacobian's rows, one per output element, stacked along a new first dim.

    torch.stack's job (hence its node name), kept here so that autograd imports no ops.
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


def hessian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """Second derivatives of a scalar function: shape in.shape + in.shape for one input."""
    inputs_t, in_tuple = _tuple(inputs)

    def gradient(*xs):
        out = func(*xs)
        if out.numel() != 1:
            raise RuntimeError(f"hessian: the function must return a single-element Tensor, got shape {tuple(out.shape)}")
        gs = grad(out, xs, create_graph=True, allow_unused=True)
        gs = _zeros_for_none(gs, xs)
        return gs if in_tuple else gs[0]

    return jacobian(gradient, inputs, create_graph=create_graph)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v) for a scalar function, by differentiating ⟨∇f, v⟩."""
    inputs, in_tuple = _tuple(inputs)
    vs = _tuple(v)[0]
    with enable_grad():
        xs = _prepare(inputs, create_graph)
        out = func(*xs)
        gs = _zeros_for_none(grad(out, xs, create_graph=True, allow_unused=True), xs)
        total = None
        for g, vv in zip(gs, vs):
            term = (g * vv).sum()
            total = term if total is None else total + term
        hv = grad(total, xs, create_graph=create_graph, allow_unused=True) if total.requires_grad else (None,) * len(xs)
    hv = _zeros_for_none(hv, xs)
    return (out if create_graph else out.detach()), _finish(hv, in_tuple, create_graph)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), vᵀ H); equal to hvp since the Hessian is symmetric."""
    return hvp(func, inputs, v, create_graph, strict)
