"""Found by probing around the corpus programs mixture_same_family_gmm, adain_style_transfer and
restormer_mdta, each case checked against torch."""

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
