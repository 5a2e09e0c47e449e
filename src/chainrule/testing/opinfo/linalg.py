"""Linear algebra (chainrule/ops/linalg.py): matmul's shape matrix, einsum equations, products, diagonals, solves."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, cached, noncontig, randn, select


@cached
def _cases() -> list[OpCase]:
    MATMUL_SHAPES = [
        ((3,), (3,)),  # dot
        ((2, 3), (3,)),  # matrix-vector
        ((3,), (3, 4)),  # vector-matrix
        ((2, 3), (3, 4)),  # matrix-matrix
        ((5, 2, 3), (3, 4)),  # batch @ shared matrix
        ((2, 3), (5, 3, 4)),  # shared matrix @ batch
        ((5, 2, 3), (5, 3, 4)),  # batched
        ((2, 1, 2, 3), (5, 3, 4)),  # broadcast batch dims
        ((5, 2, 3), (3,)),  # batch @ vector
        ((3,), (2, 5, 3, 4)),  # vector @ batch
        ((0, 3), (3, 4)),  # zero-size rows
        ((2, 0), (0, 4)),  # zero-size contraction
    ]

    CASES = [OpCase("matmul", lambda lib, a, b: a @ b, [randn(*sa, seed=1), randn(*sb, seed=2)])
             for sa, sb in MATMUL_SHAPES]
    CASES += [
        OpCase("matmul_fn", lambda lib, a, b: lib.matmul(a, b), [noncontig(randn(4, 3)), noncontig(randn(3, 2, seed=1))]),
        OpCase("matmul_strided", lambda lib, a, b: a[:, ::2] @ b[::2].expand(4, 3), [randn(3, 8), randn(7, 1, seed=1)]),
        OpCase("matmul_T", lambda lib, a: a @ a.T, [randn(3, 4)]),
        OpCase("matmul_a_only", lambda lib, a, b: a @ b, [randn(2, 3), randn(3, 4, seed=1)], grad=[True, False]),
        OpCase("matmul_b_only", lambda lib, a, b: a @ b, [randn(2, 3), randn(3, 4, seed=1)], grad=[False, True]),
        OpCase("mm", lambda lib, a, b: lib.mm(a, b), [randn(2, 3), randn(3, 4, seed=1)]),
        OpCase("bmm", lambda lib, a, b: a.bmm(b), [randn(2, 2, 3), randn(2, 3, 4, seed=1)]),
        OpCase("mv", lambda lib, a, b: lib.mv(a, b), [randn(2, 3), randn(3, seed=1)]),
        OpCase("dot", lambda lib, a, b: lib.dot(a, b), [randn(3), randn(3, seed=1)]),
        OpCase("vdot", lambda lib, a, b: lib.vdot(a, b), [randn(3), randn(3, seed=1)]),
        OpCase("outer", lambda lib, a, b: lib.outer(a, b), [randn(3), randn(4, seed=1)]),
        OpCase("ger", lambda lib, a, b: a.ger(b), [randn(3), randn(4, seed=1)]),
        OpCase("inner", lambda lib, a, b: lib.inner(a, b), [randn(2, 3), randn(4, 3, seed=1)]),
        OpCase("inner_1d", lambda lib, a, b: lib.inner(a, b), [randn(3), randn(3, seed=1)]),
        OpCase("inner_0d", lambda lib, a, b: lib.inner(a, b), [randn(), randn(2, 3, seed=1)]),
        OpCase("kron", lambda lib, a, b: lib.kron(a, b), [randn(2, 3), randn(2, 2, seed=1)]),
        OpCase("kron_ndim", lambda lib, a, b: lib.kron(a, b), [randn(3), randn(2, 2, seed=1)]),
        OpCase("tensordot", lambda lib, a, b: lib.tensordot(a, b), [randn(2, 3, 4), randn(3, 4, 5, seed=1)]),
        OpCase("tensordot_int", lambda lib, a, b: lib.tensordot(a, b, dims=1), [randn(2, 3), randn(3, 4, seed=1)]),
        OpCase("tensordot_0", lambda lib, a, b: lib.tensordot(a, b, dims=0), [randn(2), randn(3, seed=1)]),
        OpCase("tensordot_lists", lambda lib, a, b: lib.tensordot(a, b, dims=([0, 2], [2, 0])),
               [randn(4, 3, 2), randn(2, 5, 4, seed=1)]),
        OpCase("addmm", lambda lib, c, a, b: lib.addmm(c, a, b), [randn(4), randn(2, 3, seed=1), randn(3, 4, seed=2)]),
        OpCase("addmm_scaled", lambda lib, c, a, b: c.addmm(a, b, beta=0.5, alpha=2.0),
               [randn(2, 4), randn(2, 3, seed=1), randn(3, 4, seed=2)]),
        OpCase("addmm_beta0", lambda lib, c, a, b: lib.addmm(c, a, b, beta=0), [randn(2, 4), randn(2, 3, seed=1), randn(3, 4, seed=2)]),
        OpCase("addmv", lambda lib, c, a, b: lib.addmv(c, a, b, alpha=0.5), [randn(2), randn(2, 3, seed=1), randn(3, seed=2)]),
        OpCase("baddbmm", lambda lib, c, a, b: lib.baddbmm(c, a, b, beta=2.0), [randn(2, 1, 4), randn(2, 2, 3, seed=1), randn(2, 3, 4, seed=2)]),
        OpCase("addbmm", lambda lib, c, a, b: lib.addbmm(c, a, b), [randn(2, 4), randn(3, 2, 3, seed=1), randn(3, 3, 4, seed=2)]),
        OpCase("addr", lambda lib, c, a, b: lib.addr(c, a, b), [randn(3, 4), randn(3, seed=1), randn(4, seed=2)]),
        OpCase("trace", lambda lib, a: lib.trace(a), [randn(3, 4)]),
        OpCase("trace_method", lambda lib, a: a.trace(), [randn(3, 3)]),
        OpCase("diag_2d", lambda lib, a: lib.diag(a), [randn(3, 4)]),
        OpCase("diag_2d_offset", lambda lib, a: a.diag(-1), [randn(3, 4)]),
        OpCase("diag_1d", lambda lib, a: lib.diag(a), [randn(3)]),
        OpCase("diag_1d_offset", lambda lib, a: lib.diag(a, 2), [randn(3)]),
        OpCase("diagonal", lambda lib, a: a.diagonal(), [randn(3, 4)]),
        OpCase("diagonal_dims", lambda lib, a: lib.diagonal(a, 1, -1, 0), [randn(4, 2, 3)]),
        OpCase("diagonal_empty", lambda lib, a: lib.diagonal(a, 5), [randn(3, 4)]),
        # torch.linalg.diagonal reads the last two dims (torch.diagonal the first two); offset is keyword-only
        OpCase("linalg_diagonal_batch", lambda lib, a: lib.linalg.diagonal(a), [randn(2, 3, 4)]),
        OpCase("linalg_diagonal_offset", lambda lib, a: lib.linalg.diagonal(a, offset=-1, dim1=0), [randn(3, 2, 4)]),
    ]

    SQUARE = randn(3, 3) + 3 * np.eye(3)  # well conditioned
    BATCH_SQUARE = randn(2, 3, 3, seed=4) + 3 * np.eye(3)
    CASES += [
        OpCase("inverse", lambda lib, a: lib.inverse(a), [SQUARE]),
        OpCase("linalg_inv_batch", lambda lib, a: lib.linalg.inv(a), [BATCH_SQUARE]),
        OpCase("det", lambda lib, a: lib.det(a), [SQUARE]),
        OpCase("linalg_det_batch", lambda lib, a: lib.linalg.det(a), [BATCH_SQUARE]),
        OpCase("slogdet", lambda lib, a: tuple(lib.slogdet(a)), [BATCH_SQUARE - 6 * np.eye(3)]),
        OpCase("linalg_slogdet_batch", lambda lib, a: tuple(lib.linalg.slogdet(a)), [BATCH_SQUARE - 6 * np.eye(3)]),
        OpCase("logdet", lambda lib, a: lib.logdet(a), [SQUARE]),
        OpCase("solve_matrix", lambda lib, a, b: lib.linalg.solve(a, b), [SQUARE, randn(3, 2, seed=5)]),
        OpCase("solve_vector", lambda lib, a, b: lib.linalg.solve(a, b), [SQUARE, randn(3, seed=5)]),
        OpCase("solve_batch_vector", lambda lib, a, b: lib.linalg.solve(a, b), [BATCH_SQUARE, randn(2, 3, seed=5)]),
        OpCase("solve_broadcast", lambda lib, a, b: lib.linalg.solve(a, b), [SQUARE, randn(4, 3, 2, seed=5)]),
        OpCase("solve_right", lambda lib, a, b: lib.linalg.solve(a, b, left=False), [SQUARE, randn(2, 3, seed=5)]),
    ]

    CASES += [
        OpCase("cross", lambda lib, a, b: lib.cross(a, b, dim=1), [randn(4, 3), randn(4, 3, seed=1)]),
        OpCase("cross_broadcast", lambda lib, a, b: a.cross(b, dim=-1), [randn(2, 1, 3), randn(1, 4, 3, seed=1)]),
        OpCase("linalg_cross", lambda lib, a, b: lib.linalg.cross(a, b), [randn(5, 3), randn(5, 3, seed=1)]),
        # (torch twice-differentiates cdist only on its p=2 matrix-product path, which these do not take:
        # _cdist_backward has no derivative; test_s51_mendCD checks both paths)
        OpCase("cdist", lambda lib, a, b: lib.cdist(a, b), [randn(4, 3), randn(5, 3, seed=1)], gradgradcheck=False),
        OpCase("cdist_p1_batch", lambda lib, a, b: lib.cdist(a, b, p=1.0), [randn(2, 4, 3, low_gap=0.2), randn(2, 5, 3, seed=1, low_gap=0.2) + 0.05],
               gradgradcheck=False),
        OpCase("cdist_p3", lambda lib, a, b: lib.cdist(a, b, p=3.0), [randn(4, 3), randn(2, 3, seed=1)], gradgradcheck=False),
    ]

    CASES += [
        OpCase("matrix_power_3", lambda lib, a: lib.matrix_power(a, 3), [randn(3, 3) * 0.5]),
        OpCase("matrix_power_batch", lambda lib, a: a.matrix_power(4), [randn(2, 3, 3) * 0.5]),
        OpCase("matrix_power_0", lambda lib, a: lib.linalg.matrix_power(a, 0), [randn(2, 3, 3)]),
        OpCase("matrix_power_neg", lambda lib, a: lib.linalg.matrix_power(a, -2), [SQUARE]),
        OpCase("multi_dot", lambda lib, a, b, c: lib.linalg.multi_dot([a, b, c]), [randn(3), randn(3, 4, seed=1), randn(4, 2, seed=2)]),
        OpCase("multi_dot_vecs", lambda lib, a, b, c: lib.linalg.multi_dot([a, b, c]), [randn(2, 3), randn(3, 4, seed=1), randn(4, seed=2)]),
        OpCase("chain_matmul", lambda lib, a, b: lib.chain_matmul(a, b), [randn(2, 3), randn(3, 4, seed=1)]),
        OpCase("vecdot", lambda lib, a, b: lib.linalg.vecdot(a, b), [randn(2, 3), randn(3, seed=1)]),
        OpCase("vecdot_dim", lambda lib, a, b: lib.linalg.vecdot(a, b, dim=0), [randn(2, 3), randn(2, 3, seed=1)]),
    ]

    EINSUM = [
        ("ij,jk->ik", [(2, 3), (3, 4)]),
        ("ij,jk", [(2, 3), (3, 4)]),  # implicit output
        ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
        ("i,i->", [(3,), (3,)]),
        ("i,j->ij", [(3,), (4,)]),
        ("ij->ji", [(2, 3)]),
        ("ij->", [(2, 3)]),
        ("ij->j", [(2, 3)]),  # summed letter only in the operand: its gradient broadcasts
        ("ii->i", [(3, 3)]),  # diagonal
        ("ii", [(3, 3)]),  # trace
        ("iij->j", [(3, 3, 2)]),
        ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]),  # ellipsis with batch broadcasting
        ("i...,i->...", [(3, 2, 2), (3,)]),
        ("...i,...i", [(2, 3), (3,)]),  # implicit output with ellipsis
        ("i...j,j->i...", [(2, 4, 3), (3,)]),
        ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 2)]),  # three operands
        ("ij,ij->ij", [(3, 1), (3, 4)]),  # size-1 broadcasting of a letter
        ("ij,kj->ik", [(0, 3), (2, 3)]),  # zero size
        ("i,i,i->i", [(3,), (3,), (3,)]),
    ]
    CASES += [OpCase(f"einsum_{eq}", lambda lib, *xs, eq=eq: lib.einsum(eq, *xs),
                     [randn(*s, seed=i) for i, s in enumerate(shapes)]) for eq, shapes in EINSUM]
    CASES.append(OpCase("einsum_list", lambda lib, a, b: lib.einsum("ij,jk->ik", [a, b]), [randn(2, 3), randn(3, 2, seed=1)]))
    CASES.append(OpCase("einsum_sublist", lambda lib, a, b: lib.einsum(a, [0, Ellipsis, 1], b, [1, 2], [Ellipsis, 0, 2]),
                        [randn(2, 4, 3), randn(3, 2, seed=1)]))
    CASES.append(OpCase("einsum_sublist_implicit", lambda lib, a, b: lib.einsum(a, [0, 1], b, [1, 2]),
                        [randn(2, 3), randn(3, 2, seed=1)]))
    CASES.append(OpCase("einsum_spaces", lambda lib, a, b: lib.einsum("i j , j k -> i k", a, b), [randn(2, 3), randn(3, 2, seed=1)]))
    return CASES


def _entry(name: str, *patterns: str, **kwargs) -> OpInfo:
    return OpInfo(name, "linalg", select(_cases, *(patterns or (name,))), **kwargs)


op_db: list[OpInfo] = [
    _entry("matmul", "matmul", "matmul_*", methods=("matmul", "__matmul__", "__rmatmul__")),
    _entry("mm", methods=("mm",)),
    _entry("bmm", methods=("bmm",)),
    _entry("mv", methods=("mv",)),
    _entry("dot", methods=("dot",)),
    _entry("vdot", methods=("vdot",)),
    _entry("outer", methods=("outer",)),
    _entry("ger", methods=("ger",)),
    _entry("inner", "inner", "inner_1d", "inner_0d", methods=("inner",)),
    _entry("kron", "kron", "kron_ndim", methods=("kron",)),
    _entry("tensordot", "tensordot", "tensordot_*"),
    _entry("addmm", "addmm", "addmm_scaled", "addmm_beta0", methods=("addmm",)),
    _entry("addmv", methods=("addmv",)),
    _entry("baddbmm", methods=("baddbmm",)),
    _entry("addbmm", methods=("addbmm",)),
    _entry("addr", methods=("addr",)),
    _entry("trace", "trace", "trace_method", methods=("trace",)),
    _entry("diag", "diag_*", methods=("diag",)),
    _entry("diagonal", "diagonal", "diagonal_dims", "diagonal_empty", methods=("diagonal",)),
    _entry("linalg.diagonal", "linalg_diagonal_*"),
    _entry("inverse", methods=("inverse",)),
    _entry("linalg.inv", "linalg_inv_batch"),
    _entry("det", methods=("det",)),
    _entry("linalg.det", "linalg_det_batch"),
    _entry("slogdet", methods=("slogdet",)),
    _entry("linalg.slogdet", "linalg_slogdet_batch"),
    _entry("logdet", methods=("logdet",)),
    _entry("linalg.solve", "solve_matrix", "solve_vector", "solve_batch_vector", "solve_broadcast", "solve_right"),
    _entry("cross", "cross", "cross_broadcast", methods=("cross",)),
    _entry("linalg.cross", "linalg_cross"),
    _entry("cdist", "cdist", "cdist_p1_batch", "cdist_p3"),
    _entry("matrix_power", "matrix_power_3", "matrix_power_batch", methods=("matrix_power",)),
    _entry("linalg.matrix_power", "matrix_power_0", "matrix_power_neg"),
    _entry("linalg.multi_dot", "multi_dot", "multi_dot_vecs"),
    _entry("chain_matmul"),
    _entry("linalg.vecdot", "vecdot", "vecdot_dim"),
    _entry("einsum", "einsum_*"),
]


# ---- linalg.eig / eigvals: each eigenvector is defined up to a phase e^{iφ}, so the samples return
# phase-free functions of them (their moduli), and the eigenvalues as (real, imag) pairs (their order
# is LAPACK geev's in both libraries)
def _eig_cases() -> list[OpCase]:
    COMPLEX = randn(3, 3, seed=21) + 1j * randn(3, 3, seed=22)
    return [
        OpCase("linalg_eig", lambda lib, a: (lambda w, v: (lib.view_as_real(w), v.abs()))(*lib.linalg.eig(a)),
               [randn(2, 4, 4, seed=20)]),
        OpCase("linalg_eig_complex", lambda lib, a: (lambda w, v: (lib.view_as_real(w), v.abs()))(*lib.linalg.eig(a)),
               [COMPLEX]),
        OpCase("linalg_eig_empty_batch", lambda lib, a: (lambda w, v: (lib.view_as_real(w), v.abs()))(*lib.linalg.eig(a)),
               [randn(0, 3, 3)], grad=[False]),  # torch's backward of an empty batch raises (a stride check)
        OpCase("linalg_eigvals", lambda lib, a: lib.view_as_real(lib.linalg.eigvals(a)),
               [randn(3, 3, 3, seed=23)]),
        OpCase("linalg_eigvals_complex", lambda lib, a: lib.linalg.eigvals(a).abs(), [COMPLEX]),
    ]


op_db += [
    OpInfo("linalg.eig", "linalg", select(_eig_cases, "linalg_eig", "linalg_eig_complex", "linalg_eig_empty_batch")),
    OpInfo("linalg.eigvals", "linalg", select(_eig_cases, "linalg_eigvals*")),
]


# ---- geqrf (LAPACK's packed QR; no derivative, as torch's), ormqr (its Q applied, differentiable), vander
def _householder_cases() -> list[OpCase]:
    tall = randn(4, 3, seed=30)
    packed, tau = np.linalg.qr(tall, mode="raw")  # geqrf's output, transposed
    packed = np.ascontiguousarray(packed.T)
    return [
        OpCase("geqrf", lambda lib, a: tuple(lib.geqrf(a)), [randn(2, 4, 3, seed=31)], grad=[False]),
        OpCase("geqrf_wide_method", lambda lib, a: tuple(a.geqrf()), [randn(3, 5, seed=32)], grad=[False]),
        OpCase("ormqr_left", lambda lib, a, t, c: lib.ormqr(a, t, c), [packed, tau, randn(4, 2, seed=33)]),
        OpCase("ormqr_right_transpose_method", lambda lib, a, t, c: a.ormqr(t, c, left=False, transpose=True),
               [packed, tau, randn(3, 4, seed=34)]),
        # torch 2.13's own vander backward fails its in-place version check (a saved view it then writes), so
        # only values are compared here; tests/compat/test_names_s7.py gradchecks chainrule's
        OpCase("vander", lambda lib, x: lib.vander(x), [randn(4, seed=35)], grad=[False]),
        OpCase("vander_increasing_N", lambda lib, x: lib.vander(x, N=3, increasing=True), [randn(3, seed=36)],
               grad=[False]),
    ]


op_db += [
    # no gradient: torch records geqrf and raises in its backward, and so does chainrule (tests/ops/test_linalg_eig.py)
    OpInfo("geqrf", "linalg", select(_householder_cases, "geqrf*"), methods=("geqrf",), supports_autograd=False),
    OpInfo("ormqr", "linalg", select(_householder_cases, "ormqr*"), methods=("ormqr",)),
    OpInfo("vander", "linalg", select(_householder_cases, "vander*")),
]


# ---- linalg.ldl_factor(_ex) / ldl_solve: LAPACK's Bunch-Kaufman LDLᵀ; no derivative in torch (its
# backward raises, as chainrule's), so the samples compare values only
def _ldl_cases() -> list[OpCase]:
    def symmetric(seed: int, *batch: int, small_diagonal: bool = False):
        a = randn(*batch, 5, 5, seed=seed)
        a = a + np.swapaxes(a, -1, -2)
        if small_diagonal:  # forces 2x2 pivots
            a[..., np.arange(5), np.arange(5)] *= 0.01
        return a

    return [
        OpCase("linalg_ldl_factor", lambda lib, a: tuple(lib.linalg.ldl_factor(a)), [symmetric(70)], grad=[False]),
        OpCase("linalg_ldl_factor_two_by_two", lambda lib, a: tuple(lib.linalg.ldl_factor(a)),
               [symmetric(71, small_diagonal=True)], grad=[False]),
        OpCase("linalg_ldl_factor_ex_batch", lambda lib, a: tuple(lib.linalg.ldl_factor_ex(a)), [symmetric(72, 3)],
               grad=[False]),
        OpCase("linalg_ldl_solve", lambda lib, a, b: lib.linalg.ldl_solve(*lib.linalg.ldl_factor(a), b),
               [symmetric(73, 2, small_diagonal=True), randn(2, 5, 3, seed=74)], grad=[False, False]),
    ]


op_db += [
    OpInfo("linalg.ldl_factor", "linalg", select(_ldl_cases, "linalg_ldl_factor", "linalg_ldl_factor_two_by_two"),
           supports_autograd=False),
    OpInfo("linalg.ldl_factor_ex", "linalg", select(_ldl_cases, "linalg_ldl_factor_ex*"), supports_autograd=False),
    OpInfo("linalg.ldl_solve", "linalg", select(_ldl_cases, "linalg_ldl_solve"), supports_autograd=False),
]
