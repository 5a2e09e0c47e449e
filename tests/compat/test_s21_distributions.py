"""Session 21's torch.distributions trial (tools/torch_distributions_trial.py): the differences it
found, each fixed and pinned here against torch."""

import math

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _both(build):
    """``build(lib)`` on chainrule and on torch."""
    return build(cr), build(torch)


def _assert_close(ours, theirs, rtol=1e-6, atol=1e-8):
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)


def _t(lib, values):
    return lib.tensor(values, dtype=lib.float64)


# ---- KL between families ----------------------------------------------------------------------

_KL_FAMILIES = {
    "Bernoulli": lambda L, v: L.distributions.Bernoulli(probs=_t(L, v([0.2, 0.5, 0.9]))),
    "Binomial": lambda L, v: L.distributions.Binomial(10, probs=_t(L, v([0.2, 0.5, 0.8]))),
    "Poisson": lambda L, v: L.distributions.Poisson(_t(L, v([0.5, 1.0, 3.0]))),
    "Beta": lambda L, v: L.distributions.Beta(_t(L, v([0.5, 2.0, 3.0])), _t(L, v([1.5, 1.0, 4.0]))),
    "Exponential": lambda L, v: L.distributions.Exponential(_t(L, v([0.5, 1.0, 2.0]))),
    "Gamma": lambda L, v: L.distributions.Gamma(_t(L, v([0.5, 2.0, 3.0])), _t(L, v([1.0, 2.0, 0.5]))),
    "Gumbel": lambda L, v: L.distributions.Gumbel(_t(L, v([0.0, 1.0, -1.0])), _t(L, v([1.0, 2.0, 0.5]))),
    "Laplace": lambda L, v: L.distributions.Laplace(_t(L, v([0.0, 1.0, -1.0])), _t(L, v([1.0, 2.0, 0.5]))),
    "Normal": lambda L, v: L.distributions.Normal(_t(L, v([0.0, 1.0, -2.0])), _t(L, v([1.0, 0.5, 2.0]))),
    # low < 0 in one entry (infinite against a positive q), an interval inside [0, 1] in another
    "Uniform": lambda L, v: L.distributions.Uniform(_t(L, v([0.1, -1.0, 0.2])), _t(L, v([0.9, 2.0, 3.0]))),
}

_CROSS_PAIRS = [("Bernoulli", "Poisson"), ("Binomial", "Binomial"), ("Poisson", "Bernoulli"),
                ("Poisson", "Binomial")] + [
    (p, q) for p in ("Beta", "Exponential", "Gamma", "Gumbel", "Laplace", "Normal", "Uniform")
    for q in ("Beta", "Exponential", "Gamma", "Gumbel", "Normal", "Uniform") if p != q
    and (p, q) not in {("Beta", "Gumbel"), ("Laplace", "Gumbel")}] + [("Normal", "Laplace"), ("Gumbel", "Gumbel")]


@pytest.mark.parametrize("pair", _CROSS_PAIRS, ids="-".join)
def test_kl_divergence_between_families_is_torchs(pair):
    # torch registers closed forms (or ∞ where p has mass outside q's support) for these pairs;
    # chainrule raised NotImplementedError for 43 of them
    p_name, q_name = pair

    def kl(lib):
        p = _KL_FAMILIES[p_name](lib, lambda values: values)
        q = _KL_FAMILIES[q_name](lib, lambda values: values[::-1])
        return lib.distributions.kl_divergence(p, q)

    ours, theirs = _both(kl)
    _assert_close(ours, theirs)


def test_kl_between_binomials_with_more_trials_in_q_is_refused_as_torch():
    def kl(lib):
        dist = lib.distributions
        return dist.kl_divergence(dist.Binomial(5, probs=_t(lib, [0.5])), dist.Binomial(10, probs=_t(lib, [0.5])))

    with pytest.raises(NotImplementedError, match="q.total_count > p.total_count"):
        kl(cr)
    with pytest.raises(NotImplementedError, match="q.total_count > p.total_count"):
        kl(torch)


# ---- transforms -------------------------------------------------------------------------------

def test_affine_log_det_with_a_number_scale_counts_every_event_element():
    # log|det| of y = 0.5 + 3 x over event_dim=1 rows of 3 is 3 log 3; chainrule summed one log 3
    def log_det(lib):
        x = _t(lib, [[0.3, -1.0, 1.0], [2.0, 1.0, 0.0]])
        transform = lib.distributions.AffineTransform(0.5, 3.0, event_dim=1)
        return transform.log_abs_det_jacobian(x, transform(x))

    ours, theirs = _both(log_det)
    _assert_close(ours, theirs)
    _assert_close(ours, torch.full((2,), 3 * math.log(3.0), dtype=torch.float64))


def test_identity_transform_log_det_has_the_shape_of_x():
    def log_dets(lib):
        x = _t(lib, [[1.0, 2.0], [3.0, 4.0]])
        return [transform.log_abs_det_jacobian(x, x) for transform in (
            lib.distributions.identity_transform, lib.distributions.ComposeTransform([]))]

    for ours, theirs in zip(*_both(log_dets)):
        _assert_close(ours, theirs)
        assert tuple(ours.shape) == (2, 2)


def test_signs_of_number_scales_are_ints_and_the_inverse_repr_names_the_transform():
    D = cr.distributions
    signs = [D.AffineTransform(0.0, -2.0).sign, D.AffineTransform(1.0, 2.0).sign,
             D.ComposeTransform([D.AffineTransform(1.0, 2.0), D.ExpTransform()]).sign,
             D.biject_to(D.constraints.interval(-1.0, 3.0)).sign]
    assert signs == [-1, 1, 1, 1] and all(type(sign) is int for sign in signs)
    assert repr(D.ExpTransform().inv) == repr(torch.distributions.ExpTransform().inv) == \
        "_InverseTransform(ExpTransform())"
    exponent = D.PowerTransform(2.5).exponent  # a number becomes a tensor, as torch's
    assert isinstance(exponent, cr.Tensor) and exponent.item() == 2.5


def test_affine_and_power_transforms_compare_by_value():
    D = cr.distributions
    assert D.AffineTransform(cr.tensor([1.0, 2.0]), 3.0) == D.AffineTransform(cr.tensor([1.0, 2.0]), 3.0)
    assert D.AffineTransform(1.0, 3.0) != D.AffineTransform(1.0, cr.tensor([3.0, 4.0]))
    assert D.PowerTransform(cr.tensor(2.0)) == D.PowerTransform(2.0) != D.PowerTransform(-1.0)


@pytest.mark.parametrize("family", ["Weibull", "Kumaraswamy", "InverseGamma", "Gumbel"])
def test_kl_of_transformed_families_with_equal_transforms_is_the_base_kl(family):
    # torch compares the transforms by value: equal parameters (and InverseGamma's fixed power
    # transform, whatever the parameters) give KL of the base distributions; chainrule compared
    # the transform objects and raised NotImplementedError
    def kl(lib):
        D = lib.distributions
        first, second = _t(lib, [1.0, 2.0, 0.5]), _t(lib, [0.5, 3.0, 1.0])
        p = getattr(D, family)(first, second)
        q = getattr(D, family)(first.clone(), (second if family != "InverseGamma" else first).clone())
        return D.kl_divergence(p, q)

    ours, theirs = _both(kl)
    _assert_close(ours, theirs)


def test_transform_to_positive_is_exp_then_a_shift_as_torch():
    # torch's greater_than registration covers positive and nonnegative too: exp, then x + 0
    for name in ("positive", "nonnegative"):
        ours = cr.distributions.transform_to(getattr(cr.distributions.constraints, name))
        theirs = torch.distributions.transform_to(getattr(torch.distributions.constraints, name))
        assert repr(ours) == repr(theirs)
        assert repr(ours.codomain) == repr(theirs.codomain) == "Real()"
        _assert_close(ours(_t(cr, [-1.0, 2.0])), theirs(_t(torch, [-1.0, 2.0])))


# ---- properties and methods chainrule lacked --------------------------------------------------

def _nan_equal(ours, theirs):
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())


def test_bernoulli_mode_categorical_variance_and_uniform_mode_are_torchs():
    # torch answers NaN where no single value is the answer (p = 1/2, class labels, a flat density)
    def answers(lib):
        D = lib.distributions
        return [D.Bernoulli(probs=_t(lib, [0.2, 0.5, 0.9])).mode,
                D.Categorical(probs=_t(lib, [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])).variance,
                D.Categorical(logits=_t(lib, [0.5, -1.0])).stddev,
                D.Uniform(_t(lib, [0.0, -1.0]), _t(lib, [1.0, 2.0])).mode]

    for ours, theirs in zip(*_both(answers)):
        _nan_equal(ours, theirs)
    assert np.isnan(cr.distributions.Bernoulli(probs=cr.tensor([0.5])).mode.item())


@pytest.mark.parametrize("total_count", [1, 4, 10])
def test_multinomial_entropy_and_its_gradient_are_torchs(total_count):
    # chainrule raised NotImplementedError; torch sums n H(Categorical) - log n! and E[log x_i!]
    def entropy_and_grad(lib):
        logits = _t(lib, [[1.0, 2.0, -1.0, 0.0], [0.0, 0.0, 3.0, 1.0]]).requires_grad_()
        entropy = lib.distributions.Multinomial(total_count, logits=logits).entropy()
        entropy.sum().backward()
        return entropy, logits.grad

    for ours, theirs in zip(*_both(entropy_and_grad)):
        _assert_close(ours, theirs)


@pytest.mark.parametrize("family", ["HalfNormal", "HalfCauchy"])
def test_half_families_invert_their_cdf(family):
    # chainrule's icdf went through the absolute value's sign (none): NotImplementedError
    def icdf(lib):
        dist = getattr(lib.distributions, family)(_t(lib, [1.0, 2.0]))
        return dist.icdf(_t(lib, [0.1, 0.75])), dist.cdf(dist.icdf(_t(lib, [0.3, 0.9])))

    (ours, round_trip), (theirs, _) = _both(icdf)
    _assert_close(ours, theirs)
    _assert_close(round_trip, torch.tensor([0.3, 0.9], dtype=torch.float64))


def test_independent_support_reads_the_reinterpreted_dims_as_event_dims():
    def supports(lib):
        D = lib.distributions
        normal = D.Independent(D.Normal(_t(lib, [[0.0, 1.0]]), _t(lib, [[1.0, 1.0]])), 1)
        bernoulli = D.Independent(D.Bernoulli(probs=_t(lib, [[0.1, 0.9], [0.5, 0.5]])), 2)
        unchanged = D.Independent(D.Normal(_t(lib, [0.0]), _t(lib, [1.0])), 0)
        return normal.support, bernoulli.support, unchanged.support

    for ours, theirs in zip(*_both(supports)):
        assert repr(ours) == repr(theirs)
    bernoulli_support = supports(cr)[1]
    assert bernoulli_support.event_dim == 2
    # one answer per (empty) batch: all four entries must be 0 or 1
    assert bernoulli_support.check(cr.tensor([[1.0, 0.0], [1.0, 0.5]])).tolist() is False


# ---- constraints ------------------------------------------------------------------------------

def _constraint_outcome(lib, build, values, dtype=None):
    constraint = build(lib.distributions.constraints)
    try:
        return constraint.check(lib.tensor(values, dtype=dtype))
    except Exception as exc:  # the class is the answer compared
        return type(exc)


@pytest.mark.parametrize("build, values, dtype", [
    # chainrule leaked NumPy's ValueError and AxisError, or IndexError, where torch raises its own
    (lambda C: C.lower_cholesky, [1.0, 2.0], None),
    (lambda C: C.lower_triangular, [1.0, 2.0], None),
    (lambda C: C.corr_cholesky, [1.0, 2.0], None),
    (lambda C: C.corr_cholesky, [[1, 0], [0, 1]], "int64"),
    (lambda C: C.cat([C.real, C.positive], 1, [1, 2]), [1.0, 2.0], None),
    (lambda C: C.cat([C.real, C.positive], 1, [1, 2]), [[1.0, 2.0], [3.0, 4.0]], None),
    (lambda C: C.stack([C.real, C.positive, C.unit_interval], 1), [1.0, 2.0], None),
], ids=["lower_cholesky_vector", "lower_triangular_vector", "corr_cholesky_vector", "corr_cholesky_int",
        "cat_dim", "cat_lengths", "stack_dim"])
def test_constraint_checks_refuse_as_torch(build, values, dtype):
    ours = _constraint_outcome(cr, build, values, dtype and getattr(cr, dtype))
    theirs = _constraint_outcome(torch, build, values, dtype and getattr(torch, dtype))
    assert isinstance(theirs, type) and ours is theirs


def test_stack_constraint_checks_as_many_slices_as_there_are_constraints_and_slices():
    # three constraints, two slices: torch checks the two (zip), chainrule indexed a third
    def check(lib):
        C = lib.distributions.constraints
        return C.stack([C.real, C.positive, C.unit_interval], 1).check(lib.tensor([[1.0, -2.0], [0.5, 3.0]]))

    ours, theirs = _both(check)
    assert ours.tolist() == theirs.tolist() == [[True, False], [True, True]]


# ---- seeded samples ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_von_mises_samples_are_torchs(seed, dtype):
    # torch's rejection loop redraws every element each round and an element accepted again takes
    # the new angle; chainrule kept the first acceptance, so its angles left torch's stream
    def draw(lib):
        lib.manual_seed(seed)
        dist = lib.distributions.VonMises(lib.tensor([0.0, 1.0, -2.0, 3.0], dtype=getattr(lib, dtype)),
                                          lib.tensor([0.5, 4.0, 1e-4, 50.0], dtype=getattr(lib, dtype)))
        return dist.sample((25,)), lib.rand(2)

    for ours, theirs in zip(*_both(draw)):
        assert str(ours.dtype).rpartition(".")[2] == str(theirs.dtype).rpartition(".")[2]
        # the same draws; float64 angles may part in the last bit (NumPy's cos/acos and torch's)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wishart_bartlett_factors_draw_torchs_normals(dtype):
    # torch draws one normal per entry below the diagonal, row by row; chainrule drew a whole
    # matrix of normals and kept its lower triangle, which left torch's stream
    def draw(lib):
        lib.manual_seed(3)
        dist = lib.distributions.Wishart(lib.tensor([4.0, 6.5], dtype=getattr(lib, dtype)),
                                         scale_tril=lib.tensor([[1.0, 0.0, 0.0], [0.3, 0.7, 0.0], [0.1, -0.2, 2.0]],
                                                               dtype=getattr(lib, dtype)))
        return dist._bartlett_sampling((5,)), lib.rand(2)

    for ours, theirs in zip(*_both(draw)):
        _assert_close(ours, theirs, rtol=1e-5 if dtype == "float32" else 1e-12, atol=0)
