"""Fake quantization: torch.fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine.

The forward rounds a float tensor onto the integer grid and straight back to floats,
``(clamp(round(x * (1 / scale)) + zero_point, quant_min, quant_max) - zero_point) * scale``, so
training sees the values the quantized model will compute with. The backward is the
straight-through estimator: the gradient passes unchanged where the unclamped integer lay inside
[quant_min, quant_max] and is 0 where it was clamped (torch's "cachemask" kernels).

The float steps follow torch's CPU kernels: ``1 / scale`` in float32, ``x * inv_scale`` in the
input's precision (float32 for float16), rounding half to even, and the dequantizing product
rounded once into the input's dtype.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from ..autograd.function import Function
from ..tensor import Tensor, _wrap_dim
from .activation import _mask_mul
from .elementwise import refuse_kernel

__all__ = ["fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine"]
__not_methods__ = {"fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine"}

def _x86_int64(values: np.ndarray) -> np.ndarray:
    """C's static_cast<int64_t> of floats on x86: NaN, inf and out-of-range values become INT64_MIN
    (the "integer indefinite"), which a later clamp sends to quant_min."""
    finite = np.isfinite(values) & (np.abs(values) < 2.0 ** 63)
    return np.where(finite, np.where(finite, values, 0).astype(np.int64), np.iinfo(np.int64).min)


def _fake_quantize_array(x: np.ndarray, scale, zero_point, quant_min: int, quant_max: int,
                         per_channel: bool = False, float_zero_point: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(fake-quantized x, mask of the positions the gradient passes); ``scale``/``zero_point`` are
    scalars or arrays broadcasting against ``x``.

    torch's two kernels differ at the edges and in the last bit: the per-tensor one clamps the
    float before any cast (+inf lands on quant_max, NaN on quant_min) and dequantizes in float32;
    the per-channel one casts to an integer first (NaN and both infinities land on quant_min) and
    dequantizes in double, rounding once into the input's dtype."""
    scale = np.asarray(scale, np.float32)
    compute = np.float64 if x.dtype == np.float64 else np.float32
    scaled = x.astype(compute, copy=False) * (np.float32(1) / scale).astype(compute)
    if float_zero_point:  # lrintf(zero_point + x * inv_scale), in float32
        zero = np.asarray(zero_point, np.float32)
        quantized = np.rint(zero + scaled.astype(np.float32))
    else:  # zero_point + nearbyint(x * inv_scale): the integer meets a float, so the sum is a float
        zero = np.asarray(zero_point, np.int64).astype(np.float32)
        quantized = zero.astype(compute) + np.rint(scaled)
    if per_channel:
        quantized = _x86_int64(quantized)
    with np.errstate(invalid="ignore"):
        mask = (quantized >= quant_min) & (quantized <= quant_max)
    if per_channel:
        clamped = np.clip(quantized, quant_min, quant_max).astype(np.float64)
        return ((clamped - zero.astype(np.float64)) * scale.astype(np.float64)).astype(x.dtype), mask
    clamped = np.fmin(np.fmax(quantized, compute(quant_min)), compute(quant_max)).astype(np.float32)
    return ((clamped - zero) * scale).astype(x.dtype), mask


class _FakeQuantizeCachemask(Function):
    _array_forward = True
    label = "fake_quantize"
    rule = "straight-through: the gradient passes where the value was inside [quant_min, quant_max], 0 where clamped"

    @staticmethod
    def forward(ctx, x, scale, zero_point, quant_min, quant_max, per_channel=False, float_zero_point=False):
        out, ctx.mask = _fake_quantize_array(x, scale, zero_point, quant_min, quant_max, per_channel,
                                             float_zero_point)
        return out

    @staticmethod
    def backward(ctx, grad):
        # d(fake_quant(x))/dx = 1 inside the integer range, 0 where the clamp acted
        return _mask_mul(grad, ctx.mask)


class FakeQuantizePerTensorAffineCachemask(_FakeQuantizeCachemask):
    pass


class FakeQuantizePerTensorAffineCachemaskTensorQparams(_FakeQuantizeCachemask):
    pass


class FakeQuantizePerChannelAffineCachemask(_FakeQuantizeCachemask):
    pass


_RANGE_ERROR = "`quant_min` should be less than or         equal to `quant_max`."
_ZERO_POINT_ERROR = "`zero_point` must be between `quant_min` and `quant_max`."


def _float_input(input: Tensor, kernel: str) -> None:
    if input._data.dtype.kind != "f" or input.dtype is _dtype.bfloat16:
        refuse_kernel(input, kernel)


def fake_quantize_per_tensor_affine(input: Tensor, scale, zero_point, quant_min: int, quant_max: int) -> Tensor:
    """torch.fake_quantize_per_tensor_affine: ``input`` quantized with one ``scale`` and
    ``zero_point`` (numbers or one-element tensors) and dequantized again, same shape and dtype;
    the gradient passes straight through where no clamping happened."""
    tensor_qparams = isinstance(scale, Tensor)
    if tensor_qparams:
        if scale.numel() != 1:
            raise RuntimeError(f"a Tensor with {scale.numel()} elements cannot be converted to Scalar")
        if zero_point.numel() != 1:
            raise RuntimeError(f"a Tensor with {zero_point.numel()} elements cannot be converted to Scalar")
        scale, zero_point = float(scale._data.reshape(())), int(zero_point._data.reshape(()))
    if quant_min > quant_max:
        raise RuntimeError(_RANGE_ERROR)
    if not quant_min <= zero_point <= quant_max:
        raise RuntimeError(_ZERO_POINT_ERROR)
    _float_input(input, "fake_quantize_tensor_cachemask_kernel_type_handling")
    op = FakeQuantizePerTensorAffineCachemaskTensorQparams if tensor_qparams else FakeQuantizePerTensorAffineCachemask
    return op.apply(input, scale=float(scale), zero_point=int(zero_point), quant_min=int(quant_min),
                    quant_max=int(quant_max))


def fake_quantize_per_channel_affine(input: Tensor, scale: Tensor, zero_point: Tensor, axis: int,
                                     quant_min: int, quant_max: int) -> Tensor:
    """torch.fake_quantize_per_channel_affine: ``input`` quantized and dequantized with one scale
    and zero point per slice along ``axis`` (``scale`` float32, ``zero_point`` int32 or float);
    the gradient passes straight through where no clamping happened."""
    if scale.dtype not in (_dtype.float32, _dtype.bfloat16):
        raise RuntimeError(f"Scale must be Float or BFloat16, found {_dtype.scalar_name(scale.dtype)}")
    if zero_point.dtype not in (_dtype.int32, _dtype.float32, _dtype.float16):
        raise RuntimeError(f"Zero-point must be Int32, Float or Half, found {_dtype.scalar_name(zero_point.dtype)}")
    if scale.dim() != 1:
        raise RuntimeError("scale should be a 1-D tensor")
    if zero_point.dim() != 1:
        raise RuntimeError("zero point should be a 1-D tensor")
    if scale.numel() != zero_point.numel():
        raise RuntimeError("scale and zero-point need to have the same dimensions")
    if scale.numel() != input.shape[_wrap_dim(axis, input.dim())]:
        raise RuntimeError("dimensions of scale and zero-point are not consistent with input tensor")
    if quant_min > quant_max:
        raise RuntimeError(_RANGE_ERROR)
    float_zero_point = zero_point.dtype is not _dtype.int32
    zeros = np.asarray(zero_point._data)
    if not float_zero_point and zeros.size and (zeros.min() < quant_min or zeros.max() > quant_max):
        raise RuntimeError(_ZERO_POINT_ERROR)
    if not 0 <= axis <= input.dim():
        raise RuntimeError("`axis` must be between 0 and number of dimensions of input")
    _float_input(input, "fake_quantize_channel_cachemask_cpu_type_handling")
    along_axis = (-1,) + (1,) * (input.dim() - 1 - axis)
    return FakeQuantizePerChannelAffineCachemask.apply(
        input, scale=np.asarray(scale._data, np.float32).reshape(along_axis),
        zero_point=zeros.reshape(along_axis), quant_min=int(quant_min), quant_max=int(quant_max),
        per_channel=True, float_zero_point=float_zero_point)
