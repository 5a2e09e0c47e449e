"""torch's rule for the dtype of ``out=`` differs by op: floor, sign, abs, clamp... want the
result's own dtype ("Found dtype Long but expected Float"), cat and stack cast where the category
allows and raise a TypeError naming torch.cat() otherwise, float_power wants double, ldexp names
itself. Each case runs on both libraries: the same exception type and message, or the same
values written into the same out."""

import numpy as np
import pytest

import chainrule

from .harness import requires_torch

try:
    import torch
except ImportError:  # the oracle is optional
    torch = None

FLOATS, INTS, BOOLS = [0.5, -1.25], [1, -2], [True, False]

# case: (call given the library, input values, the out's dtype name)
CASES = {
    **{f"{name} {values[0]!r}->{out}": (lambda lib, x, o, name=name: getattr(lib, name)(x, out=o), values, out)
       for name in ("abs", "absolute", "ceil", "floor", "trunc", "sign", "sgn", "frac")
       for values, out in ((FLOATS, "int64"), (FLOATS, "bool"), (FLOATS, "float64"), (FLOATS, "float32"))},
    **{f"{name} ints->{out}": (lambda lib, x, o, name=name: getattr(lib, name)(x, out=o), INTS, out)
       for name in ("abs", "floor", "sign") for out in ("int32", "float16", "int64")},
    "sign bools->int64": (lambda lib, x, o: lib.sign(x, out=o), BOOLS, "int64"),
    "sign bools->bool": (lambda lib, x, o: lib.sign(x, out=o), BOOLS, "bool"),
    **{f"{name}->{out}": (lambda lib, x, o, name=name: getattr(lib, name)(x, -1, 1, out=o), FLOATS, out)
       for name in ("clamp", "clip") for out in ("int64", "float64", "float32")},
    **{f"{name} {values[0]!r}->{out}": (lambda lib, x, o, name=name: getattr(lib, name)([x, x], out=o), values, out)
       for name in ("cat", "concat", "stack")
       for values, out in ((FLOATS, "int64"), (FLOATS, "bool"), (FLOATS, "float16"), (INTS, "float32"),
                           (INTS, "int32"), (BOOLS, "int64"))},
    **{f"float_power->{out}": (lambda lib, x, o: lib.float_power(x, 2, out=o), FLOATS, out)
       for out in ("int64", "float32", "float64")},
    **{f"ldexp->{out}": (lambda lib, x, o: lib.ldexp(x, lib.tensor([1, 2]), out=o), FLOATS, out)
       for out in ("int64", "int32", "float32")},  # (torch 2.13 asserts internally for a float64 out)
    # a dtype the kernel does not take: NotImplementedError, before any out check
    "gcd of floats": (lambda lib, x, o: lib.gcd(x, x, out=o), FLOATS, "float32"),
    "lcm of floats": (lambda lib, x, o: lib.lcm(x, x, out=o), FLOATS, "float32"),
    "nextafter of ints": (lambda lib, x, o: lib.nextafter(x, x, out=o), INTS, "int64"),
}


def _outcome(lib, case):
    call, values, out_dtype = CASES[case]
    x = lib.tensor(values)
    out = lib.empty(0, dtype=getattr(lib, out_dtype))
    try:
        result = call(lib, x, out)
    except Exception as error:  # the error is the outcome compared
        return type(error).__name__, str(error)
    assert result is out
    return str(out.dtype).split(".")[-1], out.tolist()


@requires_torch
@pytest.mark.parametrize("case", list(CASES))
def test_out_dtype_rule_matches_torch(case):
    ours, theirs = _outcome(chainrule, case), _outcome(torch, case)
    assert ours[0] == theirs[0]
    if isinstance(theirs[1], str):
        assert ours[1] == theirs[1]
    else:
        np.testing.assert_allclose(np.asarray(ours[1], dtype=float), np.asarray(theirs[1], dtype=float))


def test_no_out_path_is_unchanged():
    x = chainrule.tensor(FLOATS)
    assert chainrule.floor(x).tolist() == [0.0, -2.0] and chainrule.clamp(x, -1, 1).tolist() == [0.5, -1.0]
    assert chainrule.sign(chainrule.tensor(BOOLS)).tolist() == BOOLS
