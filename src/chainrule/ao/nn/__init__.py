"""torch.ao.nn: the quantized module families: quantized (static; .dynamic for quantize_dynamic)
and intrinsic (fused layers, and their quantized forms)."""

from . import intrinsic, quantized  # noqa: F401

__all__ = ["intrinsic", "quantized"]
