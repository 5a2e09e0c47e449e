"""torch.nn.utils._per_sample_grad: ``call_for_per_sample_grads``, a module's forward with its
parameters swapped for ExpandedWeights, so that backward leaves per-sample gradients in each
parameter's ``grad_sample`` (opacus's ``grad_sample_mode="ew"``)."""

from __future__ import annotations

import functools

from ...tensor import Tensor
from ..modules.module import Module
from ._expanded_weights import ExpandedWeight

__all__ = ["call_for_per_sample_grads"]


def call_for_per_sample_grads(module, *, batch_size=None, loss_reduction: str = "sum", batch_first: bool = True):
    """A function running ``module`` so that backward fills ``param.grad_sample`` (shape
    ``(batch, *param.shape)``) for every parameter that requires grad, and leaves ``param.grad`` as
    it was. ``batch_size`` defaults to the inputs' leading (or, with ``batch_first=False``, second)
    size; ``loss_reduction="mean"`` scales the per-sample gradients by the batch size, undoing the
    loss's mean over the batch."""
    from ...func import functional_call
    from ...utils._pytree import tree_leaves

    def maybe_build_expanded_weight(original, size):
        return ExpandedWeight(original, size, loss_reduction) if original.requires_grad else original

    def compute_batch_size(*args, **kwargs):
        found = None
        for arg in tree_leaves((args, kwargs)):
            if not isinstance(arg, Tensor):
                continue
            size = arg.shape[0] if batch_first else arg.shape[1]
            if found is not None and found != size:
                raise RuntimeError(
                    f"When computing batch size, found at least one input with batch size {found} and one with batch "
                    f"size {size}. Please specify it explicitly using the batch size kwarg in call_for_per_sample_grads")
            found = size
        if found is None:
            raise RuntimeError(
                "Unable to find a tensor in the passed args and kwargs. They may not be pytree-able and so "
                "ExpandedWeights cannot compute the batch size from the inputs. Please specify it explicitly")
        return found

    if loss_reduction not in ["sum", "mean"]:
        raise RuntimeError(f"Expected loss_reduction argument to be sum or mean, got {loss_reduction}")
    if not isinstance(module, Module):
        raise RuntimeError(f"Module passed must be nn.Module, got {type(module).__name__}")
    if not (batch_size is None or isinstance(batch_size, int)):
        raise RuntimeError(f"Batch size passed must be None or an integer, got {type(batch_size).__name__}")
    if batch_size is not None and batch_size < 1:
        raise RuntimeError(f"Batch size must be positive, got {batch_size}")
    for weight in module.parameters():
        if getattr(weight, "grad_sample", None) is not None:
            raise RuntimeError(
                "Current Expanded Weights accumulates the gradients, which will be incorrect for multiple calls "
                f"without clearing gradients. Please clear out the grad_sample parameter of {weight} or post an "
                "issue to pytorch/pytorch to prioritize correct behavior")

    @functools.wraps(module.forward)
    def wrapper(*args, **kwargs):
        size = batch_size if batch_size is not None else compute_batch_size(*args, **kwargs)
        params = {name: maybe_build_expanded_weight(value, size) for name, value in module.named_parameters()}
        return functional_call(module, params, args, kwargs)

    return wrapper
