"""torch.ao.nn.intrinsic.quantized: the quantized fused layers; the ReLU is the clamp of the
requantized output to the zero point from below."""

from __future__ import annotations

from ..... import _dtype
from ...quantized.modules.conv import Conv2d as _QuantizedConv2d
from ...quantized.modules.linear import Linear as _QuantizedLinear

__all__ = ["ConvReLU2d", "LinearReLU"]


class ConvReLU2d(_QuantizedConv2d):
    """torch.ao.nn.intrinsic.quantized.ConvReLU2d: quantized conv with the ReLU fused in."""

    _relu = True

    def _get_name(self) -> str:
        return "QuantizedConvReLU2d"


class LinearReLU(_QuantizedLinear):
    """torch.ao.nn.intrinsic.quantized.LinearReLU: quantized linear with the ReLU fused in."""

    _relu = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=_dtype.qint8) -> None:
        super().__init__(in_features, out_features, bias, dtype)

    def _get_name(self) -> str:
        return "QuantizedLinearReLU"
