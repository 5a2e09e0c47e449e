"""Pooling (chainrule/ops/pool.py): kernel × stride × padding × dilation × ceil_mode (max),
count_include_pad and divisor_override (avg), adaptive pools, unpool; tie-free inputs for max."""

from __future__ import annotations

import itertools

from .core import OpCase, OpInfo, cached, distinct, noncontig, positive, randn, select, thin_gradchecks


@cached
def _cases() -> list[OpCase]:
    def F(lib):  # (torch's top-level max pools take no return_indices: the functional ops on both sides)
        return lib.nn.functional

    def pool_case(name, op, x, gradgradcheck=True, **kwargs):
        def fn(lib, t):
            return getattr(F(lib), op)(t, **kwargs)

        return OpCase(name, fn, [x], gradgradcheck=gradgradcheck)

    X1 = distinct(2, 3, 13, seed=1)  # tie-free: the max is unique in every window

    def max_2d(x):
        return [pool_case(f"max_pool2d_k{k}_s{s}_p{p}_d{d}_c{int(c)}".replace(" ", ""), "max_pool2d", x, kernel_size=k,
                          stride=s, padding=p, dilation=d, ceil_mode=c, return_indices=True)
                for k, s, p, d, c in itertools.product([2, (3, 2)], [None, 1, (2, 3)], [0, 1], [1, (2, 1)], [False, True])]

    def avg_2d(x):
        return [pool_case(f"avg_pool2d_k{k}_s{s}_p{p}_c{int(c)}_i{int(i)}".replace(" ", ""), "avg_pool2d", x,
                          kernel_size=k, stride=s, padding=p, ceil_mode=c, count_include_pad=i)
                for k, s, p, c, i in itertools.product([2, (3, 2)], [None, 1, (2, 3)], [0, 1], [False, True], [True, False])]

    MAX_2D = max_2d(distinct(2, 3, 9, 11))

    MAX_1D = [
        pool_case(f"max_pool1d_k{k}_s{s}_p{p}_d{d}_c{int(c)}", "max_pool1d", X1, kernel_size=k, stride=s, padding=p,
                  dilation=d, ceil_mode=c, return_indices=True)
        for k, s, p, d, c in itertools.product([2, 3], [None, 2], [0, 1], [1, 2], [False, True])
    ]

    AVG_2D = avg_2d(randn(2, 3, 9, 11))

    AVG_1D = [
        pool_case(f"avg_pool1d_k{k}_s{s}_p{p}_c{int(c)}_i{int(i)}", "avg_pool1d", randn(2, 3, 13), kernel_size=k,
                  stride=s, padding=p, ceil_mode=c, count_include_pad=i)
        for k, s, p, c, i in itertools.product([2, 4], [None, 3], [0, 1], [False, True], [True, False])
    ]

    OTHER = [
        pool_case("max_pool2d_tiles", "max_pool2d", distinct(2, 3, 8, 10), kernel_size=2),
        pool_case("max_pool2d_unbatched", "max_pool2d", distinct(3, 7, 6), kernel_size=3, stride=2, padding=1,
                  return_indices=True),
        pool_case("max_pool1d_unbatched", "max_pool1d", distinct(3, 9), kernel_size=2),
        pool_case("max_pool2d_noncontig", "max_pool2d", noncontig(distinct(2, 3, 6, 6)), kernel_size=2, stride=1),
        pool_case("max_pool2d_empty_batch", "max_pool2d", distinct(0, 2, 4, 4), kernel_size=2),
        # without indices the backward finds each window's maximum again from the input: overlapping,
        # padded, dilated, cropped and 3-d windows
        pool_case("max_pool2d_odd_tiles", "max_pool2d", distinct(2, 3, 7, 9), kernel_size=2),
        pool_case("max_pool2d_overlap_pad_ceil", "max_pool2d", distinct(2, 3, 8, 9), kernel_size=3, stride=2,
                  padding=1, ceil_mode=True),
        pool_case("max_pool2d_dilated", "max_pool2d", distinct(2, 3, 9, 8), kernel_size=(3, 2), stride=(2, 1),
                  dilation=(2, 1), padding=(1, 0)),
        pool_case("max_pool1d_overlap_pad", "max_pool1d", distinct(2, 3, 11), kernel_size=3, stride=2, padding=1),
        pool_case("max_pool3d_tiles", "max_pool3d", distinct(1, 2, 4, 5, 6), kernel_size=2),
        pool_case("max_pool3d", "max_pool3d", distinct(1, 2, 5, 4, 6), kernel_size=(2, 3, 2), stride=(1, 2, 2),
                  padding=(1, 1, 0), return_indices=True),
        pool_case("avg_pool2d_tiles", "avg_pool2d", randn(2, 3, 8, 10), kernel_size=2),
        pool_case("avg_pool2d_divisor", "avg_pool2d", randn(2, 3, 7, 8), kernel_size=(2, 3), stride=(1, 2),
                  padding=(1, 0), divisor_override=5),
        pool_case("avg_pool2d_unbatched", "avg_pool2d", randn(3, 7, 6), kernel_size=3, stride=2, padding=1),
        pool_case("avg_pool2d_noncontig", "avg_pool2d", noncontig(randn(2, 3, 6, 6)), kernel_size=3, stride=1),
        pool_case("avg_pool3d", "avg_pool3d", randn(1, 2, 5, 4, 6), kernel_size=2, stride=(1, 2, 2), padding=1,
                  ceil_mode=True, count_include_pad=False),
        pool_case("adaptive_avg_pool2d", "adaptive_avg_pool2d", randn(2, 3, 9, 11), output_size=(4, 3)),
        pool_case("adaptive_avg_pool2d_divides", "adaptive_avg_pool2d", randn(2, 3, 8, 6), output_size=(4, 3)),
        pool_case("adaptive_avg_pool2d_global", "adaptive_avg_pool2d", randn(2, 3, 5, 7), output_size=1),
        pool_case("adaptive_avg_pool2d_none", "adaptive_avg_pool2d", randn(2, 3, 5, 7), output_size=(None, 2)),
        pool_case("adaptive_avg_pool2d_upsample", "adaptive_avg_pool2d", randn(1, 2, 3, 2), output_size=(5, 4)),
        pool_case("adaptive_avg_pool2d_unbatched", "adaptive_avg_pool2d", randn(3, 5, 7), output_size=3),
        pool_case("adaptive_avg_pool1d", "adaptive_avg_pool1d", randn(2, 3, 13), output_size=5),
        pool_case("adaptive_max_pool2d", "adaptive_max_pool2d", distinct(2, 3, 9, 11), output_size=(4, 3),
                  return_indices=True),
        pool_case("adaptive_max_pool2d_global", "adaptive_max_pool2d", distinct(2, 3, 5, 7), output_size=1),
        pool_case("adaptive_max_pool2d_upsample", "adaptive_max_pool2d", distinct(1, 2, 3, 2), output_size=(5, 4),
                  return_indices=True),
        pool_case("adaptive_max_pool2d_unbatched", "adaptive_max_pool2d", distinct(3, 5, 7), output_size=(2, 3)),
        pool_case("adaptive_max_pool1d", "adaptive_max_pool1d", distinct(2, 3, 13), output_size=5, return_indices=True),
        OpCase("max_unpool2d", lambda lib, x: F(lib).max_unpool2d(*F(lib).max_pool2d(x, 2, return_indices=True), 2),
               [distinct(2, 3, 6, 8)]),
        OpCase("max_unpool2d_output_size",
               lambda lib, x: F(lib).max_unpool2d(*F(lib).max_pool2d(x, 3, 2, 1, return_indices=True), 3, 2, 1,
                                                  output_size=(7, 9)),
               # overlapping windows repeat indices: unpool writes once but its backward (torch's too)
               # gathers once per repeat, so it is not the finite-difference Jacobian there
               [distinct(2, 3, 7, 9)], gradcheck=False, gradgradcheck=False),
        OpCase("max_unpool1d", lambda lib, x: F(lib).max_unpool1d(*F(lib).max_pool1d(x, 2, return_indices=True), 2),
               [distinct(2, 3, 8)]),
        OpCase("pool_chain", lambda lib, x: F(lib).avg_pool2d(F(lib).max_pool2d(x, 2, 1), 2, ceil_mode=True),
               [distinct(2, 2, 7, 6)]),
    ]

    # finite differences on every case would be slow: the whole matrix is compared with torch, a spread
    # of it (and of smaller copies of the 2-d matrices) also gets the float64 gradient checks
    return (thin_gradchecks(MAX_2D) + thin_gradchecks(MAX_1D, 5) + thin_gradchecks(AVG_2D) + thin_gradchecks(AVG_1D, 5)
            + OTHER + max_2d(distinct(1, 2, 7, 8))[::7] + avg_2d(randn(1, 2, 7, 8))[::6])


def _entry(name: str, *patterns: str, **kwargs) -> OpInfo:
    return OpInfo(name, "pool", select(_cases, *(patterns or (name,))), **kwargs)


op_db: list[OpInfo] = [
    _entry("max_pool2d", "max_pool2d_*"),
    _entry("max_pool1d", "max_pool1d_*"),
    _entry("avg_pool2d", "avg_pool2d_*", "pool_chain"),
    _entry("avg_pool1d", "avg_pool1d_*"),
    _entry("max_pool3d", "max_pool3d", "max_pool3d_*"),
    _entry("avg_pool3d"),
    _entry("adaptive_avg_pool2d", "adaptive_avg_pool2d", "adaptive_avg_pool2d_*"),
    _entry("adaptive_avg_pool1d"),
    _entry("adaptive_max_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_*"),
    _entry("adaptive_max_pool1d"),
    _entry("max_unpool2d", "max_unpool2d", "max_unpool2d_output_size"),
    _entry("max_unpool1d"),
]


op_db += [
    OpInfo("max_pool1d_with_indices", "pool", lambda: [
        OpCase("max_pool1d_with_indices", lambda lib, x: lib.max_pool1d_with_indices(x, 3, 2, 1),
               [distinct(2, 3, 11, seed=3)]),
        OpCase("max_pool1d_with_indices_default_stride", lambda lib, x: lib.max_pool1d_with_indices(x, 2, []),
               [distinct(3, 9, seed=4)]),
    ]),
    OpInfo("nn.functional.lp_pool1d", "pool", lambda: [
        OpCase("lp_pool1d", lambda lib, x: lib.nn.functional.lp_pool1d(x, 2.0, 3, stride=2), [randn(2, 3, 9)]),
        OpCase("lp_pool1d_p3_ceil", lambda lib, x: lib.nn.functional.lp_pool1d(x, 3.0, 2, ceil_mode=True),
               [positive(2, 3, 7)]),
    ]),
    OpInfo("nn.functional.lp_pool2d", "pool", lambda: [
        OpCase("lp_pool2d", lambda lib, x: lib.nn.functional.lp_pool2d(x, 2.0, 2), [randn(2, 3, 6, 4)]),
        OpCase("lp_pool2d_stride", lambda lib, x: lib.nn.functional.lp_pool2d(x, 1.5, (2, 3), stride=(1, 2)),
               [positive(1, 2, 5, 7)]),
    ]),
]
