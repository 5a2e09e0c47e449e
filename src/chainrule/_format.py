"""torch-style repr: ``tensor([1., 2.], requires_grad=True)``, ``grad_fn=<MulBackward0>``."""

from __future__ import annotations

import numpy as np

from . import _dtype


def _float_formatter(values: np.ndarray):
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return lambda v: _special(v) or f"{v:.4f}", None
    magnitudes = np.abs(finite)
    all_integers = np.all(finite == np.round(finite))
    largest = magnitudes.max()
    smallest = magnitudes[magnitudes > 0].min() if (magnitudes > 0).any() else 0.0
    if all_integers and largest < 1e8:
        return (lambda v: _special(v) or f"{v:.0f}."), None
    if largest >= 1e8 or (smallest and smallest < 1e-4) or (smallest and largest / smallest > 1000):
        return (lambda v: _special(v) or f"{v:.4e}"), None
    return (lambda v: _special(v) or f"{v:.4f}"), None


def _special(v) -> str | None:
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def format_tensor(t) -> str:
    array = t._data if isinstance(t._data, np.ndarray) else np.asarray(t._data.get())
    suffixes = []
    kind = array.dtype.kind
    if array.size == 0:
        body = "[]"
        suffixes.append(f"size={tuple(array.shape)}")
    else:
        if kind == "f":
            fmt, _ = _float_formatter(array.astype(np.float64))
            formatter = {"float_kind": fmt}
        elif kind == "b":
            formatter = {"bool": lambda v: "True" if v else "False"}
        else:
            formatter = {"int": lambda v: str(v)}
        body = np.array2string(array, separator=", ", formatter=formatter, prefix="tensor(",
                               threshold=1000, edgeitems=3, max_line_width=80)
    dtype = t.dtype
    default_shown = dtype in (_dtype.get_default_dtype(), _dtype.int64, _dtype.bool)
    if not default_shown:
        suffixes.append(f"dtype={dtype!r}")
    if t.device.type != "cpu":
        suffixes.insert(0, f"device='{t.device}'")
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    prefix = "Parameter containing:\n" if type(t).__name__ == "Parameter" else ""
    return prefix + "tensor(" + ", ".join([body] + suffixes) + ")"
