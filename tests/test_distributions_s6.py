"""The distributions, transforms and KL pairs added to chainrule.distributions after the first
forty-seven, against torch.distributions in float64: log_prob and its gradients, moments, entropy,
cdf/icdf, sample and rsample shapes, dtypes and statistics, rsample gradients, constraints and
validation errors, KL values; torch's module paths; and a maximum-likelihood fit run as one
program on both libraries.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
_A = _RNG.standard_normal((4, 4))
COV = _A @ _A.T + np.eye(4)
FACTOR = _RNG.standard_normal((4, 2))
DIAG = np.array([0.5, 1.0, 1.5, 2.0])


# the parameters made with grad=True since the last _built(), in order: a factory's leaves
_LEAVES: list = []


def _t(lib, value, grad: bool = False):
    tensor = lib.tensor(np.asarray(value, dtype=np.float64))
    if grad:
        tensor.requires_grad_()
        _LEAVES.append(tensor)
    return tensor


def _built(factory, lib):
    """(distribution, its leaf parameters) from a factory."""
    _LEAVES.clear()
    distribution = factory(lib)
    return distribution, list(_LEAVES)


def _d(lib):
    return lib.distributions


# name -> (factory(lib) with its float parameters requiring grad, values in the support,
#          properties compared with torch, methods compared with torch)
CASES = {
    "weibull": (lambda L: _d(L).Weibull(_t(L, [0.5, 1.5, 3.0], True), _t(L, [2.0, 0.7, 4.0], True)),
                [0.3, 1.2, 2.9], ("mean", "variance", "mode", "stddev"), ("log_prob", "cdf", "icdf", "entropy")),
    "pareto": (lambda L: _d(L).Pareto(_t(L, [1.0, 2.0, 0.5], True), _t(L, [3.0, 2.5, 1.5], True)),
               [1.2, 2.5, 4.0], ("mean", "variance", "mode"), ("log_prob", "cdf", "icdf", "entropy")),
    "kumaraswamy": (lambda L: _d(L).Kumaraswamy(_t(L, [0.5, 1.5, 3.0], True), _t(L, [2.0, 0.7, 4.0], True)),
                    [0.3, 0.6, 0.9], ("mean", "variance", "mode"), ("log_prob", "cdf", "icdf", "entropy")),
    "inverse_gamma": (lambda L: _d(L).InverseGamma(_t(L, [1.5, 2.5, 4.0], True), _t(L, [2.0, 0.7, 4.0], True)),
                      [0.3, 0.6, 1.9], ("mean", "variance", "mode"), ("log_prob", "cdf", "entropy")),
    "fisher_snedecor": (lambda L: _d(L).FisherSnedecor(_t(L, [1.0, 5.0, 10.0], True), _t(L, [3.0, 5.0, 12.0], True)),
                        [0.5, 1.5, 2.5], ("mean", "variance", "mode"), ("log_prob",)),
    "negative_binomial_probs": (lambda L: _d(L).NegativeBinomial(_t(L, [2.0, 3.0, 5.5]), probs=_t(L, [0.1, 0.5, 0.8], True)),
                                [0.0, 2.0, 7.0], ("mean", "variance", "mode"), ("log_prob",)),
    "negative_binomial_logits": (lambda L: _d(L).NegativeBinomial(_t(L, [2.0, 3.0, 5.5]), logits=_t(L, [-1.0, 0.0, 2.0], True)),
                                 [0.0, 2.0, 7.0], ("mean", "variance", "mode"), ("log_prob",)),
    # 0.4995: inside the lims, where every formula takes its Taylor expansion
    "continuous_bernoulli": (lambda L: _d(L).ContinuousBernoulli(_t(L, [0.1, 0.4995, 0.7, 0.99], True)),
                             [0.3, 0.5, 0.9, 0.01], ("mean", "variance", "stddev"),
                             ("log_prob", "cdf", "icdf", "entropy")),
    "continuous_bernoulli_logits": (lambda L: _d(L).ContinuousBernoulli(logits=_t(L, [-2.0, 0.001, 1.2], True)),
                                    [0.3, 0.5, 0.9], ("mean", "variance"), ("log_prob", "cdf", "icdf", "entropy")),
    "von_mises": (lambda L: _d(L).VonMises(_t(L, [0.0, 1.0, -2.0], True), _t(L, [0.5, 2.0, 10.0], True)),
                  [0.3, -1.0, 3.0], ("mean", "variance", "mode"), ("log_prob",)),
    "lowrank_mvn": (lambda L: _d(L).LowRankMultivariateNormal(_t(L, np.zeros((2, 4)) + [0.0, 1.0, -1.0, 0.5], True),
                                                              _t(L, FACTOR, True), _t(L, DIAG, True)),
                    _RNG.standard_normal((3, 2, 4)),
                    ("mean", "variance", "mode", "covariance_matrix", "precision_matrix", "scale_tril"),
                    ("log_prob", "entropy")),
    "logistic_normal": (lambda L: _d(L).LogisticNormal(_t(L, [0.0, 1.0], True), _t(L, [1.0, 0.5], True)),
                        [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], (), ("log_prob",)),
    "lkj_cholesky": (lambda L: _d(L).LKJCholesky(4, _t(L, [0.5, 2.0], True)),
                     np.linalg.cholesky(np.corrcoef(_RNG.standard_normal((4, 9)))), (), ("log_prob",)),
    "wishart": (lambda L: _d(L).Wishart(_t(L, [6.0, 8.5], True), covariance_matrix=_t(L, COV, True)),
                np.stack([COV * 5, COV * 7 + np.eye(4)]), ("mean", "mode", "variance", "precision_matrix"),
                ("log_prob", "entropy")),
}
# torch's GeneralizedPareto.log_prob compares the concentration with a float32 zero tensor
# (isclose(concentration, torch.tensor(0.0))), so it fails in float64: compared in float32 below
FLOAT32_ONLY = {
    "generalized_pareto": (lambda L: _d(L).GeneralizedPareto(L.tensor([0.0, 1.0, -1.0]), L.tensor([1.0, 2.0, 0.5]),
                                                             L.tensor([0.3, 0.0, -0.2])),
                           [0.5, 1.5, -0.5], ("mean", "variance", "mode"),
                           ("log_prob", "cdf", "icdf", "entropy", "log_survival_function")),
}


def _value(result):
    return result.detach().numpy() if hasattr(result, "detach") else np.asarray(result)


def _compare(name, case, dtype_rtol=1e-6):
    factory, values, properties, methods = case
    (ours, ours_params), (theirs, theirs_params) = _built(factory, chainrule), _built(factory, torch)
    assert tuple(ours.batch_shape) == tuple(theirs.batch_shape) and tuple(ours.event_shape) == tuple(theirs.event_shape)
    for prop in properties:
        np.testing.assert_allclose(_value(getattr(ours, prop)), _value(getattr(theirs, prop)), rtol=dtype_rtol,
                                   atol=1e-10, equal_nan=True, err_msg=f"{name}.{prop}")
    for method in methods:
        if method == "entropy":
            mine, reference = ours.entropy(), theirs.entropy()
        else:
            argument = np.asarray(values) if method != "icdf" else np.array([0.1, 0.5, 0.9, 0.3])[:len(values)]
            dtype = getattr(ours, "loc", None)
            cast = np.float32 if dtype is not None and dtype.dtype == chainrule.float32 else np.float64
            mine = getattr(ours, method)(chainrule.tensor(argument.astype(cast)))
            reference = getattr(theirs, method)(torch.tensor(argument.astype(cast)))
        np.testing.assert_allclose(_value(mine), _value(reference), rtol=dtype_rtol, atol=1e-10, equal_nan=True,
                                   err_msg=f"{name}.{method}")
    return ours, theirs, ours_params, theirs_params


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_log_prob_gradients_match_torch(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's Wishart warns on every sample it draws
        ours, theirs, ours_params, theirs_params = _compare(name, CASES[name])
    # the gradient of log_prob's sum reaches every parameter as torch's
    values = np.asarray(CASES[name][1])
    ours.log_prob(chainrule.tensor(values)).sum().backward()
    theirs.log_prob(torch.tensor(values)).sum().backward()
    assert len(ours_params) == len(theirs_params) > 0
    for mine, reference in zip(ours_params, theirs_params):
        np.testing.assert_allclose(mine.grad.numpy(), reference.grad.numpy(), rtol=1e-6, atol=1e-10, err_msg=name)


def test_generalized_pareto_in_float32():
    _compare("generalized_pareto", FLOAT32_ONLY["generalized_pareto"], dtype_rtol=2e-6)


# ---------------------------------------------------------------- sampling
SAMPLED = {
    # name -> (factory on chainrule, has_rsample)
    "weibull": True, "pareto": True, "kumaraswamy": True, "inverse_gamma": True, "fisher_snedecor": True,
    "negative_binomial_probs": False, "continuous_bernoulli": True, "von_mises": False, "lowrank_mvn": True,
    "logistic_normal": True, "lkj_cholesky": False, "wishart": True,
}


@pytest.mark.parametrize("name", sorted(SAMPLED))
def test_sample_shapes_dtypes_and_rsample(name):
    chainrule.manual_seed(0)
    theirs = CASES[name][0](torch)
    ours, ours_params = _built(CASES[name][0], chainrule)
    assert ours.has_rsample is theirs.has_rsample is SAMPLED[name]
    sample = ours.sample((5,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's Wishart warns on every sample it draws
        their_shape = tuple(theirs.sample((5,)).shape)
    assert tuple(sample.shape) == their_shape == (5,) + tuple(ours.batch_shape) + tuple(ours.event_shape)
    assert sample.dtype == chainrule.float64 and not sample.requires_grad
    assert bool(ours.support.check(sample).all()), name
    if SAMPLED[name]:
        drawn = ours.rsample((3,))
        assert drawn.requires_grad
        drawn.sum().backward()
        assert ours_params and all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in ours_params), name
    else:
        with pytest.raises(NotImplementedError):
            ours.rsample()


# closed-form draws (one uniform or normal per value, no rejection): a fixed seed gives the same
# noise at nearby parameters, so rsample's gradient is checked by central differences
@pytest.mark.parametrize("name,build", [
    ("weibull", lambda L, a, b: _d(L).Weibull(a, b)),
    ("pareto", lambda L, a, b: _d(L).Pareto(a, b)),
    ("kumaraswamy", lambda L, a, b: _d(L).Kumaraswamy(a, b)),
    ("generalized_pareto", lambda L, a, b: _d(L).GeneralizedPareto(a - 1, b, a - 1.2)),
    ("continuous_bernoulli", lambda L, a, b: _d(L).ContinuousBernoulli(a / 4)),
    ("logistic_normal", lambda L, a, b: _d(L).LogisticNormal(a, b)),
    ("lowrank_mvn", lambda L, a, b: _d(L).LowRankMultivariateNormal(a, b.reshape(3, 1).expand(3, 2) * a.unsqueeze(-1), b)),
])
def test_rsample_gradient_by_finite_differences(name, build):
    a0, b0 = np.array([1.1, 1.7, 2.3]), np.array([0.8, 1.3, 2.1])

    def draw(a, b):
        chainrule.manual_seed(7)
        return build(chainrule, a, b).rsample((4,)).sum()

    a, b = _t(chainrule, a0, True), _t(chainrule, b0, True)
    draw(a, b).backward()
    step = 1e-6
    for parameter, base in ((a, a0), (b, b0)):
        numeric = []
        for i in range(3):
            up, down = base.copy(), base.copy()
            up[i] += step
            down[i] -= step
            args_up = (up, b0) if parameter is a else (a0, up)
            args_down = (down, b0) if parameter is a else (a0, down)
            numeric.append((draw(*(_t(chainrule, v) for v in args_up)).item()
                            - draw(*(_t(chainrule, v) for v in args_down)).item()) / (2 * step))
        grad = parameter.grad.numpy() if parameter.grad is not None else np.zeros(3)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6, err_msg=name)


# sample means within 6 standard errors of the mean (fixed seed; n draws per batch element)
@pytest.mark.parametrize("name", ["weibull", "pareto", "kumaraswamy", "inverse_gamma", "fisher_snedecor",
                                  "negative_binomial_probs", "continuous_bernoulli", "lowrank_mvn", "wishart"])
def test_sample_moments(name):
    chainrule.manual_seed(1)
    distribution = CASES[name][0](chainrule)
    n = 4000
    draws = distribution.sample((n,)).numpy()
    mean, variance = distribution.mean.detach().numpy(), distribution.variance.detach().numpy()
    finite = np.isfinite(mean) & np.isfinite(variance)
    assert finite.any()
    error = np.abs(draws.mean(0) - mean)[finite]
    assert (error <= 6 * np.sqrt(variance[finite] / n)).all(), (name, error, np.sqrt(variance[finite] / n))


def test_von_mises_and_lkj_sample_statistics():
    chainrule.manual_seed(2)
    von_mises = CASES["von_mises"][0](chainrule)
    draws = von_mises.sample((4000,))
    # E[cos(x - loc)] = I₁(κ)/I₀(κ) = 1 - circular variance
    resultant = (draws - von_mises.loc.detach()).cos().numpy()
    expected = 1 - von_mises.variance.detach().numpy()
    assert (np.abs(resultant.mean(0) - expected) <= 6 * resultant.std(0) / np.sqrt(4000)).all()
    # an LKJ(η) correlation's off-diagonal entries have variance 1/(2η + D - 1)
    lkj = chainrule.distributions.LKJCholesky(3, chainrule.tensor([0.5, 4.0], dtype=chainrule.float64))
    factors = lkj.sample((4000,))
    correlations = (factors @ factors.mT).numpy()[..., 1, 0]
    expected_variance = 1 / (2 * np.array([0.5, 4.0]) + 3 - 1)
    standard_error = expected_variance * math.sqrt(2 / 4000)  # of a sample variance (roughly)
    assert (np.abs((correlations ** 2).mean(0) - expected_variance) <= 6 * 2 * standard_error).all()


# ---------------------------------------------------------------- constraints and validation
def _message(error) -> str:
    return str(error).replace("chainrule", "torch")


@pytest.mark.parametrize("build,value", [
    (lambda L: _d(L).Weibull(_t(L, [-1.0]), _t(L, [1.0])), None),
    (lambda L: _d(L).Pareto(_t(L, [1.0]), _t(L, [0.0])), None),
    (lambda L: _d(L).Kumaraswamy(_t(L, [1.0]), _t(L, [-2.0])), None),
    (lambda L: _d(L).InverseGamma(_t(L, [1.0]), _t(L, [-2.0])), None),
    (lambda L: _d(L).FisherSnedecor(_t(L, [-1.0]), _t(L, [2.0])), None),
    (lambda L: _d(L).NegativeBinomial(_t(L, [-1.0]), probs=_t(L, [0.5])), None),
    (lambda L: _d(L).VonMises(_t(L, [0.0]), _t(L, [-1.0])), None),
    (lambda L: _d(L).Weibull(_t(L, [1.0]), _t(L, [1.0])), [-0.5]),
    (lambda L: _d(L).Pareto(_t(L, [1.0]), _t(L, [2.0])), [0.5]),
    (lambda L: _d(L).Kumaraswamy(_t(L, [1.0]), _t(L, [2.0])), [1.5]),
    (lambda L: _d(L).NegativeBinomial(_t(L, [2.0]), probs=_t(L, [0.5])), [1.5]),
    (lambda L: _d(L).ContinuousBernoulli(_t(L, [0.3])), [1.5]),
])
def test_validation_errors_as_torch(build, value):
    with pytest.raises(ValueError) as theirs:
        distribution = build(torch)
        distribution.log_prob(torch.tensor(value, dtype=torch.float64))
    with pytest.raises(ValueError) as ours:
        distribution = build(chainrule)
        distribution.log_prob(chainrule.tensor(value, dtype=chainrule.float64))
    assert _message(ours.value) == _message(theirs.value)


def test_constraints_and_arg_constraints_match_torch():
    for name, (factory, *_rest) in CASES.items():
        ours, theirs = factory(chainrule), factory(torch)
        assert set(ours.arg_constraints) == set(theirs.arg_constraints), name
        assert type(ours.support).__name__.lstrip("_") == type(theirs.support).__name__.lstrip("_"), name
    C, T = chainrule.distributions.constraints, torch.distributions.constraints
    counts = [[1.0, 2.0, 0.0], [3.0, 3.0, 0.0], [-1.0, 0.0, 0.0]]
    assert C.multinomial(5).check(chainrule.tensor(counts)).tolist() == T.multinomial(5).check(torch.tensor(counts)).tolist()
    mixed = [[1.0, -1.0], [2.0, 3.0]]
    assert (C.MixtureSameFamilyConstraint(C.positive).check(chainrule.tensor(mixed)).tolist()
            == T.MixtureSameFamilyConstraint(T.positive).check(torch.tensor(mixed)).tolist())
    factor = np.linalg.cholesky(np.corrcoef(_RNG.standard_normal((3, 5))))
    for matrix in (factor, factor * 1.1):
        assert bool(C.corr_cholesky.check(chainrule.tensor(matrix))) == bool(T.corr_cholesky.check(torch.tensor(matrix)))


def test_exponential_family_membership_and_bregman_entropy():
    ExponentialFamily = chainrule.distributions.ExponentialFamily
    for name in ("Normal", "Exponential", "Gamma", "Chi2", "Beta", "Dirichlet", "Bernoulli", "Poisson",
                 "ContinuousBernoulli", "Wishart"):
        assert issubclass(getattr(chainrule.distributions, name), ExponentialFamily) is \
            issubclass(getattr(torch.distributions, name), torch.distributions.ExponentialFamily), name
    # the generic entropy (from the log normaliser) agrees with the closed forms, as torch's does
    for build in (lambda L: _d(L).Normal(_t(L, [0.0, 1.0]), _t(L, [1.0, 3.0])),
                  lambda L: _d(L).Gamma(_t(L, [0.5, 3.0]), _t(L, [2.0, 1.0])),
                  lambda L: _d(L).Exponential(_t(L, [0.5, 3.0])),
                  lambda L: _d(L).Bernoulli(_t(L, [0.2, 0.7]))):
        ours = ExponentialFamily.entropy(build(chainrule))
        np.testing.assert_allclose(ours.detach().numpy(), build(torch).entropy().numpy(), rtol=1e-10)


# ---------------------------------------------------------------- transforms
def test_new_transforms_match_torch():
    CT, TT = chainrule.distributions.transforms, torch.distributions.transforms
    x = _RNG.standard_normal((2, 6))
    matrices = _RNG.standard_normal((2, 3, 3))
    columns = _RNG.standard_normal((4, 3))
    normal = (chainrule.distributions.Normal(_t(chainrule, 0.5), _t(chainrule, 2.0)),
              torch.distributions.Normal(_t(torch, 0.5), _t(torch, 2.0)))
    cases = [
        (lambda M, D: M.CorrCholeskyTransform(), x),
        (lambda M, D: M.LowerCholeskyTransform(), matrices),
        (lambda M, D: M.PositiveDefiniteTransform(), matrices),
        (lambda M, D: M.CatTransform([M.ExpTransform(), M.AffineTransform(1.0, 2.0)], dim=-1, lengths=[1, 2]), columns),
        (lambda M, D: M.CatTransform([M.ExpTransform(), M.AffineTransform(1.0, 2.0)], dim=0, lengths=[3, 1]), columns),
        (lambda M, D: M.StackTransform([M.ExpTransform(), M.AffineTransform(1.0, 2.0), M.SigmoidTransform()], dim=-1),
         columns),
        (lambda M, D: M.CumulativeDistributionTransform(D), columns),
    ]
    for build, value in cases:
        ours, theirs = build(CT, normal[0]), build(TT, normal[1])
        y, ty = ours(chainrule.tensor(value)), theirs(torch.tensor(value))
        np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-10, err_msg=repr(ours))
        np.testing.assert_allclose(ours.inv(y).numpy(), theirs.inv(ty).numpy(), rtol=1e-8, atol=1e-10)
        if not isinstance(ours, (CT.LowerCholeskyTransform, CT.PositiveDefiniteTransform)):
            np.testing.assert_allclose(ours.log_abs_det_jacobian(chainrule.tensor(value), y).numpy(),
                                       theirs.log_abs_det_jacobian(torch.tensor(value), ty).numpy(), rtol=1e-10)
    assert CT.CorrCholeskyTransform().forward_shape((2, 6)) == (2, 4, 4)
    assert CT.CorrCholeskyTransform().inverse_shape((2, 4, 4)) == (2, 6)
    C = chainrule.distributions.constraints
    for constraint, expected in [(C.corr_cholesky, CT.CorrCholeskyTransform), (C.lower_cholesky, CT.LowerCholeskyTransform),
                                 (C.positive_definite, CT.PositiveDefiniteTransform),
                                 (C.cat([C.positive, C.real], 0, [1, 2]), CT.CatTransform),
                                 (C.stack([C.positive, C.unit_interval], -1), CT.StackTransform)]:
        if expected in (CT.LowerCholeskyTransform, CT.PositiveDefiniteTransform):
            # torch registers these for transform_to only
            with pytest.raises(NotImplementedError, match="Cannot transform"):
                chainrule.distributions.biject_to(constraint)
        else:
            assert isinstance(chainrule.distributions.biject_to(constraint), expected)
        assert isinstance(chainrule.distributions.transform_to(constraint), expected)


# ---------------------------------------------------------------- KL divergences
def _pair(name, *args, **kwargs):
    def convert(value, lib):
        return lib.tensor(np.asarray(value, dtype=np.float64)) if isinstance(value, (list, np.ndarray)) else value

    return tuple(getattr(lib.distributions, name)(*(convert(a, lib) for a in args),
                                                  **{k: convert(v, lib) for k, v in kwargs.items()})
                 for lib in (chainrule, torch))


KL_PAIRS = {
    "cb_cb": (("ContinuousBernoulli", [0.3, 0.6, 0.8]), ("ContinuousBernoulli", [0.2, 0.5, 0.9])),
    "pareto_pareto": (("Pareto", [1.0, 2.0, 0.5], [3.0, 2.5, 4.0]), ("Pareto", [0.5, 2.5, 0.5], [2.0, 1.5, 4.0])),
    "beta_cb": (("Beta", [1.0, 2.0, 0.5], [3.0, 2.5, 4.0]), ("ContinuousBernoulli", [0.2, 0.5, 0.9])),
    "uniform_cb": (("Uniform", [0.1, 0.0, 0.2], [0.5, 0.9, 0.7]), ("ContinuousBernoulli", [0.2, 0.5, 0.9])),
    "cb_exponential": (("ContinuousBernoulli", [0.3, 0.6, 0.8]), ("Exponential", [1.0, 2.0, 0.5])),
    "cb_normal": (("ContinuousBernoulli", [0.3, 0.6, 0.8]), ("Normal", [0.0, 1.0, -1.0], [1.0, 2.0, 0.5])),
    "cb_uniform": (("ContinuousBernoulli", [0.3, 0.6, 0.8]), ("Uniform", [-0.1, 0.0, -1.0], [1.5, 0.9, 2.0])),
    "pareto_exponential": (("Pareto", [1.0, 2.0, 0.5], [3.0, 0.5, 4.0]), ("Exponential", [1.0, 2.0, 0.5])),
    "pareto_gamma": (("Pareto", [1.0, 2.0, 0.5], [3.0, 0.5, 4.0]), ("Gamma", [1.0, 2.0, 0.5], [2.0, 1.0, 3.0])),
    "pareto_normal": (("Pareto", [1.0, 2.0, 0.5], [3.0, 1.5, 4.0]), ("Normal", [0.0, 1.0, -1.0], [1.0, 2.0, 0.5])),
    "uniform_pareto": (("Uniform", [1.0, 2.0, 0.2], [3.0, 3.0, 4.0]), ("Pareto", [1.0, 1.0, 0.5], [3.0, 1.5, 4.0])),
    "normal_pareto": (("Normal", [0.0, 1.0], [1.0, 2.0]), ("Pareto", [1.0, 1.0], [3.0, 1.5])),
    "gamma_cb": (("Gamma", [1.0, 2.0], [2.0, 1.0]), ("ContinuousBernoulli", [0.2, 0.5])),
    "pareto_uniform": (("Pareto", [1.0, 2.0], [3.0, 1.5]), ("Uniform", [0.0, 1.0], [5.0, 3.0])),
    "poisson_poisson": (("Poisson", [1.0, 2.0, 0.5]), ("Poisson", [2.0, 1.0, 3.0])),
    "lowrank_lowrank": (("LowRankMultivariateNormal", np.zeros(4), FACTOR, DIAG),
                        ("LowRankMultivariateNormal", np.ones(4), FACTOR[:, :1] * 2, DIAG[::-1].copy())),
    "mvn_lowrank": (("MultivariateNormal", np.zeros(4), {"covariance_matrix": COV}),
                    ("LowRankMultivariateNormal", np.ones(4), FACTOR, DIAG)),
    "lowrank_mvn": (("LowRankMultivariateNormal", np.ones(4), FACTOR, DIAG),
                    ("MultivariateNormal", np.zeros(4), {"covariance_matrix": COV})),
    "wishart_wishart": (("Wishart", 6.0, {"covariance_matrix": COV}), ("Wishart", 7.5, {"covariance_matrix": COV + np.eye(4)})),
}


@pytest.mark.parametrize("name", sorted(KL_PAIRS))
def test_kl_divergence_matches_torch(name):
    def build(spec):
        family, *args = spec
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        return _pair(family, *args, **kwargs)

    (p_ours, p_theirs), (q_ours, q_theirs) = build(KL_PAIRS[name][0]), build(KL_PAIRS[name][1])
    ours = chainrule.distributions.kl_divergence(p_ours, q_ours)
    theirs = torch.distributions.kl_divergence(p_theirs, q_theirs)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-8, err_msg=name)


def test_cross_family_bregman_kl_is_refused_as_torch():
    p, q = _pair("ContinuousBernoulli", [0.3]), _pair("Wishart", 5.0, covariance_matrix=COV)
    with pytest.raises(NotImplementedError):
        torch.distributions.kl_divergence(p[1], q[1])
    with pytest.raises(NotImplementedError):
        chainrule.distributions.kl_divergence(p[0], q[0])


# ---------------------------------------------------------------- module paths and utils
def test_every_torch_distributions_module_path_imports():
    for info in pkgutil.iter_modules(torch.distributions.__path__):
        theirs = importlib.import_module(f"torch.distributions.{info.name}")
        ours = importlib.import_module(f"chainrule.distributions.{info.name}")
        missing = [name for name in getattr(theirs, "__all__", []) if not hasattr(ours, name)]
        assert not missing, (info.name, missing)
    assert not [name for name in torch.distributions.__all__ if not hasattr(chainrule.distributions, name)]
    from chainrule.distributions.normal import Normal
    from chainrule.distributions.studentT import StudentT

    assert Normal is chainrule.distributions.Normal and StudentT is chainrule.distributions.StudentT


def test_utils_match_torch():
    U, TU = chainrule.distributions.utils, torch.distributions.utils
    probs = np.array([0.0, 0.3, 1.0])
    for is_binary in (True, False):
        np.testing.assert_allclose(U.probs_to_logits(chainrule.tensor(probs), is_binary).numpy(),
                                   TU.probs_to_logits(torch.tensor(probs), is_binary).numpy())
        np.testing.assert_allclose(U.logits_to_probs(chainrule.tensor(probs), is_binary).numpy(),
                                   TU.logits_to_probs(torch.tensor(probs), is_binary).numpy())
    np.testing.assert_allclose(U.clamp_probs(chainrule.tensor(probs, dtype=chainrule.float32)).numpy(),
                               TU.clamp_probs(torch.tensor(probs, dtype=torch.float32)).numpy())
    matrix = _RNG.standard_normal((2, 4, 4))
    for diag in (-1, 0, 1):
        vector = U.tril_matrix_to_vec(chainrule.tensor(matrix), diag)
        np.testing.assert_array_equal(vector.numpy(), TU.tril_matrix_to_vec(torch.tensor(matrix), diag).numpy())
        np.testing.assert_array_equal(U.vec_to_tril_matrix(vector, diag).numpy(),
                                      TU.vec_to_tril_matrix(torch.tensor(vector.numpy()), diag).numpy())
    with pytest.raises(ValueError, match="cannot be expressed as the lower triangular part"):
        U.vec_to_tril_matrix(chainrule.tensor(np.zeros(5)))

    class Lazy:
        calls = 0

        @U.lazy_property
        def value(self):
            Lazy.calls += 1
            return 42

    instance = Lazy()
    assert instance.value == instance.value == 42 and Lazy.calls == 1


# ---------------------------------------------------------------- a whole program on both libraries
def _fit(lib) -> list:
    """Maximum likelihood by Adam for a Weibull, a NegativeBinomial and a low-rank Gaussian at once
    (deterministic: log_prob gradients only), as a script would write it for either library."""
    data_rng = np.random.default_rng(3)
    durations = lib.tensor(data_rng.weibull(1.7, 200) * 2.0)
    counts = lib.tensor(data_rng.negative_binomial(4, 0.4, 200).astype(np.float64))
    points = lib.tensor(data_rng.standard_normal((100, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.5]]))
    log_scale = lib.zeros(1, dtype=lib.float64, requires_grad=True)
    log_concentration = lib.zeros(1, dtype=lib.float64, requires_grad=True)
    log_total = lib.zeros(1, dtype=lib.float64, requires_grad=True)
    logit = lib.zeros(1, dtype=lib.float64, requires_grad=True)
    loc = lib.zeros(3, dtype=lib.float64, requires_grad=True)
    factor = lib.full((3, 1), 0.1, dtype=lib.float64, requires_grad=True)
    log_diag = lib.zeros(3, dtype=lib.float64, requires_grad=True)
    parameters = [log_scale, log_concentration, log_total, logit, loc, factor, log_diag]
    optimizer = lib.optim.Adam(parameters, lr=0.05)
    D = lib.distributions
    for _ in range(30):
        optimizer.zero_grad()
        loss = -(D.Weibull(log_scale.exp(), log_concentration.exp()).log_prob(durations).mean()
                 + D.NegativeBinomial(log_total.exp(), logits=logit).log_prob(counts).mean()
                 + D.LowRankMultivariateNormal(loc, factor, log_diag.exp()).log_prob(points).mean())
        loss.backward()
        optimizer.step()
    return [p.detach().numpy().copy() for p in parameters] + [loss.item()]


def test_maximum_likelihood_program_matches_torch():
    for ours, theirs in zip(_fit(chainrule), _fit(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------- on the CuPy stand-in
def test_new_families_sample_and_score_on_the_cupy_standin():
    from chainrule._backend import use_standin_cuda

    names = ["weibull", "pareto", "kumaraswamy", "inverse_gamma", "fisher_snedecor", "negative_binomial_probs",
             "continuous_bernoulli", "von_mises", "lowrank_mvn", "logistic_normal", "lkj_cholesky", "wishart"]
    expected = {name: CASES[name][0](chainrule).log_prob(chainrule.tensor(np.asarray(CASES[name][1])))
                for name in names}
    with use_standin_cuda():
        def on_device(lib):
            class Module:  # the library, with tensors created on the device
                def __getattr__(self, name):
                    return getattr(lib, name)

                @staticmethod
                def tensor(value, *args, **kwargs):
                    return lib.tensor(value, *args, **kwargs).to("cuda")

            return Module()

        for name in names:
            distribution = CASES[name][0](on_device(chainrule))
            drawn = distribution.sample((2,))
            assert drawn.device.type == "cuda", name
            value = chainrule.tensor(np.asarray(CASES[name][1])).to("cuda")
            scored = distribution.log_prob(value)
            assert scored.device.type == "cuda", name
            np.testing.assert_allclose(scored.detach().cpu().numpy(), expected[name].detach().numpy(), rtol=1e-10,
                                       err_msg=name)


# ---------------------------------------------------------------- expand and enumerate_support
EXPANDED = {
    # name -> (factory, expanded batch shape, a value)
    "normal_0d": (lambda L: _d(L).Normal(_t(L, 0.0), _t(L, 1.0)), (3,), [0.3, 0.5, 0.1]),
    "bernoulli": (lambda L: _d(L).Bernoulli(logits=_t(L, [0.0, 1.0])), (3, 2), [1.0, 0.0]),
    "categorical": (lambda L: _d(L).Categorical(logits=_t(L, [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])), (5, 2), [0.0, 2.0]),
    "beta": (lambda L: _d(L).Beta(_t(L, [1.0, 2.0]), _t(L, [2.0, 3.0])), (3, 2), [0.3, 0.6]),
    "dirichlet": (lambda L: _d(L).Dirichlet(_t(L, [[1.0, 2.0, 3.0]])), (4, 1), [0.2, 0.3, 0.5]),
    "mvn": (lambda L: _d(L).MultivariateNormal(_t(L, np.zeros(4)), covariance_matrix=_t(L, COV)), (3,),
            [0.1, 0.2, 0.3, 0.4]),
    "independent": (lambda L: _d(L).Independent(_d(L).Normal(_t(L, [0.0, 1.0]), _t(L, [1.0, 2.0])), 1), (4,), [0.3, 0.5]),
    "mixture": (lambda L: _d(L).MixtureSameFamily(_d(L).Categorical(logits=_t(L, [0.0, 1.0])),
                                                   _d(L).Normal(_t(L, [0.0, 1.0]), _t(L, [1.0, 2.0]))), (3,), [0.3]),
    "negative_binomial": (lambda L: _d(L).NegativeBinomial(_t(L, [3.0, 5.0]), logits=_t(L, [0.0, 1.0])), (3, 2),
                          [1.0, 2.0]),
    **{name: (CASES[name][0], shape, CASES[name][1]) for name, shape in [
        ("weibull", (2, 3)), ("fisher_snedecor", (2, 3)), ("continuous_bernoulli", (2, 4)), ("von_mises", (2, 3)),
        ("lowrank_mvn", (3, 2)), ("wishart", (2, 2)), ("lkj_cholesky", (2, 2)), ("logistic_normal", (2,))]},
}


@pytest.mark.parametrize("name", sorted(EXPANDED))
def test_expand_matches_torch(name):
    factory, shape, value = EXPANDED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = factory(chainrule).expand(shape), factory(torch).expand(torch.Size(shape))
        their_sample = theirs.sample((2,))
    assert tuple(ours.batch_shape) == tuple(theirs.batch_shape) == shape
    assert tuple(ours.sample((2,)).shape) == tuple(their_sample.shape)
    np.testing.assert_allclose(ours.log_prob(chainrule.tensor(np.asarray(value, dtype=np.float64))).detach().numpy(),
                               theirs.log_prob(torch.tensor(np.asarray(value, dtype=np.float64))).detach().numpy(),
                               rtol=1e-10)


def test_expand_refuses_an_incompatible_batch_shape():
    with pytest.raises(RuntimeError, match="must match the existing size"):
        chainrule.distributions.Normal(chainrule.zeros(3), chainrule.ones(3)).expand((2,))


def test_enumerate_support_matches_torch():
    for build in (lambda L: _d(L).Bernoulli(probs=_t(L, [0.2, 0.7])),
                  lambda L: _d(L).Categorical(logits=_t(L, [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])),
                  lambda L: _d(L).OneHotCategorical(logits=_t(L, [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])),
                  lambda L: _d(L).Binomial(4, probs=_t(L, [0.2, 0.7]))):
        ours, theirs = build(chainrule), build(torch)
        assert ours.has_enumerate_support is theirs.has_enumerate_support is True
        for expand in (True, False):
            mine, reference = ours.enumerate_support(expand), theirs.enumerate_support(expand)
            assert str(mine.dtype).split(".")[-1] == str(reference.dtype).split(".")[-1]
            np.testing.assert_array_equal(mine.numpy(), reference.numpy())
    assert chainrule.distributions.Normal(0.0, 1.0).has_enumerate_support is False
