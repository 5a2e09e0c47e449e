"""Session 29, lane perf2: logsigmoid's torch-exact forward made faster, checked against torch 2.13."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype, values", [
    ("float32", [103.5, -103.5, 100.0, -100.0, 90.0, -90.0, 87.5, 104.0, 800.0, -np.inf, np.nan, 1.0]),
    ("float64", [740.0, -740.0, 745.3, -745.3, 710.0, -710.0, 708.2, 746.0, 900.0, 1000.0, np.inf, 1.0]),
])
def test_logsigmoid_of_a_0d_tensor_near_the_flush_is_torchs(dtype, values):
    """A 0-d input whose e^-|x| is subnormal raised TypeError ('numpy.float32' object does not support
    item assignment: NumPy's ufuncs make a scalar of a 0-d array); now each value is torch's, and the
    one chainrule gives for the same value inside a 1-d tensor, bit for bit."""
    as_vector = chainrule.nn.functional.logsigmoid(chainrule.tensor(values, dtype=getattr(chainrule, dtype))).numpy()
    for index, value in enumerate(values):
        ours = chainrule.nn.functional.logsigmoid(chainrule.tensor(value, dtype=getattr(chainrule, dtype)))
        theirs = torch.nn.functional.logsigmoid(torch.tensor(value, dtype=getattr(torch, dtype)))
        assert ours.shape == theirs.shape == ()
        assert ours.dtype == getattr(chainrule, dtype)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        np.testing.assert_array_equal(ours.numpy().reshape(1).view(np.uint8), as_vector[index:index + 1].view(np.uint8))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsigmoid_is_torchs_whatever_the_layout_and_range(dtype):
    """The clamped exp (NumPy's leaves its vectorised loop where it underflows) and the halving of
    tiny values done on the whole array keep every result: a transposed, a strided and a contiguous
    input of values from -800 to 800 give torch's zeros, infinities and NaNs, C-contiguous output,
    and the same bits as each other."""
    grid = np.random.default_rng(0).uniform(-800, 800, 60_000).astype(dtype)
    grid[:6] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-40]
    matrix = grid.reshape(200, 300)
    flat = chainrule.nn.functional.logsigmoid(chainrule.from_numpy(grid)).numpy()
    theirs = torch.nn.functional.logsigmoid(torch.from_numpy(grid)).numpy()
    np.testing.assert_array_equal(flat == 0, theirs == 0)
    np.testing.assert_array_equal(np.isnan(flat), np.isnan(theirs))
    np.testing.assert_array_equal(flat[np.isinf(grid)], theirs[np.isinf(grid)])
    np.testing.assert_allclose(flat, theirs, rtol=4 * np.finfo(dtype).eps, atol=0)
    transposed = chainrule.nn.functional.logsigmoid(chainrule.from_numpy(matrix).t()).numpy()
    assert transposed.flags.c_contiguous
    np.testing.assert_array_equal(transposed.view(np.uint8), np.ascontiguousarray(flat.reshape(200, 300).T).view(np.uint8))
    strided = chainrule.nn.functional.logsigmoid(chainrule.from_numpy(grid)[::7]).numpy()
    np.testing.assert_array_equal(strided.view(np.uint8), flat[::7].copy().view(np.uint8))
