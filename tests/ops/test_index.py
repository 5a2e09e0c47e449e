"""Indexing: reads and writes (x[key], x[key] = v) and gather/scatter/index_*/masked_*/take/nonzero,
checked against torch (forward, gradients incl. repeated indices), by gradcheck/gradgradcheck, and
for torch's errors."""

import numpy as np
import pytest

import chainrule

from .harness import OpCase, check_gradients, compare_with_torch, noncontig, parametrize, randn

try:
    import torch
except ImportError:  # the oracle is optional
    torch = None

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


@parametrize(CASES)
def test_matches_torch(case):
    compare_with_torch(case)


@parametrize(CASES)
def test_gradcheck(case):
    check_gradients(case)


# ---------------------------------------------------------------- writes
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


@parametrize(SETITEM)
def test_setitem_matches_torch(case):
    compare_with_torch(case)


@parametrize(SETITEM)
def test_setitem_gradcheck(case):
    check_gradients(case)


def test_setitem_without_grad_and_version():
    x = chainrule.zeros(3, 4)
    x[1] = 5.0
    x[:, -1] = chainrule.tensor([1.0, 2.0, 3.0])
    x[x == 5.0] = 7.0
    assert x._version == 3
    assert x.tolist() == [[0, 0, 0, 1], [7, 7, 7, 2], [0, 0, 0, 3]]


def test_setitem_leaf_requiring_grad_raises():
    x = chainrule.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x[0] = 1.0


def test_repeated_indices_sum_gradients():
    x = chainrule.zeros(4, requires_grad=True)
    x[chainrule.tensor([1, 1, 3, 1])].sum().backward()
    assert x.grad.tolist() == [0.0, 3.0, 0.0, 1.0]
    y = chainrule.zeros(2, 3, requires_grad=True)
    y.index_select(1, chainrule.tensor([2, 2])).sum().backward()
    assert y.grad.tolist() == [[0, 0, 2], [0, 0, 2]]
    z = chainrule.zeros(3, requires_grad=True)
    z.gather(0, chainrule.tensor([0, 0, 0])).sum().backward()
    assert z.grad.tolist() == [3.0, 0.0, 0.0]


def test_basic_read_is_view():
    x = chainrule.arange(12.0).reshape(3, 4)
    row = x[1, 1:]
    x.add_(1)
    assert row._version == x._version and row.tolist() == [6.0, 7.0, 8.0]
    fancy = x[chainrule.tensor([0])]
    assert not np.shares_memory(fancy.numpy(), x.numpy())


def test_nonzero_and_argwhere():
    for values in ([[0, 1, 0], [2, 0, 3]], [0.0, 1.5, 0.0], 3.0, 0.0, []):
        ours = chainrule.tensor(values)
        expected = np.argwhere(np.asarray(values)) if np.ndim(values) else np.zeros((int(bool(values)), 0))
        assert chainrule.nonzero(ours).tolist() == expected.tolist()
        assert ours.argwhere().tolist() == expected.tolist()
        assert chainrule.nonzero(ours).dtype is chainrule.int64
        if torch is not None:
            theirs = torch.tensor(values)
            assert tuple(chainrule.nonzero(ours).shape) == tuple(torch.nonzero(theirs).shape)
            for a, b in zip(chainrule.nonzero(ours, as_tuple=True), torch.nonzero(theirs, as_tuple=True)):
                assert a.tolist() == b.tolist()
    assert [t.tolist() for t in chainrule.where(chainrule.tensor([0, 2, 3]) > 1)] == [[1, 2]]


def test_inplace_index_ops():
    x = chainrule.zeros(2, 3)
    x.index_fill_(1, chainrule.tensor([0]), 1.0)
    x.masked_fill_(chainrule.tensor([False, True, False]), 2.0)
    x.index_add_(0, chainrule.tensor([1]), chainrule.ones(1, 3))
    x.scatter_(1, chainrule.tensor([[2], [2]]), chainrule.full((2, 1), 5.0))
    assert x.tolist() == [[1, 2, 5], [2, 3, 5]]


def test_larger_src_uses_its_leading_block():
    # torch reads only src[:index.shape]; its backward rejects such a src, chainrule zero-pads
    x = chainrule.zeros(2, 3)
    src = chainrule.arange(1.0, 10.0).reshape(3, 3).requires_grad_()
    y = x.scatter_add(1, chainrule.tensor([[0, 0], [2, 1]]), src)
    assert y.tolist() == [[3, 0, 0], [0, 5, 4]]
    (y * chainrule.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum().backward()
    assert src.grad.tolist() == [[1, 1, 0], [6, 5, 0], [0, 0, 0]]


def test_scatter_multiply_has_no_gradient():
    x = chainrule.ones(2, 3, requires_grad=True)
    y = chainrule.scatter(x * 2, 0, chainrule.tensor([[1, 0, 1]]), chainrule.full((1, 3), 3.0), reduce="multiply")
    assert y.tolist() == [[2, 6, 2], [6, 2, 6]]
    with pytest.raises(RuntimeError, match="derivative for aten::scatter is not implemented"):
        y.sum().backward()


# ---------------------------------------------------------------- errors
ERRORS = [
    ("negative_step", lambda lib: lib.ones(4)[::-1], ValueError, "step must be greater than zero"),
    ("zero_step", lambda lib: lib.ones(4)[::0], ValueError, "slice step cannot be zero"),
    ("negative_step_set", lambda lib: lib.ones(4).__setitem__(slice(None, None, -1), 1.0), ValueError, "step must be greater than zero"),
    ("int_out_of_range", lambda lib: lib.ones(2, 3)[2], IndexError, "out of"),
    ("tensor_out_of_range", lambda lib: lib.ones(2, 3)[:, lib.tensor([3])], IndexError, "out of"),
    ("float_index", lambda lib: lib.ones(3)[lib.tensor([0.0])], IndexError, "tensors used as indices must be long"),
    ("too_many_indices", lambda lib: lib.ones(3)[0, 0], IndexError, "too many indices"),
    ("gather_ndim", lambda lib: lib.gather(lib.ones(2, 3), 1, lib.zeros(2, dtype=lib.int64)), RuntimeError, "same number of dimensions"),
    ("gather_range", lambda lib: lib.gather(lib.ones(2, 3), 1, lib.full((2, 1), 3)), RuntimeError, "index 3 is out of bounds for dimension 1 with size 3"),
    ("gather_negative", lambda lib: lib.gather(lib.ones(2, 3), 1, lib.full((2, 1), -1)), RuntimeError, "out of bounds"),
    ("gather_size", lambda lib: lib.gather(lib.ones(2, 3), 1, lib.zeros(3, 1, dtype=lib.int64)), RuntimeError, "Size does not match at dimension 0"),
    ("gather_dtype", lambda lib: lib.gather(lib.ones(2, 3), 1, lib.zeros(2, 1)), RuntimeError, "int"),
    ("scatter_dtype", lambda lib: lib.ones(2, 3).scatter(0, lib.zeros(1, 1, dtype=lib.int64), lib.ones(1, 1, dtype=lib.float64)), RuntimeError, "Expected self.dtype to be equal to src.dtype"),
    ("scatter_reduce_arg", lambda lib: lib.ones(2, 3).scatter(0, lib.zeros(1, 1, dtype=lib.int64), 1.0, reduce="max"), RuntimeError, "reduce argument must be either add or multiply"),
    ("index_select_matrix", lambda lib: lib.ones(2, 3).index_select(0, lib.zeros(1, 1, dtype=lib.int64)), IndexError, "Index is supposed to be a vector"),
    ("index_select_range", lambda lib: lib.ones(2, 3).index_select(1, lib.tensor([5])), RuntimeError, "out of DATA bounds"),
    ("index_select_negative", lambda lib: lib.ones(2, 3).index_select(0, lib.tensor([-1])), IndexError, "index out of range in self"),
    ("index_select_dtype", lambda lib: lib.ones(2, 3).index_select(1, lib.tensor([0.0])), RuntimeError, "Expected dtype int32 or int64 for index"),
    ("index_add_count", lambda lib: lib.ones(2, 3).index_add(1, lib.tensor([0]), lib.ones(2, 2)), RuntimeError, "Number of indices \\(1\\) should be equal to source.size\\(dim\\)"),
    ("index_add_shape", lambda lib: lib.ones(2, 3).index_add(0, lib.tensor([0]), lib.ones(1, 4)), RuntimeError, "source tensor shape must match self tensor shape"),
    ("index_copy_count", lambda lib: lib.ones(2, 3).index_copy(1, lib.tensor([0]), lib.ones(2, 3)), IndexError, "Number of indices"),
    ("masked_fill_mask_dtype", lambda lib: lib.ones(3).masked_fill(lib.ones(3), 1.0), RuntimeError, "only supports boolean masks"),
    ("masked_fill_value_dim", lambda lib: lib.ones(3).masked_fill(lib.ones(3, dtype=lib.bool), lib.ones(2)), RuntimeError, "0-dimensional value tensor"),
    ("masked_select_dtype", lambda lib: lib.masked_select(lib.ones(3), lib.ones(3)), RuntimeError, "expected BoolTensor for mask"),
    ("masked_scatter_short", lambda lib: lib.ones(3).masked_scatter(lib.ones(3, dtype=lib.bool), lib.ones(2)), RuntimeError, "Number of elements of source < number of ones in mask"),
    ("take_range", lambda lib: lib.take(lib.ones(2, 3), lib.tensor([6])), IndexError, "out of range: tried to access index 6 on a tensor of 6 elements"),
    ("take_along_dim_shapes", lambda lib: lib.take_along_dim(lib.ones(3, 4), lib.zeros(2, 1, dtype=lib.int64), 1), RuntimeError, "must match the size"),
]


@pytest.mark.parametrize("fn,exc,match", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_like_torch(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn(chainrule)
    if torch is not None:
        with pytest.raises(exc):
            fn(torch)


@pytest.mark.parametrize("key", [0, (slice(1, None),), (0, slice(None, None, 2)), (Ellipsis, 2), (None,), ([0, 1],)],
                         ids=["int", "slice", "int-slice", "ellipsis-int", "none", "list"])
def test_read_node_names_match_torch(key):
    import chainrule as cr

    torch = pytest.importorskip("torch")
    ours = cr.ones(3, 4, requires_grad=True)[key].grad_fn.name()
    theirs = torch.ones(3, 4, requires_grad=True)[key].grad_fn.name()
    assert ours == theirs
