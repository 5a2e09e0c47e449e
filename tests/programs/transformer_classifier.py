"""Sequence classification with ``nn.TransformerEncoder`` (batch_first), learned positional
embeddings, a padding mask (``src_key_padding_mask``) and masked mean pooling; gradient
clipping by ``clip_grad_norm_`` and a linear warm-up via ``LambdaLR``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# task: does the sequence contain more 2s than 3s? tokens 1..5, 0 = padding, lengths 4..12
PAD, vocab_size, max_len = 0, 6, 12
rng = np.random.RandomState(0)


def make_data(n):
    tokens = np.zeros((n, max_len), dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    for i in range(n):
        length = rng.randint(4, max_len + 1)
        sequence = rng.randint(1, vocab_size, size=length)
        tokens[i, :length] = sequence
        labels[i] = int((sequence == 2).sum() > (sequence == 3).sum())
    return torch.from_numpy(tokens), torch.from_numpy(labels)


x_train, y_train = make_data(768)
x_test, y_test = make_data(256)


class TransformerClassifier(nn.Module):
    def __init__(self, d_model=32, nhead=4, num_layers=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.position = nn.Parameter(torch.zeros(1, max_len, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=num_layers)
        self.head = nn.Linear(d_model, 2)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, tokens):
        padding_mask = tokens == PAD
        h = self.embedding(tokens) + self.position[:, :tokens.size(1)]
        h = self.encoder(h, src_key_padding_mask=padding_mask)
        keep = (~padding_mask).unsqueeze(-1).float()
        pooled = (h * keep).sum(1) / keep.sum(1)
        return self.head(pooled)


model = TransformerClassifier()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
warmup_steps = 20
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup_steps))

for epoch in range(1, 7):
    model.train()
    permutation = torch.randperm(len(x_train))
    for start in range(0, len(x_train), 64):
        index = permutation[start:start + 64]
        loss = F.cross_entropy(model(x_train[index]), y_train[index])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        test_loss = F.cross_entropy(logits, y_test).item()
        accuracy = (logits.argmax(-1) == y_test).float().mean().item()
    print(f"epoch {epoch} train loss {loss.item():.4f} test loss {test_loss:.4f} acc {accuracy:.3f}")

print(f"FINAL loss={test_loss:.4f} acc={accuracy:.4f}")
