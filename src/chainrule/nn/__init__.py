"""chainrule.nn: Module, Parameter, the layers, ``functional``, ``init`` and ``utils``."""

import importlib as _importlib

from . import attention, functional, grad, init, parallel, parameter  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules.loss import *  # noqa: F401,F403
from .modules.module import Module  # noqa: F401
from .modules.rnn import *  # noqa: F401,F403
from .parallel import DataParallel  # noqa: F401
from .parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter  # noqa: F401

# ``nn.modules`` has a private helper submodule named ``utils`` that the star import binds here
# as ``nn.utils``; ``from . import utils`` would then keep that one, so the public
# ``nn.utils`` (clip_grad_norm_, ...) is loaded and bound explicitly, as torch exposes it.
functional.grad = grad  # torch.nn.functional.grad is torch.nn.grad
utils = _importlib.import_module(".utils", __name__)
# spectral_norm is loaded now, after the modules it builds on, and the package's name bound to the
# function again: loading a submodule binds its name on the package to the module, so a first
# `import chainrule.nn.utils.spectral_norm` later on would otherwise shadow the function (torch
# imports it eagerly, so its name always means the function)
utils.spectral_norm = _importlib.import_module(".utils.spectral_norm", __name__).spectral_norm

# the star imports above also bound nn.modules' submodules and the lazy modules' mixin here;
# torch.nn reaches them only as nn.modules.<name>
for _name in ("LazyModuleMixin", "activation", "adaptive", "batchnorm", "channelshuffle", "container", "conv", "distance",
              "dropout", "flatten", "fold", "instancenorm", "lazy", "linear", "linear_cross_entropy_options", "loss",
              "module", "normalization", "padding",
              "pixelshuffle", "pooling", "rnn", "sparse", "sync_batchnorm", "transformer", "upsampling"):
    del globals()[_name]
del _name, _importlib


def __getattr__(name: str):
    # torch.nn.quantized / torch.nn.intrinsic / torch.nn.qat: torch's older spellings of
    # torch.ao.nn's (the static quantization tutorial writes nn.quantized.FloatFunctional() and
    # torch.nn.intrinsic.qat.freeze_bn_stats); ao sits above nn, so the import waits until the
    # name is asked for
    if name in ("quantized", "intrinsic", "qat"):
        from .. import ao

        return getattr(ao.nn, name)
    raise AttributeError(f"module 'chainrule.nn' has no attribute '{name}'")
