"""The autograd node behind ExpandedWeights (``nn.utils._expanded_weights``): a layer function
whose backward hands some arguments a per-sample gradient instead of a summed one.

One rule serves every layer function: the per-sample gradient of sample i is the gradient of
``<f(x[i:i+1], w), grad_output[i:i+1]>`` with respect to ``w`` (x is the first argument, batch
first), taken for every i at once with ``func.vmap`` of ``func.grad``. It is exact for the
layers that treat samples apart (linear, convolutions, embedding, group/layer/instance norm);
torch writes one closed form per layer instead.
"""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor

__all__: list[str] = []


class PerSampleGradient(Function):
    """``func(*args, **kwargs)``; in backward, the arguments at ``per_sample`` positions get no
    gradient: ``deliver(position, per_sample_gradient)`` receives theirs (shape: batch, then the
    argument's own), and every other tensor argument gets its ordinary gradient."""

    label = "per_sample_grad"
    rule = "per-sample arguments: one gradient per sample (a vmap of grad over the batch); others: their own"

    @staticmethod
    def forward(ctx, func, kwarg_names, per_sample, deliver, *values):
        n_positional = len(values) - len(kwarg_names)
        ctx.func, ctx.kwarg_names, ctx.per_sample, ctx.deliver = func, kwarg_names, per_sample, deliver
        # tensors go through save_for_backward (version-checked); the rest is kept as given
        ctx.tensor_positions = [k for k, v in enumerate(values) if isinstance(v, Tensor)]
        ctx.others = [None if isinstance(v, Tensor) else v for v in values]
        ctx.save_for_backward(*(values[k] for k in ctx.tensor_positions))
        return func(*values[:n_positional], **dict(zip(kwarg_names, values[n_positional:])))

    @staticmethod
    def backward(ctx, grad_output):
        from ..autograd import grad as autograd_grad
        from ..func import grad as func_grad
        from ..func import vmap

        values = list(ctx.others)
        for k, saved in zip(ctx.tensor_positions, ctx.saved_values):
            values[k] = saved.detach()
        func, kwarg_names, per_sample = ctx.func, ctx.kwarg_names, ctx.per_sample
        n_positional = len(values) - len(kwarg_names)

        def call(all_values):
            return func(*all_values[:n_positional], **dict(zip(kwarg_names, all_values[n_positional:])))

        n_leading = 4  # func, kwarg_names, per_sample, deliver
        grads = [None] * len(values)
        ordinary = [k for k in ctx.tensor_positions if k not in per_sample and ctx.needs_input_grad[k + n_leading]]
        if ordinary:
            with enable_grad():
                leaves = list(values)
                for k in ordinary:
                    leaves[k] = values[k].requires_grad_()
                found = autograd_grad(call(leaves), [leaves[k] for k in ordinary], grad_output, allow_unused=True)
            for k, g in zip(ordinary, found):
                grads[k] = g
        if per_sample:
            def sample_loss(weights, sample, sample_grad):
                filled = list(values)
                filled[0] = sample.unsqueeze(0)
                for k, w in zip(per_sample, weights):
                    filled[k] = w
                return (call(filled) * sample_grad.unsqueeze(0)).sum()

            gradients = vmap(func_grad(sample_loss), in_dims=(None, 0, 0))(
                tuple(values[k] for k in per_sample), values[0], grad_output)
            for k, gradient in zip(per_sample, gradients):
                ctx.deliver(k, gradient)
        return (None, None, None, None, *grads)
