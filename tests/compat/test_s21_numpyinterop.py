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


# float() and int() of a complex tensor: its real part when the imaginary part is 0, else torch's RuntimeError

def test_float_and_int_of_a_real_valued_complex_tensor():
    assert float(chainrule.tensor(1.5 + 0j)) == 1.5
    assert int(chainrule.tensor([2.5 + 0j], dtype=chainrule.complex64)) == 2
    with pytest.raises(RuntimeError, match="cannot be converted to type double without overflow"):
        float(chainrule.tensor(1 + 2j))
    with pytest.raises(RuntimeError, match="cannot be converted to type int64_t without overflow"):
        int(chainrule.tensor(1 + 2j))


# inside a list, a NumPy array is read as a sequence (a 0-d one has no len()) and a tensor as a number

@pytest.mark.parametrize("dtype", [None, chainrule.float64])
def test_list_items_torch_cannot_read(dtype):
    with pytest.raises(TypeError, match="len\\(\\) of unsized object"):
        chainrule.tensor([np.array(1.0), 2], dtype=dtype)
    with pytest.raises(ValueError, match="only one element tensors"):
        chainrule.tensor([chainrule.ones(2), chainrule.zeros(2)], dtype=dtype)
    assert chainrule.tensor([chainrule.tensor(1.0), 2], dtype=dtype).tolist() == [1.0, 2.0]
    assert chainrule.tensor([np.array([1, 2]), np.array([3, 4])], dtype=dtype).shape == (2, 2)


def test_numpy_ints_as_dims_and_counts():
    x = chainrule.arange(6.0).reshape(2, 3)
    assert x[:1].squeeze(np.int64(0)).shape == (3,)
    assert [piece.shape for piece in x.chunk(np.int64(2), dim=1)] == [(2, 2), (2, 1)]
    assert x.roll(np.int64(1), np.int64(1)).tolist() == [[2.0, 0.0, 1.0], [5.0, 3.0, 4.0]]


# a NumPy bool is a float scalar to torch's argument parser (not a Python bool)

@pytest.mark.parametrize(("compute", "dtype", "values"), [
    (lambda t: t * np.bool_(True), "float32", [1.0, 2.0]),
    (lambda t: np.bool_(True) + t, "float32", [2.0, 3.0]),
    (lambda t: t.bool() * np.bool_(True), "float32", [1.0, 1.0]),
    (lambda t: np.bool_(True) - t, "float32", [0.0, -1.0]),
    (lambda t: chainrule.full((2,), np.bool_(True)), "float32", [1.0, 1.0]),
    (lambda t: t > np.bool_(True), "bool", [False, True]),
])
def test_numpy_bool_scalars_promote_as_floats(compute, dtype, values):
    result = compute(chainrule.tensor([1, 2]))
    assert result.dtype == getattr(chainrule, dtype) and result.tolist() == values


def test_equality_with_an_ndarray_is_a_bool_tensor():
    requiring = chainrule.ones(2, requires_grad=True)
    assert (requiring == np.ones(2)).tolist() == [True, True]
    assert (np.array(2.0) == chainrule.ones(2)).dtype == chainrule.bool
    assert (chainrule.tensor([1.1]) == np.array([1.1])).tolist() == [False]  # compared in float64, as torch
    with pytest.raises(TypeError):
        requiring < np.ones(2)  # noqa: B015 - torch's < refuses an ndarray


def test_np_array_copies_and_np_asarray_shares():
    t = chainrule.zeros(3)
    np.array(t)[0] = 1
    np.asarray(t)[2] = 5
    assert t.tolist() == [0.0, 0.0, 5.0]
