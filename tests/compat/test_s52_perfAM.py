"""Session 52, lane perfAM: cheaper routes for small reductions and softmaxes, bit for bit.

Each route is checked against the route it replaces (forced by switching the new one off, the
switch restored after) on the same arrays, to the bit, values and gradients, and against torch:
bitwise where chainrule's result is torch's (the sums), otherwise where the replaced route was
(log_softmax's exp is NumPy's, not Sleef's, so about one row in ten differs from torch's by an ulp
either way). No timings are asserted.
"""

import numpy as np
import pytest

import chainrule
from chainrule.ops import reduce as reduce_ops

torch = pytest.importorskip("torch")


def _logits(shape, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 10.0 ** rng.integers(-2, 3, shape)
    flat = x.reshape(-1, shape[-1])
    if flat.shape[0] > 6:
        flat[1, 0] = np.inf
        flat[2, :] = -np.inf  # no finite logit: NaN
        flat[4, -1] = np.nan
        flat[5, :] = 0.0  # every element the maximum
        flat[6, 0] = -0.0
    return x.astype(dtype)


def _log_softmax_both_routes(x, keep_softmax, low=None):
    narrow = reduce_ops._log_softmax_last_dim(x, keep_softmax, low)
    saved = reduce_ops._NARROW_COLS
    reduce_ops._NARROW_COLS = {}
    try:
        rows = reduce_ops._log_softmax_last_dim(x, keep_softmax, low)
    finally:
        reduce_ops._NARROW_COLS = saved
    return narrow, rows


# narrow rows (under 8; 8 to 15 in float32 on an AVX-512 CPU), a 3-d input, two rows, a
# Fortran-ordered one; then shapes the route leaves alone (one row, wide rows, past one block)
@pytest.mark.parametrize("shape", [(64, 10), (32, 10), (2, 3), (7, 15), (8, 4, 7), (300, 5), (1, 10), (16, 40),
                                   (5000, 10)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_narrow_log_softmax_is_the_row_route(shape, dtype, order):
    x = np.asarray(_logits(shape, 3, dtype), order=order)
    with np.errstate(invalid="ignore"):
        for keep_softmax in (False, True):
            (out, softmax), (out_rows, softmax_rows) = _log_softmax_both_routes(x, keep_softmax)
            assert out.flags.c_contiguous and out.shape == x.shape
            assert out.tobytes() == out_rows.tobytes()
            if keep_softmax:
                assert softmax.flags.c_contiguous and softmax.tobytes() == softmax_rows.tobytes()


@pytest.mark.parametrize("low", [np.float16, "bfloat16"])
def test_narrow_log_softmax_of_half_precision_is_the_row_route(low):
    dtype = np.dtype(chainrule.bfloat16.np if low == "bfloat16" else low)
    x = _logits((48, 10), 4, np.float32).astype(dtype).astype(np.float32)
    with np.errstate(invalid="ignore"):
        (out, _), (out_rows, _) = _log_softmax_both_routes(x, False, dtype)
    assert out.tobytes() == out_rows.tobytes()


@pytest.mark.parametrize("shape", [(64, 10), (32, 7), (4, 6, 10)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_softmax_and_cross_entropy_of_narrow_rows_against_torch(shape, dtype):
    """Values and gradients on both routes equal bit for bit, and equal torch's wherever the row
    route's do (so never fewer); within an ulp or two elsewhere."""
    x = _logits(shape, 5, dtype)
    x[~np.isfinite(x)] = 0.0
    target = np.random.default_rng(6).integers(0, shape[-1], x.reshape(-1, shape[-1]).shape[0])
    grad_out = np.random.default_rng(7).standard_normal(shape).astype(dtype)

    def run(lib, narrow=True):
        saved = reduce_ops._NARROW_COLS
        if not narrow:
            reduce_ops._NARROW_COLS = {}
        try:
            a = lib.tensor(x).requires_grad_(True)
            y = lib.nn.functional.log_softmax(a, -1)
            y.backward(lib.tensor(grad_out))
            b = lib.tensor(x.reshape(-1, shape[-1])).requires_grad_(True)
            loss = lib.nn.functional.cross_entropy(b, lib.tensor(target))
            loss.backward()
            return [t.detach().numpy() for t in (y, a.grad, loss, b.grad)]
        finally:
            reduce_ops._NARROW_COLS = saved

    new, old, ref = run(chainrule), run(chainrule, narrow=False), run(torch)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for n, o, r in zip(new, old, ref):
        assert n.tobytes() == o.tobytes()
        np.testing.assert_allclose(n, r, rtol=tol, atol=tol)


# float32 and float64 sums over few rows (_sum_order._few_rows_sum: groups of four vectors, with
# and without vectors and floats past the last group, the cascade's second level from 16 groups,
# its third from 256) and the row_sum order of outer reductions (rows past the last four, a
# single column); float64 in torch's order too (4 doubles a vector), no longer NumPy's
@pytest.mark.parametrize("shape, dim", [
    ((64, 10), None), ((4096,), None), ((1, 640), 1), ((3, 1000), 1), ((16, 128), 1), ((32, 128), 1),
    ((2, 8191), -1), ((5, 33), 1), ((4, 32), 1), ((7, 1031), 1), ((2, 3, 300), (1, 2)), ((64, 10), 0),
    ((67, 10), 0), ((5, 13), 0), ((6, 1), 0), ((19, 3, 5), 0), ((10, 64), 0), ((130, 7), 0), ((6, 4), 0),
    ((1, 16384), 1), ((2, 5000), 1)])
@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sums_are_torchs(shape, dim, op, dtype):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)
    x[x < -2] = -0.0  # zeros of both signs
    grad_seed = int(rng.integers(1 << 30))

    def run(lib):
        a = lib.tensor(x).requires_grad_(True)
        for keepdim in (False, True):
            y = getattr(a, op)() if dim is None else getattr(a, op)(dim, keepdim=keepdim)
            y.backward(lib.tensor(np.random.default_rng(grad_seed).standard_normal(tuple(y.shape)).astype(dtype)))
            yield y.detach().numpy().tobytes(), tuple(y.shape), y.detach().numpy().flags.c_contiguous
        yield a.grad.numpy().tobytes(), tuple(a.grad.shape), True

    assert list(run(chainrule)) == list(run(torch))


def test_float64_sum_over_the_first_dim_is_torchs():
    """(6, 4).sum(0, keepdim=True) in float64: torch adds the six rows as row_sum does (rows 0
    and 4, then 5, into the first of four accumulators, then the other three), which NumPy's
    in-order sum missed in 188 of 200 draws."""
    rng = np.random.default_rng(9)
    for _ in range(200):
        x = rng.standard_normal((6, 4))
        got = chainrule.tensor(x).sum(0, keepdim=True).numpy()
        assert got.tobytes() == torch.tensor(x).sum(0, keepdim=True).numpy().tobytes()


# nll_loss's reduction of at most 256 rows, every one counted (loss._few_rows_cascade_sum): row 0,
# the runs of 16 after it, the rows after the last run; past 256 rows the general cascade
@pytest.mark.parametrize("rows", [1, 2, 16, 17, 18, 33, 64, 100, 255, 256, 257, 300])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_nll_loss_reduction_of_few_rows_is_torchs(rows, dtype, reduction):
    rng = np.random.default_rng(rows)
    logp = (rng.standard_normal((rows, 5)) * 10.0 ** rng.integers(-3, 4, (rows, 5))).astype(dtype)
    target = rng.integers(0, 5, rows)
    weight = (rng.random(5) + 0.5).astype(dtype)

    def run(lib):
        out = []
        for w in (None, lib.tensor(weight)):
            a = lib.tensor(logp).requires_grad_(True)
            loss = lib.nn.functional.nll_loss(a, lib.tensor(target), weight=w, reduction=reduction)
            loss.backward()
            out += [loss.detach().numpy().tobytes(), a.grad.numpy().tobytes()]
        return out

    assert run(chainrule) == run(torch)
