"""nn.utils: gradient clipping, flat parameter vectors, packed sequences (``rnn``), weight and
spectral norm (hook-based, and as ``parametrizations`` on ``parametrize``), ``skip_init``,
conv/linear + BatchNorm ``fusion``, weight ``memory_format`` conversion and ``stateless.functional_call``."""

import importlib as _importlib

from . import rnn  # noqa: F401
from .clip_grad import (  # noqa: F401
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from .convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights  # noqa: F401
from .weight_norm import remove_weight_norm, weight_norm  # noqa: F401


def skip_init(module_cls, *args, **kwargs):
    """torch.nn.utils.skip_init: ``module_cls(*args, **kwargs)`` with its parameters and buffers
    left uninitialised: built on the meta device (so its initialisation computes nothing) and
    given empty storage on ``device=`` (the CPU by default) with ``to_empty``."""
    import inspect

    from ..modules.module import Module

    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    final_device = kwargs.pop("device", "cpu")
    kwargs["device"] = "meta"
    return module_cls(*args, **kwargs).to_empty(device=final_device)


# These build on nn.modules, whose rnn module imports nn.utils.rnn (so this package): loading
# them on first use keeps the import graph one-way.
_LAZY = {"parametrize": ("parametrize", None), "parametrizations": ("parametrizations", None), "prune": ("prune", None),
         "spectral_norm": ("spectral_norm", "spectral_norm"),
         "remove_spectral_norm": ("spectral_norm", "remove_spectral_norm"),
         "fusion": ("fusion", None), "memory_format": ("memory_format", None), "stateless": ("stateless", None),
         "convert_conv2d_weight_memory_format": ("memory_format", "convert_conv2d_weight_memory_format"),
         "convert_conv3d_weight_memory_format": ("memory_format", "convert_conv3d_weight_memory_format")}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'chainrule.nn.utils' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = _importlib.import_module(f".{module_name}", __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value
