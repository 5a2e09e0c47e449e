"""torch.ao.nn.quantized: quantized modules; ``dynamic`` holds the ones quantize_dynamic swaps in."""

from . import dynamic  # noqa: F401

__all__ = ["dynamic"]
