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
