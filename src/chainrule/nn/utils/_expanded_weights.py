"""torch.nn.utils._expanded_weights: ``ExpandedWeight``, the parameter stand-in behind
``call_for_per_sample_grads`` (opacus's ``grad_sample_mode="ew"``).

A module's parameters are swapped for ExpandedWeights for one call; the layer functions that see
one (linear, conv1d/2d/3d, embedding, group_norm, layer_norm, instance_norm, through
``__torch_function__``) run on the original weight, and their backward leaves each weight's
per-sample gradient (batch first) in ``weight.grad_sample`` instead of a summed ``weight.grad``.
Any other function given an ExpandedWeight raises, as torch's does.

torch writes a per-sample rule per layer; here one rule serves them all: the per-sample gradient
of sample i is the gradient of ``<f(x[i:i+1], w), grad_output[i:i+1]>`` with respect to ``w``,
taken for every i at once with ``func.vmap`` of ``func.grad`` (the layers are per-sample
independent, so this is exact).
"""

from __future__ import annotations

from ...autograd.function import Function
from ...autograd.grad_mode import enable_grad
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
            return _PerSampleGradient.apply(func, tuple(kwargs), *args, *kwargs.values())
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
    reductions = {weight.loss_reduction for weight in expanded}
    if len(reductions) > 1:
        first, second = [weight.loss_reduction for weight in expanded][:2]
        raise RuntimeError("Expected ExpandedWeights to all have the same loss_reduction argument but got one"
                           f"with {first} and one with {second}")


def _unexpanded(values):
    return tuple(v.orig_weight if isinstance(v, ExpandedWeight) else v for v in values)


class _PerSampleGradient(Function):
    """One layer function called with ExpandedWeights: the forward of ``func`` on the original
    weights; backward gives the input its ordinary gradient and each ExpandedWeight's original a
    ``grad_sample`` contribution (no ``.grad``)."""

    @staticmethod
    def forward(ctx, func, kwarg_names, *values):
        positional = values[:len(values) - len(kwarg_names)]
        keyword = dict(zip(kwarg_names, values[len(positional):]))
        _checked_call(func, positional, keyword)
        ctx.func, ctx.kwarg_names, ctx.values = func, kwarg_names, values
        plain = _unexpanded(values)
        return func(*plain[:len(positional)], **dict(zip(kwarg_names, plain[len(positional):])))

    @staticmethod
    def backward(ctx, grad_output):
        from ...autograd import grad as autograd_grad
        from ...func import grad as func_grad
        from ...func import vmap

        func, kwarg_names, values = ctx.func, ctx.kwarg_names, ctx.values
        n_positional = len(values) - len(kwarg_names)

        def call(all_values):
            kwargs = dict(zip(kwarg_names, all_values[n_positional:]))
            return func(*all_values[:n_positional], **kwargs)

        plain = [v.detach() if isinstance(v, Tensor) else v for v in _unexpanded(values)]
        grads = [None] * len(values)
        wanted = [k for k, v in enumerate(values) if isinstance(v, Tensor) and not isinstance(v, ExpandedWeight)
                  and ctx.needs_input_grad[k + 2]]
        if wanted:
            with enable_grad():
                leaves = list(plain)
                for k in wanted:
                    leaves[k] = plain[k].requires_grad_()
                output = call(leaves)
                for k, g in zip(wanted, autograd_grad(output, [leaves[k] for k in wanted], grad_output,
                                                      allow_unused=True)):
                    grads[k] = g
        expanded = [k for k, v in enumerate(values) if isinstance(v, ExpandedWeight)]
        if expanded:
            def sample_loss(weights, sample, sample_grad):
                filled = list(plain)
                filled[0] = sample.unsqueeze(0)
                for k, w in zip(expanded, weights):
                    filled[k] = w
                return (call(filled) * sample_grad.unsqueeze(0)).sum()

            per_sample = vmap(func_grad(sample_loss), in_dims=(None, 0, 0))(
                tuple(plain[k] for k in expanded), plain[0], grad_output)
            for k, contribution in zip(expanded, per_sample):
                _add_grad_sample(values[k], contribution)
        return (None, None, *grads)


def _add_grad_sample(weight: ExpandedWeight, contribution: Tensor) -> None:
    # a weight used twice in one forward sums its contributions, as torch's does
    if weight.loss_reduction == "mean":
        contribution = contribution * weight.batch_size
    original = weight.orig_weight
    if getattr(original, "grad_sample", None) is not None:
        original.grad_sample = original.grad_sample + contribution
    else:
        original.grad_sample = contribution
