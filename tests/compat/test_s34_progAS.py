"""Session 34, lane progAS: what the CPC, GFlowNet and layer-wise-lr-decay fine-tuning programs
(and the edges of their idioms) found different from torch 2.13, each checked against torch on the
same inputs."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- event constraints on an empty batch
# A distribution whose parameter is checked per event (Categorical's logits, MultivariateNormal's loc,
# Dirichlet's concentration) flattens the event dims by reshape(batch + (-1,)): with a zero-size batch
# the -1 is ambiguous and torch raises its reshape RuntimeError; chainrule let NumPy's ValueError out.

EMPTY_BATCH_CONSTRUCTORS = {
    "Categorical(logits)": lambda lib: lib.distributions.Categorical(logits=lib.zeros(0, 3)),
    "Categorical(logits) 3-d": lambda lib: lib.distributions.Categorical(logits=lib.zeros(2, 0, 3)),
    "OneHotCategorical(logits)": lambda lib: lib.distributions.OneHotCategorical(logits=lib.zeros(0, 3)),
    "Multinomial(logits)": lambda lib: lib.distributions.Multinomial(3, logits=lib.zeros(0, 3)),
    "Dirichlet": lambda lib: lib.distributions.Dirichlet(lib.ones(0, 3)),
    "MultivariateNormal": lambda lib: lib.distributions.MultivariateNormal(lib.zeros(0, 2), lib.eye(2)),
    "RelaxedOneHotCategorical": lambda lib: lib.distributions.RelaxedOneHotCategorical(
        lib.tensor(0.5), logits=lib.zeros(0, 3)),
}


@pytest.mark.parametrize("name", sorted(EMPTY_BATCH_CONSTRUCTORS))
def test_an_event_constraint_on_an_empty_batch_raises_torchs_reshape_error(name):
    build = EMPTY_BATCH_CONSTRUCTORS[name]
    with pytest.raises(RuntimeError) as expected:
        build(torch)
    with pytest.raises(RuntimeError) as got:
        build(chainrule)
    # chainrule's constructors prefix the class and its arguments; torch's words follow unchanged
    assert str(got.value).endswith(str(expected.value))
    assert "cannot reshape tensor of 0 elements" in str(got.value)


@pytest.mark.parametrize("shape, validate", [((2, 0), None), ((0, 3), False)])
def test_no_error_without_an_ambiguous_reshape_or_without_validation(shape, validate):
    # an empty event with a non-empty batch reshapes unambiguously; validate_args=False checks nothing
    got = chainrule.distributions.Categorical(logits=chainrule.zeros(*shape), validate_args=validate)
    expected = torch.distributions.Categorical(logits=torch.zeros(*shape), validate_args=validate)
    assert tuple(got.batch_shape) == tuple(expected.batch_shape)
