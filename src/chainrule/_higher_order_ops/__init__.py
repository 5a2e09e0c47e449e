"""chainrule._higher_order_ops: torch._higher_order_ops' control-flow operators, run eagerly.

torch builds these for torch.compile and torch.export (one traced subgraph per body); outside a
compiler they are loops, and here they are exactly those loops: ``cond`` takes one branch,
``while_loop`` repeats its body, ``scan`` threads a carry through slices of ``xs`` and stacks what
each step returns, ``map`` applies ``f`` to each slice of ``xs``. The bodies run on chainrule ops, so
gradients flow through every step taken (torch's ``map`` and ``scan`` are differentiable too).
"""

from __future__ import annotations

from ..ops.compat import cond, while_loop
from ..ops.shape import stack
from ..utils._pytree import tree_flatten, tree_leaves, tree_unflatten

__all__ = ["cond", "while_loop", "scan", "map"]


def _leaves_to_slice(xs, op: str):
    leaves, spec = tree_flatten(xs)
    if not leaves:
        raise RuntimeError(f"{op}: expected at least one tensor to iterate over in xs")
    return leaves, spec


def _stacked(steps: list, spec, dim: int):
    """Each step's output leaves stacked, in the structure of one step's output: along ``dim`` as in
    torch (stacked first, then the new dimension moved to ``dim`` where the result has one)."""
    stacked = [stack([leaves[k] for leaves in steps]) for k in range(len(steps[0]))]
    return tree_unflatten([t.movedim(0, dim) if t.dim() > dim else t for t in stacked], spec)


def scan(combine_fn, init, xs, *, dim: int = 0, reverse: bool = False):
    """torch._higher_order_ops.scan: ``carry, y = combine_fn(carry, x)`` for each slice ``x`` of
    ``xs`` along ``dim`` (from the last when ``reverse``), starting from ``init``. Returns the final
    carry (``init``'s structure) and the ``y``s stacked along ``dim`` in the order of ``xs``."""
    x_leaves, x_spec = _leaves_to_slice(xs, "scan")
    if any(x.dim() <= dim or x.size(dim) == 0 for x in x_leaves):
        raise RuntimeError("All xs leaves must at least have 'dim' number of dimensions and scan dimension > 0")
    _, carry_spec = tree_flatten(init)
    length = x_leaves[0].size(dim)
    steps, out_spec, carry = [], None, init
    for index in (reversed(range(length)) if reverse else range(length)):
        carry, y = combine_fn(carry, tree_unflatten([x.select(dim, index) for x in x_leaves], x_spec))
        y_leaves, out_spec = tree_flatten(y)
        steps.append(y_leaves)
    if reverse:
        steps.reverse()
    carry = tree_unflatten(tree_leaves(carry), carry_spec)
    return carry, _stacked(steps, out_spec, dim)


def map(f, xs, *args):
    """torch._higher_order_ops.map (functorch.experimental.control_flow.map): ``f(x, *args)`` for
    each slice ``x`` of ``xs`` along its first dimension, the results stacked along it."""
    x_leaves, x_spec = _leaves_to_slice(xs, "map")
    steps, out_spec = [], None
    for index in range(x_leaves[0].size(0)):
        out_leaves, out_spec = tree_flatten(f(tree_unflatten([x.select(0, index) for x in x_leaves], x_spec), *args))
        steps.append(out_leaves)
    return _stacked(steps, out_spec, 0)
