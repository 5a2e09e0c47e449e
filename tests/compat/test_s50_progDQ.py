"""Session 50, lane progDQ: what the differential_transformer / ngpt / mingru programs' probes found.

F.rms_norm (nn.RMSNorm) as torch 2.13's: the weight's shape is checked before the input's, a weight
whose dtype differs from the input's (a bfloat16 activation under a float32 nn.RMSNorm) gives torch's
once-per-process "Mismatch dtype" warning before the integer-input refusal, and C++ type names of the
unsigned types ("short unsigned int") in the messages that name types.
"""
import warnings

import numpy as np
import pytest

import chainrule
from chainrule import _config

torch = pytest.importorskip("torch")

_DTYPES = ["float32", "float64", "bfloat16", "float16", "int8", "uint8", "int16", "int32", "int64", "bool",
           "complex64", "uint16", "uint32", "uint64"]


def _outcome(lib, fn):
    """(result dtype or exception type and text, warning texts) of fn(lib), warning on every call."""
    before = lib.is_warn_always_enabled()
    lib.set_warn_always(True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = str(fn(lib).dtype).split(".")[-1]
            except Exception as error:  # noqa: BLE001  (the comparison is of the error itself)
                result = (type(error).__name__, str(error))
    finally:
        lib.set_warn_always(before)
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize("input_dtype", ["float32", "bfloat16", "float16", "float64", "int64"])
@pytest.mark.parametrize("weight_dtype", _DTYPES + [None])
def test_rms_norm_weight_dtype_warning_and_result_dtype_match_torch(input_dtype, weight_dtype):
    def fn(lib):
        weight = None if weight_dtype is None else lib.ones(8).to(getattr(lib, weight_dtype))
        return lib.nn.functional.rms_norm(lib.ones(2, 8).to(getattr(lib, input_dtype)), (8,), weight)

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


@pytest.mark.parametrize("input_shape, normalized_shape, weight_shape", [
    ((2, 8), (7,), (8,)), ((2, 8), (7,), (7,)), ((2, 8), (2, 8), (8,)), ((8,), (2, 8), (8,)),
    ((8,), (2, 8), (2, 8)), ((8,), (8,), (7,)), ((2, 0, 8), (8,), (8,))])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bfloat16"])
def test_rms_norm_checks_the_weight_shape_before_the_input_shape(input_shape, normalized_shape, weight_shape, dtype):
    def fn(lib):
        return lib.nn.functional.rms_norm(lib.ones(input_shape).to(getattr(lib, dtype)), normalized_shape,
                                          lib.ones(weight_shape))

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


def test_rms_norm_module_on_bfloat16_activations_warns_once_per_process(monkeypatch):
    # torch's TORCH_WARN_ONCE: the first mismatch warns, later ones (other dtypes too) do not
    monkeypatch.setattr(_config, "_warned_once", set())
    norm = chainrule.nn.RMSNorm(8)
    x = chainrule.tensor(np.random.default_rng(0).standard_normal((2, 8)), dtype=chainrule.bfloat16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = norm(x)
        norm(x)
        chainrule.nn.functional.rms_norm(x.half(), (8,), norm.weight)
    assert [str(w.message) for w in caught] == [
        "Mismatch dtype between input and weight: input dtype = c10::BFloat16, weight dtype = float, Cannot "
        "dispatch to fused implementation. (Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/"
        "layer_norm.cpp:346.)"]
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's own once may or may not be spent in this process)
        expected = torch.nn.RMSNorm(8)(torch.tensor(np.asarray(x.float().numpy())).bfloat16())
    assert out.dtype is chainrule.bfloat16
    np.testing.assert_array_equal(out.detach().float().numpy(), expected.detach().float().numpy())


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
def test_unsigned_types_are_named_as_torch_names_them(dtype):
    def masked(lib):
        return lib.zeros(3).masked_fill_(lib.zeros(3, dtype=getattr(lib, dtype)), 1.0)

    def linear(lib):
        return lib.nn.functional.linear(lib.zeros(2, 3), lib.zeros(4, 3, dtype=getattr(lib, dtype)))

    for fn in (masked, linear):
        assert _outcome(chainrule, fn) == _outcome(torch, fn)


# F.scaled_dot_product_attention's dropout_p outside [0, 1] as torch 2.13's CPU kernels take it: the
# flash kernel (4-d float inputs, no dropout chosen) refuses a negative or NaN one, the math kernel
# drops nothing for a negative one and refuses one above 1 through at::dropout's RuntimeError
@pytest.mark.parametrize("shape", [(2, 2), (1, 2, 2), (1, 1, 2, 2)])
@pytest.mark.parametrize("dropout_p", [-0.1, 1.5, 2, float("nan"), 1.0000001])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_sdpa_dropout_p_out_of_range_as_torch(shape, dropout_p, dtype):
    def fn(lib):
        q = lib.ones(shape, dtype=getattr(lib, dtype))
        return lib.nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=dropout_p)

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


def test_sdpa_dropout_refused_after_the_scores_as_torch():
    # torch's math kernel reaches the dropout (2 x 3 weights) before the mismatched value length
    def fn(lib):
        return lib.nn.functional.scaled_dot_product_attention(lib.ones(1, 1, 2, 2), lib.ones(1, 1, 3, 2),
                                                              lib.ones(1, 1, 2, 2), dropout_p=1.5)

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("replacements", [{"posinf": 1e10}, {"neginf": -1e300}, {"nan": 1e40, "posinf": -1e40}])
def test_nan_to_num_past_the_dtype_range_gives_infinity_without_a_numpy_warning(dtype, replacements):
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor([float("nan"), float("inf"), -float("inf"), 1.5]).to(getattr(lib, dtype))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            results.append(lib.nan_to_num(x, **replacements).float().numpy())
    np.testing.assert_array_equal(results[1], results[0])


# torch.logcumsumexp(..., out=): autograd's refusal, then "expected scalar_type Float but found
# Double" for any out not of the input's dtype, before the dim or the input's dtype is checked
_SCAN_DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "bool", "complex64"]


@pytest.mark.parametrize("input_dtype", _SCAN_DTYPES)
@pytest.mark.parametrize("out_dtype", _SCAN_DTYPES)
def test_logcumsumexp_out_must_have_the_input_dtype(input_dtype, out_dtype):
    def fn(lib):
        return lib.logcumsumexp(lib.ones(3).to(getattr(lib, input_dtype)), 0,
                                out=lib.empty(3).to(getattr(lib, out_dtype)))

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


@pytest.mark.parametrize("case", [
    lambda lib: lib.logcumsumexp(lib.ones(3), 0, out=lib.empty(3, dtype=lib.float64, requires_grad=True)),
    lambda lib: lib.logcumsumexp(lib.ones(3, requires_grad=True), 0, out=lib.empty(3, dtype=lib.float64)),
    lambda lib: lib.logcumsumexp(lib.ones(3), 5, out=lib.empty(3, dtype=lib.float64)),
    lambda lib: lib.logcumsumexp(lib.ones(3), 5, out=lib.empty(3)),
    lambda lib: lib.logcumsumexp(lib.ones(0), 0, out=lib.empty(3, dtype=lib.float64)),
    lambda lib: lib.logcumsumexp(lib.ones(3), 0, out=lib.empty(2)),
    lambda lib: lib.logcumsumexp(input=lib.ones(3), dim=0, out=lib.empty(3, dtype=lib.float64)),
])
def test_logcumsumexp_out_refusals_in_torchs_order(case):
    assert _outcome(chainrule, case) == _outcome(torch, case)


def test_logcumsumexp_into_out_gives_torchs_values():
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        out = lib.empty(4, 5)
        returned = lib.logcumsumexp(lib.tensor(x), 1, out=out)
        assert returned is out
        results.append(out.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-6)
