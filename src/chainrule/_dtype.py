"""Torch-named dtypes over NumPy dtypes, and torch's type-promotion rules."""

from __future__ import annotations

import builtins

import numpy as np

__all__ = ["dtype", "get_default_dtype", "set_default_dtype", "promote_types", "result_type"]


class dtype:
    """A tensor element type with torch's name (``chainrule.float32`` ...) over a NumPy dtype."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "_category")

    def __init__(self, name: str, np_dtype) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.is_signed = self.np.kind in "fic"
        self.itemsize = self.np.itemsize
        # bool < integer < floating < complex: torch promotes across categories by these ranks
        self._category = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}[self.np.kind]

    @property
    def is_complex(self) -> bool:
        return self.np.kind == "c"

    def to_real(self) -> dtype:
        """The real dtype of a complex dtype's parts (complex64 -> float32); self for a real one."""
        return _BY_NP[self.np.type(0).real.dtype] if self.np.kind == "c" else self

    def to_complex(self) -> dtype:
        """The complex dtype whose parts are this float dtype (float64 -> complex128)."""
        if self.np.kind == "c":
            return self
        return complex128 if self.np.itemsize == 8 else complex64

    def __repr__(self) -> str:
        return f"chainrule.{self.name}"

    def __reduce__(self):
        return (_from_name, (self.name,))


float16 = half = dtype("float16", np.float16)
float32 = float = dtype("float32", np.float32)
float64 = double = dtype("float64", np.float64)
uint8 = dtype("uint8", np.uint8)
int8 = dtype("int8", np.int8)
int16 = short = dtype("int16", np.int16)
int32 = int = dtype("int32", np.int32)
int64 = long = dtype("int64", np.int64)
bool = dtype("bool", np.bool_)  # noqa: A001 - torch's public name
# complex: NumPy's pairs of float32/float64 (torch's ComplexFloat/ComplexDouble; no complex32)
complex64 = cfloat = dtype("complex64", np.complex64)
complex128 = cdouble = dtype("complex128", np.complex128)

_ALL = (float16, float32, float64, uint8, int8, int16, int32, int64, bool, complex64, complex128)
_BY_NP = {d.np: d for d in _ALL}
_BY_NAME = {d.name: d for d in _ALL}
_default_float = float32


def _from_name(name: str) -> dtype:
    return _BY_NAME[name]


def from_numpy_dtype(np_dtype) -> dtype:
    """The chainrule dtype for a NumPy dtype; raises TypeError for unsupported ones."""
    try:
        return _BY_NP[np.dtype(np_dtype)]
    except KeyError:
        raise TypeError(
            f"can't convert NumPy dtype {np.dtype(np_dtype)}: chainrule supports "
            + ", ".join(d.name for d in _ALL)
        ) from None


def to_dtype(value) -> dtype:
    """Accept a chainrule dtype, a NumPy dtype/type, or a string like 'float32'."""
    if isinstance(value, dtype):
        return value
    if isinstance(value, str):
        if value in _BY_NAME:
            return _BY_NAME[value]
        raise TypeError(f"unknown dtype name {value!r}")
    if value is builtins.float:
        return float64  # torch maps the Python type float to float64, not the default dtype
    if value is builtins.int:
        return int64
    if value is builtins.bool:
        return bool
    if value is builtins.complex:
        return complex128
    return from_numpy_dtype(value)


def get_default_dtype() -> dtype:
    return _default_float


def get_default_complex_dtype() -> dtype:
    """The complex counterpart of the default float dtype (torch.tensor(1j) is complex64)."""
    return complex128 if _default_float is float64 else complex64


def set_default_dtype(d) -> None:
    global _default_float
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating-point types are allowed, got {d}")
    _default_float = d


def promote_types(a: dtype, b: dtype) -> dtype:
    """torch.promote_types: the smallest dtype both values fit in, by torch's table."""
    if a is b:
        return a
    if a._category == 3 and b._category == 2 or a._category == 2 and b._category == 3:
        return _BY_NP[np.promote_types(a.np, b.np)]  # float64 + complex64 -> complex128, as torch
    if a._category != b._category:
        # across categories the higher category's type wins unchanged (int64 + float16 -> float16)
        return a if a._category > b._category else b
    return _BY_NP[np.promote_types(a.np, b.np)]


def _combine(higher: dtype | None, lower: dtype | None) -> dtype | None:
    # torch's combine_categories: a lower-priority operand only matters if its category is higher
    if higher is None:
        return lower
    if lower is not None and lower._category == 3 and higher._category < 3:
        # a complex operand of lower priority keeps a float's precision (float64 + 1j -> complex128)
        return higher.to_complex() if higher._category == 2 else lower
    if lower is None or higher._category >= 2:
        return higher
    if higher is bool or lower.is_floating_point:
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> dtype:
    """torch.result_type over tensors and Python scalars.

    Dimensioned tensors take priority over 0-d tensors, which take priority over Python
    scalars; a lower-priority operand changes the result only when its category
    (bool < int < float) is higher, e.g. int32 tensor + 2.5 -> float32 and
    float32 tensor + float64 0-d tensor -> float32.
    """
    dim_result = zero_result = scalar_result = None
    for op in operands:
        d = getattr(op, "dtype", None)
        if isinstance(d, dtype):
            if op.ndim:
                dim_result = d if dim_result is None else promote_types(dim_result, d)
            else:
                zero_result = d if zero_result is None else promote_types(zero_result, d)
        else:
            s = scalar_dtype(op)
            scalar_result = s if scalar_result is None else promote_types(scalar_result, s)
    return _combine(dim_result, _combine(zero_result, scalar_result))


def scalar_dtype(value) -> dtype:
    if isinstance(value, (builtins.bool, np.bool_)):
        return bool
    if isinstance(value, (builtins.int, np.integer)):
        return int64
    if isinstance(value, (builtins.float, np.floating)):
        return _default_float
    if isinstance(value, (builtins.complex, np.complexfloating)):
        return get_default_complex_dtype()
    raise TypeError(f"expected a tensor or a Python number, got {type(value).__name__}")
