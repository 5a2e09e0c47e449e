"""Reparameterised gradients of Gamma, Beta and Dirichlet samples equal torch's (lane mendM).

torch differentiates rsample by implicit reparameterisation with fitted approximations
(torch._standard_gamma_grad, torch._dirichlet_grad), not through its internal Gamma draws; the
same seed gives the same draws here, so the gradients must agree too.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

CONCENTRATIONS = [0.1, 1.0, 3.0, 50.0]
DTYPES = ["float32", "float64"]
# float32 gradients: torch keeps some series terms in float32 where we keep double
TOLERANCE = {"float32": dict(rtol=2e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}


def _run(lib, dtype, make_params, make_distribution, seed=7, shape=(6,)):
    """Draw rsample under ``seed``, backward a fixed weighting, return sample and parameter grads."""
    lib.manual_seed(seed)
    params = [lib.tensor(p, dtype=getattr(lib, dtype), requires_grad=True) for p in make_params()]
    sample = make_distribution(lib, *params).rsample(shape)
    weights = lib.tensor(np.linspace(-1.0, 2.0, sample.numel()).reshape(tuple(sample.shape)),
                         dtype=getattr(lib, dtype))
    (sample * weights).sum().backward()
    return sample.detach().numpy(), [p.grad.numpy() for p in params]


def _compare(dtype, make_params, make_distribution):
    ours = _run(chainrule, dtype, make_params, make_distribution)
    theirs = _run(torch, dtype, make_params, make_distribution)
    np.testing.assert_allclose(ours[0], theirs[0], **TOLERANCE[dtype])
    for ours_grad, torch_grad in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(ours_grad, torch_grad, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", CONCENTRATIONS)
def test_gamma_rsample_gradient_matches_torch(dtype, alpha):
    _compare(dtype, lambda: [[alpha, 2 * alpha], [2.0, 0.5]],
             lambda lib, c, r: lib.distributions.Gamma(c, r))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", CONCENTRATIONS)
def test_beta_rsample_gradient_matches_torch(dtype, alpha):
    _compare(dtype, lambda: [[alpha, 2.0], [2.0, alpha]],
             lambda lib, a, b: lib.distributions.Beta(a, b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", CONCENTRATIONS)
def test_dirichlet_rsample_gradient_matches_torch(dtype, alpha):
    _compare(dtype, lambda: [[[alpha, 2.0, 0.5], [alpha, alpha, 7.0]]],
             lambda lib, c: lib.distributions.Dirichlet(c))


def _grid(dtype):
    """α and x over every branch of torch's formulas: small x, large α near and far from x, the rest."""
    alphas = np.array([0.05, 0.3, 1.0, 2.5, 7.0, 9.0, 30.0, 200.0])
    xs = np.array([1e-4, 0.05, 0.5, 0.79, 0.81, 1.5, 4.0, 8.5, 20.0, 29.0, 33.0, 60.0, 200.0, 230.0])
    a, x = np.meshgrid(alphas, xs)
    return a.ravel().astype(dtype), x.ravel().astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_standard_gamma_grad_matches_torch_on_every_branch(dtype):
    alpha, x = _grid(dtype)
    ours = chainrule._standard_gamma_grad(chainrule.tensor(alpha), chainrule.tensor(x))
    theirs = torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(x))
    assert ours.dtype == getattr(chainrule, dtype)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_dirichlet_grad_matches_torch_on_every_branch(dtype):
    xs = np.array([1e-3, 0.02, 0.2, 0.45, 0.5, 0.55, 0.8, 0.98, 0.999])
    alphas = np.array([0.1, 0.8, 2.0, 7.0, 40.0])
    others = np.array([0.3, 1.5, 8.0, 60.0])
    x, a, b = (v.ravel().astype(dtype) for v in np.meshgrid(xs, alphas, others))
    total = a + b
    ours = chainrule._dirichlet_grad(*(chainrule.tensor(v) for v in (x, a, total)))
    theirs = torch._dirichlet_grad(*(torch.tensor(v) for v in (x, a, total)))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **TOLERANCE[dtype])


def test_standard_gamma_grad_is_the_implicit_gradient_of_the_inverse_cdf():
    """dx/dα at fixed u = P(α, x): a central difference of the inverse CDF in float64 agrees."""
    scipy_special = pytest.importorskip("scipy.special")
    alpha, x = 3.0, 2.2
    u = scipy_special.gammainc(alpha, x)
    step = 1e-6
    finite_difference = (scipy_special.gammaincinv(alpha + step, u)
                         - scipy_special.gammaincinv(alpha - step, u)) / (2 * step)
    ours = chainrule._standard_gamma_grad(chainrule.tensor([alpha], dtype=chainrule.float64),
                                         chainrule.tensor([x], dtype=chainrule.float64))
    # torch's rational fit for 0.8 <= x, α <= 8 is accurate to about 1e-5 (7.8e-6 here)
    np.testing.assert_allclose(ours.numpy()[0], finite_difference, rtol=1e-4)


def test_dirichlet_grad_refuses_mismatched_shapes_as_torch():
    args = (np.full(3, 0.3), np.full(3, 1.0), np.full(2, 2.0))
    with pytest.raises(RuntimeError):
        torch._dirichlet_grad(*(torch.tensor(v) for v in args))
    with pytest.raises(RuntimeError, match="_dirichlet_grad"):
        chainrule._dirichlet_grad(*(chainrule.tensor(v) for v in args))


def _second_differentiation(lib, sampler):
    lib.manual_seed(0)
    a = lib.tensor([2.0, 3.0], requires_grad=True)
    x = sampler(lib, a)
    (g,) = lib.autograd.grad((x * lib.tensor([1.0, 2.0])).sum(), a, create_graph=True)
    try:
        lib.autograd.grad(g.sum(), a)
    except Exception as error:  # noqa: BLE001 - the outcome compared is the exception itself
        return type(error).__name__, str(error)
    return "no error"


_SAMPLERS = {
    "_standard_gamma": lambda lib, a: lib._standard_gamma(a),
    "Gamma": lambda lib, a: lib.distributions.Gamma(a, lib.tensor([1.5, 2.0])).rsample(),
    "Beta": lambda lib, a: lib.distributions.Beta(a, lib.tensor([1.5, 2.0])).rsample(),
    "Dirichlet": lambda lib, a: lib.distributions.Dirichlet(a).rsample(),
}


@pytest.mark.parametrize("name", sorted(_SAMPLERS))
def test_a_second_differentiation_of_a_sample_is_refused_as_torch_refuses_it(name):
    # torch defines no derivative of _standard_gamma_grad, and _Dirichlet's backward is
    # once-differentiable: neither may be taken as a constant, which gave a wrong second derivative
    assert _second_differentiation(chainrule, _SAMPLERS[name]) == _second_differentiation(torch, _SAMPLERS[name])
