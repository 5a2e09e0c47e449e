"""addcmul/addcdiv's ``value`` and add/sub's ``alpha`` as torch converts them: to the type the
kernel computes in (the tensors' dtype, float for half types), so a value that does not fit is
torch's RuntimeError, an integer tensor truncates a fractional value instead of promoting, a
complex value on real tensors is refused, and infinity passes to floating types. Each case runs
on both libraries: the same exception type and message, or the same dtype and values."""

import warnings

import numpy as np
import pytest

import chainrule

from .harness import requires_torch

try:
    import torch
except ImportError:  # the oracle is optional
    torch = None

DTYPES = ("float32", "float64", "float16", "int64")
VALUES = (1e308, 1e39, 3.5e38, float("inf"), 2**63, 2**64, 2.5, True, 70000, 1 + 2j)

CASES = {
    **{f"{op} {dtype} value={value!r}": (op, dtype, value) for op in ("addcmul", "addcdiv") for dtype in DTYPES
       for value in VALUES if not (op == "addcdiv" and dtype == "int64")},
    **{f"{op} {dtype} alpha={alpha!r}": (op, dtype, alpha) for op in ("add", "sub") for dtype in DTYPES
       for alpha in (1e308, float("inf"), 3.5e38, 2.5, 2**63) if dtype != "int64" or alpha in (1e308, float("inf"))},
}


def _outcome(lib, case):
    op, dtype, scalar = CASES[case]
    x = lib.tensor([1, 2], dtype=getattr(lib, dtype))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an overflowing half cast: inf, as torch
            if op in ("add", "sub"):
                result = getattr(lib, op)(x, x, alpha=scalar)
            else:
                result = getattr(lib, op)(x, x, x, value=scalar)
    except Exception as error:  # the error is the outcome compared
        return type(error).__name__, str(error)
    return str(result.dtype).split(".")[-1], result.tolist()


@requires_torch
@pytest.mark.parametrize("case", list(CASES))
def test_scalar_conversion_matches_torch(case):
    ours, theirs = _outcome(chainrule, case), _outcome(torch, case)
    assert ours[0] == theirs[0]
    if isinstance(theirs[1], str):
        assert ours[1] == theirs[1]
    else:
        np.testing.assert_array_equal(np.asarray(ours[1]), np.asarray(theirs[1]))


def test_value_one_keeps_the_plain_path():
    x = chainrule.tensor([1, 2])
    assert chainrule.addcmul(x, x, x).dtype is chainrule.int64
    assert chainrule.addcmul(x, x, x, value=1).tolist() == [2, 6]
