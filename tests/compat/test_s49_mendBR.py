"""Float32 conv2d input gradients and conv_transpose2d outputs sum as torch's oneDNN avx512_core
backward-data kernel does (jit_avx512_common_conv_bwd_data_kernel_f32: per block of 16 output
channels a sum from zero over kernel row, kernel column and channel in block, the blocks' partial
sums added in order), for the shapes chainrule routes there (batched, stride 1, one group, input
channels a multiple of 16, at least 64 input channels, kernel taps · 16 <= 448)."""

import numpy as np
import pytest
import torch

import chainrule
from chainrule.autograd import gradcheck
from chainrule.ops import conv as conv_ops
from chainrule.ops import cpu_features
from tests._profile import DIRECTIONAL_GRADCHECK

# (batch, in channels, out channels, kernel, padding, dilation, size)
ROUTED = [
    (4, 64, 64, 3, 1, 1, 8),
    (4, 64, 32, 3, 1, 1, 10),
    (2, 64, 16, 3, 0, 1, 9),
    (4, 128, 48, 3, 2, 2, 8),
    (3, 64, 32, 4, 1, 1, 9),
    (2, 64, 32, 5, 2, 1, 7),
    (2, 80, 16, 2, 0, 1, 6),
    (4, 64, 24, 3, 1, 1, 8),  # a partial last block of output channels
    (2, 64, 40, 3, 1, 1, 7),
]

# torch runs oneDNN's avx512_core backward-data kernel only on an AVX-512 CPU: there chainrule's replay
# is bitwise torch's. On an AVX2 CPU oneDNN takes its avx2 kernel (8 lanes, other blockings), which
# chainrule does not replay: measured on an AMD EPYC (AVX2+FMA) over ROUTED, 70-91% of the values
# differ in their last bits, all within 2.29 eps of the sum of the terms' magnitudes |g| ⋆ |w| (what
# adding the same products in another order moves), asserted below within 3 eps of it.
TORCH_RUNS_AVX512_CORE = cpu_features.AVX512_CORE and torch.backends.cpu.get_cpu_capability() == "AVX512"


def _assert_other_order_of_torchs(got, expected, g, w, geo, c):
    """Off AVX-512: torch's shape, strides and dtype, its values to within a reordering of the sum."""
    assert tuple(got.shape) == tuple(expected.shape) and got.stride() == expected.stride()
    assert got.dtype == chainrule.float32 and expected.dtype == torch.float32
    got, expected = got.detach().numpy(), expected.detach().numpy()
    magnitudes = conv_ops._conv_input(np.abs(g).astype(np.float64), np.abs(w).astype(np.float64), geo, c)
    assert np.all(np.abs(got.astype(np.float64) - expected) <= 3 * np.finfo(np.float32).eps * (magnitudes + 1))


def _arrays(shape):
    n, c, o, k, p, dl, size = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    out = (size + 2 * p - dl * (k - 1) - 1) + 1
    g = rng.standard_normal((n, o, out, out)).astype(np.float32)
    return x, w, g


@pytest.mark.parametrize("shape", ROUTED)
def test_shape_is_routed(shape):
    n, c, o, k, p, dl, size = shape
    x, w, g = _arrays(shape)
    geo = conv_ops._Geometry((k, k), (1, 1), (p, p), (p, p), (dl, dl), 1, (size, size))
    assert conv_ops._adjoint_in_onednn_blocks(g, w, geo, c) == cpu_features.AVX512_CORE


@pytest.mark.parametrize("shape", ROUTED)
def test_conv2d_input_grad_bitwise(shape):
    n, c, o, k, p, dl, size = shape
    x, w, g = _arrays(shape)
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.conv2d(tx, torch.tensor(w), padding=p, dilation=dl).backward(torch.tensor(g))
    cx = chainrule.tensor(x, requires_grad=True)
    chainrule.nn.functional.conv2d(cx, chainrule.tensor(w), padding=p, dilation=dl).backward(chainrule.tensor(g))
    if not TORCH_RUNS_AVX512_CORE:
        geo = conv_ops._Geometry((k, k), (1, 1), (p, p), (p, p), (dl, dl), 1, (size, size))
        _assert_other_order_of_torchs(cx.grad, tx.grad, g, w, geo, c)
        return
    np.testing.assert_array_equal(cx.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("shape", ROUTED)
def test_conv_transpose2d_forward_bitwise(shape):
    # conv_transpose2d(g, w) is conv2d's input gradient map: (n, o, ...) → (n, c, ...)
    n, c, o, k, p, dl, size = shape
    _, w, g = _arrays(shape)
    b = np.linspace(-1, 1, c, dtype=np.float32)
    expected = torch.nn.functional.conv_transpose2d(torch.tensor(g), torch.tensor(w), torch.tensor(b), padding=p,
                                                    dilation=dl)
    got = chainrule.nn.functional.conv_transpose2d(chainrule.tensor(g), chainrule.tensor(w), chainrule.tensor(b),
                                                   padding=p, dilation=dl)
    if not TORCH_RUNS_AVX512_CORE:
        # the bias (|b| <= 1) is inside the bound's + 1
        geo = conv_ops._Geometry((k, k), (1, 1), (p, p), (p, p), (dl, dl), 1, (size, size))
        _assert_other_order_of_torchs(got, expected, g, w, geo, c)
        return
    assert tuple(got.shape) == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize("shape", ROUTED)
def test_routed_values_match_float64(shape):
    n, c, o, k, p, dl, size = shape
    x, w, g = _arrays(shape)
    geo = conv_ops._Geometry((k, k), (1, 1), (p, p), (p, p), (dl, dl), 1, (size, size))
    got = conv_ops._conv_input_onednn_blocks(g, w, geo)
    exact = conv_ops._conv_input(g.astype(np.float64), w.astype(np.float64), geo, c)
    assert got.shape == exact.shape and got.dtype == np.float32
    scale = conv_ops._conv_input(np.abs(g).astype(np.float64), np.abs(w).astype(np.float64), geo, c)
    assert np.all(np.abs(got - exact) <= 4 * np.finfo(np.float32).eps * (scale + 1e-30) * o * k * k / 16)


def test_routed_shape_family_gradcheck_float64():
    # float64 takes the per-offset GEMMs (the route is float32's); its gradients stay exact
    rng = np.random.default_rng(3)
    x = chainrule.tensor(rng.standard_normal((2, 64, 5, 5)), requires_grad=True)
    w = chainrule.tensor(rng.standard_normal((16, 64, 3, 3)) * 0.1, requires_grad=True)
    assert gradcheck(lambda a, b: chainrule.nn.functional.conv2d(a, b, padding=1), (x, w), fast_mode=DIRECTIONAL_GRADCHECK)
    g = chainrule.tensor(rng.standard_normal((2, 16, 5, 5)), requires_grad=True)
    assert gradcheck(lambda a, b: chainrule.nn.functional.conv_transpose2d(a, b, padding=1), (g, w), fast_mode=DIRECTIONAL_GRADCHECK)


def test_route_double_backward_through_conv_transpose():
    # the routed map is used inside conv2d's backward: create_graph gradients agree with torch's
    x, w, g = _arrays((2, 64, 16, 3, 1, 1, 6))
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    (gx,) = torch.autograd.grad(torch.nn.functional.conv2d(tx, tw, padding=1), tx, torch.tensor(g), create_graph=True)
    cx = chainrule.tensor(x, requires_grad=True)
    cw = chainrule.tensor(w, requires_grad=True)
    (cgx,) = chainrule.autograd.grad(chainrule.nn.functional.conv2d(cx, cw, padding=1), cx, chainrule.tensor(g),
                                     create_graph=True)
    np.testing.assert_allclose(cgx.detach().numpy(), gx.detach().numpy(), rtol=1e-5, atol=1e-4)
    (tgw,) = torch.autograd.grad(gx.square().sum(), tw)
    (cgw,) = chainrule.autograd.grad(cgx.square().sum(), cw)
    np.testing.assert_allclose(cgw.numpy(), tgw.numpy(), rtol=1e-4, atol=1e-3)
