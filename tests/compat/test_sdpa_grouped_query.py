"""F.scaled_dot_product_attention(enable_gqa=True), as transformers' "sdpa" attention calls it for
Llama-style models with fewer key/value heads than query heads: the key/value heads are repeated
over runs of consecutive query heads (torch 2.13's math), forward and gradients against torch.
chainrule ignored the flag and failed at the matmul (session 13, Hugging Face trial)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("case", ["plain", "bool_mask", "causal", "unbatched"])
def test_grouped_query_attention_matches_torch_forward_and_backward(case):
    rng = np.random.default_rng(3)
    lead = () if case == "unbatched" else (2,)
    q, k, v = (rng.standard_normal((*lead, h, 5, 4)) for h in (6, 2, 3))
    keep = np.tril(np.ones((5, 5), dtype=bool)) | (rng.random((5, 5)) < 0.3)
    results = []
    for lib in (torch, chainrule):
        tensors = [lib.tensor(a, requires_grad=True) for a in (q, k, v)]
        kwargs = {"attn_mask": lib.tensor(keep)} if case == "bool_mask" else {"is_causal": case == "causal"}
        out = lib.nn.functional.scaled_dot_product_attention(*tensors, enable_gqa=True, **kwargs)
        (out * lib.tensor(np.linspace(-1, 1, 4))).sum().backward()
        results.append([out.detach().numpy()] + [t.grad.numpy() for t in tensors])
    for got, expected in zip(results[1], results[0]):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_heads_that_do_not_divide_raise_torchs_error():
    for lib in (torch, chainrule):
        q, kv = lib.zeros(1, 4, 3, 2), lib.zeros(1, 3, 3, 2)
        with pytest.raises(RuntimeError, match="^Number of heads in key and value must divide the number of heads "
                                               "in $"):
            lib.nn.functional.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
        with pytest.raises(RuntimeError, match=r"^The size of tensor a \(4\) must match the size of tensor b \(3\) at "
                                               "non-singleton dimension 1$"):
            lib.nn.functional.scaled_dot_product_attention(q, kv, kv)
