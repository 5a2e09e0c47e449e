"""Flatten and Unflatten."""

from __future__ import annotations

from ..._naming import in_torchs_words
from ...tensor import Tensor
from .module import Module

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Flattens dims ``start_dim..end_dim`` into one (default: all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands dim ``dim`` into ``unflattened_size``."""

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        # torch's own check (an int, a bool too, at every position), before the forward's parser
        if not isinstance(unflattened_size, (tuple, list)):
            raise in_torchs_words(TypeError(f"unflattened_size must be a tuple of ints, but found type "
                                            f"{type(unflattened_size).__name__}"))
        for i, size in enumerate(unflattened_size):
            if not isinstance(size, int):
                raise in_torchs_words(TypeError(f"unflattened_size must be tuple of ints, but found element of type "
                                                f"{type(size).__name__} at pos {i}"))
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input: Tensor) -> Tensor:
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
