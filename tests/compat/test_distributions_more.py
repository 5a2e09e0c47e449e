"""The distributions added after Normal/Uniform/Bernoulli/Categorical, against torch.distributions:
log_prob, cdf/icdf, entropy, moments and KL on the same parameters (float64), gradients of
log_prob and rsample, sample shapes and sample statistics, transforms and constraints."""

import math

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

RATE = np.array([0.5, 1.0, 3.0])
LOC = np.array([0.0, 1.0, -2.0])
SCALE = np.array([1.0, 0.5, 2.0])
X = np.array([0.3, 1.7, 4.0])
PROBS = np.array([0.2, 0.5, 0.9])
COUNTS = np.array([0.0, 2.0, 5.0])
LOGITS = np.array([[1.0, 2.0, -1.0], [0.0, 0.0, 3.0]])
SIMPLEX_POINT = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
_A = np.array([[1.0, 0.3, -0.2], [0.1, 0.8, 0.4], [-0.5, 0.2, 1.2]])
COV = _A @ _A.T + 0.5 * np.eye(3)
TRIL = np.linalg.cholesky(COV)


def _t(lib, a, grad=False):
    t = lib.tensor(np.asarray(a, dtype=np.float64))
    return t.requires_grad_() if grad else t


def _cases():
    D = "distributions"
    return {
        "exponential": (lambda L: getattr(L, D).Exponential(_t(L, RATE, True)), X, ("mean", "variance", "stddev", "mode")),
        "laplace": (lambda L: getattr(L, D).Laplace(_t(L, LOC, True), _t(L, SCALE, True)), X,
                    ("mean", "variance", "stddev")),
        "cauchy": (lambda L: getattr(L, D).Cauchy(_t(L, LOC, True), _t(L, SCALE, True)), X, ("mode",)),
        "gumbel": (lambda L: getattr(L, D).Gumbel(_t(L, LOC, True), _t(L, SCALE, True)), X,
                   ("mean", "variance", "stddev", "mode")),
        "lognormal": (lambda L: getattr(L, D).LogNormal(_t(L, LOC, True), _t(L, SCALE, True)), X,
                      ("mean", "variance", "mode")),
        "halfnormal": (lambda L: getattr(L, D).HalfNormal(_t(L, SCALE, True)), X, ("mean", "variance", "mode")),
        "halfcauchy": (lambda L: getattr(L, D).HalfCauchy(_t(L, SCALE, True)), X, ("mode",)),
        "geometric": (lambda L: getattr(L, D).Geometric(probs=_t(L, PROBS, True)), COUNTS, ("mean", "variance", "mode")),
        "geometric_logits": (lambda L: getattr(L, D).Geometric(logits=_t(L, LOC, True)), COUNTS, ("mean", "variance")),
        "poisson": (lambda L: getattr(L, D).Poisson(_t(L, RATE, True)), COUNTS, ("mean", "variance", "mode")),
        "binomial": (lambda L: getattr(L, D).Binomial(5, probs=_t(L, PROBS, True)), COUNTS,
                     ("mean", "variance", "mode")),
        "binomial_logits": (lambda L: getattr(L, D).Binomial(_t(L, [5.0, 6.0, 7.0]), logits=_t(L, LOC, True)), COUNTS,
                            ("mean", "variance")),
        "multinomial": (lambda L: getattr(L, D).Multinomial(4, logits=_t(L, LOGITS, True)), [[1.0, 3.0, 0.0], [2.0, 0.0, 2.0]],
                        ("mean", "variance")),
        "onehot": (lambda L: getattr(L, D).OneHotCategorical(logits=_t(L, LOGITS, True)), [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                   ("mean", "variance", "mode")),
        "relaxed_bernoulli": (lambda L: getattr(L, D).RelaxedBernoulli(_t(L, 0.7), probs=_t(L, PROBS, True)), [0.1, 0.5, 0.99], ()),
        "relaxed_onehot": (lambda L: getattr(L, D).RelaxedOneHotCategorical(_t(L, 0.5), logits=_t(L, LOGITS, True)),
                           SIMPLEX_POINT, ()),
        "mixture": (lambda L: getattr(L, D).MixtureSameFamily(getattr(L, D).Categorical(logits=_t(L, LOGITS[0], True)),
                                                               getattr(L, D).Normal(_t(L, LOC, True), _t(L, SCALE, True))),
                    [0.3, -1.0], ("mean", "variance")),
        "gamma": (lambda L: getattr(L, D).Gamma(_t(L, [0.5, 2.0, 7.0], True), _t(L, RATE, True)), X,
                  ("mean", "variance", "mode")),
        "chi2": (lambda L: getattr(L, D).Chi2(_t(L, [1.0, 3.0, 6.5], True)), X, ("mean", "variance")),
        "beta": (lambda L: getattr(L, D).Beta(_t(L, [0.5, 2.0, 3.0], True), _t(L, [1.5, 2.0, 0.7], True)),
                 [0.1, 0.5, 0.9], ("mean", "variance", "mode")),
        "dirichlet": (lambda L: getattr(L, D).Dirichlet(_t(L, [[0.5, 2.0, 3.0], [1.0, 1.5, 4.0]], True)),
                      SIMPLEX_POINT, ("mean", "variance", "mode")),
        "studentt": (lambda L: getattr(L, D).StudentT(_t(L, [1.5, 3.0, 10.0], True), _t(L, LOC, True),
                                                      _t(L, SCALE, True)), X, ("mean", "variance", "mode")),
        "mvn_cov": (lambda L: getattr(L, D).MultivariateNormal(_t(L, LOC, True), _t(L, COV, True)), [X, LOC],
                    ("mean", "variance")),
        "mvn_precision": (lambda L: getattr(L, D).MultivariateNormal(_t(L, LOC, True), precision_matrix=_t(L, COV, True)),
                          X, ("variance",)),
        "mvn_tril": (lambda L: getattr(L, D).MultivariateNormal(_t(L, LOC, True), scale_tril=_t(L, TRIL, True)), X,
                     ("variance",)),
        "transformed_affine_exp": (lambda L: getattr(L, D).TransformedDistribution(
            getattr(L, D).Normal(_t(L, LOC, True), _t(L, SCALE, True)),
            [getattr(L, D).transforms.AffineTransform(1.0, 2.0), getattr(L, D).transforms.ExpTransform()]), X, ()),
        "transformed_tanh": (lambda L: getattr(L, D).TransformedDistribution(
            getattr(L, D).Normal(_t(L, LOC, True), _t(L, SCALE, True)), [getattr(L, D).transforms.TanhTransform()]),
            [0.1, -0.5, 0.9], ()),
        "transformed_stickbreaking": (lambda L: getattr(L, D).TransformedDistribution(
            getattr(L, D).Independent(getattr(L, D).Normal(_t(L, LOC[:2], True), _t(L, SCALE[:2], True)), 1),
            [getattr(L, D).transforms.StickBreakingTransform()]), [0.2, 0.3, 0.5], ()),
    }


CASES = _cases()


def _numpy(t):
    return t.detach().numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_log_prob_moments_entropy_and_gradients_match_torch(name):
    build, value, moments = CASES[name]
    results = {}
    for lib in (chainrule, torch):
        dist = build(lib)
        log_prob = dist.log_prob(_t(lib, value))
        got = {"log_prob": log_prob, "batch_shape": tuple(dist.batch_shape), "event_shape": tuple(dist.event_shape)}
        for moment in moments:
            got[moment] = getattr(dist, moment)
        try:
            got["entropy"] = dist.entropy()
        except NotImplementedError:
            pass
        params = [p for p in _leaves(dist) if p.requires_grad]
        grads = lib.autograd.grad(log_prob.sum(), params, allow_unused=True)
        got["grads"] = [g for g in grads if g is not None]
        results[lib.__name__] = got
    ours, theirs = results["chainrule"], results["torch"]
    assert ours["batch_shape"] == theirs["batch_shape"] and ours["event_shape"] == theirs["event_shape"]
    for key in ("log_prob", "entropy", *moments):
        if key == "entropy" and key not in ours:
            assert key not in theirs or name == "multinomial", f"{name}: entropy missing"
            continue
        np.testing.assert_allclose(_numpy(ours[key]), _numpy(theirs[key]), rtol=1e-6, atol=1e-9, err_msg=f"{name}.{key}")
    assert len(ours["grads"]) == len(theirs["grads"]) > 0
    for g_ours, g_theirs in zip(ours["grads"], theirs["grads"]):
        np.testing.assert_allclose(_numpy(g_ours), _numpy(g_theirs), rtol=1e-6, atol=1e-9, err_msg=f"{name} gradient")


def _leaves(dist):
    """The parameter tensors a test distribution was built from (its attributes, recursively)."""
    found, seen = [], set()

    def visit(obj, depth=0):
        if depth > 3 or id(obj) in seen:
            return
        seen.add(id(obj))
        for value in vars(obj).values():
            if hasattr(value, "requires_grad") and hasattr(value, "grad_fn"):
                node = value
                while node.grad_fn is not None and not node.is_leaf:
                    break
                if value.is_leaf and value.requires_grad and all(value is not f for f in found):
                    found.append(value)
                elif value.grad_fn is not None:
                    for leaf in _graph_leaves(value):
                        if all(leaf is not f for f in found):
                            found.append(leaf)
            elif hasattr(value, "__dict__") and not isinstance(value, type):
                visit(value, depth + 1)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if hasattr(item, "__dict__"):
                        visit(item, depth + 1)

    visit(dist)
    return found


def _graph_leaves(t):
    leaves, stack, seen = [], [t.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if hasattr(node, "variable"):
            leaves.append(node.variable)
        stack.extend(child for child, _ in node.next_functions)
    return leaves


@pytest.mark.parametrize("name, value", [("exponential", X), ("laplace", X), ("cauchy", X), ("halfnormal", X),
                                         ("halfcauchy", X), ("gumbel", X)])
def test_cdf_and_icdf_match_torch(name, value):
    build = CASES[name][0]
    ours, theirs = build(chainrule), build(torch)
    np.testing.assert_allclose(_numpy(ours.cdf(_t(chainrule, value))), _numpy(theirs.cdf(_t(torch, value))), rtol=1e-6)
    if name in ("exponential", "laplace", "cauchy"):
        q = [0.1, 0.5, 0.95]
        np.testing.assert_allclose(_numpy(ours.icdf(_t(chainrule, q))), _numpy(theirs.icdf(_t(torch, q))), rtol=1e-6)


KL_PAIRS = {
    "exponential": lambda L: (L.distributions.Exponential(_t(L, RATE)), L.distributions.Exponential(_t(L, RATE[::-1].copy()))),
    "laplace": lambda L: (L.distributions.Laplace(_t(L, LOC), _t(L, SCALE)), L.distributions.Laplace(0.5, 1.5)),
    "cauchy": lambda L: (L.distributions.Cauchy(_t(L, LOC), _t(L, SCALE)), L.distributions.Cauchy(0.5, 1.5)),
    "poisson": lambda L: (L.distributions.Poisson(_t(L, RATE)), L.distributions.Poisson(_t(L, [2.0, 0.5, 1.0]))),
    "geometric": lambda L: (L.distributions.Geometric(_t(L, PROBS)), L.distributions.Geometric(_t(L, [0.5, 0.5, 0.3]))),
    "onehot": lambda L: (L.distributions.OneHotCategorical(logits=_t(L, LOGITS)),
                         L.distributions.OneHotCategorical(logits=_t(L, LOGITS[::-1].copy()))),
    "lognormal": lambda L: (L.distributions.LogNormal(_t(L, LOC), _t(L, SCALE)), L.distributions.LogNormal(0.0, 1.0)),
    "halfnormal": lambda L: (L.distributions.HalfNormal(_t(L, SCALE)), L.distributions.HalfNormal(_t(L, [2.0, 1.0, 0.5]))),
    "gamma": lambda L: (L.distributions.Gamma(_t(L, [0.5, 2.0, 7.0]), _t(L, RATE)), L.distributions.Gamma(1.5, 0.7)),
    "beta": lambda L: (L.distributions.Beta(_t(L, [0.5, 2.0, 3.0]), 1.5), L.distributions.Beta(2.0, _t(L, [1.0, 3.0, 0.5]))),
    "dirichlet": lambda L: (L.distributions.Dirichlet(_t(L, [[0.5, 2.0, 3.0]])), L.distributions.Dirichlet(_t(L, [1.0, 1.0, 1.0]))),
    "mvn": lambda L: (L.distributions.MultivariateNormal(_t(L, LOC), _t(L, COV)),
                      L.distributions.MultivariateNormal(_t(L, [0.5, 0.0, 0.1]), scale_tril=_t(L, np.eye(3) * 1.5))),
}


@pytest.mark.parametrize("name", list(KL_PAIRS))
def test_kl_divergence_matches_torch(name):
    ours = chainrule.distributions.kl_divergence(*KL_PAIRS[name](chainrule))
    theirs = torch.distributions.kl_divergence(*KL_PAIRS[name](torch))
    np.testing.assert_allclose(_numpy(ours), _numpy(theirs), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["exponential", "laplace", "cauchy", "gumbel", "lognormal", "halfnormal", "geometric",
                                  "poisson", "binomial", "multinomial", "onehot", "relaxed_bernoulli", "relaxed_onehot",
                                  "mixture", "transformed_stickbreaking", "gamma", "chi2", "beta", "dirichlet",
                                  "studentt", "mvn_cov", "mvn_precision"])
def test_sample_shapes_match_torch_and_samples_lie_in_the_support(name):
    build = CASES[name][0]
    chainrule.manual_seed(0)
    ours, theirs = build(chainrule), build(torch)
    for shape in ((), (4,), (2, 3)):
        a, b = ours.sample(shape), theirs.sample(shape)
        assert tuple(a.shape) == tuple(b.shape), (name, shape)
        assert a.dtype == chainrule.float64
        assert not a.requires_grad
        assert np.isfinite(ours.log_prob(a).detach().numpy()).all()


@pytest.mark.parametrize("name, mean_of", [
    ("exponential", lambda d: d.mean), ("laplace", lambda d: d.mean), ("gumbel", lambda d: d.mean),
    ("lognormal", lambda d: d.mean), ("halfnormal", lambda d: d.mean), ("geometric", lambda d: d.mean),
    ("poisson", lambda d: d.mean), ("binomial", lambda d: d.mean), ("multinomial", lambda d: d.mean),
    ("onehot", lambda d: d.mean), ("mixture", lambda d: d.mean), ("gamma", lambda d: d.mean),
    ("beta", lambda d: d.mean), ("dirichlet", lambda d: d.mean), ("mvn_cov", lambda d: d.mean),
    ("studentt", lambda d: d.loc)])
def test_sample_means_agree_with_the_distribution_mean(name, mean_of):
    chainrule.manual_seed(1)
    dist = CASES[name][0](chainrule)
    draws = dist.sample((20000,)).numpy()
    mean = mean_of(dist).detach().numpy()
    std = np.sqrt(np.maximum(dist.variance.detach().numpy(), 1e-12))
    # 6 standard errors: a true mismatch fails, chance does not (about 1 in 10^8)
    assert np.all(np.abs(draws.mean(0) - mean) <= 6 * std / math.sqrt(draws.shape[0]) + 1e-9), name


@pytest.mark.parametrize("name", ["exponential", "laplace", "cauchy", "gumbel", "lognormal", "halfnormal",
                                  "relaxed_bernoulli", "relaxed_onehot", "transformed_affine_exp", "gamma", "chi2",
                                  "beta", "dirichlet", "studentt", "mvn_cov", "mvn_tril"])
def test_rsample_carries_gradients_to_the_parameters(name):
    dist = CASES[name][0](chainrule)
    assert dist.has_rsample
    sample = dist.rsample((5,))
    params = [p for p in _leaves(dist) if p.requires_grad]
    # squares, not the plain sum: a Dirichlet draw sums to 1, so sample.sum()'s true gradient is 0
    # (rounding noise made it nonzero until float32 sums took torch's order)
    grads = chainrule.autograd.grad((sample * sample).sum(), params, allow_unused=True)
    assert any(g is not None and np.abs(g.numpy()).sum() > 0 for g in grads)


def test_straight_through_rsample_is_one_hot_forward_and_probs_gradient_backward():
    logits = chainrule.tensor(LOGITS, requires_grad=True)
    dist = chainrule.distributions.OneHotCategoricalStraightThrough(logits=logits)
    sample = dist.rsample()
    assert set(np.unique(sample.detach().numpy())) <= {0.0, 1.0}
    (sample * chainrule.tensor([1.0, 2.0, 3.0], dtype=chainrule.float64)).sum().backward()
    assert logits.grad is not None and np.abs(logits.grad.numpy()).sum() > 0


@pytest.mark.parametrize("transform", ["ExpTransform", "SigmoidTransform", "TanhTransform", "SoftplusTransform",
                                       "StickBreakingTransform", "affine", "power", "compose"])
def test_transforms_invert_and_match_torch_jacobians(transform):
    def build(L):
        T = L.distributions.transforms
        if transform == "affine":
            return T.AffineTransform(_t(L, LOC), _t(L, SCALE))
        if transform == "power":
            return T.PowerTransform(_t(L, [2.0, 0.5, 3.0]))
        if transform == "compose":
            return T.ComposeTransform([T.AffineTransform(1.0, 2.0), T.ExpTransform(), T.ExpTransform().inv])
        return getattr(T, transform)()

    x = np.array([0.3, -0.7, 1.2]) if transform != "power" else np.array([0.3, 0.7, 1.2])
    out = {}
    for lib in (chainrule, torch):
        t = build(lib)
        xt = _t(lib, x)
        y = t(xt)
        out[lib.__name__] = (_numpy(y), _numpy(t.inv(y)), _numpy(t.log_abs_det_jacobian(xt, y)))
    for ours, theirs in zip(out["chainrule"], out["torch"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(out["chainrule"][1], x, rtol=1e-6)


def test_constraints_check_and_biject_to_match_torch():
    values = [-1.0, 0.0, 0.5, 1.0, 2.0]
    for name in ("real", "positive", "nonnegative", "unit_interval", "nonnegative_integer", "boolean"):
        ours = getattr(chainrule.distributions.constraints, name).check(chainrule.tensor(values))
        theirs = getattr(torch.distributions.constraints, name).check(torch.tensor(values))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=name)
    simplex = [[0.2, 0.8], [0.5, 0.6]]
    np.testing.assert_array_equal(chainrule.distributions.constraints.simplex.check(chainrule.tensor(simplex)).numpy(),
                                  torch.distributions.constraints.simplex.check(torch.tensor(simplex)).numpy())
    x = np.array([-2.0, 0.0, 3.0])
    for lib in (chainrule, torch):
        C, biject = lib.distributions.constraints, lib.distributions.biject_to
        y_pos = biject(C.positive)(_t(lib, x))
        y_int = biject(C.interval(-1.0, 3.0))(_t(lib, x))
        y_gt = biject(C.greater_than(2.0))(_t(lib, x))
        if lib is chainrule:
            ours = [_numpy(v) for v in (y_pos, y_int, y_gt)]
        else:
            for a, b in zip(ours, (y_pos, y_int, y_gt)):
                np.testing.assert_allclose(a, _numpy(b), rtol=1e-7)


def test_validation_errors_as_torch():
    with pytest.raises(ValueError, match="Expected parameter rate"):
        chainrule.distributions.Exponential(chainrule.tensor([-1.0]))
    with pytest.raises(ValueError, match="Expected value argument"):
        chainrule.distributions.Poisson(chainrule.tensor([1.0])).log_prob(chainrule.tensor([0.5]))
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified"):
        chainrule.distributions.Geometric()


@pytest.mark.parametrize("name, concentration", [("gamma", [0.5, 2.0, 7.0]), ("dirichlet", [0.5, 2.0, 3.0])])
def test_reparameterised_gamma_draws_have_the_gradient_of_their_mean(name, concentration):
    """E[∂x/∂α] = ∂E[x]/∂α: Gamma(α, 1) has mean α (derivative 1), Dirichlet's first component
    α₁/Σα (derivative (Σα - α₁)/(Σα)²)."""
    chainrule.manual_seed(2)
    alpha = chainrule.tensor(concentration, dtype=chainrule.float64, requires_grad=True)
    if name == "gamma":
        draws = chainrule.distributions.Gamma(alpha, 1.0).rsample((20000,))
        draws.mean(0).sum().backward()
        expected = np.ones(3)
    else:
        draws = chainrule.distributions.Dirichlet(alpha).rsample((20000,))
        draws[:, 0].mean().backward()
        a = np.asarray(concentration)
        expected = -a[0] / a.sum() ** 2 * np.ones(3)
        expected[0] += 1 / a.sum()
    np.testing.assert_allclose(alpha.grad.numpy(), expected, atol=0.03)
