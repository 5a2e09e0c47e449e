"""F.linear's backward in a plain walk computes LinearBackward's arrays without applying it as an
op; the gradients must match torch and, bit for bit, the recorded walk (create_graph) that still
applies it, for every mix of inputs that need a gradient."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import chainrule

RNG = np.random.default_rng(51)
X, W, B = (RNG.standard_normal(shape) for shape in ((5, 3), (4, 3), (4,)))


def _grads(lib, dtype, needs, bias, create_graph=False, input_shape=(5, 3)):
    x = lib.tensor(X.reshape(-1)[:int(np.prod(input_shape))].reshape(input_shape).astype(dtype),
                   requires_grad=needs[0])
    w = lib.tensor(W.astype(dtype), requires_grad=needs[1])
    b = lib.tensor(B.astype(dtype), requires_grad=needs[2]) if bias else None
    out = lib.nn.functional.linear(x, w, b)
    grad_out = lib.tensor(np.linspace(-1.0, 1.0, out.numel()).reshape(tuple(out.shape)).astype(dtype))
    leaves = [t for t in (x, w, b) if t is not None and t.requires_grad]
    return [g.detach().numpy() for g in lib.autograd.grad(out, leaves, grad_out, create_graph=create_graph)]


NEEDS = [n for n in itertools.product((False, True), repeat=3) if any(n[:2]) or n[2]]


@pytest.mark.parametrize("needs", NEEDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_plain_backward_matches_torch_and_the_recorded_walk(needs, bias, dtype):
    if not bias and not any(needs[:2]):
        pytest.skip("nothing needs a gradient")
    if not bias:
        needs = needs[:2] + (False,)
    ours = _grads(chainrule, dtype, needs, bias)
    recorded = _grads(chainrule, dtype, needs, bias, create_graph=True)
    theirs = _grads(torch, dtype, needs, bias)
    assert len(ours) == len(theirs) == len(recorded)
    tolerance = 1e-6 if dtype == "float32" else 1e-12
    for mine, again, reference in zip(ours, recorded, theirs):
        assert mine.dtype == reference.dtype
        np.testing.assert_array_equal(mine, again)
        np.testing.assert_allclose(mine, reference, rtol=tolerance, atol=tolerance)


def test_plain_backward_of_a_batched_input_matches_torch():
    ours = _grads(chainrule, "float32", (True, True, True), True, input_shape=(1, 5, 3))
    theirs = _grads(torch, "float32", (True, True, True), True, input_shape=(1, 5, 3))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine, reference, rtol=1e-6, atol=1e-6)


def test_linear_gradients_gradcheck_in_float64():
    x = chainrule.tensor(X, requires_grad=True)
    w = chainrule.tensor(W, requires_grad=True)
    b = chainrule.tensor(B, requires_grad=True)
    assert chainrule.autograd.gradcheck(chainrule.nn.functional.linear, (x, w, b))
    assert chainrule.autograd.gradgradcheck(chainrule.nn.functional.linear, (x, w, b))


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_a_flop_counter_still_counts_the_backward_products(lib):
    from importlib import import_module

    counter = import_module(f"{lib.__name__}.utils.flop_counter")
    x = lib.randn(5, 3, requires_grad=True)
    w = lib.randn(4, 3, requires_grad=True)
    with counter.FlopCounterMode(display=False) as flops:
        lib.nn.functional.linear(x, w).sum().backward()
    # 2·5·3·4 for the forward product, as many for each of x's and W's gradients
    assert flops.get_total_flops() == 3 * 120
