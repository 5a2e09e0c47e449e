"""Spectrogram inversion on synthetic harmonic tones: Griffin-Lim (torchaudio's fast variant) and a
small magnitude predictor trained through ``torch.stft``/``torch.istft``.

Analysis and resynthesis: ``torch.stft(x, n_fft, hop_length=..., window=torch.hann_window(n_fft),
return_complex=True)``, ``.abs()`` and ``.angle()``, ``torch.polar(magnitude, phase)`` rebuilding
the complex spectrogram, ``torch.istft(..., length=...)`` back to the waveform (perfect
reconstruction checked). Griffin-Lim from a random phase (``torch.rand(...) * 2 * math.pi`` into
``torch.polar(torch.ones_like(S), ...)``) with torchaudio's momentum update
``angles = rebuilt - tprev.mul_(momentum / (1 + momentum))``, ``angles.div(angles.abs().add(1e-16))``,
the spectral convergence falling over the iterations.

Learning: an MLP predicts each frame's ``torch.log1p`` magnitude from a mel projection
(``torch.log1p(mel_fb @ S ** 2)``), trained with the spectral convergence
``torch.linalg.norm(S - S_hat, 'fro') / torch.linalg.norm(S, 'fro')`` (ParallelWaveGAN's
``torch.norm(..., p="fro")`` on the 3-d batch must agree) plus a log-magnitude L1 and a
multi-resolution STFT loss on the waveform resynthesised by ``torch.istft`` from the predicted
magnitude and the true phase: its gradient runs back through ``torch.stft`` of that waveform, the
complex ``abs``, and ``torch.istft``. Adam + ``StepLR``; Griffin-Lim on the predicted magnitudes
at the end.

The data: sums of two harmonic tones with random fundamentals, decaying envelopes and a little
noise, made with NumPy.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SAMPLE_RATE = 4000
LENGTH = 1024
N_FFT, HOP = 128, 32
N_MELS = 16


def make_tones(n):
    t = np.arange(LENGTH) / SAMPLE_RATE
    clips = np.zeros((n, LENGTH), dtype=np.float64)
    for i in range(n):
        for _ in range(2):
            f0 = rng.uniform(120, 500)
            decay = rng.uniform(1.0, 6.0)
            onset = rng.uniform(0, 0.1)
            envelope = np.exp(-decay * np.clip(t - onset, 0, None)) * (t >= onset)
            for harmonic in range(1, 4):
                clips[i] += rng.uniform(0.2, 0.6) / harmonic * envelope * np.sin(2 * np.pi * f0 * harmonic * t + rng.uniform(0, 2 * np.pi))
        clips[i] += 0.01 * rng.normal(size=LENGTH)
    return torch.from_numpy(clips.astype(np.float32))


def hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_filterbank(n_freqs, n_mels, sample_rate):
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up_slopes = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down_slopes, up_slopes))  # (n_freqs, n_mels)


def spectral_convergence(S, S_hat):
    # both (batch, freq, frames): the Frobenius norm of the whole batch, as a 2-d matrix
    S2, S_hat2 = S.reshape(-1, S.shape[-1]), S_hat.reshape(-1, S_hat.shape[-1])
    return torch.linalg.norm(S2 - S_hat2, "fro") / torch.linalg.norm(S2, "fro")


def griffin_lim(magnitude, n_fft, hop_length, window, n_iter, length, momentum=0.99):
    angles = torch.polar(torch.ones_like(magnitude), torch.rand(magnitude.shape) * 2 * math.pi)
    tprev = torch.tensor(0.0, dtype=magnitude.dtype)
    history = []
    for i in range(n_iter):
        inverse = torch.istft(magnitude * angles, n_fft=n_fft, hop_length=hop_length, window=window, length=length)
        rebuilt = torch.stft(inverse, n_fft=n_fft, hop_length=hop_length, window=window, return_complex=True)
        angles = rebuilt
        if momentum:
            angles = angles - tprev.mul_(momentum / (1 + momentum))
        angles = angles.div(angles.abs().add(1e-16))
        tprev = rebuilt
        if i in (0, n_iter // 4, n_iter - 1):
            history.append(spectral_convergence(magnitude, rebuilt.abs()).item())
    waveform = torch.istft(magnitude * angles, n_fft=n_fft, hop_length=hop_length, window=window, length=length)
    return waveform, history


class MagnitudePredictor(nn.Module):
    def __init__(self, n_mels, n_freqs, hidden=96):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_mels, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, n_freqs))

    def forward(self, mel_features):  # (batch, n_mels, frames) -> log1p magnitude (batch, n_freqs, frames)
        return self.net(mel_features.transpose(1, 2)).transpose(1, 2)


class MultiResolutionSTFTLoss(nn.Module):
    def __init__(self, resolutions=((64, 16), (128, 32), (256, 64))):
        super().__init__()
        self.resolutions = resolutions
        for n_fft, _ in resolutions:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft))

    def forward(self, x_hat, x):
        sc_total, mag_total = 0.0, 0.0
        for n_fft, hop in self.resolutions:
            window = getattr(self, f"window_{n_fft}")
            X_hat = torch.stft(x_hat, n_fft, hop_length=hop, window=window, return_complex=True).abs()
            X = torch.stft(x, n_fft, hop_length=hop, window=window, return_complex=True).abs()
            sc_total = sc_total + torch.norm(X - X_hat, p="fro") / torch.norm(X, p="fro")
            mag_total = mag_total + F.l1_loss(torch.log(X_hat.clamp(min=1e-7)), torch.log(X.clamp(min=1e-7)))
        return sc_total / len(self.resolutions), mag_total / len(self.resolutions)


window = torch.hann_window(N_FFT)
train_x = make_tones(64)
test_x = make_tones(16)

spec = torch.stft(train_x, N_FFT, hop_length=HOP, window=window, return_complex=True)
magnitude, phase = spec.abs(), spec.angle()
print(f"stft {tuple(spec.shape)} {spec.dtype}, magnitude {magnitude.dtype}, phase in [-pi, pi] "
      f"{bool((phase.abs() <= math.pi + 1e-6).all())}")
rebuilt = torch.polar(magnitude, phase)
print(f"polar(abs, angle) rebuilds the spectrogram {torch.allclose(rebuilt, spec, atol=1e-4)}")
roundtrip = torch.istft(spec, N_FFT, hop_length=HOP, window=window, length=LENGTH)
roundtrip_error = (roundtrip - train_x).abs().max().item()
print(f"istft(stft(x), length={LENGTH}) {tuple(roundtrip.shape)} max error below 1e-5 {roundtrip_error < 1e-5}")

test_spec = torch.stft(test_x, N_FFT, hop_length=HOP, window=window, return_complex=True)
test_mag = test_spec.abs()
_, gl_history = griffin_lim(test_mag, N_FFT, HOP, window, n_iter=32, length=LENGTH)
print("Griffin-Lim spectral convergence at iterations 1, 9, 32:", [round(v, 4) for v in gl_history])

mel_fb = mel_filterbank(N_FFT // 2 + 1, N_MELS, SAMPLE_RATE)
print(f"mel filterbank {tuple(mel_fb.shape)}, every band used {bool((mel_fb.sum(0) > 0).all())}")


def mel_features(mag):
    return torch.log1p(torch.matmul(mel_fb.T, mag ** 2))


model = MagnitudePredictor(N_MELS, N_FFT // 2 + 1)
mr_stft = MultiResolutionSTFTLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.5)
train_features = mel_features(magnitude)
STEPS, BATCH = 60, 16
for step in range(STEPS):
    index = torch.randperm(len(train_x))[:BATCH]
    S, S_complex, x = magnitude[index], spec[index], train_x[index]
    log_mag_hat = model(train_features[index])
    S_hat = torch.expm1(log_mag_hat).clamp(min=0.0)
    sc = spectral_convergence(S, S_hat)
    log_l1 = F.l1_loss(log_mag_hat, torch.log1p(S))
    unit_phase = S_complex / S_complex.abs().clamp(min=1e-8)
    x_hat = torch.istft(S_hat * unit_phase, N_FFT, hop_length=HOP, window=window, length=LENGTH)
    mr_sc, mr_mag = mr_stft(x_hat, x)
    loss = sc + log_l1 + 0.5 * (mr_sc + mr_mag)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    if (step + 1) % 15 == 0:
        print(f"step {step + 1} loss {loss.item():.4f} sc {sc.item():.4f} log_l1 {log_l1.item():.4f} "
              f"mr_sc {mr_sc.item():.4f} mr_mag {mr_mag.item():.4f} lr {scheduler.get_last_lr()[0]:.5f}")

model.eval()
with torch.no_grad():
    S_hat = torch.expm1(model(mel_features(test_mag))).clamp(min=0.0)
    test_sc = spectral_convergence(test_mag, S_hat).item()
    batch_fro = (torch.norm(test_mag - S_hat, p="fro") / torch.norm(test_mag, p="fro")).item()
    test_log_l1 = F.l1_loss(torch.log1p(S_hat), torch.log1p(test_mag)).item()
    waveform, pred_history = griffin_lim(S_hat, N_FFT, HOP, window, n_iter=32, length=LENGTH)
    resynth = torch.stft(waveform, N_FFT, hop_length=HOP, window=window, return_complex=True).abs()
    resynth_sc = spectral_convergence(test_mag, resynth).item()
print(f"linalg.norm('fro') on 2-d and torch.norm(p='fro') on 3-d agree {math.isclose(test_sc, batch_fro, rel_tol=1e-5)}")
print(f"waveform {tuple(waveform.shape)} {waveform.dtype}; Griffin-Lim on the prediction:", [round(v, 4) for v in pred_history])
print(f"FINAL gl_sc_start={gl_history[0]:.4f} gl_sc_end={gl_history[-1]:.4f} test_sc={test_sc:.4f} "
      f"test_log_l1={test_log_l1:.4f} resynth_sc={resynth_sc:.4f} roundtrip_error={roundtrip_error:.2e}")
