"""Lane perfAW: the paths added for speed, against torch (values, gradients, strides, nodes) and against
the path they replaced (the same bits).

The flat depthwise input gradient (``conv._conv_input_depthwise_flat``) overlaps neighbouring rows and
planes (``conv._overlapped_extents``); it adds the same products in the same order as the region adds,
and NumPy's float multiply and add round the same on every CPU, so its bit-exact checks hold everywhere.
"""

import numpy as np
import pytest

import chainrule
from chainrule.ops import conv
from chainrule.ops import reduce as reduce_ops

torch = pytest.importorskip("torch")


def _same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a, b) and np.array_equal(np.signbit(a), np.signbit(b))


def _region_adds(grad, w, geo, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(conv, "_depthwise_flat_adds", lambda *args: False)
        return conv._conv_input(grad, w, geo, grad.shape[1])


def test_overlapped_extents_hold_the_input_and_the_larger_padding():
    convnext = conv._Geometry((7, 7), (1, 1), (3, 3), (3, 3), (1, 1), 64, (14, 14))
    assert conv._overlapped_extents(convnext) == [17, 17]  # 289 positions a plane where the padded one had 400
    one_by_one = conv._Geometry((1, 1), (1, 1), (2, 0), (2, 0), (1, 1), 4, (5, 5))  # outputs past input + padding
    assert conv._overlapped_extents(one_by_one) == [9, 5]


def test_overlapped_depthwise_input_grad_keeps_the_region_adds_bits(monkeypatch):
    # paddings beyond the kernel's reach, uneven ones, strides and dilations, blocks of a plane or two
    rng = np.random.default_rng(60)
    compared = 0
    for trial in range(48):
        d = 1 + trial % 3
        kernel = tuple(int(v) for v in rng.integers(1, 6 if d < 3 else 4, d))
        stride = tuple(int(v) for v in rng.integers(2 if d == 1 else 1, 4, d))
        dilation = tuple(int(v) for v in rng.integers(1, 3, d))
        lo = tuple(int(v) for v in rng.integers(0, 6, d))
        hi = lo if trial % 2 else tuple(int(v) for v in rng.integers(0, 6, d))
        n, c = int(rng.integers(1, 4)), int(rng.integers(2, 5))
        geo = conv._Geometry(kernel, stride, lo, hi, dilation, c,
                             tuple(int(v) for v in rng.integers(1, 6 if d == 3 else 13, d)))
        if any(m <= 0 for m in geo.out_shape):
            continue
        dtype = (np.float32, np.float64)[trial % 2]
        grad = rng.standard_normal((n, c, *geo.out_shape)).astype(dtype)
        grad.flat[::3] = 0
        grad.flat[::7] = -0.0
        w = rng.standard_normal((c, 1, *kernel)).astype(dtype)
        with monkeypatch.context() as patch:
            patch.setattr(conv, "_DEPTHWISE_FLAT_ELEMENTS", (1, 64, 1 << 17)[trial % 3])
            assert conv._depthwise_flat_adds(grad, w, geo)  # the path under test
            ours = conv._conv_input(grad, w, geo, c)
        assert _same_bits(ours, _region_adds(grad, w, geo, monkeypatch)), (kernel, stride, dilation, lo, hi)
        compared += 1
    assert compared >= 30


def test_convnext_depthwise_input_grad_against_torch():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 8, 14, 14)).astype(np.float32)
    w = rng.standard_normal((8, 1, 7, 7)).astype(np.float32)
    g = rng.standard_normal((2, 8, 14, 14)).astype(np.float32)
    xs = [lib.tensor(x, requires_grad=True) for lib in (chainrule, torch)]
    for lib, xt in zip((chainrule, torch), xs):
        lib.nn.functional.conv2d(xt, lib.tensor(w), padding=3, groups=8).backward(lib.tensor(g))
    ours, theirs = xs[0].grad, xs[1].grad
    assert ours.shape == tuple(theirs.shape) and ours.stride() == theirs.stride()
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)


def test_global_average_pool_against_torch():
    # F.adaptive_avg_pool2d(x, 1): a mean over the plane; its backward divides each cell once and copies it out
    rng = np.random.default_rng(3)
    cases = (((32, 64, 8, 8), False), ((4, 6, 5, 7), True), ((3, 5, 9, 9), False), ((5, 7, 7), False))
    for shape, channels_last in cases:
        x = rng.standard_normal(shape).astype(np.float32)
        g = rng.standard_normal(shape[:-2] + (1, 1)).astype(np.float32)
        grads, outs = [], []
        for lib in (chainrule, torch):
            xt = lib.tensor(x)
            if channels_last:
                xt = xt.contiguous(memory_format=lib.channels_last)
            xt.requires_grad_(True)
            out = lib.nn.functional.adaptive_avg_pool2d(xt, 1)
            out.backward(lib.tensor(g))
            outs.append(out)
            grads.append(xt.grad)
        assert outs[0].grad_fn.name() == outs[1].grad_fn.name()
        assert outs[0].stride() == outs[1].stride() and grads[0].stride() == grads[1].stride(), shape
        np.testing.assert_allclose(outs[0].detach().numpy(), outs[1].detach().numpy(), rtol=1e-5, atol=1e-6)
        assert np.array_equal(grads[0].numpy(), grads[1].numpy())  # g / count, one IEEE division each


@pytest.mark.parametrize("divide_first", [1, reduce_ops._DIVIDE_FIRST])
def test_mean_backward_divides_before_expanding_with_torchs_values_and_strides(divide_first, monkeypatch):
    monkeypatch.setattr(reduce_ops, "_DIVIDE_FIRST", divide_first)
    rng = np.random.default_rng(4)
    for trial in range(40):
        nd = 1 + trial % 4
        shape = tuple(int(v) for v in rng.integers(1, (40, 40, 12, 12)[nd - 1], nd))
        dtype = ("float32", "float64")[trial % 2]
        k = int(rng.integers(1, nd + 1))
        dims = tuple(int(v) for v in rng.choice(nd, k, replace=False))
        keepdim = bool(trial % 3)
        x = rng.standard_normal(shape)
        perm = tuple(int(v) for v in rng.permutation(nd))
        grads = []
        for lib in (chainrule, torch):
            xt = lib.tensor(x, dtype=getattr(lib, dtype)).permute(*perm).detach().requires_grad_(True)
            out = xt.mean(dim=dims, keepdim=keepdim)
            out.backward(lib.tensor(np.arange(out.numel(), dtype=np.float64).reshape(tuple(out.shape)) - 2.5,
                                    dtype=getattr(lib, dtype)))
            grads.append(xt.grad)
        assert grads[0].stride() == grads[1].stride(), (shape, dims, keepdim, perm)
        assert np.array_equal(grads[0].numpy(), grads[1].numpy()) and grads[0].dtype == getattr(chainrule, dtype)


def test_large_mean_keeps_numpys_bits():
    # past _sum_order.GRAIN_SIZE the mean is NumPy's sum and division, as np.mean computes them
    rng = np.random.default_rng(5)
    for shape, dims in (((32, 64, 8, 8), (2, 3)), ((300, 131), (0,)), ((7, 97, 61), (1,)), ((50, 700), (0, 1))):
        for dtype in (np.float32, np.float64):
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            ours = chainrule.tensor(x).mean(dim=dims, keepdim=True).numpy()
            assert ours.dtype == dtype and np.array_equal(ours, np.mean(x, axis=dims, keepdims=True))
