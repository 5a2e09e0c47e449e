"""chainrule._C: the few names of torch's C-extension module that Python libraries reach for.

torch._C is torch's compiled core; chainrule has none. Libraries built on torch still call a
handful of its helpers from Python: torchmetrics and torchvision record each class they build with
``torch._C._log_api_usage_once`` (a no-op unless a usage logger is installed, which chainrule never
does), Lightning parses ``Module.to``'s arguments with ``torch._C._nn._parse_to`` and names
``torch._C._TensorMeta`` (the type of ``torch.Tensor``) in annotations. Nothing else of torch._C is
provided: code that needs its bindings (dispatch keys, the JIT, c10d) fails with AttributeError.
"""

from __future__ import annotations

import types

from . import _backend, _dtype
from .tensor import Tensor

__all__: list[str] = []

# torch.Tensor's metaclass; chainrule's Tensor is a plain class
_TensorMeta = type(Tensor)


class ScriptModule:
    """torch.ScriptModule: the compiled module object inside ``torch.jit.script(m)``'s result (not an
    ``nn.Module``). chainrule compiles nothing, so none is ever built; libraries name it in
    ``isinstance`` checks and annotations (Lightning's ``to_torchscript``)."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("torch.ScriptModule is built by the TorchScript compiler, which chainrule does not have")


def _log_api_usage_once(event: str) -> None:
    """Record that an API was used: torch logs only to an installed usage logger; there is none here."""


def _get_tracing_state() -> None:
    """The JIT tracer's state: None, as in torch outside ``torch.jit.trace`` (chainrule never traces)."""
    return None


def _parse_to(*args, **kwargs):
    """``(device, dtype, non_blocking, memory_format)`` from ``Tensor.to``/``Module.to``'s arguments.

    As torch, the dtype is not checked here (``Module.to`` refuses integer dtypes itself)."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    non_blocking = bool(kwargs.pop("non_blocking", False))
    kwargs.pop("copy", None)
    memory_format = kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() received an invalid combination of arguments - got unexpected keyword "
                        f"argument(s) {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, _dtype.dtype):
            dtype = arg
        elif isinstance(arg, bool):
            non_blocking = arg
        else:
            device = arg
    if device is not None:
        device = _backend.device(device)
    return device, dtype, non_blocking, memory_format


# torch._C._nn holds the nn bindings; only the argument parser is wanted from Python
_nn = types.SimpleNamespace(_parse_to=_parse_to)
