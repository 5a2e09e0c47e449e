"""torch.ao.nn.intrinsic.qat: the fused layers of quantization-aware training. ConvBn2d and
ConvBnReLU2d keep the BatchNorm apart and fold it into the convolution in every forward (torch's
approximate folding: the weight scaled by gamma / running std is fake-quantized, the convolution's
output is scaled back and the BatchNorm runs on it, so batch statistics still train it until
freeze_bn_stats); ConvReLU2d and LinearReLU are the QAT layers with a ReLU after them."""

from __future__ import annotations

import math

from .....nn import functional as F
from .....nn import init
from .....nn.modules.activation import ReLU
from .....nn.modules.conv import Conv2d as _FloatConv2d
from .....nn.modules.normalization import BatchNorm2d
from .....nn.parameter import Parameter
from .....nn.utils.fusion import fuse_conv_bn_weights
from .....ops import creation
from ... import intrinsic as _intrinsic
from ... import qat as _qat

__all__ = ["ConvBn2d", "ConvBnReLU2d", "ConvReLU2d", "LinearReLU", "freeze_bn_stats", "update_bn_stats"]


class ConvBn2d(_FloatConv2d):
    """torch.ao.nn.intrinsic.qat.ConvBn2d: a Conv2d and its BatchNorm2d trained with the
    BatchNorm folded into the fake-quantized weight; ``freeze_bn_stats`` stops the running
    statistics (and the BatchNorm's train mode), ``update_bn_stats`` restarts them."""

    _FLOAT_MODULE = _intrinsic.ConvBn2d
    _relu = False
    _version = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=None, padding_mode="zeros", eps=1e-05, momentum=0.1, freeze_bn=False, qconfig=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=False, padding_mode=padding_mode)
        if not qconfig:
            raise _qat.missing_qconfig()
        self.qconfig = qconfig
        self.freeze_bn = freeze_bn if self.training else True
        self.bn = BatchNorm2d(out_channels, eps, momentum, True, True)
        self.weight_fake_quant = self.qconfig.weight()
        if bias:
            self.bias = Parameter(creation.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_bn_parameters()
        if self.training and not freeze_bn:
            self.update_bn_stats()
        else:
            self.freeze_bn_stats()

    def reset_running_stats(self) -> None:
        self.bn.reset_running_stats()

    def reset_bn_parameters(self) -> None:
        self.bn.reset_running_stats()
        init.uniform_(self.bn.weight)
        init.zeros_(self.bn.bias)
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def update_bn_stats(self):
        self.freeze_bn = False
        self.bn.training = True
        return self

    def freeze_bn_stats(self):
        self.freeze_bn = True
        self.bn.training = False
        return self

    def _forward(self, input):
        # conv(x, W·γ/σ) / (γ/σ) + b, then the BatchNorm: equal to bn(conv(x, W) + b) before
        # fake quantization, so the BatchNorm still sees (and, unfrozen, tracks) the batch statistics
        if self.bn.running_var is None:
            raise AssertionError("self.bn.running_var must not be None")
        running_std = (self.bn.running_var + self.bn.eps).sqrt()
        scale_factor = self.bn.weight / running_std
        weight_shape = [1] * self.weight.dim()
        weight_shape[0] = -1
        bias_shape = [1] * self.weight.dim()
        bias_shape[1] = -1
        scaled_weight = self.weight_fake_quant(self.weight * scale_factor.reshape(weight_shape))
        if self.bias is not None:
            zero_bias = creation.zeros_like(self.bias, dtype=input.dtype)
        else:
            zero_bias = creation.zeros(self.out_channels, dtype=input.dtype)
        conv = self._conv_forward(input, scaled_weight, zero_bias)
        conv_orig = conv / scale_factor.reshape(bias_shape)
        if self.bias is not None:
            conv_orig = conv_orig + self.bias.reshape(bias_shape)
        return self.bn(conv_orig)

    def forward(self, input):
        return F.relu(self._forward(input)) if self._relu else self._forward(input)

    def train(self, mode: bool = True):
        # a frozen BatchNorm stays in eval mode whatever the model's mode
        self.training = mode
        if not self.freeze_bn:
            for module in self.children():
                module.train(mode)
        return self

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        """The QAT layer sharing the fused float module's conv and BatchNorm Parameters and buffers."""
        if type(mod) is not cls._FLOAT_MODULE:
            raise AssertionError(f"qat.{cls.__name__}.from_float only works for {cls._FLOAT_MODULE.__name__}")
        if not hasattr(mod, "qconfig"):
            raise AssertionError("Input float module must have qconfig defined")
        if not mod.qconfig:
            raise AssertionError("Input float module must have a valid qconfig")
        conv, bn = mod[0], mod[1]
        qat_convbn = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                         conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode, bn.eps, bn.momentum,
                         False, mod.qconfig)
        qat_convbn.weight = conv.weight
        qat_convbn.bias = conv.bias
        qat_convbn.bn.weight = bn.weight
        qat_convbn.bn.bias = bn.bias
        qat_convbn.bn.running_mean = bn.running_mean
        qat_convbn.bn.running_var = bn.running_var
        qat_convbn.bn.num_batches_tracked = bn.num_batches_tracked
        return qat_convbn

    def to_float(self):
        """The float Conv2d with the BatchNorm's running statistics folded in (ConvReLU2d with a
        ReLU for ConvBnReLU2d), in this layer's train/eval mode."""
        conv = _FloatConv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                            self.dilation, self.groups, self.bias is not None, self.padding_mode)
        conv.weight = Parameter(self.weight.detach())
        if self.bias is not None:
            conv.bias = Parameter(self.bias.detach())
        conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, self.bn.running_mean,
                                                      self.bn.running_var, self.bn.eps, self.bn.weight, self.bn.bias)
        float_module = _intrinsic.ConvReLU2d(conv, ReLU()) if self._relu else conv
        float_module.train(self.training)
        return float_module

    def fold_bn_weights(self) -> tuple:
        """(weight, bias) with the BatchNorm's running statistics folded in, as convert uses them."""
        return fuse_conv_bn_weights(self.weight, self.bias, self.bn.running_mean, self.bn.running_var,
                                    self.bn.eps, self.bn.weight, self.bn.bias)


class ConvBnReLU2d(ConvBn2d):
    """torch.ao.nn.intrinsic.qat.ConvBnReLU2d: ConvBn2d with a ReLU after the BatchNorm."""

    _FLOAT_MODULE = _intrinsic.ConvBnReLU2d
    _relu = True


class ConvReLU2d(_qat.Conv2d):
    """torch.ao.nn.intrinsic.qat.ConvReLU2d: the QAT Conv2d with a ReLU after it."""

    _FLOAT_MODULE = _intrinsic.ConvReLU2d

    def to_float(self):
        fused = _intrinsic.ConvReLU2d(super().to_float(), ReLU())
        fused.train(self.training)
        return fused

    def forward(self, input):
        return F.relu(self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias))


class LinearReLU(_qat.Linear):
    """torch.ao.nn.intrinsic.qat.LinearReLU: the QAT Linear with a ReLU after it."""

    _FLOAT_MODULE = _intrinsic.LinearReLU

    def forward(self, input):
        return F.relu(F.linear(input, self.weight_fake_quant(self.weight), self.bias))


_CONV_BN = (ConvBn2d, ConvBnReLU2d)


def update_bn_stats(mod) -> None:
    """torch.ao.nn.intrinsic.qat.update_bn_stats: for ``model.apply``: lets a ConvBn layer's
    BatchNorm track batch statistics again."""
    if type(mod) in _CONV_BN:
        mod.update_bn_stats()


def freeze_bn_stats(mod) -> None:
    """torch.ao.nn.intrinsic.qat.freeze_bn_stats: for ``model.apply``: freezes a ConvBn layer's
    BatchNorm at its running statistics (eval mode from then on)."""
    if type(mod) in _CONV_BN:
        mod.freeze_bn_stats()


# the modules fake-quantized as one unit: prepare observes their output, convert swaps them whole
QAT_MODULES = (_qat.Linear, _qat.Conv2d, ConvBn2d, ConvBnReLU2d, ConvReLU2d, LinearReLU)
