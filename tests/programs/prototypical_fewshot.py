"""Prototypical Networks (Snell et al., 2017) as the reference code and its ports write them, on
synthetic "omniglot-like" characters.

An episodic sampler in the style of orobix/Prototypical-Networks-for-Few-shot-Learning-PyTorch:
a ``torch.utils.data.Sampler`` subclass that picks ``n_way`` classes by ``torch.randperm`` and, for
each, ``n_shot + n_query`` of its examples, yielding one list of dataset indices per episode, given to
``DataLoader(dataset, batch_sampler=sampler)``. The batch comes back class by class, so the
embeddings are split into support and query by reshaping to ``(n_way, n_shot + n_query, dim)``;
prototypes are ``support.mean(1)``, logits ``-torch.cdist(query, prototypes) ** 2`` (checked against
jakesnell's ``euclidean_dist`` by ``unsqueeze(1).expand(n, m, d)``), the loss
``F.log_softmax(...).view(n_way, n_query, -1)`` + ``gather(2, target_inds)`` with
``torch.arange(n_way).view(n_way, 1, 1).expand(n_way, n_query, 1)``, accuracy by ``max(2)`` +
``torch.eq``. Training episodes are higher-way (10-way 5-shot, as in the paper) with Adam and a
``StepLR`` halving per block of episodes; evaluation is on held-out classes, 5-way 1-shot and
5-way 5-shot, reported as mean accuracy with a 95 % confidence interval
(``1.96 * std / sqrt(episodes)``).

The data: each class is a random set of strokes on a 14x14 grid drawn with NumPy; an example is
its class's strokes shifted by up to one pixel, with jittered stroke ends, missing pixels and noise.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE = 14


def draw_stroke(canvas, start, end):
    for t in np.linspace(0.0, 1.0, 16):
        y, x = np.rint(start + t * (end - start)).astype(int)
        if 0 <= y < SIZE and 0 <= x < SIZE:
            canvas[y, x] = 1.0


def make_alphabet(n_classes, n_examples):
    images = np.zeros((n_classes * n_examples, 1, SIZE, SIZE), dtype=np.float32)
    labels = np.repeat(np.arange(n_classes), n_examples)
    for c in range(n_classes):
        strokes = [rng.uniform(2, SIZE - 3, size=(2, 2)) for _ in range(rng.integers(2, 5))]
        for e in range(n_examples):
            shift = rng.integers(-1, 2, size=2)
            canvas = np.zeros((SIZE, SIZE), dtype=np.float32)
            for start, end in strokes:
                draw_stroke(canvas, start + shift + rng.normal(0, 0.5, 2), end + shift + rng.normal(0, 0.5, 2))
            canvas *= rng.random((SIZE, SIZE)) > 0.1
            images[c * n_examples + e, 0] = canvas + rng.normal(0, 0.15, size=(SIZE, SIZE))
    return torch.from_numpy(images), torch.from_numpy(labels)


class PrototypicalBatchSampler(Sampler):
    """Yields, per episode, the indices of ``num_samples`` examples of each of ``classes_per_it``
    classes, class after class."""

    def __init__(self, labels, classes_per_it, num_samples, iterations):
        super().__init__()
        self.labels = labels
        self.classes_per_it = classes_per_it
        self.sample_per_class = num_samples
        self.iterations = iterations
        self.classes, self.counts = torch.unique(labels, return_counts=True)
        self.indexes = torch.full((len(self.classes), int(self.counts.max())), float("nan"))
        self.numel_per_class = torch.zeros_like(self.classes)
        for idx, label in enumerate(labels):
            label_idx = int(torch.nonzero(self.classes == label).item())
            self.indexes[label_idx, int(self.numel_per_class[label_idx])] = idx
            self.numel_per_class[label_idx] += 1

    def __iter__(self):
        spc, cpi = self.sample_per_class, self.classes_per_it
        for _ in range(self.iterations):
            batch = torch.LongTensor(spc * cpi)
            c_idxs = torch.randperm(len(self.classes))[:cpi]
            for i, c in enumerate(self.classes[c_idxs]):
                s = slice(i * spc, (i + 1) * spc)
                label_idx = torch.arange(len(self.classes)).long()[self.classes == c].item()
                sample_idxs = torch.randperm(int(self.numel_per_class[label_idx]))[:spc]
                batch[s] = self.indexes[label_idx][sample_idxs]
            yield batch.tolist()

    def __len__(self):
        return self.iterations


def conv_block(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class ProtoNet(nn.Module):
    def __init__(self, x_dim=1, hid_dim=16, z_dim=24):
        super().__init__()
        self.encoder = nn.Sequential(conv_block(x_dim, hid_dim), conv_block(hid_dim, hid_dim), conv_block(hid_dim, z_dim))

    def forward(self, x):
        x = self.encoder(x)
        return x.view(x.size(0), -1)


def euclidean_dist(x, y):
    n, m, d = x.size(0), y.size(0), x.size(1)
    if d != y.size(1):
        raise Exception
    x = x.unsqueeze(1).expand(n, m, d)
    y = y.unsqueeze(0).expand(n, m, d)
    return torch.pow(x - y, 2).sum(2)


def prototypical_loss(embeddings, n_way, n_shot, n_query):
    z = embeddings.view(n_way, n_shot + n_query, -1)
    support, query = z[:, :n_shot], z[:, n_shot:]
    prototypes = support.mean(1)
    query = query.reshape(n_way * n_query, -1)
    logits = -torch.cdist(query, prototypes) ** 2
    log_p_y = F.log_softmax(logits, dim=1).view(n_way, n_query, -1)
    target_inds = torch.arange(0, n_way).view(n_way, 1, 1).expand(n_way, n_query, 1).long()
    loss_val = -log_p_y.gather(2, target_inds).squeeze().view(-1).mean()
    _, y_hat = log_p_y.max(2)
    acc_val = torch.eq(y_hat, target_inds.squeeze()).float().mean()
    return loss_val, acc_val, logits, query, prototypes


train_x, train_y = make_alphabet(40, 16)
test_x, test_y = make_alphabet(20, 16)
print(f"train {tuple(train_x.shape)} classes {len(torch.unique(train_y))} test classes {len(torch.unique(test_y))}")

TRAIN_WAY, TRAIN_SHOT, TRAIN_QUERY, EPISODES = 10, 5, 5, 120
train_sampler = PrototypicalBatchSampler(train_y, TRAIN_WAY, TRAIN_SHOT + TRAIN_QUERY, EPISODES)
train_loader = DataLoader(TensorDataset(train_x, train_y), batch_sampler=train_sampler)
print(f"episodes {len(train_loader)} of {TRAIN_WAY}-way {TRAIN_SHOT}-shot, batch {TRAIN_WAY * (TRAIN_SHOT + TRAIN_QUERY)}")

model = ProtoNet()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=40, gamma=0.5)

first = True
losses, accs = [], []
model.train()
for episode, (x, y) in enumerate(train_loader):
    if first:
        episode_classes = y.view(TRAIN_WAY, -1)
        print("episode batch", tuple(x.shape), "one class per row", bool((episode_classes == episode_classes[:, :1]).all()))
    optimizer.zero_grad()
    loss, acc, logits, query, prototypes = prototypical_loss(model(x), TRAIN_WAY, TRAIN_SHOT, TRAIN_QUERY)
    if first:
        by_expand = euclidean_dist(query, prototypes)
        print("cdist ** 2 agrees with euclidean_dist", torch.allclose(-logits, by_expand, rtol=1e-4, atol=1e-3),
              "logits", tuple(logits.shape))
        first = False
    loss.backward()
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
    accs.append(acc.item())
    if (episode + 1) % 30 == 0:
        print(f"episode {episode + 1:3d} loss {np.mean(losses[-30:]):.4f} acc {np.mean(accs[-30:]):.4f} lr {scheduler.get_last_lr()[0]:.5f}")


@torch.no_grad()
def evaluate(n_way, n_shot, n_query, episodes):
    model.eval()
    sampler = PrototypicalBatchSampler(test_y, n_way, n_shot + n_query, episodes)
    loader = DataLoader(TensorDataset(test_x, test_y), batch_sampler=sampler)
    episode_accs = torch.tensor([prototypical_loss(model(x), n_way, n_shot, n_query)[1].item() for x, _ in loader])
    mean = episode_accs.mean().item()
    ci95 = 1.96 * episode_accs.std().item() / math.sqrt(episodes)
    return mean, ci95


results = {}
for shot in (1, 5):
    mean, ci95 = evaluate(5, shot, 10, 100)
    results[shot] = (mean, ci95)
    print(f"test 5-way {shot}-shot accuracy {mean * 100:.2f} +- {ci95 * 100:.2f} % over 100 episodes")

print(f"FINAL train_loss={np.mean(losses[-30:]):.4f} acc_1shot={results[1][0]:.4f} ci_1shot={results[1][1]:.4f} "
      f"acc_5shot={results[5][0]:.4f} ci_5shot={results[5][1]:.4f}")
