"""Session 62, lane progFK: the idioms of colbert_late_interaction, partial_conv_inpainting and
expert_choice_moe pinned against torch, and what probing them found apart from torch: an upsample
node (which keeps only sizes) walked a second time without retain_graph, and the layout of
interpolate's input gradient (size-1 dims' strides, channels-last incoming gradients)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _close(t, c, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


# ---------------------------------------------------------------- upsample nodes keep no tensors
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bilinear", "bicubic"])
def test_upsample_graph_walks_twice_without_retain_graph(mode):
    # torch's upsample nodes save sizes and scales only: nothing to free, a second backward runs
    x = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 4)
    w = np.arange(32, dtype=np.float32).reshape(1, 1, 4, 8)
    grads = []
    for lib in (torch, chainrule):
        t = lib.tensor(x, requires_grad=True)
        y = lib.nn.functional.interpolate(t, scale_factor=2, mode=mode)
        first, = lib.autograd.grad(y, t, lib.tensor(w))
        second, = lib.autograd.grad(y, t, lib.tensor(w))
        assert lib.equal(first, second)
        assert y.grad_fn._saved_output_size == (4, 8)
        grads.append(first)
    _close(*grads)


def test_upsample_after_a_saving_op_still_refuses_a_second_walk():
    for lib in (torch, chainrule):
        t = lib.ones(1, 1, 2, 2, requires_grad=True)
        y = lib.nn.functional.interpolate(t * t, scale_factor=2, mode="nearest")
        y.sum().backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.sum().backward()


# ---------------------------------------------------------------- interpolate's gradient layout
_LAYOUT_CASES = [((2, 3, 1, 5), "nearest"), ((1, 3, 4, 1), "bilinear"), ((2, 3, 1, 1), "nearest-exact"),
                 ((2, 3, 1, 5), "bicubic"), ((2, 3, 1, 2, 8), "nearest"), ((2, 3, 2, 1, 3), "trilinear"),
                 ((2, 1, 6), "linear"), ((2, 3, 4, 5), "bilinear"), ((2, 3, 4, 5), "bicubic")]


@pytest.mark.parametrize("shape,mode", _LAYOUT_CASES)
@pytest.mark.parametrize("channels_last_grad", [False, True])
def test_interpolate_input_gradient_strides(shape, mode, channels_last_grad):
    # bilinear, trilinear and 2-d nearest lay the gradient out as the incoming gradient suggests,
    # bicubic and 3-d nearest row-major; size-1 dims carry a fresh tensor's strides
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    seen = []
    for lib in (torch, chainrule):
        t = lib.tensor(x, requires_grad=True)
        y = lib.nn.functional.interpolate(t, scale_factor=2, mode=mode)
        g = lib.ones(y.shape)
        if channels_last_grad and len(shape) > 3:
            g = g.contiguous(memory_format=lib.channels_last if len(shape) == 4 else lib.channels_last_3d)
        grad, = lib.autograd.grad(y, t, g)
        seen.append((grad.stride(), grad.detach().numpy()))
    assert seen[1][0] == seen[0][0]
    np.testing.assert_allclose(seen[1][1], seen[0][1], rtol=1e-5)


# ---------------------------------------------------------------- the programs' idioms
def test_colbert_maxsim_with_masked_zero_rows_and_in_batch_einsum():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 4, 3)).astype(np.float32)
    d = rng.standard_normal((2, 6, 3)).astype(np.float32)
    keep = np.array([[1, 1, 0, 1, 0, 1], [1, 0, 1, 1, 1, 0]], dtype=bool)
    outs = []
    for lib in (torch, chainrule):
        F = lib.nn.functional
        Q, D = lib.tensor(q, requires_grad=True), lib.tensor(d, requires_grad=True)
        mask = lib.tensor(keep.tolist()).unsqueeze(2).float()
        Dn = F.normalize(D * mask, p=2, dim=2)  # masked rows are zero vectors
        Qn = F.normalize(Q, p=2, dim=2)
        pair = (Qn @ Dn.permute(0, 2, 1)).max(2).values.sum(1)
        every = lib.einsum("qid,pjd->qpij", Qn, Dn).max(-1).values.sum(-1)
        loss = lib.nn.CrossEntropyLoss()(every, lib.arange(2)) + pair.sum()
        loss.backward()
        outs.append((pair, every, Q.grad, D.grad, every.grad_fn.name()))
    for t, c in zip(outs[0][:4], outs[1][:4]):
        _close(t, c)
    assert outs[1][4] == outs[0][4]


def test_partial_conv_mask_update_and_ratio():
    rng = np.random.default_rng(2)
    mask = (rng.random((2, 3, 8, 8)) > 0.3).astype(np.float32)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    outs = []
    for lib in (torch, chainrule):
        F = lib.nn.functional
        m = lib.tensor(mask)
        updater = lib.ones(4, 3, 3, 3)
        assert updater.type() == "torch.FloatTensor" and updater.to(lib.tensor(x)) is updater
        with lib.no_grad():
            update = F.conv2d(m, updater, bias=None, stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1)
            ratio = 27 / (update + 1e-8)
            update = lib.clamp(update, 0, 1)
            ratio = lib.mul(ratio, update)
        conv = lib.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        with lib.no_grad():
            conv.weight.copy_(lib.tensor(weight))
            conv.bias.copy_(lib.tensor(bias))
        inp = lib.tensor(x, requires_grad=True)
        raw = conv(lib.mul(inp, m))
        bias_view = conv.bias.view(1, conv.out_channels, 1, 1)
        out = lib.mul(lib.mul(raw - bias_view, ratio) + bias_view, update)
        out.pow(2).sum().backward()
        outs.append((update, ratio, out, inp.grad, conv.weight.grad, conv.bias.grad))
    for t, c in zip(*outs):
        _close(t, c, rtol=1e-4, atol=1e-5)


def test_expert_choice_dispatch_combine_against_index_add():
    rng = np.random.default_rng(3)
    tokens = rng.standard_normal((12, 5)).astype(np.float32)
    gate_w = rng.standard_normal((5, 4)).astype(np.float32)
    w1 = rng.standard_normal((4, 5, 6)).astype(np.float32)
    outs = []
    for lib in (torch, chainrule):
        F = lib.nn.functional
        x, g, w = (lib.tensor(a, requires_grad=True) for a in (tokens, gate_w, w1))
        scores = F.softmax(x @ g, dim=-1)
        gates, idx = lib.topk(scores.t(), k=6, dim=-1)
        dispatch = F.one_hot(idx, 12).float()
        out = lib.bmm(lib.einsum("ect,td->ecd", dispatch, x), w)
        combined = lib.einsum("ec,ect,ecd->td", gates, dispatch, out)
        looped = lib.zeros(12, 6)
        for e in range(4):
            looped = looped.index_add_(0, idx[e], gates[e, :, None] * (x[idx[e]] @ w[e]))
        counts = lib.bincount(idx.flatten(), minlength=12)
        (combined.sum() + looped.pow(2).sum()).backward()
        outs.append((combined, looped, counts, x.grad, g.grad, w.grad, idx))
    for t, c in zip(*outs):
        _close(t, c, rtol=1e-4, atol=1e-5)
    _close(outs[1][0], outs[1][1], rtol=1e-4, atol=1e-5)


def test_kaiming_uniform_on_parameter_slices():
    results = []
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        p = lib.nn.Parameter(lib.empty(3, 4, 5))
        for e in range(3):
            lib.nn.init.kaiming_uniform_(p[e], a=5 ** 0.5)
        assert p.is_leaf and p.grad_fn is None and p.requires_grad
        results.append(p)
    _close(*results, rtol=0, atol=0)


# ---------------------------------------------------------------- pooling gradients' layout
_POOLS = {
    "max_pool2d": lambda F, t: F.max_pool2d(t, 2),
    "max_pool2d_padded": lambda F, t: F.max_pool2d(t, 3, 1, 1),
    "avg_pool2d": lambda F, t: F.avg_pool2d(t, 2),
    "adaptive_avg_pool2d": lambda F, t: F.adaptive_avg_pool2d(t, (3, 1)),
    "adaptive_max_pool2d": lambda F, t: F.adaptive_max_pool2d(t, 2),
    "area": lambda F, t: F.interpolate(t, scale_factor=0.5, mode="area"),
}


@pytest.mark.parametrize("pool", sorted(_POOLS))
@pytest.mark.parametrize("shape", [(2, 3, 6, 6), (1, 4, 4, 2)])
def test_pool_input_gradient_follows_a_channels_last_input(pool, shape):
    # torch's pooling backward kernels lay the input's gradient out as the input suggests,
    # whatever the incoming gradient's layout (autograd.grad returns it as the kernel made it)
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    seen = []
    for lib in (torch, chainrule):
        t = lib.tensor(x).contiguous(memory_format=lib.channels_last).requires_grad_()
        y = _POOLS[pool](lib.nn.functional, t)
        grad, = lib.autograd.grad(y, t, lib.ones(y.shape))
        seen.append((grad.stride(), grad.numpy()))
    assert seen[1][0] == seen[0][0]
    np.testing.assert_allclose(seen[1][1], seen[0][1], rtol=1e-6)


@pytest.mark.parametrize("pool,shape,size", [
    ("adaptive_avg_pool1d", (2, 3, 4), 0), ("adaptive_avg_pool2d", (3, 1, 4), (0, 2)),
    ("adaptive_avg_pool3d", (2, 3, 1, 4, 4), (0, 2, 2)), ("adaptive_max_pool2d", (2, 3, 4, 4), (2, 0)),
    ("adaptive_max_pool3d", (2, 3, 1, 4, 4), (0, 2, 2))])
def test_adaptive_pool_backward_refuses_an_empty_gradient(pool, shape, size):
    messages = []
    for lib in (torch, chainrule):
        t = lib.ones(*shape, requires_grad=True)
        y = getattr(lib.nn.functional, pool)(t, size)
        with pytest.raises(RuntimeError) as info:
            lib.autograd.grad(y, t, lib.ones(y.shape))
        messages.append(str(info.value).split("\n")[0])
    assert messages[1] == messages[0]


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
@pytest.mark.parametrize("shape,pad", [((2, 3, 4, 4), (1, 1, 1, 1)), ((1, 4, 4, 1), (0, 0, 1, 1)),
                                       ((2, 3, 3, 4, 4), (1, 1, 1, 1, 1, 1))])
@pytest.mark.parametrize("create_graph", [False, True])
def test_mode_pad_input_gradient_follows_a_channels_last_input(mode, shape, pad, create_graph):
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    seen = []
    for lib in (torch, chainrule):
        fmt = lib.channels_last if len(shape) == 4 else lib.channels_last_3d
        t = lib.tensor(x).contiguous(memory_format=fmt).requires_grad_()
        y = lib.nn.functional.pad(t, pad, mode=mode)
        grad, = lib.autograd.grad(y, t, lib.arange(float(y.numel())).view(y.shape), create_graph=create_graph)
        seen.append((grad.stride(), grad.grad_fn.name() if grad.grad_fn else None, grad.detach().numpy()))
    assert seen[1][:2] == seen[0][:2]
    np.testing.assert_allclose(seen[1][2], seen[0][2])
