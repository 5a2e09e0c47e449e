"""Session 57, lane progEW: what the DeltaNet, AFNO and N-HiTS programs found.

torch.fft's results are laid out as torch's CPU kernels leave them: the batch dims outermost (by the
input's strides), then the transformed dims, so ``rfft2(x, dim=(1, 2))`` of a (B, H, W, C) tensor is
not contiguous (AFNO's token mixing) and its inverse is not either.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_rng = np.random.default_rng(57)
_X = _rng.standard_normal((2, 6, 5, 3))


def _input(lib, permutation, complex_input):
    x = lib.tensor(_X, dtype=lib.float32).permute(*permutation)
    return x.to(lib.complex64) if complex_input else x


# (function, keyword arguments, input permutation, complex input)
LAYOUT_CASES = [
    ("rfft2", {"dim": (1, 2), "norm": "ortho"}, (0, 1, 2, 3), False),  # AFNO2D
    ("irfft2", {"s": (6, 5), "dim": (1, 2), "norm": "ortho"}, (0, 1, 2, 3), True),
    ("rfft2", {"dim": (0, 2)}, (0, 1, 2, 3), False),
    ("rfftn", {"dim": (2, 1)}, (0, 1, 2, 3), False),  # the one-sided dim stays last
    ("fftn", {"dim": (2, 1)}, (0, 1, 2, 3), True),  # the others sorted by stride
    ("fft", {"dim": 1}, (0, 1, 2, 3), True),
    ("fft", {"dim": 0}, (0, 1, 2, 3), False),  # a real input's two-sided R2C
    ("ifft", {"dim": 0}, (0, 1, 2, 3), True),
    ("rfft", {"dim": 0}, (2, 0, 3, 1), False),  # batch dims ordered by the input's strides
    ("irfftn", {"dim": (2, 1)}, (0, 1, 2, 3), True),  # a C2C over dim 2, then the C2R's own layout
    ("irfft2", {"dim": (1, 3)}, (2, 0, 3, 1), True),
    ("hfftn", {"dim": (0, 2)}, (0, 1, 2, 3), True),
    ("ihfftn", {"dim": (0, 2)}, (0, 1, 2, 3), False),
    ("ifft", {"dim": -4}, (1, 2, 0, 3), True),
    ("fft2", {}, (0, 1, 2, 3), True),  # the last dims: contiguous, as before
]


@pytest.mark.parametrize("name, kwargs, permutation, complex_input", LAYOUT_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in LAYOUT_CASES])
def test_fft_result_strides_are_torchs(name, kwargs, permutation, complex_input):
    expected = getattr(torch.fft, name)(_input(torch, permutation, complex_input), **kwargs)
    got = getattr(chainrule.fft, name)(_input(chainrule, permutation, complex_input), **kwargs)
    assert tuple(got.shape) == tuple(expected.shape)
    assert got.stride() == expected.stride()
    assert got.is_contiguous() == expected.is_contiguous()
    np.testing.assert_allclose(got.resolve_conj().numpy(), expected.resolve_conj().numpy(), rtol=1e-5, atol=1e-5)


def test_a_size_one_batch_dim_takes_torchs_stride():
    # torch's std::partition of the dims swaps from both ends, so the size-1 dim 3 lands before dim 1
    x = _rng.standard_normal((3, 3, 4, 1))
    expected = torch.fft.ifft(torch.tensor(x).permute(1, 2, 0, 3).to(torch.complex64), dim=-4)
    got = chainrule.fft.ifft(chainrule.tensor(x).permute(1, 2, 0, 3).to(chainrule.complex64), dim=-4)
    assert got.stride() == expected.stride() == (1, 3, 12, 12)


def _afno_spectral_mix(lib, x, w):
    spectrum = lib.fft.rfft2(x, dim=(1, 2), norm="ortho")
    real = lib.einsum("...bi,bio->...bo", spectrum.real.reshape(*spectrum.shape[:3], 2, 2), w[0])
    imag = lib.einsum("...bi,bio->...bo", spectrum.imag.reshape(*spectrum.shape[:3], 2, 2), w[1])
    mixed = lib.view_as_complex(lib.nn.functional.softshrink(lib.stack([real, imag], dim=-1), 0.01))
    return lib.fft.irfft2(mixed.reshape(spectrum.shape), s=x.shape[1:3], dim=(1, 2), norm="ortho")


def test_afno_spectral_mix_matches_torch_with_gradients():
    x_np = _rng.standard_normal((2, 4, 6, 4))
    w_np = _rng.standard_normal((2, 2, 2, 2))
    results = {}
    for lib in (torch, chainrule):
        x = lib.tensor(x_np, dtype=lib.float32, requires_grad=True)
        w = lib.tensor(w_np, dtype=lib.float32, requires_grad=True)
        out = _afno_spectral_mix(lib, x, w)
        (out * lib.tensor(np.cos(np.arange(out.numel())).reshape(tuple(out.shape)), dtype=lib.float32)).sum().backward()
        results[lib.__name__] = (out, x.grad, w.grad)
    for got, expected in zip(results["chainrule"], results["torch"]):
        assert got.stride() == expected.stride()
        np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, kwargs, complex_input", [
    ("rfft2", {"dim": (1, 2)}, False),  # torch resizes out contiguously, then copies the result in
    ("fftn", {"dim": (0,)}, True),
    ("irfft2", {"dim": (1, 2)}, True),
    ("ifft", {"dim": 1}, False),  # a real input's inverse ends in conj_physical, whose out keeps the result's layout
    ("ihfft", {"dim": 1}, False),
])
def test_fft_out_resized_as_torchs(name, kwargs, complex_input):
    strides = {}
    for lib in (torch, chainrule):
        x = _input(lib, (0, 1, 2, 3), complex_input)
        dtype = getattr(lib.fft, name)(x, **kwargs).dtype
        out = lib.empty(0, dtype=dtype)
        result = getattr(lib.fft, name)(x, **kwargs, out=out)
        assert result is out
        strides[lib.__name__] = out.stride()
    assert strides["chainrule"] == strides["torch"]
