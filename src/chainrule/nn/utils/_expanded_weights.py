"""torch.nn.utils._expanded_weights: ``ExpandedWeight``, the parameter stand-in behind
``call_for_per_sample_grads`` (opacus's ``grad_sample_mode="ew"``).

A module's parameters are swapped for ExpandedWeights for one call; the layer functions that see
one (linear, conv1d/2d/3d, embedding, group_norm, layer_norm, instance_norm, through
``__torch_function__``) run on the original weight, and their backward leaves each weight's
per-sample gradient (batch first) in ``weight.grad_sample`` instead of a summed ``weight.grad``.
Any other function given an ExpandedWeight raises, as torch's does.

The per-sample rule is ``ops.per_sample.PerSampleGradient`` (one for every layer function).
"""

from __future__ import annotations

from ...ops.per_sample import PerSampleGradient
from ...tensor import Tensor
from .. import functional as F

__all__ = ["ExpandedWeight"]

_PER_SAMPLE_FUNCTIONS = (F.linear, F.conv1d, F.conv2d, F.conv3d, F.embedding, F.group_norm, F.layer_norm,
                         F.instance_norm)


class ExpandedWeight(Tensor):
    """A parameter standing in for ``orig_weight`` during one per-sample-gradient call."""

    def __new__(cls, orig_weight, batch_size, loss_reduction):
        if not isinstance(orig_weight, Tensor):
            raise RuntimeError(f"Can only make Expanded Weights of Tensors, got {type(orig_weight).__name__}")
        if not orig_weight.requires_grad:
            raise RuntimeError("Can only build ExpandedWeights objects of tensors that requires_grad")
        return Tensor._make_subclass(cls, orig_weight, True)

    def __init__(self, orig_weight, batch_size, loss_reduction) -> None:
        self.batch_size = batch_size
        self.batch_first = True
        self.allow_smaller_batches = False
        self.orig_weight = orig_weight
        self.loss_reduction = loss_reduction

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _PER_SAMPLE_FUNCTIONS:
            return _expanded_call(func, args, kwargs)
        raise RuntimeError(f"Expanded Weights encountered but cannot handle function {func.__name__}")

    # what code asks of a parameter answers for the original weight, without dispatching
    @property
    def dtype(self):
        return self.orig_weight.dtype

    @property
    def data(self):
        return self.orig_weight.data

    @property
    def shape(self):
        return self.orig_weight.shape

    @property
    def device(self):
        return self.orig_weight.device

    @property
    def is_cuda(self):
        return self.orig_weight.is_cuda

    def data_ptr(self):
        return self.orig_weight.data_ptr()

    def get_device(self):
        return self.orig_weight.get_device()

    def set_allow_smaller_batches(self, is_allow_smaller_batches) -> None:
        self.allow_smaller_batches = is_allow_smaller_batches

    def set_batch_first(self, is_batch_first=True) -> None:
        self.batch_first = is_batch_first


def _checked_call(func, args: tuple, kwargs: dict) -> None:
    """torch's checks before an expanded call: a batched Tensor first, every ExpandedWeight of that
    batch size, and one loss reduction among them."""
    name = func.__name__
    input = args[0]
    if isinstance(input, ExpandedWeight):
        raise RuntimeError("Expanded Weights do not support inputs that are also ExpandedWeights. "
                           f"Input must be a Tensor, got {type(input).__name__} in function {name}")
    if not isinstance(input, Tensor):
        raise RuntimeError("Expanded Weights requires a Tensor as the first input to get the batch dimension, "
                           f"got {type(input).__name__} in function {name}")
    if input.dim() == 0:
        raise RuntimeError(f"Expanded Weights requires a batch dimension but got an input of size 0 in function {name}")
    if input.shape[0] == 0:
        raise RuntimeError(f"0 is not a valid batch size for Expanded Weights but got input tensor of {input} "
                           f"in function {name}")
    expanded = [a for a in (*args, *kwargs.values()) if isinstance(a, ExpandedWeight)]
    for weight in expanded:
        batch_size = input.shape[0] if weight.batch_first else input.shape[1]
        if (weight.allow_smaller_batches and batch_size > weight.batch_size) or (
                not weight.allow_smaller_batches and weight.batch_size != batch_size):
            raise RuntimeError("Expected ExpandedWeights to have batch size matching input but got input batch size "
                               f"of {batch_size} with ExpandedWeight of batch size {weight.batch_size}")
    loss_reduction = None
    for weight in expanded:
        if loss_reduction is None:
            loss_reduction = weight.loss_reduction
        elif loss_reduction != weight.loss_reduction:
            raise RuntimeError("Expected ExpandedWeights to all have the same loss_reduction argument but got one"
                               f"with {loss_reduction} and one with {weight.loss_reduction}")


def _expanded_call(func, args: tuple, kwargs: dict):
    _checked_call(func, args, kwargs)
    values = (*args, *kwargs.values())
    per_sample = tuple(k for k, v in enumerate(values) if isinstance(v, ExpandedWeight))

    def deliver(position: int, gradient: Tensor) -> None:
        _add_grad_sample(values[position], gradient)

    plain = tuple(v.orig_weight if isinstance(v, ExpandedWeight) else v for v in values)
    return PerSampleGradient.apply(func, tuple(kwargs), per_sample, deliver, *plain)


def _add_grad_sample(weight: ExpandedWeight, contribution: Tensor) -> None:
    # a weight used twice in one forward sums its contributions, as torch's does
    if weight.loss_reduction == "mean":
        contribution = contribution * weight.batch_size
    original = weight.orig_weight
    if getattr(original, "grad_sample", None) is not None:
        original.grad_sample = original.grad_sample + contribution
    else:
        original.grad_sample = contribution
