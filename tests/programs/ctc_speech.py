"""A tiny CTC speech recogniser, the way the DeepSpeech-style and torchaudio tutorials write one.

Synthetic "utterances" are sequences of tones (one frequency per symbol, random durations,
noise).  Features are log-mel-ish: ``torch.stft(..., return_complex=True)``, ``.abs().pow(2)``,
a triangular mel filterbank as a matrix, ``torch.log(x + 1e-6)``.  A Conv1d front end feeds a
bidirectional GRU; ``F.log_softmax(...).transpose(0, 1)`` gives the (T, N, C) log-probs for
``nn.CTCLoss(blank=0, zero_infinity=True)`` with ``input_lengths``/``target_lengths`` tensors;
training clips gradients; decoding is greedy (``argmax``, ``torch.unique_consecutive``, blanks
dropped) and scored by character error rate.
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

sample_rate, n_fft, hop, n_mels = 4000, 128, 64, 24
n_symbols = 5                                  # labels 1..5; 0 is the CTC blank
tone_hz = {s: 300.0 + 280.0 * s for s in range(1, n_symbols + 1)}


def synth_utterance():
    length = int(rng.integers(2, 5))
    labels = rng.integers(1, n_symbols + 1, size=length)
    # a repeated symbol needs a pause between its tones, as CTC needs a blank between repeats
    pieces = []
    for s in labels:
        duration = int(rng.integers(3, 6)) * hop
        t = np.arange(duration) / sample_rate
        pieces.append(np.sin(2 * math.pi * tone_hz[int(s)] * t + rng.uniform(0, 2 * math.pi)))
        pieces.append(np.zeros(int(rng.integers(1, 3)) * hop))
    wave = np.concatenate(pieces) + 0.05 * rng.standard_normal(sum(len(p) for p in pieces))
    return wave.astype(np.float32), labels.astype(np.int64)


def mel_filterbank(n_mels, n_fft, sample_rate):
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)
    n_freqs = n_fft // 2 + 1
    freqs = np.linspace(0, sample_rate / 2, n_freqs)
    mel_points = np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2)
    hz_points = mel_to_hz(mel_points)
    fb = np.zeros((n_freqs, n_mels), dtype=np.float32)
    for m in range(n_mels):
        left, center, right = hz_points[m], hz_points[m + 1], hz_points[m + 2]
        up = (freqs - left) / (center - left)
        down = (right - freqs) / (right - center)
        fb[:, m] = np.maximum(0, np.minimum(up, down))
    return torch.from_numpy(fb)


MEL = mel_filterbank(n_mels, n_fft, sample_rate)
WINDOW = torch.hann_window(n_fft)


def featurize(wave):
    spec = torch.stft(wave, n_fft=n_fft, hop_length=hop, window=WINDOW, return_complex=True)
    power = spec.abs().pow(2)                       # (freq, frames)
    mel = torch.matmul(power.transpose(0, 1), MEL)  # (frames, n_mels)
    return torch.log(mel + 1e-6)


def make_batch(n):
    feats, targets, input_lengths, target_lengths = [], [], [], []
    for _ in range(n):
        wave, labels = synth_utterance()
        f = featurize(torch.from_numpy(wave))
        feats.append(f)
        targets.append(torch.from_numpy(labels))
        input_lengths.append(f.size(0))
        target_lengths.append(len(labels))
    x = nn.utils.rnn.pad_sequence(feats, batch_first=True)       # (N, T, n_mels)
    x = (x - x.mean()) / x.std()
    return (x, torch.cat(targets), torch.tensor(input_lengths, dtype=torch.long),
            torch.tensor(target_lengths, dtype=torch.long), targets)


class SpeechRecognizer(nn.Module):
    def __init__(self, n_feats, hidden, n_classes):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(n_feats, hidden, kernel_size=3, padding=1), nn.BatchNorm1d(hidden),
                                  nn.ReLU())
        self.rnn = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, n_classes)

    def forward(self, x):                 # x: (N, T, F)
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)
        x, _ = self.rnn(x)
        return self.fc(x)                 # (N, T, C)


def greedy_decode(log_probs, input_lengths):
    """log_probs: (T, N, C) -> list of label lists."""
    best = log_probs.argmax(dim=-1).transpose(0, 1)   # (N, T)
    decoded = []
    for path, length in zip(best, input_lengths):
        collapsed = torch.unique_consecutive(path[:length])
        decoded.append([int(c) for c in collapsed if c != 0])
    return decoded


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[len(b)]


model = SpeechRecognizer(n_mels, 32, n_symbols + 1)
criterion = nn.CTCLoss(blank=0, zero_infinity=True)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

x, targets, input_lengths, target_lengths, _ = make_batch(4)
print("features:", x.dim(), x.dtype, "targets:", targets.dtype, "lengths:", input_lengths.dtype)

for step in range(1, 101):
    x, targets, input_lengths, target_lengths, _ = make_batch(16)
    model.train()
    log_probs = F.log_softmax(model(x), dim=-1).transpose(0, 1)   # (T, N, C)
    loss = criterion(log_probs, targets, input_lengths, target_lengths)
    optimizer.zero_grad()
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step}: ctc loss {loss.item():.4f} grad norm {float(grad_norm):.3f}")

model.eval()
with torch.no_grad():
    x, targets, input_lengths, target_lengths, target_list = make_batch(64)
    log_probs = F.log_softmax(model(x), dim=-1).transpose(0, 1)
    eval_loss = criterion(log_probs, targets, input_lengths, target_lengths).item()
    per_sample = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="none",
                            zero_infinity=True)
    hyps = greedy_decode(log_probs, input_lengths)
    # padded (N, S) targets, as torchaudio's tutorials pass them, give the same loss as concatenated ones
    padded = nn.utils.rnn.pad_sequence(target_list, batch_first=True)
    padded_loss = criterion(log_probs, padded, input_lengths, target_lengths).item()
    summed = F.ctc_loss(log_probs, padded, input_lengths, target_lengths, reduction="sum").item()
errors = sum(edit_distance(h, t.tolist()) for h, t in zip(hyps, target_list))
cer = errors / int(target_lengths.sum())
exact = sum(h == t.tolist() for h, t in zip(hyps, target_list)) / len(hyps)
print("per-sample losses:", tuple(per_sample.shape), "mean matches:",
      bool(torch.allclose((per_sample / target_lengths).mean(), torch.tensor(eval_loss), atol=1e-4)))
print("padded targets agree:", abs(padded_loss - eval_loss) < 1e-4,
      "sum agrees:", abs(summed - float(per_sample.sum())) < 1e-3 * max(1.0, abs(summed)))
print(f"eval ctc loss {eval_loss:.4f} cer {cer:.4f} exact {exact:.4f}")
print(f"FINAL ctc_loss={eval_loss:.4f} cer={cer:.4f} exact={exact:.4f}")
