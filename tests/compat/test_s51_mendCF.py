"""Lane mendCF (session 51): inference tensors' detach and view(dtype), sparse compressed layouts,
torch's type names in Python-level errors -- each checked against torch on the same calls."""
import pytest
import torch

import chainrule


def _outcome(call):
    try:
        value = call()
    except Exception as error:  # noqa: BLE001 (the error is the outcome compared)
        return type(error).__name__, str(error)
    if isinstance(value, (torch.Tensor, chainrule.Tensor)):
        return "value", value.tolist()
    return "value", value


def _inference_ones(lib):
    with lib.inference_mode():
        return lib.ones(3)


def _detach_written(lib):
    x = _inference_ones(lib)
    d = x.detach()
    d.mul_(2)
    return d.is_inference(), d._version, x.tolist(), d.detach().add_(1).tolist(), d._version


def _detach_under_no_grad(lib):
    d = _inference_ones(lib).detach()
    with lib.no_grad():
        d.add_(1)
    return d.tolist()


def _detach_saved(lib):
    a = lib.ones(3, requires_grad=True)
    return (a * _inference_ones(lib).detach()).sum()


def _detach_in_inference_mode(lib):
    x = _inference_ones(lib)
    with lib.inference_mode():
        d = x.detach()
    return d.add_(1)


def _view_dtype(lib, dtype_name):
    x = _inference_ones(lib)
    v = x.view(getattr(lib, dtype_name))
    v.add_(1)
    return v.is_inference(), v._is_view(), v._version, v.view(-1).is_inference(), x.tolist()


def _view_dtype_inside(lib):
    x = _inference_ones(lib)
    with lib.inference_mode():
        v = x.view(lib.int32)
    return v.is_inference(), _outcome(lambda: v.add_(1))


def _view_dtype_saved(lib):
    a = lib.ones(3, requires_grad=True)
    (a * _inference_ones(lib).view(lib.float32)).sum().backward()
    return a.grad


INFERENCE_CASES = {
    "detach_written": _detach_written,
    "detach_under_no_grad": _detach_under_no_grad,
    "detach_saved": _detach_saved,
    "detach_requires_grad": lambda lib: _inference_ones(lib).detach().requires_grad_(),
    "detach_view_written": lambda lib: _inference_ones(lib).detach().view(3).add_(1),
    "detach_view_is_inference": lambda lib: _inference_ones(lib).detach().view(3).is_inference(),
    "detach_is_view": lambda lib: _inference_ones(lib).detach()._is_view(),
    "detach_in_inference_mode": _detach_in_inference_mode,
    "inference_write_refused": lambda lib: _inference_ones(lib).add_(1),
    "view_int32": lambda lib: _view_dtype(lib, "int32"),
    "view_float32": lambda lib: _view_dtype(lib, "float32"),
    "view_dtype_inside": _view_dtype_inside,
    "view_dtype_saved": _view_dtype_saved,
}


@pytest.mark.parametrize("case", sorted(INFERENCE_CASES))
def test_inference_detach_and_view_dtype_as_torch(case):
    make = INFERENCE_CASES[case]
    assert _outcome(lambda: make(chainrule)) == _outcome(lambda: make(torch))
