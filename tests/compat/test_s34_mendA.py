"""Error messages and argument handling, session 34 (lane mendA), each checked against torch 2.13.

A case is a function of the library (``torch`` or ``chainrule``); what a user sees of it (its
value, or its error's type and message) must be torch's. torch here has no GPU: on the stand-in
'cuda' device chainrule must raise torch's CPU error with the device's own names in it."""

from __future__ import annotations

import warnings

import pytest

import chainrule
from chainrule._backend import use_standin_cuda

torch = pytest.importorskip("torch")


def _outcome(case, lib, on_standin_cuda=False):
    """What ``case(lib)`` shows a user: ("ok", its value as a list) or ("error", the exception's
    type, its message), with the warnings it gives (category and message) last."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if on_standin_cuda:
                with use_standin_cuda():
                    result = case(lib)
            else:
                result = case(lib)
            shown = ("ok", result.tolist() if hasattr(result, "tolist") else result)
        except Exception as error:  # the error is part of what is compared
            shown = ("error", type(error).__name__, str(error))
    return (*shown, [(w.category.__name__, str(w.message)) for w in caught])


def assert_as_torch(case):
    assert _outcome(case, chainrule) == _outcome(case, torch)


# --- 1. device errors name torch's op and its device's kernel ------------------------------------

COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"]
COMPARISON_FORMS = {
    "function": lambda lib, op, a, b: getattr(lib, op)(a, b),
    "method": lambda lib, op, a, b: getattr(a, op)(b),
}


@pytest.mark.parametrize("form", COMPARISON_FORMS)
@pytest.mark.parametrize("op", COMPARISONS)
def test_a_comparison_across_devices_names_torchs_op(op, form):
    """A 'cuda' tensor compared with a CPU one (not 0-d): the error names torch's op (``eq``), not
    NumPy's ufunc (``equal``, ``less``...)."""
    def case(lib):
        return COMPARISON_FORMS[form](lib, op, lib.tensor([1.0, 2.0], device="cuda"), lib.tensor([1.0, 3.0]))

    _, kind, message, _ = _outcome(case, chainrule, on_standin_cuda=True)
    assert kind == "RuntimeError"
    assert message.startswith("Expected all tensors to be on the same device, but found at least two devices, "
                              "cuda:0 and cpu!")
    assert message.endswith(f"(when checking the arguments of {getattr(torch, op).__name__})")


NEXTAFTER_OPERANDS = {
    "int64": lambda lib, device: (lib.tensor([1, 2], device=device), lib.tensor([2, 1], device=device)),
    "bool": lambda lib, device: (lib.tensor([True, False], device=device), lib.tensor([True, True], device=device)),
    "int64 and a 0-d CPU int64": lambda lib, device: (lib.tensor([1, 2], device=device), lib.tensor(3)),
    "int32 and int64": lambda lib, device: (lib.tensor([1, 2], dtype=lib.int32, device=device),
                                            lib.tensor([3, 4], device=device)),
}


@pytest.mark.parametrize("operands", NEXTAFTER_OPERANDS.values(), ids=NEXTAFTER_OPERANDS.keys())
def test_nextafter_of_non_floating_tensors_names_the_kernel_of_their_device(operands):
    """torch's CUDA kernel is nextafter_cuda; on the CPU its error is torch's as it is."""
    def case(device):
        return lambda lib: lib.nextafter(*operands(lib, device))

    on_cpu = _outcome(case("cpu"), torch)
    assert on_cpu[:2] == ("error", "NotImplementedError") and '"nextafter_cpu"' in on_cpu[2]
    assert _outcome(case("cpu"), chainrule) == on_cpu
    on_cuda = _outcome(case("cuda"), chainrule, on_standin_cuda=True)
    assert on_cuda == (on_cpu[0], on_cpu[1], on_cpu[2].replace('"nextafter_cpu"', '"nextafter_cuda"'), on_cpu[3])


@pytest.mark.parametrize("op, dtype", [("nextafter", "int64"), ("gcd", "float32"), ("lcm", "float32")])
def test_a_refused_dtype_comes_after_the_broadcast_check(op, dtype):
    """TensorIterator broadcasts before its kernel looks at the dtype: shapes that do not broadcast
    are the error, whatever the dtype."""
    assert_as_torch(lambda lib: getattr(lib, op)(lib.tensor([1, 2], dtype=getattr(lib, dtype)),
                                                 lib.tensor([1, 2, 3], dtype=getattr(lib, dtype))))
