"""Modern Hopfield networks (Ramsauer et al., "Hopfield Networks is All You Need") as an
associative memory and as a pooling layer.

The memory: N stored patterns are the columns of ``X`` (d x N); a corrupted query ``xi`` is
updated by ``xi_new = X @ softmax(beta * X.t() @ xi)``, one step or several; retrieval error
and accuracy are reported against ``beta`` (small beta averages the patterns into a metastable
state, large beta retrieves one pattern in a single step). Then the layer: ``HopfieldPooling``,
a learned query attending over a bag of instances (keys/values by ``nn.Linear``), trained on a
multiple-instance learning task (a bag is positive when it holds a witness instance) with bags of
different sizes padded by ``torch.nn.utils.rnn.pad_sequence`` and a key padding mask filled with
``float('-inf')`` before the softmax; the AUC is computed by hand from ``torch.argsort`` ranks.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# ---- associative memory -------------------------------------------------------------------
DIM, NUM_PATTERNS = 64, 32
patterns = torch.sign(torch.randn(DIM, NUM_PATTERNS))  # bipolar patterns as columns
patterns[patterns == 0] = 1.0
X = patterns / math.sqrt(DIM)  # unit-norm columns


def hopfield_update(X, xi, beta, steps=1):
    for _ in range(steps):
        xi = X @ torch.softmax(beta * X.t() @ xi, dim=0)
    return xi


def corrupt(columns, fraction):
    mask = torch.rand(columns.shape) < fraction
    return torch.where(mask, -columns, columns)


targets = torch.arange(NUM_PATTERNS)
queries = corrupt(patterns, 0.25) / math.sqrt(DIM)  # a quarter of the signs flipped
print(f"memory X {tuple(X.shape)} queries {tuple(queries.shape)} overlap "
      f"{(queries * X).sum(0).mean().item():.4f}")

accuracy_by_beta = {}
for beta in [0.5, 2.0, 8.0, 32.0]:
    for steps in [1, 3]:
        retrieved = hopfield_update(X, queries, beta, steps)
        nearest = (X.t() @ retrieved).argmax(dim=0)
        accuracy = (nearest == targets).float().mean().item()
        error = (retrieved - X).norm(dim=0).mean().item()
        sign_error = (torch.sign(retrieved) != patterns).float().mean().item()
        accuracy_by_beta[(beta, steps)] = accuracy
        print(f"beta {beta:5.1f} steps {steps} retrieval acc {accuracy:.4f} error {error:.4f} "
              f"sign errors {sign_error:.4f}")

energy_before = -torch.logsumexp(8.0 * X.t() @ queries, dim=0) / 8.0 + 0.5 * (queries * queries).sum(0)
after = hopfield_update(X, queries, 8.0, 1)
energy_after = -torch.logsumexp(8.0 * X.t() @ after, dim=0) / 8.0 + 0.5 * (after * after).sum(0)
print(f"energy decreases {bool((energy_after <= energy_before + 1e-6).all())} "
      f"mean {energy_before.mean().item():.4f} -> {energy_after.mean().item():.4f}")

# ---- Hopfield pooling on multiple-instance learning --------------------------------------
FEAT = 10
witness = rng.normal(size=FEAT).astype(np.float32)
witness /= np.linalg.norm(witness)


def make_bags(n):
    bags, labels = [], []
    for _ in range(n):
        size = int(rng.integers(3, 12))
        instances = rng.normal(size=(size, FEAT)).astype(np.float32)
        label = int(rng.random() < 0.5)
        if label:
            k = int(rng.integers(1, 3))
            instances[rng.choice(size, size=k, replace=False)] += 2.5 * witness
        bags.append(torch.from_numpy(instances))
        labels.append(label)
    return bags, torch.tensor(labels, dtype=torch.float32)


def collate(bags):
    lengths = torch.tensor([len(b) for b in bags])
    padded = pad_sequence(bags, batch_first=True)
    key_padding_mask = torch.arange(padded.size(1))[None, :] >= lengths[:, None]
    return padded, key_padding_mask


class HopfieldPooling(nn.Module):
    def __init__(self, in_features, hidden, beta=None):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, hidden) * 0.1)
        self.key = nn.Linear(in_features, hidden)
        self.value = nn.Linear(in_features, hidden)
        self.beta = beta if beta is not None else 1.0 / math.sqrt(hidden)

    def forward(self, x, key_padding_mask=None):
        keys, values = self.key(x), self.value(x)  # (B, L, H)
        scores = self.beta * torch.matmul(self.query.expand(x.size(0), -1, -1), keys.transpose(1, 2))
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask.unsqueeze(1), float("-inf"))
        attention = F.softmax(scores, dim=-1)  # (B, 1, L)
        return torch.bmm(attention, values).squeeze(1), attention.squeeze(1)


class MILNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(FEAT, 32), nn.ReLU())
        self.pool = HopfieldPooling(32, 16, beta=1.0)
        self.head = nn.Linear(16, 1)

    def forward(self, x, mask):
        pooled, attention = self.pool(self.embed(x), mask)
        return self.head(pooled).squeeze(-1), attention


def auc_by_ranks(scores, labels):
    ranks = torch.empty_like(scores)
    ranks[torch.argsort(scores)] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    positives = labels == 1
    n_pos, n_neg = positives.sum().item(), (~positives).sum().item()
    return (ranks[positives].sum().item() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


train_bags, train_labels = make_bags(160)
test_bags, test_labels = make_bags(80)
test_x, test_mask = collate(test_bags)
print(f"bags {len(train_bags)} padded test {tuple(test_x.shape)} masked {test_mask.sum().item()}")

model = MILNet()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
BATCH = 16
for epoch in range(12):
    model.train()
    order = torch.randperm(len(train_bags)).tolist()
    total = 0.0
    for start in range(0, len(order), BATCH):
        index = order[start:start + BATCH]
        x, mask = collate([train_bags[i] for i in index])
        logits, _ = model(x, mask)
        loss = F.binary_cross_entropy_with_logits(logits, train_labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(index)
    if epoch % 3 == 2:
        print(f"epoch {epoch} loss {total / len(order):.4f}")

model.eval()
with torch.no_grad():
    logits, attention = model(test_x, test_mask)
    probs = torch.sigmoid(logits)
    mil_acc = ((probs > 0.5).float() == test_labels).float().mean().item()
    auc = auc_by_ranks(probs, test_labels)
    padded_attention = attention[test_mask].abs().max().item()
    sums_to_one = torch.allclose(attention.sum(-1), torch.ones(len(test_bags)), atol=1e-5)
print(f"attention on padding {padded_attention:.1f} sums to one {sums_to_one}")
print(f"FINAL retrieval_acc_beta8={accuracy_by_beta[(8.0, 1)]:.4f} retrieval_acc_beta32={accuracy_by_beta[(32.0, 1)]:.4f} "
      f"retrieval_acc_beta05={accuracy_by_beta[(0.5, 3)]:.4f} mil_acc={mil_acc:.4f} mil_auc={auc:.4f}")
