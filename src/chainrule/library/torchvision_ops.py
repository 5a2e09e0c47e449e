"""torchvision's operators (``torch.ops.torchvision.*``), defined in Python for its ``_C`` library.

torchvision implements nms, roi_align, roi_pool, ... in C++ and registers them from its compiled
``_C`` file, which ``torchvision.extension`` loads with ``torch.ops.load_library``; its Python code
then calls ``torch.ops.torchvision.<op>`` and registers the autograd formulas itself
(``torchvision/_autograd_registrations.py``: ``roi_align``'s backward calls the
``_roi_align_backward`` operator). chainrule cannot load the compiled file, so ``load_library``
runs this module instead: it defines the same operators with the schemas of torchvision 0.28's
``TORCH_LIBRARY(torchvision, m)`` block and gives CPU kernels written from its CPU kernels, so that
the numbers agree (nms's stable descending order and strict ``>`` threshold, roi_align's sampling
grid, its ``aligned`` half-pixel offset and border rules, roi_pool's rounding and first-maximum
argmax).

Defined without a kernel (calling one raises torch's "Could not run ... with arguments from the
'CPU' backend"): ps_roi_align, ps_roi_pool, deform_conv2d, their backwards, the quantized
qnms/qroi_align and box_iou_rotated.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from . import Library

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
    "int sampling_ratio, bool aligned) -> Tensor",
    "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width, int sampling_ratio, "
    "bool aligned) -> Tensor",
    "qroi_align(Tensor input, Tensor rois, float input_scale, int input_zero_point, float rois_scale, "
    "int rois_zero_point, float spatial_scale, SymInt pooled_height, SymInt pooled_width, int sampling_ratio, "
    "bool aligned) -> Tensor",
    "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) "
    "-> (Tensor, Tensor)",
    "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
    "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
    "int sampling_ratio) -> (Tensor, Tensor)",
    "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, "
    "SymInt pooled_height, SymInt pooled_width, int sampling_ratio, SymInt batch_size, SymInt channels, "
    "SymInt height, SymInt width) -> Tensor",
    "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) "
    "-> (Tensor, Tensor)",
    "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, "
    "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, "
    "SymInt width) -> Tensor",
    "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, "
    "SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, "
    "SymInt offset_groups, bool use_mask) -> Tensor",
    "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
    "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, "
    "SymInt groups, SymInt offset_groups, bool use_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    "box_iou_rotated(Tensor boxes1, Tensor boxes2) -> Tensor",
    "_cuda_version() -> int",
)


def _array(t: Tensor) -> np.ndarray:
    return np.asarray(t._data)


def _check_rois(rois: Tensor, input: Tensor, op: str) -> None:
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise RuntimeError(f"{op}: rois must have shape as Tensor[K, 5], got {list(rois.shape)}")
    if input.dtype != rois.dtype:
        raise RuntimeError(f"{op}: expected input and rois to have the same dtype, got {input.dtype} and {rois.dtype}")


# ---- nms
def nms(dets: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression, torchvision's CPU kernel: boxes in descending score order
    (a stable sort, so equal scores keep their input order) suppress every later box whose IoU with
    them is strictly above ``iou_threshold`` (compared in double, as the C++ does); returns the kept
    indices (int64) in that order."""
    if dets.dim() != 2:
        raise RuntimeError(f"boxes should be a 2d tensor, got {dets.dim()}D")
    if dets.shape[1] != 4:
        raise RuntimeError(f"boxes should have 4 elements in dimension 1, got {dets.shape[1]}")
    if scores.dim() != 1:
        raise RuntimeError(f"scores should be a 1d tensor, got {scores.dim()}D")
    if dets.shape[0] != scores.shape[0]:
        raise RuntimeError("boxes and scores should have same number of elements in dimension 0, got "
                           f"{dets.shape[0]} and {scores.shape[0]}")
    if dets.dtype != scores.dtype:
        raise RuntimeError(f"dets should have the same type as scores, got {dets.dtype} and {scores.dtype}")
    boxes, score = _array(dets), _array(scores)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-score, kind="stable")
    suppressed = np.zeros(len(score), dtype=bool)
    keep = []
    for position, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[position + 1:]
        rest = rest[~suppressed[rest]]
        width = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        height = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = width * height
        overlap = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[overlap.astype(np.float64) > iou_threshold]] = True
    return Tensor._make(np.asarray(keep, dtype=np.int64))


# ---- roi_align: each output bin averages bilinear samples on a regular grid. Along each axis the
# samples' weights form a (pooled, size) matrix, and a bin's value is W_y @ plane @ W_x^T / count.
def _roi_geometry(roi: np.ndarray, dtype, spatial_scale: float, pooled_height: int, pooled_width: int,
                  sampling_ratio: int, aligned: bool):
    offset = 0.5 if aligned else 0.0
    # the C++ scales in double and stores the result in the input's type
    start_w, start_h, end_w, end_h = (np.float64(v) * spatial_scale - offset for v in roi[1:5])
    start_w, start_h, end_w, end_h = (dtype(v) for v in (start_w, start_h, end_w, end_h))
    roi_width, roi_height = dtype(end_w - start_w), dtype(end_h - start_h)
    if not aligned:  # the legacy behaviour: a roi is at least one pixel
        roi_width, roi_height = max(roi_width, dtype(1)), max(roi_height, dtype(1))
    bin_h, bin_w = dtype(roi_height / dtype(pooled_height)), dtype(roi_width / dtype(pooled_width))
    grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_height / dtype(pooled_height))
    grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_width / dtype(pooled_width))
    return (start_h, bin_h, int(grid_h)), (start_w, bin_w, int(grid_w))


def _axis_weights(start, bin_size, grid: int, pooled: int, size: int, dtype) -> np.ndarray:
    """(pooled, size): the summed bilinear weights of a bin's ``grid`` samples along one axis."""
    p = np.arange(pooled, dtype=dtype)[:, None]
    g = np.arange(grid, dtype=dtype)[None, :]
    coords = start + p * bin_size + (g + dtype(0.5)) * bin_size / dtype(max(grid, 1))
    valid = (coords >= -1) & (coords <= size)  # the C++ gives a sample outside [-1, size] zero
    coords = np.maximum(coords, dtype(0))
    low = coords.astype(np.int64)
    at_edge = low >= size - 1
    low = np.where(at_edge, size - 1, low)
    high = np.where(at_edge, size - 1, low + 1)
    coords = np.where(at_edge, low.astype(dtype), coords)
    frac = (coords - low).astype(dtype)
    weights = np.zeros((pooled, size), dtype=dtype)
    rows = np.broadcast_to(np.arange(pooled)[:, None], low.shape)
    np.add.at(weights, (rows, low), np.where(valid, dtype(1) - frac, dtype(0)))
    np.add.at(weights, (rows, high), np.where(valid, frac, dtype(0)))
    return weights


def _used(weights: np.ndarray) -> slice:
    """The span of positions a weight matrix touches (the crop of the plane a roi reads)."""
    touched = np.flatnonzero(weights.any(axis=0))
    return slice(0, 0) if touched.size == 0 else slice(int(touched[0]), int(touched[-1]) + 1)


def _roi_align_weights(rois: np.ndarray, dtype, height: int, width: int, spatial_scale, pooled_height,
                       pooled_width, sampling_ratio, aligned):
    for k, roi in enumerate(rois):
        (start_h, bin_h, grid_h), (start_w, bin_w, grid_w) = _roi_geometry(
            roi, dtype, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)
        weights_y = _axis_weights(start_h, bin_h, grid_h, pooled_height, height, dtype)
        weights_x = _axis_weights(start_w, bin_w, grid_w, pooled_width, width, dtype)
        rows, cols = _used(weights_y), _used(weights_x)
        count = dtype(max(grid_h * grid_w, 1))
        yield k, int(roi[0]), rows, cols, weights_y[:, rows], weights_x[:, cols], count


def roi_align(input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int, pooled_width: int,
              sampling_ratio: int, aligned: bool) -> Tensor:
    _check_rois(rois, input, "roi_align")
    x, boxes = _array(input), _array(rois)
    dtype = x.dtype.type
    out = np.zeros((len(boxes), x.shape[1], pooled_height, pooled_width), dtype=x.dtype)
    for k, b, rows, cols, weights_y, weights_x, count in _roi_align_weights(
            boxes, dtype, x.shape[2], x.shape[3], spatial_scale, pooled_height, pooled_width, sampling_ratio,
            aligned):
        out[k] = weights_y @ x[b, :, rows, cols] @ weights_x.T / count
    return Tensor._make(out)


def _roi_align_backward(grad: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int, pooled_width: int,
                        batch_size: int, channels: int, height: int, width: int, sampling_ratio: int,
                        aligned: bool) -> Tensor:
    g, boxes = _array(grad), _array(rois)
    dtype = g.dtype.type
    grad_input = np.zeros((batch_size, channels, height, width), dtype=g.dtype)
    for k, b, rows, cols, weights_y, weights_x, count in _roi_align_weights(
            boxes, dtype, height, width, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned):
        grad_input[b, :, rows, cols] += weights_y.T @ (g[k] / count) @ weights_x
    return Tensor._make(grad_input)


# ---- roi_pool: the maximum of each bin of a roi rounded to whole pixels
def _round_half_away(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))  # std::round


def _roi_pool_bins(roi: np.ndarray, spatial_scale: float, pooled_height: int, pooled_width: int, height: int,
                   width: int, dtype):
    start_w, start_h, end_w, end_h = (_round_half_away(float(v) * spatial_scale) for v in roi[1:5])
    roi_width, roi_height = max(end_w - start_w + 1, 1), max(end_h - start_h + 1, 1)
    bin_h, bin_w = dtype(roi_height) / dtype(pooled_height), dtype(roi_width) / dtype(pooled_width)
    for ph in range(pooled_height):
        h0 = min(max(int(math.floor(dtype(ph) * bin_h)) + start_h, 0), height)
        h1 = min(max(int(math.ceil(dtype(ph + 1) * bin_h)) + start_h, 0), height)
        for pw in range(pooled_width):
            w0 = min(max(int(math.floor(dtype(pw) * bin_w)) + start_w, 0), width)
            w1 = min(max(int(math.ceil(dtype(pw + 1) * bin_w)) + start_w, 0), width)
            yield ph, pw, h0, h1, w0, w1


def roi_pool(input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int,
             pooled_width: int) -> tuple[Tensor, Tensor]:
    _check_rois(rois, input, "roi_pool")
    x, boxes = _array(input), _array(rois)
    channels, height, width = x.shape[1:]
    out = np.zeros((len(boxes), channels, pooled_height, pooled_width), dtype=x.dtype)
    argmax = np.full(out.shape, -1, dtype=np.int32)
    for k, roi in enumerate(boxes):
        plane = x[int(roi[0])]
        for ph, pw, h0, h1, w0, w1 in _roi_pool_bins(roi, spatial_scale, pooled_height, pooled_width, height,
                                                     width, x.dtype.type):
            if h1 <= h0 or w1 <= w0:
                continue  # an empty bin: 0, argmax -1
            window = plane[:, h0:h1, w0:w1].reshape(channels, -1)
            first = np.argmax(window, axis=1)  # the first maximum in row-major order, as the C++ scan
            out[k, :, ph, pw] = window[np.arange(channels), first]
            argmax[k, :, ph, pw] = (h0 + first // (w1 - w0)) * width + w0 + first % (w1 - w0)
    return Tensor._make(out), Tensor._make(argmax)


def _roi_pool_backward(grad: Tensor, rois: Tensor, argmax: Tensor, spatial_scale: float, pooled_height: int,
                       pooled_width: int, batch_size: int, channels: int, height: int, width: int) -> Tensor:
    g, boxes, where = _array(grad), _array(rois), _array(argmax)
    grad_input = np.zeros((batch_size, channels, height * width), dtype=g.dtype)
    for k, roi in enumerate(boxes):
        flat = where[k].reshape(channels, -1)
        hit = flat >= 0
        channel = np.broadcast_to(np.arange(channels)[:, None], flat.shape)
        np.add.at(grad_input[int(roi[0])], (channel[hit], flat[hit]), g[k].reshape(channels, -1)[hit])
    return Tensor._make(grad_input.reshape(batch_size, channels, height, width))


def _cuda_version() -> int:
    return -1  # torchvision's answer when it was built without CUDA


_KERNELS = {"nms": nms, "roi_align": roi_align, "_roi_align_backward": _roi_align_backward, "roi_pool": roi_pool,
            "_roi_pool_backward": _roi_pool_backward}

library = Library("torchvision", "DEF")
for _schema in _SCHEMAS:
    library.define(_schema)
for _name, _kernel in _KERNELS.items():
    library.impl(_name, _kernel, "CPU")
library.impl("_cuda_version", _cuda_version, "CompositeExplicitAutograd")
