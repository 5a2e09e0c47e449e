"""torch.onnx.symbolic_opset11: torch's symbolic functions for opset 11, which custom symbolic
functions call to build graph nodes (torchvision's nms calls ``opset11.unsqueeze``). chainrule's
exporter builds no TorchScript graph and never calls a symbolic function, so this module is empty:
it is here for the libraries that import it when they register their symbolics."""

from __future__ import annotations

__all__: list[str] = []
