"""GraphSAGE as the "message passing without torch_geometric" tutorials write it, on a tiny
stochastic block model: ``edge_index`` as a ``torch.long`` (2, E) tensor, mean aggregation by
``torch.zeros(N, F).index_add_(0, dst, x[src])`` divided by ``torch.bincount(dst, minlength=N)
.clamp(min=1)``, max aggregation by ``scatter_reduce_(0, index, src, reduce="amax",
include_self=False)``, sum aggregation by ``Tensor.scatter_add_`` with an index expanded to the
feature width (against ``index_add_``), the same mean by ``torch.sparse_coo_tensor(edge_index, values,
(N, N))`` + ``torch.sparse.mm(adj, x)`` (must agree with the dense path), neighbour sampling for
mini-batches (graphsage-simple's fixed fan-out) by ``torch.randint`` over each node's neighbour list
and ``torch.multinomial`` over a degree-weighted distribution, ``F.normalize(h, p=2, dim=-1)`` after each
layer, bool train/val/test masks, ``out[mask].argmax(1)`` accuracy, Adam + ``F.cross_entropy``.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ---- data: a 3-community graph, noisy features (NumPy, fixed) ----
rng = np.random.RandomState(0)
num_nodes, num_classes, num_features = 90, 3, 10
y_np = np.repeat(np.arange(num_classes), num_nodes // num_classes)
prob = np.where(y_np[:, None] == y_np[None, :], 0.15, 0.015)
upper = np.triu(rng.rand(num_nodes, num_nodes) < prob, 1)
row, col = np.nonzero(upper | upper.T)
centers = rng.randn(num_classes, num_features)
x_np = (0.5 * centers[y_np] + rng.randn(num_nodes, num_features)).astype(np.float32)

x = torch.from_numpy(x_np)
y = torch.from_numpy(y_np)
edge_index = torch.tensor(np.stack([row, col]), dtype=torch.long)
print("edge_index:", edge_index.dtype, tuple(edge_index.shape[:1]))
split = torch.from_numpy(rng.permutation(num_nodes))
train_mask = torch.zeros(num_nodes, dtype=torch.bool)
val_mask = torch.zeros(num_nodes, dtype=torch.bool)
test_mask = torch.zeros(num_nodes, dtype=torch.bool)
train_mask[split[:30]] = True
val_mask[split[30:50]] = True
test_mask[split[50:]] = True
print(f"nodes {num_nodes} train {int(train_mask.sum())} val {int(val_mask.sum())} test {int(test_mask.sum())}")

src, dst = edge_index
deg = torch.bincount(dst, minlength=num_nodes)
print("isolated nodes:", int((deg == 0).sum()), "max degree:", int(deg.max()))


def mean_aggregate(h, edge_index, num_nodes):
    src, dst = edge_index
    out = torch.zeros(num_nodes, h.size(1)).index_add_(0, dst, h[src])
    deg = torch.bincount(dst, minlength=num_nodes).clamp(min=1)
    return out / deg.unsqueeze(-1).to(h.dtype)


def max_aggregate(h, edge_index, num_nodes):
    src, dst = edge_index
    index = dst.unsqueeze(-1).expand(-1, h.size(1))
    out = torch.zeros(num_nodes, h.size(1))
    return out.scatter_reduce_(0, index, h[src], reduce="amax", include_self=False)


def sum_aggregate(h, edge_index, num_nodes):
    src, dst = edge_index
    index = dst.view(-1, 1).expand_as(h[src])
    return torch.zeros(num_nodes, h.size(1), dtype=h.dtype).scatter_add_(0, index, h[src])


# ---- the aggregations agree with their other spellings ----
with torch.no_grad():
    by_scatter = sum_aggregate(x, edge_index, num_nodes)
    by_index_add = torch.zeros_like(x).index_add_(0, dst, x[src])
    print("scatter_add_ vs index_add_ max error below 1e-5:", (by_scatter - by_index_add).abs().max().item() < 1e-5)
    values = 1.0 / deg.clamp(min=1)[dst].float()
    # row i of the adjacency gathers from i's sources: indices (dst, src)
    adj = torch.sparse_coo_tensor(edge_index.flip(0), values, (num_nodes, num_nodes))
    by_sparse = torch.sparse.mm(adj, x)
    by_dense = mean_aggregate(x, edge_index, num_nodes)
    print("sparse.mm vs index_add_ mean max error below 1e-5:", (by_sparse - by_dense).abs().max().item() < 1e-5)
    dense_adj = adj.to_dense()
    print("dense adjacency row sums are 1 where deg > 0:",
          bool(torch.allclose(dense_adj.sum(1)[deg > 0], torch.ones(int((deg > 0).sum())))))
    by_max = max_aggregate(x, edge_index, num_nodes)
    loop_max = torch.stack([x[src[dst == i]].max(0).values if deg[i] > 0 else torch.zeros(num_features)
                            for i in range(num_nodes)])
    print("amax vs per-node loop equal:", torch.equal(by_max, loop_max))


class SAGEConv(nn.Module):
    def __init__(self, in_channels, out_channels, aggr="mean"):
        super().__init__()
        self.aggr = aggr
        self.lin_l = nn.Linear(in_channels, out_channels)
        self.lin_r = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x, edge_index):
        if self.aggr == "mean":
            agg = mean_aggregate(x, edge_index, x.size(0))
        else:
            agg = max_aggregate(x, edge_index, x.size(0))
        out = self.lin_l(agg) + self.lin_r(x)
        return F.normalize(out, p=2, dim=-1)


class GraphSAGE(nn.Module):
    def __init__(self, in_channels, hidden_channels, out_channels, aggr="mean", dropout=0.3):
        super().__init__()
        self.conv1 = SAGEConv(in_channels, hidden_channels, aggr)
        self.conv2 = SAGEConv(hidden_channels, hidden_channels, aggr)
        self.classifier = nn.Linear(hidden_channels, out_channels)
        self.dropout = dropout

    def forward(self, x, edge_index):
        h = F.relu(self.conv1(x, edge_index))
        h = F.dropout(h, p=self.dropout, training=self.training)
        h = F.relu(self.conv2(h, edge_index))
        return self.classifier(h)


def accuracy(out, mask):
    pred = out[mask].argmax(1)
    return (pred == y[mask]).sum().item() / int(mask.sum())


def train_full_batch(aggr, epochs=80):
    model = GraphSAGE(num_features, 16, num_classes, aggr=aggr)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02, weight_decay=5e-4)
    for epoch in range(1, epochs + 1):
        model.train()
        optimizer.zero_grad()
        out = model(x, edge_index)
        loss = F.cross_entropy(out[train_mask], y[train_mask])
        loss.backward()
        optimizer.step()
        if epoch % 20 == 0:
            model.eval()
            with torch.no_grad():
                out = model(x, edge_index)
            print(f"{aggr} epoch {epoch:03d} loss {loss.item():.4f} "
                  f"train {accuracy(out, train_mask):.4f} val {accuracy(out, val_mask):.4f}")
    model.eval()
    with torch.no_grad():
        out = model(x, edge_index)
    return loss.item(), accuracy(out, test_mask)


mean_loss, mean_acc = train_full_batch("mean")
max_loss, max_acc = train_full_batch("max")

# ---- graphsage-simple style mini-batches with a fixed neighbour fan-out ----
neighbours = [src[dst == i] for i in range(num_nodes)]


def sample_neighbours(nodes, fanout):
    """For each target node: fan-out neighbours drawn uniformly with replacement (torch.randint)."""
    rows, cols = [], []
    for i, node in enumerate(nodes.tolist()):
        nbrs = neighbours[node]
        if len(nbrs) == 0:
            continue
        picked = nbrs[torch.randint(0, len(nbrs), (fanout,))]
        rows.append(picked)
        cols.append(torch.full((fanout,), i, dtype=torch.long))
    return torch.stack([torch.cat(rows), torch.cat(cols)])


class SampledSAGE(nn.Module):
    def __init__(self, in_channels, hidden_channels, out_channels):
        super().__init__()
        self.lin_self = nn.Linear(in_channels, hidden_channels)
        self.lin_neigh = nn.Linear(in_channels, hidden_channels)
        self.classifier = nn.Linear(hidden_channels, out_channels)

    def forward(self, nodes, fanout=5):
        sampled = sample_neighbours(nodes, fanout)
        neigh = torch.zeros(len(nodes), x.size(1)).index_add_(0, sampled[1], x[sampled[0]])
        count = torch.bincount(sampled[1], minlength=len(nodes)).clamp(min=1)
        neigh = neigh / count.unsqueeze(1)
        h = F.relu(self.lin_self(x[nodes]) + self.lin_neigh(neigh))
        return self.classifier(F.normalize(h, p=2, dim=-1))


# batches of training nodes drawn in proportion to their degree (+1), by torch.multinomial
train_nodes = train_mask.nonzero(as_tuple=True)[0]
weights = (deg[train_nodes] + 1).float()
sampled_model = SampledSAGE(num_features, 16, num_classes)
optimizer = torch.optim.Adam(sampled_model.parameters(), lr=0.02)
for step in range(1, 61):
    batch = train_nodes[torch.multinomial(weights, 12, replacement=False)]
    optimizer.zero_grad()
    loss = F.cross_entropy(sampled_model(batch), y[batch])
    loss.backward()
    optimizer.step()
    if step % 20 == 0:
        print(f"sampled step {step:03d} batch {len(batch)} loss {loss.item():.4f}")
sampled_model.eval()
with torch.no_grad():
    test_nodes = test_mask.nonzero(as_tuple=True)[0]
    sampled_pred = sampled_model(test_nodes, fanout=10).argmax(1)
    sampled_acc = (sampled_pred == y[test_nodes]).float().mean().item()

print(f"mean aggregation: loss {mean_loss:.4f} test accuracy {mean_acc:.4f}")
print(f"max aggregation: loss {max_loss:.4f} test accuracy {max_acc:.4f}")
print(f"sampled: test accuracy {sampled_acc:.4f}")
print(f"FINAL mean_acc={mean_acc:.4f} max_acc={max_acc:.4f} sampled_acc={sampled_acc:.4f} "
      f"mean_loss={mean_loss:.4f}")
