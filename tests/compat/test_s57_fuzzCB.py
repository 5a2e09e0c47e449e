"""Regressions the optimizer and scheduler fuzzer (tests/fuzz/test_optim_configs.py) found, each
against torch."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _steps(lib, name, make_param, value, grads, **kwargs):
    p = make_param(lib, value)
    optimizer = getattr(lib.optim, name)([p], **kwargs)
    for grad in grads:
        p.grad = lib.from_numpy(grad.copy())
        optimizer.step()
    return p.detach().numpy()


def _transposed(lib, value):
    return lib.from_numpy(value.T.copy()).t().requires_grad_(True)


def _strided(lib, value):
    wide = lib.zeros(value.shape[:-1] + (2 * value.shape[-1],), dtype=lib.complex64)
    wide[..., ::2] = lib.from_numpy(value.copy())
    return wide[..., ::2].requires_grad_(True)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop",
                                  "Rprop", "ASGD"])
@pytest.mark.parametrize("make_param", [_transposed, _strided], ids=["transposed", "strided"])
def test_a_non_contiguous_complex_parameter_steps_as_torch(name, make_param):
    # its real view (view_as_real) used to need a contiguous last axis: NumPy refused the itemsize change
    rng = np.random.default_rng(0)
    value = (rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))).astype(np.complex64)
    grads = [(rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))).astype(np.complex64) for _ in range(3)]
    ours = _steps(chainrule, name, make_param, value, grads, lr=0.01, foreach=False)
    theirs = _steps(torch, name, make_param, value, grads, lr=0.01, foreach=False)
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=2e-7)
