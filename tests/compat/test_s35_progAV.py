"""What the programs of lane progAV (session 35) found, each checked against torch 2.13 on the same
inputs.

poincare_embeddings retracts its embeddings onto the Poincaré ball by ``renorm_`` after every
step. torch's renorm scales a slice by ``maxnorm / (norm + 1e-7)``, a true division, with the norm
and the factor in float32 for a half or bfloat16 input; chainrule multiplied by the reciprocal (as
``number / tensor`` does) and worked in the input's own precision, an ulp or more apart."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _renorm_bits(lib, values, dtype_name, p, dim, maxnorm, in_place=False):
    x = lib.tensor(values).to(getattr(lib, dtype_name))
    out = x.renorm_(p, dim, maxnorm) if in_place else lib.renorm(x, p, dim, maxnorm)
    return out.float().numpy()


# integer entries: every slice's norm is the correctly rounded square root of an exact sum, so
# the scale factor alone decides the bits
INTEGER_ROWS = np.arange(-7, 17, dtype=np.float32).reshape(4, 6)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("maxnorm", [0.5, 3.0, 1 - 1e-5, 20.0])
@pytest.mark.parametrize("in_place", [False, True])
def test_renorm_scale_factor_is_torchs_division(dim, maxnorm, in_place):
    ours = _renorm_bits(chainrule, INTEGER_ROWS, "float32", 2, dim, maxnorm, in_place)
    theirs = _renorm_bits(torch, INTEGER_ROWS, "float32", 2, dim, maxnorm, in_place)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("p", [1, 2, 3, float("inf")])
def test_renorm_of_a_half_input_scales_in_float32(dtype_name, p):
    values = np.random.default_rng(35).normal(scale=2.0, size=(40, 5)).astype(np.float32)
    ours = _renorm_bits(chainrule, values, dtype_name, p, 0, 1.5)
    theirs = _renorm_bits(torch, values, dtype_name, p, 0, 1.5)
    np.testing.assert_array_equal(ours, theirs)
    assert chainrule.renorm(chainrule.ones(2, 3, dtype=getattr(chainrule, dtype_name)), p, 0, 0.5).dtype \
        == getattr(chainrule, dtype_name)


def test_renorm_gradient_still_follows_the_norm():
    values = np.random.default_rng(7).normal(scale=2.0, size=(5, 4))
    grads = []
    for lib in (chainrule, torch):
        x = lib.tensor(values, requires_grad=True)
        (lib.renorm(x, 2, 0, 1.0) * lib.arange(4.0, dtype=lib.float64)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-14)
