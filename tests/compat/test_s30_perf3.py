"""Session 30's speed-ups (lane perf3): each keeps every output bit of the implementation it replaced,
checked on a dense grid against that implementation kept here, and against torch where torch agrees."""

import numpy as np
import pytest

import chainrule
from chainrule.ops import elementwise

torch = pytest.importorskip("torch")


def _reference_exp_float32(x):
    # the float32 exp of commit 44ad405d: float64 exp over the whole array, rounded back
    with np.errstate(over="ignore"):
        return np.exp(x, dtype=np.float64).astype(np.float32)


def _exp_grid():
    # 2.4e6 values over -110..90 (results from 0 through the subnormals to inf), every float32 just
    # around the overflow and flush edges, and the special values
    dense = np.linspace(-110, 90, 2_000_000, dtype=np.float32)
    rng = np.random.default_rng(30)
    edges = [np.nextafter(np.float32(edge), np.float32(np.inf)) for edge in (-103.97208, -87.33655, 88.72284)]
    around_edges = np.concatenate([edge.reshape(1).view(np.int32) + np.arange(-5000, 5000, dtype=np.int32)
                                   for edge in edges]).view(np.float32)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, 0.22314355, -1e-45, 1e-45], np.float32)
    return np.concatenate([dense, rng.standard_normal(370_000).astype(np.float32), around_edges, specials])


def test_float32_exp_keeps_every_bit_of_the_float64_rounding():
    x = _exp_grid()
    assert x.size > 2_000_000
    with np.errstate(over="ignore"):  # (chainrule.exp silences the overflow to inf, as torch does)
        got = elementwise._exp_array(x)
    expected = _reference_exp_float32(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert np.array_equal(got.view(np.int32), expected.view(np.int32))
    # below the large-array threshold, a 2-d transposed view, and a 0-d array take the other paths
    for sample in (x[:1000], x[:600_000].reshape(600, 1000).T, x[::3], np.float32(0.5).reshape(())):
        with np.errstate(over="ignore"):
            got = elementwise._exp_array(sample)
        assert got.strides == _reference_exp_float32(sample).strides or got.ndim == 0
        assert np.array_equal(np.asarray(got).view(np.int32), np.asarray(_reference_exp_float32(sample)).view(np.int32))


def test_float32_exp_of_a_large_tensor_matches_torch_within_an_ulp():
    x = _exp_grid()[::2]
    got = chainrule.exp(chainrule.from_numpy(x)).numpy()
    expected = torch.exp(torch.from_numpy(x)).numpy()
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    finite = np.isfinite(expected) & (expected > np.finfo(np.float32).tiny)
    ulps = np.abs(got[finite].view(np.int32).astype(np.int64) - expected[finite].view(np.int32))
    assert ulps.max() <= 1
    assert (ulps != 0).sum() < finite.sum() / 50
