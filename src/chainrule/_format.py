"""torch-style repr: ``tensor([ 1.0000, -2.5000], requires_grad=True)``, ``grad_fn=<MulBackward0>``.

Follows torch's ``_tensor_str``: one formatter per tensor chooses integer, fixed (4 decimals) or
scientific notation from the nonzero finite values, and every element is right-aligned to the
widest one. Tensors over 1000 elements are summarised with ``...`` (3 items at each edge).
"""

from __future__ import annotations

import math

import numpy as np

from . import _dtype

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80
_NAME_EXTRA = len("chainrule.") - len("torch.")


class _Formatter:
    """Chooses the notation and the common width from (summarised) values, as torch's does."""

    def __init__(self, values: np.ndarray) -> None:
        self.floating = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)
        if not self.floating:
            for value in flat.tolist():
                self.max_width = max(self.max_width, len(f"{value}"))
            return
        flat = flat.astype(np.float64)
        nonzero_finite = flat[np.isfinite(flat) & (flat != 0)]
        if nonzero_finite.size == 0:
            return
        magnitudes = np.abs(nonzero_finite)
        smallest, largest = float(magnitudes.min()), float(magnitudes.max())
        self.int_mode = bool(np.all(nonzero_finite == np.ceil(nonzero_finite)))
        if self.int_mode:
            self.sci_mode = largest / smallest > 1000.0 or largest > 1.0e8
            fmt = f"{{:.{PRECISION}e}}" if self.sci_mode else "{:.0f}"
            extra = 0 if self.sci_mode else 1  # the trailing "." of integer-valued floats
        else:
            self.sci_mode = largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
            fmt = f"{{:.{PRECISION}e}}" if self.sci_mode else f"{{:.{PRECISION}f}}"
            extra = 0
        for value in nonzero_finite.tolist():
            self.max_width = max(self.max_width, len(fmt.format(value)) + extra)

    def format(self, value) -> str:
        if self.floating:
            if self.sci_mode:
                text = f"{value:{self.max_width}.{PRECISION}e}"
            elif self.int_mode:
                text = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    text += "."
            else:
                text = f"{value:.{PRECISION}f}"
        else:
            text = f"{value}"
        return (self.max_width - len(text)) * " " + text


def _summarized(array: np.ndarray) -> np.ndarray:
    """The values that will be shown: EDGEITEMS at each end of every long dimension."""
    if array.ndim == 0:
        return array
    if array.shape[0] > 2 * EDGEITEMS:
        rows = list(range(EDGEITEMS)) + list(range(len(array) - EDGEITEMS, len(array)))
    else:
        rows = range(len(array))
    if array.ndim == 1:
        return array[list(rows)]
    return np.stack([_summarized(array[i]) for i in rows])


def _vector_str(array, indent: int, summarize: bool, formatter: _Formatter) -> str:
    element_length = formatter.max_width + 2
    per_line = max(1, (LINEWIDTH - indent) // element_length)
    if summarize and array.shape[0] > 2 * EDGEITEMS:
        data = ([formatter.format(v) for v in array[:EDGEITEMS].tolist()] + [" ..."]
                + [formatter.format(v) for v in array[-EDGEITEMS:].tolist()])
    else:
        data = [formatter.format(v) for v in array.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _array_str(array, indent: int, summarize: bool, formatter: _Formatter) -> str:
    if array.ndim == 0:
        return formatter.format(array.item())
    if array.ndim == 1:
        return _vector_str(array, indent, summarize, formatter)
    n = array.shape[0]
    if summarize and n > 2 * EDGEITEMS:
        slices = ([_array_str(array[i], indent + 1, summarize, formatter) for i in range(EDGEITEMS)]
                  + ["..."]
                  + [_array_str(array[i], indent + 1, summarize, formatter) for i in range(n - EDGEITEMS, n)])
    else:
        slices = [_array_str(array[i], indent + 1, summarize, formatter) for i in range(n)]
    return "[" + ("," + "\n" * (array.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def _add_suffixes(text: str, suffixes: list, indent: int) -> str:
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        # wrap where torch wraps: measure "dtype=chainrule.x" as torch's "dtype=torch.x"
        width = len(suffix) - _NAME_EXTRA * suffix.count("chainrule.")
        if last_line_len + width + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + width
        else:
            parts.append(", " + suffix)
            last_line_len += width + 2
    parts.append(")")
    return "".join(parts)


def format_tensor(t) -> str:
    array = t._data if isinstance(t._data, np.ndarray) else np.asarray(t._data.get())
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    dtype = t.dtype
    if array.size == 0:
        body = "[]"
        if array.ndim != 1:
            suffixes.append(f"size={tuple(array.shape)}")
        if dtype is not _dtype.get_default_dtype():
            suffixes.append(f"dtype={dtype!r}")
    else:
        if array.dtype == np.float16:
            array = array.astype(np.float32)
        summarize = array.size > THRESHOLD
        formatter = _Formatter(_summarized(array) if summarize else array)
        body = _array_str(array, indent, summarize, formatter)
        if dtype not in (_dtype.get_default_dtype(), _dtype.int64, _dtype.bool):
            suffixes.append(f"dtype={dtype!r}")
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    text = _add_suffixes(prefix + body, suffixes, indent)
    return ("Parameter containing:\n" + text) if type(t).__name__ == "Parameter" else text
