"""Session 62, perfAZ: the float32 exact GELU kernels (Abramowitz & Stegun's erf with oneDNN's exp)
with fewer passes, the same bits: e^{-r²}'s clamp is one uint32 minimum on r²'s bits (r² is +0,
positive, +inf or a NaN of either sign, all NaNs above the bound), and the forward that keeps
(e^{-r²}, erf(r)) for the backward computes them in the kept arrays instead of copying them there.
"""

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as F
from chainrule.ops import _special, cpu_features

# |x| = 13.2159...: r² = x²/2 crosses -log(FLT_MIN) = 87.3365, where oneDNN's exp clamps
_CLAMP_EDGE = np.float32(np.sqrt(2 * 87.33654))


def _sweep() -> np.ndarray:
    """Normals at several scales, uniforms over the erf's whole range, values around the exp's clamp,
    ±0, ±inf, NaNs of both signs, subnormals and huge values: 6,000 and some float32 values."""
    rng = np.random.default_rng(62)
    parts = [rng.standard_normal(1000) * scale for scale in (1e-3, 0.3, 1.0, 3.0, 30.0)]
    parts.append(rng.uniform(-14.0, 14.0, 1000))
    edge = np.nextafter(np.full(8, _CLAMP_EDGE, np.float32), np.float32(np.inf))
    for _ in range(3):  # a few ulps either side of the clamp
        edge = np.concatenate([edge, np.nextafter(edge, np.float32(0))])
    parts += [edge, -edge]
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1e-40, -1e-40, 1.1754944e-38,
                -1.1754944e-38, 3.4028235e38, -3.4028235e38, 1e30, -1e30, 1e6, -1e6, 9.3, -9.3]
    parts.append(np.array(specials))
    return np.concatenate([np.asarray(p, np.float32) for p in parts])


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, np.float32).view(np.int32)


def _torch_with_a_replayed_kernel():
    torch = pytest.importorskip("torch")
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX512", "AVX2"):
        pytest.skip(f"torch's oneDNN gelu on this CPU ({capability}) is an FMA-less kernel chainrule does not replay")
    return torch


def _assert_same_values(got: np.ndarray, expected: np.ndarray) -> None:
    """Bit for bit, a NaN's payload and sign included."""
    differing = np.flatnonzero(_bits(got) != _bits(expected))
    assert differing.size == 0, (differing[:5], got.ravel()[differing[:5]], expected.ravel()[differing[:5]])


def test_forward_and_gradient_on_the_edge_sweep_are_torchs_bitwise():
    torch = _torch_with_a_replayed_kernel()
    x = _sweep()
    g = np.random.default_rng(1).standard_normal(x.size).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.gelu(tx)
    (tg,) = torch.autograd.grad(ty, tx, torch.from_numpy(g))
    cx = chainrule.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        cy = F.gelu(cx)
        (cg,) = chainrule.autograd.grad(cy, cx, chainrule.tensor(g))  # from the kept e^{-r²}, erf(r)
    assert cy.grad_fn.name() == ty.grad_fn.name()
    _assert_same_values(cy.detach().numpy(), ty.detach().numpy())
    if torch.backends.cpu.get_cpu_capability() != "AVX2":
        pytest.skip("the backward's bits are measured against torch on AVX2 only (test_s53_mendCT)")
    _assert_same_values(cg.numpy(), tg.numpy())
    # the backward without the forward's parts (a forward under no_grad) is torch's gelu_backward too
    expected = torch.ops.aten.gelu_backward(torch.from_numpy(g), torch.from_numpy(x)).numpy()
    with np.errstate(all="ignore"):
        _assert_same_values(_special.gelu_backward_float32(g, x), expected)


@pytest.mark.parametrize("size", [2, 1000, 16_384, 16_385, 40_003])
def test_kept_parts_are_the_ones_the_backward_computes(size):
    # (IEEE arithmetic only: the same on any CPU) the forward's kept e^{-r²} and erf(r), written in
    # place block by block, give the recomputing backward's bits, and keeping changes no output bit
    x = np.resize(_sweep(), size)
    np.random.default_rng(size).shuffle(x)
    g = np.random.default_rng(2).standard_normal(size).astype(np.float32)
    with np.errstate(all="ignore"):
        y, kept_exp, kept_erf = _special.gelu_float32_abramowitz_stegun(x, keep=True)
        _assert_same_values(y, _special.gelu_float32_abramowitz_stegun(x))
        _assert_same_values(_special.gelu_backward_float32(g, x, (kept_exp, kept_erf)),
                            _special.gelu_backward_float32(g, x))
    assert kept_exp.shape == kept_erf.shape == (size,)


def test_exp_is_zero_past_the_clamp_and_at_nans():
    # e^{-r²} is 0 where r² passes -log(FLT_MIN) or is NaN (oneDNN's minps clamp; from just below the
    # bound its 2^(k-1) is already 0), and positive well below it (r² = 72)
    x = np.array([12.0, _CLAMP_EDGE, 20.0, np.inf, np.nan, -np.nan, -12.0, -np.inf], np.float32)
    with np.errstate(all="ignore"):
        _, kept_exp, kept_erf = _special.gelu_float32_abramowitz_stegun(x, keep=True)
    assert kept_exp[0] > 0 and kept_exp[6] == kept_exp[0]
    assert kept_exp[1:6].tolist() == [0.0] * 5 and kept_exp[7] == 0.0
    assert kept_erf[1:4].tolist() == [1.0] * 3 and kept_erf[7] == -1.0


def test_the_picked_forward_still_matches_its_kernel():
    expected = _special.gelu_float32 if cpu_features.AVX512_CORE else _special.gelu_float32_abramowitz_stegun
    x = _sweep()
    x = x[np.isfinite(x)]
    with np.errstate(all="ignore"):
        _assert_same_values(F.gelu(chainrule.tensor(x)).numpy(), expected(x))
