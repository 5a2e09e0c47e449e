"""adaptive_avg_pool3d and adaptive_max_pool3d: pool.py's d-dimensional adaptive pools at d = 3.

The windows, the averaging matrices and the max gather are pool.py's (written for any number of
spatial dims); this file gives them their 3-d names and torch's 3-d node names.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .._opmath import cpu_autocast_policy
from ..tensor import Tensor
from .pool import _adaptive_avg, _adaptive_bounds, _adaptive_max

__all__ = ["adaptive_avg_pool3d", "adaptive_max_pool3d"]
__not_methods__ = set(__all__)


@cpu_autocast_policy("float32")
def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool3d: (N, C, D, H, W) → (N, C, *output_size); None keeps a size."""
    out = _adaptive_avg(input, output_size, 3, "adaptive_avg_pool3d")
    sizes = tuple(out.shape[-3:])
    half = input.dtype is _dtype.float16 or input.dtype is _dtype.bfloat16
    if half and type(input._data) is np.ndarray and sizes != (1, 1, 1) and out.numel():
        # the values as torch's kernel rounds them; the graph (a linear map) is the float32 one's
        out._data = _window_averages_rounding_each_step(input._data, sizes)
    return out


def _window_averages_rounding_each_step(x: np.ndarray, sizes: tuple) -> np.ndarray:
    """torch's 3-d adaptive average of a float16/bfloat16 array, which computes in that dtype: each
    window summed in order (depth, then height, then width), rounding after every addition, then
    divided by its depth, height and width in turn, rounding after each."""
    low = x.dtype
    starts, lengths = [], []
    for axis, m in enumerate(sizes):
        start, end = _adaptive_bounds(np, x.shape[x.ndim - 3 + axis], m)
        shape = [1, 1, 1]
        shape[axis] = m
        starts.append(start.reshape(shape))
        lengths.append((end - start).reshape(shape))
    total = np.zeros(x.shape[:-3] + sizes, np.float32)
    for i in range(int(lengths[0].max())):
        for j in range(int(lengths[1].max())):
            for k in range(int(lengths[2].max())):
                inside = (i < lengths[0]) & (j < lengths[1]) & (k < lengths[2])
                values = x[..., np.minimum(starts[0] + i, x.shape[-3] - 1), np.minimum(starts[1] + j, x.shape[-2] - 1),
                           np.minimum(starts[2] + k, x.shape[-1] - 1)].astype(np.float32)
                total = np.where(inside, (total + values).astype(low).astype(np.float32), total)
    for length in lengths:
        total = (total / length.astype(np.float32)).astype(low).astype(np.float32)
    return total.astype(low)


@cpu_autocast_policy("float32")
def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    """torch.nn.functional.adaptive_max_pool3d (indices flat per (D, H, W) volume, as torch's)."""
    return _adaptive_max(input, output_size, return_indices, 3, "adaptive_max_pool3d")  # (its node named there)
