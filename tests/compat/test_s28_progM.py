"""Session 28, lane progM: chainrule bugs found by the scientific-ML programs (gp_regression,
fno_fourier, siren_implicit, glow_flow, hmc_bayes_logreg), each checked against torch 2.13."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _to_numpy(t):
    return np.asarray(t.detach().cpu().resolve_conj().numpy() if hasattr(t, "resolve_conj") else t.numpy())


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("shape", [(2, 3), (20,), (16, 16, 8)])
def test_complex_rand_draws_torch_numbers_in_the_parts_precision(dtype, shape):
    # the FNO's SpectralConv1d: nn.Parameter(scale * torch.rand(in, out, modes, dtype=torch.cfloat)); chainrule
    # drew float64 pairs for complex64 too, so every weight and every later draw left torch's stream
    draws = {}
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        first = lib.rand(*shape, dtype=getattr(lib, dtype))
        after = lib.rand(3)
        like = lib.rand_like(first)
        draws[lib] = (first.dtype, [_to_numpy(x) for x in (first, after, like)])
    assert str(draws[chainrule][0]).split(".")[-1] == str(draws[torch][0]).split(".")[-1]
    for ours, theirs in zip(draws[chainrule][1], draws[torch][1]):
        np.testing.assert_array_equal(ours, theirs)
