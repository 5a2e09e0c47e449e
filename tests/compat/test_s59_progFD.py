"""The idioms of the TokenLearner program, each against torch: the einsum pooling of learned spatial
maps and the TokenFuser's einsum back to a feature map (values, gradients, strides, node names), and
lucidrains' grouped TokenLearner (``repeat`` through a grouped 1x1 ``Conv2d``, mean over space)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _run_both(fn, *arrays):
    """``fn(lib, *leaves)`` on both libraries, backward through a fixed cosine weighting of the output;
    per library: (output, leaf gradients, output strides, node name)."""
    results = []
    for lib in LIBS:
        leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
        out = fn(lib, *leaves)
        weights = np.cos(np.arange(out.numel())).reshape(out.shape).astype(np.float32)
        (out * lib.tensor(weights)).sum().backward()
        results.append((out.detach().numpy(), [t.grad.numpy() for t in leaves], out.stride(), out.grad_fn.name()))
    return results


def _assert_same(results, rtol=1e-5, atol=1e-6):
    (ours, our_grads, our_strides, our_node), (theirs, their_grads, their_strides, their_node) = results
    assert our_node == their_node
    assert our_strides == their_strides
    for a, b in zip([ours] + our_grads, [theirs] + their_grads):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("shape", [(2, 8, 4, 4, 6), (1, 3, 5, 1, 2), (3, 1, 2, 3, 4)])
def test_token_pooling_einsum_of_sigmoid_maps_over_the_flattened_map(shape):
    B, S, C, H, W = shape

    def pool(lib, logits, x):
        maps = lib.sigmoid(logits.view(B, S, H * W))
        return lib.einsum('bsn,bnc->bsc', maps, x.flatten(2).transpose(1, 2))

    _assert_same(_run_both(pool, _randn(B, S, H, W), _randn(B, C, H, W, seed=1)))


@pytest.mark.parametrize("shape", [(2, 8, 4, 4, 6), (1, 3, 5, 1, 2)])
def test_token_pooling_einsum_equals_bmm_and_a_loop_over_tokens(shape):
    B, S, C, H, W = shape
    lib = chainrule
    logits = lib.tensor(_randn(B, H * W, S))
    x = lib.tensor(_randn(B, C, H, W, seed=1), requires_grad=True)
    maps = lib.nn.functional.softmax(logits.transpose(1, 2), dim=-1)
    feat = x.flatten(2).transpose(1, 2)
    tokens = lib.einsum('bsn,bnc->bsc', maps, feat)
    via_bmm = lib.bmm(maps, feat)
    via_loop = lib.stack([(maps[:, s, :, None] * feat).sum(dim=1) for s in range(S)], dim=1)
    np.testing.assert_allclose(tokens.detach().numpy(), via_bmm.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tokens.detach().numpy(), via_loop.detach().numpy(), rtol=1e-5, atol=1e-6)
    grads = [lib.autograd.grad(t.cos().sum(), x)[0].numpy() for t in (tokens, via_bmm, via_loop)]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[0], grads[2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 8, 4, 4, 6), (3, 1, 2, 3, 1)])
def test_token_fuser_einsum_back_to_a_feature_map(shape):
    B, S, C, H, W = shape

    def fuse(lib, tokens, mix_logits):
        mix = lib.sigmoid(mix_logits).transpose(1, 2)  # B, S, HW
        return lib.einsum('bsc,bsn->bcn', tokens, mix).view(B, C, H, W)

    _assert_same(_run_both(fuse, _randn(B, S, C), _randn(B, H * W, S, seed=1)))


@pytest.mark.parametrize("groups", [1, 4])
def test_grouped_token_learner_repeat_through_grouped_1x1_conv(groups):
    B, C, H, W = 2, 3, 4, 5

    def learner(lib, x, w1, w2):
        F = lib.nn.functional
        xr = x.repeat(1, groups, 1, 1)
        attn = F.conv2d(F.gelu(F.conv2d(xr, w1, groups=groups)), w2, groups=groups).unsqueeze(1)
        return (xr.view(B, groups, C, H, W).transpose(1, 2) * attn).mean(dim=(-2, -1))

    _assert_same(_run_both(learner, _randn(B, C, H, W), _randn(2 * C * groups, C, 1, 1, seed=1),
                           _randn(groups, 2 * C, 1, 1, seed=2)))


# --- TD3+BC's idioms: the twin-critic target, the replay buffer's tensors, the Polyak update
def test_twin_critic_min_target_with_ties_and_nan_against_torch_where():
    q1 = np.array([[1.0], [2.0], [np.nan], [-1.0]], dtype=np.float32)
    q2 = np.array([[1.0], [3.0], [0.5], [np.nan]], dtype=np.float32)
    results = []
    for lib in LIBS:
        a, b = lib.tensor(q1, requires_grad=True), lib.tensor(q2, requires_grad=True)
        target = lib.min(a, b)
        via_where = lib.where(a < b, a, b)
        grads = lib.autograd.grad(target.nan_to_num().sum(), (a, b))
        results.append((target.detach().numpy(), via_where.detach().numpy(), [g.numpy() for g in grads],
                        target.grad_fn.name()))
    (ours, our_where, our_grads, our_node), (theirs, their_where, their_grads, their_node) = results
    assert our_node == their_node
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_where, their_where)
    for a, b in zip(our_grads, their_grads):
        np.testing.assert_array_equal(a, b)


def test_replay_buffer_float_tensor_of_float64_rows_and_polyak_copy():
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((7, 3))[rng.integers(0, 7, size=5)]
    results = []
    for lib in LIBS:
        batch = lib.FloatTensor(rows).to(lib.device("cpu"))
        target = lib.nn.Parameter(lib.tensor(_randn(3, 2)))
        param = lib.nn.Parameter(lib.tensor(_randn(3, 2, seed=1)))
        before = target.detach().clone()
        target.data.copy_(0.005 * param.data + (1 - 0.005) * target.data)
        results.append((batch.numpy(), str(batch.dtype).split(".")[-1], batch.stride(), target.detach().numpy(),
                        lib.lerp(before, param.detach(), 0.005).numpy(), target.requires_grad))
    ours, theirs = results
    assert ours[1:3] == theirs[1:3] and ours[5] == theirs[5]
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[3], theirs[3])
    np.testing.assert_allclose(ours[4], theirs[4], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours[3], ours[4], rtol=1e-6, atol=1e-7)
