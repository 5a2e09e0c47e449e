"""Low-precision "opmath": how ops run on bfloat16 arrays, and CPU autocast's casts.

torch's CPU kernels compute a bfloat16 op in float32 and round the result once; reductions,
matmul and convolution accumulate in float32. ml_dtypes' ufuncs already do the former for each
elementwise ufunc, but NumPy reducing or multiplying bfloat16 arrays accumulates in bfloat16 (the
sum of a thousand thirds comes out 128, not 333). So the ops that accumulate, listed here by
label, take their bfloat16 inputs as float32 and round their floating outputs back to bfloat16.

This is one seam, not a change to every op: ``autograd.function._apply_array_op`` calls ``run``
instead of ``forward`` once the hook is installed (the first time a half-precision or float8 dtype
is loaded or a CPU autocast region opens), and then only for an op inside a CPU autocast region or
with such an input: ``run`` is ``forward`` for any other, so a float32 program pays one check before
the first install, and a few after it.
"""

from __future__ import annotations

import functools
import weakref

import numpy as np

from . import _dtype
from ._backend import autocast_hook

# ops that accumulate (sums, products of matrices, normalisation statistics), chain several NumPy
# steps whose intermediate bfloat16 rounding torch does not have, or order values. Not cumsum or its
# backward: ops.reduce._running_total keeps a half-precision total in float32 itself and must see the
# input's own dtype (widened here, a float16 input's gradient was summed as float32 and rounded once)
ACCUMULATE_IN_FLOAT32 = frozenset({
    "sum", "nansum", "mean", "prod", "var", "std", "norm", "cumprod",
    "logsumexp", "logcumsumexp", "softmax", "softmax_backward", "log_softmax", "log_softmax_backward",
    "matmul", "bmm", "dot", "einsum", "trace", "linear", "linear_backward",
    "conv", "conv_transpose", "conv_weight", "unfold", "fold",
    "batch_norm", "batch_norm_backward", "layer_norm", "layer_norm_backward", "group_norm", "group_norm_backward",
    "avg_pool", "avg_pool_backward", "adaptive_avg_pool",
    "cross_entropy", "cross_entropy_backward", "nll_loss", "nll_loss_backward", "binary_cross_entropy", "ctc_loss",
    "gelu", "gelu_backward", "silu", "silu_backward", "mish", "softplus", "logsigmoid", "elu", "celu",
    "hardswish", "hardsigmoid", "xlogy", "hypot", "atan2", "sigmoid", "erf", "rsqrt", "logaddexp",
    "recurrent_layer", "recurrent_layer_backward", "rnn", "lstm", "gru", "rnn_backward", "lstm_backward",
    "gru_backward", "polygamma", "mvlgamma", "igamma", "igammac", "zeta", "sinc",
    # ml_dtypes' bfloat16 sorts NaN in place rather than last, so ordering ops sort the (exact) float32 widening
    "sort", "topk", "median", "kthvalue", "mode", "max", "min", "amax", "amin", "cummax", "cummin",
    "cumulative extremum",
})

# labels of ops whose Function has a forward_widened (replaying an intermediate rounding of torch's)
_WIDENED = frozenset({"softmax", "log_softmax"})

# torch's CPU autocast lists (aten's autocast_mode.cpp, KERNEL_CPU lower_precision_fp and fp32), as
# chainrule's op labels; every other op runs in its inputs' dtype. Public functions that chainrule
# composes of several ops carry their list's policy themselves (``cpu_autocast_policy``).
CPU_LOWER_PRECISION_OPS = frozenset({"linear", "matmul", "bmm", "einsum", "conv", "conv_transpose", "prelu",
                                     "rnn", "lstm", "recurrent_layer"})
CPU_FLOAT32_OPS = frozenset({
    "prod", "trace", "cholesky", "cholesky_solve", "cholesky_inverse", "inv", "pinv", "qr", "eigh", "svd",
    "lstsq", "lu_factor", "lu", "det", "slogdet", "solve", "solve_triangular", "max_unpool",
    "cross_entropy", "nll_loss", "binary_cross_entropy", "ctc_loss",
})
# ops that share a listed label but that torch's lists leave out (torch.mv runs in its inputs' dtype)
_CPU_UNLISTED_CLASSES = frozenset({"Mv"})

_FLOAT32 = np.dtype(np.float32)
_FLOAT16 = np.dtype(np.float16)

# torch 2.13's CPU kernels for the float8 types are few: copies, views, casts, indexing, where, ==,
# abs, and the product of two float8 tensors (mul, mm). Every op below refuses a float8 input as
# torch does, naming its kernel; an op not listed runs on the float8 values (checked against torch
# in tests/test_float8_ops.py). Keyed by the op's Function class, as labels are shared (min, max).
_NO_FLOAT8_KERNEL = {
    "Add": "add_stub", "Sub": "add_stub", "Div": "div_cpu", "Neg": "neg_cpu",
    "Sum": "sum_cpu", "SumDim": "sum_cpu", "Nansum": "nansum_cpu", "Mean": "sum_cpu", "MeanDim": "sum_cpu", "Prod": "prod_out_cpu",
    "AmaxAll": "max_all", "AminAll": "min_all", "Amax": "max_values_cpu", "Amin": "min_values_cpu",
    "MaxDim": "max_cpu", "MinDim": "min_cpu", "Maximum": "maximum_cpu", "Minimum": "minimum_cpu",
    "Exp": "exp_vml_cpu", "Log": "log_vml_cpu", "Sqrt": "sqrt_vml_cpu", "Rsqrt": "rsqrt_cpu",
    "Reciprocal": "reciprocal_cpu", "Sin": "sin_vml_cpu", "Cos": "cos_vml_cpu", "Tanh": "tanh_vml_cpu",
    "PowScalar": "pow", "Square": "pow", "Sign": "sign_cpu",
    "Round": "round_vml_cpu", "Floor": "floor_vml_cpu", "Ceil": "ceil_vml_cpu", "Trunc": "trunc_vml_cpu",
    "Relu": "clamp_min_scalar_cpu", "Clamp": "clamp_scalar_cpu", "Sigmoid": "sigmoid_cpu_reduced_float",
    "Gelu": "GeluKernelImpl", "Silu": "silu_cpu", "LeakyRelu": "leaky_relu_cpu",
    "Softmax": "softmax_lastdim_kernel_impl", "LogSoftmax": "log_softmax_lastdim_kernel_impl",
    "Cumsum": "cumsum_out_cpu", "SortValues": "sorting_kernel_method_name", "TopkValues": "topk_cpu",
    "Norm": "norm_cpu", "Bmm": "bmm", "Dot": "dot", "Flip": "flip_cpu", "Tril": "tril",
    "MaskedFill": "masked_fill", "MaskedFillTensor": "masked_fill", "Gather": "gather_expanded_index", "Scatter": "scatter_gather_tensor_cpu",
}
# float8_e8m0fnu (an exponent only) has fewer still: no abs, no matrix product
_NO_E8M0_KERNEL = {"Abs": "abs_cpu", "Mm": "addmm_impl_cpu_"}
# ops whose float8 product torch rounds back to the inputs' float8 type (NumPy's gives float32)
_FLOAT8_RESULT = frozenset({"Mm"})


def _float8_op(cls, ctx, arrays: list, params: dict, found):
    """Run (or refuse) an op given a float8 array of NumPy dtype ``found``, as torch 2.13 does."""
    name = cls.__name__
    scalar_name = _dtype.FLOAT8_NP[found]
    kernel = _NO_FLOAT8_KERNEL.get(name)
    if kernel is None and scalar_name == "Float8_e8m0fnu":
        kernel = _NO_E8M0_KERNEL.get(name)
    if kernel is None and name == "Mul" and len(arrays) == 2 and (arrays[0].ndim == 0) != (arrays[1].ndim == 0):
        kernel = "mul_cpu_reduced_float"  # a tensor times a number (or a 0-d tensor): no float8 kernel
    if name == "Var" or name == "Std":
        raise RuntimeError(f"std_var_all: Unsupported dtype {scalar_name}")
    if kernel is not None:
        _dtype.refuse_float8(found, kernel)
    out = cls.forward(ctx, *arrays, **params)
    if name in _FLOAT8_RESULT and out.dtype != found:
        out = _dtype.cast_array(out, found)
    return out


# called with ``run`` when the hook is first needed (autograd.function registers its setter)
hook_setters: list = []
# grad mode's ``is_grad_enabled``, set by autograd.function (autograd imports this module, not the reverse)
is_grad_enabled = None
_installed = False


def install() -> None:
    """Route ops through ``run`` from now on (a half-precision or float8 dtype loaded, or a CPU
    autocast region): those in a region or with such an input (``autograd.function._low_precision``)."""
    global _installed
    if not _installed:
        _installed = True
        for set_hook in hook_setters:
            set_hook(run)


def _cpu_autocast_target(cls, lower):
    """The dtype (NumPy) torch's CPU autocast takes the op's floating inputs to, or None."""
    op = getattr(cls, "label", None)
    if op in CPU_LOWER_PRECISION_OPS:
        return None if cls.__name__ in _CPU_UNLISTED_CLASSES else lower
    if op in CPU_FLOAT32_OPS:
        return _FLOAT32
    return None


def _castable(array_dtype, target) -> bool:
    """torch's autocast eligibility: a floating input other than float64 (ml_dtypes' bfloat16 and
    float8 types are of kind 'V'), not already in ``target``."""
    return array_dtype.kind in "fV" and array_dtype != _FLOAT64 and array_dtype != target


_FLOAT64 = np.dtype(np.float64)


def cast_inputs_for_cpu_autocast(cls, inputs: tuple) -> tuple:
    """The op's input tensors as torch's CPU autocast hands them to its kernel: each one the op's
    list takes to another dtype goes through a recorded cast (torch's ToCopyBackward0), so its
    gradient comes back through the op in the lowered dtype (rounded to it, as torch's) and is
    then cast back to the input's own dtype. ``inputs`` unchanged outside a region or list."""
    lower = autocast_hook.cpu_dtype
    if lower is None:
        return inputs
    target = _cpu_autocast_target(cls, lower)
    if target is None:
        return inputs
    return tuple(cast_for_autocast(t, target) for t in inputs)


def cast_for_autocast(tensor, target):
    """``tensor`` as torch's autocast ``cached_cast`` gives it to a listed op: a CPU floating tensor
    other than float64 in the NumPy dtype ``target`` (a recorded cast), anything else unchanged.
    Inside a region a float32 leaf that requires grad is cast to the lower precision once and the
    copy reused until the cache is cleared (``amp.clear_autocast_cache``, or the outermost region's
    exit), as torch's cache of model weights: a weight changed in place inside a region keeps its
    earlier cast. Keyed by the target dtype too (torch's key is the weight alone)."""
    data = tensor._data
    if type(data) is not np.ndarray or not _castable(data.dtype, target):
        return tensor
    target_dtype = _dtype.from_numpy_dtype(target)
    if not (cache.enabled and target != _FLOAT32 and data.dtype == _FLOAT32 and tensor._requires_grad
            and tensor.is_leaf and not tensor._is_view() and is_grad_enabled()):
        return tensor.to(dtype=target_dtype)
    key = (id(tensor), target)
    found = cache.casts.get(key)
    if found is not None and found[0]() is tensor:
        return found[1]
    cast = tensor.to(dtype=target_dtype)
    cache.casts[key] = (weakref.ref(tensor), cast)
    return cast


class _CastCache:
    """torch's autocast cache of casted weights: on or off (``autocast(cache_enabled=)``) and its casts."""

    def __init__(self) -> None:
        self.enabled = True
        self.casts: dict = {}


cache = _CastCache()


def cpu_autocast_policy(policy: str):
    """Decorate a public function that torch's CPU autocast treats as one kernel while chainrule
    composes it of several ops: inside a CPU autocast region its floating tensor arguments (also
    inside lists and tuples) are cast as torch's list says — ``"lower"`` to the region's dtype,
    ``"float32"`` to float32, ``"unlisted"`` left alone — and the composition runs with autocast
    off, as torch's kernel runs below its autocast layer (so an inner matmul is not lowered again)."""
    if policy not in ("lower", "float32", "unlisted"):
        raise ValueError(f"cpu_autocast_policy: unknown policy {policy!r}")

    def decorate(function):
        @functools.wraps(function)
        def run_with_policy(*args, **kwargs):
            lower = autocast_hook.cpu_dtype
            if lower is None:
                return function(*args, **kwargs)
            if policy != "unlisted":
                target = lower if policy == "lower" else _FLOAT32
                args = _cast_tensors(args, target)
                kwargs = {name: _cast_tensors(value, target) for name, value in kwargs.items()}
            autocast_hook.cpu_dtype = None
            try:
                return function(*args, **kwargs)
            finally:
                autocast_hook.cpu_dtype = lower

        return run_with_policy

    return decorate


def _cast_tensors(value, target):
    if isinstance(value, (tuple, list)):
        return type(value)(_cast_tensors(v, target) for v in value)
    if hasattr(value, "_data") and hasattr(value, "_requires_grad"):
        return cast_for_autocast(value, target)
    return value


def _cast_for_cpu_autocast(arrays: list, cls, lower) -> None:
    """torch's CPU autocast, in place on the op's arrays: its lower-precision list takes floating
    inputs (but float64) to ``lower``, its float32 list takes them to float32."""
    target = _cpu_autocast_target(cls, lower)
    if target is None:
        return
    # only NumPy arrays: device arrays belong to CUDA autocast (the device seam in _backend)
    for i, array in enumerate(arrays):
        if type(array) is np.ndarray and _castable(array.dtype, target):
            arrays[i] = array.astype(target)


def run(cls, ctx, arrays: list, params: dict):
    """``cls.forward(ctx, *arrays, **params)`` with torch's low-precision semantics.

    ``arrays`` is changed in place to what forward saw, so arrays it saves still resolve to the
    op's input tensors.
    """
    op = getattr(cls, "label", None)
    lower = autocast_hook.cpu_dtype
    if lower is not None:
        _cast_for_cpu_autocast(arrays, cls, lower)
    float8 = _dtype.FLOAT8_NP
    if float8:
        for array in arrays:
            found = getattr(array, "dtype", None)
            if found in float8:
                return _float8_op(cls, ctx, arrays, params, found)
    if op not in ACCUMULATE_IN_FLOAT32:
        return cls.forward(ctx, *arrays, **params)
    bfloat16 = _dtype._bfloat16_np
    low = None  # the half-precision dtype of the inputs, widened to float32 for forward
    mixed = False  # a float input of another width decides the result's dtype
    for i, array in enumerate(arrays):
        array_dtype = getattr(array, "dtype", None)
        if array_dtype is None:
            continue
        if array_dtype == _FLOAT16 or (bfloat16 is not None and array_dtype == bfloat16):
            mixed = mixed or (low is not None and low != array_dtype)
            low = array_dtype
            arrays[i] = array.astype(_FLOAT32)
        elif array_dtype.kind == "f":
            mixed = True
    # an op whose torch kernel rounds an intermediate to the half-precision dtype (softmax's
    # exps, log_softmax's log-sum) is told which dtype its float32 arrays were widened from
    widened = getattr(cls, "forward_widened", None) if low is not None and op in _WIDENED and not mixed else None
    out = cls.forward(ctx, *arrays, **params) if widened is None else widened(ctx, low, *arrays, **params)
    # round back only what half-precision inputs made: not an op's explicit dtype=, not a
    # mixed-precision op whose float32/float64 input decides its result
    if low is None or mixed or params.get("dtype") is not None:
        return out
    if type(out) is tuple:
        rounded = tuple(_round(o, low) for o in out)
        pairs = zip(out, rounded)
    else:
        rounded = _round(out, low)
        pairs = ((out, rounded),)
    saved = getattr(ctx, "_saved", None)
    if saved:  # a saved output is the rounded one, so it still resolves to the output tensor
        replace = {id(old): new for old, new in pairs if old is not new}
        ctx._saved = tuple(replace.get(id(s), s) if s is not None else None for s in saved)
    return rounded


def fused_compute_dtype(dtype):
    """float32 for the dtypes whose fused scalar ops (``add(alpha=)``, ``addcmul``, ``lerp``,
    ``addmm``'s beta/alpha) torch computes in float32 and rounds once, at the end: bfloat16 and
    float16 (``at::opmath_type``); None for every other dtype, which such ops compute in itself.

    A chainrule dtype in, a chainrule dtype out: the ops that use it widen their operands to it
    (``ops.elementwise.rounded_once``) rather than rounding after each step of their composite.
    """
    return _dtype.float32 if dtype is _dtype.bfloat16 or dtype is _dtype.float16 else None


def _into(out, result):
    """``result``, or written into ``out`` (an array of the result's shape and dtype) and ``out``:
    the tail of each fused kernel here that takes an ``out=``."""
    if out is None:
        return result
    out[...] = result
    return out


def fused_multiply_add_float32(x, y, z, out=None):
    """``x * y + z`` for float32 arrays (``y`` an array or a float64 number) rounded once, as a
    fused multiply-add, into ``out`` if given: the float32 product is exact in float64 and only
    the float64 sum rounds to float32 (correctly but for rare near-ties). About three times the
    cost of NumPy's twice-rounded ``z + x * y`` (measured on 2.7·10^5 elements: 0.20 ms against
    0.07); the optimizers run it on cache-sized blocks (``optim.optimizer.in_blocks``)."""
    wide = x.astype(np.float64)
    if type(x) is np.ndarray and wide.ndim and (type(y) is not np.ndarray or (
            y.shape == wide.shape and x.flags.c_contiguous and y.flags.c_contiguous)):
        # a number, or a row-major array of row-major x's shape: the product in place, in the
        # float64 copy of x (one float64 array fewer), laid out as the operator's result would be.
        # (NumPy's ufunc given dtype=float64 would skip the copy but costs more on small arrays than
        # the copy does.) A 0-d x keeps the operator, whose result is a NumPy scalar, as before
        wide *= y
    else:  # a device or stand-in array, a 0-d x, a y that broadcasts x or another layout
        wide = wide * y
    z_shape = z.shape if type(z) is np.ndarray else np.shape(z)
    # (a z of wide's shape or a number is the common case, answered without broadcast_shapes' call)
    if z_shape == wide.shape or not z_shape or wide.shape == np.broadcast_shapes(wide.shape, z_shape):
        wide += z
    else:  # z broadcasts x
        wide = wide + z
    if out is None:
        return wide.astype(np.float32)
    out[...] = wide  # one rounding, without a float32 temporary
    return out


_HOST_VALUES = (np.ndarray, np.generic, float, int)


def fused_multiply_add_float64(x, y: float, z, out=None):
    """``x * y + z`` for float64 arrays and a number ``y``, rounded once, as the fused multiply-add of
    torch's CPU add kernel (``add(a, b, alpha=)`` on float64 rounds ``a + alpha·b`` once; NumPy has
    no fma), into ``out`` if given. Through the BLAS bundled with NumPy where its ``daxpy`` fuses
    (``_load_daxpy``: one pass, in place when ``out`` is ``z``), else by an exact emulation
    (``_emulated_fused_multiply_add_float64``). A zero ``y`` needs neither: ``x·0`` is exact (and OpenBLAS's
    daxpy returns early on it, with no NaN from an infinite ``x``)."""
    if not (isinstance(x, _HOST_VALUES) and isinstance(z, _HOST_VALUES)):
        # a device (CuPy) or stand-in array: NumPy's buffers, BLAS and the emulation's passes are the
        # host's; the device computes its own a + alpha·b
        result = z + x * y
        return _into(out, result)
    daxpy = _daxpy if _daxpy is not None else _load_daxpy()
    if daxpy and y != 0:
        return _daxpy_fused(daxpy, x, y, z, out)
    if y == 0:
        with np.errstate(invalid="ignore"):  # (an infinite x: NaN, as the fma's)
            result = z + x * y
        return _into(out, result)
    return _emulated_fused_multiply_add_float64(x, y, z, out)


def _daxpy_fused(daxpy, x, y: float, z, out):
    """fused_multiply_add_float64 by BLAS's ``daxpy`` (``z += y·x`` over one dense buffer): straight
    into ``out`` when it is ``z``, dense and not overlapping ``x`` but as ``x`` itself; otherwise into a
    copy of ``z`` (its layout kept), with ``x`` copied to that layout where its strides differ."""
    x = x if type(x) is np.ndarray else np.asarray(x)
    z = z if type(z) is np.ndarray else np.asarray(z)
    shape = x.shape if x.shape == z.shape else np.broadcast_shapes(x.shape, z.shape)
    if (out is z and z.shape == shape and z.dtype == _FLOAT64 and z.flags.writeable and z.ndim
            and (z.flags.c_contiguous or z.flags.f_contiguous)
            and (x is z or not np.may_share_memory(x, z))):
        result = z
    elif z.shape == shape and z.dtype == _FLOAT64:
        result = z.copy(order="K")  # dense, in z's layout (as NumPy's sum of x·y and z would be)
    else:
        result = np.array(np.broadcast_to(z, shape), dtype=_FLOAT64, order="C")
    if x.strides != result.strides or x.shape != shape or x.dtype != _FLOAT64:
        dense = np.empty_like(result)
        dense[...] = x
        x = dense
    if result.size:
        daxpy(result.size, y, x.ctypes.data, 1, result.ctypes.data, 1)
    if result is z:
        return z
    if not shape:  # as NumPy's operators, a scalar for 0-d operands
        result = result[()]
    return _into(out, result)


_daxpy = None  # the BLAS daxpy once looked for: the ctypes function, or False where it is missing or rounds twice


def _load_daxpy():
    """The ILP64 ``cblas_daxpy`` of the OpenBLAS that NumPy's wheels bundle (numpy.libs), if it is
    there and computes one fused multiply-add per element on this CPU (OpenBLAS picks its kernel at
    run time: Haswell's and SkylakeX's use vfmadd, older ones multiply and add). Checked once
    against the exact emulation, on lengths that reach every kernel's tail loop and OpenBLAS's
    threaded split (above 10,000 elements); else, where it fuses over whole vector blocks, called on
    those alone (``_vector_blocks_only``); False, and the emulation is used, otherwise."""
    global _daxpy
    _daxpy = False
    try:
        import ctypes
        import glob
        import os

        folder = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
        found = sorted(glob.glob(os.path.join(folder, "libscipy_openblas64_*.so")))
        if not found:
            return False
        daxpy = ctypes.CDLL(found[0]).scipy_cblas_daxpy64_
        daxpy.argtypes = [ctypes.c_int64, ctypes.c_double, ctypes.c_void_p, ctypes.c_int64,
                          ctypes.c_void_p, ctypes.c_int64]
        daxpy.restype = None
    except (OSError, AttributeError):
        return False
    if not _rounds_once(daxpy):
        # OpenBLAS's Haswell kernel (AVX2 CPUs, Zen's too) fuses its vector body only, and multiplies
        # then adds in the C loop after it: over whole vector blocks alone it is torch's fma
        daxpy = _vector_blocks_only(daxpy)
        if not _rounds_once(daxpy):
            return False
    _daxpy = daxpy
    return daxpy


_DAXPY_VECTOR = 16  # elements: OpenBLAS's Haswell daxpy runs vfmadd over n & -16 of them
_DAXPY_CALL = 8192  # a multiple of 16 at most 10,000, where OpenBLAS's daxpy stays on one thread (no split, whose parts would have tails)


def _vector_blocks_only(daxpy):
    """``daxpy`` (contiguous operands, cblas_daxpy's arguments) called on whole vector blocks only:
    the body in calls of ``_DAXPY_CALL`` elements, the last ``n % 16`` elements through a zero-padded
    copy of 16. On this AMD EPYC (AVX2, no AVX-512) it gives torch's bits on the million-element
    stress set with alpha=1e-300 (subnormal results), where the emulation misses 37,083 of them."""
    import ctypes

    def fused(n, alpha, x, incx, y, incy):
        body = n - n % _DAXPY_VECTOR
        for begin in range(0, body, _DAXPY_CALL):
            daxpy(min(_DAXPY_CALL, body - begin), alpha, x + 8 * begin, incx, y + 8 * begin, incy)
        rest = 8 * (n - body)
        if rest:
            xs, ys = np.zeros(_DAXPY_VECTOR), np.zeros(_DAXPY_VECTOR)
            ctypes.memmove(xs.ctypes.data, x + 8 * body, rest)
            ctypes.memmove(ys.ctypes.data, y + 8 * body, rest)
            daxpy(_DAXPY_VECTOR, alpha, xs.ctypes.data, 1, ys.ctypes.data, 1)
            ctypes.memmove(y + 8 * body, ys.ctypes.data, rest)

    return fused


def _rounds_once(daxpy) -> bool:
    """Whether ``daxpy`` (cblas_daxpy's arguments) gives the exact emulation's bits, on standard
    normals with alpha=0.3 (about a fifth of which a multiply and an add round differently)."""
    rng = np.random.default_rng(0)
    for n in (*range(1, 80), 20_011):
        x, z = rng.standard_normal(n), rng.standard_normal(n)
        fused = z.copy()
        daxpy(n, 0.3, x.ctypes.data, 1, fused.ctypes.data, 1)
        if not np.array_equal(fused, _emulated_fused_multiply_add_float64(x, 0.3, z)):
            return False
    return True


def _emulated_fused_multiply_add_float64(x, y: float, z, out=None):
    """fused_multiply_add_float64 without an fma: Boldo and Melquiond's emulation ("Emulation of FMA
    and correctly-rounded sums: proved algorithms using rounding to odd", 2008): Dekker's exact
    product ``x·y = p + e`` (Veltkamp's split, ``y``'s once), Knuth's exact sum ``z + p = s + t``, then
    ``s + RO(t + e)`` rounded to nearest, where RO rounds to odd (truncates, and sets the last bit
    where that was inexact). Exact but where the product underflows (below about 1e-290 its error
    is no float64) or ``x·2^27`` overflows, where NumPy's twice rounded ``z + x·y`` is kept. About
    twenty array passes, in four arrays of x's shape: large arrays go through in cache-sized blocks."""
    shape = np.broadcast_shapes(np.shape(x), np.shape(z))
    size = int(np.prod(shape))
    if size > _FMA_BLOCK and np.shape(x) == shape and np.shape(z) == shape:
        x, z = np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(z).reshape(-1)
        result = np.empty(size)
        for begin in range(0, size, _FMA_BLOCK):
            block = slice(begin, begin + _FMA_BLOCK)
            result[block] = _fused_multiply_add_float64(x[block], y, z[block])
        result = result.reshape(shape)
    elif shape:
        result = _fused_multiply_add_float64(np.asarray(x), y, np.asarray(z))
    else:  # as one element (NumPy's operators answer 0-d arrays with scalars, which take no out=)
        result = _fused_multiply_add_float64(np.reshape(x, 1), y, np.reshape(z, 1))[0]
    return _into(out, result)


_SPLITTER = 134217729.0  # 2**27 + 1: Veltkamp's split of a float64 into two 26-bit halves
_FMA_BLOCK = 16384  # elements: fused_multiply_add_float64's five float64 blocks stay in a core's L2


def _fused_multiply_add_float64(x, y: float, z):
    """fused_multiply_add_float64 on arrays, in place where it can: a new array of their broadcast
    shape."""
    scaled = y * _SPLITTER
    y_high = scaled - (scaled - y)
    y_low = y - y_high
    shape = np.broadcast_shapes(x.shape, z.shape)
    if x.shape != shape:  # z broadcasts x: the temporaries below take the result's shape from x
        x = np.broadcast_to(x, shape)
    with np.errstate(over="ignore", invalid="ignore"):
        product = x * y
        # Veltkamp: x = high + low, each with 26 significant bits
        high = x * _SPLITTER
        low = high - x
        high -= low
        np.subtract(x, high, out=low)
        # Dekker: the product's rounding error, exactly
        error = high * y_high
        error -= product
        high *= y_low
        error += high
        np.multiply(low, y_high, out=high)
        error += high
        low *= y_low
        error += low
        # Knuth's two-sum: z + product = total + tail, exactly (tail in low)
        total = z + product
        virtual = np.subtract(total, z, out=high)
        np.subtract(total, virtual, out=low)
        np.subtract(z, low, out=low)
        product -= virtual
        low += product
        # round to odd of tail + error: the nearest sum (in high), what it missed (in low)
        near = np.add(low, error, out=high)
        virtual = np.subtract(near, low, out=product)
        error -= virtual
        np.subtract(near, virtual, out=virtual)
        low -= virtual
        low += error
        inexact = low != 0
        near_bits, missed_bits = near.view(np.int64), low.view(np.int64)
        np.bitwise_xor(near_bits, missed_bits, out=missed_bits)
        toward_zero = np.less(missed_bits, 0)  # missed and near of opposite signs: truncation is one unit down
        toward_zero &= inexact
        near_bits -= toward_zero
        near_bits |= inexact
        # total - (0 - near): total + near, but total itself where near is a zero (-0 + +0
        # would lose the sign of -0 + 0.3·-0, whose tail and error are zeros)
        np.subtract(0.0, near, out=near)
        total -= near
        finite = np.isfinite(total, out=inexact)
        if not finite.all():  # an infinite or NaN operand or result, or a split past float64's range
            total = np.where(finite, total, z + x * y)
    return total


def half_precision(dtype) -> bool:
    """float16 or bfloat16 (ml_dtypes' is of kind 'V'): torch computes their fused ops in float32."""
    return dtype.itemsize == 2 and dtype.kind in "fV"


def fused_lerp(start, end, weight: float, out=None):
    """torch's ``start.lerp(end, weight)`` for a number ``weight``: compared with 0.5 in the
    computing dtype (torch's ``is_lerp_weight_small`` on its opmath value), then ``start + w·(end -
    start)`` below it, ``end - (1 - w)·(end - start)`` from it on (the form exact at its own end).
    float32 rounds as torch's CPU kernel, one fused multiply-add; float16/bfloat16 compute that in
    float32 and round once, as torch's opmath; other dtypes round NumPy's product and sum (torch's
    float64 kernel fuses too, but where BLAS's daxpy does not round once, as on the AMD EPYC CI
    machine, the exact emulation made a float64 Adam step 2 to 4 times slower). Into ``out`` if given
    (which may be ``start``)."""
    low = start.dtype if half_precision(start.dtype) else None
    if low is not None:
        start, end = start.astype(_FLOAT32), end.astype(_FLOAT32)
    w = start.dtype.type(weight)
    difference = end - start
    small = abs(w) < 0.5
    if start.dtype == _FLOAT32:
        factor, base = np.float64(w if small else w - w.dtype.type(1)), start if small else end
        if low is None:
            return fused_multiply_add_float32(difference, factor, base, out=out)
        result = fused_multiply_add_float32(difference, factor, base).astype(low)
    elif small:
        result = difference * w + start
    else:
        result = difference * (w - w.dtype.type(1)) + end
    return _into(out, result)


def fused_addcmul(start, tensor1, tensor2, value: float, out=None):
    """torch's ``start.addcmul(tensor1, tensor2, value=value)`` (into ``out`` if given): float32 as
    its CPU kernel rounds ``start + value * tensor1 * tensor2``, the product ``value·tensor1`` once
    and the rest as one fused multiply-add, float64 too where a factor is 0-d; float16/bfloat16 the
    same in float32, rounded once at the end (torch's opmath); other dtypes NumPy's roundings of the
    same expression."""
    if start.dtype == _FLOAT32 or half_precision(start.dtype):
        wide = [a.astype(_FLOAT32, copy=False) for a in (start, tensor1, tensor2)]
        scaled = wide[1] if value == 1 else wide[1] * np.float32(value)
        if start.dtype == _FLOAT32:
            return fused_multiply_add_float32(scaled, wide[2], wide[0], out=out)
        result = fused_multiply_add_float32(scaled, wide[2], wide[0]).astype(start.dtype)
    elif (start.dtype == tensor1.dtype == tensor2.dtype == _FLOAT64 and 0 in (np.ndim(tensor1), np.ndim(tensor2))
          and isinstance(tensor1, _HOST_VALUES) and isinstance(tensor2, _HOST_VALUES)):
        # the same fused multiply-add where a factor is 0-d (ASGD's eta and mu), a number's
        # (fused_multiply_add_float64); two arrays' products (Adam's g·g) keep NumPy's two roundings
        # below: NumPy has no fused product of two arrays, and the exact emulation's twenty passes
        # made a float64 Adam step 2 to 4 times slower, for a last-bit difference in exp_avg_sq
        scaled = tensor1 if value == 1 else tensor1 * np.float64(value)
        if np.ndim(tensor2) == 0:
            return fused_multiply_add_float64(scaled, float(tensor2), start, out=out)
        return fused_multiply_add_float64(tensor2, float(scaled), start, out=out)
    else:
        result = start + start.dtype.type(value) * tensor1 * tensor2
    return _into(out, result)


def fused_addcdiv(start, tensor1, tensor2, value: float, out=None):
    """torch's ``start.addcdiv(tensor1, tensor2, value=value)``: ``start + (value·tensor1) / tensor2``,
    each step rounded in the tensors' dtype, but float16/bfloat16 computed in float32 and rounded
    once (torch's opmath: the number is not rounded to their precision either). Into ``out`` if
    given (which may be ``start``)."""
    if half_precision(start.dtype):
        wide = [a.astype(_FLOAT32) for a in (start, tensor1, tensor2)]
        with np.errstate(divide="ignore", invalid="ignore"):  # (float16's eps=1e-8 is 0: torch's inf, unwarned)
            result = (wide[0] + (wide[1] * np.float32(value)) / wide[2]).astype(start.dtype)
    elif start.ndim and _same_arrays(out, start, tensor1, tensor2):
        # NumPy arrays of one shape and dtype: the same three roundings, in one temporary
        quotient = np.multiply(tensor1, start.dtype.type(value))
        np.divide(quotient, tensor2, out=quotient)
        return np.add(start, quotient, out=out)
    else:
        result = start + (tensor1 * start.dtype.type(value)) / tensor2
    return _into(out, result)


def multiply_by_number(array, factor: float, out=None):
    """``array * factor`` as torch's ``mul`` by a number: float16/bfloat16 multiply in float32 (the
    number not rounded to their precision) and round once; other dtypes in their own."""
    return _with_number(np.multiply, array, factor, out)


def divide_by_number(array, number: float, out=None):
    """``array / number`` as torch's ``div`` by a number: float16/bfloat16 divide in float32 and round once."""
    return _with_number(np.divide, array, number, out)


def add_number(array, number: float, out=None):
    """``array + number`` as torch's ``add`` of a number (``sqrt(v).add_(eps)``): float16/bfloat16
    add in float32 (eps=1e-8 is 0 in float16, not in float32) and round once."""
    return _with_number(np.add, array, number, out)


def _with_number(ufunc, array, number: float, out):
    if _same_arrays(out, array):  # straight into out: the same rounding, no temporary
        return ufunc(array, array.dtype.type(number), out=out)
    if half_precision(array.dtype):
        result = ufunc(array.astype(_FLOAT32), np.float32(number)).astype(array.dtype)
    else:
        result = ufunc(array, array.dtype.type(number))
    return _into(out, result)


def _same_arrays(*arrays) -> bool:
    """NumPy arrays (not scalars, not device arrays) of one shape and one dtype, other than
    float16/bfloat16: a ufunc can write their result into the first without changing a bit. (A
    read-only first array takes the copying path, whose assignment raises NumPy's usual error.)"""
    first = arrays[0]
    return (type(first) is np.ndarray and first.flags.writeable and not half_precision(first.dtype)
            and all(type(a) is np.ndarray and a.shape == first.shape and a.dtype == first.dtype for a in arrays))


def _round(array, low):
    return array.astype(low) if getattr(array, "dtype", None) == _FLOAT32 else array
