"""Session 56, lane progET: what the BigBird, IPA and PonderNet programs found, against torch.

``F.scaled_dot_product_attention`` where torch's CPU flash kernel runs (4-d float inputs of one head
size, no dropout) records torch's one node, ``ScaledDotProductFlashAttentionForCpuBackward0``; a
boolean mask as BigBird's dense check builds it by ``repeat_interleave`` (found by the bigbird program's
probe: it was ``UnsafeViewBackward0``, the composition's last part).
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _attention(lib, shape, mask=None, **kwargs):
    rng = np.random.default_rng(0)
    q, k, v = (lib.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True) for _ in range(3))
    attn_mask = None if mask is None else lib.tensor(mask)
    out = lib.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, **kwargs)
    grads = lib.autograd.grad(out.pow(2).sum(), [q, k, v])
    return out, grads


_BLOCK_MASK = np.kron((np.random.default_rng(1).random((2, 3, 3)) > 0.4) | np.eye(3, dtype=bool),
                      np.ones((2, 2), dtype=bool))


@pytest.mark.parametrize("shape, mask, kwargs", [
    ((2, 2, 6, 4), _BLOCK_MASK[None], {}),  # BigBird's per-head block mask, (1, h, L, L)
    ((2, 2, 6, 4), _BLOCK_MASK[:1, None, 0], {}),
    ((2, 2, 6, 4), np.where(_BLOCK_MASK[0], 0.0, -1e9).astype(np.float32), {}),
    ((2, 2, 6, 4), None, {"is_causal": True}),
    ((2, 2, 6, 4), None, {}),
    ((2, 6, 4), _BLOCK_MASK[0], {}),  # 3-d: torch's math kernel, UnsafeViewBackward0
])
def test_sdpa_node_name_values_and_gradients_as_torch(shape, mask, kwargs):
    ours, theirs = _attention(chainrule, shape, mask, **kwargs), _attention(torch, shape, mask, **kwargs)
    assert ours[0].grad_fn.name() == theirs[0].grad_fn.name()
    assert type(ours[0].grad_fn).__name__ == type(theirs[0].grad_fn).__name__
    assert ours[0].stride() == theirs[0].stride()
    np.testing.assert_allclose(ours[0].detach().numpy(), theirs[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    for mine, torch_grad in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(mine.numpy(), torch_grad.numpy(), rtol=1e-4, atol=1e-5)


def test_sdpa_flash_node_under_create_graph_differentiates_twice():
    # torch's flash node refuses a second derivative ("derivative for
    # aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented"); the renamed
    # composition keeps chainrule's: it equals torch's math kernel's (3-d inputs)
    second = {}
    for lib, shape in ((chainrule, (1, 1, 6, 4)), (torch, (1, 6, 4))):
        q = lib.tensor(np.linspace(-1, 1, 24, dtype=np.float32).reshape(shape), requires_grad=True)
        out = lib.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=lib.tensor(_BLOCK_MASK[0]))
        (grad,) = lib.autograd.grad(out.sum(), q, create_graph=True)
        (second[lib],) = lib.autograd.grad(grad.pow(2).sum(), q)
    np.testing.assert_allclose(second[chainrule].numpy().reshape(6, 4), second[torch].numpy().reshape(6, 4),
                               rtol=1e-4, atol=1e-5)


def _cell_step(lib, bias: bool, batched: bool, dtype: str):
    lib.manual_seed(0)
    cell = lib.nn.GRUCell(3, 4, bias=bias).to(getattr(lib, dtype))
    x = lib.randn(2, 3).to(getattr(lib, dtype)).requires_grad_()
    h = lib.randn(2, 4).to(getattr(lib, dtype))
    out = cell(x, h) if batched else cell(x[0], h[0])
    return out, lib.autograd.grad(out.pow(2).sum(), [x] + list(cell.parameters()))


@pytest.mark.parametrize("bias, batched, dtype", [(True, True, "float32"), (False, True, "float64"),
                                                  (True, False, "float32")])
def test_gru_cell_step_node_named_as_torchs(bias, batched, dtype):
    """torch's CPU GRUCell ends with an in-place add (AddBackward0; unbatched, SqueezeBackward1 above it):
    PonderNet's GRUCell loop met chainrule's fused GruBackward0."""
    ours, theirs = _cell_step(chainrule, bias, batched, dtype), _cell_step(torch, bias, batched, dtype)
    assert ours[0].grad_fn.name() == theirs[0].grad_fn.name()
    np.testing.assert_allclose(ours[0].detach().numpy(), theirs[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    for mine, torch_grad in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(mine.numpy(), torch_grad.numpy(), rtol=1e-4, atol=1e-5)
