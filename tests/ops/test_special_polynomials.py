"""torch.special's Bessel, Airy and orthogonal-polynomial functions (ops/special_polynomials.py,
ops/_bessel.py) against torch in float64 over wide ranges, the branch points, the interval ends
and the non-finite values; the absent gradient; the errors; and the functions on the CuPy stand-in.

The OpInfo registry (chainrule/testing/opinfo/special_polynomials.py) compares ordinary float32
and float64 samples, dtypes and broadcasting.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule import special

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
# every branch of every kernel: the series/asymptotic switches (2, 2.09, 5, 8, 8.32, 103.9),
# both signs, tiny and huge magnitudes, and ±inf/NaN
WIDE = np.concatenate([
    _RNG.uniform(-40, 40, 800), _RNG.uniform(-6, 6, 400), 10 ** _RNG.uniform(-8, 3, 100),
    -(10 ** _RNG.uniform(-8, 3, 100)),
    [0.0, -0.0, 1e-6, -1e-6, 1e-5, 2.0, -2.0, 2.09, -2.09, 5.0, -5.0, 8.0, -8.0, 8.3203353, 103.892, 103.9,
     150.0, 700.0, 1e4, np.inf, -np.inf, np.nan],
])

BESSEL = ["airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0",
          "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0",
          "scaled_modified_bessel_k1", "spherical_bessel_j0"]
POLYNOMIALS = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
               "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
               "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "hermite_polynomial_h",
               "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p"]


def _assert_close(ours: np.ndarray, theirs: np.ndarray, rtol: float, name: str) -> None:
    # relative error, except near a zero of the function (where only an absolute error is meaningful)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * 1e-2, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("name", BESSEL)
def test_bessel_and_airy_match_torch_in_float64(name):
    ours = getattr(special, name)(chainrule.tensor(WIDE)).numpy()
    theirs = getattr(torch.special, name)(torch.tensor(WIDE)).numpy()
    _assert_close(ours, theirs, 1e-12, name)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)) and np.array_equal(np.isinf(ours), np.isinf(theirs))


def _polynomial_grid():
    x = np.concatenate([_RNG.uniform(-1.2, 1.2, 200), _RNG.uniform(-4, 4, 40),
                        [-1.0, 1.0, 0.0, 0.5, -0.5, 1e-3, -1e-3, 0.999999, 2.0, -2.0]])
    n = np.concatenate([np.arange(-2, 26), [2.5, 7.9, -0.5, 40.0, 64.0]])
    xs, ns = np.meshgrid(x, n)
    return xs.ravel(), ns.ravel()


@pytest.mark.parametrize("name", POLYNOMIALS)
def test_polynomials_match_torch_in_float64(name):
    # every degree from -2 to 25, truncated non-integers, and the closed forms' degrees; at the
    # interval's ends and its middle (the shifted forms' ends), inside and outside it
    x, n = _polynomial_grid()
    ours = getattr(special, name)(chainrule.tensor(x), chainrule.tensor(n)).numpy()
    theirs = getattr(torch.special, name)(torch.tensor(x), torch.tensor(n)).numpy()
    _assert_close(ours, theirs, 1e-10, name)


@pytest.mark.parametrize("name", POLYNOMIALS)
def test_polynomials_take_numbers_and_integer_tensors_with_torch_dtypes(name):
    for args in [(0.3, [2, 3, 9]), ([0.25, -0.75], 4), ([1, 2], 3), ([0.5], [1.0, 2.0])]:
        ours_args = [chainrule.tensor(a) if isinstance(a, list) else a for a in args]
        torch_args = [torch.tensor(a) if isinstance(a, list) else a for a in args]
        ours = getattr(special, name)(*ours_args)
        theirs = getattr(torch.special, name)(*torch_args)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch", "chainrule"), (name, args)
        assert tuple(ours.shape) == tuple(theirs.shape)
        # torch's float32 closed forms lose up to ~5e-5 near a root at degree 9 (its libm's float32 sin of
        # (n + 1)θ); chainrule evaluates them in float64: so near torch's, and near the float64 truth
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, err_msg=f"{name}{args}")
        exact = getattr(torch.special, name)(*[torch.as_tensor(a).to(theirs.dtype).double() for a in torch_args])
        np.testing.assert_allclose(ours.numpy(), exact.numpy(), rtol=1e-5, atol=1e-6, err_msg=f"{name}{args}")


def test_polynomial_nan_at_a_nan_point():
    # torch's kernels stop their recurrence at a NaN and return an uninitialised value there
    # (its result is garbage: 15, -56, ... for U); chainrule returns the NaN
    for name in POLYNOMIALS:
        value = getattr(special, name)(chainrule.tensor([np.nan, 0.3], dtype=chainrule.float64),
                                       chainrule.tensor([3.0, 3.0], dtype=chainrule.float64))
        assert np.isnan(value[0].item()) and np.isfinite(value[1].item()), name


def test_huge_degrees_stop_at_the_overflow_as_torch():
    # outside [-1, 1] the recurrence overflows to NaN within a few hundred steps, where torch's
    # loop stops too; inside, the closed form answers whatever the degree
    x, n = [2.0, 0.5, -3.0], [1e7, 1e7, 2e6]
    for name in ("chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_w"):
        ours = getattr(special, name)(chainrule.tensor(x, dtype=chainrule.float64), chainrule.tensor(n, dtype=chainrule.float64))
        theirs = getattr(torch.special, name)(torch.tensor(x, dtype=torch.float64), torch.tensor(n, dtype=torch.float64))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, equal_nan=True, err_msg=name)


def test_hermite_degree_limit_is_torchs_per_dtype():
    for dtype, torch_dtype in [(chainrule.float64, torch.float64), (chainrule.float32, torch.float32)]:
        n = [3.0, 127.0, 129.0, 511.0, 600.0]
        for name in ("hermite_polynomial_h", "hermite_polynomial_he"):
            ours = getattr(special, name)(chainrule.tensor([0.1] * 5, dtype=dtype), chainrule.tensor(n, dtype=dtype))
            theirs = getattr(torch.special, name)(torch.tensor([0.1] * 5, dtype=torch_dtype),
                                                  torch.tensor(n, dtype=torch_dtype))
            assert np.array_equal(np.isnan(ours.numpy()), np.isnan(theirs.numpy())), (name, dtype)


def test_float32_inputs_compute_in_float32():
    x = _RNG.uniform(-8, 8, 50).astype(np.float32)
    for name in BESSEL:
        ours = getattr(special, name)(chainrule.tensor(x))
        assert ours.dtype == chainrule.float32
        theirs = getattr(torch.special, name)(torch.tensor(x)).numpy()
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=2e-5, atol=1e-6, err_msg=name)
    ints = special.bessel_j0(chainrule.tensor([1, 2, 3]))
    assert ints.dtype == chainrule.float32  # integers compute in the default dtype, as torch


def test_no_gradient_as_torch():
    x = chainrule.tensor([0.5, 1.5], dtype=chainrule.float64, requires_grad=True)
    tx = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)
    for name in BESSEL:
        assert getattr(special, name)(x).requires_grad is getattr(torch.special, name)(tx).requires_grad is False
    for name in POLYNOMIALS:
        assert getattr(special, name)(x, 3).requires_grad is getattr(torch.special, name)(tx, 3).requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        special.bessel_j0(x).sum().backward()
    # composed with a differentiable op, the gradient reaches x through that op only, as torch
    (special.legendre_polynomial_p(x, 2) * x).sum().backward()
    (torch.special.legendre_polynomial_p(tx, 2) * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_errors_as_torch():
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        special.bessel_j0(0.5)
    with pytest.raises(TypeError):
        special.chebyshev_polynomial_t(0.5, 2)
    if hasattr(chainrule, "complex64"):  # (complex dtypes are newer than these functions)
        with pytest.raises(NotImplementedError, match="ComplexFloat"):
            special.bessel_j0(chainrule.tensor([1j], dtype=chainrule.complex64))
    with pytest.raises(AttributeError):
        special.bessel_j2  # noqa: B018 (the attribute access is what raises)


def test_out_argument():
    out = chainrule.empty(3, dtype=chainrule.float64)
    x = chainrule.tensor([0.5, 1.0, 2.0], dtype=chainrule.float64)
    result = special.bessel_j1(x, out=out)
    assert result is out
    np.testing.assert_allclose(out.numpy(), torch.special.bessel_j1(torch.tensor([0.5, 1.0, 2.0],
                                                                                 dtype=torch.float64)).numpy())
    special.hermite_polynomial_he(x, 4, out=out)
    np.testing.assert_allclose(out.numpy(), torch.special.hermite_polynomial_he(
        torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64), 4).numpy())


def test_on_the_cupy_standin():
    from chainrule._backend import use_standin_cuda

    x = np.array([-3.0, -0.5, 0.25, 1.5, 4.0, 9.0])
    expected = {name: getattr(torch.special, name)(torch.tensor(x)).numpy() for name in BESSEL}
    expected.update({name: getattr(torch.special, name)(torch.tensor(x / 4), torch.tensor([0.0, 1, 2, 5, 9, 12])).numpy()
                     for name in POLYNOMIALS})
    with use_standin_cuda():
        device_x = chainrule.tensor(x).to("cuda")
        degrees = chainrule.tensor([0.0, 1, 2, 5, 9, 12]).to("cuda")
        results = {name: getattr(special, name)(device_x) for name in BESSEL}
        results.update({name: getattr(special, name)(device_x / 4, degrees) for name in POLYNOMIALS})
        assert all(r.device.type == "cuda" for r in results.values())
        ours = {name: r.cpu().numpy() for name, r in results.items()}
    for name, value in ours.items():
        _assert_close(value, expected[name], 1e-10, name)
