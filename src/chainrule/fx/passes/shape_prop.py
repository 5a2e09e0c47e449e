"""torch.fx.passes.shape_prop: run a GraphModule on example inputs and record, on each node that
produced a tensor, ``node.meta['tensor_meta']`` (shape, dtype, stride, requires_grad, ...)."""

from __future__ import annotations

from typing import Any, NamedTuple

from ...tensor import Tensor
from ..interpreter import Interpreter
from ..node import Node, map_aggregate

__all__ = ["ShapeProp", "TensorMetadata"]


class TensorMetadata(NamedTuple):
    shape: Any
    dtype: Any
    requires_grad: bool
    stride: tuple
    memory_format: Any
    is_quantized: bool
    qparams: dict


def _extract_tensor_metadata(t: Tensor) -> TensorMetadata:
    import chainrule

    memory_format = None
    for candidate in (chainrule.contiguous_format, chainrule.channels_last):
        if t.is_contiguous(memory_format=candidate):
            memory_format = candidate
            break
    return TensorMetadata(t.shape, t.dtype, t.requires_grad, tuple(t.stride()), memory_format, False, {})


class ShapeProp(Interpreter):
    """``ShapeProp(gm).propagate(*example_inputs)`` runs ``gm`` and stores each tensor result's
    metadata in ``node.meta['tensor_meta']`` (a tuple or dict of them for nested results) and its
    Python type in ``node.meta['type']``; returns the module's output."""

    def run_node(self, n: Node) -> Any:
        result = super().run_node(n)
        found_tensor = False

        def describe(value):
            nonlocal found_tensor
            if isinstance(value, Tensor):
                found_tensor = True
                return _extract_tensor_metadata(value)
            return value

        metadata = map_aggregate(result, describe)
        if found_tensor:
            n.meta["tensor_meta"] = metadata
        n.meta["type"] = type(result)
        return result

    def propagate(self, *args) -> Any:
        return super().run(*args)
