"""Linear algebra: matmul's shape matrix, einsum equations, products, diagonals — vs torch and
finite differences (gradcheck and gradgradcheck in float64)."""

import numpy as np
import pytest

import chainrule as cr

from .harness import OpCase, check_gradients, compare_with_torch, noncontig, parametrize, randn

try:
    import torch
except ImportError:  # the oracle; tests needing it are skipped by the harness
    torch = None

pytestmark = pytest.mark.filterwarnings("ignore:torch.chain_matmul is deprecated:UserWarning")

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
]

SQUARE = randn(3, 3) + 3 * np.eye(3)  # well conditioned
BATCH_SQUARE = randn(2, 3, 3, seed=4) + 3 * np.eye(3)
CASES += [
    OpCase("inverse", lambda lib, a: lib.inverse(a), [SQUARE]),
    OpCase("linalg_inv_batch", lambda lib, a: lib.linalg.inv(a), [BATCH_SQUARE]),
    OpCase("det", lambda lib, a: lib.det(a), [SQUARE]),
    OpCase("linalg_det_batch", lambda lib, a: lib.linalg.det(a), [BATCH_SQUARE]),
    OpCase("slogdet", lambda lib, a: tuple(lib.slogdet(a)), [BATCH_SQUARE - 6 * np.eye(3)]),
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
    OpCase("cdist", lambda lib, a, b: lib.cdist(a, b), [randn(4, 3), randn(5, 3, seed=1)]),
    OpCase("cdist_p1_batch", lambda lib, a, b: lib.cdist(a, b, p=1.0), [randn(2, 4, 3, low_gap=0.2), randn(2, 5, 3, seed=1, low_gap=0.2) + 0.05]),
    OpCase("cdist_p3", lambda lib, a, b: lib.cdist(a, b, p=3.0), [randn(4, 3), randn(2, 3, seed=1)]),
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


@parametrize(CASES)
def test_matches_torch(case):
    compare_with_torch(case)


@parametrize(CASES)
def test_gradcheck(case):
    check_gradients(case)


def test_matmul_output_dtype_and_nodes():
    a = cr.randn(2, 3, requires_grad=True)
    b = cr.randn(3, 4)
    out = a @ b
    assert out.dtype is cr.float32
    assert type(out.grad_fn).__name__ == "MmBackward0"
    assert type(cr.bmm(cr.randn(2, 2, 3, requires_grad=True), cr.randn(2, 3, 1)).grad_fn).__name__ == "BmmBackward0"
    assert type(cr.dot(cr.randn(3, requires_grad=True), cr.randn(3)).grad_fn).__name__ == "DotBackward0"
    assert (cr.ones(2, 3, dtype=cr.int64) @ cr.ones(3, 2, dtype=cr.int64)).tolist() == [[3, 3], [3, 3]]


def test_matmul_gradient_of_sum_is_right():
    # sum().backward() hands matmul a stride-0 gradient: it must still be right (and use BLAS)
    a0, b0 = randn(5, 7), randn(7, 3, seed=1)
    a = cr.tensor(a0, requires_grad=True)
    b = cr.tensor(b0, requires_grad=True)
    (a @ b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.ones((5, 3)) @ b0.T, rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), a0.T @ np.ones((5, 3)), rtol=1e-5)


def test_matmul_does_not_copy_inputs():
    a = cr.randn(4, 3)
    b = cr.randn(3, 2)
    out = a @ b
    np.testing.assert_allclose(out.numpy(), a.numpy() @ b.numpy(), rtol=1e-6)
    assert a.numpy().base is None and b.numpy().base is None  # inputs untouched


@pytest.mark.parametrize("fn, match", [
    (lambda lib: lib.randn(2, 3) @ lib.randn(4, 5), r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"),
    (lambda lib: lib.mm(lib.randn(2, 3), lib.randn(4, 5)), r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"),
    (lambda lib: lib.mm(lib.randn(2, 3, 1), lib.randn(4, 5)), "self must be a matrix"),
    (lambda lib: lib.randn(3) @ lib.randn(4), "inconsistent tensor size"),
    (lambda lib: lib.randn(2, 3) @ lib.randn(4), r"size mismatch, got input \(2\), mat \(2x3\), vec \(4\)"),
    (lambda lib: lib.randn(3) @ lib.randn(4, 2), r"mat1 and mat2 shapes cannot be multiplied \(1x3 and 4x2\)"),
    (lambda lib: lib.randn(2, 2, 3) @ lib.randn(3, 4, 2), r"must match the size of tensor b"),
    (lambda lib: lib.randn(2, 2, 3) @ lib.randn(2, 4, 2), r"Expected size for first two dimensions of batch2"),
    (lambda lib: lib.tensor(1.0) @ lib.randn(4, 2), "both arguments to matmul need to be at least 1D, but they are 0D and 2D"),
    (lambda lib: lib.randn(2, 3) @ lib.randn(3, 2).double(), "expected m1 and m2 to have the same dtype"),
    (lambda lib: lib.bmm(lib.randn(2, 2, 3), lib.randn(3, 3, 2)), r"Expected size for first two dimensions of batch2 tensor to be: \[2, 3\] but got: \[3, 3\]"),
    (lambda lib: lib.bmm(lib.randn(2, 3), lib.randn(2, 4, 2)), "batch1 must be a 3D tensor"),
    (lambda lib: lib.mv(lib.randn(2, 3), lib.randn(4)), "size mismatch"),
    (lambda lib: lib.dot(lib.randn(3, 1), lib.randn(4)), "1D tensors expected, but got 2D and 1D tensors"),
    (lambda lib: lib.dot(lib.randn(3), lib.randn(4)), "inconsistent tensor size"),
    (lambda lib: lib.trace(lib.randn(3, 1, 2)), "trace: expected a matrix, but got tensor with dim 3"),
    (lambda lib: lib.einsum("ij,jk->ik", lib.randn(2, 3), lib.randn(4, 5)), "subscript j has size 4 for operand 1"),
    (lambda lib: lib.einsum("ij,jk", lib.randn(2, 3)), "fewer operands were provided than specified"),
    (lambda lib: lib.einsum("ij", lib.randn(2, 3), lib.randn(2)), "more operands were provided than specified"),
    (lambda lib: lib.einsum("ijk", lib.randn(2, 3)), "does not match the number of dimensions"),
    (lambda lib: lib.einsum("ij->k", lib.randn(2, 3)), "output subscript k does not appear"),
    (lambda lib: lib.diag(lib.randn(2, 2, 2)), "diag"),
    (lambda lib: lib.tensordot(lib.randn(2, 3), lib.randn(4, 5), dims=1), "contracted dimensions need to match"),
    (lambda lib: lib.linalg.inv(lib.randn(2, 3)), "must be batches of square matrices"),
    (lambda lib: lib.cross(lib.randn(2, 4), lib.randn(2, 4), dim=1), "must be 3"),
    (lambda lib: lib.cross(lib.randn(2, 3), lib.randn(3), dim=-1), "same number of dimensions"),
    (lambda lib: lib.cdist(lib.randn(2, 4), lib.randn(3, 5)), "same number of columns"),
    (lambda lib: lib.linalg.inv(lib.zeros(3, 3)), "singular"),
    (lambda lib: lib.det(lib.randn(3)), "at least 2 dimensions"),
    (lambda lib: lib.linalg.solve(lib.eye(3), lib.randn(4, 2)), "Incompatible shapes of A and B"),
])
def test_errors_match_torch(fn, match):
    with pytest.raises(RuntimeError, match=match):
        fn(cr)
    if torch is not None:
        with pytest.raises(RuntimeError):
            fn(torch)


def test_einsum_second_order_through_repeated_subscripts():
    x = cr.tensor(randn(3, 3), dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradgradcheck(lambda t: cr.einsum("ii,ij->j", t, t), [x])


def test_matmul_create_graph_hessian_vector():
    a = cr.tensor(randn(3, 3), dtype=cr.float64, requires_grad=True)
    (g,) = cr.autograd.grad((a @ a).sum(), a, create_graph=True)
    (h,) = cr.autograd.grad(g.sum(), a)
    ones = np.ones((3, 3))
    # d/dA sum(A A) = 1 A^T + A^T 1; its sum's gradient is 2 * (1 1^T) summed appropriately
    expected = (ones @ ones.T) + (ones.T @ ones)
    np.testing.assert_allclose(h.numpy(), expected)
