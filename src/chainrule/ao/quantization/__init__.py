"""torch.ao.quantization: eager-mode quantization. Static: observers and qconfigs choose scales
from calibration data; fuse_modules, prepare and convert turn a float model with QuantStub /
DeQuantStub into one of quantized layers. Dynamic: quantize_dynamic swaps Linear and LSTM layers
for ones that quantize their input per call."""

from __future__ import annotations

from . import fake_quantize, observer, qconfig
from .fake_quantize import *  # noqa: F403
from .fuse_modules import fuse_modules, fuse_modules_qat
from .observer import *  # noqa: F403
from .qconfig import *  # noqa: F403
from .quantize import (
    convert,
    default_eval_fn,
    prepare,
    prepare_qat,
    propagate_qconfig_,
    quantize,
    quantize_dynamic,
)
from .stubs import DeQuantStub, QuantStub, QuantWrapper

__all__ = ["DeQuantStub", "QuantStub", "QuantWrapper", "convert", "default_eval_fn", "fuse_modules", "fuse_modules_qat",
           "prepare", "prepare_qat", "propagate_qconfig_", "quantize", "quantize_dynamic", *fake_quantize.__all__, *observer.__all__,
           *qconfig.__all__]
