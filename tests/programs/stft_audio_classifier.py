"""A tiny spoken-digit-style classifier on synthetic tones, with the front end written by hand.

The log-mel front end the way audio tutorials write it without torchaudio: ``torch.stft(x,
n_fft, hop_length, window=torch.hann_window(n_fft), return_complex=True)``, the power spectrum
``.abs().pow(2)``, an HTK mel filterbank built from ``torch.linspace`` and triangular filters
``torch.clamp(torch.min(up, down), min=0)``, ``torch.log(mel + 1e-6)``; a ``torch.istft`` round
trip; SpecAugment time and frequency masks (``torch.randint`` widths, ``masked_fill_`` over ranges
from ``torch.arange(...)[None, :]`` comparisons); a small 2-D CNN ending in
``nn.AdaptiveAvgPool2d(1)`` beside a second branch on ``torch.fft.rfft`` magnitudes. Each of
four classes is a pair of tones (a "digit") with jittered pitch, onset and noise.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

SAMPLE_RATE = 4000
N_SAMPLES = 2048
N_FFT, HOP, N_MELS = 128, 32, 24
N_CLASSES = 4
# each class: two tones one after the other (Hz), like the two formant steps of a word
CLASS_TONES = [(300, 700), (500, 1100), (800, 400), (1200, 1600)]


def make_clip(label):
    t = np.arange(N_SAMPLES) / SAMPLE_RATE
    first, second = CLASS_TONES[label]
    jitter = 1 + 0.05 * rng.randn(2)
    split = N_SAMPLES // 2 + rng.randint(-200, 200)
    signal = np.where(np.arange(N_SAMPLES) < split,
                      np.sin(2 * np.pi * first * jitter[0] * t),
                      0.7 * np.sin(2 * np.pi * second * jitter[1] * t))
    signal = signal * rng.uniform(0.5, 1.0) + 0.3 * rng.randn(N_SAMPLES)
    return signal.astype(np.float32)


def make_dataset(n):
    labels = rng.randint(0, N_CLASSES, size=n)
    clips = np.stack([make_clip(label) for label in labels])
    return torch.from_numpy(clips), torch.from_numpy(labels)


def hz_to_mel(freq):
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def mel_filterbank(n_freqs, n_mels, sample_rate, f_min=0.0, f_max=None):
    """HTK mel scale, triangular filters (torchaudio.functional.melscale_fbanks, norm=None)."""
    f_max = f_max or sample_rate / 2
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up_slopes = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.min(down_slopes, up_slopes), min=0)  # (n_freqs, n_mels)


WINDOW = torch.hann_window(N_FFT)
FBANK = mel_filterbank(N_FFT // 2 + 1, N_MELS, SAMPLE_RATE)


def log_mel(waveforms):
    spec = torch.stft(waveforms, N_FFT, hop_length=HOP, window=WINDOW, return_complex=True)
    power = spec.abs().pow(2)  # (batch, freq, frames)
    mel = torch.matmul(power.transpose(1, 2), FBANK).transpose(1, 2)
    log_mel = torch.log(mel + 1e-6)
    # per-utterance normalisation, as most recipes do before the network
    mean = log_mel.mean(dim=(1, 2), keepdim=True)
    std = log_mel.std(dim=(1, 2), keepdim=True)
    return (log_mel - mean) / (std + 1e-5)


def spec_augment(features, max_freq_width=4, max_time_width=8):
    """SpecAugment: one frequency mask and one time mask per example, in place."""
    batch, n_mels, n_frames = features.shape
    freq_width = torch.randint(0, max_freq_width + 1, (batch, 1))
    freq_start = (torch.rand(batch, 1) * (n_mels - freq_width)).long()
    freqs = torch.arange(n_mels)[None, :]
    freq_mask = (freqs >= freq_start) & (freqs < freq_start + freq_width)
    time_width = torch.randint(0, max_time_width + 1, (batch, 1))
    time_start = (torch.rand(batch, 1) * (n_frames - time_width)).long()
    frames = torch.arange(n_frames)[None, :]
    time_mask = (frames >= time_start) & (frames < time_start + time_width)
    mean = features.mean()
    features.masked_fill_(freq_mask[:, :, None], mean)
    features.masked_fill_(time_mask[:, None, :], mean)
    return features, freq_mask.sum().item(), time_mask.sum().item()


class AudioClassifier(nn.Module):
    def __init__(self, n_classes=N_CLASSES, n_rfft_bins=64):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.n_rfft_bins = n_rfft_bins
        self.spectrum = nn.Sequential(nn.Linear(n_rfft_bins, 32), nn.ReLU())
        self.head = nn.Linear(16 + 32, n_classes)

    def forward(self, features, waveforms):
        x = self.conv(features.unsqueeze(1)).flatten(1)
        # a second branch: the whole clip's magnitude spectrum, pooled into a few bins
        magnitude = torch.fft.rfft(waveforms).abs()[:, :N_SAMPLES // 2]
        pooled = magnitude.reshape(magnitude.size(0), self.n_rfft_bins, -1).mean(-1)
        y = self.spectrum(torch.log1p(pooled) - 3.0)  # roughly centred log magnitudes
        return self.head(torch.cat([x, y], dim=1))


train_x, train_y = make_dataset(256)
test_x, test_y = make_dataset(128)

spec = torch.stft(train_x[:2], N_FFT, hop_length=HOP, window=WINDOW, return_complex=True)
print("stft", tuple(spec.shape), spec.dtype, "fbank", tuple(FBANK.shape), "filters summing > 0",
      int((FBANK.sum(0) > 0).sum()))
recovered = torch.istft(spec, N_FFT, hop_length=HOP, window=WINDOW, length=N_SAMPLES)
print(f"istft round trip max error {(recovered - train_x[:2]).abs().max().item():.2e}")
train_features, test_features = log_mel(train_x), log_mel(test_x)
print("log-mel", tuple(train_features.shape), f"std {train_features.std().item():.3f}")

model = AudioClassifier()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
batch_size = 32

for epoch in range(1, 7):
    model.train()
    permutation = torch.randperm(len(train_x))
    running = 0.0
    masked_bins = masked_frames = 0
    for start in range(0, len(train_x), batch_size):
        idx = permutation[start:start + batch_size]
        features, n_bins, n_frames = spec_augment(train_features[idx].clone())
        masked_bins += n_bins
        masked_frames += n_frames
        loss = F.cross_entropy(model(features, train_x[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        logits = model(test_features, test_x)
        test_loss = F.cross_entropy(logits, test_y).item()
        accuracy = (logits.argmax(1) == test_y).float().mean().item()
    print(f"epoch {epoch} train loss {running / len(train_x):.4f} test loss {test_loss:.4f} "
          f"acc {accuracy:.4f} masked bins {masked_bins} frames {masked_frames}")

print(f"FINAL loss={test_loss:.4f} acc={accuracy:.4f}")
