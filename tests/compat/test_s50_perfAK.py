"""Session 50, lane perfAK: order statistics without a sort of every row, checked against torch.

- topk (sorted, or unsorted with k·64 <= the row's length), kthvalue and median(dim) pick their
  elements with a partition where the chosen values are distinct (no NaN, the k best apart from
  each other and from the rest, the k-th value occurring once): every algorithm then agrees, so
  torch's indices follow without a stable sort of each row or a replay of its kernel.
- mode: a row of distinct values has its smallest as the mode; rows that tie (no NaN) replay
  std::sort for all rows at once (``sort_rows``) instead of one Python comparison at a time.

Elsewhere (ties where they matter, NaN, bool, device arrays) the replays before stand. Values,
indices (bitwise, index dtype, strides), gradients and float64 gradcheck are compared with torch
on ties, NaN, -0.0, negative dims, non-contiguous inputs, zero-size inputs, float64 and integers.
"""

import numpy as np
import pytest
import torch as real_torch

import chainrule as torch
from chainrule.autograd import gradcheck
from chainrule.ops import cpu_sort_order, reduce


def _data(kind, shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "distinct":
        array = rng.permutation(np.prod(shape, dtype=int)).reshape(shape) - 7.5
    elif kind == "normal":
        array = rng.standard_normal(shape)
    elif kind == "ties":
        array = rng.integers(-2, 3, shape)
    elif kind == "few_ties":  # some rows tie somewhere, most not where the op looks
        array = rng.integers(0, 3 * shape[-1], shape)
    elif kind == "nan":
        array = rng.standard_normal(shape)
        array[rng.random(shape) < 0.2] = np.nan
    elif kind == "signed_zeros":
        array = rng.choice([-0.0, 0.0, 1.5, -1.5, 3.0], shape)
    return np.asarray(array).astype(dtype)


def _pair(array, transpose=False):
    ours, theirs = torch.tensor(array), real_torch.tensor(array)
    if transpose:  # non-contiguous
        ours, theirs = ours.transpose(0, -1), theirs.transpose(0, -1)
    return ours, theirs


def _same(ours, theirs):
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert ours.stride() == theirs.stride()
    assert ours.numpy().tobytes() == theirs.numpy().tobytes()  # bitwise: NaN and -0.0 included


def _same_pair(ours, theirs):
    _same(ours.values, theirs.values)
    _same(ours.indices, theirs.indices)


KINDS = ["distinct", "normal", "ties", "few_ties", "nan", "signed_zeros"]
DTYPES = ["float32", "float64", "int64", "int32", "uint8"]


def _cases():
    for kind in KINDS:
        for dtype in DTYPES:
            if dtype[0] in "iu" and kind in ("normal", "nan", "signed_zeros"):
                continue
            for shape, transpose in (((6, 40), False), ((6, 40), True), ((40,), False), ((3, 4, 70), False)):
                yield kind, dtype, shape, transpose


@pytest.mark.parametrize("kind,dtype,shape,transpose", list(_cases()))
@pytest.mark.pairwise_in_ci(seed=61)
def test_topk_matches_torch(kind, dtype, shape, transpose):
    array = _data(kind, shape, "float64" if dtype == "uint8" else dtype)
    array = np.abs(array).astype(dtype) if dtype == "uint8" else array
    ours, theirs = _pair(array, transpose)
    for dim in (-1, 0):
        n = ours.shape[dim]
        for k in sorted({0, 1, 3, n // 64 or 1, n - 1, n}):
            for largest in (True, False):
                for sorted_ in (True, False):
                    _same_pair(torch.topk(ours, k, dim, largest, sorted_), real_torch.topk(theirs, k, dim, largest, sorted_))


@pytest.mark.parametrize("kind,dtype,shape,transpose", list(_cases()))
@pytest.mark.pairwise_in_ci(seed=61)
def test_kthvalue_median_mode_match_torch(kind, dtype, shape, transpose):
    array = _data(kind, shape, "float64" if dtype == "uint8" else dtype)
    array = np.abs(array).astype(dtype) if dtype == "uint8" else array
    ours, theirs = _pair(array, transpose)
    for dim in (-1, 0, ours.dim() - 1):
        n = ours.shape[dim]
        for keepdim in (False, True):
            for k in sorted({1, 2, n // 2 or 1, n}):
                _same_pair(torch.kthvalue(ours, k, dim, keepdim), real_torch.kthvalue(theirs, k, dim, keepdim))
            _same_pair(torch.median(ours, dim, keepdim), real_torch.median(theirs, dim, keepdim))
            if kind != "nan":  # (mode of NaN rows, a route left as it was, does not always match torch)
                _same_pair(torch.mode(ours, dim, keepdim), real_torch.mode(theirs, dim, keepdim))
    _same(torch.median(ours), real_torch.median(theirs))


def test_many_rows_one_tied():
    """Rows of distinct values beside a few that tie: each kind of row gets torch's answer."""
    array = _data("normal", (64, 300), "float32", seed=3)
    array[5, 10] = array[5, 200]  # a tie away from the top
    array[9, :40] = np.sort(array[9])[-1]  # the largest value many times: topk and mode tie
    array[20, ::3] = 0.25
    array[33, 7] = -0.0
    array[33, 8] = 0.0
    ours, theirs = _pair(array)
    for dim in (1, 0):
        _same_pair(torch.topk(ours, 5, dim), real_torch.topk(theirs, 5, dim))
        _same_pair(torch.topk(ours, 4, dim, largest=False, sorted=False),
                   real_torch.topk(theirs, 4, dim, largest=False, sorted=False))
        _same_pair(torch.kthvalue(ours, 5, dim), real_torch.kthvalue(theirs, 5, dim))
        _same_pair(torch.median(ours, dim), real_torch.median(theirs, dim))
        _same_pair(torch.mode(ours, dim), real_torch.mode(theirs, dim))


def test_mode_of_many_tied_rows():
    """Every row ties (integer scores): sort_rows' replay of std::sort gives torch's index."""
    for n, high in ((17, 4), (300, 40), (2000, 30)):
        array = np.random.default_rng(n).integers(0, high, (12, n))
        for dtype in ("int64", "float32"):
            ours, theirs = _pair(array.astype(dtype))
            _same_pair(torch.mode(ours), real_torch.mode(theirs))
            _same_pair(torch.mode(ours, 0), real_torch.mode(theirs, 0))


@pytest.mark.parametrize("shape,dim", [((0, 5), 1), ((3, 0), 0), ((0, 5), 0)])
def test_zero_size(shape, dim):
    ours, theirs = _pair(np.zeros(shape, np.float32))
    n = shape[dim]
    for k in sorted({0, n}):
        _same_pair(torch.topk(ours, k, dim), real_torch.topk(theirs, k, dim))
    if n:
        _same_pair(torch.kthvalue(ours, 1, dim), real_torch.kthvalue(theirs, 1, dim))
        _same_pair(torch.median(ours, dim), real_torch.median(theirs, dim))
        _same_pair(torch.mode(ours, dim), real_torch.mode(theirs, dim))


def test_distinct_values_take_no_sort_or_replay(monkeypatch):
    """On distinct values the four ops answer without a stable sort of the rows or a replay."""
    def refuse(*args, **kwargs):
        raise AssertionError("a sort or replay ran")

    array = _data("distinct", (8, 200), "float64")
    ours, theirs = _pair(array, transpose=True)
    expected = [real_torch.topk(theirs, 4, 0), real_torch.topk(theirs, 3, 0, largest=False, sorted=False),
                real_torch.kthvalue(theirs, 3, 0), real_torch.median(theirs, -1), real_torch.mode(theirs, 0)]
    monkeypatch.setattr(reduce, "_replayed_order", refuse)
    monkeypatch.setattr(reduce, "_argsort", refuse)
    monkeypatch.setattr(reduce, "_kth_index", refuse)
    monkeypatch.setattr(reduce, "_mode_index", refuse)
    got = [torch.topk(ours, 4, 0), torch.topk(ours, 3, 0, largest=False, sorted=False),
           torch.kthvalue(ours, 3, 0), torch.median(ours, -1), torch.mode(ours, 0)]
    for mine, theirs_ in zip(got, expected):
        _same_pair(mine, theirs_)


def test_tied_mode_replays_rows_together(monkeypatch):
    """NaN-free tied rows go through sort_rows, not the one-comparison-at-a-time mode_index."""
    def refuse(*args, **kwargs):
        raise AssertionError("mode_index ran")

    array = _data("ties", (10, 50), "int64", seed=5)
    ours, theirs = _pair(array)
    monkeypatch.setattr(cpu_sort_order, "mode_index", refuse)
    _same_pair(torch.mode(ours), real_torch.mode(theirs))


def _gradients(fn, array):
    ours = torch.tensor(array, requires_grad=True)
    theirs = real_torch.tensor(array, requires_grad=True)
    weights = np.random.default_rng(1).standard_normal(fn(real_torch, theirs).values.shape)
    (fn(torch, ours).values * torch.tensor(weights)).sum().backward()
    (fn(real_torch, theirs).values * real_torch.tensor(weights)).sum().backward()
    assert ours.grad.numpy().tobytes() == theirs.grad.numpy().tobytes()


OPS = {
    "topk": lambda m, x: m.topk(x, 3, -1),
    "topk_smallest_dim0": lambda m, x: m.topk(x, 2, 0, largest=False),
    "kthvalue": lambda m, x: m.kthvalue(x, 4, 1, keepdim=True),
    "median": lambda m, x: m.median(x, -1),
    "mode": lambda m, x: m.mode(x, 0),
}


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("kind", ["distinct", "ties"])
def test_gradients_match_torch_and_gradcheck(name, kind):
    fn = OPS[name]
    array = _data(kind, (5, 9), "float64", seed=2)
    _gradients(fn, array)
    if kind == "distinct":  # (finite differences need values that keep their order)
        x = torch.tensor(array, requires_grad=True)
        assert gradcheck(lambda t: fn(torch, t).values, (x,))
