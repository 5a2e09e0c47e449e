"""Session 19, signatures: keyword forms and defaults torch code relies on, called on torch 2.13
and on chainrule with the same arguments (found by tools/torch_signature_trial.py)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    """What ``call`` gives on ``lib``: ("ok", values, gradient) or ("raised", type, message)."""
    x = lib.arange(24.0, dtype=lib.float64).reshape(2, 3, 4).requires_grad_(True)
    try:
        y = call(lib, x)
    except Exception as error:
        return "raised", type(error).__name__, str(error)
    y.backward(lib.ones_like(y) * lib.arange(float(y.numel()), dtype=y.dtype).reshape(y.shape))
    return "ok", y.detach().numpy().copy(), x.grad.numpy().copy()


def _assert_same(call):
    expected, actual = _outcome(torch, call), _outcome(chainrule, call)
    assert expected[0] == actual[0], (expected, actual)
    if expected[0] == "raised":
        assert expected[1:] == actual[1:]
    else:
        np.testing.assert_array_equal(actual[1], expected[1])
        np.testing.assert_array_equal(actual[2], expected[2])


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.linalg.diagonal(x),
    lambda lib, x: lib.linalg.diagonal(x, offset=1),
    lambda lib, x: lib.linalg.diagonal(A=x, dim1=0, dim2=2),
    lambda lib, x: lib.linalg.diagonal(x, 1),  # offset is keyword-only in torch.linalg
], ids=["defaults", "offset", "keywords", "positional_offset"])
def test_linalg_diagonal_takes_the_last_two_dims_by_default(call):
    # torch.diagonal's dims default to 0 and 1, torch.linalg.diagonal's to -2 and -1
    _assert_same(call)


@pytest.mark.parametrize("call", [
    lambda lib, x: x.reshape(shape=(4, 6)),
    lambda lib, x: lib.reshape(x, shape=[6, -1]),
    lambda lib, x: x.reshape(4, shape=(4, 6)),
    lambda lib, x: x.reshape(shape=24),
    lambda lib, x: x.view(size=(6, 4)),
    lambda lib, x: x.view(3, size=(6, 4)),
    lambda lib, x: x.permute(dims=(2, 0, 1)),
    lambda lib, x: lib.permute(x, dims=[1, 2, 0]),
    lambda lib, x: x.permute(1, dims=(2, 0, 1)),
    lambda lib, x: x[:1].expand(size=(3, 3, 4)),
    lambda lib, x: x.repeat(repeats=(1, 2, 1, 1)),
], ids=["reshape", "torch_reshape", "reshape_twice", "reshape_int", "view", "view_twice", "permute",
        "torch_permute", "permute_twice", "expand", "repeat"])
def test_a_shape_passed_by_its_keyword(call):
    _assert_same(call)


def test_view_takes_its_dtype_by_keyword():
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = torch.from_numpy(values).view(dtype=torch.int32)
    actual = chainrule.from_numpy(values).view(dtype=chainrule.int32)
    assert actual.dtype == chainrule.int32
    np.testing.assert_array_equal(actual.numpy(), expected.numpy())
