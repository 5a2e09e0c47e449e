"""The idioms of the Hawk RG-LRU, XCiT and dynamic-convolution programs, each against torch: a batch
folded into the groups of one convolution (per-sample kernels, CondConv's ``permute([1, 0, 2, 3]).view``),
the RG-LRU's gates, loop scan and log-space parallel scan, RMSNorm with NumPy's ``axis=``/``keepdims=``,
and cross-covariance attention (values, gradients, strides, node names)."""

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
        weights = np.cos(np.arange(out.numel())).reshape(tuple(out.shape)).astype(np.float32)
        (out * lib.tensor(weights)).sum().backward()
        results.append((out.detach().numpy(), [t.grad.numpy() for t in leaves], out.stride(), out.grad_fn.name()))
    return results


def _assert_same(results, rtol=1e-5, atol=1e-5):
    (ours, our_grads, our_strides, our_node), (theirs, their_grads, their_strides, their_node) = results
    assert our_node == their_node
    assert our_strides == their_strides
    for a, b in zip([ours] + our_grads, [theirs] + their_grads):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# (batch, in, out, size, groups, kernel, stride, padding, dilation): the last two fold many samples
# of few channels per group into one convolution's groups (the input gradient's per-sample GEMM path)
FOLDED = [(3, 4, 6, 7, 1, 3, 1, 1, 1), (3, 4, 6, 7, 2, 3, 2, 1, 1), (2, 8, 8, 6, 4, 3, 1, 2, 2),
          (8, 3, 16, 8, 1, 3, 1, 1, 1), (16, 4, 4, 6, 2, 3, 1, 1, 1)]


@pytest.mark.parametrize("config", FOLDED)
def test_dynamic_conv_folds_the_batch_into_groups(config):
    B, C, O, H, g, k, s, p, d = config
    K = 3

    def dynamic_conv(lib, x, weight, bias, logits):
        attention = lib.nn.functional.softmax(logits / 4.0, 1)
        aggregate_weight = lib.mm(attention, weight.view(K, -1)).view(B * O, C // g, k, k)
        aggregate_bias = lib.mm(attention, bias).view(-1)
        out = lib.nn.functional.conv2d(x.view(1, -1, H, H), weight=aggregate_weight, bias=aggregate_bias,
                                       stride=s, padding=p, dilation=d, groups=g * B)
        return out.view(B, O, out.size(-2), out.size(-1))

    _assert_same(_run_both(dynamic_conv, _randn(B, C, H, H), _randn(K, O, C // g, k, k, seed=1),
                           _randn(K, O, seed=2), _randn(B, K, seed=3)))


@pytest.mark.parametrize("config", FOLDED[:2] + FOLDED[-1:])
def test_dynamic_conv_equals_a_per_sample_loop(config):
    B, C, O, H, g, k, s, p, d = config
    F = chainrule.nn.functional
    x = chainrule.tensor(_randn(B, C, H, H), requires_grad=True)
    w = chainrule.tensor(_randn(B, O, C // g, k, k, seed=1), requires_grad=True)
    folded = F.conv2d(x.view(1, -1, H, H), w.reshape(B * O, C // g, k, k), stride=s, padding=p, dilation=d, groups=g * B)
    folded = folded.view(B, O, folded.size(-2), folded.size(-1))
    loop = chainrule.cat([F.conv2d(x[b:b + 1], w[b], stride=s, padding=p, dilation=d, groups=g) for b in range(B)])
    np.testing.assert_allclose(folded.detach().numpy(), loop.detach().numpy(), rtol=1e-5, atol=1e-5)
    weights = chainrule.tensor(np.cos(np.arange(loop.numel())).reshape(tuple(loop.shape)).astype(np.float32))
    grads_folded = chainrule.autograd.grad((folded * weights).sum(), (x, w))
    grads_loop = chainrule.autograd.grad((loop * weights).sum(), (x, w))
    for a, b in zip(grads_folded, grads_loop):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_condconv_routes_flat_experts_and_permutes_the_folded_output():
    B, C, O, H, K = 3, 4, 6, 5, 4

    def condconv(lib, x, weight, logits):
        routing_weights = lib.sigmoid(logits)
        kernels = lib.matmul(routing_weights, weight).view((B * O, C // 2, 3, 3))
        out = lib.nn.functional.conv2d(x.reshape(1, B * C, H, H), kernels, None, stride=(1, 1), padding=(2, 2),
                                       dilation=(2, 2), groups=2 * B)
        return out.permute([1, 0, 2, 3]).view(B, O, out.shape[-2], out.shape[-1])

    _assert_same(_run_both(condconv, _randn(B, C, H, H), _randn(K, O * (C // 2) * 9, seed=1), _randn(B, K, seed=2)))


def _rg_lru(lib, x, gate_x_logits, gate_a_logits, a_param):
    """The RG-LRU's gates and recurrentgemma's loop scan, with a document restarting at step 3."""
    reset = lib.tensor([[True, False, False, True, False, False]])
    log_a = -8.0 * lib.sigmoid(gate_a_logits) * lib.nn.functional.softplus(a_param)
    a = lib.exp(log_a)
    multiplier = lib.sqrt(1 - lib.exp(2 * log_a))
    multiplier = reset[..., None] + ~reset[..., None] * multiplier
    normalized_x = x * lib.sigmoid(gate_x_logits) * multiplier.type(x.dtype)
    a = a * ~reset[..., None]
    h_t = lib.zeros(x[:, 0].shape, dtype=lib.float32)
    y = lib.zeros_like(x)
    for t in range(x.shape[1]):
        h_t = a[:, t].type(lib.float32) * h_t + normalized_x[:, t].type(lib.float32)
        y[:, t] = h_t.type(x.dtype)
    return y


def test_rg_lru_loop_scan_with_resets():
    _assert_same(_run_both(_rg_lru, _randn(2, 6, 5), _randn(2, 6, 5, seed=1), _randn(2, 6, 5, seed=2),
                           _randn(5, seed=3)))


def test_parallel_scan_masks_the_exponent_before_exp():
    def parallel_scan(lib, x, log_a_logits):
        log_a = -lib.nn.functional.softplus(log_a_logits)
        cumulative = lib.cumsum(log_a, dim=1)
        T = x.shape[1]
        mask = lib.ones(T, T, dtype=lib.bool).tril()[None, :, :, None]
        diff = cumulative[:, :, None, :] - cumulative[:, None, :, :]
        decay = lib.exp(lib.where(mask, diff, lib.tensor(float("-inf"))))
        return lib.einsum("btsd,bsd->btd", decay, x)

    _assert_same(_run_both(parallel_scan, _randn(2, 7, 3), _randn(2, 7, 3, seed=1)))


def test_rmsnorm_with_numpy_axis_and_keepdims_and_a_list_shape():
    def rms_norm(lib, x, scale):
        var = lib.mean(lib.square(x), axis=-1, keepdims=True)
        normed = x * lib.rsqrt(var + 1e-6)
        return normed * (lib.reshape(scale, [1 for _ in range(x.ndim - 1)] + [-1]) + 1)

    _assert_same(_run_both(rms_norm, _randn(2, 3, 8), _randn(8, seed=1)))


def test_cross_covariance_attention():
    B, N, C, heads = 2, 9, 16, 4

    def xca(lib, qkv_in, temperature):
        qkv = qkv_in.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0].transpose(-2, -1), qkv[1].transpose(-2, -1), qkv[2].transpose(-2, -1)
        q = lib.nn.functional.normalize(q, dim=-1)
        k = lib.nn.functional.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * temperature).softmax(dim=-1)
        return (attn @ v).permute(0, 3, 1, 2).reshape(B, N, C)

    _assert_same(_run_both(xca, _randn(B, N, 3 * C), _randn(heads, 1, 1, seed=1)))
