"""Session 53, lane mendCW: cdist's matrix-product path on a CPU without AVX-512, against torch."""

import numpy as np
import pytest

import chainrule
from chainrule.ops import cpu_features, linalg

torch = pytest.importorskip("torch")

# inside the envelope measured on an AMD EPYC (AVX2 + FMA): 26+ rows and columns, 3 <= k <= 130
_SHAPES = [(1, 26, 26, 3), (2, 40, 33, 10), (1, 64, 30, 35), (3, 30, 27, 130)]


@pytest.mark.parametrize("batch, rows, columns, depth", _SHAPES)
def test_the_avx2_product_is_torchs_bmm_and_avx512_keeps_numpys(batch, rows, columns, depth):
    rng = np.random.RandomState(rows + depth)
    a = rng.randn(batch, rows, depth).astype(np.float32)
    b = rng.randn(batch, depth, columns).astype(np.float32)
    replayed = linalg._mkl_avx2_sgemm_is_sequential(a, b.swapaxes(-1, -2))
    if cpu_features.AVX512_CORE:
        # AVX-512 CPUs keep NumPy's product, which was torch's bits there
        assert not replayed
        return
    assert replayed
    got = linalg._sequential_fma_matmul(a, b)
    assert got.dtype == np.float32 and got.shape == (batch, rows, columns)
    np.testing.assert_array_equal(got, torch.from_numpy(a).bmm(torch.from_numpy(b)).numpy())


def test_outside_the_envelope_numpys_product_stays():
    a = np.ones((1, 5, 10), np.float32)
    assert not linalg._mkl_avx2_sgemm_is_sequential(a, np.ones((1, 30, 10), np.float32))  # 5 rows
    assert not linalg._mkl_avx2_sgemm_is_sequential(np.ones((1, 30, 200), np.float32),
                                                    np.ones((1, 30, 200), np.float32))  # k = 200
    assert not linalg._mkl_avx2_sgemm_is_sequential(np.ones((1, 30, 10)), np.ones((1, 30, 10)))  # float64


def test_cdist_distances_are_roots_of_torchs_squared_distances():
    rng = np.random.RandomState(53)
    a = rng.randn(2, 100, 60).astype(np.float32)
    b = rng.randn(2, 50, 60).astype(np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    expected = torch.cdist(ta, tb)
    got = chainrule.cdist(chainrule.from_numpy(a), chainrule.from_numpy(b))
    assert tuple(got.shape) == tuple(expected.shape) and got.stride() == expected.stride()
    x1 = torch.cat([ta.mul(-2), ta.pow(2).sum(-1, True), torch.ones_like(ta[..., :1])], -1)
    x2 = torch.cat([tb, torch.ones_like(tb[..., :1]), tb.pow(2).sum(-1, True)], -1)
    squared = x1.matmul(x2.mT).clamp_min(0).numpy()
    if cpu_features.AVX512_CORE:
        np.testing.assert_array_max_ulp(got.numpy(), expected.numpy(), maxulp=1)
    else:
        # torch's squared distances bit for bit (MKL's AVX2 sgemm replayed), chainrule's root the
        # correctly rounded one; torch's float32 sqrt here is up to 0.75 ulp off the exact root
        np.testing.assert_array_equal(got.numpy(), np.sqrt(squared))
        np.testing.assert_array_max_ulp(got.numpy(), expected.numpy(), maxulp=1)
