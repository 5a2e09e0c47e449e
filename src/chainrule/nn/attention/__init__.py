"""torch.nn.attention: the scaled-dot-product-attention backend selector.

chainrule has one attention implementation (scaled_dot_product_attention composed from matmul
and softmax, torch's MATH backend), so ``sdpa_kernel`` checks its argument as torch does and
changes nothing: scripts that pick a backend run unchanged.
"""

from __future__ import annotations

import contextlib
import enum

__all__ = ["SDPBackend", "sdpa_kernel"]


class SDPBackend(enum.IntEnum):
    """torch.nn.attention.SDPBackend, with torch's values."""

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """Context manager selecting attention backends (a SDPBackend or a list of them); here it only
    validates them, raising torch's AssertionError for anything else."""
    if not isinstance(backends, (list, SDPBackend)):
        raise AssertionError(f"Backend must be an instance of SDPBackend or a list of SDPBackend instances, "
                             f"got {type(backends).__name__}")
    if isinstance(backends, list) and not all(isinstance(b, SDPBackend) for b in backends):
        raise AssertionError("Backend must be an instance of SDPBackend or a list of SDPBackend instances, got "
                             f"a list holding {sorted({type(b).__name__ for b in backends})}")
    yield {}
