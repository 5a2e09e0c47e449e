"""Convolution ops vs torch: a stride × padding × dilation × groups × bias matrix, 1-d/2-d/3-d,
conv_transpose, unfold/fold; float64 gradcheck and gradgradcheck; torch's errors."""

import itertools

import numpy as np
import pytest

import chainrule

from .harness import OpCase, check_gradients, compare_with_torch, noncontig, parametrize, randn

try:
    import torch
except ImportError:
    torch = None


def F(lib):
    return lib.nn.functional if lib.__name__ == "torch" else lib


def conv_case(name, d, x_shape, w_shape, bias, **kwargs):
    seed = len(name)
    inputs = [randn(*x_shape, seed=seed), randn(*w_shape, seed=seed + 1) * 0.5]
    if bias:
        inputs.append(randn(w_shape[0], seed=seed + 2))

    def fn(lib, x, w, b=None):
        return getattr(F(lib), f"conv{d}d")(x, w, b, **kwargs)

    return OpCase(name, fn, inputs)


# ---------------------------------------------------------------- the 2-d matrix
STRIDES = [1, 2, (2, 1)]
PADDINGS = [0, 1, (1, 2), "same", "valid"]
DILATIONS = [1, (2, 1)]
GROUPS = [1, 2, 4]  # 4 = depthwise on 4 input channels (channel multiplier 2)


def matrix_2d(x_shape, out_channels):
    cases = []
    for stride, padding, dilation, groups, bias in itertools.product(STRIDES, PADDINGS, DILATIONS, GROUPS,
                                                                     [True, False]):
        if padding == "same" and stride != 1:
            continue
        cases.append(conv_case(
            f"conv2d_s{stride}_p{padding}_d{dilation}_g{groups}_b{int(bias)}".replace(" ", ""), 2,
            x_shape, (out_channels, 4 // groups, 3, 2), bias,
            stride=stride, padding=padding, dilation=dilation, groups=groups))
    return cases


MATRIX_2D = matrix_2d((2, 4, 7, 8), 8)

MATRIX_1D = []
for stride, padding, dilation, groups in itertools.product([1, 3], [0, 2, "same"], [1, 2], [1, 3]):
    if padding == "same" and stride != 1:
        continue
    MATRIX_1D.append(conv_case(f"conv1d_s{stride}_p{padding}_d{dilation}_g{groups}", 1,
                               (2, 3, 11), (6, 3 // groups, 4), True,
                               stride=stride, padding=padding, dilation=dilation, groups=groups))

EXTRA = [
    conv_case("conv2d_even_same", 2, (1, 2, 6, 5), (3, 2, 4, 2), True, padding="same"),
    conv_case("conv2d_even_same_dil", 2, (1, 2, 7, 6), (3, 2, 2, 4), False, padding="same", dilation=(3, 1)),
    conv_case("conv1d_even_same", 1, (2, 2, 9), (2, 2, 4), True, padding="same", dilation=3),
    conv_case("conv2d_batch1_odd", 2, (1, 3, 9, 5), (2, 3, 3, 3), True, stride=(3, 2), padding=(2, 0)),
    conv_case("conv2d_1x1", 2, (3, 5, 4, 4), (7, 5, 1, 1), True),
    conv_case("conv2d_kernel_eq_input", 2, (2, 2, 3, 4), (3, 2, 3, 4), True),
    conv_case("conv2d_empty_batch", 2, (0, 3, 5, 5), (4, 3, 3, 3), True, padding=1),
    conv_case("conv2d_unbatched", 2, (3, 6, 5), (4, 3, 3, 3), True, padding=1, stride=2),
    conv_case("conv1d_unbatched", 1, (2, 10), (3, 2, 3), True, stride=2, padding=1),
    conv_case("conv3d", 3, (2, 2, 5, 4, 5), (3, 2, 2, 3, 2), True, stride=(1, 2, 1), padding=1),
    conv_case("conv3d_groups_dil", 3, (1, 4, 5, 5, 4), (4, 2, 2, 2, 2), False, groups=2, dilation=(2, 1, 1),
              padding=(0, 1, 1)),
    conv_case("conv3d_same", 3, (1, 2, 4, 4, 4), (2, 2, 2, 3, 2), True, padding="same"),
    OpCase("conv2d_noncontig", lambda lib, x, w: F(lib).conv2d(x, w, padding=1),
           [noncontig(randn(2, 3, 5, 6)), noncontig(randn(4, 3, 3, 3, seed=1))]),
    OpCase("conv2d_twice", lambda lib, x, w1, w2: F(lib).conv2d(F(lib).conv2d(x, w1, padding=1).tanh(), w2, stride=2),
           [randn(2, 3, 6, 6), randn(4, 3, 3, 3, seed=1), randn(2, 4, 3, 3, seed=2)]),
    OpCase("conv2d_weight_only", lambda lib, x, w: F(lib).conv2d(x, w, padding=1), [randn(2, 3, 5, 5), randn(4, 3, 3, 3)],
           grad=[False, True]),
    OpCase("conv2d_input_only", lambda lib, x, w: F(lib).conv2d(x, w, padding=1), [randn(2, 3, 5, 5), randn(4, 3, 3, 3)],
           grad=[True, False]),
]


def transpose_case(name, d, x_shape, w_shape, bias, **kwargs):
    seed = len(name) + 3
    inputs = [randn(*x_shape, seed=seed), randn(*w_shape, seed=seed + 1) * 0.5]
    if bias:
        inputs.append(randn(w_shape[1] * kwargs.get("groups", 1), seed=seed + 2))

    def fn(lib, x, w, b=None):
        return getattr(F(lib), f"conv_transpose{d}d")(x, w, b, **kwargs)

    return OpCase(name, fn, inputs)


TRANSPOSE = [
    transpose_case("convT2d", 2, (2, 4, 5, 4), (4, 3, 3, 3), True),
    transpose_case("convT2d_stride_pad_outpad", 2, (2, 4, 5, 5), (4, 3, 3, 3), True, stride=2, padding=1,
                   output_padding=1),
    transpose_case("convT2d_groups_dil", 2, (1, 4, 4, 3), (4, 2, 2, 3), True, stride=(2, 1), groups=2,
                   dilation=(1, 2), output_padding=(1, 0)),
    transpose_case("convT2d_asym_pad", 2, (2, 2, 4, 5), (2, 3, 3, 2), False, stride=(1, 3), padding=(1, 0)),
    transpose_case("convT1d", 1, (2, 3, 7), (3, 2, 4), True, stride=3, padding=2, output_padding=2),
    transpose_case("convT1d_unbatched", 1, (3, 7), (3, 2, 3), True, stride=2),
    transpose_case("convT3d", 3, (1, 2, 3, 3, 2), (2, 2, 2, 3, 2), True, stride=2, padding=(0, 1, 0)),
]

UNFOLD = [
    OpCase("unfold", lambda lib, x: F(lib).unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
           [randn(2, 3, 6, 7)]),
    OpCase("unfold_unbatched", lambda lib, x: F(lib).unfold(x, 2), [randn(2, 4, 5)]),
    OpCase("fold", lambda lib, x: F(lib).fold(x, (5, 6), (2, 3), padding=1, stride=(1, 2)),
           [randn(2, 12, 6 * 3)]),
    OpCase("fold_unfold", lambda lib, x: F(lib).fold(F(lib).unfold(x, 3, padding=1), (4, 5), 3, padding=1),
           [randn(1, 2, 4, 5)]),
]

ALL = MATRIX_2D + MATRIX_1D + EXTRA + TRANSPOSE + UNFOLD
# finite differences on every case would be slow; a spread of the matrix gets the full check
GRADCHECKED = matrix_2d((1, 4, 5, 4), 4)[::9] + MATRIX_1D[::5] + EXTRA + TRANSPOSE + UNFOLD


@parametrize(ALL)
def test_conv_matches_torch(case):
    compare_with_torch(case)


@parametrize(GRADCHECKED)
def test_conv_gradcheck(case):
    check_gradients(case)


def test_fast_gradcheck_bigger_conv():
    x = chainrule.tensor(randn(4, 6, 12, 12), dtype=chainrule.float64, requires_grad=True)
    w = chainrule.tensor(randn(8, 3, 3, 3, seed=1), dtype=chainrule.float64, requires_grad=True)
    b = chainrule.tensor(randn(8, seed=2), dtype=chainrule.float64, requires_grad=True)

    def fn(x, w, b):
        return chainrule.conv2d(x, w, b, stride=2, padding=(1, 2), groups=2, dilation=(1, 2))

    assert chainrule.autograd.gradcheck(fn, (x, w, b), fast_mode=True)
    assert chainrule.autograd.gradgradcheck(fn, (x, w, b), fast_mode=True)


def test_dtype_and_layout():
    x = chainrule.randn(2, 3, 8, 8)
    w = chainrule.randn(5, 3, 3, 3)
    y = chainrule.conv2d(x, w, padding=1)
    assert y.dtype == chainrule.float32 and tuple(y.shape) == (2, 5, 8, 8)
    y64 = chainrule.conv2d(x.double(), w.double())
    assert y64.dtype == chainrule.float64


def test_grad_fn_name():
    x = chainrule.randn(1, 2, 4, 4, requires_grad=True)
    w = chainrule.randn(3, 2, 3, 3, requires_grad=True)
    assert chainrule.conv2d(x, w).grad_fn.name() == "ConvolutionBackward0"


def test_conv_functions_are_not_methods():
    for name in ("conv1d", "conv2d", "conv_transpose2d", "fold"):
        assert not hasattr(chainrule.Tensor, name), name


ERRORS = [
    ("channels", lambda lib: F(lib).conv2d(lib.randn(1, 5, 4, 4), lib.randn(3, 3, 3, 3)),
     r"Given groups=1, weight of size \[3, 3, 3, 3\], expected input\[1, 5, 4, 4\] to have 3 channels, but got 5"),
    ("kernel_too_big", lambda lib: F(lib).conv2d(lib.randn(1, 3, 2, 2), lib.randn(3, 3, 3, 3)),
     r"Kernel size can't be greater than actual input size"),
    ("input_dims", lambda lib: F(lib).conv2d(lib.randn(3, 2), lib.randn(3, 3, 3, 3)),
     r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got input of size: \[3, 2\]"),
    ("stride", lambda lib: F(lib).conv2d(lib.randn(1, 3, 4, 4), lib.randn(3, 3, 3, 3), stride=0),
     "non-positive stride is not supported"),
    ("padding", lambda lib: F(lib).conv2d(lib.randn(1, 3, 4, 4), lib.randn(3, 3, 3, 3), padding=-1),
     "negative padding is not supported"),
    ("padding_string", lambda lib: F(lib).conv2d(lib.randn(1, 3, 4, 4), lib.randn(3, 3, 3, 3), padding="foo"),
     "Invalid padding string"),
    ("same_strided", lambda lib: F(lib).conv2d(lib.randn(1, 3, 4, 4), lib.randn(3, 3, 3, 3), stride=2, padding="same"),
     "padding='same' is not supported for strided convolutions"),
    ("groups_out", lambda lib: F(lib).conv2d(lib.randn(1, 4, 4, 4), lib.randn(3, 2, 3, 3), groups=2),
     "expected weight to be divisible by 2 at dimension 0"),
    ("bias", lambda lib: F(lib).conv2d(lib.randn(1, 3, 4, 4), lib.randn(3, 3, 3, 3), lib.randn(4)),
     r"expected bias to be 1-dimensional with 3 elements, but got bias of size \[4\]"),
    ("dtype", lambda lib: F(lib).conv2d(lib.randn(1, 3, 4, 4).double(), lib.randn(3, 3, 3, 3)),
     "expected scalar type Double but found Float"),
    ("transpose_channels", lambda lib: F(lib).conv_transpose2d(lib.randn(1, 3, 4, 4), lib.randn(4, 2, 3, 3)),
     r"expected input\[1, 3, 4, 4\] to have 4 channels, but got 3 channels instead"),
    ("transpose_output_padding", lambda lib: F(lib).conv_transpose2d(lib.randn(1, 3, 4, 4), lib.randn(3, 2, 3, 3),
                                                                    output_padding=1),
     "output padding must be smaller than either stride or dilation"),
]


@pytest.mark.parametrize("name,fn,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_conv_errors(name, fn, message):
    with pytest.raises(RuntimeError, match=message):
        fn(chainrule)
    if torch is not None:
        with pytest.raises(RuntimeError, match=message):
            fn(torch)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 1, 1, 1), (2, (1, 0), (1, 2), 2), (1, 0, 1, 4)])
def test_gradient_layouts_agree(stride, padding, dilation, groups):
    # the backward maps pick a code path by the gradient's memory layout (NCHW- or channels-last)
    from chainrule.ops import conv as conv_ops

    x = randn(3, 4, 9, 8).astype(np.float32)
    w = randn(8, 4 // groups, 3, 2, seed=1).astype(np.float32)
    pad = (padding,) * 2 if isinstance(padding, int) else padding
    stride2 = (stride, stride)
    dilation2 = (dilation,) * 2 if isinstance(dilation, int) else dilation
    geo = conv_ops._Geometry((3, 2), stride2, pad, pad, dilation2, groups, (9, 8))
    y = conv_ops._conv(x, w, geo)
    nchw = np.ascontiguousarray(y)
    channels_last = np.ascontiguousarray(y.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert nchw.flags.c_contiguous and not channels_last.flags.c_contiguous
    np.testing.assert_allclose(conv_ops._conv_input(nchw, w, geo, 4), conv_ops._conv_input(channels_last, w, geo, 4),
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(conv_ops._conv_weight(x, nchw, geo, w.shape),
                               conv_ops._conv_weight(x, channels_last, geo, w.shape), rtol=1e-5, atol=1e-3)
