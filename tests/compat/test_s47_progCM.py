"""Found by probing around the corpus programs mixture_same_family_gmm, adain_style_transfer and
restormer_mdta, each case checked against torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_CONSTRAINTS = ["real", "real_vector", "positive", "nonnegative", "unit_interval", "simplex", "lower_cholesky",
                "lower_triangular", "positive_definite", "positive_semidefinite", "corr_cholesky", "boolean",
                "integer_interval(0, 3)", "greater_than(1.0)", "less_than(2.0)", "interval(0.0, 2.0)",
                "half_open_interval(0.0, 2.0)", "independent(real, 1)", "independent(lower_cholesky, 1)",
                "independent(positive_definite, 2)", "cat([real, positive], 0, [1, 1])", "stack([real, positive], 0)"]


def _constraint(lib, spelling):
    namespace = vars(lib.distributions.constraints)
    return eval(spelling, {name: value for name, value in namespace.items() if not name.startswith("__")})


def _registered(lib, registry, spelling):
    try:
        return "ok", type(getattr(lib.distributions, registry)(_constraint(lib, spelling))).__name__
    except NotImplementedError as error:
        return "NotImplementedError", str(error)


@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
@pytest.mark.parametrize("spelling", _CONSTRAINTS)
def test_constraint_registries_hold_torchs_entries(registry, spelling):
    # torch registers lower_cholesky and positive (semi)definite for transform_to only:
    # biject_to of them raises NotImplementedError("Cannot transform _LowerCholesky constraints")
    assert _registered(chainrule, registry, spelling) == _registered(torch, registry, spelling)


def test_transform_to_lower_cholesky_parameterises_a_mixture_as_torchs():
    raw = [[[0.3, 0.0], [-0.4, -0.2]], [[-1.0, 0.7], [0.5, 0.1]]]
    loc = [[0.0, 1.0], [-1.0, 0.5]]
    x = [[0.2, 0.3], [-1.5, 2.0], [0.0, 0.0]]
    results = []
    for lib in (torch, chainrule):
        D = lib.distributions
        raw_t = lib.tensor(raw, requires_grad=True)
        scale_tril = D.transform_to(D.constraints.lower_cholesky)(raw_t)
        gmm = D.MixtureSameFamily(D.Categorical(logits=lib.tensor([0.2, -0.1])),
                                  D.MultivariateNormal(lib.tensor(loc), scale_tril=scale_tril))
        log_prob = gmm.log_prob(lib.tensor(x))
        log_prob.sum().backward()
        results.append((scale_tril.detach().numpy(), log_prob.detach().numpy(), raw_t.grad.numpy()))
    for theirs, ours in zip(*results):
        assert ours.shape == theirs.shape
        assert abs(ours - theirs).max() < 1e-5


def _mixture(lib, mixture_logits_shape, component_loc_shape, full_covariance):
    D = lib.distributions
    logits = lib.from_numpy(np.random.default_rng(1).normal(size=mixture_logits_shape).astype(np.float32))
    loc = lib.from_numpy(np.random.default_rng(2).normal(size=component_loc_shape).astype(np.float32))
    if full_covariance:
        component = D.MultivariateNormal(loc, scale_tril=lib.eye(component_loc_shape[-1]))
    else:
        component = D.Independent(D.Normal(loc, 1.0), 1)
    return D.MixtureSameFamily(D.Categorical(logits=logits), component)


@pytest.mark.parametrize("full_covariance", [False, True])
@pytest.mark.parametrize("mixture_logits_shape, component_loc_shape, batch_shape", [
    ((3,), (3, 2), (4,)), ((3,), (3, 2), (2, 4)), ((2, 3), (2, 3, 2), (5, 2)), ((3,), (3, 2), ()),
    ((1, 3), (2, 3, 2), (4, 2)),  # a mixture that broadcasts against the components' batch
    ((3,), (2, 3, 2), (4, 2)),
])
def test_mixture_same_family_expand_as_torchs(mixture_logits_shape, component_loc_shape, batch_shape,
                                              full_covariance):
    results = []
    for lib in (torch, chainrule):
        expanded = _mixture(lib, mixture_logits_shape, component_loc_shape, full_covariance).expand(batch_shape)
        lib.manual_seed(0)
        results.append((tuple(expanded.batch_shape), tuple(expanded.event_shape),
                        tuple(expanded.mixture_distribution.batch_shape),
                        tuple(expanded.component_distribution.batch_shape),
                        expanded.log_prob(lib.zeros(2)).numpy(), expanded.sample((2,)).numpy(), expanded.mean.numpy()))
    theirs, ours = results
    assert ours[:4] == theirs[:4]
    for mine, torchs in zip(ours[4:], theirs[4:]):
        np.testing.assert_allclose(mine, torchs, rtol=1e-5, atol=1e-6)


def test_mixture_same_family_expand_reports_the_components_shape_as_torch():
    messages = []
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError) as caught:
            _mixture(lib, (2, 3), (2, 3, 2), False).expand((3,))
        messages.append(str(caught.value))
    assert messages[1] == messages[0]


@pytest.mark.parametrize("validate_args", [True, False])
def test_mixture_same_family_expand_keeps_validate_args(validate_args):
    D = chainrule.distributions
    mixture = D.MixtureSameFamily(D.Categorical(logits=chainrule.zeros(3)), D.Normal(chainrule.zeros(3), 1.0),
                                  validate_args=validate_args)
    assert mixture.expand((2,))._validate_args is validate_args
