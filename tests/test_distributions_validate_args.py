"""Distribution._validate_args: a class attribute as in torch (the default that
set_default_validate_args replaces), shadowed by an instance's validate_args."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


@pytest.fixture
def defaults_kept():
    kept = (chainrule.distributions.Distribution._validate_args, torch.distributions.Distribution._validate_args)
    yield
    chainrule.distributions.Distribution.set_default_validate_args(kept[0])
    torch.distributions.Distribution.set_default_validate_args(kept[1])


@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
def test_validate_args_is_a_class_attribute_set_by_the_default(lib, defaults_kept):
    Distribution = lib.distributions.Distribution
    assert "_validate_args" in vars(Distribution)
    assert Distribution._validate_args is __debug__
    Distribution.set_default_validate_args(False)
    assert Distribution._validate_args is False
    assert lib.distributions.Normal(0.0, -1.0)._validate_args is False  # no error: validation off
    assert lib.distributions.Normal(0.0, 1.0, validate_args=True)._validate_args is True
    assert Distribution._validate_args is False  # the instance's choice stays on the instance
    Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError, match="Expected parameter scale"):
        lib.distributions.Normal(lib.tensor(0.0), lib.tensor(-1.0))


@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
def test_set_default_validate_args_refuses_a_non_bool(lib, defaults_kept):
    with pytest.raises(ValueError):
        lib.distributions.Distribution.set_default_validate_args("yes")
    assert lib.distributions.Distribution._validate_args is True
