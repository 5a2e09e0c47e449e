"""Fixes found by session 31's reinforcement-learning programs (lane progAH), each checked against torch.

Probing the idioms of the td3_continuous, c51_rainbow, decision_transformer and a2c_vectorized_gae
programs: ``Categorical(logits=...)`` with masked actions (logits of ``-inf``, as invalid-action
masking writes them) had a NaN entropy, where torch clamps the logits to the dtype's least finite
value first; a NaN logit was reported against ``Real()`` where torch's constraint is
``IndependentConstraint(Real(), 1)``; ``vector_to_parameters`` (TRPO's flat parameter vectors) copied
where torch makes views, and ``Tensor.data =`` took an integer tensor for a parameter.
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

INF = float("inf")
MASKED_LOGITS = [
    [[0.0, -INF, 1.0]],
    [[-INF, 2.0, -INF, 0.5], [0.3, 0.2, -INF, -INF]],
    [[-INF, 0.0]],
    [[3.0, -1e38, -INF]],
]


def _entropy_and_gradient(lib, logits, dtype_name, one_hot):
    leaf = lib.tensor(logits, dtype=getattr(lib, dtype_name), requires_grad=True)
    family = lib.distributions.OneHotCategorical if one_hot else lib.distributions.Categorical
    entropy = family(logits=leaf).entropy()
    entropy.sum().backward()
    return entropy.detach().double().numpy(), leaf.grad.double().numpy()  # exact for every float type


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("logits", MASKED_LOGITS)
def test_entropy_of_masked_logits_is_finite_as_torch(logits, dtype_name, one_hot):
    ours, our_grad = _entropy_and_gradient(chainrule, logits, dtype_name, one_hot)
    theirs, their_grad = _entropy_and_gradient(torch, logits, dtype_name, one_hot)
    assert np.isfinite(theirs).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-6, atol=1e-7)


def test_entropy_of_zero_probabilities_and_plain_logits_unchanged():
    probs = [[0.5, 0.0, 0.5], [0.2, 0.3, 0.5]]
    ours = chainrule.distributions.Categorical(probs=chainrule.tensor(probs)).entropy()
    theirs = torch.distributions.Categorical(probs=torch.tensor(probs)).entropy()
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    logits = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    ours = chainrule.distributions.Categorical(logits=chainrule.tensor(logits)).entropy()
    theirs = torch.distributions.Categorical(logits=torch.tensor(logits)).entropy()
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_masked_logits_sample_and_log_prob_as_torch():
    # CleanRL's invalid-action masking: logits of masked actions set to -inf (or a large negative)
    logits = [[0.0, -INF, 1.0], [-INF, 0.5, 0.5]]
    ours = chainrule.distributions.Categorical(logits=chainrule.tensor(logits))
    theirs = torch.distributions.Categorical(logits=torch.tensor(logits))
    chainrule.manual_seed(0)
    torch.manual_seed(0)
    assert ours.sample((50,)).tolist() == theirs.sample((50,)).tolist()
    actions = [0, 2]
    np.testing.assert_allclose(ours.log_prob(chainrule.tensor(actions)).numpy(),
                               theirs.log_prob(torch.tensor(actions)).numpy(), rtol=1e-6)


def _constraint_error(lib):
    with pytest.raises(ValueError) as caught:
        lib.distributions.Categorical(logits=lib.tensor([0.5, float("nan")]), validate_args=True)
    return str(caught.value).split("\n")[0].replace("chainrule.", "torch.")


def test_nan_logits_are_refused_naming_torch_s_constraint():
    assert _constraint_error(chainrule) == _constraint_error(torch)
    assert repr(chainrule.distributions.Categorical.arg_constraints["logits"]) == \
        repr(torch.distributions.Categorical.arg_constraints["logits"])


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_entropy_of_masked_logits_in_half_types_as_torch(dtype_name):
    # the clamp's floor is the half type's own least finite value (-65504 for float16)
    logits = [[0.0, -INF, 1.0], [2.0, -3e4, -INF]]
    ours, our_grad = _entropy_and_gradient(chainrule, logits, dtype_name, False)
    theirs, their_grad = _entropy_and_gradient(torch, logits, dtype_name, False)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_grad, their_grad)


# TRPO-style flat parameter vectors: torch's vector_to_parameters makes each parameter a view of a
# slice of ``vec`` along its first dim (``vec[pointer:pointer + n].view_as(param).data``), so the
# parameters take ``vec``'s dtype and see later writes to it; chainrule copied (and cast) the slices
# and reshaped NumPy arrays, leaking NumPy's ValueError for a 2-d ``vec``.
def _vector_to_parameters(lib, make_vec, then=None):
    lib.manual_seed(0)
    net = lib.nn.Linear(3, 2)
    vec = make_vec(lib)
    try:
        lib.nn.utils.vector_to_parameters(vec, net.parameters())
    except Exception as error:  # noqa: BLE001 - the class and text are what is compared
        # torch has changed the parameters before the one the vector runs short for; chainrule
        # makes every view first and changes nothing (DESIGN.md: raised before anything is mutated)
        return type(error).__name__, str(error)
    if then is not None:
        then(vec)
    return str(net.weight.dtype).split(".")[-1], net.weight.tolist(), net.bias.tolist()


def _write_first(vec):
    vec[0] = 100.0


VECTOR_CASES = {
    "float32": (lambda lib: lib.arange(8.0), None),
    "shares vec": (lambda lib: lib.arange(8.0), _write_first),
    "float64 vec": (lambda lib: lib.arange(8.0, dtype=lib.float64), None),
    "2-d vec": (lambda lib: lib.arange(16.0).view(2, 8), None),
    "2-d vec that fits": (lambda lib: lib.arange(8.0).view(8, 1), None),
    "strided vec": (lambda lib: lib.arange(16.0)[::2], None),
    "short vec": (lambda lib: lib.arange(7.0), None),
    "long vec": (lambda lib: lib.arange(10.0), None),
    "int vec": (lambda lib: lib.arange(8), None),
}


@pytest.mark.parametrize("case", VECTOR_CASES)
def test_vector_to_parameters_as_torch(case):
    make_vec, then = VECTOR_CASES[case]
    assert _vector_to_parameters(chainrule, make_vec, then) == _vector_to_parameters(torch, make_vec, then)


def _set_data(lib, make_value, requires_grad):
    target = lib.ones(2, requires_grad=requires_grad)
    try:
        target.data = make_value(lib)
    except Exception as error:  # noqa: BLE001 - the class and text are what is compared
        return type(error).__name__, str(error)
    return str(target.dtype).split(".")[-1], target.requires_grad


DATA_VALUES = {
    "int64": lambda lib: lib.arange(2),
    "bool": lambda lib: lib.tensor([True, False]),
    "complex64": lambda lib: lib.ones(2, dtype=lib.complex64),
    "float64": lambda lib: lib.ones(2, dtype=lib.float64),
    "a number": lambda lib: 3,
}


@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("value", DATA_VALUES)
def test_setting_data_checks_as_torch(value, requires_grad):
    assert _set_data(chainrule, DATA_VALUES[value], requires_grad) == _set_data(torch, DATA_VALUES[value], requires_grad)
