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
