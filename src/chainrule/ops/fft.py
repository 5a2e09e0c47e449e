"""Discrete Fourier transforms (torch.fft) and the short-time transforms (stft, istft).

Three primitives carry every transform and its gradient, as in torch:
- ``C2C``: complex to complex over some dims (fft, ifft, fftn, ...). Its adjoint is the other
  direction with the dual normalisation (an unscaled forward DFT's adjoint is the unscaled
  inverse), so backward is one more C2C.
- ``R2C``: real to the one-sided complex spectrum (rfft, rfftn). Its adjoint pads the gradient back
  to the full spectrum with zeros, runs the inverse C2C and keeps the real part.
- ``C2R``: one-sided spectrum to real (irfft, irfftn). Its adjoint is an R2C of the gradient with
  the bins that stand for two (conjugate) bins of the full spectrum doubled — torch's rule.
The hermitian transforms (hfft, ihfft) are these with a conjugation. ``n``/``s`` crop or zero-pad
the input first, with differentiable ``narrow``/``pad``.

NumPy's ``numpy.fft`` computes in double precision: results are cast back, so complex64 in gives
complex64 out. The math goes through the array-module seam (``xp.fft``), so it runs on CuPy.
"""

from __future__ import annotations

import builtins

import numpy as np

from .. import _dtype
from .._backend import array_module, contiguous_strides, refuse_pinning, strided_view
from .._opmath import cpu_autocast_policy
from ..autograd import function as _function
from ..autograd.function import Function, name_node
from ..tensor import Tensor, _check_tensor, _wrap_dim, out_keyword_front, refuse_out_under_autograd, write_out
from ._arg_parser import check_as, check_int, check_str, int_list
from .complex import ConjPhysical
from .creation import factory_honours_out
from .elementwise import Conj, _cast, _conj_view
from .shape import narrow, pad, roll

__all__ = ["stft", "istft"]
__tensor_methods__ = {"istft": "_istft_method"}

_NORMS = ("backward", "forward", "ortho")
_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _norm(norm, op: str) -> str:
    if norm is None:
        return "backward"
    check_str(norm, f"fft_{op}", "norm")
    if norm not in _NORMS:
        raise RuntimeError(f"Invalid normalization mode: \"{norm}\"")
    return norm


def _complex_dtype(array) -> np.dtype:
    return np.dtype(np.complex64) if array.dtype in (np.float32, np.complex64) else np.dtype(np.complex128)


def _real_dtype(array) -> np.dtype:
    return np.dtype(np.float32) if array.dtype in (np.float32, np.complex64) else np.dtype(np.float64)


# ---------------------------------------------------------------- torch's output layout
# torch's CPU kernels run a transform on the input permuted so that the other (batch) dims come
# first, ordered by the input's strides, then the transformed dims; the output is contiguous in that
# order and permuted back. So rfft2(x, dim=(1, 2)) of a contiguous (B, H, W, C) is not contiguous:
# its strides put C right after B, outside H and W. The results are laid out the same way here.
def _by_stride(strides, dims) -> list:
    """The dims outermost first by stride (torch sorts the transformed dims so, for speed)."""
    return sorted(dims, key=lambda d: -strides[d])


def _exec_order(strides, dims) -> list:
    """The memory order, outermost first, of a transform over ``dims`` of an input with ``strides``."""
    # the batch dims as torch's std::partition leaves them (it swaps from both ends, so dims of
    # equal stride, size-1 ones, can come out of their order), then sorted by stride
    order, first, last = list(range(len(strides))), 0, len(strides)
    while True:
        while first != last and order[first] not in dims:
            first += 1
        if first == last:
            break
        last -= 1
        while first != last and order[last] in dims:
            last -= 1
        if first == last:
            break
        order[first], order[last] = order[last], order[first]
        first += 1
    return _by_stride(strides, order[:first]) + list(dims)


def _laid_out(xp, result, dtype, order):
    """``result`` as ``dtype``, contiguous in the memory order ``order`` (size-1 dims too, whose
    strides torch also reports)."""
    if result.size == 0:
        return xp.ascontiguousarray(result, dtype=dtype)
    if list(order) == list(range(result.ndim)):
        out = xp.ascontiguousarray(result, dtype=dtype)
        # (NumPy counts an array contiguous whatever its size-1 dims' strides, and hands such a result back
        # as it is: those get the contiguous ones, a view of the same memory)
        strides = tuple(out.itemsize * step for step in contiguous_strides(out.shape))
        return out if out.strides == strides else strided_view(out, out.shape, strides)
    itemsize = np.dtype(dtype).itemsize
    strides = tuple(itemsize * step for step in contiguous_strides(result.shape, order))
    out = strided_view(xp.empty(result.size, dtype=dtype), result.shape, strides)
    out[...] = result
    return out


class C2C(Function):
    _array_forward = True
    node_name = "FftC2CBackward0"
    label = "fft_c2c"
    rule = "the adjoint transform: the other direction with the dual normalisation"
    formula = "fft({0})"

    @staticmethod
    def forward(ctx, z, dims, norm, inverse):
        xp = array_module(z)
        ctx.dims, ctx.norm, ctx.inverse = dims, norm, inverse
        transform = xp.fft.ifftn if inverse else xp.fft.fftn
        order = _exec_order(z.strides, _by_stride(z.strides, dims))
        return _laid_out(xp, transform(z, axes=dims, norm=norm), z.dtype, order)

    @staticmethod
    def backward(ctx, grad):
        return C2C.apply(grad, dims=ctx.dims, norm=_DUAL[ctx.norm], inverse=not ctx.inverse)


class R2C(Function):
    _array_forward = True
    node_name = "FftR2CBackward0"
    label = "fft_r2c"
    rule = "zero-pad to the full spectrum, the inverse transform (dual normalisation), real part"
    formula = "rfft({0})"

    @staticmethod
    def forward(ctx, x, dims, norm, onesided=True):
        # onesided=False: the full spectrum of a real input (torch's fft of one), its gradient the same rule
        xp = array_module(x)
        ctx.dims, ctx.norm, ctx.last = dims, norm, x.shape[dims[-1]]
        transform = xp.fft.rfftn if onesided else xp.fft.fftn
        order = _exec_order(x.strides, _by_stride(x.strides, dims[:-1]) + [dims[-1]])  # the one-sided dim stays last
        return _laid_out(xp, transform(x, axes=dims, norm=norm), _complex_dtype(x), order)

    @staticmethod
    def backward(ctx, grad):
        last = ctx.dims[-1]
        missing = ctx.last - grad._data.shape[last]
        if missing:  # the bins the one-sided spectrum left out get no gradient of their own
            grad = pad(grad, [0, 0] * (grad._data.ndim - 1 - last) + [0, missing])
        return C2C.apply(grad, dims=ctx.dims, norm=_DUAL[ctx.norm], inverse=True).real


class C2R(Function):
    _array_forward = True
    node_name = "FftC2RBackward0"
    label = "fft_c2r"
    rule = "an rfft of the gradient (dual normalisation) with the bins that stand for two doubled"
    formula = "irfft({0})"

    @staticmethod
    def forward(ctx, z, dims, norm, last_size):
        xp = array_module(z)
        ctx.dims, ctx.norm = dims, norm
        sizes = [z.shape[d] for d in dims[:-1]] + [last_size]
        strides = z.strides
        if len(dims) > 1:  # torch runs a C2C over the other dims first, then a C2R over the last one
            strides = contiguous_strides(z.shape, _exec_order(strides, _by_stride(strides, dims[:-1])))
        order = _exec_order(strides, dims[-1:])
        return _laid_out(xp, xp.fft.irfftn(z, s=sizes, axes=dims, norm=norm), _real_dtype(z), order)

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        spectrum = R2C.apply(grad, dims=ctx.dims, norm=_DUAL[ctx.norm])
        last = ctx.dims[-1]
        bins = spectrum._data.shape[last]
        doubled = grad._data.shape[last] - bins  # bins 1..doubled each stand for a conjugate pair
        if doubled <= 0:
            return spectrum
        scale = xp.ones(bins, dtype=_real_dtype(grad._data))  # made on the gradient's device
        scale[1:1 + doubled] = 2
        shape = [1] * grad._data.ndim
        shape[last] = bins
        weights = Tensor._make(scale.reshape(shape))
        if _function.tracing_ops:  # (from the shapes alone: a constant of a vmap's record, which replays the product)
            _function.traced_constant(weights)
        return spectrum * weights


# ---------------------------------------------------------------- argument handling
def _input(x, op: str, s=None, dim=None, default_dim=None) -> Tensor:
    _check_tensor(x, op, "input", 1)
    if x.dtype in (_dtype.float16, _dtype.bfloat16):
        if op.endswith(("2", "n")):  # torch wraps an n-d transform's dims before it refuses the dtype
            _dims_and_sizes(x, s, dim, op, default_dim)
        if x.device.type == "cpu" or x.dtype == _dtype.bfloat16:
            raise RuntimeError(f"Unsupported dtype {_dtype.scalar_name(x.dtype)}")  # torch's CPU FFT (and cuFFT's bf16)
        raise RuntimeError(f"{op}: half-precision FFTs need CUDA in torch; chainrule computes them in float32 "
                           "only when asked: call .float() first")
    if x._data.dtype.kind not in "fc":
        return _cast(x, _dtype.get_default_dtype())
    return x


def _as_complex(x: Tensor) -> Tensor:
    if x._data.dtype.kind == "c":
        return x
    return _cast(x, _dtype.from_numpy_dtype(x._data.dtype).to_complex())


def _real_only(x: Tensor, op: str) -> Tensor:
    if x._data.dtype.kind == "c":
        name = "ComplexFloat" if x._data.dtype == np.complex64 else "ComplexDouble"
        if op in ("rfft2", "rfftn"):  # both run as torch's rfftn, which words it so
            raise RuntimeError(f"rfftn expects a real-valued input tensor, but got {name}")
        if op in ("ihfft2", "ihfftn"):  # torch's n-d ihfft refuses it in its R2C step, after dims and norm
            raise RuntimeError(f"Only supports floating-point dtypes, but found: {name}")
        raise RuntimeError(f"{op} expects a real input tensor, but got {name}")
    return x


def _resize(x: Tensor, dims: tuple, sizes: tuple, op: str) -> Tensor:
    """Crop or zero-pad ``x`` along ``dims`` to ``sizes`` (torch's ``n``/``s``), differentiably: as
    torch's resize_fft_input, a slice per cropped dim, then one pad for all the padded ones (the
    graph's nodes in that order)."""
    padding = [0, 0] * x._data.ndim
    for d, n in zip(dims, sizes):
        if n < 1:
            raise RuntimeError(f"Invalid number of data points ({n}) specified")
        have = x._data.shape[d]
        if n < have:
            x = narrow(x, d, 0, n)
        elif n > have:
            padding[2 * (x._data.ndim - 1 - d) + 1] = n - have
    return pad(x, padding) if any(padding) else x


class _Length(tuple):
    """A 1-D transform's ``n`` as its ``s``. Unlike an n-d ``s``, where -1 keeps a dim's size, torch
    takes no -1 for ``n``: it is an invalid number of data points, as 0 is."""


def _length(n, op: str):
    """A 1-D transform's ``n`` as its ``s``: an int (torch's parser refuses a float, a bool, a str, and
    one beyond int64 with its ValueError), or None."""
    return None if n is None else _Length((check_int(n, f"fft_{op}", "n"),))


def _one_dim(dim, op: str) -> tuple:
    """A 1-d transform's ``dim``, an int64_t to torch's parser ("argument 'dim' must be int, not
    list"; an int beyond int64 its ValueError), as the n-d code's tuple of dims."""
    return (check_int(dim, f"fft_{op}", "dim"),)


def _dims_and_sizes(x: Tensor, s, dim, op: str, default_dim=None) -> tuple:
    """torch's (s, dim) rules: dim None means every dim (or the last len(s)); s None keeps sizes."""
    ndim = x._data.ndim
    if dim is None and default_dim is not None:
        dim = default_dim
    if dim is not None:  # torch's parser: ints (a bool, a float, a str refused), each within int64
        dim = int_list(dim, f"fft_{op}", "dim")
    if ndim == 0 and dim:  # torch names the first dim it looked for
        raise IndexError(f"Dimension specified as {dim[0]} but tensor has no dimensions")
    keeps_on_minus_one = not isinstance(s, _Length)
    if s is not None:
        s = int_list(s, f"fft_{op}", "s")
        if dim is None:
            dim = tuple(range(ndim - len(s), ndim))
        elif len(s) != len(dim):
            raise RuntimeError(f"{op}: When given, dim and shape arguments must have the same length")
    elif dim is None:
        dim = tuple(range(ndim))
    dims = tuple(_wrap_dim(d, ndim, op) for d in dim)
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"{op}: dims must be unique")
    if not dims:
        raise RuntimeError(f"{op}: must transform at least one axis")
    sizes = s if s is not None else tuple(x._data.shape[d] for d in dims)
    if s is not None and keeps_on_minus_one:
        sizes = tuple(x._data.shape[d] if n == -1 else n for d, n in zip(dims, sizes))
    return dims, sizes


def _c2c(input, s, dim, norm, inverse: bool, op: str, default_dim=None) -> Tensor:
    x = _input(input, op, s, dim, default_dim)
    dims, sizes = _dims_and_sizes(x, s, dim, op, default_dim)
    if op in ("fft", "ifft") and x._data.dtype.kind == "f":
        # torch's 1-D fft/ifft of a real input is a two-sided R2C (conjugated for the inverse, whose
        # scaling is the forward transform's dual), not a C2C of the input made complex
        norm = _norm(norm, op)
        spectrum = R2C.apply(_resize(x, dims, sizes, op), dims=dims, norm=_DUAL[norm] if inverse else norm,
                             onesided=False)
        return _conj_view(spectrum) if inverse else spectrum  # (torch's is a conj view: is_conj())
    x = _resize(_as_complex(x), dims, sizes, op)
    return C2C.apply(x, dims=dims, norm=_norm(norm, op), inverse=inverse)


def _r2c(input, s, dim, norm, op: str, default_dim=None) -> Tensor:
    x = _real_only(_input(input, op, s, dim, default_dim), op)
    dims, sizes = _dims_and_sizes(x, s, dim, op, default_dim)
    return R2C.apply(_resize(x, dims, sizes, op), dims=dims, norm=_norm(norm, op))


def _c2r(input, s, dim, norm, op: str, default_dim=None, hermitian: bool = False) -> Tensor:
    """irfft's and (``hermitian``) hfft's steps. hfft's are torch's: the input cropped or padded, a
    forward C2C over all but the last dim, conjugated (ConjBackward0), then a C2R over the last dim
    with the same normalisation: its graph's nodes, and its layout where the input is expanded."""
    x = _as_complex(_input(input, op, s, dim, default_dim))
    dims, sizes = _dims_and_sizes(x, s, dim, op, default_dim)
    if s is None or (isinstance(s, (tuple, list)) and not isinstance(s, _Length) and s[-1] == -1):
        last = 2 * (x._data.shape[dims[-1]] - 1)  # the default output length from the one-sided input
        sizes = sizes[:-1] + (last,)
    last = sizes[-1]
    if last < 1:
        raise RuntimeError(f"Invalid number of data points ({last}) specified")
    x = _resize(x, dims, sizes[:-1] + (last // 2 + 1,), op)
    norm = _norm(norm, op)
    if not hermitian:
        return C2R.apply(x, dims=dims, norm=norm, last_size=last)
    if len(dims) > 1:
        x = C2C.apply(x, dims=dims[:-1], norm=norm, inverse=False)
    # (torch's at::conj: a leaf's gradient over one dim is ConjBackward0's conj view)
    return C2R.apply(Conj.apply(x), dims=dims[-1:], norm=_DUAL[norm], last_size=last)


# ---------------------------------------------------------------- torch.fft's functions
def _fft_out(kernel: str):
    """torch's ``out=`` of a transform (as ``write_out``), after torch's check of the out's kind: a
    complex one for a complex result, a floating one for a real result, worded by ``kernel``, the
    aten function torch routes the transform through (fft2 and ifft2 through fftn, ...)."""
    def give_out(transform):
        def with_out(*args, out, **kwargs):
            result = transform(*args, **kwargs)
            if isinstance(out, Tensor):
                if result.is_complex() and not out.is_complex():
                    raise RuntimeError(f"{kernel} expects a complex output tensor, but got {_dtype.scalar_name(out.dtype)}")
                if not result.is_complex() and not out.dtype.is_floating_point:
                    raise RuntimeError(f"{kernel} expects a floating point output tensor, but got "
                                       f"{_dtype.scalar_name(out.dtype)}")
                input = args[0] if args else kwargs.get("input")
                ends_in_conj = kernel in ("ifft", "ihfft") and isinstance(input, Tensor) and not input.is_complex()
                if ends_in_conj and out.dtype != result.dtype:
                    # torch's 1-D inverse of real input ends in an elementwise conj, whose out takes no cast
                    raise RuntimeError(f"Found dtype {_dtype.scalar_name(out.dtype)} but expected "
                                       f"{_dtype.scalar_name(result.dtype)}")
                if kernel in ("fft", "ifft") and isinstance(input, Tensor) and not input.is_complex():
                    # torch's 1-D transform of a real input runs _fft_r2c (an inverse conjugating it
                    # last), which its autograd layer names
                    refuse_out_under_autograd("_fft_r2c" if kernel == "fft" else "aten::conj_physical", out,
                                              input, result)
                if not ends_in_conj and tuple(out.shape) != tuple(result.shape) and not result.is_contiguous():
                    # torch's FFT kernels resize out contiguously and copy the result in (the elementwise
                    # conj that ends a real input's 1-D inverse lays out its out as the result)
                    result = result.contiguous()
            return write_out(result, out, transform.__name__)

        return out_keyword_front(transform, with_out)

    return give_out


@cpu_autocast_policy("float32")
@_fft_out("fft")
def fft(input, n=None, dim=-1, norm=None) -> Tensor:
    """torch.fft.fft: the 1-D discrete Fourier transform along ``dim`` (``n`` crops or zero-pads)."""
    return _c2c(input, _length(n, "fft"), _one_dim(dim, "fft"), norm, False, "fft")


@cpu_autocast_policy("float32")
@_fft_out("ifft")
def ifft(input, n=None, dim=-1, norm=None) -> Tensor:
    """torch.fft.ifft: the 1-D inverse transform (scaled by 1/n with the default norm)."""
    return _c2c(input, _length(n, "ifft"), _one_dim(dim, "ifft"), norm, True, "ifft")


@cpu_autocast_policy("float32")
@_fft_out("fftn")
def fft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _c2c(input, s, dim, norm, False, "fft2")


@cpu_autocast_policy("float32")
@_fft_out("fftn")
def ifft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _c2c(input, s, dim, norm, True, "ifft2")


@cpu_autocast_policy("float32")
@_fft_out("fftn")
def fftn(input, s=None, dim=None, norm=None) -> Tensor:
    """torch.fft.fftn: over ``dim`` (every dim, or the last len(s) dims when only ``s`` is given)."""
    return _c2c(input, s, dim, norm, False, "fftn")


@cpu_autocast_policy("float32")
@_fft_out("fftn")
def ifftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _c2c(input, s, dim, norm, True, "ifftn")


@cpu_autocast_policy("float32")
@_fft_out("rfft")
def rfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """torch.fft.rfft: the one-sided transform of a real signal (n // 2 + 1 bins)."""
    return _r2c(input, _length(n, "rfft"), _one_dim(dim, "rfft"), norm, "rfft")


@cpu_autocast_policy("float32")
@_fft_out("irfft")
def irfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """torch.fft.irfft: the real signal (length ``n``, default 2·(bins - 1)) of a one-sided spectrum."""
    return _c2r(input, _length(n, "irfft"), _one_dim(dim, "irfft"), norm, "irfft")


@cpu_autocast_policy("float32")
@_fft_out("rfftn")
def rfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _r2c(input, s, dim, norm, "rfft2")


@cpu_autocast_policy("float32")
@_fft_out("irfftn")
def irfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _c2r(input, s, dim, norm, "irfft2")


@cpu_autocast_policy("float32")
@_fft_out("rfftn")
def rfftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _r2c(input, s, dim, norm, "rfftn")


@cpu_autocast_policy("float32")
@_fft_out("irfftn")
def irfftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _c2r(input, s, dim, norm, "irfftn")


@cpu_autocast_policy("float32")
@_fft_out("hfft")
def hfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """torch.fft.hfft: the real transform of a Hermitian-symmetric signal given by its first half:
    irfft of the conjugate with the dual normalisation."""
    return _c2r(input, _length(n, "hfft"), _one_dim(dim, "hfft"), norm, "hfft", hermitian=True)


@cpu_autocast_policy("float32")
@_fft_out("ihfft")
def ihfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """torch.fft.ihfft: the inverse of hfft, the conjugate of rfft with the dual normalisation."""
    x = _real_only(_input(input, "ihfft"), "ihfft")  # refused before the norm, as torch does
    return _conj_view(_r2c(x, _length(n, "ihfft"), _one_dim(dim, "ihfft"), _DUAL[_norm(norm, "ihfft")], "ihfft"))


@_fft_out("hfftn")
def hfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _c2r(input, s, dim, norm, "hfft2", (-2, -1), hermitian=True)


@_fft_out("ihfftn")
def ihfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return _ihfftn(input, s, dim, norm, "ihfft2")


@_fft_out("hfftn")
def hfftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _c2r(input, s, dim, norm, "hfftn", hermitian=True)


@_fft_out("ihfftn")
def ihfftn(input, s=None, dim=None, norm=None) -> Tensor:
    return _ihfftn(input, s, dim, norm, "ihfftn")


def _ihfftn(input, s, dim, norm, op: str) -> Tensor:
    """torch's steps: a one-sided R2C over the last dim (the inverse's scaling for it), conjugated,
    then an inverse C2C over the other dims (a conjugate view when there are none)."""
    x = _input(input, op, s, dim)
    dims, sizes = _dims_and_sizes(x, s, dim, op)
    norm = _norm(norm, op)
    x = _real_only(x, op)
    half = R2C.apply(_resize(x, dims, sizes, op), dims=dims[-1:], norm=_DUAL[norm])
    if len(dims) == 1:
        return _conj_view(half)
    # (torch's kernel conjugates as aten::_conj_physical, which a dispatch mode sees; a torch function
    # mode or subclass sees ihfftn alone, so not the public conj_physical)
    return C2C.apply(ConjPhysical.apply(half), dims=dims[:-1], norm=norm, inverse=True)


def _frequencies(op: str, values: np.ndarray, dtype, device, requires_grad: bool) -> Tensor:
    from . import creation

    dt = _dtype.get_default_dtype() if dtype is None else _dtype.to_dtype(dtype)
    if not (dt.is_floating_point or dt.is_complex):
        raise RuntimeError(f"{op} requires a floating point or complex dtype")
    if dt.is_complex:  # torch builds the frequencies with arange, which has no complex kernel
        creation.refuse_dtype(dt, "arange_cpu", complex_too=True)
    array = creation._xp(device).asarray(values.astype(dt.np))
    return creation._finish(array, requires_grad)


@factory_honours_out("fft_fftfreq", keeps_out_shape=True, warns_on_count=True)
def fftfreq(n: int, d: float = 1.0, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
            pin_memory: bool | None = None) -> Tensor:
    """torch.fft.fftfreq: the sample frequencies of an n-point fft, [0, 1, ..., -1] / (d·n)."""
    refuse_pinning(pin_memory)
    return _frequencies("fftfreq", np.fft.fftfreq(n, d), dtype, device, requires_grad)


@factory_honours_out("fft_rfftfreq", keeps_out_shape=True, warns_on_count=True)
def rfftfreq(n: int, d: float = 1.0, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
             pin_memory: bool | None = None) -> Tensor:
    """torch.fft.rfftfreq: the n // 2 + 1 non-negative sample frequencies of an n-point rfft."""
    refuse_pinning(pin_memory)
    return _frequencies("rfftfreq", np.fft.rfftfreq(n, d), dtype, device, requires_grad)


def _shift(input: Tensor, dim, sign: int) -> Tensor:
    _check_tensor(input, "fftshift", "input", 1)
    ndim = input._data.ndim
    dims = tuple(range(ndim)) if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    dims = tuple(_wrap_dim(d, ndim, "fftshift") for d in dims)
    if not dims:
        return input
    return roll(input, tuple(sign * (input._data.shape[d] // 2) for d in dims), dims)


def fftshift(input: Tensor, dim=None) -> Tensor:
    """torch.fft.fftshift: the zero frequency moved to the centre (a roll by n // 2)."""
    return _shift(input, dim, 1)


def ifftshift(input: Tensor, dim=None) -> Tensor:
    """torch.fft.ifftshift: undoes fftshift (a roll by -(n // 2))."""
    return _shift(input, dim, -1)


# ---------------------------------------------------------------- short-time transforms
_NO_WINDOW_STFT = ("A window was not provided. A rectangular window will be applied,which is known to cause spectral "
                   "leakage. Other windows such as torch.hann_window or torch.hamming_window are recommended to reduce "
                   "spectral leakage.To suppress this warning and use a rectangular window, explicitly set "
                   "`window=torch.ones(n_fft, device=<device>)`. (Triggered internally at "
                   "/__w/pytorch/pytorch/aten/src/ATen/native/SpectralOps.cpp:835.)")
_NO_WINDOW_ISTFT = ("A window was not provided. A rectangular window will be applied.Please provide the same window "
                    "used by stft to make the inversion lossless.To suppress this warning and use a rectangular window, "
                    "explicitly set `window=torch.ones(n_fft, device=<device>)`. (Triggered internally at "
                    "/__w/pytorch/pytorch/aten/src/ATen/native/SpectralOps.cpp:1035.)")
_REAL_STFT_DEPRECATED = ("stft with return_complex=False is deprecated. In a future pytorch release, stft will return "
                         "complex tensors for all inputs, and return_complex=False will raise an error.\nNote: you can "
                         "still call torch.view_as_real on the complex output to recover the old return format. "
                         "(Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/SpectralOps.cpp:874.)")
_ISTFT_PADDED = ("The length of signal is shorter than the length parameter. Result is being padded with zeros in the "
                 "tail. Please check your center and hop_length settings. (Triggered internally at "
                 "/__w/pytorch/pytorch/aten/src/ATen/native/SpectralOps.cpp:1199.)")


def _spectral_call(op: str, shape, dtype, n_fft: int, hop_length: int, win_length: int, window, **flags) -> str:
    """The call as torch's stft/istft messages print it before the complaint (their REPR macro):
    tensor types as torch's C++ names them, flags as 0/1, unset optionals as None."""
    def flag(value):
        return "None" if value is None else str(int(value))
    window_text = "None" if window is None else f"{_dtype.type_string(window.dtype)}{{{list(window.shape)}}}"
    parts = [f"{_dtype.type_string(dtype)}{list(shape)}", f"n_fft={n_fft}", f"hop_length={hop_length}",
             f"win_length={win_length}", f"window={window_text}"] + [f"{k}={flag(v)}" for k, v in flags.items()]
    return f"{op}({', '.join(parts)}) "


def _stft_window(window, n_fft: int, win_length: int, like: Tensor) -> Tensor:
    """The window padded (centred) to n_fft; a rectangular one when None, as torch. The caller
    has checked win_length and the window's shape."""
    from . import creation

    if window is None:
        window = creation.ones(win_length, dtype=_dtype.from_numpy_dtype(_real_dtype(like._data)), device=like.device)
    left = (n_fft - win_length) // 2
    if left or n_fft - win_length - left:
        window = pad(window, [left, n_fft - win_length - left])
    return window


def _check_window_device(input: Tensor, window, op: str) -> None:
    """torch's first check of stft and istft: the window on the input's device (a CPU signal with a
    window made on the default CUDA device, say)."""
    if window is not None and window.device != input.device:
        raise RuntimeError(f"{op} input and window must be on the same device but got self on {input.device} and "
                           f"window on {window.device}")


def _is_complex(t) -> bool:
    return t is not None and t._data.dtype.kind == "c"


def _named_in_place(out: Tensor, name: str) -> Tensor:
    node = out.grad_fn
    return out if node is None else name_node(out, name, saved=type(node)._torch_saved)


@cpu_autocast_policy("float32")  # on torch's CPU autocast fp32 list
def stft(input: Tensor, n_fft: int, hop_length=None, win_length=None, window=None, center: bool = True,
         pad_mode: str = "reflect", normalized: bool = False, onesided=None, return_complex=None,
         align_to_window=None) -> Tensor:
    """torch.stft: the Fourier transforms of windowed frames, shape (B?, n_fft // 2 + 1, frames).

    Frames start every ``hop_length`` (n_fft // 4) samples; ``center`` pads the signal by n_fft // 2 on
    each side (``pad_mode``) so frame t is centred on sample t·hop. ``return_complex=True`` is required
    for real input, as in torch 2.x; ``False`` gives the (..., 2) real view (deprecated there too).
    ``align_to_window`` (only without ``center``): frames start where a window shorter than n_fft
    starts, not where its zero-padded n_fft span does, so frame t windows samples t·hop onwards.
    Checks, messages and warnings follow torch's, in its order.
    """
    from .. import _config
    from .elementwise import mul

    _check_tensor(input, "stft", "input", 1)
    if center:
        int(n_fft // 2)  # torch's Python pads by this first: a str or list n_fft is refused in Python's words
    # then hands its arguments on to _VF.stft positionally, without center and pad_mode
    check_as("stft", input, n_fft, hop_length, win_length, window, normalized, onesided, return_complex, align_to_window)
    _check_window_device(input, window, "stft")
    if center and align_to_window is not None:
        raise RuntimeError("stft align_to_window should only be set when center = false")
    if window is None:
        _config.warn_once(_NO_WINDOW_STFT)
    complex_fft = _is_complex(input) or _is_complex(window)
    if return_complex is None:
        if not complex_fft:
            raise RuntimeError("stft requires the return_complex parameter be given for real inputs, and will "
                               "further require that return_complex=True in a future PyTorch release.")
        return_complex = True
    if not return_complex:
        _config.warn_once(_REAL_STFT_DEPRECATED)
    hop_length = n_fft // 4 if hop_length is None else hop_length
    win_length = n_fft if win_length is None else win_length
    # torch's Python wrapper pads a centred signal before its C++ checks, which print the padded size
    shape = tuple(input.shape)
    if center and not shape:
        pad(input.reshape(1, 1, 1), [n_fft // 2, n_fft // 2], mode=pad_mode)  # a 0-d signal: pad's own error
    if center and shape:
        shape = shape[:-1] + (shape[-1] + 2 * (n_fft // 2),)
    call = _spectral_call("stft", shape, input.dtype, n_fft, hop_length, win_length, window,
                          normalized=normalized, onesided=onesided, return_complex=return_complex,
                          align_to_window=align_to_window)
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise RuntimeError(call + ": expected a tensor of floating point or complex values")
    if input._data.ndim not in (1, 2):
        raise RuntimeError(call + ": expected a 1D or 2D tensor")
    if not 0 < n_fft <= shape[-1]:
        raise RuntimeError(call + f": expected 0 < n_fft < {shape[-1]}, but got n_fft={n_fft}")
    if hop_length <= 0:
        raise RuntimeError(call + f": expected hop_length > 0, but got hop_length={hop_length}")
    if not 0 < win_length <= n_fft:
        raise RuntimeError(call + f": expected 0 < win_length <= n_fft, but got win_length={win_length}")
    if window is not None and (window._data.ndim != 1 or window._data.shape[0] != win_length):
        raise RuntimeError(call + f": expected a 1D window tensor of size equal to win_length={win_length}, but "
                           f"got window with size {list(window.shape)}")
    onesided = not complex_fft if onesided is None else onesided
    if onesided and complex_fft:
        raise RuntimeError("Cannot have onesided output if window or input is complex")
    if input.dtype in (_dtype.float16, _dtype.bfloat16) and input.device.type == "cpu":
        # torch's checks pass a half signal on to its CPU FFT, which refuses it
        raise RuntimeError(f"MKL FFT doesn't support tensors of type: {_dtype.scalar_name(input.dtype)}")
    x = _input(input, "stft")
    batched = x._data.ndim == 2
    if not batched:
        x = x.unsqueeze(0)
    if center:
        half = n_fft // 2
        x = pad(x.unsqueeze(0), [half, half], mode=pad_mode).squeeze(0)
    if align_to_window and 0 < win_length < n_fft:
        # the window sits at (n_fft - win_length) // 2 inside each n_fft frame: zeros around the
        # signal move every frame's window onto samples t·hop ... t·hop + win_length
        left = (n_fft - win_length) // 2
        x = pad(x, [left, n_fft - win_length - left])
    frames = mul(x.unfold(-1, n_fft, hop_length), _stft_window(window, n_fft, win_length, x))
    norm = "ortho" if normalized else "backward"
    spectrum = rfft(frames, dim=-1, norm=norm) if onesided else fft(frames, dim=-1, norm=norm)
    # torch transposes and squeezes its result in place (transpose_, squeeze_): the same nodes under
    # the in-place overloads' names
    spectrum = _named_in_place(spectrum.transpose(1, 2), "TransposeBackward1")
    if not batched:
        spectrum = _named_in_place(spectrum.squeeze(0), "SqueezeBackward4")
    if return_complex is False:
        from .complex import _view_as_real as view_as_real

        return view_as_real(spectrum)
    return spectrum


def istft(input: Tensor, n_fft: int, hop_length=None, win_length=None, window=None, center: bool = True,
          normalized: bool = False, onesided=None, length=None, return_complex: bool = False) -> Tensor:
    """torch.istft: the signal whose stft is ``input``, by inverse transforms of the frames,
    windowed overlap-add and division by the summed squared window (which must not vanish).
    Checks, messages and warnings follow torch's, in its order."""
    from .. import _config
    from . import creation
    from .elementwise import mul
    from .index import index_add

    _check_tensor(input, "istft", "input", 1)
    _check_window_device(input, window, "istft")
    if window is None:
        _config.warn_once(_NO_WINDOW_ISTFT)
    if input._data.dtype.kind != "c":
        raise RuntimeError("istft requires a complex-valued input tensor matching the output from stft with "
                           "return_complex=True.")
    hop_length = n_fft // 4 if hop_length is None else hop_length
    win_length = n_fft if win_length is None else win_length
    call = _spectral_call("istft", input.shape, input.dtype, n_fft, hop_length, win_length, window, center=center,
                          normalized=normalized, onesided=onesided, length=length, return_complex=return_complex)
    # torch reads the sizes off view_as_real(input): one more dim, and (frequency, frames) from its end
    real_dims = input._data.ndim + 1
    if real_dims < 3:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-real_dims}, {real_dims - 1}], "
                         f"but got {-3 if real_dims == 2 else -2})")
    if input._data.size == 0:
        raise RuntimeError(call + ": input tensor cannot be empty.")
    if real_dims not in (3, 4):
        raise RuntimeError(call + f": expected a tensor with 3 or 4 dimensions, but got {real_dims}")
    batched = input._data.ndim == 3
    spectrum = input if batched else input.unsqueeze(0)
    n_freq, n_frames = spectrum._data.shape[-2:]
    onesided = n_freq != n_fft if onesided is None else onesided
    if onesided and n_freq != n_fft // 2 + 1:
        raise RuntimeError(call + ": expected the frequency dimension (3rd to the last) of the input tensor to match "
                           f"n_fft / 2 + 1 when onesided=True, but got {n_freq}")
    if not onesided and n_freq != n_fft:
        raise RuntimeError(call + ": expected the frequency dimension (3rd to the last) of the input tensor to match "
                           f"n_fft when onesided=False, but got {n_freq}")
    if not 0 < hop_length <= win_length:
        raise RuntimeError(call + ": expected 0 < hop_length <= win_length")
    if not 0 < win_length <= n_fft:
        raise RuntimeError(call + ": expected 0 < win_length <= n_fft")
    if window is not None and (window._data.ndim != 1 or window._data.shape[0] != win_length):
        raise RuntimeError(call + ": Invalid window shape. window has to be 1D and length of `win_length`")
    if return_complex and onesided:
        raise RuntimeError("Cannot have onesided output if window or input is complex")
    if not return_complex and _is_complex(window):
        raise RuntimeError("Complex windows are incompatible with return_complex=False")
    norm = "ortho" if normalized else "backward"
    columns = spectrum.transpose(-1, -2)
    if return_complex:
        frames = ifft(columns, n=n_fft, dim=-1, norm=norm)
    else:
        # a real output inverts the first n_fft / 2 + 1 bins as a Hermitian half-spectrum, as torch
        # does (the real part of a full inverse differs when the spectrum is not Hermitian)
        half = columns if onesided else columns.narrow(-1, 0, n_fft // 2 + 1)
        frames = irfft(half, n=n_fft, dim=-1, norm=norm)
    window = _stft_window(window, n_fft, win_length, frames)
    frames = mul(frames, window)
    xp = array_module(frames)
    total = n_fft + hop_length * (n_frames - 1)
    positions = xp.arange(n_frames)[:, None] * hop_length + xp.arange(n_fft)[None, :]
    index = Tensor._make(positions.reshape(-1))
    batch = frames._data.shape[0]
    signal = index_add(creation.zeros(batch, total, dtype=frames.dtype, device=frames.device), -1, index,
                       frames.reshape(batch, -1))
    squared = window * window  # the envelope depends on the window too (its gradient, as torch's)
    envelope = index_add(creation.zeros(total, dtype=squared.dtype, device=squared.device), 0, index,
                         squared.expand(n_frames, n_fft).reshape(-1))
    start = n_fft // 2 if center else 0
    end = total - (n_fft // 2 if center else 0) if length is None else start + length
    end_in = builtins.min(end, total)
    signal = signal[:, start:end_in]
    envelope = envelope[start:end_in]
    if envelope._data.size == 0:  # torch takes the envelope's min() unguarded
        raise RuntimeError("min(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
                           "reduction dim with the 'dim' argument.")
    if float(xp.abs(envelope._data).min()) < 1e-11:
        # torch prints the 0-d bool tensor of its test after the call
        raise RuntimeError(call + "window overlap add min: 1\n[ CPUBoolType{} ]")
    signal = signal / envelope
    if end > total:
        _config.warn_once(_ISTFT_PADDED)
        signal = pad(signal, [0, end - total])
    return signal if batched else signal.squeeze(0)


def _istft_method(self, n_fft: int, hop_length=None, win_length=None, window=None, center: bool = True,
                  normalized: bool = False, onesided=None, length=None, return_complex: bool = False) -> Tensor:
    """Tensor.istft: torch's Python method hands its arguments on to torch.istft positionally, so its
    parser words their refusals with positions."""
    check_as("istft", self, n_fft, hop_length, win_length, window, center, normalized, onesided, length,
             return_complex=return_complex)
    return istft(self, n_fft, hop_length, win_length, window, center, normalized, onesided, length, return_complex)


_istft_method.__name__, _istft_method.__qualname__ = "istft", "Tensor.istft"  # named as torch's in Python's refusals


FFT_FUNCTIONS = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn",
                 "irfftn", "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn", "fftfreq", "rfftfreq",
                 "fftshift", "ifftshift"]
