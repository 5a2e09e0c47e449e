"""Convolution's speed paths give the simple path's numbers and torch's (values and gradients).

``ops/conv.py`` picks among equivalent computations by the gradient's memory layout: the input
and filter gradients read an (N, O, *out)-contiguous gradient in place with one GEMM per sample
(the kernel offsets stacked into one matrix), and otherwise go through the channels-last
columns. The op matrix in test_conv.py uses small spatial shapes and whatever layout its ops hand
back; this file drives both branches on larger, strided, dilated, grouped shapes, compares them
with each other (float64, tight) and with torch (float32 values and gradients). No timings are
asserted.
"""

import numpy as np
import pytest

import chainrule
from chainrule.ops import conv

torch = pytest.importorskip("torch")

# (name, d, x shape, w shape, keyword arguments): output rows at least C/groups long, so a
# contiguous gradient takes the per-sample input-gradient path
CASES = [
    ("2d_3x3_p1", 2, (3, 4, 16, 16), (6, 4, 3, 3), dict(padding=1)),
    ("2d_groups2_stride2", 2, (2, 4, 34, 33), (6, 2, 3, 3), dict(stride=2, groups=2)),
    ("2d_dilated_asym_pad", 2, (2, 3, 18, 20), (5, 3, 3, 2), dict(padding=(2, 1), dilation=(2, 1))),
    ("1d_k5", 1, (3, 2, 300), (4, 2, 5), dict(padding=2)),
    ("3d_groups2", 3, (2, 2, 7, 7, 7), (4, 1, 2, 2, 2), dict(groups=2)),
    ("2d_depthwise", 2, (2, 4, 17, 16), (4, 1, 3, 3), dict(padding=1, groups=4)),
]


def _rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _run(lib, d, x, w, kwargs, grad_out, grad_layout):
    """Conv forward, then backward from ``grad_out`` given in the layout under test."""
    x = lib.tensor(x, requires_grad=True)
    w = lib.tensor(w, requires_grad=True)
    fn = getattr(lib.nn.functional, f"conv{d}d")
    y = fn(x, w, **kwargs)
    g = lib.tensor(grad_out)
    if grad_layout == "channels_last":
        # a gradient whose memory is (N, *out, O): what a permuted consumer hands back
        perm = (0, *range(2, d + 2), 1)
        inverse = tuple(int(i) for i in np.argsort(perm))
        g = g.permute(*perm).contiguous().permute(*inverse)
    y.backward(g)
    return y.detach().numpy(), x.grad.numpy(), w.grad.numpy()


def _output_shape(d, x, w, kwargs):
    return tuple(getattr(torch.nn.functional, f"conv{d}d")(torch.tensor(x), torch.tensor(w), **kwargs).shape)


@pytest.mark.parametrize("name,d,x_shape,w_shape,kwargs", CASES, ids=[c[0] for c in CASES])
def test_per_sample_gradients_match_the_channels_last_path_in_float64(name, d, x_shape, w_shape, kwargs):
    x, w = _rand(x_shape, 0), _rand(w_shape, 1)
    grad_out = _rand(_output_shape(d, x, w, kwargs), 2)
    fast = _run(chainrule, d, x, w, kwargs, grad_out, "contiguous")
    simple = _run(chainrule, d, x, w, kwargs, grad_out, "channels_last")
    for a, b in zip(fast, simple):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("grad_layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("name,d,x_shape,w_shape,kwargs", CASES, ids=[c[0] for c in CASES])
def test_fast_paths_match_torch_in_float32(name, d, x_shape, w_shape, kwargs, grad_layout):
    x, w = _rand(x_shape, 0).astype(np.float32), _rand(w_shape, 1).astype(np.float32)
    grad_out = _rand(_output_shape(d, x, w, kwargs), 2).astype(np.float32)
    ours = _run(chainrule, d, x, w, kwargs, grad_out, grad_layout)
    theirs = _run(torch, d, x, w, kwargs, grad_out, grad_layout)
    for what, a, b in zip(("output", "input grad", "weight grad"), ours, theirs):
        assert a.dtype == np.float32, what
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=what)


def test_the_gradient_paths_pick_by_layout(monkeypatch):
    # the comparisons above mean something only if the two layouts take different branches
    calls = []
    original = conv._conv_input_nchw
    monkeypatch.setattr(conv, "_conv_input_nchw", lambda *a: calls.append(1) or original(*a))
    _, d, x_shape, w_shape, kwargs = CASES[0]
    x, w = _rand(x_shape, 0), _rand(w_shape, 1)
    grad_out = _rand(_output_shape(d, x, w, kwargs), 2)
    _run(chainrule, d, x, w, kwargs, grad_out, "channels_last")
    assert not calls
    _run(chainrule, d, x, w, kwargs, grad_out, "contiguous")
    assert calls


def test_double_backward_through_the_per_sample_input_gradient():
    # ConvInput and ConvWeight are differentiated in turn under create_graph: the per-sample
    # path must be differentiable like the channels-last one
    x64, w64 = _rand((2, 2, 16, 16), 3), _rand((3, 2, 3, 3), 4)

    def second_order(lib):
        x = lib.tensor(x64, requires_grad=True)
        w = lib.tensor(w64, requires_grad=True)
        y = lib.nn.functional.conv2d(x, w, padding=1)
        (gx,) = lib.autograd.grad((y * y).sum(), x, create_graph=True)
        (gx * gx).sum().backward()
        return x.grad.numpy(), w.grad.numpy()

    for a, b in zip(second_order(chainrule), second_order(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
