"""slice_scatter, select_scatter, diagonal_scatter, as_strided and as_strided_scatter: values, gradients and node names
against torch, gradchecked (as_strided over a view's storage, with overlapping windows)."""

from __future__ import annotations

from .core import OpCase, OpInfo, noncontig, randn

A = randn(3, 4, seed=1)
B = randn(2, 3, 4, seed=2)


def _slice_cases() -> list[OpCase]:
    return [
        OpCase("slice_scatter", lambda lib, x, s: lib.slice_scatter(x, s, 1, 0, 4, 2), [A, randn(3, 2, seed=3)]),
        OpCase("slice_scatter_method_neg", lambda lib, x, s: x.slice_scatter(s, dim=-3, start=-1), [B, randn(1, 3, 4)]),
        OpCase("slice_scatter_default", lambda lib, x, s: lib.slice_scatter(x, s), [A, randn(3, 4, seed=4)]),
        OpCase("slice_scatter_end_past", lambda lib, x, s: lib.slice_scatter(x, s, 0, 1, 10), [noncontig(A), randn(2, 4)]),
    ]


def _select_cases() -> list[OpCase]:
    return [
        OpCase("select_scatter", lambda lib, x, s: lib.select_scatter(x, s, 1, -1), [A, randn(3, seed=5)]),
        OpCase("select_scatter_method", lambda lib, x, s: x.select_scatter(s, 0, 1), [B, randn(3, 4, seed=6)]),
        OpCase("select_scatter_0d_src", lambda lib, x, s: lib.select_scatter(x, s, 0, 2), [randn(4), randn()]),
    ]


def _diagonal_cases() -> list[OpCase]:
    return [
        OpCase("diagonal_scatter", lambda lib, x, s: lib.diagonal_scatter(x, s), [A, randn(3, seed=7)]),
        OpCase("diagonal_scatter_offset", lambda lib, x, s: x.diagonal_scatter(s, 1), [A, randn(3, seed=8)]),
        OpCase("diagonal_scatter_negoffset_dims", lambda lib, x, s: lib.diagonal_scatter(x, s, -1, 2, 0),
               [B, randn(3, 2, seed=9)]),
    ]


def _as_strided_cases() -> list[OpCase]:
    return [
        OpCase("as_strided", lambda lib, x: lib.as_strided(x, (2, 2), (1, 2), 1), [A]),
        OpCase("as_strided_overlap", lambda lib, x: x.as_strided((3, 3), (1, 1)), [A]),
        OpCase("as_strided_of_view", lambda lib, x: (x * 1)[1:].as_strided((2, 3), (2, 1)), [A]),
        OpCase("as_strided_transposed", lambda lib, x: lib.as_strided(x, (4, 3), (1, 4)), [A]),
        OpCase("as_strided_empty", lambda lib, x: lib.as_strided(x, (0, 2), (1, 1)), [A]),
    ]


def _as_strided_scatter_cases() -> list[OpCase]:
    # only src's gradient is compared with torch: torch 2.13's input gradient lands on the overwritten
    # positions (its OpInfo expects its gradcheck to fail); chainrule's is gradchecked in
    # tests/compat/test_torch_opinfo_fixes.py
    src_only = [False, True]
    return [
        OpCase("as_strided_scatter", lambda lib, x, s: lib.as_strided_scatter(x, s, (2, 2), (1, 2), 1),
               [A, randn(2, 2, seed=10)], grad=src_only),
        OpCase("as_strided_scatter_wider", lambda lib, x, s: x.as_strided_scatter(s, (2, 2, 3), (6, 3, 1)),
               [randn(12, seed=11), randn(2, 2, 3, seed=12)], grad=src_only),
        OpCase("as_strided_scatter_0d", lambda lib, x, s: lib.as_strided_scatter(x, s, (), (), 5), [A, randn()],
               grad=src_only),
    ]


op_db = [
    OpInfo("slice_scatter", "scatter_views", _slice_cases, methods=("slice_scatter",)),
    OpInfo("select_scatter", "scatter_views", _select_cases, methods=("select_scatter",)),
    OpInfo("diagonal_scatter", "scatter_views", _diagonal_cases, methods=("diagonal_scatter",)),
    OpInfo("as_strided", "scatter_views", _as_strided_cases, methods=("as_strided",)),
    OpInfo("as_strided_scatter", "scatter_views", _as_strided_scatter_cases, methods=("as_strided_scatter",)),
]
