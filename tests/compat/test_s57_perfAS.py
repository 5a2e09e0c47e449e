"""Advanced-index backward by whole rows (ops/index.py's _add_at_by_rows): the gradient of a read
by a multi-dim key (a 2-d index, several index arrays, an index before whole dims, Ellipsis) is
accumulated row by row with repeats added in index order, torch's bits; a key it does not take
(None, a boolean mask, a small gradient) still goes through np.add.at."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.ops import index as index_ops

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(57)
HEADS = np.arange(2)[:, None, None]

# (shape, key): every key's gradient holds at least _FEWEST_ELEMENTS_BY_ROWS elements, most with
# repeated rows (the sequential adds), one with none (a plain fancy-index add)
CASES = {
    "2-d index, repeats": ((20, 64), (RNG.integers(0, 20, (16, 8)),)),
    "2-d index, distinct": ((200, 32), (RNG.permutation(200)[:160].reshape(16, 10),)),
    "index then whole dim": ((10, 128), (RNG.integers(0, 10, 50), slice(None))),
    "two indices, row of one": ((30, 30), (RNG.integers(0, 30, 5000), RNG.integers(0, 30, 5000))),
    "two indices, rows": ((12, 12, 8), (RNG.integers(0, 12, 600), RNG.integers(0, 12, 600))),
    "BigBird gather": ((2, 2, 8, 16, 16), (slice(None), HEADS, RNG.integers(1, 7, (2, 6, 3)))),
    "Ellipsis then index": ((16, 32, 10), (Ellipsis, RNG.integers(0, 10, 12))),
    "split indices": ((10, 16, 10), (RNG.integers(0, 10, 400), slice(None), RNG.integers(0, 10, 400))),
    "integer then index": ((3, 10, 512), (1, RNG.integers(-10, 10, 12))),
}


def _grads(shape, key, dtype):
    x = RNG.standard_normal(shape).astype(dtype)
    torch_x = torch.tensor(x, requires_grad=True)
    ours_x = chainrule.tensor(x, requires_grad=True)
    torch_y = torch_x[tuple(torch.tensor(k) if isinstance(k, np.ndarray) else k for k in key)]
    ours_y = ours_x[tuple(chainrule.tensor(k) if isinstance(k, np.ndarray) else k for k in key)]
    assert tuple(ours_y.shape) == tuple(torch_y.shape)
    assert type(ours_y.grad_fn).__name__ == torch_y.grad_fn.name() == "IndexBackward0"
    g = RNG.standard_normal(tuple(torch_y.shape)).astype(dtype)
    torch_y.backward(torch.tensor(g))
    ours_y.backward(chainrule.tensor(g))
    return torch_x.grad.numpy(), ours_x.grad.numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_index_backward_by_rows_has_torchs_bits(name):
    shape, key = CASES[name]
    assert index_ops._scatter_mode(key, False) == "add"  # the path under test
    expected, got = _grads(shape, key, np.float32)
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.int32), expected.view(np.int32))


def test_index_backward_by_rows_float64():
    expected, got = _grads((20, 64), CASES["2-d index, repeats"][1], np.float64)
    assert np.array_equal(got.view(np.int64), expected.view(np.int64))


@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_add_at_by_rows_sums_integers_and_bools_as_add_at(dtype):
    shape, key = CASES["two indices, rows"]
    grad = RNG.integers(-50, 50, (600, 8)).astype(dtype)
    out, expected = np.zeros(shape, dtype), np.zeros(shape, dtype)
    assert index_ops._add_at_by_rows(out, key, grad)
    np.add.at(expected, key, grad)
    np.testing.assert_array_equal(out, expected)


def test_add_at_by_rows_matches_add_at_and_declines_what_it_does_not_take():
    out, expected = np.zeros((12, 12, 8), np.float32), np.zeros((12, 12, 8), np.float32)
    key = CASES["two indices, rows"][1]
    grad = RNG.standard_normal((600, 8)).astype(np.float32)
    assert index_ops._add_at_by_rows(out, key, grad)
    np.add.at(expected, key, grad)
    assert np.array_equal(out.view(np.int32), expected.view(np.int32))
    small = np.zeros((12, 12, 8), np.float32)
    assert not index_ops._add_at_by_rows(small, (key[0][:4], key[1][:4]), grad[:4])  # np.add.at's
    mask = np.zeros(12, dtype=bool)
    mask[[1, 5]] = True
    assert not index_ops._add_at_by_rows(small, (mask, slice(None), RNG.integers(0, 8, 600)), grad)
    assert not index_ops._add_at_by_rows(small, (None, key[0]), grad)
    assert not small.any()  # declined: nothing written
