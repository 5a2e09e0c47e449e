"""Complex tensors: their parts, conjugation, angle, polar and complex(), and the holomorphic
elementwise ops on complex inputs, compared with torch (values and the conjugate-Wirtinger
gradients) and gradchecked in complex128 (real and imaginary perturbations)."""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, noncontig, positive, randn


def crandn(*shape, seed: int = 0) -> np.ndarray:
    """Complex samples: standard normal real and imaginary parts."""
    return np.asarray(randn(*shape, seed=seed) + 1j * randn(*shape, seed=seed + 50))


def _parts(lib, z):
    # one scalar of both views, so the gradient reaches z through each
    return z.real * 2 + z.imag * z.imag


def _holomorphic(lib, z, w):
    return (z * w).exp() / (w + 3) + z.sin() * z.cos() + (z * 0.5).tanh() + z.sigmoid() + z.sqrt().log() + z ** 3


OPS = [
    OpInfo("real", "complex", lambda: [
        OpCase("real", lambda lib, z: lib.real(z) * 3, [crandn(3, 4)]),
        OpCase("real_imag_property", _parts, [crandn(2, 3)]),
        OpCase("real_of_real", lambda lib, x: lib.real(x) * 2, [randn(3)]),
        OpCase("real_noncontig", lambda lib, z: z.real.sum(0), [noncontig(crandn(3, 4))]),
    ], methods=("real",)),
    OpInfo("imag", "complex", lambda: [
        OpCase("imag", lambda lib, z: lib.imag(z) * 3, [crandn(3, 4)]),
        OpCase("imag_0d", lambda lib, z: z.imag * 2, [crandn()]),
    ], methods=("imag",)),
    OpInfo("view_as_real", "complex", lambda: [
        OpCase("view_as_real", lambda lib, z: lib.view_as_real(z) * 2, [crandn(3, 4)]),
        OpCase("view_as_real_0d", lambda lib, z: lib.view_as_real(z) * 2, [crandn()]),
        OpCase("view_as_real_empty", lambda lib, z: lib.view_as_real(z) * 2, [crandn(0, 3)]),
        OpCase("view_as_real_flatten", lambda lib, z: lib.view_as_real(z * 1).flatten(1), [crandn(2, 3, 4)]),
    ]),
    OpInfo("view_as_complex", "complex", lambda: [
        OpCase("view_as_complex", lambda lib, x: lib.view_as_complex(x) * (1 + 2j), [randn(3, 4, 2)]),
        OpCase("view_as_complex_rope", lambda lib, x: lib.view_as_complex(x.float().reshape(2, 3, -1, 2)) * 2,
               [randn(2, 3, 8)], gradcheck=False, gradgradcheck=False),  # .float(): float32 differences
        OpCase("view_as_complex_transposed", lambda lib, x: lib.view_as_complex(x.transpose(0, 1)) * 2, [randn(3, 4, 2)]),
    ]),
    OpInfo("conj", "complex", lambda: [
        OpCase("conj", lambda lib, z: z.conj() * z, [crandn(3, 4)]),
        OpCase("conj_of_real", lambda lib, x: lib.conj(x) * 2, [randn(3)]),
        OpCase("conj_H", lambda lib, z: z.H @ z, [crandn(3, 2)]),
        OpCase("conj_mH", lambda lib, z: z.mH * 2, [crandn(2, 3, 2)]),
    ], methods=("conj", "H", "mH", "adjoint")),
    OpInfo("conj_physical", "complex", lambda: [
        OpCase("conj_physical", lambda lib, z: lib.conj_physical(z) * 2, [crandn(3, 4)]),
        OpCase("conj_physical_", lambda lib, z: (z * 1).conj_physical_() * 2, [crandn(3, 4)]),
        OpCase("conj_physical_top_level_", lambda lib, z: lib.conj_physical_(z * 1) * 2, [crandn(3, 4)]),
    ], methods=("conj_physical", "conj_physical_"), aliases=("conj_physical_",)),
    OpInfo("resolve_conj", "complex", lambda: [
        OpCase("resolve_conj", lambda lib, z: lib.resolve_conj(z.conj()) * 2, [crandn(3)]),
        OpCase("resolve_neg", lambda lib, z: lib.resolve_neg(-z) * 2, [crandn(3)]),
    ], methods=("resolve_conj",)),
    OpInfo("resolve_neg", "complex", lambda: [
        OpCase("resolve_neg_only", lambda lib, z: z.resolve_neg() * 2, [crandn(3)]),
    ], methods=("resolve_neg",)),
    OpInfo("is_conj", "complex", lambda: [
        # torch's conj() is a lazy view (is_conj True); chainrule's is eager: compare a resolved tensor
        OpCase("is_conj", lambda lib, z: lib.tensor(lib.is_conj(z.conj().resolve_conj())), [crandn(3)], grad=[False]),
    ], methods=("is_conj",), supports_autograd=False),
    OpInfo("is_neg", "complex", lambda: [
        OpCase("is_neg", lambda lib, z: lib.tensor(lib.is_neg(z)), [crandn(3)], grad=[False]),
    ], methods=("is_neg",), supports_autograd=False),
    OpInfo("angle", "complex", lambda: [
        OpCase("angle", lambda lib, z: lib.angle(z), [crandn(3, 4)]),
        OpCase("angle_real", lambda lib, x: x.angle(), [randn(5)]),
    ], methods=("angle",)),
    OpInfo("complex", "complex", lambda: [
        OpCase("complex", lambda lib, a, b: lib.complex(a, b), [randn(3, 4), randn(3, 4, seed=1)]),
        OpCase("complex_broadcast", lambda lib, a, b: lib.complex(a, b) * 2, [randn(3, 1), randn(4, seed=1)]),
    ]),
    OpInfo("polar", "complex", lambda: [
        OpCase("polar", lambda lib, r, t: lib.polar(r, t), [positive(3, 4), randn(3, 4, seed=1)]),
        OpCase("polar_rope_freqs", lambda lib, t: lib.polar(lib.ones_like(t), t), [randn(4, 3)]),
    ]),
    OpInfo("isreal", "complex", lambda: [
        OpCase("isreal", lambda lib, z: lib.isreal(z), [np.array([1 + 0j, 2j, -1 + 0j])], grad=[False]),
        OpCase("isreal_real", lambda lib, x: lib.isreal(x), [randn(3)], grad=[False]),
        OpCase("isreal_int_method", lambda lib, x: x.isreal(), [np.arange(-2, 3)], grad=[False]),
    ], methods=("isreal",), supports_autograd=False),
    OpInfo("Tensor.cfloat", "complex", lambda: [
        # complex64 results: compared with torch, too coarse for finite differences
        OpCase("cfloat", lambda lib, x: x.cfloat() * (1 + 1j), [randn(3)], gradcheck=False, gradgradcheck=False),
        OpCase("cdouble", lambda lib, x: x.cdouble() * 1j, [randn(3)]),
        OpCase("to_cfloat_real_part_back", lambda lib, z: z.to(lib.cfloat).abs(), [randn(4)], gradcheck=False,
               gradgradcheck=False),
    ], methods=("cfloat", "cdouble", "chalf")),  # (chalf: complex32, which chainrule cannot store, refuses)
]

op_db = OPS


def arithmetic_cases() -> list[OpCase]:
    """The existing elementwise, reduction, matmul and shape ops on complex inputs: tests/ops/test_complex.py
    runs them through the harness (they belong to other families' entries, which stay real-valued)."""
    return [
        OpCase("complex_holomorphic", _holomorphic, [crandn(3, 4), crandn(3, 4, seed=2)]),
        OpCase("complex_mixed_real", lambda lib, z, x: z * x + x / (z + 4) - z, [crandn(3, 4), randn(4, seed=3)]),
        OpCase("complex_abs", lambda lib, z: z.abs() + lib.abs(z * 2), [crandn(3, 4)]),
        OpCase("complex_scalar", lambda lib, x: (x * (1 + 2j) + 1j).exp(), [randn(5)]),
        OpCase("complex_reductions", lambda lib, z: z.sum(0) + z.mean(1).sum() + z.prod(1).sum(), [crandn(2, 3)]),
        OpCase("complex_var_norm", lambda lib, z: z.var(0) + lib.linalg.vector_norm(z, dim=1).sum(), [crandn(3, 4)]),
        OpCase("complex_matmul", lambda lib, a, b: a @ b, [crandn(2, 3, 4), crandn(4, 2, seed=4)]),
        OpCase("complex_einsum", lambda lib, a, b: lib.einsum("bix,iox->box", a, b), [crandn(2, 3, 4), crandn(3, 2, 4, seed=5)]),
        OpCase("complex_shape_ops", lambda lib, z: lib.cat([z.t(), z.t() * 2]).reshape(2, -1)[:, 1:] * 1, [crandn(2, 3)]),
        OpCase("complex_empty", lambda lib, z: (z * 2).exp().sum(0), [crandn(0, 3)]),
        OpCase("complex_0d", lambda lib, z: (z * z).log(), [crandn()]),
        OpCase("complex_sgn", lambda lib, z: z.sgn() * 2, [crandn(4)]),
        OpCase("complex_cumsum_cumprod", lambda lib, z: z.cumsum(1) + z.cumprod(1), [crandn(2, 4)]),
        OpCase("complex_pow_tensor", lambda lib, a, b: a ** b, [crandn(3), crandn(3, seed=7) * 0.5]),
        OpCase("complex_vdot_dot", lambda lib, a, b: lib.vdot(a, b) + lib.dot(a, b), [crandn(4), crandn(4, seed=6)]),
        OpCase("complex_allclose", lambda lib, a: lib.isclose(a, a * (1 + 1e-9)), [crandn(3)], grad=[False]),
        ]
