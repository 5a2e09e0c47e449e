"""An LSTM language model over variable-length sentences, batched the usual way.

``pad_sequence`` to build the batch, ``pack_padded_sequence(enforce_sorted=False)`` into the
LSTM, ``pad_packed_sequence`` back, and a cross-entropy that ignores the padding index.
"""

import os

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

PAD, BOS = 0, 1
vocab_size = 12  # 0 = pad, 1 = begin, 2..11 = "words"

# sentences: count upwards from a random word, by a step of one or two (mod 10), of length 3..9
rng = np.random.RandomState(0)


def make_sentence():
    length = rng.randint(3, 10)
    start, step = rng.randint(0, 10), rng.randint(1, 3)
    words = [2 + (start + step * i) % 10 for i in range(length)]
    return torch.tensor([BOS] + words, dtype=torch.long)


train_sentences = [make_sentence() for _ in range(384)]
test_sentences = [make_sentence() for _ in range(128)]


class LSTMLanguageModel(nn.Module):
    def __init__(self, vocab_size, embed_dim=16, hidden_dim=32):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, num_layers=1, batch_first=True)
        self.decoder = nn.Linear(hidden_dim, vocab_size)

    def forward(self, inputs, lengths):
        embedded = self.embedding(inputs)
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        packed_output, (hidden, cell) = self.lstm(packed)
        output, _ = pad_packed_sequence(packed_output, batch_first=True, total_length=inputs.size(1))
        return self.decoder(output)


def make_batch(sentences):
    inputs = pad_sequence([s[:-1] for s in sentences], batch_first=True, padding_value=PAD)
    targets = pad_sequence([s[1:] for s in sentences], batch_first=True, padding_value=PAD)
    lengths = torch.tensor([len(s) - 1 for s in sentences])
    return inputs, targets, lengths


model = LSTMLanguageModel(vocab_size)
criterion = nn.CrossEntropyLoss(ignore_index=PAD)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
batch_size = 32


def evaluate(sentences):
    model.eval()
    with torch.no_grad():
        inputs, targets, lengths = make_batch(sentences)
        logits = model(inputs, lengths)
        loss = criterion(logits.reshape(-1, vocab_size), targets.reshape(-1))
    model.train()
    return loss.item()


for epoch in range(1, 7):
    permutation = torch.randperm(len(train_sentences))
    total = 0.0
    for start in range(0, len(train_sentences), batch_size):
        batch = [train_sentences[i] for i in permutation[start:start + batch_size].tolist()]
        inputs, targets, lengths = make_batch(batch)
        optimizer.zero_grad()
        logits = model(inputs, lengths)
        loss = criterion(logits.reshape(-1, vocab_size), targets.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
        optimizer.step()
        total += loss.item()
    test_loss = evaluate(test_sentences)
    print(f"| epoch {epoch:2d} | train loss {total / (len(train_sentences) // batch_size):5.3f} "
          f"| test loss {test_loss:5.3f} | test ppl {np.exp(test_loss):7.3f}")

print(f"FINAL loss={test_loss:.4f}")
