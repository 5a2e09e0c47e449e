"""torch.ao.nn.quantized's static modules: Quantize / DeQuantize at the model's edges, the layers
convert() swaps in (Linear, Conv2d, ReLU6) and the quantized residual functions (QFunctional)."""

from __future__ import annotations

import numpy as np

from .....nn.modules.module import Module
from .....ops import quantized as _quantized
from .....tensor import Tensor
from .batchnorm import BatchNorm2d
from .conv import Conv2d
from .functional_modules import FloatFunctional, QFunctional
from .linear import Linear

__all__ = ["BatchNorm2d", "Conv2d", "DeQuantize", "Dropout", "FloatFunctional", "Linear", "QFunctional", "Quantize", "ReLU6"]


class Quantize(Module):
    """torch.ao.nn.quantized.Quantize: float32 in, ``dtype`` out, with a fixed scale and zero point
    (kept as one-element buffers, as torch keeps them). What convert() makes of a QuantStub."""

    def __init__(self, scale: float, zero_point: int, dtype, factory_kwargs=None) -> None:
        super().__init__()
        self.register_buffer("scale", Tensor._make(np.array([scale], np.float32)))
        self.register_buffer("zero_point", Tensor._make(np.array([zero_point], np.int64)))
        self.dtype = dtype

    def forward(self, X: Tensor) -> Tensor:
        return _quantized.quantize_per_tensor(X, float(self.scale._data[0]), int(self.zero_point._data[0]),
                                              self.dtype)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        scale, zero_point = mod.activation_post_process.calculate_qparams()
        return cls(float(scale._data[0]), int(zero_point._data[0]), mod.activation_post_process.dtype)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, zero_point={self.zero_point}, dtype=torch.{self.dtype.name}"


class DeQuantize(Module):
    """torch.ao.nn.quantized.DeQuantize: a quantized tensor back to float32 (what convert() makes
    of a DeQuantStub)."""

    def forward(self, Xq: Tensor) -> Tensor:
        return Xq.dequantize()

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        return cls()


class ReLU6(Module):
    """torch.ao.nn.quantized.ReLU6: clamps the stored integers to [zero_point, the integer of 6.0]."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def _get_name(self) -> str:
        return "QuantizedReLU6"

    def forward(self, input: Tensor) -> Tensor:
        quantizer = input._quantizer
        six = _quantized.quantize_array(np.array(6.0, np.float32), quantizer.scale, quantizer.zero_point,
                                        quantizer.dtype)
        integers = np.clip(input._data, input._data.dtype.type(quantizer.zero_point), six)
        return _quantized.make_quantized(integers, quantizer.dtype, quantizer.scheme, quantizer.scale,
                                         quantizer.zero_point)

    @staticmethod
    def from_float(mod, use_precomputed_fake_quant: bool = False):
        return ReLU6(mod.inplace)



class Dropout(Module):
    """torch.ao.nn.quantized.Dropout: passes quantized values through (a model's dropout, kept so
    that the float model's structure and state_dict survive convert)."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p, self.inplace = p, inplace

    def _get_name(self) -> str:
        return "QuantizedDropout"

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, input: Tensor) -> Tensor:
        return input

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        return cls(mod.p, mod.inplace)
