"""Knowledge distillation of a sequence classifier, fed through torch.utils.data's building blocks.

Data: a map-style ``Dataset`` of variable-length token sequences, ``Subset`` and
``ConcatDataset`` to build an imbalanced training set, ``torch.unique(return_counts=True)`` class
counts, ``WeightedRandomSampler`` (with a seeded
``Generator``) to rebalance it, a ``collate_fn`` that pads with ``pad_sequence(batch_first=True)``
and returns lengths, ``BatchSampler``/``SequentialSampler`` for evaluation. Model: ``nn.Embedding
(padding_idx=0)``, masked mean pooling. Distillation (Hinton et al.): ``nn.KLDivLoss(reduction=
"batchmean")`` on ``log_softmax(student / T)`` against ``softmax(teacher / T)`` times ``T * T``,
plus the same loss with ``log_target=True``, mixed with the hard-label cross-entropy.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    SequentialSampler,
    Subset,
    WeightedRandomSampler,
)

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

VOCAB, CLASSES = 24, 3


class TokenSequences(Dataset):
    """Sequences of 4..12 tokens; each class draws its tokens from its own preferred third of the
    vocabulary two times in three, else uniformly. Token 0 is padding."""

    def __init__(self, n, seed):
        rng = np.random.RandomState(seed)
        self.labels = rng.randint(0, CLASSES, size=n)
        self.sequences = []
        for label in self.labels:
            length = rng.randint(4, 13)
            preferred = 1 + label * 7 + rng.randint(0, 7, size=length)
            uniform = rng.randint(1, VOCAB, size=length)
            self.sequences.append(np.where(rng.rand(length) < 0.4, preferred, uniform))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return torch.tensor(self.sequences[index], dtype=torch.long), int(self.labels[index])


def collate_batch(batch):
    sequences, labels = zip(*batch)
    lengths = torch.tensor([len(s) for s in sequences])
    padded = pad_sequence(sequences, batch_first=True, padding_value=0)
    return padded, lengths, torch.tensor(labels)


full = TokenSequences(900, seed=1)
test_set = TokenSequences(300, seed=2)
# an imbalanced training set: every example of class 0, a fifth of classes 1 and 2
by_class = [np.flatnonzero(full.labels == c) for c in range(CLASSES)]
parts = [Subset(full, by_class[0].tolist()), Subset(full, by_class[1][: len(by_class[1]) // 5].tolist()),
         Subset(full, by_class[2][: len(by_class[2]) // 5].tolist())]
train_set = ConcatDataset(parts)
train_labels = torch.tensor([label for _, label in train_set])
classes, class_counts = torch.unique(train_labels, return_counts=True)
print(f"training set: {len(train_set)} examples from {len(parts)} parts, classes {classes.tolist()}, "
      f"class counts {class_counts.tolist()}")
sample_weights = (1.0 / class_counts.double())[train_labels]
generator = torch.Generator().manual_seed(seed)
sampler = WeightedRandomSampler(sample_weights, num_samples=len(train_set), replacement=True, generator=generator)
train_loader = DataLoader(train_set, batch_size=32, sampler=sampler, collate_fn=collate_batch)
test_loader = DataLoader(test_set, batch_sampler=BatchSampler(SequentialSampler(test_set), batch_size=100,
                                                              drop_last=False), collate_fn=collate_batch)


class BagClassifier(nn.Module):
    def __init__(self, embed_dim, hidden):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, embed_dim, padding_idx=0)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, CLASSES))

    def forward(self, tokens, lengths):
        mask = (tokens != 0).unsqueeze(-1).float()
        pooled = (self.embedding(tokens) * mask).sum(1) / lengths.unsqueeze(1).float()
        return self.mlp(pooled)


def evaluate(model):
    model.eval()
    correct, total, per_class = 0, 0, np.zeros(CLASSES)
    with torch.no_grad():
        for tokens, lengths, labels in test_loader:
            predictions = model(tokens, lengths).argmax(dim=1)
            correct += (predictions == labels).sum().item()
            total += labels.numel()
            for c in range(CLASSES):
                per_class[c] += ((predictions == c) & (labels == c)).sum().item()
    recall = per_class / np.bincount(test_set.labels, minlength=CLASSES)
    return correct / total, recall.min()


def train(model, epochs, lr, teacher=None, T=3.0, alpha=0.7):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    kl_div = nn.KLDivLoss(reduction="batchmean")
    kl_div_log_target = nn.KLDivLoss(reduction="batchmean", log_target=True)
    for _ in range(epochs):
        model.train()
        epoch_loss = 0.0
        for tokens, lengths, labels in train_loader:
            logits = model(tokens, lengths)
            loss = F.cross_entropy(logits, labels)
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(tokens, lengths)
                soft_student = F.log_softmax(logits / T, dim=1)
                soft_loss = kl_div(soft_student, F.softmax(teacher_logits / T, dim=1)) * T * T
                soft_loss_log = kl_div_log_target(soft_student, F.log_softmax(teacher_logits / T, dim=1)) * T * T
                loss = alpha * 0.5 * (soft_loss + soft_loss_log) + (1 - alpha) * loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            epoch_loss += loss.item()
    return epoch_loss / len(train_loader)


teacher = BagClassifier(embed_dim=16, hidden=32)
train(teacher, epochs=6, lr=1e-2)
teacher_acc, teacher_recall = evaluate(teacher)
print(f"teacher: accuracy {teacher_acc:.4f}, worst-class recall {teacher_recall:.4f}")
teacher.eval()

student = BagClassifier(embed_dim=6, hidden=12)
distill_loss = train(student, epochs=8, lr=1e-2, teacher=teacher)
student_acc, student_recall = evaluate(student)
print(f"student: accuracy {student_acc:.4f}, worst-class recall {student_recall:.4f}, last epoch's loss {distill_loss:.4f}")

# the two spellings of the distillation loss agree, and the padding embedding stays zero
with torch.no_grad():
    tokens, lengths, _ = next(iter(test_loader))
    s, t = F.log_softmax(student(tokens, lengths) / 3, 1), F.log_softmax(teacher(tokens, lengths) / 3, 1)
    both = (F.kl_div(s, t.exp(), reduction="batchmean") - F.kl_div(s, t, reduction="batchmean", log_target=True))
print(f"kl spellings differ by {abs(both.item()):.1e} < 1e-5: {abs(both.item()) < 1e-5}, "
      f"padding row zero: {bool((student.embedding.weight[0] == 0).all())}")
print(f"FINAL teacher_acc={teacher_acc:.4f} student_acc={student_acc:.4f} student_recall={student_recall:.4f} "
      f"loss={distill_loss:.4f}")
