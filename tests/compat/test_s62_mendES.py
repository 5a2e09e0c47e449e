"""Session 62, lane mendES: edge values of Cholesky and the count samplers, against torch 2.13."""

import math

import numpy as np
import pytest

import chainrule

INF, NAN = math.inf, math.nan


def _both(rows, dtype, upper=False):
    torch = pytest.importorskip("torch")
    t = torch.linalg.cholesky_ex(torch.tensor(rows, dtype=getattr(torch, dtype)), upper=upper)
    c = chainrule.linalg.cholesky_ex(chainrule.tensor(rows, dtype=getattr(chainrule, dtype)), upper=upper)
    return (t.L.numpy(), t.info.numpy()), (c.L.numpy(), c.info.numpy())


BASE = [[4.0, 1.0, 0.5, 0.3], [1.0, 3.0, 0.2, 0.1], [0.5, 0.2, 2.0, 0.4], [0.3, 0.1, 0.4, 5.0]]


def _with(entries):
    rows = [list(row) for row in BASE]
    for (i, j), value in entries.items():
        rows[i][j] = value
    return rows


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("entries", [
    {(1, 1): INF, (3, 1): -INF, (1, 3): -INF},  # 1/inf scales an inf below it: NaN, the next pivots fail
    {(2, 1): INF, (1, 2): INF},  # an inf off the diagonal leaves the row's other entries finite
    {(2, 1): NAN, (1, 2): NAN},
    {(0, 0): INF},  # an infinite pivot roots to inf: the factor exists
    {(2, 2): NAN},
    {(3, 3): -INF},
])
def test_cholesky_ex_of_non_finite_entries_float64(entries, upper):
    (t_factor, t_info), (c_factor, c_info) = _both(_with(entries), "float64", upper)
    np.testing.assert_array_equal(c_info, t_info)
    np.testing.assert_allclose(c_factor, t_factor, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_cholesky_ex_batch_reports_each_matrix():
    rows = [_with({(1, 1): INF, (3, 1): -INF}), BASE, _with({(2, 1): NAN})]
    (t_factor, t_info), (c_factor, c_info) = _both(rows, "float64")
    np.testing.assert_array_equal(c_info, t_info)
    np.testing.assert_allclose(c_factor, t_factor, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_cholesky_float32_infinite_pivot_as_mkl():
    (t_factor, t_info), (c_factor, c_info) = _both(_with({(0, 0): INF}), "float32")
    if not np.isnan(t_factor[1, 0]):
        pytest.skip("this CPU's single-precision potrf scales an infinite pivot's column by 0, not NaN")
    np.testing.assert_array_equal(c_info, t_info)
    np.testing.assert_allclose(c_factor, t_factor, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_linalg_cholesky_raises_torchs_error_for_an_inf_that_spreads():
    torch = pytest.importorskip("torch")
    rows = _with({(1, 1): INF, (3, 1): -INF})
    with pytest.raises(torch.linalg.LinAlgError) as expected:
        torch.linalg.cholesky(torch.tensor(rows, dtype=torch.float64))
    with pytest.raises(chainrule.linalg.LinAlgError) as got:
        chainrule.linalg.cholesky(chainrule.tensor(rows, dtype=chainrule.float64))
    assert str(got.value) == str(expected.value)


def test_low_rank_mvn_of_a_zero_cov_diag_refuses_as_torch():
    torch = pytest.importorskip("torch")
    args = ([0.8, 0.3], [[-1.3, 0.9], [0.3, 0.2]], [0.0, 0.46])
    with pytest.raises(torch.linalg.LinAlgError):
        torch.distributions.LowRankMultivariateNormal(*map(torch.tensor, args), validate_args=False)
    with pytest.raises(chainrule.linalg.LinAlgError, match="leading minor of order 2"):
        chainrule.distributions.LowRankMultivariateNormal(*map(chainrule.tensor, args), validate_args=False)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rates", [[math.inf], [2.0, 3.0, math.inf, 20.0], [math.inf, math.inf, 0.5]])
def test_poisson_of_an_infinite_rate_is_int64_min_and_keeps_the_stream(rates, dtype):
    torch = pytest.importorskip("torch")
    drawn = []
    for lib in (torch, chainrule):
        lib.manual_seed(3)
        draws = lib.poisson(lib.tensor(rates, dtype=getattr(lib, dtype))).numpy()
        drawn.append((draws, lib.rand(3, dtype=getattr(lib, dtype)).numpy()))
    (t_draws, t_next), (c_draws, c_next) = drawn
    np.testing.assert_array_equal(c_draws, t_draws)
    np.testing.assert_array_equal(c_next, t_next)
    assert (c_draws[np.isinf(rates)] == -2.0 ** 63).all()


def test_distributions_poisson_sample_of_an_infinite_rate():
    torch = pytest.importorskip("torch")
    torch.manual_seed(5)
    chainrule.manual_seed(5)
    expected = torch.distributions.Poisson(torch.tensor([math.inf, 2.0])).sample((2,)).numpy()
    got = chainrule.distributions.Poisson(chainrule.tensor([math.inf, 2.0])).sample((2,)).numpy()
    np.testing.assert_array_equal(got, expected)
