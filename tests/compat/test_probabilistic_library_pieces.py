"""The torch.distributions corners a probabilistic-programming library (Pyro) builds on, against
torch 2.13: names it imports, a distribution that declares a dependent parameter, constraints of
its own that check with tensor ops, and the constraints' reprs it prints."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def test_sum_rightmost_lives_in_distributions_utils():
    from torch.distributions.utils import _sum_rightmost as theirs

    from chainrule.distributions.utils import _sum_rightmost as ours

    values = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for dims in (0, 1, 2):
        np.testing.assert_array_equal(ours(chainrule.tensor(values), dims).numpy(),
                                      theirs(torch.tensor(values), dims).numpy())


def test_map_location_type_alias_exists():
    from chainrule.serialization import MAP_LOCATION

    assert "str" in repr(MAP_LOCATION) and "None" in repr(MAP_LOCATION)


def _point_mass_class(lib):
    # a family written as Pyro writes Delta: its value parameter is declared dependent
    class PointMass(lib.distributions.Distribution):
        arg_constraints = {"v": lib.distributions.constraints.dependent,
                           "log_density": lib.distributions.constraints.real}
        support = lib.distributions.constraints.real

        def __init__(self, v, log_density, validate_args=None):
            self.v, self.log_density = v, log_density
            super().__init__(v.shape, validate_args=validate_args)

    return PointMass


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_validation_skips_dependent_parameters_and_checks_the_rest(lib):
    point_mass = _point_mass_class(lib)
    made = point_mass(lib.tensor([1.0, 2.0]), lib.tensor(0.5), validate_args=True)
    assert tuple(made.batch_shape) == (2,)
    with pytest.raises(ValueError, match="Expected parameter log_density"):
        point_mass(lib.tensor([1.0, 2.0]), lib.tensor(float("nan")), validate_args=True)


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_a_libraries_own_constraint_is_checked_with_the_tensor(lib):
    seen = []

    class _Sorted(lib.distributions.constraints.Constraint):
        event_dim = 1

        def check(self, value):
            seen.append(type(value))
            return (value[..., 1:] >= value[..., :-1]).all(-1)

    class SortedPoints(lib.distributions.Distribution):
        arg_constraints = {"points": _Sorted()}
        support = _Sorted()

        def __init__(self, points, validate_args=None):
            self.points = points
            super().__init__(points.shape[:-1], points.shape[-1:], validate_args=validate_args)

        def log_prob(self, value):
            self._validate_sample(value)
            return value.sum(-1)

    made = SortedPoints(lib.tensor([0.0, 1.0, 3.0]), validate_args=True)
    assert float(made.log_prob(lib.tensor([1.0, 2.0, 2.0]))) == 5.0
    with pytest.raises(ValueError, match="to be within the support"):
        made.log_prob(lib.tensor([2.0, 1.0, 3.0]))
    with pytest.raises(ValueError, match="Expected parameter points"):
        SortedPoints(lib.tensor([3.0, 1.0]), validate_args=True)
    assert seen and all(kind is lib.Tensor for kind in seen)
    assert repr(_Sorted()) == "Sorted()"


def test_constraint_reprs_match_torch():
    ours, theirs = chainrule.distributions.constraints, torch.distributions.constraints
    for name in ("boolean", "real", "simplex", "positive_definite", "lower_cholesky", "one_hot", "dependent",
                 "real_vector", "unit_interval", "positive", "nonnegative_integer"):
        assert repr(getattr(ours, name)) == repr(getattr(theirs, name)), name
    assert repr(ours.independent(ours.simplex, 1)) == repr(theirs.independent(theirs.simplex, 1))


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_get_checked_instance_is_the_expand_protocol(lib):
    normal = lib.distributions.Normal(lib.tensor([0.0, 1.0]), 1.0)
    blank = normal._get_checked_instance(lib.distributions.Normal)
    assert type(blank) is lib.distributions.Normal and blank is not normal
    given = object.__new__(lib.distributions.Normal)
    assert normal._get_checked_instance(lib.distributions.Normal, given) is given

    class Shifted(lib.distributions.Normal):
        def __init__(self, loc):
            super().__init__(loc + 1.0, 1.0)

    with pytest.raises(NotImplementedError, match="Subclass Shifted of Normal that defines a custom __init__ "
                                                  "method must also define a custom .expand"):
        Shifted(lib.tensor([0.0]))._get_checked_instance(lib.distributions.Normal)


def test_tracer_warning_is_a_warning_category_as_torchs():
    import warnings

    assert issubclass(chainrule.jit.TracerWarning, Warning)
    assert chainrule.jit.TracerWarning.__mro__[1:] == (Warning, Exception, BaseException, object)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=chainrule.jit.TracerWarning)
        warnings.warn("ignored", chainrule.jit.TracerWarning, stacklevel=1)
        warnings.warn("kept", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["kept"]


def _learnable_shift_class(lib):
    # a transform that is also a module, as Pyro's TransformModule (its flows' base class)
    class TransformModule(lib.distributions.Transform, lib.nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

        def __hash__(self):  # Transform's __eq__ leaves it unhashable; a module must hash
            return super(lib.nn.Module, self).__hash__()

    class LearnableShift(TransformModule):
        domain = codomain = lib.distributions.constraints.real
        bijective = True

        def __init__(self):
            super().__init__(cache_size=1)
            self.shift = lib.nn.Parameter(lib.tensor([0.5, -1.0]))

        def _call(self, x):
            return x + self.shift

        def _inverse(self, y):
            return y - self.shift

        def log_abs_det_jacobian(self, x, y):
            return lib.zeros_like(x)

    return LearnableShift


def test_a_transform_that_is_a_module_gets_module_init_through_transform():
    results = {}
    for name, lib in (("chainrule", chainrule), ("torch", torch)):
        shift = _learnable_shift_class(lib)()
        assert [n for n, _ in shift.named_parameters()] == ["shift"]
        flow = lib.distributions.TransformedDistribution(lib.distributions.Normal(lib.zeros(2), 1.0), [shift])
        log_prob = flow.log_prob(lib.tensor([0.2, 0.3])).sum()
        log_prob.backward()
        results[name] = (log_prob.item(), shift.shift.grad.numpy().copy(), shift._cache_size)
    assert results["chainrule"][0] == pytest.approx(results["torch"][0], rel=1e-6)
    np.testing.assert_allclose(results["chainrule"][1], results["torch"][1], rtol=1e-6)
    assert results["chainrule"][2] == results["torch"][2] == 1


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_distribution_init_is_cooperative(lib):
    class Tagged:
        def __init__(self):
            self.tagged = True

    class TaggedNormal(lib.distributions.Normal, Tagged):
        pass

    assert TaggedNormal(0.0, 1.0).tagged is True


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_cdata_names_the_tensor_object_not_its_values(lib):
    weight = lib.nn.Parameter(lib.ones(2, 2))
    assert isinstance(weight._cdata, int)
    assert weight._cdata == weight._cdata
    others = [weight.detach(), weight.view(4), weight[0], lib.ones(2, 2)]
    assert all(other._cdata != weight._cdata for other in others)
    stored = {"w": weight}
    assert stored["w"]._cdata == weight._cdata  # the identity test pyro.module makes
