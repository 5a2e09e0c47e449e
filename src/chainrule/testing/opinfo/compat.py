"""torch's smaller names in ops/compat.py: splits under their other names, msort, the infinity
tests, shifts, unravel_index, fill, narrow_copy and the deprecated inclusive range, against torch."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, noncontig, randn, rng

A = randn(3, 4, seed=1)
C = randn(2, 3, 4, seed=2)
INFS = np.array([1.0, -np.inf, np.inf, np.nan, 0.0, -2.0])
INTS = rng(3).integers(-40, 40, (3, 4))
SHIFTS = rng(4).integers(0, 5, (3, 4))


def _split_cases() -> list[OpCase]:
    return [
        OpCase("dsplit", lambda lib, x: lib.dsplit(x, 2), [C]),
        OpCase("dsplit_indices", lambda lib, x: x.dsplit([1, 3]), [C]),
        OpCase("split_with_sizes", lambda lib, x: lib.split_with_sizes(x, [1, 3], 1), [A]),
        OpCase("split_with_sizes_method", lambda lib, x: x.split_with_sizes([2, 0, 1], dim=-3), [noncontig(C.reshape(2, 3, 4)).transpose(1, 0, 2)]),
        OpCase("unsafe_split", lambda lib, x: lib.unsafe_split(x, 3, 1), [A]),
        OpCase("unsafe_split_method", lambda lib, x: x.unsafe_split(1), [A]),
        OpCase("unsafe_split_with_sizes", lambda lib, x: lib.unsafe_split_with_sizes(x, [1, 3], 1), [A]),
        OpCase("unsafe_split_with_sizes_method", lambda lib, x: x.unsafe_split_with_sizes([2, 1]), [A]),
        OpCase("unsafe_chunk", lambda lib, x: lib.unsafe_chunk(x, 2, -1), [A]),
        OpCase("unsafe_chunk_uneven", lambda lib, x: x.unsafe_chunk(2, 0), [A]),
        OpCase("narrow_copy", lambda lib, x: lib.narrow_copy(x, 1, 1, 2), [A]),
        OpCase("narrow_copy_method", lambda lib, x: x.narrow_copy(-1, -3, 2), [C]),
    ]


def _values_cases() -> list[OpCase]:
    return [
        OpCase("msort", lambda lib, x: lib.msort(x), [A]),
        OpCase("msort_method_3d", lambda lib, x: x.msort(), [C]),
        OpCase("msort_1d", lambda lib, x: lib.msort(x), [randn(5, seed=9)]),
        OpCase("isneginf", lambda lib, x: lib.isneginf(x), [INFS]),
        OpCase("isneginf_int", lambda lib, x: x.isneginf(), [INTS]),
        OpCase("isposinf", lambda lib, x: lib.isposinf(x), [INFS]),
        OpCase("isposinf_method", lambda lib, x: x.isposinf(), [noncontig(A)]),
        OpCase("fill", lambda lib, x: lib.fill(x, 2.5), [A]),
        OpCase("fill_int_on_float", lambda lib, x: lib.fill(x, 3), [C]),
        OpCase("fill_tensor", lambda lib, x, v: lib.fill(x, v), [A, randn(seed=5)]),
        OpCase("range", lambda lib: lib.range(0, 1, 0.25), []),
        OpCase("range_descending_int", lambda lib: lib.range(5, 1, -2, dtype=lib.int64), []),
        OpCase("range_float64", lambda lib: lib.range(-1, 2, dtype=lib.float64), []),
    ]


def _shift_cases() -> list[OpCase]:
    return [
        OpCase("bitwise_left_shift", lambda lib, x, s: lib.bitwise_left_shift(x, s), [INTS, SHIFTS]),
        OpCase("lshift_operator_scalar", lambda lib, x: x << 3, [INTS]),
        OpCase("lshift_reflected", lambda lib, s: 2 << s, [SHIFTS]),
        OpCase("lshift_past_width", lambda lib, x: x.to(lib.int8) << 9, [INTS]),
        OpCase("lshift_negative_amount", lambda lib, x, s: x << (s - 2), [INTS, SHIFTS]),
        OpCase("lshift_inplace", lambda lib, x, s: x.clone().bitwise_left_shift_(s), [INTS, SHIFTS]),
        OpCase("lshift_bool", lambda lib, x: (x > 0) << 1, [INTS]),
        OpCase("bitwise_right_shift", lambda lib, x, s: lib.bitwise_right_shift(x, s), [INTS, SHIFTS]),
        OpCase("rshift_operator", lambda lib, x: x >> 2, [INTS]),
        OpCase("rshift_reflected", lambda lib, s: 100 >> s, [SHIFTS]),
        OpCase("rshift_past_width_negative", lambda lib, x: x.to(lib.int8) >> 9, [INTS]),
        OpCase("rshift_inplace_operator", lambda lib, x: _irshift(x.clone()), [INTS]),
        OpCase("rshift_broadcast", lambda lib, x, s: lib.bitwise_right_shift(x, s), [INTS, SHIFTS[:1]]),
    ]


def _irshift(x):
    x >>= 1
    x <<= 2
    return x


def _unravel_cases() -> list[OpCase]:
    return [
        OpCase("unravel_index", lambda lib, i: lib.unravel_index(i, (3, 4)), [np.array([0, 5, 11, -1, 13])]),
        OpCase("unravel_index_2d_indices", lambda lib, i: lib.unravel_index(i, (2, 3, 2)), [rng(5).integers(0, 12, (2, 3))]),
        OpCase("unravel_index_int_shape", lambda lib, i: lib.unravel_index(i, 7), [np.array(4)]),
        OpCase("unravel_index_size", lambda lib, i: lib.unravel_index(i, lib.Size([2, 5])), [np.array([3, 9])]),
    ]


def _index_reduce_cases() -> list[OpCase]:
    index = np.array([0, 2, 0, 3, 2])
    cases = [OpCase(f"index_reduce_{reduce}_{'self' if include_self else 'noself'}",
                    lambda lib, x, s, i, reduce=reduce, include_self=include_self:
                    x.index_reduce(0, i, s, reduce, include_self=include_self),
                    [randn(4, 3, seed=10), randn(5, 3, seed=11), index])
             for reduce in ("prod", "mean", "amax", "amin") for include_self in (True, False)]
    return cases + [
        OpCase("index_reduce_fn_dim1", lambda lib, x, s, i: lib.index_reduce(x, -1, i, s, "mean"),
               [randn(2, 4, seed=12), randn(2, 5, seed=13), index]),
        OpCase("index_reduce_inplace", lambda lib, x, s, i: x.clone().index_reduce_(0, i, s, "prod"),
               [randn(4, 3, seed=14), randn(5, 3, seed=15), index]),
    ]


def _nonzero_static_cases() -> list[OpCase]:
    mask = np.array([[1, 0, 2], [0, 0, 3]])
    return [
        OpCase("nonzero_static_pad", lambda lib, x: lib.nonzero_static(x, size=5), [mask]),
        OpCase("nonzero_static_cut_fill", lambda lib, x: x.nonzero_static(size=2, fill_value=7), [mask]),
        OpCase("nonzero_static_1d_zero", lambda lib, x: lib.nonzero_static(x, size=0), [mask[0]]),
    ]


def _histogramdd(lib, x, **kwargs):
    result = lib.histogramdd(x, **kwargs)
    return (result.hist, *result.bin_edges)


def _histogramdd_cases() -> list[OpCase]:
    points = randn(40, 2, seed=20)
    return [
        # torch marks the outputs as requiring grad (with no formula): compared without gradients
        OpCase("histogramdd", lambda lib, x: _histogramdd(lib, x, bins=[3, 4]), [points], grad=[False]),
        OpCase("histogramdd_range_density", lambda lib, x: _histogramdd(lib, x, bins=3, range=[-1.0, 1.0, -2.0, 2.0],
                                                                         density=True), [points], grad=[False]),
        OpCase("histogramdd_edges_weight", lambda lib, x, w: _histogramdd(
            lib, x, bins=[lib.tensor([-1.0, 0.0, 1.0], dtype=x.dtype), lib.tensor([-3.0, 0.0, 3.0], dtype=x.dtype)],
            weight=w), [points, randn(40, seed=21)], grad=[False, False]),
        OpCase("histogramdd_3d_batched", lambda lib, x: _histogramdd(lib, x, bins=2), [randn(2, 10, 3, seed=22)],
               grad=[False]),
        OpCase("histogramdd_constant_empty", lambda lib, x: _histogramdd(lib, x, bins=2), [np.ones((0, 2))],
               grad=[False]),
    ]


# one sample per *_copy variant: the view's arguments
_COPY_SAMPLES = {
    "alias_copy": lambda lib, x: lib.alias_copy(x),
    "view_as_real_copy": lambda lib, x: lib.view_as_real_copy(lib.complex(x, x.flip(0))),
    "view_as_complex_copy": lambda lib, x: lib.view_as_complex_copy(x[:, :2].contiguous()),
    "as_strided_copy": lambda lib, x: lib.as_strided_copy(x, (2, 2), (1, 2), 1),
    "detach_copy": lambda lib, x: lib.detach_copy(x),
    "diagonal_copy": lambda lib, x: lib.diagonal_copy(x, 1),
    "expand_copy": lambda lib, x: lib.expand_copy(x[:1], (2, 3, 4)),
    "permute_copy": lambda lib, x: lib.permute_copy(x, (1, 0)),
    "select_copy": lambda lib, x: lib.select_copy(x, 1, -1),
    "slice_copy": lambda lib, x: lib.slice_copy(x, 1, 0, 4, 2),
    "split_copy": lambda lib, x: lib.split_copy(x, 2, 1),
    "split_with_sizes_copy": lambda lib, x: lib.split_with_sizes_copy(x, [1, 3], 1),
    "squeeze_copy": lambda lib, x: lib.squeeze_copy(x[:1]),
    "t_copy": lambda lib, x: lib.t_copy(x),
    "transpose_copy": lambda lib, x: lib.transpose_copy(x, 0, 1),
    "unbind_copy": lambda lib, x: lib.unbind_copy(x, 1),
    "unfold_copy": lambda lib, x: lib.unfold_copy(x, 1, 2, 1),
    "unsqueeze_copy": lambda lib, x: lib.unsqueeze_copy(x, -1),
    "view_copy": lambda lib, x: lib.view_copy(x, (4, 3)),
}


op_db = [
    # (torch's detach_copy output claims requires_grad with no derivative, and view_as_complex_copy refuses a
    # recorded input: compared on values only)
    *(OpInfo(name, "compat", lambda name=name, fn=fn: [
        OpCase(name, fn, [A], grad=[name not in ("detach_copy", "view_as_complex_copy")])])
      for name, fn in _COPY_SAMPLES.items()),
    OpInfo("histogramdd", "compat", _histogramdd_cases, supports_autograd=False),
    OpInfo("index_reduce", "compat", _index_reduce_cases, methods=("index_reduce", "index_reduce_")),
    OpInfo("nonzero_static", "compat", _nonzero_static_cases, methods=("nonzero_static",), supports_autograd=False),
    OpInfo("dsplit", "compat", lambda: [c for c in _split_cases() if c.name.startswith("dsplit")], methods=("dsplit",)),
    OpInfo("split_with_sizes", "compat", lambda: [c for c in _split_cases() if c.name.startswith("split_with")],
           methods=("split_with_sizes",)),
    OpInfo("unsafe_split", "compat", lambda: [c for c in _split_cases() if c.name.startswith("unsafe_split")
                                              and not c.name.startswith("unsafe_split_with")],
           methods=("unsafe_split",)),
    OpInfo("unsafe_split_with_sizes", "compat",
           lambda: [c for c in _split_cases() if c.name.startswith("unsafe_split_with")],
           methods=("unsafe_split_with_sizes",)),
    OpInfo("unsafe_chunk", "compat", lambda: [c for c in _split_cases() if c.name.startswith("unsafe_chunk")],
           methods=("unsafe_chunk",)),
    OpInfo("narrow_copy", "compat", lambda: [c for c in _split_cases() if c.name.startswith("narrow_copy")],
           methods=("narrow_copy",)),
    OpInfo("msort", "compat", lambda: [c for c in _values_cases() if c.name.startswith("msort")], methods=("msort",)),
    OpInfo("isneginf", "compat", lambda: [c for c in _values_cases() if c.name.startswith("isneginf")],
           methods=("isneginf",), supports_autograd=False),
    OpInfo("isposinf", "compat", lambda: [c for c in _values_cases() if c.name.startswith("isposinf")],
           methods=("isposinf",), supports_autograd=False),
    OpInfo("fill", "compat", lambda: [c for c in _values_cases() if c.name.startswith("fill")]),
    OpInfo("range", "compat", lambda: [c for c in _values_cases() if c.name.startswith("range")],
           supports_autograd=False),
    OpInfo("bitwise_left_shift", "compat", lambda: [c for c in _shift_cases() if "left" in c.name or "lshift" in c.name],
           methods=("bitwise_left_shift", "bitwise_left_shift_", "__lshift__", "__rlshift__", "__ilshift__"),
           supports_autograd=False),
    OpInfo("bitwise_right_shift", "compat", lambda: [c for c in _shift_cases() if "right" in c.name or "rshift" in c.name],
           methods=("bitwise_right_shift", "bitwise_right_shift_", "__rshift__", "__rrshift__", "__irshift__"),
           supports_autograd=False),
    OpInfo("unravel_index", "compat", _unravel_cases, supports_autograd=False),
]
