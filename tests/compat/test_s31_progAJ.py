"""Two roundings found by the elmo_char_highway program, against torch 2.13's CPU kernels.

Pointwise (1×1) float32 convolutions with a bias round as torch's kernel rounds them.

Found writing the elmo_char_highway program, whose character CNN has a width-1 ``Conv1d``: torch's
oneDNN 1×1 kernel starts each output at the bias and adds the input channels in order by fused
multiply-adds, while chainrule added the bias after the GEMM, so 6,086 of the 13,824 outputs of
that layer differed in the last bit (and the program's perplexity drifted from torch's). The
layouts and sizes torch sends elsewhere (strides, padding, channels-last, one sample) keep the
GEMM-then-bias order, and must still agree with torch.

float32 sigmoid takes e^-x from torch's exp (the float64 exp rounded to float32, as chainrule's
exp does) instead of NumPy's float32 exp, an ulp off in about two values of five: of the 401,010
float32 inputs below 62,092 sigmoids differed from torch (13,476 by 2 to 4 ulps), now 15,450
(1,916 by 2 to 4 ulps; torch's kernel has its own vectorised exp, whose rounding is not
reproduced); the highway gates of the program differed in 1,392 of 15,360, now 269.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

# (input shape, out channels, conv keyword arguments)
POINTWISE = [
    ((192, 12, 9), 8, {}),
    ((64, 12, 100), 8, {}),
    ((4, 64, 9), 8, {}),
    ((8, 3, 5), 4, {}),
    ((2, 256, 30), 64, {}),
    ((4, 12, 10), 8, {"dilation": 2}),
    ((4, 12, 1), 8, {}),
    ((4, 12, 6, 6), 8, {}),
    ((2, 64, 5, 5), 32, {}),
    ((2, 12, 1, 1), 8, {}),
    ((3, 12, 4, 5, 6), 8, {}),
    ((2, 40, 3, 3, 3), 16, {}),
]
# pointwise shapes torch's kernel does not take the bias-first way, where the GEMM-then-bias order
# agrees with it (grouped ones and those past 256 channels do not yet: the BLAS's own summation order)
ELSEWHERE = [
    ((4, 12, 7, 7), 8, {"stride": 2}),
    ((4, 12, 6, 6), 8, {"padding": 1}),
    ((1, 12, 9), 8, {}),
    ((4, 12, 8, 8), 8, {"kernel": 3, "padding": 1}),
]


# Without AVX-512 (an AMD EPYC with AVX2, seen with ONEDNN_VERBOSE=1) torch's kernels for these add
# in orders of their own, last bits apart from both of chainrule's orders: oneDNN's jit_1x1:avx2 over
# 256 channels (3368 of 3840 outputs apart), its direct jit:avx2 for a stride (the bias-first chain
# exactly; 361 of 512 apart from the GEMM) and a 3×3 kernel (1771 of 2048), its gemm:jit for padding
# (176 of 2048), and for one sample MKL's sgemm onto the bias (MKL_CBWR changes it; 49 of 72)
OTHER_ORDER_WITHOUT_AVX512 = [POINTWISE[4], *ELSEWHERE]


# On one torch thread (OMP_NUM_THREADS=1) torch gives a small undilated 1×1 batch (under 16 samples) to
# its slow kernel, the bias copied into the output and MKL's GEMM added onto it, which chainrule's
# GEMM-then-bias reproduces, except with one output position per sample (a matrix-vector product):
# there MKL sums in an order of its own (14 of 32 outputs of (4, 12, 1) apart from chainrule's, and
# from the bias-first chain, the chain-then-bias and the exactly rounded sum alike).
def _mkl_matrix_vector(shape, kwargs) -> bool:
    return (torch.get_num_threads() == 1 and shape[0] < 16 and int(np.prod(shape[2:])) == 1
            and "dilation" not in kwargs)


def _torch_kernels_are_avx512() -> bool:
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def _assert_within_reordering(got, expected, x, w, b, kwargs):
    """|got - expected| within 2.5 eps of the sum of the terms' magnitudes, |x| ⋆ |w| + |b|: what
    adding the same products in another order changes (measured at most 2.01 eps of it, over 257
    terms; 1.04 over 13)."""
    magnitudes = _conv(torch, *(np.abs(a).astype(np.float64) for a in (x, w, b)), kwargs)
    assert np.all(np.abs(got.astype(np.float64) - expected) <= 2.5 * np.finfo(got.dtype).eps * magnitudes)


def _conv(lib, x, w, b, kwargs):
    op = {3: lib.nn.functional.conv1d, 4: lib.nn.functional.conv2d, 5: lib.nn.functional.conv3d}[x.ndim]
    return op(lib.from_numpy(x), lib.from_numpy(w), lib.from_numpy(b), **kwargs).numpy()


def _operands(shape, out_channels, kwargs, seed=0):
    rng = np.random.RandomState(seed)
    kwargs = dict(kwargs)
    kernel = kwargs.pop("kernel", 1)
    groups = kwargs.get("groups", 1)
    x = rng.randn(*shape).astype(np.float32)
    w = rng.randn(out_channels, shape[1] // groups, *(kernel,) * (len(shape) - 2)).astype(np.float32)
    b = rng.randn(out_channels).astype(np.float32)
    return x, w, b, kwargs


@pytest.mark.parametrize(("shape", "out_channels", "kwargs"), POINTWISE + ELSEWHERE)
def test_pointwise_conv_with_bias_equals_torch_bit_for_bit(shape, out_channels, kwargs):
    other_order = (not _torch_kernels_are_avx512() and (shape, out_channels, kwargs) in OTHER_ORDER_WITHOUT_AVX512
                   or _mkl_matrix_vector(shape, kwargs))
    x, w, b, kwargs = _operands(shape, out_channels, kwargs)
    expected = _conv(torch, x, w, b, kwargs)
    got = _conv(chainrule, x, w, b, kwargs)
    assert got.shape == expected.shape
    if other_order:
        _assert_within_reordering(got, expected, x, w, b, kwargs)
        return
    assert np.count_nonzero(got != expected) == 0


def test_channels_last_pointwise_conv_equals_torch_and_stays_channels_last():
    x, w, b, _ = _operands((4, 12, 6, 6), 8, {})
    results = []
    for lib in (torch, chainrule):
        xt = lib.from_numpy(x).to(memory_format=lib.channels_last)
        y = lib.nn.functional.conv2d(xt, lib.from_numpy(w), lib.from_numpy(b))
        results.append((y.is_contiguous(memory_format=lib.channels_last), y.numpy()))
    assert results[0][0] == results[1][0]
    assert np.count_nonzero(results[0][1] != results[1][1]) == 0


def test_width_one_conv1d_module_forward_and_gradients_match_torch():
    x, w, b, _ = _operands((16, 12, 9), 8, {})
    outputs = []
    for lib in (torch, chainrule):
        conv = lib.nn.Conv1d(12, 8, kernel_size=1)
        with lib.no_grad():
            conv.weight.copy_(lib.from_numpy(w))
            conv.bias.copy_(lib.from_numpy(b))
        xt = lib.from_numpy(x).requires_grad_()
        y = conv(xt)
        y.pow(2).sum().backward()
        outputs.append((y.detach().numpy(), xt.grad.numpy(), conv.weight.grad.numpy(), conv.bias.grad.numpy()))
    assert np.count_nonzero(outputs[0][0] != outputs[1][0]) == 0
    for expected, got in zip(outputs[0][1:], outputs[1][1:]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_float64_pointwise_conv_keeps_the_gemm_then_bias_order_as_torch():
    x, w, b, _ = _operands((4, 12, 6, 6), 8, {})
    x, w, b = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    got, expected = _conv(chainrule, x, w, b, {}), _conv(torch, x, w, b, {})
    if not _torch_kernels_are_avx512():
        # torch's float64 convolution is MKL's dgemm onto the bias (MKL_CBWR changes it), whose path
        # without AVX-512 adds in an order of its own: 68 of 1152 outputs apart, by 0.79 eps of the
        # terms' magnitudes at most
        _assert_within_reordering(got, expected, x, w, b, {})
        return
    assert np.count_nonzero(got != expected) == 0


def _sigmoid_inputs():
    rng = np.random.RandomState(0)
    return np.concatenate([rng.randn(200000) * 5, np.linspace(-100, 100, 200001), rng.randn(1000) * 0.01,
                           [0.0, -0.0, 88.0, -88.0, -88.8, -103.0, -104.0, np.inf, -np.inf]]).astype(np.float32)


def test_float32_sigmoid_differs_from_torch_in_fewer_values():
    x = _sigmoid_inputs()
    expected = torch.sigmoid(torch.from_numpy(x)).numpy()
    got = chainrule.sigmoid(chainrule.from_numpy(x)).numpy()
    ulps = np.abs(got.view(np.int32).astype(np.int64) - expected.view(np.int32).astype(np.int64))
    # with NumPy's float32 exp: 62,092 of 401,010 differed (15.5%), 13,476 by 2 to 4 ulps
    assert np.count_nonzero(ulps) <= 0.05 * x.size
    assert np.count_nonzero(ulps > 1) <= 0.01 * x.size
    assert ulps.max() <= 4


def test_float32_sigmoid_keeps_torch_values_at_the_edges():
    x = np.array([0.0, -0.0, 88.0, -88.0, -88.8, -103.0, -104.0, 17.0, -17.0, np.inf, -np.inf, np.nan],
                 dtype=np.float32)
    expected = torch.sigmoid(torch.from_numpy(x)).numpy()
    got = chainrule.sigmoid(chainrule.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, expected)


def test_highway_gate_sigmoid_and_its_gradient_match_torch():
    rng = np.random.RandomState(3)
    x = (rng.randn(192, 80) * 0.6 + 0.8).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        xt = lib.from_numpy(x).requires_grad_()
        gate = lib.sigmoid(xt)
        (gate * 2 + (1 - gate) * 3).sum().backward()
        results.append((gate.detach().numpy(), xt.grad.numpy()))
    assert np.count_nonzero(results[0][0] != results[1][0]) <= 0.05 * x.size
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-6, atol=0)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5, atol=1e-7)
