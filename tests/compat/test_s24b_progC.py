"""Found by the progC corpus programs (transformer_translation): torch's deprecation warning for a
bool padding mask paired with a float attention mask (or the reverse), raised once per attention
call as torch raises it, and its refusal of integer masks."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _messages(m, make_call):
    m.manual_seed(0)
    call = make_call(m)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    out = out[0] if isinstance(out, tuple) else out
    return [str(w.message) for w in caught if "mismatched" in str(w.message)], out


def _kpm(m):
    return m.tensor([[False, False, False, False, True], [False] * 5])


def _x(m):
    return m.tensor(np.random.default_rng(0).standard_normal((5, 2, 8)).astype(np.float32))


CASES = {
    "mha bool kpm, float attn_mask": lambda m: (lambda mha: lambda: mha(_x(m), _x(m), _x(m), key_padding_mask=_kpm(m),
                                                                        attn_mask=m.zeros(5, 5)))(
        m.nn.MultiheadAttention(8, 2)),
    "mha float kpm, bool attn_mask": lambda m: (lambda mha: lambda: mha(_x(m), _x(m), _x(m),
                                                                        key_padding_mask=_kpm(m).float(),
                                                                        attn_mask=m.zeros(5, 5, dtype=m.bool)))(
        m.nn.MultiheadAttention(8, 2)),
    "mha matched": lambda m: (lambda mha: lambda: mha(_x(m), _x(m), _x(m), key_padding_mask=_kpm(m),
                                                      attn_mask=m.zeros(5, 5, dtype=m.bool)))(
        m.nn.MultiheadAttention(8, 2)),
    "encoder layer": lambda m: (lambda el: lambda: el(_x(m), src_mask=m.zeros(5, 5), src_key_padding_mask=_kpm(m)))(
        m.nn.TransformerEncoderLayer(8, 2, 16, 0.0)),
    "encoder": lambda m: (lambda enc: lambda: enc(_x(m), mask=m.zeros(5, 5), src_key_padding_mask=_kpm(m)))(
        m.nn.TransformerEncoder(m.nn.TransformerEncoderLayer(8, 2, 16, 0.0), 2, enable_nested_tensor=False)),
    "decoder": lambda m: (lambda dec: lambda: dec(_x(m), _x(m), tgt_mask=m.zeros(5, 5), tgt_key_padding_mask=_kpm(m),
                                                  memory_mask=m.zeros(5, 5), memory_key_padding_mask=_kpm(m)))(
        m.nn.TransformerDecoder(m.nn.TransformerDecoderLayer(8, 2, 16, 0.0), 2)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mismatched_mask_warnings_as_torch(case):
    ours, ours_out = _messages(chainrule, CASES[case])
    theirs, theirs_out = _messages(torch, CASES[case])
    assert ours == theirs
    # the warning changes nothing: the outputs keep their shapes (values depend on each init)
    assert tuple(ours_out.shape) == tuple(theirs_out.shape)


def test_mismatched_warning_text_and_values():
    """The exact words for the nn.Transformer tutorial's pairing, and the same numbers with and
    without the mismatch (a bool padding mask means -inf, as a float one spells it)."""
    mha = chainrule.nn.MultiheadAttention(8, 2)
    x = _x(chainrule)
    with pytest.warns(UserWarning, match=r"^Support for mismatched key_padding_mask and attn_mask is deprecated\. "
                                         r"Use same type for both instead\.$"):
        mixed = mha(x, x, x, key_padding_mask=_kpm(chainrule), attn_mask=chainrule.zeros(5, 5))[0]
    additive = _kpm(chainrule).float().masked_fill(_kpm(chainrule), float("-inf"))
    matched = mha(x, x, x, key_padding_mask=additive, attn_mask=chainrule.zeros(5, 5))[0]
    np.testing.assert_allclose(mixed.detach().numpy(), matched.detach().numpy(), rtol=0, atol=0)


def test_integer_mask_refused_as_torch():
    for m in (torch, chainrule):
        mha = m.nn.MultiheadAttention(8, 2)
        x = _x(m)
        with pytest.raises(AssertionError, match=r"^only bool and floating types of key_padding_mask are supported$"):
            mha(x, x, x, key_padding_mask=m.zeros(2, 5, dtype=m.int64))


@pytest.mark.parametrize("query_dtype, mask_dtype", [
    ("float32", "int64"), ("float32", "float64"), ("float32", "uint8"), ("float32", "float16"), ("float64", "int8"),
    ("float64", "float32"), ("float16", "float32"), ("float32", "bool"), ("float64", "float64")])
def test_sdpa_attn_mask_dtype_as_torch(query_dtype, mask_dtype):
    """A 0/1 integer mask (a common slip when a padding mask is built with .long()) is refused by
    torch with this message; bool, float32 and the query's own dtype are taken."""
    results = []
    for m in (torch, chainrule):
        q = m.ones(1, 1, 2, 2, dtype=getattr(m, query_dtype))
        mask = m.ones(2, 2, dtype=getattr(m, mask_dtype))
        try:
            out = m.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask)
            results.append(("ok", str(out.dtype).split(".")[-1], out.float().numpy().tolist()))
        except RuntimeError as e:
            results.append(("RuntimeError", str(e)))
    assert results[0] == results[1]


def _names(calls):
    """The case names, without collection building modules that warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(calls(chainrule))


def _attention_calls(m):
    m.manual_seed(0)
    x = _x(m)
    mha = m.nn.MultiheadAttention(8, 2)
    F = m.nn.functional
    args = (x, x, x, 8, 2, mha.in_proj_weight, mha.in_proj_bias, None, None, False, 0.0, mha.out_proj.weight,
            mha.out_proj.bias)
    return {
        "F.mha is_causal without mask": lambda: F.multi_head_attention_forward(*args, is_causal=True),
        "F.mha int attn_mask": lambda: F.multi_head_attention_forward(*args, attn_mask=m.zeros(5, 5, dtype=m.int64)),
        "mha is_causal without mask": lambda: mha(x, x, x, is_causal=True),
        "encoder layer is_causal without mask": lambda: m.nn.TransformerEncoderLayer(8, 2, 16, 0.0)(x, is_causal=True),
        "transformer tgt_is_causal without mask": lambda: m.nn.Transformer(8, 2, 1, 1, 16, 0.0)(x, x,
                                                                                               tgt_is_causal=True),
    }


@pytest.mark.parametrize("case", _names(_attention_calls))
def test_attention_refusals_as_torch(case):
    """torch reads is_causal as a hint about a mask given, and refuses it alone (chainrule used to
    build the causal mask itself), and refuses an integer attn_mask in multi_head_attention_forward."""
    outcomes = []
    for m in (torch, chainrule):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call = _attention_calls(m)[case]
            try:
                call()
                outcomes.append("ok")
            except (RuntimeError, AssertionError) as e:
                outcomes.append((type(e).__name__, str(e)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] != "ok"


def _shape_calls(m):
    m.manual_seed(0)
    x = _x(m)  # (5, 2, 8): sequence-first, batch 2
    mha = m.nn.MultiheadAttention(8, 2)
    tr = m.nn.Transformer(8, 2, 1, 1, 16, 0.0)
    tr_bf = m.nn.Transformer(8, 2, 1, 1, 16, 0.0, batch_first=True)
    return {
        "transformer batch mismatch": lambda: tr(x, x[:, :1]),
        "transformer batch_first batch mismatch": lambda: tr_bf(x, x[:1]),
        "transformer feature mismatch": lambda: tr(x[..., :6], x[..., :6]),
        "mha 2d mask shape": lambda: mha(x, x, x, attn_mask=m.zeros(3, 5, dtype=m.bool)),
        "mha 3d mask shape": lambda: mha(x, x, x, attn_mask=m.zeros(3, 5, 5, dtype=m.bool)),
        "mha 1d mask": lambda: mha(x, x, x, attn_mask=m.zeros(5, dtype=m.bool)),
        "mha 4d mask": lambda: mha(x, x, x, attn_mask=m.zeros(1, 4, 5, 5, dtype=m.bool)),
        "mha unbatched 3d mask shape": lambda: mha(x[:, 0], x[:, 0], x[:, 0], attn_mask=m.zeros(3, 5, 5, dtype=m.bool)),
    }


@pytest.mark.parametrize("case", _names(_shape_calls))
def test_attention_shape_errors_as_torch(case):
    """torch's own words for a src/tgt batch or width mismatch and a wrongly shaped attn_mask,
    where chainrule used to fail later in a reshape or broadcast naming neither."""
    outcomes = []
    for m in (torch, chainrule):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _shape_calls(m)[case]()
                outcomes.append("ok")
            except (RuntimeError, AssertionError) as e:
                outcomes.append((type(e).__name__, str(e).replace("chainrule.Size", "torch.Size")))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] != "ok"


def _mha_calls(m):
    m.manual_seed(0)
    x = _x(m)
    mha = m.nn.MultiheadAttention(8, 2)
    return {
        "kpm length": lambda: mha(x, x, x, key_padding_mask=m.zeros(2, 4, dtype=m.bool)),
        "kpm batch": lambda: mha(x, x, x, key_padding_mask=m.zeros(3, 5, dtype=m.bool)),
        "kpm 3-d": lambda: mha(x, x, x, key_padding_mask=m.zeros(2, 5, 1, dtype=m.bool)),
        "key/value lengths": lambda: mha(x, x[:4], x[:3]),
        "4-d query": lambda: mha(x[None], x[None], x[None]),
        "unbatched query, 2-d kpm": lambda: mha(x[:, 0], x[:, 0], x[:, 0], key_padding_mask=m.zeros(1, 5, dtype=m.bool)),
        "unbatched query, batched key": lambda: mha(x[:, 0], x, x),
    }


@pytest.mark.parametrize("case", _names(_mha_calls))
def test_mha_shape_check_as_torch(case):
    """torch's _mha_shape_check and key-padding checks, where chainrule failed in a reshape, a
    broadcast or a tuple unpack, or (a 2-D padding mask with an unbatched query) returned a result."""
    outcomes = []
    for m in (torch, chainrule):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _mha_calls(m)[case]()
                outcomes.append("ok")
            except (RuntimeError, AssertionError, ValueError) as e:
                outcomes.append((type(e).__name__, str(e).replace("chainrule.Size", "torch.Size")))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] != "ok"
