"""Lane mendCD (session 51): numerics and refusals that differed from torch.

``F.scaled_dot_product_attention`` with a value of another head size (Ev ≠ E) or another length
than the key, grouped-query heads, masks and causality: torch's CPU kernel choice decides which
refusal comes first (the math kernel refuses an explicit mask with ``is_causal=True`` before it
multiplies, and adds the mask in place, so a mask may not grow the scores), and its flash kernel
reads the number of keys from the value. Its arguments' types are parsed as torch parses them."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

B, H, L = 2, 4, 3


def _attend(lib, shapes, mask, **kwargs):
    """``lib``'s attention on fixed float64 inputs of ``shapes``: ("ok", output, grads) or ("error", type, message)."""
    rng = np.random.default_rng(0)
    q, k, v = (lib.tensor(rng.standard_normal(shape), dtype=lib.float64, requires_grad=True) for shape in shapes)
    if mask is not None:
        kind, shape = mask
        values = np.random.default_rng(1).standard_normal(shape)
        kwargs["attn_mask"] = lib.tensor(values > -0.5) if kind == "bool" else lib.tensor(values, dtype=lib.float64)
    try:
        out = lib.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs)
        upstream = np.random.default_rng(2).standard_normal(tuple(out.shape))
        out.backward(lib.tensor(upstream, dtype=lib.float64))
    except Exception as error:  # noqa: BLE001  (the refusal is what is compared)
        return "error", type(error).__name__, str(error)
    return "ok", out.detach().numpy(), [t.grad.numpy() for t in (q, k, v)]


def _assert_same(shapes, mask, **kwargs):
    expected, got = _attend(torch, shapes, mask, **kwargs), _attend(chainrule, shapes, mask, **kwargs)
    assert got[0] == expected[0], (expected, got)
    if expected[0] == "error":
        assert got[1:] == expected[1:]
        return
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=1e-12)
    for mine, theirs in zip(got[2], expected[2]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)


# (key shape, value shape): value head sizes other than the key's, value lengths at most the key's
# (a longer value makes torch's flash kernel read past the key), grouped heads
KEY_VALUE = {
    "Ev < E": ((B, H, 5, 6), (B, H, 5, 2)),
    "Ev > E": ((B, H, 5, 6), (B, H, 5, 7)),
    "Ev 1": ((B, H, 5, 6), (B, H, 5, 1)),
    "shorter value": ((B, H, 5, 6), (B, H, 4, 6)),
    "one value row": ((B, H, 5, 6), (B, H, 1, 6)),
    "shorter value, Ev < E": ((B, H, 5, 6), (B, H, 4, 2)),
    "grouped heads": ((B, 2, 5, 6), (B, 2, 5, 6)),
    "grouped, Ev < E": ((B, 2, 5, 6), (B, 2, 5, 3)),
    "key and value heads differ": ((B, 2, 5, 6), (B, 1, 5, 6)),
    "heads that do not divide": ((B, 3, 5, 6), (B, 3, 5, 6)),
    "one key row, longer value": ((B, H, 1, 6), (B, H, 5, 6)),
}
MASKS = {"none": None, "bool": ("bool", (L, 5)), "float": ("float", (L, 5)), "4-d bool": ("bool", (B, 1, L, 5)),
         "one column": ("float", (L, 1)), "value-long": ("float", (L, 4))}


@pytest.mark.parametrize("gqa", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("key_value", KEY_VALUE)
def test_sdpa_value_shapes_masks_and_heads_match_torch(key_value, mask, causal, gqa):
    key_shape, value_shape = KEY_VALUE[key_value]
    if key_value == "one key row, longer value" and mask in ("none", "one column") and (gqa or key_shape[1] == H):
        pytest.skip("torch's flash kernel reads past the key here")
    _assert_same(((B, H, L, 6), key_shape, value_shape), MASKS[mask], is_causal=causal, enable_gqa=gqa, scale=0.3)


@pytest.mark.parametrize("shapes", [
    ((L, 4), (5, 4), (5, 2)), ((2, L, 4), (2, 5, 4), (2, 5, 7)), ((L, 4), (5, 4), (4, 2)),
    ((2, L, 4), (1, 5, 4), (2, 5, 3)), ((2, 1, L, 4), (1, 2, 5, 4), (2, 2, 5, 3)), ((L, 4), (5, 3), (5, 2)),
])
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_lower_ranks_and_broadcast_batches_match_torch(shapes, causal):
    _assert_same(shapes, None, is_causal=causal)


def test_sdpa_value_head_size_gradcheck():
    rng = np.random.default_rng(3)
    q, k, v = (chainrule.tensor(rng.standard_normal(shape), dtype=chainrule.float64, requires_grad=True)
               for shape in ((2, 3, 4), (2, 5, 4), (2, 5, 2)))
    mask = chainrule.tensor(rng.standard_normal((3, 5)))
    attention = chainrule.nn.functional.scaled_dot_product_attention
    assert chainrule.autograd.gradcheck(lambda *t: attention(*t, attn_mask=mask), (q, k, v))
    assert chainrule.autograd.gradgradcheck(lambda *t: attention(*t, is_causal=True, scale=0.7), (q, k, v))


ARGUMENTS = {
    "dropout_p str by position": ((None, "0.1"), {}),
    "dropout_p str by keyword": ((), {"dropout_p": "0.1"}),
    "dropout_p None": ((), {"dropout_p": None}),
    "dropout_p 1-d tensor": ((None, [0.0]), {}),
    "is_causal int": ((), {"is_causal": 1}),
    "is_causal str": ((), {"is_causal": "x"}),
    "scale str": ((), {"scale": "x"}),
    "scale tensor requiring grad": ((), {"scale": "grad"}),
    "enable_gqa int": ((), {"enable_gqa": 1}),
    "scale by position": ((None, 0.0, False, 0.5), {}),
    "dropout_p 0-d tensor": ((), {"dropout_p": 0.0}),
    "dropout_p bool": ((), {"dropout_p": False}),
}


@pytest.mark.parametrize("case", ARGUMENTS)
def test_sdpa_argument_types_are_parsed_as_torch_does(case):
    def call(lib):
        args, kwargs = ARGUMENTS[case]
        args = tuple(lib.tensor(a) if isinstance(a, list) else a for a in args)
        kwargs = dict(kwargs)
        if case == "dropout_p 0-d tensor":
            kwargs["dropout_p"] = lib.tensor(0.0)
        if kwargs.get("scale") == "grad":
            kwargs["scale"] = lib.tensor(0.5, requires_grad=True)
        q = lib.tensor(np.arange(24.0).reshape(2, 3, 4) / 10)
        try:
            return lib.nn.functional.scaled_dot_product_attention(q, q, q, *args, **kwargs).numpy()
        except Exception as error:  # noqa: BLE001
            return type(error).__name__, str(error)

    expected, got = call(torch), call(chainrule)
    if isinstance(expected, tuple):
        assert got == expected
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6)
