"""Convolution (chainrule/ops/conv.py): a stride × padding × dilation × groups × bias matrix, 1-d/2-d/3-d,
conv_transpose, unfold/fold."""

from __future__ import annotations

import itertools

from .core import OpCase, OpInfo, cached, noncontig, randn, select, thin_gradchecks


@cached
def _cases() -> list[OpCase]:
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

    # finite differences on every case would be slow: the whole matrix is compared with torch, a spread
    # of it (and of a smaller copy of the 2-d matrix) also gets the float64 gradient checks
    return (thin_gradchecks(MATRIX_2D) + thin_gradchecks(MATRIX_1D, 5) + EXTRA + TRANSPOSE + UNFOLD
            + matrix_2d((1, 4, 5, 4), 4)[::9])


def _entry(name: str, *patterns: str, **kwargs) -> OpInfo:
    return OpInfo(name, "conv", select(_cases, *(patterns or (name,))), **kwargs)


op_db: list[OpInfo] = [
    _entry("conv2d", "conv2d_*"),
    _entry("conv1d", "conv1d_*"),
    _entry("conv3d", "conv3d", "conv3d_groups_dil", "conv3d_same"),
    _entry("conv_transpose2d", "convT2d", "convT2d_stride_pad_outpad", "convT2d_groups_dil", "convT2d_asym_pad"),
    _entry("conv_transpose1d", "convT1d", "convT1d_unbatched"),
    _entry("conv_transpose3d", "convT3d"),
    _entry("unfold", "unfold", "unfold_unbatched"),  # im2col; Tensor.unfold is a shape op
    _entry("fold", "fold", "fold_unfold"),
]
