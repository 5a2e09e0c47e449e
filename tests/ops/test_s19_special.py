"""Special functions and clamp where torch 2.13's op_db reference inputs found chainrule apart from
torch (session 19): float32 values that torch's CPU kernels compute in float, values at the edges
(0, negative, inf, nan, poles), gradients and refusals, each compared with torch.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

NAN, INF = float("nan"), float("inf")
TOLERANCE = {np.float32: dict(rtol=1.3e-6, atol=1e-5), np.float64: dict(rtol=1e-7, atol=1e-7)}


def _both(fn, *arrays):
    """fn(lib, *tensors) on torch and on chainrule, as NumPy arrays."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = fn(torch, *[torch.from_numpy(np.array(a)) for a in arrays])
        ours = fn(chainrule, *[chainrule.from_numpy(np.array(a)) for a in arrays])
    return ours.numpy(), theirs.numpy()


def _close_to_torch(fn, *arrays):
    ours, theirs = _both(fn, *arrays)
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, equal_nan=True, **TOLERANCE.get(theirs.dtype.type, dict(rtol=0, atol=0)))


def _grads(lib, fn, arrays):
    leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = fn(lib, *leaves)
        grads = lib.autograd.grad(out.sum(), leaves, allow_unused=True)
    return [None if g is None else g.numpy() for g in grads]


def _grads_like_torch(fn, *arrays):
    for ours, theirs in zip(_grads(chainrule, fn, arrays), _grads(torch, fn, arrays)):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-7, equal_nan=True)


def _raises_like_torch(call):
    with pytest.raises(Exception) as expected:
        call(torch)
    with pytest.raises(type(expected.value)) as actual:
        call(chainrule)
    assert str(actual.value) == str(expected.value)


# ---------------------------------------------------------------- polygamma, zeta
# near the poles torch's float32 kernels lose digits to float rounding (sinf(π·x) in trigamma, the
# first term pow(q, -x) of zeta in float); chainrule rounds at the same places
NEAR_POLES = np.array([-7.950586795806885, -3.033684730529785, -3.973021984100342, -0.49933505058288574,
                       -0.4999755620956421, -0.4997749328613281, -0.4991426, 0.25, 3.5, -2.5], dtype=np.float32)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_polygamma_float32_near_poles_rounds_as_torch(n):
    _close_to_torch(lambda lib, x: lib.polygamma(n, x), NEAR_POLES)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zeta_edges_as_cephes(dtype):
    # a huge exponent: Cephes' tail multiplies an overflowing factor by a zero term (NaN in torch)
    x = np.array([1e20, 1e20, INF, 2.0, 3.0, 1.0, 0.5, 2.0, 3.0, 2.0], dtype=dtype)
    q = np.array([501.0, 1e20, INF, -3.0, -2.5, 2.0, 2.0, 0.0, 1e9, NAN], dtype=dtype)
    _close_to_torch(lambda lib, a, b: lib.special.zeta(a, b), x, q)


# ---------------------------------------------------------------- erfcx, log_ndtr
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erfcx_left_of_zero_is_atens_formula(dtype):
    # below 0 torch computes 2·exp(x²) - erfcx(-x) in the input's dtype: x² rounded in float32
    x = np.array([-8.478373527526855, -6.4587721824646, -5.805131912231445, -3.0, -0.5, -26.8, -27.0,
                  0.0, 2.0, 60.0, 6e7, INF, -INF, NAN], dtype=dtype)
    _close_to_torch(lambda lib, t: lib.special.erfcx(t), x)


def test_log_ndtr_far_left_value_and_gradient_cancel_as_torch():
    # torch's gradient exp(-(log_ndtr(x) + x²/2))/sqrt(2π) cancels against its forward's roundings
    x = np.array([-1e4, -3e4, -1e6, -1.38630726e6, -1e8, -40.0, -2.5, -1.0, 0.0, 3.0], dtype=np.float64)
    _close_to_torch(lambda lib, t: lib.special.log_ndtr(t), x)
    _grads_like_torch(lambda lib, t: lib.special.log_ndtr(t), x)


# ---------------------------------------------------------------- Bessel I0/I1, kaiser, entr
BESSEL_POINTS = np.array([0.0, -0.0, 1e-30, 2.0, -3.5, 8.0, 8.5, -30.0, 88.5, 89.0, -95.0, 700.0, 720.0, INF, -INF, NAN])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["i0", "i0e", "i1", "i1e", "modified_bessel_i0", "modified_bessel_i1"])
def test_bessel_i_is_atens_chebyshev_kernel(name, dtype):
    # torch's float kernels compute exp(|x|) in float: I0 and I1 are inf past 88.7 in float32
    _close_to_torch(lambda lib, x: getattr(lib.special, name)(x), BESSEL_POINTS.astype(dtype))


@pytest.mark.parametrize("name", ["i1", "i1e"])
def test_i1_gradient_is_one_half_at_nan_and_tiny_inputs(name):
    # torch's backward takes the limit 1/2 wherever |x| <= eps, NaN included (|NaN| > eps is false)
    _grads_like_torch(lambda lib, x: getattr(lib.special, name)(x), BESSEL_POINTS.astype(np.float64))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("beta", [12.0, 89.0, 100.0, 1000.0])
def test_kaiser_window_overflows_where_torch_does(beta, dtype):
    for periodic in (True, False):
        ours = chainrule.kaiser_window(10, periodic=periodic, beta=beta, dtype=getattr(chainrule, dtype))
        theirs = torch.kaiser_window(10, periodic=periodic, beta=beta, dtype=getattr(torch, dtype))
        np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), rtol=1e-3 if dtype == "float16" else 1.3e-6,
                                   atol=1e-5, equal_nan=True)
        sym = not periodic
        if dtype != "float16":
            ours = chainrule.signal.windows.kaiser(10, beta=beta, sym=sym, dtype=getattr(chainrule, dtype))
            theirs = torch.signal.windows.kaiser(10, beta=beta, sym=sym, dtype=getattr(torch, dtype))
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1.3e-6, atol=1e-5, equal_nan=True)


def test_entr_values_gradient_and_node():
    x = np.array([-INF, INF, NAN, 0.0, -0.0, 1e-300, 0.5, 2.0, -3.0], dtype=np.float64)
    _close_to_torch(lambda lib, t: lib.special.entr(t), x)
    _close_to_torch(lambda lib, t: lib.special.entr(t), x.astype(np.float32))
    _grads_like_torch(lambda lib, t: lib.special.entr(t), x)  # -(1 + log x): NaN below 0, +inf at 0
    leaf = chainrule.tensor([0.5], requires_grad=True)
    assert chainrule.special.entr(leaf).grad_fn.name() == "SpecialEntrBackward0"
    assert chainrule.autograd.gradcheck(chainrule.special.entr, chainrule.tensor([0.3, 1.7, 4.0], dtype=chainrule.float64,
                                                                                requires_grad=True))


# ---------------------------------------------------------------- clamp with tensor bounds
def test_clamp_tensor_bounds_gradients_follow_torch_when_max_is_below_min():
    # torch: min gets the gradient where x < min < max, max where x > max or max < min (the result
    # is max there, NaN still propagating); x where min <= x <= max
    values = [-2.0, 0.5, 1.0, 3.0, NAN, 2.0, INF]
    bounds = [0.0, 1.0, 2.0, NAN]
    grid = np.array([(x, lo, hi) for x in values for lo in bounds for hi in bounds]).T
    _close_to_torch(lambda lib, x, lo, hi: lib.clamp(x, lo, hi), *grid)
    _grads_like_torch(lambda lib, x, lo, hi: lib.clamp(x, lo, hi), *grid)
    leaves = [chainrule.tensor(v, requires_grad=True) for v in grid]
    assert chainrule.clamp(*leaves).grad_fn.name() == "ClampBackward0"


@pytest.mark.parametrize("bounds", [(True, False), (False, True)])
def test_clamp_refuses_a_tensor_bound_with_a_number_bound(bounds):
    def call(lib):
        low = lib.tensor([0.0]) if bounds[0] else 0.0
        high = lib.tensor([1.0]) if bounds[1] else 1.0
        return lib.clamp(lib.tensor([0.5]), low, high)

    _raises_like_torch(call)
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        chainrule.tensor([0.5]).clamp(min=chainrule.tensor([0.0]), max=1.0)


# ---------------------------------------------------------------- igamma, igammac
IGAMMA_A = np.array([1e20, 4988429.2, 3.3156628e6, 250.0, 30.0, 5.0, 0.5, 1e-3, INF, INF, NAN, 0.0, 0.0, 2.0, 3.0, -1.0])
IGAMMA_X = np.array([1e20, 4988429.2, 3.3148262e6, 240.0, 28.0, 9.0, 1.05, 0.7, INF, NAN, INF, 0.0, 1.0, 0.0, INF, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["igamma", "igammac"])
def test_incomplete_gamma_methods_and_edges_as_torch(name, dtype):
    # large a with x near a: the uniform asymptotic expansion (torch's 0.5000595 at a = x = 4988429.2,
    # where a power series stopped early at 0.5000557); torch's order of edge cases (inf, NaN, 0)
    _close_to_torch(lambda lib, a, x: getattr(lib, name)(a, x), IGAMMA_A.astype(dtype), IGAMMA_X.astype(dtype))


def test_igamma_gradient_in_x_and_refusal_in_a():
    a, x = np.array([0.5, 3.0, 250.0]), np.array([1.5, 2.0, 240.0])
    _grads_like_torch(lambda lib, a_, x_: lib.igamma(a_.detach(), x_) + lib.igammac(a_.detach(), x_) * 2, a, x)
    _raises_like_torch(lambda lib: lib.igamma(lib.tensor(a, requires_grad=True), lib.tensor(x)).sum().backward())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erfc_family_at_infinities_and_huge_arguments(dtype):
    huge = 1e300 if dtype == np.float64 else 3e38
    x = np.array([INF, -INF, NAN, 0.0, huge, -huge, 1e9, 7.99, 8.0, 30.0, -30.0], dtype=dtype)
    for name in ("erfc", "erfcx", "log_ndtr", "ndtr"):
        _close_to_torch(lambda lib, t, name=name: getattr(lib.special, name)(t), x)


def test_clamp_integer_and_bool_tensor_bounds():
    ints = np.array([1, 5, 9])
    _close_to_torch(lambda lib, x, lo, hi: lib.clamp(x, lo, hi), ints, np.array([2]), np.array([6]))
    _close_to_torch(lambda lib, x, lo, hi: lib.clamp(x, lo, hi), ints, np.array([7]), np.array([6]))
    _close_to_torch(lambda lib, x, lo, hi: lib.clamp(x, lo, hi), ints, np.array([2.5]), np.array([6]))
    _raises_like_torch(lambda lib: lib.clamp(lib.tensor([True, False]), lib.tensor([True]), lib.tensor([True])))


def test_xlog1py_is_one_op_with_torchs_gradients():
    # ∂/∂x is log1p(y) even at x = 0 (0 only where y <= -1); ∂/∂y is x/(y + 1), NaN at x = 0, y = -1
    grid = np.array([(x, y) for x in (0.0, -0.0, 1.5, -2.0, NAN, INF) for y in (-1.0, -2.0, 0.0, 3.0, NAN, INF, -0.5)]).T
    _close_to_torch(lambda lib, x, y: lib.special.xlog1py(x, y), *grid)
    _grads_like_torch(lambda lib, x, y: lib.special.xlog1py(x, y), *grid)
    leaves = [chainrule.tensor(v, requires_grad=True) for v in grid]
    assert chainrule.special.xlog1py(*leaves).grad_fn.name() == "SpecialXlog1PyBackward0"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_polar_gradient_is_torchs_from_the_result(dtype):
    # torch: ∂/∂r = Re(conj(g)·sgn(z)), so none where r = 0; ∂/∂θ = Re(conj(g)·i·z); NaN at r = ±inf
    values = [0.0, -0.0, 1.0, -1.0, INF, -INF, NAN, 2.5]
    grid = np.array([(r, t) for r in values for t in values], dtype=dtype).T
    ours, theirs = _both(lambda lib, r, t: lib.polar(r, t), *grid)
    np.testing.assert_allclose(ours, theirs, rtol=1.3e-6, atol=1e-5, equal_nan=True)
    if dtype == np.float64:
        def loss(lib, r, t):
            return lib.view_as_real(lib.polar(r, t)) * lib.tensor([0.7, -1.3], dtype=lib.float64)

        _grads_like_torch(loss, *grid)
        leaves = [chainrule.tensor(v, requires_grad=True) for v in grid]
        assert chainrule.polar(*leaves).grad_fn.name() == "PolarBackward0"


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8"])
def test_right_shift_by_negative_or_too_many_bits_fills_with_the_sign(dtype):
    # torch: an amount < 0 or >= width - 1 (width for unsigned types) gives a >> (width - 1): -1 or 0
    info = np.iinfo(dtype)
    values = np.array([info.min, info.min // 2, 0, 5, info.max], dtype=dtype)
    for amount in (-3, -1, 0, 3, 7, 8, 9, 31, 63, 64, 100):
        if info.min <= amount <= info.max:
            shifts = np.full_like(values, amount)
            _close_to_torch(lambda lib, a, b: lib.bitwise_right_shift(a, b), values, shifts)
            _close_to_torch(lambda lib, a, b: lib.bitwise_left_shift(a, b), values, shifts)


def test_zeta_of_a_very_negative_q_climbs_in_blocks():
    # Cephes sums (k + q)^-x term by term until k + q > 9: fifty thousand terms for q = -50000.5
    q = np.array([-50000.5, -5000.25, -20.5, 2.0])
    for x in (2.0, 3.0):
        _close_to_torch(lambda lib, a, b: lib.special.zeta(a, b), np.full_like(q, x), q)
