"""torch's special math: the gamma family, erfinv, Bessel I0/I1, incomplete gamma, ndtri, logit.

Each op is a Function whose forward runs a NumPy kernel from ``_special_math`` and whose
backward is torch's derivative written in chainrule ops (so it differentiates again). On a
device the kernels come from ``cupyx.scipy.special`` where it has them; otherwise the op
refuses with NotImplementedError naming itself and the device.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from .. import _dtype, _meta, _vmap_frames, return_types
from .._backend import array_module, device_of
from ..autograd import function as _function
from ..autograd.function import Function, ctx_value, kept_value, name_node, saved, without_derivative
from ..tensor import Tensor, _check_tensor, honours_out, write_out
from . import _incomplete_gamma as incomplete_gamma
from . import _special_math as kernels
from ._arg_parser import write_out_same_dtype
from .elementwise import (
    _cast,
    _conj,
    _float32_via_float64,
    _float_input,
    _float_pair,
    _kernel_arrays,
    _log_array,
    _one_device,
    _pair,
    _preserving_layout,
    _require_tensors,
    cos,
    exp,
    logaddexp,
    mul,
    pow,
    refuse_complex,
    refuse_kernel_dtype,
    rounded_once,
    rsqrt,
    sign,
    sin,
    where,
    zeros_like_tensor,
)
from .memory_format import unary_layout

__all__ = ["lgamma", "digamma", "polygamma", "mvlgamma", "erfinv", "i0", "igamma", "igammac", "logit",
           "acosh", "asinh", "atanh", "erfc", "sinc", "heaviside", "gcd", "lcm", "copysign", "nextafter",
           "frexp", "ldexp", "float_power", "deg2rad", "rad2deg", "logaddexp2", "sgn", "positive"]
__not_methods__ = {"polygamma"}
# x.polygamma(n) takes the order second, unlike torch.polygamma(n, x)
__tensor_methods__ = {"polygamma": "_polygamma_method"}


def on_device(op: str, cupy_name: str | None, kernel, *arrays, cupy_args=()):
    """``kernel(*arrays)`` on the CPU, in the first array's dtype; on a device, the same function
    from ``cupyx.scipy.special`` (``cupy_name(*cupy_args, *arrays)``) or a NotImplementedError
    naming the op and the device."""
    xp = array_module(*arrays)
    dtype = arrays[0].dtype
    if xp is np:
        return np.asarray(kernel(*arrays)).astype(dtype, copy=False)
    if xp is _meta.module:  # no values to run the kernel on: the shape and dtype, as torch's meta kernels give
        return xp.empty(np.broadcast_shapes(*(array.shape for array in arrays)), dtype)
    function = None
    if cupy_name is not None and getattr(xp, "__name__", None) == "cupy":  # not the stand-in
        try:
            from cupyx.scipy import special as cupy_special
        except ImportError:
            cupy_special = None
        function = getattr(cupy_special, cupy_name, None)
    if function is None:
        if cupy_name is None:
            raise NotImplementedError(
                f"{op} is not implemented on {device_of(arrays[0])}: chainrule's kernel is NumPy-only and "
                f"cupyx.scipy.special has no equivalent; move the tensor to the CPU (.cpu()) for {op}")
        # no cupyx (the CPU stand-in, or a CuPy without SciPy's functions): the NumPy kernel on a
        # host copy, and the result copied back; correct, at the price of the two copies
        host = [xp.asnumpy(a) for a in arrays]
        return xp.asarray(np.asarray(kernel(*host)).astype(dtype, copy=False))
    return function(*cupy_args, *arrays).astype(dtype, copy=False)


class _Unary:
    """The shape of each elementwise special function below (a mixin, not a Function: each
    concrete class is the Function, with its own explainer text): ``kernel`` forward on arrays,
    ``derivative(grad, x, y)`` backward in chainrule ops."""

    _array_forward = True
    op = cupy_name = None
    any_device = False  # True: ``kernel`` uses the array's own module, so it runs on a device as is
    # torch's grad_fn._saved_* (most keep their input; the special.* ones below their output too)
    saved_attributes = {"_saved_self": saved(0)}

    @classmethod
    def kernel(cls, x):
        raise NotImplementedError

    @classmethod
    def derivative(cls, grad, x, y):
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, x):
        y = cls.kernel(x) if cls.any_device else on_device(cls.op, cls.cupy_name, cls.kernel, x)
        # what torch saves, no more: an unsaved input or output may be written in place after
        # the forward (F.relu_(torch.sinc(x)) is allowed; ndtri's input may change)
        saves = cls.saved_attributes
        ctx.save_for_backward(x if "_saved_self" in saves else None, y if "_saved_result" in saves else None)
        return y

    @classmethod
    def backward(cls, ctx, grad):
        x, y = ctx.saved_values
        if grad._data.dtype.kind == "c":
            # a holomorphic f (acosh, asinh, atanh, sinc of complex z), in torch's convention:
            # grad · conj(f'(z)) = conj(conj(grad) · f'(z))
            return _conj(cls.derivative(_conj(grad), x, y))
        return cls.derivative(grad, x, y)


def _refuse_complex(x, kernel: str) -> None:
    """torch's error for a special function whose CPU kernel takes real dtypes only."""
    if isinstance(x, Tensor) and x._data.dtype.kind == "c":
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(x.dtype)}'")


def _unary_op(cls, name: str, real_kernel: str | None = None):
    """The public function of a unary special op; ``real_kernel``: the name of torch's CPU kernel,
    which refuses complex inputs."""
    def op(input: Tensor) -> Tensor:
        if real_kernel is not None and isinstance(input, Tensor) and input._data.dtype.kind == "c":
            raise NotImplementedError(f"\"{real_kernel}\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
        return cls.apply(_float_input(input))

    op = honours_out(op, name)  # (named here: out='s messages name the op, not "op")
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"torch.{name}, elementwise, with its gradient ({cls.rule})."
    op.function = cls
    return op


class Lgamma(_Unary, Function):
    op, cupy_name = "lgamma", "gammaln"
    label, rule, formula = "lgamma", "∂/∂a = digamma(a)", "lgamma({0})"
    kernel = staticmethod(kernels.lgamma)

    @staticmethod
    def derivative(grad, x, y):
        return grad * digamma(x)


class Digamma(_Unary, Function):
    op, cupy_name = "digamma", "digamma"
    label, rule, formula = "digamma", "∂/∂a = polygamma(1, a)", "digamma({0})"
    kernel = staticmethod(kernels.digamma)

    @staticmethod
    def derivative(grad, x, y):
        return grad * polygamma(1, x)


class Erfinv(_Unary, Function):
    op, cupy_name = "erfinv", "erfinv"
    label, rule, formula = "erfinv", "∂/∂a = sqrt(π)/2·exp(erfinv(a)²)", "erfinv({0})"
    kernel = staticmethod(kernels.erfinv)

    @staticmethod
    def derivative(grad, x, y):
        # torch saves the input only and evaluates erfinv again
        y = erfinv(x)
        return grad * (math.sqrt(math.pi) / 2) * exp(y * y)


class I0(_Unary, Function):
    op, cupy_name = "i0", "i0"
    label, rule, formula = "i0", "∂/∂a = i1(a)", "i0({0})"
    kernel = staticmethod(kernels.i0)

    @staticmethod
    def derivative(grad, x, y):
        return grad * special_i1(x)


class SpecialI0E(_Unary, Function):
    saved_attributes = {"_saved_result": saved(1), "_saved_self": saved(0)}
    op, cupy_name = "special.i0e", "i0e"
    label, rule, formula = "i0e", "∂/∂a = i1e(a) - sgn(a)·i0e(a)", "i0e({0})"
    kernel = staticmethod(kernels.i0e)

    @staticmethod
    def derivative(grad, x, y):
        return grad * (special_i1e(x) - sign(x) * y)


class SpecialI1(_Unary, Function):
    saved_attributes = {"_saved_result": saved(1), "_saved_self": saved(0)}
    op, cupy_name = "special.i1", "i1"
    label, rule, formula = "i1", "∂/∂a = i0(a) - i1(a)/a (1/2 where |a| <= eps or a is NaN)", "i1({0})"
    kernel = staticmethod(kernels.i1)

    @staticmethod
    def derivative(grad, x, y):
        not_tiny, safe = _away_from_zero(x)
        return grad * where(not_tiny, i0(safe) - y / safe, 0.5)


class SpecialI1E(_Unary, Function):
    saved_attributes = {"_saved_result": saved(1), "_saved_self": saved(0)}
    op, cupy_name = "special.i1e", "i1e"
    label, rule, formula = ("i1e", "∂/∂a = i0e(a) - i1e(a)·(sgn(a) + 1/a) (1/2 where |a| <= eps or a is NaN)",
                            "i1e({0})")
    kernel = staticmethod(kernels.i1e)

    @staticmethod
    def derivative(grad, x, y):
        not_tiny, safe = _away_from_zero(x)
        return grad * where(not_tiny, special_i0e(safe) - y * (sign(safe) + 1 / safe), 0.5)


def _away_from_zero(x):
    """torch's i1/i1e backward: (|x| > eps, x there and eps elsewhere); where |x| <= eps, or x is
    NaN, the gradient is the limit 1/2."""
    eps = float(np.finfo(x._data.dtype).eps)
    not_tiny = x.abs() > eps
    return not_tiny, where(not_tiny, x, eps)


def _entr_array(x):
    xp = array_module(x)
    with np.errstate(all="ignore"):
        value = xp.where(x > 0, -x * xp.log(xp.where(x > 0, x, 1)), xp.where(x == 0, 0, -xp.inf))
        return xp.where(xp.isnan(x), x, value).astype(x.dtype, copy=False)


class SpecialEntr(_Unary, Function):
    op, label, formula = "special.entr", "entr", "entr({0})"
    rule = "∂/∂a = -(1 + log a) (NaN for a < 0, +inf at 0)"
    kernel, any_device = staticmethod(_entr_array), True

    @staticmethod
    def derivative(grad, x, y):
        return grad * -(1 + x.log())


class SpecialNdtri(_Unary, Function):
    saved_attributes = {"_saved_result": saved(1)}
    op, cupy_name = "special.ndtri", "ndtri"
    label, rule, formula = "ndtri", "∂/∂p = sqrt(2π)·exp(ndtri(p)²/2) (from the saved output)", "ndtri({0})"
    kernel = staticmethod(kernels.ndtri)

    @staticmethod
    def derivative(grad, x, y):
        return grad * math.sqrt(2 * math.pi) * exp(y * y / 2)


class SpecialLogNdtr(_Unary, Function):
    saved_attributes = {"_saved_result": saved(1), "_saved_self": saved(0)}
    op, cupy_name = "special.log_ndtr", "log_ndtr"
    label, rule, formula = "log_ndtr", "∂/∂a = exp(-a²/2 - log_ndtr(a))/sqrt(2π)", "log_ndtr({0})"
    kernel = staticmethod(kernels.log_ndtr)

    @staticmethod
    def derivative(grad, x, y):
        return grad / math.sqrt(2 * math.pi) * exp(-(y + x * x / 2))


class SpecialErfcx(_Unary, Function):
    saved_attributes = {"_saved_result": saved(1), "_saved_self": saved(0)}
    op, cupy_name = "special.erfcx", "erfcx"
    label, rule, formula = "erfcx", "∂/∂a = 2a·erfcx(a) - 2/sqrt(π)", "erfcx({0})"
    kernel = staticmethod(kernels.erfcx)

    @staticmethod
    def derivative(grad, x, y):
        return (2.0 * x * y - 2.0 / math.sqrt(math.pi)) * grad


lgamma = _unary_op(Lgamma, "lgamma", real_kernel="lgamma_vml_cpu")
digamma = _unary_op(Digamma, "digamma", real_kernel="digamma")
erfinv = _unary_op(Erfinv, "erfinv", real_kernel="erfinv_vml_cpu")
i0 = _unary_op(I0, "i0", real_kernel="i0_vml_cpu")
special_i0e = _unary_op(SpecialI0E, "i0e", real_kernel="i0e_cpu")
special_i1 = _unary_op(SpecialI1, "i1", real_kernel="i1_cpu")
special_i1e = _unary_op(SpecialI1E, "i1e", real_kernel="i1e_cpu")
special_entr = _unary_op(SpecialEntr, "entr", real_kernel="entr_cpu")
# (torch's kernels of these three take float32 and float64 only: its float16/bfloat16 refusals are
# computed here, as tests/test_bfloat16.py documents)
special_ndtri = _unary_op(SpecialNdtri, "ndtri", real_kernel="ndtri_cpu")
special_log_ndtr = _unary_op(SpecialLogNdtr, "log_ndtr", real_kernel="log_ndtr_cpu")
special_erfcx = _unary_op(SpecialErfcx, "erfcx", real_kernel="erfcx_cpu")


# ---------------------------------------------------------------- polygamma, mvlgamma
class Polygamma(Function):
    saved_attributes = {"_saved_n": ctx_value("n"), "_saved_self": saved(0)}
    label = "polygamma"
    rule = "∂/∂a = polygamma(n + 1, a)"
    formula = "polygamma(n, {0})"
    _array_forward = True

    @staticmethod
    def forward(ctx, x, n):
        ctx.n = n
        ctx.save_for_backward(x)
        if n == 0:
            return on_device("polygamma", "digamma", kernels.digamma, x)
        if array_module(x) is not np:
            # cupyx's polygamma mishandles a Python order (on CuPy 14.2 with an H200 it returned a
            # bool); ψ^(n)(x) = (-1)^(n+1) n! ζ(n + 1, x) from cupyx's zeta is the same function
            scale = x.dtype.type((1.0 if n % 2 else -1.0) * math.factorial(n))
            order = float(n + 1)
            return on_device("polygamma", "zeta", lambda q: kernels.zeta(order, q), x, cupy_args=(order,)) * scale
        return on_device("polygamma", "polygamma", lambda a: kernels.polygamma(n, a), x, cupy_args=(n,))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        return grad * polygamma(ctx.n + 1, x)


def _check_order(op: str, n) -> None:
    if not isinstance(n, (builtins.int, np.integer)) or isinstance(n, builtins.bool):
        raise TypeError(f"{op}(): argument 'n' must be int, not {type(n).__name__}")
    if not -2**63 <= n < 2**63:  # torch's parser cannot unpack it into its int64_t
        raise ValueError("Overflow when unpacking long long")
    if n < 0:
        raise RuntimeError(f"{op}(n, x) does not support negative n.")


@honours_out
def polygamma(n: int, input: Tensor) -> Tensor:
    """torch.polygamma: the n-th derivative of digamma (n = 0 is digamma itself)."""
    _check_order("polygamma", n)
    return Polygamma.apply(_float_input(input), n=builtins.int(n))


def _polygamma_method(self: Tensor, n: int) -> Tensor:
    return polygamma(n, self)


def _mvlgamma_shifts(xp, p: int, dtype):
    """The p shifts -(p-1)/2, ..., -1/2, 0 of mvlgamma's arguments, as torch's arange makes them.

    torch adds them to the input as one (..., p) tensor, so a p beyond memory fails at once with
    its allocator's error instead of running p passes over the input."""
    return xp.arange(-(p - 1) / 2, 0.5, 0.5, dtype=dtype)


class Mvlgamma(Function):
    saved_attributes = {"_saved_p": ctx_value("p"), "_saved_self": saved(0)}
    label = "mvlgamma"
    rule = "∂/∂a = Σ_j digamma(a - j/2), j < p"
    formula = "mvlgamma({0}, p)"
    _array_forward = True

    @staticmethod
    def forward(ctx, x, p):
        ctx.p = p
        ctx.save_for_backward(x)
        arguments = x[..., None] + _mvlgamma_shifts(array_module(x), p, x.dtype)
        terms = on_device("mvlgamma", "gammaln", kernels.lgamma, arguments)
        constant = x.dtype.type(p * (p - 1) * math.log(math.pi) * 0.25)  # torch's scalar, in x's dtype
        if x.dtype.itemsize == 2:  # torch's half sum and addition run in float32, each rounded once
            total = terms.sum(-1, dtype=np.float32).astype(x.dtype).astype(np.float32) + np.float32(constant)
        else:
            total = terms.sum(-1) + constant
        return total.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        shifts = Tensor._make(_mvlgamma_shifts(array_module(x._data), ctx.p, x._data.dtype))
        return grad * digamma(x.unsqueeze(-1) + shifts).sum(-1)


@honours_out
def mvlgamma(input: Tensor, p: int) -> Tensor:
    """torch.mvlgamma: the log of the p-variate gamma function, p(p-1)/4·log π + Σ_j lgamma(x - j/2)."""
    if not isinstance(p, (builtins.int, np.integer)) or isinstance(p, builtins.bool):
        raise TypeError(f"mvlgamma(): argument 'p' must be int, not {type(p).__name__}")
    if not -2**63 <= p < 2**63:
        raise ValueError("Overflow when unpacking long long")
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    return Mvlgamma.apply(_float_input(input), p=builtins.int(p))


# ---------------------------------------------------------------- incomplete gamma, zeta
class Igamma(Function):
    # torch keeps both only for x's gradient (it has none for a)
    saved_attributes = {"_saved_other": saved(1, needed=1), "_saved_self": saved(0, needed=1)}
    label = "igamma"
    rule = "∂/∂x = x^(a-1)·e^(-x)/Γ(a); none for a (torch has no derivative for it)"
    formula = "igamma({0}, {1})"
    _array_forward = True
    upper = False

    @classmethod
    def forward(cls, ctx, a, x):
        ctx.save_for_backward(a, x)
        name = "igammac" if cls.upper else "igamma"
        return on_device(name, "gammaincc" if cls.upper else "gammainc",
                         incomplete_gamma.igammac if cls.upper else incomplete_gamma.igamma, a, x)

    @classmethod
    def backward(cls, ctx, grad):
        if ctx.needs_input_grad[0]:
            name = "igammac" if cls.upper else "igamma"
            raise NotImplementedError(f"the derivative for '{name}: input' is not implemented.")
        a, x = ctx.saved_values
        density = exp((a - 1) * x.log() - x - lgamma(a))
        return None, -grad * density if cls.upper else grad * density


class Igammac(Igamma):
    label = "igammac"
    rule = "∂/∂x = -x^(a-1)·e^(-x)/Γ(a); none for a (torch has no derivative for it)"
    formula = "igammac({0}, {1})"
    upper = True


def _float_tensors(op: str, input, other):
    _require_tensors(op, input, other)
    return _float_pair(input, other)


@honours_out
def igamma(input: Tensor, other: Tensor) -> Tensor:
    """torch.igamma: the regularized lower incomplete gamma function P(input, other)."""
    _refuse_non_floating_pair("igamma_cpu", input, other)
    return Igamma.apply(*_float_tensors("igamma", input, other))


@honours_out
def igammac(input: Tensor, other: Tensor) -> Tensor:
    """torch.igammac: the regularized upper incomplete gamma function Q(input, other) = 1 - P."""
    _refuse_non_floating_pair("igammac_cpu", input, other)
    return Igammac.apply(*_float_tensors("igammac", input, other))


def _refuse_non_floating_pair(kernel: str, input, other) -> None:
    """torch's error for a binary kernel with real floating instances only, named by the pair's dtype."""
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        common = _dtype.result_type(input, other)
        if not common.is_floating_point:
            raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(common)}'")


class SpecialZeta(Function):
    label = "zeta"
    rule = "none: torch has no derivative for zeta (backward raises)"
    formula = "zeta({0}, {1})"
    _array_forward = True

    @staticmethod
    def forward(ctx, x, q):
        return on_device("special.zeta", "zeta", kernels.zeta, x, q)

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("the derivative for 'zeta' is not implemented.")


@honours_out
def special_zeta(input, other) -> Tensor:
    """torch.special.zeta: the Hurwitz zeta function Σ_k (k + other)^-input (either may be a number)."""
    pair = _float_pair(input, other)
    _refuse_complex(pair[0], "zeta_cpu")  # (the pair's common dtype)
    if pair[0].dtype in (_dtype.float16, _dtype.bfloat16):  # torch's zeta has no half-precision kernel
        raise NotImplementedError(f"\"zeta_cpu\" not implemented for '{_dtype.scalar_name(pair[0].dtype)}'")
    return SpecialZeta.apply(*pair)


# ---------------------------------------------------------------- xlog1py
class SpecialXlog1Py(Function):
    """x · log1p(y), 0 where x = 0 and y is not NaN (torch.special.xlog1py)."""

    label = "xlog1py"
    rule = "∂/∂x = log1p(y) (at x = 0 too, as torch; 0 where x = 0 and y <= -1), ∂/∂y = x / (y + 1)"
    formula = "xlog1py({0}, {1})"
    _array_forward = True
    saved_attributes = {"_saved_other": saved(1), "_saved_self": saved(0)}

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        xp = array_module(x)
        with np.errstate(all="ignore"):
            return xp.where((x == 0) & ~xp.isnan(y), xp.zeros((), x.dtype), x * xp.log1p(y))

    @staticmethod
    def backward(ctx, grad):
        # torch's rule: the x-gradient is xlog1py(grad, y), log1p y even where x = 0, except 0 where
        # x = 0 and y <= -1 (log1p y is -inf or NaN there)
        x, y = ctx.saved_values
        return (where((x == 0) & (y <= -1), 0.0, special_xlog1py(grad, y)) if ctx.needs_input_grad[0] else None,
                grad * x / (y + 1) if ctx.needs_input_grad[1] else None)


def special_xlog1py(input, other) -> Tensor:
    """torch.special.xlog1py: x * log1p(y), 0 where x == 0 and y is not NaN; either may be a Python number."""
    pair = _float_pair(input, other)
    _refuse_complex(pair[0], "xlog1py_cpu")  # (the pair's common dtype)
    return SpecialXlog1Py.apply(*pair)


# ---------------------------------------------------------------- logit
class Logit(Function):
    saved_attributes = {"_saved_eps": ctx_value("eps"), "_saved_self": saved(0)}
    label = "logit"
    rule = "∂/∂p = 1/(p(1 - p)); 0 where eps clamps p, NaN outside [0, 1] without eps"
    formula = "logit({0})"
    _array_forward = True

    @staticmethod
    def forward(ctx, x, eps):
        xp = array_module(x)
        ctx.eps = eps
        ctx.save_for_backward(x)
        with np.errstate(all="ignore"):
            if x.dtype.itemsize == 2 and x.dtype.kind in "fV":
                # torch's float16/bfloat16 kernel: log(p / (1 - p)), each step rounded to the dtype
                one = x.dtype.type(1)
                low = None if eps is None else x.dtype.type(eps)
                p = x if eps is None else xp.clip(x, low, one - low).astype(x.dtype, copy=False)
                return xp.log(p / (one - p)).astype(x.dtype, copy=False)
            # torch's float and double kernel: log(p / (1 - p)) too, its clamp bounds in the dtype, the
            # log as torch.log's (log(p) - log1p(-p) differed from it in the last bit in about half
            # the values, and so did binary_cross_entropy's target gradient, -logit(p))
            one = x.dtype.type(1)
            p = x if eps is None else xp.clip(x, x.dtype.type(eps), one - x.dtype.type(eps)).astype(x.dtype,
                                                                                                  copy=False)
            return _log_array(p / (one - p)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_values
        slope = grad / (x * (1 - x))
        if ctx.eps is None:
            return where((x < 0) | (x > 1), math.nan, slope)
        return where((x < ctx.eps) | (x > 1 - ctx.eps), 0.0, slope)


@honours_out
def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """torch.logit: log(p / (1 - p)), with p clamped to [eps, 1 - eps] when ``eps`` is given."""
    if isinstance(input, Tensor) and input._data.dtype.kind == "c":
        raise NotImplementedError(f"\"logit_cpu\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    return Logit.apply(_float_input(input), eps=None if eps is None else builtins.float(eps))


# ---------------------------------------------------------------- more of torch's elementwise math
class Acosh(_Unary, Function):
    op, label, rule, formula = "acosh", "acosh", "∂/∂a = 1/sqrt(a² - 1)", "acosh({0})"
    kernel, any_device = staticmethod(lambda x: array_module(x).arccosh(x)), True

    @staticmethod
    def derivative(grad, x, y):
        if x._data.dtype.kind == "c":  # acosh's branch cut: √(z-1)·√(z+1), not √(z²-1) (as torch)
            return grad * rsqrt(x + 1) * rsqrt(x - 1)
        return grad * rsqrt(x * x - 1)


class Asinh(_Unary, Function):
    op, label, rule, formula = "asinh", "asinh", "∂/∂a = 1/sqrt(a² + 1)", "asinh({0})"
    kernel, any_device = staticmethod(lambda x: array_module(x).arcsinh(x)), True

    @staticmethod
    def derivative(grad, x, y):
        return grad * rsqrt(x * x + 1)


_atanh_float32 = _float32_via_float64(np.arctanh)


def _atanh_array(x):
    """atanh; a float32 NumPy array through float64, rounded once (``_float32_via_float64``): torch's
    float32 atanh (SLEEF's) is nearly always that value, NumPy's float32 loop an ulp off it in 1.35%
    of 200,000 uniform inputs in (-0.999, 0.999) (float64 rounded: 0.08%). (asinh and acosh gain
    nothing so.)"""
    if type(x) is np.ndarray:
        return _atanh_float32(x)
    return array_module(x).arctanh(x)


class Atanh(_Unary, Function):
    op, label, rule, formula = "atanh", "atanh", "∂/∂a = 1/(1 - a²)", "atanh({0})"
    kernel, any_device = staticmethod(_atanh_array), True

    @staticmethod
    def derivative(grad, x, y):
        return grad / (1 - x * x)


class Erfc(_Unary, Function):
    op, cupy_name = "erfc", "erfc"
    label, rule, formula = "erfc", "∂/∂a = -2/sqrt(π)·exp(-a²)", "erfc({0})"
    kernel = staticmethod(kernels.erfc)

    @staticmethod
    def derivative(grad, x, y):
        return grad * (-2.0 / math.sqrt(math.pi)) * exp(-(x * x))


def _sinc_array(x):
    xp = array_module(x)
    with np.errstate(all="ignore"):
        pix = np.pi * x
        return xp.where(x == 0, 1.0, xp.sin(pix) / pix).astype(x.dtype, copy=False)


class Sinc(_Unary, Function):
    op, label, rule, formula = "sinc", "sinc", "∂/∂a = (πa·cos(πa) - sin(πa))/(πa²) (0 at a = 0)", "sinc({0})"
    kernel, any_device = staticmethod(_sinc_array), True

    @staticmethod
    def derivative(grad, x, y):
        safe = where(x == 0, 1.0, x)
        pix = math.pi * safe
        return where(x == 0, 0.0, grad * ((pix * cos(pix) - sin(pix)) / (pix * safe)))


acosh = _unary_op(Acosh, "acosh")
asinh = _unary_op(Asinh, "asinh")
atanh = _unary_op(Atanh, "atanh")
erfc = _unary_op(Erfc, "erfc", real_kernel="erfc_vml_cpu")
sinc = _unary_op(Sinc, "sinc")


class Copysign(Function):
    saved_attributes = {"_saved_result": saved(1), "_saved_self": saved(0)}
    label = "copysign"
    rule = "∂/∂a = copysign(1, b)·sign(a) (0 at a = 0); b gets a zero gradient"
    formula = "copysign({0}, {1})"
    _array_forward = True

    @staticmethod
    def forward(ctx, a, b):
        y = array_module(a).copysign(a, b)
        ctx.save_for_backward(a, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, y = ctx.saved_values
        safe = where(a == 0, 1.0, a)
        return where(a == 0, 0.0, grad * y / safe), zeros_like_tensor(grad)


@honours_out
def copysign(input: Tensor, other) -> Tensor:
    """torch.copysign: |input| with other's sign (integers compute in the default float dtype)."""
    _require_tensors("copysign", input)
    a, b = _float_pair(input, other)
    refuse_complex(a, '"copysign_cpu" not implemented for \'{dtype}\'')
    return Copysign.apply(a, b)


class Heaviside(without_derivative("aten::heaviside")):
    """torch defines no derivative for heaviside: the graph records it, backward raises."""

    node_name = "torch::autograd::NotImplemented"

    label, rule, formula = "heaviside", "none: torch has no derivative for heaviside (backward raises)", "heaviside({0}, {1})"

    @staticmethod
    def forward(ctx, x, values):
        xp = array_module(x)
        return xp.where(x == 0, values, (x > 0).astype(x.dtype)).astype(x.dtype, copy=False)


@honours_out
def heaviside(input: Tensor, values: Tensor) -> Tensor:
    """torch.heaviside: 0 for x < 0, 1 for x > 0, ``values`` where x == 0 (one dtype for both)."""
    if not isinstance(input, Tensor) or not isinstance(values, Tensor):
        raise TypeError("heaviside(): arguments 'input' and 'values' must be Tensors")
    if input.dtype != values.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes")
    if input.dtype.is_complex:
        raise RuntimeError("heaviside is not yet implemented for complex tensors.")
    return Heaviside.apply(input, values)


class Nextafter(Function):
    label = "nextafter"
    # torch 2.13's formula: the one-ulp step is ignored, so input passes the gradient straight
    # through, except where a == b (the result is b there; neither gets any)
    rule = "∂/∂a = 1 where a != b, else 0; b gets a zero gradient"
    formula = "nextafter({0}, {1})"
    _array_forward = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return array_module(a).nextafter(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_values
        return where(a == b, 0.0, grad), zeros_like_tensor(grad)


@honours_out
def nextafter(input: Tensor, other: Tensor) -> Tensor:
    """torch.nextafter: the next floating-point value after input towards other."""
    _require_tensors("nextafter", input, other)
    a, b = _pair(input, other)
    if a._data.dtype.kind not in "fV":
        refuse_kernel_dtype("nextafter", a, b)
    return Nextafter.apply(a, b)


def _integer_pair(op: str, input, other):
    """The two integer operands' arrays (``elementwise._kernel_arrays``: broadcast, then one device).

    torch's gcd and lcm have no TensorIterator device check but the one of their generated CUDA
    wrapper, which runs first (before the dtype and shape checks), names the argument and lets no
    0-d CPU tensor join a CUDA one."""
    _require_tensors(op, input)
    _check_tensor(other, op, "other", 2)  # (None too: _require_tensors takes it for "no other")
    first, second = device_of(input._data), device_of(other._data)
    if first != second and "cuda" in (first.type, second.type):
        raise RuntimeError(f"Expected all tensors to be on the same device, but got other is on {second}, different "
                           f"from other tensors on {first} (when checking argument in method wrapper_CUDA_{op})")
    a, b = _pair(input, other)
    if a._data.dtype.kind not in "iu":
        refuse_kernel_dtype(op, a, b)
    return _kernel_arrays(op, a, b)


@honours_out
def gcd(input: Tensor, other: Tensor) -> Tensor:
    """torch.gcd: the elementwise greatest common divisor of integer tensors (no gradient)."""
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch("gcd", gcd, (input, other), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    x, y = _integer_pair("gcd", input, other)
    out = Tensor._make(array_module(x).gcd(x, y))
    if _vmap_frames._frames:  # no Function saw it: batched where an operand is (int(gcd(x, y)) is refused)
        _vmap_frames.note_results((input, other), None, out)
    return out


@honours_out
def lcm(input: Tensor, other: Tensor) -> Tensor:
    """torch.lcm: the elementwise least common multiple of integer tensors (no gradient)."""
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch("lcm", lcm, (input, other), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    x, y = _integer_pair("lcm", input, other)
    out = Tensor._make(array_module(x).lcm(x, y))
    if _vmap_frames._frames:  # no Function saw it: batched where an operand is (int(lcm(x, y)) is refused)
        _vmap_frames.note_results((input, other), None, out)
    return out


class ScaledBy(Function):
    """``x`` times a constant ``factor`` (a number, or an array of x's shape): torch's nodes for such
    products (Deg2RadBackward0, FrexpBackward0, ...) have one edge, for x, as this one."""

    _array_forward = True
    label = "scale"
    rule = "∂/∂a = the constant factor"

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        y = (x * factor).astype(x.dtype, copy=False)
        return y if x.flags.c_contiguous else unary_layout(y, x)  # (torch's unary layout, not NumPy's)

    @staticmethod
    def backward(ctx, grad):
        # d(c·a) = c da
        return ScaledBy.apply(grad, factor=ctx.factor)


def frexp(input: Tensor, *, out=None):
    """torch.frexp: (mantissa, exponent) with input = mantissa·2^exponent, |mantissa| in [0.5, 1);
    the exponent is int32 and nothing is differentiable, as torch."""
    if input._data.dtype.kind not in "fV":
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    if _function.active_dispatch is not None:  # (the exponent is read from the array: a wrapper's handler)
        made = _function.argument_dispatch("frexp.Tensor", frexp, (input,), {})
        if made is not _function.RUN_UNDISPATCHED:
            if out is not None:
                return return_types.frexp(*(write_out(value, target, "frexp") for value, target in zip(made, out)))
            return made
    xp = array_module(input._data)
    exponent = xp.frexp(input._data)[1]
    # the mantissa as input·2^-exponent, so its gradient is grad·2^-exponent (torch's FrexpBackward0)
    scale = xp.ldexp(xp.ones_like(input._data), -exponent)
    mantissa = name_node(ScaledBy.apply(input, factor=scale), "FrexpBackward0", label="frexp",
                         rule="∂mantissa/∂a = 2^-exponent")
    result = return_types.frexp(mantissa, Tensor._make(exponent.astype(np.int32)))
    if out is not None:
        return return_types.frexp(*(write_out(value, target, "frexp") for value, target in zip(result, out)))
    return result


def ldexp(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    """torch.ldexp: input·2^other (torch computes it as that product)."""
    # (torch's gradient for an integer ``other`` is grad·pow(2, other) in integers: 0 wherever other < 0;
    # chainrule's is the true 2^other there)
    # an integer exponent takes a floating input's dtype, as torch's promotion gives (bfloat16 stays bfloat16)
    # torch's fused kernel for a real floating input has no bool exponent instance (others go through pow)
    _one_device("ldexp", input, other)
    if input._data.dtype.kind in "fV" and isinstance(other, Tensor) and other.dtype is _dtype.bool:
        raise NotImplementedError("\"ldexp_cpu_exp\" not implemented for 'Bool'")
    power_dtype = input.dtype if input._data.dtype.kind in "fV" else _dtype.get_default_dtype()
    if input._data.dtype.kind == "c":  # torch's pow for a complex input runs in the pair's result type
        power_dtype = _dtype.result_type(input, other)  # (a 0-d complex128 input keeps complex128)
    power = pow(2.0, _cast(other, power_dtype) if other._data.dtype.kind not in "fVc" else other)
    result = name_node(mul(input, power), "LdexpBackward0", label="ldexp", rule="∂/∂a = 2^b, ∂/∂b = a·2^b·log 2")
    if out is None:
        return result
    if isinstance(out, Tensor) and result.dtype._category > out.dtype._category:  # torch names ldexp, not the type
        raise RuntimeError(f"ldexp can't be cast to the desired output type {_dtype.scalar_name(out.dtype)}")
    return write_out(result, out, "ldexp")


def float_power(input, exponent, *, out=None) -> Tensor:
    """torch.float_power: pow computed in float64 (both operands cast to double first), or in
    complex128 when either is complex."""
    complex_given = builtins.any(v.is_complex() if isinstance(v, Tensor) else isinstance(v, builtins.complex)
                                 for v in (input, exponent))
    wide, scalar = (_dtype.complex128, builtins.complex) if complex_given else (_dtype.float64, builtins.float)
    _one_device("float_power", input, exponent)
    base = _cast(input, wide) if isinstance(input, Tensor) else scalar(input)
    power = _cast(exponent, wide) if isinstance(exponent, Tensor) else scalar(exponent)
    result = pow(base, power)
    if out is None:
        return result
    if isinstance(out, Tensor) and out.dtype != result.dtype:  # torch writes no cast of its double result
        raise RuntimeError(f"the output given to float_power has dtype {_dtype.scalar_name(out.dtype)} but the "
                           f"operation's result requires dtype {_dtype.scalar_name(result.dtype)}")
    return write_out(result, out, "float_power")


def deg2rad(input: Tensor, *, out=None) -> Tensor:
    """torch.deg2rad: input·π/180 (recorded as that product, as torch)."""
    refuse_complex(input, "deg2rad is not supported for complex tensors.", RuntimeError)
    input = _float_input(input)
    result = name_node(ScaledBy.apply(input, factor=math.pi / 180), "Deg2RadBackward0", label="deg2rad",
                       rule="∂/∂a = π/180")
    _preserving_layout(result, input)
    return result if out is None else write_out(result, out, "deg2rad")


def rad2deg(input: Tensor, *, out=None) -> Tensor:
    """torch.rad2deg: input·180/π (recorded as that product, as torch)."""
    refuse_complex(input, "rad2deg is not supported for complex tensors.", RuntimeError)
    input = _float_input(input)
    result = name_node(ScaledBy.apply(input, factor=180 / math.pi), "Rad2DegBackward0", label="rad2deg",
                       rule="∂/∂a = 180/π")
    _preserving_layout(result, input)
    return result if out is None else write_out(result, out, "rad2deg")


# torch's logaddexp2 node keeps both operands
_LOGADDEXP2_SAVED = {"_saved_other": kept_value("other", tensor=True), "_saved_self": kept_value("self", tensor=True)}


def logaddexp2(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    """torch.logaddexp2: log2(2^a + 2^b), as logaddexp of a·ln 2 and b·ln 2 over ln 2."""
    _require_tensors("logaddexp2", input, other)
    _one_device("logaddexp2", input, other)
    if isinstance(input, Tensor) and isinstance(other, Tensor) and not _dtype.result_type(input, other).is_floating_point:
        raise NotImplementedError(f"\"logaddexp2_cpu\" not implemented for "
                                  f"'{_dtype.scalar_name(_dtype.result_type(input, other))}'")
    a, b = _float_pair(input, other)
    ln2 = math.log(2.0)

    def compute(x, y):
        return logaddexp(x * ln2, y * ln2) / ln2

    # float16/bfloat16 in float32, rounded once, as torch's kernel
    combined = rounded_once(compute, a, b)
    result = name_node(compute(a, b) if combined is None else combined, "Logaddexp2Backward0", label="logaddexp2",
                       rule="∂/∂a = 2^a/(2^a + 2^b), ∂/∂b = 2^b/(2^a + 2^b)", saved=_LOGADDEXP2_SAVED,
                       kept={"self": a, "other": b})
    return result if out is None else write_out(result, out, "logaddexp2")


def sgn(input: Tensor, *, out=None) -> Tensor:
    """torch.sgn: sign for real tensors, z/|z| (0 at 0) for complex ones."""
    if input._data.dtype.kind == "c":
        from .elementwise import _sgn

        result = name_node(_sgn(input), "SgnBackward0", label="sgn", rule="∂/∂z of z/|z| (composed)")
        return result if out is None else write_out_same_dtype(result, out, "sgn")
    result = name_node(sign(input), "SgnBackward0", label="sgn", rule="zero gradient (piecewise constant)")
    return result if out is None else write_out_same_dtype(result, out, "sgn")


def positive(input: Tensor) -> Tensor:
    """torch.positive: the input itself (refused for bool tensors, as torch)."""
    if input._data.dtype == np.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


# these write ``out=`` themselves (write_out), after composing their result
for _composed in (frexp, ldexp, float_power, deg2rad, rad2deg, logaddexp2, sgn):
    _composed.honours_out = True
del _composed
