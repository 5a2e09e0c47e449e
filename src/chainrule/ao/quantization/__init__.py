"""torch.ao.quantization: only the stubs a float model carries (torchvision's quantizable
MobileNets put a QuantStub before the network and a DeQuantStub after it). Until a quantization
pass (prepare / convert, which chainrule does not have) replaces them, torch's stubs pass their
input through unchanged, and so do these."""

from __future__ import annotations

from ...nn.modules.module import Module

__all__ = ["DeQuantStub", "QuantStub"]


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
