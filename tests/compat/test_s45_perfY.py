"""Session 45, lane perfY: the fast paths taken for film_conditioning's ops, checked against torch.

A 1×1 convolution at stride 1 without padding (one group) is one matrix product in its forward and
its input gradient, and its filter gradient's columns are the channels-last copy of the input; a
global adaptive max pool (every output size 1) takes each plane as its one window. Each case is
compared with torch's values, indices, gradients and memory layout, and the float64 ones are
gradchecked.
"""

import numpy as np
import pytest
import torch as real_torch

import chainrule as torch
import chainrule.nn.functional as F
from chainrule.autograd import gradcheck


def _pair(array, requires_grad=True):
    return (torch.tensor(array, requires_grad=requires_grad), real_torch.tensor(array, requires_grad=requires_grad))


def _close(ours, theirs, dtype):
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **tol)


POINTWISE_CASES = [
    # (x shape, out channels, bias, channels_last, dtype)
    ((32, 18, 9, 9), 64, True, False, np.float32),   # the FiLM classifier conv (past the bias-first bound)
    ((32, 18, 9, 9), 16, True, False, np.float32),   # the FiLM block conv (bias-first forward)
    ((4, 6, 5, 7), 3, False, False, np.float32),
    ((4, 6, 5, 7), 3, True, True, np.float32),       # channels-last input: torch answers channels-last
    ((1, 5, 4), 7, True, False, np.float64),         # conv1d, one sample
    ((2, 3, 2, 3, 4), 5, False, False, np.float64),  # conv3d
]


@pytest.mark.parametrize("shape, out_channels, bias, channels_last, dtype", POINTWISE_CASES)
def test_pointwise_conv_matches_torch(shape, out_channels, bias, channels_last, dtype):
    rng = np.random.default_rng(len(shape) * 100 + out_channels)
    d = len(shape) - 2
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[d]
    torch_conv = {1: real_torch.nn.functional.conv1d, 2: real_torch.nn.functional.conv2d,
                  3: real_torch.nn.functional.conv3d}[d]
    x, tx = _pair(rng.standard_normal(shape).astype(dtype))
    if channels_last:
        x = x.detach().to(memory_format=torch.channels_last).requires_grad_()
        tx = tx.detach().to(memory_format=real_torch.channels_last).requires_grad_()
    w, tw = _pair(rng.standard_normal((out_channels, shape[1]) + (1,) * d).astype(dtype))
    b, tb = _pair(rng.standard_normal(out_channels).astype(dtype)) if bias else (None, None)
    y, ty = conv(x, w, b), torch_conv(tx, tw, tb)
    _close(y, ty, dtype)
    assert y.is_contiguous() == ty.is_contiguous()
    if channels_last:
        assert y.is_contiguous(memory_format=torch.channels_last) == ty.is_contiguous(
            memory_format=real_torch.channels_last)
    g = rng.standard_normal(ty.shape).astype(dtype)
    y.backward(torch.tensor(g))
    ty.backward(real_torch.tensor(g))
    for ours, theirs in ((x, tx), (w, tw)) + (((b, tb),) if bias else ()):
        _close(ours.grad, theirs.grad, dtype)
        assert ours.grad.shape == tuple(theirs.grad.shape)


def test_pointwise_conv_gradcheck_and_transpose():
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.standard_normal((3, 4, 3, 2)), requires_grad=True)
    w = torch.tensor(rng.standard_normal((5, 4, 1, 1)), requires_grad=True)
    b = torch.tensor(rng.standard_normal(5), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b), (x, w, b))
    # conv_transpose2d's forward is the conv's input gradient: the same 1×1 product
    wt = torch.tensor(rng.standard_normal((4, 5, 1, 1)), requires_grad=True)
    assert gradcheck(lambda x, wt: F.conv_transpose2d(x, wt), (x, wt))
    ours = F.conv_transpose2d(x, wt)
    theirs = real_torch.nn.functional.conv_transpose2d(real_torch.tensor(x.detach().numpy()),
                                                       real_torch.tensor(wt.detach().numpy()))
    _close(ours, theirs, np.float64)


GLOBAL_MAX_CASES = [
    # (shape, pool dims, channels_last, dtype)
    ((32, 64, 9, 9), 2, False, np.float32),  # the FiLM classifier's pool
    ((3, 4, 5, 6), 2, True, np.float32),
    ((4, 5, 6), 2, False, np.float64),       # unbatched
    ((2, 3, 7), 1, False, np.float32),
    ((2, 3, 2, 3, 4), 3, False, np.float64),
]


@pytest.mark.parametrize("shape, d, channels_last, dtype", GLOBAL_MAX_CASES)
def test_global_adaptive_max_pool_matches_torch(shape, d, channels_last, dtype):
    rng = np.random.default_rng(sum(shape))
    # small integers: many ties inside a plane, where the first maximum's index is the answer
    array = rng.integers(-3, 4, size=shape).astype(dtype)
    x, tx = _pair(array)
    if channels_last:
        x = x.detach().to(memory_format=torch.channels_last).requires_grad_()
        tx = tx.detach().to(memory_format=real_torch.channels_last).requires_grad_()
    pool = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}[d]
    torch_pool = {1: real_torch.nn.functional.adaptive_max_pool1d, 2: real_torch.nn.functional.adaptive_max_pool2d,
                  3: real_torch.nn.functional.adaptive_max_pool3d}[d]
    y, indices = pool(x, 1, return_indices=True)
    ty, tindices = torch_pool(tx, 1, return_indices=True)
    _close(y, ty, dtype)
    np.testing.assert_array_equal(indices.numpy(), tindices.numpy())
    assert indices.dtype == torch.int64 and y.shape == tuple(ty.shape)
    assert y.is_contiguous() == ty.is_contiguous()
    g = rng.standard_normal(ty.shape).astype(dtype)
    y.backward(torch.tensor(g))
    ty.backward(real_torch.tensor(g))
    _close(x.grad, tx.grad, dtype)


def test_global_adaptive_max_pool_nan_and_gradcheck():
    # a NaN in a plane is its maximum (torch's kernel takes the last NaN)
    array = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) % 7
    array[0, 1, 2, 3] = array[0, 1, 3, 0] = np.nan
    y, indices = F.adaptive_max_pool2d(torch.tensor(array), (1, 1), return_indices=True)
    ty, tindices = real_torch.nn.functional.adaptive_max_pool2d(real_torch.tensor(array), (1, 1), return_indices=True)
    np.testing.assert_array_equal(indices.numpy(), tindices.numpy())
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    x = torch.tensor(np.random.default_rng(3).permutation(2 * 3 * 20).reshape(2, 3, 4, 5) / 10.0, requires_grad=True)
    assert gradcheck(lambda x: F.adaptive_max_pool2d(x, 1), (x,))
