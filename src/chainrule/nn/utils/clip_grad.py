"""Gradient clipping: clip_grad_norm_ (total norm over all gradients) and clip_grad_value_.

As torch's, everything stays on the gradients' device: per-tensor norms (foreach norm), their
stack, the norm of that stack, and a clip factor clamped to at most 1 that multiplies every
gradient even when it is 1, so no ``if`` reads a device value back to the host. Only
``error_if_nonfinite=True`` checks the total on the host (one read, as torch's).
"""

from __future__ import annotations

import types
import warnings

from ...autograd.grad_mode import no_grad
from ...ops.creation import tensor
from ...ops.elementwise import clamp
from ...ops.foreach import _foreach_mul_, _foreach_norm
from ...ops.linalg import vector_norm
from ...ops.shape import stack
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _as_list(tensors) -> list:
    if isinstance(tensors, Tensor):
        return [tensors]
    return list(tensors)


def _by_device_and_dtype(tensors: list[Tensor]) -> dict:
    """torch's grouping (first appearance first): one foreach call per (device, dtype)."""
    groups: dict = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    return groups


def _check_foreach(foreach, device) -> None:
    if foreach and device.type not in ("cpu", "cuda"):
        raise RuntimeError(f"foreach=True was passed, but can't use the foreach API on {device.type} tensors")


def _one_by_one(foreach, group: list[Tensor]) -> bool:
    """Whether a group takes the per-tensor loop: asked for (foreach=False), or, left to choose, a
    wrapper subclass among it (torch's foreach kernels take plain tensors only; a wrapper's handler
    answers the per-tensor ops on the values it holds)."""
    return foreach is False or foreach is None and any(t._wrapper_strides is not None for t in group)


def _refuse_sparse(op: str, group: list[Tensor]) -> None:
    """torch has no sparse COO kernel for the norm and clamp these use (a gradient from
    nn.Embedding(sparse=True) is one): its dispatcher's NotImplementedError, whose first sentence
    this is. chainrule stores sparse values densely and could compute them, but would then clip
    what torch refuses to."""
    for t in group:
        if t.is_sparse:
            raise NotImplementedError(
                f"Could not run 'aten::{op}' with arguments from the 'Sparse{t.device.type.upper()}' backend. "
                f"'aten::{op}' has no kernel for sparse COO tensors: clip a sparse gradient densely "
                "(p.grad = p.grad.to_dense()) or leave it out of the parameters clipped")


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together, as if concatenated into one vector."""
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    _refuse_sparse("linalg_vector_norm", tensors)
    if not tensors:
        return tensor(0.0)  # torch.tensor(0.0): the default device, float32
    first_device = tensors[0].device
    with no_grad():
        norms: list[Tensor] = []
        for (device, _), group in _by_device_and_dtype(tensors).items():
            _check_foreach(foreach, device)
            if _one_by_one(foreach, group):
                group_norms = [vector_norm(t, norm_type) for t in group]
            else:
                group_norms = _foreach_norm(group, norm_type)
            # moved a group at a time: a per-norm .to() cost more than the norm of a small gradient
            norms.extend(group_norms if device == first_device else [norm.to(first_device) for norm in group_norms])
        total_norm = vector_norm(stack(norms), norm_type)
        if error_if_nonfinite and bool(total_norm.isnan().logical_or(total_norm.isinf())):
            raise RuntimeError(
                f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
                "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
                "anyway, set `error_if_nonfinite=False`"
            )
    return total_norm


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    """Scale every gradient by min(max_norm / (total_norm + 1e-6), 1), on the gradients' devices."""
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    max_norm = float(max_norm)
    if not grads:
        return
    with no_grad():
        clip_coef_clamped = clamp(max_norm / (total_norm + 1e-6), max=1.0)
        for (device, _), group in _by_device_and_dtype(grads).items():
            _check_foreach(foreach, device)
            coef = clip_coef_clamped.to(device)
            if _one_by_one(foreach, group):
                for g in group:
                    g.mul_(coef)
            else:
                _foreach_mul_(group, coef)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Rescale gradients in place so their total ``norm_type``-norm is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d tensor on the first gradient's device), as
    torch.nn.utils.clip_grad_norm_.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)  # a generator is read once, by both halves
        if is_generator and not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=2)
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value], in place (on its device)."""
    clip_value = float(clip_value)
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    with no_grad():
        for (device, _), group in _by_device_and_dtype(grads).items():
            _check_foreach(foreach, device)
            if foreach is not False:  # torch's _foreach_clamp_min_ checks the whole group first
                _refuse_sparse("clamp_min_", group)
            for g in group:
                _refuse_sparse("clamp_", [g])  # one by one, as torch's loop: earlier ones are clamped
                g.clamp_(min=-clip_value, max=clip_value)
