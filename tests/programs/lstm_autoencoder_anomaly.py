"""An LSTM autoencoder for time-series anomaly detection (Malhotra et al., 2016, "LSTM-based
Encoder-Decoder for Multi-sensor Anomaly Detection"), as the PyTorch tutorials and Kaggle kernels
write it.

A noisy periodic signal is cut into sliding windows by ``Tensor.unfold`` (checked against
``F.unfold`` on the signal as a 1 x L image); training windows get random lengths and are batched
by ``nn.utils.rnn.pack_sequence(enforce_sorted=False)``. The encoder is a bidirectional
``nn.LSTM(batch_first=True, proj_size=...)`` whose last projected states of both directions
(``h_n[-2]``, ``h_n[-1]``) are the code; the decoder is an ``nn.LSTM`` fed the code repeated over
time and read out by a ``Linear`` under ``torch.nn.utils.parametrizations.weight_norm``; the
reconstruction loss is masked by the lengths that ``pad_packed_sequence`` returns. Adam with
``ReduceLROnPlateau`` on the validation loss. Anomalies (spikes, level shifts, frequency changes)
are injected into a test stretch; a window's score is its reconstruction error, the threshold is
``torch.quantile`` of the validation errors, and precision, recall and F1 are computed by hand
against the injected labels.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm
from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

WINDOW, STEP = 32, 4


def make_signal(length, offset):
    t = torch.arange(offset, offset + length, dtype=torch.float32)
    clean = torch.sin(2 * math.pi * t / 25) + 0.5 * torch.sin(2 * math.pi * t / 7 + 1.0)
    return clean + 0.1 * torch.randn(length)


train_signal = make_signal(1200, 0)
val_signal = make_signal(400, 1200)
test_signal = make_signal(800, 1600)

# inject anomalies into the test stretch and remember which samples they touch
anomalous = torch.zeros(len(test_signal), dtype=torch.bool)
starts = np.sort(np.random.choice(np.arange(40, len(test_signal) - 60, 80), size=6, replace=False))
for k, s in enumerate(starts.tolist()):
    kind = k % 3
    if kind == 0:  # a spike
        test_signal[s:s + 3] += torch.tensor([2.5, -2.0, 2.5])
        anomalous[s:s + 3] = True
    elif kind == 1:  # a level shift
        test_signal[s:s + 20] += 1.5
        anomalous[s:s + 20] = True
    else:  # the slow component at double frequency
        t = torch.arange(s, s + 24, dtype=torch.float32)
        test_signal[s:s + 24] += torch.sin(4 * math.pi * t / 25) - torch.sin(2 * math.pi * t / 25)
        anomalous[s:s + 24] = True
print(f"{len(starts)} anomalies injected, {anomalous.float().mean().item():.3f} of the test samples")


def windows(signal):
    return signal.unfold(0, WINDOW, STEP)  # (n, WINDOW), a view with stride STEP


by_f_unfold = F.unfold(train_signal.view(1, 1, 1, -1), kernel_size=(1, WINDOW), stride=(1, STEP))
assert torch.equal(by_f_unfold[0].t(), windows(train_signal))
mean, std = train_signal.mean(), train_signal.std()
train_w = (windows(train_signal) - mean) / std
val_w = (windows(val_signal) - mean) / std
test_w = (windows(test_signal) - mean) / std
test_labels = anomalous.unfold(0, WINDOW, STEP).any(dim=1)
print(f"windows: train {tuple(train_w.shape)}, val {tuple(val_w.shape)}, test {tuple(test_w.shape)}, "
      f"F.unfold agrees {torch.equal(by_f_unfold[0].t(), windows(train_signal))}")


class LSTMAutoencoder(nn.Module):
    def __init__(self, hidden=32, proj=8):
        super().__init__()
        self.encoder = nn.LSTM(1, hidden, batch_first=True, bidirectional=True, proj_size=proj)
        self.decoder = nn.LSTM(2 * proj, hidden, batch_first=True)
        self.output = weight_norm(nn.Linear(hidden, 1))

    def forward(self, packed):
        _, (h_n, _) = self.encoder(packed)
        code = torch.cat([h_n[-2], h_n[-1]], dim=1)  # last layer, forward and backward
        padded, lengths = pad_packed_sequence(packed, batch_first=True)
        repeated = code.unsqueeze(1).expand(-1, padded.size(1), -1)
        decoded, _ = self.decoder(repeated)
        return self.output(decoded), padded, lengths


def masked_errors(model, seqs):
    """Mean squared reconstruction error of each sequence over its own length."""
    recon, padded, lengths = model(pack_sequence([s.unsqueeze(-1) for s in seqs], enforce_sorted=False))
    mask = (torch.arange(padded.size(1))[None, :] < lengths[:, None]).unsqueeze(-1)
    sq = (recon - padded) ** 2 * mask
    return sq.sum(dim=(1, 2)) / lengths.to(sq.dtype)


model = LSTMAutoencoder()
print(f"encoder weights {tuple(model.encoder.weight_hh_l0.shape)} + {tuple(model.encoder.weight_hr_l0.shape)}, "
      f"output parametrized by {type(model.output.parametrizations.weight).__name__}")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=1)

with torch.no_grad():
    initial_val = masked_errors(model, list(val_w)).mean().item()
EPOCHS, BATCH = 12, 32
for epoch in range(EPOCHS):
    model.train()
    total, count = 0.0, 0
    for idx in torch.randperm(len(train_w)).split(BATCH):
        # variable-length windows: each keeps a random prefix of 20..32 samples
        lengths = torch.randint(20, WINDOW + 1, (len(idx),))
        seqs = [train_w[i, :n] for i, n in zip(idx.tolist(), lengths.tolist())]
        loss = masked_errors(model, seqs).mean()
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        total += loss.item() * len(idx)
        count += len(idx)
    model.eval()
    with torch.no_grad():
        val_loss = masked_errors(model, list(val_w)).mean().item()
    scheduler.step(val_loss)
    if epoch % 3 == 0 or epoch == EPOCHS - 1:
        print(f"epoch {epoch:2d} train {total / count:.4f} val {val_loss:.4f} lr {optimizer.param_groups[0]['lr']:.4f}")

loss_ratio = val_loss / initial_val
with torch.no_grad():
    val_errors = masked_errors(model, list(val_w))
    test_errors = masked_errors(model, list(test_w))
threshold = torch.quantile(val_errors, 0.99)
predicted = test_errors > threshold
tp = (predicted & test_labels).sum().item()
fp = (predicted & ~test_labels).sum().item()
fn = (~predicted & test_labels).sum().item()
precision = tp / max(tp + fp, 1)
recall = tp / max(tp + fn, 1)
f1 = 2 * precision * recall / max(precision + recall, 1e-12)
print(f"threshold (99th percentile of {len(val_errors)} validation errors) {threshold.item():.4f}")
print(f"test windows {len(test_labels)}, anomalous {int(test_labels.sum())}: "
      f"precision {precision:.3f} recall {recall:.3f} F1 {f1:.3f}")
print(f"mean error normal {test_errors[~test_labels].mean().item():.4f} anomalous {test_errors[test_labels].mean().item():.4f}")
print(f"FINAL f1={f1:.4f} loss_ratio={loss_ratio:.4f}")
