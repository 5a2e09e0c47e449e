"""torch.special's orthogonal polynomials and Bessel/Airy functions.

The polynomials (Chebyshev T/U/V/W and their shifted forms, Hermite H/He, Laguerre L, Legendre P)
take the degree ``n`` per element, truncated to an integer as torch's kernels cast it. They are
evaluated as torch evaluates them: the three-term recurrence, except where torch switches to a
closed form (cos(n·acos x) and its kin inside (-1, 1) for larger n) or to exact values at the
interval's ends. The recurrence runs once per degree over the whole array, each element keeping
its value when its own degree is reached.

torch gives none of these functions a gradient: their results never require grad, whatever the
inputs, and so are chainrule's (plain tensors made from the kernel's array, outside the graph).
The kernels are computed in the input's own dtype, as torch's, and run on any array module.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from .. import _dtype, _meta
from .._backend import array_module
from ..autograd import function as _function
from ..tensor import Tensor, honours_out
from . import _bessel
from .elementwise import _cast, _check_broadcast, _float_pair

__all__ = [
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1",
    "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
    "spherical_bessel_j0", "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
    "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "hermite_polynomial_h",
    "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p",
]


# ---------------------------------------------------------------- the polynomial kernels
def _degrees(n):
    """The degree per element as torch's kernels take it: truncated towards zero, and -1 (the
    polynomial 0) for a NaN or infinite degree (torch's Hermite kernels; the others leave it
    undefined)."""
    xp = array_module(n)
    finite = xp.isfinite(n)
    return xp.where(finite, xp.trunc(xp.where(finite, n, -1)), -1).astype(np.int64)


def _recurrence(n, p, q, step, pending):
    """q after n - 1 steps of ``(p, q) ← (q, step(k, p, q))`` (k = 1, 2, ... counting the steps),
    each element stopping at its own n; only elements marked ``pending`` need it (the others
    take a closed form), so the loop runs to their largest n."""
    xp = array_module(n)
    steps = n - 1
    needed = int(steps[pending].max()) if bool(pending.any()) else 0
    for k in range(1, needed + 1):
        r = step(k, p, q)
        active = k <= steps
        p, q = xp.where(active, q, p), xp.where(active, r, q)
        # torch's loops stop at a NaN (an overflowed |x| > 1, say); so does this one once every
        # element still stepping is NaN, rather than running on to a huge degree
        if k % 64 == 0 and not bool((active & pending & ~xp.isnan(q)).any()):
            break
    return q


def _fused(a, b, c):
    """a·b + c rounded once in float32, as the fused multiply-add torch's CPU kernels compile each
    recurrence step to (through float64, where a float32 product is exact); other dtypes round twice
    (NumPy has no fused multiply-add; float64's second rounding is far below any comparison's)."""
    if b.dtype != np.float32:
        return a * b + c
    wide = (lambda v: v.astype(np.float64) if hasattr(v, "astype") else float(v))
    return (wide(a) * wide(b) + wide(c)).astype(np.float32)


def _select(default, *cases):
    """``cases`` are (mask, value) pairs in torch's order of precedence: the first that holds wins."""
    xp = array_module(default)
    result = default
    for mask, value in reversed(cases):
        result = xp.where(mask, value, result)
    return result


def _parity(n, even, odd):
    return array_module(n).where(n % 2 == 0, even, odd)


def _chebyshev_kind(kind: str, x, n, shifted: bool):
    """The Chebyshev polynomials T, U, V, W at x (or at 2x - 1, ``shifted``): the recurrence
    r = 2y·q - p from (1, first), with torch's exact values at the ends of [-1, 1] (at x = 0 and
    1 when shifted) and its closed forms in θ = acos(y) inside for degrees above a threshold."""
    xp = array_module(x)
    y = (x + x - 1.0) if shifted else x
    first = {"t": y, "u": y + y, "v": y + y - 1.0, "w": y + y + 1.0}[kind]
    ones = xp.ones_like(y)
    # the closed forms in float64 whatever y's width: sin((n+1)θ) of a float32 θ near 4π keeps only
    # ~1e-6 of absolute accuracy, and the last ulp of a float32 sin differs between libms (SIMD or not)
    wide = y.astype(np.float64) if y.dtype.itemsize < 8 else y
    with np.errstate(all="ignore"):
        theta = xp.arccos(wide)
        n_float = n.astype(wide.dtype)
        odd_sign = _parity(n, 1.0, -1.0)
        if kind == "t":
            at_top, at_bottom = ones, odd_sign * ones
            inside = xp.cos(n_float * theta)
        elif kind == "u":
            at_top, at_bottom = n_float + 1, odd_sign * (n_float + 1)
            inside = xp.where(xp.sin(theta) != 0, xp.sin((n_float + 1) * theta) / xp.sin(theta),
                              (n_float + 1) * xp.cos((n_float + 1) * theta) / y)
        elif kind == "v":
            at_top, at_bottom = ones, odd_sign * (n_float + n_float + 1)
            inside = xp.where(xp.sin(theta / 2) != 1, xp.cos((n_float + 0.5) * theta) / xp.cos(theta / 2),
                              odd_sign * (n_float + n_float + 1))
        else:
            at_top, at_bottom = n_float + n_float + 1, odd_sign * ones
            inside = xp.where(xp.cos(theta / 2) != 1, xp.sin((n_float + 0.5) * theta) / xp.sin(theta / 2),
                              odd_sign if shifted else xp.where(y > 0, n_float + n_float + 1, odd_sign))
        if shifted:
            top, bottom = x == 1.0, x == 0.0
            threshold = 4 if kind == "w" else 6
        else:
            top, bottom = (xp.abs(x) == 1.0) & (x > 0), (xp.abs(x) == 1.0) & (x < 0)
            threshold = 6 if kind == "t" else 8
        inside = inside.astype(y.dtype, copy=False)
        at_top, at_bottom = at_top.astype(y.dtype, copy=False), at_bottom.astype(y.dtype, copy=False)
        closed = (n > threshold) & (xp.abs(y) < 1.0)
        cases = [(n < 0, 0.0), (top, at_top), (bottom, at_bottom), (closed, inside), (n == 0, ones),
                 (n == 1, first)]
        pending = ~(cases[0][0] | top | bottom | closed | (n <= 1))
        recurrence = _recurrence(n, ones, first, lambda k, p, q: _fused(y + y, q, -p), pending)
        return _select(recurrence, *cases)


def _hermite(x, n, physicists: bool, limit: int):
    """Hermite H (physicists': H₁ = 2x, Hₙ₊₁ = 2x·Hₙ - 2n·Hₙ₋₁) or He (probabilists': He₁ = x,
    Heₙ₊₁ = x·Heₙ - n·Heₙ₋₁); NaN above torch's degree limit for the dtype."""
    xp = array_module(x)
    ones = xp.ones_like(x)
    first = x + x if physicists else x
    with np.errstate(all="ignore"):
        if physicists:
            def step(k, p, q):
                return _fused(x + x, q, -((2 * k) * p))
        else:
            def step(k, p, q):
                return _fused(x, q, -(k * p))
        cases = [(n < 0, 0.0), (n == 0, ones), (n == 1, first), (n > limit, np.nan)]
        pending = (n > 1) & (n <= limit)
        return _select(_recurrence(n, ones, first, step, pending), *cases)


def _laguerre(x, n):
    xp = array_module(x)
    ones = xp.ones_like(x)
    with np.errstate(all="ignore"):
        cases = [(n < 0, 0.0), (x == 0, ones), (n == 0, ones), (n == 1, 1.0 - x)]
        pending = (n > 1) & (x != 0)
        recurrence = _recurrence(n, ones, 1.0 - x, lambda k, p, q: _fused((k + k) + (1.0 - x), q, -(k * p)) / (k + 1),
                                 pending)
        return _select(recurrence, *cases)


def _legendre(x, n):
    xp = array_module(x)
    ones = xp.ones_like(x)
    with np.errstate(all="ignore"):
        end = xp.abs(x) == 1.0
        cases = [(n < 0, 0.0), (end, xp.where((x > 0) | (n % 2 == 0), 1.0, -1.0).astype(x.dtype)), (n == 0, ones),
                 (n == 1, x)]
        pending = (n > 1) & ~end
        recurrence = _recurrence(n, ones, x, lambda k, p, q: _fused((k + k + 1) * x, q, -(k * p)) / (k + 1), pending)
        return _select(recurrence, *cases)


# ---------------------------------------------------------------- the public functions
def _result(array, dtype) -> Tensor:
    # outside the graph: torch gives these functions no derivative and their results no grad_fn
    return Tensor._make(array.astype(dtype, copy=False))


def _refuse_dtype(op: str, x: Tensor) -> None:
    """torch's CPU kernels of these functions take real floats (integers cast to float): complex
    inputs raise its error naming the kernel and the C++ scalar type. (Its kernels take no float16 or
    bfloat16 either; chainrule computes those in float32 and rounds once, as tests/test_bfloat16.py
    documents for such ops.)"""
    if x._data.dtype.kind == "c":
        raise NotImplementedError(f"\"{op}_cpu\" not implemented for '{_dtype.scalar_name(x.dtype)}'")


def _unary_input(op: str, input, parameter: str = "input") -> Tensor:
    if not isinstance(input, Tensor):
        raise TypeError(f"special_{op}(): argument '{parameter}' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    _refuse_dtype(op, input)
    if input._data.dtype.kind != "f":  # (bfloat16 kept: its result rounds back to it)
        return input if input.dtype is _dtype.bfloat16 else _cast(input, _dtype.get_default_dtype())
    return input


def _named_parameters(function, *names: str):
    """``function`` (of positional parameters) showing torch's parameter names, which the ``out=``
    front honours_out compiles from its signature then takes as keywords: torch's aten schemas name
    the tensor ``x`` in the functions added with the polynomials and ``self`` (``input=`` in
    Python) in the older Bessel functions."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    function.__signature__ = inspect.Signature([inspect.Parameter(name, kind) for name in names],
                                               return_annotation=Tensor)
    return function


def _computed(kernel, *arrays):
    """``kernel(*arrays)``; on the meta device, which has no values to run it on, only the result's
    shape (torch's meta kernels give these functions meta results)."""
    xp = array_module(*arrays)
    if xp is _meta.module:
        return xp.empty(arrays[0].shape, arrays[0].dtype)
    return kernel(*arrays)


def _unary(op: str, kernel, doc: str, parameter: str = "input"):
    def special_function(input: Tensor) -> Tensor:
        if _function.active_dispatch is not None:  # (a wrapper's values live in it: argument_dispatch)
            made = _function.argument_dispatch(f"special_{op}", special_function, (input,), {})
            if made is not _function.RUN_UNDISPATCHED:
                return made
        x = _unary_input(op, input, parameter)
        low = x._data.dtype.itemsize == 2  # float16/bfloat16: in float32, rounded once
        return _result(_computed(kernel, x._data.astype(np.float32) if low else x._data), x._data.dtype)

    special_function.__name__ = special_function.__qualname__ = op
    special_function.__doc__ = f"torch.special.{op}({parameter}): {doc} (no gradient, as torch)."
    return honours_out(_named_parameters(special_function, parameter))


def _polynomial_inputs(op: str, input, n):
    if not isinstance(input, Tensor) and not isinstance(n, Tensor):
        raise TypeError(f"special_{op}() received an invalid combination of arguments - got "
                        f"({type(input).__name__}, {type(n).__name__}), but expected one of: (Tensor x, Tensor n), "
                        "(Number x, Tensor n) or (Tensor x, Number n)")
    x, n = _float_pair(input, n)
    _refuse_dtype(op, x)
    _check_broadcast(x, n)
    xp = array_module(x._data)
    x_data, n_data = xp.broadcast_arrays(x._data, n._data)
    return x_data, _degrees(n_data)


def _polynomial(op: str, kernel, doc: str):
    def polynomial(x, n) -> Tensor:
        if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
            overload = "default" if isinstance(n, Tensor) and isinstance(x, Tensor) else \
                "n_scalar" if isinstance(x, Tensor) else "x_scalar"
            made = _function.argument_dispatch(f"special_{op}.{overload}", polynomial, (x, n), {})
            if made is not _function.RUN_UNDISPATCHED:
                return made
        x, degrees = _polynomial_inputs(op, x, n)
        return _result(_computed(kernel, x, degrees), x.dtype)

    polynomial.__name__ = polynomial.__qualname__ = op
    polynomial.__doc__ = (f"torch.special.{op}(x, n): {doc} of degree n (per element, truncated to an "
                          "integer; 0 for n < 0) at x; either may be a number. No gradient, as torch.")
    return honours_out(polynomial)


airy_ai = _unary("airy_ai", _bessel.airy_ai, "the Airy function Ai", "x")
bessel_j0 = _unary("bessel_j0", _bessel.bessel_j0, "the Bessel function of the first kind J0")
bessel_j1 = _unary("bessel_j1", _bessel.bessel_j1, "the Bessel function of the first kind J1")
bessel_y0 = _unary("bessel_y0", _bessel.bessel_y0, "the Bessel function of the second kind Y0 (NaN below 0)")
bessel_y1 = _unary("bessel_y1", _bessel.bessel_y1, "the Bessel function of the second kind Y1 (NaN below 0)")
modified_bessel_i0 = _unary("modified_bessel_i0", _bessel.modified_bessel_i0,
                            "the modified Bessel function of the first kind I0")
modified_bessel_i1 = _unary("modified_bessel_i1", _bessel.modified_bessel_i1,
                            "the modified Bessel function of the first kind I1")
modified_bessel_k0 = _unary("modified_bessel_k0", _bessel.modified_bessel_k0,
                            "the modified Bessel function of the second kind K0 (NaN below 0)")
modified_bessel_k1 = _unary("modified_bessel_k1", _bessel.modified_bessel_k1,
                            "the modified Bessel function of the second kind K1 (NaN below 0)")
scaled_modified_bessel_k0 = _unary("scaled_modified_bessel_k0", _bessel.scaled_modified_bessel_k0, "exp(x)·K0(x)", "x")
scaled_modified_bessel_k1 = _unary("scaled_modified_bessel_k1", _bessel.scaled_modified_bessel_k1, "exp(x)·K1(x)", "x")
spherical_bessel_j0 = _unary("spherical_bessel_j0", _bessel.spherical_bessel_j0,
                             "the spherical Bessel function j0 = sin(x)/x", "x")

_ORDINALS = {"t": "first", "u": "second", "v": "third", "w": "fourth"}


def _chebyshev(kind: str, shifted: bool):
    name = f"{'shifted_' if shifted else ''}chebyshev_polynomial_{kind}"
    polynomial = f"{kind.upper()}(2x - 1)" if shifted else kind.upper()
    return _polynomial(name, functools.partial(_chebyshev_kind, kind, shifted=shifted),
                       f"{polynomial}, the {'shifted ' if shifted else ''}Chebyshev polynomial of the "
                       f"{_ORDINALS[kind]} kind")


chebyshev_polynomial_t = _chebyshev("t", shifted=False)
chebyshev_polynomial_u = _chebyshev("u", shifted=False)
chebyshev_polynomial_v = _chebyshev("v", shifted=False)
chebyshev_polynomial_w = _chebyshev("w", shifted=False)
shifted_chebyshev_polynomial_t = _chebyshev("t", shifted=True)
shifted_chebyshev_polynomial_u = _chebyshev("u", shifted=True)
shifted_chebyshev_polynomial_v = _chebyshev("v", shifted=True)
shifted_chebyshev_polynomial_w = _chebyshev("w", shifted=True)

# torch caps the Hermite degree per dtype (beyond it the recurrence only overflows)
_HERMITE_LIMIT = {np.dtype(np.float16): 1024, np.dtype(np.float32): 128, np.dtype(np.float64): 512}
hermite_polynomial_h = _polynomial("hermite_polynomial_h",
                                   lambda x, n: _hermite(x, n, True, _HERMITE_LIMIT.get(x.dtype, 1024)),
                                   "the physicists' Hermite polynomial H")
hermite_polynomial_he = _polynomial("hermite_polynomial_he",
                                    lambda x, n: _hermite(x, n, False, _HERMITE_LIMIT.get(x.dtype, 1024)),
                                    "the probabilists' Hermite polynomial He")
laguerre_polynomial_l = _polynomial("laguerre_polynomial_l", _laguerre, "the Laguerre polynomial L")
legendre_polynomial_p = _polynomial("legendre_polynomial_p", _legendre, "the Legendre polynomial P")
