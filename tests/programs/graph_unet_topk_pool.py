"""Graph U-Nets (Gao & Ji, ICML 2019) in the layout of HongyangGao/Graph-U-Nets (``ops.py``), for node
classification on a synthetic community graph, with SAGPool's readout as a graph-level check.

The graph is a stochastic block model: three communities of 30 nodes, dense inside and sparse between.
Node features are the community's mean vector, weak against Gaussian noise, so a per-node MLP classifies
poorly while a network that averages over neighbours does well. Only a few nodes per community are
labelled (transductive training on index masks).

The network is the repository's: ``GCN`` (``nn.Dropout`` then ``torch.matmul(g, h)``, ``nn.Linear``, the
activation), ``Pool`` (``scores = self.sigmoid(self.proj(Z).squeeze())``) into ``top_k_graph`` (``values,
idx = torch.topk(scores, max(2, int(k * num_nodes)))``, ``new_h = torch.mul(h[idx, :], values)``, the 2-hop
augmentation ``un_g = torch.matmul(un_g, un_g).bool().float()`` of ``g.bool().float()``, ``un_g[idx, :]``
then ``[:, idx]``, and ``norm_g`` dividing by ``degrees = torch.sum(g, 1)``), ``Unpool`` by ``new_h =
h.new_zeros([g.shape[0], h.shape[1]]); new_h[idx] = h``, and ``GraphUnet.forward`` keeping ``adj_ms``,
``indices_list`` and ``down_outs`` with the skip ``h = h.add(down_outs[up_idx])`` and ``h.add(org_h)``.
Training is Adam with weight decay on ``F.cross_entropy`` over the labelled nodes.

SAGPool's readout: per-graph top-k pooling of a batch of graphs given as one block-diagonal graph with a
``batch`` vector, ``global_mean_pool`` by ``index_add_`` over ``batch`` divided by
``torch.bincount(batch)``, and a ``torch_scatter``-free ``scatter_max`` by ``scatter_reduce(0, index,
src, reduce='amax', include_self=False)``, ``torch.cat([gmp, gap], dim=1)``; both readouts (values and
gradients by ``torch.autograd.grad``) must agree with a per-graph loop of ``mean(0)``/``max(0)``.

Checked: held-out accuracy of Graph U-Net against the MLP, that pooling by ``torch.topk`` on the raw
projections then ``torch.sigmoid(values)`` selects and weights the same nodes as the repository's order
(sigmoid before topk), that unpooling puts every kept row back in its place and zeros elsewhere, and the
readout agreements.
"""

# ruff: noqa: UP008  (the repository's own spelling: super(Class, self))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_COMM, PER_COMM, FEAT = 3, 30, 16


def community_graph(n_comm, per_comm, p_in, p_out):
    n = n_comm * per_comm
    labels = np.repeat(np.arange(n_comm), per_comm)
    same = labels[:, None] == labels[None, :]
    prob = np.where(same, p_in, p_out)
    upper = np.triu(rng.rand(n, n) < prob, 1)
    adj = (upper | upper.T).astype(np.float32)
    return adj, labels


adj_np, labels_np = community_graph(N_COMM, PER_COMM, 0.2, 0.01)
means = rng.randn(N_COMM, FEAT).astype(np.float32)
feats_np = 0.4 * means[labels_np] + rng.randn(N_COMM * PER_COMM, FEAT).astype(np.float32)
A = torch.from_numpy(adj_np)
X = torch.from_numpy(feats_np)
y = torch.from_numpy(labels_np)
train_idx = torch.from_numpy(np.concatenate([np.where(labels_np == c)[0][:5] for c in range(N_COMM)]))
test_idx = torch.from_numpy(np.concatenate([np.where(labels_np == c)[0][5:] for c in range(N_COMM)]))
print(f"graph: {A.shape[0]} nodes, {int(A.sum().item()) // 2} edges, {train_idx.numel()} labelled")


# ----------------------------------------------------------------------------------- ops.py
class GraphUnet(nn.Module):

    def __init__(self, ks, in_dim, out_dim, dim, act, drop_p):
        super(GraphUnet, self).__init__()
        self.ks = ks
        self.bottom_gcn = GCN(dim, dim, act, drop_p)
        self.down_gcns = nn.ModuleList()
        self.up_gcns = nn.ModuleList()
        self.pools = nn.ModuleList()
        self.unpools = nn.ModuleList()
        self.l_n = len(ks)
        for i in range(self.l_n):
            self.down_gcns.append(GCN(dim, dim, act, drop_p))
            self.up_gcns.append(GCN(dim, dim, act, drop_p))
            self.pools.append(Pool(ks[i], dim, drop_p))
            self.unpools.append(Unpool(dim, dim, drop_p))

    def forward(self, g, h):
        adj_ms = []
        indices_list = []
        down_outs = []
        hs = []
        org_h = h
        for i in range(self.l_n):
            h = self.down_gcns[i](g, h)
            adj_ms.append(g)
            down_outs.append(h)
            g, h, idx = self.pools[i](g, h)
            indices_list.append(idx)
        h = self.bottom_gcn(g, h)
        for i in range(self.l_n):
            up_idx = self.l_n - i - 1
            g, idx = adj_ms[up_idx], indices_list[up_idx]
            g, h = self.unpools[i](g, h, down_outs[up_idx], idx)
            h = self.up_gcns[i](g, h)
            h = h.add(down_outs[up_idx])
            hs.append(h)
        h = h.add(org_h)
        hs.append(h)
        return hs


class GCN(nn.Module):

    def __init__(self, in_dim, out_dim, act, p):
        super(GCN, self).__init__()
        self.proj = nn.Linear(in_dim, out_dim)
        self.act = act
        self.drop = nn.Dropout(p=p) if p > 0.0 else nn.Identity()

    def forward(self, g, h):
        h = self.drop(h)
        h = torch.matmul(g, h)
        h = self.proj(h)
        h = self.act(h)
        return h


class Pool(nn.Module):

    def __init__(self, k, in_dim, p):
        super(Pool, self).__init__()
        self.k = k
        self.sigmoid = nn.Sigmoid()
        self.proj = nn.Linear(in_dim, 1)
        self.drop = nn.Dropout(p=p) if p > 0 else nn.Identity()

    def forward(self, g, h):
        Z = self.drop(h)
        weights = self.proj(Z).squeeze()
        scores = self.sigmoid(weights)
        return top_k_graph(scores, g, h, self.k)


class Unpool(nn.Module):

    def __init__(self, *args):
        super(Unpool, self).__init__()

    def forward(self, g, h, pre_h, idx):
        new_h = h.new_zeros([g.shape[0], h.shape[1]])
        new_h[idx] = h
        return g, new_h


def top_k_graph(scores, g, h, k):
    num_nodes = g.shape[0]
    values, idx = torch.topk(scores, max(2, int(k * num_nodes)))
    new_h = h[idx, :]
    values = torch.unsqueeze(values, -1)
    new_h = torch.mul(new_h, values)
    un_g = g.bool().float()
    un_g = torch.matmul(un_g, un_g).bool().float()
    un_g = un_g[idx, :]
    un_g = un_g[:, idx]
    g = norm_g(un_g)
    return g, new_h, idx


def norm_g(g):
    degrees = torch.sum(g, 1)
    g = g / degrees
    return g


class GNet(nn.Module):
    def __init__(self, in_dim, n_classes, dim=32, ks=(0.8, 0.6), drop_n=0.3, drop_c=0.3):
        super(GNet, self).__init__()
        self.n_act = nn.ELU()
        self.s_gcn = GCN(in_dim, dim, self.n_act, drop_n)
        self.g_unet = GraphUnet(list(ks), dim, dim, dim, self.n_act, drop_n)
        self.out_l = nn.Linear(dim, n_classes)
        self.out_drop = nn.Dropout(p=drop_c)

    def forward(self, g, h):
        h = self.s_gcn(g, h)
        hs = self.g_unet(g, h)
        return self.out_l(self.out_drop(hs[-1]))


# ----------------------------------------------------------------------------------- pooling checks
with torch.no_grad():
    pool = Pool(0.5, FEAT, 0.0)
    g0 = norm_g(A + torch.eye(A.shape[0]))
    g1, h1, idx1 = pool(g0, X)
    raw = pool.proj(X).squeeze()
    values2, idx2 = torch.topk(raw, max(2, int(0.5 * A.shape[0])))
    h2 = X[idx2, :] * torch.sigmoid(values2).unsqueeze(-1)
    same_pool = torch.equal(idx1, idx2) and torch.allclose(h1, h2, atol=1e-6)
    _, back = Unpool()(g0, h1, None, idx1)
    kept = torch.zeros(A.shape[0], dtype=torch.bool)
    kept[idx1] = True
    unpool_ok = torch.equal(back[idx1], h1) and bool((back[~kept] == 0).all())
    rows_ok = torch.allclose(g1.sum(0), torch.ones(g1.shape[0]))
print(f"pool: kept {idx1.numel()} of {A.shape[0]} nodes, topk-then-sigmoid == sigmoid-then-topk {same_pool}, "
      f"unpool restores rows {unpool_ok}, columns of norm_g sum to 1 {bool(rows_ok)}")


# ----------------------------------------------------------------------------------- SAGPool readout
def global_mean_pool(x, batch, size):
    out = x.new_zeros(size, x.size(1))
    out.index_add_(0, batch, x)
    count = torch.bincount(batch, minlength=size).clamp(min=1).unsqueeze(-1)
    return out / count.to(x.dtype)


def scatter_max(src, index, dim_size):
    out = src.new_zeros(dim_size, src.size(1))
    return out.scatter_reduce(0, index.unsqueeze(-1).expand_as(src), src, reduce="amax", include_self=False)


def sag_readout(x, batch, size):
    return torch.cat([scatter_max(x, batch, size), global_mean_pool(x, batch, size)], dim=1)


sizes = [7, 11, 5, 9]
batch = torch.cat([torch.full((s,), i, dtype=torch.long) for i, s in enumerate(sizes)])
node_x = torch.randn(sum(sizes), 6, requires_grad=True)
proj = torch.randn(6, 1)
# SAGPool: keep the top half of each graph by score, weighted by tanh(score)
score = (node_x @ proj).squeeze(-1)
perm = torch.cat([torch.topk(score[batch == i], (s + 1) // 2)[1] + sum(sizes[:i]) for i, s in enumerate(sizes)])
pooled = node_x[perm] * torch.tanh(score[perm]).unsqueeze(-1)
readout = sag_readout(pooled, batch[perm], len(sizes))
loop = torch.stack([torch.cat([pooled[batch[perm] == i].max(0)[0], pooled[batch[perm] == i].mean(0)])
                    for i in range(len(sizes))])
w = torch.randn_like(readout)
g_scatter, = torch.autograd.grad((readout * w).sum(), node_x, retain_graph=True)
g_loop, = torch.autograd.grad((loop * w).sum(), node_x)
readout_ok = torch.allclose(readout, loop, atol=1e-6) and torch.allclose(g_scatter, g_loop, atol=1e-5)
print(f"SAGPool readout {tuple(readout.shape)} over {len(sizes)} graphs, kept {perm.numel()} nodes: "
      f"scatter == loop {readout_ok}")


# ----------------------------------------------------------------------------------- training
class MLP(nn.Module):
    def __init__(self, in_dim, n_classes, dim=32, p=0.3):
        super(MLP, self).__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, dim), nn.ELU(), nn.Dropout(p), nn.Linear(dim, n_classes))

    def forward(self, g, h):
        return self.net(h)


def train(model, tag, epochs=80):
    g = norm_g(A + torch.eye(A.shape[0]))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for epoch in range(epochs):
        model.train()
        optimizer.zero_grad()
        logits = model(g, X)
        loss = F.cross_entropy(logits[train_idx], y[train_idx])
        loss.backward()
        optimizer.step()
        if (epoch + 1) % 40 == 0:
            print(f"{tag} epoch {epoch + 1}: train loss {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        pred = model(g, X).argmax(1)
        acc = (pred[test_idx] == y[test_idx]).float().mean().item()
    print(f"{tag} test accuracy {acc:.4f} on {test_idx.numel()} nodes")
    return acc


gunet_acc = train(GNet(FEAT, N_COMM), "g-U-Net")
mlp_acc = train(MLP(FEAT, N_COMM), "MLP")
checks = int(bool(same_pool and unpool_ok and readout_ok))
print(f"FINAL gunet_acc={gunet_acc:.4f} mlp_acc={mlp_acc:.4f} checks_ok={checks}")
