"""torch.ao: torch's "architecture optimization". chainrule has quantized tensors
(ops/quantized.py) and dynamic quantization (quantization.quantize_dynamic swapping in the
modules of nn.quantized.dynamic); no static quantization or sparsity."""

from . import nn, quantization  # noqa: F401
