"""chainrule/ops/special_functions.py and its kernels (_special_math.py): values against torch in
float64 (and SciPy, where installed) over wide ranges including poles, infinities and NaN; the
edges and errors torch has; a whole program (a gamma-distribution fit) run on both libraries.

The OpInfo registry (chainrule/testing/opinfo/special_functions.py) already compares float32
values, gradients, gradcheck/gradgradcheck and node names of every op on ordinary inputs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule
from chainrule.ops import _incomplete_gamma
from chainrule.ops import _special_math as kernels

torch = pytest.importorskip("torch")


def _values(*chunks) -> np.ndarray:
    return np.concatenate([np.asarray(c, dtype=np.float64).reshape(-1) for c in chunks])


_RNG = np.random.default_rng(0)
# wide ranges, both signs, the poles and the non-finite values
WIDE = _values(_RNG.uniform(-60, 60, 600), _RNG.uniform(-5, 5, 400), 10 ** _RNG.uniform(-300, 300, 200),
               -(10 ** _RNG.uniform(-8, 4, 100)), [0.0, -0.0, -1, -2, -50, 1, 2, 10, 0.5, -0.5, 1e17, 1e-310,
                                                     np.inf, -np.inf, np.nan])


def _ours(name: str, *arrays, **kwargs) -> np.ndarray:
    fn = chainrule
    for part in name.split("."):
        fn = getattr(fn, part)
    args = [chainrule.tensor(a) if isinstance(a, np.ndarray) else a for a in arrays]
    return fn(*args, **kwargs).numpy()


def _theirs(name: str, *arrays, **kwargs) -> np.ndarray:
    fn = torch
    for part in name.split("."):
        fn = getattr(fn, part)
    args = [torch.tensor(a) if isinstance(a, np.ndarray) else a for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs).numpy()


def assert_close(ours, theirs, rtol, atol=0.0):
    """Equal where both are the same infinity or both NaN; else within rtol relative (or atol)."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours) & (ours > 0), np.isinf(theirs) & (theirs > 0))
    np.testing.assert_array_equal(np.isinf(ours) & (ours < 0), np.isinf(theirs) & (theirs < 0))
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=rtol, atol=atol)


# ---------------------------------------------------------------- values against torch, float64
@pytest.mark.parametrize("name, inputs, rtol, atol", [
    # relative accuracy is lost near lgamma's roots (1, 2) and digamma's (1.4616...) in both libraries
    ("lgamma", WIDE, 1e-12, 1e-14),
    ("digamma", WIDE, 1e-12, 1e-14),
    ("erfinv", _values(_RNG.uniform(-1, 1, 1000), [1, -1, 0, -0.0, 1.5, -2, np.nan, 0.7, -0.7]), 1e-12, 0),
    ("i0", WIDE, 1e-12, 0),
    ("special.i0e", WIDE, 1e-12, 0),
    ("special.i1", WIDE, 1e-12, 0),
    ("special.i1e", WIDE, 1e-12, 0),
    ("special.erfcx", _values(_RNG.uniform(-30, 40, 1000), [0, np.inf, -np.inf, np.nan, 1e10, -1e10]), 1e-12, 0),
    ("special.log_ndtr", _values(_RNG.uniform(-40, 40, 1000), [0, np.inf, -np.inf, np.nan, -1e10, 1e10]), 1e-12, 0),
    ("special.ndtri", _values(_RNG.uniform(0, 1, 1000), 10 ** _RNG.uniform(-300, 0, 200), [0, 1, -1, 2, 0.5, np.nan]),
     1e-12, 0),
    ("erfc", _values(_RNG.uniform(-10, 27, 1000), [0, np.inf, -np.inf, np.nan]), 1e-12, 0),
    ("acosh", _values(1 + 10 ** _RNG.uniform(-10, 10, 300), [1, 0.5, np.inf, np.nan]), 1e-14, 0),
    ("asinh", WIDE, 1e-14, 0),
    ("atanh", _values(_RNG.uniform(-1, 1, 300), [1, -1, 2, np.nan]), 1e-14, 0),
    ("sinc", _values(_RNG.uniform(-20, 20, 300), [0, -0.0, 1, -3, np.nan]), 1e-14, 1e-16),
    ("sgn", WIDE, 0, 0),
    ("deg2rad", WIDE, 1e-15, 0),
    ("rad2deg", WIDE, 1e-15, 0),
])
def test_unary_values_match_torch_in_float64(name, inputs, rtol, atol):
    assert_close(_ours(name, inputs), _theirs(name, inputs), rtol, atol)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 6])
def test_polygamma_matches_torch(n):
    # trigamma (n = 1) is torch's own four-term series (about 1e-8 relative): the same algorithm here,
    # so the numbers are torch's; n >= 2 go through the Hurwitz zeta function, as torch's do
    inputs = _values(_RNG.uniform(-30, 30, 500), 10 ** _RNG.uniform(-5, 5, 100), [0.5, 1.5, -1.5, -2.5, 1, 2])
    assert_close(_ours("polygamma", n, inputs), _theirs("polygamma", n, inputs), 1e-12, 1e-300)


def test_zeta_matches_torch():
    x = _values(_RNG.uniform(1, 20, 800), np.round(_RNG.uniform(2, 10, 200)), [0.5, 1, 2, 2, 2, 3])
    q = _values(_RNG.uniform(-10, 40, 1000), [1, 1, -1, -1.5, 1e9, 0])
    assert_close(_ours("special.zeta", x, q), _theirs("special.zeta", x, q), 1e-12, 0)
    assert_close(_ours("special.zeta", 2.0, q), _theirs("special.zeta", 2.0, q), 1e-12, 0)


@pytest.mark.parametrize("name", ["igamma", "igammac"])
def test_incomplete_gamma_matches_torch(name):
    # torch's Cephes kernel is itself good to about 1e-9 relative over this range (against SciPy,
    # which agrees with chainrule's to 1e-13: see test_values_match_scipy)
    a = _values(_RNG.uniform(0, 40, 1000), [0, 1, 0, -1, 1, 2, 1, np.inf, 3])
    x = _values(_RNG.uniform(0, 50, 1000), [1, 0, 0, 1, np.inf, -1, np.nan, 3, 0])
    assert_close(_ours(name, a, x), _theirs(name, a, x), 1e-8, 1e-300)


def test_mvlgamma_matches_torch():
    x = _values(_RNG.uniform(2.5, 40, 200))
    for p in (1, 2, 5):
        assert_close(_ours("mvlgamma", x, p=p), _theirs("mvlgamma", x, p=p), 1e-12, 1e-13)


def test_logit_matches_torch_with_and_without_eps():
    p = _values(_RNG.uniform(0, 1, 300), [0, 1, -0.5, 1.5, np.nan, 0.5])
    assert_close(_ours("logit", p), _theirs("logit", p), 1e-14, 0)
    assert_close(_ours("logit", p, eps=1e-3), _theirs("logit", p, eps=1e-3), 1e-14, 0)


def test_binary_misc_match_torch():
    a, b = _RNG.standard_normal(200) * 10, _RNG.standard_normal(200) * 10
    a[:3], b[:3] = [0.0, -0.0, 1.0], [-1.0, 1.0, 1.0]
    for name in ("copysign", "nextafter"):
        np.testing.assert_array_equal(_ours(name, a, b), _theirs(name, a, b))
    # NumPy's pow and torch's round the last bit differently now and then
    np.testing.assert_allclose(_ours("float_power", np.abs(a), b), _theirs("float_power", np.abs(a), b), rtol=1e-15)
    # torch adds log2(1 + 2^(min - max)) to the max; logaddexp in natural units and back is 1 ulp off
    np.testing.assert_allclose(_ours("logaddexp2", a, b), _theirs("logaddexp2", a, b), rtol=1e-14)
    ints = _RNG.integers(-100, 100, (2, 200))
    for name in ("gcd", "lcm"):
        np.testing.assert_array_equal(_ours(name, *ints), _theirs(name, *ints))
    e = _RNG.integers(-10, 10, 200)
    np.testing.assert_array_equal(_ours("ldexp", a, e), _theirs("ldexp", a, e))
    values = np.array([0.5, 0.25, 7.0])
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(_ours("heaviside", x, values), _theirs("heaviside", x, values))
    ours, theirs = chainrule.frexp(chainrule.tensor(a)), torch.frexp(torch.tensor(a))
    np.testing.assert_array_equal(ours.mantissa.numpy(), theirs.mantissa.numpy())
    np.testing.assert_array_equal(ours.exponent.numpy(), theirs.exponent.numpy())
    assert ours.exponent.dtype == chainrule.int32


def test_dtypes_follow_torch():
    ints = chainrule.tensor([1, 2, 3])
    assert chainrule.lgamma(ints).dtype == chainrule.float32  # integers compute in the default float dtype
    assert chainrule.polygamma(1, ints).dtype == chainrule.float32
    assert chainrule.float_power(chainrule.tensor([2.0]), 2).dtype == chainrule.float64
    assert chainrule.special.zeta(2, chainrule.tensor([1.0])).dtype == chainrule.float32
    half = chainrule.tensor([0.5], dtype=chainrule.float64)
    assert chainrule.special.i1e(half).dtype == chainrule.float64


# ---------------------------------------------------------------- against SciPy (test-only)
def test_values_match_scipy():
    special = pytest.importorskip("scipy.special")
    positive = _values(10 ** _RNG.uniform(-5, 2.5, 500))
    assert_close(kernels.digamma(positive), special.digamma(positive), 1e-12, 1e-14)
    for n in (2, 3, 5):
        assert_close(kernels.polygamma(n, positive), special.polygamma(n, positive), 1e-12, 0)
    y = _values(_RNG.uniform(-1, 1, 500), 1 - 10 ** _RNG.uniform(-16, 0, 300))
    assert_close(kernels.erfinv(y), special.erfinv(y), 1e-12, 0)
    p = _values(10 ** _RNG.uniform(-300, 0, 300), 1 - 10 ** _RNG.uniform(-16, 0, 100))
    assert_close(kernels.ndtri(p), special.ndtri(p), 1e-12, 0)
    z = _values(_RNG.uniform(-38, 26, 800))  # within the normal range: subnormal results differ in the last bits
    assert_close(kernels.erfc(z), special.erfc(z), 1e-12, 0)
    assert_close(kernels.log_ndtr(z), special.log_ndtr(z), 1e-12, 0)
    a, x = _RNG.uniform(0.01, 60, 2000), _RNG.uniform(0, 80, 2000)
    # torch's (and so chainrule's) asymptotic branch multiplies by sqrt(2·π·a) with π in float:
    # 1.8e-9 relative from SciPy's, which has π in double
    assert_close(_incomplete_gamma.igamma(a, x), special.gammainc(a, x), 1e-8, 1e-300)
    assert_close(_incomplete_gamma.igammac(a, x), special.gammaincc(a, x), 1e-8, 1e-300)
    for name in ("i0", "i0e", "i1", "i1e"):
        assert_close(getattr(kernels, name)(WIDE), getattr(special, name)(WIDE), 1e-13, 0)


# ---------------------------------------------------------------- gradients at the edges
def test_gradients_match_torch_in_float64():
    x = np.array([0.3, 1.5, 4.0, 25.0])
    for name, inputs in [("lgamma", x), ("digamma", x), ("erfinv", x / 30), ("i0", x - 2), ("special.i1", x - 1.5),
                         ("special.i1e", np.array([0.0, -2.0, 3.0])), ("special.i0e", x - 2),
                         ("special.ndtri", x / 30), ("special.log_ndtr", -x), ("special.erfcx", x - 3),
                         ("sinc", np.array([0.0, 0.5, -1.25]))]:
        ours_in = chainrule.tensor(inputs, requires_grad=True)
        theirs_in = torch.tensor(inputs, requires_grad=True)
        fn_ours, fn_theirs = chainrule, torch
        for part in name.split("."):
            fn_ours, fn_theirs = getattr(fn_ours, part), getattr(fn_theirs, part)
        fn_ours(ours_in).sum().backward()
        fn_theirs(theirs_in).sum().backward()
        np.testing.assert_allclose(ours_in.grad.numpy(), theirs_in.grad.numpy(), rtol=1e-10, err_msg=name)


def test_igamma_gradient_is_for_x_only_as_torch():
    a = chainrule.tensor([2.0, 3.5], requires_grad=True)
    x = chainrule.tensor([1.0, 4.0], requires_grad=True)
    with pytest.raises(NotImplementedError, match="derivative for 'igamma: input' is not implemented"):
        chainrule.igamma(a, x).sum().backward()
    a_t, x_t = torch.tensor([2.0, 3.5], dtype=torch.float64), torch.tensor([1.0, 4.0], dtype=torch.float64, requires_grad=True)
    x2 = chainrule.tensor([1.0, 4.0], dtype=chainrule.float64, requires_grad=True)
    chainrule.igammac(chainrule.tensor([2.0, 3.5], dtype=chainrule.float64), x2).sum().backward()
    torch.igammac(a_t, x_t).sum().backward()
    np.testing.assert_allclose(x2.grad.numpy(), x_t.grad.numpy(), rtol=1e-12)


def test_zeta_and_heaviside_have_no_derivative_as_torch():
    x = chainrule.tensor([2.0, 3.0], requires_grad=True)
    with pytest.raises(NotImplementedError, match="derivative for 'zeta'"):
        chainrule.special.zeta(x, 1.0).sum().backward()
    # torch's two refusals differ: zeta's NotImplementedError, heaviside's RuntimeError naming aten::
    with pytest.raises(RuntimeError, match="derivative for aten::heaviside is not implemented"):
        chainrule.heaviside(x, chainrule.tensor([0.5])).sum().backward()


def test_logit_gradient_is_zero_where_eps_clamps_and_nan_outside_without_eps():
    p = chainrule.tensor([0.001, 0.5, 0.9999, 1.5], dtype=chainrule.float64, requires_grad=True)
    pt = torch.tensor([0.001, 0.5, 0.9999, 1.5], dtype=torch.float64, requires_grad=True)
    chainrule.logit(p, eps=0.01).sum().backward()
    torch.logit(pt, eps=0.01).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), pt.grad.numpy())
    p.grad = None
    pt.grad = None
    chainrule.logit(p).sum().backward()
    torch.logit(pt).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-14)


# ---------------------------------------------------------------- errors, as torch's
def test_errors_match_torch_types():
    x = chainrule.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not support negative n"):
        chainrule.polygamma(-1, x)
    with pytest.raises(TypeError, match=r"argument 'n' \(position 1\) must be int"):
        chainrule.polygamma(1.5, x)
    with pytest.raises(RuntimeError, match="p has to be greater than or equal to 1"):
        chainrule.mvlgamma(x, 0)
    with pytest.raises(RuntimeError, match="different dtypes"):
        chainrule.heaviside(x, chainrule.tensor([1], dtype=chainrule.int64))
    with pytest.raises(RuntimeError, match="not implemented for 'Float'"):
        chainrule.gcd(x, x)
    with pytest.raises(TypeError, match="must be Tensor"):
        chainrule.igamma(x, 2.0)
    with pytest.raises(RuntimeError, match=r"The `\+` operator, on a bool tensor"):
        chainrule.positive(chainrule.tensor([True]))
    for fn in (lambda: torch.polygamma(-1, torch.tensor([1.0])), lambda: torch.mvlgamma(torch.tensor([1.0]), 0),
               lambda: torch.gcd(torch.tensor([1.0]), torch.tensor([1.0]))):
        with pytest.raises(RuntimeError):
            fn()


def test_special_namespace_aliases_compute_as_their_ops():
    # (as in torch, each is its own function: its refusals name special_<name>)
    special = chainrule.special
    assert special.psi is not chainrule.digamma and special.erfinv is not chainrule.erfinv
    x = chainrule.tensor([0.25, 0.5, 2.0])
    for alias, op, args in ((special.gammaln, chainrule.lgamma, ()), (special.psi, chainrule.digamma, ()),
                            (special.digamma, chainrule.digamma, ()), (special.multigammaln, chainrule.mvlgamma, (1,)),
                            (special.gammainc, chainrule.igamma, (x,)), (special.gammaincc, chainrule.igammac, (x,)),
                            (special.logit, chainrule.logit, ()), (special.erfinv, chainrule.erfinv, ()),
                            (special.i0, chainrule.i0, ())):
        np.testing.assert_array_equal(alias(x, *args).numpy(), op(x, *args).numpy())
    with pytest.raises(AttributeError, match="bessel_j2"):
        special.bessel_j2  # noqa: B018 (the attribute access is what raises)


def test_kernels_run_on_a_device_without_cupyx_through_a_host_copy():
    from chainrule._backend import use_standin_cuda
    from chainrule.testing import standin

    values = np.array([0.5, 1.5, 7.25])
    with use_standin_cuda():
        x = chainrule.tensor(values).to("cuda").requires_grad_()
        standin.reset_transfers()
        y = chainrule.lgamma(x) + chainrule.special.i1e(x) + chainrule.polygamma(2, x)
        assert standin.transfers() > 0  # the NumPy kernels ran on host copies (the stand-in has no cupyx)
        assert y.device.type == "cuda"
        y.sum().backward()
        # ops written with the array module run there with no copy
        standin.reset_transfers()
        z = chainrule.sinc(x) + chainrule.acosh(x + 1)
        assert standin.transfers() == 0
        ours, grad, ours_z = (t.detach().cpu().numpy() for t in (y, x.grad, z))
    expected = torch.tensor(values, requires_grad=True)
    theirs = torch.lgamma(expected) + torch.special.i1e(expected) + torch.polygamma(2, expected)
    theirs.sum().backward()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(grad, expected.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours_z, np.sinc(values) + np.arccosh(values + 1), rtol=1e-6)


# ---------------------------------------------------------------- a whole program, on both libraries
def _fit_gamma(lib, data: np.ndarray, steps: int = 60):
    """Maximum-likelihood fit of a gamma distribution's (log) shape and rate by gradient descent:
    the log-likelihood uses lgamma, its gradient digamma, and the check trigamma (polygamma(1))."""
    x = lib.tensor(data, dtype=lib.float64)
    log_shape = lib.zeros((), dtype=lib.float64, requires_grad=True)
    log_rate = lib.zeros((), dtype=lib.float64, requires_grad=True)
    optimizer = lib.optim.SGD([log_shape, log_rate], lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        shape, rate = log_shape.exp(), log_rate.exp()
        nll = -(shape * rate.log() + (shape - 1) * x.log() - rate * x - lib.lgamma(shape)).mean()
        nll.backward()
        optimizer.step()
    shape = log_shape.detach().exp()
    fisher = lib.polygamma(1, shape) - 1 / shape
    tail = lib.special.gammaincc(shape.expand(3), lib.tensor([1.0, 2.0, 5.0], dtype=lib.float64) * log_rate.detach().exp())
    return [t.detach().numpy() for t in (log_shape, log_rate, nll, fisher, tail, lib.digamma(shape))]


def test_gamma_fit_program_matches_torch():
    data = np.random.default_rng(3).gamma(2.5, 1 / 1.5, size=200)
    ours, theirs = _fit_gamma(chainrule, data), _fit_gamma(torch, data)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-8)
