"""torch.ao.quantization: dynamic quantization (quantize_dynamic, quantize.py) and the stubs a
float model carries (torchvision's quantizable MobileNets put a QuantStub before the network and a
DeQuantStub after it). Static quantization (prepare / convert) is not here: until such a pass
replaces them, torch's stubs pass their input through unchanged, and so do these."""

from __future__ import annotations

from ...nn.modules.module import Module
from . import observer, qconfig
from .observer import *  # noqa: F403
from .qconfig import *  # noqa: F403
from .quantize import quantize_dynamic

__all__ = ["DeQuantStub", "QuantStub", "quantize_dynamic", *observer.__all__, *qconfig.__all__]


class _Stub(Module):
    """A marker module: the identity on a float model; keeps a ``qconfig`` when given one."""

    def __init__(self, qconfig=None) -> None:
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class QuantStub(_Stub):
    """Marks where a quantized model would quantize its input; the identity on a float model."""


class DeQuantStub(_Stub):
    """Marks where a quantized model would dequantize; the identity on a float model."""
