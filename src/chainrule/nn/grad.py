"""torch.nn.grad: a convolution's input or weight gradient for a given output gradient, without a
forward pass of one's own (custom layers and gradient-checkpointing code call these).

Each one is the vector-Jacobian product of the convolution, taken by differentiating the
convolution at a zero tensor of the wanted shape (the convolution is linear in each argument, so
the point does not matter). When grad mode is on and the other operand or ``grad_output`` requires
grad, the result is recorded, as torch's ``convolution_backward`` is differentiable.
"""

from __future__ import annotations

from .. import autograd as _autograd
from ..autograd.grad_mode import enable_grad as _enable_grad
from ..autograd.grad_mode import is_grad_enabled as _is_grad_enabled
from ..ops.creation import zeros as _zeros
from . import functional as _F

__all__ = ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input", "conv3d_weight"]


def _vjp(convolve, unknown_shape, known, grad_output, unknown_is_input: bool):
    recorded = _is_grad_enabled() and (known.requires_grad or grad_output.requires_grad)
    unknown = _zeros(tuple(unknown_shape), dtype=grad_output.dtype,
                                  device=grad_output.device).requires_grad_()
    with _enable_grad():
        operand = known if recorded else known.detach()
        output = convolve(unknown, operand) if unknown_is_input else convolve(operand, unknown)
        (gradient,) = _autograd.grad(output, unknown, grad_output, create_graph=recorded)
    return gradient


def _input(conv):
    def input_gradient(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
        return _vjp(lambda x, w: conv(x, w, None, stride, padding, dilation, groups), input_size, weight,
                    grad_output, unknown_is_input=True)

    return input_gradient


def _weight(conv):
    def weight_gradient(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
        return _vjp(lambda x, w: conv(x, w, None, stride, padding, dilation, groups), weight_size, input,
                    grad_output, unknown_is_input=False)

    return weight_gradient


def _named(function, name: str, what: str):
    function.__name__ = function.__qualname__ = name
    function.__module__ = __name__
    function.__doc__ = f"torch.nn.grad.{name}: the gradient of {what} for ``grad_output``."
    return function


conv1d_input = _named(_input(_F.conv1d), "conv1d_input", "conv1d with respect to its input")
conv1d_weight = _named(_weight(_F.conv1d), "conv1d_weight", "conv1d with respect to its weight")
conv2d_input = _named(_input(_F.conv2d), "conv2d_input", "conv2d with respect to its input")
conv2d_weight = _named(_weight(_F.conv2d), "conv2d_weight", "conv2d with respect to its weight")
conv3d_input = _named(_input(_F.conv3d), "conv3d_input", "conv3d with respect to its input")
conv3d_weight = _named(_weight(_F.conv3d), "conv3d_weight", "conv3d with respect to its weight")
