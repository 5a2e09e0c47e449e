"""Poincaré embeddings (Nickel & Kiela, 2017) of a tree's transitive closure, written as the
facebookresearch/poincare-embeddings code and its many small re-implementations write it.

An ``nn.Embedding(sparse=True)`` initialised by ``weight.data.uniform_(-1e-3, 1e-3)`` (a small ball around the
origin); the Poincaré distance ``acosh(1 + 2 |u - v|^2 / ((1 - |u|^2)(1 - |v|^2)))`` with squared
norms clamped below ``1 - eps`` and the ``torch.acosh`` argument clamped above ``1 + eps``; for each
(child, ancestor) pair, negatives by ``torch.randint`` over all nodes, true neighbours among them
pushed away by ``masked_fill(..., float('inf'))`` of their distance, and the softmax loss
``F.cross_entropy(-dists, zeros)`` with the positive in column 0. Riemannian SGD is a
``torch.optim.Optimizer`` subclass (``required`` learning rate) whose ``step(lr=None)`` rescales
``p.grad`` by the inverse metric ``(1 - |p|^2)^2 / 4`` (on a sparse gradient as the original does:
``coalesce()``, ``_indices()``/``_values()``, ``values.renorm_(2, 0, 5)``, a new
``torch.sparse_coo_tensor``), takes the step with ``p.add_(d_p, alpha=-lr)`` (sparse or dense) and
retracts by ``p.view(-1, dim).renorm_(2, 0, 1 - eps)`` under ``@torch.no_grad()``; one step on a
dense-gradient twin (``load_state_dict``) must agree. The first epochs are a burn-in at a tenth of
the learning rate, as the paper's. Reconstruction is scored as the paper scores it:
for every node, the rank of each true neighbour among the non-neighbours (mean rank) and the
average precision of the neighbours sorted by ``torch.argsort`` of distance (MAP), with the
embedding norms per depth (the root near the origin, the leaves near the rim).

The data: a complete ternary tree of depth 3 (40 nodes) and its transitive closure (102 edges).
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.optimizer import Optimizer, required

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

BRANCHING, DEPTH = 3, 3
EPS = 1e-5


def complete_tree(branching, depth):
    """Parent index of every node (the root's is -1) and every node's depth, breadth first."""
    parents, depths = [-1], [0]
    frontier = [0]
    for level in range(1, depth + 1):
        next_frontier = []
        for node in frontier:
            for _ in range(branching):
                parents.append(node)
                depths.append(level)
                next_frontier.append(len(parents) - 1)
        frontier = next_frontier
    return parents, depths


def transitive_closure(parents):
    edges = []
    for child in range(len(parents)):
        ancestor = parents[child]
        while ancestor != -1:
            edges.append((child, ancestor))
            ancestor = parents[ancestor]
    return torch.tensor(edges, dtype=torch.long)


parents, depths = complete_tree(BRANCHING, DEPTH)
n_nodes = len(parents)
edges = transitive_closure(parents)
adjacency = torch.zeros(n_nodes, n_nodes, dtype=torch.bool)
adjacency[edges[:, 0], edges[:, 1]] = True
adjacency[edges[:, 1], edges[:, 0]] = True
depth_of = torch.tensor(depths)
print(f"tree nodes {n_nodes} closure edges {len(edges)} neighbours per node {adjacency.sum(1).float().mean().item():.3f}")


class PoincareEmbedding(nn.Module):
    def __init__(self, size, dim, init_range=1e-3, sparse=True):
        super().__init__()
        self.dim = dim
        self.lt = nn.Embedding(size, dim, sparse=sparse)
        self.lt.weight.data.uniform_(-init_range, init_range)

    @staticmethod
    def distance(u, v, eps=EPS):
        sq_u = torch.clamp(torch.sum(u * u, dim=-1), 0, 1 - eps)
        sq_v = torch.clamp(torch.sum(v * v, dim=-1), 0, 1 - eps)
        sq_dist = torch.sum(torch.pow(u - v, 2), dim=-1)
        x = 1 + 2 * sq_dist / ((1 - sq_u) * (1 - sq_v))
        return torch.acosh(torch.clamp(x, min=1 + eps))

    def forward(self, inputs):
        """inputs: (batch, 1 + negatives) node ids, the first column the anchor's partner."""
        e = self.lt(inputs)
        anchor = e.narrow(1, 0, 1)
        others = e.narrow(1, 1, e.size(1) - 1)
        return self.distance(anchor.expand_as(others), others)


class RiemannianSGD(Optimizer):
    """SGD on the Poincaré ball: the Euclidean gradient times the inverse metric, then a retraction
    that keeps every row strictly inside the unit ball."""

    def __init__(self, params, lr=required, max_norm=1 - EPS):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, dict(lr=lr, max_norm=max_norm))

    @staticmethod
    def riemannian_grad(p, d_p):
        if d_p.is_sparse:
            d_p = d_p.coalesce()
            rows = d_p._indices()[0]
            p_sqnorm = torch.sum(p[rows] ** 2, dim=1, keepdim=True).expand_as(d_p._values())
            values = d_p._values() * ((1 - p_sqnorm) ** 2 / 4)
            values.renorm_(2, 0, 5)
            return torch.sparse_coo_tensor(d_p._indices(), values, d_p.size())
        sq_norm = torch.sum(p * p, dim=-1, keepdim=True)
        d_p = d_p * ((1 - sq_norm) ** 2 / 4).expand_as(d_p)
        return d_p.view(-1, p.size(-1)).renorm(2, 0, 5)

    @torch.no_grad()
    def step(self, lr=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = self.riemannian_grad(p, p.grad)
                p.add_(d_p, alpha=-(lr if lr is not None else group["lr"]))
                p.view(-1, p.size(-1)).renorm_(2, 0, group["max_norm"])


def batches(n_negatives, batch_size):
    order = torch.randperm(len(edges))
    for start in range(0, len(edges), batch_size):
        pairs = edges[order[start:start + batch_size]]
        negatives = torch.randint(0, n_nodes, (len(pairs), n_negatives))
        yield pairs[:, 0], torch.cat([pairs[:, 1:], negatives], dim=1)


@torch.no_grad()
def reconstruction(model):
    weight = model.lt.weight
    dists = model.distance(weight.unsqueeze(1), weight.unsqueeze(0))
    ranks, precisions = [], []
    for u in range(n_nodes):
        neighbours = adjacency[u]
        d = dists[u].clone()
        d[u] = float("inf")
        non_neighbour_d = d[~neighbours]
        for v in torch.nonzero(neighbours).flatten().tolist():
            ranks.append((non_neighbour_d < d[v]).sum().item() + 1)
        order = torch.argsort(d)
        hits = neighbours[order][:-1].float()
        precision_at_hit = torch.cumsum(hits, 0) / torch.arange(1, len(hits) + 1)
        precisions.append((precision_at_hit * hits).sum().item() / hits.sum().item())
    return sum(ranks) / len(ranks), sum(precisions) / len(precisions)


EPOCHS, BURN_IN, NEGATIVES, BATCH = 60, 10, 10, 16
model = PoincareEmbedding(n_nodes, dim=5)
optimizer = RiemannianSGD(model.parameters(), lr=1.0)
print(f"init max norm {model.lt.weight.norm(dim=1).max().item():.5f} optimizer {type(optimizer).__name__} "
      f"groups {len(optimizer.param_groups)} keys {sorted(optimizer.defaults)}")


def batch_loss(model, anchors, candidates):
    dists = model(torch.cat([anchors.unsqueeze(1), candidates], dim=1))
    known = adjacency[anchors.unsqueeze(1), candidates]
    known[:, 0] = False
    dists = dists.masked_fill(known, float("inf"))
    return F.cross_entropy(-dists, torch.zeros(len(anchors), dtype=torch.long))


# the sparse gradient's step must be the dense one's
dense_twin = PoincareEmbedding(n_nodes, dim=5, sparse=False)
dense_twin.load_state_dict(model.state_dict())
probe_model = PoincareEmbedding(n_nodes, dim=5)
probe_model.load_state_dict(model.state_dict())
anchors, candidates = next(batches(NEGATIVES, BATCH))
for twin in (probe_model, dense_twin):
    batch_loss(twin, anchors, candidates).backward()
    RiemannianSGD(twin.parameters(), lr=1.0).step(lr=50.0)
sparse_grad = probe_model.lt.weight.grad
print(f"sparse grad {sparse_grad.is_sparse} {sparse_grad.layout} rows {sparse_grad.coalesce()._nnz()} "
      f"dense grad {dense_twin.lt.weight.grad.layout} steps agree "
      f"{torch.allclose(probe_model.lt.weight, dense_twin.lt.weight, atol=1e-6)} "
      f"to_dense agrees {torch.allclose(sparse_grad.to_dense(), dense_twin.lt.weight.grad)}")

for epoch in range(EPOCHS):
    lr = optimizer.param_groups[0]["lr"] * (0.1 if epoch < BURN_IN else 1.0)
    total, steps = 0.0, 0
    for anchors, candidates in batches(NEGATIVES, BATCH):
        loss = batch_loss(model, anchors, candidates)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step(lr=lr)
        total += loss.item()
        steps += 1
    if epoch % 10 == 9 or epoch == BURN_IN - 1:
        mean_rank, mean_ap = reconstruction(model)
        print(f"epoch {epoch + 1} lr {lr:.2f} loss {total / steps:.4f} mean_rank {mean_rank:.3f} map {mean_ap:.4f}")

norms = model.lt.weight.detach().norm(dim=1)
norm_by_depth = [norms[depth_of == level].mean().item() for level in range(DEPTH + 1)]
print("mean norm by depth", [f"{v:.3f}" for v in norm_by_depth])
print(f"inside the ball {bool((norms < 1).all())} max norm {norms.max().item():.4f}")
mean_rank, mean_ap = reconstruction(model)
print(f"FINAL mean_rank={mean_rank:.4f} map={mean_ap:.4f} loss={total / steps:.4f} "
      f"root_norm={norm_by_depth[0]:.4f} leaf_norm={norm_by_depth[-1]:.4f}")
