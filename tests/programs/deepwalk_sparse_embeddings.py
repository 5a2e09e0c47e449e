"""DeepWalk / node2vec-style node embeddings on a stochastic-block-model graph.

The graph: four blocks of 30 nodes, edges drawn with NumPy at a high within-block and a low
between-block probability, stored as a dense 0/1 adjacency tensor. Random walks are generated
in torch: every walker's next node is drawn at once by ``torch.multinomial`` over its row of the
adjacency (DeepWalk's uniform neighbour choice), and once more by node2vec's second-order bias
(return parameter ``p``, in-out parameter ``q``). Skip-gram (center, context) pairs come from a
window over each walk with ``unfold``; negatives are drawn from the unigram^0.75 distribution of
walk visits with ``torch.multinomial(..., replacement=True)``. Two ``nn.Embedding(..., sparse=True)``
tables (in and out) are trained by ``optim.SparseAdam``; their gradients are sparse COO tensors.
Then the frozen ``.weight.detach()`` embeddings feed a logistic-regression node classifier
(``nn.Linear`` + ``F.cross_entropy``, Adam), evaluated on held-out nodes with the accuracy per
block, and a k-means clustering of the normalised embeddings scored by purity.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

BLOCKS, BLOCK_SIZE = 4, 30
N = BLOCKS * BLOCK_SIZE
P_IN, P_OUT = 0.15, 0.03
labels_np = np.repeat(np.arange(BLOCKS), BLOCK_SIZE)
probs = np.where(labels_np[:, None] == labels_np[None, :], P_IN, P_OUT)
upper = np.triu(rng.random((N, N)) < probs, k=1)
adjacency_np = (upper | upper.T).astype(np.float32)
adjacency_np[np.arange(N), (np.arange(N) + 1) % N] = 1.0  # a ring keeps every node reachable
adjacency_np = np.maximum(adjacency_np, adjacency_np.T)
adjacency = torch.from_numpy(adjacency_np)
labels = torch.from_numpy(labels_np)
degree = adjacency.sum(1)
within = (adjacency * (labels[:, None] == labels[None, :])).sum().item() / adjacency.sum().item()
print(f"graph nodes {N} edges {int(adjacency.sum().item() // 2)} mean degree {degree.mean().item():.2f} "
      f"within-block edges {within:.3f}")


def deepwalk_walks(adjacency, walks_per_node, walk_length):
    starts = torch.arange(adjacency.size(0)).repeat(walks_per_node)
    walk = [starts]
    for _ in range(walk_length - 1):
        walk.append(torch.multinomial(adjacency[walk[-1]], 1).squeeze(1))
    return torch.stack(walk, dim=1)


def node2vec_walks(adjacency, walks_per_node, walk_length, p, q):
    starts = torch.arange(adjacency.size(0)).repeat(walks_per_node)
    walk = [starts, torch.multinomial(adjacency[starts], 1).squeeze(1)]
    for _ in range(walk_length - 2):
        prev, cur = walk[-2], walk[-1]
        neighbours = adjacency[cur]
        weights = neighbours / q  # moving away from prev
        weights = torch.where(adjacency[prev] > 0, neighbours, weights)  # staying at distance one
        weights[torch.arange(len(cur)), prev] = 1.0 / p  # returning to prev
        weights = weights * neighbours
        walk.append(torch.multinomial(weights, 1).squeeze(1))
    return torch.stack(walk, dim=1)


def skipgram_pairs(walks, window):
    frames = walks.unfold(1, 2 * window + 1, 1)  # (W, positions, 2w+1)
    centers = frames[..., window].unsqueeze(-1).expand(-1, -1, 2 * window)
    contexts = torch.cat([frames[..., :window], frames[..., window + 1:]], dim=-1)
    return centers.reshape(-1), contexts.reshape(-1)


class SkipGram(nn.Module):
    def __init__(self, num_nodes, dim):
        super().__init__()
        self.in_embed = nn.Embedding(num_nodes, dim, sparse=True)
        self.out_embed = nn.Embedding(num_nodes, dim, sparse=True)
        bound = 0.5 / dim
        self.in_embed.weight.data.uniform_(-bound, bound)
        self.out_embed.weight.data.zero_()

    def forward(self, centers, contexts, negatives):
        v = self.in_embed(centers)  # (B, D)
        u = self.out_embed(contexts)  # (B, D)
        u_neg = self.out_embed(negatives)  # (B, K, D)
        positive = F.logsigmoid((v * u).sum(-1))
        negative = F.logsigmoid(-torch.bmm(u_neg, v.unsqueeze(2)).squeeze(2)).sum(-1)
        return -(positive + negative).mean()


def train_embeddings(walks, name, dim=16, window=2, negatives=5, epochs=2, batch=512):
    centers, contexts = skipgram_pairs(walks, window)
    visits = torch.bincount(walks.reshape(-1), minlength=N).float()
    noise = visits.pow(0.75)
    noise = noise / noise.sum()
    model = SkipGram(N, dim)
    optimizer = optim.SparseAdam(list(model.parameters()), lr=0.02)
    print(f"{name} walks {tuple(walks.shape)} pairs {len(centers)} noise max {noise.max().item():.4f}")
    for epoch in range(epochs):
        order = torch.randperm(len(centers))
        total, steps = 0.0, 0
        for start in range(0, len(order), batch):
            index = order[start:start + batch]
            negative = torch.multinomial(noise, len(index) * negatives, replacement=True).view(len(index), negatives)
            loss = model(centers[index], contexts[index], negative)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            steps += 1
        print(f"{name} epoch {epoch} loss {total / steps:.4f}")
    grad = model.in_embed.weight.grad
    print(f"{name} gradient sparse {grad.is_sparse} layout {grad.layout} nnz rows {grad.coalesce().indices().size(1)}")
    return model.in_embed.weight.detach()


def classify(embeddings, train_mask, epochs=200):
    features = F.normalize(embeddings, dim=1)
    classifier = nn.Linear(features.size(1), BLOCKS)
    optimizer = optim.Adam(classifier.parameters(), lr=0.05, weight_decay=1e-4)
    for _ in range(epochs):
        loss = F.cross_entropy(classifier(features[train_mask]), labels[train_mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        pred = classifier(features).argmax(1)
    test = ~train_mask
    per_block = [(pred[test & (labels == b)] == b).float().mean().item() for b in range(BLOCKS)]
    return (pred[test] == labels[test]).float().mean().item(), per_block


def kmeans_purity(embeddings, k, iterations=20):
    x = F.normalize(embeddings, dim=1)
    centroids = x[torch.randperm(len(x))[:k]].clone()
    for _ in range(iterations):
        assign = torch.cdist(x, centroids).argmin(1)
        for c in range(k):
            members = x[assign == c]
            if len(members):
                centroids[c] = members.mean(0)
    counts = torch.zeros(k, BLOCKS).index_put_((assign, labels), torch.ones(len(x)), accumulate=True)
    return counts.max(1).values.sum().item() / len(x)


train_mask = torch.rand(N) < 0.5
print(f"labelled nodes {int(train_mask.sum().item())} of {N}")
results = {}
for name, walks in [("deepwalk", deepwalk_walks(adjacency, 4, 16)),
                    ("node2vec", node2vec_walks(adjacency, 4, 16, p=1.0, q=2.0))]:
    embeddings = train_embeddings(walks, name)
    accuracy, per_block = classify(embeddings, train_mask)
    purity = kmeans_purity(embeddings, BLOCKS)
    results[name] = (accuracy, purity)
    print(f"{name} accuracy {accuracy:.4f} per block {[f'{a:.3f}' for a in per_block]} purity {purity:.4f}")

print(f"FINAL deepwalk_acc={results['deepwalk'][0]:.4f} deepwalk_purity={results['deepwalk'][1]:.4f} "
      f"node2vec_acc={results['node2vec'][0]:.4f} node2vec_purity={results['node2vec'][1]:.4f}")
