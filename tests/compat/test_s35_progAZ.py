"""Differences from torch 2.13 found while writing the progAZ programs (swav_sinkhorn,
wgan_weight_clipping, mlp_mixer). Each case runs the same code on torch and on chainrule and
compares the outcome a user sees: the value, or the error's type and words."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(case, lib):
    try:
        return ("ok", case(lib))
    except Exception as error:  # noqa: BLE001 - the error itself is what is compared
        return (type(error).__name__, str(error))


# torch words the integer-dtype refusal of the requires_grad attribute ("floating point and complex
# dtype") apart from requires_grad_()'s ("floating point dtype"); the WGAN idiom toggles the attribute.
REQUIRES_GRAD_CASES = {
    "attribute on int64": lambda lib: setattr(lib.ones(2, dtype=lib.long), "requires_grad", True),
    "attribute on bool": lambda lib: setattr(lib.ones(2, dtype=lib.bool), "requires_grad", True),
    "attribute on uint8": lambda lib: setattr(lib.ones(2, dtype=lib.uint8), "requires_grad", True),
    "attribute on a detached int64": lambda lib: setattr(lib.arange(3).detach(), "requires_grad", True),
    "attribute False on int64": lambda lib: setattr(lib.ones(2, dtype=lib.long), "requires_grad", False),
    "attribute on complex64": lambda lib: (lambda t: (setattr(t, "requires_grad", True), t.requires_grad)[1])(
        lib.ones(2, dtype=lib.complex64)),
    "requires_grad_() on int64": lambda lib: lib.ones(2, dtype=lib.long).requires_grad_(),
    "factory keyword on int64": lambda lib: lib.ones(2, dtype=lib.long, requires_grad=True),
    "Parameter of int64": lambda lib: lib.nn.Parameter(lib.ones(2, dtype=lib.long)),
}


@pytest.mark.parametrize("name", sorted(REQUIRES_GRAD_CASES))
def test_requires_grad_refusals_are_worded_as_torch(name):
    case = REQUIRES_GRAD_CASES[name]
    assert _outcome(case, chainrule) == _outcome(case, torch)
