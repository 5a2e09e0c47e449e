"""unique, repeat_interleave, meshgrid, cartesian_prod, combinations, tril/triu_indices, block_diag,
rot90, diff, isin, diag_embed, diagflat, moveaxis: compared with torch (integer results exactly,
dtype included), differentiable ones gradchecked."""

from __future__ import annotations

import numpy as np

from . import bucketing
from .core import OpCase, OpInfo, noncontig, randn, rng, select

INTS = rng(0).integers(0, 4, (4, 5))  # small values: many repeats
SLICES = INTS[:, [0, 1, 0, 2, 1]]  # repeated columns for unique(dim=1)
RUNS = np.array([1, 1, 2, 2, 3, 1, 1, 2, 2, 2])


def _unique_cases() -> list[OpCase]:
    float_ties = np.round(randn(3, 4), 0)
    return [
        OpCase("unique", lambda lib, x: lib.unique(x), [INTS]),
        OpCase("unique_inverse_counts", lambda lib, x: lib.unique(x, return_inverse=True, return_counts=True),
               [INTS]),
        OpCase("unique_method_unsorted", lambda lib, x: x.unique(sorted=False, return_counts=True), [INTS]),
        OpCase("unique_float", lambda lib, x: lib.unique(x, return_inverse=True), [float_ties], grad=[False]),
        OpCase("unique_dim1", lambda lib, x: lib.unique(x, dim=1, return_inverse=True, return_counts=True),
               [SLICES]),
        OpCase("unique_dim0_negative", lambda lib, x: x.unique(dim=-2, return_inverse=True),
               [np.concatenate([INTS, INTS[1:3]])]),
        OpCase("unique_0d", lambda lib, x: lib.unique(x, return_inverse=True, return_counts=True),
               [np.array(3)]),
        OpCase("unique_empty", lambda lib, x: lib.unique(x, return_inverse=True, return_counts=True),
               [np.zeros((0, 3), np.int64)]),
        OpCase("unique_bool", lambda lib, x: lib.unique(x > 1, return_counts=True), [INTS]),
    ]


def _unique_consecutive_cases() -> list[OpCase]:
    return [
        OpCase("unique_consecutive", lambda lib, x: lib.unique_consecutive(x), [RUNS]),
        OpCase("unique_consecutive_inverse_counts",
               lambda lib, x: x.unique_consecutive(return_inverse=True, return_counts=True), [RUNS]),
        OpCase("unique_consecutive_2d", lambda lib, x: lib.unique_consecutive(x, return_inverse=True), [INTS]),
        OpCase("unique_consecutive_dim", lambda lib, x: lib.unique_consecutive(x, return_counts=True, dim=0),
               [np.array([[1, 2], [1, 2], [3, 4], [1, 2]])]),
        OpCase("unique_consecutive_empty", lambda lib, x: lib.unique_consecutive(x, return_counts=True),
               [np.zeros(0, np.int64)]),
    ]


def _repeat_interleave_cases() -> list[OpCase]:
    x = randn(3, 4)
    return [
        OpCase("repeat_interleave_int", lambda lib, x: x.repeat_interleave(2, dim=0), [x]),
        OpCase("repeat_interleave_flat", lambda lib, x: lib.repeat_interleave(x, 3), [x]),
        OpCase("repeat_interleave_tensor", lambda lib, x: x.repeat_interleave(lib.tensor([1, 0, 2, 3]), dim=1),
               [x]),
        OpCase("repeat_interleave_tensor_negative_dim",
               lambda lib, x: lib.repeat_interleave(x, lib.tensor([2, 1, 1]), dim=-2, output_size=4), [x]),
        OpCase("repeat_interleave_one_count", lambda lib, x: x.repeat_interleave(lib.tensor([2]), dim=1), [x]),
        OpCase("repeat_interleave_0d_tensor", lambda lib, x: x.repeat_interleave(lib.tensor(2), dim=0), [x]),
        OpCase("repeat_interleave_noncontig", lambda lib, x: x.repeat_interleave(2, dim=1), [noncontig(x)]),
        OpCase("repeat_interleave_zero", lambda lib, x: x.repeat_interleave(0, dim=0), [x]),
        OpCase("repeat_interleave_0d", lambda lib, x: x.repeat_interleave(3), [np.array(1.5)]),
        OpCase("repeat_interleave_counts", lambda lib, c: lib.repeat_interleave(c), [np.array([1, 0, 2, 3])]),
        OpCase("repeat_interleave_int_input", lambda lib, x: x.repeat_interleave(2, dim=1), [INTS]),
    ]


def _meshgrid_cases() -> list[OpCase]:
    a, b, c = randn(4), randn(3, seed=1), randn(2, seed=2)
    return [
        OpCase("meshgrid_ij", lambda lib, x, y: lib.meshgrid(x, y, indexing="ij"), [a, b]),
        OpCase("meshgrid_xy", lambda lib, x, y: lib.meshgrid(x, y, indexing="xy"), [a, b]),
        OpCase("meshgrid_xy_three", lambda lib, x, y, z: lib.meshgrid([x, y, z], indexing="xy"), [a, b, c]),
        OpCase("meshgrid_ij_0d", lambda lib, x, y: lib.meshgrid(x, y, indexing="ij"), [np.array(2.0), b]),
        OpCase("meshgrid_one", lambda lib, x: lib.meshgrid(x, indexing="xy"), [a]),
        OpCase("meshgrid_empty", lambda lib, x, y: lib.meshgrid(x, y, indexing="ij"), [np.zeros(0), b]),
    ]


def _cartesian_prod_cases() -> list[OpCase]:
    return [
        OpCase("cartesian_prod", lambda lib, x, y: lib.cartesian_prod(x, y), [randn(4), randn(3, seed=1)]),
        OpCase("cartesian_prod_three", lambda lib, x, y, z: lib.cartesian_prod(x, y, z),
               [randn(2), randn(3, seed=1), randn(2, seed=2)]),
        OpCase("cartesian_prod_ints", lambda lib, x, y: lib.cartesian_prod(x, y), [RUNS[:3], RUNS[3:5]]),
    ]


def _combinations_cases() -> list[OpCase]:
    v = randn(5)
    return [
        OpCase("combinations", lambda lib, x: lib.combinations(x), [v]),
        OpCase("combinations_r3", lambda lib, x: lib.combinations(x, 3), [v]),
        OpCase("combinations_replacement", lambda lib, x: lib.combinations(x, 2, with_replacement=True), [v]),
        OpCase("combinations_r_too_big", lambda lib, x: lib.combinations(x, 4), [v[:3]]),
        OpCase("combinations_ints", lambda lib, x: lib.combinations(x, r=2), [RUNS[:4]]),
    ]


def _triangle_cases() -> list[OpCase]:
    return [
        OpCase("tril_indices", lambda lib: lib.tril_indices(4, 3), []),
        OpCase("tril_indices_offset", lambda lib: lib.tril_indices(3, 5, -1), []),
        OpCase("tril_indices_int32", lambda lib: lib.tril_indices(3, 3, 1, dtype=lib.int32), []),
        OpCase("tril_indices_empty", lambda lib: lib.tril_indices(0, 3), []),
        OpCase("triu_indices", lambda lib: lib.triu_indices(4, 3), []),
        OpCase("triu_indices_offset", lambda lib: lib.triu_indices(3, 5, 2), []),
        OpCase("triu_indices_negative", lambda lib: lib.triu_indices(5, 3, -2), []),
    ]


def _block_diag_cases() -> list[OpCase]:
    return [
        OpCase("block_diag", lambda lib, a, b: lib.block_diag(a, b), [randn(2, 3), randn(3, 2, seed=1)]),
        OpCase("block_diag_mixed_ranks", lambda lib, a, b, c: lib.block_diag(a, b, c),
               [randn(2, 2), randn(3, seed=1), np.array(1.5)]),
        OpCase("block_diag_empty_block", lambda lib, a, b: lib.block_diag(a, b), [randn(2, 2), np.zeros((0, 3))]),
        OpCase("block_diag_noncontig", lambda lib, a: lib.block_diag(a, a), [noncontig(randn(3, 2))]),
        OpCase("block_diag_promotes", lambda lib, a, b: lib.block_diag(a, b), [INTS[:2, :2], randn(1, 2)]),
        OpCase("block_diag_one", lambda lib, a: lib.block_diag(a), [randn(2, 3)]),
    ]


def _rot90_cases() -> list[OpCase]:
    x = randn(3, 4)
    return [
        OpCase("rot90", lambda lib, x: lib.rot90(x), [x]),
        OpCase("rot90_k2", lambda lib, x: x.rot90(2), [x]),
        OpCase("rot90_k3", lambda lib, x: lib.rot90(x, 3, [0, 1]), [x]),
        OpCase("rot90_negative_k", lambda lib, x: lib.rot90(x, -1, [1, 0]), [x]),
        OpCase("rot90_k0", lambda lib, x: x.rot90(0), [x]),
        OpCase("rot90_3d_dims", lambda lib, x: lib.rot90(x, 1, [2, 0]), [randn(2, 3, 4)]),
        OpCase("rot90_noncontig", lambda lib, x: lib.rot90(x, 5), [noncontig(x)]),
    ]


def _diff_cases() -> list[OpCase]:
    x = randn(3, 5)
    return [
        OpCase("diff", lambda lib, x: lib.diff(x), [x]),
        OpCase("diff_n2_dim0", lambda lib, x: x.diff(n=2, dim=0), [x]),
        OpCase("diff_prepend_append", lambda lib, x, p, a: lib.diff(x, 1, -1, p, a),
               [x, randn(3, 2, seed=1), randn(3, 1, seed=2)]),
        OpCase("diff_n_too_big", lambda lib, x: lib.diff(x, n=7), [x]),
        OpCase("diff_n0", lambda lib, x: lib.diff(x, n=0), [x]),
        OpCase("diff_bool", lambda lib, x: lib.diff(x > 0), [x]),
        OpCase("diff_ints", lambda lib, x: lib.diff(x, dim=0), [INTS]),
        OpCase("diff_noncontig", lambda lib, x: lib.diff(x, dim=1), [noncontig(x)]),
        OpCase("diff_empty", lambda lib, x: lib.diff(x), [np.zeros((2, 0))]),
    ]


def _isin_cases() -> list[OpCase]:
    return [
        OpCase("isin", lambda lib, x, t: lib.isin(x, t), [INTS, np.array([1, 3])]),
        OpCase("isin_invert", lambda lib, x, t: lib.isin(x, t, invert=True), [INTS, np.array([0, 2, 9])]),
        OpCase("isin_assume_unique", lambda lib, x, t: lib.isin(x, t, assume_unique=True),
               [np.array([4, 1, 7]), np.array([7, 2])]),
        OpCase("isin_scalar_test", lambda lib, x: lib.isin(x, 2), [INTS]),
        OpCase("isin_scalar_elements", lambda lib, t: lib.isin(2, t), [np.array([1, 2])]),
        OpCase("isin_float", lambda lib, x, t: lib.isin(x, t), [np.round(randn(3, 3), 0), np.array([0.0, 1.0])],
               grad=[False, False]),
    ]


def _diag_embed_cases() -> list[OpCase]:
    x = randn(2, 3)
    return [
        OpCase("diag_embed", lambda lib, x: lib.diag_embed(x), [x]),
        OpCase("diag_embed_offset", lambda lib, x: x.diag_embed(1), [x]),
        OpCase("diag_embed_negative_offset_dims", lambda lib, x: lib.diag_embed(x, -2, 0, 2), [x]),
        OpCase("diag_embed_dims_swapped", lambda lib, x: lib.diag_embed(x, 1, -1, -2), [x]),
        OpCase("diag_embed_noncontig", lambda lib, x: lib.diag_embed(x), [noncontig(randn(3, 4))]),
        OpCase("diag_embed_empty", lambda lib, x: lib.diag_embed(x), [np.zeros((0, 3))]),
    ]


def _diagflat_cases() -> list[OpCase]:
    return [
        OpCase("diagflat", lambda lib, x: lib.diagflat(x), [randn(2, 3)]),
        OpCase("diagflat_offset", lambda lib, x: x.diagflat(1), [randn(4)]),
        OpCase("diagflat_negative_offset", lambda lib, x: lib.diagflat(x, -2), [randn(3)]),
        OpCase("diagflat_0d", lambda lib, x: lib.diagflat(x), [np.array(2.5)]),
    ]


def _moveaxis_cases() -> list[OpCase]:
    return [
        OpCase("moveaxis", lambda lib, x: lib.moveaxis(x, 0, -1), [randn(2, 3, 4)]),
        OpCase("moveaxis_many", lambda lib, x: x.moveaxis((0, 1), (2, 0)), [randn(2, 3, 4)]),
    ]


op_db: list[OpInfo] = [
    OpInfo("unique", "structural", lambda: _unique_cases() + bucketing.unique_cases(), methods=("unique",),
           supports_autograd=False),
    OpInfo("unique_consecutive", "structural", _unique_consecutive_cases, methods=("unique_consecutive",),
           supports_autograd=False),
    OpInfo("repeat_interleave", "structural", _repeat_interleave_cases, methods=("repeat_interleave",)),
    OpInfo("meshgrid", "structural", _meshgrid_cases),
    OpInfo("cartesian_prod", "structural", _cartesian_prod_cases),
    OpInfo("combinations", "structural", _combinations_cases),
    OpInfo("tril_indices", "structural", select(_triangle_cases, "tril_indices*"), supports_autograd=False),
    OpInfo("triu_indices", "structural", select(_triangle_cases, "triu_indices*"), supports_autograd=False),
    OpInfo("block_diag", "structural", _block_diag_cases),
    OpInfo("rot90", "structural", _rot90_cases, methods=("rot90",)),
    OpInfo("diff", "structural", _diff_cases, methods=("diff",)),
    OpInfo("isin", "structural", _isin_cases, supports_autograd=False),
    OpInfo("diag_embed", "structural", _diag_embed_cases, methods=("diag_embed",)),
    OpInfo("diagflat", "structural", _diagflat_cases, methods=("diagflat",)),
    OpInfo("moveaxis", "structural", _moveaxis_cases, methods=("moveaxis",)),
]
