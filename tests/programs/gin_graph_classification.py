"""Graph Isomorphism Network (Xu et al., "How Powerful are Graph Neural Networks?", 2019) by hand.

Graph classification without torch_geometric, the way weihua916/powerful-gnns and the PyG GIN
example lay it out: a mini-batch of graphs is one disjoint graph, its ``edge_index`` offset per
graph and a ``batch`` vector naming each node's graph. Each ``GINConv`` sums the neighbours by
``torch.zeros_like(h).index_add_(0, dst, h[src])`` and adds ``(1 + eps) * h`` with a learnable
``eps = nn.Parameter(torch.zeros(1))``, then an MLP with ``nn.BatchNorm1d``. Every layer (the input
included) is read out per graph by sum (``torch.zeros(num_graphs, F).index_add_(0, batch, h)``),
mean and max (``scatter_reduce(0, index, h, reduce='mean' / 'amax', include_self=False)``); the
readouts are concatenated over layers (jumping knowledge) into a linear classifier.

The data: cycles, paths, stars and Erdos-Renyi random graphs of 5-12 nodes, made with NumPy,
with constant node features, so only the structure tells the classes apart.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

CLASSES = ["cycle", "path", "star", "random"]


def make_graph(kind):
    n = int(rng.integers(5, 13))
    if kind == 0:
        edges = [(i, (i + 1) % n) for i in range(n)]
    elif kind == 1:
        edges = [(i, i + 1) for i in range(n - 1)]
    elif kind == 2:
        edges = [(0, i) for i in range(1, n)]
    else:
        upper = np.triu(rng.random((n, n)) < 0.4, k=1)
        edges = [(int(a), int(b)) for a, b in zip(*np.nonzero(upper))]
        edges += [(i, i + 1) for i in range(n - 1) if not upper[i, i + 1] and rng.random() < 0.5]
    perm = rng.permutation(n)  # relabel nodes so the order says nothing
    src = [perm[a] for a, b in edges] + [perm[b] for a, b in edges]
    dst = [perm[b] for a, b in edges] + [perm[a] for a, b in edges]
    return n, np.array([src, dst], dtype=np.int64).reshape(2, -1)


def make_dataset(per_class):
    graphs = [(make_graph(kind), kind) for kind in range(len(CLASSES)) for _ in range(per_class)]
    order = rng.permutation(len(graphs))
    return [graphs[i] for i in order]


def collate(graphs):
    """Batch graphs into one disjoint graph: offset edge indices, a batch vector, constant features."""
    edge_index, batch, offset = [], [], 0
    for g, ((n, edges), _) in enumerate(graphs):
        edge_index.append(torch.from_numpy(edges) + offset)
        batch.append(torch.full((n,), g, dtype=torch.long))
        offset += n
    x = torch.ones(offset, 1)
    y = torch.tensor([label for _, label in graphs])
    return x, torch.cat(edge_index, dim=1), torch.cat(batch), y


class GINConv(nn.Module):
    def __init__(self, in_dim, out_dim, train_eps=True):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU(),
            nn.Linear(out_dim, out_dim),
        )
        self.eps = nn.Parameter(torch.zeros(1)) if train_eps else 0.0

    def forward(self, h, edge_index):
        src, dst = edge_index
        aggregated = torch.zeros_like(h).index_add_(0, dst, h[src])
        return self.mlp((1 + self.eps) * h + aggregated)


def readout(h, batch, num_graphs):
    index = batch.unsqueeze(-1).expand_as(h)
    summed = torch.zeros(num_graphs, h.size(1)).index_add_(0, batch, h)
    mean = torch.zeros(num_graphs, h.size(1)).scatter_reduce(0, index, h, reduce="mean", include_self=False)
    amax = torch.zeros(num_graphs, h.size(1)).scatter_reduce(0, index, h, reduce="amax", include_self=False)
    return torch.cat([summed, mean, amax], dim=1)


class GIN(nn.Module):
    def __init__(self, in_dim, hidden, num_classes, num_layers=3, dropout=0.2):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for layer in range(num_layers):
            self.convs.append(GINConv(in_dim if layer == 0 else hidden, hidden))
            self.norms.append(nn.BatchNorm1d(hidden))
        jk_dim = 3 * (in_dim + num_layers * hidden)
        self.classifier = nn.Sequential(nn.Linear(jk_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x, edge_index, batch, num_graphs):
        h = x
        readouts = [readout(h, batch, num_graphs)]
        for conv, norm in zip(self.convs, self.norms):
            h = F.relu(norm(conv(h, edge_index)))
            readouts.append(readout(h, batch, num_graphs))
        return self.classifier(torch.cat(readouts, dim=1))


train_set = make_dataset(40)
test_set = make_dataset(20)
x, edge_index, batch, y = collate(train_set[:8])
print(f"batch of 8 graphs: {x.size(0)} nodes {edge_index.size(1)} directed edges, batch vector {batch.dtype}")

# The readouts against the slow per-graph loop.
h = torch.randn(x.size(0), 5)
pooled = readout(h, batch, 8)
loop = torch.stack([torch.cat([h[batch == g].sum(0), h[batch == g].mean(0), h[batch == g].max(0).values])
                    for g in range(8)])
counts = torch.bincount(batch, minlength=8).clamp(min=1).unsqueeze(-1)
print(f"readouts equal the per-graph loop {torch.allclose(pooled, loop, atol=1e-5)}; "
      f"mean is sum / bincount {torch.allclose(pooled[:, 5:10], pooled[:, :5] / counts, atol=1e-5)}")
degree = torch.zeros(x.size(0)).index_add_(0, edge_index[1], torch.ones(edge_index.size(1)))
print(f"degrees by index_add_ match bincount {torch.equal(degree.long(), torch.bincount(edge_index[1], minlength=x.size(0)))}")

model = GIN(in_dim=1, hidden=32, num_classes=len(CLASSES))
print(f"parameters {sum(p.numel() for p in model.parameters())}, eps parameters "
      f"{[name for name, _ in model.named_parameters() if name.endswith('eps')]}")
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)

EPOCHS, BATCH = 25, 32
for epoch in range(EPOCHS):
    model.train()
    order = torch.randperm(len(train_set)).tolist()
    total_loss, correct = 0.0, 0
    for start in range(0, len(train_set), BATCH):
        graphs = [train_set[i] for i in order[start:start + BATCH]]
        x, edge_index, batch, y = collate(graphs)
        out = model(x, edge_index, batch, len(graphs))
        loss = F.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(graphs)
        correct += (out.argmax(1) == y).sum().item()
    scheduler.step()
    if epoch % 5 == 4:
        print(f"epoch {epoch + 1} loss {total_loss / len(train_set):.4f} train acc {correct / len(train_set):.3f}")

model.eval()
with torch.no_grad():
    x, edge_index, batch, y = collate(test_set)
    out = model(x, edge_index, batch, len(test_set))
    test_loss = F.cross_entropy(out, y).item()
    pred = out.argmax(1)
per_class = [(pred[y == c] == c).float().mean().item() for c in range(len(CLASSES))]
print("test accuracy per class", {name: round(acc, 3) for name, acc in zip(CLASSES, per_class)})
eps = [conv.eps.item() for conv in model.convs]
print("learned eps", [f"{e:.3f}" for e in eps])
acc = (pred == y).float().mean().item()
print(f"FINAL test_loss={test_loss:.4f} acc={acc:.4f} acc_cycle={per_class[0]:.4f} acc_path={per_class[1]:.4f} "
      f"acc_star={per_class[2]:.4f} acc_random={per_class[3]:.4f} mean_abs_eps={sum(abs(e) for e in eps) / len(eps):.4f}")
