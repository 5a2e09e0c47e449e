"""torch.ao.nn.intrinsic: fused float modules (a layer and the ReLU after it as one module, so
that quantization observes and requantizes once), made by fuse_modules; ``quantized`` holds their
quantized counterparts, ``qat`` (imported by chainrule.ao.nn, as it builds on these) their
quantization-aware-training forms."""

from __future__ import annotations

from ...._naming import in_torchs_words
from ....nn.modules.activation import ReLU
from ....nn.modules.container import Sequential
from ....nn.modules.conv import Conv2d
from ....nn.modules.linear import Linear
from ....nn.modules.normalization import BatchNorm2d

__all__ = ["ConvBn2d", "ConvBnReLU2d", "ConvReLU2d", "LinearReLU", "quantized"]


class _FusedModule(Sequential):
    """torch.ao.nn.intrinsic._FusedModule: a Sequential that quantization treats as one layer."""


def _check_types(*pairs) -> None:
    if any(type(module) is not expected for module, expected in pairs):
        names = " and ".join(type(module).__name__ for module, _ in pairs)
        raise in_torchs_words(AssertionError(f"Incorrect types for input modules: {names}"))


class ConvBn2d(_FusedModule):
    """torch.ao.nn.intrinsic.ConvBn2d: a Conv2d then its BatchNorm2d, kept apart (fuse_modules_qat
    makes it) so quantization-aware training can fold them in its forward."""

    def __init__(self, conv, bn) -> None:
        _check_types((conv, Conv2d), (bn, BatchNorm2d))
        super().__init__(conv, bn)


class ConvBnReLU2d(_FusedModule):
    """torch.ao.nn.intrinsic.ConvBnReLU2d: a Conv2d, its BatchNorm2d, then a ReLU."""

    def __init__(self, conv, bn, relu) -> None:
        _check_types((conv, Conv2d), (bn, BatchNorm2d), (relu, ReLU))
        super().__init__(conv, bn, relu)


class ConvReLU2d(_FusedModule):
    """torch.ao.nn.intrinsic.ConvReLU2d: a Conv2d (BatchNorm already folded in) then a ReLU."""

    def __init__(self, conv, relu) -> None:
        _check_types((conv, Conv2d), (relu, ReLU))
        super().__init__(conv, relu)


class LinearReLU(_FusedModule):
    """torch.ao.nn.intrinsic.LinearReLU: a Linear then a ReLU."""

    def __init__(self, linear, relu) -> None:
        _check_types((linear, Linear), (relu, ReLU))
        super().__init__(linear, relu)


from . import quantized  # noqa: E402  (its modules name the fused classes above)
