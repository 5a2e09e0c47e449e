"""Session 29, lane progV: chainrule gaps found around the dense-prediction and image-op programs
(pix2pix_patchgan, deeplab_aspp, raft_correlation_warp, image_augment_ops, sparse_autoencoder),
each checked against torch 2.13 on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _error(lib, call):
    try:
        call(lib)
    except Exception as e:  # noqa: BLE001  (the class and text are what is compared)
        return type(e).__name__, str(e)
    return None


_ANTIALIAS_ALIGNED = [
    ((2, 3, 7, 9), dict(size=(3, 4), mode="bilinear")),
    ((2, 3, 7, 9), dict(size=(11, 13), mode="bilinear")),
    ((2, 3, 7, 9), dict(size=(2, 20), mode="bicubic")),
    ((2, 3, 7, 9), dict(size=(5, 4), mode="bicubic")),
    # with align_corners the scale is (in - 1) / (out - 1), whatever scale factor was given
    ((1, 2, 8, 8), dict(scale_factor=0.5, mode="bicubic")),
    ((1, 2, 8, 8), dict(scale_factor=(0.3, 1.7), mode="bilinear")),
    # one output row: torch's scale 0, the filter at its narrowest
    ((1, 2, 6, 5), dict(size=(1, 3), mode="bilinear")),
    ((1, 2, 6, 5), dict(size=(1, 1), mode="bicubic")),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,kwargs", _ANTIALIAS_ALIGNED)
def test_antialiased_interpolate_with_align_corners_matches_torch(shape, kwargs, dtype):
    # F.interpolate(..., antialias=True, align_corners=True) raised NotImplementedError; torch
    # resizes with its antialiased filter on the align_corners scale (in - 1) / (out - 1)
    data = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    grad_out = None
    results = {}
    for lib in (torch, chainrule):
        x = lib.tensor(data, requires_grad=True)
        out = lib.nn.functional.interpolate(x, antialias=True, align_corners=True, **kwargs)
        if grad_out is None:
            grad_out = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(dtype)
        out.backward(lib.tensor(grad_out))
        results[lib] = (out.detach().numpy(), x.grad.numpy(), type(out.grad_fn).__name__, str(out.dtype))
    expected, got = results[torch], results[chainrule]
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got[0], expected[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(got[1], expected[1], rtol=tol, atol=tol)
    assert got[2] == expected[2]
    assert got[3].split(".")[-1] == expected[3].split(".")[-1]


@pytest.mark.parametrize("size", [(7, 9), (7, 8), (6, 9)], ids=["both", "height", "width"])
def test_pixel_unshuffle_names_the_indivisible_side_as_torch(size):
    # torch checks the height first, then the width, each with its own message naming input.size(d)
    def call(lib):
        return lib.nn.functional.pixel_unshuffle(lib.zeros(1, 2, *size), 2)

    expected = _error(torch, call)
    assert expected is not None and expected[0] == "RuntimeError"
    assert _error(chainrule, call) == expected


def test_pixel_unshuffle_of_divisible_sizes_still_matches_torch():
    data = np.arange(2 * 3 * 4 * 6, dtype=np.float32).reshape(2, 3, 4, 6)
    expected = torch.nn.functional.pixel_unshuffle(torch.tensor(data), 2).numpy()
    got = chainrule.nn.functional.pixel_unshuffle(chainrule.tensor(data), 2).numpy()
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("call", [
    lambda lib: lib.bincount(lib.tensor([1.0, 2.0])),
    lambda lib: lib.bincount(lib.tensor([1.0], dtype=lib.float64)),
    lambda lib: lib.bincount(lib.tensor([True, False])),
    lambda lib: lib.bincount(lib.tensor([1, -1, 2])),
    lambda lib: lib.bincount(lib.tensor([[1, 2], [0, 1]])),
    lambda lib: lib.bincount(lib.tensor(3)),
    lambda lib: lib.bincount(lib.tensor([1, 2]), minlength=-1),
    lambda lib: lib.bincount(lib.tensor([1, 2]), lib.tensor([1.0, 2.0, 3.0])),
    lambda lib: lib.bincount(lib.tensor([1, 2]), lib.tensor([[1.0, 2.0]])),
], ids=["float", "double", "bool", "negative", "2-d", "0-d", "minlength", "weights-length", "weights-2-d"])
def test_bincount_refuses_with_torchs_messages(call):
    # the confusion-matrix idiom bincount(n * label[mask] + pred[mask]) fails on a float label or a
    # negative (unmasked void) one; torch's texts carry no shapes and name the dtype as 'Float'
    expected = _error(torch, call)
    assert expected is not None
    assert _error(chainrule, call) == expected


def test_bincount_confusion_matrix_matches_torch():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 4, size=200)
    label[:20] = 255
    pred = rng.integers(0, 4, size=200)
    results = []
    for lib in (torch, chainrule):
        a, b = lib.tensor(label), lib.tensor(pred)
        mask = (a >= 0) & (a < 4)
        hist = lib.bincount(4 * a[mask] + b[mask], minlength=4 ** 2).reshape(4, 4)
        results.append((hist.numpy(), str(hist.dtype).split(".")[-1]))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    assert results[1][1] == results[0][1]


@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy"])
@pytest.mark.parametrize("shape", [(4,), (5, 4), (2, 4, 3), (2, 4, 3, 5), (2, 4, 3, 5, 2)])
def test_class_weight_requiring_grad_names_torchs_kernel(shape, loss):
    # segmentation losses (N, C, H, W) go through torch's nll_loss2d kernel, which its message names
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()

    def call(lib):
        fn = getattr(lib.nn.functional, loss)
        return fn(lib.zeros(shape), lib.zeros(target_shape, dtype=lib.long),
                  weight=lib.ones(4, requires_grad=True))

    expected = _error(torch, call)
    assert expected is not None and expected[0] == "RuntimeError"
    assert _error(chainrule, call) == expected


_INTERPOLATE_ARGUMENTS = [
    ((2, 3, 7, 9), dict(size=(3, 4, 5), mode="bilinear")),
    ((2, 3, 7, 9), dict(size=[3], mode="nearest")),
    # a scale factor per dim, of the wrong length: torch refuses, chainrule used the ones it had
    ((2, 3, 7, 9), dict(scale_factor=(2, 2, 2), mode="bilinear")),
    ((2, 3, 7), dict(scale_factor=(2, 2, 2), mode="bilinear")),
    ((2, 3, 7, 9), dict(scale_factor=(2,), mode="nearest")),
    ((2, 3, 7, 9), dict(size=(3, 4), recompute_scale_factor=True, mode="bilinear")),
    # antialias is for 4-d bilinear, bicubic and lanczos only
    ((2, 3, 7, 9), dict(size=(4, 5), mode="nearest", antialias=True)),
    ((2, 3, 7, 9), dict(size=(12, 13), mode="nearest", antialias=True)),
    ((2, 3, 7, 9), dict(size=(12, 13), mode="area", antialias=True)),
    ((2, 3, 7), dict(size=(4,), mode="linear", antialias=True)),
    ((2, 3, 7, 9), dict(size=(4, 5), mode="linear", antialias=True)),
    ((2, 3, 7), dict(size=4, mode="bilinear", antialias=True)),
    ((1, 2, 4, 5, 6), dict(size=(2, 3, 3), mode="trilinear", antialias=True)),
    # bicubic of a 3-d input falls through to torch's general message, as lanczos does
    ((2, 3, 7), dict(size=4, mode="bicubic")),
    ((1, 2, 4, 5, 6), dict(size=2, mode="lanczos")),
    ((2, 3, 7, 9), dict(size=(4, 5), mode="bogus")),
    ((2, 3, 7, 9), dict(size=(4, 5), mode="lanczos")),
    ((2, 3, 7, 9), dict(size=(4, 5), mode="lanczos", antialias=True, align_corners=True)),
]


@pytest.mark.parametrize("shape,kwargs", _INTERPOLATE_ARGUMENTS)
def test_interpolate_refuses_arguments_as_torch(shape, kwargs):
    def call(lib):
        return lib.nn.functional.interpolate(lib.zeros(shape), **kwargs)

    expected = _error(torch, call)
    assert expected is not None
    assert _error(chainrule, call) == expected


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int32"])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "lanczos"])
def test_antialiased_interpolate_refuses_dtypes_torch_has_no_kernel_for(mode, dtype):
    # torch's antialiased weights exist for float, double and uint8 only; chainrule resized float16
    def call(lib):
        return lib.nn.functional.interpolate(lib.ones(1, 2, 6, 6, dtype=getattr(lib, dtype)), size=(3, 4),
                                             mode=mode, antialias=True)

    expected = _error(torch, call)
    assert expected is not None and expected[0] == "NotImplementedError"
    assert _error(chainrule, call) == expected


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kwargs", [dict(size=(3, 4)), dict(size=(12, 20)), dict(size=(1, 9)),
                                    dict(scale_factor=0.5), dict(scale_factor=(1.5, 0.4))])
def test_lanczos_interpolate_matches_torch(kwargs, dtype):
    # torch 2.13's mode="lanczos" (antialias=True): a Lanczos-3 filter on the antialiased grid
    data = np.random.default_rng(0).standard_normal((2, 3, 7, 9)).astype(dtype)
    grad_out = None
    results = {}
    for lib in (torch, chainrule):
        x = lib.tensor(data, requires_grad=True)
        out = lib.nn.functional.interpolate(x, mode="lanczos", antialias=True, **kwargs)
        if grad_out is None:
            grad_out = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(dtype)
        out.backward(lib.tensor(grad_out))
        results[lib] = (out.detach().numpy(), x.grad.numpy(), type(out.grad_fn).__name__)
    expected, got = results[torch], results[chainrule]
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got[0], expected[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(got[1], expected[1], rtol=tol, atol=tol)
    assert got[2] == expected[2]


_FOLD_REFUSALS = {
    "unfold-too-big": lambda F, L: F.unfold(L.zeros(2, 3, 7, 9), 10),
    "unfold-dilated": lambda F, L: F.unfold(L.zeros(2, 3, 7, 9), (2, 10), padding=1, dilation=2),
    "unfold-unbatched-too-big": lambda F, L: F.unfold(L.zeros(3, 7, 9), 10),
    "unfold-kernel": lambda F, L: F.unfold(L.zeros(2, 3, 7, 9), 0, stride=0, dilation=0, padding=-1),
    # im2col checks the stride last
    "unfold-dilation-before-stride": lambda F, L: F.unfold(L.zeros(2, 3, 7, 9), 3, stride=0, dilation=0),
    "unfold-padding-before-stride": lambda F, L: F.unfold(L.zeros(2, 3, 7, 9), 3, stride=0, padding=-1),
    "unfold-stride": lambda F, L: F.unfold(L.zeros(2, 3, 7, 9), 3, stride=0),
    "unfold-empty-channels": lambda F, L: F.unfold(L.zeros(2, 0, 7, 9), 3),
    "unfold-empty-height": lambda F, L: F.unfold(L.zeros(2, 3, 0, 9), 3),
    "unfold-unbatched-empty": lambda F, L: F.unfold(L.zeros(0, 7, 9), 3),
    "unfold-kernel-length": lambda F, L: F.unfold(L.zeros(2, 3, 7, 9), (3, 3, 3)),
    "fold-blocks": lambda F, L: F.fold(L.zeros(2, 27, 5), (7, 9), 3),
    "fold-too-small": lambda F, L: F.fold(L.zeros(2, 27, 35), (2, 2), 3),
    "fold-non-positive": lambda F, L: F.fold(L.zeros(2, 27, 1), (1, 1), 3),
    "fold-divisible": lambda F, L: F.fold(L.zeros(2, 26, 35), (7, 9), 3),
    "fold-unbatched-divisible": lambda F, L: F.fold(L.zeros(26, 35), (7, 9), 3),
    "fold-unbatched-blocks": lambda F, L: F.fold(L.zeros(27, 34), (7, 9), 3),
    # col2im checks the stride right after the kernel
    "fold-stride-before-dilation": lambda F, L: F.fold(L.zeros(2, 27, 35), (7, 9), 3, stride=0, dilation=0),
    "fold-dilation": lambda F, L: F.fold(L.zeros(2, 27, 35), (7, 9), 3, dilation=0, padding=-1),
    "fold-padding": lambda F, L: F.fold(L.zeros(2, 27, 35), (7, 9), 3, padding=-1),
    "fold-empty-length": lambda F, L: F.fold(L.zeros(2, 27, 0), (7, 9), 3),
    "fold-unbatched-empty": lambda F, L: F.fold(L.zeros(27, 0), (7, 9), 3),
    "fold-output-size-length": lambda F, L: F.fold(L.zeros(2, 27, 35), (7, 9, 3), 3),
}


@pytest.mark.parametrize("name", sorted(_FOLD_REFUSALS))
def test_fold_and_unfold_refuse_with_torchs_messages(name):
    # torch 2.13's im2col/col2im shape checks: pairs printed "(7, 9)", kernel/stride/dilation/padding
    # named by height and width, each op's own order, only the batch dim allowed to be empty
    def call(lib):
        return _FOLD_REFUSALS[name](lib.nn.functional, lib)

    expected = _error(torch, call)
    assert expected is not None and expected[0] == "RuntimeError"
    assert _error(chainrule, call) == expected


@pytest.mark.parametrize("shape,op", [((0, 3, 7, 9), "unfold"), ((0, 27, 35), "fold"), ((27, 35), "fold")])
def test_fold_and_unfold_of_allowed_shapes_match_torch(shape, op):
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    outputs = []
    for lib in (torch, chainrule):
        x = lib.tensor(data)
        out = lib.nn.functional.unfold(x, 3) if op == "unfold" else lib.nn.functional.fold(x, (7, 9), 3)
        outputs.append(out.numpy())
    assert outputs[1].shape == outputs[0].shape
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("input_dtype,grid_dtype,shape,mode", [
    ("float64", "float32", (2, 3, 7, 9), "bilinear"),
    ("float32", "float64", (2, 3, 7, 9), "nearest"),
    ("float64", "float32", (2, 3, 7, 9), "bicubic"),
    ("float16", "float32", (2, 3, 7, 9), "bilinear"),
    ("bfloat16", "float16", (2, 3, 7, 9), "bilinear"),
    ("float32", "int64", (2, 3, 7, 9), "bilinear"),
    ("float32", "complex64", (2, 3, 7, 9), "bilinear"),
    ("float64", "float32", (2, 3, 4, 7, 9), "bilinear"),
    # torch's earlier checks still come first: the 5-d bicubic, the empty spatial dim
    ("float64", "float32", (2, 3, 4, 7, 9), "bicubic"),
    ("float64", "float32", (2, 3, 0, 9), "bilinear"),
])
def test_grid_sample_of_mismatched_dtypes_raises_torchs_kernel_error(input_dtype, grid_dtype, shape, mode):
    # a float64 image warped by a float32 flow grid (RAFT's bilinear_sampler after .double())
    def call(lib):
        grid_shape = (shape[0],) + (3,) * (len(shape) - 2) + (len(shape) - 2,)
        return lib.nn.functional.grid_sample(lib.zeros(shape, dtype=getattr(lib, input_dtype)),
                                             lib.zeros(grid_shape, dtype=getattr(lib, grid_dtype)),
                                             mode=mode, align_corners=False)

    expected = _error(torch, call)
    assert expected is not None and expected[0] == "RuntimeError"
    assert _error(chainrule, call) == expected


@pytest.mark.parametrize("kwargs", [dict(k=1.0), dict(k=True), dict(k=None), dict(k=1, dims=0)],
                         ids=["float-k", "bool-k", "none-k", "int-dims"])
def test_rot90_refuses_arguments_as_torchs_parser(kwargs):
    # torch.rot90(x, 1.0) rotated once in chainrule; torch's parser refuses a non-int k
    def call(lib):
        return lib.rot90(lib.zeros(2, 3), **kwargs)

    expected = _error(torch, call)
    assert expected is not None and expected[0] == "TypeError"
    assert _error(chainrule, call) == expected


@pytest.mark.parametrize("k", [-5, -1, 0, 1, 2, 3, 6])
def test_rot90_of_int_k_still_matches_torch(k):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for dims in ((1, 2), (2, 0), (-1, -2)):
        expected = torch.rot90(torch.tensor(data), k, dims).numpy()
        got = chainrule.rot90(chainrule.tensor(data), k, dims).numpy()
        np.testing.assert_array_equal(got, expected)
    k_tensor = torch.rot90(torch.tensor(data), torch.tensor(k), (1, 2)).numpy()
    np.testing.assert_array_equal(chainrule.rot90(chainrule.tensor(data), chainrule.tensor(k), (1, 2)).numpy(), k_tensor)


_CONV_TRANSPOSE_OUTPUT_SIZES = [
    ("ConvTranspose2d", (2, 4, 5, 7), (10, 14), dict(stride=2, padding=1)),
    ("ConvTranspose2d", (2, 4, 5, 7), [2, 3, 11, 15], dict(stride=2, padding=1)),
    ("ConvTranspose2d", (4, 5, 7), (3, 11, 15), dict(stride=2, padding=1)),
    ("ConvTranspose2d", (2, 4, 5, 7), (11, 13), dict(dilation=3)),
    ("ConvTranspose1d", (2, 4, 7), (16,), dict(stride=2)),
    ("ConvTranspose3d", (2, 4, 3, 5, 7), (8, 12, 16), dict(stride=2)),
    # refused: outside [min, min + stride - 1] in any dim (the dilation does not widen it)
    ("ConvTranspose2d", (2, 4, 5, 7), (12, 14), dict(stride=2, padding=1)),
    ("ConvTranspose2d", (2, 4, 5, 7), [2, 3, 9, 15], dict(stride=2, padding=1)),
    ("ConvTranspose2d", (2, 4, 5, 7), (12, 14), dict(dilation=3)),
    ("ConvTranspose2d", (4, 5, 7), (12, 15), dict(stride=2, padding=1)),
    ("ConvTranspose1d", (2, 4, 7), (18,), dict(stride=2)),
    ("ConvTranspose3d", (2, 4, 3, 5, 7), (9, 11, 15), dict(stride=2)),
    # an output_size of neither the spatial nor the full length
    ("ConvTranspose2d", (2, 4, 5, 7), (2, 11, 15), dict(stride=2, padding=1)),
    ("ConvTranspose2d", (4, 5, 7), (2, 3, 11, 15), dict(stride=2, padding=1)),
]


@pytest.mark.parametrize("cls,shape,output_size,kwargs", _CONV_TRANSPOSE_OUTPUT_SIZES)
def test_conv_transpose_output_size_as_torch(cls, shape, output_size, kwargs):
    # the U-Net idiom up(x, output_size=skip.size()): torch's accepted range, message and result
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    results = []
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        module = getattr(lib.nn, cls)(4, 3, 3, **kwargs)
        try:
            out = module(lib.tensor(data), output_size=output_size)
        except ValueError as e:
            results.append(str(e).replace("chainrule.", "torch."))
            continue
        results.append(out.detach().numpy())
    if isinstance(results[0], str):
        assert results[1] == results[0]
    else:
        assert not isinstance(results[1], str), results[1]
        np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("given", ["neither", "mean", "var"])
def test_instance_norm_without_running_stats_when_not_using_input_stats_raises_torchs_error(given):
    # InstanceNorm2d(track_running_stats=False).eval() never gets here (it uses input stats), but
    # F.instance_norm(x, use_input_stats=False) does: at::instance_norm's own message, not batch norm's
    def call(lib):
        stats = {"running_mean": lib.zeros(3) if given == "mean" else None,
                 "running_var": lib.ones(3) if given == "var" else None}
        return lib.nn.functional.instance_norm(lib.ones(2, 3, 4, 4), use_input_stats=False, **stats)

    expected = _error(torch, call)
    assert expected is not None and expected[0] == "RuntimeError"
    assert _error(chainrule, call) == expected
