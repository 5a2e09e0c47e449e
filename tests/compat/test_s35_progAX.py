"""What the programs of lane progAX (PGD/TRADES, NALU, Relation Networks) found, each checked against torch.

1. The in-place samplers' float arguments (uniform_'s from/to, normal_'s mean/std, exponential_,
   cauchy_, log_normal_, geometric_) are read as torch's parser reads a double: a number or a 0-d
   tensor that does not require grad. A one-element tensor with dimensions, as locuslab's
   ``uniform_(-epsilon, epsilon)`` with a (1, 1, 1) epsilon, or a tensor that requires grad, is
   torch's TypeError naming the argument (and its position when given positionally); chainrule drew
   from it, or failed in NumPy's words.
2. random_'s bounds are read as torch's parser reads an int: a Python or NumPy integer, or a 0-d
   integer tensor. A float, a bool, a 0-d float or bool tensor or a one-element tensor with
   dimensions is torch's "invalid combination of arguments" TypeError (with, for two positional
   bounds, the line marking their types); chainrule truncated it and drew.
3. randint_like's ``(input, Tensor high)`` overload takes any 0-d CPU tensor as ``high`` (its value
   truncated: a float, a bool, one that requires grad) and refuses one with dimensions by
   "high must be a scalar tensor and on CPU"; chainrule took only integer tensors, of any one element.
4. The functional ops whose float argument goes through the same parse (pad's value, the norms' eps
   and momentum, some losses' margin or eps) refuse a one-element tensor, one that requires grad or
   a Fraction as torch does; before 1. they took it. Their messages give torch's "(position N)",
   the argument's position in the torch.* function nn.functional passes it on to (lane mendH).
"""

from __future__ import annotations

import fractions

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def outcome(case, library):
    """``case(library)``'s values as a list, or the exception's type and message."""
    try:
        return ("ok", case(library).tolist())
    except Exception as error:  # noqa: BLE001 - the type and message are what is compared
        return (type(error).__name__, str(error))


_SAMPLERS = {
    "uniform_": lambda t, v: t.uniform_(v, 1.5),
    "uniform_ to": lambda t, v: t.uniform_(-1.5, v),
    "uniform_ from=": lambda t, v: t.uniform_(**{"from": v}),
    "normal_": lambda t, v: t.normal_(v, 1.0),
    "normal_ std=": lambda t, v: t.normal_(std=v),
    "exponential_": lambda t, v: t.exponential_(v),
    "exponential_ lambd=": lambda t, v: t.exponential_(lambd=v),
    "cauchy_": lambda t, v: t.cauchy_(v, 1.0),
    "log_normal_ std": lambda t, v: t.log_normal_(0.0, v),
    "geometric_": lambda t, v: t.geometric_(v),
}

_ARGUMENTS = {
    "0-d tensor": lambda lib: lib.tensor(0.5),
    "0-d int tensor": lambda lib: lib.tensor(1),
    "(1, 1, 1) tensor": lambda lib: lib.full((1, 1, 1), 0.5),
    "(1,) tensor": lambda lib: lib.tensor([0.5]),
    "0-d tensor requiring grad": lambda lib: lib.tensor(0.5, requires_grad=True),
    "bool": lambda lib: True,
    "numpy float32": lambda lib: np.float32(0.5),
    "numpy 0-d array": lambda lib: np.array(0.5),
    "str": lambda lib: "0.5",
    "None": lambda lib: None,
    "complex": lambda lib: 0.5j,
}


@pytest.mark.parametrize("argument", list(_ARGUMENTS))
@pytest.mark.parametrize("sampler", list(_SAMPLERS))
def test_sampler_float_arguments_are_parsed_as_torch_parses_a_double(sampler, argument):
    def case(library):
        library.manual_seed(0)
        return _SAMPLERS[sampler](library.zeros(4), _ARGUMENTS[argument](library))

    ours, theirs = outcome(case, chainrule), outcome(case, torch)
    if theirs[0] == "ok" and ours[0] == "ok":  # the same stream: the same draws
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    else:
        assert ours == theirs


def test_locuslab_per_channel_epsilon_start_is_refused_then_drawn_per_channel():
    def refused(library):
        epsilon = library.full((3, 1, 1), 0.1)
        return library.zeros(2, 3, 4, 4).uniform_(-epsilon, epsilon)

    assert outcome(refused, chainrule) == outcome(refused, torch)

    def per_channel(library):
        library.manual_seed(3)
        epsilon = library.tensor([0.1, 0.2, 0.3]).view(3, 1, 1)
        delta = library.zeros(2, 3, 4, 4)
        for j in range(len(epsilon)):
            delta[:, j, :, :].uniform_(-epsilon[j][0][0].item(), epsilon[j][0][0].item())
        return delta

    np.testing.assert_allclose(per_channel(chainrule).tolist(), per_channel(torch).tolist(), rtol=1e-6)


_BOUNDS = {
    "int": lambda lib: 3,
    "bool": lambda lib: True,
    "float": lambda lib: 2.0,
    "0-d int tensor": lambda lib: lib.tensor(3),
    "0-d uint8 tensor": lambda lib: lib.tensor(3, dtype=lib.uint8),
    "0-d float tensor": lambda lib: lib.tensor(3.0),
    "0-d bool tensor": lambda lib: lib.tensor(True),
    "(1,) int tensor": lambda lib: lib.tensor([3]),
    "numpy int64": lambda lib: np.int64(3),
    "numpy float64": lambda lib: np.float64(3.0),
}

_RANDOM_CALLS = {
    "random_(to)": lambda t, v: t.random_(v),
    "random_(from, 10)": lambda t, v: t.random_(v, 10),
    "random_(0, to)": lambda t, v: t.random_(0, v),
    "random_(from=0, to=)": lambda t, v: t.random_(**{"from": 0, "to": v}),
    "random_(from, None)": lambda t, v: t.random_(v, None),
}


@pytest.mark.parametrize("bound", list(_BOUNDS))
@pytest.mark.parametrize("call", list(_RANDOM_CALLS))
def test_random_bounds_are_parsed_as_torch_parses_an_int(call, bound):
    def case(library):
        library.manual_seed(0)
        return _RANDOM_CALLS[call](library.zeros(4), _BOUNDS[bound](library))

    assert outcome(case, chainrule) == outcome(case, torch)


_TENSOR_HIGHS = {
    "0-d float": lambda lib: lib.tensor(5.0),
    "0-d float 5.9": lambda lib: lib.tensor(5.9),
    "0-d int": lambda lib: lib.tensor(5),
    "0-d bool": lambda lib: lib.tensor(True),
    "0-d requiring grad": lambda lib: lib.tensor(5.0, requires_grad=True),
    "0-d negative": lambda lib: lib.tensor(-1),
    "(1,) int": lambda lib: lib.tensor([5]),
    "(2,) int": lambda lib: lib.tensor([5, 6]),
}


@pytest.mark.parametrize("by_keyword", [False, True])
@pytest.mark.parametrize("high", list(_TENSOR_HIGHS))
def test_randint_like_takes_a_scalar_tensor_high_as_torch(high, by_keyword):
    def case(library):
        library.manual_seed(0)
        value = _TENSOR_HIGHS[high](library)
        return library.randint_like(library.zeros(2, 3), high=value) if by_keyword \
            else library.randint_like(library.zeros(2, 3), value)

    assert outcome(case, chainrule) == outcome(case, torch)


def test_randint_like_with_two_bounds_still_reads_a_0d_integer_tensor_as_an_int():
    def case(library):
        library.manual_seed(0)
        return library.randint_like(library.zeros(5), library.tensor(1), library.tensor(6))

    assert outcome(case, chainrule) == outcome(case, torch)


_FLOAT_ARGUMENT_CALLS = {
    "pad value": lambda lib, v: lib.nn.functional.pad(lib.ones(2, 3), (1, 1), value=v),
    "batch_norm eps": lambda lib, v: lib.nn.functional.batch_norm(lib.ones(2, 3, 4), None, None, training=True, eps=v),
    "batch_norm momentum": lambda lib, v: lib.nn.functional.batch_norm(
        lib.ones(2, 3, 4), lib.zeros(3), lib.ones(3), training=True, momentum=v),
    "layer_norm eps": lambda lib, v: lib.nn.functional.layer_norm(lib.ones(2, 4), (4,), eps=v),
    "group_norm eps": lambda lib, v: lib.nn.functional.group_norm(lib.ones(2, 3, 4), 3, eps=v),
    "instance_norm eps": lambda lib, v: lib.nn.functional.instance_norm(lib.ones(2, 3, 4), eps=v),
    "poisson_nll_loss eps": lambda lib, v: lib.nn.functional.poisson_nll_loss(lib.ones(3), lib.ones(3), eps=v),
    "hinge_embedding_loss margin": lambda lib, v: lib.nn.functional.hinge_embedding_loss(lib.ones(3), lib.ones(3), margin=v),
    "cosine_embedding_loss margin": lambda lib, v: lib.nn.functional.cosine_embedding_loss(
        lib.ones(2, 3), lib.ones(2, 3), lib.ones(2), margin=v),
}

_FLOAT_VALUES = {
    "0-d tensor": lambda lib: lib.tensor(0.5),
    "(1,) tensor": lambda lib: lib.tensor([0.5]),
    "0-d tensor requiring grad": lambda lib: lib.tensor(0.5, requires_grad=True),
    "numpy float64": lambda lib: np.float64(0.5),
    "Fraction": lambda lib: fractions.Fraction(1, 2),
}


@pytest.mark.parametrize("value", list(_FLOAT_VALUES))
@pytest.mark.parametrize("call", list(_FLOAT_ARGUMENT_CALLS))
def test_functional_float_arguments_refuse_what_torch_refuses(call, value):
    def case(library):
        return _FLOAT_ARGUMENT_CALLS[call](library, _FLOAT_VALUES[value](library))

    ours, theirs = outcome(case, chainrule), outcome(case, torch)
    if theirs[0] == "ok":
        assert ours[0] == "ok"
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)
    else:
        assert ours == theirs
