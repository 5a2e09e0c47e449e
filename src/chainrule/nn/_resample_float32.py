"""float32 linear, bilinear, trilinear and bicubic interpolation rounded as torch 2.13's CPU kernels
round it (aten/src/ATen/native/cpu/UpSampleKernel.cpp, its AVX2 build, where the compiler fuses
``a * b + c`` into one multiply-add).

Everything is float32 (``opmath_type<float>``):

* the source coordinate ``scale * (i + 0.5) - 0.5`` is one fused multiply-add (``scale * i``
  with align_corners), ``scale`` the float32 of ``in / out``, of ``(in - 1) / (out - 1)`` or of
  ``1 / scale_factor`` (taken in double); the lower tap ``min(floor(x), in - 1)``, the fraction
  ``clamp(x - tap, 0, 1)``; bilinear's weights ``1 - λ`` and ``λ``; Keys' cubic weights
  (A = -0.75) ``((A + 2) t - (A + 3)) t · t + 1`` and ``((A t - 5A) t + 8A) t - 4A`` at
  distances ``1 + λ``, ``λ``, ``1 - λ`` and ``(1 - λ) + 1``, the multiply-adds marked fused where
  the compiler fused them;
* the generic kernel (``upsample_generic_Nd_kernel_impl``) interpolates the last dim first, then
  outwards, each value ``fma(v0, w0, v1 * w1)`` and then ``fma(vj, wj, ·)`` for further taps;
* the linear modes' channels-last kernel (``cpu_upsample_linear_channels_last``: bilinear's for a
  channels-last input of more than 3 channels, an output whose height + width is at most 128, or
  a 3-channel image on one thread; trilinear's for a channels-last input of more than 3 channels)
  weighs each corner by the product of its dims' weights, left to right, and adds the corners
  (first dim's lower tap first, last dim's changing fastest) in two orders: the channels in
  whole 8-float vectors from the last corner back, ``fma(v0, w0, fma(v1, w1, ... fma(vn, wn,
  v(n-1) * w(n-1))))``, the rest one by one from the first, ``fma(v0, w0, v1 * w1)`` then
  ``fma(vj, wj, ·)``.

A fused multiply-add is the float64 sum of the exact float64 product, rounded to float32.
Measured against torch 2.13 on this machine, every element matched: 3,075,160 in 216 fixed
bilinear and bicubic cases (3, 11 and 16 channels, both align_corners, scale factors and sizes,
both layouts) and 594,834 in 120 random linear, bilinear, bicubic and trilinear ones (sizes 1 to
13, 1 to 16 channels, contiguous, channels-last and transposed). interpolate takes these for every
float32 NumPy input of these modes, with a graph recorded or not (see its _float32_interpolated).
"""

from __future__ import annotations

import numpy as np

from .._opmath import fused_multiply_add_float32 as _fma

_F32, _F64 = np.float32, np.float64
_CUBIC_A = _F32(-0.75)
_VECTOR_FLOATS = 8  # Vectorized<float>::size() in the AVX2 kernel


# output elements per block: each block's values, float32 and float64 temporaries stay in a core's
# L2 cache and are reused from the allocator's pool, where whole-output temporaries stream through
# memory, each a fresh mapping that page-faults in (the blocks compute the same bits)
_BLOCK = 1 << 16


def _in_blocks(x: np.ndarray, out_spatial: tuple, compute) -> np.ndarray:
    """``compute`` (N-C-spatial float32 array -> its interpolation) on blocks of ``x``'s (N, C)
    planes of about ``_BLOCK`` output elements each, into one fresh C-order output."""
    n, c = x.shape[:2]
    plane = int(np.prod(out_spatial))
    if n * c * plane <= _BLOCK:
        return compute(x)
    out = np.empty((n, c, *out_spatial), _F32)
    planes = max(1, _BLOCK // plane)
    if planes >= c:  # whole samples at a time
        step = planes // c
        for i in range(0, n, step):
            out[i:i + step] = compute(x[i:i + step])
    else:
        for i in range(n):
            for j in range(0, c, planes):
                out[i:i + 1, j:j + planes] = compute(x[i:i + 1, j:j + planes])
    return out


def _weighted_sum(values: list, weights: list, weights64: list, order: list) -> np.ndarray:
    """Σ values[j] · weights[j] (float32 arrays of one shape, float32 weights broadcast along their
    trailing dims, ``weights64`` their float64 copies) added in ``order`` as the kernels add: the
    first two ``fma(v, w, v' * w')``, then ``fma(v, w, ·)`` for each further one. A fused
    multiply-add is the float64 sum of the exact float64 product, rounded to float32."""
    first, *rest = order
    total = np.multiply(values[first], weights[first])
    wide = np.empty(total.shape, _F64)  # one float64 buffer for every step
    for j in rest:
        np.copyto(wide, values[j])
        wide *= weights64[j]
        wide += total
        np.copyto(total, wide, casting="same_kind")
    return total


def _scale(in_size: int, out_size: int, align_corners: bool, scale_factor) -> np.float32:
    """area_pixel_compute_scale in float32."""
    if align_corners:
        return _F32(in_size - 1) / _F32(out_size - 1) if out_size > 1 else _F32(0)
    if scale_factor is not None and scale_factor > 0:
        return _F32(1.0 / scale_factor)
    return _F32(in_size) / _F32(out_size)


def _source_coordinates(in_size: int, out_size: int, align_corners: bool, scale_factor, cubic: bool):
    scale = _scale(in_size, out_size, align_corners, scale_factor)
    positions = np.arange(out_size, dtype=_F32)
    if align_corners:
        return scale * positions
    source = _fma(scale, positions + _F32(0.5), _F32(-0.5))
    # linear modes clamp a negative coordinate to 0; cubic keeps it and clamps its taps instead
    return source if cubic else np.maximum(source, _F32(0))


def _lower_tap_and_fraction(source: np.ndarray, in_size: int):
    lower = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    return lower, np.clip(source - lower.astype(_F32), _F32(0), _F32(1))


def linear_taps(in_size: int, out_size: int, align_corners: bool, scale_factor):
    """The two taps (input indices) of each output position along one dim, and their weights."""
    if in_size == out_size:  # torch copies: each output its own input, weights 1 and 0
        same = np.arange(out_size)
        return [same, same], [np.ones(out_size, _F32), np.zeros(out_size, _F32)]
    lower, fraction = _lower_tap_and_fraction(
        _source_coordinates(in_size, out_size, align_corners, scale_factor, cubic=False), in_size)
    return [lower, lower + (lower < in_size - 1)], [_F32(1) - fraction, fraction]


def cubic_taps(in_size: int, out_size: int, align_corners: bool, scale_factor):
    """The four taps (clamped input indices) of each output position along one dim, and Keys'
    weights for them."""
    lower, t = _lower_tap_and_fraction(
        _source_coordinates(in_size, out_size, align_corners, scale_factor, cubic=True), in_size)
    a = _CUBIC_A

    def near(x):  # |x| <= 1: ((A + 2) x - (A + 3)) x · x + 1, the inner multiply-add fused
        return _fma(a + _F32(2), x, -(a + _F32(3))) * x * x + _F32(1)

    def far(x):  # 1 < |x| < 2: ((A x - 5A) x + 8A) x - 4A, the first two fused
        return _fma(_fma(a, x, _F32(-5) * a), x, _F32(8) * a) * x - _F32(4) * a

    opposite = _F32(1) - t  # torch's x2: the last tap's distance is x2 + 1, rounded twice
    weights = [far(t + _F32(1)), near(t), near(opposite), far(opposite + _F32(1))]
    return [np.clip(lower + j, 0, in_size - 1) for j in (-1, 0, 1, 2)], weights


def _along(weights: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    return weights.reshape((-1,) + (1,) * (ndim - 1 - axis))


def generic(x: np.ndarray, taps_per_dim, weights_per_dim) -> np.ndarray:
    """float32 N-C-spatial ``x`` interpolated by the generic kernel: the last dim first, each
    value fma(v0, w0, v1 * w1), then fma(vj, wj, ·) for further taps."""
    spatial = len(taps_per_dim)
    weights = [[_along(w, k, spatial) for w in ws] for k, ws in enumerate(weights_per_dim)]
    weights64 = [[w.astype(_F64) for w in ws] for ws in weights]

    def compute(block):
        for k in reversed(range(spatial)):
            values = [np.take(block, tap, axis=2 + k) for tap in taps_per_dim[k]]
            block = _weighted_sum(values, weights[k], weights64[k], [1, 0, *range(2, len(values))])
        return block

    return _in_blocks(x, tuple(len(taps[0]) for taps in taps_per_dim), compute)


def channels_last(x: np.ndarray, taps_per_dim, weights_per_dim) -> np.ndarray:
    """float32 N-C-spatial ``x`` (2 or 3 spatial dims) interpolated by the linear modes'
    channels-last kernel (values laid out as ``x``'s dims)."""
    spatial = len(taps_per_dim)
    # the corners in torch's order, the last dim's tap changing fastest: each corner's weight the
    # product of its dims' weights, left to right
    weights = [None]
    for k, tap_weights in enumerate(weights_per_dim):
        along = [_along(w, k, spatial) for w in tap_weights]
        weights = [w if weight is None else weight * w for weight in weights for w in along]
    weights64 = [w.astype(_F64) for w in weights]
    last = len(weights) - 1
    vector_order = [last - 1, last, *range(last - 2, -1, -1)]
    scalar_order = [1, 0, *range(2, last + 1)]

    def corners(block):  # each dim's taps taken from the corners so far
        values = [block]
        for k, taps in enumerate(taps_per_dim):
            values = [np.take(v, tap, axis=2 + k) for v in values for tap in taps]
        return values

    out_spatial = tuple(len(taps[0]) for taps in taps_per_dim)
    vectors = x.shape[1] - x.shape[1] % _VECTOR_FLOATS  # the channels the vector loop covers
    parts = [(slice(None, vectors), vector_order), (slice(vectors, None), scalar_order)]
    parts = [(part, order) for part, order in parts if part.stop != 0 and part.start != x.shape[1]]
    if len(parts) == 1:
        order = parts[0][1]
        return _in_blocks(x, out_spatial, lambda block: _weighted_sum(corners(block), weights, weights64, order))
    out = np.empty((x.shape[0], x.shape[1], *out_spatial), _F32)
    for part, order in parts:
        out[:, part] = _in_blocks(x[:, part], out_spatial,
                                  lambda block, order=order: _weighted_sum(corners(block), weights, weights64, order))
    return out


def linear_backward_rounds(taps_per_dim, weights_per_dim, in_sizes: tuple) -> list:
    """The terms of torch's generic backward kernel for a linear, bilinear or trilinear interpolation
    (``cpu_upsample_linear_backward``), grouped for ``linear_backward``: the kernel walks the output
    positions in order and, for each, its corners in the forward's order, adding
    ``acc[corner] = fma(weight, g, acc[corner])`` from zeros, the corner's weight the product of its
    dims' weights, left to right. Round k holds each input position's k-th term (so its positions are
    distinct), as (input positions, output positions, float64 weights), flat within a plane."""
    spatial = len(taps_per_dim)
    out_spatial = tuple(len(taps[0]) for taps in taps_per_dim)
    shape = (*out_spatial, *(len(taps) for taps in taps_per_dim))  # (output position, corner)

    def placed(arrays, k):  # one dim's per-tap arrays, along that dim's output and tap axes
        place = [1] * (2 * spatial)
        place[k], place[spatial + k] = out_spatial[k], len(arrays)
        return np.stack(arrays, axis=1).reshape(place)

    target, weight, stride = np.zeros(shape, np.int64), None, 1
    for k in reversed(range(spatial)):
        target = target + placed(taps_per_dim[k], k) * stride
        stride *= in_sizes[k]
    for k in range(spatial):
        along = placed(weights_per_dim[k], k)
        weight = along if weight is None else weight * along  # float32, left to right
    target = target.reshape(-1)
    weight = np.broadcast_to(weight, shape).reshape(-1).astype(_F64)
    source = np.broadcast_to(np.arange(int(np.prod(out_spatial))).reshape((*out_spatial, *(1,) * spatial)),
                             shape).reshape(-1)
    return [(target[terms].astype(np.int32), source[terms].astype(np.int32), weight[terms]) for terms in _rounds(target)]


def _rounds(target: np.ndarray) -> list:
    """The terms (indices into ``target``, the input position each adds to, in the kernel's order)
    by their rank among their position's terms: round k, each position's k-th term."""
    order = np.argsort(target, kind="stable")
    ranked = target[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    rank = np.arange(ranked.size) - np.repeat(starts, np.diff(np.r_[starts, ranked.size]))
    by_rank = order[np.argsort(rank, kind="stable")]
    bounds = np.r_[0, np.cumsum(np.bincount(rank))]
    return [by_rank[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]


def _position_major(grad: np.ndarray) -> np.ndarray:
    """``grad``'s (N·C, positions) planes transposed, each position's N·C values one row, so that a
    round's gathers and scatters move whole rows rather than single values."""
    return np.ascontiguousarray(grad.reshape(grad.shape[0] * grad.shape[1], int(np.prod(grad.shape[2:]))).T)


def linear_backward(grad: np.ndarray, rounds: list, in_sizes: tuple) -> np.ndarray:
    """The gradient of a linear, bilinear or trilinear interpolation's input for the float32
    N-C-spatial ``grad`` of its output, rounded as torch's backward kernel rounds it: the terms of
    ``linear_backward_rounds``, a round at a time, each a fused multiply-add (the float64 sum of the
    exact float64 product, rounded to float32)."""
    positions = _position_major(grad)
    acc = np.zeros((int(np.prod(in_sizes)), positions.shape[1]), _F32)
    # one float32 and one float64 buffer for every round (the first round is the largest): fresh ones
    # would page-fault in each round
    most = len(rounds[0][0]) if rounds else 0
    picked, wide = np.empty((most, acc.shape[1]), _F32), np.empty((most, acc.shape[1]), _F64)
    for into, source, weight in rounds:
        terms = len(into)
        np.take(positions, source, axis=0, out=picked[:terms])
        np.multiply(picked[:terms], weight[:, None], out=wide[:terms])
        np.take(acc, into, axis=0, out=picked[:terms])
        wide[:terms] += picked[:terms]
        acc[into] = wide[:terms]
    return np.ascontiguousarray(acc.T).reshape(*grad.shape[:2], *in_sizes)


def _cubic_backward_taps(in_size: int, out_size: int, align_corners: bool, scale_factor):
    """The four taps and Keys' weights of each output position along one dim as torch's bicubic
    backward (UpSampleBicubic2d.cpp, built without fused multiply-adds) computes them: the source
    coordinate ``scale * (i + 0.5) - 0.5`` and the weights rounded at each operation."""
    scale = _scale(in_size, out_size, align_corners, scale_factor)
    positions = np.arange(out_size, dtype=_F32)
    source = scale * positions if align_corners else scale * (positions + _F32(0.5)) - _F32(0.5)
    lower, t = _lower_tap_and_fraction(source, in_size)
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + _F32(2)) * x - (a + _F32(3))) * x * x + _F32(1)

    def far(x):  # 1 < |x| < 2
        return ((a * x - _F32(5) * a) * x + _F32(8) * a) * x - _F32(4) * a

    opposite = _F32(1) - t
    weights = [far(t + _F32(1)), near(t), near(opposite), far(opposite + _F32(1))]
    return [np.clip(lower + j, 0, in_size - 1) for j in (-1, 0, 1, 2)], weights


def cubic_backward_rounds(in_sizes: tuple, out_sizes: tuple, align_corners: bool, scales: tuple) -> list:
    """The terms of torch's bicubic backward (``upsample_bicubic2d_backward_out_frame``): for each
    output position in order, for each of its 4 x 4 taps (the column taps outer, as measured against
    torch 2.13), ``acc[tap] += (g · wy) · wx``,
    each product and sum rounded to float32. Grouped as linear_backward_rounds groups them, as
    (input positions, output positions, row weights, column weights)."""
    (rows, row_weights), (cols, col_weights) = (
        _cubic_backward_taps(i, o, align_corners, s) for i, o, s in zip(in_sizes, out_sizes, scales))
    height, width = out_sizes
    shape = (height, width, 4, 4)  # (output row, output column, column tap, row tap)
    target = (np.stack(rows, axis=1)[:, None, None, :] * in_sizes[1] + np.stack(cols, axis=1)[None, :, :, None])
    target = np.broadcast_to(target, shape).reshape(-1)
    row_weight = np.broadcast_to(np.stack(row_weights, axis=1)[:, None, None, :], shape).reshape(-1)
    col_weight = np.broadcast_to(np.stack(col_weights, axis=1)[None, :, :, None], shape).reshape(-1)
    source = np.broadcast_to(np.arange(height * width).reshape(height, width, 1, 1), shape).reshape(-1)
    return [(target[terms].astype(np.int32), source[terms].astype(np.int32), row_weight[terms][:, None],
             col_weight[terms][:, None]) for terms in _rounds(target)]


def cubic_backward(grad: np.ndarray, rounds: list, in_sizes: tuple) -> np.ndarray:
    """The gradient of a bicubic interpolation's input for the float32 N-C-H-W ``grad`` of its
    output, rounded as torch's backward rounds it: the terms of ``cubic_backward_rounds``, a round
    at a time, in float32 throughout."""
    positions = _position_major(grad)
    acc = np.zeros((int(np.prod(in_sizes)), positions.shape[1]), _F32)
    for into, source, row_weight, col_weight in rounds:
        term = positions[source]
        term *= row_weight
        term *= col_weight
        acc[into] += term
    return np.ascontiguousarray(acc.T).reshape(*grad.shape[:2], *in_sizes)

