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
