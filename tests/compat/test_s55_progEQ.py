"""Pins what the s55 progEQ programs (controlnet_zero_conv, mip_nerf_integrated_pe,
entmax_bisection_function) rely on, each against real torch."""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _close(t, c, **kw):
    np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), **kw)


def test_pow_with_tensor_exponent_and_scalar_base_grads():
    # entmax's brackets: 1 ** (alpha - 1) and (1 / d) ** (alpha - 1), then clamp(x) ** (1 / (alpha - 1))
    rng = np.random.RandomState(0)
    x = rng.randn(3, 5).astype(np.float32)
    a = (1.2 + rng.rand(3, 1)).astype(np.float32)
    results = []
    for lib in (torch, cr):
        xx, aa = lib.tensor(x, requires_grad=True), lib.tensor(a, requires_grad=True)
        y = lib.clamp(xx, min=0) ** (1 / (aa - 1)) + 1 ** (aa - 1) + (1 / 5) ** (aa - 1)
        gx, ga = lib.autograd.grad(y.sum(), [xx, aa])
        results.append((y, gx, ga))
    (yt, gxt, gat), (yc, gxc, gac) = results
    assert type(yt.grad_fn).__name__ == yc.grad_fn.name()
    for t, c in zip((yt, gxt, gat), (yc, gxc, gac)):
        _close(t, c, rtol=1e-5, atol=1e-6)


def test_inplace_add_of_grad_tensor_onto_no_grad_result():
    # ControlledUnetModel: h comes from a no_grad encoder, then `h += control.pop()`
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    outs = []
    for lib in (torch, cr):
        b = lib.tensor(a[::-1].copy(), requires_grad=True)
        with lib.no_grad():
            h = lib.tensor(a) * 2
        h += b
        assert h.requires_grad
        (g,) = lib.autograd.grad((h * h).sum(), [b])
        outs.append((h, g))
    (ht, gt), (hc, gc) = outs
    assert type(ht.grad_fn).__name__ == hc.grad_fn.name() == "AddBackward0"
    _close(ht, hc)
    _close(gt, gc)


def test_searchsorted_right_ties_then_clamped_gather():
    # mip-NeRF's sorted_piecewise_constant_pdf: u equal to a cdf knot goes above it with right=True
    cdf = np.array([[0.0, 0.25, 0.25, 0.75, 1.0], [0.0, 0.1, 0.5, 0.9, 1.0]], np.float32)
    u = np.array([[0.0, 0.25, 0.5, 0.999], [0.1, 0.3, 0.9, 0.95]], np.float32)
    bins = np.linspace(2, 6, 5, dtype=np.float32)[None].repeat(2, 0)
    outs = []
    for lib in (torch, cr):
        c, uu, b = lib.tensor(cdf), lib.tensor(u), lib.tensor(bins)
        inds = lib.searchsorted(c, uu, right=True)
        below = lib.clamp(inds - 1, min=0)
        above = lib.clamp(inds, max=c.shape[-1] - 1)
        g0, g1 = lib.gather(c, -1, below), lib.gather(c, -1, above)
        t = lib.clamp(lib.nan_to_num((uu - g0) / (g1 - g0), 0.0), 0, 1)
        outs.append((inds, lib.gather(b, -1, below) + t * (lib.gather(b, -1, above) - lib.gather(b, -1, below))))
    (it, st), (ic, sc) = outs
    assert ic.dtype == cr.int64
    np.testing.assert_array_equal(ic.numpy(), it.numpy())
    _close(st, sc, rtol=1e-6)


def test_exclusive_cumprod_transmittance_grads_with_an_opaque_sample():
    # a sample with alpha == 1 makes 1 - alpha zero: cumprod's backward must not divide by it
    alpha = np.array([[0.2, 1.0, 0.5, 0.3], [0.1, 0.4, 0.0, 0.9]], np.float32)
    w = np.array([[1.0, 2.0, -1.0, 0.5], [0.3, -0.2, 1.0, 2.0]], np.float32)
    outs = []
    for lib in (torch, cr):
        a = lib.tensor(alpha, requires_grad=True)
        trans = lib.cumprod(1 - a, dim=-1)
        trans = lib.cat([lib.ones_like(trans[..., :1]), trans[..., :-1]], dim=-1)
        weights = a * trans
        (g,) = lib.autograd.grad((weights * lib.tensor(w)).sum(), [a])
        outs.append((weights, g))
    (wt, gt), (wc, gc) = outs
    _close(wt, wc)
    _close(gt, gc, rtol=1e-6, atol=1e-7)


def test_load_state_dict_non_strict_reports_keys_like_torch():
    # ControlNet initialised from the UNet: missing = the new parts, unexpected = the decoder
    def build(lib, extra):
        nn = lib.nn
        m = nn.Module()
        m.input_blocks = nn.ModuleList([nn.Conv2d(1, 4, 3, padding=1), nn.GroupNorm(2, 4)])
        if extra:
            m.zero_convs = nn.ModuleList([nn.Conv2d(4, 4, 1)])
        else:
            m.out = nn.Sequential(nn.SiLU(), nn.Conv2d(4, 1, 3, padding=1))
        return m

    results = []
    for lib in (torch, cr):
        lib.manual_seed(0)
        src, dst = build(lib, False), build(lib, True)
        res = dst.load_state_dict(src.state_dict(), strict=False)
        assert lib.equal(dst.input_blocks[0].weight, src.input_blocks[0].weight)
        results.append((list(res.missing_keys), list(res.unexpected_keys)))
    assert results[0] == results[1]
