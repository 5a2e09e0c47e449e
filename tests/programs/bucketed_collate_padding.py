"""NLP batching as text-classification tutorials write it: variable-length token sequences in a
``Dataset``, a custom ``collate_fn`` padding them with ``nn.utils.rnn.pad_sequence(batch_first=True,
padding_value=PAD)`` and ``torch.as_tensor`` lengths, a length-bucketing batch sampler (shuffle,
sort by length inside chunks of ``batch_size * 4``, shuffle the batches) passed as ``batch_sampler=``
with ``pin_memory=False``, the padding it saves against random batches; what
``torch.utils.data.default_collate`` returns for dicts, namedtuples, nested tuples, lists, Python
floats/ints, strings and NumPy arrays; an LSTM classifier fed by ``pack_padded_sequence(...,
enforce_sorted=False)`` and a masked mean pooling baseline (``arange(T)[None, :] < lengths[:, None]``).
The task: does the sequence contain token 3 more often than token 4.
"""

import collections
import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

PAD = 0
VOCAB = 12

Point = collections.namedtuple("Point", ["x", "y"])


class TokenDataset(Dataset):
    def __init__(self, num_samples, rng):
        self.samples = []
        for _ in range(num_samples):
            length = int(rng.randint(3, 25))
            tokens = rng.randint(1, VOCAB, size=length)
            label = int((tokens == 3).sum() > (tokens == 4).sum())
            self.samples.append((tokens.tolist(), label))

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, idx):
        tokens, label = self.samples[idx]
        return torch.tensor(tokens, dtype=torch.long), label


def collate_batch(batch):
    sequences, labels = zip(*batch)
    lengths = torch.as_tensor([len(s) for s in sequences])
    padded = pad_sequence(sequences, batch_first=True, padding_value=PAD)
    return padded, lengths, torch.tensor(labels)


class BucketBatchSampler(Sampler):
    """Shuffle, sort by length within chunks of ``batch_size * bucket_factor``, cut into batches,
    shuffle the batches: batches of similar lengths, still random from epoch to epoch."""

    def __init__(self, lengths, batch_size, bucket_factor=4, generator=None):
        self.lengths = lengths
        self.batch_size = batch_size
        self.chunk = batch_size * bucket_factor
        self.generator = generator

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        batches = []
        for start in range(0, len(order), self.chunk):
            chunk = sorted(order[start:start + self.chunk], key=lambda i: self.lengths[i])
            batches.extend(chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i]

    def __len__(self):
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


class LSTMClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.fc = nn.Linear(hidden_dim, num_classes)

    def forward(self, text, lengths):
        embedded = self.embedding(text)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        return self.fc(hidden[-1])


class MeanPoolClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.fc = nn.Linear(embed_dim, num_classes)

    def forward(self, text, lengths):
        mask = torch.arange(text.size(1))[None, :] < lengths[:, None]
        embedded = self.embedding(text) * mask.unsqueeze(-1)
        pooled = embedded.sum(dim=1) / lengths.unsqueeze(-1).float()
        return self.fc(pooled)


def describe(value):
    if isinstance(value, torch.Tensor):
        return f"Tensor{tuple(value.shape)}:{str(value.dtype).split('.')[-1]}"
    if isinstance(value, dict):
        return "dict{" + ", ".join(f"{k}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe(v) for v in value)
        return f"{type(value).__name__}[{inner}]"
    return f"{type(value).__name__}({value!r})"


def run_epoch(model, loader, optimizer=None):
    training = optimizer is not None
    model.train(training)
    total_loss, correct, count = 0.0, 0, 0
    with torch.set_grad_enabled(training):
        for text, lengths, labels in loader:
            logits = model(text, lengths)
            loss = F.cross_entropy(logits, labels)
            if training:
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
            total_loss += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            count += len(labels)
    return total_loss / count, correct / count


def main():
    seed = int(os.environ.get("PROGRAM_SEED", "0"))
    torch.manual_seed(seed)
    random.seed(seed)
    rng = np.random.RandomState(0)

    samples = [
        {"tokens": torch.tensor([1, 2]), "score": 0.5, "id": 3, "name": "a"},
        {"tokens": torch.tensor([4, 5]), "score": 1.5, "id": 4, "name": "b"},
    ]
    print("dict:", describe(default_collate(samples)))
    print("namedtuple:", describe(default_collate([Point(1.0, torch.zeros(2)), Point(2.0, torch.ones(2))])),
          type(default_collate([Point(1, 2), Point(3, 4)])).__name__)
    print("nested tuple:", describe(default_collate([(1, (2.0, np.zeros(3, dtype=np.float32))),
                                                     (3, (4.0, np.ones(3, dtype=np.float32)))])))
    print("lists:", describe(default_collate([[1, 2], [3, 4], [5, 6]])))
    print("values:", default_collate([(1, 2.5), (3, 4.5)]))
    try:
        default_collate([[1, 2], [3]])
    except RuntimeError as error:
        print("uneven lists:", error)

    train_set = TokenDataset(480, rng)
    val_set = TokenDataset(160, rng)
    lengths = [len(tokens) for tokens, _ in train_set.samples]
    print("length range", min(lengths), max(lengths), "positives", sum(lbl for _, lbl in train_set.samples))

    g = torch.Generator()
    g.manual_seed(seed)
    bucketed = DataLoader(train_set, batch_sampler=BucketBatchSampler(lengths, 32, generator=g),
                          collate_fn=collate_batch, pin_memory=False)
    random_batches = DataLoader(train_set, batch_size=32, shuffle=True, collate_fn=collate_batch, generator=g)
    val_loader = DataLoader(val_set, batch_size=64, collate_fn=collate_batch)

    text, lens, labels = next(iter(val_loader))
    print("padded batch", tuple(text.shape), text.dtype, "lengths", lens.dtype, "pad count equals",
          int((text == PAD).sum()) == int(text.size(1) * len(lens) - lens.sum()))

    def padding_fraction(loader):
        pads = tokens = 0
        for text, lens, _ in loader:
            pads += text.numel() - int(lens.sum())
            tokens += text.numel()
        return pads / tokens

    bucket_pad, random_pad = padding_fraction(bucketed), padding_fraction(random_batches)
    print(f"padding fraction: bucketed {bucket_pad:.3f} random {random_pad:.3f} "
          f"bucketed smaller: {bucket_pad < random_pad}, batches {len(bucketed)}")

    lstm = LSTMClassifier(VOCAB, 16, 32, 2)
    pooled = MeanPoolClassifier(VOCAB, 16, 2)
    lstm_opt = torch.optim.Adam(lstm.parameters(), lr=1e-2)
    pool_opt = torch.optim.Adam(pooled.parameters(), lr=1e-2)
    for epoch in range(1, 9):
        lstm_train, _ = run_epoch(lstm, bucketed, lstm_opt)
        pool_train, _ = run_epoch(pooled, bucketed, pool_opt)
        lstm_loss, lstm_acc = run_epoch(lstm, val_loader)
        pool_loss, pool_acc = run_epoch(pooled, val_loader)
        print(f"epoch {epoch}: lstm train {lstm_train:.4f} val {lstm_loss:.4f} acc {lstm_acc:.3f} | "
              f"mean-pool train {pool_train:.4f} val {pool_loss:.4f} acc {pool_acc:.3f}")

    # packing makes the padded tail irrelevant: more padding gives the same logits
    text, lens, _ = next(iter(val_loader))
    wider = F.pad(text, (0, 5), value=PAD)
    lstm.eval()
    pooled.eval()
    with torch.no_grad():
        lstm_same = torch.allclose(lstm(text, lens), lstm(wider, lens), atol=1e-6)
        pool_same = torch.allclose(pooled(text, lens), pooled(wider, lens), atol=1e-6)
    print("extra padding changes nothing:", lstm_same, pool_same)
    print(f"FINAL lstm_loss={lstm_loss:.4f} lstm_acc={lstm_acc:.4f} pool_acc={pool_acc:.4f} "
          f"bucket_pad={bucket_pad:.4f}")


if __name__ == "__main__":
    main()
