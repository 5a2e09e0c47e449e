"""searchsorted, bucketize, bincount, histc: indices and counts, compared with torch (no gradients)."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, distinct, randn, rng

SEQ = np.array([-1.0, 0.0, 0.5, 0.5, 2.0])  # a repeated boundary: left and right differ there
VALUES = np.array([[-2.0, 0.5, 0.25], [2.0, 3.0, -1.0]])  # on, between and outside the boundaries


def _sorted_rows(*shape, seed: int = 0) -> np.ndarray:
    return np.sort(np.round(randn(*shape, seed=seed), 1), axis=-1)


def _searchsorted_cases() -> list[OpCase]:
    rows, unsorted = _sorted_rows(2, 3, 5), distinct(7, seed=2)
    queries = np.round(randn(2, 3, 4, seed=1), 1)  # rounded: ties with the rounded rows
    return [
        OpCase("searchsorted", lambda lib, s, v: lib.searchsorted(s, v), [SEQ, VALUES]),
        OpCase("searchsorted_right", lambda lib, s, v: lib.searchsorted(s, v, right=True), [SEQ, VALUES]),
        OpCase("searchsorted_side_int32", lambda lib, s, v: lib.searchsorted(s, v, side="right", out_int32=True),
               [SEQ, VALUES]),
        OpCase("searchsorted_scalar", lambda lib, s: lib.searchsorted(s, 0.5), [SEQ]),
        OpCase("searchsorted_int_values", lambda lib, s, v: lib.searchsorted(s, v), [SEQ, np.array([0, 2, -3])]),
        OpCase("searchsorted_batched", lambda lib, s, v: lib.searchsorted(s, v), [rows, queries]),
        OpCase("searchsorted_batched_right", lambda lib, s, v: lib.searchsorted(s, v, side="right"), [rows, queries]),
        OpCase("searchsorted_sorter", lambda lib, s, v, o: lib.searchsorted(s, v, sorter=lib.tensor(o)),
               [unsorted, randn(4, seed=3), np.argsort(unsorted)]),
        OpCase("searchsorted_batched_sorter", lambda lib, s, v: lib.searchsorted(s, v, sorter=s.argsort(-1)),
               [randn(3, 6, seed=4), randn(3, 2, seed=5)]),
        OpCase("searchsorted_empty", lambda lib, s, v: lib.searchsorted(s, v), [SEQ, np.zeros((0, 3))]),
    ]


def _bucketize_cases() -> list[OpCase]:
    return [
        OpCase("bucketize", lambda lib, v, b: lib.bucketize(v, b), [VALUES, SEQ]),
        OpCase("bucketize_right_int32", lambda lib, v, b: lib.bucketize(v, b, right=True, out_int32=True),
               [VALUES, SEQ]),
        OpCase("bucketize_scalar", lambda lib, b: lib.bucketize(2.0, b), [SEQ]),
        OpCase("bucketize_0d", lambda lib, v, b: lib.bucketize(v, b), [np.array(0.5), SEQ]),
    ]


def _bincount_cases() -> list[OpCase]:
    counts = rng(0).integers(0, 6, 20)
    return [
        OpCase("bincount", lambda lib, x: lib.bincount(lib.tensor(x)), [counts]),
        OpCase("bincount_minlength", lambda lib, x: x.bincount(minlength=9), [counts]),
        OpCase("bincount_weights", lambda lib, x, w: lib.bincount(x, w), [counts, randn(20)], grad=[False, False]),
        OpCase("bincount_int_weights", lambda lib, x, w: lib.bincount(x, weights=w), [counts, counts * 2]),
        OpCase("bincount_empty", lambda lib, x: lib.bincount(x, minlength=3), [np.zeros(0, np.int64)]),
    ]


def _histc_cases() -> list[OpCase]:
    return [
        OpCase("histc", lambda lib, x: lib.histc(x, bins=7), [randn(50)], grad=[False]),
        OpCase("histc_range", lambda lib, x: x.histc(bins=4, min=-1, max=1), [randn(6, 5)], grad=[False]),
        OpCase("histc_edges", lambda lib, x: lib.histc(x, bins=4, min=0, max=3),
               [np.array([0.0, 0.75, 1.5, 2.25, 3.0, 3.5, -0.1])], grad=[False]),
        OpCase("histc_constant", lambda lib, x: lib.histc(x, bins=3), [np.full(4, 2.0)], grad=[False]),
        OpCase("histc_empty", lambda lib, x: lib.histc(x, bins=3), [np.zeros(0)], grad=[False]),
    ]


def unique_cases() -> list[OpCase]:
    """More torch.unique cases, run under structural's entry (the op lives in ops/structural.py)."""
    labels = rng(1).integers(0, 5, (4, 6))
    rows = np.array([[1, 2], [1, 2], [0, 5], [1, 2], [0, 4]])
    return [
        OpCase("unique", lambda lib, x: lib.unique(x), [labels]),
        OpCase("unique_inverse_counts", lambda lib, x: lib.unique(x, return_inverse=True, return_counts=True),
               [labels]),
        OpCase("unique_float_method", lambda lib, x: x.unique(sorted=True, return_counts=True),
               [np.round(randn(12), 0)], grad=[False]),
        OpCase("unique_dim", lambda lib, x: lib.unique(x, dim=0, return_inverse=True, return_counts=True), [rows]),
        OpCase("unique_neg_dim", lambda lib, x: lib.unique(x, dim=-1), [rows.T]),
        OpCase("unique_empty", lambda lib, x: lib.unique(x, return_counts=True), [np.zeros(0, np.int64)]),
    ]


op_db: list[OpInfo] = [
    OpInfo("searchsorted", "bucketing", _searchsorted_cases, supports_autograd=False),
    OpInfo("bucketize", "bucketing", _bucketize_cases, supports_autograd=False),
    OpInfo("bincount", "bucketing", _bincount_cases, methods=("bincount",), supports_autograd=False),
    OpInfo("histc", "bucketing", _histc_cases, methods=("histc",), supports_autograd=False),
]
