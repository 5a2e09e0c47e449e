"""Lane perfAV: the paths changed for speed, each against torch (values, gradients, strides, nodes) and
against the computation it replaced (the same bits): mish's float32 tanh(softplus) without its second exp;
depthwise convolutions' columns gathered channels-first (in output rows) from planes of 16 outputs; the
flat depthwise input gradient in larger blocks of planes (the same adds: NumPy's float multiply and add
round the same on every CPU, so its bit-exact checks hold everywhere).

Mish's float32 blocks compute tanh(s) from q = (1 + e)^-2 e^-2δ (δ the float32 rounding of the float64
log(1 + e)) where they took e^-2s from a float64 exp; the whole-array path (inputs under one block) keeps
the exp, NumPy's float64 functions rounded to float32, so the two are compared bit for bit.
"""

import numpy as np
import pytest

import chainrule
from chainrule.ops import activation, conv

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


# ---------------------------------------------------------------- depthwise columns
def _old_channels_first(c, geo):
    """The rule before: channels-first where an output row is more than twice the channels-last run of
    C/g channels times kW (which a depthwise layer's channels-last copy does not have)."""
    run_channels_last = (c // geo.groups) * (geo.kernel[-1] if geo.dilation[-1] == 1 else 1)
    return (geo.out_shape[-1] if geo.stride[-1] == 1 else 1) > 2 * run_channels_last


def _depthwise_geometry(n, c, size, kernel, stride=None, dilation=None):
    d = len(kernel)
    stride, dilation = stride or (1,) * d, dilation or (1,) * d
    pad = tuple(k // 2 for k in kernel)
    return conv._Geometry(kernel, stride, pad, pad, dilation, c, size)


def test_depthwise_columns_channels_first_from_planes_of_16():
    convnext = _depthwise_geometry(16, 64, (14, 14), (7, 7))
    assert conv._channels_first_columns(64, convnext) and not _old_channels_first(64, convnext)
    small = _depthwise_geometry(128, 16, (3, 3), (3, 3))  # 9 outputs a plane: the per-sample products cost more
    assert not conv._channels_first_columns(16, small)
    rng = np.random.default_rng(60)
    for _ in range(300):  # every layer the rule took channels-first still takes it; other groupings keep the rule
        d = int(rng.integers(1, 4))
        kernel = tuple(int(v) for v in rng.integers(1, 8, d))
        stride, dilation = (tuple(int(v) for v in rng.integers(1, 3, d)) for _ in range(2))
        size = tuple(int(v) for v in rng.integers(8, 30, d))
        c, groups = int(rng.integers(2, 9)), int(rng.choice([1, 2]))
        geo = conv._Geometry(kernel, stride, (0,) * d, (0,) * d, dilation, c // groups if groups == 2 else c, size)
        if _old_channels_first(c, geo):
            assert conv._channels_first_columns(c, geo)
        if c // geo.groups > 1:
            assert conv._channels_first_columns(c, geo) == _old_channels_first(c, geo)


def test_depthwise_chain_route_unchanged():
    # the float32 2-d chain (torch's oneDNN order) is still chosen by its output rows against the kernel's
    for kernel, dilation, size in [((3, 3), (1, 1), (12, 12)), ((5, 5), (1, 1), (9, 9)), ((3, 3), (2, 2), (12, 12)),
                                   ((3, 3), (1, 1), (5, 5)), ((7, 7), (1, 1), (7, 7))]:
        geo = _depthwise_geometry(2, 8, size, kernel, dilation=dilation)
        x = np.zeros((2, 8, *size), np.float32)
        w = np.zeros((8, 1, *kernel), np.float32)
        work = np.prod(geo.padded_shape) * np.prod(kernel)
        expected = (work <= conv._DEPTHWISE_CHAIN_SMALL or (
            work <= conv._DEPTHWISE_CHAIN_MAX_WORK and not _old_channels_first(8, geo))) and conv._onednn_takes_float32(x, w, geo)
        assert conv._depthwise_chain_runs(x, w, geo) == expected


_F = {1: "conv1d", 2: "conv2d", 3: "conv3d"}


@pytest.mark.parametrize("shape, kernel, dtype, multiplier", [
    ((2, 8, 14, 14), (7, 7), np.float32, 1),  # ConvNeXt's block
    ((3, 6, 10, 10), (5, 5), np.float64, 1),
    ((2, 4, 6, 6, 6), (3, 3, 3), np.float32, 1),
    ((4, 5, 16), (9,), np.float64, 2),  # two output channels per group
    ((2, 4, 11, 9), (3, 5), np.float32, 1),
])
def test_depthwise_channels_first_match_torch(shape, kernel, dtype, multiplier):
    rng = np.random.default_rng(61)
    c, d = shape[1], len(kernel)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c * multiplier, 1, *kernel)).astype(dtype)
    b = rng.standard_normal(c * multiplier).astype(dtype)
    geo = _depthwise_geometry(shape[0], c, shape[2:], kernel)
    assert conv._channels_first_columns(c, geo) and not _old_channels_first(c, geo)
    grad = rng.standard_normal((shape[0], c * multiplier, *geo.out_shape)).astype(dtype)
    results = []
    for lib in (chainrule, torch):
        leaves = [lib.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = getattr(lib.nn.functional, _F[d])(*leaves, padding=tuple(k // 2 for k in kernel), groups=c)
        y.backward(lib.tensor(grad))
        results.append((y.detach().numpy(), y.stride(), y.grad_fn.name(),
                        [(leaf.grad.numpy(), leaf.grad.stride()) for leaf in leaves]))
    (ours, stride, node, our_grads), (theirs, their_stride, their_node, their_grads) = results
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours, theirs, **tolerance)
    assert (stride, node) == (their_stride, their_node)
    for (our_grad, our_stride), (their_grad, their_grad_stride) in zip(our_grads, their_grads):
        np.testing.assert_allclose(our_grad, their_grad, **tolerance)
        assert our_stride == their_grad_stride


def test_depthwise_flat_input_grad_blocks_keep_the_bits(monkeypatch):
    rng = np.random.default_rng(62)
    for trial in range(24):
        d = 1 + trial % 3
        n, c = int(rng.integers(1, 4)), int(rng.integers(2, 7))
        kernel = tuple(int(v) for v in rng.integers(1, 6, d))
        stride = tuple(int(v) for v in rng.integers(2 if d == 1 else 1, 4, d))
        dilation = tuple(int(v) for v in rng.integers(1, 3, d))
        lo = tuple(int(v) for v in rng.integers(0, 3, d))
        size = tuple(int(v) for v in rng.integers(6, 13 if d < 3 else 8, d))
        geo = conv._Geometry(kernel, stride, lo, lo, dilation, c, size)
        if min(geo.out_shape) < 1:
            continue
        dtype = np.float32 if trial % 2 else np.float64
        grad = rng.standard_normal((n, c, *geo.out_shape)).astype(dtype)
        w = rng.standard_normal((c, 1, *kernel)).astype(dtype)
        results = []
        for elements in (1 << 6, 1 << 14, conv._DEPTHWISE_FLAT_ELEMENTS):  # one plane a block up to all of them
            monkeypatch.setattr(conv, "_DEPTHWISE_FLAT_ELEMENTS", elements)
            results.append(conv._conv_input_depthwise_flat(grad, w, geo))
        assert all(_same_bits(r, results[0]) for r in results[1:])
