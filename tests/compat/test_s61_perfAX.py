"""Session 61 perfAX: fast paths pinned against torch 2.13 (values, gradients, strides)."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _product_strides(lib, build, shapes, retain, hooked):
    a = lib.ones(*shapes[0], requires_grad=True)
    b = lib.ones(*shapes[1], requires_grad=True)
    c = lib.ones(shapes[1][0], requires_grad=True)
    if hooked:
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
            y = build(lib, a, b, c)
    else:
        y = build(lib, a, b, c)
    y.sum().backward(retain_graph=retain)
    fn = y.grad_fn
    names = sorted(n for n in dir(fn) if n.endswith("_sym_strides"))
    return fn.name(), [(n, tuple(getattr(fn, n))) for n in names]


_BUILDS = {
    "mm": lambda lib, a, b, c: a @ b.t(),
    "mm_one_needs": lambda lib, a, b, c: a @ b.detach().t(),
    "linear": lambda lib, a, b, c: lib.nn.functional.linear(a, b, c),
    "linear_input_only": lambda lib, a, b, c: lib.nn.functional.linear(a, b.detach(), c),
    "addmm_column_major": lambda lib, a, b, c: lib.addmm(c, a.t().contiguous().t(), b.t()),
}


@pytest.mark.parametrize("hooked", [False, True])
@pytest.mark.parametrize("retain", [False, True])
@pytest.mark.parametrize("name", sorted(_BUILDS))
def test_product_strides_noted_at_forward(name, retain, hooked):
    # the strides are noted by the forward, so backward frees the node with a slot clear; they
    # still answer afterwards, also where saved_tensors_hooks packed the matrices (torch keeps numbers)
    build = _BUILDS[name]
    assert _product_strides(chainrule, build, ((3, 4), (5, 4)), retain, hooked) == \
        _product_strides(torch, build, ((3, 4), (5, 4)), retain, hooked)
