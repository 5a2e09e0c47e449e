"""s46 progCD: the 2-norm's gradient rounds as torch's norm_backward, ``grad * (x / norm)`` masked to 0
where the norm is 0 (chainrule took ``x * (grad / norm)``, an ulp off in float32 and a bfloat16 ulp off
in bfloat16 / float16, and kept ``x`` where a tiny row's squares underflowed to a 0 norm)."""

import zlib

import numpy as np
import pytest
import torch as real_torch

import chainrule
from chainrule.autograd import gradcheck, gradgradcheck

DTYPES = ["float32", "float64", "bfloat16", "float16"]
CASES = [((40, 7, 13), -1, False), ((40, 7, 13), -1, True), ((40, 7, 13), (-2, -1), True),
         ((20, 3, 4, 5), (1, 2), False)]


def _grad(lib, x, dtype, dim, keepdim, seed_grad, via):
    t = lib.from_numpy(x).to(getattr(lib, dtype)).requires_grad_()
    if via == "norm":
        n = t.norm(dim=dim, keepdim=keepdim)
    else:
        n = lib.linalg.vector_norm(t, 2, dim=dim, keepdim=keepdim)
    g = lib.from_numpy(seed_grad.reshape(tuple(n.shape))).to(getattr(lib, dtype))
    (gx,) = lib.autograd.grad(n, t, g)
    return n.detach().float().numpy(), gx.float().numpy()


@pytest.mark.parametrize("via", ["norm", "vector_norm"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "dim", "keepdim"), CASES)
def test_two_norm_backward_bits_match_torch(shape, dim, keepdim, dtype, via):
    rng = np.random.default_rng(zlib.crc32(f"{shape}{dim}{keepdim}{dtype}".encode()))
    x = rng.standard_normal(shape).astype(np.float32)
    x[0] = 0  # a zero vector in the first output (its gradient is 0, not nan)
    out_numel = real_torch.linalg.vector_norm(real_torch.from_numpy(x), 2, dim=dim, keepdim=keepdim).numel()
    seed_grad = np.linspace(-1.5, 2.0, out_numel, dtype=np.float32)
    n_ref, g_ref = _grad(real_torch, x, dtype, dim, keepdim, seed_grad, via)
    n, g = _grad(chainrule, x, dtype, dim, keepdim, seed_grad, via)
    assert np.array_equal(n, n_ref)  # the same norms in, so the gradient's bits are the backward's
    assert np.array_equal(g, g_ref)
    assert np.all(g[0] == 0)


def test_underflowed_norm_has_zero_gradient_as_torch():
    # 1e-30 squared underflows in float32: the norm is 0 and torch's masked gradient is 0 there
    results = []
    for lib in (real_torch, chainrule):
        x = lib.tensor([[1e-30, -2e-30, 0.0], [3.0, 4.0, 0.0]], requires_grad=True)
        n = x.norm(dim=-1)
        (g,) = lib.autograd.grad(n, x, lib.tensor([1.0, 2.0]))
        results.append((n.detach().tolist(), g.tolist()))
    assert results[0] == results[1]
    assert results[1][1][0] == [0.0, 0.0, 0.0]


def test_two_norm_gradcheck_and_gradgradcheck():
    rng = np.random.default_rng(0)
    x = chainrule.from_numpy(rng.standard_normal((4, 5))).requires_grad_()
    assert gradcheck(lambda t: t.norm(dim=-1), (x,))
    assert gradgradcheck(lambda t: chainrule.linalg.vector_norm(t, 2, dim=(0, 1)), (x,))
