"""Fused CuPy kernels for the hot GPU paths, each beside the NumPy reference of its math.

Composed from NumPy-style calls, softmax is five kernel launches and five trips through memory
(max, subtract, exp, sum, divide), layer norm's backward about a dozen, an Adam step nine per
parameter. Each kernel here does the same math in one pass per row (``RawModule`` kernels, one
thread block per row, block-wide reductions) or one elementwise launch (``ElementwiseKernel``).

Contract: every kernel function takes CuPy arrays (float32 or float64, any layout) and returns
new C-contiguous CuPy arrays; ``adam_step`` updates its arrays in place. Call them where
``array_module(x)`` is CuPy and ``available(x)`` is true; anything else raises TypeError naming
the op. The ``*_reference`` functions are the same math on NumPy arrays, the definition the
kernels are tested against (on a GPU) and that is tested against chainrule's CPU ops (in CI).

Convolution has no kernel here: CuPy 14 removed its cuDNN bindings (``cupy.cudnn``), so the GPU
convolution is the seam's im2col + cuBLAS GEMM (``cupy.matmul``), as on the CPU.
"""

from __future__ import annotations

import math

import numpy as np


def _cupy():
    """CuPy itself (the kernels compile CUDA C, so the seam's CPU stand-in will not do), or None."""
    global _cupy_missing
    if _cupy_missing:
        return None
    try:
        import cupy
    except ImportError:
        # asked once: a failed import searches sys.path again each time (30 searches per step
        # of a transformer on the stand-in, each a few stat calls), and CuPy cannot appear later
        _cupy_missing = True
        return None
    return cupy


_cupy_missing = False

__all__ = ["available", "softmax", "log_softmax", "cross_entropy", "cross_entropy_backward", "layer_norm",
           "layer_norm_backward", "gelu", "gelu_backward", "adam_step", "adam_multi_tensor_step",
           "softmax_reference", "log_softmax_reference", "cross_entropy_reference",
           "cross_entropy_backward_reference", "layer_norm_reference", "layer_norm_backward_reference",
           "gelu_reference", "gelu_backward_reference", "adam_step_reference", "adam_multi_tensor_step_reference"]

_FLOAT_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
# bit patterns of -inf and NaN, so the source needs no <cmath> under NVRTC
_NEG_INF = {"float": "__int_as_float(0xff800000)", "double": "__longlong_as_double(0xfff0000000000000LL)"}
_NAN = {"float": "__int_as_float(0x7fc00000)", "double": "__longlong_as_double(0x7ff8000000000000LL)"}

# One thread block per row of a C-contiguous (rows, cols) array; block_sum/block_max reduce over
# the block (warp shuffles, then one warp over the per-warp partials) and give every thread the
# result. The leading __syncthreads keeps a call from overwriting ``shared`` while threads still
# read the previous call's result from it.
ROW_KERNELS = r"""
typedef CTYPE T;
#define NEG_INF NEG_INF_VALUE
#define NAN_T NAN_VALUE

__device__ __forceinline__ T warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffff, v, offset);
    return v;
}

__device__ __forceinline__ T max_or_nan(T a, T b) { return (a > b || a != a) ? a : b; }

__device__ __forceinline__ T warp_max(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = max_or_nan(v, __shfl_down_sync(0xffffffff, v, offset));
    return v;
}

__device__ T block_sum(T v, T* shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : (T)0;
        v = warp_sum(v);
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    return shared[0];
}

__device__ T block_max(T v, T* shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : NEG_INF;
        v = warp_max(v);
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    return shared[0];
}

// max and log-sum-exp of one row, shifted by the max so exp never overflows
__device__ void row_max_lse(const T* row, long long cols, T* shared, T* max_out, T* lse_out) {
    T m = NEG_INF;
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) m = max_or_nan(m, row[j]);
    m = block_max(m, shared);
    T s = 0;
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) s += exp(row[j] - m);
    s = block_sum(s, shared);
    *max_out = m;
    *lse_out = m + log(s);
}

extern "C" __global__ void softmax_rows(const T* x, T* y, long long cols, int log_output) {
    __shared__ T shared[32];
    const T* row = x + (long long)blockIdx.x * cols;
    T* out = y + (long long)blockIdx.x * cols;
    T m, lse;
    row_max_lse(row, cols, shared, &m, &lse);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x)
        out[j] = log_output ? row[j] - lse : exp(row[j] - lse);
}

// loss_i = lse_i - x[i, t_i]; 0 where t_i == ignore_index; NaN where t_i is out of range
// (torch stops with a device-side assert there; a NaN loss keeps the step free of host syncs)
extern "C" __global__ void cross_entropy_rows(const T* x, const long long* target, T* loss, T* lse_out,
                                              long long cols, long long ignore_index) {
    __shared__ T shared[32];
    const T* row = x + (long long)blockIdx.x * cols;
    T m, lse;
    row_max_lse(row, cols, shared, &m, &lse);
    if (threadIdx.x == 0) {
        long long t = target[blockIdx.x];
        T value;
        if (t == ignore_index) value = 0;
        else if (t < 0 || t >= cols) value = NAN_T;
        else value = lse - row[t];
        loss[blockIdx.x] = value;
        lse_out[blockIdx.x] = lse;
    }
}

// biased variance over the row, two passes (mean first) for accuracy, as the CPU op computes it
extern "C" __global__ void layer_norm_rows(const T* x, const T* weight, const T* bias, T* y, T* mean_out,
                                           T* rstd_out, long long cols, double eps, int has_weight, int has_bias) {
    __shared__ T shared[32];
    const T* row = x + (long long)blockIdx.x * cols;
    T* out = y + (long long)blockIdx.x * cols;
    T s = 0;
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) s += row[j];
    T mean = block_sum(s, shared) / (T)cols;
    T sq = 0;
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) { T d = row[j] - mean; sq += d * d; }
    T rstd = (T)1 / sqrt(block_sum(sq, shared) / (T)cols + (T)eps);
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
        T v = (row[j] - mean) * rstd;
        if (has_weight) v *= weight[j];
        if (has_bias) v += bias[j];
        out[j] = v;
    }
    if (threadIdx.x == 0) { mean_out[blockIdx.x] = mean; rstd_out[blockIdx.x] = rstd; }
}

// with g = grad * weight and xhat = (x - mean) * rstd:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
extern "C" __global__ void layer_norm_backward_rows(const T* grad, const T* x, const T* mean, const T* rstd,
                                                    const T* weight, T* grad_x, long long cols, int has_weight) {
    __shared__ T shared[32];
    long long offset = (long long)blockIdx.x * cols;
    T mu = mean[blockIdx.x], r = rstd[blockIdx.x];
    T sum_g = 0, sum_g_xhat = 0;
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
        T g = has_weight ? grad[offset + j] * weight[j] : grad[offset + j];
        sum_g += g;
        sum_g_xhat += g * (x[offset + j] - mu) * r;
    }
    T mean_g = block_sum(sum_g, shared) / (T)cols;
    T mean_g_xhat = block_sum(sum_g_xhat, shared) / (T)cols;
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
        T g = has_weight ? grad[offset + j] * weight[j] : grad[offset + j];
        T xhat = (x[offset + j] - mu) * r;
        grad_x[offset + j] = r * (g - mean_g - xhat * mean_g_xhat);
    }
}
"""

_modules: dict = {}
_elementwise: dict = {}


def available(x) -> bool:
    """True when ``x`` is a CuPy array of a dtype the kernels take (float32 or float64)."""
    cp = _cupy()
    return cp is not None and isinstance(x, cp.ndarray) and x.dtype in _FLOAT_TYPES


def _check(op: str, *arrays) -> None:
    for a in arrays:
        if not available(a):
            kind = f"{type(a).__module__}.{type(a).__name__}"
            dtype = getattr(a, "dtype", None)
            raise TypeError(f"_cuda_kernels.{op}: expected CuPy float32 or float64 arrays, got {kind} of dtype {dtype}")


def row_kernel_source(dtype) -> str:
    """The CUDA source of the row kernels for ``dtype`` (float32 or float64)."""
    ctype = _FLOAT_TYPES[np.dtype(dtype)]
    return ROW_KERNELS.replace("CTYPE", ctype).replace("NEG_INF_VALUE", _NEG_INF[ctype]).replace("NAN_VALUE", _NAN[ctype])


def multi_tensor_source(dtype) -> str:
    """The CUDA source of the multi-tensor Adam kernels for ``dtype`` (float32 or float64)."""
    return f"typedef {_FLOAT_TYPES[np.dtype(dtype)]} T;\n" + MULTI_TENSOR_ADAM


def _row_function(dtype, name: str, source=row_kernel_source):
    """The compiled ``name`` kernel of ``source`` for ``dtype`` (compiled once per source and
    dtype, then cached by CuPy; a module of its own per source, so one that fails to compile
    leaves the others working)."""
    key = (source.__name__, _FLOAT_TYPES[np.dtype(dtype)])
    if key not in _modules:
        _modules[key] = _cupy().RawModule(code=source(dtype))
    return _modules[key].get_function(name)


def _block_size(cols: int) -> int:
    """Threads per row: a multiple of the warp size, enough for a short row, at most 1024."""
    return min(1024, max(32, 32 * math.ceil(min(cols, 1024) / 32)))


def _rows(x, dim: int):
    """``x`` with ``dim`` moved last, as a C-contiguous (rows, cols) array, and how to undo it."""
    cp = _cupy()
    dim = dim % x.ndim if x.ndim else 0
    moved = cp.moveaxis(x, dim, -1) if x.ndim else x.reshape(1)
    shape = moved.shape
    rows2d = cp.ascontiguousarray(moved).reshape(-1, shape[-1] if shape else 1)

    def restore(out2d):
        out = out2d.reshape(shape)
        return cp.ascontiguousarray(cp.moveaxis(out, -1, dim)) if x.ndim else out.reshape(())

    return rows2d, restore


def _softmax(x, dim: int, log_output: bool):
    cp = _cupy()
    rows2d, restore = _rows(x, dim)
    out = cp.empty_like(rows2d)
    rows, cols = rows2d.shape
    if rows and cols:
        _row_function(x.dtype, "softmax_rows")((rows,), (_block_size(cols),),
                                                (rows2d, out, np.int64(cols), np.int32(log_output)))
    return restore(out)


def softmax(x, dim: int = -1):
    """torch.softmax(x, dim) in one launch: exp(x - logsumexp(x, dim))."""
    _check("softmax", x)
    return _softmax(x, dim, log_output=False)


def log_softmax(x, dim: int = -1):
    """torch.log_softmax(x, dim) in one launch: x - logsumexp(x, dim)."""
    _check("log_softmax", x)
    return _softmax(x, dim, log_output=True)


def cross_entropy(logits, target, ignore_index: int = -100, reduction: str = "mean"):
    """F.cross_entropy from (N, C) logits and (N,) class indices, without class weights or label
    smoothing. Returns (loss, lse): the reduced loss (0-d, or (N,) for 'none') and each row's
    log-sum-exp, which ``cross_entropy_backward`` needs. 'mean' divides by the count of
    non-ignored targets on the device (no host sync), giving NaN when all are ignored, as torch."""
    _check("cross_entropy", logits)
    cp = _cupy()
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"_cuda_kernels.cross_entropy: expected logits (N, C) and target (N,), got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}")
    rows, cols = logits.shape
    x = cp.ascontiguousarray(logits)
    target = cp.ascontiguousarray(target, dtype=cp.int64)
    losses, lse = cp.empty(rows, x.dtype), cp.empty(rows, x.dtype)
    if rows:
        _row_function(x.dtype, "cross_entropy_rows")((rows,), (_block_size(cols),),
                                                      (x, target, losses, lse, np.int64(cols), np.int64(ignore_index)))
    return _reduce_loss(losses, target, ignore_index, reduction), lse


def _reduce_loss(losses, target, ignore_index: int, reduction: str):
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return (losses.sum() / (target != ignore_index).sum()).astype(losses.dtype)
    raise ValueError(f"_cuda_kernels.cross_entropy: {reduction} is not a valid value for reduction")


# d loss_i / d x_ij = softmax(x_i)_j - [j == t_i], scaled by row i's upstream gradient
_CROSS_ENTROPY_BACKWARD = (
    "T x, raw T lse, raw S target, raw T grad_row, int64 cols, int64 ignore_index", "T grad_x",
    """
    long long row = i / cols, col = i % cols;
    long long t = target[row];
    T scale = t == ignore_index ? (T)0 : grad_row[row];
    grad_x = scale * (exp(x - lse[row]) - (col == t ? (T)1 : (T)0));
    """)


def cross_entropy_backward(grad_loss, logits, target, lse, ignore_index: int = -100, reduction: str = "mean"):
    """The gradient of ``cross_entropy`` with respect to the logits, in one elementwise launch;
    ``grad_loss`` has the loss's shape (0-d, or (N,) for 'none')."""
    _check("cross_entropy_backward", logits, lse)
    cp = _cupy()
    rows, cols = logits.shape
    x = cp.ascontiguousarray(logits)
    target = cp.ascontiguousarray(target, dtype=cp.int64)
    grad_loss = cp.asarray(grad_loss, dtype=x.dtype)
    if reduction == "mean":
        grad_loss = grad_loss / (target != ignore_index).sum().astype(x.dtype)
    grad_row = cp.ascontiguousarray(cp.broadcast_to(grad_loss, (rows,)), dtype=x.dtype)
    grad_x = cp.empty_like(x)
    if x.size:
        _elementwise_kernel("cross_entropy_backward")(x, lse, target, grad_row, cols, ignore_index, grad_x)
    return grad_x


def layer_norm(x, normalized_ndim: int, weight=None, bias=None, eps: float = 1e-5):
    """F.layer_norm over the last ``normalized_ndim`` dims in one launch. Returns (y, mean, rstd),
    mean and rstd of shape x.shape[:-normalized_ndim], for ``layer_norm_backward``."""
    _check("layer_norm", x, *(a for a in (weight, bias) if a is not None))
    cp = _cupy()
    lead_shape = x.shape[:x.ndim - normalized_ndim]
    rows = math.prod(lead_shape)
    cols = math.prod(x.shape[x.ndim - normalized_ndim:])
    x2d = cp.ascontiguousarray(x).reshape(rows, cols)
    dummy = cp.empty(1, x.dtype)
    w = dummy if weight is None else cp.ascontiguousarray(weight, dtype=x.dtype).reshape(cols)
    b = dummy if bias is None else cp.ascontiguousarray(bias, dtype=x.dtype).reshape(cols)
    y, mean, rstd = cp.empty_like(x2d), cp.empty(rows, x.dtype), cp.empty(rows, x.dtype)
    if rows and cols:
        _row_function(x.dtype, "layer_norm_rows")(
            (rows,), (_block_size(cols),),
            (x2d, w, b, y, mean, rstd, np.int64(cols), np.float64(eps),
             np.int32(weight is not None), np.int32(bias is not None)))
    return y.reshape(x.shape), mean.reshape(lead_shape), rstd.reshape(lead_shape)


def layer_norm_backward(grad, x, mean, rstd, weight=None, bias_defined: bool = False):
    """Gradients (dx, dweight, dbias) of ``layer_norm``: dx in one launch per row, dweight and
    dbias as column sums (None where there is no weight or bias)."""
    _check("layer_norm_backward", grad, x, mean, rstd, *(a for a in (weight,) if a is not None))
    cp = _cupy()
    rows = mean.size
    cols = x.size // rows if rows else 0
    x2d = cp.ascontiguousarray(x).reshape(rows, cols)
    g2d = cp.ascontiguousarray(grad, dtype=x.dtype).reshape(rows, cols)
    mean1d, rstd1d = cp.ascontiguousarray(mean).reshape(rows), cp.ascontiguousarray(rstd).reshape(rows)
    w = cp.empty(1, x.dtype) if weight is None else cp.ascontiguousarray(weight, dtype=x.dtype).reshape(cols)
    grad_x = cp.empty_like(x2d)
    if rows and cols:
        _row_function(x.dtype, "layer_norm_backward_rows")(
            (rows,), (_block_size(cols),),
            (g2d, x2d, mean1d, rstd1d, w, grad_x, np.int64(cols), np.int32(weight is not None)))
    grad_weight = grad_bias = None
    if weight is not None:
        xhat = (x2d - mean1d[:, None]) * rstd1d[:, None]
        grad_weight = (g2d * xhat).sum(0).reshape(weight.shape)
    if bias_defined:
        grad_bias = g2d.sum(0).reshape(x.shape[mean.ndim:])
    return grad_x.reshape(x.shape), grad_weight, grad_bias


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_GELU_CODE = {
    # y = x Φ(x) = 0.5 x (1 + erf(x / √2));  y' = Φ(x) + x φ(x)
    ("forward", "none"): f"y = (T)0.5 * x * ((T)1 + erf(x * (T){_SQRT_HALF!r}))",
    ("backward", "none"): (f"T cdf = (T)0.5 * ((T)1 + erf(x * (T){_SQRT_HALF!r}));"
                           f"T pdf = exp((T)-0.5 * x * x) * (T){_INV_SQRT_2PI!r};"
                           "y = grad * (cdf + x * pdf)"),
    # y = 0.5 x (1 + tanh(u)), u = √(2/π)(x + 0.044715 x³);  y' = 0.5(1 + t) + 0.5 x (1 - t²) u'
    ("forward", "tanh"): f"y = (T)0.5 * x * ((T)1 + tanh((T){_SQRT_2_OVER_PI!r} * (x + (T)0.044715 * x * x * x)))",
    ("backward", "tanh"): (f"T t = tanh((T){_SQRT_2_OVER_PI!r} * (x + (T)0.044715 * x * x * x));"
                           f"T du = (T){_SQRT_2_OVER_PI!r} * ((T)1 + (T)(3 * 0.044715) * x * x);"
                           "y = grad * ((T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * du)"),
}


def _check_approximate(op: str, approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"_cuda_kernels.{op}: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu(x, approximate: str = "none"):
    """F.gelu(x, approximate) in one elementwise launch."""
    _check("gelu", x)
    _check_approximate("gelu", approximate)
    return _elementwise_kernel(f"gelu_forward_{approximate}")(x)


def gelu_backward(grad, x, approximate: str = "none"):
    """grad * gelu'(x) in one elementwise launch."""
    _check("gelu_backward", grad, x)
    _check_approximate("gelu_backward", approximate)
    return _elementwise_kernel(f"gelu_backward_{approximate}")(grad, x)


# torch.optim.Adam/AdamW's update, written as chainrule's CPU step writes it (optim/adam.py):
# scalars are cast to the parameter's dtype where NumPy would cast them
_ADAM_CODE = """
T g = maximize ? -grad : grad;
if (weight_decay != 0) {
    if (decoupled) param *= (T)(1 - lr * weight_decay);
    else g = g + (T)weight_decay * param;
}
exp_avg += (T)(1 - beta1) * (g - exp_avg);
exp_avg_sq = exp_avg_sq * (T)beta2 + (T)(1 - beta2) * (g * g);
DENOMINATOR
param -= (T)(lr / bias_correction1) * (exp_avg / denom);
"""
_ADAM_SCALARS = ("T grad, float64 lr, float64 beta1, float64 beta2, float64 eps, float64 weight_decay, "
                 "float64 bias_correction1, float64 bias_correction2_sqrt, int32 decoupled, int32 maximize")


_AMSGRAD_DENOMINATOR = (
    # NaN-propagating maximum, as np.maximum in the CPU step
    "max_exp_avg_sq = (exp_avg_sq > max_exp_avg_sq || exp_avg_sq != exp_avg_sq) ? exp_avg_sq : max_exp_avg_sq;"
    "T denom = sqrt(max_exp_avg_sq) / (T)bias_correction2_sqrt + (T)eps;")
_ADAM_DENOMINATOR = "T denom = sqrt(exp_avg_sq) / (T)bias_correction2_sqrt + (T)eps;"

# Adam/AdamW over every parameter of a group in one launch (a multi-tensor apply, as torch's
# foreach/fused Adam on CUDA): ``table`` holds one column of ``tensors`` device addresses per array
# kind (param, grad, exp_avg, exp_avg_sq[, max_exp_avg_sq]), then the ``tensors + 1`` offsets of each
# tensor's first element in the group's concatenation. A thread finds its tensor by binary search
# over the offsets; the update itself is _ADAM_CODE, the per-parameter kernel's.
_MULTI_TENSOR_ADAM_KERNEL = r"""
extern "C" __global__ void NAME(const long long* table, int tensors, long long total, double lr,
                                double beta1, double beta2, double eps, double weight_decay,
                                double bias_correction1, double bias_correction2_sqrt, int decoupled, int maximize) {
    const long long* offsets = table + COLUMNS * (long long)tensors;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        int lo = 0, hi = tensors - 1;  // the last tensor whose first element is at or before i
        while (lo < hi) { int mid = (lo + hi + 1) >> 1; if (offsets[mid] <= i) lo = mid; else hi = mid - 1; }
        long long j = i - offsets[lo];
        T& param = ((T*)table[lo])[j];
        const T grad = ((const T*)table[tensors + lo])[j];
        T& exp_avg = ((T*)table[2 * tensors + lo])[j];
        T& exp_avg_sq = ((T*)table[3 * tensors + lo])[j];
        MAX_BINDING
        BODY
    }
}
"""
MULTI_TENSOR_ADAM = "".join(
    _MULTI_TENSOR_ADAM_KERNEL.replace("NAME", name).replace("COLUMNS", str(columns)).replace("MAX_BINDING", binding)
    .replace("BODY", _ADAM_CODE.replace("DENOMINATOR", denominator).strip().replace("\n", "\n        "))
    for name, columns, binding, denominator in (
        ("adam_multi_tensor", 4, "", _ADAM_DENOMINATOR),
        ("adam_multi_tensor_amsgrad", 5, "T& max_exp_avg_sq = ((T*)table[4 * tensors + lo])[j];",
         _AMSGRAD_DENOMINATOR)))

# every ElementwiseKernel: name -> (in_params, out_params, operation), compiled on first use
ELEMENTWISE = {
    "cross_entropy_backward": _CROSS_ENTROPY_BACKWARD,
    **{f"gelu_{direction}_{approximate}": ("T x" if direction == "forward" else "T grad, T x", "T y", code)
       for (direction, approximate), code in _GELU_CODE.items()},
    "adam_step": (_ADAM_SCALARS, "T param, T exp_avg, T exp_avg_sq",
                  _ADAM_CODE.replace("DENOMINATOR", _ADAM_DENOMINATOR)),
    "adam_step_amsgrad": (_ADAM_SCALARS, "T param, T exp_avg, T exp_avg_sq, T max_exp_avg_sq",
                          _ADAM_CODE.replace("DENOMINATOR", _AMSGRAD_DENOMINATOR)),
}


def _elementwise_kernel(name: str):
    if name not in _elementwise:
        _elementwise[name] = _cupy().ElementwiseKernel(*ELEMENTWISE[name], f"chainrule_{name}")
    return _elementwise[name]


def adam_step(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr: float, beta1: float, beta2: float, eps: float,
              weight_decay: float = 0.0, decoupled: bool = False, maximize: bool = False, max_exp_avg_sqs=None) -> None:
    """One Adam (``decoupled=False``) or AdamW (``decoupled=True``) step over a parameter group, in
    place: one launch per parameter updates param, exp_avg, exp_avg_sq (and max_exp_avg_sq when
    given: amsgrad) together. ``steps`` holds each parameter's step count after incrementing."""
    amsgrad = max_exp_avg_sqs is not None
    groups = [params, grads, exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if amsgrad else [])
    _check("adam_step", *(a for group in groups for a in group))  # all of them, before any is updated
    kernel = _elementwise_kernel("adam_step_amsgrad" if amsgrad else "adam_step")
    for k, (param, grad, exp_avg, exp_avg_sq, step) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, steps)):
        extra = (max_exp_avg_sqs[k],) if amsgrad else ()
        _launch_on(_device_id(param))
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        kernel(grad, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2_sqrt,
               int(decoupled), int(maximize), param, exp_avg, exp_avg_sq, *extra)


def _device_id(array) -> int:
    """The GPU an array is on (0 for the CPU-compiled kernels' host arrays, tests/cuda)."""
    return getattr(array.device, "id", 0)


def _launch_on(device_id: int) -> None:
    """Make ``device_id`` CuPy's current GPU before a launch: a parameter group may span GPUs (a
    model split over two), and CuPy launches on the current one (_backend.follow_device)."""
    runtime = getattr(getattr(_cupy(), "cuda", None), "runtime", None)
    if runtime is not None and runtime.getDevice() != device_id:
        runtime.setDevice(device_id)


def _address(array) -> int:
    """The device address of a CuPy array's first element."""
    return array.data.ptr


def _grid(total: int) -> tuple:
    """(blocks, threads) for a grid-stride loop over ``total`` elements."""
    threads = 256
    return min(-(-total // threads), 4096), threads


def adam_multi_tensor_step(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr: float, beta1: float, beta2: float,
                           eps: float, weight_decay: float = 0.0, decoupled: bool = False, maximize: bool = False,
                           max_exp_avg_sqs=None) -> None:
    """``adam_step`` over a whole parameter group in one launch: one per distinct (dtype, step
    count) among the parameters, so one in the usual group. Parameters or states that are not
    C-contiguous (the kernel addresses elements by offset) take ``adam_step``'s launch each."""
    amsgrad = max_exp_avg_sqs is not None
    columns = [params, grads, exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if amsgrad else [])
    _check("adam_multi_tensor_step", *(a for column in columns for a in column))  # before any is updated
    cp = _cupy()
    batches: dict = {}
    single = []
    for k, param in enumerate(params):
        in_place = [column[k] for column in columns if column is not grads]
        if all(a.flags.c_contiguous and a.dtype == param.dtype for a in in_place):
            # one launch per GPU too: a group may span devices (a model split over two GPUs)
            batches.setdefault((_device_id(param), param.dtype, steps[k]), []).append(k)
        else:
            single.append(k)
    for (device_id, dtype, step), ks in batches.items():
        sizes = [params[k].size for k in ks]
        total = sum(sizes)
        if not total:
            continue
        _launch_on(device_id)
        # the grads are only read: a strided or other-dtype one is copied, the rest are used in place
        grads_here = {k: cp.ascontiguousarray(grads[k], dtype=dtype) for k in ks}
        addresses = [_address(grads_here[k] if column is grads else column[k]) for column in columns for k in ks]
        offsets = np.concatenate(([0], np.cumsum(sizes))).tolist()
        table = cp.asarray(np.array(addresses + offsets, dtype=np.int64))  # a few hundred bytes to the device
        blocks, threads = _grid(total)
        _row_function(dtype, "adam_multi_tensor_amsgrad" if amsgrad else "adam_multi_tensor", multi_tensor_source)(
            (blocks,), (threads,),
            (table, np.int32(len(ks)), np.int64(total), np.float64(lr), np.float64(beta1), np.float64(beta2),
             np.float64(eps), np.float64(weight_decay), np.float64(1 - beta1 ** step),
             np.float64((1 - beta2 ** step) ** 0.5), np.int32(decoupled), np.int32(maximize)))
    if single:
        adam_step(*([column[k] for k in single] for column in (params, grads, exp_avgs, exp_avg_sqs)),
                  [steps[k] for k in single], lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                  decoupled=decoupled, maximize=maximize,
                  max_exp_avg_sqs=[max_exp_avg_sqs[k] for k in single] if amsgrad else None)


# ---- NumPy references: the math each kernel does, on the CPU ----

def log_softmax_reference(x: np.ndarray, dim: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def softmax_reference(x: np.ndarray, dim: int = -1) -> np.ndarray:
    return np.exp(log_softmax_reference(x, dim))


def _logsumexp_rows(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1)
    return m + np.log(np.exp(x - m[:, None]).sum(axis=1))


def cross_entropy_reference(logits: np.ndarray, target: np.ndarray, ignore_index: int = -100,
                            reduction: str = "mean") -> tuple:
    lse = _logsumexp_rows(logits)
    keep = target != ignore_index
    picked = np.take_along_axis(logits, np.where(keep, target, 0)[:, None], axis=1)[:, 0]
    losses = np.where(keep, lse - picked, 0).astype(logits.dtype)
    if reduction == "none":
        return losses, lse
    total = losses.sum(dtype=logits.dtype)
    return (total if reduction == "sum" else (total / keep.sum()).astype(logits.dtype)), lse


def cross_entropy_backward_reference(grad_loss, logits: np.ndarray, target: np.ndarray, lse: np.ndarray,
                                     ignore_index: int = -100, reduction: str = "mean") -> np.ndarray:
    keep = target != ignore_index
    grad_row = np.broadcast_to(np.asarray(grad_loss, logits.dtype), keep.shape)
    if reduction == "mean":
        grad_row = grad_row / keep.sum()
    onehot = np.zeros_like(logits)
    onehot[np.arange(len(target))[keep], target[keep]] = 1
    scale = np.where(keep, grad_row, 0).astype(logits.dtype)[:, None]
    return scale * (np.exp(logits - lse[:, None]) - onehot)


def layer_norm_reference(x: np.ndarray, normalized_ndim: int, weight=None, bias=None, eps: float = 1e-5) -> tuple:
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + x.dtype.type(eps))
    y = (x - mean) * rstd
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    lead = x.shape[:x.ndim - normalized_ndim]
    return y, mean.reshape(lead), rstd.reshape(lead)


def layer_norm_backward_reference(grad: np.ndarray, x: np.ndarray, mean: np.ndarray, rstd: np.ndarray,
                                  weight=None, bias_defined: bool = False) -> tuple:
    normalized_ndim = x.ndim - mean.ndim
    axes = tuple(range(mean.ndim, x.ndim))
    expand = (...,) + (None,) * normalized_ndim
    xhat = (x - mean[expand]) * rstd[expand]
    g = grad * weight if weight is not None else grad
    grad_x = rstd[expand] * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    lead_axes = tuple(range(mean.ndim))
    grad_weight = (grad * xhat).sum(axis=lead_axes) if weight is not None else None
    grad_bias = grad.sum(axis=lead_axes) if bias_defined else None
    return grad_x, grad_weight, grad_bias


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[x.dtype])(x)


def gelu_reference(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def gelu_backward_reference(grad: np.ndarray, x: np.ndarray, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
        return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x))
    cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
    return grad * (cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi))


def adam_step_reference(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr: float, beta1: float, beta2: float,
                        eps: float, weight_decay: float = 0.0, decoupled: bool = False, maximize: bool = False,
                        max_exp_avg_sqs=None) -> None:
    for k, (w, g, exp_avg, exp_avg_sq, step) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, steps)):
        g = -g if maximize else g
        if weight_decay != 0:
            if decoupled:
                w *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * w
        exp_avg += (1 - beta1) * (g - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (g * g)
        if max_exp_avg_sqs is not None:
            np.maximum(max_exp_avg_sqs[k], exp_avg_sq, out=max_exp_avg_sqs[k])
            denom = np.sqrt(max_exp_avg_sqs[k])
        else:
            denom = np.sqrt(exp_avg_sq)
        denom /= (1 - beta2 ** step) ** 0.5
        denom += eps
        w -= (lr / (1 - beta1 ** step)) * (exp_avg / denom)


# one launch or one per parameter: the same math
adam_multi_tensor_step_reference = adam_step_reference
