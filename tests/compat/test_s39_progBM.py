"""Session 39, lane progBM (spectral clustering, temporal point processes, graph autoencoders):
fixes found while writing the lane's programs and probing the APIs around them, each checked
against torch 2.13 on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(array, dtype="float32", requires_grad=False):
    return (torch.tensor(array, dtype=getattr(torch, dtype), requires_grad=requires_grad),
            chainrule.tensor(array, dtype=getattr(chainrule, dtype), requires_grad=requires_grad))


# ---------------------------------------------------------------- solve_triangular, singular A
SINGULAR_LOWER = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [2.0, -1.0, 3.0]])
SINGULAR_CASES = [
    (SINGULAR_LOWER, np.array([[1.0], [2.0], [3.0]]), False, True),
    (SINGULAR_LOWER, np.array([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]]), False, True),
    (SINGULAR_LOWER.T.copy(), np.array([[1.0], [2.0], [3.0]]), True, True),
    (np.array([[2.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, -1.0, 3.0]]), np.array([[1.0], [2.0], [3.0]]), False, True),
    (SINGULAR_LOWER, np.array([[1.0, 2.0, 3.0]]), False, False),
    # a batch in which only the second matrix is singular
    (np.stack([np.tril(np.ones((3, 3))) + np.eye(3), SINGULAR_LOWER]), np.ones((2, 3, 1)), False, True),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("A, B, upper, left", SINGULAR_CASES)
def test_solve_triangular_of_a_singular_matrix_gives_torchs_infs_and_nans(A, B, upper, left, dtype):
    """torch's triangular kernel never checks the diagonal, so a zero on it gives inf/nan;
    chainrule went through LAPACK's general solve and raised NumPy's LinAlgError."""
    (tA, cA), (tB, cB) = _both(A, dtype), _both(B, dtype)
    expected = torch.linalg.solve_triangular(tA, tB, upper=upper, left=left)
    got = chainrule.linalg.solve_triangular(cA, cB, upper=upper, left=left)
    assert str(got.dtype).split(".")[1] == str(expected.dtype).split(".")[1]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, equal_nan=True)
    assert not np.isfinite(expected.numpy()).all()


def test_solve_triangular_of_a_nonsingular_matrix_is_unchanged_by_the_fallback():
    rng = np.random.default_rng(0)
    A = np.tril(rng.standard_normal((4, 4))) + 4 * np.eye(4)
    B = rng.standard_normal((4, 3))
    (tA, cA), (tB, cB) = _both(A, "float64"), _both(B, "float64")
    np.testing.assert_allclose(chainrule.linalg.solve_triangular(cA, cB, upper=False).numpy(),
                               torch.linalg.solve_triangular(tA, tB, upper=False).numpy(), rtol=1e-12)


# ---------------------------------------------------------------- solve_triangular, B of another dtype
@pytest.mark.parametrize("a_dtype, b_dtype", [("float32", "float64"), ("float64", "float32")])
@pytest.mark.parametrize("left", [True, False])
def test_solve_triangular_solves_in_as_dtype_when_b_has_another(a_dtype, b_dtype, left):
    """torch 2.13 solves in A's dtype and hands B its gradient in B's dtype; chainrule refused
    with 'linalg.solve_triangular: Expected b and A to have the same dtype ...'."""
    rng = np.random.default_rng(1)
    A = np.tril(rng.standard_normal((3, 3))) + 3 * np.eye(3)
    B = rng.standard_normal((3, 2) if left else (2, 3))
    (tA, cA), (tB, cB) = _both(A, a_dtype, True), _both(B, b_dtype, True)
    expected = torch.linalg.solve_triangular(tA, tB, upper=False, left=left)
    got = chainrule.linalg.solve_triangular(cA, cB, upper=False, left=left)
    assert str(got.dtype) == str(expected.dtype).replace("torch", "chainrule")
    assert got.grad_fn.name() == expected.grad_fn.name() == "LinalgSolveTriangularBackward0"
    tol = 1e-5 if "float32" in (a_dtype, b_dtype) else 1e-12
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=tol)
    weights = rng.standard_normal(tuple(expected.shape))
    (expected * torch.tensor(weights, dtype=expected.dtype)).sum().backward()
    (got * chainrule.tensor(weights, dtype=got.dtype)).sum().backward()
    for c, t in ((cA, tA), (cB, tB)):
        assert str(c.grad.dtype) == str(t.grad.dtype).replace("torch", "chainrule")
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol)


def test_cholesky_solve_still_refuses_b_of_another_dtype_in_torchs_words():
    A = np.array([[2.0, 0.0], [1.0, 1.0]])
    B = np.ones((2, 1))
    (tA, cA), (tB, cB) = _both(A, "float32"), _both(B, "float64")
    with pytest.raises(RuntimeError) as expected:
        torch.cholesky_solve(tB, tA)
    with pytest.raises(RuntimeError) as got:
        chainrule.cholesky_solve(cB, cA)
    assert str(got.value) == str(expected.value)


# ---------------------------------------------------------------- sparse_coo_tensor of fewer than two entries
@pytest.mark.parametrize("nnz", [0, 1, 2])
@pytest.mark.parametrize("is_coalesced", [None, False, True])
def test_sparse_coo_tensor_of_fewer_than_two_entries_is_coalesced_as_in_torch(nnz, is_coalesced):
    """torch's factory marks a COO tensor of 0 or 1 entries coalesced unless told otherwise, so its
    ``indices()``/``values()`` may be read at once; chainrule marked it uncoalesced and refused."""
    indices = np.zeros((2, nnz), dtype=np.int64)
    made = [lib.sparse_coo_tensor(lib.tensor(indices), lib.ones(nnz), (2, 2), is_coalesced=is_coalesced)
            for lib in (torch, chainrule)]
    expected, got = made
    assert got.is_coalesced() == expected.is_coalesced()
    if expected.is_coalesced():
        assert np.array_equal(got.indices().numpy(), expected.indices().numpy())
        assert np.array_equal(got.values().numpy(), expected.values().numpy())
        assert (got + got).is_coalesced() == (expected + expected).is_coalesced()


def test_one_entry_sparse_tensor_with_grad_reads_its_indices_and_backpropagates():
    grads = []
    for lib in (torch, chainrule):
        values = lib.tensor([2.0], requires_grad=True)
        sparse = lib.sparse_coo_tensor(lib.tensor([[1], [0]]), values, (2, 2))
        assert sparse.indices().tolist() == [[1], [0]]
        (lib.sparse.mm(sparse, lib.tensor([[1.0, 2.0], [3.0, 4.0]])) ** 2).sum().backward()
        grads.append(values.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])


# ---------------------------------------------------------------- BCE with logits: weights must be tensors
@pytest.mark.parametrize("keyword, value", [("pos_weight", 2.0), ("pos_weight", 3), ("pos_weight", [2.0, 1.0]),
                                            ("weight", 2.0), ("weight", [1.0, 0.5])])
def test_binary_cross_entropy_with_logits_refuses_weights_that_are_not_tensors(keyword, value):
    """torch's F hands the weights to its ATen op, whose parser refuses a number or a list with a
    TypeError; chainrule converted them, so code that fails on torch ran on chainrule."""
    errors = []
    for lib in (torch, chainrule):
        logits, target = lib.tensor([0.5, -1.0], requires_grad=True), lib.tensor([1.0, 0.0])
        with pytest.raises(TypeError) as info:
            lib.nn.functional.binary_cross_entropy_with_logits(logits, target, **{keyword: value})
        errors.append(str(info.value))
        assert logits.grad is None
    assert errors[1] == errors[0]


def test_binary_cross_entropy_with_logits_keeps_tensor_pos_weight():
    values = []
    for lib in (torch, chainrule):
        logits = lib.tensor([[0.5, -1.0], [2.0, 0.0]], requires_grad=True)
        loss = lib.nn.functional.binary_cross_entropy_with_logits(
            logits, lib.tensor([[1.0, 0.0], [1.0, 1.0]]), pos_weight=lib.tensor(4.0))
        loss.backward()
        values.append((loss.item(), logits.grad.numpy(), loss.grad_fn.name()))
    assert values[1][2] == values[0][2]
    np.testing.assert_allclose(values[1][0], values[0][0], rtol=1e-6)
    np.testing.assert_allclose(values[1][1], values[0][1], rtol=1e-6)


# ---------------------------------------------------------------- torch.diff's prepend/append checks
DIFF_JOIN_CASES = [
    ((2, 3), dict(prepend=(3,))),
    ((2, 3), dict(append=(2, 2, 3))),
    ((2, 3), dict(prepend=(3, 3))),
    ((2, 3), dict(dim=0, append=(1, 2))),
    ((2, 3), dict(n=0, prepend=(3,))),
    ((2, 3), dict(prepend=(3, 1), append=(3,))),
    ((2, 3, 4), dict(dim=1, prepend=(2, 1, 3))),
]


@pytest.mark.parametrize("shape, options", DIFF_JOIN_CASES)
def test_diff_refuses_prepend_or_append_of_another_shape_in_torchs_words(shape, options):
    """torch's diff_check runs before any work (even for n=0) and says which size differs; chainrule
    added ', but got 1 and 2' to the rank message, let cat report other sizes, and copied for n=0."""
    errors = []
    for lib in (torch, chainrule):
        kwargs = {k: (lib.zeros(*v) if k in ("prepend", "append") else v) for k, v in options.items()}
        with pytest.raises(RuntimeError) as info:
            lib.diff(lib.ones(*shape), **kwargs)
        errors.append(str(info.value))
    assert errors[1] == errors[0]


def test_diff_with_matching_prepend_and_append_still_agrees_with_torch():
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor([[1.0, 3.0, 6.0], [2.0, 2.0, 5.0]], requires_grad=True)
        out = lib.diff(x, n=2, dim=1, prepend=lib.zeros(2, 1), append=lib.ones(2, 2))
        out.sum().backward()
        results.append((out.detach().numpy(), x.grad.numpy(), out.grad_fn.name()))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])
    assert results[1][2] == results[0][2]
