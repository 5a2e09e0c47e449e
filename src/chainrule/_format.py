"""torch-style repr: ``tensor([ 1.0000, -2.5000], requires_grad=True)``, ``grad_fn=<MulBackward0>``.

Follows torch's ``_tensor_str``: one formatter per tensor chooses integer, fixed (4 decimals) or
scientific notation from the nonzero finite values, and every element is right-aligned to the
widest one. Tensors over ``threshold`` (1000) elements are summarised with ``...`` (``edgeitems``,
3, at each edge). ``set_printoptions`` changes these as torch's does.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from . import _dtype
from .autograd import forward_ad

__all__ = ["set_printoptions", "get_printoptions", "printoptions"]


class _PrintOptions:
    """The options every repr reads (torch's ``PRINT_OPTS``); ``sci_mode=None`` means automatic."""

    precision = 4
    threshold: float = 1000
    edgeitems = 3
    linewidth = 80
    sci_mode = None


PRINT_OPTS = _PrintOptions()
_PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None) -> None:
    """torch.set_printoptions: a ``profile`` ('default', 'short', 'full') first, then each option
    given; ``sci_mode`` is always set (None restores the automatic choice), as in torch."""
    if profile is not None:
        if profile not in _PROFILES:
            # torch silently ignores an unknown profile; a typo deserves an error
            raise ValueError(f"set_printoptions(): profile must be one of {sorted(_PROFILES)}, got {profile!r}")
        for name, value in _PROFILES[profile].items():
            setattr(PRINT_OPTS, name, value)
    for name, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                        ("linewidth", linewidth)):
        if value is not None:
            setattr(PRINT_OPTS, name, value)
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict:
    """The current print options as a dict (torch._tensor_str.get_printoptions)."""
    return {name: getattr(PRINT_OPTS, name)
            for name in ("precision", "threshold", "edgeitems", "linewidth", "sci_mode")}


@contextlib.contextmanager
def printoptions(**kwargs):
    """Set print options inside a ``with`` block and restore the previous ones after it."""
    saved = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**saved)


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
        if PRINT_OPTS.sci_mode is None:
            self.sci_mode = largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
        else:
            self.sci_mode = bool(PRINT_OPTS.sci_mode)
        precision = PRINT_OPTS.precision
        if self.int_mode:
            fmt = f"{{:.{precision}e}}" if self.sci_mode else "{:.0f}"
            extra = 0 if self.sci_mode else 1  # the trailing "." of integer-valued floats
        else:
            fmt = f"{{:.{precision}e}}" if self.sci_mode else f"{{:.{precision}f}}"
            extra = 0
        for value in nonzero_finite.tolist():
            self.max_width = max(self.max_width, len(fmt.format(value)) + extra)

    def format(self, value) -> str:
        if self.floating:
            precision = PRINT_OPTS.precision
            if self.sci_mode:
                text = f"{value:{self.max_width}.{precision}e}"
            elif self.int_mode:
                text = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    text += "."
            else:
                text = f"{value:.{precision}f}"
        else:
            text = f"{value}"
        return (self.max_width - len(text)) * " " + text


class _ComplexFormatter:
    """torch's complex repr: the real and the imaginary parts each get a formatter of their own,
    and an element is ``real+imagj`` (the imaginary part's padding dropped)."""

    def __init__(self, values: np.ndarray) -> None:
        self.real = _Formatter(values.real)
        self.imag = _Formatter(values.imag)
        self.max_width = self.real.max_width + self.imag.max_width + 1

    def format(self, value) -> str:
        real_text = self.real.format(value.real)
        imag_text = (self.imag.format(value.imag) + "j").lstrip()
        return real_text + (imag_text if imag_text[0] in "+-" else "+" + imag_text)


def _summarized(array: np.ndarray) -> np.ndarray:
    """The values that will be shown: ``edgeitems`` at each end of every long dimension."""
    edgeitems = PRINT_OPTS.edgeitems
    if array.ndim == 0:
        return array
    if array.ndim > 1 and not edgeitems:
        return array[(slice(0, 0),) * array.ndim]
    if array.shape[0] > 2 * edgeitems:
        rows = list(range(edgeitems)) + list(range(len(array) - edgeitems, len(array)))
    else:
        rows = range(len(array))
    if array.ndim == 1:
        return array[list(rows)]
    return np.stack([_summarized(array[i]) for i in rows])


def _vector_str(array, indent: int, summarize: bool, formatter: _Formatter) -> str:
    edgeitems = PRINT_OPTS.edgeitems
    element_length = formatter.max_width + 2
    per_line = max(1, (PRINT_OPTS.linewidth - indent) // element_length)
    if summarize and not edgeitems:
        data = ["..."]
    elif summarize and array.shape[0] > 2 * edgeitems:
        data = ([formatter.format(v) for v in array[:edgeitems].tolist()] + [" ..."]
                + [formatter.format(v) for v in array[-edgeitems:].tolist()])
    else:
        data = [formatter.format(v) for v in array.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _array_str(array, indent: int, summarize: bool, formatter: _Formatter) -> str:
    if array.ndim == 0:
        return formatter.format(array.item())
    if array.ndim == 1:
        return _vector_str(array, indent, summarize, formatter)
    n, edgeitems = array.shape[0], PRINT_OPTS.edgeitems
    if summarize and n > 2 * edgeitems:
        slices = ([_array_str(array[i], indent + 1, summarize, formatter) for i in range(edgeitems)]
                  + ["..."]
                  + [_array_str(array[i], indent + 1, summarize, formatter) for i in range(n - edgeitems, n)])
    else:
        slices = [_array_str(array[i], indent + 1, summarize, formatter) for i in range(n)]
    return "[" + ("," + "\n" * (array.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def add_suffixes(text: str, suffixes: list, indent: int, force_newline: bool = False) -> str:
    """``text``, then torch's ``, key=value`` suffixes wrapped at the line width, then ``)``."""
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        # wrap where torch wraps: measure "dtype=chainrule.x" as torch's "dtype=torch.x"
        width = len(suffix) - _NAME_EXTRA * suffix.count("chainrule.")
        if force_newline or last_line_len + width + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + width
            force_newline = False  # only the first suffix is forced onto its own line (sparse reprs)
        else:
            parts.append(", " + suffix)
            last_line_len += width + 2
    parts.append(")")
    return "".join(parts)


def _host(array) -> np.ndarray:
    return array if isinstance(array, np.ndarray) else np.asarray(array.get())


def array_body(array, indent: int) -> str:
    """The bracketed values of a non-empty array as torch prints them, lines indented by ``indent``."""
    array = _host(array)
    if array.dtype == np.float16 or array.dtype.name == "bfloat16" or array.dtype.name.startswith("float8"):
        array = array.astype(np.float32)  # torch formats the narrow floats via float32
    summarize = array.size > PRINT_OPTS.threshold
    shown = _summarized(array) if summarize else array
    formatter = _ComplexFormatter(shown) if array.dtype.kind == "c" else _Formatter(shown)
    return _array_str(array, indent, summarize, formatter)


def format_tensor(t, tensor_contents: str | None = None) -> str:
    """torch's tensor repr; ``tensor_contents`` (what a wrapper subclass passes from its ``__repr__``)
    stands in for the values, and a subclass of the user's is named in place of ``tensor(``."""
    # torch names every class but Tensor and Parameter; chainrule's own subclasses print as tensor( too
    own_class = type(t).__module__.startswith("chainrule")
    prefix = "tensor(" if own_class else f"{type(t).__name__}("
    indent = len(prefix)
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    dtype = t.dtype
    if t.device.type == "meta":  # no values to print: torch states the size, and any non-default dtype
        suffixes.append(f"size={tuple(t.shape)}")
        if dtype is not _dtype.get_default_dtype():
            suffixes.append(f"dtype={dtype!r}")
        body, array = "...", None
    else:
        array = _host(t._data)
    if array is None:
        pass
    elif array.size == 0:
        body = "[]"
        if array.ndim != 1:
            suffixes.append(f"size={tuple(array.shape)}")
        if dtype is not _dtype.get_default_dtype():
            suffixes.append(f"dtype={dtype!r}")
    else:
        if not PRINT_OPTS.edgeitems:
            # with no edge items shown, torch states the size instead
            suffixes.append(f"size={tuple(array.shape)}")
        body = array_body(array, indent) if tensor_contents is None else tensor_contents
        if dtype not in (_dtype.get_default_dtype(), _dtype.get_default_complex_dtype(), _dtype.int64, _dtype.bool):
            suffixes.append(f"dtype={dtype!r}")
    try:
        node = t.grad_fn
    except RuntimeError:  # a view whose graph torch refuses to regenerate (ops/index.py)
        node = None
        suffixes.append("grad_fn=<Invalid>")
    if node is not None:
        suffixes.append(f"grad_fn=<{node.name()}>")
    elif t.requires_grad and not suffixes[-1:] == ["grad_fn=<Invalid>"]:
        suffixes.append("requires_grad=True")
    tangent = forward_ad.unpack_dual(t).tangent
    if tangent is not None:  # a dual tensor of forward AD's current level
        suffixes.append(f"tangent={tangent}")
    text = add_suffixes(prefix + body, suffixes, indent)
    # a parameter of a user's class (a Parameter subclass, or a tensor subclass made a Parameter) says
    # so around its own name; nn.Parameter's __repr__ adds "Parameter containing:" above
    return f"Parameter({text})" if not own_class and _is_parameter(t) else text


def _is_parameter(t) -> bool:
    """``isinstance(t, nn.Parameter)`` without importing nn (a layer above): a class named Parameter
    among chainrule's, or a tensor of a user's subclass that ``nn.Parameter`` marked as one."""
    if t.__dict__.get("_is_param", False):
        return True
    return any(cls.__name__ == "Parameter" and cls.__module__.startswith("chainrule.") for cls in type(t).__mro__)
