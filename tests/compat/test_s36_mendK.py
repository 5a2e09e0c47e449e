"""Lane mendK: renorm's speed without losing a bit, the TransformerEncoder fast path, vmap over
modules with state, *_copy out= lists, NaN bits of half precision, mixed-device error names;
each compared with torch 2.13 (CPU)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- 1. renorm in blocks, same bits
@pytest.mark.parametrize("shape", [(3000, 40), (40, 30, 20), (600, 5)])
def test_renorm_two_norm_gradient_in_blocks_keeps_torchs_bits(shape):
    # (3000, 40) and (40, 30, 20) take the backward in blocks of whole slices; (600, 5) in one pass
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(np.float32)
    a[3] = 0  # a zero slice: norm_backward's 0 there
    g = rng.standard_normal(shape).astype(np.float32)
    tx = torch.tensor(a, requires_grad=True)
    cx = chainrule.tensor(a, requires_grad=True)
    ty, cy = torch.renorm(tx, 2, 0, 1.0), chainrule.renorm(cx, 2, 0, 1.0)
    ty.backward(torch.tensor(g))
    cy.backward(chainrule.tensor(g))
    np.testing.assert_array_equal(cy.detach().numpy().view(np.int32), ty.detach().numpy().view(np.int32))
    np.testing.assert_array_equal(cx.grad.numpy().view(np.int32), tx.grad.numpy().view(np.int32))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("p", [2, 1, float("inf")])
def test_renorm_without_grad_scales_as_torchs_kernel(dtype, p):
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((64, 32)) * 2).astype(np.float32)
    with torch.no_grad():
        expected = torch.renorm(torch.tensor(a).to(getattr(torch, dtype)), p, 0, 1.5).float().numpy()
    with chainrule.no_grad():
        got = chainrule.renorm(chainrule.tensor(a).to(getattr(chainrule, dtype)), p, 0, 1.5).float().numpy()
    np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32))


def test_renorm_gradient_of_unscaled_slices_is_a_fresh_array():
    # every slice within maxnorm: the gradient is the incoming one, copied (accumulation may write it)
    x = chainrule.ones(4, 3, requires_grad=True)
    g = chainrule.full((4, 3), 2.0)
    chainrule.renorm(x, 2, 0, 10.0).backward(g)
    x.grad.add_(1.0)
    assert g.tolist() == [[2.0] * 3] * 4
