"""Lane perfAV: the paths changed for speed, each against torch (values, gradients, strides, nodes) and
against the computation it replaced (the same bits): mish's float32 tanh(softplus) without its second exp.

Mish's float32 blocks compute tanh(s) from q = (1 + e)^-2 e^-2δ (δ the float32 rounding of the float64
log(1 + e)) where they took e^-2s from a float64 exp; the whole-array path (inputs under one block) keeps
the exp, NumPy's float64 functions rounded to float32, so the two are compared bit for bit.
"""

import numpy as np
import pytest

import chainrule
from chainrule.ops import activation

torch = pytest.importorskip("torch")


def _same_bits(a, b):
    """Equal values, NaN at the same places and the same signs (a NaN's sign aside: it means nothing)."""
    numbers = ~np.isnan(a)
    return (a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
            and np.array_equal(np.signbit(a[numbers]), np.signbit(b[numbers])))


# ---------------------------------------------------------------- mish
# the edges of each step: e^x past the float range (88.72...), log1p's tiny branch (x under about -20), tanh's
# series (s under 2^-5, x under about -3.4) and its float32 1 (s past 9.01)
_MISH_EDGES = np.array([0, -0.0, np.inf, -np.inf, np.nan, 88.72, 88.7228, 88.73, 89, -88, -103, -104, -150, 1e-45,
                        -1e-45, 9.0, 9.01, 9.1, -3.4, -3.5, -20, -20.5, -21, 3.4e38, -3.4e38], np.float32)


def _mish_input(seed):
    """float32 values past one block: randn at several scales, a band around the branches, the edges."""
    rng = np.random.default_rng(seed)
    parts = [rng.standard_normal(6000) * scale for scale in (1, 3, 12)] + [rng.uniform(-25, 12, 6000)]
    x = np.concatenate(parts).astype(np.float32)
    x[:_MISH_EDGES.size] = _MISH_EDGES
    return x.reshape(4, -1)


def _whole_array_tanh_softplus(x):
    """tanh(log1p(e^x)) by NumPy's float64 functions rounded to float32, one at a time (the path of
    inputs under one block, and of the blocks before they dropped the second exp)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return activation._tanh_array(activation._log1p_array(activation._exp_array(x)))


@pytest.mark.parametrize("seed", [0, 1])
def test_mish_blocks_keep_the_bits(seed):
    x = _mish_input(seed)
    assert x.size >= activation._MISH_BLOCK
    assert _same_bits(activation._mish_tanh_softplus_array(x), _whole_array_tanh_softplus(x))


def test_mish_bit_patterns_keep_the_bits():
    # every 16411th float32 bit pattern: each sign, exponent and the branches between them
    x = np.arange(0, 2 ** 32, 16411, dtype=np.uint64).astype(np.uint32).view(np.float32)
    assert _same_bits(activation._mish_tanh_softplus_float32(x), _whole_array_tanh_softplus(x))


def test_mish_blocks_match_torch():
    x = _mish_input(2)
    grad = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
    results = []
    for lib in (chainrule, torch):
        leaf = lib.tensor(x, requires_grad=True)
        y = lib.nn.functional.mish(leaf)
        y.backward(lib.tensor(grad))
        results.append((y.detach().numpy(), y.stride(), y.grad_fn.name(), leaf.grad.numpy(), leaf.grad.stride()))
    (ours, stride, node, our_grad, grad_stride), (theirs, their_stride, their_node, their_grad, their_grad_stride) = results
    # (torch's SLEEF functions: within an ulp of the correctly rounded values these are; where t + x σ (1 - t²)
    # cancels, near x = -1.19, the gradient keeps few of its bits: 2 of these 24,000 differ by 3e-8, as before)
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-37)
    np.testing.assert_allclose(our_grad, their_grad, rtol=2e-5, atol=1e-7)
    assert (stride, node, grad_stride) == (their_stride, their_node, their_grad_stride)
