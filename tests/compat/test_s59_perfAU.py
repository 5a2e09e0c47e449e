"""Lane perfAU: the paths added for speed, each against torch (values, gradients, strides, nodes) and
against the path it replaced (the same bits): the depthwise input gradient on flat planes, softplus's
float32 blocks, silu's one e^-x and backward blocks, tanh-approximated gelu's float32 blocks.

The depthwise input gradient on flat planes (``conv._conv_input_depthwise_flat``) adds the same
products in the same order as the region adds (``_conv_input_depthwise`` without it); NumPy's float
multiply and add round the same on every CPU, so the bit-exact checks hold everywhere.
"""

import numpy as np
import pytest

import chainrule
from chainrule.ops import activation, conv
from chainrule.ops.elementwise import _exp_array, _sigmoid_array

torch = pytest.importorskip("torch")


def _region_adds(grad, w, geo, monkeypatch):
    """The input gradient through the region adds, the flat path switched off."""
    with monkeypatch.context() as patch:
        patch.setattr(conv, "_depthwise_flat_adds", lambda *args: False)
        return conv._conv_input(grad, w, geo, grad.shape[1])


def _same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a, b) and np.array_equal(np.signbit(a), np.signbit(b))


def test_depthwise_input_grad_flat_keeps_the_region_adds_bits(monkeypatch):
    rng = np.random.default_rng(59)
    compared = 0
    for trial in range(60):
        d = 1 + trial % 3
        n, c = int(rng.integers(1, 4)), int(rng.integers(2, 6))
        kernel = tuple(int(v) for v in rng.integers(1, 5, d))
        stride = tuple(int(v) for v in rng.integers(2 if d == 1 else 1, 4, d))  # (1-d at stride 1: the region adds)
        dilation = tuple(int(v) for v in rng.integers(1, 3, d))
        lo, hi = (tuple(int(v) for v in rng.integers(0, 4, d)) for _ in range(2))
        geo = conv._Geometry(kernel, stride, lo, hi, dilation, c,
                             tuple(int(v) for v in rng.integers(3, 6 if d == 3 else 12, d)))
        if any(m <= 0 for m in geo.out_shape):
            continue
        dtype = (np.float32, np.float64)[trial % 2]
        grad = rng.standard_normal((n, c, *geo.out_shape)).astype(dtype)
        if trial % 3 == 0:  # a gradient in another memory order, with zeros of both signs
            grad = np.ascontiguousarray(grad.swapaxes(0, 1)).swapaxes(0, 1)
            grad[..., ::2] = 0
            grad.flat[::5] *= -0.0
        w = rng.standard_normal((c, 1, *kernel)).astype(dtype)
        w.flat[::4] = -0.0
        assert conv._depthwise_flat_adds(grad, w, geo)  # the path under test
        ours = conv._conv_input(grad, w, geo, c)
        assert _same_bits(ours, _region_adds(grad, w, geo, monkeypatch)), (geo.kernel, geo.pad_lo, geo.pad_hi)
        compared += 1
    assert compared >= 45


def test_depthwise_input_grad_nonfinite_weight_keeps_the_region_adds(monkeypatch):
    # the flat grid's zeros times an infinite weight would be NaN where no output reaches
    grad = np.ones((2, 3, 5, 5), dtype=np.float32)
    w = np.full((3, 1, 3, 3), 0.5, dtype=np.float32)
    w[1, 0, 0, 0] = np.inf
    geo = conv._Geometry((3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 3, (5, 5))
    assert not conv._depthwise_flat_adds(grad, w, geo)
    ours = conv._conv_input(grad, w, geo, 3)
    theirs = torch.ops.aten.convolution_backward(
        torch.tensor(grad), torch.zeros(2, 3, 5, 5), torch.tensor(w), None, [1, 1], [1, 1], [1, 1], False, [0, 0], 3,
        [True, False, False])[0].numpy()
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
    assert np.isfinite(ours[:, [0, 2]]).all()


@pytest.mark.parametrize("shape, k, layout, kwargs", [
    ((4, 16, 10, 10), 3, "contiguous", dict(padding=1)),                 # MobileNet's
    ((2, 8, 9, 9), 7, "contiguous", dict(padding=3)),                    # ConvNeXt's
    ((3, 6, 8, 7), (3, 2), "channels_last", dict(padding=(2, 1), dilation=(2, 1))),
    ((2, 5, 6, 6, 6), 3, "contiguous", dict(padding=1)),                 # 3-d
    ((2, 4, 8, 8), 3, "contiguous", dict(padding="same", dilation=2)),
    ((4, 16, 11, 11), 3, "channels_last", dict(stride=2, padding=1)),    # MobileNet's downsampling
    ((3, 6, 20), 4, "contiguous", dict(stride=2, padding=1)),            # 1-d strided
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_gradients_match_torch(shape, k, layout, kwargs, dtype):
    rng = np.random.default_rng(5)
    c, d = shape[1], len(shape) - 2
    kernel = (k,) * d if isinstance(k, int) else k
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c, 1, *kernel)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    results = []
    for lib in (chainrule, torch):
        leaves = [lib.tensor(a, requires_grad=True) for a in (x, w, b)]
        xs = leaves[0].contiguous(memory_format=lib.channels_last) if layout == "channels_last" else leaves[0]
        conv_nd = getattr(lib.nn.functional, f"conv{d}d")
        y = conv_nd(xs, leaves[1], leaves[2], groups=c, **kwargs)
        weight = lib.tensor(np.cos(np.arange(y.numel())).reshape(y.shape).astype(dtype))
        (y * weight).sum().backward()
        results.append((y.detach().numpy(), y.stride(), y.grad_fn.name(),
                        [(t.grad.numpy(), t.grad.stride()) for t in leaves]))
    (ours, our_stride, our_node, our_grads), (theirs, their_stride, their_node, their_grads) = results
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=tolerance)
    assert our_stride == their_stride and our_node == their_node
    for (grad, stride), (their_grad, their_grad_stride) in zip(our_grads, their_grads):
        np.testing.assert_allclose(grad, their_grad, rtol=10 * tolerance, atol=10 * tolerance)
        assert stride == their_grad_stride


def test_conv_with_bias_asks_for_the_depthwise_chain_once(monkeypatch):
    calls = []
    chain_runs = conv._depthwise_chain_runs

    def counted(*args):
        calls.append(1)
        return chain_runs(*args)

    monkeypatch.setattr(conv, "_depthwise_chain_runs", counted)
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((4, 6, 9, 9), (6, 1, 3, 3), (6,)))
    for padding in (1, 4):  # the chain from the bias, and the bias added after it (padded past the kernel)
        calls.clear()
        ours = chainrule.nn.functional.conv2d(chainrule.tensor(x), chainrule.tensor(w), chainrule.tensor(b),
                                              padding=padding, groups=6).numpy()
        theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b),
                                            padding=padding, groups=6).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
        assert len(calls) == 1


# ---------------------------------------------------------------- activations
_EDGES = np.array([0, -0.0, np.inf, -np.inf, np.nan, 88.7, -88.7, -89, 89, 1e-30, -1e-30, 104, -104, 20, 20.0001,
                   19.9999, -20, -21, -103, 1e-45], np.float32)


def _activation_input(seed):
    """A float32 input past one block (_MISH_BLOCK values), its edge values first."""
    x = (np.random.default_rng(seed).standard_normal((3, 4100)) * 12).astype(np.float32)
    x.reshape(-1)[:_EDGES.size] = _EDGES
    return x


@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 3.3), (-1.0, 20.0)])
def test_softplus_blocks_keep_the_bits(beta, threshold):
    x = _activation_input(1)
    grad = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    # a Fortran-ordered copy of the same values takes the whole-array path
    with np.errstate(over="ignore"):  # (the whole-array gradient's g·e^z may overflow, to torch's inf)
        pairs = ((activation._softplus_array(x, beta, threshold),
                  activation._softplus_array(np.asfortranarray(x), beta, threshold)),
                 (activation._softplus_grad_array(x, grad, beta, threshold),
                  activation._softplus_grad_array(np.asfortranarray(x), np.asfortranarray(grad), beta, threshold)))
    for blocked, whole in pairs:
        assert blocked.flags.c_contiguous and not whole.flags.c_contiguous
        np.testing.assert_array_equal(blocked, whole)
        np.testing.assert_array_equal(np.signbit(blocked), np.signbit(whole))


@pytest.mark.parametrize("name, kwargs", [("softplus", {}), ("softplus", dict(beta=2.0, threshold=5.0)), ("silu", {}),
                                          ("mish", {}), ("gelu", dict(approximate="tanh"))])
def test_activation_blocks_match_torch(name, kwargs):
    x = _activation_input(3)
    grad = np.random.default_rng(4).standard_normal(x.shape).astype(np.float32)
    results = []
    for lib in (chainrule, torch):
        leaf = lib.tensor(x, requires_grad=True)
        y = getattr(lib.nn.functional, name)(leaf, **kwargs)
        y.backward(lib.tensor(grad))
        results.append((y.detach().numpy(), y.stride(), y.grad_fn.name(), leaf.grad.numpy(), leaf.grad.stride()))
    (ours, stride, node, our_grad, grad_stride), (theirs, their_stride, their_node, their_grad, their_grad_stride) = results
    # (torch's SLEEF functions: within an ulp. Where tanh-approximated gelu's tanh is near -1, 1 + tanh keeps
    # one or two of its bits, and NumPy's float32 tanh rounds otherwise than torch's there, as before)
    gelu = name == "gelu"
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=2e-7 if gelu else 1e-37)
    np.testing.assert_allclose(our_grad, their_grad, rtol=2e-5, atol=1e-5 if gelu else 1e-30)
    assert (stride, node, grad_stride) == (their_stride, their_node, their_grad_stride)


def test_silu_forward_keeps_the_bits():
    for x in (_activation_input(5), _activation_input(6)[1, :7], np.array(0.75, np.float32)):
        leaf = chainrule.tensor(x, requires_grad=True)
        y = chainrule.nn.functional.silu(leaf)
        with np.errstate(over="ignore", invalid="ignore"):
            expected = x / (1 + _exp_array(-x))  # torch's kernel's division, as before e^-x ran once
        np.testing.assert_array_equal(y.detach().numpy(), expected)
        np.testing.assert_array_equal(y.grad_fn.sig, _sigmoid_array(x))  # the sigmoid the backward reuses


@pytest.mark.parametrize("name, kwargs", [("gelu", dict(approximate="tanh")), ("silu", {})])
def test_float32_blocks_keep_the_bits(name, kwargs):
    x = _activation_input(7)
    grad = np.random.default_rng(8).standard_normal(x.shape).astype(np.float32)
    results = []
    for order in ("C", "F"):  # a Fortran-ordered input takes the whole-array ops (and gelu's backward its Tensor ops)
        leaf = chainrule.tensor(np.asarray(x, order=order), requires_grad=True)
        y = getattr(chainrule.nn.functional, name)(leaf, **kwargs)
        y.backward(chainrule.tensor(np.asarray(grad, order=order)))
        results.append((y.detach().numpy(), leaf.grad.numpy()))
    assert activation._in_float32_blocks(np.asarray(x)) and not activation._in_float32_blocks(np.asfortranarray(x))
    for blocked, whole in zip(*results):
        np.testing.assert_array_equal(blocked, whole)
        np.testing.assert_array_equal(np.signbit(blocked), np.signbit(whole))


def test_gelu_tanh_double_backward_keeps_the_tensor_ops():
    x = _activation_input(9)[:, :3000].copy()
    x = x[:, np.isfinite(x).all(axis=0)]
    x = np.ascontiguousarray(np.tile(x, (1, 3)))
    results = []
    for lib in (chainrule, torch):
        leaf = lib.tensor(x, requires_grad=True)
        (first,) = lib.autograd.grad(lib.nn.functional.gelu(leaf, approximate="tanh").sum(), leaf, create_graph=True)
        (second,) = lib.autograd.grad(first.sum(), leaf)
        results.append((first.detach().numpy(), second.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-5)  # (the tail's tanh, as above)
