"""torch.nn.attention.flex_attention on chainrule: the same output, log-sum-exp and block metadata
as torch 2.13's CPU reference for the same score_mod and mask_mod, and gradients (torch's CPU
path has none: float64 gradcheck, and the dense softmax formula, stand in)."""

import warnings

import numpy as np
import pytest

import chainrule
from chainrule.nn.attention import SDPBackend, sdpa_kernel
from chainrule.nn.attention import flex_attention as ours

torch = pytest.importorskip("torch")
theirs = pytest.importorskip("torch.nn.attention.flex_attention")

_METADATA = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks", "q_indices",
             "full_q_num_blocks", "full_q_indices")


def _sliding_window_without_row_3(b, h, q_idx, kv_idx):
    # a window around the diagonal, and query row 3 sees nothing at all
    return (q_idx >= kv_idx - 2) & (q_idx <= kv_idx + 5) & (q_idx != 3)


def _run(lib, module, q, k, v, dtype):
    query, key, value = (lib.tensor(a, dtype=dtype) for a in (q, k, v))
    head_bias = lib.tensor(np.linspace(-1.0, 1.0, q.shape[1]), dtype=dtype)
    block_mask = module.create_block_mask(_sliding_window_without_row_3, q.shape[0], None, q.shape[2], k.shape[2],
                                          device="cpu", BLOCK_SIZE=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "called without torch.compile()", both: return_lse deprecated
        out, lse = module.flex_attention(query, key, value,
                                         score_mod=lambda s, b, h, q_idx, kv_idx: s + 0.1 * (q_idx - kv_idx)
                                         + head_bias[h],
                                         block_mask=block_mask, enable_gqa=True, return_lse=True)
    return out, lse, block_mask


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_score_mod_block_mask_and_gqa_match_torch(dtype_name):
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((2, 4, 10, 8)), rng.standard_normal((2, 2, 12, 8)), rng.standard_normal((2, 2, 12, 8))
    out_t, lse_t, mask_t = _run(torch, theirs, q, k, v, getattr(torch, dtype_name))
    out_c, lse_c, mask_c = _run(chainrule, ours, q, k, v, getattr(chainrule, dtype_name))
    tolerance = 1e-6 if dtype_name == "float32" else 1e-13
    assert out_c.dtype == getattr(chainrule, dtype_name) and lse_c.dtype == getattr(chainrule, dtype_name)
    np.testing.assert_allclose(out_c.numpy(), out_t.numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(lse_c.numpy(), lse_t.numpy(), rtol=tolerance, atol=tolerance)
    assert np.isneginf(lse_c.numpy()[:, :, 3]).all() and (out_c.numpy()[:, :, 3] == 0).all()  # the empty row
    for name in _METADATA:
        got, expected = getattr(mask_c, name).numpy(), getattr(mask_t, name).numpy()
        assert got.dtype == expected.dtype == np.int32 and np.array_equal(got, expected), name
    assert mask_c.shape == mask_t.shape and mask_c.BLOCK_SIZE == mask_t.BLOCK_SIZE
    assert mask_c.seq_lengths == mask_t.seq_lengths
    assert np.array_equal(mask_c.to_dense().numpy(), mask_t.to_dense().numpy())


def test_without_mods_it_is_scaled_dot_product_attention_and_differentiates():
    rng = np.random.default_rng(1)
    q, k, v = (chainrule.tensor(rng.standard_normal((1, 2, 5, 4)), requires_grad=True) for _ in range(3))
    out = ours.flex_attention(q, k, v, scale=0.3)
    expected = chainrule.nn.functional.scaled_dot_product_attention(q, k, v, scale=0.3)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)

    def attention_with_an_empty_row(q, k, v):
        def no_row_0_and_causal(b, h, q_idx, kv_idx):
            return (q_idx >= kv_idx) & (q_idx > 0)
        block_mask = ours.create_block_mask(no_row_0_and_causal, None, None, 5, 5, BLOCK_SIZE=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out, lse = ours.flex_attention(q, k, v, score_mod=lambda s, b, h, qi, ki: s * (1 + 0.1 * h),
                                           block_mask=block_mask, return_lse=True)
        return out, lse.clamp(min=-30.0)

    assert chainrule.autograd.gradcheck(attention_with_an_empty_row, (q, k, v))


def test_torchs_checks_and_the_backend_selector_still_in_the_package():
    q, k = torch.zeros(1, 4, 8, 2), torch.zeros(1, 3, 8, 2)
    for lib, module in ((torch, theirs), (chainrule, ours)):
        query, key = lib.zeros(1, 4, 8, 2), lib.zeros(1, 3, 8, 2)
        with pytest.raises(ValueError, match=r"^Expect query and key/value to have the same number of heads but got "
                                             r"Hq=4 and Hkv=3. Try setting enable_gqa=True for GQA.$"):
            module.flex_attention(query, key, key)
        with pytest.raises(ValueError, match=r"^Expect number of query heads to be a multiple of kv heads for GQA "
                                             r"but got Hq=4 and Hkv=3.$"):
            module.flex_attention(query, key, key, enable_gqa=True)
        small = module.create_block_mask(lambda b, h, q_idx, kv_idx: q_idx >= kv_idx, 1, 1, 4, 4, device="cpu")
        with pytest.raises(ValueError, match=r"^block_mask was created for block_mask.shape=\(1, 1, 4, 4\) but got "
                                             r"q_len=8 and kv_len=8. As the block mask was created for a smaller"):
            module.flex_attention(query, query, query, block_mask=small)
        assert module._DEFAULT_SPARSE_BLOCK_SIZE == 128
    del q, k
    with sdpa_kernel([SDPBackend.MATH]):
        pass
