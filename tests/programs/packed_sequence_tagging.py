"""A BiLSTM sequence tagger over variable-length sentences, batched the way tagging tutorials do.

A ``Dataset`` of (tokens, tags) pairs and a ``collate_fn`` that sorts the batch by length and
builds it with ``pad_sequence(batch_first=True, padding_value=PAD)``; the model packs with
``pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)``, runs a
bidirectional 2-layer ``nn.LSTM(dropout=...)`` on the packed input, unpacks with
``pad_packed_sequence(out, batch_first=True, total_length=T)``, and joins both directions'
last hidden states by ``torch.cat((h[-2], h[-1]), dim=1)`` for a sentence-level head. The token
loss is ``F.cross_entropy(..., ignore_index=PAD)``, gradients clipped by ``clip_grad_norm_``.
``PackedSequence``'s ``.data``, ``.batch_sizes``, ``.sorted_indices`` and ``pack_sequence`` are
printed on a small batch. The task: tag each token by whether it is larger than the token before
it (3 tags), and classify the sentence by whether its first token is even.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

PAD = 0
VOCAB = 20  # 0 = pad, 1..19 = words
TAG_PAD, N_TAGS = 0, 4  # tag 0 is padding; 1 = up, 2 = down, 3 = first token / equal


def make_sentence():
    length = rng.randint(3, 13)
    tokens = rng.randint(1, VOCAB, size=length)
    tags = np.empty(length, dtype=np.int64)
    tags[0] = 3
    tags[1:] = np.where(tokens[1:] > tokens[:-1], 1, np.where(tokens[1:] < tokens[:-1], 2, 3))
    return torch.tensor(tokens, dtype=torch.long), torch.tensor(tags), int(tokens[0] % 2 == 0)


class TaggingDataset(Dataset):
    def __init__(self, n):
        self.examples = [make_sentence() for _ in range(n)]

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, idx):
        return self.examples[idx]


def collate_fn(batch):
    # longest first, as many tutorials do before packing (enforce_sorted=False would not need it)
    batch = sorted(batch, key=lambda example: len(example[0]), reverse=True)
    tokens, tags, labels = zip(*batch)
    lengths = torch.tensor([len(t) for t in tokens])
    tokens = pad_sequence(tokens, batch_first=True, padding_value=PAD)
    tags = pad_sequence(tags, batch_first=True, padding_value=TAG_PAD)
    return tokens, tags, lengths, torch.tensor(labels)


class BiLSTMTagger(nn.Module):
    def __init__(self, vocab_size, embed_dim=16, hidden_dim=24, n_tags=N_TAGS):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, num_layers=2, bidirectional=True,
                            batch_first=True, dropout=0.2)
        self.dropout = nn.Dropout(0.2)
        self.tagger = nn.Linear(2 * hidden_dim, n_tags)
        self.classifier = nn.Linear(2 * hidden_dim, 2)

    def forward(self, tokens, lengths):
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, (h, c) = self.lstm(packed)
        out, out_lengths = pad_packed_sequence(packed_out, batch_first=True, total_length=tokens.size(1))
        # h is (num_layers * 2, batch, hidden): the last layer's forward and backward states
        sentence = torch.cat((h[-2], h[-1]), dim=1)
        return self.tagger(self.dropout(out)), self.classifier(sentence)


train_loader = DataLoader(TaggingDataset(320), batch_size=32, shuffle=True, collate_fn=collate_fn)
test_loader = DataLoader(TaggingDataset(128), batch_size=64, shuffle=False, collate_fn=collate_fn)

model = BiLSTMTagger(VOCAB)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

# what a PackedSequence holds, on three sentences of lengths 4, 2, 3
demo = [torch.tensor([5, 6, 7, 8]), torch.tensor([9, 10]), torch.tensor([11, 12, 13])]
packed_demo = pack_sequence(demo, enforce_sorted=False)
print("packed data", packed_demo.data.tolist())
print("batch_sizes", packed_demo.batch_sizes.tolist(), "sorted_indices", packed_demo.sorted_indices.tolist(),
      "unsorted_indices", packed_demo.unsorted_indices.tolist())
padded_demo, demo_lengths = pad_packed_sequence(packed_demo, batch_first=True, padding_value=-1)
print("padded", padded_demo.tolist(), "lengths", demo_lengths.tolist())


def evaluate(loader):
    model.eval()
    correct = total = sentence_correct = sentences = 0
    loss_sum = 0.0
    with torch.no_grad():
        for tokens, tags, lengths, labels in loader:
            tag_logits, sentence_logits = model(tokens, lengths)
            loss_sum += F.cross_entropy(tag_logits.reshape(-1, N_TAGS), tags.reshape(-1),
                                        ignore_index=TAG_PAD, reduction="sum").item()
            mask = tags != TAG_PAD
            correct += (tag_logits.argmax(-1)[mask] == tags[mask]).sum().item()
            total += mask.sum().item()
            sentence_correct += (sentence_logits.argmax(1) == labels).sum().item()
            sentences += labels.size(0)
    model.train()
    return loss_sum / total, correct / total, sentence_correct / sentences, total


for epoch in range(1, 9):
    running = 0.0
    for tokens, tags, lengths, labels in train_loader:
        optimizer.zero_grad()
        tag_logits, sentence_logits = model(tokens, lengths)
        loss = F.cross_entropy(tag_logits.view(-1, N_TAGS), tags.view(-1), ignore_index=TAG_PAD)
        loss = loss + 0.5 * F.cross_entropy(sentence_logits, labels)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        running += loss.item()
    test_loss, tag_acc, sentence_acc, n_tokens = evaluate(test_loader)
    print(f"epoch {epoch} train loss {running / len(train_loader):.4f} test tag loss {test_loss:.4f} "
          f"tag acc {tag_acc:.4f} sentence acc {sentence_acc:.4f} last grad norm {grad_norm.item():.3f}")

print(f"test tokens {n_tokens}")
print(f"FINAL loss={test_loss:.4f} tag_acc={tag_acc:.4f} sentence_acc={sentence_acc:.4f}")
