"""adaptive_avg_pool3d and adaptive_max_pool3d: pool.py's d-dimensional adaptive pools at d = 3.

The windows, the averaging matrices and the max gather are pool.py's (written for any number of
spatial dims); this file gives them their 3-d names and torch's 3-d node names.
"""

from __future__ import annotations

from .._opmath import cpu_autocast_policy
from ..autograd.function import name_node
from ..tensor import Tensor
from .pool import _adaptive_avg, _adaptive_max

__all__ = ["adaptive_avg_pool3d", "adaptive_max_pool3d"]
__not_methods__ = set(__all__)


@cpu_autocast_policy("float32")
def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool3d: (N, C, D, H, W) → (N, C, *output_size); None keeps a size."""
    return _adaptive_avg(input, output_size, 3, "adaptive_avg_pool3d")


@cpu_autocast_policy("float32")
def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    """torch.nn.functional.adaptive_max_pool3d (indices flat per (D, H, W) volume, as torch's)."""
    result = _adaptive_max(input, output_size, return_indices, 3, "adaptive_max_pool3d")
    if return_indices:
        return name_node(result[0], "AdaptiveMaxPool3DBackward0"), result[1]
    return name_node(result, "AdaptiveMaxPool3DBackward0")
