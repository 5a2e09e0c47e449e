"""Lane progEG (session 51): ops met by tests/programs/dpm_solver_pp_sampler.py, against torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logaddexp_keeps_log1p_precision(dtype):
    # inverse_lambda's -0.5 * logaddexp(0, -2 * lambda): a far smaller second term must not round away
    rng = np.random.RandomState(0)
    a = (rng.randn(4, 6) * 20).astype(dtype)
    b = (rng.randn(4, 6) * 20).astype(dtype)
    special = np.array([np.inf, -np.inf, np.inf, -np.inf, np.nan, 3.0], dtype)
    other = np.array([np.inf, -np.inf, -np.inf, 5.0, 1.0, np.nan], dtype)
    for x, y in ((a, b), (np.zeros(1, dtype), b), (special, other)):
        want = torch.logaddexp(torch.tensor(x), torch.tensor(y)).numpy()
        got = chainrule.logaddexp(chainrule.tensor(x), chainrule.tensor(y)).numpy()
        np.testing.assert_allclose(got, want, rtol=2e-7 if dtype == "float32" else 1e-15, atol=0)
        assert got.dtype == want.dtype


def test_logaddexp_gradcheck_and_torch_grad():
    rng = np.random.RandomState(1)
    x = rng.randn(3, 4) * 5
    y = rng.randn(3, 4) * 5
    a = chainrule.tensor(x, requires_grad=True)
    b = chainrule.tensor(y, requires_grad=True)
    assert chainrule.autograd.gradcheck(chainrule.logaddexp, (a, b))
    ta = torch.tensor(x, requires_grad=True)
    tb = torch.tensor(y, requires_grad=True)
    torch.logaddexp(ta, tb).sum().backward()
    chainrule.logaddexp(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)
