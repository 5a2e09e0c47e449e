"""Session 21's NumPy interop trial (tools/torch_numpy_interop_trial.py): the differences it found
and fixed, with torch's answers written down (checked against torch itself where it is installed)."""

import numpy as np
import pytest

import chainrule


def _torch_or_skip():
    return pytest.importorskip("torch")


# NumPy functions applied to tensors come back as tensors (torch's __array_wrap__), a bool result as uint8

@pytest.mark.parametrize(("name", "compute", "dtype", "values"), [
    ("exp", lambda t: np.exp(t), "float32", [1.0, np.e]),
    ("add", lambda t: np.add(t, 1), "float32", [1.0, 2.0]),
    ("isnan", lambda t: np.isnan(t), "uint8", [0, 0]),
    ("tensor + float64 array", lambda t: t + np.ones(2), "float64", [1.0, 2.0]),
    ("tensor * 0-d array", lambda t: t * np.array(2.0), "float64", [0.0, 2.0]),
    ("0-d array / tensor", lambda t: np.array(2.0) / (t + 1), "float64", [2.0, 1.0]),
])
def test_numpy_functions_of_tensors_return_tensors(name, compute, dtype, values):
    result = compute(chainrule.tensor([0.0, 1.0]))
    assert isinstance(result, chainrule.Tensor), name
    assert result.dtype == getattr(chainrule, dtype)
    np.testing.assert_allclose(result.numpy(), values, rtol=1e-6)


def test_a_numpy_reduction_to_a_scalar_is_a_0d_tensor():
    result = np.argmax(chainrule.tensor([0.0, 3.0, 1.0]))
    assert isinstance(result, chainrule.Tensor) and result.shape == () and result.item() == 1


def test_numpy_functions_match_torch():
    torch = _torch_or_skip()
    for compute in (np.exp, np.isnan, lambda t: np.maximum(t, 0), lambda t: t * np.array(2.0)):
        want = compute(torch.tensor([-1.0, 2.0]))
        got = compute(chainrule.tensor([-1.0, 2.0]))
        assert type(want).__name__ == type(got).__name__ == "Tensor"
        assert str(want.dtype)[6:] == str(got.dtype)[10:]
        assert want.tolist() == got.tolist()


# arrays torch refuses to read, whether given to from_numpy, as_tensor or tensor

_REFUSED = [
    (np.arange(4.0)[::-1], ValueError, "At least one stride in the given numpy array is negative"),
    (np.arange(3, dtype=">f4"), ValueError, "byte order different from the native byte order"),
    (np.array([1.0, 2.0], dtype=object), TypeError, "can't convert np.ndarray of type numpy.object_"),
    (np.array(["a"]), TypeError, "can't convert np.ndarray of type numpy.str_"),
    (np.ones(2, dtype=np.longdouble), TypeError, "can't convert np.ndarray of type numpy.longdouble"),
]


@pytest.mark.parametrize("convert", [
    lambda a: chainrule.from_numpy(a), lambda a: chainrule.as_tensor(a), lambda a: chainrule.tensor(a),
    lambda a: chainrule.as_tensor(a, dtype=chainrule.float64),
], ids=["from_numpy", "as_tensor", "tensor", "as_tensor_float64"])
@pytest.mark.parametrize(("array", "error", "message"), _REFUSED, ids=["negative", "big_endian", "object", "str",
                                                                        "longdouble"])
def test_arrays_torch_cannot_read_are_refused(convert, array, error, message):
    with pytest.raises(error, match=message):
        convert(array)


def test_refusals_match_torchs_classes():
    torch = _torch_or_skip()
    for array, error, _ in _REFUSED:
        with pytest.raises(error):
            torch.as_tensor(array)


def test_positive_strided_and_fortran_arrays_still_share_memory():
    array = np.asfortranarray(np.zeros((2, 3), np.float32))[:, ::2]
    t = chainrule.from_numpy(array)
    array[1, 1] = 5
    assert t[1, 1].item() == 5 and t.stride() == (1, 4)
