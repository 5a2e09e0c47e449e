"""torchvision's operators on chainrule, without torchvision: ``torch.ops.load_library`` of a
``torchvision/_C`` file defines ``torch.ops.torchvision.*`` in Python (chainrule/library/torchvision_ops.py).

torchvision's kernels are C++; torch alone has none of them, so each is compared with a reference
written here in torch 2.13's ops from torchvision's CPU kernels (nms: stable descending sort, strict
``>``; roi_align: the sampling grid, ``aligned``, samples outside [-1, size] count as zero; roi_pool:
rounded roi, first maximum). Autograd is registered as torchvision 0.28 registers it
(``torch.library.register_autograd`` with the ``_*_backward`` operators), and checked with gradcheck
and against torch's autograd through the reference."""

import math

import numpy as np
import pytest
import torch

import chainrule
from chainrule.ops import namespaces

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def tv(tmp_path_factory):
    library = tmp_path_factory.mktemp("site") / "torchvision" / "_C.so"
    library.parent.mkdir()
    library.write_bytes(b"\x7fELF")  # never opened: chainrule answers torchvision's _C by its name
    chainrule.ops.load_library(str(library))
    assert str(library) in chainrule.ops.loaded_libraries
    ops = chainrule.ops.torchvision
    _register_autograd_as_torchvision_does()
    return ops


def _register_autograd_as_torchvision_does():
    """torchvision/_autograd_registrations.py, for roi_align and roi_pool."""

    def align_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[1])
        ctx.input_shape, ctx.args = inputs[0].shape, inputs[2:]

    def align_backward(ctx, grad):
        (rois,) = ctx.saved_tensors
        scale, ph, pw, ratio, aligned = ctx.args
        grad_input = chainrule.ops.torchvision._roi_align_backward(grad, rois, scale, ph, pw, *ctx.input_shape,
                                                                   ratio, aligned)
        return grad_input, None, None, None, None, None, None

    def pool_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[1], output[1])
        ctx.input_shape, ctx.args = inputs[0].shape, inputs[2:]

    def pool_backward(ctx, grad, _grad_argmax):
        rois, argmax = ctx.saved_tensors
        grad_input = chainrule.ops.torchvision._roi_pool_backward(grad, rois, argmax, *ctx.args, *ctx.input_shape)
        return grad_input, None, None, None, None

    chainrule.library.register_autograd("torchvision::roi_align", align_backward, setup_context=align_setup)
    chainrule.library.register_autograd("torchvision::roi_pool", pool_backward, setup_context=pool_setup)


# ---- references in torch
def _nms_reference(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    order = torch.sort(scores, descending=True, stable=True).indices.tolist()
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed, keep = set(), []
    for position, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[position + 1:]:
            w = torch.clamp(torch.minimum(x2[i], x2[j]) - torch.maximum(x1[i], x1[j]), min=0)
            h = torch.clamp(torch.minimum(y2[i], y2[j]) - torch.maximum(y1[i], y1[j]), min=0)
            inter = w * h
            if float(inter / (areas[i] + areas[j] - inter)) > threshold:
                suppressed.add(j)
    return torch.tensor(keep, dtype=torch.int64)


def _bilinear(plane: torch.Tensor, y: float, x: float) -> torch.Tensor:
    height, width = plane.shape[-2:]
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return plane[:, 0, 0] * 0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    y_high, x_high = min(y_low + 1, height - 1), min(x_low + 1, width - 1)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    ly, lx = y - y_low, x - x_low
    return ((1 - ly) * (1 - lx) * plane[:, y_low, x_low] + (1 - ly) * lx * plane[:, y_low, x_high]
            + ly * (1 - lx) * plane[:, y_high, x_low] + ly * lx * plane[:, y_high, x_high])


def _roi_align_reference(x, rois, scale, ph, pw, ratio, aligned):
    offset = 0.5 if aligned else 0.0
    out = []
    for roi in rois.tolist():
        start_w, start_h, end_w, end_h = (v * scale - offset for v in roi[1:])
        roi_w, roi_h = end_w - start_w, end_h - start_h
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        grid_h = ratio if ratio > 0 else math.ceil(roi_h / ph)
        grid_w = ratio if ratio > 0 else math.ceil(roi_w / pw)
        count = max(grid_h * grid_w, 1)
        bins = []
        for i in range(ph):
            for j in range(pw):
                total = x[int(roi[0]), :, 0, 0] * 0
                for iy in range(grid_h):
                    for ix in range(grid_w):
                        y = start_h + i * roi_h / ph + (iy + 0.5) * roi_h / ph / grid_h
                        xx = start_w + j * roi_w / pw + (ix + 0.5) * roi_w / pw / grid_w
                        total = total + _bilinear(x[int(roi[0])], y, xx)
                bins.append(total / count)
        out.append(torch.stack(bins, -1).reshape(x.shape[1], ph, pw))
    return torch.stack(out)


def _roi_pool_reference(x, rois, scale, ph, pw):
    height, width = x.shape[-2:]
    out, where = [], []
    for roi in rois.tolist():
        start_w, start_h, end_w, end_h = (int(math.copysign(math.floor(abs(v * scale) + 0.5), v)) for v in roi[1:])
        bin_h, bin_w = max(end_h - start_h + 1, 1) / ph, max(end_w - start_w + 1, 1) / pw
        for i in range(ph):
            for j in range(pw):
                h0 = min(max(math.floor(i * bin_h) + start_h, 0), height)
                h1 = min(max(math.ceil((i + 1) * bin_h) + start_h, 0), height)
                w0 = min(max(math.floor(j * bin_w) + start_w, 0), width)
                w1 = min(max(math.ceil((j + 1) * bin_w) + start_w, 0), width)
                if h1 <= h0 or w1 <= w0:
                    out.append(x[0, :, 0, 0] * 0)
                    where.append(torch.full((x.shape[1],), -1))
                    continue
                window = x[int(roi[0]), :, h0:h1, w0:w1].reshape(x.shape[1], -1)
                first = torch.argmax((window == window.max(1, keepdim=True).values).int(), 1)
                out.append(window.gather(1, first[:, None])[:, 0])
                where.append((h0 + first // (w1 - w0)) * width + w0 + first % (w1 - w0))
    shape = (len(rois), ph, pw, x.shape[1])
    return torch.stack(out).reshape(shape).permute(0, 3, 1, 2), torch.stack(where).reshape(shape).permute(0, 3, 1, 2)


def _boxes(n: int, integral_every: int = 5) -> np.ndarray:
    corner = RNG.uniform(0, 40, (n, 2))
    boxes = np.concatenate([corner, corner + RNG.uniform(1, 25, (n, 2))], 1)
    boxes[::integral_every] = np.round(boxes[::integral_every])
    return boxes


def _rois(count: int, height: int, width: int) -> np.ndarray:
    corner = RNG.uniform([-4, -4], [width - 2, height - 2], (count, 2))
    rois = np.concatenate([RNG.integers(0, 2, (count, 1)), corner, corner + RNG.uniform(0.3, 12, (count, 2))], 1)
    rois[0, 3:] = rois[0, 1:3]  # an empty roi
    rois[1, 1:] = [width - 1.5, height - 0.5, width + 3, height + 4]  # reaching past the image
    return rois


# ---- the library itself
def test_load_library_defines_torchvisions_operators_and_refuses_other_compiled_files(tv, tmp_path):
    assert tv.nms.default.name() == "torchvision::nms"
    assert tv._cuda_version() == -1
    for name in ("roi_align", "_roi_align_backward", "roi_pool", "_roi_pool_backward", "ps_roi_align",
                 "ps_roi_pool", "deform_conv2d", "_deform_conv2d_backward", "qnms", "qroi_align"):
        assert hasattr(tv, name), name
    other = tmp_path / "libmyops.so"
    other.write_bytes(b"\x7fELF")
    with pytest.raises(OSError, match="^Could not load this library: .*libmyops.so: chainrule cannot run compiled"):
        chainrule.ops.load_library(str(other))
    assert namespaces.load_library is chainrule.ops.load_library


def test_an_operator_without_a_kernel_raises_torchs_backend_error(tv):
    x = chainrule.zeros(1, 4, 3, 3)
    with pytest.raises(NotImplementedError, match="^Could not run 'torchvision::ps_roi_pool' with arguments from "
                                                  "the 'CPU' backend"):
        tv.ps_roi_pool(x, chainrule.zeros(1, 5), 1.0, 2, 2)


# ---- nms
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7])
def test_nms_keeps_torchvisions_boxes_in_its_order(tv, dtype, threshold):
    boxes, scores = _boxes(120), np.round(RNG.uniform(0, 1, 120), 1)  # many equal scores
    boxes[10] = boxes[11]  # identical boxes: IoU exactly 1
    expected = _nms_reference(torch.tensor(boxes, dtype=getattr(torch, dtype)),
                              torch.tensor(scores, dtype=getattr(torch, dtype)), threshold)
    got = tv.nms(chainrule.tensor(boxes, dtype=getattr(chainrule, dtype)),
                 chainrule.tensor(scores, dtype=getattr(chainrule, dtype)), threshold)
    assert got.dtype == chainrule.int64
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_nms_of_an_iou_equal_to_the_threshold_keeps_the_box(tv):
    boxes = [[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0], [0.0, 0.0, 2.0, 2.0]]
    scores = [0.9, 0.8, 0.9]  # a tie: the first of the two 0.9s goes first
    in_double = tv.nms(chainrule.tensor(boxes, dtype=chainrule.float64), chainrule.tensor(scores,
                       dtype=chainrule.float64), 1 / 3)
    assert in_double.tolist() == [0, 1]  # IoU(0, 1) = 1/3 is not above 1/3
    # in float32 the IoU rounds to 0.33333334, above the double threshold (the C++ compares so)
    assert tv.nms(chainrule.tensor(boxes), chainrule.tensor(scores), 1 / 3).tolist() == [0]
    assert tv.nms(chainrule.zeros(0, 4), chainrule.zeros(0), 0.5).tolist() == []


def test_nms_rejects_bad_shapes_with_torchvisions_messages(tv):
    with pytest.raises(RuntimeError, match="^boxes should have 4 elements in dimension 1, got 3$"):
        tv.nms(chainrule.zeros(2, 3), chainrule.zeros(2), 0.5)
    with pytest.raises(RuntimeError, match="^boxes and scores should have same number of elements in dimension 0, "
                                           "got 2 and 3$"):
        tv.nms(chainrule.zeros(2, 4), chainrule.zeros(3), 0.5)


# ---- roi_align
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("ratio", [-1, 2])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_roi_align_forward_and_gradient_match_the_reference(tv, aligned, ratio, scale):
    x = RNG.standard_normal((2, 3, 9, 11))
    rois = _rois(6, int(9 / scale), int(11 / scale))
    expected_x = torch.tensor(x, requires_grad=True)
    expected = _roi_align_reference(expected_x, torch.tensor(rois), scale, 2, 3, ratio, aligned)
    seed = RNG.standard_normal(tuple(expected.shape))
    (expected * torch.tensor(seed)).sum().backward()
    got_x = chainrule.tensor(x, requires_grad=True)
    got = tv.roi_align(got_x, chainrule.tensor(rois), scale, 2, 3, ratio, aligned)
    (got * chainrule.tensor(seed)).sum().backward()
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_x.grad.numpy(), expected_x.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_roi_align_in_float32_stays_float32_and_agrees(tv):
    x, rois = RNG.standard_normal((1, 4, 12, 12)), _rois(5, 12, 12)
    rois[:, 0] = 0
    expected = _roi_align_reference(torch.tensor(x), torch.tensor(rois), 1.0, 3, 3, 0, False)
    got = tv.roi_align(chainrule.tensor(x, dtype=chainrule.float32), chainrule.tensor(rois, dtype=chainrule.float32),
                       1.0, 3, 3, 0, False)
    assert got.dtype == chainrule.float32
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_roi_align_gradcheck(tv):
    x = chainrule.tensor(RNG.standard_normal((1, 2, 6, 7)), requires_grad=True)
    rois = chainrule.tensor([[0, 0.5, 1.2, 4.3, 5.0], [0, -0.7, 2.0, 7.5, 3.1]], dtype=chainrule.float64)
    assert chainrule.autograd.gradcheck(lambda t: tv.roi_align(t, rois, 1.0, 2, 2, -1, True), (x,))


# ---- roi_pool
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_roi_pool_forward_argmax_and_gradient_match_the_reference(tv, scale):
    x = np.round(RNG.standard_normal((2, 3, 10, 9)), 1)  # equal values: the first maximum wins
    rois = _rois(6, int(10 / scale), int(9 / scale))
    expected_x = torch.tensor(x, requires_grad=True)
    expected, expected_where = _roi_pool_reference(expected_x, torch.tensor(rois), scale, 3, 2)
    seed = RNG.standard_normal(tuple(expected.shape))
    (expected * torch.tensor(seed)).sum().backward()
    got_x = chainrule.tensor(x, requires_grad=True)
    got, where = tv.roi_pool(got_x, chainrule.tensor(rois), scale, 3, 2)
    (got * chainrule.tensor(seed)).sum().backward()
    assert where.dtype == chainrule.int32
    np.testing.assert_array_equal(where.numpy(), expected_where.numpy())
    np.testing.assert_array_equal(got.detach().numpy(), expected.detach().numpy())
    np.testing.assert_allclose(got_x.grad.numpy(), expected_x.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_a_functions_integer_and_bool_outputs_do_not_require_grad(lib):
    seen = []

    class Split(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, lib.tensor([1]), x > 0

        @staticmethod
        def backward(ctx, grad, grad_index, grad_mask):
            seen.append((grad_index.tolist(), grad_mask.tolist()))
            return grad * 2

    x = lib.ones(2, requires_grad=True)
    doubled, index, mask = Split.apply(x)
    assert (doubled.requires_grad, index.requires_grad, mask.requires_grad) == (True, False, False)
    assert index.grad_fn is None and mask.grad_fn is None
    doubled.sum().backward()
    assert seen == [([0], [False, False])] and x.grad.tolist() == [2.0, 2.0]
