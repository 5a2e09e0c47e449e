"""s46 progCH: gaps found while writing the esn_reservoir_ridge / koopman_autoencoder_dynamics /
iwae_importance_weighted corpus programs, each compared with torch."""

import pytest
import torch as real_torch

import chainrule


def _error(lib, fn):
    with pytest.raises(Exception) as info:
        fn(lib)
    return type(info.value).__name__, str(info.value)


@pytest.mark.parametrize("call", ["linalg", "torch", "method"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0, 3), (2, 2, 3)])
@pytest.mark.parametrize("n", [0, 2, -1])
def test_matrix_power_rejects_what_torch_rejects_with_its_message(call, shape, n):
    def fn(lib):
        A = lib.ones(shape)
        if call == "linalg":
            return lib.linalg.matrix_power(A, n)
        if call == "torch":
            return lib.matrix_power(A, n)
        return A.matrix_power(n)

    assert _error(chainrule, fn) == _error(real_torch, fn)
