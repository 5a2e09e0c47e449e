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
