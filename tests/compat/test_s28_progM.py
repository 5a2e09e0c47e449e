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


def _outcome(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001  (the type and text are what is compared)
        return type(error).__name__, str(error)
    return None


_COMPLEX_REFUSALS = [
    lambda lib, z: z.exponential_(),
    lambda lib, z: z.exponential_(-1),
    lambda lib, z: z.cauchy_(),
    lambda lib, z: z.cauchy_(0, -1),
    lambda lib, z: z.geometric_(0.5),
    lambda lib, z: z.geometric_(2),
    lambda lib, z: z.bernoulli_(0.5),
    lambda lib, z: z.bernoulli_(2.0),
    lambda lib, z: z.bernoulli_(lib.full((3,), 0.5)),
    lambda lib, z: z.bernoulli_(lib.full((3,), 2.0)),
    lambda lib, z: lib.bernoulli(z),
    lambda lib, z: lib.bernoulli(z, 0.5),
    lambda lib, z: lib.bernoulli(z, 2.0),
    lambda lib, z: z.random_(),
    lambda lib, z: z.random_(5),
    lambda lib, z: z.random_(-1),
    lambda lib, z: z.random_(1, 5),
    lambda lib, z: z.random_(5, 1),
    lambda lib, z: z.random_(1, None),
    lambda lib, z: lib.zeros(3, dtype=lib.int64).exponential_(-1),
    lambda lib, z: lib.zeros(3, dtype=lib.bool).geometric_(2),
    lambda lib, z: lib.zeros(3, dtype=lib.bool).geometric_(0.5),
]


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("call", _COMPLEX_REFUSALS)
def test_random_fills_without_a_complex_kernel_refuse_complex_tensors_as_torch(dtype, call):
    # only uniform_ and normal_ fill complex tensors in torch; chainrule filled the real parts of the others
    # (exponential_, cauchy_, geometric_, bernoulli_, random_) and left the imaginary parts 0.
    # Argument checks come first, as torch's: a bad lambda, sigma or p is reported before the dtype
    outcomes = {lib: _outcome(lambda lib=lib: call(lib, lib.zeros(3, dtype=getattr(lib, dtype))))
                for lib in (torch, chainrule)}
    assert outcomes[torch] is not None
    assert outcomes[chainrule] == outcomes[torch]


def test_complex_uniform_and_normal_fills_still_draw_torch_numbers():
    values = {}
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        values[lib] = [_to_numpy(lib.zeros(5, dtype=lib.complex64).uniform_(-1, 1)),
                       _to_numpy(lib.zeros(5, dtype=lib.complex128).normal_(1, 2))]
    for ours, theirs in zip(values[chainrule], values[torch]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
