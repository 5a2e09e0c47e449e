"""torch.fft and stft/istft beyond the registry's samples: dtypes kept (no silent upcast), torch's
errors, the one-sided rfft gradient on even and odd lengths, the stand-in device, FFT convolution,
and a one-layer Fourier neural operator trained a few steps on torch and on chainrule."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.testing.opinfo.complex import crandn

from .harness import requires_torch, torch


def test_precision_is_kept():
    x32 = chainrule.randn(8)
    assert chainrule.fft.fft(x32).dtype is chainrule.complex64
    assert chainrule.fft.rfft(x32).dtype is chainrule.complex64
    assert chainrule.fft.irfft(chainrule.fft.rfft(x32)).dtype is chainrule.float32
    assert chainrule.fft.fft(x32.double()).dtype is chainrule.complex128
    assert chainrule.fft.ifft(chainrule.randn(4, dtype=chainrule.cfloat)).dtype is chainrule.complex64
    assert chainrule.fft.fft(chainrule.arange(4)).dtype is chainrule.complex64  # integers: the default float's


@requires_torch
@pytest.mark.parametrize("call", [
    lambda lib, x: lib.fft.fft(x, norm="bogus"),
    lambda lib, x: lib.fft.rfft(x.to(lib.cfloat)),
    lambda lib, x: lib.fft.fft(x, n=0),
    lambda lib, x: lib.fft.fft(x, dim=3),
    lambda lib, x: lib.fft.fftn(x, s=(4, 4), dim=(0,)),
    lambda lib, x: lib.stft(x.reshape(-1), 4),
    lambda lib, x: lib.istft(x, 4),
], ids=["norm", "rfft_complex", "n_zero", "dim", "s_dim_lengths", "stft_no_return_complex", "istft_real"])
def test_errors_match_torch(call):
    caught = []
    for lib in (chainrule, torch):
        with pytest.raises((RuntimeError, IndexError, ValueError)) as info:
            call(lib, lib.randn(3, 8))
        caught.append(type(info.value))
    assert caught[0] is caught[1], caught


@requires_torch
@pytest.mark.parametrize("n", [6, 7])
@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
def test_one_sided_gradients_match_torch(n, norm):
    # rfft's spectrum holds bins 1..n//2 once although the full one has them twice: the gradient
    # must still be the full DFT's adjoint; irfft doubles the bins that stand for two
    x0, spectrum0 = np.random.default_rng(n).standard_normal(n), crandn(n // 2 + 1, seed=n)
    weights = crandn(n // 2 + 1, seed=10 + n)
    results = []
    for lib in (chainrule, torch):
        x = lib.tensor(x0, requires_grad=True)
        (lib.fft.rfft(x, norm=norm) * lib.tensor(weights)).real.sum().backward()
        spectrum = lib.tensor(spectrum0, requires_grad=True)
        (lib.fft.irfft(spectrum, n=n, norm=norm) * lib.tensor(np.arange(n, dtype=np.float64))).sum().backward()
        results.append((x.grad.numpy(), spectrum.grad.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_fft_ops_run_on_the_standin_device():
    from chainrule._backend import use_standin_cuda

    x0, z0 = np.random.default_rng(2).standard_normal((4, 6)), crandn(4, 6)

    def run(device):
        x = chainrule.tensor(x0, device=device, requires_grad=True)
        z = chainrule.tensor(z0, device=device, requires_grad=True)
        window = chainrule.hann_window(8, dtype=chainrule.float64, device=device)
        spectrum = chainrule.stft(x.reshape(-1), 8, window=window, return_complex=True)
        y = (chainrule.fft.fft2(z) * chainrule.fft.rfft(x, n=10)[:, :6]).abs().sum()
        y = y + chainrule.fft.irfftn(z, s=(4, 7)).sum() + chainrule.fft.fftshift(chainrule.fft.hfft(z)).pow(2).sum()
        y = y + chainrule.istft(spectrum, 8, window=window, length=24).pow(2).sum() + spectrum.abs().sum()
        y.backward()
        return [t.detach().cpu().numpy() for t in (y, x.grad, z.grad)]

    cpu = run("cpu")
    with use_standin_cuda():
        device = run("cuda")
    for a, b in zip(cpu, device):
        np.testing.assert_allclose(a, b, rtol=1e-10)


@requires_torch
def test_fft_convolution_matches_direct_convolution():
    signal, kernel = np.random.default_rng(4).standard_normal((2, 16)), np.random.default_rng(5).standard_normal(5)
    for lib in (chainrule, torch):
        x = lib.tensor(signal)
        k = lib.tensor(kernel)
        n = 16 + 5 - 1
        full = lib.fft.irfft(lib.fft.rfft(x, n=n) * lib.fft.rfft(k, n=n), n=n)
        direct = np.stack([np.convolve(row, kernel) for row in signal])
        np.testing.assert_allclose(full.numpy(), direct, atol=1e-12)


def _fno_steps(lib, x0: np.ndarray, y0: np.ndarray, w0: np.ndarray, lift0: np.ndarray, steps: int = 4):
    """One Fourier layer of an FNO (Li et al.'s SpectralConv2d: rfft2, einsum with complex weights on the
    lowest modes, irfft2) between a lifting and a projection, trained with Adam; the losses and weights."""
    nn = lib.nn

    class SpectralConv2d(nn.Module):
        def __init__(self, channels: int, modes: int) -> None:
            super().__init__()
            self.modes = modes
            self.weights = nn.Parameter(lib.tensor(w0, dtype=lib.cfloat))

        def forward(self, x):
            batch, _, height, width = x.shape
            x_ft = lib.fft.rfft2(x)
            out_ft = lib.zeros(batch, self.weights.shape[1], height, width // 2 + 1, dtype=lib.cfloat)
            out_ft[:, :, :self.modes, :self.modes] = lib.einsum(
                "bixy,ioxy->boxy", x_ft[:, :, :self.modes, :self.modes], self.weights)
            return lib.fft.irfft2(out_ft, s=(height, width))

    class FNO(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lift = nn.Conv2d(1, 4, 1)
            self.spectral = SpectralConv2d(4, 3)
            self.mix = nn.Conv2d(4, 4, 1)
            self.project = nn.Conv2d(4, 1, 1)
            with lib.no_grad():
                for conv, values in zip((self.lift, self.mix, self.project), lift0):
                    conv.weight.copy_(lib.tensor(values[0]))
                    conv.bias.copy_(lib.tensor(values[1]))

        def forward(self, x):
            h = self.lift(x)
            h = lib.nn.functional.gelu(self.spectral(h) + self.mix(h))
            return self.project(h)

    model = FNO()
    optimizer = lib.optim.Adam(model.parameters(), lr=1e-2)
    x, y = lib.tensor(x0), lib.tensor(y0)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = lib.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, model.spectral.weights.detach().numpy().copy()


@requires_torch
def test_fourier_neural_operator_layer_trains_like_torch():
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    y0 = np.roll(x0, 1, axis=-1) * 0.5
    w0 = ((rng.uniform(size=(4, 4, 3, 3)) + 1j * rng.uniform(size=(4, 4, 3, 3))) / 16).astype(np.complex64)
    convs = [((rng.standard_normal(shape) * 0.3).astype(np.float32), (rng.standard_normal(shape[0]) * 0.1).astype(np.float32))
             for shape in ((4, 1, 1, 1), (4, 4, 1, 1), (1, 4, 1, 1))]
    ours = _fno_steps(chainrule, x0, y0, w0, convs)
    theirs = _fno_steps(torch, x0, y0, w0, convs)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-4)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-3, atol=1e-5)
    assert ours[0][-1] < ours[0][0]
