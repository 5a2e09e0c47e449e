"""torch.autograd.functional: vjp, jvp, jacobian, hessian, hvp, vhp — built on ``grad``.

``jvp`` uses the double-vjp identity: Jv = d/du ⟨Jᵀu, v⟩, so forward mode needs no second engine.
"""

from __future__ import annotations

from . import batched_walk as _batched_walk
from .batched_grad import StackRows as _StackRows
from .engine import _topological_order, grad
from .function import AccumulateGrad
from .grad_mode import enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


def reaches_outside(tensors, inside) -> bool:
    """Whether the graph of any of ``tensors`` reaches a tensor requiring grad other than the
    ``inside`` leaves (the ones a transform made to differentiate with respect to): a closed-over
    parameter, or something computed from one. torch's transforms then keep the graph to it on
    their results, so an outer backward (a gradient penalty ``grad(f)(x).pow(2).sum().backward()``)
    reaches the parameters, second order."""
    inside_ids = {id(x) for x in inside}
    roots = []
    for t in tensors:
        if not getattr(t, "requires_grad", False):
            continue
        if t.grad_fn is None:
            if id(t) not in inside_ids:
                return True
        else:
            roots.append(t.grad_fn)
    return any(isinstance(node, AccumulateGrad) and id(node.variable) not in inside_ids
               for node in _topological_order(roots))


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
    tuples of them (nested output-major) otherwise, as torch's.

    A Jacobian is one batched reverse walk per output, the identity's rows as its cotangents
    (batched_walk.batched_backward, torch's ``vectorize=True``; the same numbers for
    ``vectorize=False``), recorded under ``create_graph``; a graph that walk declines (hooks,
    anomaly mode) takes one backward per output element."""
    return _jacobian(func, inputs, create_graph)


def _jacobian(func, inputs, create_graph: bool, chunk_size=None, outside_records: bool = False):
    """``jacobian``, and ``func.jacrev``'s with its ``chunk_size`` (rows per batched walk) and
    ``outside_records`` (grad mode at the call: blocks that depend on a closed-over tensor
    requiring grad keep their graph to it, as torch.func's do; autograd.functional's never)."""
    inputs, in_tuple = _tuple(inputs)
    with enable_grad():
        xs = _prepare(inputs, create_graph)
        outputs, out_tuple = _tuple(func(*xs))
        outside = outside_records and not create_graph and reaches_outside(outputs, xs)
        record = create_graph or outside
        result = []
        for out in outputs:
            # an output that does not depend on the inputs has a zero Jacobian (torch's, strict=False)
            rows = None
            if out.requires_grad:
                rows = _batched_walk.jacobian_rows(out, xs, chunk_size, record)
            if rows is None:
                rows = _rows_one_by_one(out, xs, record)
            per_input = []
            for row, x in zip(rows, xs):
                shape = tuple(out.shape) + tuple(x.shape)
                jac = row.reshape(shape) if row is not None else x.new_zeros(shape)
                kept = create_graph or (outside and reaches_outside([jac], xs))
                per_input.append(jac if kept else jac.detach())
            result.append(tuple(per_input) if in_tuple else per_input[0])
    return tuple(result) if out_tuple else result[0]


def _rows_one_by_one(out, xs, create_graph: bool) -> list:
    """d out / d xs with one backward per element of ``out`` (recorded under ``create_graph``):
    per input its rows stacked, or None where no row reaches it."""
    rows = [[] for _ in xs]
    flat = out.reshape(-1)
    for k in range(flat.shape[0] if flat.requires_grad else 0):
        gs = grad(flat[k], xs, retain_graph=True, create_graph=create_graph, allow_unused=True)
        for j, g in enumerate(_zeros_for_none(gs, xs)):
            rows[j].append(g)
    return [_StackRows.apply(*per_input) if per_input else None for per_input in rows]


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
