"""s47 progCN: gaps found by the gqa_sdpa_rope / vits_monotonic_alignment_search / predictive_coding_network
corpus programs, each compared with torch."""

import warnings

import numpy as np
import pytest
import torch as real_torch

import chainrule

LAYOUTS = {
    "pairs": lambda lib, dt: lib.ones(3, 2).to(dt),
    "last_dim_3": lambda lib, dt: lib.ones(3, 3).to(dt),
    "zero_dim": lambda lib, dt: lib.ones(()).to(dt),
    "last_stride_2": lambda lib, dt: lib.ones(2, 3).to(dt).t(),
    "odd_row_stride": lambda lib, dt: lib.ones(3, 3).to(dt)[:, :2],
    "odd_offset": lambda lib, dt: lib.ones(7).to(dt)[1:].view(3, 2),
}


def _outcome(lib, dtype, layout):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's experimental-ComplexHalf warning
        try:
            out = lib.view_as_complex(LAYOUTS[layout](lib, getattr(lib, dtype)))
        except Exception as error:  # noqa: BLE001 - the error is what is compared
            return type(error).__name__, str(error).split("\n")[0]
    return "ok", str(out.dtype).split(".")[-1], tuple(out.shape)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_view_as_complex_checks_the_layout_in_torchs_order(dtype, layout):
    """torch checks the layout (dims, last dim of 2, strides, offset) before it makes the view, so a float16
    tensor with a bad layout gets the layout's error; chainrule raised its no-complex32 error first, and said
    'last dimension of size 2' for a 0-d tensor where torch says it needs one or more dimensions."""
    expected = _outcome(real_torch, dtype, layout)
    got = _outcome(chainrule, dtype, layout)
    if dtype == "float16" and layout == "pairs":
        # the one case torch answers with a complex32 view, which chainrule cannot store
        assert expected == ("ok", "complex32", (3,))
        assert got[0] == "NotImplementedError" and "ComplexHalf" in got[1]
    else:
        assert got == expected


def _pad_outcome(lib, fn, dtype, pad, value):
    x = lib.arange(6).view(2, 3).to(getattr(lib, dtype))
    try:
        if fn == "F.pad":
            out = lib.nn.functional.pad(x, pad, value=value)
        else:
            out = lib.constant_pad_nd(x, pad, value)
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        return type(error).__name__, str(error)
    return "ok", str(out.dtype).split(".")[-1], repr(out.tolist())


PAD_VALUES = [float("-inf"), float("inf"), float("nan"), 1.5, -1.0, -1, 300.0, 1e6, 1e40, 2 ** 40, True, 1j]


@pytest.mark.parametrize("fn", ["F.pad", "constant_pad_nd"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "int8", "bool", "float16", "bfloat16", "float32",
                                   "complex64"])
@pytest.mark.parametrize("pad", [[1, 0], [1, -1], [0, 0, 1, 0], [-1, 0], [0, 0], [-1, -1]])
def test_constant_pad_refuses_a_fill_value_the_dtype_cannot_hold(fn, dtype, pad):
    """torch fills the new border by fill_, which raises 'value cannot be converted to type int64_t without
    overflow' for nan/inf into an integer tensor (glow-tts's maximum_path pads by -inf), 300 into int8, 1e6 into
    float16; chainrule cast the value (-inf became -9223372036854775808). A pad that only crops fills nothing and
    raises nothing; constant_pad_nd's Scalar wraps a negative int into uint8 (-1 is 255) where F.pad's float
    -1.0 does not fit."""
    for value in PAD_VALUES:
        if fn == "F.pad" and isinstance(value, complex):
            continue  # F.pad's value is a float: torch's TypeError is another test's business
        assert _pad_outcome(chainrule, fn, dtype, pad, value) == _pad_outcome(real_torch, fn, dtype, pad, value), value



def _assign_grad(lib, which):
    param = lib.nn.Parameter(lib.ones(3, 2))
    plain = lib.ones(2)
    try:
        if which == "parameter_itself":
            param.grad = param
        elif which == "plain_itself":
            plain.grad = plain
        elif which == "view_of_itself":
            param.grad = param.view(3, 2)
        else:
            param.grad = param.detach()
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        return type(error).__name__, str(error)
    return "ok", param.grad is not None


@pytest.mark.parametrize("which", ["parameter_itself", "plain_itself", "view_of_itself", "detached"])
def test_a_tensor_cannot_be_its_own_grad(which):
    """predictive coding code writes local updates into ``layer.weight.grad``; torch refuses ``p.grad = p``
    ("can't assign Variable as its own grad"), chainrule took it (then an optimizer step would move p by
    itself). A view or a detached alias of p is another tensor, which torch takes."""
    assert _assign_grad(chainrule, which) == _assign_grad(real_torch, which)


def _sdpa_error(lib, heads, key_heads, is_causal, mask):
    query, key = lib.ones(heads, 5, 8), lib.ones(key_heads, 3, 8)
    attn_mask = None if mask is None else lib.ones(5, 3, dtype=getattr(lib, mask))
    try:
        out = lib.nn.functional.scaled_dot_product_attention(query, key, key, attn_mask=attn_mask, is_causal=is_causal,
                                                             enable_gqa=True)
    except RuntimeError as error:
        return str(error)
    return tuple(out.shape)


@pytest.mark.parametrize(("heads", "key_heads"), [(6, 4), (6, 3), (4, 3)])
@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("mask", [None, "bool", "float32"])
def test_sdpa_gqa_refuses_mask_with_causal_before_the_head_count(heads, key_heads, is_causal, mask):
    """enable_gqa with key heads that do not divide the query heads runs torch's math path, which refuses an
    attn_mask with is_causal=True first; chainrule checked the heads first (192 of 1,536 probed combinations)."""
    assert _sdpa_error(chainrule, heads, key_heads, is_causal, mask) == _sdpa_error(real_torch, heads, key_heads,
                                                                                     is_causal, mask)


@pytest.mark.parametrize("eps", [1e-8, 0.5, 3.0])
@pytest.mark.parametrize(("shape1", "shape2"), [((4, 5), (4, 1)), ((4, 5), (4, 5)), ((2, 1, 5), (3, 5))])
def test_cosine_similarity_gradient_passes_through_the_clamped_norm(eps, shape1, shape2):
    """torch clamps the norms in place under a NoGradGuard, so where 0 < ‖x‖ < eps the value uses eps but the
    gradient is still the norm's (x / ‖x‖); chainrule's clamp_min gave 0 there (a (4, 1) input broadcast
    along dim with eps 0.5 got 1.1892 where torch gives 1.1459)."""
    rng = np.random.default_rng(len(shape1) * 10 + int(eps))
    a_np, b_np = rng.standard_normal(shape1) * 0.3, rng.standard_normal(shape2)
    results = []
    for lib in (real_torch, chainrule):
        a = lib.tensor(a_np, requires_grad=True)
        b = lib.tensor(b_np, requires_grad=True)
        c = lib.nn.functional.cosine_similarity(a, b, dim=-1, eps=eps)
        (c * lib.arange(c.numel(), dtype=lib.float64).view(c.shape)).sum().backward()
        results.append([t.detach().numpy() for t in (c, a.grad, b.grad)])
    for expected, got in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
