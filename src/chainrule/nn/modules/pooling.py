"""Pooling layers over chainrule.ops.pool (torch.nn.functional signatures)."""

from __future__ import annotations

from ..._naming import in_torchs_words
from ...tensor import Tensor
from .. import functional as F
from .module import Module

__all__ = ["LPPool3d", "FractionalMaxPool2d", "FractionalMaxPool3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "LPPool1d",
           "LPPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]


def _single(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


class _MaxPoolNd(Module):
    # the class whose __init__ torch's argument errors name (_naming._name_the_call)
    _torch_init_owner = "_MaxPoolNd"

    _fn_name = ""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor):
        return getattr(F, self._fn_name)(input, self.kernel_size, self.stride, self.padding, self.dilation,
                                         ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    _fn_name = "max_pool1d"


class MaxPool2d(_MaxPoolNd):
    _fn_name = "max_pool2d"


class MaxPool3d(_MaxPoolNd):
    _fn_name = "max_pool3d"


class AvgPool1d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AvgPoolNd(Module):
    _fn_name = ""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return getattr(F, self._fn_name)(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                         self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    _fn_name = "avg_pool2d"


class AvgPool3d(_AvgPoolNd):
    _fn_name = "avg_pool3d"


class _AdaptivePool(Module):
    # the class whose __init__ torch's argument errors name (_naming._name_the_call)
    _torch_init_owner = "_AdaptiveAvgPoolNd"

    _fn_name = ""

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return getattr(F, self._fn_name)(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _AdaptiveMaxPool(_AdaptivePool):
    # the class whose __init__ torch's argument errors name (_naming._name_the_call)
    _torch_init_owner = "_AdaptiveMaxPoolNd"

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input: Tensor):
        return getattr(F, self._fn_name)(input, self.output_size, self.return_indices)


class AdaptiveAvgPool1d(_AdaptivePool):
    _fn_name = "adaptive_avg_pool1d"


class AdaptiveAvgPool2d(_AdaptivePool):
    _fn_name = "adaptive_avg_pool2d"


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    _fn_name = "adaptive_max_pool1d"


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    _fn_name = "adaptive_max_pool2d"


class _LPPool(Module):
    # the class whose __init__ torch's argument errors name (_naming._name_the_call)
    _torch_init_owner = "_LPPoolNd"

    _fn_name = ""

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        return getattr(F, self._fn_name)(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPool):
    _fn_name = "lp_pool1d"


class LPPool2d(_LPPool):
    _fn_name = "lp_pool2d"


class LPPool3d(_LPPool):
    _fn_name = "lp_pool3d"


class _FractionalMaxPool(Module):
    _fn_name = ""
    _dims = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices: bool = False,
                 _random_samples: Tensor | None = None) -> None:
        super().__init__()
        kernels = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size,)
        if self._dims == 3 and any(isinstance(k, (int, float)) and k <= 0 for k in kernels):
            # torch's FractionalMaxPool3d checks this at construction (the 2-d one at the forward)
            raise ValueError(f"kernel_size must be greater than 0, but got {kernel_size}")
        self.kernel_size = kernel_size
        self.output_size = output_size
        self.output_ratio = output_ratio
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        if output_size is None and output_ratio is None:
            raise ValueError(f"FractionalMaxPool{self._dims}d requires specifying either an output size, or a "
                             "pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise in_torchs_words(ValueError("only one of output_size and output_ratio may be specified"))
        if output_ratio is not None:
            ratios = (output_ratio,) * self._dims if isinstance(output_ratio, (int, float)) else tuple(output_ratio)
            if not all(0 < r < 1 for r in ratios):
                raise in_torchs_words(ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})"))
            self.output_ratio = ratios

    def forward(self, input: Tensor):
        return getattr(F, self._fn_name)(input, self.kernel_size, self.output_size, self.output_ratio,
                                         self.return_indices, _random_samples=self._random_samples)


class FractionalMaxPool2d(_FractionalMaxPool):
    """torch.nn.FractionalMaxPool2d: max pooling over pseudo-random windows (Graham, 2014)."""

    _fn_name, _dims = "fractional_max_pool2d", 2


class FractionalMaxPool3d(_FractionalMaxPool):
    """torch.nn.FractionalMaxPool3d: max pooling over pseudo-random windows (Graham, 2014)."""

    _fn_name, _dims = "fractional_max_pool3d", 3


class AdaptiveAvgPool3d(_AdaptivePool):
    _fn_name = "adaptive_avg_pool3d"


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    _fn_name = "adaptive_max_pool3d"


class _MaxUnpool(Module):
    _fn_name = ""
    _dims = 1

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        n = self._dims

        def tup(v):
            return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n

        self.kernel_size = tup(kernel_size)
        self.stride = tup(stride if stride is not None else kernel_size)
        self.padding = tup(padding)

    def forward(self, input: Tensor, indices: Tensor, output_size=None) -> Tensor:
        return getattr(F, self._fn_name)(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpool):
    _fn_name, _dims = "max_unpool1d", 1


class MaxUnpool2d(_MaxUnpool):
    _fn_name, _dims = "max_unpool2d", 2


class MaxUnpool3d(_MaxUnpool):
    _fn_name, _dims = "max_unpool3d", 3
