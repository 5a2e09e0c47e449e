"""The masked reductions and normalizations: fill what the mask leaves out with the op's identity, then
run the ordinary op. ``where`` routes no gradient to a filled element, which is torch's zero gradient
for masked-out elements."""

from __future__ import annotations

import builtins
import math

import numpy as np

from .. import _dtype, _layout
from ..nn import functional as F
from ..ops.creation import ones, tensor
from ..ops.elementwise import _conj, maximum, where
from ..ops.elementwise import logaddexp as _logaddexp
from ..ops.linalg import vector_norm
from ..ops.reduce import amax as _amax
from ..ops.reduce import amin as _amin
from ..ops.reduce import argmax as _argmax
from ..ops.reduce import argmin as _argmin
from ..ops.reduce import cumprod as _cumprod
from ..ops.reduce import cumsum as _cumsum
from ..ops.reduce import logsumexp as _logsumexp
from ..ops.shape import broadcast_to
from ..ops.statistics import nanmedian
from ..tensor import Tensor

# integer dtypes that sum and prod widen to int64 when no dtype is given (as torch.sum does)
_WIDENED_TO_INT64 = ("uint8", "bool", "int8", "int16", "int32")


def _dtype_name(dtype) -> str:
    return str(dtype).rsplit(".", 1)[-1]


def _integer_bound(dtype, op_name: str, lowest: bool) -> Tensor:
    name = _dtype_name(dtype)
    if name == "bool" or not (name.startswith("int") or name == "uint8"):
        # torch has no identity for these (bool, the wider unsigned types) and says so
        raise NotImplementedError(f"identity of {op_name} on {dtype} input")
    info = np.iinfo(getattr(np, name))
    return tensor(int(info.min if lowest else info.max), dtype=dtype)


def _identity(op_name: str, input: Tensor, ord=None) -> Tensor:
    """The value a masked-out element takes so that it cannot change ``op_name``'s result."""
    dtype = input.dtype
    if op_name == "sum":
        return tensor(0, dtype=dtype)
    if op_name == "prod":
        return tensor(1, dtype=dtype)
    if op_name == "norm":
        return tensor(math.inf if ord == -math.inf else 0, dtype=dtype)
    if op_name == "median":  # nanmedian skips NaN
        return tensor(math.nan, dtype=dtype)
    if op_name in ("amax", "logsumexp", "logaddexp"):
        if dtype.is_floating_point or (op_name == "logsumexp" and dtype.is_complex):
            return tensor(-math.inf, dtype=dtype)
        return _integer_bound(dtype, op_name, lowest=True)
    if op_name == "amin":
        if dtype.is_floating_point:
            return tensor(math.inf, dtype=dtype)
        return _integer_bound(dtype, op_name, lowest=False)
    raise NotImplementedError(f"identity of {op_name} on {dtype} input")


def _canonical_dims(dim, ndim: int) -> tuple[int, ...]:
    """``dim`` as a sorted tuple of non-negative dims; None and () mean every dim (torch's masked reading)."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    ndim = builtins.max(ndim, 1)
    seen: list[int] = []
    for d in ((dim,) if isinstance(dim, int) else dim):
        if d in seen:
            raise RuntimeError(f"dim={d} appears multiple times in the list of dims")
        if d >= ndim or d < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d})")
        seen.append(d % ndim)
    return tuple(sorted(seen))


# torch's masked ops accept strided tensors (and some sparse ones, which chainrule lacks); a nested tensor
# is refused with a ValueError naming the op and the layouts it takes
_ANY_LAYOUT = "strided, sparse_coo or sparse_csr tensor"
_STRIDED = "strided tensor"


def _strided_only(input: Tensor, op: str, accepted: str = _STRIDED) -> None:
    if input.layout is not _layout.strided:
        raise ValueError(f"masked {op} expects {accepted} (got {input.layout} tensor)")


def _input_mask(input: Tensor, mask: Tensor) -> Tensor:
    """The mask broadcast to the input's shape, as bool."""
    if input.layout is not _layout.strided:
        raise ValueError(f"_input_mask expects strided or sparse COO or sparse CSR tensor but got {input.layout}")
    if tuple(mask.shape) != tuple(input.shape):
        if mask.ndim > input.ndim:
            raise IndexError(
                "_input_mask expected broadcastable mask (got mask dimensionality higher than of the input)")
        mask = broadcast_to(mask.clone(), input.shape)
    return mask.to(dtype=_dtype.bool)


def _masked_input(op_name: str, input: Tensor, mask, ord=None) -> Tensor:
    if mask is None:
        return input
    return where(_input_mask(input, mask), input, _identity(op_name, input, ord))


def _sum_dtype(input: Tensor, dtype):
    if dtype is not None:
        return dtype
    return _dtype.int64 if _dtype_name(input.dtype) in _WIDENED_TO_INT64 else input.dtype


def sum(input: Tensor, dim=None, *, keepdim: bool | None = False, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.sum: the sum of the elements the mask keeps (0 where it keeps none)."""
    dtype = _sum_dtype(input, dtype)
    dims = _canonical_dims(dim, input.ndim)
    filled = _masked_input("sum", input, mask)
    _strided_only(filled, "sum", _ANY_LAYOUT)
    return filled.sum(dims or None, bool(keepdim), dtype=dtype)


def prod(input: Tensor, dim=None, *, keepdim: bool | None = False, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.prod: the product of the elements the mask keeps (1 where it keeps none)."""
    dtype = _sum_dtype(input, dtype)
    dims = _canonical_dims(dim, input.ndim)
    result = _masked_input("prod", input, mask)
    _strided_only(result, "prod", _ANY_LAYOUT)
    result = result.to(dtype=dtype)
    for d in reversed(dims):  # the highest dim first, so the lower dims keep their numbers
        result = result.prod(dim=d, keepdim=bool(keepdim))
    return result


def cumsum(input: Tensor, dim: int, *, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.cumsum: masked-out elements add 0."""
    dtype = input.dtype if dtype is None else dtype
    return _filled_along_dim("cumsum", "sum", _cumsum, input, dim, dtype, mask).to(dtype=dtype)


def cumprod(input: Tensor, dim: int, *, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.cumprod: masked-out elements multiply by 1."""
    dtype = input.dtype if dtype is None else dtype
    return _filled_along_dim("cumprod", "prod", _cumprod, input, dim, dtype, mask).to(dtype=dtype)


def amax(input: Tensor, dim=None, *, keepdim: bool | None = False, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.amax: -inf (the dtype's lowest integer) where the mask keeps nothing."""
    dtype = input.dtype if dtype is None else dtype
    filled = _masked_input("amax", input, mask)
    _strided_only(filled, "amax", _ANY_LAYOUT)
    return _amax(filled, _canonical_dims(dim, filled.ndim), bool(keepdim)).to(dtype=dtype)


def amin(input: Tensor, dim=None, *, keepdim: bool | None = False, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.amin: +inf (the dtype's highest integer) where the mask keeps nothing."""
    dtype = input.dtype if dtype is None else dtype
    filled = _masked_input("amin", input, mask)
    _strided_only(filled, "amin", _ANY_LAYOUT)
    return _amin(filled, _canonical_dims(dim, filled.ndim), bool(keepdim)).to(dtype=dtype)


def argmax(input: Tensor, dim: int | None = None, *, keepdim: bool | None = False, dtype=None,
           mask: Tensor | None = None) -> Tensor:
    """torch.masked.argmax; like torch's, the indices come back in ``dtype`` (the input's by default)."""
    dtype = input.dtype if dtype is None else dtype
    filled = _masked_input("amax", input, mask)
    _strided_only(filled, "argmax")
    return _argmax(filled, dim, bool(keepdim)).to(dtype=dtype)


def argmin(input: Tensor, dim: int | None = None, *, keepdim: bool | None = False, dtype=None,
           mask: Tensor | None = None) -> Tensor:
    """torch.masked.argmin; like torch's, the indices come back in ``dtype`` (the input's by default)."""
    dtype = input.dtype if dtype is None else dtype
    filled = _masked_input("amin", input, mask)
    _strided_only(filled, "argmin")
    return _argmin(filled, dim, bool(keepdim)).to(dtype=dtype)


def _count(input: Tensor, dim, keepdim: bool, mask) -> Tensor:
    """How many elements each output element reduces (int64)."""
    if mask is None:
        return sum(ones(tuple(input.shape), dtype=_dtype.int64), dim, keepdim=keepdim)
    return mask.sum(dim=dim, keepdim=keepdim)


def mean(input: Tensor, dim=None, *, keepdim: bool | None = False, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.mean: NaN where the mask keeps nothing (0 / 0)."""
    named = dtype is not None
    dtype = dtype if named else input.dtype
    if not (dtype.is_floating_point or dtype.is_complex):
        raise ValueError(f"mean(): Could not infer output dtype. {'Optional' if named else 'Input'} dtype must be "
                         f"either a floating point or complex dtype. Got: {dtype}")
    _strided_only(input, "mean", "strided or sparse_csr tensor")
    inmask = None if mask is None else _input_mask(input, mask)
    total = sum(input, dim, keepdim=keepdim, dtype=dtype, mask=inmask)
    return total / _count(input, dim, bool(keepdim), inmask)


def median(input: Tensor, dim: int = -1, *, keepdim: bool = False, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.median: nanmedian over the kept elements (NaN where none is kept)."""
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dims(dim, input.ndim)[0]
    is_float = input.dtype.is_floating_point
    if not is_float:
        input = input.to(dtype=_dtype.float32)
    filled = _masked_input("median", input, mask)
    _strided_only(filled, "median")
    output = nanmedian(filled, d, keepdim).values
    if is_float:
        return output
    if bool(output.isnan().any()):
        raise ValueError("masked median expects no fully masked out rows if dtype is not floating point")
    return output.to(dtype=dtype)


def logsumexp(input: Tensor, dim=None, *, keepdim: bool = False, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.logsumexp: -inf where the mask keeps nothing."""
    dtype = input.dtype if dtype is None else dtype
    dims = _canonical_dims(dim, input.ndim)
    filled = _masked_input("logsumexp", input, mask)
    _strided_only(filled, "logsumexp")
    return _logsumexp(filled, dims, keepdim=keepdim).to(dtype=dtype)


def logaddexp(input: Tensor, other: Tensor, *, dtype=None, input_mask: Tensor | None = None,
              other_mask: Tensor | None = None) -> Tensor:
    """torch.masked.logaddexp: each operand's masked-out elements count as -inf."""
    dtype = input.dtype if dtype is None else dtype
    if input.layout is not _layout.strided or other.layout is not _layout.strided:
        raise ValueError(f"masked logaddexp expects strided tensors (got {input.layout} tensor for input, "
                         f"{other.layout} for other)")
    return _logaddexp(_masked_input("logaddexp", input, input_mask),
                      _masked_input("logaddexp", other, other_mask)).to(dtype=dtype)


def norm(input: Tensor, ord: float | None = 2.0, dim=None, *, keepdim: bool | None = False, dtype=None,
         mask: Tensor | None = None) -> Tensor:
    """torch.masked.norm: the vector norm of the kept elements (0 where none is kept; inf for ord=-inf)."""
    dtype = input.dtype if dtype is None else dtype
    filled = _masked_input("norm", input, mask, ord)
    _strided_only(filled, "norm")
    return vector_norm(filled, ord, _canonical_dims(dim, input.ndim), bool(keepdim), dtype=dtype)


def _std_var(input: Tensor, dim, unbiased, correction, keepdim, dtype, mask, take_sqrt: bool) -> Tensor:
    if unbiased is not None and correction is not None:
        raise AssertionError("Only one of unbiased and correction may be given")
    if correction is None:
        correction = 1.0 if unbiased is None or unbiased else 0.0
    if dtype is None:
        dtype = input.dtype if (input.dtype.is_floating_point or input.dtype.is_complex) else _dtype.float32
    _strided_only(input, "std/var")
    compute_dtype = dtype if (dtype.is_floating_point or dtype.is_complex) else _dtype.float32
    inmask = None if mask is None else _input_mask(input, mask)
    count = _count(input, dim, True, inmask)
    centred = input - sum(input, dim, keepdim=True, dtype=dtype, mask=inmask) / count
    total = sum(centred * _conj(centred), dim, keepdim=keepdim, dtype=compute_dtype, mask=inmask)
    if not keepdim:
        count = count.reshape(total.shape)
    if correction != 0:
        real_dtype = _dtype.float64 if compute_dtype == _dtype.complex128 else (
            _dtype.float32 if compute_dtype == _dtype.complex64 else compute_dtype)
        count = (count.to(dtype=real_dtype) - float(correction)).clamp(min=0)
    output = (total / count).to(dtype=dtype)
    return output.sqrt() if take_sqrt else output


def var(input: Tensor, dim=None, unbiased: bool | None = None, *, correction=None, keepdim: bool | None = False,
        dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.var: the variance of the kept elements (NaN where too few are kept)."""
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, take_sqrt=False)


def std(input: Tensor, dim=None, unbiased: bool | None = None, *, correction=None, keepdim: bool | None = False,
        dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.std: the standard deviation of the kept elements (NaN where too few are kept)."""
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, take_sqrt=True)


def _filled_along_dim(name: str, fill: str, function, input: Tensor, dim: int, dtype, mask) -> Tensor:
    """``function`` (F.softmax, cumsum, ...) along ``dim`` with the masked-out elements filled with ``fill``'s
    identity."""
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dims(dim, input.ndim)[0]
    filled = _masked_input(fill, input, mask)
    _strided_only(filled, name)
    return function(filled, d, dtype=dtype)


def softmax(input: Tensor, dim: int, *, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.softmax: masked-out elements count as -inf (0 probability; a NaN row where all are out)."""
    return _filled_along_dim("softmax", "amax", F.softmax, input, dim, dtype, mask)


def log_softmax(input: Tensor, dim: int, *, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.log_softmax: masked-out elements count as -inf."""
    return _filled_along_dim("log_softmax", "amax", F.log_softmax, input, dim, dtype, mask)


def softmin(input: Tensor, dim: int, *, dtype=None, mask: Tensor | None = None) -> Tensor:
    """torch.masked.softmin: masked-out elements count as +inf."""
    return _filled_along_dim("softmin", "amin", F.softmin, input, dim, dtype, mask)


def normalize(input: Tensor, ord: float, dim: int, *, eps: float = 1e-12, dtype=None,
              mask: Tensor | None = None) -> Tensor:
    """torch.masked.normalize: the kept elements over their norm along ``dim`` (masked-out elements give 0)."""
    dtype = input.dtype if dtype is None else dtype
    filled = _masked_input("sum", input, mask)
    _strided_only(filled, "normalize")
    nrm = norm(input, ord, dim, keepdim=True, dtype=dtype, mask=mask)
    return filled / maximum(nrm, nrm.new_full([], eps))
