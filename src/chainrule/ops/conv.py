"""Convolution: conv1d/2d/3d, conv_transpose1d/2d/3d, unfold/fold — one N-d implementation.

Three bilinear array maps do all the work, each the others' adjoint (so every backward rule is
written with them and double backward comes for free):

* ``_conv(x, w)``          the forward cross-correlation        y = C(x, w)
* ``_conv_input(g, w)``    its adjoint in x (conv_transpose)     x̄ = Cᵀ(g, w)
* ``_conv_weight(x, g)``   its adjoint in w (filter gradient)    w̄ = C_w(x, g)

Internally the maps run channels-last: the padded input is laid out (N, *spatial, C) so that the
im2col gather copies contiguous channel runs, the columns are (groups, N·L, K·C/groups), built a
few samples at a time, and the contraction is one batched GEMM per chunk. The output of the GEMM
is (N, *out, O); it is returned as an (N, O, *out) view of that memory. With few channels per
group and long output rows the channels are short runs, and the columns are gathered
channels-first instead, (N, groups, C/g·K, L), along the output rows (``_channels_first_columns``).
The node keeps only the input, not the forward's columns (K× the input): the filter gradient
rebuilds them a few samples at a time, which costs an im2col but keeps the peak low
(32→64 3×3 bench conv, forward and backward: 34 MiB instead of 85, against torch's 55).
The input gradient is one GEMM per kernel offset (batched) and one strided slice add per offset
(col2im without ``np.add.at``); gradients that are not channels-last (from pools, elementwise
ops, a sum's broadcast) are read (N, O, *out)-contiguous by per-sample GEMMs where that measured
faster (see ``_conv_input``, ``_conv_weight``). On the CPU the copies around the GEMMs (the pad,
the gather, the col2im adds, the layout copies) are cut over the batch on the thread budget
(``_parallel.over_rows``): NumPy runs them on one core while the GEMMs use all of them.
Measured alternatives that lost: Caffe-style NCHW im2col (6× slower gather), one (N·L, K·C)
GEMM sliced per offset (1.5× slower adds), transposed-conv-as-conv for stride 1, and Winograd
F(2×2, 3×3) for the 32→64 3×3 conv (its 16 GEMMs have K = C = 32 and ran at half the direct
GEMM's speed, so 2.25× fewer multiplications gave a slower forward: 135 ms against 97 ms
single-threaded on the loaded machine, and its transforms cost as much as the im2col).
3-d float32 convolutions of one group with a kernel deeper than 1 build columns over the kernel's height
and width only (``_plane_columns``, kD× smaller) and run the depth offsets as GEMMs over row ranges
of them; at stride 1 their input gradient is the spatially reversed problem's forward map
(``_conv_input_as_conv``), which sums in the order of torch's oneDNN kernel.
On real CuPy, with ``chainrule.backends.cuda.conv.implicit_gemm`` on (the default), the maps of
1-d and 2-d float32/float64 convolutions run as the implicit-GEMM kernels of ``_cuda_conv``
instead: no columns at all.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _config, _dtype
from .._backend import array_module, autocast_unifies, strided_view
from .._parallel import over_rows
from ..autograd.function import _NO_EDGE, Function, SavedValue, _type_text, ctx_value, name_node, saved
from ..autograd.profiler import composite_range
from ..tensor import Tensor, _check_tensor
from . import _cuda_conv, cpu_features
from ._arg_parser import int_list
from .elementwise import conjugate_rule
from .linear import cpp_type_name
from .memory_format import channels_last, is_channels_last, suggests_channels_last
from .second_order import depending_on

__all__ = [
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "unfold", "fold",
]
__not_methods__ = set(__all__)


# ---------------------------------------------------------------- geometry
class _Geometry:
    """Everything about one convolution's shape: kernel, stride, padding (lo, hi), dilation, groups.

    ``in_shape`` is the spatial shape of the (unpadded) input; ``out_shape`` that of the output.
    """

    __slots__ = ("kernel", "stride", "pad_lo", "pad_hi", "dilation", "groups", "in_shape", "out_shape")

    def __init__(self, kernel, stride, pad_lo, pad_hi, dilation, groups, in_shape, out_shape=None):
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)
        self.pad_lo = tuple(pad_lo)
        self.pad_hi = tuple(pad_hi)
        self.dilation = tuple(dilation)
        self.groups = groups
        self.in_shape = tuple(in_shape)
        if out_shape is None:
            out_shape = tuple(
                (n + lo + hi - d * (k - 1) - 1) // s + 1
                for n, lo, hi, d, k, s in zip(in_shape, pad_lo, pad_hi, dilation, kernel, stride))
        self.out_shape = tuple(out_shape)

    @property
    def padded_shape(self) -> tuple:
        return tuple(n + lo + hi for n, lo, hi in zip(self.in_shape, self.pad_lo, self.pad_hi))

    @property
    def pointwise(self) -> bool:
        """A 1×1 kernel at stride 1 without padding, one group: each output position reads only
        the input position it sits on, so the convolution is one (O, C) matrix product."""
        return (self.groups == 1 and all(k == 1 for k in self.kernel) and all(s == 1 for s in self.stride)
                and not any(self.pad_lo) and not any(self.pad_hi) and self.in_shape == self.out_shape)


def _windows(x, shape: tuple, strides: tuple):
    """A read-only strided view of ``x`` (the im2col windows), on x's device.

    ``as_strided`` rather than ``sliding_window_view``: CuPy's ``lib.stride_tricks`` has only
    ``as_strided`` (which takes no ``writeable``), and the dilated, strided windows need the
    explicit strides anyway.
    """
    xp = array_module(x)
    if xp is np:
        return np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=False)
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)


def _assign(dst, src, axis: int = 0) -> None:
    """``dst[...] = src`` (same shapes). NumPy copies run on one core but release the GIL, so on
    the CPU the copy is cut along ``axis`` (the batch) into pieces that run on the thread budget;
    each element is copied once either way, so the result is the same."""
    if array_module(dst) is not np:
        dst[...] = src
        return
    lead = (slice(None),) * axis

    def copy_rows(start: int, stop: int) -> None:
        dst[lead + (slice(start, stop),)] = src[lead + (slice(start, stop),)]

    over_rows(copy_rows, dst.shape[axis], dst.size)


def _contiguous(a):
    """``ascontiguousarray`` with the copy on the thread budget (see ``_assign``)."""
    if a.flags.c_contiguous or array_module(a) is not np:
        return array_module(a).ascontiguousarray(a)
    out = np.empty(a.shape, dtype=a.dtype)
    _assign(out, a)
    return out


def _to_channels_last_padded(x: np.ndarray, geo: _Geometry) -> np.ndarray:
    """(N, C, *S) → zero-padded (N, *S_padded, C), contiguous: one copy does transpose and pad."""
    xp = array_module(x)
    d = len(geo.kernel)
    perm = (0, *range(2, d + 2), 1)
    x_cl = x.transpose(perm)
    if not any(geo.pad_lo) and not any(geo.pad_hi):
        return _contiguous(x_cl)
    out = xp.zeros((x.shape[0], *geo.padded_shape, x.shape[1]), dtype=x.dtype)
    interior = (slice(None),) + tuple(slice(lo, lo + n) for lo, n in zip(geo.pad_lo, geo.in_shape))
    _assign(out[interior], x_cl)
    return out


def _channels_first_columns(c: int, geo: _Geometry) -> bool:
    """Whether im2col gathers clearly longer contiguous runs from the (N, C, *S) input than from
    its channels-last copy: the gather costs per run, so with few channels per group and long
    output rows the channels-first columns win (1→16 5×5 on (64, 1, 28, 28): runs of 28 against 5,
    0.8 ms instead of 7); the channels-last ones keep the measured-faster cases (32→64 3×3 on
    32×32: runs of 96 against 32; 16→32 5×5 on 14×14: 80 against 10). A layer of one input channel
    per group (depthwise) reads single values channels-last, a row of C apart: runs of 1, where its
    planes repay the channels-first columns' product per sample and channel (see
    _DEPTHWISE_CHANNELS_FIRST_PLANE)."""
    cg = c // geo.groups
    run_channels_last = cg * _row_taps(geo)
    if cg == 1 < geo.groups and math.prod(geo.out_shape) >= _DEPTHWISE_CHANNELS_FIRST_PLANE:
        run_channels_last = 1
    return _output_row_run(geo) > 2 * run_channels_last


# A depthwise layer's columns are gathered channels-first (in output rows, not single values) from
# output planes of this many positions: one thread, CPU time on the loaded 2-core AVX2 machine, the
# forward and filter gradient against channels-last columns, float32 and float64: ConvNeXt's 7×7 on
# (16, 64, 14, 14) 0.56×, 0.63× (float64 0.67×, 0.68×), 5×5 on (32, 96, 10, 10) 0.65×, 0.61×, 3×3×3 on
# (4, 32, 6, 6, 6) 0.66×, 0.69×, 1-d 9 taps on (64, 128, 16) float64 0.81×, 0.48×, 3×3 on (64, 32, 4, 4)
# float64 0.96×, 0.91×; on smaller planes the per-sample products cost more (1-d 3 taps on (64, 32, 4):
# 1.8×, 0.91×; 3×3 on (128, 16, 3, 3): 1.5×, 1.2×).
_DEPTHWISE_CHANNELS_FIRST_PLANE = 16


def _row_taps(geo: _Geometry) -> int:
    """The kernel taps of one row that are neighbours in memory: kW, or 1 when dilated."""
    return geo.kernel[-1] if geo.dilation[-1] == 1 else 1


def _output_row_run(geo: _Geometry) -> int:
    """The run a channels-first gather copies: an output row at stride 1, single values otherwise."""
    return geo.out_shape[-1] if geo.stride[-1] == 1 else 1


def _columns(x: np.ndarray, geo: _Geometry) -> np.ndarray:
    """im2col: (groups, N·L, K·C/groups) contiguous columns of x (N, C, *S), channels last."""
    x_cl = _to_channels_last_padded(x, geo)
    n, c = x.shape[0], x.shape[1]
    if geo.pointwise:  # the channels-last copy is the columns already: no window gather
        return x_cl.reshape(1, n * math.prod(geo.out_shape), c)
    g = geo.groups
    cg = c // g
    strides = x_cl.strides
    item = x_cl.itemsize
    spatial_strides = strides[1:-1]
    # view (g, N, *out, *kernel, C/g) over the padded channels-last input
    view = _windows(
        x_cl,
        shape=(g, n, *geo.out_shape, *geo.kernel, cg),
        strides=(cg * item, strides[0],
                 *(st * s for st, s in zip(spatial_strides, geo.stride)),
                 *(st * dl for st, dl in zip(spatial_strides, geo.dilation)), item),
    )
    cols = array_module(x_cl).empty(view.shape, dtype=x.dtype)
    _assign(cols, view, axis=1)  # the gather: as long as the GEMM when single-threaded
    return cols.reshape(g, n * math.prod(geo.out_shape), math.prod(geo.kernel) * cg)


def _columns_channels_first(x: np.ndarray, geo: _Geometry) -> np.ndarray:
    """im2col per sample: (N, groups, C/g·K, L) contiguous, each column in w's (C/g, *K) order;
    the gather copies runs along the output's last axis. Sample-major so that the forward GEMM
    leaves (N, O, *out) memory and the filter gradient reads an (N, O, *out) gradient in place."""
    xp = array_module(x)
    n, c = x.shape[0], x.shape[1]
    g = geo.groups
    cg = c // g
    if any(geo.pad_lo) or any(geo.pad_hi):
        padded = xp.zeros((n, c, *geo.padded_shape), dtype=x.dtype)
        _assign(padded[(slice(None), slice(None)) + tuple(slice(lo, lo + m) for lo, m in zip(geo.pad_lo, geo.in_shape))], x)
    else:
        padded = x
    strides = padded.strides
    spatial_strides = strides[2:]
    # view (N, g, C/g, *kernel, *out) over the padded input
    view = _windows(
        padded,
        shape=(n, g, cg, *geo.kernel, *geo.out_shape),
        strides=(strides[0], cg * strides[1], strides[1],
                 *(st * dl for st, dl in zip(spatial_strides, geo.dilation)),
                 *(st * s for st, s in zip(spatial_strides, geo.stride))),
    )
    cols = xp.empty(view.shape, dtype=x.dtype)
    _assign(cols, view)  # cut over the batch axis
    return cols.reshape(n, g, cg * math.prod(geo.kernel), math.prod(geo.out_shape))


# the dtypes the plane columns and the reversed-problem input gradient serve (see _depth_planes)
_PLANE_DTYPES = (np.float32,)


def _depth_planes(x, other, geo: _Geometry) -> bool:
    """Whether a 3-d float32 convolution runs on plane columns (``_plane_columns``): one group, a
    kernel deeper than 1 at depth stride 1, on the CPU (float64 keeps the full columns: they sum as
    torch's slow_conv3d does, e.g. all 128,000 filter-gradient values of 5×5×5 32→32 on
    (4, 32, 6, 6, 6)). Its full columns repeat each input plane kD times over; the plane columns
    hold it once per (kH, kW) offset and the kD offsets become kD GEMMs over row ranges of them
    (5×5×5 16→16 on (4, 16, 12, 12, 12), one thread: the gather writes 14.7 MB instead of 55.3,
    the forward takes 7.1 ms instead of 9.4 and the filter gradient 8.0 instead of 12.3)."""
    return (len(geo.kernel) == 3 and geo.groups == 1 and geo.kernel[0] > 1 and geo.stride[0] == 1
            and x.dtype == other.dtype and x.dtype in _PLANE_DTYPES and array_module(x) is np)


# OpenBLAS's sgemm (its SkylakeX kernel, this machine's) sums up to 448 products per output in one
# pass, in order, as torch's oneDNN conv3d does for up to 16 input channels: there the full columns'
# single GEMM gives torch's bits (16→8 3×3×3: all 55,296 outputs), which the plane columns' kD
# partial sums would not; past it both routes split the sum (16→16 5×5×5: about 5% equal either way).
_ONE_PASS_REDUCTION = 448


def _plane_columns(x: np.ndarray, geo: _Geometry) -> np.ndarray:
    """im2col over the kernel's height and width only: (N, C, D, H, W) → (N, D_padded, oH·oW,
    kH·kW·C), contiguous, one block of rows per padded input plane. Output plane od at depth
    offset kd reads block od + kd·dilation, so the rows of one depth offset for every output
    plane are one contiguous row range."""
    x_cl = _to_channels_last_padded(x, geo)  # (N, D_padded, H_padded, W_padded, C)
    n, depth, c = x_cl.shape[0], x_cl.shape[1], x_cl.shape[-1]
    strides = x_cl.strides
    (_, kh, kw), (_, sh, sw), (_, dh, dw) = geo.kernel, geo.stride, geo.dilation
    oh, ow = geo.out_shape[1:]
    view = _windows(x_cl, shape=(n, depth, oh, ow, kh, kw, c),
                    strides=(strides[0], strides[1], strides[2] * sh, strides[3] * sw,
                             strides[2] * dh, strides[3] * dw, x_cl.itemsize))
    cols = np.empty(view.shape, dtype=x.dtype)
    _assign(cols, view)
    return cols.reshape(n, depth, oh * ow, kh * kw * c)


def _plane_chunk(x: np.ndarray, geo: _Geometry) -> int:
    """Samples per chunk of plane columns (about ``_COLUMN_CHUNK_BYTES`` of them)."""
    depth = geo.padded_shape[0]
    per_sample = depth * math.prod(geo.kernel[1:]) * math.prod(geo.out_shape[1:])
    return _sample_chunk(x.shape[1], per_sample, x.itemsize)


def _depth_rows(cols: np.ndarray, k: int, geo: _Geometry) -> np.ndarray:
    """The plane-column rows that depth offset ``k`` reads for every output plane:
    (B, oD·oH·oW, kH·kW·C)."""
    start = k * geo.dilation[0]
    rows = cols[:, start:start + geo.out_shape[0]]
    return rows.reshape(rows.shape[0], rows.shape[1] * rows.shape[2], rows.shape[3])


def _conv_planes(x: np.ndarray, w: np.ndarray, geo: _Geometry) -> np.ndarray:
    """``_conv`` on plane columns: y = Σ_kd rows(kd) @ W_kd, (N, O, *out) as a view of (N, *out, O) memory."""
    n, o = x.shape[0], w.shape[0]
    kd = geo.kernel[0]
    w_planes = w.transpose(2, 3, 4, 1, 0).reshape(kd, math.prod(w.shape[1:]) // kd, o)  # (kD, kH·kW·C, O)
    out = np.empty((n, math.prod(geo.out_shape), o), dtype=np.result_type(x, w))
    chunk = _plane_chunk(x, geo)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        cols = _plane_columns(x[start:stop], geo)
        target = out[start:stop]
        np.matmul(_depth_rows(cols, 0, geo), w_planes[0], out=target)
        for k in range(1, kd):
            target += np.matmul(_depth_rows(cols, k, geo), w_planes[k])
    return out.reshape(n, *geo.out_shape, o).transpose(0, 4, 1, 2, 3)


def _conv_weight_planes(x: np.ndarray, grad: np.ndarray, geo: _Geometry, w_shape: tuple) -> np.ndarray:
    """``_conv_weight`` on plane columns: W̄_kd = Σ_n G_n (O, L) @ rows_n(kd) (L, kH·kW·C)."""
    n, o = grad.shape[0], w_shape[0]
    kd = geo.kernel[0]
    grad_rows = grad.reshape(n, o, math.prod(geo.out_shape))  # a view for NC*S and channels-last memory alike
    out = np.zeros((kd, o, math.prod(geo.kernel[1:]) * x.shape[1]), dtype=np.result_type(x, grad))
    chunk = _plane_chunk(x, geo)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        cols = _plane_columns(x[start:stop], geo)
        for k in range(kd):
            out[k] += np.matmul(grad_rows[start:stop], _depth_rows(cols, k, geo)).sum(axis=0)
    out = out.reshape(kd, o, *geo.kernel[1:], x.shape[1])
    return np.ascontiguousarray(out.transpose(1, 4, 0, 2, 3))


def _adjoint_padding(geo: _Geometry) -> tuple:
    """The padding (before, after) of the reversed problem's convolution in ``_conv_input_as_conv``:
    reversed output i' reads reversed gradient i' + k·dl - before, before = in - out + p_lo (more
    than dl·(k - 1) - p_hi where a conv_transpose's output_padding adds positions no window
    reaches), after = dl·(k - 1) - p_lo."""
    before = tuple(n - m + lo for n, m, lo in zip(geo.in_shape, geo.out_shape, geo.pad_lo))
    after = tuple(dl * (k - 1) - lo for dl, k, lo in zip(geo.dilation, geo.kernel, geo.pad_lo))
    return before, after


def _adjoint_as_conv(grad, w, geo: _Geometry) -> bool:
    """Whether ``_conv_input`` runs as a forward convolution (``_conv_input_as_conv``): 3-d
    float32, one group, stride 1, a weight with elements (no zero channels) and an adjoint padding
    that is not negative (no side padded past the dilated kernel), on the CPU. (Float64 keeps the
    per-offset GEMMs and slab adds: they sum as torch's slow_conv3d does, every value of the
    5×5×5 16→16 input gradient.)"""
    return (len(geo.kernel) == 3 and geo.groups == 1 and all(s == 1 for s in geo.stride)
            and grad.dtype == w.dtype and grad.dtype in _PLANE_DTYPES and array_module(grad) is np
            and w.size > 0 and all(p >= 0 for side in _adjoint_padding(geo) for p in side))


def _conv_input_as_conv(grad: np.ndarray, w: np.ndarray, geo: _Geometry) -> np.ndarray:
    """x̄ = Cᵀ(g, w) at stride 1 as the forward map of the spatially reversed problem:
    x̄[i] = Σ_k g[i + p_lo - k·dl] w[k], so with ĝ = g reversed along every spatial axis,
    x̄ reversed = C(ĝ, wᵀ) padded as ``_adjoint_padding`` says (dl·(k - 1) - p_hi before and
    dl·(k - 1) - p_lo after for a convolution's own gradient). The reversals are views. Its
    columns reduce over (kernel offset ascending, O), which is torch's order for its oneDNN 3-d
    input gradient: with up to 448 terms (one OpenBLAS pass) every output is torch's (16→8 3×3×3
    on (4, 16, 12, 12, 12): 110,592 of 110,592, where the per-offset GEMMs and slab adds matched
    12,812), and the plane columns make it faster than those adds (5×5×5 16→16, one thread: 7.8
    ms instead of 14.1; 2→16: 1.7 ms instead of 14.1)."""
    reverse = (slice(None), slice(None)) + (slice(None, None, -1),) * 3
    before, after = _adjoint_padding(geo)
    adjoint = _Geometry(geo.kernel, geo.stride, before, after, geo.dilation, 1, geo.out_shape, geo.in_shape)
    return _conv(grad[reverse], w.swapaxes(0, 1), adjoint)[reverse]


# oneDNN's direct avx512_core backward-data kernel (torch's float32 CPU path for batched 2-d
# convolutions at stride 1, jit_avx512_common_conv_bwd_data_kernel_f32, blocked aBcd16b layouts)
# works on channels in blocks of 16: for each block of 16 output channels it sums from zero
# over (kernel row, kernel column, channel in block), one FMA each, and adds that partial sum to
# the gradient held so far (store_output's vaddps for every block after the first).
_ONEDNN_CHANNEL_BLOCK = 16
_ONEDNN_BLOCKS_MIN_CHANNELS = 64


def _adjoint_in_onednn_blocks(grad, w, geo: _Geometry, c: int) -> bool:
    """Whether ``_conv_input`` sums as oneDNN's blocked backward-data kernel does
    (``_conv_input_onednn_blocks``): a 2-d float32 batched convolution of one group at stride 1 on
    an AVX-512 CPU (elsewhere oneDNN runs its avx2 kernel, on other blocks), where torch's dispatch
    takes oneDNN and oneDNN that kernel (input channels a multiple of 16: with fewer or a tail it
    rounds otherwise, 4,425 of 6,144 equal for 24→32 3×3; output channels any, the last block
    partial; a weight not in channels-last memory, whose nxc kernel carries the sum across blocks),
    each block's sum one OpenBLAS pass
    (kernel taps · 16 <= 448) and no side padded past the dilated kernel. Only for at least
    ``_ONEDNN_BLOCKS_MIN_CHANNELS`` input channels: the block GEMMs are (N·L, K·16) @ (K·16, C), and
    with C = 16 or 32 that narrow product ran 1.2-3x the time of the per-offset GEMMs and slab adds
    (16→32 3×3 on (64, 16, 14, 14): 9.4 ms against 3.1, one thread on the loaded machine), where
    from 64 channels it measured 0.2-1.09x."""
    o = w.shape[0]
    return (cpu_features.AVX512_CORE and len(geo.kernel) == 2 and geo.groups == 1 and all(s == 1 for s in geo.stride)
            and grad.shape[0] > 1 and grad.dtype == w.dtype == np.float32 and array_module(grad) is np
            and w.flags.c_contiguous and c % _ONEDNN_CHANNEL_BLOCK == 0
            and o > 0 and c >= _ONEDNN_BLOCKS_MIN_CHANNELS and not geo.pointwise
            and math.prod(geo.kernel) * _ONEDNN_CHANNEL_BLOCK <= _ONE_PASS_REDUCTION
            and all(p >= 0 for side in _adjoint_padding(geo) for p in side)
            and cpu_features.onednn_enabled())  # (switched off, torch runs its slow kernel's order)


def _conv_input_onednn_blocks(grad: np.ndarray, w: np.ndarray, geo: _Geometry) -> np.ndarray:
    """x̄ = Cᵀ(g, w) in the order of oneDNN's blocked backward-data kernel (see
    ``_ONEDNN_CHANNEL_BLOCK``), as the reversed problem of ``_conv_input_as_conv``: the reversed
    gradient is laid out zero-padded in oneDNN's own blocked layout, (block, N, *padded, 16), so that
    each block's columns (N·L, kernel offset ascending, channel in block) are gathered in runs of
    kW·16, and columns @ W (one OpenBLAS pass) gives the block's partial sum in the kernel's order;
    the partial sums are added block after block, a few samples at a time. (The transposed product,
    Wᵀ @ columnsᵀ per sample, rounds otherwise in some cases: 107,367 of the probe's 127,040 values
    against 107,575.)"""
    d = len(geo.kernel)
    reverse = (slice(None),) * 2 + (slice(None, None, -1),) * d
    before, after = _adjoint_padding(geo)
    adjoint = _Geometry(geo.kernel, geo.stride, before, after, geo.dilation, 1, geo.out_shape, geo.in_shape)
    o, c = w.shape[0], w.shape[1]
    n = grad.shape[0]
    block = _ONEDNN_CHANNEL_BLOCK
    blocks = -(-o // block)
    kernel_size = math.prod(geo.kernel)
    # (O, C, K) → (blocks, K·16, C): rows in the columns' (kernel offset, channel in block) order; a
    # partial last block is padded with zero rows (and zero gradient channels), whose products add
    # nothing to the block's sum: oneDNN's kernel stops at its tail
    w_blocks = np.zeros((blocks * block, c, kernel_size), dtype=np.float32)
    w_blocks[:o] = w.reshape(o, c, kernel_size)
    w_blocks = np.ascontiguousarray(
        w_blocks.reshape(blocks, block, c, kernel_size).transpose(0, 3, 1, 2)).reshape(blocks, kernel_size * block, c)
    padded = np.zeros((blocks, n, *adjoint.padded_shape, block), dtype=np.float32)
    reversed_grad = grad[reverse]
    for b in range(blocks):
        channels = slice(b * block, min((b + 1) * block, o))
        interior = (b, slice(None)) + tuple(slice(lo, lo + m) for lo, m in zip(before, geo.out_shape))
        _assign(padded[interior + (slice(0, channels.stop - channels.start),)],
                reversed_grad[:, channels].transpose(0, *range(2, d + 2), 1))
    length = math.prod(geo.in_shape)
    out = np.empty((n * length, c), dtype=np.float32)
    item = padded.itemsize
    chunk = _sample_chunk(block, kernel_size * length, item, budget=_COL2IM_CHUNK_BYTES)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        acc = out[start * length:stop * length]
        cols = np.empty((stop - start, *geo.in_shape, *geo.kernel, block), dtype=np.float32)
        for b in range(blocks):
            source = padded[b, start:stop]
            spatial = source.strides[1:-1]
            _assign(cols, _windows(source, shape=cols.shape, strides=(
                source.strides[0], *spatial, *(st * dl for st, dl in zip(spatial, geo.dilation)), item)))
            columns = cols.reshape(acc.shape[0], kernel_size * block)
            if b == 0:
                np.matmul(columns, w_blocks[0], out=acc)
            else:
                acc += columns @ w_blocks[b]
    out = out.reshape(n, *geo.in_shape, c)[(slice(None),) + reverse[2:]]
    return out.transpose(0, d + 1, *range(1, d + 1))


def _weight_matrix(w: np.ndarray, g: int) -> np.ndarray:
    """(O, C/g, *K) → (g, K·C/g, O/g): the right-hand side of the forward GEMM."""
    o = w.shape[0]
    d = w.ndim - 2
    w_cl = w.transpose(0, *range(2, d + 2), 1)  # (O, *K, C/g)
    return w_cl.reshape(g, o // g, -1).transpose(0, 2, 1)


def _grad_matrix(grad: np.ndarray, g: int) -> np.ndarray:
    """(N, O, *out) → (g, N·L, O/g); free when grad already has channels-last memory."""
    d = grad.ndim - 2
    o = grad.shape[1]
    g_cl = grad.transpose(0, *range(2, d + 2), 1).reshape(-1, g, o // g)
    return g_cl.transpose(1, 0, 2)


def _from_gemm(out: np.ndarray, n: int, spatial: tuple) -> np.ndarray:
    """(g, N·L, O/g) GEMM result → (N, O, *spatial), a view when groups == 1."""
    g, _, og = out.shape
    d = len(spatial)
    out = out.reshape(g, n, *spatial, og)
    out = out.transpose(1, *range(2, d + 2), 0, d + 2)  # (N, *spatial, g, O/g)
    out = out.reshape(n, *spatial, g * og)
    return out.transpose(0, d + 1, *range(1, d + 1))


# The column-sized arrays (K× the input: 36 MiB for the 32→64 3×3 bench conv) are built a few
# samples at a time, about this many bytes each: the forward's and the filter gradient's columns
# (rebuilt there rather than kept on the node), and the input gradient's GEMM result, added back
# chunk by chunk. Chunks this size keep the GEMMs long and the extra memory small; one-sample
# chunks were faster on one thread (0.8×) but 3× slower on two threads beside a busy process
# (every GEMM synchronises the BLAS pool).
_COLUMN_CHUNK_BYTES = 8 << 20


# On a GPU the chunk is far larger: each chunk costs several kernel launches, and at the CPU's
# size the bench conv (64→64 3×3 on (64, 64, 56, 56): 7 MiB of columns per sample) ran one sample
# at a time, 15× torch's time on an H200; a few hundred MiB of columns is cheap beside its memory.
_DEVICE_COLUMN_CHUNK_BYTES = 1 << 30


# The channels-last input gradient's per-offset GEMM results are added back right after the
# GEMMs: chunks about the size of a core's L2 keep them there (16 samples, 2.5 MiB, measured best among
# chunks of 2-64 samples, 0.3-10 MiB, for the LeNet 16→32 5×5 conv).
_COL2IM_CHUNK_BYTES = 2 << 20


def _sample_chunk(channels: int, window_positions: int, itemsize: int, xp=np, budget: int | None = None) -> int:
    """How many samples make about ``budget`` (default ``_COLUMN_CHUNK_BYTES``) of columns
    (channels × K·L each)."""
    if xp is not np:
        budget = _DEVICE_COLUMN_CHUNK_BYTES
    elif budget is None:
        budget = _COLUMN_CHUNK_BYTES
    return max(1, budget // max(channels * window_positions * itemsize, 1))


# ---------------------------------------------------------------- the three array maps
def _conv(x: np.ndarray, w: np.ndarray, geo: _Geometry, bias=None) -> np.ndarray:
    """y = C(x, w) (+ bias, (O,)): (N, C, *S) ⋆ (O, C/g, *K) → (N, O, *out)."""
    if _depthwise_chain_runs(x, w, geo):
        if bias is not None and _depthwise_chain_from_bias(geo):
            return _conv_depthwise_chain(x, w, geo, bias)
        y = _conv_depthwise_chain(x, w, geo)
    else:
        y = _conv_by_gemm(x, w, geo)
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * len(geo.kernel))
    return y


def _conv_by_gemm(x: np.ndarray, w: np.ndarray, geo: _Geometry) -> np.ndarray:
    """``_conv`` as matrix products (of columns, or in place for a pointwise layer)."""
    if _cuda_conv.enabled and _cuda_conv.eligible(geo, x, w):
        return _cuda_conv.conv_forward(x, w, geo)  # real CuPy: implicit GEMM, no columns
    xp = array_module(x)
    n = x.shape[0]
    g = geo.groups
    o = w.shape[0]
    length = math.prod(geo.out_shape)
    if geo.pointwise and x.flags.c_contiguous:
        # W (O, C) @ x (N, C, L): x read in place and y written in (N, O, *out) memory, where the
        # im2col path copies x twice and y once more (18→64 on (32, 18, 9, 9), one thread: 55 µs
        # instead of 168)
        return xp.matmul(w.reshape(o, -1), x.reshape(n, x.shape[1], length)).reshape(n, o, *geo.out_shape)
    if (_depth_planes(x, w, geo) and not _channels_first_columns(x.shape[1], geo)
            and math.prod(geo.kernel) * x.shape[1] > _ONE_PASS_REDUCTION):
        return _conv_planes(x, w, geo)
    dtype = xp.result_type(x, w)
    # the columns a few samples at a time (see _COLUMN_CHUNK_BYTES): the peak holds one chunk of
    # them, not K× the input, and the GEMM reads columns that are still in cache (32→64 3×3 on
    # one thread: 0.9× the time of one whole-batch GEMM; the same on two)
    chunk = _sample_chunk(x.shape[1], math.prod(geo.kernel) * length, x.itemsize, xp)
    if _channels_first_columns(x.shape[1], geo):
        # W (g, O/g, C/g·K) @ columns (B, g, C/g·K, L): one GEMM per sample and group, written
        # straight into (N, O, *out) memory (1→16 5×5 on (64, 1, 28, 28), one thread on the
        # AVX-512 machine: 1.4 ms instead of 2.2 with the (g, C/g·K, N·L) GEMM and its layout copy)
        out = xp.empty((n, g, o // g, length), dtype=dtype)
        w_matrix = w.reshape(g, o // g, -1)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            xp.matmul(w_matrix, _columns_channels_first(x[start:stop], geo), out=out[start:stop])
        return out.reshape(n, o, *geo.out_shape)
    w_matrix = _weight_matrix(w, g)
    out = xp.empty((g, n * length, w_matrix.shape[-1]), dtype=dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        xp.matmul(_columns(x[start:stop], geo), w_matrix, out=out[:, start * length:stop * length])
    return _from_gemm(out, n, geo.out_shape)


def _conv_weight(x: np.ndarray, grad: np.ndarray, geo: _Geometry, w_shape: tuple) -> np.ndarray:
    """w̄ = C_w(x, g): correlation of the input with the output gradient, shape (O, C/g, *K)."""
    if _cuda_conv.enabled and _cuda_conv.eligible(geo, x, grad):
        return _cuda_conv.conv_weight(x, grad, geo, w_shape)
    xp = array_module(grad)
    g = geo.groups
    o, cg = w_shape[0], w_shape[1]
    n = grad.shape[0]
    kernel_size = math.prod(geo.kernel)
    if _depth_planes(x, grad, geo) and not _channels_first_columns(x.shape[1], geo):
        return _conv_weight_planes(x, grad, geo, w_shape)
    chunk = _sample_chunk(x.shape[1], kernel_size * math.prod(geo.out_shape), x.itemsize, xp)
    if _channels_first_columns(x.shape[1], geo):
        # G (B, g, O/g, L) @ columnsᵀ (B, g, L, C/g·K), summed over the samples: the gradient is
        # read in (N, O, *out) memory, as pools and elementwise ops hand it back, and the result
        # is in w's order (1→16 5×5: 1.6 ms instead of 2.7 with the (g, B·L, O/g) gradient copy)
        grad = _contiguous(grad)
        out = xp.zeros((g, o // g, cg * kernel_size), dtype=xp.result_type(x, grad))  # zero when N = 0
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            cols = _columns_channels_first(x[start:stop], geo)
            grad_rows = grad[start:stop].reshape(stop - start, g, o // g, -1)
            out += xp.matmul(grad_rows, cols.transpose(0, 1, 3, 2)).sum(axis=0)
        return out.reshape(o, cg, *geo.kernel)
    per_sample = n > 1 and not is_channels_last(grad)
    if per_sample:
        # one GEMM per sample and group reads an (N, O, *out)-contiguous gradient (what pools and
        # elementwise ops hand back) in place instead of transposing it to channels-last first
        # (32→64 3×3: 16 ms instead of 23 ms single-threaded); other layouts are copied to it
        grad = _contiguous(grad)
    out = xp.zeros((g, o // g, kernel_size * cg), dtype=xp.result_type(x, grad))  # zero when N = 0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        cols = _columns(x[start:stop], geo)  # (g, B·L, K·C/g)
        if per_sample:
            grad_rows = grad[start:stop].reshape(stop - start, g, o // g, -1).transpose(1, 0, 2, 3)
            part = xp.matmul(grad_rows, cols.reshape(g, stop - start, -1, cols.shape[-1])).sum(axis=1)
        else:
            part = xp.matmul(_grad_matrix(grad[start:stop], g).transpose(0, 2, 1), cols)
        out += part
    d = len(geo.kernel)
    out = out.reshape(o, *geo.kernel, cg)
    return xp.ascontiguousarray(out.transpose(0, d + 1, *range(1, d + 1)))


def _offset_regions(geo: _Geometry, leading: int) -> list:
    """For each kernel offset, the strided slice of the padded input its output positions read
    (after ``leading`` whole axes): col2im adds each offset's slab there."""
    return [(slice(None),) * leading + tuple(
        slice(i * dl, i * dl + s * (m - 1) + 1, s)
        for i, dl, s, m in zip(offset, geo.dilation, geo.stride, geo.out_shape))
        for offset in np.ndindex(*geo.kernel)]


def _add_slabs(out, slabs: list, regions: list) -> None:
    """col2im: ``out[region_k] += slabs[k]`` for each kernel offset k, the batch first in both.
    On the CPU the batch is cut into pieces on the thread budget (single-threaded NumPy adds,
    GIL released); each piece adds the offsets in the same order, so the sums are the same."""
    def add_rows(start: int, stop: int) -> None:
        rows = slice(start, stop)
        for slab, region in zip(slabs, regions):
            out[rows][region] += slab[rows]

    if array_module(out) is np:
        over_rows(add_rows, out.shape[0], slabs[0].size * len(slabs))
    else:
        add_rows(0, out.shape[0])


def _conv_input(grad: np.ndarray, w: np.ndarray, geo: _Geometry, c: int) -> np.ndarray:
    """x̄ = Cᵀ(g, w): the adjoint of C in x (= conv_transpose), shape (N, C, *in_shape)."""
    if _cuda_conv.enabled and _cuda_conv.eligible(geo, grad, w):
        return _cuda_conv.conv_input(grad, w, geo, c)
    g = geo.groups
    n = grad.shape[0]
    d = len(geo.kernel)
    o, cg = w.shape[0], w.shape[1]
    kernel_size = math.prod(geo.kernel)
    if geo.pointwise and grad.flags.c_contiguous:
        # Wᵀ (C, O) @ G (N, O, L): no col2im, the result in (N, C, *S) memory (18→64 on
        # (32, 18, 9, 9), one thread: 43 µs instead of 158)
        return array_module(grad).matmul(w.reshape(o, cg).T, grad.reshape(n, o, -1)).reshape(n, c, *geo.in_shape)
    if g == c == o and grad.dtype.kind == "f":
        return _conv_input_depthwise(grad, w, geo)
    if _adjoint_as_conv(grad, w, geo):
        return _conv_input_as_conv(grad, w, geo)
    if _adjoint_in_onednn_blocks(grad, w, geo, c):
        return _conv_input_onednn_blocks(grad, w, geo)
    if (n > 1 or g > 1) and geo.out_shape[-1] >= cg and not is_channels_last(grad):
        # long output rows and a gradient that is not channels-last (an (N, O, *out)-contiguous
        # one from a pool or an elementwise op is read in place; a broadcast one from a sum is
        # copied to it): per-sample GEMMs (measured faster for the 32→64 3×3 and 1→16 5×5 convs;
        # channels-last wins when rows are shorter than C/g, e.g. 16→32 on 10×10). Also for one
        # sample of many groups, a batch folded into the groups as dynamic convolutions do: the
        # channels-last adds would run C/g elements at a time (3→16 3×3 for 32 samples folded, on
        # 16×16: 0.8 ms instead of 2.2; 2 channels per group, 128 groups: 1.8 ms instead of 83)
        return _conv_input_nchw(_contiguous(grad), w, geo, c)
    xp = array_module(grad)
    # one GEMM per kernel offset (batched): dcols[g, k] = G_g (N·L, O/g) @ W_gk (O/g, C/g), so
    # that each offset's slab is contiguous for the col2im adds below (measured 1.5-1.7× faster
    # than slicing a single (N·L, K·C) GEMM result, and faster than the transposed-conv-as-conv)
    w_k = xp.ascontiguousarray(w.reshape(g, o // g, cg, kernel_size).transpose(0, 3, 1, 2))  # (g, K, O/g, C/g)
    grad_matrix = _grad_matrix(grad, g)[:, None]  # (g, 1, N·L, O/g)
    length = math.prod(geo.out_shape)
    # col2im: one strided slice add per kernel offset, into a padded channels-last buffer
    out = xp.zeros((n, *geo.padded_shape, g, cg), dtype=xp.result_type(grad, w))
    regions = _offset_regions(geo, 1)
    src_perm = (1, *range(2, d + 2), 0, d + 2)  # (g, B, *out, C/g) → (B, *out, g, C/g)
    # a few samples at a time, so that the adds read GEMM results still in cache (16→32 5×5 on
    # (64, 16, 14, 14), one thread on the AVX-512 machine: 3.8 ms instead of 4.7 for the batch)
    chunk = _sample_chunk(c, kernel_size * length, out.itemsize, xp, _COL2IM_CHUNK_BYTES)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        dcols = xp.matmul(grad_matrix[:, :, start * length:stop * length], w_k)  # (g, K, B·L, C/g)
        dcols = dcols.reshape(g, kernel_size, stop - start, *geo.out_shape, cg)
        _add_slabs(out[start:stop], [dcols[:, k].transpose(src_perm) for k in range(kernel_size)], regions)
    out = out.reshape(n, *geo.padded_shape, c)
    interior = (slice(None),) + tuple(slice(lo, lo + m) for lo, m in zip(geo.pad_lo, geo.in_shape))
    return out[interior].transpose(0, d + 1, *range(1, d + 1))


def _conv_input_depthwise(grad: np.ndarray, w: np.ndarray, geo: _Geometry) -> np.ndarray:
    """``_conv_input`` for a depthwise conv (one input and one output channel per group): each
    kernel offset's slab is ``grad * w[:, k]``, added into the padded (N, C, *S) buffer in offset
    order. The GEMM paths form the same one-term products and add them in the same order, so the
    bits are theirs; what goes is the per-sample, per-channel GEMM of an inner dimension of one
    (FocalNet's (32, 24, 8, 8) 3×3, one thread on a loaded 2-core AVX2 machine: 1.6-1.7 ms instead
    of 2.5; 5×5: 4.2-4.4 ms instead of 7.8-9.9; (64, 32, 16, 16) 3×3: 9-11 ms instead of 19-23).
    On the CPU the adds run on flat rows instead where that measured faster (``_depthwise_flat_adds``)."""
    xp = array_module(grad)
    if _depthwise_flat_adds(grad, w, geo):
        return _conv_input_depthwise_flat(grad, w, geo)
    n, c = grad.shape[0], grad.shape[1]
    d = len(geo.kernel)
    w_k = w.reshape(c, math.prod(geo.kernel)).T.reshape(-1, c, *(1,) * d)  # (K, C, 1, ...): one factor per offset
    out = xp.zeros((n, c, *geo.padded_shape), dtype=xp.result_type(grad, w))
    regions = _offset_regions(geo, 2)

    def add_rows(start: int, stop: int) -> None:
        rows = slice(start, stop)
        slab = xp.empty((stop - start, *grad.shape[1:]), dtype=out.dtype)
        for factor, region in zip(w_k, regions):
            xp.multiply(grad[rows], factor, out=slab)
            out[rows][region] += slab

    if xp is np:
        over_rows(add_rows, n, grad.size * len(regions))
    else:
        add_rows(0, n)
    return out[(slice(None), slice(None)) + tuple(slice(lo, lo + m) for lo, m in zip(geo.pad_lo, geo.in_shape))]


def _depthwise_flat_adds(grad, w, geo: _Geometry) -> bool:
    """Whether ``_conv_input_depthwise_flat`` runs: on the CPU, finite weights (see there), and not a 1-d layer at
    stride 1, whose regions are long runs already. One thread, the loaded 2-core AVX2 machine, against the region
    adds and the copy of their result: (64, 32, 16, 16) 3×3 0.41×, (16, 64, 14, 14) 5×5 0.20×, (32, 64, 16, 16)
    3×3 stride 2 0.25×, (32, 96, 28, 28) stride 2 0.63×, dilation 2 0.73×, (4, 32, 10, 10, 10) 3×3×3 0.20×,
    (32, 24, 8, 8) 3×3 0.55×, 1-d (64, 64, 100) at stride 2 0.81× (at stride 1 1.12×)."""
    return (array_module(grad) is np and (len(geo.kernel) > 1 or any(s > 1 for s in geo.stride))
            and bool(np.isfinite(w).all()))


# the flat depthwise input gradient's planes a few at a time, about this many elements of gradient: its
# 2·K NumPy calls a block cost more than the slab's trips past L2 (one thread, loaded 2-core AVX2
# machine, against 2^14: ConvNeXt's 7×7 on (16, 64, 14, 14) 0.82×, (64, 32, 16, 16) 3×3 0.78×, 5×5 on
# (16, 64, 14, 14) 0.78×, 3×3×3 on (4, 32, 10, 10, 10) 0.77×, (32, 24, 8, 8) 3×3 0.85×, (8, 96, 56, 56)
# 3×3 0.81×, 1-d at stride 2 0.84×, float64 7×7 0.88×; 2^16 and 2^18 within 10% of it either way)
_DEPTHWISE_FLAT_ELEMENTS = 1 << 17


def _overlapped_extents(geo: _Geometry) -> list[int]:
    """Each axis's extent in ``_conv_input_depthwise_flat``'s phase rows: position q of an axis sits q
    along it (times the pitch), so one reaching past the extent E lands at q - E of the next row or
    plane. The extent holds every output (the gradient's grid) and every input position of each
    phase (q < E), and what spills over stays short of the first input position of any phase
    (reach - E < first): input positions then receive only their own plane's products. The stride-1
    extent is the input plus the larger padding, where the padded plane held both paddings."""
    extents = []
    for size, lo, m, s, o in zip(geo.padded_shape, geo.pad_lo, geo.in_shape, geo.stride, geo.out_shape):
        sub = -(-size // s)  # positions of a phase, the last one reached included
        inputs = [(-(-(lo - r) // s), (lo + m - 1 - r) // s) for r in range(s)]  # first, last of each phase
        inputs = [(a, b) for a, b in inputs if a <= b] or [(0, sub - 1)]  # (an empty input: the padded extent)
        extents.append(max(o, max(b + 1 for _, b in inputs), max(sub - a for a, _ in inputs)))
    return extents


def _conv_input_depthwise_flat(grad: np.ndarray, w: np.ndarray, geo: _Geometry) -> np.ndarray:
    """``_conv_input_depthwise`` on flat planes, the same products added in the same order (so the
    same bits). The padded result is split by stride phase (the positions ``r`` modulo the stride,
    as a strided transposed convolution splits into stride-1 ones): each phase of each (sample,
    channel) plane is one flat row of ``sub`` = padded / stride positions, and kernel offset t lands
    in phase t mod stride, t div stride along. The gradient is spread over a zeroed grid of such
    rows, so that each offset adds ``grid * w[:, k]`` to one run of its phase's rows: one long add
    per offset where the strided regions took one short add per output row. The grid's zeros (the
    positions that are no output) add ±0, which changes no sum (each starts at +0 and so is never
    -0), and the runs of a block of planes stop at its end, so blocks write apart (only zeros would
    cross); infinite or NaN weights keep the region adds (0·inf would not vanish). Neighbouring rows
    and planes overlap (see _overlapped_extents): what one spills past its end lands in the next's
    padding, never in an input position, so the grid is some 28% smaller for ConvNeXt's 7×7."""
    n, c = grad.shape[0], grad.shape[1]
    d = len(geo.kernel)
    stride = geo.stride
    extents = _overlapped_extents(geo)
    pitches = [math.prod(extents[a + 1:]) for a in range(d)]
    plane = math.prod(extents)
    taps = []  # (phase, shift along its rows) of each kernel offset, in offset order
    for offset in np.ndindex(*geo.kernel):
        reach = [i * dl for i, dl in zip(offset, geo.dilation)]
        taps.append((int(np.ravel_multi_index([t % s for t, s in zip(reach, stride)], stride)),
                     sum(t // s * p for t, s, p in zip(reach, stride, pitches))))
    dtype = np.result_type(grad, w)
    planes = n * c
    grid = np.zeros((planes, plane), dtype=dtype)
    _assign(strided_view(grid, (n, c, *geo.out_shape),
                         (c * grid.strides[0], grid.strides[0], *(p * grid.itemsize for p in pitches))), grad)
    factors = np.tile(w.reshape(c, -1).T.astype(dtype, copy=False), (1, n))  # (K, N·C): each plane's weight
    out = np.zeros((math.prod(stride), planes * plane), dtype=dtype)
    block = max(1, _DEPTHWISE_FLAT_ELEMENTS // plane)

    def add_planes(start: int, stop: int) -> None:
        for first in range(start, stop, block):
            last = min(first + block, stop)
            source = grid[first:last]
            slab = np.empty(source.shape, dtype=dtype)
            flat = slab.reshape(-1)
            end = last * plane
            for factor, (phase, shift) in zip(factors, taps):
                begin = first * plane + shift
                np.multiply(source, factor[first:last, None], out=slab)
                target = out[phase, begin:end]
                target += flat[:end - begin]

    over_rows(add_planes, planes, grad.size * len(taps))
    # each phase's rows back to their places: input position i sits at padded i + lo, phase (i + lo) mod s
    result = np.empty((n, c, *geo.in_shape), dtype=dtype)
    phases = out.reshape(-1, n, c, *extents)
    for phase, residue in enumerate(np.ndindex(*stride)):
        first = [(r - lo) % s for r, lo, s in zip(residue, geo.pad_lo, stride)]
        counts = [len(range(i, m, s)) for i, m, s in zip(first, geo.in_shape, stride)]
        if 0 in counts:
            continue
        at = [(i + lo - r) // s for i, lo, r, s in zip(first, geo.pad_lo, residue, stride)]
        _assign(result[(slice(None), slice(None)) + tuple(slice(i, None, s) for i, s in zip(first, stride))],
                phases[(phase, slice(None), slice(None)) + tuple(slice(a, a + k) for a, k in zip(at, counts))])
    return result


# oneDNN's depthwise kernels (torch's float32 CPU path) start each output at zero (at the bias, see
# _depthwise_chain_from_bias) and add the kernel taps in offset order, one fused multiply-add each.
# OpenBLAS's sgemm sums a few hundred products per output the same way (see _ONE_PASS_REDUCTION),
# where the (1, K) @ (K, L) product of a depthwise layer's columns runs as sgemv and rounds otherwise
# (FocalNet's (32, 24, 8, 8) 3×3: 88% of the outputs torch's; 5×5: 30%). The chain's sgemm has a
# wasted row and reads every padded position (see _conv_depthwise_chain), so it is the faster route
# only on small planes: 2-d layers of up to _DEPTHWISE_CHAIN_SMALL (padded position × tap) products
# per channel and sample take it, and up to _DEPTHWISE_CHAIN_MAX_WORK where the output rows are at most
# twice the kernel's (where the GEMM route, as measured here, gathered its columns channels-last). One thread, CPU time
# on the loaded 2-core AVX2 machine, against the GEMM route: (32, 32, S, S) 3×3 0.80-0.83× for S = 8,
# 12; 0.87-1.06× at 16, 0.91× at 20, 1.05× at 28; FocalNet's 5×5 on 8×8 0.67-0.7×; 7×7 on 7×7
# 1.28×, 5×5 on 16×16 1.08×, 1-d layers 1.16-1.43×.
_DEPTHWISE_CHAIN_SMALL = 2048
_DEPTHWISE_CHAIN_MAX_WORK = 4096
# the columns of a few channels at a time, about this many bytes (measured best among 256 KiB-64 MiB)
_DEPTHWISE_COLUMN_BYTES = 2 << 20


def _depthwise_chain_runs(x, w, geo: _Geometry) -> bool:
    """Whether ``_conv_depthwise_chain`` computes this convolution: a 2-d float32 depthwise one (one
    input and one output channel per group, groups > 1) on the CPU, small enough (see
    _DEPTHWISE_CHAIN_SMALL), that torch runs on oneDNN."""
    c = x.shape[1]
    if not (len(geo.kernel) == 2 and geo.groups == c == w.shape[0] > 1 and x.dtype == w.dtype == np.float32
            and array_module(x) is np and x.shape[0] > 0):
        return False
    work = math.prod(geo.padded_shape) * math.prod(geo.kernel)
    short_rows = _output_row_run(geo) <= 2 * _row_taps(geo)
    return ((work <= _DEPTHWISE_CHAIN_SMALL or (work <= _DEPTHWISE_CHAIN_MAX_WORK and short_rows))
            and _onednn_takes_float32(x, w, geo))


def _depthwise_chain_from_bias(geo: _Geometry) -> bool:
    """Whether oneDNN's depthwise kernel for this 2-d layer starts its sums at the bias: its jit_uni_dw
    kernel does where no side is padded past the dilated kernel (the right side as far as the last
    window reaches), a 1×1 kernel only strided; the kernel it falls back on adds the bias to the
    finished sum. (Not every case: some dilated layers padded near the kernel's reach take the
    other kernel, 75 of 1,146 1-d/2-d layers of a sweep where the two orders differ.)"""
    if all(k == 1 for k in geo.kernel) and all(s == 1 for s in geo.stride):
        return False
    return all(lo <= dl * (k - 1) and (m - 1) * s + dl * (k - 1) + 1 - n - lo <= dl * (k - 1) for lo, k, s, dl, m, n in zip(
        geo.pad_lo, geo.kernel, geo.stride, geo.dilation, geo.out_shape, geo.in_shape))


def _conv_depthwise_chain(x: np.ndarray, w: np.ndarray, geo: _Geometry, bias=None) -> np.ndarray:
    """``_conv`` of a depthwise convolution summed as oneDNN sums it (see _DEPTHWISE_CHAIN_SMALL),
    from ``bias`` where one is given. Each channel's padded input is one flat row (its samples one
    after another, the last axis padded to a multiple of its stride) and every output position a
    flat position t, which kernel offset k reads at stride·t + offset_k: the columns of a channel are
    K contiguous (or stride-strided) runs of that row, copied whole, and its outputs are one
    (2, K) @ (K, T) sgemm, the weight row twice (a one-row product runs as sgemv, and a four-row one
    rounded otherwise here). Positions that are no output (the padding's) are computed and dropped."""
    n, c = x.shape[0], x.shape[1]
    d = len(geo.kernel)
    step = geo.stride[-1]
    padded = list(geo.padded_shape)
    padded[-1] += -padded[-1] % step  # so that every output row starts at a multiple of the stride
    pitches = [math.prod(padded[a + 1:]) for a in range(d)]
    plane = math.prod(padded)
    offsets = [sum(i * dl * p for i, dl, p in zip(offset, geo.dilation, pitches)) for offset in np.ndindex(*geo.kernel)]
    xp = np.zeros((c, n, *padded), dtype=np.float32)
    interior = (slice(None), slice(None)) + tuple(slice(lo, lo + m) for lo, m in zip(geo.pad_lo, geo.in_shape))
    _assign(xp[interior], x.swapaxes(0, 1), axis=1)
    rows = xp.reshape(c, n * plane)
    # output (n, *i) sits at flat position n·plane/stride + Σ i_a·stride_a·pitch_a/stride
    grid_strides = [s * p // step for s, p in zip(geo.stride, pitches)]
    last = sum((m - 1) * gs for m, gs in zip(geo.out_shape, grid_strides))
    length = (n - 1) * (plane // step) + last + 1
    first = 0 if bias is None else 1  # a column of ones times the bias starts the chain at it
    taps = first + len(offsets)
    weights = np.empty((c, 2, taps), dtype=np.float32)
    weights[:, :, first:] = w.reshape(c, 1, -1)
    if bias is not None:
        weights[:, :, 0] = bias[:, None]
    grid = np.empty((c, 2, n * (plane // step)), dtype=np.float32)
    piece = min(length, max(1024, _DEPTHWISE_COLUMN_BYTES // (4 * taps)))
    block = max(1, min(c, _DEPTHWISE_COLUMN_BYTES // (4 * taps * piece)))
    cols = np.empty((block, taps, piece), dtype=np.float32)
    if bias is not None:
        cols[:, 0] = 1
    for start in range(0, c, block):
        stop = min(start + block, c)
        for at in range(0, length, piece):
            size = min(piece, length - at)
            part = cols[:stop - start, :, :size]
            for k, offset in enumerate(offsets, first):
                begin = offset + step * at
                part[:, k] = rows[start:stop, begin:begin + step * (size - 1) + 1:step]
            np.matmul(weights[start:stop], part, out=grid[start:stop, :, at:at + size])
    item = grid.itemsize
    view = _windows(grid[:, 0], shape=(n, c, *geo.out_shape),
                    strides=((plane // step) * item, grid.strides[0], *(gs * item for gs in grid_strides)))
    return _contiguous(view)


def _conv_input_nchw(grad: np.ndarray, w: np.ndarray, geo: _Geometry, c: int) -> np.ndarray:
    """``_conv_input`` for an (N, O, *out)-contiguous gradient: per-sample GEMMs read it in place
    and the col2im adds run on (N, C, *spatial) rows; the result is (N, C, *in_shape)."""
    g = geo.groups
    n = grad.shape[0]
    o, cg = w.shape[0], w.shape[1]
    kernel_size = math.prod(geo.kernel)
    xp = array_module(grad)
    # the K offsets stacked into one (K·C/g, O/g) matrix: one GEMM per sample and group rather
    # than K thin ones (32→64 3×3: 40 ms instead of 48 ms single-threaded), same memory layout
    w_k = xp.ascontiguousarray(w.reshape(g, o // g, cg, kernel_size).transpose(0, 3, 2, 1))  # (g, K, C/g, O/g)
    w_k = w_k.reshape(g, kernel_size * cg, o // g)
    out = xp.zeros((n, g, cg, *geo.padded_shape), dtype=xp.result_type(grad, w))
    regions = _offset_regions(geo, 3)
    # a few samples at a time, so the (B, g, K·C/g, L) GEMM result stays small (K× the input
    # for the whole batch)
    chunk = _sample_chunk(c, kernel_size * math.prod(geo.out_shape), out.itemsize, xp)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        per_sample = grad[start:stop].reshape(stop - start, g, o // g, -1)  # (B, g, O/g, L)
        dcols = xp.matmul(w_k, per_sample).reshape(stop - start, g, kernel_size, cg, *geo.out_shape)
        _add_slabs(out[start:stop], [dcols[:, :, k] for k in range(kernel_size)], regions)
    out = out.reshape(n, c, *geo.padded_shape)
    return out[(slice(None), slice(None)) + tuple(slice(lo, lo + m) for lo, m in zip(geo.pad_lo, geo.in_shape))]


def _bias_grad(grad: Tensor) -> Tensor:
    return grad.sum(dim=(0, *range(2, grad.ndim)))


def _in_torch_layout(y, x, w, geo: _Geometry):
    """The layout torch's conv and conv_transpose write, whatever the GEMM left: contiguous NC*S
    (``y.view(n, -1)`` works), or channels-last where the input or the weight suggests it (torch's
    rule for 2-d; for 3-d its oneDNN kernel's, which float64 and some float32 layers do not reach:
    slow_conv3d and slow_conv_transpose3d answer contiguous)."""
    return channels_last(y) if _writes_channels_last(x, w, geo) else _torch_contiguous(y)


def _writes_channels_last(x, w, geo: _Geometry) -> bool:
    """Whether torch's kernel for this conv writes its output channels-last (``_in_torch_layout``): each
    2-d one does where x or w suggests it, a 3-d one only in oneDNN."""
    return (suggests_channels_last(x) or suggests_channels_last(w)) and (
        x.ndim == 4 or (x.dtype != np.float64 and (x.dtype != np.float32 or _onednn_takes_float32(x, w, geo))))


def _weight_grad_kernel_channels_last(x, w, geo: _Geometry, transposed: bool = False) -> bool:
    """Whether torch's kernel for this conv's (or transposed conv's) weight gradient writes it channels-last
    (where x or w suggests it): oneDNN's and slow_conv_dilated2d's do; slow_conv2d's, the 3-d slow kernels' and
    the slow transposed ones' do not (measured against torch 2.13 over groups, kernel, stride, padding,
    dilation, batch and dtype)."""
    return (suggests_channels_last(x) or suggests_channels_last(w)) and (
        (not transposed and x.ndim == 4 and any(d != 1 for d in geo.dilation))
        or (x.dtype != np.float64 and (x.dtype != np.float32 or _onednn_takes_float32(x, w, geo))))


def _torch_contiguous(y):
    y = _contiguous(y)
    # NumPy's contiguity ignores a size-1 dim's stride, so one output channel transposed from the
    # GEMM's (N, *S, 1) keeps channel stride 1, which reads as channels-last to the next conv (and
    # to view): torch's fresh output has (S, S, ...). A flat view reshaped gives those strides.
    return y.reshape(-1).reshape(y.shape) if y.size else y


def _weight_grad_formats(x, w, geo: _Geometry, transposed: bool = False) -> tuple:
    """The two formats ``_weight_grad_layout`` reads: 1-d layers have no channels-last format, and torch runs
    them as 2-d ones on an unsqueezed view, so their weight gradient is always a fresh contiguous tensor (a
    (8, 8, 1) kernel's has strides (8, 1, 1), where NumPy's transposed GEMM leaves (8, 1, 8))."""
    if x.ndim == 3:
        return False, False
    return _weight_grad_kernel_channels_last(x, w, geo, transposed), suggests_channels_last(w)


def _weight_grad_layout(data, kernel_channels_last: bool, weight_channels_last: bool):
    """The layout of torch's conv weight gradient: its kernel's (channels-last where that kernel writes the
    output so, else contiguous, each with a fresh tensor's strides on size-1 dims), then
    ``.contiguous(weight.suggest_memory_format())``, which keeps the kernel's where it already is in that
    format (size-1 dims' strides aside): a (4, 2, 1, 1, 1) kernel-channels-last gradient of a contiguous
    weight keeps strides (2, 1, 2, 2, 2)."""
    data = channels_last(data) if kernel_channels_last else _torch_contiguous(data)
    if weight_channels_last and not is_channels_last(data):
        data = channels_last(data)
    elif not weight_channels_last and not data.flags.c_contiguous:
        data = _torch_contiguous(data)
    if type(data) is np.ndarray and data.base is not None and type(data.base) is not np.ndarray:
        # a size-1 dim's stride set by as_strided, whose view hangs from a stand-in the engine cannot
        # vouch for: the same layout over a plain block, which AccumulateGrad takes over as torch's does
        block = np.ndarray(data.shape, data.dtype, buffer=np.empty(data.size, data.dtype), strides=data.strides)
        block[...] = data
        data = block
    return data


def _onednn_takes_float32(x, w, geo: _Geometry) -> bool:
    """Whether torch's CPU convolution (or transposed one) of a float32 input ``x`` (4-d or 5-d, as arrays) runs oneDNN
    rather than its slow kernels (torch's ConvParams::use_mkldnn): no output padding as wide as the stride (a transposed layer's;
    a conv's rows past its last window are always fewer), not a 1×1 unstrided, undilated layer of a batch under 16 on
    one thread, and one of groups, a kernel over 3×3 in its last two dims, a batch over 1, or N·C·D·H over 20480."""
    if not cpu_features.onednn_enabled() or any(
            n - ((m - 1) * s - lo - hi + d * (k - 1) + 1) >= s for n, m, s, lo, hi, d, k in zip(
                geo.in_shape, geo.out_shape, geo.stride, geo.pad_lo, geo.pad_hi, geo.dilation, geo.kernel)):
        return False
    last_two = tuple(w.shape[-2:])
    if not (any(s != 1 for s in geo.stride) or any(d != 1 for d in geo.dilation) or x.shape[0] >= 16
            or last_two != (1, 1) or _config.torch_intra_op_threads() > 1):
        return False
    return geo.groups > 1 or min(last_two) > 3 or x.shape[0] > 1 or math.prod(x.shape[:4]) > 20480


# torch's CPU kernel for a float32 pointwise convolution of a batch (1×1 kernel, stride 1, no padding,
# one group, NC*S layout: oneDNN's 1×1 kernel) starts each output at its bias and adds the input
# channels in order, one fused multiply-add each, where the GEMM-then-bias order rounds differently
# in the last bit (a width-1 Conv1d (192, 12, 9) → 8 channels: 6,086 of 13,824 outputs differed).
# Past 256 input channels its kernel blocks them (512: 89% differ from the one chain), and one
# sample (an unbatched input too) goes the GEMM-then-bias way; both keep the GEMM here.
_POINTWISE_CHAIN_MAX_CHANNELS = 256
# the chain is one pass over the output per input channel, 8-30x the GEMM's time (width-1 Conv1d
# 12→8 on (192, 12, 9): 0.79 ms against 0.10; 1×1 64→64 on (32, 64, 8, 8): 24.7 ms against 0.8),
# so only layers of up to this many multiply-adds take it; bigger ones keep the GEMM's rounding
_POINTWISE_CHAIN_MAX_WORK = 1 << 20


def _bias_first_pointwise(x, w, b, geo: _Geometry):
    """torch's float32 pointwise convolution with a bias, (N, C, *S) ⋆ (O, C, 1, ...) + (O,) →
    (N, O, *S), rounded as its kernel rounds it; None where its kernel does not take that path or
    the layer is past the size bound above."""
    n, c = x.shape[0], x.shape[1]
    o = w.shape[0]
    length = math.prod(geo.out_shape)
    if not (x.dtype == w.dtype == b.dtype == np.float32 and array_module(x) is np and n > 1
            and all(k == 1 for k in geo.kernel) and all(st == 1 for st in geo.stride)
            and not any(geo.pad_lo) and not any(geo.pad_hi) and geo.groups == 1
            and c <= _POINTWISE_CHAIN_MAX_CHANNELS and n * o * length * c <= _POINTWISE_CHAIN_MAX_WORK
            and not suggests_channels_last(x) and not suggests_channels_last(w)
            and (n >= 16 or any(dl != 1 for dl in geo.dilation) or _config.torch_intra_op_threads() > 1)
            and cpu_features.onednn_enabled()):
        # (the last: torch's use_mkldnn gives a small undilated 1×1 batch to its slow kernel on one
        # thread, the bias copied into the output and the BLAS GEMM added onto it: the GEMM's rounding)
        return None
    # x widened once: each channel's product is then a float64 multiply without a cast (18→16
    # on (32, 18, 9, 9), one thread: 0.94-0.98 ms instead of 1.01-1.19)
    xs = x.reshape(n, c, length).astype(np.float64)
    w64 = w.reshape(o, c).astype(np.float64)
    out = np.empty((n, o, length), dtype=np.float32)
    out[...] = b[:, None]
    step = np.empty((n, o, length), dtype=np.float64)
    for channel in range(c):
        # acc = fma(w, x, acc): the float32 product is exact in float64, the sum rounded to float32
        # (twice, through float64: equal to one fused rounding on every case measured)
        np.multiply(w64[None, :, channel, None], xs[:, None, channel, :], out=step)
        step += out
        out[...] = step
    return out.reshape(n, o, *geo.out_shape)


# ---------------------------------------------------------------- Functions
class Convolution(Function):
    """y = C(x, w) + b."""

    _array_forward = True
    node_name = "ConvolutionBackward0"
    label = "conv"
    rule = ("∂L/∂X = full convolution of G with the 180°-rotated filter, ∂L/∂F = X ⋆ G "
            "(cross-correlation), ∂L/∂b = Σ G")
    # torch's grad_fn._saved_* names, read from the geometry the node keeps
    saved_attributes = {
        "_saved_bias_sym_sizes_opt": SavedValue(
            lambda node: tuple(node._input_meta[2][0]) if node._input_meta[2:] != (None,) else (0,)),
        "_saved_dilation": ctx_value("geo", lambda geo: geo.dilation),
        "_saved_groups": ctx_value("geo", lambda geo: geo.groups),
        "_saved_input": saved(0),
        "_saved_output_padding": ctx_value("geo", lambda geo: (0,) * len(geo.kernel)),
        "_saved_padding": ctx_value("geo", lambda geo: geo.pad_lo),
        "_saved_stride": ctx_value("geo", lambda geo: geo.stride),
        "_saved_transposed": False,
        "_saved_weight": saved(1),
    }

    @staticmethod
    def forward(ctx, x, w, *bias, geo):
        if any(ctx.needs_input_grad):  # keep nothing on the shared no-grad ctx
            ctx.geo = geo
            if ctx.needs_input_grad[1]:  # (the weight gradient's layout: _weight_grad_layout)
                ctx.weight_grad_layout = _weight_grad_formats(x, w, geo)
        # both, whichever gradients are needed: torch's node saves input and weight always (its
        # _saved_input, _saved_weight and saved_tensors_hooks' packs see both)
        ctx.save_for_backward(x, w)
        if x.shape[0] == 0 or x.shape[1] == 0:  # torch's Empty backend: no output channels without input ones
            return array_module(x).zeros((x.shape[0], x.shape[1] and w.shape[0], *geo.out_shape), dtype=x.dtype)
        y = _bias_first_pointwise(x, w, bias[0], geo) if bias else None
        if y is None:
            y = _conv(x, w, geo, bias[0] if bias else None)
        return _in_torch_layout(y, x, w, geo)

    @staticmethod
    @conjugate_rule  # bilinear: for complex operands x̄ = Cᵀ(ḡ, conj w), w̄ = C_w(conj x, ḡ)
    def backward(ctx, grad):
        # dy = C(dx, w) + C(x, dw) + db  ⇒  x̄ = Cᵀ(ḡ, w), w̄ = C_w(x, ḡ), b̄ = Σ ḡ
        x, w = ctx.saved_values
        needs = ctx.needs_input_grad
        geo = ctx.geo
        if ctx.in_channels == 0:  # nothing of either input reached the (empty) output
            grads = (grad.new_zeros(ctx._input_meta[0][0]) if needs[0] else None,
                     grad.new_zeros(ctx.w_shape) if needs[1] else None)
            return grads + ((grad.new_zeros(ctx.w_shape[:1]) if needs[2] else None,) if len(needs) == 3 else ())
        # (recorded, the input gradient is the transposed conv's node: torch names it as the whole backward)
        grad_x = name_node(ConvInput.apply(grad, w, geo=geo, c=ctx.in_channels),
                           "ConvolutionBackwardBackward0") if needs[0] else None
        grad_w = ConvWeight.apply(x, grad, geo=geo, w_shape=ctx.w_shape) if needs[1] else None
        layout = getattr(ctx, "weight_grad_layout", None)
        if layout is not None and grad_w is not None and getattr(type(grad_w), "__torch_dispatch__", None) is None:
            grad_w._data = _weight_grad_layout(grad_w._data, *layout)  # (fresh: the graph is untouched)
        grads = (grad_x, grad_w)
        if len(needs) == 3:
            grads += (depending_on(_bias_grad(grad), x, w, node="ConvolutionBackwardBackward0") if needs[2] else None,)
        return grads


class ConvInput(Function):
    """x = Cᵀ(g, w) (+ b): the input gradient of C, and conv_transpose."""

    _array_forward = True
    node_name = "ConvolutionBackward0"
    label = "conv_transpose"
    rule = ("the adjoint of conv (also the input gradient of conv): ∂L/∂G = conv(U, F), ∂L/∂F = U ⋆ G "
            "(cross-correlation), ∂L/∂b = Σ U")
    # torch's names for conv_transpose's node; output_padding is what the adjoint conv's input
    # has beyond the positions that conv reaches
    saved_attributes = {
        **Convolution.saved_attributes,
        "_saved_output_padding": ctx_value("geo", lambda geo: tuple(
            n - ((m - 1) * s - 2 * p + d * (k - 1) + 1)
            for n, m, s, p, d, k in zip(geo.in_shape, geo.out_shape, geo.stride, geo.pad_lo, geo.dilation,
                                        geo.kernel))),
        "_saved_transposed": True,
    }

    @staticmethod
    def forward(ctx, grad, w, *bias, geo, c):
        ctx.geo = geo
        if ctx.needs_input_grad[1]:  # (the weight gradient's layout: _weight_grad_layout)
            ctx.weight_grad_layout = _weight_grad_formats(grad, w, geo, transposed=True)
        ctx.save_for_backward(grad, w)  # (both always, as conv's)
        if grad.shape[0] == 0:  # torch's Empty backend
            return array_module(grad).zeros((0, c, *geo.in_shape), dtype=grad.dtype)
        out = _conv_input(grad, w, geo, c)
        if bias:
            out = out + bias[0].reshape((-1,) + (1,) * len(geo.kernel))
        return _in_torch_layout(out, grad, w, geo)

    @staticmethod
    @conjugate_rule  # bilinear, as conv's
    def backward(ctx, u):
        # <u, Cᵀ(g, w)> = <C(u, w), g>  ⇒  ḡ = C(u, w), w̄ = C_w(u, g)
        g, w = ctx.saved_values
        needs = ctx.needs_input_grad
        geo = ctx.geo
        grad_g = name_node(Convolution.apply(u, w, geo=geo), "ConvolutionBackwardBackward0") if needs[0] else None
        grad_w = ConvWeight.apply(u, g, geo=geo, w_shape=tuple(ctx._input_meta[1][0])) if needs[1] else None
        layout = getattr(ctx, "weight_grad_layout", None)
        if layout is not None and grad_w is not None and getattr(type(grad_w), "__torch_dispatch__", None) is None:
            grad_w._data = _weight_grad_layout(grad_w._data, *layout)  # (fresh: the graph is untouched)
        grads = (grad_g, grad_w)
        if len(needs) == 3:
            grads += (depending_on(_bias_grad(u), g, w, node="ConvolutionBackwardBackward0") if needs[2] else None,)
        return grads


class ConvWeight(Function):
    """w̄ = C_w(x, g): the filter gradient of C."""

    _array_forward = True
    node_name = "ConvolutionBackwardBackward0"
    label = "conv_weight"
    rule = ("the filter gradient X ⋆ G: ∂/∂X = conv_transpose(G, V), ∂/∂G = conv(X, V) (conv's backward, "
            "recorded as an op under create_graph)")

    @staticmethod
    def forward(ctx, x, grad, geo, w_shape):
        ctx.geo = geo
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None,
                              grad if ctx.needs_input_grad[0] else None)
        return _conv_weight(x, grad, geo, w_shape)  # already contiguous

    @staticmethod
    @conjugate_rule  # bilinear, as conv's
    def backward(ctx, v):
        # <v, C_w(x, g)> = <C(x, v), g>  ⇒  x̄ = Cᵀ(g, v), ḡ = C(x, v)
        x, g = ctx.saved_values
        needs = ctx.needs_input_grad
        geo = ctx.geo
        grad_x = ConvInput.apply(g, v, geo=geo, c=ctx._input_meta[0][0][1]) if needs[0] else None
        grad_g = Convolution.apply(x, v, geo=geo) if needs[1] else None
        return grad_x, grad_g


def _with_absent_bias(out: Tensor) -> Tensor:
    """Give the node of a convolution without bias torch's three edges: ConvolutionBackward0 takes
    input, weight and bias, and lists a missing bias as ``(None, 0)`` in ``next_functions``. The
    backward (and its batched rule) answer None for an edge whose input needs no gradient."""
    node = out.grad_fn
    if node is not None:
        node.next_functions += (_NO_EDGE,)
        node.needs_input_grad += (False,)
        node._input_meta += (None,)
    return out


# Convolution.backward needs the input's channel count and the weight's shape even when the
# tensors themselves were not saved; both are in the node's recorded input metadata.
Convolution._node_cls.in_channels = property(lambda self: self._input_meta[0][0][1])
Convolution._node_cls.w_shape = property(lambda self: tuple(self._input_meta[1][0]))


# ---------------------------------------------------------------- argument checks
def _tuple(value, d: int, name: str, opname: str) -> tuple:
    value = int_list(value, opname, name)
    if len(value) == 1:
        return value * d
    if len(value) != d:
        raise RuntimeError(f"{opname}: expected {name} to be a single integer value or a list of {d} values to "
                           f"match the convolution dimensions, but got {name}={list(value)}")
    return value


def _expand_to_weight(value, d: int, dims: int, name: str, opname: str) -> tuple:
    """torch's expand_param_if_needed: a single int is first read as the op's int[d], then the list
    is expanded to the weight's spatial rank (not the op's), so a weight of the wrong rank is first
    reported through its stride."""
    scalar = not hasattr(value, "__len__")
    value = int_list(value, opname, name)
    if scalar:
        value = value[:1] * d
    if len(value) == 1:
        return value * dims
    if len(value) != dims:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of {dims} values to "
                           f"match the convolution dimensions, but got {name}={list(value)}")
    return value


def _check_stride_and_dilation(stride: tuple, dilation: tuple) -> None:
    """torch's checks of a convolution's (or transposed convolution's) stride and dilation, in its order;
    a zero dilation passes them and is refused later by the kernel (``_check_zero_dilation``)."""
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(dl < 0 for dl in dilation):
        raise RuntimeError("dilation should be greater than zero")


def _check_zero_dilation(input: Tensor, weight: Tensor, stride, dilation, groups: int, d: int,
                         transposed: bool = False, output_padding=()) -> None:
    """torch's check_shape_forward lets a zero dilation through (an empty batch then runs, as on
    torch's Empty backend); each CPU kernel refuses it in its own words: oneDNN's convolution as
    non-positive, its 3-d deconvolution as invalid dimensions, its 1-d/2-d one for want of a primitive
    (yet it runs one whose zero-dilated axes are 1 wide); the slow kernels name the values (a 1-d
    convolution as the 2-d one it runs as). A complex convolution runs as real ones."""
    real = input.real if input.dtype.is_complex else input
    onednn = _uses_onednn(real, weight, stride, dilation, groups, transposed, output_padding)
    values = (1, *dilation) if d == 1 else tuple(dilation)
    if not transposed:
        if onednn:
            raise RuntimeError("non-positive dilation is not supported")
        raise RuntimeError(f"dilation should be greater than zero, but got {list(values)}")
    if onednn:
        if d == 3:
            raise RuntimeError("dimensions are invalid")
        # oneDNN's 1-d/2-d deconvolution runs a zero dilation where that axis's kernel is 1 wide (and
        # then refuses some wide dilated kernels on the other axis, by rules of its own not followed here)
        if any(dl == 0 and k > 1 for dl, k in zip(dilation, weight.shape[2:])):
            raise RuntimeError(_ONEDNN_REFUSES.format("deconvolution"))
        return
    axes = ("depth", "height", "width") if d == 3 else ("height", "width")
    raise RuntimeError("dilation should be greater than zero, but got "
                       + ", ".join(f"dilation_{axis}: {v}" for axis, v in zip(axes, values)))


def _check_weight_rank(input: Tensor, weight: Tensor) -> None:
    """torch's check_shape_forward, after its stride/padding/dilation checks: its message prints the
    weight's size after a space (the padding='same' path prints it without one)."""
    if weight.ndim != input.ndim:
        raise RuntimeError(f"Expected {weight.ndim}-dimensional input for {weight.ndim}-dimensional weight "
                           f"{_fmt(weight.shape)}, but got {input.ndim}-dimensional input of size "
                           f"{_fmt(input.shape)} instead")


def _check_kernel_size(weight: Tensor, d: int) -> None:
    """torch's CPU kernels refuse an empty kernel in their own words: conv1d runs as conv2d with a
    height-1 kernel, conv3d prints T x H x W."""
    kernel = tuple(weight.shape[2:])
    if all(k > 0 for k in kernel):
        return
    if d == 3:
        raise RuntimeError(f"kernel size should be greater than zero, but got: {' x '.join(map(str, kernel))} "
                           "(TxHxW)")
    height, width = (1, kernel[0]) if d == 1 else kernel
    raise RuntimeError(f"kernel size should be greater than zero, but got kernel_height: {height} "
                       f"kernel_width: {width}")


def _per_axis(d: int, **params) -> str:
    """torch's CPU kernels name each axis of their parameters: conv1d runs as conv2d (a height of
    stride 1, dilation 1, no padding), conv3d adds a depth."""
    axes = ("depth", "height", "width") if d == 3 else ("height", "width")
    parts = []
    for name, values in params.items():
        values = (0 if name.endswith("padding") else 1, *values) if d == 1 else values
        parts += [f"{name}_{axis}: {v}" for axis, v in zip(axes, values)]
    return " ".join(parts)


def _fold_tuple(value, name: str, opname: str) -> tuple:
    """An ``int[2]`` of unfold/fold: one int or exactly two (torch's im2col/col2im do not stretch a
    one-element list). torch's Python pairs a single value before its parser sees it, so that one
    is refused as a list's element ("failed to unpack the object at pos 1", "found element of type
    float at pos 0")."""
    sizes = int_list(value if isinstance(value, (tuple, list)) else (value, value), opname, name)
    if len(sizes) != 2:
        raise RuntimeError(f"It is expected {name} equals to 2, but got size {len(sizes)}")
    return sizes


def _fmt(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _batched(input: Tensor, d: int, opname: str) -> tuple[Tensor, bool]:
    if not isinstance(input, Tensor):
        raise TypeError(f"{opname}() argument 'input' must be Tensor, not {type(input).__name__}")
    if input.ndim == d + 1:
        return input.unsqueeze(0), True
    if input.ndim != d + 2:
        raise RuntimeError(f"Expected {d + 1}D (unbatched) or {d + 2}D (batched) input to {opname}, "
                           f"but got input of size: {_fmt(input.shape)}")
    return input, False


def _check_dtypes(input: Tensor, weight: Tensor, bias: Tensor | None, transposed: bool = False,
                  onednn: bool = False) -> None:
    """torch's: conv checks the bias against the input first, in its own words; conv_transpose
    checks the weight, then the bias, as its kernel reads them. A complex input, and a convolution
    torch's dispatch gives oneDNN (``onednn``, see _uses_onednn), say 'Input type (...) and weight
    type (...) should be the same' (oneDNN's with its dense-tensor hint); the slow kernels say
    'expected scalar type'."""
    if not transposed and bias is not None and bias.dtype != input.dtype and not autocast_unifies(input._data):
        raise RuntimeError(f"Input type ({cpp_type_name(input.dtype)}) and bias type ({cpp_type_name(bias.dtype)}) "
                           "should be the same")
    if input._data.dtype.kind not in "fVbiuc":
        raise RuntimeError(f"\"slow_conv2d_cpu\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    if autocast_unifies(input._data):
        return
    for other, what in ((weight, "weight"), (bias, "bias")):
        if other is not None and other.dtype != input.dtype:
            if onednn or input.dtype.is_complex:
                hint = f" or input should be a MKLDNN tensor and {what} is a dense tensor" if onednn else ""
                raise RuntimeError(f"Input type ({_type_text(input)}) and {what} type ({_type_text(other)}) should be "
                                   f"the same{hint}")
            raise RuntimeError(f"expected scalar type {_dtype.scalar_name(input.dtype)} but found {_dtype.scalar_name(other.dtype)}")


# oneDNN's reduced-precision CPU kernels, as torch's mkldnn_bf16_device_check / mkldnn_fp16_device_check
# see them
_ONEDNN_REDUCED = {_dtype.bfloat16: cpu_features.AVX512_CORE, _dtype.float16: cpu_features.AVX512_FP16}


def _uses_onednn(input: Tensor, weight: Tensor, stride, dilation, groups: int, transposed: bool = False,
                 output_padding=()) -> bool:
    """Whether torch's CPU dispatch runs this (batched) convolution on oneDNN (ConvParams::use_mkldnn,
    on the 4-d view a 1-d convolution gets): float16/bfloat16 where the CPU has the kernels; float32
    unless a small single-batch stride-1 convolution (or a 1x1 one on one thread) is cheaper on the
    slow kernel; not a transpose whose output padding reaches its stride; never with
    ``torch.backends.mkldnn.enabled`` False. It decides which words a refusal takes (and, with the
    pointwise chain's own test, which rounding a float32 pointwise convolution keeps)."""
    if input.device.type != "cpu" or not cpu_features.onednn_enabled():
        return False
    if transposed and any(op >= s for op, s in zip(output_padding, stride)):
        return False
    if input.dtype in _ONEDNN_REDUCED:
        return _ONEDNN_REDUCED[input.dtype]
    if input.dtype != _dtype.float32:
        return False
    shape = (*input.shape[:2], 1, input.shape[2]) if input.ndim == 3 else tuple(input.shape)
    kernel = (1, weight.shape[-1]) if weight.ndim == 3 else tuple(weight.shape[-2:])
    n = shape[0]
    if not (any(s != 1 for s in stride) or any(dl != 1 for dl in dilation) or n >= 16 or kernel != (1, 1)
            or _config.torch_intra_op_threads() > 1):
        return False
    return groups > 1 or (kernel[0] > 3 and kernel[1] > 3) or n > 1 or math.prod(shape[:4]) > 20480


def _check_integer_kernel(input: Tensor, d: int, transposed: bool, dilation: tuple) -> None:
    """torch's CPU kernels for integer convolutions: int64 runs in all of them, the other integer
    types only in the plain (not transposed, not dilated) one, bool in none. Checked, as torch's
    dispatch does, after the shapes."""
    dtype = input.dtype
    if dtype.is_floating_point or dtype.is_complex or dtype == _dtype.int64:
        return
    if transposed:
        kernel = "slow_conv_transpose3d_out_cpu" if d == 3 else "slow_conv_transpose2d_out_cpu"
    elif any(dl != 1 for dl in dilation):
        kernel = "slow_conv_dilated<>"
    elif dtype == _dtype.bool:
        kernel = "compute_columns3d" if d == 3 else "slow_conv2d_cpu"
    else:
        return
    raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtype.scalar_name(dtype)}'")


def _empty_backend(input: Tensor, weight: Tensor, d: int) -> bool:
    """Whether torch's _select_conv_backend sends this (batched, shape-checked) convolution to its
    Empty backend: an empty batch or no input channels. Any other empty input it refuses, with a
    1-d convolution's input seen as the 2-d one it runs as; an empty batch times weight.view(-1)[0]
    is an index error where the weight is empty too."""
    n, c = input.shape[:2]
    if n == 0 or c == 0:
        if c and weight.numel() == 0:
            raise IndexError("select(): index 0 out of range for tensor of size [0] at dimension 0")
        return True
    if input.numel() == 0:
        shape = (n, c, 1, input.shape[2]) if d == 1 else input.shape
        raise RuntimeError(f"Only zero batch or zero channel inputs are supported, but got input shape: {_fmt(shape)}")
    return False


# oneDNN's refusal of an empty kernel (a transposed one's per-group weight too), where torch's
# dispatch gives it the convolution (_uses_onednn)
_ONEDNN_REFUSES = ("could not create a primitive descriptor for the {} forward propagation primitive. Run workload "
                   "with environment variable ONEDNN_VERBOSE=all to get additional diagnostic information.")


def _convnd(input, weight, bias, stride, padding, dilation, groups, d: int, opname: str) -> Tensor:
    _check_tensor(weight, opname, "weight", 2)
    _check_tensor(bias, opname, "bias", 3, optional=True)
    input, unbatched = _batched(input, d, opname)
    if weight.ndim < 3:
        raise RuntimeError("weight should have at least three dimensions")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if isinstance(padding, str):  # torch's padding-mode path checks the rank first, in its own spacing
        if weight.ndim != d + 2:
            raise RuntimeError(f"Expected {weight.ndim}-dimensional input for {weight.ndim}-dimensional weight"
                               f"{_fmt(weight.shape)}, but got {input.ndim}-dimensional input of size "
                               f"{_fmt(input.shape)} instead")
        stride = _tuple(stride, d, "stride", opname)
        dilation = _tuple(dilation, d, "dilation", opname)
    else:
        stride = _expand_to_weight(stride, d, weight.ndim - 2, "stride", opname)
        padding = _expand_to_weight(padding, d, weight.ndim - 2, "padding", opname)
        dilation = _expand_to_weight(dilation, d, weight.ndim - 2, "dilation", opname)
        if any(p < 0 for p in padding):
            raise RuntimeError("negative padding is not supported")
    _check_stride_and_dilation(stride, dilation)
    _check_weight_rank(input, weight)
    # conv's own bias check and complex_convolution's come first; the backend's after the shapes
    _check_dtypes(input, weight if input.dtype.is_complex else input, bias)
    kernel = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            pad_lo = pad_hi = (0,) * d
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            total = tuple(dl * (k - 1) for dl, k in zip(dilation, kernel))
            pad_lo = tuple(t // 2 for t in total)
            pad_hi = tuple(t - t // 2 for t in total)
            if pad_lo != pad_hi:  # torch's TORCH_WARN_ONCE where the padding is not symmetric
                _config.warn_once(_ASYMMETRIC_SAME_PADDING)
        else:
            raise RuntimeError(f"Invalid padding string: '{padding}'")
    else:
        pad_lo = pad_hi = padding
    c = input.shape[1]
    o = weight.shape[0]
    if o < groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be at least {groups} at dimension 0, but got "
                           f"weight of size {_fmt(weight.shape)} instead")
    if o % groups:  # torch's message wraps the size in a second pair of brackets
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
                           f"but got weight of size [{_fmt(weight.shape)}] instead")
    if c != weight.shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {_fmt(weight.shape)}, expected "
                           f"input{_fmt(input.shape)} to have {weight.shape[1] * groups} channels, but got "
                           f"{c} channels instead")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != o):
        raise RuntimeError(f"Given weight of size {_fmt(weight.shape)}, expected bias to be 1-dimensional with "
                           f"{o} elements, but got bias of size {_fmt(bias.shape)} instead")
    in_shape = tuple(input.shape[2:])
    padded = tuple(m + lo + hi for m, lo, hi in zip(in_shape, pad_lo, pad_hi))
    effective = tuple(dl * (k - 1) + 1 for dl, k in zip(dilation, kernel))
    if any(p < e for p, e in zip(padded, effective)):
        raise RuntimeError(f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
                           f"Kernel size: ({' x '.join(map(str, effective))}). Kernel size can't be greater "
                           "than actual input size")
    if _empty_backend(input, weight, d):
        # torch's Empty backend reads no kernel, so checks no kernel size or dtype: an empty batch
        # keeps the input's dtype (input * weight[0]); no channels, the two dtypes promoted
        # (input.view(-1) * weight.view(-1)), and no output channels
        dtype = _dtype.promote_types(input.dtype, weight.dtype) if c == 0 else input.dtype
        input, weight = input.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    else:
        if weight.dtype != input.dtype:  # (the backend choice is worked out only for a refusal's words)
            _check_dtypes(input, weight, bias, onednn=_uses_onednn(input, weight, stride, dilation, groups))
        if 0 in dilation:
            _check_zero_dilation(input, weight, stride, dilation, groups, d)
        if any(k == 0 for k in kernel) and _uses_onednn(input, weight, stride, dilation, groups):
            raise RuntimeError(_ONEDNN_REFUSES.format("convolution"))
        _check_kernel_size(weight, d)
        _check_integer_kernel(input, d, False, dilation)
    geo = _Geometry(kernel, stride, pad_lo, pad_hi, dilation, groups, in_shape)
    if bias is None:
        out = _with_absent_bias(Convolution.apply(input, weight, geo=geo))
    else:
        out = Convolution.apply(input, weight, bias, geo=geo)
    return out.squeeze(0) if unbatched else out


_ASYMMETRIC_SAME_PADDING = (
    "Using padding='same' with even kernel lengths and odd dilation may require a zero-padded copy of the input be "
    "created (Triggered internally at /__w/pytorch/pytorch/aten/src/ATen/native/Convolution.cpp:1101.)")


@composite_range("aten::conv1d", 7)
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """torch.nn.functional.conv1d: (N, C, L) ⋆ (O, C/groups, K) → (N, O, L_out); padding int/tuple/'same'/'valid'."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


@composite_range("aten::conv2d", 7)
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """torch.nn.functional.conv2d: (N, C, H, W) ⋆ (O, C/groups, kH, kW) → (N, O, H_out, W_out)."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


@composite_range("aten::conv3d", 7)
def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """torch.nn.functional.conv3d: (N, C, D, H, W) ⋆ (O, C/groups, kD, kH, kW) → (N, O, *out)."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, d: int,
                      opname: str) -> Tensor:
    _check_tensor(weight, opname, "weight", 2)
    _check_tensor(bias, opname, "bias", 3, optional=True)
    input, unbatched = _batched(input, d, opname)
    if weight.ndim < 3:
        raise RuntimeError("weight should have at least three dimensions")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    stride = _expand_to_weight(stride, d, weight.ndim - 2, "stride", opname)
    padding = _expand_to_weight(padding, d, weight.ndim - 2, "padding", opname)
    dilation = _expand_to_weight(dilation, d, weight.ndim - 2, "dilation", opname)
    output_padding = _expand_to_weight(output_padding, d, weight.ndim - 2, "output_padding", opname)
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    if any(p < 0 for p in output_padding):
        raise RuntimeError("negative output_padding is not supported")
    _check_stride_and_dilation(stride, dilation)
    _check_weight_rank(input, weight)
    if input.dtype.is_complex:  # complex_convolution checks the types before the shapes
        _check_dtypes(input, weight, bias, transposed=True)
    if weight.shape[0] < groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be at least {groups} at dimension 0, but got "
                           f"weight of size {_fmt(weight.shape)} instead")
    if weight.shape[0] % groups:  # torch's message wraps the size in a second pair of brackets
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
                           f"but got weight of size [{_fmt(weight.shape)}] instead")
    c_in = input.shape[1]
    if c_in != weight.shape[0]:
        raise RuntimeError(f"Given transposed=1, weight of size {_fmt(weight.shape)}, expected input"
                           f"{_fmt(input.shape)} to have {weight.shape[0]} channels, but got {c_in} channels instead")
    c_out = weight.shape[1] * groups
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != c_out):
        raise RuntimeError(f"Given transposed=1, weight of size {_fmt(weight.shape)}, expected bias to be "
                           f"1-dimensional with {c_out} elements, but got bias of size {_fmt(bias.shape)} instead")
    kernel = tuple(weight.shape[2:])
    out_shape = tuple(input.shape[2:])
    in_shape = tuple((m - 1) * s - 2 * p + dl * (k - 1) + op + 1
                     for m, s, p, dl, k, op in zip(out_shape, stride, padding, dilation, kernel, output_padding))
    empty = _empty_backend(input, weight, d)  # (no channels is refused above: the weight has none)
    if empty and any(m < 0 for m in in_shape):  # its output.view(size): no output-size check
        shape = (*input.shape[:1], c_out, 1, *in_shape) if d == 1 else (*input.shape[:1], c_out, *in_shape)
        at = next(i for i, m in enumerate(shape) if m < 0)
        raise RuntimeError(f"invalid shape dimension {shape[at]} at index {at} of shape {_fmt(shape)}")
    mismatch = weight.dtype != input.dtype or (bias is not None and bias.dtype != input.dtype)
    if mismatch and empty and not input.dtype.is_complex:
        # torch's empty-batch backend reads no kernel: no check, the output in the input's dtype
        weight = weight.to(input.dtype)
        bias = None if bias is None else bias.to(input.dtype)
        mismatch = False
    onednn = mismatch and _uses_onednn(input, weight, stride, dilation, groups, True, output_padding)
    if not (empty or onednn):  # the slow kernels check the shapes before the types, oneDNN's dispatch after
        _check_transposed_kernel(input, weight, stride, dilation, groups, output_padding, d)
        # oneDNN (float32 on torch's usual dispatch) builds an empty output where a size is exactly 0
        # and refuses only a negative one; the slow kernels refuse both
        zero_allowed = _uses_onednn(input, weight, stride, dilation, groups, True, output_padding)
        if any(m < 0 or (m == 0 and not zero_allowed) for m in in_shape):
            raise RuntimeError(f"Given input size per channel: ({' x '.join(map(str, out_shape))}). Calculated "
                               f"output size per channel: ({' x '.join(map(str, in_shape))}). Output size is too small")
    if d < 3 and bias is not None and bias.dtype != input.dtype and input.device.type == "cpu" and not onednn:
        # torch's slow CPU conv_transpose1d/2d add the bias into the output in place (output.add_(bias)):
        # any dtype whose promotion with the input's casts back to it (the bias keeps its own dtype for
        # its gradient); conv_transpose3d and oneDNN refuse any other dtype
        _check_dtypes(input, weight, None, transposed=True)
        result = _dtype.promote_types(input.dtype, bias.dtype)
        if (result.is_complex and not input.dtype.is_complex) or (
                result.is_floating_point and not (input.dtype.is_floating_point or input.dtype.is_complex)):
            raise RuntimeError(f"result type {_dtype.scalar_name(result)} can't be cast to the desired output type "
                               f"{_dtype.scalar_name(input.dtype)}")
        bias = bias.to(input.dtype)
    _check_dtypes(input, weight, bias, transposed=True, onednn=onednn)
    if not empty:
        _check_integer_kernel(input, d, True, dilation)
    # conv_transpose is Cᵀ of the conv whose input has the transpose's output shape; the
    # output_padding extra positions are simply not reached by that conv
    geo = _Geometry(kernel, stride, padding, padding, dilation, groups, in_shape, out_shape)
    if bias is None:
        out = _with_absent_bias(ConvInput.apply(input, weight, geo=geo, c=c_out))
    else:
        out = ConvInput.apply(input, weight, bias, geo=geo, c=c_out)
    if out.dtype is _dtype.float16 and type(out._data) is np.ndarray and out.numel():
        from .conv_transpose_half import conv_transpose_values

        # the values as torch's CPU kernel rounds them (its col2im adds in float16); the graph is the
        # same. (A float16 output of float32 tensors: CPU autocast cast them on the op's way in.)
        def half(t):
            return t._data.astype(np.float16, copy=False)

        out._data[...] = conv_transpose_values(half(input), half(weight), None if bias is None else half(bias),
                                               stride, padding, dilation, groups, in_shape)
    return out.squeeze(0) if unbatched else out


def _check_transposed_kernel(input, weight, stride, dilation, groups, output_padding, d: int) -> None:
    """torch's checks of a transposed convolution's weight, as each kernel makes them on one group's
    (C_in/groups, C_out/groups, *k) weight: oneDNN's refusal of an empty one; slow_conv_transpose3d
    checks it is not empty first, the 2-d one (conv_transpose1d runs as it, with a height-1 kernel)
    checks the kernel and output padding first."""
    if weight.numel() == 0 and _uses_onednn(input, weight, stride, dilation, groups, True, output_padding):
        raise RuntimeError(_ONEDNN_REFUSES.format("deconvolution"))
    per_group = (weight.shape[0] // groups, *weight.shape[1:])
    if d == 3 and weight.numel() == 0:
        raise RuntimeError("non-empty 5D (n_output_plane x n_input_plane x kernel_depth x kernel_height x "
                           f"kernel_width) tensor expected for weight, but got: {_fmt(per_group)}")
    if d < 3:
        _check_kernel_size(weight, d)
    if 0 in dilation:
        _check_zero_dilation(input, weight, stride, dilation, groups, d, True, output_padding)
    if any(op >= s and op >= dl for op, s, dl in zip(output_padding, stride, dilation)):
        raise RuntimeError("output padding must be smaller than either stride or dilation, but got "
                           + _per_axis(d, output_padding=output_padding, stride=stride, dilation=dilation))
    if weight.numel() == 0:
        shape = (*per_group[:2], 1, per_group[2]) if d == 1 else per_group
        raise RuntimeError(f"non-empty 2D or 4D weight tensor expected, but got: {_fmt(shape)}")


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """torch.nn.functional.conv_transpose1d; weight (C_in, C_out/groups, K)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 1,
                             "conv_transpose1d")


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """torch.nn.functional.conv_transpose2d; weight (C_in, C_out/groups, kH, kW)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 2,
                             "conv_transpose2d")


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """torch.nn.functional.conv_transpose3d; weight (C_in, C_out/groups, kD, kH, kW)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 3,
                             "conv_transpose3d")


# ---------------------------------------------------------------- unfold / fold (im2col, col2im)
def _im2col_nchw(x: np.ndarray, geo: _Geometry) -> np.ndarray:
    """(N, C, *S) → (N, C·K, L) in torch's F.unfold order (channel, then kernel offsets)."""
    xp = array_module(x)
    n, c = x.shape[:2]
    if any(geo.pad_lo) or any(geo.pad_hi):
        x = xp.pad(x, ((0, 0), (0, 0), *zip(geo.pad_lo, geo.pad_hi)))
    spatial = x.strides[2:]
    view = _windows(x, shape=(n, c, *geo.kernel, *geo.out_shape),
                    strides=(*x.strides[:2], *(st * dl for st, dl in zip(spatial, geo.dilation)),
                             *(st * s for st, s in zip(spatial, geo.stride))))
    return xp.ascontiguousarray(view).reshape(n, c * math.prod(geo.kernel), math.prod(geo.out_shape))


def _col2im_nchw(cols: np.ndarray, geo: _Geometry) -> np.ndarray:
    """The adjoint of ``_im2col_nchw``: (N, C·K, L) → (N, C, *S), one strided add per offset."""
    n = cols.shape[0]
    c = cols.shape[1] // math.prod(geo.kernel)
    cols = cols.reshape(n, c, *geo.kernel, *geo.out_shape)
    out = array_module(cols).zeros((n, c, *geo.padded_shape), dtype=cols.dtype)
    for offset in np.ndindex(*geo.kernel):
        region = (slice(None), slice(None)) + tuple(
            slice(k * dl, k * dl + s * (m - 1) + 1, s)
            for k, dl, s, m in zip(offset, geo.dilation, geo.stride, geo.out_shape))
        out[region] += cols[(slice(None), slice(None), *offset)]
    interior = (slice(None), slice(None)) + tuple(slice(lo, lo + m) for lo, m in zip(geo.pad_lo, geo.in_shape))
    return out[interior]


class Im2Col(Function):
    label = "unfold"
    rule = "adds the columns' gradients back into the overlapping patches (fold, the adjoint of unfold)"
    _array_forward = True

    @staticmethod
    def forward(ctx, x, geo, unbatched=False):
        # an unbatched (C, H, W) input is batched here, inside the node, so that the output's
        # grad_fn is torch's Im2ColBackward0 rather than a squeeze's
        if ctx.needs_input_grad[0]:
            ctx.geo, ctx.unbatched = geo, unbatched
        cols = _im2col_nchw(x[None] if unbatched else x, geo)
        return cols[0] if unbatched else cols

    @staticmethod
    def backward(ctx, grad):
        # unfold is linear; its adjoint is fold
        return Col2Im.apply(grad, geo=ctx.geo, unbatched=ctx.unbatched)


class Col2Im(Function):
    label = "fold"
    rule = "cuts the gradient back into patches (unfold, the adjoint of fold)"
    _array_forward = True

    @staticmethod
    def forward(ctx, cols, geo, unbatched=False):
        # an unbatched (C·kH·kW, L) input is batched inside the node (Col2ImBackward0, as torch)
        if ctx.needs_input_grad[0]:
            ctx.geo, ctx.unbatched = geo, unbatched
        out = _col2im_nchw(cols[None] if unbatched else cols, geo)
        out = out[0] if unbatched else out
        return array_module(out).ascontiguousarray(out)  # a crop of the padded sum

    @staticmethod
    def backward(ctx, grad):
        # fold is linear; its adjoint is unfold
        return Im2Col.apply(grad, geo=ctx.geo, unbatched=ctx.unbatched)


def _fold_geometry(kernel_size, dilation, padding, stride, in_shape, opname: str) -> _Geometry:
    """The 2-d geometry of unfold (im2col) or fold (col2im), refused as torch's shape checks do:
    each names height and width, and im2col checks the stride last, col2im right after the kernel."""
    kernel = _fold_tuple(kernel_size, "kernel_size", opname)
    dilation = _fold_tuple(dilation, "dilation", opname)
    padding = _fold_tuple(padding, "padding", opname)
    stride = _fold_tuple(stride, "stride", opname)
    checks = {
        "kernel": (min(kernel) > 0, f"kernel size should be greater than zero, but got kernel_height: {kernel[0]} "
                                    f"kernel_width: {kernel[1]}"),
        "stride": (min(stride) > 0, f"stride should be greater than zero, but got stride_height: {stride[0]} "
                                    f"stride_width: {stride[1]}"),
        "dilation": (min(dilation) > 0, f"dilation should be greater than zero, but got dilation_height: "
                                        f"{dilation[0]} dilation_width: {dilation[1]}"),
        "padding": (min(padding) >= 0, f"padding should be non-negative, but got pad_height: {padding[0]} "
                                       f"pad_width: {padding[1]}"),
    }
    order = ("kernel", "dilation", "padding", "stride") if opname == "im2col" else ("kernel", "stride", "dilation",
                                                                                   "padding")
    for name in order:
        ok, message = checks[name]
        if not ok:
            raise RuntimeError(message)
    return _Geometry(kernel, stride, padding, padding, dilation, 1, in_shape)


def _paren(sizes) -> str:
    """A pair as torch's im2col/col2im messages print it: (7, 9)."""
    return "(" + ", ".join(str(s) for s in sizes) + ")"


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """torch.nn.functional.unfold (im2col): (N, C, H, W) → (N, C·kH·kW, L) sliding blocks."""
    # torch's im2col reads the dims it expects before checking their count: fewer than 3 is its IndexError
    if input.ndim == 0:
        raise IndexError("Dimension specified as 1 but tensor has no dimensions")
    if input.ndim < 3:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-input.ndim}, {input.ndim - 1}], "
                         f"but got {input.ndim})")
    shape = tuple(input.shape)
    geo = _fold_geometry(kernel_size, dilation, padding, stride, shape[-2:], "im2col")
    # only the batch dim may be empty
    if input.ndim > 4 or 0 in shape[-3:]:
        raise RuntimeError("Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero "
                           f"dimensions for input, but got: {list(shape)}")
    if any(m <= 0 for m in geo.out_shape):
        raise RuntimeError(f"Given input with spatial size {_paren(shape[-2:])}, kernel_size="
                           f"{_paren(geo.kernel)}, dilation={_paren(geo.dilation)}, padding={_paren(geo.pad_lo)}, "
                           "calculated shape of the array of sliding blocks as "
                           f"{_paren(geo.out_shape)}, but its components must be at least one.")
    if input._data.dtype.kind in "iu":  # torch's kernel: floats, complex and bool
        raise NotImplementedError(f"\"im2col_out_cpu\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    return Im2Col.apply(input, geo=geo, unbatched=input.ndim == 3)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """torch.nn.functional.fold (col2im): (N, C·kH·kW, L) → (N, C, *output_size), overlaps summed."""
    geo = _fold_geometry(kernel_size, dilation, padding, stride, _fold_tuple(output_size, "output_size", "col2im"),
                         "col2im")
    # torch's col2im checks the rank with the empty dims, after the geometry; the empty-dims check
    # reads the input as given, the rest the batched (N, C·kH·kW, L) one
    if input.ndim not in (2, 3) or 0 in input.shape[-2:]:
        raise RuntimeError("Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero "
                           f"dimensions for input, but got: {list(input.shape)}")
    unbatched = input.ndim == 2
    batched_shape = (1, *input.shape) if unbatched else tuple(input.shape)
    k = math.prod(geo.kernel)
    if batched_shape[1] % k:
        raise RuntimeError("Expected size of input's dimension 1 to be divisible by the product of kernel_size, but "
                           f"got input.size(1)={batched_shape[1]} and kernel_size={_paren(geo.kernel)}.")
    if math.prod(geo.out_shape) != batched_shape[2]:
        raise RuntimeError(f"Given output_size={_paren(geo.in_shape)}, kernel_size={_paren(geo.kernel)}, "
                           f"dilation={_paren(geo.dilation)}, padding={_paren(geo.pad_lo)}, stride={_paren(geo.stride)}, "
                           "expected size of input's dimension 2 to match the calculated number of sliding blocks "
                           f"{' * '.join(map(str, geo.out_shape))} = {math.prod(geo.out_shape)}, but got "
                           f"input.size(2)={batched_shape[2]}.")
    if any(m <= 0 for m in geo.out_shape):  # two negative counts whose product is the length
        raise RuntimeError(f"Given output_size={_paren(geo.in_shape)}, kernel_size={_paren(geo.kernel)}, "
                           f"dilation={_paren(geo.dilation)}, padding={_paren(geo.pad_lo)}, stride={_paren(geo.stride)}, "
                           f"calculated shape of the array of sliding blocks as {_paren(geo.out_shape)}, which is "
                           "too small (non-positive)")
    if input._data.dtype.kind in "iu":  # torch's kernel: floats, complex and bool
        raise NotImplementedError(f"\"col2im_out_cpu\" not implemented for '{_dtype.scalar_name(input.dtype)}'")
    return Col2Im.apply(input, geo=geo, unbatched=unbatched)
