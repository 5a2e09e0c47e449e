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


def _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, where) -> None:
    for attribute in ("shape",) + (("dtype",) if check_dtype else ()) + (("device",) if check_device else ()):
        mine, theirs = getattr(actual, attribute), getattr(expected, attribute)
        if mine != theirs:
            _fail(f"The values for attribute '{attribute}' do not match: {mine!r} != {theirs!r}{where}.", msg)
    a = np.asarray(actual.detach().cpu().numpy())
    b = np.asarray(expected.detach().cpu().numpy())
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
    abs_at = np.unravel_index(int(np.nanargmax(abs_diff)), a.shape) if a.ndim else ()
    rel_at = np.unravel_index(int(np.nanargmax(rel_diff)), a.shape) if a.ndim else ()
    integer = a.dtype.kind in "iub"

    def show(value: float) -> str:
        return str(builtins.int(value)) if integer and value == builtins.int(value) else str(float(value))

    lines = [f"Tensor-likes are not {'equal' if exact else 'close'}!{where}", "",
             f"Mismatched elements: {mismatched} / {a.size} ({100 * mismatched / a.size:.1f}%)",
             f"Greatest absolute difference: {show(abs_diff[abs_at])} at index {tuple(map(int, abs_at))}"
             + ("" if exact else f" (up to {atol} allowed)"),
             f"Greatest relative difference: {float(rel_diff[rel_at])} at index {tuple(map(int, rel_at))}"
             + ("" if exact else f" (up to {rtol} allowed)")]
    _fail("\n".join(lines), msg)


def _compare_scalars(actual, expected, rtol, atol, equal_nan, msg, where) -> None:
    dtype = np.float64 if isinstance(actual, float) or isinstance(expected, float) else np.int64
    rtol, atol = _tolerances(dtype, rtol, atol)
    if np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan):
        return
    difference = abs(actual - expected)
    relative = difference / abs(expected) if expected != 0 else float("inf")
    _fail(f"Scalars are not close!{where}\n\nExpected {expected} but got {actual}.\n"
          f"Absolute difference: {difference} (up to {atol} allowed)\n"
          f"Relative difference: {relative} (up to {rtol} allowed)", msg)


def assert_close(actual, expected, *, allow_subclasses: bool = True, rtol=None, atol=None,
                 equal_nan: bool = False, check_device: bool = True, check_dtype: bool = True,
                 check_layout: bool = True, check_stride: bool = False, msg=None) -> None:
    """Raise AssertionError unless ``actual`` and ``expected`` are close, elementwise:
    ``|actual - expected| <= atol + rtol * |expected|``. Tensors, Python numbers, and (nested)
    sequences and mappings of them are accepted; shapes, dtypes and devices must match."""
    _assert_close(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, "")


def _assert_close(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, path) -> None:
    from ..tensor import Tensor

    where = f"\n\nThe failure occurred for item {path}" if path else ""
    if isinstance(actual, Tensor) and isinstance(expected, Tensor):
        _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, where)
    elif isinstance(actual, (int, float, bool)) and isinstance(expected, (int, float, bool)):
        _compare_scalars(actual, expected, rtol, atol, equal_nan, msg, where)
    elif isinstance(actual, collections.abc.Mapping) and isinstance(expected, collections.abc.Mapping):
        if set(actual) != set(expected):
            _fail(f"The keys of the mappings do not match: {sorted(map(str, actual))} != "
                  f"{sorted(map(str, expected))}{where}.", msg)
        for key in actual:
            _assert_close(actual[key], expected[key], rtol, atol, equal_nan, check_device, check_dtype,
                          msg, f"{path}[{key!r}]")
    elif (isinstance(actual, collections.abc.Sequence) and isinstance(expected, collections.abc.Sequence)
          and not isinstance(actual, str) and not isinstance(expected, str)):
        if len(actual) != len(expected):
            _fail(f"The length of the sequences mismatch: {len(actual)} != {len(expected)}{where}", msg)
        for i, (mine, theirs) in enumerate(zip(actual, expected)):
            _assert_close(mine, theirs, rtol, atol, equal_nan, check_device, check_dtype, msg, f"{path}[{i}]")
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
    (floats default to [-9, 9), integers to [-9, 10), uint8 to [0, 10)), from chainrule's default
    generator. ``exclude_zero`` replaces zeros with the dtype's smallest step, ``noncontiguous`` lays
    the values out with a stride of two in the last dim."""
    from .. import _dtype
    from ..ops.random import _rng
    from ..tensor import Tensor

    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    shape = tuple(int(s) for s in shape)
    dtype = _dtype.to_dtype(dtype)
    np_dtype = dtype.np
    if low is not None and high is not None and low > high:
        raise ValueError(f"`low` must be less than or equal to `high`, but got {low} > {high}")
    rng = _rng(None)
    if np_dtype == np.bool_:
        values = rng.integers(0, 2, size=shape).astype(np.bool_)
    elif np_dtype.kind in "iu":
        lowest = 0 if np_dtype.kind == "u" else -9
        lo = builtins.max(lowest if low is None else int(np.ceil(low)), np.iinfo(np_dtype).min)
        hi = builtins.min(10 if high is None else int(np.ceil(high)), np.iinfo(np_dtype).max)
        values = rng.integers(lo, builtins.max(hi, lo + 1), size=shape).astype(np_dtype)
    else:
        lo = -9.0 if low is None else float(low)
        hi = 9.0 if high is None else float(high)
        values = rng.uniform(lo, hi, size=shape).astype(np_dtype)
    if exclude_zero:
        step = 1 if np_dtype.kind in "iub" else np.finfo(np_dtype).tiny
        values = np.where(values == 0, np.asarray(step, dtype=np_dtype), values)
    if noncontiguous and values.size > 1:
        wide = np.empty(shape[:-1] + (shape[-1] * 2,), dtype=np_dtype)
        wide[..., ::2] = values
        values = wide[..., ::2]
    result = Tensor._make(values)
    if memory_format is not None:
        result = result.contiguous(memory_format=memory_format)
    if device is not None:
        result = result.to(device)
    if requires_grad:
        result.requires_grad_(True)
    return result
