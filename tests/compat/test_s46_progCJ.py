"""Session 46, lane progCJ (dien_interest_evolution): fixes found while writing the lane's programs,
each checked against torch 2.13 on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(fn):
    with pytest.raises(Exception) as info:
        fn()
    return type(info.value), str(info.value)


# ------------- broadcast_shapes names a Size argument as torch does (chainrule.Size being chainrule's torch.Size)
@pytest.mark.parametrize("make", [
    lambda lib: (lib.Size([4, 3]), lib.Size([4, 2])),
    lambda lib: (lib.Size([4, 3]), [4, 2]),
    lambda lib: ([2, 3], lib.Size([5])),
    lambda lib: (lib.Size([2, 1, 3]), (7,), lib.Size([4, 1])),
    lambda lib: (lib.Size([4, 3]), 5),
])
def test_broadcast_shapes_mismatch_message(make):
    ours = _error(lambda: chainrule.broadcast_shapes(*make(chainrule)))
    kind, words = _error(lambda: torch.broadcast_shapes(*make(torch)))
    assert ours == (kind, words.replace("torch.Size", "chainrule.Size"))


# ------------------------------- F.binary_cross_entropy with a weight that does not broadcast
@pytest.mark.parametrize("weight_shape", [(4, 2), (2,), (5, 3), (3, 4, 3)])
def test_binary_cross_entropy_bad_weight_message(weight_shape):
    rs = np.random.RandomState(0)
    p = rs.rand(4, 3) * 0.9 + 0.05
    y = (rs.rand(4, 3) > 0.5).astype(np.float64)
    w = rs.rand(*weight_shape)
    results = []
    for lib in (chainrule, torch):
        results.append(_error(lambda lib=lib: lib.nn.functional.binary_cross_entropy(
            lib.tensor(p), lib.tensor(y), weight=lib.tensor(w))))
    assert results[0] == (results[1][0], results[1][1].replace("torch.Size", "chainrule.Size"))


def test_binary_cross_entropy_broadcast_weight_still_matches():
    rs = np.random.RandomState(1)
    p = rs.rand(4, 3) * 0.9 + 0.05
    y = (rs.rand(4, 3) > 0.5).astype(np.float64)
    w = rs.rand(3)
    values, grads = [], []
    for lib in (chainrule, torch):
        x = lib.tensor(p, requires_grad=True)
        loss = lib.nn.functional.binary_cross_entropy(x, lib.tensor(y), weight=lib.tensor(w), reduction="sum")
        loss.backward()
        values.append(loss.item())
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(values[0], values[1], rtol=1e-12)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


# ------------- a weight that broadcasts but would grow the elementwise loss: torch's in-place error
GROWN = [(3, 4, 3), (1, 4, 3), (2, 1, 1)]
FITS = [(4, 1), (1,), (), (3,), (4, 3)]


def _bce_call(lib, kind, weight_shape, reduction):
    rs = np.random.RandomState(2)
    p = lib.tensor(rs.rand(4, 3) * 0.9 + 0.05, requires_grad=True)
    y = lib.tensor((rs.rand(4, 3) > 0.5) * 1.0)
    w = lib.tensor(rs.rand(*weight_shape))
    F = lib.nn.functional
    if kind == "bce":
        return F.binary_cross_entropy(p, y, weight=w, reduction=reduction)
    if kind == "BCELoss":
        return lib.nn.BCELoss(weight=w, reduction=reduction)(p, y)
    if kind == "bce_with_logits":
        return F.binary_cross_entropy_with_logits(p, y, weight=w, reduction=reduction)
    return F.binary_cross_entropy_with_logits(p, y, pos_weight=w, reduction=reduction)


@pytest.mark.parametrize("kind", ["bce", "BCELoss", "bce_with_logits", "pos_weight"])
@pytest.mark.parametrize("weight_shape", GROWN)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_bce_weight_growing_the_loss_raises_as_torch(kind, weight_shape, reduction):
    ours = _error(lambda: _bce_call(chainrule, kind, weight_shape, reduction))
    theirs = _error(lambda: _bce_call(torch, kind, weight_shape, reduction))
    assert ours == theirs


@pytest.mark.parametrize("kind", ["bce", "BCELoss", "bce_with_logits", "pos_weight"])
@pytest.mark.parametrize("weight_shape", FITS)
def test_bce_weight_that_fits_matches_torch(kind, weight_shape):
    ours = _bce_call(chainrule, kind, weight_shape, "none")
    theirs = _bce_call(torch, kind, weight_shape, "none")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---------------------------- torch.logsumexp(x, dim=()) without keepdim: torch's in-place error
LSE_SHAPES = [(3,), (2, 3), (2, 3, 4), (), (0, 3)]


def _lse(lib, shape, dim, keepdim, method):
    x = lib.tensor(np.random.RandomState(3).randn(*shape))
    return x.logsumexp(dim, keepdim=keepdim) if method else lib.logsumexp(x, dim=dim, keepdim=keepdim)


@pytest.mark.parametrize("shape", LSE_SHAPES)
@pytest.mark.parametrize("dim", [(), []])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("method", [False, True])
def test_logsumexp_empty_dim_list_as_torch(shape, dim, keepdim, method):
    try:
        theirs = _lse(torch, shape, dim, keepdim, method)
    except RuntimeError as error:
        with pytest.raises(RuntimeError) as info:
            _lse(chainrule, shape, dim, keepdim, method)
        assert str(info.value) == str(error)
        return
    ours = _lse(chainrule, shape, dim, keepdim, method)
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
