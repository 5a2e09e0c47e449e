"""chainrule.testing: torch.testing.assert_close, with torch's default tolerances and messages."""

from __future__ import annotations

import builtins
import collections.abc

import numpy as np

__all__ = ["assert_close", "assert_allclose", "make_tensor"]

# torch's defaults (rtol, atol) per dtype; integer and bool dtypes compare exactly
_TOLERANCES = {np.dtype(np.float16): (1e-3, 1e-5), np.dtype(np.float32): (1.3e-6, 1e-5),
               np.dtype(np.float64): (1e-7, 1e-7), np.dtype(np.complex64): (1.3e-6, 1e-5),
               np.dtype(np.complex128): (1e-7, 1e-7)}


def _tolerances(dtype: np.dtype, rtol, atol) -> tuple:
    if (rtol is None) != (atol is None):
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, "
                         f"but got no {'rtol' if rtol is None else 'atol'}.")
    if rtol is not None:
        return float(rtol), float(atol)
    return _TOLERANCES.get(np.dtype(dtype), (0.0, 0.0))


def _fail(message: str, msg) -> None:
    raise AssertionError(msg if isinstance(msg, str) else message)


def _dense(tensor):
    """``tensor``'s values on the host, strided (a sparse COO tensor has no numpy(), as torch's)."""
    tensor = tensor.detach().cpu()
    return tensor.to_dense() if tensor.is_sparse else tensor


def _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, where,
                     check_stride=False) -> None:
    # torch's order: shape, stride() (only when asked), device, dtype
    attributes = ("shape",) + (("stride()",) if check_stride else ()) + (("device",) if check_device else ()) \
        + (("dtype",) if check_dtype else ())
    for attribute in attributes:
        if attribute == "stride()":
            mine, theirs = actual.stride(), expected.stride()
        else:
            mine, theirs = getattr(actual, attribute), getattr(expected, attribute)
        if mine != theirs:
            _fail(f"The values for attribute '{attribute}' do not match: {mine!r} != {theirs!r}.{where}", msg)
    a = np.asarray(_dense(actual).numpy())
    b = np.asarray(_dense(expected).numpy())
    rtol, atol = _tolerances(np.promote_types(a.dtype, b.dtype), rtol, atol)
    if a.dtype == np.bool_:
        a, b = a.astype(np.int64), b.astype(np.int64)
    wide = np.complex128 if "c" in (a.dtype.kind, b.dtype.kind) else np.float64  # complex: |a - b| of both parts
    close = np.isclose(a.astype(wide), b.astype(wide), rtol=rtol, atol=atol, equal_nan=equal_nan)
    if close.all():
        return
    exact = rtol == 0 and atol == 0
    mismatched = int((~close).sum())
    # the differences are reported in the inputs' own dtype, as torch computes them (so a float32
    # 0.2 prints as 0.20000000298023224); integer differences are exact, their ratios float32
    common = np.promote_types(a.dtype, b.dtype)
    with np.errstate(all="ignore"):
        if common.kind in "fVc":
            abs_diff = np.abs(a.astype(common) - b.astype(common))
            rel_diff = abs_diff / np.abs(b.astype(common))
        else:
            abs_diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
            rel_diff = abs_diff.astype(np.float32) / np.abs(b.astype(np.float32))
    abs_diff, rel_diff = np.asarray(abs_diff), np.asarray(rel_diff)  # 0-d results come back as scalars
    abs_diff[close] = 0
    rel_diff[close] = 0
    # argmax, not nanargmax: a NaN mismatch is the greatest, at its first index, as torch.max finds it
    abs_at = np.unravel_index(int(np.argmax(abs_diff)), a.shape) if a.ndim else ()
    rel_at = np.unravel_index(int(np.argmax(rel_diff)), a.shape) if a.ndim else ()
    integer = a.dtype.kind in "iub"

    def show(value: float) -> str:
        return str(builtins.int(value)) if integer and value == builtins.int(value) else str(float(value))

    lines = [f"Tensor-likes are not {'equal' if exact else 'close'}!", "",
             f"Mismatched elements: {mismatched} / {a.size} ({100 * mismatched / a.size:.1f}%)",
             f"Greatest absolute difference: {show(abs_diff[abs_at])} at index {tuple(map(int, abs_at))}"
             + ("" if exact else f" (up to {atol} allowed)"),
             f"Greatest relative difference: {float(rel_diff[rel_at])} at index {tuple(map(int, rel_at))}"
             + ("" if exact else f" (up to {rtol} allowed)")]
    _fail("\n".join(lines) + where, msg)


def _compare_scalars(actual, expected, rtol, atol, equal_nan, msg, where) -> None:
    dtype = np.float64 if isinstance(actual, float) or isinstance(expected, float) else np.int64
    rtol, atol = _tolerances(dtype, rtol, atol)
    if np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan):
        return
    difference = abs(actual - expected)
    relative = difference / abs(expected) if expected != 0 else float("inf")
    _fail(f"Scalars are not close!\n\nExpected {expected} but got {actual}.\n"
          f"Absolute difference: {difference} (up to {atol} allowed)\n"
          f"Relative difference: {relative} (up to {rtol} allowed){where}", msg)


def assert_close(actual, expected, *, allow_subclasses: bool = True, rtol=None, atol=None,
                 equal_nan: bool = False, check_device: bool = True, check_dtype: bool = True,
                 check_layout: bool = True, check_stride: bool = False, msg=None) -> None:
    """Raise AssertionError unless ``actual`` and ``expected`` are close, elementwise:
    ``|actual - expected| <= atol + rtol * |expected|``. Tensors, Python numbers, and (nested)
    sequences and mappings of them are accepted; shapes, dtypes and devices must match."""
    _assert_close(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, "", allow_subclasses,
                  check_stride)


def _assert_close(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, path,
                  allow_subclasses=True, check_stride=False) -> None:
    from ..tensor import Tensor

    # torch appends where a nested failure is, after the whole message
    where = f"\n\nThe failure occurred for item {path}" if path else ""
    if isinstance(actual, Tensor) and isinstance(expected, Tensor) and (allow_subclasses
                                                                       or type(actual) is type(expected)):
        _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, where, check_stride)
    elif isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray):  # compared as tensors, as torch
        _compare_tensors(Tensor._make(np.array(actual)), Tensor._make(np.array(expected)), rtol, atol, equal_nan,
                         check_device, check_dtype, msg, where)
    elif isinstance(actual, (int, float, bool, np.number, np.bool_)) and isinstance(expected, (int, float, bool, np.number, np.bool_)):
        _compare_scalars(actual, expected, rtol, atol, equal_nan, msg, where)
    elif isinstance(actual, collections.abc.Mapping) and isinstance(expected, collections.abc.Mapping):
        if set(actual) != set(expected):
            _fail(f"The keys of the mappings do not match:\n"
                  f"Missing keys in the actual mapping: {sorted(set(expected) - set(actual))}\n"
                  f"Additional keys in the actual mapping: {sorted(set(actual) - set(expected))}{where}", msg)
        for key in actual:
            _assert_close(actual[key], expected[key], rtol, atol, equal_nan, check_device, check_dtype,
                          msg, f"{path}[{key!r}]", allow_subclasses, check_stride)
    elif (isinstance(actual, collections.abc.Sequence) and isinstance(expected, collections.abc.Sequence)
          and not isinstance(actual, str) and not isinstance(expected, str)):
        if len(actual) != len(expected):
            _fail(f"The length of the sequences mismatch: {len(actual)} != {len(expected)}{where}", msg)
        for i, (mine, theirs) in enumerate(zip(actual, expected)):
            _assert_close(mine, theirs, rtol, atol, equal_nan, check_device, check_dtype, msg, f"{path}[{i}]",
                          allow_subclasses, check_stride)
    else:
        raise TypeError(f"No comparison pair was able to handle inputs of type {type(actual)} "
                        f"and {type(expected)}.")


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan: bool = True, msg: str = "") -> None:
    """The deprecated torch.testing.assert_allclose: assert_close without the dtype check."""
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=False,
                 msg=msg or None)


def make_tensor(*shape, dtype, device=None, low=None, high=None, requires_grad: bool = False,
                noncontiguous: bool = False, exclude_zero: bool = False, memory_format=None):
    """torch.testing.make_tensor: a tensor of ``shape`` with values drawn uniformly from [low, high)
    (floats default to [-9, 9), integers to [-9, 10) clamped to the dtype's range), drawn as torch
    draws them (``randint``, or ``uniform_`` on an empty tensor), so the same seed gives torch's
    values. ``exclude_zero`` replaces zeros with 1 or the dtype's smallest normal number;
    ``noncontiguous`` takes every other element of a last dim twice as long."""
    import math
    import warnings

    from .. import _dtype, finfo
    from ..ops import complex as complex_ops
    from ..ops import creation, random

    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    shape = tuple(int(s) for s in shape)
    dtype = _dtype.to_dtype(dtype)
    integral = dtype.np.kind in "iub"
    if noncontiguous and memory_format is not None:
        raise ValueError("The parameters `noncontiguous` and `memory_format` are mutually exclusive, but got "
                         f"noncontiguous={noncontiguous} and memory_format={memory_format}")
    if requires_grad and integral:
        raise ValueError(f"`requires_grad=True` is not supported for boolean and integral dtypes, but got "
                         f"dtype={dtype}")

    def interval(lowest, highest, default_low, default_high):
        lo = default_low if low is None else low
        hi = default_high if high is None else high
        if any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
            raise ValueError(f"`low` and `high` cannot be NaN, but got low={lo} and high={hi}")
        if lo == hi and not integral:
            warnings.warn("Passing `low==high` to `torch.testing.make_tensor` for floating or complex types is "
                          "deprecated since 2.1 and will be removed in 2.3. Use `torch.full(...)` instead.",
                          FutureWarning, stacklevel=3)
        elif lo >= hi:
            raise ValueError(f"`low` must be less than `high`, but got {lo} >= {hi}")
        elif hi < lowest or lo >= highest:
            raise ValueError(f"The value interval specified by `low` and `high` is [{lo}, {hi}), but {dtype} only "
                             f"supports [{lowest}, {highest})")
        lo, hi = builtins.min(builtins.max(lo, lowest), highest), builtins.min(builtins.max(hi, lowest), highest)
        return (math.ceil(lo), math.ceil(hi)) if integral else (lo, hi)

    noncontiguous = noncontiguous and math.prod(shape) > 1
    drawn_shape = (*shape[:-1], 2 * shape[-1]) if noncontiguous else shape
    if dtype.np == np.bool_:
        lo, hi = interval(0, 2, 0, 2)
        result = random.randint(lo, hi, drawn_shape, device=device, dtype=dtype)
    elif integral:
        info = np.iinfo(dtype.np)
        # randint cannot draw int64's largest value (its bounds are int64s): torch's exclusive bound
        lo, hi = interval(int(info.min), int(info.max) + (dtype.np != np.int64), -9, 10)
        result = random.randint(lo, hi, drawn_shape, device=device, dtype=dtype)
    else:
        lo, hi = interval(finfo(dtype).min, finfo(dtype).max, -9, 9)
        result = creation.empty(drawn_shape, device=device, dtype=dtype)
        target = complex_ops._view_as_real(result) if dtype.is_complex else result
        if hi - lo >= finfo(target.dtype).max:  # uniform_ needs high - low within the dtype
            target.uniform_(lo / 2, hi / 2).mul_(2)
        else:
            target.uniform_(lo, hi)
    if noncontiguous:
        result = result[..., 1::2]  # from the second element: offset mistakes show too
    elif memory_format is not None:
        result = result.clone(memory_format=memory_format)
    if exclude_zero:
        result[result == 0] = 1 if integral else finfo(dtype).tiny
    if not integral:
        result.requires_grad = requires_grad
    return result
