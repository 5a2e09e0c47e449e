"""A DLRM/NCF-style click-through recommender, the way facebookresearch/dlrm writes one.

Dense features go through a bottom MLP; categorical features are looked up in
``nn.EmbeddingBag(mode='sum'/'mean', sparse=True)`` tables from flat ``indices`` + ``offsets``
(multi-hot bags, one weighted by ``per_sample_weights``) and in an ``nn.Embedding(sparse=True)``
user table; the features interact by pairwise dot products (``torch.bmm(z, z.transpose(1, 2))``
read at ``torch.triu_indices(n, n, offset=1)``), then a top MLP gives a logit for
``BCEWithLogitsLoss``.  Sparse parameters train with ``optim.SparseAdam``, dense ones with
``Adagrad``, then again with ``SGD``; the AUC is computed by hand from ``argsort`` ranks.
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

n_dense, n_users, table_sizes, dim = 8, 50, [30, 40, 20], 8
max_bag = 4

# a hidden ground truth: each category and user has a latent vector; clicks follow their agreement
true_user = rng.standard_normal((n_users, 4))
true_tables = [rng.standard_normal((n, 4)) for n in table_sizes]
true_dense = rng.standard_normal((n_dense, 4))


def make_data(n):
    dense = rng.standard_normal((n, n_dense)).astype(np.float32)
    users = rng.integers(0, n_users, size=n)
    bags = []                           # per table: (indices, offsets, weights)
    item = true_dense.T @ dense.T / np.sqrt(n_dense)
    for size, table in zip(table_sizes, true_tables):
        lengths = rng.integers(1, max_bag + 1, size=n)
        indices = rng.integers(0, size, size=int(lengths.sum()))
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        weights = rng.uniform(0.5, 1.5, size=len(indices)).astype(np.float32)
        sums = np.add.reduceat(table[indices] * weights[:, None], offsets, axis=0) / lengths[:, None]
        item = item + sums.T
        bags.append((torch.from_numpy(indices), torch.from_numpy(offsets), torch.from_numpy(weights)))
    score = (true_user[users] * item.T).sum(1)
    labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * score))).astype(np.float32)
    return torch.from_numpy(dense), torch.from_numpy(users), bags, torch.from_numpy(labels)


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DLRM(nn.Module):
    def __init__(self):
        super().__init__()
        self.bot_l = mlp([n_dense, 16, dim])
        self.user_emb = nn.Embedding(n_users, dim, sparse=True)
        # table 0: weighted sum bags; table 1: plain sums; table 2: means
        self.emb_l = nn.ModuleList([nn.EmbeddingBag(table_sizes[0], dim, mode="sum", sparse=True),
                                    nn.EmbeddingBag(table_sizes[1], dim, mode="sum", sparse=True),
                                    nn.EmbeddingBag(table_sizes[2], dim, mode="mean", sparse=True)])
        for emb in [self.user_emb, *self.emb_l]:
            n = emb.weight.shape[0]
            emb.weight.data = torch.tensor(
                rng.uniform(low=-np.sqrt(1 / n), high=np.sqrt(1 / n), size=(n, dim)).astype(np.float32))
        n_features = 2 + len(table_sizes)
        self.n_features = n_features
        self.top_l = mlp([dim + n_features * (n_features - 1) // 2, 16, 1])

    def interact_features(self, x, ly):
        (batch_size, d) = x.shape
        T = torch.cat([x] + ly, dim=1).view((batch_size, -1, d))
        Z = torch.bmm(T, torch.transpose(T, 1, 2))
        li, lj = torch.triu_indices(self.n_features, self.n_features, offset=1)
        Zflat = Z[:, li, lj]
        return torch.cat([x] + [Zflat], dim=1)

    def forward(self, dense, users, bags):
        x = self.bot_l(dense)
        ly = [self.user_emb(users)]
        for k, (emb, (indices, offsets, weights)) in enumerate(zip(self.emb_l, bags)):
            ly.append(emb(indices, offsets, per_sample_weights=weights if k == 0 else None))
        return self.top_l(self.interact_features(x, ly)).squeeze(1)


def auc(scores, labels):
    # Mann-Whitney: mean rank of the positives among all, ties ignored (scores are continuous)
    order = torch.argsort(scores)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(1, len(scores) + 1)
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return ((ranks[pos].sum().item() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


train = make_data(4096)
test = make_data(1024)
loss_fn = nn.BCEWithLogitsLoss()


def train_model(model, dense_opt, sparse_opt, epochs, batch_size=256):
    dense_all, users_all, bags_all, labels_all = train
    n = len(labels_all)
    for epoch in range(1, epochs + 1):
        total = 0.0
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            bags = []
            for indices, offsets, weights in bags_all:
                lo = int(offsets[start])
                hi = int(offsets[stop]) if stop < n else len(indices)
                bags.append((indices[lo:hi], offsets[start:stop] - lo, weights[lo:hi]))
            logits = model(dense_all[start:stop], users_all[start:stop], bags)
            loss = loss_fn(logits, labels_all[start:stop])
            dense_opt.zero_grad()
            sparse_opt.zero_grad()
            loss.backward()
            dense_opt.step()
            sparse_opt.step()
            total += loss.item() * (stop - start)
        print(f"epoch {epoch}: train loss {total / n:.4f}")


def evaluate(model):
    dense, users, bags, labels = test
    with torch.no_grad():
        logits = model(dense, users, bags)
    return loss_fn(logits, labels).item(), auc(logits, labels), ((logits > 0).float() == labels).float().mean().item()


def split_params(model):
    sparse = [model.user_emb.weight] + [e.weight for e in model.emb_l]
    dense = [p for name, p in model.named_parameters() if "emb" not in name]
    return dense, sparse


model = DLRM()
dense_params, sparse_params = split_params(model)
print("params:", len(dense_params), "dense,", len(sparse_params), "sparse")

# one backward: embedding gradients are sparse COO tensors with one row per looked-up index
dense, users, bags, labels = test
loss_fn(model(dense[:4], users[:4], [(i, o[:4], w) for i, o, w in bags]), labels[:4]).backward()
g = model.user_emb.weight.grad
print("user grad sparse:", g.is_sparse, "layout:", g.layout, "shape:", tuple(g.shape))
bag_grad = model.emb_l[0].weight.grad
print("bag grad sparse:", bag_grad.is_sparse, "dense equal:",
      bool(torch.allclose(bag_grad.to_dense(), bag_grad.coalesce().to_dense())))
print("dense grad sparse:", model.top_l[0].weight.grad.is_sparse)
model.zero_grad()

untrained_loss, untrained_auc, untrained_acc = evaluate(model)
print(f"untrained: loss {untrained_loss:.4f} auc {untrained_auc:.4f} acc {untrained_acc:.4f}")
train_model(model, torch.optim.Adagrad(dense_params, lr=0.02), torch.optim.SparseAdam(sparse_params, lr=0.01), 4)
adagrad_loss, adagrad_auc, adagrad_acc = evaluate(model)
print(f"adagrad + sparse adam: loss {adagrad_loss:.4f} auc {adagrad_auc:.4f} acc {adagrad_acc:.4f}")

model = DLRM()
dense_params, sparse_params = split_params(model)
train_model(model, torch.optim.SGD(dense_params, lr=0.05, momentum=0.9), torch.optim.Adagrad(sparse_params, lr=0.1), 4)
sgd_loss, sgd_auc, sgd_acc = evaluate(model)
print(f"sgd + sparse adagrad: loss {sgd_loss:.4f} auc {sgd_auc:.4f} acc {sgd_acc:.4f}")

# SparseAdam refuses dense gradients
try:
    p = nn.Parameter(torch.ones(3))
    (p * 2).sum().backward()
    torch.optim.SparseAdam([p]).step()
    print("SparseAdam on a dense grad: no error")
except RuntimeError as e:
    print("SparseAdam on a dense grad: RuntimeError", "dense" in str(e))
print(f"FINAL auc={adagrad_auc:.4f} loss={adagrad_loss:.4f} sgd_auc={sgd_auc:.4f}")
