"""Session 30's speed-ups (lane perf3): each keeps every output bit of the implementation it replaced,
checked on a dense grid against that implementation kept here, and against torch where torch agrees."""

import math

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


def _reference_log_sigmoid(x):
    # elementwise._log_sigmoid_array of commit a4771404 (the NumPy float32 and float64 path)
    # one fresh C-order buffer holds |x| and then the result; out= keeps a 0-d input an array
    buffer = np.abs(x, out=np.empty(x.shape, x.dtype))
    log1p = _reference_log1p_of_tiny(_reference_exp_of_negative(buffer))
    np.minimum(x, 0, out=buffer)
    return np.subtract(buffer, log1p, out=buffer)


# where the kernel's exp gives 0: its argument below -104 in float32; in float64 its cut-off is
# -1000, but from -746 on its two-step scaling of the subnormal range rounds to 0 already
_EXP_FLUSH_BELOW = {np.dtype(np.float32): 104.0, np.dtype(np.float64): 746.0}
# below these e^-a is a normal number of the dtype
_EXP_NORMAL_BELOW = {np.dtype(np.float32): 87.0, np.dtype(np.float64): 708.0}


def _reference_exp_of_negative(a: np.ndarray) -> np.ndarray:
    """e^-a for a >= 0 (or NaN), rounded as torch's vectorised exp: nearly always the correctly rounded
    value (float32 is computed in float64 for that; NumPy's float32 exp is off by an ulp more
    often), and where it is subnormal, the mantissa u = e^-a / 2^q (q = rint(-a / ln 2)) rounded to
    the dtype first and then scaled by 2^q in two halves, so rounded twice. A fresh C-order array."""
    dtype = a.dtype
    # NumPy's float64 exp leaves its vectorised loop where the result underflows (100 times slower
    # in the subnormal range, 15 times below it), so the argument is clamped where float32's e^-a
    # has flushed to 0 (e^-104 rounds to 0) and float64's is still normal (those clamped are redone)
    clamp = _EXP_FLUSH_BELOW[dtype] if dtype == np.float32 else _EXP_NORMAL_BELOW[dtype]
    wide = np.negative(a, dtype=np.float64, out=np.empty(a.shape, np.float64))
    np.maximum(wide, -clamp, out=wide)
    np.exp(wide, out=wide)
    result = wide if dtype == np.float64 else wide.astype(dtype)
    if a.size == 0 or a.max() < _EXP_NORMAL_BELOW[dtype]:  # (NaN fails the test: checked below)
        return result
    # positions in the flat views: NumPy gathers and scatters by index 4 to 6 times faster than by mask
    flat_a, flat_result = a.reshape(-1), result.reshape(-1)
    with np.errstate(under="ignore"):
        if dtype == np.float64:
            clamped = np.flatnonzero(flat_a > clamp)
            a_clamped = flat_a[clamped]
            # up to 708.5 NumPy's exp decides whether e^-a is subnormal; beyond, it certainly is (0
            # stands in for it: the subnormal path below, or the flush, gives the value)
            exact = np.zeros_like(a_clamped)
            edge = a_clamped <= 708.5
            exact[edge] = np.exp(-a_clamped[edge])
            flat_result[clamped] = exact
        subnormal = np.flatnonzero((flat_result < np.finfo(dtype).tiny) & (flat_a < _EXP_FLUSH_BELOW[dtype]))
        if not subnormal.size:
            return result
        a_sub = flat_a[subnormal]
        q = np.rint(-a_sub * dtype.type(1 / math.log(2))).astype(np.int64)
        if dtype == np.float32:
            mantissa = np.ldexp(wide.reshape(-1)[subnormal], -q).astype(dtype)
        else:  # float64's e^-a is itself subnormal here: the mantissa needs the wider long double
            mantissa = np.ldexp(np.exp(-a_sub.astype(np.longdouble)), -q).astype(dtype)
        half = q >> 1
        flat_result[subnormal] = mantissa * np.ldexp(dtype.type(1), half) * np.ldexp(dtype.type(1), q - half)
    return result


def _reference_log1p_of_tiny(z: np.ndarray) -> np.ndarray:
    """log1p(z) for z in [0, 1] (or NaN), rounded as torch's vectorised log1p: float32 through
    float64. Below twice the smallest normal number it is z itself, but the kernel's first step
    halves z, which in the subnormal range rounds (half to even), so an odd multiple of the
    smallest subnormal loses its last bit (the smallest subnormal becomes 0). Overwrites z."""
    dtype = z.dtype
    twice_tiny = 2 * np.finfo(dtype).tiny
    not_tiny = True
    # fmin skips NaN; halving and doubling leave every other z as it is, and log1p keeps a tiny z
    if z.size and np.fmin.reduce(z, axis=None) < twice_tiny:
        with np.errstate(under="ignore"):
            np.multiply(z, dtype.type(0.5), out=z)
            np.multiply(z, dtype.type(2), out=z)
        not_tiny = z >= twice_tiny
    if dtype == np.float64:  # NumPy's float64 log1p is 50 times slower on subnormals: they stay z
        return np.log1p(z, out=z, where=not_tiny)
    wide = np.log1p(z, dtype=np.float64, out=np.empty(z.shape, np.float64))
    np.copyto(z, wide, casting="same_kind")  # rounded to float32 in z's buffer
    return z


def _log_sigmoid_grid(dtype):
    # 2e6 values over -800..800, 1e6 over -120..120 (float32's flush and subnormal range), float64's
    # edges 700..760 densely, subnormal inputs of both signs and the special values
    info = np.finfo(dtype)
    parts = [np.linspace(-800, 800, 2_000_000), np.linspace(-120, 120, 1_000_000), np.linspace(700, 760, 200_000)]
    subnormals = np.arange(1, 100_000) * info.smallest_subnormal
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 87.3, 102.9, 103.97, 104.0, 744.1, 746.0,
                float(info.tiny), float(info.max), float(-info.max)]
    return np.concatenate(parts + [subnormals, -subnormals, np.array(specials)]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_sigmoid_keeps_every_bit_of_the_previous_kernel(dtype):
    x = _log_sigmoid_grid(dtype)
    assert x.size > 3_000_000
    with np.errstate(all="ignore"):
        expected = _reference_log_sigmoid(x)
    got = elementwise._log_sigmoid_array(x)
    assert got.dtype == dtype and got.flags.c_contiguous
    bits = np.int32 if dtype == np.float32 else np.int64
    assert np.array_equal(got.view(bits), expected.view(bits))
    # empty, 0-d, and a transposed view (the result is C order all the same)
    for sample in (x[:0], x[7].reshape(()), x[:600_000].reshape(600, 1000).T, x[1:400_000:3]):
        with np.errstate(all="ignore"):
            expected = _reference_log_sigmoid(sample)
        got = elementwise._log_sigmoid_array(sample)
        assert type(got) is np.ndarray and got.shape == sample.shape and got.flags.c_contiguous
        assert np.array_equal(got.view(bits), expected.view(bits))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsigmoid_matches_torch_within_two_ulps(dtype):
    x = _log_sigmoid_grid(dtype)[::7]
    got = chainrule.nn.functional.logsigmoid(chainrule.from_numpy(x)).numpy()
    expected = torch.nn.functional.logsigmoid(torch.from_numpy(x)).numpy()
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(got == 0, expected == 0)  # where the result flushes to 0, as torch's kernel
    # torch's SLEEF exp and log1p are within an ulp each, not always correctly rounded: 6,351 of
    # these 485,717 float32 values differ, 61 of them by two ulps (float64: 16,294 and 45)
    finite = np.isfinite(expected)
    bits = np.int32 if dtype == np.float32 else np.int64
    ulps = np.abs(got[finite].view(bits).astype(np.int64) - expected[finite].view(bits))
    assert ulps.max() <= 2
    assert (ulps != 0).sum() < x.size / 20
