"""torch.quantization: torch's older spelling of torch.ao.quantization (the Dynamic Quantization
tutorials call ``torch.quantization.quantize_dynamic``); the same objects."""

from ..ao.quantization import DeQuantStub, QConfig, QuantStub, default_dynamic_qconfig, quantize_dynamic

__all__ = ["DeQuantStub", "QConfig", "QuantStub", "default_dynamic_qconfig", "quantize_dynamic"]
