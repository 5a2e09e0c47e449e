"""torch.nn.parallel.scatter_gather: split inputs over GPUs and gather outputs back, as DataParallel
does in torch (captum's layer attributions import ``scatter`` for their ``device_ids`` option).

Tensors are cut along ``dim`` into one chunk per target device (``Tensor.chunk``, so the pieces
are differentiable); other objects are repeated, and tuples, lists, dicts and named tuples are
walked as torch walks them.
"""

from __future__ import annotations

from typing import Any

from ...tensor import Tensor

__all__ = ["scatter", "scatter_kwargs", "gather"]


def _is_namedtuple(obj) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_asdict") and hasattr(obj, "_fields")


def _cuda_device(device) -> str:
    if isinstance(device, int):
        return f"cuda:{device}"
    return str(device)


def scatter(inputs, target_gpus, dim: int = 0):
    """Slices tensors into ``len(target_gpus)`` chunks along ``dim``, one per device; objects that
    are not tensors are repeated by reference."""

    def scatter_map(obj):
        if isinstance(obj, Tensor):
            chunks = obj.chunk(len(target_gpus), dim)
            return tuple(chunk.to(_cuda_device(device)) for chunk, device in zip(chunks, target_gpus))
        if _is_namedtuple(obj):
            return [type(obj)(*args) for args in zip(*map(scatter_map, obj))]
        if isinstance(obj, tuple) and len(obj) > 0:
            return list(zip(*map(scatter_map, obj)))
        if isinstance(obj, list) and len(obj) > 0:
            return [list(i) for i in zip(*map(scatter_map, obj))]
        if isinstance(obj, dict) and len(obj) > 0:
            return [type(obj)(i) for i in zip(*map(scatter_map, obj.items()))]
        return [obj for _ in target_gpus]

    return scatter_map(inputs)


def scatter_kwargs(inputs: tuple, kwargs: dict | None, target_gpus, dim: int = 0) -> tuple[tuple, tuple]:
    """``scatter`` of the positional and keyword inputs, padded to the same number of devices."""
    scattered_inputs = scatter(inputs, target_gpus, dim) if inputs else []
    scattered_kwargs = scatter(kwargs, target_gpus, dim) if kwargs else []
    if len(scattered_inputs) < len(scattered_kwargs):
        scattered_inputs.extend(() for _ in range(len(scattered_kwargs) - len(scattered_inputs)))
    elif len(scattered_kwargs) < len(inputs):
        scattered_kwargs.extend({} for _ in range(len(scattered_inputs) - len(scattered_kwargs)))
    return tuple(scattered_inputs), tuple(scattered_kwargs)


def gather(outputs: Any, target_device, dim: int = 0) -> Any:
    """Concatenates one output per device along ``dim`` on ``target_device`` ('cpu' or a GPU index)."""
    from ... import cat

    def gather_map(outputs):
        out = outputs[0]
        if isinstance(out, Tensor):
            # torch's Gather gathers only what a scatter spread over GPUs
            if any(piece.device.type == "cpu" for piece in outputs):
                raise AssertionError("Gather function not implemented for CPU tensors")
            device = "cpu" if target_device == "cpu" else _cuda_device(target_device)
            return cat([piece.to(device) for piece in outputs], dim)
        if out is None:
            return None
        if isinstance(out, dict):
            if not all(len(out) == len(d) for d in outputs):
                raise ValueError("All dicts must have the same number of keys")
            return type(out)((k, gather_map([d[k] for d in outputs])) for k in out)
        if _is_namedtuple(out):
            return type(out)._make(map(gather_map, zip(*outputs, strict=True)))
        return type(out)(map(gather_map, zip(*outputs, strict=True)))

    return gather_map(outputs)
