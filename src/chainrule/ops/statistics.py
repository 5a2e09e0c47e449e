"""Statistics ops: quantile, nanquantile, nanmedian, histogram, cov, corrcoef, logcumsumexp,
trapezoid, trapz, cumulative_trapezoid, gradient, renorm.

Most are compositions of differentiable primitives (sort, gather, sums, products), which gives
their exact derivatives; ``logcumsumexp`` is one Function because its forward must be computed
stably (a running log-add-exp) and its backward must be too. ``histogram`` counts, so it has
no gradient.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings

import numpy as np

from .. import _dtype, return_types
from .._backend import accumulate, array_module
from .._opmath import cpu_autocast_policy
from .._torch_function import user_stacklevel
from ..autograd import forward_ad as _forward_ad
from ..autograd import function as _function_module
from ..autograd.function import Function, SavedValue, as_uint64, is_recording, name_node, on_arrays, saved
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor, _wrap_dim, honours_out
from ._arg_parser import check_int, out_rule
from .creation import full_like
from .elementwise import _cast, _conj, _conj_view, where
from .reduce import MedianAll, NanmedianDim, _given_args, _select_along, _single_dim, _traced
from .shape import cat
from .structural import diff

__out_functions__ = {"histogram": "histogram"}  # torch.histogram's out= (see _arg_parser.namespace_with_out)
__all__ = ["quantile", "nanquantile", "nanmedian", "histogram", "cov", "corrcoef", "logcumsumexp", "trapezoid",
           "trapz", "cumulative_trapezoid", "gradient", "renorm"]
__not_methods__ = {"trapezoid", "trapz", "cumulative_trapezoid", "gradient"}

_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _check_tensor(value, op: str, argument: str = "input") -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): argument '{argument}' (position 1) must be Tensor, not {_dtype.c_type_name(value)}")


def _constant(array) -> Tensor:
    return Tensor._make(array)


# ---------------------------------------------------------------- quantile, nanquantile
def _quantile(op: str, input: Tensor, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool) -> Tensor:
    _check_tensor(input, op)
    xp = array_module(input)
    x = input._data
    # (torch's kernel checks word nanquantile's refusals as quantile's: the two share them)
    if input.dtype not in (_dtype.float32, _dtype.float64):  # torch's kernel: no half, bfloat16, complex
        raise RuntimeError("quantile() input tensor must be either float or double dtype")
    if x.size == 0:
        raise RuntimeError("quantile() input tensor must be non-empty")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError("quantile() interpolation must be one of linear, lower, higher, midpoint or nearest, "
                           f"but got {interpolation}")
    if isinstance(q, Tensor):
        if q._data.ndim > 1:
            raise RuntimeError("quantile() q must be a scalar or 1D tensor")
        if q.dtype != input.dtype:
            raise RuntimeError("quantile() q tensor must be same dtype as the input tensor")
        scalar_q, q_tensor = q._data.ndim == 0, q.reshape(-1)
    elif isinstance(q, numbers.Real) and not isinstance(q, bool):
        scalar_q, q_tensor = True, _constant(xp.asarray([q], dtype=x.dtype))
    else:
        raise TypeError(f"{op}(): argument 'q' must be float or Tensor, not {type(q).__name__}")
    qs = q_tensor._data
    if bool(((qs < 0) | (qs > 1)).any()):
        bad = float(qs[(qs < 0) | (qs > 1)][0])
        raise RuntimeError(f"quantile() q must be in the range [0, 1] but got {bad:g}" if scalar_q else
                           "quantile() q values must be in the range [0, 1]")
    if _function_module.active_dispatch is not None:  # (NaNs are found in the array: a wrapper's handler)
        made = _function_module.argument_dispatch(
            op if isinstance(q, Tensor) else op + ".scalar", quantile if op == "quantile" else nanquantile,
            (input, q, dim, keepdim), {"interpolation": interpolation})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    if dim is None:
        values, d = input.reshape(-1), 0
    else:
        d = _single_dim(dim, x.ndim, op)
        values = input.reshape(1) if x.ndim == 0 else input
    # sorted along the last dim; NaN sorts last, so the first `count` entries are the numbers
    ordered = values.sort(dim=d).values.movedim(d, -1)
    n = ordered._data.shape[-1]
    if keepdim and x.ndim:
        # torch views the sorted values as (*kept, n), the reduced dim kept as 1, and computes the
        # (*kept, Q) quantiles there: moved to the front they keep those strides, size-1 dims included
        kept = [1] * x.ndim if dim is None else list(x.shape)
        if dim is not None:
            kept[d] = 1
        ordered = ordered.reshape(tuple(kept) + (n,))
    s = ordered._data
    nan = xp.isnan(s)
    count = (n - nan.sum(axis=-1, keepdims=True)) if ignore_nan else xp.full(s.shape[:-1] + (1,), n)
    # the fractional position in each slice (..., Q), a function of q: torch differentiates q too
    rank_tensor = q_tensor * _constant((count - 1).astype(x.dtype))
    rank = rank_tensor._data
    if interpolation == "lower":
        rank = xp.floor(rank)
    elif interpolation == "higher":
        rank = xp.ceil(rank)
    elif interpolation == "nearest":
        rank = xp.round(rank)  # half to even, as torch's round
    # a slice holding any NaN (quantile) takes its last sorted entry, a NaN; one of nothing but NaN
    # (nanquantile) its first: both as torch, so the gradient reaches the same NaN as torch's
    undefined = (count == 0) if ignore_nan else nan.any(axis=-1, keepdims=True)
    rank = xp.where(undefined, 0 if ignore_nan else n - 1, rank)
    low = xp.clip(xp.floor(rank), 0, n - 1).astype(np.int64)
    below = ordered.gather(-1, _constant(low))
    if interpolation in ("lower", "higher", "nearest"):
        out = below  # the rank is a whole number: no interpolation
    else:
        high = xp.clip(xp.ceil(rank), 0, n - 1).astype(np.int64)
        if interpolation == "midpoint":
            weight = _constant(xp.full(rank.shape, 0.5, x.dtype))
        else:  # linear: the weight is a function of q (unless the slice is undefined)
            weight = where(_constant(xp.broadcast_to(undefined, rank.shape)), 0.0,
                           rank_tensor - _constant(xp.floor(rank).astype(x.dtype)))
        above = ordered.gather(-1, _constant(high))
        # torch's lerp_, whose two formulas (from the nearer end) round as torch's quantile does
        out = below.lerp(above, weight)
    out = out.movedim(-1, 0)  # (Q, *kept) or (Q, ...): torch puts the quantiles first
    # torch's last step is a squeeze (a no-op for a 1-d q), and users see its node's name
    return name_node(out.squeeze(0) if scalar_q else out.squeeze(()), "SqueezeBackward4", label=op)


@functools.partial(honours_out, composite=True)  # (torch's quantile is composite: its out= a copy)
@cpu_autocast_policy("float32")
def quantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Tensor:
    """torch.quantile: the ``q``-th quantiles (a float or a 1-d tensor in [0, 1]) along ``dim``
    (of all elements by default), between the two nearest sorted values by ``interpolation``
    (linear, lower, higher, midpoint, nearest). A 1-d ``q`` adds a leading dim of its size; a
    slice holding NaN gives NaN."""
    return _quantile("quantile", input, q, dim, keepdim, interpolation, ignore_nan=False)


@functools.partial(honours_out, composite=True)  # (torch's nanquantile is composite: its out= a copy)
@cpu_autocast_policy("float32")
def nanquantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,
                interpolation: str = "linear") -> Tensor:
    """torch.nanquantile: ``quantile`` ignoring NaN (a slice of only NaN gives NaN)."""
    return _quantile("nanquantile", input, q, dim, keepdim, interpolation, ignore_nan=True)


# ---------------------------------------------------------------- nanmedian
class NanmedianAll(MedianAll):
    """nanmedian() of a flat tensor; ties share the gradient evenly, as in torch."""

    node_name = "NanmedianBackward0"
    label = "nanmedian"
    rule = "routes the gradient to the median of the non-NaN elements (split evenly among ties)"


def nanmedian_of_rows(rows: Tensor) -> Tensor:
    """nanmedian() of each row of a 2-d tensor (vmap's batch of flattened slices, ``_vmap_batched``): each
    row's value as its own nanmedian() finds it; differentiated outside the vmap the gradient goes to
    each row's median element alone, as torch's batching rule runs nanmedian(dim) of the flattened
    slices (its node NanmedianBackward1); see ``reduce.median_of_rows``."""
    return name_node(NanmedianAll.apply(rows, index=_nanmedian_index(rows._data, 1), along=True), "NanmedianBackward1",
                     label="nanmedian", rule="routes the gradient to each row's median of the non-NaN elements "
                                             "(nanmedian() of each slice under vmap)")


def _nanmedian_index(x, axis: int):
    """The lower middle non-NaN element's index along ``axis`` (NaN sorts last; an all-NaN slice
    gives its first NaN)."""
    xp = array_module(x)
    if x.dtype.kind == "V":  # ml_dtypes' bfloat16 sorts NaN in place, not last: sort it widened (exact)
        x = x.astype(np.float32)
    order = xp.argsort(x, axis=axis, kind="stable")
    count = x.shape[axis] - xp.isnan(x).sum(axis=axis, keepdims=True)
    position = xp.maximum((count - 1) // 2, 0)
    return xp.take_along_axis(order, position, axis=axis)


@honours_out
def nanmedian(input: Tensor, dim=None, keepdim: bool = False):
    """torch.nanmedian: ``median`` of the non-NaN elements. Without ``dim`` a 0-d tensor (the
    gradient split evenly among equal elements); with ``dim`` ``(values, indices)``, the gradient
    routed to the returned index."""
    _check_tensor(input, "nanmedian")
    if _function_module.tracing_ops and (found := _traced(nanmedian, input=input, dim=dim, keepdim=keepdim)) is not None:
        return found  # (a vmap's record: one call, which its replay runs on the batch)
    xp = array_module(input)
    x = input._data
    if x.dtype.kind in "cb":
        raise NotImplementedError(f"\"{'median_cpu' if dim is None else 'median_out'}\" not implemented for "
                                  f"'{_dtype.scalar_name(input.dtype)}'")
    _dtype.refuse_wide_unsigned("reduce.median" if dim is None else "reduce.median_dim", x)
    if dim is None:
        if x.size == 0 and x.dtype.kind in "fV":  # NaN, on the graph as in median()
            return NanmedianAll.apply(input.reshape(-1), index=None)
        if x.size == 0:  # a NaN cast to the integer type, as median()
            with np.errstate(invalid="ignore"):
                return _constant(xp.full((), np.nan, dtype=x.dtype))
        flat = input.reshape(-1)
        index = _nanmedian_index(flat._data, 0)
        if _function_module.active_dispatch is not None:  # (a mode sees the call as given)
            _function_module.note_given(NanmedianAll, flat, aten_call=(("nanmedian", "default"), (flat,), {}))
        return NanmedianAll.apply(flat, index=index)
    d = _single_dim(dim, x.ndim, "nanmedian")
    if x.ndim == 0:
        return _select_along(NanmedianDim, input, xp.zeros((), np.int64), 0, keepdim, "nanmedian")
    if x.shape[d] == 0:
        raise IndexError(f"median(): Expected reduction dim {d} to have non-zero size.")
    index = _nanmedian_index(x, d) if x.dtype.kind in "fV" else \
        xp.take(xp.argsort(x, axis=d, kind="stable"), [(x.shape[d] - 1) // 2], axis=d)
    if _function_module.active_dispatch is not None:  # (a mode sees the call as given)
        _function_module.note_given(NanmedianDim, input, aten_call=(
            ("nanmedian", "dim"), _given_args((input, dim, keepdim), (False,)), {}))
    return _select_along(NanmedianDim, input, index, d, keepdim, "nanmedian", dim)


# ---------------------------------------------------------------- histogram
def histogram(input: Tensor, bins=100, *, range=None, weight: Tensor | None = None, density: bool = False):
    """torch.histogram: counts (or weight sums, or a density) of ``input``'s values in ``bins``
    equal-width bins over ``range`` (the data's min and max by default), or in the bins between
    the edges of a 1-d tensor; returns ``(hist, bin_edges)`` of input's float dtype."""
    _check_tensor(input, "histogram")
    xp = array_module(input)
    x = input._data
    if x.dtype.kind not in "fV":
        raise NotImplementedError(f"\"histogramdd\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    if isinstance(bins, Tensor):
        if bins._data.ndim != 1:
            raise RuntimeError(f"torch.histogram(): bins tensor should have one dimension, but got "
                               f"{bins._data.ndim} dimensions")
        edges = bins._data.astype(x.dtype)
    elif isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
        if bins <= 0:
            raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
        if range is not None:
            low, high = float(range[0]), float(range[1])
            if low > high:
                raise RuntimeError(f"torch.histogram(): min should not exceed max, but got min {low} max {high}")
        elif x.size:
            low, high = float(x.min()), float(x.max())
        else:  # nothing to span: the unit range, as torch and NumPy
            low, high = 0.0, 1.0
        if low == high:  # a constant input: one unit-wide range around it, as NumPy
            low, high = low - 0.5, high + 0.5
        edges = xp.linspace(low, high, bins + 1).astype(x.dtype)
    else:
        raise TypeError(f"histogram(): argument 'bins' must be int or Tensor, not {type(bins).__name__}")
    weights = None
    if weight is not None:
        if tuple(weight._data.shape) != tuple(x.shape):
            raise RuntimeError("torch.histogram(): if weight tensor is provided it should have the same shape "
                               "as the input tensor")
        weights = weight._data.reshape(-1)
    if _function_module.active_dispatch is not None:  # (the values are read from the array: a wrapper's handler)
        made = _function_module.argument_dispatch(
            "histogram.bins_tensor" if isinstance(bins, Tensor) else "histogram.bin_ct", histogram, (input, bins),
            {"range": range, "weight": weight, "density": density})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    hist, _ = xp.histogram(x.reshape(-1), bins=edges.astype(np.float64), weights=weights, density=density)
    return return_types.histogram(_constant(hist.astype(x.dtype)), _constant(edges))


# ---------------------------------------------------------------- cov, corrcoef
def cov(input: Tensor, *, correction: int = 1, fweights: Tensor | None = None,
        aweights: Tensor | None = None) -> Tensor:
    """torch.cov: the covariance matrix of the variables in ``input``'s rows (observations in
    columns; a 1-d input is one variable), with ``correction`` (1: Bessel's), integer frequency
    weights and float observation weights per column, as numpy.cov."""
    _check_tensor(input, "cov")
    correction = check_int(correction, "cov", "correction")  # (torch's parser: an int, before the dims)
    if input._data.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an input with "
                           f"{input._data.ndim} dimensions")
    if input.dtype is _dtype.bool:  # (torch's check, after the dimensions': integers are cast, bool refused)
        raise RuntimeError("cov(): bool dtype is not supported for input")
    xp = array_module(input)
    x = input.reshape(1, -1) if input._data.ndim < 2 else input
    if x._data.dtype.kind not in "fVc":
        x = _cast(x, _dtype.get_default_dtype())
    observations = x._data.shape[1]
    w = None
    if fweights is not None:
        if fweights._data.ndim > 1:
            raise RuntimeError(f"cov(): expected fweights to have one or fewer dimensions but got fweights with "
                               f"{fweights._data.ndim} dimensions")
        if fweights._data.dtype.kind not in "iu":
            raise RuntimeError(f"cov(): expected fweights to have integral dtype but got fweights with "
                               f"{_dtype.scalar_name(fweights.dtype)} dtype")
        if fweights._data.size != observations:
            raise RuntimeError(f"cov(): expected fweights to have the same numel as there are observations in "
                               f"the input but got {fweights._data.size} != {observations}")
        if bool((fweights._data < 0).any()):
            raise RuntimeError("cov(): fweights cannot be negative")
        w = _cast(fweights, x.dtype.to_real())  # real weights: their sum is compared with 0
    if aweights is not None:
        if aweights._data.ndim > 1:
            raise RuntimeError(f"cov(): expected aweights to have one or fewer dimensions but got aweights with "
                               f"{aweights._data.ndim} dimensions")
        if aweights._data.dtype.kind not in "fV":
            raise RuntimeError(f"cov(): expected aweights to have floating point dtype but got aweights with "
                               f"{_dtype.scalar_name(aweights.dtype)} dtype")
        if aweights._data.size != observations:
            raise RuntimeError(f"cov(): expected aweights to have the same numel as there are observations in "
                               f"the input but got {aweights._data.size} != {observations}")
        if bool((aweights._data < 0).any()):
            raise RuntimeError("cov(): aweights cannot be negative")
        w = aweights if w is None else w * aweights
    if w is None:
        average = x.mean(1, keepdim=True)
        weight_sum = float(observations)
        norm = weight_sum - correction
    else:
        weight_sum = w.sum()
        average = (x * w).sum(1, keepdim=True) / weight_sum
        if correction == 0:
            norm = weight_sum
        elif aweights is None:
            norm = weight_sum - correction
        else:
            norm = weight_sum - correction * (w * aweights).sum() / weight_sum
    if bool(norm <= 0):
        warnings.warn("cov(): degrees of freedom is <= 0. Correction should be strictly less than the number of "
                      "observations.", UserWarning, stacklevel=user_stacklevel())
    norm = norm.clamp(min=0) if isinstance(norm, Tensor) else max(norm, 0.0)
    centred = x - average
    weighted = centred if w is None else centred * w
    c = weighted.matmul(_conj(centred).t())  # E[(x - μ)(x - μ)ᴴ]: conjugated for complex variables
    if isinstance(norm, Tensor):
        c = c / norm
    else:
        c = c / _constant(xp.asarray(norm, dtype=c._data.dtype))
    # torch squeezes the result (one variable gives a 0-d tensor), and records it even when a no-op
    return name_node(c.squeeze(), "SqueezeBackward0", label="cov")


def corrcoef(input: Tensor) -> Tensor:
    """torch.corrcoef: Pearson correlation coefficients of the variables in ``input``'s rows,
    ``cov[i, j] / sqrt(cov[i, i] cov[j, j])``, clipped to [-1, 1]."""
    _check_tensor(input, "corrcoef")
    if input._data.ndim > 2:
        raise RuntimeError(f"corrcoef(): expected input to have two or fewer dimensions but got an input with "
                           f"{input._data.ndim} dimensions")
    c = cov(input)
    if c._data.ndim == 0:
        return c / c
    stddev = c.diagonal().sqrt()
    c = c / stddev.unsqueeze(1)
    c = c / stddev.unsqueeze(0)
    if c.is_complex():  # torch clips the real and imaginary parts each
        from .complex import complex as _complex

        return _complex(c.real.clamp(-1, 1), c.imag.clamp(-1, 1))
    return c.clamp(-1, 1)


# ---------------------------------------------------------------- logcumsumexp
def _reverse_logcumsumexp(x: Tensor, dim: int) -> Tensor:
    return logcumsumexp(x.flip([dim]), dim).flip([dim])


def _complex_log_add_exp(xp, x, running):
    """torch's log-add-exp of complex numbers in its logcumsumexp scan: of the two, the one of
    larger real part m, plus log1p(exp(other - m)), so the imaginary parts carry on unwrapped
    rather than on log's principal branch of the sum; a NaN operand is the result; two real parts
    of -inf give the smaller operand, two of +inf log(exp(x) + exp(running)) (no inf - inf)."""
    nan_x, nan_running = xp.isnan(x), xp.isnan(running)
    x_smaller = x.real < running.real
    low = xp.where(nan_running, running, xp.where(nan_x, x, xp.where(x_smaller, x, running)))
    high = xp.where(nan_running, running, xp.where(nan_x, x, xp.where(x_smaller, running, x)))
    with np.errstate(all="ignore"):
        both_infinite = ~xp.isfinite(low.real) & (low.real == high.real)
        at_infinity = xp.where(low.real < 0, low, xp.log(xp.exp(low) + xp.exp(high)))
        return xp.where(both_infinite, at_infinity, high + xp.log1p(xp.exp(low - high)))


def _complex_logcumsumexp(xp, x, dim: int):
    """The running complex log-add-exp along ``dim``, left to right from -inf as torch's CPU scan,
    carried in complex128 (torch's accumulation type) and stored in x's dtype."""
    moved = xp.moveaxis(x, dim, 0)
    out = xp.empty(moved.shape, dtype=x.dtype)
    running = xp.full(moved.shape[1:], -np.inf, dtype=np.complex128)
    for i in range(moved.shape[0]):
        running = _complex_log_add_exp(xp, moved[i].astype(np.complex128), running)
        out[i] = running
    return xp.ascontiguousarray(xp.moveaxis(out, 0, dim))


class Logcumsumexp(Function):
    # fused: the forward is a running log-add-exp (no overflow), and so must its backward be
    _array_forward = True
    node_name = "LogcumsumexpBackward0"
    label = "logcumsumexp"
    rule = "∂out_j/∂a_i = exp(a_i - out_j) for i ≤ j"
    formula = "logcumsumexp({0})"
    # the dim as given (a negative one as the C++ node's unsigned)
    saved_attributes = {"_saved_dim": SavedValue(lambda node: as_uint64(getattr(node, "given_dim", node.dim))),
                        "_saved_result": saved(1), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, dim):
        xp = array_module(x)
        ctx.dim = dim
        # C order whatever the input's layout, as torch's output
        if not (x.size and x.ndim):
            out = x.copy()
        elif x.dtype.kind == "c":
            out = _complex_logcumsumexp(xp, x, dim)
        else:
            # torch's CPU kernel runs the sum in its accumulation type (float64 for float32, float32
            # for the half types) and rounds each running value as it stores it
            wide = np.float64 if x.dtype == np.float32 else np.float32 if x.dtype.itemsize == 2 else x.dtype
            out = xp.ascontiguousarray(accumulate(xp, "logaddexp", x.astype(wide), dim).astype(x.dtype))
        ctx.save_for_backward(x, out)  # the output array itself: saved as the output Tensor
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_values
        if x._data.ndim == 0:  # log(exp(a)) = a
            return grad
        return _logcumsumexp_grad(x, out, grad, ctx.dim)


def _logcumsumexp_grad(x: Tensor, out: Tensor, grad: Tensor, d: int) -> Tensor:
    """logcumsumexp's gradient along ``d`` of ``grad``, which may carry leading batch dims that ``x``
    and ``out`` broadcast against (the batched walk's rule passes ``d`` shifted past them)."""
    if grad.is_complex():
        # torch's complex rule, with no sign split: conj(exp(a_i + reverse_logcumsumexp(log conj g - out)_i)),
        # its last conj() a conj view (a leaf's grad is_conj(), as torch's)
        return _conj_view((_reverse_logcumsumexp(_conj(grad).log() - out, d) + x).exp())
    if is_recording(x, out, grad) and grad.shape[d] <= _PAIRS_UP_TO:
        return _logcumsumexp_grad_by_pairs(x, out, grad, d)
    # grad_i = Σ_{j≥i} g_j exp(a_i - out_j), kept in log space: the positive and negative parts
    # of g each as exp(a_i + reverse_logcumsumexp(log|g_j| - out_j)). Where a part is empty its
    # log is the dtype's lowest finite value, not -inf (as torch): -inf would give inf - inf
    # = NaN in the gradient of this rule (create_graph), while exp(lowest + a) is exactly 0.
    # The inner where keeps log's own gradient finite at g = 0.
    lowest = float(_dtype.finfo_of(grad._data.dtype).min)
    positive, negative = grad > 0, grad < 0
    log_positive = where(positive, where(positive, grad, 1.0).log(), lowest)
    log_negative = where(negative, where(negative, -grad, 1.0).log(), lowest)
    up = (x + _reverse_logcumsumexp(log_positive - out, d)).exp()
    down = (x + _reverse_logcumsumexp(log_negative - out, d)).exp()
    return up - down


# The pairwise form holds an n×n block per slice: up to this n (8 MiB a slice in float64) it is
# used; longer slices keep the log-space form, whose second derivative misses the directions of
# exactly-zero cotangent entries (as torch's reverse-over-reverse does) but stays O(n).
_PAIRS_UP_TO = 1024


def _logcumsumexp_grad_by_pairs(x: Tensor, out: Tensor, grad: Tensor, d: int) -> Tensor:
    """The same gradient as a product with the triangle of weights exp(a_i - out_j), j ≥ i (each at
    most 1: no overflow), for a recorded backward: the log-space form's masks cut its derivative
    with respect to the gradient wherever an entry of it is 0 (a Jacobian's basis cotangents),
    which a second derivative needs; this one is linear in the gradient. O(n²) per slice."""
    last = d - grad.ndim if d >= 0 else d  # counted from the end: x and out may lack grad's batch dims
    xs, outs = x.movedim(last, -1), out.movedim(last, -1)
    n = xs.shape[-1]
    xp = array_module(grad._data)
    later = Tensor._make(xp.triu(xp.ones((n, n), dtype=bool)))  # [i, j]: j ≥ i, on grad's device
    if _function_module.tracing_ops:  # (the same triangle for every slice of a vmap that records its ops)
        _function_module.traced_constant(later)
    lowest = float(_dtype.finfo_of(grad._data.dtype).min)
    weights = where(later, xs.unsqueeze(-1) - outs.unsqueeze(-2), lowest).exp()
    return (weights * grad.movedim(last, -1).unsqueeze(-2)).sum(-1).movedim(-1, last)


@out_rule("scan_same_scalar_type")
def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """torch.logcumsumexp: ``log(cumsum(exp(x)))`` along ``dim``, computed without overflow."""
    _check_tensor(input, "logcumsumexp")
    if input._data.dtype.kind not in "fcV":
        raise NotImplementedError(f"\"logcumsumexp_out_cpu\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    d = _single_dim(dim, input._data.ndim, "logcumsumexp")
    if _function_module.active_dispatch is not None:
        _function_module.note_given(Logcumsumexp, input, given_dim=dim)  # (a mode sees the dim as given)
    out = Logcumsumexp.apply(input, dim=d)
    if out._grad_fn is not None and type(dim) is int and dim < 0:
        out._grad_fn.given_dim = dim
    return out


# ---------------------------------------------------------------- trapezoid
def _spacing(y: Tensor, x: Tensor | None, dx, d: int, op: str):
    """The sample spacing along ``d``: a number, or a tensor broadcastable against ``y``'s differences."""
    if x is None:
        return 1.0 if dx is None else dx
    if x._data.ndim == 1:
        if x._data.shape[0] != y._data.shape[d]:
            raise RuntimeError(f"{op}: There must be one `x` value for each sample point")
        step = diff(x)
        return step.reshape((-1,) + (1,) * (y._data.ndim - d - 1))
    return diff(x, dim=d)


def _refuse_scalar(y: Tensor, x, dim: int, cumulative: bool, op: str) -> None:
    """torch's kernels on a 0-d ``y`` fail where they first reach a size or a slice of a scalar:
    with a tensor ``x`` after wrapping ``dim`` (reading ``y.size(dim)``, or for a cumulative one
    without a 1-d ``x`` slicing it), without one reading ``y.size(dim)`` or, cumulative, slicing ``y``."""
    if isinstance(x, Tensor):
        dim = _wrap_dim(dim, 0, op)
        if not cumulative or x._data.ndim == 1:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    elif not cumulative:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    raise IndexError("slice() cannot be applied to a 0-dim tensor.")


def _trapezoid(op: str, y: Tensor, x, dx, dim: int, cumulative: bool) -> Tensor:
    _check_tensor(y, op, "y")
    if y._data.ndim == 0:
        _refuse_scalar(y, x, dim, cumulative, op)
    d = _wrap_dim(dim, y._data.ndim, op)
    if y._data.dtype == np.bool_ or (x is not None and x._data.dtype == np.bool_):
        operands = "`y`" if x is None else "`x` or `y`"
        raise RuntimeError(f"{op}: received a bool input for {operands}, but bool is not supported")
    n = y._data.shape[d]
    if isinstance(dx, (bool, complex)):
        raise RuntimeError(f"{op}: Currently, we only support dx as a real number.")
    if n == 0 and not cumulative:
        return (y.sum(d) * 0).to(y.dtype)  # torch's zeros in y's dtype
    # torch's formulas, step for step: an integer y's neighbour sums (and an integer x's
    # differences, and their products) stay in their dtype, wrapping around as torch's do, until
    # a halving makes them floating
    pairs = y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1) if n else y
    if x is None:
        dx = 1.0 if dx is None else dx
        if cumulative:
            return (dx / 2.0 * pairs).cumsum(dim)  # (along the dim as given, which torch's node keeps)
        # torch multiplies by dx as a C++ double: mul's Scalar overload (MulBackward1)
        return name_node((y.sum(d) - (y.select(d, 0) + y.select(d, -1)) * 0.5) * dx, "MulBackward1", label=op)
    spacing = _spacing(y, x, dx, d, op)
    # torch halves last, by a C++ double: div's Scalar overload (DivBackward1)
    if cumulative:
        return name_node((spacing * pairs).cumsum(d) / 2.0, "DivBackward1", label=op)
    return name_node((spacing * pairs).sum(d) / 2.0, "DivBackward1", label=op)


def trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """torch.trapezoid: the trapezoidal rule along ``dim``, with samples at ``x`` (a 1-d tensor
    along ``dim`` or one of ``y``'s shape) or spaced ``dx`` apart (1 by default)."""
    return _trapezoid("trapezoid", y, x, dx, dim, cumulative=False)


def trapz(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """torch.trapz: the older name of ``trapezoid``, whose ``dx`` torch parses as a float (so
    ``dx=True`` is a spacing of 1.0, which ``trapezoid`` refuses)."""
    return _trapezoid("trapz", y, x, None if dx is None else float(dx), dim, cumulative=False)


def cumulative_trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """torch.cumulative_trapezoid: the running trapezoidal integral along ``dim`` (one element
    fewer than ``y`` there)."""
    return _trapezoid("cumulative_trapezoid", y, x, dx, dim, cumulative=True)


# ---------------------------------------------------------------- gradient
def _along(t: Tensor, d: int, ndim: int) -> Tensor:
    """A 1-d tensor of per-position coefficients shaped to broadcast along dim ``d``."""
    return t.reshape((-1,) + (1,) * (ndim - d - 1))


def _gradient_uniform(f: Tensor, d: int, h, edge_order: int) -> Tensor:
    """torch's differences for samples ``h`` apart, step for step on ``f`` as given: an integer
    input's differences stay in its dtype (wrapping around as torch's do) until divided by ``h``,
    and a bool input's are refused by the subtraction, as torch's are. Operands are made right to
    left, as torch's C++ makes them (see _gradient_coordinates)."""
    n = f._data.shape[d]
    before = f.narrow(d, 0, n - 2)
    interior = (f.narrow(d, 2, n - 2) - before) / h
    if edge_order == 1:
        before = f.narrow(d, 0, 1)
        first = (f.narrow(d, 1, 1) - before) / h
        before = f.narrow(d, n - 2, 1)
        last = (f.narrow(d, n - 1, 1) - before) / h
    else:  # second-order one-sided differences
        third, second = 0.5 * f.narrow(d, 2, 1), 2 * f.narrow(d, 1, 1)
        first = (-1.5 * f.narrow(d, 0, 1) + second - third) / h
        third, second = 1.5 * f.narrow(d, n - 1, 1), 2 * f.narrow(d, n - 2, 1)
        last = (0.5 * f.narrow(d, n - 3, 1) - second + third) / h
    return cat([first, interior / 2, last], d)


def _gradient_coordinates(f: Tensor, d: int, x: Tensor, edge_order: int) -> Tensor:
    """numpy.gradient's second-order accurate differences for samples at coordinates ``x``, the
    coefficients in ``x``'s dtype (float64 coordinates give a float64 result, as torch's do).

    Each sum's terms are made last to first: torch's C++ evaluates its operators' operands right to
    left, so its slices of ``f`` are numbered in that order, and the engine sums their gradients
    into ``f``'s in sequence order (made first to last, a float32 gradient differed in the last bits)."""
    n, ndim = f._data.shape[d], f._data.ndim
    step = diff(x)
    left, right = step[:-1], step[1:]
    a = -right / (left * (left + right))
    b = (right - left) / (left * right)
    c = left / (right * (left + right))
    third = _along(c, d, ndim) * f.narrow(d, 2, n - 2)
    second = _along(b, d, ndim) * f.narrow(d, 1, n - 2)
    interior = _along(a, d, ndim) * f.narrow(d, 0, n - 2) + second + third
    if edge_order == 1:
        before = f.narrow(d, 0, 1)
        first = (f.narrow(d, 1, 1) - before) / step[0]
        before = f.narrow(d, n - 2, 1)
        last = (f.narrow(d, n - 1, 1) - before) / step[-1]
    else:
        h1, h2 = step[0], step[1]
        third = (-h1) / (h2 * (h1 + h2)) * f.narrow(d, 2, 1)
        second = (h1 + h2) / (h1 * h2) * f.narrow(d, 1, 1)
        first = -(2.0 * h1 + h2) / (h1 * (h1 + h2)) * f.narrow(d, 0, 1) + second + third
        h1, h2 = step[-2], step[-1]
        third = (2 * h2 + h1) / (h2 * (h2 + h1)) * f.narrow(d, n - 1, 1)
        second = -(h2 + h1) / (h2 * h1) * f.narrow(d, n - 2, 1)
        last = h2 / (h1 * (h2 + h1)) * f.narrow(d, n - 3, 1) + second + third
    return cat([first, interior, last], d)


def gradient(input: Tensor, *, spacing=1, dim=None, edge_order: int = 1) -> tuple:
    """torch.gradient: the derivative of the sampled function along each of ``dim`` (every dim by
    default) by central differences inside and one-sided ones of order ``edge_order`` (1 or 2) at
    the ends, as numpy.gradient. ``spacing`` is one sample distance, one per dim, or one 1-d
    tensor of coordinates per dim. Returns one tensor per dim.

    torch's checks in torch's order: a uint8 input, the length of a spacing list, edge_order, the
    dims, their sizes; then per dim the coordinates' rank. A bool input passes them all and is
    refused by the first subtraction."""
    _check_tensor(input, "gradient")
    if input.dtype is _dtype.uint8:
        raise RuntimeError("torch.gradient does not support uint8 input.")
    edge_order = check_int(edge_order, "gradient", "edge_order")
    ndim = input._data.ndim
    dims = list(range(ndim)) if dim is None else [dim] if isinstance(dim, int) else list(dim)
    if spacing is None:
        spacing = 1  # torch's None: unit spacing
    if isinstance(spacing, (list, tuple)):
        if len(spacing) != len(dims):
            raise RuntimeError(
                f"torch.gradient expected spacing to be unspecified, a scalar, or a list of length equal to "
                f"'self.dim() = {ndim}', since dim argument was not given, but got a list of length {len(spacing)}"
                if dim is None else
                f"torch.gradient expected spacing to be unspecified, a scalar or it's spacing and dim arguments to "
                f"have the same length, but got a spacing argument of length {len(spacing)} and a dim argument of "
                f"length {len(dims)}.")
        spacings = list(spacing)
        coordinates = any(isinstance(h, Tensor) for h in spacings)
        if coordinates and not all(isinstance(h, Tensor) for h in spacings):
            # a list mixing tensors and numbers is no overload's: the signature check words the refusal
            raise TypeError("gradient(): spacing mixes tensors and numbers")
    else:
        # a bare 0-d tensor is a Scalar to torch's parser; torch divides by its value
        spacings = [spacing.item() if isinstance(spacing, Tensor) else spacing] * len(dims)
        coordinates = False
    if edge_order not in (1, 2):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    dims = [_wrap_dim(d, ndim, "gradient") for d in dims]
    repeated = next((d for i, d in enumerate(dims) if d in dims[:i]), None)
    if repeated is not None:
        raise RuntimeError(f"dim {repeated} appears multiple times in the list of dims")
    for d in dims:
        if input._data.shape[d] < edge_order + 1:
            raise RuntimeError("torch.gradient expected each dimension size to be at least edge_order+1")
    if not coordinates:
        return tuple(_gradient_uniform(input, d, h, edge_order) for d, h in zip(dims, spacings))
    for h in spacings:
        if h.device != input.device:
            raise RuntimeError(f"torch.gradient expected each tensor to be on the same device, but got devices "
                               f"{input.device} and {h.device}!")
    out = []
    for d, h in zip(dims, spacings):
        if h._data.ndim != 1:
            raise RuntimeError(f"torch.gradient expected each element of spacing to have one dimension, but got an "
                               f"element with {h._data.ndim} dimensions!")
        if h._data.shape[0] != input._data.shape[d]:
            # (torch reads past the coordinates' end and returns a result of the wrong length)
            raise RuntimeError(f"torch.gradient expected each tensor to be on the same device and each "
                               f"coordinate tensor to have {input._data.shape[d]} elements along dim {d}, but got "
                               f"{h._data.shape[0]}")
        out.append(_gradient_coordinates(input, d, h, edge_order))
    return tuple(out)


# ---------------------------------------------------------------- renorm
@honours_out
def renorm(input: Tensor, p, dim: int, maxnorm) -> Tensor:
    """torch.renorm: every slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` scaled down to
    norm ``maxnorm`` (times 1/(1 + 1e-7/norm), as torch); the others unchanged."""
    _check_tensor(input, "renorm")
    if input._data.dtype.kind not in "fVc":
        raise RuntimeError(f"renorm(): expected a floating point input, got {_dtype.scalar_name(input.dtype)}")
    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm:g}")
    ndim = input._data.ndim
    if ndim <= 1:
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {ndim} dimensions")
    d = _single_dim(dim, ndim, "renorm")
    if _function_module.active_dispatch is not None:  # (the norms are read from the array: a wrapper's handler)
        made = _function_module.argument_dispatch("renorm", renorm, (input, p, dim, maxnorm), {})
        if made is not _function_module.RUN_UNDISPATCHED:
            return made
    others = tuple(k for k in range(ndim) if k != d)
    # torch takes the norm and the scale factor in float32 for a half or bfloat16 input
    wide = _dtype.float32 if input.dtype in (_dtype.float16, _dtype.bfloat16) else None
    two_norm_rule = p == 2 and input.dtype in (_dtype.float32, _dtype.float64)
    recording = is_recording(input)
    # the gradient flows through the norm: the factor composed (and an unrecorded dual tensor's
    # tangent through it, as a gradient would)
    if (recording and not two_norm_rule) or (not recording and _forward_ad.carries_tangent(input)):
        norms = _renorm_norms(input, p, others, wide)
        bound = full_like(norms, maxnorm)  # torch compares and divides in the norm's dtype
        factor = where(norms > bound, bound / (norms + 1e-7), 1.0)
        factor = factor if wide is None else _cast(factor, input.dtype)
        return name_node(input * factor, "RenormBackward0", label="renorm",
                         rule="∂/∂a = the scale factor, and through the norm for the scaled slices")
    with no_grad():
        norms = _renorm_norms(input, p, others, wide)
    # a constant factor: torch's renorm_scale_factor kernel on the arrays, without a node per step
    factor = Tensor._make(_renorm_scale_factor(norms._data, maxnorm))
    factor = factor if wide is None else _cast(factor, input.dtype)
    if recording:  # the value as composed; the gradient as torch's renorm_backward computes it
        return _Renorm.apply(input, factor, others, float(maxnorm))
    return input * factor


def _renorm_norms(input: Tensor, p, others: tuple, wide) -> Tensor:
    if math.isinf(p):
        norms = input.abs().amax(others, keepdim=True)
        return norms if wide is None else _cast(norms, wide)
    return input.norm(p, others, keepdim=True, dtype=wide)


def _renorm_scale_factor(norms: np.ndarray, maxnorm: float) -> np.ndarray:
    """maxnorm / (norm + 1e-7) where the norm exceeds maxnorm, else 1, in the norms' dtype: torch
    divides (a number over a tensor would multiply by the reciprocal, an ulp apart)."""
    xp, scalar = array_module(norms), norms.dtype.type
    bound = scalar(maxnorm)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return xp.where(norms > bound, bound / (norms + scalar(1e-7)), scalar(1))


# renorm's backward on a dim-0 renorm works through this many elements at a time: its float64
# temporaries then stay in the cache and in malloc's reused heap, where whole-array ones were fresh,
# page-faulting allocations (a 256x256 gradient 740 -> 350 us, 1024x512 23 -> 7 ms, median)
_RENORM_GRADIENT_BLOCK = 16384


def _renorm_gradient(x: np.ndarray, g: np.ndarray, others: tuple, maxnorm: float) -> np.ndarray:
    """_Renorm's rule on NumPy arrays. The slices along dim are independent: a dim-0 renorm of a
    C-contiguous input takes blocks of whole slices, each reduced over the same contiguous memory as
    in one pass, so the bits are the same."""
    rows = x.shape[0]
    step = max(1, _RENORM_GRADIENT_BLOCK // max(1, x.size // max(1, rows)))
    if others != tuple(range(1, x.ndim)) or not x.flags.c_contiguous or rows <= step:
        return _renorm_gradient_block(x, g, others, maxnorm)
    result = np.empty_like(x)
    for start in range(0, rows, step):
        block = slice(start, start + step)
        result[block] = _renorm_gradient_block(x[block], g[block], others, maxnorm)
    return result


def _renorm_gradient_block(x: np.ndarray, g: np.ndarray, others: tuple, maxnorm: float) -> np.ndarray:
    """_Renorm's rule step for step as its Tensor form, in buffers reused in place: the same
    operations on the same values in the same order."""
    wide = x.astype(np.float64)
    work = np.multiply(wide, wide)
    norm = np.sqrt(np.add.reduce(work, axis=others, keepdims=True))
    scaled_slices = norm > maxnorm
    if not scaled_slices.any():
        return g.astype(x.dtype)  # (a copy: the engine may accumulate into it)
    result = np.multiply(x, g)  # a·g in the input's dtype, summed in float64
    np.copyto(work, result)
    projected = np.add.reduce(work, axis=others, keepdims=True)
    zero_norm = norm == 0
    if zero_norm.any():
        with np.errstate(invalid="ignore", divide="ignore"):
            through_norm = np.divide(wide, np.where(zero_norm, 1.0, norm), out=wide)
        np.copyto(through_norm, 0.0, where=zero_norm)
    else:  # (no substitute norms to build)
        through_norm = np.divide(wide, norm, out=wide)
    np.multiply(projected, through_norm, out=through_norm)
    inverse = 1.0 / (norm + 1e-7)
    factor = inverse * maxnorm
    # g widened into the buffer first: the product's bits are the same, and a float64-by-float64
    # multiply is faster than one that widens g as it goes
    np.copyto(work, g)
    scaled = np.multiply(factor, work, out=work)
    scaled -= np.multiply(factor * inverse, through_norm, out=through_norm)
    np.copyto(result, scaled, casting="same_kind")
    if not scaled_slices.all():
        np.copyto(result, g, where=~scaled_slices)
    return result


class _Renorm(Function):
    """renorm's 2-norm gradient, torch's formula in its accumulation type (float64 for float32 on
    the CPU; a·g itself in the input's dtype) and rounded once to the input's dtype: with n = ‖a‖ over
    the slice, f = maxnorm/(n + 1e-7),
    ∂/∂a = f·g - f/(n + 1e-7) · a·Σ(a·g)/n where n > maxnorm, else g. The same rule composed of
    float32 ops differed from torch in the last bits."""

    node_name = "RenormBackward0"
    label = "renorm"
    rule = "∂/∂a = f·g - f/(n + 1e-7)·a·Σ(a·g)/n on the scaled slices (f = maxnorm/(n + 1e-7)), g elsewhere"

    @staticmethod
    def forward(ctx, input, factor, others, maxnorm):
        ctx.save_for_backward(input)
        ctx.others, ctx.maxnorm = others, maxnorm
        return input * factor

    @staticmethod
    def backward(ctx, grad):
        from .linalg import vector_norm

        (input,) = ctx.saved_values
        if on_arrays(grad) and array_module(grad._data) is np:  # nothing recorded: the same steps on the arrays
            return Tensor._make(_renorm_gradient(input._data, grad._data, ctx.others, ctx.maxnorm)), None, None, None
        x, g = _cast(input, _dtype.float64), _cast(grad, _dtype.float64)
        norm = vector_norm(x, 2, ctx.others, keepdim=True)
        # a·g in the input's dtype, summed in float64; norm_backward for p = 2: Σ(a·g) · (a / n), 0 where n = 0
        projected = _cast(input * grad, _dtype.float64).sum(ctx.others, keepdim=True)
        through_norm = projected * where(norm == 0, 0.0, x / where(norm == 0, 1.0, norm))
        inverse = (norm + 1e-7).reciprocal()
        factor = inverse * ctx.maxnorm
        scaled = factor * g - (factor * inverse) * through_norm
        return _cast(where(norm > ctx.maxnorm, scaled, g), input.dtype), None, None, None

