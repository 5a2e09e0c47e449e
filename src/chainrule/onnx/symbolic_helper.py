"""torch.onnx.symbolic_helper: the helpers symbolic functions are written with. chainrule's exporter
translates layers and never calls a symbolic function (see ``register_custom_op_symbolic``), so
only the decorator libraries apply at import is here."""

from __future__ import annotations

__all__ = ["parse_args"]


def parse_args(*arg_descriptors: str):
    """torch's decorator converting a symbolic function's graph values by descriptor ("v", "i", "f",
    ...) before the call; with no graph to convert, it returns the function as it is."""

    def decorator(fn):
        fn._onnx_arg_descriptors = arg_descriptors
        return fn

    return decorator
