"""Session 52, lane perfAN: torch.mode of rows longer than 16 holding a NaN, replayed for all rows
at once (cpu_sort_order.mode_index_long_rows) instead of one std::sort replay per row."""

import numpy as np
import pytest
import torch

import chainrule
from chainrule.ops import cpu_sort_order


def _rows(seed: int, count: int, n: int, dtype) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pool = np.array([0.0, -0.0, 1.0, 2.0, -1.0, np.inf, -np.inf, np.nan])
    rows = rng.choice(pool, (count, n)) if seed % 2 else rng.integers(0, 4, (count, n)).astype(float)
    rows[rng.random(rows.shape) < [0.02, 0.1, 0.5][seed % 3]] = np.nan
    rows[::3, 0] = np.nan  # a NaN first, where the insertion sort's front jump passes it
    rows[1::4, -1] = np.nan
    return rows.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed, count, n", [(0, 20, 17), (1, 32, 128), (2, 16, 64), (3, 40, 33), (4, 18, 300)])
def test_rows_at_once_give_the_per_row_replay(seed, count, n, dtype):
    rows = _rows(seed, count, n, dtype)
    expected = [cpu_sort_order.mode_index(row) for row in rows.tolist()]
    np.testing.assert_array_equal(cpu_sort_order.mode_index_long_rows(rows), expected)


def test_few_rows_take_the_per_row_replay(monkeypatch):
    rows = _rows(5, 3, 50, np.float64)
    replayed = cpu_sort_order.mode_index_long_rows(rows)
    monkeypatch.setattr(cpu_sort_order, "_ROWS_AT_ONCE_FROM", 0)
    np.testing.assert_array_equal(cpu_sort_order.mode_index_long_rows(rows), replayed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, dim", [((32, 128), -1), ((8, 16, 64), -1), ((64, 20), 0), ((3, 17, 24), 1),
                                        ((2, 40), -1)])
def test_mode_with_nan_matches_torch(shape, dim, dtype):
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(0, 6, shape).astype(dtype)
    x[rng.random(shape) < 0.05] = np.nan
    x.reshape(-1)[::97] = np.inf
    expected_values, expected_indices = torch.mode(torch.from_numpy(x), dim)
    values, indices = chainrule.mode(chainrule.from_numpy(x.copy()), dim)
    np.testing.assert_array_equal(values.numpy(), expected_values.numpy())
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    assert indices.dtype == chainrule.int64


def test_sort_rows_without_nan_is_unchanged_by_nan_unordered():
    rows = np.random.default_rng(6).integers(0, 5, (24, 70)).astype(np.float32)
    np.testing.assert_array_equal(cpu_sort_order.sort_rows(rows, descending=False, nan_unordered=True),
                                  cpu_sort_order.sort_rows(rows, descending=False))
