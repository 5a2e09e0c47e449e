"""Python numbers that overflow an op's dtype, against torch 2.13.

torch converts a number argument to the dtype an op computes in with ``checked_convert``: a value
outside the dtype's finite range raises RuntimeError("value cannot be converted to type
c10::Half without overflow") in clamp, fill_, full, masked_fill, index_fill, scatter, where, pow,
lerp, threshold, hardtanh and add's alpha, while plain arithmetic (``x + 300`` on int8) wraps the
number. One table of ops x dtypes x values, run on both libraries; errors must agree in class
and text, results in dtype and value.
"""

from __future__ import annotations

import math
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")

DTYPES = ["float32", "float16", "bfloat16", "int8", "uint8", "int16", "int32", "bool"]
VALUES = [1e308, -1e308, math.inf, math.nan, 300, -1, 2**40, 70000.0]


def _mask(lib):
    return lib.tensor([True, False, True])


OPS = {
    "clamp_min": lambda lib, x, v: x.clamp(min=v),
    "clamp_max": lambda lib, x, v: x.clamp(max=v),
    "clamp_": lambda lib, x, v: x.clamp_(max=v),
    "clip": lambda lib, x, v: lib.clip(x, v, None),
    "fill_": lambda lib, x, v: x.fill_(v),
    "fill_one_element": lambda lib, x, v: x[:1].clone().fill_(v),
    "full": lambda lib, x, v: lib.full((2,), v, dtype=x.dtype),
    "full_like": lambda lib, x, v: lib.full_like(x, v),
    "new_full": lambda lib, x, v: x.new_full((2,), v),
    "masked_fill": lambda lib, x, v: x.masked_fill(_mask(lib), v),
    "masked_fill_": lambda lib, x, v: x.masked_fill_(_mask(lib), v),
    "index_fill": lambda lib, x, v: x.index_fill(0, lib.tensor([0]), v),
    "scatter": lambda lib, x, v: x.scatter(0, lib.tensor([0]), v),
    "where": lambda lib, x, v: lib.where(_mask(lib), x, v),
    "add": lambda lib, x, v: x + v,
    "add_": lambda lib, x, v: x.add_(v),
    "sub": lambda lib, x, v: x - v,
    "div": lambda lib, x, v: x / v,
    "add_alpha": lambda lib, x, v: lib.add(x, x, alpha=v),
    "pow": lambda lib, x, v: x ** v,
    "lerp": lambda lib, x, v: lib.lerp(x, x, v),
    "threshold": lambda lib, x, v: lib.nn.functional.threshold(x, v, 0.5),
    "threshold_value": lambda lib, x, v: lib.nn.functional.threshold(x, 0.5, v),
    "hardtanh": lambda lib, x, v: lib.nn.functional.hardtanh(x, -1.0, v),
    "nan_to_num": lambda lib, x, v: lib.nan_to_num(x, nan=v),
}


def _known_gap(op, dtype_name, value) -> bool:
    """Cells where chainrule differs from torch for reasons other than the number's conversion."""
    # torch's in-place clamp_ checks the result dtype first, in its own words ("can't be cast to
    # the desired output type short int"); chainrule's in-place ops compute first, then check
    in_place_cast = op == "clamp_" and dtype_name not in ("float32", "float16", "bfloat16")
    # torch divides a float16/bfloat16 tensor by a number in float32 (its opmath type); chainrule
    # rounds the number to the tensor's dtype first (70000 becomes inf)
    opmath_scalar = op == "div" and dtype_name in ("float16", "bfloat16") and value == 70000.0
    return in_place_cast or opmath_scalar


def _outcome(lib, op, dtype_name, value):
    x = lib.tensor([1, 0, 1], dtype=getattr(lib, dtype_name))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pow's and div's own overflow warnings are not compared
            result = OPS[op](lib, x, value)
    except Exception as error:  # the class and text are what is compared
        return type(error).__name__, str(error).split("\n")[0]
    return str(result.dtype).split(".")[-1], repr(result.float().tolist())


@pytest.mark.parametrize("op", sorted(OPS))
def test_number_arguments_overflow_like_torch(op):
    mismatches = []
    for dtype_name in DTYPES:
        for value in VALUES:
            if _known_gap(op, dtype_name, value):
                continue
            expected = _outcome(torch, op, dtype_name, value)
            got = _outcome(chainrule, op, dtype_name, value)
            if got != expected:
                mismatches.append(f"{op} {dtype_name} {value!r}: torch {expected}, chainrule {got}")
    assert not mismatches, "\n".join(mismatches)


def test_the_overflow_error_names_torchs_type_and_is_raised_before_the_write():
    x = chainrule.tensor([1.0, 2.0], dtype=chainrule.bfloat16)
    with pytest.raises(RuntimeError, match=r"value cannot be converted to type c10::BFloat16 without overflow"):
        x.clamp_(min=1e308)
    with pytest.raises(RuntimeError, match=r"type c10::BFloat16 without overflow"):
        x.fill_(-1e308)
    assert x.tolist() == [1.0, 2.0] and x._version == 0
    with pytest.raises(OverflowError, match="int too big to convert"):
        chainrule.zeros(2).fill_(2**64)


def test_arithmetic_wraps_integers_outside_an_integer_dtype():
    # torch's arithmetic converts the number to the tensor's dtype without a check: int8 + 300 is
    # int8 + 44, uint8 - (-1) is uint8 + 1, and true division sees the number itself
    for lib in (torch, chainrule):
        x = lib.tensor([1, 2], dtype=lib.int8)
        assert (x + 300).tolist() == [45, 46]
        assert (x * 2**40).tolist() == [0, 0]
        assert (x.to(lib.uint8) - (-1)).tolist() == [2, 3]
        assert (x / 300).tolist() == pytest.approx([1 / 300, 2 / 300])


def test_clamp_gradient_unchanged_by_the_checked_bounds():
    x = chainrule.tensor([-2.0, 0.5, 3.0], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: t.clamp(-1.0, 1e300), (x,))
    assert chainrule.autograd.gradcheck(lambda t: chainrule.nn.functional.threshold(t, 0.0, -1e300), (x,))


def test_the_same_checks_and_wraps_on_the_cupy_standin():
    from chainrule._backend import use_standin_cuda

    with use_standin_cuda():
        x = chainrule.tensor([1, 2], dtype=chainrule.int8, device="cuda")
        assert (x + 300).device.type == "cuda" and (x + 300).cpu().tolist() == [45, 46]
        half = chainrule.ones(3, dtype=chainrule.float16, device="cuda")
        mask = chainrule.tensor([True, False, True], device="cuda")
        for call in (lambda: half.masked_fill(mask, 1e308), lambda: half.clamp(max=-1e308),
                     lambda: chainrule.full((2,), 300, dtype=chainrule.int8, device="cuda")):
            with pytest.raises(RuntimeError, match="without overflow"):
                call()
