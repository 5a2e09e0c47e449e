"""Decompositions (chainrule/ops/decompositions.py): cholesky, triangular solves, qr, eigh, svd,
pinv, lstsq, matrix_rank, cond, lu, matrix_exp, vander.

A factorization reads one triangle of its input (cholesky, eigh) while torch's gradient is
symmetric, so the finite-difference checks differentiate through a symmetric input built inside
the sample (``a @ a.mT + 3 I`` or ``a + a.mT``); a "raw" case of each compares torch's symmetric
gradient directly, without gradcheck. Eigen- and singular vectors are defined up to sign, so the
samples return sign-free functions of them (squares, reconstructions).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .core import OpCase, OpInfo, cached, randn, select


def _spd(lib, a):
    """A symmetric positive-definite matrix that depends smoothly on every entry of ``a``."""
    return a @ a.mT + 3 * lib.eye(a.shape[-1], dtype=a.dtype)


def _sym(a):
    return a + a.mT


def _square_free(lib, U, S, Vh):
    """Sign-free functions of an SVD: U diag(S) Vh, S, and the squared singular vectors. (The
    reconstruction is scaled so that its node is a product's in both libraries: the node of a
    batched matmul is named after torch's internal folding.)"""
    k = S.shape[-1]
    U, Vh = U[..., :, :k], Vh[..., :k, :]
    return ((U * S.unsqueeze(-2)) @ Vh) * 2, S, U * U, Vh * Vh


@cached
def _cases() -> list[OpCase]:
    SPD = randn(3, 3) @ randn(3, 3).T + 3 * np.eye(3)
    TRI = randn(2, 3, 3, seed=1) + 3 * np.eye(3)  # well conditioned in either triangle
    CASES = [
        OpCase("linalg_cholesky", lambda lib, a: lib.linalg.cholesky(_spd(lib, a)), [randn(3, 3)]),
        OpCase("linalg_cholesky_batch_upper", lambda lib, a: lib.linalg.cholesky(_spd(lib, a), upper=True),
               [randn(2, 3, 3, seed=1)]),
        OpCase("linalg_cholesky_empty_batch", lambda lib, a: lib.linalg.cholesky(_spd(lib, a)), [randn(0, 3, 3)]),
        OpCase("linalg_cholesky_raw", lambda lib, a: lib.linalg.cholesky(a), [SPD], gradcheck=False),
        OpCase("linalg_cholesky_ex", lambda lib, a: tuple(lib.linalg.cholesky_ex(_spd(lib, a))), [randn(2, 3, 3)]),
        OpCase("cholesky", lambda lib, a: lib.cholesky(_spd(lib, a)), [randn(3, 3)]),
        OpCase("cholesky_method_upper", lambda lib, a: _spd(lib, a).cholesky(upper=True), [randn(3, 3, seed=2)]),
        OpCase("cholesky_solve", lambda lib, b, a: lib.cholesky_solve(b, lib.linalg.cholesky(_spd(lib, a))),
               [randn(3, 2), randn(3, 3, seed=1)]),
        OpCase("cholesky_solve_upper_broadcast",
               lambda lib, b, a: b.cholesky_solve(lib.linalg.cholesky(_spd(lib, a), upper=True), upper=True),
               [randn(2, 3, 2), randn(3, 3, seed=1)]),
        OpCase("cholesky_solve_raw", lambda lib, b, L: lib.cholesky_solve(b, L),
               [randn(2, 3, 2), np.linalg.cholesky(SPD)], gradcheck=False),
        OpCase("cholesky_inverse", lambda lib, a: lib.cholesky_inverse(lib.linalg.cholesky(_spd(lib, a))),
               [randn(2, 3, 3)]),
        OpCase("cholesky_inverse_upper",
               lambda lib, a: lib.linalg.cholesky(_spd(lib, a), upper=True).cholesky_inverse(upper=True),
               [randn(3, 3)]),
        OpCase("solve_triangular_lower", lambda lib, a, b: lib.linalg.solve_triangular(a, b, upper=False),
               [TRI, randn(2, 3, 2, seed=2)]),
        OpCase("solve_triangular_upper_unit",
               lambda lib, a, b: lib.linalg.solve_triangular(a, b, upper=True, unitriangular=True),
               [TRI, randn(2, 3, 4, seed=2)]),
        OpCase("solve_triangular_right", lambda lib, a, b: lib.linalg.solve_triangular(a, b, upper=True, left=False),
               [TRI, randn(2, 4, 3, seed=2)]),
        OpCase("solve_triangular_broadcast", lambda lib, a, b: lib.linalg.solve_triangular(a, b, upper=False),
               [TRI[0], randn(2, 3, 2, seed=2)]),
        OpCase("solve_triangular_empty_batch", lambda lib, a, b: lib.linalg.solve_triangular(a, b, upper=True),
               [randn(0, 3, 3) + 3 * np.eye(3), randn(0, 3, 2, seed=2)]),
    ]
    CASES += [
        OpCase("linalg_qr_tall", lambda lib, a: tuple(lib.linalg.qr(a)), [randn(2, 4, 3)]),
        OpCase("linalg_qr_square", lambda lib, a: tuple(lib.linalg.qr(a)), [randn(3, 3, seed=1)]),
        OpCase("linalg_qr_wide", lambda lib, a: tuple(lib.linalg.qr(a)), [randn(2, 3, 5, seed=2)]),
        OpCase("linalg_qr_complete_wide", lambda lib, a: tuple(lib.linalg.qr(a, mode="complete")), [randn(3, 4, seed=3)]),
        OpCase("linalg_qr_r", lambda lib, a: lib.linalg.qr(a, mode="r")[1], [randn(4, 3)], grad=[False]),
        OpCase("linalg_qr_empty_batch", lambda lib, a: tuple(lib.linalg.qr(a)), [randn(0, 4, 3)]),
        OpCase("qr", lambda lib, a: tuple(lib.qr(a)), [randn(4, 3, seed=4)]),
        OpCase("qr_method_complete", lambda lib, a: tuple(a.qr(some=False)), [randn(3, 3, seed=5)]),
    ]
    CASES += [
        OpCase("linalg_eigh", lambda lib, a: (lambda w, v: (w, v * v))(*lib.linalg.eigh(_sym(a))), [randn(2, 3, 3)]),
        OpCase("linalg_eigh_upper", lambda lib, a: (lambda w, v: (w, v * v))(*lib.linalg.eigh(_sym(a), UPLO="U")),
               [randn(4, 4, seed=1)]),
        OpCase("linalg_eigh_raw", lambda lib, a: (lambda w, v: (w, v * v))(*lib.linalg.eigh(a)), [SPD],
               gradcheck=False),
        OpCase("linalg_eigh_empty_batch", lambda lib, a: (lambda w, v: (w, v * v))(*lib.linalg.eigh(_sym(a))),
               [randn(0, 3, 3)]),
        OpCase("linalg_eigvalsh", lambda lib, a: lib.linalg.eigvalsh(_sym(a)), [randn(2, 3, 3, seed=2)]),
        OpCase("linalg_eigvalsh_upper_raw", lambda lib, a: lib.linalg.eigvalsh(a, UPLO="U"), [SPD], gradcheck=False),
    ]
    CASES += [
        OpCase("linalg_svd_tall", lambda lib, a: _square_free(lib, *lib.linalg.svd(a, full_matrices=False)),
               [randn(2, 4, 3)]),
        OpCase("linalg_svd_wide", lambda lib, a: _square_free(lib, *lib.linalg.svd(a, full_matrices=False)),
               [randn(3, 5, seed=1)]),
        OpCase("linalg_svd_full", lambda lib, a: _square_free(lib, *lib.linalg.svd(a)), [randn(2, 4, 3, seed=2)],
               gradgradcheck=False),  # the same second-order path as linalg_svd_tall, at twice the cost
        OpCase("linalg_svd_empty_batch", lambda lib, a: _square_free(lib, *lib.linalg.svd(a, full_matrices=False)),
               [randn(0, 3, 2)]),
        OpCase("linalg_svdvals", lambda lib, a: lib.linalg.svdvals(a), [randn(2, 3, 4, seed=3)]),
        OpCase("svd", lambda lib, a: (lambda u, s, v: _square_free(lib, u, s, v.mT))(*lib.svd(a)), [randn(4, 3, seed=4)]),
        OpCase("svd_method_full", lambda lib, a: (lambda u, s, v: _square_free(lib, u, s, v.mT))(*a.svd(some=False)),
               [randn(2, 3, 4, seed=5)], gradgradcheck=False),
        OpCase("svd_no_uv", lambda lib, a: tuple(lib.svd(a, compute_uv=False)), [randn(3, 2, seed=6)]),
    ]
    CASES += [
        OpCase("linalg_pinv_tall", lambda lib, a: lib.linalg.pinv(a), [randn(2, 4, 3)]),
        OpCase("linalg_pinv_wide", lambda lib, a: lib.linalg.pinv(a), [randn(3, 5, seed=1)]),
        OpCase("linalg_pinv_hermitian", lambda lib, a: lib.linalg.pinv(_sym(a), hermitian=True), [randn(3, 3, seed=2)]),
        OpCase("linalg_pinv_atol", lambda lib, a: lib.linalg.pinv(a, atol=1e-3), [randn(4, 3, seed=3)]),
        OpCase("pinverse", lambda lib, a: lib.pinverse(a), [randn(3, 4, seed=4)]),
        OpCase("pinverse_method", lambda lib, a: a.pinverse(), [randn(2, 3, 3, seed=5)]),
        OpCase("linalg_lstsq", lambda lib, a, b: tuple(lib.linalg.lstsq(a, b))[:3:2], [randn(2, 5, 3), randn(2, 5, 2, seed=1)]),
        OpCase("linalg_lstsq_gelsd", lambda lib, a, b: tuple(lib.linalg.lstsq(a, b, driver="gelsd")),
               [randn(5, 3, seed=2), randn(5, 2, seed=3)], grad=[False, False]),
        OpCase("linalg_lstsq_gelsd_grad", lambda lib, a, b: lib.linalg.lstsq(a, b, driver="gelsd").solution,
               [randn(3, 4, seed=2), randn(3, 2, seed=3)]),
        OpCase("linalg_matrix_rank", lambda lib, a: lib.linalg.matrix_rank(a), [randn(2, 4, 3)]),
        OpCase("linalg_matrix_rank_deficient", lambda lib, a: lib.linalg.matrix_rank(a @ a.mT), [randn(2, 4, 2)]),
        OpCase("linalg_matrix_rank_hermitian_atol",
               lambda lib, a: lib.linalg.matrix_rank(_sym(a), hermitian=True, atol=1.0), [randn(4, 4, seed=1)]),
        OpCase("linalg_cond", lambda lib, a: lib.linalg.cond(a), [randn(2, 3, 3) + 3 * np.eye(3)]),
        OpCase("linalg_cond_minus2", lambda lib, a: lib.linalg.cond(a, -2), [randn(3, 4, seed=1)]),
    ]
    WELL = randn(2, 3, 3, seed=7) + 2 * np.eye(3)
    CASES += [
        OpCase("linalg_lu_factor", lambda lib, a: tuple(lib.linalg.lu_factor(a)), [WELL]),
        OpCase("linalg_lu_factor_tall", lambda lib, a: tuple(lib.linalg.lu_factor(a)), [randn(4, 3, seed=1)]),
        OpCase("linalg_lu_factor_wide", lambda lib, a: tuple(lib.linalg.lu_factor(a)), [randn(2, 3, 5, seed=2)]),
        OpCase("linalg_lu_factor_empty_batch", lambda lib, a: tuple(lib.linalg.lu_factor(a)), [randn(0, 3, 3)]),
        OpCase("linalg_lu_factor_ex", lambda lib, a: tuple(lib.linalg.lu_factor_ex(a)), [WELL]),
        OpCase("linalg_lu", lambda lib, a: tuple(lib.linalg.lu(a)), [WELL]),
        OpCase("linalg_lu_tall", lambda lib, a: tuple(lib.linalg.lu(a)), [randn(2, 5, 3, seed=3)]),
        OpCase("linalg_lu_wide", lambda lib, a: tuple(lib.linalg.lu(a)), [randn(3, 4, seed=4)]),
        OpCase("linalg_lu_solve", lambda lib, a, b: lib.linalg.lu_solve(*lib.linalg.lu_factor(a), b),
               [WELL, randn(2, 3, 2, seed=5)]),
        # (the second derivatives of lu_solve's triangular solves are checked once, in linalg_lu_solve)
        OpCase("linalg_lu_solve_adjoint", lambda lib, a, b: lib.linalg.lu_solve(*lib.linalg.lu_factor(a), b, adjoint=True),
               [WELL, randn(3, 4, seed=5)], gradgradcheck=False),
        OpCase("linalg_lu_solve_right",
               lambda lib, a, b: lib.linalg.lu_solve(*lib.linalg.lu_factor(a), b, left=False, adjoint=True),
               [WELL[0], randn(2, 2, 3, seed=6)], gradgradcheck=False),
    ]
    CASES += [
        OpCase("linalg_matrix_exp", lambda lib, a: lib.linalg.matrix_exp(a), [randn(3, 3)]),
        OpCase("linalg_matrix_exp_scaled", lambda lib, a: lib.linalg.matrix_exp(a), [4 * randn(2, 4, 4, seed=1)],
               rtol=1e-3),
        OpCase("linalg_matrix_exp_empty_batch", lambda lib, a: lib.linalg.matrix_exp(a), [randn(0, 3, 3)]),
        OpCase("matrix_exp", lambda lib, a: lib.matrix_exp(a), [randn(2, 2, 2, seed=2)]),
        OpCase("matrix_exp_method", lambda lib, a: a.matrix_exp(), [randn(3, 3, seed=3)]),
        OpCase("linalg_vander", lambda lib, x: lib.linalg.vander(x), [randn(2, 3)]),
        OpCase("linalg_vander_N", lambda lib, x: lib.linalg.vander(x, N=5), [randn(4, seed=1)]),
    ]
    return CASES


def _entry(name: str, *patterns: str, **kwargs) -> OpInfo:
    return OpInfo(name, "decompositions", select(_cases, *(patterns or (name.replace(".", "_"),))), **kwargs)


op_db: list[OpInfo] = [
    _entry("linalg.cholesky", "linalg_cholesky", "linalg_cholesky_batch_upper", "linalg_cholesky_empty_batch",
           "linalg_cholesky_raw"),
    _entry("linalg.cholesky_ex"),
    _entry("cholesky", "cholesky", "cholesky_method_upper", methods=("cholesky",)),
    _entry("cholesky_solve", "cholesky_solve*", methods=("cholesky_solve",)),
    _entry("cholesky_inverse", "cholesky_inverse*", methods=("cholesky_inverse",)),
    _entry("linalg.solve_triangular", "solve_triangular_*"),
    _entry("linalg.qr", "linalg_qr_*"),
    _entry("qr", "qr", "qr_method_complete", methods=("qr",)),
    _entry("linalg.eigh", "linalg_eigh*"),
    _entry("linalg.eigvalsh", "linalg_eigvalsh*"),
    _entry("linalg.svd", "linalg_svd_*"),
    _entry("linalg.svdvals"),
    _entry("svd", "svd", "svd_method_full", "svd_no_uv", methods=("svd",)),
    _entry("linalg.pinv", "linalg_pinv_*"),
    _entry("pinverse", "pinverse*", methods=("pinverse",)),
    _entry("linalg.lstsq", "linalg_lstsq*"),
    _entry("linalg.matrix_rank", "linalg_matrix_rank*", supports_autograd=False),
    _entry("linalg.cond", "linalg_cond*"),
    _entry("linalg.lu_factor", "linalg_lu_factor", "linalg_lu_factor_tall", "linalg_lu_factor_wide",
           "linalg_lu_factor_empty_batch"),
    _entry("linalg.lu_factor_ex"),
    _entry("linalg.lu", "linalg_lu", "linalg_lu_tall", "linalg_lu_wide"),
    _entry("linalg.lu_solve", "linalg_lu_solve*"),
    _entry("linalg.matrix_exp", "linalg_matrix_exp*"),
    _entry("matrix_exp", "matrix_exp", "matrix_exp_method", methods=("matrix_exp",)),
    _entry("linalg.vander", "linalg_vander*"),
]


# ---- s6 names: the *_ex forms, tensor inverses, Householder products, torch's older lu/solve names
def _s6_cases() -> list[OpCase]:
    WELL = randn(3, 3, seed=11) + 3 * np.eye(3)
    BATCH = randn(2, 3, 3, seed=12) + 3 * np.eye(3)
    SINGULAR = np.stack([np.eye(3) * 2, np.zeros((3, 3))])
    return [
        OpCase("linalg_inv_ex", lambda lib, a: tuple(lib.linalg.inv_ex(a)), [WELL]),
        OpCase("linalg_inv_ex_batch", lambda lib, a: tuple(lib.linalg.inv_ex(a, check_errors=True)), [BATCH]),
        OpCase("linalg_inv_ex_singular_info", lambda lib, a: lib.linalg.inv_ex(a).info, [SINGULAR],
               grad=[False]),
        OpCase("linalg_solve_ex", lambda lib, a, b: tuple(lib.linalg.solve_ex(a, b)), [WELL, randn(3, 2, seed=13)]),
        OpCase("linalg_solve_ex_vector_right", lambda lib, a, b: lib.linalg.solve_ex(a, b, left=False).result,
               [BATCH, randn(2, 4, 3, seed=14)]),
        OpCase("linalg_tensorinv", lambda lib, a: lib.linalg.tensorinv(a, ind=2),
               [(randn(6, 6, seed=15) + 4 * np.eye(6)).reshape(2, 3, 6)]),
        OpCase("linalg_tensorinv_ind1", lambda lib, a: lib.linalg.tensorinv(a, 1),
               [(randn(6, 6, seed=16) + 4 * np.eye(6)).reshape(6, 2, 3)]),
        OpCase("linalg_tensorsolve", lambda lib, a, b: lib.linalg.tensorsolve(a, b),
               [(randn(6, 6, seed=17) + 4 * np.eye(6)).reshape(2, 3, 6), randn(2, 3, seed=18)]),
        OpCase("linalg_tensorsolve_dims", lambda lib, a, b: lib.linalg.tensorsolve(a, b, dims=(0,)),
               [(randn(6, 6, seed=19) + 4 * np.eye(6)).reshape(6, 2, 3), randn(2, 3, seed=20)]),
        OpCase("linalg_householder_product", lambda lib, a, t: lib.linalg.householder_product(a, t),
               [randn(4, 3, seed=21), randn(2, seed=22)]),
        OpCase("linalg_householder_product_batch", lambda lib, a, t: lib.linalg.householder_product(a, t),
               [randn(2, 3, 3, seed=23), randn(2, 3, seed=24)]),
        OpCase("orgqr", lambda lib, a, t: lib.orgqr(a, t), [randn(4, 2, seed=25), randn(2, seed=26)]),
        OpCase("orgqr_method", lambda lib, a, t: a.orgqr(t), [randn(3, 3, seed=27), randn(1, seed=28)]),
        OpCase("lu_unpack", lambda lib, a: tuple(lib.lu_unpack(*lib.linalg.lu_factor(a))), [WELL]),
        OpCase("lu_unpack_wide_batch", lambda lib, a: tuple(lib.lu_unpack(*lib.linalg.lu_factor(a))),
               [randn(2, 3, 4, seed=29)]),
        OpCase("lu_unpack_tall", lambda lib, a: tuple(lib.lu_unpack(*lib.linalg.lu_factor(a))), [randn(4, 2, seed=30)]),
        OpCase("lu", lambda lib, a: tuple(lib.lu(a)), [WELL]),
        OpCase("lu_method_infos", lambda lib, a: tuple(a.lu(get_infos=True)), [BATCH]),
        OpCase("lu_solve", lambda lib, b, a: lib.lu_solve(b, *lib.linalg.lu_factor(a)), [randn(3, 2, seed=31), WELL]),
        OpCase("lu_solve_method", lambda lib, b, a: b.lu_solve(*lib.linalg.lu_factor(a)), [randn(2, 3, 1, seed=32), BATCH]),
        OpCase("triangular_solve", lambda lib, b, a: tuple(lib.triangular_solve(b, a)), [randn(3, 2, seed=33), WELL]),
        OpCase("triangular_solve_lower_transposed_unit",
               lambda lib, b, a: tuple(b.triangular_solve(a, upper=False, transpose=True, unitriangular=True)),
               [randn(2, 3, 4, seed=34), BATCH]),
        OpCase("nuclear_norm", lambda lib, a: lib.nuclear_norm(a), [randn(3, 4, seed=35)]),
        OpCase("nuclear_norm_dims_keepdim", lambda lib, a: lib.nuclear_norm(a, (0, 2), keepdim=True),
               [randn(3, 2, 4, seed=36)]),
        OpCase("frobenius_norm", lambda lib, a: lib.frobenius_norm(a, (0, 1)), [randn(3, 4, seed=37)]),
        OpCase("frobenius_norm_keepdim", lambda lib, a: lib.frobenius_norm(a, 1, keepdim=True),
               [randn(2, 3, 4, seed=38)]),
    ]


def _lowrank(lib, function, *args, **kwargs):
    # seeded, so every run (and the device's) draws one sketch; sign-free outputs: the singular
    # values and the reconstruction U diag(S) Vᵀ (scaled, as _square_free's)
    lib.manual_seed(0)
    U, S, V = function(*args, **kwargs)
    return S, ((U * S.unsqueeze(-2)) @ V.mT) * 2


def _lowrank_cases() -> list[OpCase]:
    # q covers the full rank, so the random sketch spans the whole range and the result is exact
    # (the same for torch's draws and ours, and under gradcheck's perturbations)
    cases = [
        OpCase("svd_lowrank", lambda lib, a: _lowrank(lib, lib.svd_lowrank, a, q=3), [randn(5, 3, seed=40)]),
        OpCase("svd_lowrank_wide_batch", lambda lib, a: _lowrank(lib, lib.svd_lowrank, a, q=3, niter=1),
               [randn(2, 3, 4, seed=41)]),
        OpCase("svd_lowrank_M", lambda lib, a, m: _lowrank(lib, lib.svd_lowrank, a, q=3, M=m),
               [randn(4, 3, seed=42), randn(1, 3, seed=43)]),
        OpCase("pca_lowrank", lambda lib, a: _lowrank(lib, lib.pca_lowrank, a, q=3), [randn(6, 3, seed=49)]),
        OpCase("pca_lowrank_uncentered", lambda lib, a: _lowrank(lib, lib.pca_lowrank, a, center=False),
               [randn(3, 5, seed=45)]),
    ]
    # float32 through a random sketch, QR and SVD: the gradients agree with torch's to ~1e-5 relative
    return [dataclasses.replace(c, atol=1e-4, rtol=1e-3) for c in cases]


def _s6(name: str, *patterns: str, **kwargs) -> OpInfo:
    return OpInfo(name, "decompositions", select(_s6_cases, *(patterns or (name.replace(".", "_") + "*",))), **kwargs)


op_db += [
    _s6("linalg.inv_ex"),
    _s6("linalg.solve_ex"),
    _s6("linalg.tensorinv"),
    _s6("linalg.tensorsolve"),
    _s6("linalg.householder_product"),
    _s6("orgqr", methods=("orgqr",)),
    _s6("lu_unpack"),
    _s6("lu", "lu", "lu_method*", methods=("lu",)),
    _s6("lu_solve", methods=("lu_solve",)),
    _s6("triangular_solve", methods=("triangular_solve",)),
    _s6("nuclear_norm"),
    _s6("frobenius_norm"),
    OpInfo("svd_lowrank", "decompositions", select(_lowrank_cases, "svd_lowrank*"), supports_gradgrad=False),
    OpInfo("pca_lowrank", "decompositions", select(_lowrank_cases, "pca_lowrank*"), supports_gradgrad=False),
]
