"""Folding a BatchNorm in eval mode into the convolution or linear layer before it, as
torch.nn.utils.fusion: y = γ (W x + b - μ) / √(σ² + ε) + β is one layer with weight
W · γ/√(σ² + ε) and bias (b - μ) · γ/√(σ² + ε) + β."""

from __future__ import annotations

import copy

from ...autograd.grad_mode import no_grad
from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose: bool = False):
    """The (weight, bias) Parameters of a convolution followed by an eval-mode BatchNorm."""
    with no_grad():
        dtype = conv_w.dtype
        conv_b = bn_rm.new_zeros(tuple(bn_rm.shape)) if conv_b is None else conv_b
        bn_w = bn_rm.new_ones(tuple(bn_rm.shape)) if bn_w is None else bn_w
        bn_b = bn_rm.new_zeros(tuple(bn_rm.shape)) if bn_b is None else bn_b
        bn_var_rsqrt = (bn_rv + bn_eps).rsqrt()
        # the scale applies per output channel: dim 0 of a convolution's weight, dim 1 when transposed
        shape = [1] * conv_w.dim()
        shape[1 if transpose else 0] = -1
        fused_w = (conv_w * (bn_w * bn_var_rsqrt).reshape(shape)).to(dtype)
        fused_b = ((conv_b - bn_rm) * bn_var_rsqrt * bn_w + bn_b).to(conv_b.dtype)
    return Parameter(fused_w, conv_w.requires_grad), Parameter(fused_b, conv_b.requires_grad)


def fuse_conv_bn_eval(conv, bn, transpose: bool = False):
    """A copy of ``conv`` (eval mode) that computes ``bn(conv(x))`` of the eval-mode pair."""
    if conv.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("BatchNorm without running statistics cannot be fused")
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The (weight, bias) Parameters of a Linear followed by an eval-mode BatchNorm1d."""
    if linear_w.shape[0] != bn_rm.shape[0] and bn_rm.shape[0] != 1:
        raise AssertionError("To fuse, linear.out_features must equal bn.num_features, or bn.num_features must be 1")
    with no_grad():
        linear_b = bn_rm.new_zeros(tuple(bn_rm.shape)) if linear_b is None else linear_b
        bn_scale = bn_w * (bn_rv + bn_eps).rsqrt()
        fused_w = linear_w * bn_scale.unsqueeze(-1)
        fused_b = (linear_b - bn_rm) * bn_scale + bn_b
    return Parameter(fused_w, linear_w.requires_grad), Parameter(fused_b, linear_b.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    """A copy of ``linear`` (eval mode) that computes ``bn(linear(x))`` of the eval-mode pair."""
    if linear.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused
