"""Errors that torch's OpInfo error inputs expect, raised by chainrule with torch's type and wording.

Found by tools/torch_opinfo_errors_trial.py (op_db's ``error_inputs``). Each test builds its own
small case, runs it on torch 2.13 and on chainrule, and checks that both raise the same exception
type with a message matching the phrase users search for.
"""

from __future__ import annotations

import re

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _raised(call) -> BaseException:
    with pytest.raises(Exception) as info:
        call()
    return info.value


def assert_raises_like_torch(torch_call, chainrule_call, phrase: str) -> None:
    """Both calls raise; chainrule's exception is torch's type and both messages match ``phrase``."""
    expected, got = _raised(torch_call), _raised(chainrule_call)
    assert isinstance(got, type(expected)), f"torch raised {expected!r}, chainrule raised {got!r}"
    assert re.search(phrase, str(expected)), f"the phrase no longer matches torch's message: {expected}"
    assert re.search(phrase, str(got).replace("chainrule.", "torch.")), f"chainrule's message: {got}"


def both(name: str):
    """The function ``name`` (dotted) in torch and in chainrule."""
    torch_fn, chainrule_fn = torch, chainrule
    for part in name.split("."):
        torch_fn, chainrule_fn = getattr(torch_fn, part), getattr(chainrule_fn, part)
    return torch_fn, chainrule_fn


# ---- a Python number where the signature says Tensor is refused, not broadcast
@pytest.mark.parametrize("name", ["eq", "ne", "lt", "le", "gt", "ge", "fmod", "copysign", "rsub", "clamp_min",
                                  "clamp_max"])
def test_number_as_input_of_tensor_first_op_is_a_type_error(name):
    torch_fn, chainrule_fn = both(name)
    assert_raises_like_torch(lambda: torch_fn(2, torch.arange(3)), lambda: chainrule_fn(2, chainrule.arange(3)),
                             r"\(int, Tensor\)|must be Tensor, not int")


@pytest.mark.parametrize("name", ["fmax", "fmin", "logical_and", "logical_or", "logical_xor", "gcd", "lcm",
                                  "isclose", "maximum", "minimum"])
@pytest.mark.parametrize("number_first", [True, False])
def test_tensor_only_binary_ops_refuse_a_number_on_either_side(name, number_first):
    torch_fn, chainrule_fn = both(name)
    position = "input" if number_first else "other"

    def call(fn, module):
        operands = (5, module.arange(3)) if number_first else (module.arange(3), 5)
        return fn(*operands)

    assert_raises_like_torch(lambda: call(torch_fn, torch), lambda: call(chainrule_fn, chainrule),
                             rf"argument '{position}' \(position \d\) must be Tensor, not int")


def test_numbers_with_tensors_still_compare():
    # the check is on the first operand only: comparisons and fmod with a number other stay allowed
    x = chainrule.tensor([1.0, 2.0, 3.0])
    assert chainrule.eq(x, 2).tolist() == torch.eq(torch.tensor([1.0, 2.0, 3.0]), 2).tolist()
    assert chainrule.fmod(x, 2).tolist() == torch.fmod(torch.tensor([1.0, 2.0, 3.0]), 2).tolist()
    assert (x == 2).tolist() == [False, True, False]


@pytest.mark.parametrize("which", ["rtol", "atol"])
def test_isclose_refuses_negative_tolerance(which):
    def call(module):
        return module.isclose(module.tensor([1.0]), module.tensor([1.0]), **{which: -0.4})

    assert_raises_like_torch(lambda: call(torch), lambda: call(chainrule),
                             rf"{which} must be greater than or equal to zero, but got -0.4")
