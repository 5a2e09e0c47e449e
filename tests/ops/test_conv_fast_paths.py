"""Convolution's speed paths give the simple path's numbers and torch's (values and gradients).

``ops/conv.py`` picks among equivalent computations by the gradient's memory layout: the input
and filter gradients read an (N, O, *out)-contiguous gradient in place with one GEMM per sample
(the kernel offsets stacked into one matrix), and otherwise go through the channels-last
columns. It builds the columns channels-first when that gathers longer runs (few channels per
group, long output rows), a few samples at a time (``_COLUMN_CHUNK_BYTES``), and runs its copies
and col2im adds over the batch on the thread budget. The op matrix in test_conv.py uses small
spatial shapes and whatever layout its ops hand back; this file drives every branch on larger,
strided, dilated, grouped shapes, compares them with each other (float64, tight; the threaded
copies bit for bit) and with torch (float32 values and gradients). No timings are asserted.
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
    # channels-first columns: one channel per group, output rows much longer than a kernel row
    ("2d_one_channel_5x5", 2, (3, 1, 20, 21), (4, 1, 5, 5), dict(padding=2)),
    ("1d_depthwise_long", 1, (2, 3, 50), (6, 1, 3), dict(padding=1, groups=3)),
    ("2d_channels_first_dilated", 2, (2, 2, 15, 40), (4, 1, 3, 3), dict(dilation=2, groups=2, padding=(0, 3))),
]
# the cases whose columns stay channels-last (long channel runs, or a stride); the others gather
# channels-first
CHANNELS_LAST = {"2d_3x3_p1", "2d_groups2_stride2"}


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


def _geometry(d, x_shape, w_shape, kwargs):
    stride, padding, dilation = (kwargs.get(k, v) for k, v in (("stride", 1), ("padding", 0), ("dilation", 1)))
    stride, padding, dilation = (conv._tuple(v, d, "arg", "conv") for v in (stride, padding, dilation))
    return conv._Geometry(w_shape[2:], stride, padding, padding, dilation, kwargs.get("groups", 1), x_shape[2:])


@pytest.mark.parametrize("name,d,x_shape,w_shape,kwargs", CASES, ids=[c[0] for c in CASES])
def test_the_column_layout_is_picked_by_run_length(name, d, x_shape, w_shape, kwargs):
    # both column layouts are exercised only if the cases split between them as listed
    geo = _geometry(d, x_shape, w_shape, kwargs)
    assert conv._channels_first_columns(x_shape[1], geo) == (name not in CHANNELS_LAST)


@pytest.mark.parametrize("name,d,x_shape,w_shape,kwargs", CASES, ids=[c[0] for c in CASES])
def test_channels_first_and_channels_last_columns_agree_in_float64(name, d, x_shape, w_shape, kwargs, monkeypatch):
    x, w = _rand(x_shape, 0), _rand(w_shape, 1)
    grad_out = _rand(_output_shape(d, x, w, kwargs), 2)
    picked = _run(chainrule, d, x, w, kwargs, grad_out, "contiguous")
    monkeypatch.setattr(conv, "_channels_first_columns", lambda c, geo: name in CHANNELS_LAST)
    other = _run(chainrule, d, x, w, kwargs, grad_out, "contiguous")
    for a, b in zip(picked, other):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,d,x_shape,w_shape,kwargs",
                         [c for c in CASES if c[0] not in CHANNELS_LAST], ids=lambda c: c if isinstance(c, str) else "")
def test_channels_first_columns_leave_the_output_in_nchw_memory(name, d, x_shape, w_shape, kwargs):
    # the per-sample GEMMs write (N, O, *out) directly, so the forward needs no layout copy;
    # the result must still be torch's convolution
    x, w = _rand(x_shape, 0).astype(np.float32), _rand(w_shape, 1).astype(np.float32)
    geo = _geometry(d, x_shape, w_shape, kwargs)
    y = conv._conv(x, w, geo)
    assert y.flags.c_contiguous
    expected = getattr(torch.nn.functional, f"conv{d}d")(torch.from_numpy(x), torch.from_numpy(w), **kwargs)
    np.testing.assert_allclose(y, expected.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("chunk_bytes", [1, 3000])  # one sample per chunk; a few, the last one short
@pytest.mark.parametrize("grad_layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("name,d,x_shape,w_shape,kwargs", CASES, ids=[c[0] for c in CASES])
def test_sample_chunks_match_the_whole_batch_in_float64(name, d, x_shape, w_shape, kwargs, grad_layout, chunk_bytes,
                                                         monkeypatch):
    x_shape = (5,) + x_shape[1:]  # an odd batch, so chunks of two or more leave a short one
    x, w = _rand(x_shape, 0), _rand(w_shape, 1)
    grad_out = _rand(_output_shape(d, x, w, kwargs), 2)
    whole = _run(chainrule, d, x, w, kwargs, grad_out, grad_layout)
    monkeypatch.setattr(conv, "_COLUMN_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv, "_COL2IM_CHUNK_BYTES", chunk_bytes)
    chunked = _run(chainrule, d, x, w, kwargs, grad_out, grad_layout)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,d,x_shape,w_shape,kwargs", CASES, ids=[c[0] for c in CASES])
def test_threaded_copies_are_bit_identical(name, d, x_shape, w_shape, kwargs, monkeypatch):
    # over_rows cuts the pad, gather, col2im adds and layout copies over the batch; each element
    # is computed by the same operations in the same order, so one piece or three give equal bits
    from chainrule import _config, _parallel

    x, w = _rand(x_shape, 0).astype(np.float32), _rand(w_shape, 1).astype(np.float32)
    grad_out = _rand(_output_shape(d, x, w, kwargs), 2).astype(np.float32)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS_PER_PIECE", 1)
    results = []
    for budget in (1, 3):
        monkeypatch.setattr(_config, "thread_budget", lambda budget=budget: budget)
        assert _parallel.pieces(x_shape[0], 10**6) == min(budget, x_shape[0])
        results.append([_run(chainrule, d, x, w, kwargs, grad_out, layout) for layout in ("contiguous", "channels_last")])
    flat = [np.concatenate([r.ravel() for pair in result for r in pair]) for result in results]
    np.testing.assert_array_equal(flat[0], flat[1])


EDGE_CASES = [
    # (name, x shape, w shape, keyword arguments, how the input is laid out)
    ("batch_1", (1, 3, 9, 11), (4, 3, 3, 3), dict(padding=1), "contiguous"),
    ("channels_1_odd", (4, 1, 13, 7), (2, 1, 3, 3), dict(padding=0), "contiguous"),
    ("padding_2_odd", (3, 5, 9, 10), (6, 5, 3, 3), dict(padding=2), "contiguous"),
    ("non_contiguous_input", (3, 4, 12, 10), (5, 4, 3, 3), dict(padding=1), "transposed"),
    ("zero_batch", (0, 3, 8, 8), (4, 3, 3, 3), dict(padding=1), "contiguous"),
    ("zero_batch_channels_first", (0, 1, 8, 30), (4, 1, 3, 3), dict(padding=1), "contiguous"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,x_shape,w_shape,kwargs,layout", EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_edge_shapes_match_torch_with_a_summed_loss(name, x_shape, w_shape, kwargs, layout, dtype, monkeypatch):
    # a sum's gradient arrives broadcast (stride 0): the backward copies it to a contiguous one;
    # small chunks so the chunk loops run more than once
    monkeypatch.setattr(conv, "_COLUMN_CHUNK_BYTES", 2000)
    x, w = _rand(x_shape, 0).astype(dtype), _rand(w_shape, 1).astype(dtype)

    def run(lib):
        xt = lib.tensor(x.transpose(0, 1, 3, 2).copy()).transpose(2, 3) if layout == "transposed" else lib.tensor(x)
        xt = xt.detach().requires_grad_(True)
        wt = lib.tensor(w, requires_grad=True)
        y = lib.nn.functional.conv2d(xt, wt, **kwargs)
        y.sum().backward()
        return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()

    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    for what, a, b in zip(("output", "input grad", "weight grad"), run(chainrule), run(torch)):
        assert a.dtype == dtype and a.shape == b.shape, what
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance, err_msg=what)
