"""Indexing (chainrule/ops/index.py): reads and writes (x[key], x[key] = v), gather/scatter/index_*/masked_*/take."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, cached, noncontig, randn, select


@cached
def _cases() -> list[OpCase]:
    A = randn(3, 4, 5)
    M = randn(4, 5, seed=1)
    V = randn(6, seed=2)

    def _t(lib, values, dtype="int64"):
        return lib.tensor(values, dtype=getattr(lib, dtype))

    READS = [
        ("int", lambda lib, x: x[1], A),
        ("neg_int", lambda lib, x: x[-1, -2], A),
        ("slice", lambda lib, x: x[1:, :3], A),
        ("slice_step", lambda lib, x: x[::2, 1::2], A),
        ("none_ellipsis", lambda lib, x: x[None, ..., 1], A),
        ("ellipsis_mid", lambda lib, x: x[0, ..., None, 2:], A),
        ("int_list", lambda lib, x: x[[0, 2, 2]], A),
        ("repeated_tensor", lambda lib, x: x[_t(lib, [1, 1, 0, 1])], M),
        ("neg_index_tensor", lambda lib, x: x[_t(lib, [-1, 0, -1])], M),
        ("2d_index", lambda lib, x: x[_t(lib, [[0, 1], [1, 1]])], M),
        ("pair_index", lambda lib, x: x[_t(lib, [0, 2, 0]), _t(lib, [1, 1, 1])], M),
        ("mixed_basic_adv", lambda lib, x: x[1:, _t(lib, [0, 3, 3])], A),
        ("split_adv", lambda lib, x: x[_t(lib, [0, 2]), :, _t(lib, [1, 1])], A),
        ("zero_d_index", lambda lib, x: x[_t(lib, 2)], M),
        ("bool_mask", lambda lib, x: x[x > 0], M),
        ("bool_rows", lambda lib, x: x[lib.tensor([True, False, True, True])], M),
        ("bool_and_slice", lambda lib, x: x[:, lib.tensor([True, False, True, False, True])], M),
        ("int32_index", lambda lib, x: x[_t(lib, [3, 0], "int32")], M),
        ("noncontig", lambda lib, x: x[1:, _t(lib, [0, 0])], noncontig(M)),
        ("empty_index", lambda lib, x: x[_t(lib, [])], M),
        ("zero_size", lambda lib, x: x[:, 1:1], M),
    ]

    MASK = np.array([[True, False, True, False, True]])
    FUNCS = [
        ("gather", lambda lib, x: lib.gather(x, 1, _t(lib, [[0, 0, 4], [1, 2, 2], [3, 3, 3], [4, 0, 1]])), M),
        ("gather_dim0_small", lambda lib, x: x.gather(0, _t(lib, [[3, 0], [3, 3]])), M),
        ("gather_neg_dim", lambda lib, x: x.gather(-1, _t(lib, [[[0, 0]] * 4] * 3)), A),
        ("gather_1d", lambda lib, x: x.gather(0, _t(lib, [5, 5, 0])), V),
        ("index_select", lambda lib, x: lib.index_select(x, 1, _t(lib, [4, 0, 4, 2])), M),
        ("index_select_0d", lambda lib, x: x.index_select(0, _t(lib, 2)), M),
        ("index_select_neg_dim", lambda lib, x: x.index_select(-1, _t(lib, [1, 1])), noncontig(A)),
        ("index_fill", lambda lib, x: x.index_fill(1, _t(lib, [0, 3]), -1.5), M),
        ("index_fill_neg", lambda lib, x: lib.index_fill(x, -1, _t(lib, [-1]), 2.0), A),
        ("masked_fill", lambda lib, x: x.masked_fill(lib.tensor(MASK), 0.5), M),
        ("masked_fill_broadcast", lambda lib, x: lib.masked_fill(x, lib.tensor([[True], [False], [True]]), -2.0), randn(5, seed=3)),
        ("masked_select", lambda lib, x: lib.masked_select(x, lib.tensor(MASK)), M),
        ("masked_select_bcast", lambda lib, x: x.masked_select(lib.tensor([[True], [False]])), randn(3, seed=4)),
        ("take", lambda lib, x: lib.take(x, _t(lib, [[0, 19], [-1, 7]])), M),
        ("take_along_dim", lambda lib, x: lib.take_along_dim(x, _t(lib, [[0], [4], [2], [2]]), 1), M),
        ("take_along_dim_bcast", lambda lib, x: lib.take_along_dim(x, _t(lib, [[1], [0]]), 0), M),
        ("take_along_dim_flat", lambda lib, x: lib.take_along_dim(x, _t(lib, [3, 3, 17])), M),
        ("scatter_value", lambda lib, x: x.scatter(0, _t(lib, [[1, 0, 3]]), 7.0), M),
    ]

    IDX = [[0, 1, 2, 0, 1], [3, 3, 1, 1, 0]]
    BINARY = [
        ("scatter", lambda lib, x, s: x.scatter(0, _t(lib, IDX), s), [M, randn(2, 5, seed=5)]),
        ("scatter_big_src", lambda lib, x, s: lib.scatter(x, 1, _t(lib, [[4, 2], [0, 1]]), s), [M, randn(2, 2, seed=5)]),
        ("scatter_add", lambda lib, x, s: x.scatter_add(0, _t(lib, IDX), s), [M, randn(2, 5, seed=5)]),
        ("scatter_add_repeat", lambda lib, x, s: lib.scatter_add(x, 1, _t(lib, [[1, 1, 1], [0, 0, 4]]), s), [M, randn(2, 3, seed=5)]),
        ("scatter_reduce_sum", lambda lib, x, s: x.scatter_reduce(0, _t(lib, IDX), s, "sum"), [M, randn(2, 5, seed=5)]),
        ("scatter_reduce_mean", lambda lib, x, s: x.scatter_reduce(0, _t(lib, [[0, 0, 1, 1, 3]]), s, "mean", include_self=False), [M, randn(1, 5, seed=5)]),
        ("scatter_reduce_amax", lambda lib, x, s: x.scatter_reduce(1, _t(lib, [[0, 0], [2, 2], [1, 4], [3, 3]]), s, "amax"), [M, randn(4, 2, seed=6)]),
        ("scatter_reduce_amin_noself", lambda lib, x, s: x.scatter_reduce(1, _t(lib, [[0, 0], [2, 2], [1, 4], [3, 3]]), s, "amin", include_self=False), [M, randn(4, 2, seed=6)]),
        ("index_add", lambda lib, x, s: x.index_add(1, _t(lib, [0, 4, 0]), s), [M, randn(4, 3, seed=7)]),
        ("index_add_alpha", lambda lib, x, s: lib.index_add(x, 0, _t(lib, [2, 2]), s, alpha=-0.5), [M, randn(2, 5, seed=7)]),
        ("index_copy", lambda lib, x, s: x.index_copy(1, _t(lib, [3, 0]), s), [M, randn(4, 2, seed=7)]),
        ("masked_scatter", lambda lib, x, s: x.masked_scatter(lib.tensor(MASK), s), [M, randn(14, seed=8)]),
        ("masked_fill_tensor_value", lambda lib, x, v: x.masked_fill(lib.tensor(MASK), v), [M, randn(seed=9)]),
        ("index_fill_tensor_value", lambda lib, x, v: x.index_fill(0, _t(lib, [1, 2]), v), [M, randn(seed=9)]),
    ]

    CASES = [OpCase(f"getitem_{name}", fn, [x]) for name, fn, x in READS]
    CASES += [OpCase(name, fn, [x]) for name, fn, x in FUNCS]
    CASES += [OpCase(name, fn, inputs) for name, fn, inputs in BINARY]
    CASES += [OpCase("scatter_reduce_prod", lambda lib, x, s: x.scatter_reduce(0, _t(lib, IDX), s, "prod"),
                     [M + 3, randn(2, 5, seed=5) + 3], gradgradcheck=False)]

    def _write(lib, x, v):
        y = x * 1.0
        y[1:, 0] = v
        y[0, lib.tensor([1, 3])] = 2.0
        y[y > 1.5] = -1.0
        return y

    SETITEM = [
        OpCase("setitem_tensor_value", _write, [M, randn(3, seed=10)]),
        OpCase("setitem_broadcast_value", lambda lib, x, v: _write(lib, x, v), [M, randn(1, seed=11)]),
        OpCase("setitem_only_value", lambda lib, x, v: _write(lib, x.detach(), v), [M, randn(3, seed=10)], grad=[False, True]),
    ]
    return CASES + SETITEM + _inplace_cases(_t, M)


def _inplace_cases(_t, M) -> list[OpCase]:
    """The in-place index methods, writing into a copy of the input (autograd refuses them on a leaf)."""
    mask = np.array([[True, False, True, False, True]])
    index = [[0, 1, 2, 0, 1], [3, 3, 1, 1, 0]]
    return [
        OpCase("index_fill_", lambda lib, x: (x * 1.0).index_fill_(1, _t(lib, [0, 3]), -1.5), [M]),
        OpCase("masked_fill_", lambda lib, x: (x * 1.0).masked_fill_(lib.tensor(mask), 0.5), [M]),
        OpCase("scatter_", lambda lib, x, s: (x * 1.0).scatter_(0, _t(lib, index), s), [M, randn(2, 5, seed=32)]),
        OpCase("scatter_add_", lambda lib, x, s: (x * 1.0).scatter_add_(0, _t(lib, index), s), [M, randn(2, 5, seed=33)]),
        OpCase("index_add_", lambda lib, x, s: (x * 1.0).index_add_(1, _t(lib, [0, 4, 0]), s), [M, randn(4, 3, seed=34)]),
        OpCase("index_copy_", lambda lib, x, s: (x * 1.0).index_copy_(1, _t(lib, [3, 0]), s), [M, randn(4, 2, seed=35)]),
    ]


def _entry(name: str, *patterns: str, **kwargs) -> OpInfo:
    return OpInfo(name, "index", select(_cases, *(patterns or (name,))), **kwargs)


op_db: list[OpInfo] = [
    _entry("getitem", "getitem_*", methods=("__getitem__",)),
    _entry("gather", "gather", "gather_*", methods=("gather",)),
    _entry("index_select", "index_select", "index_select_0d", "index_select_neg_dim", methods=("index_select",)),
    _entry("index_fill", "index_fill", "index_fill_neg", "index_fill_tensor_value", "index_fill_", methods=("index_fill", "index_fill_")),
    _entry("masked_fill", "masked_fill", "masked_fill_broadcast", "masked_fill_tensor_value", "masked_fill_", methods=("masked_fill", "masked_fill_")),
    _entry("masked_select", "masked_select", "masked_select_bcast", methods=("masked_select",)),
    _entry("take", methods=("take",)),
    _entry("take_along_dim", "take_along_dim", "take_along_dim_bcast", "take_along_dim_flat", methods=("take_along_dim",)),
    _entry("scatter", "scatter_value", "scatter", "scatter_big_src", "scatter_", methods=("scatter", "scatter_")),
    _entry("scatter_add", "scatter_add", "scatter_add_repeat", "scatter_add_", methods=("scatter_add", "scatter_add_")),
    _entry("scatter_reduce", "scatter_reduce_*", methods=("scatter_reduce",)),
    _entry("index_add", "index_add", "index_add_alpha", "index_add_", methods=("index_add", "index_add_")),
    _entry("index_copy", "index_copy", "index_copy_", methods=("index_copy", "index_copy_")),
    _entry("masked_scatter", methods=("masked_scatter",)),
    _entry("setitem", "setitem_tensor_value", "setitem_broadcast_value", "setitem_only_value", methods=("__setitem__",)),
]


def _write_into_copy(method: str, *args):
    """``method`` applied in place to a copy of the input, so the write is recorded on the graph."""

    def fn(lib, x, *tensors):
        out = x * 1.0
        getattr(out, method)(*args, *tensors)
        return out

    return fn


op_db += [
    OpInfo("nonzero", "index", lambda: [
        OpCase("nonzero", lambda lib, x: lib.nonzero(x), [np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])]),
        OpCase("nonzero_tuple", lambda lib, x: x.nonzero(as_tuple=True), [np.array([[0, 3, 0], [1, 0, 2]])]),
        OpCase("nonzero_empty", lambda lib, x: x.nonzero(), [np.zeros((2, 3))])],
        methods=("nonzero",), supports_autograd=False),
    OpInfo("argwhere", "index", lambda: [
        OpCase("argwhere", lambda lib, x: lib.argwhere(x), [np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])]),
        OpCase("argwhere_bool", lambda lib, x: x.argwhere(), [np.array([True, False, True])])],
        methods=("argwhere",), supports_autograd=False),
    # the overwritten input's gradient is zero; the written value's is summed to its shape
    OpInfo("Tensor.copy_", "index", lambda: [
        OpCase("copy_", _write_into_copy("copy_"), [randn(3, 4), randn(3, 4, seed=1)]),
        OpCase("copy_broadcast", _write_into_copy("copy_"), [randn(3, 4), randn(4, seed=1)])],
        methods=("copy_",)),
    OpInfo("Tensor.fill_", "index", lambda: [
        OpCase("fill_", _write_into_copy("fill_", 2.5), [randn(3, 4)]),
        OpCase("fill_tensor_value", _write_into_copy("fill_"), [randn(3, 4), randn(seed=1)])],
        methods=("fill_",)),
    OpInfo("Tensor.zero_", "index", lambda: [OpCase("zero_", _write_into_copy("zero_"), [randn(3, 4)])],
           methods=("zero_",)),
    # the filled diagonal's gradient is zero; wrap restarts a tall matrix's diagonal below its end
    OpInfo("Tensor.fill_diagonal_", "index", lambda: [
        OpCase("fill_diagonal_", _write_into_copy("fill_diagonal_", -2.0), [randn(4, 4)]),
        OpCase("fill_diagonal_wide", _write_into_copy("fill_diagonal_", 1.5), [randn(3, 5)]),
        OpCase("fill_diagonal_tall_wrap", _write_into_copy("fill_diagonal_", 0.5, True), [randn(7, 3)]),
        OpCase("fill_diagonal_cube", _write_into_copy("fill_diagonal_", 3.0), [randn(3, 3, 3)])],
        methods=("fill_diagonal_",)),
]
