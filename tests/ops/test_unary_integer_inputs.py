"""Unary math and activations on bool and integer tensors, as torch 2.13 treats them: the result's
dtype and values where torch computes (ints through floor/round/sign/square, promotion to float for
exp/sin/...), and torch's error type and message where its CPU kernel has no instance for the
dtype (frac of any integer, abs/floor/round of bool, the activations' "<kernel>" not implemented
for 'Long', relu's and tanhshrink's own refusals)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_TORCH_AND_METHOD = """abs absolute acos acosh angle asin asinh atan atanh bitwise_not ceil cos cosh deg2rad
    rad2deg digamma erf erfc erfinv exp exp2 expm1 fix floor frac lgamma log log10 log1p log2 logical_not i0
    isnan isinf isfinite isposinf isneginf isreal nan_to_num neg negative positive reciprocal round rsqrt
    sigmoid sign sgn signbit sin sinc sinh sqrt square tan tanh trunc relu logit""".split()
_FUNCTIONS_ONLY = """special.expit special.erfcx special.i0e special.i1 special.ndtr special.ndtri
    special.log_ndtr special.entr special.sinc special.round special.exp2 special.expm1 special.log1p
    special.psi special.gammaln special.i1e nn.functional.relu nn.functional.gelu nn.functional.silu
    nn.functional.softplus nn.functional.elu nn.functional.hardtanh nn.functional.relu6
    nn.functional.leaky_relu nn.functional.hardsigmoid nn.functional.hardswish nn.functional.mish
    nn.functional.tanhshrink nn.functional.softsign nn.functional.logsigmoid nn.functional.selu
    nn.functional.celu nn.functional.hardshrink nn.functional.softshrink""".split()
_CALLS = ([(name, False) for name in _TORCH_AND_METHOD + _FUNCTIONS_ONLY]
          + [(name, True) for name in _TORCH_AND_METHOD])
_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64")


def _function(lib, name):
    for part in name.split("."):
        lib = getattr(lib, part)
    return lib


def _outcome(lib, name, as_method, dtype):
    values = [True, False, True] if dtype == "bool" else [0, 1, 2, 5] if dtype == "uint8" else [-3, 0, 1, 2]
    x = lib.tensor(values, dtype=getattr(lib, dtype))
    try:
        result = getattr(x, name)() if as_method else _function(lib, name)(x)
    except Exception as error:  # the error is the outcome compared
        return type(error).__name__, str(error).split("\n")[0]
    return str(result.dtype).split(".")[-1], np.asarray(result.tolist(), dtype=np.float64)


@pytest.mark.parametrize("name, as_method", _CALLS, ids=[f"{n}{'(method)' if m else ''}" for n, m in _CALLS])
def test_dtype_value_or_error_as_torch(name, as_method):
    for dtype in _DTYPES:
        ours, theirs = _outcome(chainrule, name, as_method, dtype), _outcome(torch, name, as_method, dtype)
        assert ours[0] == theirs[0], (dtype, ours, theirs)
        if isinstance(theirs[1], str):
            assert ours[1] == theirs[1], dtype
        else:
            np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=dtype)


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("decimals", [1, -1])
def test_round_with_decimals_has_no_integer_kernel(dtype, decimals):
    for lib in (chainrule, torch):
        x = lib.tensor([1, 0, 1], dtype=getattr(lib, dtype))
        with pytest.raises(NotImplementedError, match=r'"round_cpu" not implemented for'):
            lib.round(x, decimals=decimals)
        with pytest.raises(NotImplementedError, match=r'"round_cpu" not implemented for'):
            lib.special.round(x, decimals=decimals)
