"""Torch-named dtypes over NumPy dtypes, and torch's type-promotion rules."""

from __future__ import annotations

import builtins
import functools
import sys

import numpy as np

__all__ = ["dtype", "get_default_dtype", "set_default_dtype", "promote_types", "result_type"]


def package_prefix() -> str:
    """What the reprs of dtypes, layouts, memory formats and Size start with: ``torch.`` where
    chainrule answers ``import torch`` (one module object under both names, as tests/programs/_alias
    sets up), so that code written for torch prints and parses torch's names; else ``chainrule.``,
    the package the user imported (README: reprs name the package)."""
    modules = sys.modules
    return "torch." if modules.get("torch") is modules.get("chainrule") else "chainrule."


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
        return package_prefix() + self.name

    def __reduce__(self):
        return (_from_name, (self.name,))


class _Float16(dtype):
    """float16, whose first use routes ops through ``_opmath``: torch's CPU kernels reduce and
    multiply half-precision values in float32 and round once, NumPy's in float16 step by step.
    Programs that never name float16 never pay for the hook."""

    __slots__ = ()

    def __init__(self) -> None:  # the base's fields, but ``np`` is the property below
        self.name, self.is_floating_point, self.is_signed, self.itemsize, self._category = (
            "float16", True, True, 2, 2)

    @property
    def np(self):
        from . import _opmath

        _opmath.install()
        return _FLOAT16_NP

    @property
    def is_complex(self) -> builtins.bool:
        return False


_FLOAT16_NP = np.dtype(np.float16)
float16 = half = _Float16()
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


# ---- bfloat16 and the wide unsigned types (torch 2.3+)
# NumPy has no bfloat16; ml_dtypes (the "bf16" extra, what JAX uses) registers one with ufuncs that
# compute in float32 and round once, as torch's CPU kernels do. It is imported the first time a
# bfloat16 array is made, so scripts whose config dicts name torch.bfloat16 import fast and run
# without ml_dtypes; creating a bfloat16 tensor without it raises an ImportError naming the extra.
class _BFloat16(dtype):
    __slots__ = ()

    def __init__(self) -> None:  # the fields the base sets from a NumPy dtype, without one
        self.name, self.is_floating_point, self.is_signed, self.itemsize, self._category = (
            "bfloat16", True, True, 2, 2)

    @property
    def np(self):
        return _load_bfloat16()

    @property
    def is_complex(self) -> builtins.bool:  # without loading ml_dtypes
        return False


bfloat16 = _BFloat16()
uint16 = dtype("uint16", np.uint16)
uint32 = dtype("uint32", np.uint32)
uint64 = dtype("uint64", np.uint64)
# torch refuses to promote these with any other dtype ("Promotion for uint16, uint32, uint64 types
# is not supported") except that a floating type wins unchanged
_BARE_UNSIGNED = (uint16, uint32, uint64)
_bfloat16_np = None  # ml_dtypes' NumPy dtype once loaded
# the NumPy dtype kinds of chainrule's floating types: 'f', and 'V' for ml_dtypes' bfloat16 (a
# NumPy user dtype; chainrule has no other void dtype, from_numpy_dtype refuses structured ones).
# The ops spell it "fV" inline in their dtype-kind checks.
FLOAT_KINDS = "fV"


def has_bfloat16() -> builtins.bool:
    """Whether bfloat16 tensors can be made here: ml_dtypes imports (it is loaded if so)."""
    try:
        _load_bfloat16()
    except ImportError:
        return False
    return True


def _load_bfloat16():
    global _bfloat16_np
    if _bfloat16_np is None:
        try:
            import ml_dtypes
        except ImportError:
            raise ImportError('bfloat16 tensors need the ml_dtypes package: pip install "chainrule[bf16]" '
                              "(chainrule.bfloat16 exists without it, so dtype tables still evaluate)") from None
        _bfloat16_np = np.dtype(ml_dtypes.bfloat16)
        _BY_NP[_bfloat16_np] = bfloat16
        from . import _opmath

        _opmath.install()  # ops now round bfloat16 results from float32 accumulation
    return _bfloat16_np


def bfloat16_from_bits(bits: np.ndarray) -> np.ndarray:
    """Stored bfloat16 bits (uint16, as torch and safetensors write them) as a bfloat16 array, or,
    without ml_dtypes, widened exactly to float32 (a bfloat16 is the top half of a float32)."""
    if has_bfloat16():
        return bits.view(_load_bfloat16())
    return (bits.astype(np.uint32) << 16).view(np.float32)


def finfo_of(np_dtype):
    """NumPy's finfo for a float array dtype; ml_dtypes' (the same fields) for bfloat16, which NumPy's refuses."""
    if np.dtype(np_dtype).kind == "V":
        import ml_dtypes

        return ml_dtypes.finfo(np_dtype)
    return np.finfo(np_dtype)


# ---- the 8-bit and packed 4-bit float types (torch 2.1+)
# Libraries name them in dtype tables at import (transformers' quantisation maps) and cast
# weights to them. The float8 types are stored as ml_dtypes' (the "bf16" extra, loaded at the
# first float8 array as for bfloat16); casts to them follow torch's rounding (to_float8). torch
# refuses to promote them with anything. float4_e2m1fn_x2 (two values packed in a byte) has no
# storage here: making a tensor of it raises torch's "not implemented" error.
class _LowPrecisionFloat(dtype):
    __slots__ = ("_scalar_name", "_np")

    def __init__(self, name: str, scalar_name: str, is_signed: builtins.bool = True) -> None:
        self.name, self.is_floating_point, self.is_signed, self.itemsize, self._category = (
            name, True, is_signed, 1, 2)
        self._scalar_name = scalar_name
        self._np = None

    @property
    def np(self):
        if self._np is None:
            self._np = _load_float8(self)
        return self._np

    @property
    def is_complex(self) -> builtins.bool:
        return False


def _load_float8(d: dtype):
    if d.name not in _FLOAT8_NAMES:
        raise NotImplementedError(f'"tensor storage" not implemented for \'{d._scalar_name}\' (chainrule has no '
                                  f"{d.name} tensors)")
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError(f'{d.name} tensors need the ml_dtypes package: pip install "chainrule[bf16]" '
                          f"(chainrule.{d.name} exists without it, so dtype tables still evaluate)") from None
    np_dtype = np.dtype(getattr(ml_dtypes, d.name))
    _BY_NP[np_dtype] = d
    if np_dtype not in FLOAT8_NP:
        FLOAT8_NP[np_dtype] = d._scalar_name
        from . import _opmath

        _opmath.install()  # ops now refuse float8 arrays where torch has no kernel for them
    return np_dtype


# each loaded float8 NumPy dtype, with torch's scalar name for error messages (filled by _load_float8)
FLOAT8_NP: dict = {}


def refuse_float8(np_dtype, kernel: str) -> None:
    """torch's error when an array of ``np_dtype``, a float8 type, meets an op whose CPU kernel
    ``kernel`` has no float8 instance; any other dtype passes."""
    scalar_name = FLOAT8_NP.get(np_dtype)
    if scalar_name is not None:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{scalar_name}'")


float8_e4m3fn = _LowPrecisionFloat("float8_e4m3fn", "Float8_e4m3fn")
float8_e4m3fnuz = _LowPrecisionFloat("float8_e4m3fnuz", "Float8_e4m3fnuz")
float8_e5m2 = _LowPrecisionFloat("float8_e5m2", "Float8_e5m2")
float8_e5m2fnuz = _LowPrecisionFloat("float8_e5m2fnuz", "Float8_e5m2fnuz")
float8_e8m0fnu = _LowPrecisionFloat("float8_e8m0fnu", "Float8_e8m0fnu", is_signed=False)
float4_e2m1fn_x2 = _LowPrecisionFloat("float4_e2m1fn_x2", "Float4_e2m1fn_x2")
_FLOAT8_NAMES = frozenset(d.name for d in (float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz,
                                            float8_e8m0fnu))


class _ComplexHalf(_LowPrecisionFloat):
    """torch.complex32 (chalf): a pair of float16s. NumPy has no such type, so it has no storage here
    (as float4_e2m1fn_x2): the name exists because libraries list it in dtype tables (kornia's
    geometry checks ``dtype not in (..., torch.complex32, ...)`` on every warp), and making a tensor
    of it raises torch's "not implemented" error."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("complex32", "ComplexHalf")
        self.is_floating_point, self.itemsize, self._category = False, 4, 3

    @property
    def is_complex(self) -> builtins.bool:
        return True


complex32 = chalf = _ComplexHalf()
_UNSTORED = (float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz, float8_e8m0fnu, float4_e2m1fn_x2,
             complex32)


# ---- the sub-byte integer types (torch 2.3+: uint1..uint7, int1..int7)
# Quantisation libraries list them at import (diffusers' torchao dtype table); torch itself has
# no kernels for them. chainrule has no storage for them: making a tensor raises, as for float4.
class _SubByteInteger(dtype):
    __slots__ = ("_scalar_name",)

    def __init__(self, bits: builtins.int, signed: builtins.bool) -> None:
        self.name = f"{'int' if signed else 'uint'}{bits}"
        self.is_floating_point, self.is_signed, self.itemsize, self._category = False, signed, 1, 1
        self._scalar_name = f"{'Int' if signed else 'UInt'}{bits}"

    @property
    def np(self):
        raise NotImplementedError(f'"tensor storage" not implemented for \'{self._scalar_name}\' (chainrule has no '
                                  f"{self.name} tensors)")

    @property
    def is_complex(self) -> builtins.bool:
        return False


uint1, uint2, uint3, uint4, uint5, uint6, uint7 = (_SubByteInteger(bits, signed=False) for bits in range(1, 8))
int1, int2, int3, int4, int5, int6, int7 = (_SubByteInteger(bits, signed=True) for bits in range(1, 8))
_SUB_BYTE = (uint1, uint2, uint3, uint4, uint5, uint6, uint7, int1, int2, int3, int4, int5, int6, int7)


# ---- the quantized integer types (torch.qint8, quint8, qint32, quint4x2)
# A quantized tensor (ops/quantized.py) stores its integers in the NumPy type below and carries its
# scale and zero point beside them; these dtypes name that pairing. They map no NumPy dtype back
# (_BY_NP), so an int8 array is never taken for a qint8 tensor.
class _QuantizedInteger(dtype):
    __slots__ = ("_scalar_name", "_np", "quant_min", "quant_max")

    def __init__(self, name: str, scalar_name: str, np_dtype, quant_min: builtins.int,
                 quant_max: builtins.int) -> None:
        self.name, self.is_floating_point, self._category = name, False, 1
        self._scalar_name, self._np = scalar_name, np.dtype(np_dtype)
        self.itemsize = self._np.itemsize
        self.quant_min, self.quant_max = quant_min, quant_max

    @property
    def is_signed(self) -> builtins.bool:
        # torch's isSignedType refuses the quantized types rather than answer for their integers
        raise RuntimeError("isSignedType not supported for quantized types")

    @property
    def np(self):
        return self._np

    @property
    def is_complex(self) -> builtins.bool:
        return False


qint8 = _QuantizedInteger("qint8", "QInt8", np.int8, -128, 127)
quint8 = _QuantizedInteger("quint8", "QUInt8", np.uint8, 0, 255)
qint32 = _QuantizedInteger("qint32", "QInt32", np.int32, -(2 ** 31), 2 ** 31 - 1)
quint4x2 = _QuantizedInteger("quint4x2", "QUInt4x2", np.uint8, 0, 15)
_QUANTIZED = (qint8, quint8, qint32, quint4x2)


def to_float8(array: np.ndarray, np_dtype, xp=np) -> np.ndarray:
    """``array`` cast to an ml_dtypes float8 dtype with torch's conversion: round to nearest even
    (ml_dtypes' cast), then torch's own rules where they differ: float8_e4m3fn saturates every
    value beyond ±448 (infinities too) to ±448, float8_e5m2 writes NaN as 0x7F/0xFF, and
    float8_e8m0fnu (a power of two, no sign) encodes the magnitude, zero as its smallest 2^-127.
    ``xp``: the module of a device array (computed where it lies)."""
    name = np_dtype.name
    if name == "float8_e8m0fnu":
        return _to_e8m0(array, xp).view(np_dtype)
    out = array.astype(np_dtype)
    if name == "float8_e4m3fn":
        overflow = ((out.view(np.uint8) & 0x7F) == 0x7F) & ~xp.isnan(array)
        out = xp.where(overflow, (xp.signbit(array).astype(np.uint8) << 7 | 0x7E).view(np_dtype), out)
    elif name == "float8_e5m2":
        out = xp.where(xp.isnan(array), (xp.signbit(array).astype(np.uint8) << 7 | 0x7F).view(np_dtype), out)
    return out


def _to_e8m0(array: np.ndarray, xp=np) -> np.ndarray:
    """The float8_e8m0fnu byte (a biased exponent) of each |value|, rounded from the float32 bits as
    torch's conversion rounds (not through ml_dtypes, whose rounding of subnormal inputs changed
    between its releases): up when the mantissa's top bit is set and the value is not exactly
    halfway on a subnormal; NaN and infinity give NaN (0xFF), zero the smallest 2^-127 (0x00)."""
    bits = xp.abs(xp.asarray(array, dtype=np.float32)).view(np.uint32)
    exponent = (bits >> 23).astype(np.uint32)
    mantissa = bits & 0x7FFFFF
    guard = (mantissa >> 22) & 1
    rest = mantissa & 0x3FFFFF  # round and sticky bits
    # round half to even on the exponent's implied bit: normal values (implied 1) round a half up
    round_up = (guard == 1) & ((rest != 0) | (exponent > 0))
    biased = xp.minimum(exponent + round_up, 0xFF)
    return xp.where(exponent == 0xFF, 0xFF, biased).astype(np.uint8)


@functools.cache
def _name_of(np_dtype) -> str:
    """``np_dtype.name``, remembered: NumPy works a dtype's name out in Python on every read (about
    as long as the cast of a small array), and every cast asks for it."""
    return np_dtype.name


def cast_array(array, np_dtype):
    """``array.astype(np_dtype)``, with torch's rounding rules when the target is a float8 type."""
    if _name_of(np_dtype) in _FLOAT8_NAMES and array.dtype != np_dtype:
        if isinstance(array, (np.ndarray, np.generic)):
            xp, array = np, np.asarray(array)
        else:  # a device array, cast on its device
            from ._backend import array_module

            xp = array_module(array)
        # bfloat16 and the other float8 types widen exactly to float32 first
        widen = array.dtype.name == "bfloat16" or array.dtype.name in _FLOAT8_NAMES
        return to_float8(array.astype(np.float32) if widen else array, np_dtype, xp)
    if array.dtype.kind in "fc" and np_dtype.kind in "iu":
        # torch converts NaN, infinities and out-of-range floats to integers without a word (x-transformers'
        # relative-position buckets take .long() of log(0) = -inf and mask it away); NumPy would warn
        with np.errstate(invalid="ignore", over="ignore"):
            return array.astype(np_dtype)
    # torch narrows a float beyond the target's range (float32 -> float16, finfo.min masks) to +-inf without a word
    with np.errstate(over="ignore", invalid="ignore"):  # (and a signalling NaN quietly)
        narrowed = array.astype(np_dtype)
    if isinstance(array, np.ndarray) and _is_float(array.dtype) and _is_float(np_dtype):
        # (The device's conversion is left to its own library: torch's CUDA words are not known here.)
        _torchs_nan_bits(array, narrowed)
    return narrowed


def _torchs_nan_bits(source: np.ndarray, narrowed: np.ndarray) -> None:
    """The NaNs of ``narrowed`` (cast from ``source`` by NumPy/ml_dtypes) given the bits torch's CPU
    conversions write, in place."""
    target = _name_of(narrowed.dtype)
    if source.dtype == narrowed.dtype or not (target in ("bfloat16", "float16") or _name_of(source.dtype) == "float16"
                                              and target in ("float32", "float64")):
        return
    # (NaN-ness survives the cast: found on whichever side NumPy compares natively, float16's being slow)
    nan = narrowed != narrowed if target in ("float32", "float64") else source != source
    if not nan.any():
        return
    if target == "bfloat16":
        # one bfloat16 NaN whatever its sign and payload: 0xFFFF where the vectorised conversion runs
        # (the all-ones NaN mask), else 0x7FC0 (the scalar conversion: a 0-d or strided input, any
        # float16 one, and a float64 input's last run % 16 elements)
        bits = narrowed.view(np.uint16)
        bits[nan] = 0x7FC0
        bits[nan & _bfloat16_vectorised(source)] = 0xFFFF
    elif target == "float16":
        # through float32 (a float64 rounded there first, quiet), then sign, quiet bit and the top ten
        # bits of float32's payload, as c10's fp16_ieee_from_fp32_value: NumPy keeps a signalling NaN
        narrowed.view(np.uint16)[nan] = _half_nan_bits(source[nan])
    elif _name_of(source.dtype) == "float16":
        # widening sets the quiet bit, as the hardware's conversion does (NumPy's keeps a signalling NaN)
        quiet = np.uint32(0x00400000) if target == "float32" else np.uint64(0x0008000000000000)
        widened = narrowed.view(np.uint32 if target == "float32" else np.uint64)
        widened[nan] |= quiet


def _bfloat16_vectorised(source: np.ndarray) -> np.ndarray | bool:
    """Where torch's CPU conversion of ``source`` to bfloat16 takes its vectorised loop. Its iterator
    walks the input in memory order (the inner loop along the smallest stride) and vectorises a
    dense inner loop; float32 through its last element, float64 in blocks of 16 (two float vectors
    per bfloat16 vector), the rest of each run one by one."""
    if source.ndim == 0 or source.dtype.name not in ("float32", "float64"):
        return False
    strides = [abs(stride) for stride, size in zip(source.strides, source.shape) if size > 1]
    if min(strides, default=source.itemsize) != source.itemsize:
        return False
    if source.dtype.name == "float32":
        return True
    # float64: the runs the iterator coalesces, in memory order (one run when the memory is dense)
    order = sorted(range(source.ndim), key=lambda axis: -abs(source.strides[axis]))
    in_memory_order = source.transpose(order)
    run = in_memory_order.size if in_memory_order.flags.c_contiguous else in_memory_order.shape[-1]
    position = np.arange(in_memory_order.size).reshape(in_memory_order.shape) % max(run, 1)
    vectorised = position < run - run % 16
    return vectorised.transpose(np.argsort(order))


def _is_float(np_dtype) -> bool:
    return np_dtype.kind == "f" or _name_of(np_dtype) == "bfloat16"  # (ml_dtypes' bfloat16 is of kind 'V')


def _half_nan_bits(nans: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # a signalling float64 NaN, quieted as C's cast quiets it
        single = nans.astype(np.float32).view(np.uint32)
    return (((single >> 16) & 0x8000) | 0x7E00 | ((single >> 13) & 0x3FF)).astype(np.uint16)


def python_numbers_to_half(data, np_dtype) -> np.ndarray:
    """Python numbers (doubles) as a float16 or bfloat16 array with torch's NaN bits: its scalar
    conversion writes 0x7FC0 for any bfloat16 NaN and quiets a float16 one."""
    array = np.array(data, dtype=np_dtype)
    nan = array != array
    if nan.any():
        wide = np.array(data, dtype=np.float64)[nan]
        array.view(np.uint16)[nan] = 0x7FC0 if np_dtype.name == "bfloat16" else _half_nan_bits(wide)
    return array


_ALL = (float16, float32, float64, uint8, int8, int16, int32, int64, bool, complex64, complex128, bfloat16,
        uint16, uint32, uint64, *_UNSTORED, *_SUB_BYTE, *_QUANTIZED)
_BY_NP = {d.np: d for d in _ALL if d is not bfloat16 and d is not float16 and d not in _UNSTORED and d not in _SUB_BYTE
          and d not in _QUANTIZED}
_BY_NP[_FLOAT16_NP] = float16  # without touching float16.np, which installs the opmath hook
_BY_NAME = {d.name: d for d in _ALL}
_default_float = float32


def _from_name(name: str) -> dtype:
    return _BY_NAME[name]


def from_numpy_dtype(np_dtype) -> dtype:
    """The chainrule dtype for a NumPy dtype; raises TypeError for unsupported ones."""
    try:
        found = _BY_NP[np.dtype(np_dtype)]
        if found is float16:
            found.np  # noqa: B018 - a NumPy float16 array from the user (from_numpy, a checkpoint): as .half()
        return found
    except KeyError:
        if np.dtype(np_dtype).name == "bfloat16" and _bfloat16_np is None:  # an ml_dtypes array from the user
            _load_bfloat16()
            return from_numpy_dtype(np_dtype)
        if np.dtype(np_dtype).name in _FLOAT8_NAMES:  # likewise a float8 array of ml_dtypes
            found = _BY_NAME[np.dtype(np_dtype).name]
            _load_float8(found)
            return found
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
    """get_default_dtype() -> torch.dtype

    The floating-point dtype tensors get when none is given, float32 unless set
    (torch.get_default_dtype)."""
    return _default_float


def get_default_complex_dtype() -> dtype:
    """The complex counterpart of the default float dtype (torch.tensor(1j) is complex64)."""
    return complex128 if _default_float is float64 else complex64


def set_default_dtype(d) -> None:
    """set_default_dtype(d) -> None

    Makes the floating-point dtype ``d`` the default for new tensors (torch.set_default_dtype)."""
    global _default_float
    if not isinstance(d, dtype):  # (torch takes no Python type, NumPy dtype, name or None here)
        raise TypeError("invalid dtype object: only floating-point types are supported as the default type")
    if not d.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    _default_float = d


def promote_types(type1: dtype, type2: dtype) -> dtype:
    """torch.promote_types: the smallest dtype both values fit in, by torch's table."""
    a, b = type1, type2
    if a is b:
        return a
    if a in _SUB_BYTE or b in _SUB_BYTE:  # torch's table sends them down its bare-unsigned refusal
        raise _unsigned_promotion_error(a, b)
    if (a is complex32 or b is complex32) and not (a in _UNSTORED[:-1] or b in _UNSTORED[:-1]):
        return _promote_complex32(b if a is complex32 else a, a, b)
    if a in _UNSTORED or b in _UNSTORED:
        raise RuntimeError("Promotion for Float8 Types is not supported, attempted to promote "
                           f"{scalar_name(a)} and {scalar_name(b)}")
    if a._category == 3 and b._category == 2 or a._category == 2 and b._category == 3:
        return _BY_NP[np.promote_types(a.np, b.np)]  # float64 + complex64 -> complex128, as torch
    if a._category != b._category:
        if a._category < 2 and b._category < 2 and (a in _BARE_UNSIGNED or b in _BARE_UNSIGNED):
            raise _unsigned_promotion_error(a, b)
        # across categories the higher category's type wins unchanged (int64 + float16 -> float16)
        return a if a._category > b._category else b
    if a in _BARE_UNSIGNED or b in _BARE_UNSIGNED:
        raise _unsigned_promotion_error(a, b)
    if a is bfloat16 or b is bfloat16:  # bfloat16 with float16 (neither holds the other) -> float32
        other = b if a is bfloat16 else a
        return float32 if other is float16 else other
    return _BY_NP[np.promote_types(a.np, b.np)]


def _promote_complex32(other: dtype, a: dtype, b: dtype) -> dtype:
    # torch's table: complex32 holds bools, integers and float16; a wider float or complex widens it
    if other in _BARE_UNSIGNED:
        raise _unsigned_promotion_error(a, b)
    if other._category < 2 or other in (float16, complex32):
        return complex32
    return promote_types(complex64, other)


# the scalar-type names torch's messages use
TORCH_SCALAR_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double", "uint8": "Byte",
                      "int8": "Char", "int16": "Short", "int32": "Int", "int64": "Long", "bool": "Bool",
                      "bfloat16": "BFloat16", "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64",
                      "complex64": "ComplexFloat", "complex128": "ComplexDouble",
                      **{d.name: d._scalar_name for d in (*_UNSTORED, *_SUB_BYTE)}}


def scalar_name(value) -> str:
    """torch's ScalarType name (Float, Long, ComplexFloat...) of a dtype, NumPy dtype or dtype name,
    as torch's messages print it: the one table for every op's error text."""
    name = value if isinstance(value, str) else getattr(value, "name", None) or np.dtype(value).name
    return TORCH_SCALAR_NAMES.get(name, name)


_LEGACY_TENSOR_TYPES = {"Float", "Double", "Half", "Byte", "Char", "Short", "Int", "Long"}


def type_string(value) -> str:
    """How torch's C++ messages print a CPU tensor's type (``expand(torch.FloatTensor{[2, 3]}, ...)``):
    the legacy ``torch.<Name>Tensor`` where one exists, else ``CPU<Name>Type`` (Bool, BFloat16, complex)."""
    name = scalar_name(value)
    return f"torch.{name}Tensor" if name in _LEGACY_TENSOR_TYPES else f"CPU{name}Type"


_CPP_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
                   "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
                   "uint8": "unsigned char", "bool": "bool", "complex64": "c10::complex<float>",
                   "complex128": "c10::complex<double>", "uint16": "short unsigned int", "uint32": "unsigned int",
                   "uint64": "long unsigned int"}


def cpp_type_name(dtype) -> str:
    """``dtype`` as torch's C++ error messages name it (float32 -> "float")."""
    return _CPP_TYPE_NAMES.get(dtype.name, dtype.name)


# torch's CPU kernels for uint16/uint32/uint64 (its "barebones unsigned" types) are few: creation,
# copy and conversion, eq/ne, bitwise and/or/xor, mul, sum/cumsum, sort, cat, indexing and a few
# more; every other kernel refuses them, naming itself. This is the one table of the ops chainrule
# would compute with NumPy where torch 2.13 has no such kernel, each with torch's CPU kernel name
# (for a CUDA array the "_cpu" suffix becomes "_cuda", not checked against torch's CUDA build).
# Function classes are keyed "module.Class" (the module under chainrule.ops): autograd.function
# checks their first input's dtype where it dispatches them. Other keys ("module.function") are
# checked by the op itself with refuse_wide_unsigned, where one Function serves several torch
# kernels (Amax: max_all, max_values_cpu, aminmax_cpu) or no Function runs (comparisons).
NO_WIDE_UNSIGNED_KERNEL = {
    # Function classes
    "elementwise.Add": "add_stub", "elementwise.AddScaled": "add_stub", "elementwise.Sub": "add_stub",
    "elementwise.SubScaled": "add_stub", "elementwise.RSubTensors": "add_stub", "elementwise.Neg": "neg_cpu",
    "elementwise.Abs": "abs_cpu", "elementwise.Sign": "sign_cpu", "elementwise.Pow": "pow",
    "elementwise.PowScalar": "pow", "elementwise.Square": "pow", "elementwise.Remainder": "remainder_cpu",
    "elementwise.Maximum": "maximum_cpu", "elementwise.Minimum": "minimum_cpu", "elementwise.Fmax": "maximum_cpu",
    "elementwise.Fmin": "minimum_cpu", "elementwise.ClampMinByTensor": "maximum_cpu",
    "elementwise.ClampMaxByTensor": "minimum_cpu", "activation.Relu": "clamp_min_scalar_cpu",
    "activation.Hardtanh": "clamp_scalar_cpu", "special_functions.Heaviside": "heaviside_cpu",
    "shape.Tril": "tril", "shape.Triu": "triu", "index.IndexPut": "index_put",
    "index.Gather": "scatter_gather_tensor_cpu", "index.Scatter": "scatter_gather_tensor_cpu",
    "index.ScatterValue": "scatter_gather_scalar_cpu", "index.ScatterAdd": "scatter_gather_tensor_cpu",
    "index.IndexFill": "index_fill_cpu", "index.MaskedFill": "masked_fill", "index.MaskedFillTensor": "masked_fill",
    "index.MaskedScatter": "masked_scatter",
    # ops checking for themselves
    "elementwise.remainder": "remainder_cpu", "elementwise.fmod": "fmod_cpu", "elementwise.div_floor": "div_floor_cpu",
    "elementwise.div_trunc": "div_trunc_cpu", "elementwise.gcd": "gcd_cpu", "elementwise.lcm": "lcm_cpu",
    "elementwise.lt": "lt_cpu", "elementwise.le": "le_cpu", "elementwise.gt": "gt_cpu", "elementwise.ge": "ge_cpu",
    "elementwise.logical_and": "logical_and_cpu", "elementwise.logical_or": "logical_or_cpu",
    "elementwise.logical_xor": "logical_xor_cpu", "elementwise.clamp": "clamp_scalar_cpu",
    "elementwise.clamp_min": "clamp_min_scalar_cpu", "elementwise.clamp_max": "clamp_max_scalar_cpu",
    "elementwise.clamp_tensors": "clamp_cpu", "elementwise.addcmul": "addcmul_cpu_out",
    "reduce.max_all": "max_all", "reduce.min_all": "min_all", "reduce.max": "max_cpu", "reduce.min": "min_cpu",
    "reduce.amax": "max_values_cpu", "reduce.amin": "min_values_cpu", "reduce.aminmax": "aminmax_cpu",
    "reduce.argmax": "argmax_cpu", "reduce.argmin": "argmin_cpu", "reduce.cummax": "cummax_cpu",
    "reduce.cummin": "cummin_cpu", "reduce.count_nonzero": "nonzero_count_cpu", "reduce.topk": "topk_cpu",
    "reduce.kthvalue": "kthvalue_cpu", "reduce.median": "median_cpu", "reduce.median_dim": "median_out",
    "reduce.mode": "mode_cpu", "reduce.sum": "sum_cpu", "reduce.prod": "prod_out_cpu",
    "reduce.cumsum": "cumsum_out_cpu", "reduce.cumprod": "cumprod_out_cpu", "index.index_add": "scatter_gather_tensor_cpu", "index.index_copy": "index_copy_cpu",
    "index.take": "take_cpu", "index.masked_select": "masked_select", "index.nonzero": "nonzero_count_cpu",
    "methods.index_put": "index_put", "methods.put": "take_put_cpu", "bucketing.bincount": "bincount_cpu",
    "structural.isin": "isin_default_cpu", "linalg.dot": "dot", "linalg.mv": "addmv_impl_cpu",
    "linalg.mm": "addmm_impl_cpu_", "linalg.bmm": "bmm", "linalg.baddbmm": "baddbmm", "linalg.addr": "addr_cpu",
    "linalg.cross": "cross", "linalg.trace": "trace", "creation.arange_cpu": "arange_cpu",
    "creation.linspace_cpu": "linspace_cpu", "creation.logspace_cpu": "logspace_cpu", "creation.eye": "eye",
    "creation.randperm": "randperm",
}
WIDE_UNSIGNED = frozenset(np.dtype(t) for t in (np.uint16, np.uint32, np.uint64))


def refuse_wide_unsigned(op: str, array, kernel: str | None = None) -> None:
    """torch's NotImplementedError when ``array`` (an array, or the NumPy dtype an op computes in)
    is uint16/32/64 and ``op`` (a key of NO_WIDE_UNSIGNED_KERNEL) has no kernel for them;
    ``kernel``: the name already looked up."""
    dtype = array if isinstance(array, np.dtype) else array.dtype
    if dtype in WIDE_UNSIGNED:
        kernel = kernel or NO_WIDE_UNSIGNED_KERNEL.get(op)
        if kernel is not None:
            if not isinstance(array, (np.dtype, np.ndarray)) and kernel.endswith("_cpu"):
                kernel = kernel[:-4] + "_cuda"
            raise NotImplementedError(f"\"{kernel}\" not implemented for '{TORCH_SCALAR_NAMES[dtype.name]}'")


def _unsigned_promotion_error(a: dtype, b: dtype) -> RuntimeError:
    return RuntimeError("Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
                        f"{TORCH_SCALAR_NAMES[a.name]} and {TORCH_SCALAR_NAMES[b.name]}")


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
            # torch's parser reads an int past int64 as a uint64 Scalar, which a bool tensor cannot promote with
            s = uint64 if op.__class__ is builtins.int and op >= 1 << 63 else scalar_dtype(op)
            scalar_result = s if scalar_result is None else promote_types(scalar_result, s)
    return _combine(dim_result, _combine(zero_result, scalar_result))


def scalar_dtype(value) -> dtype:
    if isinstance(value, builtins.bool):
        return bool
    if isinstance(value, np.bool_):
        # torch's argument parser reads a NumPy bool as a double, not as a Python bool: int64 or
        # bool tensor * np.bool_(True) is float32 in torch 2.13
        return _default_float
    if isinstance(value, (builtins.int, np.integer)):
        return int64
    if isinstance(value, (builtins.float, np.floating)):
        return _default_float
    if isinstance(value, (builtins.complex, np.complexfloating)):
        return get_default_complex_dtype()
    raise TypeError(f"expected a tensor or a Python number, got {type(value).__name__}")


# c10's spelling of each type in "value cannot be converted to type ... without overflow"
_C10_TYPE_NAMES = {"float16": "c10::Half", "bfloat16": "c10::BFloat16", "float32": "float", "float64": "double",
                   "int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int", "int64": "int64_t",
                   "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t",
                   "complex64": "c10::complex<float>", "complex128": "c10::complex<double>"}
# the largest finite value of each floating type (float64 holds every Python float)
_FLOAT_MAX = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38, "float32": 3.4028234663852886e38}


def check_int_scalar(value: builtins.int) -> None:
    """Refuse a Python int that torch's argument parser cannot unpack into a Scalar, whatever the
    dtype: it reads an int64 or, above that, a uint64; past both, CPython's own OverflowError."""
    if not -(1 << 63) <= value < (1 << 64):
        raise OverflowError("int too big to convert" if value > 0 else "can't convert negative int to unsigned")


def checked_scalar(value, target: dtype):
    """The Python number ``value`` converted for an op computing in ``target``, as torch's
    ``checked_convert``: a RuntimeError "value cannot be converted to type c10::Half without
    overflow" when a finite value lies outside the type's range (inf and nan pass to a floating
    type; only in-range numbers, truncated toward zero, pass to an integer one). A negative
    integer wraps into an unsigned type (-1 -> 255 for uint8) when its magnitude fits, as in
    torch; a bool target takes any number's truth value. Anything else (a tensor, a NumPy
    scalar) is returned unchanged.
    """
    if type(value) is builtins.float and target._category >= 2 and -65504.0 <= value <= 65504.0:
        return value  # fits every floating type: the common case, kept short
    if not isinstance(value, (builtins.int, builtins.float, builtins.complex)):
        return value
    if isinstance(value, builtins.int):
        check_int_scalar(value)
    if target is bool:
        return builtins.bool(value)
    parts = (value.real, value.imag) if isinstance(value, builtins.complex) else (value,)
    if target._category >= 2:
        if len(parts) == 2 and value.imag and not target.is_complex:  # 1j does not fit a real type
            raise _overflow(target)
        limit = _FLOAT_MAX.get(target.to_real().name)
        if limit is not None and builtins.any(abs(p) > limit and abs(p) != np.inf for p in parts):
            raise _overflow(target)
        return value
    info = np.iinfo(target.np)
    number = parts[0]
    if len(parts) == 2 and value.imag:
        raise _overflow(target)
    if isinstance(number, builtins.float):
        if number != number or not info.min <= number <= info.max:
            raise _overflow(target)
        return builtins.int(number)
    if info.min == 0 and number < 0 and -number <= info.max:
        return number % (info.max + 1)  # two's-complement wrap: uint8 - 1 means uint8 + 255
    if not info.min <= number <= info.max:
        raise _overflow(target)
    return builtins.int(number)


def _overflow(target: dtype) -> RuntimeError:
    return RuntimeError(f"value cannot be converted to type {_C10_TYPE_NAMES[target.name]} without overflow")


# the Python types torch's parser takes for a dtype (float -> float64, int -> int64, ...)
_PYTHON_TYPE_DTYPES = (builtins.float, builtins.int, builtins.bool, builtins.complex)


def dtype_argument(op: str, value, overloaded: builtins.bool = False) -> dtype | None:
    """The ``dtype=`` argument of ``op`` as torch's argument parser takes it: a chainrule dtype, a
    Python type (float -> float64, int, bool, complex) or None; never a name ('float32') or a
    NumPy dtype, which chainrule's own ``to_dtype`` would accept (TypeError naming ``op``)."""
    if value is None or isinstance(value, dtype):
        return value
    if builtins.any(value is t for t in _PYTHON_TYPE_DTYPES):
        return to_dtype(value)
    raise argument_error(op, "dtype", "torch.dtype", value, overloaded)


def parser_type_name(value) -> str:
    """The type name torch's argument parser prints for ``value``: the bare name of a builtin or
    Python-defined class (str, NoneType, MyThing), the dotted one of an extension type
    (numpy.bool, numpy.dtypes.Float32DType)."""
    cls = type(value)
    if cls.__module__ == "builtins" or cls.__flags__ & (1 << 9):  # Py_TPFLAGS_HEAPTYPE
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def as_torch_c_type(cls: type, c_name: str, creatable: builtins.bool = True, read_only: builtins.bool = True) -> type:
    """Give ``cls``, chainrule's stand-in for one of torch's C types, that type's Python-level errors
    under its C name ``c_name`` (CPython's tp_name: 'torch.dtype', 'torch._C.Generator'): reading,
    writing or deleting an attribute it lacks ("'torch.dtype' object has no attribute 'foo'"),
    writing one it has ("attribute 'is_signed' of 'torch.dtype' objects is not writable", for a
    method "'torch.Size' object attribute 'numel' is read-only"), and, unless ``creatable``,
    calling the type ("cannot create 'torch.dtype' instances": its instances are the module's
    constants, so this runs once they are made). Its own state, under a leading underscore, stays
    writable; ``__getattr__`` runs only when a lookup has failed, so reads cost nothing more. Not
    ``read_only``, only reads are given torch's errors (device: its constructor, run per factory
    call given a string, would pay for a Python ``__setattr__``)."""
    def __getattr__(self, attr):
        name = c_name if type(self).__module__.startswith("chainrule") else type(self).__name__
        raise AttributeError(f"'{name}' object has no attribute '{attr}'", name=attr, obj=self)

    def __setattr__(self, attr, value):
        # (chainrule's own state; Python's __class__, __dict__ ...; a user's subclass, a Python
        # class whose instances take attributes, as a subclass of torch's C type does)
        if attr.startswith("_") or not type(self).__module__.startswith("chainrule"):
            object.__setattr__(self, attr, value)
            return
        found = getattr(type(self), attr, None)
        if callable(found) and not isinstance(found, type):
            raise AttributeError(f"'{c_name}' object attribute '{attr}' is read-only")
        if found is not None or attr in getattr(self, "__dict__", ()):
            raise AttributeError(f"attribute '{attr}' of '{c_name}' objects is not writable")
        raise AttributeError(f"'{c_name}' object has no attribute '{attr}'", name=attr, obj=self)

    def __delattr__(self, attr):
        if attr.startswith("_") or not type(self).__module__.startswith("chainrule"):
            object.__delattr__(self, attr)
        else:
            __setattr__(self, attr, None)

    def __new__(cls, *args, **kwargs):
        raise TypeError(f"cannot create '{c_name}' instances")

    cls.__getattr__ = __getattr__
    if read_only:
        cls.__setattr__ = __setattr__
        cls.__delattr__ = __delattr__
    if not creatable:
        cls.__new__ = staticmethod(__new__)
    return cls


def c_type_name(value) -> str:
    """``value``'s type as torch's C++ messages print it (CPython's tp_name): parser_type_name's,
    with chainrule's stand-ins for torch's C types under torch's names (torch.dtype, torch.Size,
    torch._C.Generator)."""
    cls = type(value)
    if cls.__module__.startswith("chainrule"):
        if cls.__name__ in ("dtype", "device", "layout", "memory_format", "Size"):
            return f"torch.{cls.__name__}"
        if cls.__name__ == "Generator":
            return "torch._C.Generator"
    return parser_type_name(value)


def invalid_combination(op: str, *args) -> TypeError:
    """torch's parser's TypeError when no signature of an overloaded ``op`` takes these positional
    arguments (``clamp(2, t)``: "got (int, Tensor)")."""
    given = ", ".join(parser_type_name(a) for a in args)
    return TypeError(f"{op}() received an invalid combination of arguments - got ({given}), but expected one of "
                     f"torch.{op}'s signatures")


def argument_error(op: str, name: str, expected: str, value, overloaded: builtins.bool = False) -> TypeError:
    """torch's parser's TypeError for argument ``name`` of ``op``; an ``overloaded`` op (several
    signatures) words it as "received an invalid combination of arguments"."""
    if overloaded:
        return TypeError(f"{op}() received an invalid combination of arguments - got ({name}="
                         f"{parser_type_name(value)}), but expected {name} to be {expected}")
    return TypeError(f"{op}(): argument '{name}' must be {expected}, not {parser_type_name(value)}")


as_torch_c_type(dtype, "torch.dtype", creatable=False)
# torch has one dtype type: its float16's and bfloat16's print as the others' do
for _kind in (_Float16, _BFloat16, _LowPrecisionFloat, _ComplexHalf, _SubByteInteger, _QuantizedInteger):
    _kind.__name__ = _kind.__qualname__ = "dtype"
    _kind.__module__ = "chainrule"
