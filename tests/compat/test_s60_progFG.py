"""The idioms of the Infini-attention program, each against torch: values, gradients, strides and
node names of the compressive memory (linear and delta-rule updates, retrieval, the sigmoid gate)
and of the causal SDPA it mixes them with."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _chain(fn, limit=6) -> list:
    """The node names along the first input of each node, from ``fn`` down."""
    names = []
    while fn is not None and len(names) < limit:
        names.append(fn.name())
        inputs = [child for child, _ in fn.next_functions if child is not None]
        fn = inputs[0] if inputs else None
    return names


def _memory_step(lib, variant: str, dtype_name: str, shape: tuple):
    """One Infini-attention memory step on fixed inputs: the output, the gradients of q, k, v, M, z
    and the gate, the node chain and the strides."""
    b, h, n, dk, dv = shape
    dtype, F = getattr(lib, dtype_name), lib.nn.functional
    rng = np.random.RandomState(3)
    q, k = (lib.tensor(rng.randn(b, h, n, dk), dtype=dtype, requires_grad=True) for _ in range(2))
    v = lib.tensor(rng.randn(b, h, n, dv), dtype=dtype, requires_grad=True)
    mem = lib.tensor(np.abs(rng.randn(b, h, dk, dv)), dtype=dtype, requires_grad=True)
    z = lib.tensor(np.abs(rng.randn(b, h, dk)) + 1, dtype=dtype, requires_grad=True)
    beta = lib.zeros(1, h, 1, 1, dtype=dtype, requires_grad=True)
    sq, sk = F.elu(q) + 1, F.elu(k) + 1
    if variant == "retrieve":
        out = sq @ mem / (sq @ z.unsqueeze(-1))
    elif variant == "linear":
        out = mem + sk.transpose(-2, -1) @ v
    elif variant == "delta":
        out = mem + sk.transpose(-2, -1) @ (v - sk @ mem / (sk @ z[..., None]))
    else:  # the gate mixing memory retrieval and local attention
        gate = lib.sigmoid(beta)
        local = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out = gate * (sq @ mem / (sq @ z.unsqueeze(-1))) + (1 - gate) * local
    weight = lib.tensor(np.cos(np.arange(out.numel())).reshape(tuple(out.shape)), dtype=dtype)
    grads = lib.autograd.grad((out * weight).sum(), (q, k, v, mem, z, beta), materialize_grads=True,
                              allow_unused=True)
    return out, grads, _chain(out.grad_fn), tuple(out.stride())


@pytest.mark.parametrize("variant", ["retrieve", "linear", "delta", "gate"])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(2, 2, 5, 4, 4), (1, 3, 1, 2, 3)])
def test_infini_memory_step_matches_torch(variant, dtype_name, shape):
    (out_c, grads_c, chain_c, stride_c), (out_t, grads_t, chain_t, stride_t) = (
        _memory_step(lib, variant, dtype_name, shape) for lib in LIBS)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype_name == "float32" else dict(rtol=1e-10, atol=1e-12)
    assert str(out_c.dtype).split(".")[-1] == str(out_t.dtype).split(".")[-1]
    np.testing.assert_allclose(out_c.detach().numpy(), out_t.detach().numpy(), **tol)
    for gc, gt in zip(grads_c, grads_t):
        np.testing.assert_allclose(gc.numpy(), gt.numpy(), **tol)
    assert chain_c == chain_t
    assert stride_c == stride_t


def _segments(lib, segment_len: int):
    """Memory retrieval carried over segments, against linear attention over the whole prefix."""
    F = lib.nn.functional
    rng = np.random.RandomState(5)
    q, k, v = (lib.tensor(rng.randn(2, 2, 12, 4)) for _ in range(3))
    mem = z = None
    retrieved = []
    for qs, ks, vs in zip(q.split(segment_len, dim=2), k.split(segment_len, dim=2), v.split(segment_len, dim=2)):
        if mem is not None:
            sq = F.elu(qs) + 1
            retrieved.append(sq @ mem / (sq @ z.unsqueeze(-1)))
        sk = F.elu(ks) + 1
        mem = sk.transpose(-2, -1) @ vs if mem is None else mem + sk.transpose(-2, -1) @ vs
        z = sk.sum(dim=-2) if z is None else z + sk.sum(dim=-2)
    seg = lib.arange(12) // segment_len
    scores = ((F.elu(q) + 1) @ (F.elu(k) + 1).transpose(-2, -1)) * (seg[:, None] > seg[None, :])
    linear = (scores @ v) / scores.sum(dim=-1, keepdim=True)
    return lib.cat(retrieved, dim=2), linear[:, :, segment_len:]


@pytest.mark.parametrize("segment_len", [3, 4, 5])
def test_segment_memory_equals_prefix_linear_attention(segment_len):
    (seg_c, lin_c), (seg_t, lin_t) = (_segments(lib, segment_len) for lib in LIBS)
    np.testing.assert_allclose(seg_c.numpy(), lin_c.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(seg_c.numpy(), seg_t.numpy(), rtol=1e-12, atol=1e-12)


def _monarch(lib, dtype_name: str, shapes: tuple):
    """fly's blockdiag_butterfly_multiply: bmm into a transposed ``empty`` through ``out=``, the
    permutation, the second bmm; its einsum reference; per-block ``kaiming_uniform_``."""
    (batch, k, q, p), (l, s) = shapes
    r = k * q // l
    dtype = getattr(lib, dtype_name)
    lib.manual_seed(0)
    w1 = lib.empty(k, q, p, dtype=dtype)
    for i in range(k):
        lib.nn.init.kaiming_uniform_(w1[i], a=5 ** 0.5)
    w2 = lib.tensor(np.random.RandomState(1).randn(l, s, r), dtype=dtype)
    x = lib.tensor(np.random.RandomState(2).randn(batch, k * p), dtype=dtype).reshape(batch, k, p).transpose(0, 1)
    out1 = lib.empty(batch, k, q, dtype=dtype).transpose(0, 1)
    returned = lib.bmm(x, w1.transpose(-1, -2), out=out1)
    mixed = out1.transpose(0, 1).reshape(batch, r, l).transpose(-1, -2).contiguous().transpose(0, 1)
    out2 = lib.bmm(mixed, w2.transpose(-1, -2)).permute(1, 2, 0).reshape(batch, s * l)
    first = lib.einsum('kqp,bkp->bkq', w1, x.transpose(0, 1)).reshape(batch, r, l).transpose(-1, -2)
    reference = lib.einsum('lsr,blr->bsl', w2, first).reshape(batch, s * l)
    return (w1, out1, out2, reference), (tuple(out1.stride()), returned.data_ptr() == out1.data_ptr(),
                                          tuple(mixed.stride()), tuple(out2.stride()))


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("shapes", [((5, 4, 4, 4), (4, 4)), ((3, 2, 6, 3), (3, 5))])
def test_monarch_bmm_out_permutation_and_einsum_match_torch(dtype_name, shapes):
    (values_c, layout_c), (values_t, layout_t) = (_monarch(lib, dtype_name, shapes) for lib in LIBS)
    assert layout_c == layout_t
    for vc, vt in zip(values_c, values_t):
        np.testing.assert_allclose(vc.numpy(), vt.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values_c[2].numpy(), values_c[3].numpy(), rtol=1e-5, atol=1e-6)
