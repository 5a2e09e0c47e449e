"""DDSP (Engel et al. 2020) in PyTorch, the way acids-ircam/ddsp_pytorch writes it, resynthesising
synthetic tones: a decoder (per-input MLPs of ``Linear`` + ``LayerNorm`` + ``LeakyReLU``, a
``GRU(batch_first=True)``, an output MLP) maps f0 and loudness frames to a total amplitude, a
harmonic distribution and a noise filter; ``scale_function`` (``2 * sigmoid(x) ** log(10) + 1e-7``),
``remove_above_nyquist`` (``(pitch * torch.arange(1, n_harm + 1) < sr / 2).float()``), control frames
upsampled by ``F.interpolate(..., mode='linear')``, the harmonic synthesiser
(``torch.cumsum(2 * math.pi * f0 / sr, 1)`` phases times the harmonic numbers, ``sin``), filtered
noise by frequency sampling (``torch.view_as_complex`` of ``torch.stack([amp, zeros])``,
``torch.fft.irfft``, ``torch.roll`` + ``torch.hann_window``, ``F.pad``), ``fft_convolve`` as
``irfft(rfft(a) * rfft(b))``, a learned ``Reverb`` impulse response (``nn.Parameter`` noise with a
``softplus`` decay, ``impulse[:, 0] = 1``) convolved by FFT, and the multi-scale spectral loss over
``torch.stft(..., window=torch.hann_window(n), return_complex=True).abs()`` (linear + ``log(x + 1e-7)``
L1). Targets are harmonic + noise tones generated with NumPy.

Checks: FFT convolution equals a direct ``F.conv1d`` with the flipped kernel, the spectral loss falls,
and the learned harmonic distribution moves towards the target's.
"""

import math
import os

import numpy as np
import torch
import torch.fft as fft
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

SAMPLING_RATE = 8000
BLOCK_SIZE = 64
N_FRAMES = 24
N_HARMONIC = 12
N_BANDS = 17
SCALES = [256, 128, 64]
OVERLAP = 0.75


def safe_log(x):
    return torch.log(x + 1e-7)


def multiscale_fft(signal, scales, overlap):
    stfts = []
    for s in scales:
        S = torch.stft(
            signal,
            s,
            int(s * (1 - overlap)),
            s,
            torch.hann_window(s).to(signal),
            True,
            normalized=True,
            return_complex=True,
        ).abs()
        stfts.append(S)
    return stfts


def scale_function(x):
    return 2 * torch.sigmoid(x) ** (math.log(10)) + 1e-7


def remove_above_nyquist(amplitudes, pitch, sampling_rate):
    n_harm = amplitudes.shape[-1]
    pitches = pitch * torch.arange(1, n_harm + 1).to(pitch)
    aa = (pitches < sampling_rate / 2).float() + 1e-4
    return amplitudes * aa


def upsample(signal, factor):
    signal = signal.permute(0, 2, 1)
    signal = F.interpolate(signal, size=signal.shape[-1] * factor, mode="linear", align_corners=False)
    return signal.permute(0, 2, 1)


def harmonic_synth(pitch, amplitudes, sampling_rate):
    n_harmonic = amplitudes.shape[-1]
    omega = torch.cumsum(2 * math.pi * pitch / sampling_rate, 1)
    omegas = omega * torch.arange(1, n_harmonic + 1).to(omega)
    signal = (torch.sin(omegas) * amplitudes).sum(-1, keepdim=True)
    return signal


def amp_to_impulse_response(amp, target_size):
    amp = torch.stack([amp, torch.zeros_like(amp)], -1)
    amp = torch.view_as_complex(amp)
    amp = fft.irfft(amp)

    filter_size = amp.shape[-1]

    amp = torch.roll(amp, filter_size // 2, -1)
    win = torch.hann_window(filter_size, dtype=amp.dtype, device=amp.device)

    amp = amp * win

    amp = F.pad(amp, (0, int(target_size) - int(filter_size)))
    amp = torch.roll(amp, -filter_size // 2, -1)

    return amp


def fft_convolve(signal, kernel):
    signal = F.pad(signal, (0, signal.shape[-1]))
    kernel = F.pad(kernel, (kernel.shape[-1], 0))

    output = fft.irfft(fft.rfft(signal) * fft.rfft(kernel))
    output = output[..., output.shape[-1] // 2:]

    return output


def mlp(in_size, hidden_size, n_layers):
    channels = [in_size] + (n_layers) * [hidden_size]
    net = []
    for i in range(n_layers):
        net.append(nn.Linear(channels[i], channels[i + 1]))
        net.append(nn.LayerNorm(channels[i + 1]))
        net.append(nn.LeakyReLU())
    return nn.Sequential(*net)


def gru(n_input, hidden_size):
    return nn.GRU(n_input * hidden_size, hidden_size, batch_first=True)


class Reverb(nn.Module):
    def __init__(self, length, sampling_rate, initial_wet=0, initial_decay=5):
        super().__init__()
        self.length = length
        self.sampling_rate = sampling_rate

        self.noise = nn.Parameter((torch.rand(length) * 2 - 1).unsqueeze(-1))
        self.decay = nn.Parameter(torch.tensor(float(initial_decay)))
        self.wet = nn.Parameter(torch.tensor(float(initial_wet)))

        t = torch.arange(self.length) / self.sampling_rate
        t = t.reshape(1, -1, 1)
        self.register_buffer("t", t)

    def build_impulse(self):
        t = torch.exp(-F.softplus(-self.decay) * self.t * 500)
        noise = self.noise * t
        impulse = noise * torch.sigmoid(self.wet)
        impulse[:, 0] = 1
        return impulse

    def forward(self, x):
        lenx = x.shape[1]
        impulse = self.build_impulse()
        impulse = F.pad(impulse, (0, 0, 0, lenx - self.length))

        x = fft_convolve(x.squeeze(-1), impulse.squeeze(-1)).unsqueeze(-1)

        return x


class DDSP(nn.Module):
    def __init__(self, hidden_size, n_harmonic, n_bands, sampling_rate, block_size):
        super().__init__()
        self.register_buffer("sampling_rate", torch.tensor(sampling_rate))
        self.register_buffer("block_size", torch.tensor(block_size))

        self.in_mlps = nn.ModuleList([mlp(1, hidden_size, 2)] * 2)
        self.gru = gru(2, hidden_size)
        self.out_mlp = mlp(hidden_size + 2, hidden_size, 2)

        self.proj_matrices = nn.ModuleList([
            nn.Linear(hidden_size, n_harmonic + 1),
            nn.Linear(hidden_size, n_bands),
        ])

        self.reverb = Reverb(sampling_rate // 20, sampling_rate)

    def controls(self, pitch, loudness):
        hidden = torch.cat([
            self.in_mlps[0](pitch / 500.0),
            self.in_mlps[1](loudness),
        ], -1)
        hidden = torch.cat([self.gru(hidden)[0], pitch / 500.0, loudness], -1)
        hidden = self.out_mlp(hidden)

        param = scale_function(self.proj_matrices[0](hidden))
        total_amp = param[..., :1]
        amplitudes = param[..., 1:]

        amplitudes = remove_above_nyquist(amplitudes, pitch, self.sampling_rate)
        amplitudes /= amplitudes.sum(-1, keepdim=True)
        return hidden, total_amp, amplitudes

    def forward(self, pitch, loudness):
        hidden, total_amp, amplitudes = self.controls(pitch, loudness)
        amplitudes = amplitudes * total_amp

        block_size = int(self.block_size)
        amplitudes = upsample(amplitudes, block_size)
        pitch = upsample(pitch, block_size)

        harmonic = harmonic_synth(pitch, amplitudes, self.sampling_rate)

        # noise part
        param = scale_function(self.proj_matrices[1](hidden) - 5)

        impulse = amp_to_impulse_response(param, block_size)
        noise = torch.rand(impulse.shape[0], impulse.shape[1], block_size).to(impulse) * 2 - 1

        noise = fft_convolve(noise, impulse).contiguous()
        noise = noise.reshape(noise.shape[0], -1, 1)

        signal = harmonic + noise

        # reverb part
        signal = self.reverb(signal)

        return signal


def make_targets(n, rng):
    """Harmonic tones with a fixed spectral envelope, vibrato and a loudness swell, plus noise."""
    target_dist = 1.0 / np.arange(1, N_HARMONIC + 1) ** 1.5
    target_dist[1::2] *= 0.4
    target_dist /= target_dist.sum()
    n_samples = N_FRAMES * BLOCK_SIZE
    t = np.arange(n_samples) / SAMPLING_RATE
    base = rng.uniform(110.0, 300.0, size=(n, 1))
    f0 = base * (1 + 0.02 * np.sin(2 * np.pi * rng.uniform(3, 6, size=(n, 1)) * t))
    amp = 0.3 + 0.2 * np.sin(np.pi * t / t[-1])[None] * rng.uniform(0.5, 1.0, size=(n, 1))
    phase = 2 * np.pi * np.cumsum(f0 / SAMPLING_RATE, axis=1)
    harmonics = np.arange(1, N_HARMONIC + 1)
    audible = (f0[..., None] * harmonics < SAMPLING_RATE / 2)
    audio = (np.sin(phase[..., None] * harmonics) * target_dist * audible).sum(-1) * amp
    audio += 0.01 * rng.randn(n, n_samples)
    frames = slice(BLOCK_SIZE // 2, None, BLOCK_SIZE)
    pitch = f0[:, frames, None]
    loudness = 20 * np.log10(amp[:, frames, None]) / 20 + 1
    as32 = lambda a: torch.from_numpy(a.astype(np.float32))  # noqa: E731
    return as32(audio), as32(pitch), as32(loudness), torch.from_numpy(target_dist.astype(np.float32))


# fft_convolve is a causal linear convolution: against conv1d with the flipped kernel
sig = torch.randn(2, 64)
ker = torch.randn(9)
by_fft = fft_convolve(sig, F.pad(ker, (0, 64 - 9)))
direct = F.conv1d(F.pad(sig.unsqueeze(1), (8, 0)), ker.flip(-1).view(1, 1, -1)).squeeze(1)
conv_err = (by_fft - direct).abs().max().item()
print(f"fft_convolve == conv1d(flipped): {conv_err < 1e-4}")
assert conv_err < 1e-4, conv_err

rng = np.random.RandomState(0)
audio, pitch, loudness, target_dist = make_targets(16, rng)
print(f"signals: {tuple(audio.shape)} pitch frames {tuple(pitch.shape)} harmonics {target_dist.numel()}")

model = DDSP(32, N_HARMONIC, N_BANDS, SAMPLING_RATE, BLOCK_SIZE)
print(f"parameters: {sum(p.numel() for p in model.parameters())} reverb ir {tuple(model.reverb.build_impulse().shape)}")
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
ori_stft = multiscale_fft(audio, SCALES, OVERLAP)
print("stft shapes: " + " ".join(str(tuple(s.shape)) for s in ori_stft))


def spectral_loss(signal):
    rec_stft = multiscale_fft(signal.squeeze(-1), SCALES, OVERLAP)
    loss = 0
    for s_x, s_y in zip(ori_stft, rec_stft):
        lin_loss = (s_x - s_y).abs().mean()
        log_loss = (safe_log(s_x) - safe_log(s_y)).abs().mean()
        loss = loss + lin_loss + log_loss
    return loss


def harmonic_error():
    with torch.no_grad():
        _, _, amplitudes = model.controls(pitch, loudness)
        learned = amplitudes.mean((0, 1))
    return (learned - target_dist).abs().sum().item()


dist_err0 = harmonic_error()
print(f"harmonic distribution L1 before: {dist_err0:.4f}")
for step in range(1, 151):
    signal = model(pitch, loudness)
    loss = spectral_loss(signal)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step == 1:
        loss0 = loss.item()
    if step % 50 == 0:
        print(f"step {step}: spectral loss {loss.item():.4f} harmonic L1 {harmonic_error():.4f}")

dist_err = harmonic_error()
assert loss.item() < loss0
assert dist_err < dist_err0
print(f"FINAL loss={loss.item():.4f} dist_err={dist_err:.4f} conv_err={conv_err:.2e}")
