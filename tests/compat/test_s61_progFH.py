"""Session 61, lane progFH: the idioms of edm2_magnitude_preserving, s5_complex_diagonal_scan and
deepseek_moe_aux_free_balancing pinned against torch, and the complex var/std family that probing
them found apart from torch (node names, and the no-degrees-of-freedom gradient)."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _pair(array, requires_grad=True):
    return (torch.tensor(array, requires_grad=requires_grad),
            chainrule.tensor(array, requires_grad=requires_grad))


def _close(t, c, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


# ---------------------------------------------------------------- complex var / std
@pytest.mark.parametrize("op", ["var", "std", "var_mean", "std_mean"])
@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": -1, "correction": 0, "keepdim": True},
                                    {"dim": (0, 1), "unbiased": False}])
def test_complex_var_std_are_one_node_with_torch_values_and_gradients(op, kwargs):
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(np.complex64)
    zt, zc = _pair(z)
    outs = []
    for lib, x in ((torch, zt), (chainrule, zc)):
        out = getattr(lib, op)(x, **kwargs)
        out = out if isinstance(out, tuple) else (out,)
        loss = out[0].sum() + (lib.view_as_real(out[1]).sum() if len(out) > 1 else 0)
        loss.backward()
        outs.append(out)
    for t, c in zip(*outs):
        assert c.grad_fn.name() == t.grad_fn.name()
        assert str(c.dtype).split(".")[1] == str(t.dtype).split(".")[1]
        assert len(c.grad_fn.next_functions) == 1  # straight to the leaf, as torch's one node
        _close(t, c)
    _close(zt.grad, zc.grad, rtol=1e-4, atol=1e-6)
    if op in ("var", "std"):
        for name in ("_saved_dim", "_saved_correction", "_saved_keepdim"):
            assert getattr(outs[1][0].grad_fn, name) == getattr(outs[0][0].grad_fn, name)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
@pytest.mark.parametrize("op", ["var", "std", "var_mean", "std_mean"])
@pytest.mark.parametrize("kwargs", [{"correction": 6}, {"correction": 7}, {"dim": (0, 1), "correction": 7},
                                    {"dim": -1, "correction": 4}])
def test_var_gradient_without_degrees_of_freedom(dtype, op, kwargs):
    """torch: over no dim with N - correction <= 0 the gradient is NaN where x is its mean, else +inf
    (real, so a complex input's is inf + 0j); over given dims it is 2 (x - mean) / (N - correction)."""
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.5]]).astype(dtype)
    if dtype == np.complex64:
        x = x + 1j * np.array([[0.5, 1.0, -1.0], [0.0, 2.0, -0.5]], dtype=np.float32)
    grads = []
    for lib in (torch, chainrule):
        t = lib.tensor(x, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's degrees-of-freedom warning
            out = getattr(lib, op)(t, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()
        grads.append(t.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)  # inf and NaN where torch's are


def test_complex_zero_dim_var_gradient_is_nan_plus_zero_j():
    for lib in (torch, chainrule):
        z = lib.tensor(1.5 - 0.5j, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lib.var(z).backward()
        assert np.isnan(z.grad.real.item()) and z.grad.imag.item() == 0.0


# ---------------------------------------------------------------- the programs' idioms
def test_edm2_normalize_and_mp_layers():
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((6, 4, 3, 3)) * 3).astype(np.float32)
    wt, wc = _pair(w)
    results = []
    for lib, x in ((torch, wt), (chainrule, wc)):
        norm = lib.linalg.vector_norm(x, dim=[1, 2, 3], keepdim=True, dtype=lib.float32)
        norm = lib.add(1e-4, norm, alpha=np.sqrt(norm.numel() / x.numel()))
        y = x / norm.to(x.dtype)
        y = lib.nn.functional.silu(y).lerp(y.flip(0), 0.3) / np.sqrt(0.7 ** 2 + 0.3 ** 2)
        y = lib.cat([0.6 * y[:2], 1.2 * y[2:]], dim=0)
        y.pow(2).sum().backward()
        results.append(y)
    _close(*results)
    _close(wt.grad, wc.grad, rtol=1e-4)
    assert results[1].grad_fn.name() == results[0].grad_fn.name()


def test_edm2_fourier_ger_and_foreach_lerp_ema():
    rng = np.random.default_rng(2)
    s, f = rng.standard_normal(5).astype(np.float32), rng.standard_normal(7).astype(np.float32)
    for lib in (torch, chainrule):
        a, b = lib.tensor(s), lib.tensor(f)
        np.testing.assert_array_equal(a.ger(b).numpy(), lib.outer(a, b).numpy())
    emas = []
    for lib in (torch, chainrule):
        ema = [lib.zeros(3, dtype=lib.float64), lib.full((2,), 2.0, dtype=lib.float64)]
        loop = [t.clone() for t in ema]
        with lib.no_grad():
            for step in range(1, 6):
                net = [lib.full((3,), float(step), dtype=lib.float64), lib.ones(2, dtype=lib.float64)]
                beta = (1 - 1 / step) ** 8.0
                lib._foreach_lerp_(ema, net, 1 - beta)
                for p_ema, p_net in zip(loop, net):
                    p_ema.lerp_(p_net, 1 - beta)
        for e, lp in zip(ema, loop):
            np.testing.assert_array_equal(e.numpy(), lp.numpy())
        emas.append(ema)
    for t, c in zip(*emas):
        np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-12)
    grads = []
    for lib in (torch, chainrule):
        g = lib.tensor([1.0, float("nan"), float("inf"), -float("inf")])
        assert lib.nan_to_num(g, nan=0, posinf=0, neginf=0, out=g) is g
        grads.append(g.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])


def test_s5_complex_zoh_scan_gradients():
    rng = np.random.default_rng(3)
    re = (-rng.random(4) - 0.1).astype(np.float32)
    im = rng.standard_normal(4).astype(np.float32)
    b = rng.standard_normal((4, 3, 2)).astype(np.float32)
    u = rng.standard_normal((2, 5, 3)).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        lre, lim, bp = (lib.tensor(v, requires_grad=True) for v in (re, im, b))
        lam = lib.complex(lre.clamp(max=-1e-4), lim)
        lam_bar = lib.exp(lam * 0.4)
        b_bar = (1 / lam * (lam_bar - lib.ones(4)))[..., None] * lib.view_as_complex(bp)
        bu = lib.einsum('ph,blh->blp', b_bar, lib.tensor(u).to(b_bar.dtype))
        x, xs = lib.zeros_like(bu[:, 0]), []
        for k in range(5):
            x = lib.addcmul(bu[:, k], lam_bar, x)
            xs.append(x)
        xs = lib.stack(xs, dim=1)
        powers = lib.cumprod(lam_bar.expand(5, -1), dim=0) / lam_bar
        y = (xs * powers).real * 2
        y.sum().backward()
        results.append((y, lre.grad, lim.grad, bp.grad, xs.grad_fn.name(), y.grad_fn.name()))
    for t, c in zip(results[0][:4], results[1][:4]):
        _close(t, c, rtol=1e-4, atol=1e-5)
    assert results[1][4:] == results[0][4:]


def test_deepseek_gate_and_sorted_dispatch():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((6, 8)).astype(np.float32)
    bias = (rng.standard_normal(8) * 0.1).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(logits, requires_grad=True)
        scores = x.sigmoid()
        chosen = (scores + lib.tensor(bias)).view(6, 4, 2)
        group_scores = chosen.topk(2, dim=-1)[0].sum(dim=-1)
        mask = chosen.new_ones(6, 4, dtype=bool).scatter_(1, group_scores.topk(2, dim=-1)[1], False)
        chosen = chosen.masked_fill_(mask.unsqueeze(-1), float("-inf")).flatten(1)
        indices = lib.topk(chosen, 2, dim=-1)[1]
        weights = scores.gather(1, indices)
        weights /= weights.sum(dim=-1, keepdim=True)
        flat = indices.flatten()
        order = flat.argsort(stable=True)
        counts = lib.bincount(flat, minlength=8)
        moved = lib.arange(6.0)[:, None].expand(6, 3).index_select(0, order // 2)
        out = lib.zeros(6, 3).index_add_(0, order // 2, moved * weights.flatten()[order, None])
        out.pow(2).sum().backward()
        with lib.no_grad():
            load_bias = lib.zeros(8)
            load_bias += 0.01 * lib.sign(counts.float().mean() - counts)
        results.append((out, x.grad, counts, load_bias, weights.grad_fn.name()))
    for t, c in zip(results[0][:4], results[1][:4]):
        _close(t, c, rtol=1e-5)
    assert results[1][4] == results[0][4]


@pytest.mark.parametrize("op", ["var_mean", "std_mean"])
@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": (0, -1), "unbiased": False, "keepdim": True}])
def test_var_mean_node_keeps_torch_saved_arguments(op, kwargs):
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    seen = []
    for lib in (torch, chainrule):
        t = lib.tensor(x, requires_grad=True)
        first, mean = getattr(lib, op)(t, **kwargs)
        node = first.grad_fn
        values = [node._saved_correction, node._saved_dim, node._saved_keepdim, mean.grad_fn._saved_keepdim,
                  node._saved_self.detach().numpy().tolist()]
        if op == "std_mean":
            values.append(node._saved_result0.detach().numpy().tolist())
        seen.append(values)
    assert seen[1] == seen[0]
