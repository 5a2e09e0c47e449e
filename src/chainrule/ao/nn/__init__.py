"""torch.ao.nn: the quantized module families (quantized.dynamic for now)."""

from . import quantized  # noqa: F401

__all__ = ["quantized"]
