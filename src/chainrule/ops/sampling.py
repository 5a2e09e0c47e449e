"""Spatial sampling: affine_grid and grid_sample (the spatial-transformer pair), for 2-D and 3-D,
and the separable resampling that interpolate's nearest, linear and cubic modes run on.

affine_grid is one node, as torch's (a batched product with a constant base grid; its rule the
transposed product). grid_sample is a composition of differentiable primitives (arithmetic,
gather and where), so the gradient with respect to the input and the grid, and every higher
derivative, comes from the primitives' rules with no hand-written rule to keep in step. The only
non-differentiable pieces are the integer corner indices and the in-bounds masks, which are
piecewise constant in the grid (torch's gradient treats them the same way).
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import _dtype
from .._backend import array_module
from .._opmath import cpu_autocast_policy
from .._torch_function import user_stacklevel
from ..autograd import function as _function
from ..autograd.forward_ad import carries_tangent
from ..autograd.function import Function, ctx_value, kept_value, name_node, on_arrays
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..tensor import Tensor
from .creation import linspace
from .elementwise import refuse_kernel, where
from .linalg import matmul
from .memory_format import in_suggested_format, row_major
from .shape import pad, stack

__all__ = ["affine_grid", "grid_sample"]
__not_methods__ = set(__all__)

# torch 2.x words it the same for both ops, naming both and pointing at grid_sample's docs
_ALIGN_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. "
                  "Please specify align_corners=True if the old behavior is desired. See the documentation of "
                  "grid_sample for details.")


def _align(align_corners) -> bool:
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, UserWarning, stacklevel=user_stacklevel())
        return False
    return bool(align_corners)


# ---------------------------------------------------------------- affine_grid
def _base_coordinates(steps: int, align_corners: bool, like: Tensor) -> Tensor:
    """Pixel centres (align_corners=False) or corners (True) of one axis, in [-1, 1]."""
    if steps <= 1:
        return linspace(0.0, 0.0, 1, dtype=like.dtype, device=like.device)
    coords = linspace(-1.0, 1.0, steps, dtype=like.dtype, device=like.device)
    return coords if align_corners else coords * ((steps - 1) / steps)


def affine_grid(theta: Tensor, size, align_corners=None) -> Tensor:
    """torch.nn.functional.affine_grid: the sampling grid of a batch of affine maps.

    ``theta`` (N, 2, 3) and ``size`` (N, C, H, W) give a grid (N, H, W, 2); ``theta`` (N, 3, 4) and
    ``size`` (N, C, D, H, W) give (N, D, H, W, 3). Each grid point is theta @ (x, y[, z], 1) for the
    normalised output coordinates, x along the last dimension.
    """
    align = _align(align_corners)
    given, size = size, tuple(int(s) for s in size)  # messages print the size as the caller gave it, as torch's do
    if not theta.is_floating_point():
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    if len(size) not in (4, 5):
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {given}.")
    spatial = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (spatial, spatial + 1):
        raise ValueError(f"Expected a batch of {spatial}D affine matrices of shape Nx{spatial}x{spatial + 1} for "
                         f"size {given}. Got {theta.shape}.")
    if align and min(size[2:]) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation "
                      "of affine_grid for details.", UserWarning, stacklevel=2)
    elif min(size) <= 0:  # torch checks every dimension, batch and channels too, unless it has just warned
        raise ValueError(f"Expected non-zero, positive output size. Got {given}")
    if theta.shape[0] != size[0]:  # torch's batched matmul of the base grid with theta^T says so
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{size[0]}, "
                           f"{spatial + 1}] but got: [{theta.shape[0]}, {spatial + 1}].")
    with no_grad():  # (x, y[, z], 1) per output point, x varying fastest: the axes reversed, then ones
        axes = [_base_coordinates(steps, align, theta) for steps in reversed(size[2:])]
        mesh = [a.reshape(*[-1 if i == spatial - 1 - k else 1 for i in range(spatial)]).expand(*size[2:])
                for k, a in enumerate(axes)]
        base = stack([*mesh, mesh[0].new_ones(size[2:])], dim=-1).reshape(1, -1, spatial + 1)
    return AffineGridGenerator.apply(theta, base=base, size=size, align_corners=align)


class AffineGridGenerator(Function):
    """affine_grid as torch's one node: grid = base @ thetaᵀ over the (1, points, spatial + 1) base
    grid, shaped (N, *size[2:], spatial)."""
    _array_forward = True
    label = "affine_grid"
    rule = "∂/∂theta = (baseᵀ @ g)ᵀ per batch, g the grid's gradient as (N, points, spatial)"
    formula = "affine_grid({0})"
    saved_attributes = {"_saved_align_corners": ctx_value("align_corners"), "_saved_size": ctx_value("size")}

    @staticmethod
    def forward(ctx, theta, base, size, align_corners):
        ctx.base, ctx.size, ctx.align_corners = base, size, align_corners
        grid = matmul(base, Tensor._make(theta).transpose(1, 2))._data  # (N, points, spatial)
        return grid.reshape(size[0], *size[2:], len(size) - 2)

    @staticmethod
    def backward(ctx, grad):
        points = ctx.base.shape[1]
        grad_rows = grad.reshape(ctx.size[0], points, len(ctx.size) - 2)
        return matmul(ctx.base.transpose(1, 2), grad_rows).transpose(1, 2)


# ---------------------------------------------------------------- grid_sample
def _even(flips):
    """Where the whole (non-negative) numbers ``flips`` are even: remainder(flips, 2) == 0 but for
    infinities (NaN either way where they flow on), in a halving and a floor, not NumPy's
    float remainder (16x slower)."""
    return array_module(flips).floor(flips * 0.5) * 2 == flips


def _reflect(x: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """Reflect coordinates into [twice_low / 2, twice_high / 2] as often as needed (torch's rule)."""
    if twice_low == twice_high:
        return x * 0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    distance = (x - low).abs()
    flips = (distance.detach() / span).floor()
    extra = distance - flips * span
    even = Tensor._make(_even(flips._data))
    return where(even, extra + low, span - extra + low)


def _unnormalize(coord: Tensor, size: int, align_corners: bool) -> Tensor:
    """A grid coordinate in [-1, 1] as a (fractional) pixel index along an axis of ``size``."""
    return (coord + 1) / 2 * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2


def _nan_position(size: int, spatial: int) -> int:
    """Where torch's clip onto [0, size - 1] puts a NaN pixel index (from a NaN grid value, or an
    infinite one reflected): the 2-D kernel's vectorised max(x, 0) gives 0, the 3-D kernel's scalar
    std::min(size - 1, std::max(x, 0)) gives size - 1."""
    return 0 if spatial == 2 else size - 1


def _clip_array(x, size: int, spatial: int):
    """A pixel index array clipped onto [0, size - 1], NaN to _nan_position (fmax/fmin ignore NaN)."""
    xp = array_module(x)
    return xp.fmin(xp.fmax(x, 0), size - 1) if spatial == 2 else xp.fmax(xp.fmin(x, size - 1), 0)


def _outside_int_range(x):
    """Where the 3-D kernel's safe_downgrade_to_int_range moves a pixel index to -100 (outside, so it
    reads 0): not finite, or beyond int32's range compared in double (the 2-D kernel has no such step)."""
    if isinstance(x, Tensor):  # float16/bfloat16, whose finite values all lie in the range
        return ~x.isfinite()
    return ~(array_module(x).isfinite(x) & (x >= np.float64(-2.0**31)) & (x <= np.float64(2.0**31 - 2)))


def _downgrade_array(x, spatial: int):
    """safe_downgrade_to_int_range on an index array of a 3-D sampling (the 2-D ones pass as they are)."""
    if spatial != 3 or x.size == 0:
        return x
    if float(x.min()) >= -2.0**31 and float(x.max()) <= 2.0**31 - 2:  # (False where a NaN makes them NaN)
        return x
    return array_module(x).where(_outside_int_range(x), x.dtype.type(-100), x)


def _pad_coordinate(x: Tensor, size: int, padding_mode: str, align_corners: bool, spatial: int) -> Tensor:
    """A pixel index moved inside the axis as ``padding_mode`` says ('zeros' leaves it: reads outside are 0)."""
    if padding_mode == "border":
        x = x.clamp(0, size - 1)
    elif padding_mode == "reflection":
        x = _reflect(x, 0, 2 * (size - 1)) if align_corners else _reflect(x, -1, 2 * size - 1)
        x = x.clamp(0, size - 1)
    if padding_mode != "zeros":
        x = where(x.isnan(), float(_nan_position(size, spatial)), x)
    if spatial == 3:
        x = where(_outside_int_range(x), -100.0, x)
    return x


def _pad_coordinate_array(x, size: int, padding_mode: str, align_corners: bool, spatial: int):
    """_pad_coordinate on a float32/float64 array, for a grid no gradient flows to: the same
    operations in the same order, so the same values, without a node per step."""
    xp = array_module(x)
    if padding_mode == "border":
        x = _clip_array(x, size, spatial)
    elif padding_mode == "reflection":
        twice_low, twice_high = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
        if twice_low == twice_high:
            x = x * 0
        else:
            low, span = twice_low / 2, (twice_high - twice_low) / 2
            distance = xp.abs(x - low)
            flips = xp.floor(distance / span)
            extra = distance - flips * span
            x = xp.where(_even(flips), extra + low, span - extra + low)
        x = _clip_array(x, size, spatial)
    return _downgrade_array(x, spatial)


def _cubic_coefficients(t: Tensor) -> list[Tensor]:
    """The four weights of the taps at -1, 0, 1, 2 from the fraction ``t`` (Keys' cubic, A = -0.75, as torch)."""
    a = -0.75

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    opposite = 1 - t  # torch's order of rounding in float16/bfloat16: 1 - t first, then + 1
    return [far(t + 1), near(t), near(opposite), far(opposite + 1)]


def refuse_0d_sampler_arguments(input: Tensor, grid: Tensor) -> None:
    """torch's grid sampler reads ``input.size(0)`` and ``grid.size(0)`` before its dimension checks:
    a 0-d tensor there is its IndexError, not the RuntimeError naming the expected dims."""
    if input.ndim == 0 or grid.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")


def _check_grid_sample(input: Tensor, grid: Tensor, mode: str, padding_mode: str) -> None:
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    refuse_0d_sampler_arguments(input, grid)
    if input.device != grid.device:  # (its own words, checked first of torch's common checks)
        raise RuntimeError(f"grid_sampler(): expected input and grid to be on same device, but input is on "
                           f"{input.device} and grid is on {grid.device}")
    # torch's check_grid_sampler_common (batch, last dimension, empty spatial dimensions), then
    # check_grid_sampler_2d for a 4-D input or _3d for any other, then the kernel's dtype
    sizes = f"input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
    if grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got {sizes}")
    if grid.shape[-1] != input.ndim - 2:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {input.ndim - 2} in last dimension, but got "
                           f"grid with sizes {list(grid.shape)}")
    if any(s == 0 for s in input.shape[2:]):
        raise RuntimeError(f"grid_sampler(): expected input to have non-empty spatial dimensions, but input has "
                           f"sizes {list(input.shape)} with dimension {2 + list(input.shape[2:]).index(0)} being empty")
    expected = 4 if input.ndim == 4 else 5
    if input.ndim != expected or grid.ndim != expected:
        raise RuntimeError(f"grid_sampler(): expected {expected}D input and grid with same number of dimensions, "
                           f"but got {sizes}")
    if mode == "bicubic" and input.ndim != 4:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    if input._data.dtype.kind in "biuc":  # torch's CPU kernels refuse them before comparing the dtypes
        refuse_kernel(input, "grid_sampler_2d_cpu_kernel_impl" if input.ndim == 4 else "grid_sampler3d_cpu")
    if not input.is_floating_point():
        raise RuntimeError(f"grid_sampler(): expected a floating input, got {input.dtype}")
    if input.dtype is not grid.dtype:  # torch 2.13's CPU kernel, reading the grid as the input's type
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(input.dtype)} but found "
                           f"{_dtype.scalar_name(grid.dtype)}")


def _flat_positions(positions, shape):
    """Each batch's plane positions (N, P) as flat indices of every channel's read in (N, C, L)."""
    xp = array_module(positions)
    batch, channels, length = shape
    planes = (xp.arange(batch * channels, dtype=np.int64) * length).reshape(batch, channels, 1)
    return positions[:, None, :] + planes


def _plane_scatter(values, positions, plane_size: int, index=None):
    """(N, C, P) ``values`` added at each batch's flat plane ``positions`` (N, P) of (N, C,
    plane_size) zeros, repeats summed in order; ``index``, when given, is _flat_positions of them.
    (NumPy 2's ufunc.at takes a fast path for one flat float index: 1.1 ms for 262,144 float32
    values, against 5.9 ms for a float64 bincount.)"""
    xp = array_module(values)
    batch, channels, _ = values.shape
    out = xp.zeros(batch * channels * plane_size, dtype=values.dtype)
    if index is None:
        index = _flat_positions(positions, (batch, channels, plane_size))
    xp.add.at(out, index.reshape(-1), values.reshape(-1))
    return out.reshape(batch, channels, plane_size)


class PlaneGather(Function):
    """(N, C, L) read at flat positions (N, P), the same for every channel: (N, C, P)."""
    _array_forward = True
    label = "grid_sample (read)"
    rule = "adds each read's gradient back to the position it was read from"

    @staticmethod
    def forward(ctx, x, positions):
        index = _flat_positions(positions, x.shape)
        if ctx.needs_input_grad[0]:  # the flat index is the backward's scatter index too
            ctx.positions, ctx.plane_size, ctx.index = positions, x.shape[2], index
        return array_module(x).take(x.reshape(-1), index)

    @staticmethod
    def backward(ctx, grad):
        return PlaneScatter.apply(grad, positions=ctx.positions, plane_size=ctx.plane_size, index=ctx.index)


class PlaneScatter(Function):
    """PlaneGather's adjoint (its backward, recorded as an op under create_graph)."""
    _array_forward = True
    label = "grid_sample_backward (scatter)"
    rule = "reads the gradient at the positions the values were added to"

    @staticmethod
    def forward(ctx, values, positions, plane_size, index=None):
        if ctx.needs_input_grad[0]:
            ctx.positions = positions
        return _plane_scatter(values, positions, plane_size, index)

    @staticmethod
    def backward(ctx, grad):
        return PlaneGather.apply(grad, positions=ctx.positions)



def _weigh_taps(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_k values[n, k, p, c] · weights[n, k, p] as (N, C, P) contiguous: each tap's products added
    in tap order, as the einsum "nkpc,nkp->ncp" adds them (the same bits: 0 of 624,000 values
    differed over 1-64 channels, 4-16 taps, float32 and float64), written in torch's layout instead
    of the einsum's (N, P, C) and a copy ((32, 3, 64, 64) bilinear: 1.2 ms instead of 2.45)."""
    batch, taps, points, channels = values.shape
    out = np.zeros((batch, channels, points), dtype=values.dtype)  # (from +0, as einsum: a -0 product adds to +0)
    term = np.empty_like(out)
    with np.errstate(all="ignore"):  # (silent, as einsum is on inf · 0 and overflow)
        for k in range(taps):
            np.multiply(values[:, k].transpose(0, 2, 1), weights[:, k, None, :], out=term)
            out += term
    return out


# einsum's contiguous reduction sums a few channels one after another and more of them in SIMD
# partial sums; up to this many (per dtype) the channel-by-channel adds of _channel_sum are its bits
_SEQUENTIAL_CHANNEL_SUM = {np.float32: 3, np.float64: 2}


def _channel_sum(grad: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Σ_c grad[n, c, p] · values[n, k, p, c] as (N, K, P), the channels added in order: the einsum
    "npc,nkpc->nkp" of PaddedTapSum's backward for few channels, without the channels-last copy
    of the gradient ((32, 3, 64, 64) bilinear: 1 ms instead of 3.9)."""
    out = np.zeros(values.shape[:-1], dtype=values.dtype)  # (from +0, as einsum)
    with np.errstate(all="ignore"):  # (silent, as einsum)
        for c in range(values.shape[-1]):
            out += values[..., c] * grad[:, None, c, :]
    return out

class PaddedTapSum(Function):
    """(N, C, *S) ``x`` read at K taps per point and weighed by (N, K, P) ``weights``: (N, C, P).
    ``rows`` (N, K, P) are each tap's position in x's planes padded by one zero pixel on every side
    (a position outside x is clipped onto that border, so it reads 0 with no in-bounds mask). The
    reads are rows of a channels-last copy, one per tap shared by every channel (C values copied
    at a time, not one), and one einsum weighs them."""
    _array_forward = True
    label = "grid_sample (read and weigh taps)"
    rule = ("∂/∂x = g times each tap's weight added back at its position, "
            "∂/∂weights = Σ over channels of g · the values read")

    @staticmethod
    def forward(ctx, x, weights, rows):
        xp = array_module(x)
        batch, channels, *sizes = x.shape
        inner = (slice(None), *[slice(1, -1)] * len(sizes))
        table = xp.zeros((batch, *[size + 2 for size in sizes], channels), dtype=x.dtype)
        table[inner] = xp.moveaxis(x, 1, -1)
        plane = int(np.prod(table.shape[1:-1], dtype=np.int64))
        flat_rows = rows.reshape(batch, rows.shape[1] * rows.shape[2]) + (xp.arange(batch, dtype=rows.dtype) * plane)[:, None]
        values = table.reshape(batch * plane, channels).take(flat_rows.reshape(-1), axis=0)
        values = values.reshape(*rows.shape, channels)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            ctx.rows, ctx.padded_shape = rows, (batch, channels, *[size + 2 for size in sizes])
            ctx.values = values if ctx.needs_input_grad[1] else None
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, weights if ctx.needs_input_grad[0] else None)
        if xp is not np:  # (einsum leaves it (N, P, C) in memory: torch's output is contiguous)
            return xp.ascontiguousarray(xp.einsum("nkpc,nkp->ncp", values, weights))
        return _weigh_taps(values, weights)

    @staticmethod
    def backward(ctx, grad):
        # out[n, c, p] = Σ_k values[n, k, p, c] · weights[n, k, p], values[n, k, p, c] = padded x at rows[n, k, p]
        x, weights = ctx.saved_values
        batch, channels, *padded = ctx.padded_shape
        taps, points = ctx.rows.shape[1:]
        positions = ctx.rows.reshape(batch, taps * points)
        inner = (slice(None), slice(None), *[slice(1, -1)] * len(padded))
        grad_x = grad_weights = None
        if on_arrays(grad):  # nothing records: the same sums on the arrays
            g = grad._data
            xp = array_module(g)
            if weights is not None:
                # one weighted count per channel over the rows every channel shares (a float64 sum,
                # rounded once), not an add.at of every channel's value at its own flat index
                plane = int(np.prod(padded, dtype=np.int64))
                flat_rows = (positions + (xp.arange(batch, dtype=positions.dtype) * plane)[:, None]).reshape(-1)
                w = weights._data
                planes = xp.empty((channels, batch * plane), dtype=g.dtype)
                for c in range(channels):
                    planes[c] = xp.bincount(flat_rows, (g[:, c, None, :] * w).reshape(-1), batch * plane)
                planes = planes.reshape(channels, batch, *padded)[(slice(None), *inner[1:])]
                grad_x = Tensor._make(xp.ascontiguousarray(xp.moveaxis(planes, 0, 1)))
            if x is not None and xp is np and channels <= _SEQUENTIAL_CHANNEL_SUM[g.dtype.type]:
                grad_weights = Tensor._make(_channel_sum(g, ctx.values))
            elif x is not None:  # Σ over channels, with the channels innermost in both
                g_last = xp.ascontiguousarray(xp.moveaxis(g, 1, -1))
                grad_weights = Tensor._make(xp.einsum("npc,nkpc->nkp", g_last, ctx.values))
            return grad_x, grad_weights
        if weights is not None:
            spread = (grad.unsqueeze(2) * weights.unsqueeze(1)).reshape(batch, channels, taps * points)
            planes = PlaneScatter.apply(spread, positions=positions, plane_size=int(np.prod(padded, dtype=np.int64)))
            grad_x = planes.reshape(ctx.padded_shape)[inner]
        if x is not None:
            flat = pad(x, [1, 1] * len(padded)).reshape(batch, channels, int(np.prod(padded, dtype=np.int64)))
            values = PlaneGather.apply(flat, positions=positions).reshape(batch, channels, taps, points)
            grad_weights = (values * grad.unsqueeze(2)).sum(1)
        return grad_x, grad_weights


def _grid_coordinates(grid, sizes, padding_mode: str, align_corners: bool, pad: bool):
    """The grid's coordinates (float32/float64 array (N, ..., k)) as pixel indices, one (N, P) array
    per input dimension (x addresses the last), moved inside by ``padding_mode`` when ``pad``;
    with the derivative of each with respect to its grid value, piecewise constant, as torch's
    kernel sets it (clip_coordinates_set_grad, reflect_coordinates_set_grad): the scale, times 0
    where a clamp moved the coordinate or it lies on an end, times -1 for each reflection."""
    xp = array_module(grid)
    spatial = len(sizes)
    batch = grid.shape[0]
    coords, slopes = [], []
    for d in range(spatial):
        size = sizes[d]
        x = _unnormalize(grid[..., spatial - 1 - d].reshape(batch, int(np.prod(grid.shape[1:-1], dtype=np.int64))),
                         size, align_corners)
        slope = xp.full(x.shape, (size - 1) / 2 if align_corners else size / 2, dtype=x.dtype)
        if pad and padding_mode == "reflection":
            twice_low, twice_high = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
            if twice_low == twice_high:
                x, slope = x * 0, slope * 0
            else:  # _pad_coordinate_array's steps, the slope taking abs's sign and each flip's
                low, span = twice_low / 2, (twice_high - twice_low) / 2
                distance = xp.abs(x - low)
                flips = xp.floor(distance / span)
                extra = distance - flips * span
                even = _even(flips)
                slope = xp.where(x - low < 0, -slope, slope)  # (+1 at low itself, as torch's kernel)
                x = xp.where(even, extra + low, span - extra + low)
                slope = xp.where(even, slope, -slope)
        # torch's kernel counts the ends as outside (0 there); a NaN index keeps its slope (torch's
        # backward of a NaN grid has no value to match: its CPU kernel crashes on one)
        if pad and padding_mode != "zeros":
            slope = slope * ~((x <= 0) | (x >= size - 1))
            x = _clip_array(x, size, spatial)
        if pad:
            x = _downgrade_array(x, spatial)
        coords.append(x)
        slopes.append(slope)
    return coords, slopes


class GridValues(Function):
    """Values worked out from a float32/float64 grid (N, ..., k) on arrays — its pixel indices
    (k, N, P), or bilinear's factor pairs (k, N, 2, P) — as one node instead of a dozen elementwise
    ones: each is affine in one grid value with a piecewise-constant ``slope``, of the same shape."""
    _array_forward = True
    label = "grid_sample (grid to pixel indices)"
    rule = "∂/∂grid = Σ g times each value's slope (piecewise constant), back in the grid's layout"

    @staticmethod
    def forward(ctx, grid, value, slope):
        ctx.slope, ctx.grid_shape = slope, grid.shape
        return value

    @staticmethod
    def backward(ctx, grad):
        spatial = ctx.grid_shape[-1]
        if on_arrays(grad):
            g = grad._data * ctx.slope
            if g.ndim == 4:
                g = g[:, :, 0] + g[:, :, 1]
            return Tensor._make(array_module(g).ascontiguousarray(g[::-1].transpose(1, 2, 0)).reshape(ctx.grid_shape))
        g = grad * Tensor._make(ctx.slope)
        if g.ndim == 4:
            g = g[:, :, 0] + g[:, :, 1]
        return stack([g[spatial - 1 - k] for k in range(spatial)], dim=-1).reshape(ctx.grid_shape)


def _grid_sampler_node(out: Tensor, input: Tensor, grid: Tensor, mode: str, padding_mode: str, align: bool) -> Tensor:
    """The composed parts' last node named as torch's one (GridSampler2DBackward0, GridSampler3DBackward0),
    with its saved arguments (the modes as aten's enums)."""
    return name_node(out, f"GridSampler{out.ndim - 2}DBackward0", saved=_GRID_SAMPLER_SAVED,
                     kept={"align_corners": align, "grid": grid, "input": input,
                           "interpolation_mode": ("bilinear", "nearest", "bicubic").index(mode),
                           "padding_mode": ("zeros", "border", "reflection").index(padding_mode)})


# torch's _saved_* of grid_sampler_2d/3d: input and grid whichever needs a gradient
_GRID_SAMPLER_SAVED = {"_saved_align_corners": kept_value("align_corners"), "_saved_grid": kept_value("grid", tensor=True),
                       "_saved_input": kept_value("input", tensor=True),
                       "_saved_interpolation_mode": kept_value("interpolation_mode"),
                       "_saved_padding_mode": kept_value("padding_mode")}


@cpu_autocast_policy("float32")
def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners=None) -> Tensor:
    """torch.nn.functional.grid_sample: ``input`` (N, C, H, W) read at the normalised positions of
    ``grid`` (N, Ho, Wo, 2) — x, y in [-1, 1], x along W — giving (N, C, Ho, Wo); likewise 5-D with
    (x, y, z). mode 'bilinear' (trilinear for 5-D), 'nearest' (ties to even, as torch's nearbyint) or
    'bicubic' (4-D only, Keys' cubic with A = -0.75 over 4 x 4 taps);
    positions outside read zeros, the border, or the reflected image (``padding_mode``).
    Differentiable in ``input`` and, for 'bilinear' and 'bicubic', in ``grid``.
    """
    _check_grid_sample(input, grid, mode, padding_mode)
    if _function.active_dispatch is not None:  # (a wrapper argument's values live in it: argument_dispatch)
        made = _function.argument_dispatch(f"grid_sampler_{input.ndim - 2}d", grid_sample, (input, grid, mode, padding_mode, align_corners), {})
        if made is not _function.RUN_UNDISPATCHED:
            return made
    # a NaN or infinite grid value gives NaN weights (inf - floor(inf)): silently, as torch's
    with np.errstate(invalid="ignore", over="ignore"):
        return _grid_sample(input, grid, mode, padding_mode, align_corners)


def _grid_sample(input: Tensor, grid: Tensor, mode: str, padding_mode: str, align_corners) -> Tensor:
    align = _align(align_corners)
    batch, channels, *sizes = input.shape
    out_shape = tuple(grid.shape[1:-1])
    points = int(np.prod(out_shape, dtype=np.int64))
    spatial = len(sizes)
    # a grid no gradient reaches (nearest's never does) is worked on as arrays, without a node per
    # step: float32/float64 only, as float16/bfloat16's steps round as torch's opmath does
    grid_grad = (grid.requires_grad and is_grad_enabled()) or carries_tangent(grid)
    arrays = (mode == "nearest" or not grid_grad) and input.dtype in (_dtype.float32, _dtype.float64)
    # coordinate k of the grid addresses input dimension -1 - k (x is the last, width)
    xp = array_module(input._data)
    factors = None
    if input.dtype in (_dtype.float32, _dtype.float64) and not arrays:  # one node from the grid to them
        found, slopes = _grid_coordinates(grid._data, sizes, padding_mode, align, pad=mode != "bicubic")
        if mode == "bilinear":  # the factor pairs 1 - t, t of the fraction t, (k, N, 2, P)
            low = [xp.floor(c) for c in found]
            pairs = [xp.stack([1 - (c - f), c - f], axis=1) for c, f in zip(found, low)]
            signs = xp.array([-1, 1], dtype=found[0].dtype).reshape(1, 1, 2, 1)
            factors = GridValues.apply(grid, value=xp.stack(pairs), slope=xp.stack(slopes)[:, :, None, :] * signs)
        else:
            both = GridValues.apply(grid, value=xp.stack(found), slope=xp.stack(slopes))
            coords = [both[d] for d in range(spatial)]
    else:
        source = grid._data if arrays else grid
        coords = [_unnormalize(source[..., spatial - 1 - d].reshape(batch, points), sizes[d], align)
                  for d in range(spatial)]
        if mode != "bicubic":  # bicubic pads each tap instead (below)
            coords = [_pad_coordinate_array(c, sizes[d], padding_mode, align, spatial) if arrays
                      else _pad_coordinate(c, sizes[d], padding_mode, align, spatial) for d, c in enumerate(coords)]
    values_of = (lambda c: c) if arrays else (lambda c: c._data)
    constant = (lambda a: a) if arrays else Tensor._make
    flat = input.reshape(batch, channels, int(np.prod(sizes, dtype=np.int64)))
    strides = [int(np.prod(sizes[d + 1:], dtype=np.int64)) for d in range(spatial)]

    def read(corner_index: list) -> Tensor:
        """input at integer positions (one (N, points) array per dimension), zero outside it."""
        inside = xp.ones((batch, points), dtype=bool)
        flat_index = xp.zeros((batch, points), dtype=np.int64)
        for d, position in enumerate(corner_index):
            inside &= (position >= 0) & (position < sizes[d])
            # (fmax/fmin: a NaN position is index 0, masked out as outside, where clip kept the NaN)
            flat_index += xp.fmin(xp.fmax(position, 0), sizes[d] - 1).astype(np.int64) * strides[d]
        values = PlaneGather.apply(flat, positions=flat_index)
        if inside.all():  # (border and reflection always, zeros mostly): no (N, C, points) product
            return values
        return values * Tensor._make(inside.astype(input._data.dtype)).unsqueeze(1)

    def read_taps(tap_positions: list, tap_weights: Tensor) -> Tensor:
        """The weighted sum of K reads per point, all in one gather: ``tap_positions`` one integer
        array per dimension, broadcasting to (N, *taps, points) (K taps in all, in that order),
        ``tap_weights`` (N, K, points); reads outside are 0."""
        taps = tap_weights.shape[1]
        if input.dtype in (_dtype.float32, _dtype.float64):
            # positions in the planes padded by one pixel: those outside clipped onto the zero
            # border (fmax/fmin: a NaN position reads 0 too, its weight is NaN, as torch's)
            rows, row_stride = 0, 1
            for d in reversed(range(spatial)):
                onto = xp.fmin(xp.fmax(tap_positions[d], -1), sizes[d]).astype(np.int64)
                onto += 1
                rows = rows + onto * row_stride
                row_stride *= sizes[d] + 2
            if not isinstance(tap_weights, Tensor):
                tap_weights = Tensor._make(tap_weights)
            return PaddedTapSum.apply(input, tap_weights, rows=rows.reshape(batch, taps, points))
        full = np.broadcast_shapes(*[position.shape for position in tap_positions])
        tap_positions = [xp.broadcast_to(position, full).reshape(batch, taps, points) for position in tap_positions]
        inside, flat_index = None, 0
        for d, position in enumerate(tap_positions):
            within = (position >= 0) & (position < sizes[d])
            inside = within if inside is None else inside & within
            flat_index = flat_index + xp.fmin(xp.fmax(position, 0), sizes[d] - 1).astype(np.int64) * strides[d]
        # the mask folded into the small (N, K, points) weights, not applied to every channel's read
        if isinstance(tap_weights, Tensor):
            weights = tap_weights * Tensor._make(inside.astype(input._data.dtype))
        else:
            weights = Tensor._make(tap_weights * inside.astype(input._data.dtype))
        values = PlaneGather.apply(flat, positions=flat_index.reshape(batch, taps * points))
        values = values.reshape(batch, channels, taps, points)
        # float16 and bfloat16 (the rest went above): rounded after each add, in tap order, as torch's
        terms = values * weights.unsqueeze(1)
        out = terms[:, :, 0]
        for k in range(1, taps):
            out = out + terms[:, :, k]
        return out

    if mode == "nearest":
        out = read([xp.rint(values_of(c)) for c in coords])  # rint rounds half to even, as nearbyint
        # the grid's gradient is zero, as torch's: connect it through a where that selects nothing
        # (adds exactly 0, even where a coordinate is infinite), so grid.grad is a zero tensor
        if not arrays:
            nothing = Tensor._make(xp.zeros((batch, points), dtype=bool))
            out = out + sum(where(nothing, c, 0.0).sum() for c in coords)
        elif grid_grad:
            out = out + where(Tensor._make(xp.zeros(grid.shape, dtype=bool)), grid, 0.0).sum()
    elif mode == "bicubic":
        low = [xp.floor(values_of(c)) for c in coords]
        weights = [_cubic_coefficients(c - constant(f)) for c, f in zip(coords, low)]
        out = None
        if input.dtype in (_dtype.float16, _dtype.bfloat16):
            # torch's kernel for these rounds as it goes: along x for each of the 4 rows, then along y
            for tap_y in range(4):
                row = None
                for tap_x in range(4):
                    positions = [_pad_coordinate(Tensor._make(f + (tap - 1)), sizes[d], padding_mode, align, spatial)._data
                                 for d, (f, tap) in enumerate(zip(low, (tap_y, tap_x)))]
                    term = read(positions) * weights[1][tap_x].unsqueeze(1)
                    row = term if row is None else row + term
                term = row * weights[0][tap_y].unsqueeze(1)
                out = term if out is None else out + term
            return _grid_sampler_node(out.reshape(batch, channels, *out_shape), input, grid, mode, padding_mode, align)
        # the 4 x 4 taps, y's outer: each tap's integer position moved inside by the padding mode
        # (a constant of the grid), and its weight y's times x's
        offsets = xp.arange(-1, 3, dtype=low[0].dtype).reshape(1, 4, 1)
        along = [_pad_coordinate_array(f[:, None, :] + offsets, sizes[d], padding_mode, align, spatial) if arrays
                 else _pad_coordinate(Tensor._make(f[:, None, :] + offsets), sizes[d], padding_mode, align, spatial)._data
                 for d, f in enumerate(low)]
        positions = [along[0][:, :, None, :], along[1][:, None, :, :]]
        if arrays:
            tap_weights = xp.stack(weights[0], axis=1)[:, :, None] * xp.stack(weights[1], axis=1)[:, None]
        else:
            tap_weights = stack(weights[0], dim=1).unsqueeze(2) * stack(weights[1], dim=1).unsqueeze(1)
        out = read_taps(positions, tap_weights.reshape(batch, 16, points))
    else:
        if factors is None:
            low = [xp.floor(values_of(c)) for c in coords]
        corners = 2 ** spatial
        positions, weight = [], None
        # the 2 ** spatial corners, dimension 0 outermost (its low end first); each weight
        # x's factor times y's (times z's): torch's order, which rounds so in float16/bfloat16
        for d in reversed(range(spatial)):
            axis = [1] * spatial
            axis[d] = 2
            if factors is not None:
                factor = factors[d].reshape(batch, *axis, points)
            else:
                fraction = coords[d] - constant(low[d])
                factor = (xp.stack([1 - fraction, fraction], axis=1) if arrays
                          else stack([1 - fraction, fraction], dim=1)).reshape(batch, *axis, points)
            weight = factor if weight is None else weight * factor
        for d in range(spatial):
            axis = [1] * spatial
            axis[d] = 2
            corner = low[d][:, None, :] + xp.arange(2, dtype=low[d].dtype).reshape(1, 2, 1)
            positions.append(corner.reshape(batch, *axis, points))
        out = read_taps(positions, weight.reshape(batch, corners, points))
    return _grid_sampler_node(out.reshape(batch, channels, *out_shape), input, grid, mode, padding_mode, align)


# ---------------------------------------------------------------- separable resampling
def _resample_axis(x, axis: int, taps, weights):
    """``x`` read along ``axis`` at each tap's indices, times the tap's weights (None: one tap,
    unweighted), the taps added left to right, each product rounded in x's dtype."""
    xp = array_module(x)
    out = xp.take(x, taps[0], axis=axis)
    if weights is None:
        return out
    out *= weights[0]
    for tap, weight in zip(taps[1:], weights[1:]):
        term = xp.take(x, tap, axis=axis)
        term *= weight
        out += term
    return out


# up to this input length, the adjoint of one axis is a product with the dense (output, input)
# matrix of the weights, 2 · length flops an element, faster there than the row adds below
# (nearest at scale 2 of (8, 32, 32, 32), forward and backward: 27.0 ms against 41.2 ms on
# one thread); beyond it the row adds win (bilinear of (2, 16, 200, 200): 400 ms for one axis's
# product alone, 293.5 ms for the whole step with row adds)
_DENSE_SPREAD_LENGTH = 128


def _spread_axis(grad, axis: int, taps, weights, size: int):
    """The adjoint of _resample_axis: each gradient times its tap's weight, added back to the tap's
    index along ``axis`` (of ``size``)."""
    xp = array_module(grad)
    if size <= _DENSE_SPREAD_LENGTH:
        outputs = grad.shape[axis]
        matrix = xp.zeros((outputs, size), dtype=grad.dtype)
        rows = xp.arange(outputs)
        for j, tap in enumerate(taps):
            matrix[rows, tap] += 1 if weights is None else weights[j].reshape(-1)
        out = xp.moveaxis(xp.tensordot(grad, matrix, axes=([axis], [0])), -1, axis)
        # an infinite or NaN gradient times the matrix's zeros would be NaN at every index: such
        # gradients take the row adds below, which touch only each gradient's own taps
        if xp.isfinite(out).all():
            return out
    # the axis moved first, so each indexed add below moves whole contiguous rows
    rows = xp.ascontiguousarray(xp.moveaxis(grad, axis, 0))
    out = xp.zeros((size,) + rows.shape[1:], dtype=grad.dtype)
    along = (-1,) + (1,) * (rows.ndim - 1)
    for j, tap in enumerate(taps):
        term = rows if weights is None else rows * weights[j].reshape(along)
        # a tap's indices never decrease along the axis: the outputs reaching one index are one run.
        # The r-th outputs of all runs reach distinct indices, so one plain indexed add takes them
        # all; runs are short (about outputs / inputs + 1), so a few adds cover the axis
        new_run = xp.concatenate((xp.ones(1, dtype=bool), tap[1:] != tap[:-1]))
        starts = xp.flatnonzero(new_run)
        offset = xp.arange(tap.shape[0]) - starts[xp.cumsum(new_run) - 1]
        for r in range(int(offset.max()) + 1):
            outputs = xp.flatnonzero(offset == r)
            out[tap[outputs]] += term[outputs]
    return xp.moveaxis(out, 0, axis)


class ResamplePlan(tuple):
    """Resample's plan: one (axis, taps, weights, input size, backward's taps) per axis. Its arrays
    follow from the shapes alone, so a vmap's record takes the plan as a plain parameter."""

    __slots__ = ()


class Resample(Function):
    """A linear resampling of some axes, one after another: along each, every output is a weighted
    sum of a few input taps (interpolate's nearest, linear and cubic modes). ``plan`` holds one
    (axis, taps, weights, input size, backward's taps) per axis, in the order they are applied:
    the backward's taps are the taps, but for torch's nearest modes, whose backward maps the
    outputs back with a float32 scale; ``interpolate`` names the node as torch's
    (UpsampleBilinear2DBackward0, ...)."""
    _array_forward = True
    label = "interpolate"
    rule = "∂/∂x = the transposed resampling: each gradient times its tap's weight, added back to the tap"

    @staticmethod
    def forward(ctx, x, plan):
        if ctx.needs_input_grad[0]:
            ctx.plan = plan
        for axis, taps, weights, _, _ in plan:
            x = _resample_axis(x, axis, taps, weights)
        return x

    @staticmethod
    def backward(ctx, grad):
        # y = R x is linear  ⇒  x̄ = Rᵀ ḡ, recorded under torch's name for the backward's own node
        return name_node(ResampleAdjoint.apply(grad, plan=ctx.plan),
                         type(ctx).__name__.removesuffix("0") + "Backward0")


def _gradient_keeps_format(plan) -> bool:
    bicubic = any(len(taps) == 4 for _, taps, _, _, _ in plan)
    nearest_3d = len(plan) == 3 and plan[0][2] is None
    return not (bicubic or nearest_3d)


class ResampleAdjoint(Function):
    """Resample's transpose (its backward, recorded as an op under create_graph), through the
    plan's backward taps; its own backward is Resample through the forward's, as torch's."""
    _array_forward = True
    label = "interpolate_backward"
    rule = "∂/∂g = the resampling itself: (Rᵀ)ᵀ = R"

    @staticmethod
    def forward(ctx, grad, plan):
        if ctx.needs_input_grad[0]:
            ctx.plan = plan
        given = grad
        for axis, _, weights, size, taps in reversed(plan):
            grad = _spread_axis(grad, axis, taps, weights, size)
        # torch's bilinear, trilinear and 2-d nearest backward kernels allocate the gradient in the
        # incoming gradient's suggested format, its bicubic and 3-d nearest ones row-major; either
        # with a fresh tensor's strides on size-1 dims
        return in_suggested_format(grad, given) if _gradient_keeps_format(plan) else row_major(grad)

    @staticmethod
    def backward(ctx, grad):
        return Resample.apply(grad, plan=ctx.plan)
