"""The legacy cross-channel LRN behind torch.nn.CrossMapLRN2d (Lua Torch's SpatialCrossMapLRN).

Its forward is a running sum over channels whose window, as torch computes it, never drops channel
0 once it entered; its backward is torch's own formula (a symmetric window of ``size`` channels),
not the derivative of that forward. Both are reproduced as torch has them, so a model using the
module trains to torch's numbers: the channel windows are two small (C, C) 0/1 matrices.
"""

from __future__ import annotations

import numpy as np

from .._backend import array_module
from ..autograd.function import Function
from ..tensor import Tensor

__all__: list[str] = []


def _forward_window(channels: int, size: int) -> np.ndarray:
    """W with scale[c] = Σ_j W[c, j] x[j]²: torch's running sum, replayed on coefficient rows."""
    pre_pad = int((size - 1) / 2 + 1)
    window = np.zeros((channels, channels))
    window[0, :min(pre_pad, channels)] = 1
    for c in range(1, channels):
        window[c] = window[c - 1]
        if c < channels - pre_pad + 1:
            window[c, c + pre_pad - 1] += 1
        if c > pre_pad:
            window[c, c - pre_pad] -= 1
    return window


def _backward_window(channels: int, size: int) -> np.ndarray:
    """B with accum[c] = Σ_j B[c, j] ratio[j]: channels c - p .. c + size - 1 - p, p = size - (size-1)/2."""
    inverse_pre_pad = int(size - (size - 1) / 2)
    c = np.arange(channels)[:, None]
    j = np.arange(channels)[None, :]
    return ((j >= c - inverse_pre_pad) & (j <= c + size - 1 - inverse_pre_pad)).astype(np.float64)


def _mix(xp, window, x):
    """Σ_j window[c, j] x[:, j] for (N, C, H, W) x, in x's dtype."""
    return xp.einsum("cj,njhw->nchw", xp.asarray(window, dtype=x.dtype), x)


class CrossMapLRN2d(Function):
    _array_forward = True
    node_name = "CrossMapLRN2dBackward"
    label = "cross_map_lrn2d"
    rule = ("torch's legacy rule: g·s^-β - (2αβ/size)·x·Σ_window(g·y/s) over a symmetric channel window, "
            "s = k + α/size · Σ_window x²")
    formula = "cross_map_lrn2d({0})"

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        xp = array_module(x)
        scale = _mix(xp, _forward_window(x.shape[1], size), x * x) * x.dtype.type(alpha / size) + x.dtype.type(k)
        out = x * scale ** x.dtype.type(-beta)
        ctx.params = (size, alpha, beta)
        ctx.save_for_backward(x, out, scale)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out, scale = ctx.saved_values
        size, alpha, beta = ctx.params
        window = Tensor._make(array_module(x._data).asarray(_backward_window(x.shape[1], size), dtype=x._data.dtype))
        ratio = grad * out / scale
        accumulated = (window.reshape(1, *window.shape, 1, 1) * ratio.unsqueeze(1)).sum(2)
        return scale.pow(-beta) * grad - (2 * alpha * beta / size) * x * accumulated


def cross_map_lrn2d(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """The op of nn.CrossMapLRN2d on (N, C, H, W) input."""
    if input.dim() != 4:
        raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.dim()}D instead.")
    return CrossMapLRN2d.apply(input, size=int(size), alpha=float(alpha), beta=float(beta), k=float(k))
