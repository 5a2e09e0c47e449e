"""A Conformer CTC recogniser (the ESPnet / torchaudio ``Conformer`` layer) on synthetic frames.

The layer as torchaudio writes it: macaron feed-forward half steps ``x = x + 0.5 * self.ff1(x)``
(LayerNorm, Linear, SiLU, Dropout, Linear), self-attention by ``nn.MultiheadAttention(
batch_first=True)`` with a ``key_padding_mask`` built from the lengths
(``torch.arange(T)[None, :] >= lengths[:, None]``), and the convolution module: LayerNorm,
``x.transpose(1, 2)``, a pointwise ``nn.Conv1d`` to 2C, ``nn.GLU(dim=1)``, a depthwise
``nn.Conv1d(groups=C, padding=(k - 1) // 2)``, ``nn.BatchNorm1d``, ``nn.SiLU``, a pointwise
Conv1d and the transpose back; a final LayerNorm. A CTC head gives
``F.ctc_loss(log_probs.transpose(0, 1), targets, input_lengths, target_lengths,
zero_infinity=True)``; Noam warmup by ``LambdaLR``; greedy decoding keeps
``torch.unique_consecutive`` of the argmax path without blanks, scored by exact match and
token error rate. Each utterance is 2-5 symbols, each a noisy prototype frame held 2-4 frames.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_SYMBOLS = 6  # labels 1..6, 0 = CTC blank
FEATURES = 16
PROTOTYPES = rng.randn(N_SYMBOLS + 1, FEATURES).astype(np.float32)  # row 0: silence


def make_utterance():
    labels = rng.randint(1, N_SYMBOLS + 1, size=rng.randint(2, 6))
    frames = []
    for i, s in enumerate(labels):
        if i > 0 and (s == labels[i - 1] or rng.rand() < 0.3):
            frames += [PROTOTYPES[0]] * rng.randint(1, 3)
        frames += [PROTOTYPES[s]] * rng.randint(2, 5)
    frames = np.stack(frames) + 0.8 * rng.randn(len(frames), FEATURES).astype(np.float32)
    return torch.from_numpy(frames.astype(np.float32)), torch.from_numpy(labels)


def make_batch(utterances):
    features = nn.utils.rnn.pad_sequence([u[0] for u in utterances], batch_first=True)
    input_lengths = torch.tensor([len(u[0]) for u in utterances])
    targets = torch.cat([u[1] for u in utterances])
    target_lengths = torch.tensor([len(u[1]) for u in utterances])
    return features, input_lengths, targets, target_lengths


class FeedForwardModule(nn.Module):
    def __init__(self, d_model, hidden, dropout=0.1):
        super().__init__()
        self.sequential = nn.Sequential(
            nn.LayerNorm(d_model), nn.Linear(d_model, hidden, bias=True), nn.SiLU(), nn.Dropout(dropout),
            nn.Linear(hidden, d_model, bias=True), nn.Dropout(dropout),
        )

    def forward(self, x):
        return self.sequential(x)


class ConvolutionModule(nn.Module):
    def __init__(self, d_model, kernel_size, dropout=0.1):
        super().__init__()
        assert (kernel_size - 1) % 2 == 0, "depthwise_kernel_size must be odd to achieve 'SAME' padding."
        self.layer_norm = nn.LayerNorm(d_model)
        self.sequential = nn.Sequential(
            nn.Conv1d(d_model, 2 * d_model, 1, stride=1, padding=0),
            nn.GLU(dim=1),
            nn.Conv1d(d_model, d_model, kernel_size, stride=1, padding=(kernel_size - 1) // 2, groups=d_model),
            nn.BatchNorm1d(d_model),
            nn.SiLU(),
            nn.Conv1d(d_model, d_model, kernel_size=1, stride=1, padding=0),
            nn.Dropout(dropout),
        )

    def forward(self, x):
        x = self.layer_norm(x)
        x = x.transpose(1, 2)
        x = self.sequential(x)
        return x.transpose(1, 2)


class ConformerLayer(nn.Module):
    def __init__(self, d_model, ffn_dim, num_heads, kernel_size, dropout=0.1):
        super().__init__()
        self.ffn1 = FeedForwardModule(d_model, ffn_dim, dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.self_attn_dropout = nn.Dropout(dropout)
        self.conv_module = ConvolutionModule(d_model, kernel_size, dropout)
        self.ffn2 = FeedForwardModule(d_model, ffn_dim, dropout)
        self.final_layer_norm = nn.LayerNorm(d_model)

    def forward(self, x, key_padding_mask):
        residual = x
        x = self.ffn1(x)
        x = x * 0.5 + residual

        residual = x
        x = self.self_attn_layer_norm(x)
        x, _ = self.self_attn(query=x, key=x, value=x, key_padding_mask=key_padding_mask, need_weights=False)
        x = self.self_attn_dropout(x)
        x = x + residual

        residual = x
        x = self.conv_module(x)
        x = residual + x

        residual = x
        x = self.ffn2(x)
        x = x * 0.5 + residual
        return self.final_layer_norm(x)


class ConformerCTC(nn.Module):
    def __init__(self, d_model=32, num_layers=2, num_heads=4, kernel_size=7):
        super().__init__()
        self.input_linear = nn.Linear(FEATURES, d_model)
        self.layers = nn.ModuleList(
            [ConformerLayer(d_model, 4 * d_model, num_heads, kernel_size) for _ in range(num_layers)])
        self.output = nn.Linear(d_model, N_SYMBOLS + 1)

    def forward(self, features, lengths):
        key_padding_mask = torch.arange(features.size(1))[None, :] >= lengths[:, None]
        x = self.input_linear(features)
        for layer in self.layers:
            x = layer(x, key_padding_mask)
        return F.log_softmax(self.output(x), dim=-1)  # (batch, time, classes)


def greedy_decode(log_probs, lengths):
    hypotheses = []
    for path, length in zip(log_probs.argmax(-1), lengths.tolist()):
        collapsed = torch.unique_consecutive(path[:length])
        hypotheses.append(collapsed[collapsed != 0].tolist())
    return hypotheses


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


train_set = [make_utterance() for _ in range(256)]
test_set = [make_utterance() for _ in range(64)]

d_model, warmup = 32, 40
model = ConformerCTC(d_model=d_model)
optimizer = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
# Noam: factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda step: 0.5 * d_model ** -0.5 * min((step + 1) ** -0.5, (step + 1) * warmup ** -1.5))
print("parameters", sum(p.numel() for p in model.parameters()))

batch_size = 32
for epoch in range(1, 7):
    model.train()
    order = torch.randperm(len(train_set)).tolist()
    running = 0.0
    for start in range(0, len(order), batch_size):
        features, input_lengths, targets, target_lengths = make_batch([train_set[i] for i in order[start:start + batch_size]])
        log_probs = model(features, input_lengths)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, input_lengths, target_lengths,
                          blank=0, reduction="mean", zero_infinity=True)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        scheduler.step()
        running += loss.item()
    model.eval()
    with torch.no_grad():
        features, input_lengths, targets, target_lengths = make_batch(test_set)
        log_probs = model(features, input_lengths)
        test_loss = F.ctc_loss(log_probs.transpose(0, 1), targets, input_lengths, target_lengths,
                               zero_infinity=True).item()
    hypotheses = greedy_decode(log_probs, input_lengths)
    references = [u[1].tolist() for u in test_set]
    errors = sum(edit_distance(h, r) for h, r in zip(hypotheses, references))
    ter = errors / sum(len(r) for r in references)
    exact = sum(h == r for h, r in zip(hypotheses, references)) / len(references)
    print(f"epoch {epoch} lr {scheduler.get_last_lr()[0]:.5f} train ctc {running / 8:.4f} "
          f"test ctc {test_loss:.4f} ter {ter:.4f} exact {exact:.4f}")

print(f"FINAL loss={test_loss:.4f} ter={ter:.4f} exact={exact:.4f}")
