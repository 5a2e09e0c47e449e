"""nn.utils.weight_norm / remove_weight_norm: w = g * v / ||v|| (Salimans & Kingma, 2016).

The weight is split into a magnitude ``<name>_g`` and a direction ``<name>_v`` (both Parameters);
a forward pre-hook recomputes ``<name>`` from them before every call with torch._weight_norm, so
the graph has torch's nodes. This is torch's original (hook-based) API.
"""

from __future__ import annotations

import warnings

from ...autograd.grad_mode import no_grad
from ...ops.nn_toplevel import _weight_norm, norm_except_dim
from ...tensor import Tensor
from ..parameter import Parameter

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]

_DEPRECATION = ("`torch.nn.utils.weight_norm` is deprecated in favor of "
                "`torch.nn.utils.parametrizations.weight_norm`.")


class WeightNorm:
    """The forward pre-hook that sets ``module.<name>`` to ``g * v / ||v||`` (torch's public class)."""

    def __init__(self, name: str, dim) -> None:
        self.name = name
        self.dim = dim

    def compute_weight(self, module) -> Tensor:
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    def __call__(self, module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))

    @staticmethod
    def apply(module, name: str, dim) -> WeightNorm:
        """Split ``module.<name>`` into the Parameters ``<name>_g`` and ``<name>_v`` and add the hook."""
        # torch deprecates apply itself (typing_extensions' @deprecated): the warning names apply's
        # caller, so through weight_norm it names one library line and shows once per process under
        # the default filters (a vocoder's dozens of weight_norm calls warn once); called directly
        # it names the user's line
        warnings.warn(_DEPRECATION, FutureWarning, stacklevel=2)
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        weight = getattr(module, name)
        # torch's `del module._parameters[name]` and `norm_except_dim(weight, ...)` errors, raised here
        # before anything is moved: a buffer or plain attribute is a KeyError, a None parameter a TypeError
        if name not in module._parameters:
            raise KeyError(name)
        if weight is None:
            raise TypeError("norm_except_dim(): argument 'v' (position 1) must be Tensor, not NoneType")
        if dim is None:
            dim = -1  # torch's spelling of "over the whole tensor" on the hook
        fn = WeightNorm(name, dim)
        with no_grad():
            g = Parameter(norm_except_dim(weight, 2, dim).clone())
            v = Parameter(weight.detach().clone())
        del module._parameters[name]
        module.register_parameter(name + "_g", g)
        module.register_parameter(name + "_v", v)
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn


def weight_norm(module, name: str = "weight", dim=0):
    """Reparameterise ``module.<name>`` as ``g * v / ||v||`` with the norm taken over all dims but
    ``dim`` (over everything when ``dim`` is None or -1); returns the module, as torch's, which
    deprecates it (FutureWarning) for ``nn.utils.parametrizations.weight_norm``."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name: str = "weight"):
    """Fold ``g`` and ``v`` back into one Parameter ``module.<name>`` and drop the hook."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, WeightNorm) and hook.name == name:
            with no_grad():
                weight = hook.compute_weight(module).detach().clone()
            del module._forward_pre_hooks[key]
            del module._parameters[name + "_g"]
            del module._parameters[name + "_v"]
            module.__dict__.pop(name, None)
            setattr(module, name, Parameter(weight))
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")
