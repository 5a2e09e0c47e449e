"""Session 49, lane perfAJ: three shorter routes, checked against torch.

- getitem: a tuple key of integers in range and plain slices that torch applies as at most one
  step (``x[:, 3]``, ``x[1:, :]``, ``x[:, ::2]``) is read without the general key conversion. Each
  key is compared with torch (and with the general path: the same key holding a NumPy integer,
  which the route leaves to it) for values, shape, strides, storage offset, the node's name, the
  gradient of a weighted sum and an in-place write through the view; keys next to the route
  (several steps, None, Ellipsis, out of range, zero or negative steps) still give torch's results
  and errors.
- topk(sorted=False): std::nth_element's order replayed on NumPy arrays (below).
- F.linear: a 2-d input with a 1-d bias of one float dtype goes straight to addmm (below).
"""

import numpy as np
import pytest
import torch as real_torch

import chainrule as torch
from chainrule.autograd import gradcheck

KEYS = [
    (slice(None), 3),
    (slice(None), -1),
    (slice(None), slice(None), 0),
    (slice(1, None),),
    (slice(1, 3), slice(None)),
    (slice(None), slice(None, None, 2)),
    (slice(None), slice(-3, -1)),
    (slice(None), slice(2, 2)),          # empty slice
    (slice(None), slice(5, 1)),          # stop before start: empty
    (slice(0, 100),),                    # whole dim: an alias
    (slice(None), slice(None)),
    (2,),
    (-2, slice(None)),
    (1, slice(1, None)),                 # two steps: the general path
    (slice(1, None), 2),                 # two steps
    (slice(None), None, 1),              # a None: the general path
    (Ellipsis, 1),
    (1, Ellipsis, slice(0, 2)),
]


def _pair(shape, dtype=np.float32, layout="contiguous", seed=0):
    rng = np.random.default_rng(seed)
    if layout == "non_contiguous":
        array = rng.standard_normal(shape[::-1]).astype(dtype)
        ours, theirs = torch.tensor(array).permute(2, 1, 0), real_torch.tensor(array).permute(2, 1, 0)
    else:
        array = rng.standard_normal(shape).astype(dtype)
        ours, theirs = torch.tensor(array), real_torch.tensor(array)
    return ours.requires_grad_(), theirs.requires_grad_()


def _compare(ours, theirs):
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.stride() == theirs.stride()
    assert ours.storage_offset() == theirs.storage_offset()
    assert np.array_equal(ours.detach().numpy(), theirs.detach().numpy())
    assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
    assert ours.is_contiguous() == theirs.is_contiguous()


@pytest.mark.parametrize("layout", ["contiguous", "non_contiguous"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_getitem_matches_torch(key, dtype, layout):
    ours_x, theirs_x = _pair((4, 5, 3), dtype, layout)
    ours, theirs = ours_x[key], theirs_x[key]
    _compare(ours, theirs)
    weights = np.random.default_rng(1).standard_normal(tuple(theirs.shape)).astype(dtype)
    (ours * torch.tensor(weights)).sum().backward()
    (theirs * real_torch.tensor(weights)).sum().backward()
    assert np.array_equal(ours_x.grad.numpy(), theirs_x.grad.numpy())


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_getitem_same_as_general_path(key):
    # a NumPy integer is not a route item, so the key with one goes the general way
    ours_x, _ = _pair((4, 5, 3))
    general = tuple(np.int64(k) if type(k) is int else slice(np.int64(k.start), k.stop, k.step)
                    if type(k) is slice and type(k.start) is int else k for k in key)
    fast, slow = ours_x[key], ours_x[general]
    assert fast.shape == slow.shape and fast.stride() == slow.stride()
    assert fast.storage_offset() == slow.storage_offset()
    assert np.array_equal(fast.detach().numpy(), slow.detach().numpy())
    assert type(fast.grad_fn) is type(slow.grad_fn)


@pytest.mark.parametrize("key", [(slice(None), 3), (slice(1, 3), slice(None)), (slice(None), slice(None, None, 2))],
                         ids=repr)
def test_getitem_view_writes_through(key):
    ours_x, theirs_x = _pair((4, 5))
    ours_y, theirs_y = ours_x.detach().clone(), theirs_x.detach().clone()
    ours_y.requires_grad_(False)[key].mul_(3)
    theirs_y.requires_grad_(False)[key].mul_(3)
    assert np.array_equal(ours_y.numpy(), theirs_y.numpy())
    # an in-place op on the view of a tensor in the graph, as torch rebases it
    ours_b, theirs_b = ours_x * 1, theirs_x * 1
    ours_b[key].mul_(2)
    theirs_b[key].mul_(2)
    assert type(ours_b.grad_fn).__name__ == type(theirs_b.grad_fn).__name__
    ours_b.sum().backward()
    theirs_b.sum().backward()
    assert np.array_equal(ours_x.grad.numpy(), theirs_x.grad.numpy())


def test_getitem_zero_size():
    # (strides of an empty read are not compared with torch's: chainrule gives an empty result
    # contiguous strides on every path, where torch keeps the view's; see the lane's report)
    for shape, keys in [((0, 5), [(slice(None), 2), (slice(None), slice(1, 3)), (slice(0, 0),)]),
                        ((4, 0), [(2,), (slice(1, None), slice(None)), (-1, slice(None))])]:
        ours_x, theirs_x = torch.zeros(shape, requires_grad=True), real_torch.zeros(shape, requires_grad=True)
        for key in keys:
            ours, theirs = ours_x[key], theirs_x[key]
            general = ours_x[tuple(np.int64(k) if type(k) is int else k for k in key) + (Ellipsis,)]
            assert tuple(ours.shape) == tuple(theirs.shape)
            assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
            assert ours.stride() == general.stride()
            ours.sum().backward()
            theirs.sum().backward()
            assert ours_x.grad.shape == theirs_x.grad.shape


def test_getitem_no_grad():
    ours_x, theirs_x = _pair((4, 5))
    with torch.no_grad():
        ours = ours_x[:, 3]
    with real_torch.no_grad():
        theirs = theirs_x[:, 3]
    assert ours.grad_fn is None and theirs.grad_fn is None
    assert ours.requires_grad == theirs.requires_grad  # (a view of a leaf, made without grad: True in torch)
    assert np.array_equal(ours.detach().numpy(), theirs.detach().numpy()) and ours.stride() == theirs.stride()


@pytest.mark.parametrize("key", [(slice(None), 5), (slice(None), -6), (slice(None), slice(None, None, 0)),
                                 (slice(None), slice(None, None, -1)), (0, 0, 0),
                                 (slice(None), slice(None), slice(None))], ids=repr)
def test_getitem_errors_match_torch(key):
    ours_x, theirs_x = _pair((4, 5))
    with pytest.raises(Exception) as theirs_error:
        theirs_x[key]
    with pytest.raises(type(theirs_error.value)) as ours_error:
        ours_x[key]
    assert str(ours_error.value) == str(theirs_error.value)


@pytest.mark.parametrize("key", [(slice(None), 3), (slice(1, 4), slice(None)), (slice(None), slice(None, None, 2))],
                         ids=repr)
def test_getitem_gradcheck(key):
    x = torch.tensor(np.random.default_rng(2).standard_normal((5, 6)), requires_grad=True)
    assert gradcheck(lambda t: t[key] * 1.5, (x,))


# ---------------------------------------------------------------- topk(sorted=False)
# Unsorted topk with k * 64 > the row's length returns the order torch's std::nth_element leaves:
# cpu_sort_order.nth_element_rows runs its partitions on NumPy arrays (one row at a time, or all
# rows' segments together from _ROWS_TOGETHER rows), checked against torch's indices bitwise.

def _topk_input(kind, shape, dtype, rng):
    if kind == "normal":
        array = rng.standard_normal(shape)
    elif kind == "ties":
        array = rng.integers(0, 4, shape)
    elif kind == "nan":
        array = rng.integers(0, 5, shape).astype(np.float64)
        array[rng.random(shape) < 0.2] = np.nan
    else:  # "sorted": ascending runs, the pivot choice's worst case for a plain quickselect
        array = np.sort(rng.integers(-40, 40, shape), axis=-1)
    return array.astype(dtype)


TOPK_CASES = [
    # (shape, k, dim, largest, kind, dtype)
    ((2000,), 100, -1, True, "normal", np.float32),
    ((2000,), 100, 0, False, "normal", np.float64),
    ((300,), 7, -1, True, "ties", np.float32),
    ((300,), 150, -1, False, "ties", np.int64),
    ((257,), 40, -1, True, "nan", np.float64),
    ((257,), 40, -1, False, "nan", np.float32),
    ((500,), 499, -1, True, "sorted", np.int32),
    ((500,), 1, -1, False, "sorted", np.float32),
    ((8, 1000), 50, -1, True, "normal", np.float32),
    ((40, 60), 5, 1, True, "ties", np.float32),          # rows together
    ((60, 40), 5, 0, False, "nan", np.float64),           # rows together, along dim 0
    ((3, 50, 4), 20, 1, True, "ties", np.int16),
    ((5, 3), 3, -1, True, "ties", np.float32),            # rows of 3: the insertion sort alone
    ((0, 30), 4, -1, True, "normal", np.float32),         # zero rows
    ((30, 0), 0, 0, True, "normal", np.float32),          # (k * 64 > size is false: the sorted path)
]


@pytest.mark.parametrize("case", TOPK_CASES, ids=repr)
def test_topk_unsorted_matches_torch(case):
    shape, k, dim, largest, kind, dtype = case
    array = _topk_input(kind, shape, dtype, np.random.default_rng(3))
    ours = torch.topk(torch.tensor(array), k, dim=dim, largest=largest, sorted=False)
    theirs = real_torch.topk(real_torch.tensor(array), k, dim=dim, largest=largest, sorted=False)
    assert np.array_equal(ours.indices.numpy(), theirs.indices.numpy())
    assert np.array_equal(ours.values.numpy(), theirs.values.numpy(), equal_nan=True)
    assert ours.indices.stride() == theirs.indices.stride() and ours.values.stride() == theirs.values.stride()


@pytest.mark.parametrize("largest", [True, False])
def test_topk_unsorted_non_contiguous(largest):
    array = _topk_input("ties", (30, 20), np.float32, np.random.default_rng(4))
    ours = torch.tensor(array).t()[:, ::2]
    theirs = real_torch.tensor(array).t()[:, ::2]
    for dim in (0, 1):
        k = ours.shape[dim] // 2
        got = torch.topk(ours, k, dim=dim, largest=largest, sorted=False)
        expected = real_torch.topk(theirs, k, dim=dim, largest=largest, sorted=False)
        assert np.array_equal(got.indices.numpy(), expected.indices.numpy())
        assert np.array_equal(got.values.numpy(), expected.values.numpy())
        assert got.indices.is_contiguous() and got.values.is_contiguous()


def test_topk_unsorted_gradient():
    array = np.random.default_rng(5).standard_normal((6, 40))
    ours_x = torch.tensor(array, requires_grad=True)
    theirs_x = real_torch.tensor(array, requires_grad=True)
    ours = torch.topk(ours_x, 10, sorted=False).values
    theirs = real_torch.topk(theirs_x, 10, sorted=False).values
    weights = np.random.default_rng(6).standard_normal((6, 10))
    (ours * torch.tensor(weights)).sum().backward()
    (theirs * real_torch.tensor(weights)).sum().backward()
    assert np.array_equal(ours_x.grad.numpy(), theirs_x.grad.numpy())
    assert gradcheck(lambda t: torch.topk(t, 10, sorted=False).values, (ours_x.detach().requires_grad_(),))


@pytest.mark.parametrize("together", [False, True])
def test_nth_element_rows_replays_nth_element(together, monkeypatch):
    # against the one-row transcription of std::nth_element, with the depth limit lowered so that
    # rows reach it (heap-select) as well as not
    from chainrule.ops import cpu_sort_order

    rng = np.random.default_rng(7)
    for lowered in (False, True):
        if lowered:
            monkeypatch.setattr(cpu_sort_order, "_lg", lambda n: 1)  # a depth limit of 2
        monkeypatch.setattr(cpu_sort_order, "_ROWS_TOGETHER", 0 if together else 10**6)
        for trial in range(40):
            n = int(rng.integers(1, 300))
            rows = _topk_input(["normal", "ties", "nan", "sorted"][trial % 4], (3, n), np.float64, rng)
            nth, descending = int(rng.integers(0, n)), bool(trial % 2)
            got = cpu_sort_order.nth_element_rows(rows, nth, descending)
            for row in range(3):
                expected = list(range(n))
                cpu_sort_order.nth_element(expected, nth, cpu_sort_order.less_than(rows[row].tolist(), descending))
                assert got[row].tolist() == expected


# ---------------------------------------------------------------- linear's common call
# A 2-d input with a 1-d bias, one float dtype, on the CPU goes straight to addmm(bias, input,
# weight.t()); everything else (and every error) takes the general path.

LINEAR_CASES = [
    # (rows, in, out, dtype, layout)
    (1, 64, 320, np.float32, "contiguous"),
    (32, 64, 64, np.float32, "contiguous"),
    (5, 7, 3, np.float64, "contiguous"),
    (6, 4, 5, np.float32, "transposed"),   # a non-contiguous input
    (6, 4, 5, np.float64, "strided weight"),
    (0, 4, 5, np.float32, "contiguous"),   # zero rows
    (3, 0, 5, np.float32, "contiguous"),   # zero inner dim
]


def _linear_operands(case, module):
    rows, inner, out, dtype, layout = case
    rng = np.random.default_rng(8)
    x = rng.standard_normal((inner, rows) if layout == "transposed" else (rows, inner)).astype(dtype)
    w = rng.standard_normal((out, 2 * inner) if layout == "strided weight" else (out, inner)).astype(dtype)
    b = rng.standard_normal(out).astype(dtype)
    x, w, b = (module.tensor(a, requires_grad=True) for a in (x, w, b))
    x_used = x.t() if layout == "transposed" else x
    w_used = w[:, ::2] if layout == "strided weight" else w
    return (x, w, b), (x_used, w_used, b)


@pytest.mark.parametrize("case", LINEAR_CASES, ids=repr)
def test_linear_matches_torch(case):
    (ours_leaves, ours_args), (theirs_leaves, theirs_args) = (_linear_operands(case, m) for m in (torch, real_torch))
    ours = torch.nn.functional.linear(*ours_args)
    theirs = real_torch.nn.functional.linear(*theirs_args)
    assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__ == "AddmmBackward0"
    assert [type(n).__name__ for n, _ in ours.grad_fn.next_functions] == \
        [type(n).__name__ if n is not None else "NoneType" for n, _ in theirs.grad_fn.next_functions]
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.stride() == theirs.stride()
    tol = dict(rtol=1e-5, atol=1e-5) if case[3] == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **tol)
    weights = np.random.default_rng(9).standard_normal(tuple(theirs.shape)).astype(case[3])
    (ours * torch.tensor(weights)).sum().backward()
    (theirs * real_torch.tensor(weights)).sum().backward()
    for mine, real in zip(ours_leaves, theirs_leaves):
        np.testing.assert_allclose(mine.grad.numpy(), real.grad.numpy(), **tol)


@pytest.mark.parametrize("case", LINEAR_CASES, ids=repr)
def test_linear_same_as_general_path(case):
    # without a bias the call takes the general path (mm): the bias added after it gives the same sums
    _, (x, w, b) = _linear_operands(case, torch)
    fast = torch.nn.functional.linear(x, w, b)
    general = torch.nn.functional.linear(x, w) + b
    assert np.array_equal(fast.detach().numpy(), general.detach().numpy())


def test_linear_gradcheck_float64():
    _, args = _linear_operands((4, 3, 5, np.float64, "transposed"), torch)
    assert gradcheck(torch.nn.functional.linear, tuple(a.detach().requires_grad_() for a in args))


@pytest.mark.parametrize("shapes,dtypes", [
    (((2, 3), (4, 5), (4,)), (np.float32,) * 3),                 # inner dims differ
    (((2, 3), (4, 3), (5,)), (np.float32,) * 3),                 # bias does not fit
    (((2, 3), (4, 3), (4,)), (np.float32, np.float64, np.float64)),
    (((2, 3), (4, 3), (4,)), (np.float64, np.float64, np.float32)),
], ids=repr)
def test_linear_errors_match_torch(shapes, dtypes):
    arrays = [np.ones(s, dtype=d) for s, d in zip(shapes, dtypes)]
    with pytest.raises(Exception) as theirs_error:
        real_torch.nn.functional.linear(*(real_torch.tensor(a) for a in arrays))
    with pytest.raises(type(theirs_error.value)) as ours_error:
        torch.nn.functional.linear(*(torch.tensor(a) for a in arrays))
    assert str(ours_error.value) == str(theirs_error.value)
