"""The integer arithmetic of torch's static quantized layers on x86 (fbgemm's requantization).

A quantized linear or convolution multiplies uint8 activations (less their zero point) by int8
weights and sums in int32; the sums are exact, so they are computed here as float64 products of
small integers (exact below 2**53) by the float layers' own BLAS paths. fbgemm then turns each
int32 sum into the output's uint8 in float32, per output channel ``j``:

    act_times_w_scale = x_scale * w_scale[j]                  (float32)
    multiplier        = act_times_w_scale / out_scale         (float32)
    y = round_half_even((sum + bias[j] / act_times_w_scale) * multiplier) + out_zero_point

clamped to 0..255 (to the zero point from below when a ReLU is fused). Measured against torch
2.13's x86 engine on random layers: 0 of 2560 linear and 0 of 6176 conv outputs differ.

The int32 sums are exact only where torch's kernel adds in int32: with AVX512-VNNI (vpdpbusd), in
fbgemm's GEMM and in the oneDNN kernels torch's x86 engine then picks for symmetric-weight
convolutions. Without it, torch runs every convolution and linear layer on fbgemm, whose AVX2
kernels (GEMM, im2col, groupwise, depthwise) multiply with vpmaddubsw: the raw uint8 activations
and int8 weights of two neighbouring positions along the reduction (input features; for a
convolution (kh, kw, in-channel), in-channel fastest, per group) are multiplied and added
*saturated to int16*, and only those pair sums are added in int32 (torch's reduce_range, 7-bit
activations, exists to keep them in range). ``saturated_pair_excess`` replays that where this CPU
would run it. Measured on an AVX2 CPU (torch 2.13; fbgemm dispatches on the CPU's features, so
ATEN_CPU_CAPABILITY=default leaves these bits as they are): the exact sums left 27 of 9600 linear,
78 of 11448 conv and 42 of 46080 depthwise outputs of the compat tests' layers, 11661 of 37734
outputs of thirteen heavily saturating conv shapes (3x3 / 5x5 / 2x2 / 1x1, strided, dilated,
grouped, depthwise) and 53 of 1918 of nine linear shapes (1 to 4096 features, a nonzero weight
zero point) different from torch's; with the replay, 0 of each.
"""

from __future__ import annotations

import numpy as np

from ..... import _dtype, cpu
from .....nn.modules.module import Module
from .....ops import quantized as _quantized
from .....tensor import Tensor


def refuse_float_input(x: Tensor, kernel: str) -> None:
    """torch's error for a float tensor reaching a quantized layer (a missing QuantStub)."""
    if not _quantized.is_quantized(x):
        raise NotImplementedError(
            f"Could not run '{kernel}' with arguments from the 'CPU' backend. This could be because the operator "
            "doesn't exist for this backend, or was omitted during the selective/custom build process (if using "
            "custom build). If you are a Facebook employee using PyTorch on mobile, please visit "
            f"https://fburl.com/ptmfixes for possible resolutions. '{kernel}' is only available for these "
            "backends: [QuantizedCPU, ...].")


def weight_scales(qweight: Tensor) -> np.ndarray:
    """The weight's scales as float32, one per output channel (per-tensor weights repeat theirs)."""
    quantizer = qweight._quantizer
    channels = qweight.shape[0]
    return np.broadcast_to(np.asarray(quantizer.scale, np.float32), (channels,)).astype(np.float32)


def weight_zero_points(qweight: Tensor) -> np.ndarray:
    return np.broadcast_to(np.asarray(qweight._quantizer.zero_point, np.int64), (qweight.shape[0],))


def centred_weight(qweight: Tensor) -> np.ndarray:
    """The weight's integers less their zero points, as float64 (exact)."""
    along_channels = (-1,) + (1,) * (qweight._data.ndim - 1)
    return qweight._data.astype(np.float64) - weight_zero_points(qweight).reshape(along_channels)


def centred_input(qx: Tensor) -> np.ndarray:
    return qx._data.astype(np.float64) - qx._quantizer.zero_point


# torch's x86 kernels add uint8 x int8 products exactly in int32 only with AVX512-VNNI; fbgemm's
# AVX2 kernels (and, by its source, its AVX512 ones without VNNI) saturate pair sums; a CPU
# without AVX2 runs fbgemm's exact reference kernels
SATURATES_PAIR_SUMS = bool(cpu.get_capabilities().get("avx2")) and not cpu._is_vnni_supported()
_INT16_MIN, _INT16_MAX = -32768, 32767
# a uint8 pair (a0, a1) times int8 weights (w0, w1) leaves int16 only if a0 + a1 >= 257 and
# |w0| + |w1| >= 129: |a0*w0 + a1*w1| <= (a0 + a1) * 128 and <= 255 * (|w0| + |w1|)
_SMALLEST_OVERFLOWING_ACTIVATIONS = 257
_SMALLEST_OVERFLOWING_WEIGHTS = 129


def pair_sums_can_saturate(qx: Tensor) -> bool:
    """Whether torch's kernel on this CPU saturates pair sums and two of ``qx``'s raw values (or
    its zero point, which pads a convolution's input) could add up to an overflowing pair."""
    if not SATURATES_PAIR_SUMS:
        return False
    largest = max(int(qx._data.max(initial=0)), qx.q_zero_point())
    return 2 * largest >= _SMALLEST_OVERFLOWING_ACTIVATIONS


def saturated_pair_excess(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """What fbgemm's int16-saturated pair sums add beyond the exact products, as int64 (M, G, N):
    ``activations`` (M, G, K) raw uint8 rows, ``weights`` (G, N, K) raw int8 rows, G groups each
    reducing over K positions paired (0, 1), (2, 3), ... (an odd last one paired with a zero).
    Only the rows and outputs whose pair can overflow are multiplied out, pair by pair."""
    rows, groups, depth = activations.shape
    outputs = weights.shape[1]
    excess = np.zeros((rows, groups, outputs), np.int64)
    if excess.size == 0 or depth == 0:
        return excess
    if depth % 2:
        activations = np.concatenate([activations, np.zeros((rows, groups, 1), activations.dtype)], axis=2)
        weights = np.concatenate([weights, np.zeros((groups, outputs, 1), weights.dtype)], axis=2)
    activation_pairs = activations.reshape(rows, groups, -1, 2)
    weight_pairs = weights.reshape(groups, outputs, -1, 2).astype(np.int32)
    large_activations = activation_pairs.sum(axis=3, dtype=np.int16) >= _SMALLEST_OVERFLOWING_ACTIVATIONS
    large_weights = np.abs(weight_pairs).sum(axis=3) >= _SMALLEST_OVERFLOWING_WEIGHTS
    for group, pair in zip(*np.nonzero(large_activations.any(axis=0) & large_weights.any(axis=1))):
        row_index = np.flatnonzero(large_activations[:, group, pair])
        output_index = np.flatnonzero(large_weights[group, :, pair])
        a = activation_pairs[row_index, group, pair].astype(np.int32)
        w = weight_pairs[group, output_index, pair]
        sums = a[:, :1] * w[:, 0] + a[:, 1:] * w[:, 1]
        excess[row_index[:, None], group, output_index] += np.clip(sums, _INT16_MIN, _INT16_MAX) - sums
    return excess


def requantize(sums: np.ndarray, channel_axis: int, x_scale: float, qweight: Tensor, bias, out_scale: float,
               out_zero_point: int, relu: bool = False, dtype=_dtype.quint8) -> Tensor:
    """The quint8 tensor fbgemm makes of exact int32 ``sums`` (output channels on ``channel_axis``)."""
    along = [1] * sums.ndim
    along[channel_axis] = -1
    act_times_w_scale = (np.float32(x_scale) * weight_scales(qweight)).reshape(along)
    multiplier = act_times_w_scale / np.float32(out_scale)
    values = sums.astype(np.float32)
    if bias is not None:
        values = values + np.asarray(bias, np.float32).reshape(along) / act_times_w_scale
    low = out_zero_point if relu else dtype.quant_min
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.rint((values * multiplier).astype(np.float64)) + out_zero_point
    integers = np.clip(rounded, low, dtype.quant_max).astype(dtype.np)
    return _quantized.make_quantized(integers, dtype, _quantized.per_tensor_affine, float(out_scale),
                                     int(out_zero_point))


def requantize_float(values: np.ndarray, scale: float, zero_point: int, dtype=_dtype.quint8) -> Tensor:
    """Float32 results of a quantized elementwise op (add, mul) stored as torch's AVX2 kernels store
    them: ``round_half_even(v * (1 / scale)) + zero_point``, the inverse scale in float32."""
    inverse = np.float32(1) / np.float32(scale)
    with np.errstate(over="ignore", invalid="ignore"):
        return store_rounded(values.astype(np.float32) * inverse, scale, zero_point, dtype)


def store_rounded(levels: np.ndarray, scale: float, zero_point: int, dtype=_dtype.quint8) -> Tensor:
    """The quantized tensor whose integers are ``round_half_even(levels) + zero_point``, clamped."""
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.rint(np.asarray(levels, np.float32).astype(np.float64)) + zero_point
    integers = np.clip(rounded, dtype.quant_min, dtype.quant_max).astype(dtype.np)
    return _quantized.make_quantized(integers, dtype, _quantized.per_tensor_affine, float(scale), int(zero_point))


def quantize_weight(weight: Tensor, observer) -> Tensor:
    """A float weight quantized with the scales its (already run) observer chose, as torch's
    _quantize_weight: per tensor, or per channel along the observer's ``ch_axis``."""
    scale, zero_point = observer.calculate_qparams()
    float_weight = Tensor._make(np.asarray(weight.detach()._data, np.float32))
    scheme = observer.qscheme
    if scheme in (_quantized.per_tensor_affine, _quantized.per_tensor_symmetric):
        return _quantized.quantize_per_tensor(float_weight, float(scale._data[0]), int(zero_point._data[0]),
                                              observer.dtype)
    if scheme in (_quantized.per_channel_affine, _quantized.per_channel_symmetric):
        return _quantized.quantize_per_channel(float_weight, Tensor._make(scale._data.astype(np.float64)),
                                               Tensor._make(zero_point._data.astype(np.int64)), observer.ch_axis,
                                               observer.dtype)
    raise NotImplementedError(f"chainrule cannot quantize a weight with qscheme {scheme!r} yet")


class WeightedLayer(Module):
    """What the quantized Linear and Conv2d share: the int8 weight and the float32 bias, read through
    ``weight()``/``bias()`` and set together, as torch's."""

    def weight(self) -> Tensor:
        return self._weight

    def bias(self):
        return self._bias

    def set_weight_bias(self, w: Tensor, b) -> None:
        self._weight = w
        self._bias = None if b is None else Tensor._make(np.array(b.detach()._data, dtype=np.float32))
