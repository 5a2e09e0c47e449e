"""Lane mendV (session 39): differences from torch left noted by earlier sessions — bad and hostile
arguments refused in torch's words, tensors built from hostile data — each proven against torch on
the same call."""

import warnings

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as chainrule_functional

torch = pytest.importorskip("torch")
torch_functional = pytest.importorskip("torch.nn.functional")


def _outcome(call):
    """("ok", "") where ``call()`` returned, else its exception's class name and message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except Exception as exc:  # the subject: whatever each library raises
            return type(exc).__name__, str(exc)
    return "ok", ""


def _assert_same_refusal(call):
    """``call(library, functional)`` raises on chainrule what it raises on torch, class and words."""
    expected = _outcome(lambda: call(torch, torch_functional))
    assert expected[0] != "ok"
    assert _outcome(lambda: call(chainrule, chainrule_functional)) == expected


def _values(result):
    return np.asarray(result.detach().numpy())


# ---------------------------------------------------------------- out given positionally
# torch.norm, torch.tensordot and F.normalize are Python functions whose signatures take ``out``
# among the positional parameters: torch.norm(input, p, dim, keepdim, out, dtype)
_POSITIONAL_OUT = {
    "norm_fro": (lambda lib, f, out: lib.norm(lib.arange(6.0).reshape(2, 3), "fro", None, False, out), ()),
    "norm_dim": (lambda lib, f, out: lib.norm(lib.arange(6.0).reshape(2, 3), 3, 1, False, out), (2,)),
    "norm_keepdim": (lambda lib, f, out: lib.norm(lib.arange(6.0).reshape(2, 3), 1, 0, True, out), (1, 3)),
    "tensordot": (lambda lib, f, out: lib.tensordot(lib.arange(6.0).reshape(2, 3), lib.arange(12.0).reshape(3, 4), 1,
                                                    out), (2, 4)),
    "normalize": (lambda lib, f, out: f.normalize(lib.arange(6.0).reshape(2, 3), 2.0, 1, 1e-12, out), (2, 3)),
}


@pytest.mark.parametrize("case", sorted(_POSITIONAL_OUT))
def test_an_out_given_positionally_is_written(case):
    # chainrule's norm took the fifth argument as dtype, tensordot refused a fourth, and F.normalize
    # took its fifth and left it unwritten
    call, shape = _POSITIONAL_OUT[case]
    expected_out, out = torch.full(shape, -1.0), chainrule.full(shape, -1.0)
    expected = call(torch, torch_functional, expected_out)
    result = call(chainrule, chainrule_functional, out)
    assert result is out
    np.testing.assert_allclose(_values(out), expected_out.numpy(), rtol=1e-6)
    np.testing.assert_allclose(_values(result), expected.numpy(), rtol=1e-6)


def test_torch_norm_takes_dtype_sixth_and_the_method_fourth():
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    for lib in (torch, chainrule):
        assert lib.norm(lib.tensor(x), 2, 1, False, None, lib.float64).dtype == lib.float64
        assert lib.tensor(x).norm(2, 1, False, lib.float64).dtype == lib.float64
    np.testing.assert_array_equal(_values(chainrule.tensor(x).norm(2, 1, False, chainrule.float64)),
                                  torch.tensor(x).norm(2, 1, False, torch.float64).numpy())


_BAD_POSITIONAL_OUT = {
    "norm_too_many": lambda lib, f: lib.norm(*(lib.ones(2, 3),) * 10),
    "norm_seven": lambda lib, f: lib.norm(lib.ones(2, 3), 2, 1, False, None, lib.float64, 1),
    "norm_out_twice": lambda lib, f: lib.norm(lib.ones(2, 3), 2, 1, False, lib.empty(2), out=lib.empty(2)),
    "norm_out_of_another_dtype": lambda lib, f: lib.norm(lib.ones(2, 3), 2, 1, False, lib.empty(2, dtype=lib.float64)),
    "tensordot_too_many": lambda lib, f: lib.tensordot(*(lib.ones(2, 3),) * 10),
    "tensordot_out_a_string": lambda lib, f: lib.tensordot(lib.ones(2, 3), lib.ones(3, 4), 1, "a"),
    "normalize_six": lambda lib, f: f.normalize(lib.ones(2, 3), 2.0, 1, 1e-12, None, 1),
    "method_norm_too_many": lambda lib, f: lib.Tensor.norm(*(lib.ones(2, 3),) * 10),
    "method_norm_six": lambda lib, f: lib.ones(2, 3).norm(2, 1, False, lib.float64, None),
}


@pytest.mark.parametrize("case", sorted(_BAD_POSITIONAL_OUT))
def test_bad_positional_out_calls_are_refused_in_torchs_words(case):
    _assert_same_refusal(_BAD_POSITIONAL_OUT[case])
