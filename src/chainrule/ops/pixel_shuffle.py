"""pixel_shuffle, pixel_unshuffle and channel_shuffle: each one reshape-permute-reshape of its
input, recorded as one node named as torch's (PixelShuffleBackward0, ...) with its one edge to the
input. The gradient is the inverse rearrangement of the output's gradient."""

from __future__ import annotations

from .._backend import array_module
from ..autograd.function import Function, ctx_value
from .memory_format import in_suggested_format


class _Rearrangement(Function):
    """``x`` reshaped to ``split``, its axes put in ``order``, reshaped to ``merged`` (contiguous, or
    channels-last for a channels-last input, as torch's kernels write it); ``factor`` is the op's
    argument, kept for its node's _saved_*."""

    label = "rearrange"
    rule = "moves each gradient element back to where its value came from"
    _array_forward = True

    @staticmethod
    def forward(ctx, x, split: tuple, order: tuple, merged: tuple, factor: int):
        ctx.input_shape, ctx.split, ctx.order, ctx.factor = x.shape, split, order, factor
        rearranged = array_module(x).ascontiguousarray(x.reshape(split).transpose(order)).reshape(merged)
        return in_suggested_format(rearranged, x)

    @staticmethod
    def backward(ctx, grad):
        # the inverse rearrangement: grad as the permuted split, the axes put back, the input's shape
        permuted = tuple(ctx.split[axis] for axis in ctx.order)
        inverse = sorted(range(len(ctx.order)), key=ctx.order.__getitem__)
        return grad.reshape(permuted).permute(*inverse).reshape(ctx.input_shape)


class PixelShuffle(_Rearrangement):
    label = "pixel_shuffle"
    torch_name = "pixel_shuffle"
    saved_attributes = {"_saved_upscale_factor": ctx_value("factor")}


class PixelUnshuffle(_Rearrangement):
    label = "pixel_unshuffle"
    torch_name = "pixel_unshuffle"
    saved_attributes = {"_saved_downscale_factor": ctx_value("factor")}


class ChannelShuffle(_Rearrangement):
    label = "channel_shuffle"
    torch_name = "channel_shuffle"
    saved_attributes = {"_saved_groups": ctx_value("factor")}
