"""Graph autoencoders for link prediction, as Kipf & Welling's gae (tkipf/gae, "Variational Graph
Auto-Encoders", 2016) and its PyTorch ports write them, without PyG, on a graph of planted
communities whose held-out edges must be recovered.

The edges: the upper triangle by ``torch.triu_indices(n, n, offset=1)``, kept with probability
p_in inside a community and p_out across, split by ``torch.randperm`` into train/val/test
(``mask_test_edges``), negatives for evaluation drawn by ``torch.randint`` and filtered against the
adjacency. ``preprocess_graph``: ``D^{-1/2} (A + I) D^{-1/2}`` as ``torch.sparse_coo_tensor(indices,
values, (n, n)).coalesce()``, multiplied by ``torch.sparse.mm`` (against the dense product).

The VGAE: a two-layer GCN encoder (shared first layer, mu and logstd heads), latents
``mu + torch.randn_like(std) * std``, the inner-product decoder ``z @ z.t()``, gae's loss ``norm *
F.binary_cross_entropy_with_logits(logits, labels, pos_weight=...)`` on the dense adjacency plus the
KL term ``-0.5 / n * mean(sum(1 + 2 logstd - mu^2 - exp(logstd)^2, 1))``. A plain GAE is trained
PyG-style on the positive training edges against sampled negative pairs (``-log(sigmoid + eps)``).
Both are scored by ROC-AUC from ranks (``torch.argsort`` twice) checked against the pairwise
comparison AUC, and by average precision from ``torch.cumsum`` over the sorted labels.
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

N_NODES, N_COMMUNITIES, P_IN, P_OUT = 120, 4, 0.22, 0.01
community = torch.arange(N_NODES) % N_COMMUNITIES
upper = torch.triu_indices(N_NODES, N_NODES, offset=1)
same = community[upper[0]] == community[upper[1]]
keep = torch.rand(upper.shape[1]) < torch.where(same, P_IN, P_OUT)
edges = upper[:, keep]
print(f"graph: {N_NODES} nodes in {N_COMMUNITIES} communities, {edges.shape[1]} edges, "
      f"{same[keep].float().mean().item():.3f} of them inside a community")


def mask_test_edges(edges, val_frac=0.05, test_frac=0.15):
    perm = torch.randperm(edges.shape[1])
    n_val, n_test = int(val_frac * edges.shape[1]), int(test_frac * edges.shape[1])
    val, test, train = edges[:, perm[:n_val]], edges[:, perm[n_val:n_val + n_test]], edges[:, perm[n_val + n_test:]]
    adjacency = torch.zeros(N_NODES, N_NODES, dtype=torch.bool)
    adjacency[edges[0], edges[1]] = True
    adjacency = adjacency | adjacency.T

    def negatives(count):
        found = torch.empty(2, 0, dtype=torch.long)
        while found.shape[1] < count:
            pairs = torch.randint(0, N_NODES, (2, 2 * count))
            pairs = pairs[:, (pairs[0] != pairs[1]) & ~adjacency[pairs[0], pairs[1]]]
            found = torch.cat([found, pairs], dim=1)
        return found[:, :count]

    return train, (val, negatives(val.shape[1])), (test, negatives(test.shape[1]))


train_edges, (val_pos, val_neg), (test_pos, test_neg) = mask_test_edges(edges)
print(f"split: train {train_edges.shape[1]} val {val_pos.shape[1]} test {test_pos.shape[1]} edges")


def preprocess_graph(edge_index, n):
    both = torch.cat([edge_index, edge_index.flip(0), torch.arange(n).repeat(2, 1)], dim=1)
    values = torch.ones(both.shape[1])
    adj = torch.sparse_coo_tensor(both, values, (n, n)).coalesce()
    degree = torch.sparse.sum(adj, dim=1).to_dense()
    d_inv_sqrt = degree.pow(-0.5)
    row, col = adj.indices()
    return torch.sparse_coo_tensor(adj.indices(), d_inv_sqrt[row] * adj.values() * d_inv_sqrt[col], (n, n)).coalesce()


adj_norm = preprocess_graph(train_edges, N_NODES)
adj_label = torch.zeros(N_NODES, N_NODES)
adj_label[train_edges[0], train_edges[1]] = 1.0
adj_label = adj_label + adj_label.T + torch.eye(N_NODES)
probe = torch.randn(N_NODES, 5)
print(f"normalized adjacency: nnz {adj_norm._nnz()}, coalesced {adj_norm.is_coalesced()}, "
      f"sparse.mm agrees with dense {torch.allclose(torch.sparse.mm(adj_norm, probe), adj_norm.to_dense() @ probe, atol=1e-6)}")


class GraphConvolution(nn.Module):
    def __init__(self, in_features, out_features, act=F.relu):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        nn.init.xavier_uniform_(self.weight)
        self.act = act

    def forward(self, x, adj):
        return self.act(torch.sparse.mm(adj, x @ self.weight))


class GCNModelVAE(nn.Module):
    def __init__(self, in_features, hidden1, hidden2, variational=True):
        super().__init__()
        self.gc1 = GraphConvolution(in_features, hidden1)
        self.gc2 = GraphConvolution(hidden1, hidden2, act=lambda x: x)
        self.gc3 = GraphConvolution(hidden1, hidden2, act=lambda x: x)
        self.variational = variational

    def encode(self, x, adj):
        hidden = self.gc1(x, adj)
        return self.gc2(hidden, adj), self.gc3(hidden, adj)

    def reparameterize(self, mu, logstd):
        if self.training and self.variational:
            std = torch.exp(logstd)
            return mu + torch.randn_like(std) * std
        return mu

    def forward(self, x, adj):
        mu, logstd = self.encode(x, adj)
        z = self.reparameterize(mu, logstd)
        return z @ z.t(), mu, logstd


def roc_auc(pos_scores, neg_scores):
    scores = torch.cat([pos_scores, neg_scores])
    ranks = torch.argsort(torch.argsort(scores)).float() + 1  # 1-based ranks, no ties in practice
    n_pos, n_neg = pos_scores.numel(), neg_scores.numel()
    return ((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def pairwise_auc(pos_scores, neg_scores):
    greater = (pos_scores[:, None] > neg_scores[None, :]).float()
    ties = (pos_scores[:, None] == neg_scores[None, :]).float()
    return (greater + 0.5 * ties).mean().item()


def average_precision(pos_scores, neg_scores):
    scores = torch.cat([pos_scores, neg_scores])
    labels = torch.cat([torch.ones_like(pos_scores), torch.zeros_like(neg_scores)])
    order = torch.argsort(scores, descending=True)
    hits = labels[order]
    precision = torch.cumsum(hits, dim=0) / torch.arange(1, hits.numel() + 1)
    return ((precision * hits).sum() / hits.sum()).item()


def edge_scores(z, pairs):
    return torch.sigmoid((z[pairs[0]] * z[pairs[1]]).sum(dim=-1))


def evaluate(model, pos, neg):
    model.eval()
    with torch.no_grad():
        _, mu, _ = model(features, adj_norm)
        p, q = edge_scores(mu, pos), edge_scores(mu, neg)
    model.train()
    return roc_auc(p, q), average_precision(p, q), pairwise_auc(p, q)


features = torch.eye(N_NODES)  # gae's featureless setting
n_edges_dense = adj_label.sum()
pos_weight = (N_NODES * N_NODES - n_edges_dense) / n_edges_dense
norm = N_NODES * N_NODES / float((N_NODES * N_NODES - n_edges_dense) * 2)

vgae = GCNModelVAE(N_NODES, 32, 16)
optimizer = torch.optim.Adam(vgae.parameters(), lr=0.01)
for epoch in range(200):
    logits, mu, logstd = vgae(features, adj_norm)
    recon = norm * F.binary_cross_entropy_with_logits(logits, adj_label, pos_weight=pos_weight)
    kl = -0.5 / N_NODES * torch.mean(torch.sum(1 + 2 * logstd - mu.pow(2) - logstd.exp().pow(2), 1))
    loss = recon + kl
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if epoch % 50 == 0:
        val_auc, val_ap, _ = evaluate(vgae, val_pos, val_neg)
        print(f"vgae epoch {epoch} loss {loss.item():.4f} kl {kl.item():.4f} val auc {val_auc:.3f} ap {val_ap:.3f}")
vgae_auc, vgae_ap, vgae_pairwise = evaluate(vgae, test_pos, test_neg)
print(f"vgae test auc {vgae_auc:.4f} ap {vgae_ap:.4f}; rank auc equals pairwise auc {abs(vgae_auc - vgae_pairwise) < 1e-6}")

# the plain GAE, PyG's recon_loss: positive training edges against sampled negative pairs
EPS = 1e-15
gae = GCNModelVAE(N_NODES, 32, 16, variational=False)
optimizer = torch.optim.Adam(gae.parameters(), lr=0.01)
for epoch in range(200):
    _, z, _ = gae(features, adj_norm)
    neg_pairs = torch.randint(0, N_NODES, train_edges.shape)
    pos_loss = -torch.log(edge_scores(z, train_edges) + EPS).mean()
    neg_loss = -torch.log(1 - edge_scores(z, neg_pairs) + EPS).mean()
    loss = pos_loss + neg_loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if epoch % 50 == 0:
        print(f"gae epoch {epoch} loss {loss.item():.4f}")
gae_auc, gae_ap, gae_pairwise = evaluate(gae, test_pos, test_neg)
print(f"gae test auc {gae_auc:.4f} ap {gae_ap:.4f}; rank auc equals pairwise auc {abs(gae_auc - gae_pairwise) < 1e-6}")

print(f"FINAL vgae_auc={vgae_auc:.4f} vgae_ap={vgae_ap:.4f} gae_auc={gae_auc:.4f} gae_ap={gae_ap:.4f}")
