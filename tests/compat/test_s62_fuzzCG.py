"""Regression cases the distributions fuzzer (tests/fuzz/test_distributions.py) found, each against torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(build):
    """``build(lib)`` run on torch and on chainrule: (chainrule's, torch's) result or raised error."""
    out = []
    for lib in (chainrule, torch):
        try:
            out.append(build(lib))
        except Exception as error:  # noqa: BLE001 (the error is the observable compared)
            out.append(error)
    return out


def test_independent_enumerates_its_base_support_when_no_dim_is_reinterpreted():
    def build(lib):
        base = lib.distributions.Bernoulli(probs=lib.tensor([[0.2, 0.7], [0.5, 0.1]]))
        flat = lib.distributions.Independent(base, 0)
        return flat.has_enumerate_support, flat.enumerate_support(False).numpy()

    (mine_flag, mine), (theirs_flag, theirs) = _both(build)
    assert mine_flag is theirs_flag is True
    np.testing.assert_array_equal(mine, theirs)


def test_independent_refuses_to_enumerate_a_cartesian_product():
    def build(lib):
        d = lib.distributions.Independent(lib.distributions.Bernoulli(probs=lib.tensor([0.2, 0.7])), 1)
        assert d.has_enumerate_support is False
        return d.enumerate_support()

    mine, theirs = _both(build)
    assert type(mine) is type(theirs) is NotImplementedError
    assert str(mine) == str(theirs)


def test_relaxed_bernoulli_validates_its_base_even_unvalidated():
    # torch builds the LogitRelaxedBernoulli base with the default validation: probs 1.5 raises anyway
    mine, theirs = _both(lambda lib: lib.distributions.RelaxedBernoulli(
        lib.tensor(0.5), probs=lib.tensor([1.5]), validate_args=False))
    assert type(mine) is type(theirs) is ValueError
    assert "Expected parameter probs" in str(mine) and "LogitRelaxedBernoulli" in str(mine)


@pytest.mark.parametrize("concentration", [[0.3, 0.5, 0.9], [0.9, 0.2, 0.5], [0.5, 2.0, 0.1]])
def test_dirichlet_and_beta_mode_below_one_is_torchs_first_corner(concentration):
    mine, theirs = _both(lambda lib: lib.distributions.Dirichlet(lib.tensor(concentration)).mode.numpy())
    np.testing.assert_array_equal(mine, theirs)
    mine, theirs = _both(lambda lib: lib.distributions.Beta(lib.tensor(concentration[:2]),
                                                            lib.tensor(concentration[1:])).mode.numpy())
    np.testing.assert_array_equal(mine, theirs)


def test_chi2_expand_expands_its_moments_and_samples():
    def build(lib):
        lib.manual_seed(4)
        d = lib.distributions.Chi2(lib.tensor([1.0, 2.0, 3.0])).expand((2, 3))
        return tuple(d.mean.shape), tuple(d.variance.shape), d.sample((2,)).numpy()

    mine, theirs = _both(build)
    assert mine[:2] == theirs[:2] == ((2, 3), (2, 3))
    np.testing.assert_allclose(mine[2], theirs[2], rtol=1e-5)


@pytest.mark.parametrize("low, high", [([0.0, 1.0], [1.0, math.nan]), ([0.0, 1.0], [1.0, 0.5]),
                                       ([math.nan, 1.0], [1.0, 2.0])])
def test_uniform_reports_an_invalid_pair_as_lows_constraint(low, high):
    mine, theirs = _both(lambda lib: lib.distributions.Uniform(lib.tensor(low), lib.tensor(high)))
    assert type(mine) is type(theirs) is ValueError
    assert "Expected parameter low" in str(theirs) and "LessThan(upper_bound=" in str(theirs)
    assert "Expected parameter low" in str(mine) and "LessThan(upper_bound=" in str(mine)


def test_uniform_arg_constraints_bound_each_parameter_by_the_other():
    mine, theirs = _both(lambda lib: {name: type(c).__name__ for name, c in
                                      lib.distributions.Uniform(lib.tensor(0.0), lib.tensor(1.0)).arg_constraints.items()})
    assert mine == theirs


def test_uniform_support_is_torchs_interval():
    mine, theirs = _both(lambda lib: (type(lib.distributions.Uniform(lib.tensor([0.0, 1.0]), 2.0).support).__name__,
                                      repr(lib.distributions.Uniform(lib.tensor([0.0, 1.0]), 2.0).support)))
    assert mine == theirs


def test_transformed_cdf_checks_the_base_support_first():
    def build(lib):
        d = lib.distributions.RelaxedOneHotCategorical(lib.tensor(0.5), logits=lib.tensor([0.1, 0.2, 0.3]),
                                                       validate_args=True)
        return d.cdf(lib.tensor([[-1.0, 0.5, 2.0]]))

    mine, theirs = _both(build)
    assert type(mine) is type(theirs) is ValueError
    assert "Expected value argument" in str(mine)


def test_categorical_support_is_torchs_integer_interval():
    def build(lib):
        d = lib.distributions.Categorical(probs=lib.tensor([[0.2, 0.8], [0.5, 0.5]]))
        return type(d.support).__name__, repr(d.support), d.support.check(lib.tensor([1.0, 1.5])).tolist()

    mine, theirs = _both(build)
    assert mine == theirs


def test_binomial_entropy_of_inhomogeneous_total_count_names_entropy():
    mine, theirs = _both(lambda lib: lib.distributions.Binomial(lib.tensor([2.0, 3.0]), lib.tensor(0.3)).entropy())
    assert type(mine) is type(theirs) is NotImplementedError
    assert str(mine) == str(theirs)


@pytest.mark.parametrize("probs", [[1.5, 0.2], [math.nan], [-0.1]])
def test_unvalidated_bernoulli_sample_refuses_probabilities_outside_0_1(probs):
    def build(lib):
        base = lib.distributions.Bernoulli(probs=lib.tensor(probs), validate_args=False)
        return lib.distributions.Independent(base, 1).sample((3,))

    mine, theirs = _both(build)
    assert type(mine) is type(theirs) is RuntimeError
    assert str(mine) == str(theirs)


@pytest.mark.parametrize("validate_args", [None, False])
def test_multinomial_refuses_a_negative_total_count_through_its_binomial(validate_args):
    mine, theirs = _both(lambda lib: lib.distributions.Multinomial(-1, logits=lib.tensor([[0.1, 0.5]]),
                                                                   validate_args=validate_args))
    assert type(mine) is type(theirs) is ValueError
    assert "Expected parameter total_count" in str(mine) and "IntegerGreaterThan(lower_bound=0)" in str(mine)


def test_multinomial_expand_keeps_sampling_and_log_prob_as_torchs():
    def build(lib):
        lib.manual_seed(2)
        d = lib.distributions.Multinomial(4, probs=lib.tensor([0.2, 0.3, 0.5])).expand((2,))
        sample = d.sample()
        return sample.numpy(), d.log_prob(sample).numpy()

    mine, theirs = _both(build)
    np.testing.assert_array_equal(mine[0], theirs[0])
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-6)


@pytest.mark.parametrize("family", ["Normal", "LogNormal", "LogisticNormal"])
@pytest.mark.parametrize("scale", [[1.0, -1.0], [math.nan, 1.0]])
def test_unvalidated_normal_sample_refuses_a_negative_or_nan_scale(family, scale):
    def build(lib):
        d = getattr(lib.distributions, family)(lib.zeros(2), lib.tensor(scale), validate_args=False)
        return d.sample((2,))

    mine, theirs = _both(build)
    assert type(mine) is type(theirs) is RuntimeError
    assert str(mine) == str(theirs)


def test_normal_sample_still_draws_torchs_numbers():
    def build(lib):
        lib.manual_seed(5)
        return lib.distributions.Normal(lib.tensor([0.0, 1.0]), lib.tensor([1.0, 0.5])).sample((3,)).numpy()

    mine, theirs = _both(build)
    np.testing.assert_allclose(mine, theirs, rtol=1e-6)


def test_geometric_probs_of_zero_is_refused_in_torchs_words():
    mine, theirs = _both(lambda lib: lib.distributions.Geometric(lib.tensor([[0.0, 0.5], [0.3, 0.0]])))
    assert type(mine) is type(theirs) is ValueError
    assert str(mine).replace("chainrule", "torch") == str(theirs)
