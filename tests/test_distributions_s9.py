"""Distributions on hostile parameters and values, against torch (the ctorfuzz backlog's roots):
non-number parameters, parameters that are properties (Chi2's df, HalfNormal's scale) validated,
value shapes checked by ``_validate_sample``, and log_prob's dtype and NaN/inf where torch's formula
gives them; plus the DataLoader's refusal of indices that are no integers or out of range."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(make):
    try:
        return make()
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return error


@pytest.mark.parametrize("make", [
    lambda lib: lib.distributions.Normal(None, 1.0, validate_args=False),
    lambda lib: lib.distributions.Gamma(2.0, "a", validate_args=False),
    lambda lib: lib.distributions.Chi2(None),
    lambda lib: lib.distributions.Chi2(lib.tensor(-1.0), validate_args=True),
    lambda lib: lib.distributions.HalfNormal(lib.tensor(-1.0), validate_args=True),
    lambda lib: lib.distributions.HalfCauchy(lib.tensor(0.0), validate_args=True),
    lambda lib: lib.distributions.StudentT(lib.tensor(-1.0), validate_args=False),  # its Chi2 validates
    lambda lib: lib.distributions.OneHotCategorical(lib.tensor([[-1.0, 2.0]]), validate_args=False),
])
def test_hostile_parameters_raise_torchs_class(make):
    theirs, ours = _outcome(lambda: make(torch)), _outcome(lambda: make(chainrule))
    assert isinstance(theirs, Exception) and type(ours) is type(theirs), (theirs, ours)


@pytest.mark.parametrize("make, value", [
    (lambda lib: lib.distributions.Exponential(lib.tensor([1.0, 2.0, 3.0]), validate_args=True), [0.5, 0.5]),
    (lambda lib: lib.distributions.Dirichlet(lib.tensor([1.0, 2.0, 3.0, 4.0]), validate_args=True),
     [0.2, 0.3, 0.5]),
])
def test_a_value_of_the_wrong_shape_raises_torchs_value_error(make, value):
    for lib in (torch, chainrule):
        with pytest.raises(ValueError, match="event_shape"):
            make(lib).log_prob(lib.tensor(value))


@pytest.mark.parametrize("make, value", [
    (lambda lib: lib.distributions.Uniform(lib.tensor([1.0, 0.0]), lib.tensor([0.5, 1.0]), validate_args=False),
     [0.7, 0.5]),
    (lambda lib: lib.distributions.HalfNormal(lib.tensor([1.0, 2.0]), validate_args=False), [math.nan, 0.5]),
    (lambda lib: lib.distributions.HalfCauchy(2.0, validate_args=False), [0.5, -1.0]),
    (lambda lib: lib.distributions.Chi2(3.0, validate_args=False), [0.5, 2.0]),
])
def test_log_prob_gives_torchs_dtype_nan_and_inf(make, value):
    theirs = make(torch).log_prob(torch.tensor(value, dtype=torch.float64))
    ours = make(chainrule).log_prob(chainrule.tensor(value, dtype=chainrule.float64))
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_probs_that_are_no_tensor_raise_a_type_error_naming_them():
    # torch fails on the float's .dim() (AttributeError); chainrule says what it wanted
    with pytest.raises(TypeError, match="Categorical.*`probs` must be a Tensor"):
        chainrule.distributions.Categorical(probs=0.5)
    with pytest.raises(TypeError, match="Dirichlet.*`concentration` must be a Tensor"):
        chainrule.distributions.Dirichlet(None)


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence")  # torch's, indexing by the string
@pytest.mark.parametrize("sampler, expected", [("foo", TypeError), ([0, 11], IndexError)])
def test_a_dataloader_sampler_of_bad_indices_fails_as_torchs_indexing(sampler, expected):
    messages = []
    for lib in (torch, chainrule):
        dataset = lib.utils.data.TensorDataset(lib.arange(20.0).reshape(10, 2))
        with pytest.raises(expected) as raised:
            list(lib.utils.data.DataLoader(dataset, sampler=sampler))
        messages.append(str(raised.value))
    assert "axis" not in messages[1] and "numpy" not in messages[1]


def test_a_dataloader_generator_that_is_no_generator_raises_type_error_naming_it():
    dataset = chainrule.utils.data.TensorDataset(chainrule.zeros(4, 2))
    with pytest.raises(TypeError, match="DataLoader: generator"):
        list(chainrule.utils.data.DataLoader(dataset, generator=3))
