"""Reductions (chainrule/ops/reduce.py): dims, keepdim, 0-d, empty, ties, NaN, and values that are not gradients."""

from __future__ import annotations

import numpy as np

from .core import (
    OpCase,
    OpInfo,
    cached,
    distinct,
    noncontig,
    positive,
    randn,
    select,
    thin_gradchecks,
)


@cached
def _cases() -> list[OpCase]:
    A = randn(3, 4)
    A3 = randn(2, 3, 4, seed=1)
    D = distinct(3, 4)  # tie-free
    D3 = distinct(2, 3, 4, seed=2)
    S = randn(seed=3)  # 0-d
    E = randn(0, 4)
    WITH_ZERO = np.array([[1.5, 0.0, 2.0], [0.5, -1.0, 3.0], [0.0, 0.0, 1.2]])
    WITH_NAN = np.array([[1.0, np.nan, 2.0], [np.nan, np.nan, np.nan], [0.5, -1.0, 3.0]])
    TIES = np.array([[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, 2.0, 2.0], [-1.0, 0.0, -2.0, 0.0]])

    CASES = [
        # sum / mean
        OpCase("sum", lambda lib, x: x.sum(), [A]),
        OpCase("sum_dims", lambda lib, x: x.sum((0, -1), keepdim=True), [A3]),
        OpCase("sum_empty", lambda lib, x: x.sum(0), [E]),
        OpCase("mean_neg", lambda lib, x: x.mean(-2), [noncontig(A3)]),
        OpCase("mean_0d", lambda lib, x: x.mean(), [S]),
        # prod, gradient with zeros
        OpCase("prod", lambda lib, x: x.prod(), [positive(3, 4)]),
        OpCase("prod_dim", lambda lib, x: x.prod(1), [randn(3, 4)]),
        OpCase("prod_keepdim", lambda lib, x: x.prod(-1, keepdim=True), [noncontig(A)]),
        OpCase("prod_zeros_dim", lambda lib, x: x.prod(1), [WITH_ZERO]),
        OpCase("prod_zeros_dim0", lambda lib, x: x.prod(0), [WITH_ZERO]),
        OpCase("prod_zeros_all", lambda lib, x: x[0].prod(), [WITH_ZERO]),
        OpCase("prod_two_zeros", lambda lib, x: x.prod(), [WITH_ZERO]),
        OpCase("prod_0d", lambda lib, x: x.prod(0), [S]),
        OpCase("prod_empty", lambda lib, x: x.prod(0), [E]),
        # var / std
        OpCase("var", lambda lib, x: x.var(), [A]),
        OpCase("var_dim", lambda lib, x: x.var(1), [A3]),
        OpCase("var_dims_keep", lambda lib, x: x.var((0, 2), keepdim=True), [A3]),
        OpCase("var_unbiased_false", lambda lib, x: x.var(1, unbiased=False), [A]),
        OpCase("var_correction", lambda lib, x: lib.var(x, -1, correction=2), [noncontig(A)]),
        OpCase("std", lambda lib, x: x.std(0), [A]),
        OpCase("std_all_biased", lambda lib, x: lib.std(x, unbiased=False), [A3]),
        OpCase("var_mean", lambda lib, x: lib.var_mean(x, 1), [A]),
        OpCase("std_mean", lambda lib, x: lib.std_mean(x, (0, 1), correction=0), [A3]),
        # max / min / amax / amin
        OpCase("max_all", lambda lib, x: x.max(), [D]),
        OpCase("min_all", lambda lib, x: x.min(), [D3]),
        OpCase("max_dim", lambda lib, x: x.max(1), [D]),
        OpCase("max_dim_keep", lambda lib, x: x.max(-1, keepdim=True), [D3]),
        OpCase("min_dim", lambda lib, x: lib.min(x, 0), [noncontig(D)]),
        OpCase("max_0d", lambda lib, x: x.max(0), [S]),
        OpCase("max_binary", lambda lib, x, y: lib.max(x, y), [D, randn(3, 4, seed=5)]),
        OpCase("amax", lambda lib, x: x.amax((0, 2)), [D3]),
        OpCase("amin", lambda lib, x: lib.amin(x, -1, keepdim=True), [D]),
        OpCase("amax_all", lambda lib, x: lib.amax(x), [D]),
        # ties: full reductions split evenly, max(dim) routes to the returned (first) index
        OpCase("max_all_ties", lambda lib, x: x.max(), [TIES], gradcheck=False),
        OpCase("min_all_ties", lambda lib, x: (x * x).min(), [TIES], gradcheck=False),
        OpCase("amax_ties", lambda lib, x: x.amax(1), [TIES], gradcheck=False),
        OpCase("amin_ties", lambda lib, x: x.amin(0), [TIES], gradcheck=False),
        OpCase("max_dim_ties", lambda lib, x: x.max(1), [TIES], gradcheck=False),
        OpCase("min_dim_ties", lambda lib, x: x.min(1), [TIES], gradcheck=False),
        # logsumexp / softmax / log_softmax
        OpCase("logsumexp", lambda lib, x: x.logsumexp(1), [A]),
        OpCase("logsumexp_dims", lambda lib, x: lib.logsumexp(x, (0, -1), keepdim=True), [A3]),
        OpCase("logsumexp_huge", lambda lib, x: lib.logsumexp(x * 1000.0, 1), [A], gradcheck=False),
        OpCase("logsumexp_empty", lambda lib, x: lib.logsumexp(x, 0), [E]),
        OpCase("softmax", lambda lib, x: x.softmax(1), [A]),
        OpCase("softmax_neg", lambda lib, x: lib.softmax(x, dim=-2), [noncontig(A3)]),
        OpCase("softmax_huge", lambda lib, x: lib.softmax(x * 1e4, 1), [A], gradcheck=False),
        OpCase("softmax_0d", lambda lib, x: x.softmax(0), [S]),
        OpCase("softmax_dtype", lambda lib, x: lib.softmax(x, 0, dtype=lib.float64), [A]),
        OpCase("log_softmax", lambda lib, x: x.log_softmax(-1), [A3]),
        OpCase("log_softmax_huge", lambda lib, x: lib.log_softmax(x * 1e4, 0), [A], gradcheck=False),
        OpCase("log_softmax_empty", lambda lib, x: lib.log_softmax(x, 1), [E]),
        # cumulative
        OpCase("cumsum", lambda lib, x: x.cumsum(1), [A]),
        OpCase("cumsum_neg", lambda lib, x: lib.cumsum(x, -3), [noncontig(A3)]),
        OpCase("cumsum_0d", lambda lib, x: x.cumsum(0), [S]),
        OpCase("cumprod", lambda lib, x: x.cumprod(1), [A]),
        OpCase("cumprod_zeros", lambda lib, x: x.cumprod(1), [WITH_ZERO]),
        OpCase("cumprod_zeros_dim0", lambda lib, x: lib.cumprod(x, 0), [WITH_ZERO]),
        # norms
        OpCase("norm", lambda lib, x: x.norm(), [A]),
        OpCase("norm_dim", lambda lib, x: x.norm(dim=1), [A]),
        OpCase("norm_fro_keep", lambda lib, x: lib.norm(x, "fro", dim=(0, 1), keepdim=True), [A3]),
        OpCase("norm_p1", lambda lib, x: x.norm(p=1, dim=0), [randn(3, 4, low_gap=0.1)]),
        OpCase("norm_p3", lambda lib, x: x.norm(p=3, dim=-1), [randn(3, 4, low_gap=0.1)]),
        OpCase("norm_p1_5", lambda lib, x: x.norm(p=1.5), [randn(3, 4, low_gap=0.1)]),
        OpCase("norm_inf", lambda lib, x: x.norm(p=float("inf"), dim=1), [D]),
        OpCase("norm_ninf", lambda lib, x: x.norm(p=-float("inf"), dim=1), [D + 0.03]),
        OpCase("norm_inf_ties", lambda lib, x: x.norm(p=float("inf")), [TIES], gradcheck=False),
        OpCase("norm_0d", lambda lib, x: x.norm(), [S]),
        OpCase("norm_zero_vector", lambda lib, x: (x * 0).norm(dim=1), [A], gradcheck=False),
        OpCase("linalg_vector_norm", lambda lib, x: lib.linalg.vector_norm(x, ord=3, dim=(0, 2)), [A3]),
        OpCase("linalg_matrix_norm", lambda lib, x: lib.linalg.matrix_norm(x), [A3]),
        OpCase("linalg_matrix_norm_1", lambda lib, x: lib.linalg.matrix_norm(x, ord=1), [D3]),
        OpCase("linalg_matrix_norm_inf", lambda lib, x: lib.linalg.matrix_norm(x, ord=float("inf")), [D3]),
        OpCase("linalg_matrix_norm_2", lambda lib, x: lib.linalg.matrix_norm(x, ord=2), [A3]),
        OpCase("linalg_matrix_norm_neg2_dims", lambda lib, x: lib.linalg.matrix_norm(x, ord=-2, dim=(2, 0),
                                                                                     keepdim=True), [A3]),
        OpCase("linalg_matrix_norm_nuc", lambda lib, x: lib.linalg.matrix_norm(x, ord="nuc"), [A3]),
        OpCase("linalg_norm_2", lambda lib, x: lib.linalg.norm(x, ord=2), [A]),
        OpCase("linalg_norm", lambda lib, x: lib.linalg.norm(x), [A]),
        OpCase("linalg_norm_vec", lambda lib, x: lib.linalg.norm(x, dim=1), [A]),
        # sorting and order statistics
        OpCase("sort", lambda lib, x: x.sort(), [D]),
        OpCase("sort_desc", lambda lib, x: lib.sort(x, 0, descending=True), [D3]),
        OpCase("sort_0d", lambda lib, x: x.sort(), [S]),
        OpCase("sort_stable_ties", lambda lib, x: x.sort(stable=True), [TIES], gradcheck=False),
        OpCase("sort_stable_desc_ties", lambda lib, x: x.sort(descending=True, stable=True), [TIES], gradcheck=False),
        OpCase("topk", lambda lib, x: x.topk(2), [D]),
        OpCase("topk_smallest", lambda lib, x: lib.topk(x, 3, dim=1, largest=False), [noncontig(D3)]),
        OpCase("topk_zero", lambda lib, x: x.topk(0), [D]),
        OpCase("median", lambda lib, x: x.median(), [D]),
        OpCase("median_even", lambda lib, x: x.median(), [distinct(4, 2)]),
        OpCase("median_ties", lambda lib, x: x.median(), [TIES], gradcheck=False),
        OpCase("median_dim", lambda lib, x: x.median(1), [D]),
        OpCase("median_dim_keep", lambda lib, x: x.median(0, keepdim=True), [D3]),
        OpCase("kthvalue", lambda lib, x: x.kthvalue(2, 1), [D]),
        # zero-size inputs reduced over a non-empty dim, or kept empty
        OpCase("amax_empty_rows", lambda lib, x: x.amax(1), [E]),
        OpCase("max_dim_empty_rows", lambda lib, x: x.max(1), [E]),
        OpCase("var_empty", lambda lib, x: x.var(0), [E], gradcheck=False),
        OpCase("cumsum_empty", lambda lib, x: x.cumsum(0), [E]),
        OpCase("cumprod_empty", lambda lib, x: x.cumprod(1), [E]),
        OpCase("softmax_empty", lambda lib, x: x.softmax(0), [E]),
        OpCase("norm_empty", lambda lib, x: x.norm(dim=0), [E]),
        OpCase("sort_empty", lambda lib, x: x.sort(0), [E]),
        OpCase("topk_empty", lambda lib, x: x.topk(0, dim=0), [E]),
        OpCase("logsumexp_0d", lambda lib, x: x.logsumexp(0), [S]),
        OpCase("var_0d", lambda lib, x: x.var(unbiased=False), [S]),
        OpCase("amax_0d", lambda lib, x: x.amax(), [S]),
        OpCase("cumprod_0d", lambda lib, x: x.cumprod(-1), [S]),
        OpCase("kthvalue_0d", lambda lib, x: x.kthvalue(1), [S]),
        OpCase("norm_inf_0d", lambda lib, x: x.norm(p=float("inf")), [S]),
        # NaN-aware sums, aminmax, running extrema, dist
        OpCase("nansum", lambda lib, x: lib.nansum(x, 1), [WITH_NAN], gradcheck=False),
        OpCase("nansum_plain", lambda lib, x: x.nansum(), [A]),
        OpCase("nanmean", lambda lib, x: lib.nanmean(x, 0, keepdim=True), [WITH_NAN], gradcheck=False),
        OpCase("nanmean_plain", lambda lib, x: x.nanmean(-1), [A]),
        OpCase("aminmax", lambda lib, x: tuple(lib.aminmax(x, dim=1)), [D]),
        OpCase("aminmax_all", lambda lib, x: tuple(x.aminmax()), [D3]),
        OpCase("aminmax_ties", lambda lib, x: tuple(x.aminmax()), [TIES], gradcheck=False),
        OpCase("cummax", lambda lib, x: tuple(x.cummax(1)), [D]),
        OpCase("cummin", lambda lib, x: tuple(lib.cummin(x, 0)), [D3]),
        OpCase("cummax_ties", lambda lib, x: tuple(lib.cummax(x, -1)), [TIES], gradcheck=False),
        OpCase("cummin_ties", lambda lib, x: tuple(x.cummin(1)), [TIES], gradcheck=False),
        OpCase("cummax_0d", lambda lib, x: tuple(x.cummax(0)), [S]),
        OpCase("dist", lambda lib, x, y: lib.dist(x, y), [A, randn(4, seed=9)]),
        OpCase("dist_p3", lambda lib, x, y: x.dist(y, 3), [A, randn(3, 4, seed=9)]),
        OpCase("mode", lambda lib, x: x.mode(1), [np.array([[1.0, 2.0, 2.0, 3.0], [5.0, 4.0, 5.0, 4.0]])],
               gradcheck=False),
    ]

    INT = np.array([[3, 0, 5], [1, 1, 0]])
    BOOLS = np.array([[True, False, True], [True, True, True]])

    NON_DIFF = [
        OpCase("argmax", lambda lib, x: x.argmax(), [TIES]),
        OpCase("argmax_dim", lambda lib, x: x.argmax(1), [TIES]),
        OpCase("argmax_keep", lambda lib, x: lib.argmax(x, 0, keepdim=True), [TIES]),
        OpCase("argmin_dim", lambda lib, x: x.argmin(-1), [TIES]),
        OpCase("argmax_none_keep", lambda lib, x: x.argmax(keepdim=True), [A]),
        OpCase("argsort", lambda lib, x: x.argsort(1), [D]),
        OpCase("argsort_desc", lambda lib, x: lib.argsort(x, 0, descending=True), [D]),
        OpCase("all", lambda lib, x: x.all(), [BOOLS]),
        OpCase("all_dim", lambda lib, x: x.all(1), [BOOLS]),
        OpCase("any_dim_keep", lambda lib, x: x.any(0, keepdim=True), [BOOLS]),
        OpCase("any_int", lambda lib, x: x.any(), [INT]),
        OpCase("all_float_dims", lambda lib, x: x.all((0, 1)), [WITH_ZERO]),
        OpCase("count_nonzero", lambda lib, x: lib.count_nonzero(x), [WITH_ZERO]),
        OpCase("count_nonzero_dim", lambda lib, x: lib.count_nonzero(x, dim=0), [WITH_ZERO]),
        OpCase("count_nonzero_dims", lambda lib, x: x.count_nonzero((0, 1)), [INT]),
        OpCase("sum_int", lambda lib, x: x.sum(1), [INT]),
        OpCase("prod_int", lambda lib, x: x.prod(), [INT]),
        OpCase("cumsum_int", lambda lib, x: x.cumsum(0), [INT]),
        OpCase("cumsum_bool", lambda lib, x: x.cumsum(1), [BOOLS]),
        OpCase("cumprod_int", lambda lib, x: x.cumprod(1), [INT]),
        OpCase("max_int", lambda lib, x: x.max(1), [INT]),
        OpCase("softmax_int_dtype", lambda lib, x: lib.softmax(x, 1, dtype=lib.float32), [INT]),
        OpCase("logsumexp_int", lambda lib, x: lib.logsumexp(x, 1), [INT]),
        OpCase("norm_p0", lambda lib, x: x.norm(p=0), [WITH_ZERO]),
        OpCase("sort_int", lambda lib, x: x.sort(dim=1, descending=True, stable=True), [INT]),
    ]
    # argmax, sort order, bools and integers: compared with torch, nothing to differentiate
    return CASES + thin_gradchecks(NON_DIFF)


def _entry(name: str, *patterns: str, **kwargs) -> OpInfo:
    return OpInfo(name, "reduce", select(_cases, *(patterns or (name,))), **kwargs)


op_db: list[OpInfo] = [
    _entry("sum", "sum", "sum_*", methods=("sum",)),
    _entry("mean", "mean_neg", "mean_0d", methods=("mean",)),
    _entry("prod", "prod", "prod_*", methods=("prod",)),
    _entry("var", "var", "var_dim", "var_dims_keep", "var_unbiased_false", "var_correction", "var_empty", "var_0d", methods=("var",)),
    _entry("std", "std", "std_all_biased", methods=("std",)),
    _entry("var_mean"),
    _entry("std_mean"),
    _entry("max", "max_*", methods=("max",)),
    _entry("min", "min_*", methods=("min",)),
    _entry("amax", "amax", "amax_*", methods=("amax",)),
    _entry("amin", "amin", "amin_ties", methods=("amin",)),
    _entry("logsumexp", "logsumexp", "logsumexp_*", methods=("logsumexp",)),
    _entry("softmax", "softmax", "softmax_*", methods=("softmax",)),
    _entry("log_softmax", "log_softmax", "log_softmax_huge", "log_softmax_empty", methods=("log_softmax",)),
    _entry("cumsum", "cumsum", "cumsum_*", methods=("cumsum",)),
    _entry("cumprod", "cumprod", "cumprod_*", methods=("cumprod",)),
    _entry("norm", "norm", "norm_*", methods=("norm",)),
    _entry("linalg.vector_norm", "linalg_vector_norm"),
    _entry("linalg.matrix_norm", "linalg_matrix_norm", "linalg_matrix_norm_1", "linalg_matrix_norm_inf",
           "linalg_matrix_norm_2", "linalg_matrix_norm_neg2_dims", "linalg_matrix_norm_nuc"),
    _entry("linalg.norm", "linalg_norm", "linalg_norm_vec", "linalg_norm_2"),
    _entry("sort", "sort", "sort_*", methods=("sort",)),
    _entry("topk", "topk", "topk_*", methods=("topk",)),
    _entry("median", "median", "median_*", methods=("median",)),
    _entry("kthvalue", "kthvalue", "kthvalue_0d", methods=("kthvalue",)),
    _entry("nansum", "nansum", "nansum_plain", methods=("nansum",)),
    _entry("nanmean", "nanmean", "nanmean_plain", methods=("nanmean",)),
    _entry("aminmax", "aminmax", "aminmax_all", "aminmax_ties", methods=("aminmax",)),
    _entry("cummax", "cummax", "cummax_ties", "cummax_0d", methods=("cummax",)),
    _entry("cummin", "cummin", "cummin_ties", methods=("cummin",)),
    _entry("dist", "dist", "dist_p3", methods=("dist",)),
    _entry("mode", methods=("mode",)),
    _entry("argmax", "argmax", "argmax_*", methods=("argmax",)),
    _entry("argmin", "argmin_dim", methods=("argmin",)),
    _entry("argsort", "argsort", "argsort_desc", methods=("argsort",)),
    _entry("all", "all", "all_dim", "all_float_dims", methods=("all",)),
    _entry("any", "any_dim_keep", "any_int", methods=("any",)),
    _entry("count_nonzero", "count_nonzero", "count_nonzero_dim", "count_nonzero_dims", methods=("count_nonzero",)),
]


def _sum_to_shape(lib, x, shape):
    # chainrule's name for what torch calls Tensor.sum_to_size
    return lib.sum_to_shape(x, shape) if lib.__name__ == "chainrule" else x.sum_to_size(shape)


def _functional_softmax(name: str) -> OpInfo:
    def samples() -> list[OpCase]:
        return [OpCase(f"F_{name}", lambda lib, x: getattr(lib.nn.functional, name)(x, dim=1), [randn(3, 4)]),
                OpCase(f"F_{name}_dtype", lambda lib, x: getattr(lib.nn.functional, name)(x, -1, dtype=lib.float64),
                       [randn(2, 3, 4, seed=1)])]

    return OpInfo(f"nn.functional.{name}", "reduce", samples)


op_db += [
    OpInfo("sum_to_shape", "reduce", lambda: [
        OpCase("sum_to_shape", lambda lib, x: _sum_to_shape(lib, x, (3, 1)), [randn(2, 3, 4)]),
        OpCase("sum_to_shape_same", lambda lib, x: _sum_to_shape(lib, x, (2, 3)), [randn(2, 3)])]),
    *(_functional_softmax(name) for name in ("softmax", "log_softmax", "softmin")),
]
