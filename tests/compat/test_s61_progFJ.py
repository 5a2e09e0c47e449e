"""The idioms of the VAR, Transolver and TopK-SAE programs, each against torch: values, gradients,
strides and node names of VAR's area/bicubic rescaling of residual maps (non-divisible sizes,
permuted inputs), its ``addmm_``/``argmin`` codebook lookup and block-causal ``torch.where`` mask
into SDPA; Transolver's temperature softmax and einsum slicing/deslicing; the SAE's
``topk`` + ``zeros_like(...).scatter_`` activation and decoder-gradient projection."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _grads(lib, out, inputs, seed=0):
    weight = lib.tensor(np.random.RandomState(seed).randn(*out.shape).astype(np.float32))
    return lib.autograd.grad(out, inputs, weight)


def _leaf(lib, array):
    return lib.tensor(array, requires_grad=True)


def _assert_same(ours, theirs, atol=1e-5):
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.stride() == theirs.stride()
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=atol, rtol=atol)


@pytest.mark.parametrize("mode,src,size", [("area", (8, 8), (3, 3)), ("area", (8, 8), (6, 6)),
                                           ("area", (5, 7), (3, 5)), ("bicubic", (3, 3), (8, 8)),
                                           ("bicubic", (1, 1), (8, 8)), ("bicubic", (6, 6), (8, 8))])
def test_var_rescaling_of_permuted_maps_matches_torch(mode, src, size):
    array = np.random.RandomState(1).randn(2, *src, 4).astype(np.float32)
    results = []
    for lib in LIBS:
        x = _leaf(lib, array)
        out = lib.nn.functional.interpolate(x.permute(0, 3, 1, 2), size=size, mode=mode)
        results.append((out, out.grad_fn.name(), _grads(lib, out, [x])[0]))
    (ours, our_node, our_grad), (theirs, their_node, their_grad) = results
    _assert_same(ours, theirs)
    assert our_node == their_node
    np.testing.assert_allclose(our_grad.numpy(), their_grad.numpy(), atol=1e-5)


def test_var_codebook_lookup_and_block_causal_mask_match_torch():
    rng = np.random.RandomState(2)
    z, emb = rng.randn(40, 8).astype(np.float32), rng.randn(16, 8).astype(np.float32)
    q, k, v = (rng.randn(2, 2, 14, 4).astype(np.float32) for _ in range(3))
    results = []
    for lib in LIBS:
        zt, et = lib.tensor(z), lib.tensor(emb)
        d = lib.sum(zt.square(), dim=1, keepdim=True) + lib.sum(et.square(), dim=1, keepdim=False)
        d.addmm_(zt, et.T, alpha=-2, beta=1)
        lvl = lib.cat([lib.full((pn * pn,), i) for i, pn in enumerate((1, 2, 3))]).view(1, 14, 1)
        mask = lib.where(lvl >= lvl.transpose(1, 2), 0.0, -lib.inf).reshape(1, 1, 14, 14)
        qt, kt, vt = (_leaf(lib, a) for a in (q, k, v))
        out = lib.nn.functional.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, scale=0.4)
        results.append((d, lib.argmin(d, dim=1), lib.cdist(zt, et).argmin(1), mask, out, _grads(lib, out, [qt, kt, vt])))
    ours, theirs = results
    _assert_same(ours[0], theirs[0], atol=1e-4)
    for i in (1, 2):
        assert ours[i].tolist() == theirs[i].tolist()
    assert ours[1].tolist() == ours[2].tolist()
    _assert_same(ours[3], theirs[3])
    _assert_same(ours[4], theirs[4])
    for a, b in zip(ours[5], theirs[5]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_transolver_slicing_matches_torch():
    rng = np.random.RandomState(3)
    x, fx = rng.randn(2, 3, 10, 8).astype(np.float32), rng.randn(2, 3, 10, 4).astype(np.float32)
    temp = np.full((1, 3, 1, 1), 0.5, dtype=np.float32)
    results = []
    for lib in LIBS:
        xt, ft, tt = _leaf(lib, x), _leaf(lib, fx), _leaf(lib, temp)
        weights = lib.nn.Softmax(dim=-1)(xt / tt)
        token = lib.einsum("bhnc,bhng->bhgc", ft, weights)
        token = token / (weights.sum(2) + 1e-5)[:, :, :, None].repeat(1, 1, 1, 4)
        out = lib.einsum("bhgc,bhng->bhnc", token, weights)
        out = out.permute(0, 2, 1, 3).reshape(2, 10, 12)
        results.append((weights, token, out, _grads(lib, out, [xt, ft, tt])))
    ours, theirs = results
    for a, b in zip(ours[:3], theirs[:3]):
        _assert_same(a, b)
    np.testing.assert_allclose(ours[0].sum(-1).detach().numpy(), 1, atol=1e-6)
    for a, b in zip(ours[3], theirs[3]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


@pytest.mark.parametrize("k,dim", [(4, -1), (1, -1), (3, 0)])
def test_sae_topk_scatter_and_decoder_projection_match_torch(k, dim):
    rng = np.random.RandomState(4)
    latents, w = rng.randn(6, 12).astype(np.float32), rng.randn(5, 12).astype(np.float32)
    results = []
    for lib in LIBS:
        xt = _leaf(lib, latents)
        topk = lib.topk(xt, k=k, dim=dim)
        out = lib.zeros_like(xt)
        out.scatter_(dim, topk.indices, lib.nn.functional.relu(topk.values))
        wt = lib.tensor(w)
        wt /= wt.norm(dim=0, keepdim=True)
        grad = wt * 3 + 1
        grad -= (grad * wt).sum(0, keepdim=True) * wt
        results.append((out, out.grad_fn.name(), _grads(lib, out, [xt])[0], grad))
    (ours, our_node, our_grad, our_proj), (theirs, their_node, their_grad, their_proj) = results
    _assert_same(ours, theirs)
    assert our_node == their_node
    np.testing.assert_allclose(our_grad.numpy(), their_grad.numpy(), atol=1e-6)
    _assert_same(our_proj, their_proj)
    np.testing.assert_allclose((our_proj * our_proj.new_tensor(w) / our_proj.new_tensor(w).norm(dim=0)).sum(0).numpy(),
                               0, atol=1e-5)


@pytest.mark.parametrize("masked_row", [False, True])
def test_sdpa_float_mask_with_and_without_fully_masked_rows_matches_torch(masked_row):
    """The safe softmax skips its two fills when no query row is fully masked: the same values and
    gradients as torch either way (a fully masked row attends to nothing, with zero gradient)."""
    rng = np.random.RandomState(5)
    q, k, v = (rng.randn(2, 3, 6, 4).astype(np.float32) for _ in range(3))
    mask = np.triu(np.full((6, 6), -np.inf, dtype=np.float32), 1)
    if masked_row:
        mask[2] = -np.inf
    results = []
    for lib in LIBS:
        qt, kt, vt = (_leaf(lib, a) for a in (q, k, v))
        out = lib.nn.functional.scaled_dot_product_attention(qt, kt, vt, attn_mask=lib.tensor(mask))
        results.append((out, _grads(lib, out, [qt, kt, vt])))
    (ours, our_grads), (theirs, their_grads) = results
    _assert_same(ours, theirs)
    assert np.isfinite(ours.detach().numpy()).all()
    for a, b in zip(our_grads, their_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
