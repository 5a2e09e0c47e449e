"""convert_conv2d_weight_memory_format / convert_conv3d_weight_memory_format: lay the weights of
every (transposed) convolution in a module out in a memory format (torch.nn.utils.memory_format)."""

from __future__ import annotations

from ...autograd.grad_mode import no_grad

__all__ = ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]


def _convert(module, memory_format, kinds: tuple):
    from ..modules.conv import _ConvNd

    if isinstance(module, _ConvNd) and type(module).__name__ in kinds:
        with no_grad():
            module.weight.data = module.weight.detach().contiguous(memory_format=memory_format)
    for child in module.children():
        _convert(child, memory_format, kinds)
    return module


def convert_conv2d_weight_memory_format(module, memory_format):
    """``module`` with each Conv2d/ConvTranspose2d weight in ``memory_format`` (in place; returned)."""
    return _convert(module, memory_format, ("Conv2d", "ConvTranspose2d"))


def convert_conv3d_weight_memory_format(module, memory_format):
    """``module`` with each Conv3d/ConvTranspose3d weight in ``memory_format`` (in place; returned)."""
    return _convert(module, memory_format, ("Conv3d", "ConvTranspose3d"))
