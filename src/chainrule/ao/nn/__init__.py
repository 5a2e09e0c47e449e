"""torch.ao.nn: the quantized module families: quantized (static; .dynamic for quantize_dynamic)
and intrinsic (fused layers, and their quantized forms)."""

from . import intrinsic, qat, quantized  # noqa: F401
from .intrinsic import qat as _intrinsic_qat  # noqa: F401  (binds chainrule.ao.nn.intrinsic.qat)

__all__ = ["intrinsic", "qat", "quantized"]
