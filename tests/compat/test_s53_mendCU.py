"""add/sub with alpha as torch's CPU kernel computes it on a CPU without AVX-512 (AVX2 + FMA): the
bfloat16/float16 vector step and the float64 fused multiply-add through OpenBLAS's daxpy."""

import ctypes

import numpy as np
import pytest

import chainrule
from chainrule import _opmath

torch = pytest.importorskip("torch")


def _same_bits(expected, actual):
    return np.array_equal(np.asarray(expected).view(np.int64), np.asarray(actual).view(np.int64))


def _blocks_fused_tail_twice(n, alpha, x, incx, y, incy):
    """cblas_daxpy as OpenBLAS's Haswell kernel computes it: one rounding over n & -16 elements,
    a multiply then an add over the rest."""
    xs = np.ctypeslib.as_array(ctypes.cast(x, ctypes.POINTER(ctypes.c_double)), (n,))
    ys = np.ctypeslib.as_array(ctypes.cast(y, ctypes.POINTER(ctypes.c_double)), (n,))
    body = n - n % 16
    ys[:body] = _opmath._emulated_fused_multiply_add_float64(xs[:body].copy(), alpha, ys[:body].copy())
    ys[body:] += xs[body:] * alpha


def test_a_daxpy_fused_over_vector_blocks_only_is_called_on_those():
    assert not _opmath._rounds_once(_blocks_fused_tail_twice)
    assert _opmath._rounds_once(_opmath._vector_blocks_only(_blocks_fused_tail_twice))


@pytest.mark.parametrize("alpha", [0.3, 1e-300])
def test_float64_add_with_alpha_matches_torch_on_every_tail_length(alpha):
    """Lengths 1..49 put every element in a vector body or a tail (torch's: 8 doubles a step with
    AVX2, 16 with AVX-512; OpenBLAS's: 16); alpha=1e-300 gives subnormal results."""
    if not _opmath._load_daxpy():
        pytest.skip("no fusing daxpy: the emulation keeps NumPy's two roundings for subnormal products")
    rng = np.random.default_rng(53)
    for n in range(1, 50):
        a = rng.standard_normal(n) * 1e-300 * np.exp2(rng.integers(-20, 20, n))
        b = rng.standard_normal(n)
        a[: n // 3] = -b[: n // 3] * alpha * (1 + rng.standard_normal(n // 3) * 1e-15)
        expected = torch.add(torch.from_numpy(a), torch.from_numpy(b), alpha=alpha).numpy()
        actual = chainrule.add(chainrule.tensor(a), chainrule.tensor(b), alpha=alpha).numpy()
        assert _same_bits(expected, actual), n
        written = chainrule.tensor(a.copy())
        written.add_(chainrule.tensor(b), alpha=alpha)
        assert _same_bits(torch.from_numpy(a.copy()).add_(torch.from_numpy(b), alpha=alpha).numpy(), written.numpy())


@pytest.mark.parametrize("length", [16, 17, 48, 63, 65])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_alpha_vector_step_is_torchs_on_this_cpu(dtype, length):
    """On AVX2 torch's step is 32 elements as on AVX-512 (2 Vectorized<Half> of 16): 16 and 17
    run wholly in its scalar loop, 48 leaves 16 to it, 65 one."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AVX2"):
        pytest.skip("the vector width is modelled for torch's x86 kernels")
    rng = np.random.default_rng(length)
    x = rng.standard_normal(length).astype(np.float32)
    y = rng.standard_normal(length).astype(np.float32)
    results = []
    for lib in (chainrule, torch):
        a, b = lib.tensor(x).to(getattr(lib, dtype)), lib.tensor(y).to(getattr(lib, dtype))
        results.append([r.float().numpy() for r in (lib.add(a, b, alpha=0.3), lib.sub(a, b, alpha=0.7))])
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)
