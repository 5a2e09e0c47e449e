"""Session 54, perfAP: rms_norm as one fused node, layer norm's backward without a per-call
allocation, softmax's per-call overhead; each the same bits as before or nearer torch's."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

F = chainrule.nn.functional

# (shape, normalized dims): under torch's GRAIN_SIZE, where chainrule's sums replay torch's order
RMS_SHAPES = [((3, 7), 1), ((32, 128), 1), ((2, 5, 33), 1), ((4, 6, 8), 2), ((7,), 1), ((3, 1), 1), ((2, 3, 1), 2)]


def _rms_norm_run(lib, x, w, g, k, eps):
    xt = lib.tensor(x, requires_grad=True)
    wt = None if w is None else lib.tensor(w, requires_grad=True)
    y = lib.nn.functional.rms_norm(xt, x.shape[-k:], wt, eps)
    # torch's CPU rms_norm is its composite: the last product's node and what it saved
    node = (y.grad_fn.name(), tuple(y.grad_fn._saved_self.shape), y.grad_fn._saved_other.detach().numpy())
    y.backward(lib.tensor(g))
    return y, xt, wt, node


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_rms_norm_is_torchs_to_the_bit(dtype):
    # the fused rule replays torch's composite backward: x's gradient matches torch's to the bit
    # (the composite chainrule recorded before was an ulp off in about half the elements)
    rng = np.random.default_rng(0)
    for shape, k in RMS_SHAPES:
        for weighted in (True, False):
            x, g = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
            w = rng.standard_normal(shape[-k:]).astype(dtype) if weighted else None
            eps = None if dtype is np.float32 else 1e-6
            ours, theirs = _rms_norm_run(chainrule, x, w, g, k, eps), _rms_norm_run(torch, x, w, g, k, eps)
            for a, b in zip(ours[:3], theirs[:3]):
                if b is not None:
                    a, b = (a.grad, b.grad) if b.is_leaf else (a, b)
                    assert np.array_equal(a.detach().numpy(), b.detach().numpy()), (shape, k, weighted, dtype)
            (name, self_shape, other), (name_torch, self_shape_torch, other_torch) = ours[3], theirs[3]
            assert name == name_torch == "MulBackward0" and self_shape == self_shape_torch
            assert np.array_equal(other, other_torch)
            y = ours[0]
            with chainrule.no_grad():
                plain = F.rms_norm(chainrule.tensor(x), shape[-k:], None if w is None else chainrule.tensor(w), eps)
            assert plain.grad_fn is None and np.array_equal(plain.numpy(), y.detach().numpy())


def test_fused_rms_norm_differentiates_twice():
    x = chainrule.randn(2, 3, dtype=chainrule.float64, requires_grad=True)
    w = chainrule.randn(3, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda x, w: F.rms_norm(x, (3,), w, 1e-3), (x, w))
    assert chainrule.autograd.gradgradcheck(lambda x: F.rms_norm(x, (2, 3)), (x,))
    # only the weight needs a gradient: the rule computes dw alone
    y = F.rms_norm(x.detach(), (3,), w)
    (grad_w,) = chainrule.autograd.grad(y.sum(), w)
    xt = torch.tensor(x.detach().numpy())
    wt = torch.tensor(w.detach().numpy(), requires_grad=True)
    (grad_w_torch,) = torch.autograd.grad(torch.nn.functional.rms_norm(xt, (3,), wt).sum(), wt)
    assert np.array_equal(grad_w.numpy(), grad_w_torch.numpy())


def test_layer_norm_backward_takes_the_cached_row_mean_and_keeps_its_bits():
    # LayerNormBackward's mean(ĝ) is ĝ @ (1/d, ..., 1/d): the forward's cached vector now, the same bits
    # as the vector it built each call (the reference below spells that out)
    rng = np.random.default_rng(1)
    for rows, d in [(3, 7), (32, 128), (5, 64), (2, 513)]:
        x, g = rng.standard_normal((rows, d)).astype(np.float32), rng.standard_normal((rows, d)).astype(np.float32)
        w, b = rng.standard_normal(d).astype(np.float32), rng.standard_normal(d).astype(np.float32)
        xt, wt = chainrule.tensor(x, requires_grad=True), chainrule.tensor(w, requires_grad=True)
        F.layer_norm(xt, (d,), wt, chainrule.tensor(b), 1e-5).backward(chainrule.tensor(g))
        row_mean = np.full(d, 1.0 / d, dtype=np.float32)
        xc = x - (x @ row_mean)[:, None]
        invstd = (np.float32(1) / np.sqrt(np.einsum("ij,ij->i", xc, xc) / np.float32(d) + np.float32(1e-5)))[:, None]
        xhat = xc * invstd
        g_hat = g * w
        expected = ((g_hat - xhat * (np.einsum("ij,ij->i", g_hat, xhat) / d)[:, None]) - (g_hat @ row_mean)[:, None]) * invstd
        assert np.array_equal(xt.grad.numpy(), expected), (rows, d)
        assert np.array_equal(wt.grad.numpy(), np.einsum("ij,ij->j", g, xhat))
