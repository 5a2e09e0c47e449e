"""Convolution ops vs torch: a stride × padding × dilation × groups × bias matrix, 1-d/2-d/3-d,
conv_transpose, unfold/fold; float64 gradcheck and gradgradcheck; torch's errors.

The sample-table cases (torch agreement, gradcheck, gradgradcheck) are registry entries in
``chainrule/testing/opinfo/conv.py``, run by ``test_op_db.py``; the tests here are the hand-written ones.
"""


import numpy as np
import pytest

import chainrule

from .harness import randn

try:
    import torch
except ImportError:
    torch = None


def F(lib):
    return lib.nn.functional if lib.__name__ == "torch" else lib



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
