"""torch.ao.nn.quantized: static quantized modules (what convert() swaps in); ``dynamic`` holds
the ones quantize_dynamic swaps in."""

from . import dynamic  # noqa: F401
from .modules import (
    BatchNorm2d,
    Conv2d,
    DeQuantize,
    Dropout,
    FloatFunctional,
    Linear,
    QFunctional,
    Quantize,
    ReLU6,
)

__all__ = ["BatchNorm2d", "Conv2d", "DeQuantize", "Dropout", "FloatFunctional", "Linear", "QFunctional", "Quantize", "ReLU6", "dynamic"]
