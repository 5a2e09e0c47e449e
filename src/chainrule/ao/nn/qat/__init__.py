"""torch.ao.nn.qat: float layers that fake-quantize their weight on every forward (the
``weight_fake_quant`` their qconfig makes), for quantization-aware training; prepare_qat swaps
them in and convert turns them into quantized layers."""

from __future__ import annotations

from ...._naming import in_torchs_words
from ....nn import functional as F
from ....nn.modules.conv import Conv2d as _FloatConv2d
from ....nn.modules.linear import Linear as _FloatLinear
from ....nn.parameter import Parameter

__all__ = ["Conv2d", "Linear"]


def missing_qconfig() -> AssertionError:
    return in_torchs_words(AssertionError("qconfig must be provided for QAT module"))


def _check_float_module(cls, mod) -> None:
    if type(mod) is not cls._FLOAT_MODULE:
        raise AssertionError(f"qat.{cls.__name__}.from_float only works for {cls._FLOAT_MODULE.__name__}, "
                             f"got {type(mod).__name__}")
    if not hasattr(mod, "qconfig"):
        raise AssertionError("Input float module must have qconfig defined")
    if not mod.qconfig:
        raise AssertionError("Input float module must have a valid qconfig")


class Linear(_FloatLinear):
    """torch.ao.nn.qat.Linear: ``F.linear(x, weight_fake_quant(weight), bias)``."""

    _FLOAT_MODULE = _FloatLinear

    def __init__(self, in_features: int, out_features: int, bias: bool = True, qconfig=None, device=None,
                 dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__(in_features, out_features, bias, **factory_kwargs)
        if not qconfig:
            raise missing_qconfig()
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight(factory_kwargs=factory_kwargs)

    def forward(self, input):
        return F.linear(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        """The QAT layer sharing ``mod``'s weight and bias Parameters (a LinearReLU gives its Linear)."""
        _check_float_module(cls, mod)
        if not isinstance(mod, _FloatLinear):
            mod = mod[0]
        qat_linear = cls(mod.in_features, mod.out_features, bias=mod.bias is not None, qconfig=mod.qconfig)
        qat_linear.weight = mod.weight
        qat_linear.bias = mod.bias
        return qat_linear

    def to_float(self):
        linear = _FloatLinear(self.in_features, self.out_features, self.bias is not None)
        linear.weight = Parameter(self.weight.detach())
        if self.bias is not None:
            linear.bias = Parameter(self.bias.detach())
        linear.train(self.training)
        return linear


class Conv2d(_FloatConv2d):
    """torch.ao.nn.qat.Conv2d: the convolution with ``weight_fake_quant(weight)``."""

    _FLOAT_MODULE = _FloatConv2d

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", qconfig=None, device=None,
                 dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias, padding_mode=padding_mode, **factory_kwargs)
        if not qconfig:
            raise missing_qconfig()
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight(factory_kwargs=factory_kwargs)

    def forward(self, input):
        return self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        """The QAT layer sharing ``mod``'s weight and bias Parameters (a ConvReLU2d gives its Conv2d)."""
        _check_float_module(cls, mod)
        if not isinstance(mod, _FloatConv2d):
            mod = mod[0]
        qat_conv = cls(mod.in_channels, mod.out_channels, mod.kernel_size, stride=mod.stride, padding=mod.padding,
                       dilation=mod.dilation, groups=mod.groups, bias=mod.bias is not None,
                       padding_mode=mod.padding_mode, qconfig=mod.qconfig)
        qat_conv.weight = mod.weight
        qat_conv.bias = mod.bias
        return qat_conv

    def to_float(self):
        """The float Conv2d with this layer's weight and bias (detached copies' Parameters)."""
        conv = _FloatConv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                            self.dilation, self.groups, self.bias is not None, self.padding_mode)
        conv.weight = Parameter(self.weight.detach())
        if self.bias is not None:
            conv.bias = Parameter(self.bias.detach())
        return conv
