"""Session 53 lane mendCV: what holds of logit/log against torch on either CPU kind (with or
without AVX-512), beside the bitwise tests that hold where chainrule's log is torch's."""
import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _p_values(dtype) -> np.ndarray:
    rng = np.random.default_rng(53)
    return np.concatenate([rng.random(2000), [0.5, 1e-30, 1 - 1e-7, 0.25]]).astype(dtype)


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    signed = {4: np.int32, 8: np.int64}[a.itemsize]
    return np.abs(a.view(signed).astype(np.int64) - b.view(signed).astype(np.int64))


@pytest.mark.parametrize("eps", [None, 0.05])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_logit_is_the_log_of_the_odds_on_each_side(dtype_name, eps):
    """On every CPU, torch's logit of a contiguous tensor is its clamped p / (1 - p) through the
    same MKL log as torch.log (LogitMKLKernel's VmlLog), and chainrule's is its own log of the same
    quotient: each library's logit equals its own log of the odds to the bit, whichever log MKL
    picks for the CPU."""
    p = _p_values(np.dtype(dtype_name))
    for m in (torch, chainrule):
        x = m.tensor(p, dtype=getattr(m, dtype_name))
        q = x if eps is None else x.clamp(eps, 1 - eps)
        direct = m.logit(x, eps).numpy()
        via_log = m.log(q / (1 - q)).numpy()
        assert direct.dtype == np.dtype(dtype_name)
        assert direct.tobytes() == via_log.tobytes(), m.__name__


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_log_within_one_ulp_of_torchs(dtype_name):
    """torch.log's last bit is MKL's (AVX-512: chainrule's to the bit in the tests that pin it;
    measured without AVX-512, on an AMD EPYC: 6,461 float32 and 29 float64 of 200,000 values one
    ulp off chainrule's): never further than one ulp, on either kind."""
    x = (np.random.default_rng(7).random(4000) * 100 + 1e-3).astype(dtype_name)
    got = chainrule.log(chainrule.tensor(x)).numpy()
    expected = torch.log(torch.from_numpy(x)).numpy()
    assert got.dtype == expected.dtype == np.dtype(dtype_name)
    assert np.array_equal(np.signbit(got), np.signbit(expected))
    assert _ulps(got, expected).max() <= 1
