"""Device error labels and small edges, session 35 (lane mendC), each checked against torch 2.13.

A case is a function of the library (``torch`` or ``chainrule``); what a user sees of it (its
value, or its error's type and message) must be torch's. torch here has no GPU: on the stand-in
'cuda' device chainrule's error must be torch's CPU one with the device's names in it."""

from __future__ import annotations

import warnings

import pytest

import chainrule
from chainrule._backend import use_standin_cuda

torch = pytest.importorskip("torch")


def outcome(case, lib, on_standin_cuda=False):
    """What ``case(lib)`` shows a user: ("ok", its value as lists or a plain value) or ("error", the
    exception's type, its message), with the warnings it gave (category and message) last."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if on_standin_cuda:
                with use_standin_cuda():
                    result = case(lib)
            else:
                result = case(lib)
            if isinstance(result, (lib.Tensor, tuple, list)):
                result = [r.tolist() if isinstance(r, lib.Tensor) else r for r in result] \
                    if isinstance(result, (tuple, list)) else (str(result.dtype), result.tolist())
            shown = ("ok", result)
        except Exception as error:  # the error is part of what is compared
            shown = ("error", type(error).__name__, str(error))
    return (*shown, [(w.category.__name__, str(w.message)) for w in caught])


# --- 1. a mixed-device error names torch's op, not the explainer's label -------------------------

BINARY_OPS = ["add", "sub", "maximum", "minimum", "fmax", "fmin"]


@pytest.mark.parametrize("op", BINARY_OPS)
@pytest.mark.parametrize("order", ["cuda, cpu", "cpu, cuda"])
def test_a_binary_op_across_devices_names_torchs_op(op, order):
    def case(lib):
        on_device, on_host = lib.tensor([1.0, 2.0], device="cuda"), lib.tensor([1.0, 3.0])
        return getattr(lib, op)(*((on_device, on_host) if order == "cuda, cpu" else (on_host, on_device)))

    _, kind, message, _ = outcome(case, chainrule, on_standin_cuda=True)
    assert kind == "RuntimeError"
    assert message.startswith("Expected all tensors to be on the same device, but found at least two devices, ")
    assert message.endswith(f"(when checking the arguments of {getattr(torch, op).__name__})")
