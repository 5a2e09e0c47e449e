"""Session 53 (mendCX): convolutions rounding as torch's kernels do on a CPU without AVX-512.

1. A float32 2-d convolution's input gradient: oneDNN's jit:avx2 backward-data kernel sums each value
   in one FMA chain over (block of 8 output channels, kernel row, kernel column, channel in block);
   chainrule replays it for layers within the chain's size bound (on AVX-512 CPUs, the avx512_core
   kernel's blocked order as before).
2. A pointwise convolution with a bias on torch's slow kernel (one thread, a small batch): MKL's AVX2
   sgemm chains the products from zero, then adds the bias (test_s49_mendBP holds the rest).
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.ops import cpu_features

torch = pytest.importorskip("torch")

avx2_only = pytest.mark.skipif(
    cpu_features.AVX512_CORE or torch.backends.cpu.get_cpu_capability() != "AVX2",
    reason="oneDNN's jit:avx2 / MKL's AVX2 kernels: on AVX-512 CPUs torch takes the avx512 ones, "
           "which test_s49_lead and test_s49_mendBP pin")


def _input_gradient(lib, x, w, g, padding, enabled=True):
    with lib.backends.mkldnn.flags(enabled=enabled):
        xt = lib.tensor(x, requires_grad=True)
        lib.nn.functional.conv2d(xt, lib.tensor(w), padding=padding).backward(lib.tensor(g))
    return np.asarray(xt.grad.detach().numpy()), tuple(xt.grad.stride())


@avx2_only
@pytest.mark.parametrize("x_shape,w_shape,padding", [
    ((2, 16, 6, 6), (16, 16, 3, 3), 1),
    ((3, 8, 7, 5), (24, 8, 3, 3), 0),
    ((2, 16, 5, 6), (8, 16, 3, 2), (2, 1)),
    ((4, 8, 9, 9), (8, 8, 5, 5), 2),
])
def test_conv_input_gradient_is_onednns_avx2_chain(x_shape, w_shape, padding):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) * 0.2).astype(np.float32)
    out_shape = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=padding).shape
    g = rng.standard_normal(tuple(out_shape)).astype(np.float32)
    expected, expected_strides = _input_gradient(torch, x, w, g, padding)
    got, strides = _input_gradient(chainrule, x, w, g, padding)
    assert strides == expected_strides and got.dtype == np.float32
    assert np.count_nonzero(got != expected) == 0


@avx2_only
def test_pointwise_conv_slow_kernel_is_mkls_avx2_chain(monkeypatch):
    # 12→16 over 4×4 positions, batch 3 on one thread: torch's slow kernel, MKL's AVX2 sgemm
    rng = np.random.RandomState(3)
    x = rng.randn(3, 12, 4, 4).astype(np.float32)
    w = rng.randn(16, 12, 1, 1).astype(np.float32)
    b = rng.randn(16).astype(np.float32)
    monkeypatch.setattr(chainrule._config, "torch_intra_op_threads", lambda: 1)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        expected = torch.nn.functional.conv2d(*map(torch.from_numpy, (x, w, b))).numpy()
    finally:
        torch.set_num_threads(before)
    got = chainrule.nn.functional.conv2d(*map(chainrule.from_numpy, (x, w, b))).numpy()
    assert np.count_nonzero(got != expected) == 0


@avx2_only
@pytest.mark.parametrize("x_shape,out_channels,threads", [
    ((2, 40, 13), 16, 2), ((3, 12, 3, 4), 8, 2), ((3, 12, 3, 4), 8, 1), ((6, 5, 4, 3, 2), 6, 1)])
def test_pointwise_conv_without_onednn_is_mkls_avx2_chain(x_shape, out_channels, threads, monkeypatch):
    # the slow kernel for any thread count with oneDNN off; below a batch of 16 MKL's AVX2 sgemm chain
    # (3-d on one thread only: on two, torch's slow_conv3d rounds otherwise, see conv.py)
    rng = np.random.RandomState(7)
    x = rng.randn(*x_shape).astype(np.float32)
    w = rng.randn(out_channels, x_shape[1], *(1,) * (len(x_shape) - 2)).astype(np.float32)
    b = rng.randn(out_channels).astype(np.float32)
    op = f"conv{len(x_shape) - 2}d"
    monkeypatch.setattr(chainrule._config, "torch_intra_op_threads", lambda: threads)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.backends.mkldnn.flags(enabled=False), chainrule.backends.mkldnn.flags(enabled=False):
            expected = getattr(torch.nn.functional, op)(*map(torch.from_numpy, (x, w, b))).numpy()
            got = getattr(chainrule.nn.functional, op)(*map(chainrule.from_numpy, (x, w, b))).numpy()
    finally:
        torch.set_num_threads(before)
    assert got.shape == expected.shape and np.count_nonzero(got != expected) == 0
