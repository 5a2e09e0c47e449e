"""Session 49, lane progDN: fixes found by the corpus programs diffpool_soft_clustering,
point_transformer_vector_attention and hippo_legendre_memory_unit, each compared with torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _zoh_block(dtype, seed=0):
    rng = np.random.RandomState(seed)
    M = np.zeros((13, 13))
    M[:12] = rng.randn(12, 13) * 2
    return M.astype(dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matrix_exp_keeps_the_zoh_blocks_exact_bottom_identity_like_torch(dtype):
    # exp([[A, B], [0, 0]]) = [[Ad, Bd], [0, I]]: torch's matmul-only polynomial gives the bottom
    # block exactly; a Padé solve left 0.9999999999999996 there
    M = _zoh_block(dtype)
    expected = torch.linalg.matrix_exp(torch.tensor(M)).numpy()
    got = chainrule.linalg.matrix_exp(chainrule.tensor(M)).numpy()
    assert got.dtype == expected.dtype
    assert np.array_equal(got[12:], expected[12:])
    assert np.array_equal(got[12:, 12:], np.ones((1, 1), dtype))
    # normwise: entries much smaller than the matrix carry its rounding
    assert np.abs(got - expected).max() <= 500 * np.finfo(dtype).eps * np.abs(expected).max()


@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128", "complex64"])
@pytest.mark.parametrize("scale", [1e-6, 0.3, 1.0, 4.0, 12.0])
def test_matrix_exp_values_and_triangular_zeros_match_torch(dtype, scale):
    rng = np.random.RandomState(1)
    a = rng.randn(2, 5, 5) * scale
    if dtype.startswith("complex"):
        a = a + 1j * rng.randn(2, 5, 5) * scale
    a = a.astype(dtype)
    for x in (a, np.triu(a)):
        expected = torch.linalg.matrix_exp(torch.tensor(x)).numpy()
        got = chainrule.linalg.matrix_exp(chainrule.tensor(x)).numpy()
        assert got.dtype == expected.dtype
        assert np.array_equal(got == 0, expected == 0)
        eps = np.finfo(dtype).eps
        assert np.abs(got - expected).max() <= 200 * eps * max(1.0, scale) * np.abs(expected).max()


def test_matrix_exp_gradient_matches_torch_and_gradcheck():
    rng = np.random.RandomState(2)
    a, g = rng.randn(4, 4) * 1.5, rng.randn(4, 4)
    ta = torch.tensor(a, requires_grad=True)
    torch.linalg.matrix_exp(ta).backward(torch.tensor(g))
    ca = chainrule.tensor(a, requires_grad=True)
    chainrule.linalg.matrix_exp(ca).backward(chainrule.tensor(g))
    np.testing.assert_allclose(ca.grad.numpy(), ta.grad.numpy(), rtol=1e-12, atol=1e-12)
    x = chainrule.tensor(rng.randn(3, 3) * 0.7, requires_grad=True)
    assert chainrule.autograd.gradcheck(chainrule.linalg.matrix_exp, (x,))
