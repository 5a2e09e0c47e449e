"""float16 transposed convolutions valued as torch 2.13's CPU kernel computes them
(slow_conv_transpose2d/3d, conv_transpose1d through the 2-d one): for each group a GEMM gives one
column per input position and kernel offset (float32 sums rounded to float16), and col2im adds
those columns into a zeroed float16 output one kernel offset after another, rounding every
addition; the bias is added last. A float32 computation rounded once differs in 2-12% of values.

Values only: the graph around them is the float32 one's (the map is linear either way).
bfloat16 takes another route in torch (oneDNN, rounded once), as chainrule computes it.
"""

from __future__ import annotations

import itertools

import numpy as np


def conv_transpose_values(x: np.ndarray, w: np.ndarray, bias, stride, padding, dilation, groups: int,
                          out_shape: tuple) -> np.ndarray:
    """x (N, C_in, *S) and w (C_in, C_out/groups, *K) float16, bias (C_out,) or None: the
    (N, C_out, *out_shape) float16 output, rounded where torch rounds."""
    n, c_in = x.shape[:2]
    per_group_in, per_group_out = c_in // groups, w.shape[1]
    kernel = w.shape[2:]
    out = np.zeros((n, per_group_out * groups) + tuple(out_shape), dtype=np.float16)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    # per dim and kernel offset: the input positions that land inside the output, and where
    targets = []
    for size, s, p, dl, k, o in zip(x.shape[2:], stride, padding, dilation, kernel, out_shape):
        per_offset = []
        for offset in range(k):
            position = np.arange(size) * s - p + offset * dl
            inside = (position >= 0) & (position < o)
            per_offset.append((np.nonzero(inside)[0], position[inside]))
        targets.append(per_offset)
    for g in range(groups):
        inputs = slice(g * per_group_in, (g + 1) * per_group_in)
        xg = x32[:, inputs]
        channels = slice(g * per_group_out, (g + 1) * per_group_out)
        for offsets in itertools.product(*(range(k) for k in kernel)):  # col2im's order
            columns = np.einsum("nc...,co->no...", xg, w32[(inputs, slice(None)) + offsets])
            source = np.ix_(*(targets[i][k][0] for i, k in enumerate(offsets)))
            destination = (slice(None), channels) + np.ix_(*(targets[i][k][1] for i, k in enumerate(offsets)))
            out[destination] += columns.astype(np.float16)[(slice(None), slice(None)) + source]
    if bias is not None:
        out += bias.reshape((1, -1) + (1,) * len(kernel))
    return out

