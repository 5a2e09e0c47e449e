"""What the lanes' compat tests share to compare a refusal: the outcome of a call (the exception's
class and words, or that it returned) and the same call's refusal on torch and on chainrule."""

import warnings

import pytest

import chainrule
import chainrule.nn.functional as chainrule_functional

torch = pytest.importorskip("torch")
torch_functional = pytest.importorskip("torch.nn.functional")


def outcome(call):
    """("ok", "") where ``call()`` returned, else its exception's class name and message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except Exception as exc:  # the subject: whatever each library raises
            return type(exc).__name__, str(exc)
    return "ok", ""


def assert_same_refusal(call):
    """``call(library, functional)`` raises on chainrule what it raises on torch, class and words."""
    expected = outcome(lambda: call(torch, torch_functional))
    assert expected[0] != "ok"
    assert outcome(lambda: call(chainrule, chainrule_functional)) == expected
