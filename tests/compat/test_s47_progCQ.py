"""s47 progCQ: a 0-d ``probs`` given to Categorical and the distributions built on it (OneHotCategorical,
its straight-through variant, Multinomial, RelaxedOneHotCategorical) is refused with torch's sentence,
"`probs` parameter must be at least one-dimensional." (chainrule said "`probs` or `logits` parameter ...",
which does not contain torch's words, so ``pytest.raises(match=...)`` written against torch failed)."""

import pytest
import torch as real_torch

import chainrule

BUILDERS = {
    "Categorical": lambda D, **kw: D.Categorical(**kw),
    "OneHotCategorical": lambda D, **kw: D.OneHotCategorical(**kw),
    "OneHotCategoricalStraightThrough": lambda D, **kw: D.OneHotCategoricalStraightThrough(**kw),
    "Multinomial": lambda D, **kw: D.Multinomial(3, **kw),
    "RelaxedOneHotCategorical": lambda D, **kw: D.RelaxedOneHotCategorical(0.5, **kw),
}


def _message(lib, build, arg, value):
    with pytest.raises(ValueError) as info:
        build(lib.distributions, **{arg: lib.tensor(value)})
    return str(info.value)


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("arg", ["probs", "logits"])
@pytest.mark.parametrize("value", [1.0, 3])
def test_zero_dim_parameter_is_refused_in_torch_s_words(name, arg, value):
    build = BUILDERS[name]
    expected = _message(real_torch, build, arg, value)
    assert expected == f"`{arg}` parameter must be at least one-dimensional."
    assert expected in _message(chainrule, build, arg, value)


@pytest.mark.parametrize("arg", ["probs", "logits"])
def test_one_dim_parameter_still_builds_as_torch_s(arg):
    mine = chainrule.distributions.Categorical(**{arg: chainrule.tensor([1.0, 3.0])})
    theirs = real_torch.distributions.Categorical(**{arg: real_torch.tensor([1.0, 3.0])})
    assert mine.probs.tolist() == pytest.approx(theirs.probs.tolist())
    assert tuple(mine.batch_shape) == tuple(theirs.batch_shape) == ()
