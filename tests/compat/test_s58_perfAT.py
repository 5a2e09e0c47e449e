"""Lane perfAT: the paths added for speed, each against torch — values, gradients, strides.

The depthwise forward chain (``conv._conv_depthwise_chain``) sums as torch's oneDNN kernel does;
those bits were measured on the AVX2 machine, so the bit-exact checks run there and a tolerance
holds elsewhere.
"""

import numpy as np
import pytest

import chainrule
from chainrule.ops import conv, cpu_features

torch = pytest.importorskip("torch")

# where OpenBLAS's and oneDNN's kernels are the AVX-512 ones their summation orders were not measured
_BITS_MEASURED = not cpu_features.AVX512_CORE


def _assert_matches(ours, theirs):
    if _BITS_MEASURED:
        np.testing.assert_array_equal(ours, theirs)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def _depthwise_pair(x, w, b, layout, **kwargs):
    """conv2d(groups=C) on both libraries, forward and backward of a fixed cosine weighting."""
    results = []
    for lib in (chainrule, torch):
        leaves = [lib.tensor(a, requires_grad=True) for a in (x, w) + ((b,) if b is not None else ())]
        xs = leaves[0].contiguous(memory_format=lib.channels_last) if layout == "channels_last" else leaves[0]
        y = lib.nn.functional.conv2d(xs, leaves[1], leaves[2] if b is not None else None, groups=x.shape[1], **kwargs)
        weight = lib.tensor(np.cos(np.arange(y.numel())).reshape(y.shape).astype(np.float32))
        (y * weight).sum().backward()
        results.append((y.detach().numpy(), y.stride(), type(y.grad_fn).__name__, [t.grad.numpy() for t in leaves]))
    return results


@pytest.mark.parametrize("shape, k, bias, layout, kwargs", [
    ((6, 24, 8, 8), 3, True, "contiguous", dict(padding=1)),        # FocalNet's focal layers
    ((6, 24, 8, 8), 5, True, "contiguous", dict(padding=2)),
    ((4, 8, 12, 12), 3, False, "channels_last", dict(padding=1)),
    ((5, 6, 9, 11), 3, True, "contiguous", dict(stride=2, padding=1)),
    ((3, 5, 10, 9), (2, 3), True, "contiguous", dict(stride=(1, 2), padding=(1, 0), dilation=(2, 1))),
    ((4, 6, 7, 7), 3, True, "contiguous", dict(padding=3)),          # padded past the kernel: the bias last
    ((17, 4, 6, 6), 1, True, "contiguous", dict(stride=2)),          # a strided 1×1: oneDNN's dw kernel
])
def test_depthwise_forward_sums_as_onednn(shape, k, bias, layout, kwargs):
    rng = np.random.default_rng(58)
    c = shape[1]
    kernel = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((c, 1, *kernel)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32) if bias else None
    geo = conv._Geometry(kernel, *(
        (v,) * 2 if isinstance(v, int) else v
        for v in (kwargs.get("stride", 1), kwargs.get("padding", 0), kwargs.get("padding", 0), kwargs.get("dilation", 1))),
        c, shape[2:])
    assert conv._depthwise_chain_runs(x, w, geo)  # the path under test
    (ours, our_stride, our_node, our_grads), (theirs, their_stride, their_node, their_grads) = _depthwise_pair(
        x, w, b, layout, **kwargs)
    _assert_matches(ours, theirs)
    assert our_stride == their_stride and our_node == their_node
    for a, t in zip(our_grads, their_grads):
        np.testing.assert_allclose(a, t, rtol=1e-4, atol=1e-4)


def test_depthwise_chain_keeps_nonfinite_to_its_channel():
    # the duplicated weight row and the padding positions must not carry one channel's inf or nan
    # into another's outputs
    x = np.ones((2, 3, 6, 6), dtype=np.float32)
    x[0, 1, 2, 2] = np.inf
    x[1, 2, 0, 0] = np.nan
    w = np.full((3, 1, 3, 3), 0.5, dtype=np.float32)
    ours = chainrule.nn.functional.conv2d(chainrule.tensor(x), chainrule.tensor(w), padding=1, groups=3).numpy()
    theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1, groups=3).numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert np.isfinite(ours[0, [0, 2]]).all() and np.isfinite(ours[1, :2]).all()


def test_depthwise_chain_left_to_the_gemm_elsewhere():
    # 1-d, float64, big planes, and a channel multiplier keep the GEMM route
    f32 = np.float32
    assert not conv._depthwise_chain_runs(np.zeros((2, 4, 9), f32), np.zeros((4, 1, 3), f32),
                                          conv._Geometry((3,), (1,), (1,), (1,), (1,), 4, (9,)))
    assert not conv._depthwise_chain_runs(np.zeros((2, 4, 8, 8)), np.zeros((4, 1, 3, 3)),
                                          conv._Geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 4, (8, 8)))
    assert not conv._depthwise_chain_runs(np.zeros((2, 4, 28, 28), f32), np.zeros((4, 1, 3, 3), f32),
                                          conv._Geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 4, (28, 28)))
    assert not conv._depthwise_chain_runs(np.zeros((2, 4, 8, 8), f32), np.zeros((8, 1, 3, 3), f32),
                                          conv._Geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 4, (8, 8)))


def _mish_inputs():
    rng = np.random.default_rng(58)
    edges = np.array([0, -0.0, np.inf, -np.inf, np.nan, 88.7, 89.0, -87.0, -104.0, -20.1, -20.2, -3.4, -3.5, 1e-30, -1e-30],
                     dtype=np.float32)
    x = np.concatenate([rng.standard_normal(3 * 8192 + 5).astype(np.float32) * 3, edges,
                        np.float32(-3.45) + np.arange(-2000, 2000, dtype=np.float32) * np.float32(1e-5),
                        np.float32(-20.15) + np.arange(-2000, 2000, dtype=np.float32) * np.float32(1e-4)])
    return x, rng.standard_normal(x.shape).astype(np.float32)


def test_mish_blocked_gradient_is_the_unblocked_kernels():
    # the blocked float32 backward runs the same operations as the whole-array one, which a
    # non-contiguous input still takes: the same bits, NaNs and signs included
    from chainrule.ops import activation
    x, g = _mish_inputs()
    t = activation._mish_tanh_softplus_array(x)
    blocked = activation._mish_grad_array(x, g, t)
    strided = np.empty((x.size, 2), np.float32)
    strided[:, 0] = x
    whole = activation._mish_grad_array(strided[:, 0], g, t)
    np.testing.assert_array_equal(blocked, whole)
    assert np.array_equal(np.signbit(blocked), np.signbit(whole))


def test_mish_forward_and_gradient_as_torch():
    x, g = _mish_inputs()
    x, g = x[:-1].reshape(5, -1), g[:-1].reshape(5, -1)  # 32,595 values: no multiple of the block
    results = []
    for lib in (chainrule, torch):
        leaf = lib.tensor(x, requires_grad=True)
        y = lib.nn.functional.mish(leaf)
        y.backward(lib.tensor(g))
        results.append((y.detach().numpy(), leaf.grad.numpy(), y.stride(), type(y.grad_fn).__name__))
    (y, grad, stride, node), (ty, tgrad, tstride, tnode) = results
    assert stride == tstride and node == tnode
    np.testing.assert_allclose(y, ty, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad, tgrad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3, 5])
@pytest.mark.parametrize("mode, padding_mode, align_corners", [
    ("bilinear", "zeros", False), ("bilinear", "border", True), ("bilinear", "reflection", False),
    ("bicubic", "zeros", True)])
def test_grid_sample_tap_sums_as_torch(channels, mode, padding_mode, align_corners):
    # the tap-weighing forward and the channel sum of the grid's gradient (few channels) against torch
    rng = np.random.default_rng(58)
    x = rng.standard_normal((2, channels, 7, 9)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, (2, 5, 6, 2)).astype(np.float32)
    g = rng.standard_normal((2, channels, 5, 6)).astype(np.float32)
    results = []
    for lib in (chainrule, torch):
        leaves = [lib.tensor(x, requires_grad=True), lib.tensor(grid, requires_grad=True)]
        y = lib.nn.functional.grid_sample(*leaves, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
        y.backward(lib.tensor(g))
        results.append((y.detach().numpy(), y.stride(), type(y.grad_fn).__name__, [t.grad.numpy() for t in leaves]))
    (y, stride, node, grads), (ty, tstride, tnode, tgrads) = results
    assert stride == tstride and node == tnode
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-6)
    for a, t in zip(grads, tgrads):
        np.testing.assert_allclose(a, t, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_sample_tap_helpers_are_the_einsums_bits(dtype):
    # _weigh_taps and _channel_sum add in the einsums' order, from +0: the same values, zero signs,
    # NaNs and infinities
    from chainrule.ops import sampling
    rng = np.random.default_rng(58)
    for taps in (4, 8, 16):
        channels = sampling._SEQUENTIAL_CHANNEL_SUM[dtype]
        values = rng.standard_normal((2, taps, 97, channels)).astype(dtype)
        values[:, :, :20] = -np.abs(values[:, :, :20])
        values[:, :, 20:25] = -0.0
        weights = rng.standard_normal((2, taps, 97)).astype(dtype)
        weights[:, :, :15] = 0
        weights[:, :, 22:30] = np.inf
        grad = rng.standard_normal((2, channels, 97)).astype(dtype)
        grad[:, :, :18] = 0
        pairs = [(sampling._weigh_taps(values, weights), np.einsum("nkpc,nkp->ncp", values, weights)),
                 (sampling._channel_sum(grad, values), np.einsum("npc,nkpc->nkp", np.moveaxis(grad, 1, -1), values))]
        for ours, theirs in pairs:
            np.testing.assert_array_equal(ours, theirs)
            assert np.array_equal(np.signbit(ours), np.signbit(theirs))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 1, 4, 1), (0, 3, 1, 2)])
def test_contiguous_strides_in_a_memory_order_as_torch(shape):
    # the one helper for dense strides: row-major, and any dims order (outermost first), size-1
    # and 0-length dims given torch's strides
    from chainrule._backend import contiguous_strides
    assert contiguous_strides(shape) == torch.empty(shape).stride()
    assert contiguous_strides(shape, (0, 2, 3, 1)) == torch.empty(shape, memory_format=torch.channels_last).stride()
    order = (3, 1, 0, 2)
    permuted = torch.empty([shape[d] for d in order]).permute(*[order.index(d) for d in range(4)])
    assert contiguous_strides(shape, order) == permuted.stride()
