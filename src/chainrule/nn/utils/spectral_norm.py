"""nn.utils.spectral_norm / remove_spectral_norm: torch's original, hook-based spectral norm
(``weight = weight_orig / σ``), still the form most GAN code calls.

The weight is stored as the Parameter ``<name>_orig`` with the power-iteration vectors as the
buffers ``<name>_u`` / ``<name>_v``; a forward pre-hook recomputes ``<name>`` before every call,
running ``n_power_iterations`` steps in training mode and none in eval mode, so the state dict
and the numbers are torch's. The hook is torch's public ``SpectralNorm`` (GAN code finds it by
``isinstance``), a state-dict hook records the format's version in ``_metadata`` as torch's does,
and a load-state-dict pre-hook converts a checkpoint of the format before it (version None: the
computed ``<name>`` stored, ``<name>_v`` not) as torch's does.
"""

from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...ops import linalg as _linalg
from .. import functional as F
from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..parameter import Parameter
from .parametrizations import weight_as_matrix

__all__ = ["SpectralNorm", "SpectralNormLoadStateDictPreHook", "SpectralNormStateDictHook", "spectral_norm",
           "remove_spectral_norm"]


class SpectralNorm:
    """The forward pre-hook that sets ``module.<name>`` to ``<name>_orig / sigma``."""

    # torch's format version, recorded in a state dict's _metadata (1: weight_v is stored)
    _version = 1

    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float) -> None:
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name = name
        self.n_power_iterations = n_power_iterations
        self.dim = dim
        self.eps = eps

    def reshape_weight_to_matrix(self, weight):
        return weight_as_matrix(weight, self.dim)

    def compute_weight(self, module, do_power_iteration: bool):
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        matrix = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            # out=, as torch writes it: its grad transforms accept an out= write into these
            # captured buffers, where they refuse an in-place copy_
            with no_grad():
                for _ in range(self.n_power_iterations):
                    F.normalize(_linalg.mv(matrix.t(), u), dim=0, eps=self.eps, out=v)
                    F.normalize(_linalg.mv(matrix, v), dim=0, eps=self.eps, out=u)
                u, v = u.clone(), v.clone()  # the graph keeps these values, not the buffers' next ones
        sigma = _linalg.dot(u, _linalg.mv(matrix, v))
        return weight / sigma

    def remove(self, module) -> None:
        """Fold the normalised weight back into one Parameter ``module.<name>``."""
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        module.__dict__.pop(self.name, None)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    def _solve_v_and_rescale(self, weight_mat, u, target_sigma):
        """A ``v`` with ``u = normalize(W v)`` and ``u·W v = target_sigma``: the least-squares
        solution of ``W v = u`` (a pseudo-inverse, as WᵀW may be singular), rescaled."""
        v = _linalg.multi_dot([weight_mat.t().mm(weight_mat).pinverse(), weight_mat.t(), u.unsqueeze(1)]).squeeze(1)
        return v.mul_(target_sigma / _linalg.dot(u, _linalg.mv(weight_mat, v)))

    @staticmethod
    def apply(module, name: str, n_power_iterations: int, dim: int, eps: float) -> SpectralNorm:
        """Move ``module.<name>`` to ``<name>_orig``, add the ``u``/``v`` buffers and the hooks."""
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters[name]  # torch's KeyError for a name that is not a parameter
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        with no_grad():
            rows, cols = fn.reshape_weight_to_matrix(weight).shape
            u = F.normalize(weight.new_empty(rows).normal_(0, 1), dim=0, eps=fn.eps)
            v = F.normalize(weight.new_empty(cols).normal_(0, 1), dim=0, eps=fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        setattr(module, fn.name, weight.detach())
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        module._register_state_dict_hook(SpectralNormStateDictHook(fn))
        module._register_load_state_dict_pre_hook(SpectralNormLoadStateDictPreHook(fn))
        return fn


class SpectralNormLoadStateDictPreHook:
    """Converts a version-None checkpoint (``<name>_orig``, ``<name>`` and ``<name>_u``, saved
    after at least one training forward) to the current format before it is loaded, as torch's:

        u = normalize(W_orig v),  W = W_orig / sigma,  sigma = u·W_orig v

    so sigma is mean(W_orig / W), and ``<name>_v`` solves ``W_orig v = u`` rescaled to give it."""

    def __init__(self, fn: SpectralNorm) -> None:
        self.fn = fn

    def __call__(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                 error_msgs) -> None:
        fn = self.fn
        version = local_metadata.get("spectral_norm", {}).get(fn.name + ".version", None)
        if version is not None and version >= 1:
            return
        weight_key = prefix + fn.name
        if (version is None and all(weight_key + suffix in state_dict for suffix in ("_orig", "_u", "_v"))
                and weight_key not in state_dict):
            return  # the current format without its metadata (a state dict made by hand): loaded as is
        missing = [weight_key + suffix for suffix in ("_orig", "", "_u") if weight_key + suffix not in state_dict]
        if missing:
            if strict:
                missing_keys.extend(missing)
            return
        with no_grad():
            weight_orig = state_dict[weight_key + "_orig"]
            weight = state_dict.pop(weight_key)
            sigma = (weight_orig / weight).mean()
            weight_mat = fn.reshape_weight_to_matrix(weight_orig)
            u = state_dict[weight_key + "_u"]
            state_dict[weight_key + "_v"] = fn._solve_v_and_rescale(weight_mat, u, sigma)


class SpectralNormStateDictHook:
    """Writes ``{'spectral_norm': {'<name>.version': 1}}`` into the module's state-dict metadata."""

    def __init__(self, fn: SpectralNorm) -> None:
        self.fn = fn

    def __call__(self, module, state_dict, prefix, local_metadata) -> None:
        versions = local_metadata.setdefault("spectral_norm", {})
        key = self.fn.name + ".version"
        if key in versions:
            raise RuntimeError(f"Unexpected key in metadata['spectral_norm']: {key}")
        versions[key] = self.fn._version


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12, dim=None):
    """Normalise ``module.<name>`` by its spectral norm before every forward; returns the module."""
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module, name: str = "weight"):
    """Fold the normalised weight back into one Parameter ``module.<name>`` and drop the hook."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            break
    else:
        raise ValueError(f"spectral_norm of '{name}' not found in {module}")
    for key, hook in list(module._state_dict_hooks.items()):
        if isinstance(hook, SpectralNormStateDictHook) and hook.fn.name == name:
            del module._state_dict_hooks[key]
            break
    # torch means to drop its pre-hook here too, but looks for it by type while it is stored wrapped,
    # so it stays and the plain module then refuses its own state dict (missing weight_orig, weight_u);
    # chainrule drops it
    for key, hook in list(module._load_state_dict_pre_hooks.items()):
        if isinstance(hook, SpectralNormLoadStateDictPreHook) and hook.fn.name == name:
            del module._load_state_dict_pre_hooks[key]
            break
    return module
