"""torch.ao.quantization.qconfig: a QConfig names the observers (as factories) that watch a layer's
activations and its weight; prepare() makes one of each per layer."""

from __future__ import annotations

import warnings
from collections import namedtuple

from ... import _torch_function, cpu
from ...nn.modules.module import Module
from .fake_quantize import (
    FakeQuantize,
    FusedMovingAvgObsFakeQuantize,
    default_fake_quant,
    default_fused_act_fake_quant,
    default_fused_per_channel_wt_fake_quant,
    default_fused_wt_fake_quant,
    default_per_channel_weight_fake_quant,
    default_weight_fake_quant,
)
from .observer import (
    HistogramObserver,
    MovingAverageMinMaxObserver,
    default_dynamic_quant_observer,
    default_float_qparams_observer,
    default_observer,
    default_per_channel_weight_observer,
    default_placeholder_observer,
    default_weight_observer,
)

__all__ = ["QConfig", "default_dynamic_qconfig", "default_per_channel_qconfig", "default_qat_qconfig",
           "default_qat_qconfig_v2", "default_qconfig", "float_qparams_weight_only_qconfig", "get_default_qat_qconfig",
           "get_default_qconfig"]


class QConfig(namedtuple("QConfig", ["activation", "weight"])):
    """torch.ao.quantization.QConfig: the observer classes (or ``with_args`` factories) for a
    layer's activations and its weight; instances are refused, since each layer needs its own."""

    __slots__ = ()

    def __new__(cls, activation, weight):
        if isinstance(activation, Module) or isinstance(weight, Module):
            raise ValueError("QConfig received observer instance, please pass observer class instead. "
                             "Use MyObserver.with_args(x=1) to override arguments to constructor if needed")
        return super().__new__(cls, activation, weight)


default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
default_per_channel_qconfig = QConfig(activation=default_observer, weight=default_per_channel_weight_observer)
default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer, weight=default_weight_observer)
float_qparams_weight_only_qconfig = QConfig(activation=default_placeholder_observer,
                                            weight=default_float_qparams_observer)
default_qat_qconfig = QConfig(activation=default_fake_quant, weight=default_weight_fake_quant)
# the fused observer + fake quantizer: the same statistics in one step per call
default_qat_qconfig_v2 = QConfig(activation=default_fused_act_fake_quant, weight=default_fused_wt_fake_quant)

_SUPPORTED_BACKENDS = ["fbgemm", "x86", "qnnpack", "onednn"]


def get_default_qconfig(backend: str = "x86", version: int = 0) -> QConfig:
    """torch.ao.quantization.get_default_qconfig: the post-training qconfig torch recommends for
    ``backend``: a histogram observer on activations (the range halved on x86/fbgemm, whose
    16-bit intermediate sums could otherwise saturate), symmetric qint8 weights, per channel
    except on qnnpack."""
    if backend not in _SUPPORTED_BACKENDS:
        raise AssertionError(f"backend: {backend} not supported. backend must be one of {_SUPPORTED_BACKENDS}")
    if version != 0:
        raise AssertionError(f"Version number: {version} in get_default_qconfig is not supported. "
                             "Version number must be 0")
    if backend == "qnnpack":
        return QConfig(activation=HistogramObserver.with_args(reduce_range=False), weight=default_weight_observer)
    if backend == "onednn" and not cpu._is_vnni_supported():
        # torch's caution: without VNNI, x86 int8 kernels add each pair of products saturated to int16
        # (vpmaddubsw), which this qconfig's full-range (reduce_range=False) activations can overflow
        warnings.warn("Default qconfig of oneDNN backend with reduce_range of false may have accuracy issues "
                      "on CPU without Vector Neural Network Instruction support.", UserWarning,
                      stacklevel=_torch_function.user_stacklevel())
    reduce_range = backend in ("fbgemm", "x86")
    return QConfig(activation=HistogramObserver.with_args(reduce_range=reduce_range),
                   weight=default_per_channel_weight_observer)


def get_default_qat_qconfig(backend: str = "x86", version: int = 1) -> QConfig:
    """torch.ao.quantization.get_default_qat_qconfig: the quantization-aware-training qconfig torch
    recommends for ``backend``: moving-average fake quantizers on activations (the range halved
    on x86/fbgemm) and symmetric qint8 weights, per channel except on qnnpack; version 1 (the
    default) builds the fused observer + fake quantizer, version 0 the separate FakeQuantize."""
    if backend not in _SUPPORTED_BACKENDS:
        raise AssertionError(f"backend: {backend} not supported. backend must be one of {_SUPPORTED_BACKENDS}")
    if version not in (0, 1):
        raise AssertionError(f"Version number: {version}in get_default_qat_qconfig is not supported. "
                             "Version number must be 0 or 1")
    fake_quantize = FusedMovingAvgObsFakeQuantize if version == 1 else FakeQuantize
    if backend == "onednn":
        activation = fake_quantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255)
    else:
        activation = fake_quantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                             reduce_range=backend != "qnnpack")
    if backend == "qnnpack":
        weight = default_fused_wt_fake_quant if version == 1 else default_weight_fake_quant
    else:
        weight = default_fused_per_channel_wt_fake_quant if version == 1 else default_per_channel_weight_fake_quant
    return QConfig(activation=activation, weight=weight)
