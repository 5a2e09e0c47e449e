"""The backward of a fused backward, by differentiating its first-order rule written in Tensor ops.

A fused op computes its gradient in one array-level ``XBackward`` Function (fast: NumPy on the
saved arrays, nothing recorded). Under ``create_graph=True`` that Function is itself recorded, and
its own backward — the second-order rule — needs the Jacobian of the gradient formula. Where that
Jacobian is long to write out by hand (the normalisations, the fused losses), the op states its
first-order rule once more as a composition of differentiable Tensor ops and this helper takes the
vector-Jacobian product of that composition: correct by construction, and differentiable again.

The same helper serves the batched walk (a Jacobian of a gradient: functional.hessian, jacfwd's
columns): cotangents with one dim more than the rule's outputs are rows of a batch, and their
products come back in one batched walk over the composition, each with the batch dim in front.
"""

from __future__ import annotations

from .engine import grad as _grad
from .grad_mode import enable_grad, is_grad_enabled


def differentiate_rule(rule, inputs: tuple, needs, grad_grads: tuple) -> tuple:
    """One gradient per entry of ``inputs`` (None where ``needs`` is False) of
    ``sum_k <grad_grads[k], rule(*inputs)[k]>``; ``rule`` returns a Tensor or a tuple (None
    entries allowed), ``grad_grads`` pairs with its outputs (None: that output got no gradient).
    Cotangents with a leading batch dim (one dim more than their outputs: the engine's are always
    of the output's own shape) give gradients with that batch dim, as ``is_grads_batched``."""
    create_graph = is_grad_enabled()  # a create_graph pass over this rule records it too
    with enable_grad():
        variables = tuple(_fresh_variable(t) if t is not None else None for t in inputs)
        outputs = rule(*variables)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grad_grads)
                 if o is not None and g is not None and o.requires_grad]
        targets = [v for v, need in zip(variables, needs) if need]
        if pairs and targets:
            batched = all(g.dim() == o.dim() + 1 for o, g in pairs)
            grads = _grad([o for o, _ in pairs], targets, [g for _, g in pairs],
                          create_graph=create_graph, allow_unused=True, is_grads_batched=batched)
        else:
            grads = (None,) * len(targets)
    remaining = iter(grads)
    return tuple(next(remaining) if need else None for need in needs)


def _fresh_variable(t):
    """A tensor with t's value whose gradient is captured at its own node: a view (so, under
    create_graph, gradients taken with respect to it flow on into t's graph), or a new leaf for a
    tensor no gradient reaches."""
    if t.requires_grad:
        return t.view_as(t)
    return t.detach().requires_grad_(True)
