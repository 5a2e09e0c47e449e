"""Forward-mode AD with complex primals and tangents against torch: the same dual-number program
on both libraries gives the same tangents (holomorphic ops, abs/angle/real/imag/conj/sgn,
reductions, matmul, and real<->complex crossings through promotion, complex() and polar())."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_rng = np.random.default_rng(0)


def _c(*shape):
    return (_rng.standard_normal(shape) + 1j * _rng.standard_normal(shape)).astype(np.complex64)


Z, TZ, W, TW = _c(3), _c(3), _c(3), _c(3)
M, TM = _c(3, 3), _c(3, 3)
R, TR = _rng.standard_normal(3).astype(np.float32), _rng.standard_normal(3).astype(np.float32)

# name -> f(lib, z, w, m, r) on dual tensors (z, w complex vectors, m a complex matrix, r real)
PROGRAMS = {
    "mul": lambda lib, z, w, m, r: z * w, "div": lambda lib, z, w, m, r: z / w,
    "sub": lambda lib, z, w, m, r: z - w, "exp": lambda lib, z, w, m, r: z.exp(),
    "log": lambda lib, z, w, m, r: z.log(), "sin": lambda lib, z, w, m, r: z.sin(),
    "tanh": lambda lib, z, w, m, r: z.tanh(), "sqrt": lambda lib, z, w, m, r: z.sqrt(),
    "pow": lambda lib, z, w, m, r: z ** 2, "reciprocal": lambda lib, z, w, m, r: z.reciprocal(),
    "abs": lambda lib, z, w, m, r: z.abs(), "angle": lambda lib, z, w, m, r: z.angle(),
    "real": lambda lib, z, w, m, r: z.real * 1, "imag": lambda lib, z, w, m, r: z.imag * 1,
    "conj": lambda lib, z, w, m, r: z.conj() * 1, "sgn": lambda lib, z, w, m, r: z.sgn(),
    "abs_squared": lambda lib, z, w, m, r: (z * z.conj()).real * 1,
    "sum": lambda lib, z, w, m, r: z.sum(), "mean": lambda lib, z, w, m, r: z.mean(),
    "prod": lambda lib, z, w, m, r: z.prod(), "dot": lambda lib, z, w, m, r: lib.dot(z, w),
    "vdot": lambda lib, z, w, m, r: lib.vdot(z, w), "matmul": lambda lib, z, w, m, r: m @ z,
    "mm": lambda lib, z, w, m, r: m @ m, "real_times_complex": lambda lib, z, w, m, r: r * (z * 1).detach(),
    "complex": lambda lib, z, w, m, r: lib.complex(r, r * 2), "polar": lambda lib, z, w, m, r: lib.polar(r.abs(), r),
    "real_to_complex_cast": lambda lib, z, w, m, r: r.to(lib.complex64) * z,
    "chain": lambda lib, z, w, m, r: ((m @ z).exp() * w.conj()).abs().sum(),
}


def _tangent(lib, name):
    fw = lib.autograd.forward_ad
    with fw.dual_level():
        def dual(p, t):
            return fw.make_dual(lib.from_numpy(p.copy()), lib.from_numpy(t.copy()))

        out = PROGRAMS[name](lib, dual(Z, TZ), dual(W, TW), dual(M, TM), dual(R, TR))
        tangent = fw.unpack_dual(out).tangent
        return np.asarray(tangent.detach().numpy())


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_complex_tangents_match_torch(name):
    theirs, ours = _tangent(torch, name), _tangent(chainrule, name)
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_real_cast_keeps_its_tangent():
    """x.double() of a dual tensor keeps the tangent (it was dropped by the cast's shortcut)."""
    fw = chainrule.autograd.forward_ad
    with fw.dual_level():
        x = fw.make_dual(chainrule.ones(3), chainrule.full((3,), 2.0))
        tangent = fw.unpack_dual(x.double() * 3).tangent
    assert tangent.dtype is chainrule.float64 and tangent.tolist() == [6.0, 6.0, 6.0]
