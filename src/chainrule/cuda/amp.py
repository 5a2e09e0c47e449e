"""torch.cuda.amp: the older spellings of ``amp.autocast('cuda')``, ``amp.GradScaler('cuda')`` and
``amp.custom_fwd``/``amp.custom_bwd(device_type='cuda')``, which torch deprecates with a FutureWarning
naming the new spelling."""

from __future__ import annotations

import functools
import warnings
from importlib.util import find_spec

from .. import amp as _amp
from .._torch_function import user_stacklevel

__all__ = ["amp_definitely_not_available", "autocast", "custom_bwd", "custom_fwd", "GradScaler"]


class autocast(_amp.autocast):
    """torch.cuda.amp.autocast(enabled=True, dtype=float16, cache_enabled=True)."""

    def __init__(self, enabled: bool = True, dtype=None, cache_enabled: bool = True) -> None:
        warnings.warn("`torch.cuda.amp.autocast(args...)` is deprecated. Please use `torch.amp.autocast('cuda', "
                      "args...)` instead.", FutureWarning, stacklevel=2)
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_amp.GradScaler):
    """torch.cuda.amp.GradScaler(init_scale=2**16, ...): amp.GradScaler on device 'cuda'."""

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        warnings.warn("`torch.cuda.amp.GradScaler(args...)` is deprecated. Please use `torch.amp.GradScaler('cuda', "
                      "args...)` instead.", FutureWarning, stacklevel=2)
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)


def _custom_fwd(fwd=None, *, cast_inputs=None):
    """torch.cuda.amp.custom_fwd: amp.custom_fwd(device_type='cuda'), with torch's FutureWarning (once, where
    it is called: ``@torch.cuda.amp.custom_fwd`` or ``@torch.cuda.amp.custom_fwd(cast_inputs=...)``)."""
    return functools.partial(_amp.custom_fwd, device_type="cuda")(fwd=fwd, cast_inputs=cast_inputs)


def _custom_bwd(bwd):
    """torch.cuda.amp.custom_bwd: amp.custom_bwd(device_type='cuda'), with torch's FutureWarning."""
    return functools.partial(_amp.custom_bwd, device_type="cuda")(bwd)


# torch's @deprecated wrappers warn before their arguments are bound: a wrong call warns, then raises
# Python's TypeError naming custom_fwd / custom_bwd
_custom_fwd.__qualname__ = _custom_fwd.__name__ = "custom_fwd"
_custom_bwd.__qualname__ = _custom_bwd.__name__ = "custom_bwd"


@functools.wraps(_custom_fwd)  # (its name, docstring and signature)
def custom_fwd(*args, **kwargs):
    warnings.warn("`torch.cuda.amp.custom_fwd(args...)` is deprecated. Please use `torch.amp.custom_fwd(args..., "
                  "device_type='cuda')` instead.", FutureWarning, stacklevel=user_stacklevel())
    return _custom_fwd(*args, **kwargs)


@functools.wraps(_custom_bwd)
def custom_bwd(*args, **kwargs):
    warnings.warn("`torch.cuda.amp.custom_bwd(args...)` is deprecated. Please use `torch.amp.custom_bwd(args..., "
                  "device_type='cuda')` instead.", FutureWarning, stacklevel=user_stacklevel())
    return _custom_bwd(*args, **kwargs)


def amp_definitely_not_available():
    """torch.cuda.amp.amp_definitely_not_available: no CUDA device and no torch_xla."""
    from . import is_available

    return not (is_available() or find_spec("torch_xla"))
