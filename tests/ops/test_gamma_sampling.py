"""Gamma draws differentiable in their concentration (the implicit reparameterisation gradient)."""

import numpy as np
import pytest

import chainrule
from chainrule.ops._incomplete_gamma import igamma
from chainrule.ops.gamma_sampling import standard_gamma, standard_gamma_grad

torch = pytest.importorskip("torch")

ALPHA = np.array([0.05, 0.5, 1.0, 2.5, 10.0, 100.0, 1000.0])
X = np.array([1e-4, 0.3, 1.2, 2.0, 12.0, 95.0, 1010.0])


def test_the_igamma_kernel_the_gradient_uses_matches_torch():
    expected = torch.special.gammainc(torch.tensor(ALPHA), torch.tensor(X)).numpy()
    np.testing.assert_allclose(igamma(ALPHA, X), expected, rtol=1e-9, atol=1e-12)


def test_gradient_matches_torch_standard_gamma_grad():
    # torch's own is an approximation good to ~1e-4 relative; ours differentiates P(α, x) itself
    theirs = torch._standard_gamma_grad(torch.tensor(ALPHA), torch.tensor(X)).numpy()
    np.testing.assert_allclose(standard_gamma_grad(X, ALPHA), theirs, rtol=2e-4)


@pytest.mark.parametrize("alpha", [0.3, 2.0, 30.0])
def test_draws_follow_gamma_and_their_mean_gradient_is_one(alpha):
    chainrule.manual_seed(0)
    concentration = chainrule.full((20000,), alpha, dtype=chainrule.float64, requires_grad=True)
    draws = standard_gamma(concentration)
    assert draws.dtype == chainrule.float64 and bool((draws > 0).all())
    mean = draws.detach().numpy().mean()
    assert abs(mean - alpha) < 6 * np.sqrt(alpha / 20000)
    # E[x] = α, so E[dx/dα] = 1 for the reparameterised draws
    draws.sum().backward()
    assert abs(concentration.grad.numpy().mean() - 1.0) < 0.05


def test_float32_draws_are_never_zero_and_integer_input_is_refused():
    chainrule.manual_seed(0)
    draws = standard_gamma(chainrule.full((5000,), 0.01))
    assert draws.dtype == chainrule.float32 and bool((draws > 0).all())
    with pytest.raises(RuntimeError, match="floating-point concentration"):
        standard_gamma(chainrule.tensor([1, 2]))
