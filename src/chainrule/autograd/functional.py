"""torch.autograd.functional: vjp, jvp, jacobian, hessian, hvp, vhp — built on ``grad``.

``jvp`` uses the double-vjp identity: Jv = d/du ⟨Jᵀu, v⟩, so forward mode needs no second engine.
"""

from __future__ import annotations

import weakref

from . import batched_walk as _batched_walk
from . import function as _function
from .batched_grad import CatRows as _CatRows
from .batched_grad import StackRows as _StackRows
from .engine import grad
from .function import AccumulateGrad, DelayedError
from .grad_mode import enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


# The leaves that transforms which have returned made to differentiate with respect to, by id,
# each with a weak reference that checks the id still names that tensor. An inner transform's
# result keeps a graph to its own leaves when an outer one differentiates it (jacrev(jacrev(f, 1),
# 0)); the outer's result reaching them reaches no tensor of the caller's, and torch's unwrapped
# result requires no grad there.
_retired_leaves: dict[int, weakref.ref] = {}


def retire_leaves(leaves) -> None:
    """Mark the fresh leaves a transform made as its own once it returns (see _retired_leaves)."""
    for leaf in leaves:
        if isinstance(leaf, _function._Tensor) and leaf.requires_grad and leaf.grad_fn is None:
            key = id(leaf)
            _retired_leaves[key] = weakref.ref(
                leaf, lambda ref, key=key: _retired_leaves.get(key) is ref and _retired_leaves.pop(key))


def _retired(tensor) -> bool:
    ref = _retired_leaves.get(id(tensor))
    return ref is not None and ref() is tensor


def reaches_outside(tensors, inside) -> bool:
    """Whether the graph of any of ``tensors`` reaches a tensor requiring grad other than the
    ``inside`` leaves (the ones a transform made to differentiate with respect to) and the leaves
    of transforms that have returned: a closed-over parameter, or something computed from one.
    torch's transforms then keep the graph to it on their results, so an outer backward (a
    gradient penalty ``grad(f)(x).pow(2).sum().backward()``) reaches the parameters, second order."""
    inside_ids = {id(x) for x in inside}
    roots = []
    for t in tensors:
        if not getattr(t, "requires_grad", False):
            continue
        if t.grad_fn is None:
            if id(t) not in inside_ids and not _retired(t):
                return True
        else:
            roots.append(t.grad_fn)
    seen = set()
    while roots:
        node = roots.pop()
        if node in seen:
            continue
        seen.add(node)
        if isinstance(node, AccumulateGrad):
            if id(node.variable) not in inside_ids and not _retired(node.variable):
                return True
        elif getattr(node, "_forward_cls", None) is not DelayedError:  # an Error node's inputs: fresh leaves
            roots.extend(child for child, _ in node.next_functions if child is not None)
    return False


def _tuple(x):
    return (tuple(x), True) if isinstance(x, (tuple, list)) else ((x,), False)


def _is_tensor(x) -> bool:
    return isinstance(x, _function._Tensor)


def _checked_tuple(value, what: str, where: str):
    """(tensors, was a tuple): ``value`` as a tuple of Tensors, or torch's TypeError naming the
    argument (a list is refused, as torch refuses it)."""
    is_tuple = isinstance(value, tuple)
    values = value if is_tuple else (value,)
    for i, item in enumerate(values):
        if not _is_tensor(item):
            which = f"value at index {i}" if is_tuple else f"given {what}"
            raise TypeError(f"The {what} given to {where} must be either a Tensor or a tuple of Tensors but the "
                            f"{which} has type {type(item)}.")
    return values, is_tuple


def _checked_v(v, like, like_is_tuple: bool, where: str):
    """``v`` as a tuple matching ``like`` in count and shapes (torch's messages), detached."""
    vs, _ = _checked_tuple(v, "v", where)
    if len(vs) != len(like):
        if like_is_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(like)} but got {len(vs)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for i, (item, other) in enumerate(zip(vs, like)):
        if tuple(item.shape) != tuple(other.shape):
            prefix = f"Entry {i} in " if like_is_tuple else ""
            raise RuntimeError(f"{prefix}v has invalid size: should be {other.size()} but got {item.size()}.")
    return tuple(item.detach() for item in vs)


def _none_v_allowed(tensors, of_what: str) -> None:
    if len(tensors) != 1 or tensors[0].numel() != 1:
        raise RuntimeError(f"The vector v can only be None if {of_what} a single Tensor with a single element.")


def _strict_outputs(outputs, strict: bool) -> None:
    if strict:
        for i, out in enumerate(outputs):
            if not out.requires_grad:
                raise RuntimeError(f"Output {i} of the user-provided function does not require gradients. The "
                                   "outputs must be computed in a differentiable manner from the input when "
                                   "running in strict mode.")


def _strict_jacobian(jac, strict: bool) -> None:
    if strict:
        for i, g in enumerate(jac):
            if g is None or not g.requires_grad:
                raise RuntimeError("While computing the hessian, found that the jacobian of the user-provided "
                                   f"function with respect to input {i} is independent of the input. This is not "
                                   "allowed in strict mode. You should ensure that your function is twice "
                                   "differentiable and that the jacobian depends on the inputs (this would be "
                                   "violated by a linear function for example).")


def _grad_of(outputs, inputs, grad_outputs=None, create_graph: bool = False):
    """torch.autograd.grad over the outputs that require grad (None for every input when none
    does), unused inputs giving None, as torch.autograd.functional's helper does."""
    chosen = [(i, out) for i, out in enumerate(outputs) if out is not None and out.requires_grad]
    if not chosen:
        return (None,) * len(inputs)
    gos = None if grad_outputs is None else [grad_outputs[i] for i, _ in chosen]
    return tuple(grad([out for _, out in chosen], inputs, grad_outputs=gos, create_graph=create_graph,
                      retain_graph=True, allow_unused=True))


def _zeros_where_none(grads, like, strict: bool, create_graph: bool, stage: str):
    """``grads`` with zeros for the None ones, or torch's strict-mode errors."""
    result = []
    for i, (g, x) in enumerate(zip(grads, like)):
        if g is None:
            if strict:
                raise RuntimeError({
                    "back": f"The output of the user-provided function is independent of input {i}. This is not "
                            "allowed in strict mode.",
                    "back_trick": f"The gradient with respect to the input is independent of entry {i} in the "
                                  "grad_outputs when using the double backward trick to compute forward mode "
                                  "gradients. This is not allowed in strict mode.",
                    "double_back": f"The jacobian of the user-provided function is independent of input {i}. This "
                                   "is not allowed in strict mode.",
                    "double_back_trick": "The hessian of the user-provided function is independent of entry "
                                         f"{i} in the grad_jacobian. This is not allowed in strict mode as it "
                                         "prevents from using the double backward trick to replace forward mode AD.",
                }[stage])
            g = x.detach().new_zeros(x.shape)
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if "double" in stage else "jacobian"
            raise RuntimeError(f"The {what} of the user-provided function is independent of input {i}. This is not "
                               "allowed in strict mode when create_graph=True.")
        result.append(g)
    return tuple(result)


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
    """(func(inputs), vᵀ J): the vector-Jacobian product at ``inputs``; ``v`` may be None only
    for a function returning one single-element Tensor. ``strict`` raises where an output does not
    depend on an input (zeros otherwise)."""
    with enable_grad():
        inputs, in_tuple = _checked_tuple(inputs, "inputs", "vjp")
        xs = _prepare(inputs, create_graph)
        outputs, out_tuple = _checked_tuple(func(*xs), "outputs of the user-provided function", "vjp")
        _strict_outputs(outputs, strict)
        if v is not None:
            vs = _checked_v(v, outputs, out_tuple, "vjp")
        else:
            _none_v_allowed(outputs, "the user-provided function returns")
            vs = None
        grads = _grad_of(outputs, xs, vs, create_graph)
        grads = _zeros_where_none(grads, xs, strict, create_graph, "back")
    return _finish(outputs, out_tuple, create_graph), _finish(grads, in_tuple, create_graph)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product, by the double-vjp trick; ``v`` may be
    None only for one single-element input."""
    with enable_grad():
        inputs, in_tuple = _checked_tuple(inputs, "inputs", "jvp")
        xs = _prepare(inputs, create_graph)
        if v is not None:
            vs = _checked_v(v, inputs, in_tuple, "jvp")
        else:
            _none_v_allowed(inputs, "the input to the user-provided function is")
            vs = tuple(x.detach().new_ones(x.shape) for x in inputs)
        outputs, out_tuple = _checked_tuple(func(*xs), "outputs of the user-provided function", "jvp")
        _strict_outputs(outputs, strict)
        us = tuple(o.detach().new_zeros(o.shape).requires_grad_(True) for o in outputs)
        gs = _grad_of(outputs, xs, us, create_graph=True)
        if strict:
            for i, g in enumerate(gs):
                if g is None:
                    raise RuntimeError(f"The output of the user-provided function is independent of input {i}. "
                                       "This is not allowed in strict mode.")
                if not g.requires_grad:
                    raise RuntimeError(f"The gradient with respect to input {i} is independent of the inputs of "
                                       "the user-provided function. This is not allowed in strict mode.")
        pairs = [(g, vv) for g, vv in zip(gs, vs) if g is not None and g.requires_grad]
        if pairs:
            jv = _grad_of([g for g, _ in pairs], us, [vv for _, vv in pairs], create_graph)
        else:
            jv = (None,) * len(us)
        jv = _zeros_where_none(jv, outputs, strict, create_graph, "back_trick")
    return _finish(outputs, out_tuple, create_graph), _finish(jv, out_tuple, create_graph)


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """The full Jacobian: for one input and one output a Tensor of shape out.shape + in.shape;
    tuples of them (nested output-major) otherwise, as torch's.

    A Jacobian is one batched reverse walk per output, the identity's rows as its cotangents
    (batched_walk.batched_backward, torch's ``vectorize=True``; the same numbers for
    ``vectorize=False``), recorded under ``create_graph``; a graph that walk declines (hooks,
    anomaly mode) takes one backward per output element. ``strategy="forward-mode"`` gives the
    same numbers, with torch's conditions (``vectorize=True``, no ``create_graph``, no ``strict``)
    and its containers (lists where the inputs were a tuple)."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
                             'function has more outputs than inputs, "forward-mode" tends to be more performant. '
                             'Otherwise, prefer to use "reverse-mode".')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError("torch.autograd.functional.jacobian: `create_graph=True` and "
                                      '`strategy="forward-mode"` are not supported together (yet). Please either '
                                      'set `create_graph=False` or `strategy="reverse-mode"`.')
        if strict:
            raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `strategy=\"forward-mode\"` "
                               "are not supported together (yet). Please either set `strict=False` or "
                               '`strategy="reverse-mode"`.')
        _, in_tuple = _checked_tuple(inputs, "inputs", "jacobian")
        if not vectorize:
            raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian is"
                                      "only implemented for `vectorize=True`.")
        # torch's forward mode runs func on dual views of the inputs themselves: the Jacobian keeps its
        # graph to inputs that require grad (forward-over-reverse Hessian's, made so)
        recorded = any(_is_tensor(x) and x.requires_grad for x in _tuple(inputs)[0])
        result = _jacobian(func, inputs, recorded, checked="jacobian")
        if in_tuple:  # torch's forward-mode Jacobian comes in lists
            result = [list(row) for row in result] if isinstance(result, tuple) and \
                isinstance(result[0], tuple) else list(result)
        return result
    return _jacobian(func, inputs, create_graph, strict=strict, checked="jacobian", vectorize=vectorize)


def _jacobian(func, inputs, create_graph: bool, chunk_size=None, outside_records: bool = False,
              strict: bool = False, checked: str | None = None, vectorize: bool = False):
    """``jacobian``, and ``func.jacrev``'s with its ``chunk_size`` (rows per batched walk) and
    ``outside_records`` (grad mode at the call: blocks that depend on a closed-over tensor
    requiring grad keep their graph to it, as torch.func's do; autograd.functional's never).
    ``checked``: the public function's name, whose type checks of inputs and outputs apply."""
    inputs, in_tuple = _checked_tuple(inputs, "inputs", checked) if checked else _tuple(inputs)
    with enable_grad():
        xs = _prepare(inputs, create_graph)
        outputs = func(*xs)
        if checked:
            outputs, out_tuple = _checked_tuple(outputs, "outputs of the user-provided function", checked)
            _strict_outputs(outputs, strict)
            if strict and vectorize:  # torch refuses the pair once the outputs passed strict's check
                raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
                                   "supported together. Please either set `strict=False` or `vectorize=False`.")
        else:
            outputs, out_tuple = _tuple(outputs)
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
            for j, (row, x) in enumerate(zip(rows, xs)):
                if strict and row is None:
                    raise RuntimeError(f"Output {len(result)} of the user-provided function is independent of "
                                       f"input {j}. This is not allowed in strict mode.")
                if strict and create_graph and not row.requires_grad:
                    raise RuntimeError(f"The jacobian of the user-provided function is independent of input "
                                       f"{len(result)}. This is not allowed in strict mode when create_graph=True.")
                shape = tuple(out.shape) + tuple(x.shape)
                jac = row.reshape(shape) if row is not None else x.new_zeros(shape)
                kept = create_graph or (outside and reaches_outside([jac], xs))
                per_input.append(jac if kept else jac.detach())
            result.append(per_input)
        retire_leaves(xs)
        if vectorize and (create_graph or outside) and len(outputs) > 1:
            result = _one_tensor_per_input(result, outputs)
        result = [tuple(per_input) if in_tuple else per_input[0] for per_input in result]
    return tuple(result) if out_tuple else result[0]


def _one_tensor_per_input(blocks, outputs) -> list:
    """torch's vectorized Jacobian is one tensor per input, its rows every output's elements, split
    into the blocks: each block is a view of it, and requires grad when any block of the input does."""
    for j in range(len(blocks[0])):
        column = [per_input[j] for per_input in blocks]
        if not any(block.requires_grad for block in column):
            continue
        numels = [out.numel() for out in outputs]
        joined = _CatRows.apply(*(block.reshape((n,) + tuple(block.shape[out.dim():]))
                                  for block, n, out in zip(column, numels, outputs)))
        for per_input, part, block in zip(blocks, joined.split(numels, 0), column):
            per_input[j] = part.view(block.shape)
    return blocks


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
    """Second derivatives of a scalar function: shape in.shape + in.shape for one input; the
    Jacobian of its gradient, recorded under ``create_graph``."""
    inputs_t, in_tuple = _checked_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def gradient(*xs):
        out = _single_output(func(*xs), "hessian", strict)
        gs = _grad_of((out,), xs, create_graph=True)
        _strict_jacobian(gs, strict)
        gs = _zeros_for_none(gs, xs)
        return gs if in_tuple else gs[0]

    if outer_jacobian_strategy == "forward-mode":
        # torch's forward-over-reverse Hessian runs on inputs it makes require grad: the result does
        inputs = tuple(x.detach().requires_grad_(True) for x in inputs_t)
        result = jacobian(gradient, inputs if in_tuple else inputs[0], create_graph=create_graph, strict=strict,
                          vectorize=vectorize, strategy="forward-mode")
        return result
    return jacobian(gradient, inputs, create_graph=create_graph, strict=strict,
                    vectorize=vectorize)


def _single_output(output, where: str, strict: bool):
    outputs, out_tuple = _checked_tuple(output, "outputs of the user-provided function", where)
    _strict_outputs(outputs, strict)
    if out_tuple:
        raise RuntimeError(f"The function given to {where} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {where} should contain a single element")
    return outputs[0].squeeze() if where == "hessian" else outputs[0]


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v) for a scalar function, by differentiating ⟨∇f, v⟩."""
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp")


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), vᵀ H); equal to hvp since the Hessian is symmetric."""
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp")


def _hessian_product(func, inputs, v, create_graph: bool, strict: bool, where: str):
    with enable_grad():
        inputs, in_tuple = _checked_tuple(inputs, "inputs", where)
        xs = _prepare(inputs, create_graph)
        if v is not None:
            vs = _checked_v(v, inputs, in_tuple, where)
        else:
            _none_v_allowed(inputs, "the input to the user-provided function is")
            vs = tuple(x.detach().new_ones(x.shape) for x in inputs)
        out = _single_output(func(*xs), where, strict)
        gs = _grad_of((out,), xs, create_graph=True)
        _strict_jacobian(gs, strict)
        hv = _grad_of(gs, xs, vs, create_graph)
        hv = _zeros_where_none(hv, xs, strict, create_graph, "double_back")
    return (out if create_graph else out.detach()), _finish(hv, in_tuple, create_graph)
