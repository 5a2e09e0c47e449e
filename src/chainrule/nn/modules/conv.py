"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d over chainrule.ops.conv.

Non-zero padding modes (reflect, replicate, circular) pad with ``F.pad`` first and convolve
with no padding, as torch does.
"""

from __future__ import annotations

import math

from ..._naming import in_torchs_words
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .linear import _factory
from .module import Module
from .utils import _checked_empty as empty

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


def _ntuple(value, n: int) -> tuple:
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,) * n


class _ConvNd(Module):
    _dims = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding, dilation,
                 transposed: bool, output_padding, groups: int, bias: bool, padding_mode: str,
                 device=None, dtype=None) -> None:
        super().__init__()
        n = self._dims
        # torch's _ConvNd raises these bare, the argument already named in its words, and Python's
        # TypeError of a comparison or % it cannot make (a str groups) bare too
        try:
            if groups <= 0:
                raise in_torchs_words(ValueError("groups must be a positive integer"))
            if in_channels % groups != 0:
                raise in_torchs_words(ValueError("in_channels must be divisible by groups"))
            if out_channels % groups != 0:
                raise in_torchs_words(ValueError("out_channels must be divisible by groups"))
        except TypeError as error:
            in_torchs_words(error)
            raise
        valid_modes = {"zeros", "reflect", "replicate", "circular"}
        if padding_mode not in valid_modes:
            raise in_torchs_words(ValueError(
                f"padding_mode must be one of {valid_modes}, but got padding_mode='{padding_mode}'"
            ))
        kernel_size = _ntuple(kernel_size, n)
        stride = _ntuple(stride, n)
        dilation = _ntuple(dilation, n)
        # torch's ConvTranspose takes no padding string: it tuples one ('2' → ('2',)) and its forward refuses it
        if isinstance(padding, str) and not transposed:
            # torch prints its set {"same", "valid"}: in the order this process's string hashing gives it
            valid_padding_strings = {"same", "valid"}
            if padding not in valid_padding_strings:
                raise in_torchs_words(
                    ValueError(f"Invalid padding string {padding!r}, should be one of {valid_padding_strings}"))
            if padding == "same" and any(s != 1 for s in stride):
                raise in_torchs_words(ValueError("padding='same' is not supported for strided convolutions"))
        else:
            padding = tuple(padding) if isinstance(padding, str) else _ntuple(padding, n)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = _ntuple(output_padding, n)
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad order: last spatial dim first, (left, right) each
        if padding in ("same", "valid"):
            pads = [0, 0] * n
            if padding == "same":
                for d, k, i in zip(dilation, kernel_size, range(n - 1, -1, -1)):
                    total = d * (k - 1)
                    left = total // 2
                    pads[2 * i] = left
                    pads[2 * i + 1] = total - left
            self._reversed_padding_repeated_twice = pads
        else:
            self._reversed_padding_repeated_twice = [p for p in reversed(padding) for _ in range(2)]
        kw = _factory(device, dtype)
        if transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        try:
            self.weight = Parameter(empty(shape, **kw))
        except TypeError as error:
            # a size that is not an int (a float groups or channels) is refused by empty(), bare in torch;
            # any other refusal (a dtype) keeps the prefix naming the call
            if "argument 'size'" in str(error):
                in_torchs_words(error)
            raise
        if bias:
            self.bias = Parameter(empty(out_channels, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch's default: kaiming_uniform(a=√5) → U(±1/√fan_in); bias U(±1/√fan_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            # a zero-size kernel (fan_in 0) gets torch's zero bias, from U(0, 0): it still draws from the
            # generator, as torch's does, so what follows is the same random numbers
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        n = self._dims
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        if not hasattr(self, "padding_mode"):
            self.padding_mode = "zeros"


class _Conv(_ConvNd):
    _conv = None

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False,
                         0, groups, bias, padding_mode, device, dtype)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        conv = type(self)._conv
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_Conv):
    """1-d convolution over (N, C_in, L) (or unbatched (C_in, L))."""

    _dims = 1
    _conv = staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-d convolution over (N, C_in, H, W) (or unbatched (C_in, H, W))."""

    _dims = 2
    _conv = staticmethod(F.conv2d)


class Conv3d(_Conv):
    """3-d convolution over (N, C_in, D, H, W)."""

    _dims = 3
    _conv = staticmethod(F.conv3d)


class _ConvTranspose(_ConvNd):
    _conv = None

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, True,
                         output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input: Tensor, output_size) -> tuple:
        """torch's _ConvTransposeNd._output_padding: the output_padding that makes ``output_size``
        (the spatial sizes, or all of the output's) between the smallest output and that plus
        stride - 1; outside, its ValueError printing the size as given and the ranges as lists."""
        if output_size is None:
            return self.output_padding
        n = self._dims
        batched = input.ndim == n + 2
        non_spatial = 2 if batched else 1
        if len(output_size) == non_spatial + n:
            output_size = output_size[non_spatial:]
        if len(output_size) != n:
            raise ValueError(f"ConvTranspose{n}D: for {input.ndim}D input, output_size must have {n} or "
                             f"{non_spatial + n} elements (got {len(output_size)})")
        min_sizes = [(input.shape[d + non_spatial] - 1) * self.stride[d] - 2 * self.padding[d]
                     + self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in range(n)]
        max_sizes = [minimum + self.stride[d] - 1 for d, minimum in enumerate(min_sizes)]
        for size, minimum, maximum in zip(output_size, min_sizes, max_sizes):
            if size < minimum or size > maximum:
                raise ValueError(f"requested an output size of {output_size}, but valid sizes range from "
                                 f"{min_sizes} to {max_sizes} (for an input of {input.shape[2:]})")
        return tuple(size - minimum for size, minimum in zip(output_size, min_sizes))

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        output_padding = self._output_padding(input, output_size)
        return type(self)._conv(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    _dims = 1
    _conv = staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTranspose):
    _dims = 2
    _conv = staticmethod(F.conv_transpose2d)


class ConvTranspose3d(_ConvTranspose):
    _dims = 3
    _conv = staticmethod(F.conv_transpose3d)


def __getattr__(name: str):
    # torch's lazy convolutions live here; chainrule's lazy.py (which imports this module) defines them
    if name in ("LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
                "LazyConvTranspose3d"):
        from . import lazy

        return getattr(lazy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
