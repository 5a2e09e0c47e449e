"""Linear algebra: matmul's shape matrix, einsum equations, products, diagonals — vs torch and
finite differences (gradcheck and gradgradcheck in float64).

The sample-table cases (torch agreement, gradcheck, gradgradcheck) are registry entries in
``chainrule/testing/opinfo/linalg.py``, run by ``test_op_db.py``; the tests here are the hand-written ones.
"""

import numpy as np
import pytest

import chainrule as cr

from .harness import randn

try:
    import torch
except ImportError:  # the oracle; tests needing it are skipped by the harness
    torch = None

pytestmark = pytest.mark.filterwarnings("ignore:torch.chain_matmul is deprecated:UserWarning")


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


def test_matmul_leaves_its_inputs_alone():
    a = cr.randn(4, 3)
    b = cr.randn(3, 2)
    a_array, b_array = a.numpy(), b.numpy()
    a_before, b_before = a_array.copy(), b_array.copy()
    out = a @ b
    np.testing.assert_allclose(out.numpy(), a_before @ b_before, rtol=1e-6)
    # the inputs keep their memory and values; the product is new memory
    assert np.shares_memory(a.numpy(), a_array) and np.shares_memory(b.numpy(), b_array)
    np.testing.assert_array_equal(a_array, a_before)
    np.testing.assert_array_equal(b_array, b_before)
    assert not np.shares_memory(out.numpy(), a_array) and not np.shares_memory(out.numpy(), b_array)


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
    (lambda lib: lib.cross(lib.randn(2, 4), lib.randn(2, 4), dim=1), "inputs dimension 1 must have length 3. Got 4 and 4"),
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
