"""torch.ao.nn.quantized.dynamic.Linear and the int8 kernel it shares with the dynamic LSTM.

torch's x86 engine (fbgemm) runs a dynamic linear layer as: find the input's min and max, choose a
quint8 scale and zero point for them with the range halved to 0..127 (``reduce_range=True``, which
keeps fbgemm's 16-bit intermediate sums from saturating), quantize the input, multiply by the
qint8 weight in int32, and scale the int32 sums back to float32 before adding the float bias.
The kernel below takes the same steps, so its outputs equal torch's up to float rounding.
"""

from __future__ import annotations

import numpy as np

from ...... import _dtype
from ......ops import quantized as _quantized
from ......tensor import Tensor
from ...modules.linear import Linear as _StaticLinear

__all__ = ["Linear"]

_SMALL_SCALE_THRESHOLD = 6.1e-5  # torch's quant_utils: smaller scales are raised to this


def choose_quantization_params(x_min: float, x_max: float, quant_min: int = 0, quant_max: int = 255,
                               reduce_range: bool = True) -> tuple[float, int]:
    """torch's quant_utils::ChooseQuantizationParams (no sparsity, no power-of-two scale): the
    affine ``(scale, zero_point)`` covering [min(x_min, 0), max(x_max, 0)], computed in double."""
    if reduce_range:
        quant_min, quant_max = quant_min // 2, quant_max // 2
    x_min, x_max = min(float(np.float32(x_min)), 0.0), max(float(np.float32(x_max)), 0.0)
    scale = (x_max - x_min) / (quant_max - quant_min)
    if float(np.float32(scale)) == 0.0 or np.isinf(np.float32(1.0) / np.float32(scale)):
        scale = 0.1
    if scale < _SMALL_SCALE_THRESHOLD:
        original_scale, scale = scale, _SMALL_SCALE_THRESHOLD
        if x_min == 0:
            x_max = scale * (quant_max - quant_min)
        elif x_max == 0:
            x_min = -scale * (quant_max - quant_min)
        else:
            amplifier = _SMALL_SCALE_THRESHOLD / original_scale
            x_min, x_max = x_min * amplifier, x_max * amplifier
    zero_point_from_min = quant_min - x_min / scale
    zero_point_from_max = quant_max - x_max / scale
    zero_point_from_min_error = abs(quant_min) - abs(x_min / scale)
    zero_point_from_max_error = abs(quant_max) - abs(x_max / scale)
    initial = zero_point_from_min if zero_point_from_min_error < zero_point_from_max_error else zero_point_from_max
    zero_point = quant_min if initial < quant_min else quant_max if initial > quant_max else int(np.rint(initial))
    return float(np.float32(scale)), zero_point


def linear_dynamic(x: np.ndarray, qweight, bias: np.ndarray | None, reduce_range: bool = True) -> np.ndarray:
    """float32 ``x @ W.T + bias`` as torch's quantized::linear_dynamic computes it: ``x`` quantized to
    quint8 from its own min/max, the int32 product with the qint8 ``qweight`` scaled by
    ``x_scale * w_scale``."""
    flat = x.reshape(-1, x.shape[-1])
    x_min, x_max = (float(flat.min()), float(flat.max())) if flat.size else (0.0, 0.0)
    x_scale, x_zero_point = choose_quantization_params(x_min, x_max, reduce_range=reduce_range)
    x_int = _quantized.quantize_array(flat, x_scale, x_zero_point, _dtype.quint8).astype(np.int64)
    weight_int = qweight._data.astype(np.int64)
    sums = (x_int - x_zero_point) @ (weight_int - qweight.q_zero_point()).T
    # fbgemm's AVX2 requantization is one fused multiply-add, sums * (x_scale * w_scale) + bias,
    # rounded once: float64 holds the product exactly (measured: 0 of 4000 outputs differ from torch;
    # a float32 multiply then add left 1075 one ulp off)
    output_scale = np.float64(np.float32(x_scale) * np.float32(qweight.q_scale()))
    out = sums.astype(np.float64) * output_scale
    if bias is not None:
        out = out + bias
    return out.astype(np.float32).reshape(*x.shape[:-1], weight_int.shape[0])


def quantize_weight(weight: Tensor):
    """A float weight as quantize_dynamic's default qconfig quantizes it: per tensor, symmetric
    qint8 with scale ``max|w| / 127.5`` (float32, at least float32's eps), zero point 0
    (torch.ao.quantization.MinMaxObserver(dtype=qint8, qscheme=per_tensor_symmetric))."""
    array = np.asarray(weight.detach()._data, dtype=np.float32)
    largest = np.maximum(-np.minimum(array.min(initial=0.0), 0), np.maximum(array.max(initial=0.0), 0))
    scale = np.maximum(np.float32(largest) / np.float32(127.5), np.finfo(np.float32).eps)
    _quantized.warn_deprecated()  # torch quantizes the weight with quantize_per_tensor, which warns once
    integers = _quantized.quantize_array(array, float(scale), 0, _dtype.qint8)
    return _quantized.make_quantized(integers, _dtype.qint8, _quantized.per_tensor_affine, float(scale), 0)


class Linear(_StaticLinear):
    """torch.ao.nn.quantized.dynamic.Linear: int8 weight, float32 input and output; the input is
    quantized afresh at every call. Made by ``from_float`` (what quantize_dynamic calls). A subclass
    of the static layer, as torch's: the same packed weight and bias, state_dict layout and accessors;
    its ``scale``/``zero_point`` (of the output) go unused."""

    _version = 4

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        qlinear = cls(mod.in_features, mod.out_features, mod.bias is not None)
        qlinear.set_weight_bias(quantize_weight(mod.weight), mod.bias)
        return qlinear

    def _get_name(self) -> str:
        return "DynamicQuantizedLinear"

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, dtype=torch.{self._dtype.name}, "
                f"qscheme=torch.{self._weight.qscheme().name}")

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype is not _dtype.float32:
            raise RuntimeError(f"quantized::linear_dynamic (fbgemm): expected float input, got {x.dtype}")
        if x.shape[-1] != self.in_features:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({int(np.prod(x.shape[:-1]))}x"
                               f"{x.shape[-1]} and {self.in_features}x{self.out_features})")
        bias = None if self._bias is None else self._bias._data
        return Tensor._make(linear_dynamic(np.asarray(x._data), self._weight, bias))

