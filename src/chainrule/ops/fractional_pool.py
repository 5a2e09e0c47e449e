"""Fractional max pooling (Graham, 2014), torch's fractional_max_pool2d/3d.

Each (sample, channel) plane draws one number u in [0, 1) per pooled dim (``_random_samples``,
shape (N, C, d)); the window starts along a dim of input size n, output size m and kernel k are
torch's ``generate_intervals``: ``int((i + u) α) - int(u α)`` with α = (n - k) / (m - 1), computed
in the input's dtype, and the last window ends at the input's end. Each window's first maximum
(a NaN wins, the last one, as torch's kernel) is gathered, so the gradient goes to that element.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_module
from .._opmath import cpu_autocast_policy
from ..autograd.function import Function, name_node
from ..tensor import Tensor
from ._arg_parser import int_list
from .pool import _tuple, gathered, scattered_back

__all__ = ["fractional_max_pool2d", "fractional_max_pool3d"]
__not_methods__ = set(__all__)


def _window_starts(xp, samples, n: int, m: int, k: int):
    """(N, C, m) window starts along one dim, torch's generate_intervals for each plane's sample."""
    dtype = samples.dtype.type
    starts = xp.full(samples.shape + (m,), n - k, dtype=np.int64)
    if m > 1:
        alpha = dtype(n - k) / dtype(m - 1)
        i = xp.arange(m - 1, dtype=samples.dtype)
        # the truncations are C++'s static_cast<int> of values >= 0: floor
        first = ((i + samples[..., None]) * alpha).astype(np.int64) - (samples * alpha).astype(np.int64)[..., None]
        starts[..., :m - 1] = first
    return starts


def _fractional_max_indices(data, random_samples, kernel: tuple, sizes: tuple):
    """(N, C, *sizes) flat in-plane indices of each window's first maximum (a NaN wins, the last one)."""
    xp = array_module(data)
    d = len(kernel)
    batch, in_shape = data.shape[:2], tuple(data.shape[2:])
    samples = random_samples._data
    samples = samples[:batch[0]].astype(data.dtype, copy=False)
    # per dim: (N, C, m, k) input positions of each window
    # torch's 2-d kernel reads a plane's samples as (width, height); the 3-d one as (time, height, width)
    sample_of = (1, 0) if d == 2 else tuple(range(d))
    positions = [_window_starts(xp, samples[..., sample_of[i]], n, m, k)[..., None] + xp.arange(k)
                 for i, (n, m, k) in enumerate(zip(in_shape, sizes, kernel))]
    n_index = xp.arange(batch[0]).reshape((-1,) + (1,) * (1 + 2 * d))
    c_index = xp.arange(batch[1]).reshape((1, -1) + (1,) * (2 * d))
    # gather the windows to (N, C, m_1, k_1, ..., m_d, k_d)
    index = tuple(p.reshape(batch + (1,) * (2 * i) + p.shape[2:] + (1,) * (2 * (d - 1 - i)))
                  for i, p in enumerate(positions))
    windows = data[(n_index, c_index) + index]
    perm = (0, 1, *range(2, 2 + 2 * d, 2), *range(3, 3 + 2 * d, 2))
    # the window length spelled out: -1 cannot be inferred where an output size is 0
    windows = windows.transpose(perm).reshape(batch + tuple(sizes) + (math.prod(kernel),))
    which = windows.argmax(axis=-1) if windows.shape[-1] else xp.zeros(windows.shape[:-1], dtype=np.int64)
    if windows.dtype.kind == "f" and windows.size:
        nan = xp.isnan(windows)  # torch's kernel: `val > max || isnan(val)`, so the last NaN
        last_nan = windows.shape[-1] - 1 - nan[..., ::-1].argmax(axis=-1)
        which = xp.where(nan.any(axis=-1), last_nan, which)
    # the flat in-plane index of each window's chosen element
    flat = xp.zeros(which.shape, dtype=np.int64)
    rest = which
    plane_stride = 1
    for i in reversed(range(d)):
        k_i = rest % kernel[i]
        rest = rest // kernel[i]
        flat += _gather_position(xp, positions[i], k_i, i, d) * plane_stride
        plane_stride *= in_shape[i]
    return flat


class FractionalMaxPool(Function):
    _array_forward = True
    node_name = "FractionalMaxPool2DBackward0"  # torch's name; the 3-d subclass below
    label = "fractional_max_pool"
    rule = "routes each window's gradient to the element its maximum came from"

    @staticmethod
    def forward(ctx, x, samples, kernel, sizes):
        # (values and indices: torch's aten.fractional_max_pool2d/3d, which a handler runs on its values)
        flat = _fractional_max_indices(x, samples, kernel, sizes)
        out = gathered(ctx, x, flat, len(kernel), with_indices=True)  # (x is (N, C, *plane) here)
        ctx.mark_non_differentiable(flat)
        return out, flat

    @staticmethod
    def backward(ctx, grad, *unused):
        return scattered_back(ctx, grad)


class FractionalMaxPool3D(FractionalMaxPool):
    node_name = "FractionalMaxPool3DBackward0"


_FRACTIONAL_MAX = {2: FractionalMaxPool, 3: FractionalMaxPool3D}


def _fractional_max_pool(input: Tensor, kernel_size, output_size, output_ratio, return_indices: bool,
                         random_samples, d: int, opname: str):
    if not isinstance(input, Tensor):
        raise TypeError(f"{opname}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input._data.ndim not in (d + 1, d + 2):
        raise RuntimeError(f"{opname}(): Expected {d + 1}D or {d + 2}D tensor, but got: {list(input.shape)}")
    x, unbatched = (input.unsqueeze(0), True) if input._data.ndim == d + 1 else (input, False)
    kernel = _sizes(kernel_size, d, "kernel_size", opname)
    if any(k <= 0 for k in kernel):
        # torch's fractional_max_pool2d returns -inf from the empty windows; an error says why
        raise RuntimeError(f"{opname}(): kernel_size must be greater than zero, but got {list(kernel)}")
    in_shape = tuple(x._data.shape[2:])
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{opname} requires specifying either an output_size or an output_ratio")
        ratios = _tuple_float(output_ratio, d)
        sizes = tuple(int(n * r) for n, r in zip(in_shape, ratios))
    else:
        sizes = _sizes(output_size, d, "output_size", opname)
        if any(m < 0 for m in sizes):
            raise RuntimeError(f"{opname}(): Trying to create tensor with negative dimension: output_size={list(sizes)}")
    # torch's order and words: (height, width) in 2-d, (time, width, height) in 3-d, where the last window
    # must also end before the input does
    for i, name in ((0, "height"), (1, "width")) if d == 2 else ((0, "time"), (2, "width"), (1, "height")):
        n, m, k = in_shape[i], sizes[i], kernel[i]
        if m + k - 1 > n - (d == 3):
            raise RuntimeError(f"{opname}{'_out' * (d == 3)}(): pool {name} {k} too large relative to input "
                               f"{name} {n}")
    batch = x._data.shape[:2]
    if random_samples is None:
        from .random import rand

        random_samples = rand(*batch, d, dtype=x.dtype, device=x.device)
    samples = random_samples._data
    # torch's checks: extra leading samples are allowed (an unbatched input reads the first)
    if samples.ndim != 3:
        raise RuntimeError(f"{opname}(): Expect _random_samples to have 3 dimensions, got {samples.ndim}")
    if samples.shape[0] < batch[0]:
        raise RuntimeError(f"{opname}(): Expect _random_samples.size(0) no less then input batch size.")
    if samples.shape[1] != batch[1]:
        raise RuntimeError(f"{opname}(): Expect _random_samples.size(1) equals to input channel size.")
    if samples.shape[2] != d:
        raise RuntimeError(f"{opname}(): Expect _random_samples.size(2) equals to {d}; got {samples.shape[2]}.")
    # (values and indices found inside the op: a wrapper's handler answers it on its real values)
    out, indices = _FRACTIONAL_MAX[d].apply(x, samples=random_samples, kernel=tuple(kernel), sizes=tuple(sizes))
    out = name_node(out, f"FractionalMaxPool{d}DBackward0", label=opname,
                    rule="routes each window's gradient to the element its maximum came from")
    if unbatched:
        out, indices = out.squeeze(0), indices.squeeze(0)
    return (out, indices) if return_indices else out


def _gather_position(xp, positions, k_i, i: int, d: int):
    """positions[n, c, o_i, k_i[n, c, o_1, ..., o_d]]: the input position, along dim i, of each
    output's chosen element (positions is (N, C, m_i, k_i))."""
    count, channels, m = positions.shape[:3]
    n_index = xp.arange(count).reshape((count, 1) + (1,) * d)
    c_index = xp.arange(channels).reshape((1, channels) + (1,) * d)
    shape = [1] * (2 + d)
    shape[2 + i] = m
    return positions[n_index, c_index, xp.arange(m).reshape(shape), k_i]


def _sizes(value, d: int, name: str, opname: str) -> tuple:
    """An ``int[d]`` argument: one int for every dim, or exactly d of them (torch's fractional pools
    do not stretch a one-element list as the other pools do)."""
    if isinstance(value, (tuple, list)) and len(value) != d:
        int_list(value, opname, name)  # a wrong element type is the TypeError, before the length
        raise RuntimeError(f"{opname}: {name} must either be a single Int or tuple of {d} Ints, got {len(value)}")
    return _tuple(value, d, name, opname)


def _tuple_float(value, d: int) -> tuple:
    return (float(value),) * d if isinstance(value, (int, float)) else tuple(float(v) for v in value)


@cpu_autocast_policy("float32")
def fractional_max_pool2d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples: Tensor | None = None):
    """torch.nn.functional.fractional_max_pool2d: (N, C, H, W) or (C, H, W) → (..., *output_size),
    pseudo-random window starts from ``_random_samples`` (N, C, 2) (drawn when not given)."""
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, 2,
                                "fractional_max_pool2d")


@cpu_autocast_policy("float32")
def fractional_max_pool3d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples: Tensor | None = None):
    """torch.nn.functional.fractional_max_pool3d: (N, C, T, H, W) or (C, T, H, W) → (..., *output_size),
    window starts from ``_random_samples`` (N, C, 3)."""
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, 3,
                                "fractional_max_pool3d")
