"""Lane perfAB (session 45): float64 add/sub/rsub with alpha through BLAS's fused daxpy, bit for bit
as torch's fused multiply-add, and the exact emulation kept where daxpy is missing or rounds twice."""

import ctypes

import numpy as np
import pytest
import torch

import chainrule
from chainrule import _opmath


def _same_bits(expected, actual) -> bool:
    """Equal values, signs of zero included, NaN where NaN."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.dtype != actual.dtype or expected.shape != actual.shape:
        return False
    both_nan = np.isnan(expected) & np.isnan(actual)
    return bool(np.all(both_nan | ((expected == actual) & (np.signbit(expected) == np.signbit(actual)))))


def _stress_operands(rng, n: int, alpha: float):
    """a and b over magnitudes 2^±60, a tenth cancelling a ≈ -alpha·b, subnormal sums and
    products, products past float64's range, infinities, NaN and zeros of both signs."""
    a = rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n))
    b = rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n))
    tenth = n // 10
    a[:tenth] = -(b[:tenth] * alpha) * (1 + rng.standard_normal(tenth) * 1e-15)
    specials = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])
    a[tenth:2 * tenth] = rng.choice(specials, tenth)
    b[2 * tenth:3 * tenth] = rng.choice(specials, tenth)
    a[3 * tenth:4 * tenth] = rng.standard_normal(tenth) * 1e-310  # subnormal
    b[4 * tenth:5 * tenth] = rng.standard_normal(tenth) * 1e-300  # subnormal products for small alpha
    b[5 * tenth:5 * tenth + 1000] = rng.standard_normal(1000) * 1e300  # products that overflow
    a[5 * tenth + 1000:5 * tenth + 2000] = 0.0
    a[5 * tenth + 2000:5 * tenth + 3000] = -0.0
    order = rng.permutation(n)  # the special values spread over every block and tail
    return a[order], b[order]


@pytest.mark.parametrize("alpha", [0.3, -0.1264487352003825, 3.5e-6, 24.457218682958267, -7.0e5, 1e-300])
def test_float64_add_with_alpha_matches_torch_bit_for_bit_on_a_million_elements(alpha):
    rng = np.random.default_rng(4545)
    with np.errstate(all="ignore"):
        a, b = _stress_operands(rng, 1_000_000, alpha)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ca, cb = chainrule.tensor(a), chainrule.tensor(b)
    assert _same_bits(torch.add(ta, tb, alpha=alpha).numpy(), chainrule.add(ca, cb, alpha=alpha).numpy())
    assert _same_bits(torch.sub(ta, tb, alpha=alpha).numpy(), chainrule.sub(ca, cb, alpha=alpha).numpy())
    assert _same_bits(torch.rsub(ta, tb, alpha=alpha).numpy(), chainrule.rsub(ca, cb, alpha=alpha).numpy())
    expected, actual = ta.clone().add_(tb, alpha=alpha), ca.clone().add_(cb, alpha=alpha)
    assert _same_bits(expected.numpy(), actual.numpy())


LAYOUTS = {
    "transposed": lambda m, a, b: m.add(a.reshape(300, 200).t(), b.reshape(300, 200).t(), alpha=0.3),
    "one transposed": lambda m, a, b: m.add(a.reshape(300, 200).t(), b.reshape(200, 300), alpha=0.3),
    "strided": lambda m, a, b: m.add(a[::7], b[1::7], alpha=-1.3),
    "reversed": lambda m, a, b: m.sub(a.flip(0), b, alpha=0.7),
    "broadcast": lambda m, a, b: m.add(a.reshape(300, 200), b[:200], alpha=0.3),
    "broadcast self": lambda m, a, b: m.add(a[:200], b.reshape(300, 200), alpha=0.3),
    "0-d": lambda m, a, b: m.add(a[3], b[4], alpha=0.3),
    "0-d other": lambda m, a, b: m.add(a, b[4], alpha=0.3),
    "empty": lambda m, a, b: m.add(a[:0], b[:0], alpha=0.3),
    "number": lambda m, a, b: m.rsub(a, 2.7, alpha=0.3),
    "in place": lambda m, a, b: a.clone().add_(b, alpha=0.3),
    "in place strided": lambda m, a, b: a.clone()[::2].add_(b[::2], alpha=0.3),
    "in place transposed": lambda m, a, b: a.clone().reshape(300, 200).t().add_(b.reshape(200, 300), alpha=0.3),
    "in place itself": lambda m, a, b: _itself(a),
    "in place overlapping": lambda m, a, b: _overlapping(a),
    "in place broadcast": lambda m, a, b: a.clone().reshape(300, 200).add_(b[:200], alpha=-0.3),
    "alpha zero": lambda m, a, b: m.add(a, b, alpha=0.0),
}


def _itself(a):
    c = a.clone()
    return c.add_(c, alpha=0.3)


def _overlapping(a):
    c = a.clone()
    c[::2].add_(c[1::2], alpha=0.3)  # interleaved: one buffer's bounds, no element shared
    return c


@pytest.mark.parametrize("form", sorted(LAYOUTS))
def test_float64_add_with_alpha_layouts_and_aliasing_as_torch(form):
    """Every layout and alias the daxpy path meets: values bit for bit, and the result's strides."""
    rng = np.random.default_rng(17)
    a, b = rng.standard_normal(60_000), rng.standard_normal(60_000)
    a[:6], b[6:12] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e300], [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e300]
    with np.errstate(all="ignore"):
        expected = LAYOUTS[form](torch, torch.from_numpy(a), torch.from_numpy(b))
    actual = LAYOUTS[form](chainrule, chainrule.tensor(a), chainrule.tensor(b))
    assert _same_bits(expected.numpy(), actual.numpy())
    assert actual.stride() == expected.stride()


def test_float64_sgd_steps_match_torch():
    """SGD (momentum, Nesterov, weight decay) runs add with alpha four times a step."""
    rng = np.random.default_rng(3)
    weights = [rng.standard_normal((300, 400)), rng.standard_normal(400)]
    grads = [[rng.standard_normal(w.shape) for w in weights] for _ in range(3)]
    results = []
    for module in (torch, chainrule):
        params = [module.tensor(w.copy(), requires_grad=True) for w in weights]
        optimizer = module.optim.SGD(params, lr=0.013, momentum=0.9, nesterov=True, weight_decay=1e-3)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = module.tensor(g)
            optimizer.step()
        results.append([p.detach().numpy().copy() for p in params])
    assert all(_same_bits(e, a) for e, a in zip(*results))


def _twice_rounding_daxpy(n, alpha, x, incx, y, incy):
    """cblas_daxpy as a kernel without fma computes it: the product rounded, then the sum."""
    xs = np.ctypeslib.as_array(ctypes.cast(x, ctypes.POINTER(ctypes.c_double)), (n,))
    ys = np.ctypeslib.as_array(ctypes.cast(y, ctypes.POINTER(ctypes.c_double)), (n,))
    ys += xs * alpha


def test_a_daxpy_that_rounds_twice_is_refused():
    assert not _opmath._rounds_once(_twice_rounding_daxpy)


def test_the_bundled_daxpy_when_found_rounds_once():
    daxpy = _opmath._load_daxpy()
    if daxpy:
        assert _opmath._rounds_once(daxpy)
    else:  # another BLAS, or a CPU whose kernel multiplies and adds: the emulation answers
        assert _opmath._daxpy is False


@pytest.mark.parametrize("form", sorted(LAYOUTS))
def test_the_emulation_answers_where_daxpy_is_missing(form, monkeypatch):
    """Without daxpy (another BLAS, a kernel without fma) the emulation gives the same bits, but
    where products overflow its split (1e300 operands), where NumPy's twice rounded sum is kept."""
    monkeypatch.setattr(_opmath, "_daxpy", False)
    rng = np.random.default_rng(17)
    a, b = rng.standard_normal(60_000), rng.standard_normal(60_000)
    a[:5], b[6:11] = [np.inf, -np.inf, np.nan, 0.0, -0.0], [np.inf, -np.inf, np.nan, 0.0, -0.0]
    with np.errstate(all="ignore"):
        expected = LAYOUTS[form](torch, torch.from_numpy(a), torch.from_numpy(b))
    actual = LAYOUTS[form](chainrule, chainrule.tensor(a), chainrule.tensor(b))
    assert _same_bits(expected.numpy(), actual.numpy())


@pytest.mark.parametrize("alpha", [0.3, -7.0e5, 3.5e-6])
def test_the_emulation_over_the_stress_set_differs_only_where_documented(alpha, monkeypatch):
    """The fallback on the million-element stress set: torch's bits everywhere but where the
    product's split overflows or its rounding error is below float64's range (the docstring's
    exceptions, where NumPy's twice rounded sum is kept)."""
    monkeypatch.setattr(_opmath, "_daxpy", False)
    rng = np.random.default_rng(4545)
    with np.errstate(all="ignore"):
        a, b = _stress_operands(rng, 1_000_000, alpha)
        expected = torch.add(torch.from_numpy(a), torch.from_numpy(b), alpha=alpha).numpy()
        product = np.abs(b * alpha)
        outside = (np.abs(b) * 2.0**27 > np.finfo(np.float64).max) | (product < 1e-280)
    actual = chainrule.add(chainrule.tensor(a), chainrule.tensor(b), alpha=alpha).numpy()
    differ = ~((expected == actual) & (np.signbit(expected) == np.signbit(actual)) | np.isnan(expected) & np.isnan(actual))
    assert not (differ & ~outside).any()
