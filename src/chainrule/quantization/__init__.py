"""torch.quantization: torch's older spelling of torch.ao.quantization (the Dynamic Quantization
tutorials call ``torch.quantization.quantize_dynamic``); the same objects."""

from ..ao.quantization import *  # noqa: F403
from ..ao.quantization import __all__  # noqa: F401
