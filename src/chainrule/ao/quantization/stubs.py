"""torch.ao.quantization.stubs: the markers a float model carries where quantized values begin
(QuantStub) and end (DeQuantStub). On a float model they pass their input through; prepare()
observes the QuantStub's input range and convert() swaps them for Quantize / DeQuantize."""

from __future__ import annotations

from ...nn.modules.module import Module

__all__ = ["DeQuantStub", "QuantStub", "QuantWrapper"]


class QuantStub(Module):
    """torch.ao.quantization.QuantStub: the identity until convert() makes it a Quantize."""

    def __init__(self, qconfig=None) -> None:
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class DeQuantStub(Module):
    """torch.ao.quantization.DeQuantStub: the identity until convert() makes it a DeQuantize."""

    def __init__(self, qconfig=None) -> None:
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class QuantWrapper(Module):
    """torch.ao.quantization.QuantWrapper: ``module`` between a QuantStub and a DeQuantStub (which
    inherit its ``qconfig``), so a whole float model can be quantized without editing it."""

    def __init__(self, module) -> None:
        super().__init__()
        qconfig = getattr(module, "qconfig", None)
        self.add_module("quant", QuantStub(qconfig))
        self.add_module("dequant", DeQuantStub(qconfig))
        self.add_module("module", module)
        self.train(module.training)

    def forward(self, X):
        return self.dequant(self.module(self.quant(X)))
