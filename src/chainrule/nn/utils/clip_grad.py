"""Gradient clipping: clip_grad_norm_ (total norm over all gradients) and clip_grad_value_."""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..._backend import array_module
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _as_list(tensors) -> list:
    if isinstance(tensors, Tensor):
        return [tensors]
    return list(tensors)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together, as if concatenated into one vector."""
    tensors = [t for t in _as_list(tensors) if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return Tensor._make(np.asarray(0.0, dtype=np.float32))
    dtype = np.result_type(*[t._data.dtype for t in tensors])
    xp = array_module(tensors[0]._data)  # the norms are taken where the gradients live (CuPy on a GPU)
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(t._data))) if t._data.size else 0.0 for t in tensors)
    elif norm_type == -math.inf:
        total = min(float(np.min(np.abs(t._data))) if t._data.size else math.inf for t in tensors)
    elif norm_type == 0:
        total = float(sum(np.count_nonzero(t._data) for t in tensors))
    else:
        # per-tensor norms in the tensors' dtype, then the norm of those norms (torch's order)
        norms = [xp.sum(xp.abs(t._data.astype(np.float64)) ** norm_type) ** (1.0 / norm_type) for t in tensors]
        total = float(sum(float(n) ** norm_type for n in norms) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
            "anyway, set `error_if_nonfinite=False`"
        )
    # on the gradients' device, as torch returns it (a script may add it to a device tensor)
    return Tensor._make(np.asarray(total, dtype=dtype)).to(tensors[0].device)


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    """Scale every gradient by max_norm / (total_norm + 1e-6) when that factor is below 1."""
    grads = [p._grad for p in _as_list(parameters) if p._grad is not None]
    clip_coef = float(max_norm) / (float(total_norm._data) + 1e-6)
    if clip_coef < 1.0 or not math.isfinite(clip_coef):
        with no_grad():
            for g in grads:
                g._data *= g._data.dtype.type(min(clip_coef, 1.0) if math.isfinite(clip_coef) else clip_coef)
                g._version_box[0] += 1


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Rescale gradients in place so their total ``norm_type``-norm is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d tensor), as torch.nn.utils.clip_grad_norm_.
    """
    parameters = _as_list(parameters)
    grads = [p._grad for p in parameters if p._grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite)
    if grads:
        clip_grads_with_norm_(parameters, max_norm, total_norm)
    return total_norm


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p._grad is not None:
            np.clip(p._grad._data, -clip_value, clip_value, out=p._grad._data)
            p._grad._version_box[0] += 1
