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
