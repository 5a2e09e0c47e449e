"""What the programs deep_cca, evidential_regression and mine_mutual_information found, session 37
(lane progBJ): each case run on torch 2.13 and on chainrule and compared."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def run_quietly(make, lib):
    """``make(lib)`` as a NumPy array, with the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = make(lib)
    return result, [str(w.message) for w in caught]


# --- 1. mse_loss of no elements: torch's quiet NaN, no NumPy warning ---------------------------

@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0, 4)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mse_loss_mean_of_no_elements_is_a_quiet_nan(shape, dtype):
    def make(lib):
        x = lib.zeros(shape, dtype=getattr(lib, dtype), requires_grad=True)
        loss = lib.nn.functional.mse_loss(x, lib.zeros(shape, dtype=getattr(lib, dtype)))
        loss.backward()
        return loss, x.grad

    (expected, expected_grad), expected_warnings = run_quietly(make, torch)
    (got, got_grad), got_warnings = run_quietly(make, chainrule)
    assert got_warnings == expected_warnings == []
    assert str(got.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
    assert got.shape == expected.shape == ()
    assert np.isnan(got.item()) and np.isnan(expected.item())
    assert got.grad_fn.name() == expected.grad_fn.name() == "MseLossBackward0"
    assert tuple(got_grad.shape) == tuple(expected_grad.shape) == shape


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_mse_loss_other_reductions_of_no_elements_match_torch(reduction):
    def make(lib):
        return lib.nn.functional.mse_loss(lib.zeros(0, 3), lib.ones(0, 3), reduction=reduction)

    expected, expected_warnings = run_quietly(make, torch)
    got, got_warnings = run_quietly(make, chainrule)
    assert got_warnings == expected_warnings == []
    assert tuple(got.shape) == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


# --- 2. legacy constructors share a NumPy array of their dtype, as torch's ---------------------

LEGACY_SHARING = [("FloatTensor", np.float32), ("DoubleTensor", np.float64), ("LongTensor", np.int64),
                  ("IntTensor", np.int32), ("HalfTensor", np.float16), ("BoolTensor", np.bool_),
                  ("ByteTensor", np.uint8), ("Tensor", np.float32)]


def legacy_write(lib, name, array):
    """Build ``lib.<name>(array)``, write into the tensor, and report what the array saw."""
    x = getattr(lib, name)(array)
    x[(0,) * x.dim()] = 0
    return bool(array.ravel()[0] == 0), str(x.dtype).split(".")[-1], tuple(x.shape), x.is_contiguous()


@pytest.mark.parametrize("name, dtype", LEGACY_SHARING)
@pytest.mark.parametrize("array_dtype", [np.float32, np.float64, np.int64, np.uint8])
def test_legacy_constructor_shares_an_array_of_its_dtype(name, dtype, array_dtype):
    # torch's legacy path reads the array by from_numpy and converts without copy_numpy: shared
    # when no conversion is needed (dougbrion's and Mine_pytorch's FloatTensor(batch)), else a copy
    expected = legacy_write(torch, name, np.ones((2, 3), dtype=array_dtype))
    got = legacy_write(chainrule, name, np.ones((2, 3), dtype=array_dtype))
    assert got == expected
    assert got[0] == (np.dtype(array_dtype) == np.dtype(dtype))


@pytest.mark.parametrize("view", [lambda a: a[:, ::2], lambda a: a.T])
def test_legacy_constructor_shares_a_strided_array_as_a_strided_tensor(view):
    def make(lib):
        array = np.ones((3, 4), dtype=np.float32)
        x = lib.FloatTensor(view(array))
        x[0, 0] = 0
        return array.copy(), tuple(x.stride()), x.is_contiguous()

    expected, got = make(torch), make(chainrule)
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1:] == expected[1:]


def test_tensor_new_shares_an_array_of_its_dtype():
    def make(lib):
        array = np.ones(3, dtype=np.float32)
        lib.ones(2).new(array)[0] = 5
        return array

    np.testing.assert_array_equal(make(chainrule), make(torch))


@pytest.mark.parametrize("name", ["Tensor", "FloatTensor"])
@pytest.mark.parametrize("array", [np.ones(4, dtype=np.float32)[::-1], np.ones(4, dtype=">f4"),
                                   np.array([1, "a"], dtype=object)], ids=["negative-stride", "big-endian", "object"])
def test_legacy_constructor_refuses_what_from_numpy_refuses(name, array):
    with pytest.raises(Exception) as expected:
        getattr(torch, name)(array)
    with pytest.raises(type(expected.value)) as got:
        getattr(chainrule, name)(array)
    assert str(got.value) == str(expected.value)


def test_legacy_constructor_of_a_shared_array_refuses_a_resize():
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError, match="Trying to resize storage that is not resizable"):
            lib.FloatTensor(np.ones(3, dtype=np.float32)).resize_(5)


# --- 3. expand's error for a negative size in a new leading dimension: torch's words -----------

@pytest.mark.parametrize("sizes", [(-1, 2, 3), (4, -1, 2, 3), (-1, -1, 2, 3), (-1, 5, 2, 3)])
def test_expand_negative_size_in_a_new_leading_dimension_has_torchs_message(sizes):
    with pytest.raises(RuntimeError) as expected:
        torch.ones(2, 3).expand(*sizes)
    with pytest.raises(RuntimeError) as got:
        chainrule.ones(2, 3).expand(*sizes)
    assert str(got.value) == str(expected.value)


# --- 4. set_default_tensor_type (DeepCCA's main): torch's warning once a process, torch's error --

_TWO_CALLS = """
import warnings
import {lib} as torch
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    torch.set_default_tensor_type(torch.DoubleTensor)
    dtype = torch.ones(1).dtype
    torch.set_default_tensor_type("torch.FloatTensor")
    print(len(caught), str(dtype).split(".")[-1], torch.ones(1).dtype == torch.float32)
    print(caught[0].category.__name__, str(caught[0].message))
"""


def test_set_default_tensor_type_warns_once_a_process_as_torch():
    import subprocess
    import sys

    def lines(lib):
        run = subprocess.run([sys.executable, "-c", _TWO_CALLS.format(lib=lib)], capture_output=True, text=True,
                             check=True)
        return run.stdout.splitlines()

    assert lines("chainrule") == lines("torch")


def test_set_default_tensor_type_of_an_integer_type_has_torchs_error():
    with pytest.raises(TypeError) as expected:
        torch.set_default_tensor_type(torch.LongTensor)
    with pytest.raises(TypeError) as got:
        chainrule.set_default_tensor_type(chainrule.LongTensor)
    assert str(got.value) == str(expected.value)
    assert chainrule.get_default_dtype() == chainrule.float32
