"""DiffPool (Ying et al., NeurIPS 2018) as RexYing/diffpool and PyTorch Geometric's ``dense_diff_pool``
example write it, by hand and without torch_geometric, for graph classification on synthetic graphs.

Each graph is a stochastic block model of 10-16 nodes: class 0 has two communities, class 1 has four,
dense inside (p=0.8) and sparse between (p=0.06). Node features are a constant, the normalised degree
and noise. Graphs are
kept as PyG keeps them (``x`` concatenated over the batch, ``edge_index`` offset by the running node
count, a ``batch`` vector), then made dense by hand-written ``to_dense_batch`` (``bincount``, ``cumsum``
offsets, ``idx = arange - cum_nodes[batch] + batch * max_num_nodes``, ``out[idx] = x``) and
``to_dense_adj`` (flat indices into ``scatter_add_`` then ``view(B, N, N)``); the RexYing repository's
``construct_mask`` loop builds the same node mask.

The network is PyG's ``proteins_diff_pool.py`` at a tiny size: ``DenseSAGEConv`` (``torch.matmul(adj, x)``
divided by ``adj.sum(dim=-1, keepdim=True).clamp(min=1)``, ``lin_rel`` + ``lin_root``, the mask) and
``DenseGCNConv`` (self loops by ``adj[:, idx, idx] = 1``, ``deg_inv_sqrt = adj.sum(-1).clamp(min=1)
.pow(-0.5)``, ``D^-1/2 A D^-1/2``), ``BatchNorm1d`` on ``x.view(-1, C)``, a pooling GNN giving the
assignment logits and an embedding GNN, ``dense_diff_pool`` (``torch.softmax(s, dim=-1)``, masked ``x`` and
``s``, ``X' = S^T Z``, ``A' = S^T A S``, the link loss ``torch.norm(adj - S S^T, p=2) / adj.numel()`` and
the entropy loss ``(-s * torch.log(s + 1e-15)).sum(dim=-1).mean()``), a second GNN on the pooled graph,
``x.mean(dim=1)`` readout and ``F.log_softmax``; training adds both auxiliary losses to ``F.nll_loss``.

Checked: the batched pooling equals a per-graph loop on the unpadded graphs (pooled features and
adjacency; the squared link norm and the summed entropy add up over graphs), the eval-mode model gives each
graph the same logits alone as in the padded batch, the two masks agree, the assignments sum to one on
real nodes and zero on padding, and test accuracy rises from the untrained model's.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

N_GRAPHS, MIN_NODES, MAX_NODES = 240, 10, 16
BATCH, EPOCHS, HIDDEN, CLUSTERS = 24, 16, 32, 4


# ----------------------------------------------------------------------------------- data
def sbm_graph(label):
    n = rng.randint(MIN_NODES, MAX_NODES + 1)
    blocks = 2 if label == 0 else 4
    member = np.sort(rng.randint(0, blocks, size=n))
    same = member[:, None] == member[None, :]
    p_in, p_out = 0.8, 0.06
    upper = np.triu(rng.rand(n, n) < np.where(same, p_in, p_out), 1)
    adj = upper | upper.T
    row, col = np.nonzero(adj)
    deg = adj.sum(1, keepdims=True).astype(np.float32)
    x = np.concatenate([np.ones((n, 1), np.float32), deg / 8.0, 0.1 * rng.randn(n, 2).astype(np.float32)], 1)
    return {"x": torch.from_numpy(x), "edge_index": torch.from_numpy(np.stack([row, col]).astype(np.int64)),
            "y": label, "num_nodes": n}


graphs = [sbm_graph(i % 2) for i in range(N_GRAPHS)]
order = rng.permutation(N_GRAPHS)
train_graphs = [graphs[i] for i in order[:180]]
test_graphs = [graphs[i] for i in order[180:]]
print(f"data: {len(train_graphs)} train / {len(test_graphs)} test graphs, "
      f"{sum(g['num_nodes'] for g in graphs) / N_GRAPHS:.2f} nodes on average")


def collate(batch_graphs):
    xs, edges, batch, offset = [], [], [], 0
    for i, g in enumerate(batch_graphs):
        xs.append(g["x"])
        edges.append(g["edge_index"] + offset)
        batch.append(torch.full((g["num_nodes"],), i, dtype=torch.long))
        offset += g["num_nodes"]
    y = torch.tensor([g["y"] for g in batch_graphs])
    return torch.cat(xs, dim=0), torch.cat(edges, dim=1), torch.cat(batch), y


def to_dense_batch(x, batch, fill_value=0.0, max_num_nodes=None):
    batch_size = int(batch.max()) + 1
    num_nodes = torch.bincount(batch, minlength=batch_size)
    cum_nodes = torch.cat([batch.new_zeros(1), num_nodes.cumsum(dim=0)])
    if max_num_nodes is None:
        max_num_nodes = int(num_nodes.max())
    idx = torch.arange(batch.size(0), dtype=torch.long)
    idx = (idx - cum_nodes[batch]) + (batch * max_num_nodes)
    size = [batch_size * max_num_nodes] + list(x.size())[1:]
    out = x.new_full(size, fill_value)
    out[idx] = x
    out = out.view([batch_size, max_num_nodes] + list(x.size())[1:])
    mask = torch.zeros(batch_size * max_num_nodes, dtype=torch.bool)
    mask[idx] = True
    mask = mask.view(batch_size, max_num_nodes)
    return out, mask


def to_dense_adj(edge_index, batch, max_num_nodes=None):
    batch_size = int(batch.max()) + 1
    one = batch.new_ones(batch.size(0))
    num_nodes = torch.zeros(batch_size, dtype=torch.long).scatter_add_(0, batch, one)
    cum_nodes = torch.cat([batch.new_zeros(1), num_nodes.cumsum(dim=0)])
    idx0 = batch[edge_index[0]]
    idx1 = edge_index[0] - cum_nodes[batch][edge_index[0]]
    idx2 = edge_index[1] - cum_nodes[batch][edge_index[1]]
    if max_num_nodes is None:
        max_num_nodes = int(num_nodes.max())
    edge_attr = torch.ones(idx0.numel())
    flattened_size = batch_size * max_num_nodes * max_num_nodes
    idx = idx0 * max_num_nodes * max_num_nodes + idx1 * max_num_nodes + idx2
    adj = torch.zeros(flattened_size).scatter_add_(0, idx, edge_attr)
    return adj.view(batch_size, max_num_nodes, max_num_nodes)


def construct_mask(max_nodes, batch_num_nodes):
    # RexYing/diffpool encoders.py
    packed_masks = [torch.ones(int(num)) for num in batch_num_nodes]
    batch_size = len(batch_num_nodes)
    out_tensor = torch.zeros(batch_size, max_nodes)
    for i, mask in enumerate(packed_masks):
        out_tensor[i, :batch_num_nodes[i]] = mask
    return out_tensor.unsqueeze(2)


# ----------------------------------------------------------------------------------- layers
class DenseSAGEConv(nn.Module):
    def __init__(self, in_channels, out_channels, normalize=False):
        super().__init__()
        self.normalize = normalize
        self.lin_rel = nn.Linear(in_channels, out_channels, bias=False)
        self.lin_root = nn.Linear(in_channels, out_channels, bias=True)

    def forward(self, x, adj, mask=None):
        x = x.unsqueeze(0) if x.dim() == 2 else x
        adj = adj.unsqueeze(0) if adj.dim() == 2 else adj
        B, N, _ = adj.size()
        out = torch.matmul(adj, x)
        out = out / adj.sum(dim=-1, keepdim=True).clamp(min=1)
        out = self.lin_rel(out) + self.lin_root(x)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        if mask is not None:
            out = out * mask.view(B, N, 1).to(x.dtype)
        return out


class DenseGCNConv(nn.Module):
    def __init__(self, in_channels, out_channels, improved=False):
        super().__init__()
        self.improved = improved
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels))
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x, adj, mask=None, add_loop=True):
        x = x.unsqueeze(0) if x.dim() == 2 else x
        adj = adj.unsqueeze(0) if adj.dim() == 2 else adj
        B, N, _ = adj.size()
        if add_loop:
            adj = adj.clone()
            idx = torch.arange(N, dtype=torch.long, device=adj.device)
            adj[:, idx, idx] = 1 if not self.improved else 2
        out = torch.matmul(x, self.weight)
        deg_inv_sqrt = adj.sum(dim=-1).clamp(min=1).pow(-0.5)
        adj = deg_inv_sqrt.unsqueeze(-1) * adj * deg_inv_sqrt.unsqueeze(-2)
        out = torch.matmul(adj, out)
        out = out + self.bias
        if mask is not None:
            out = out * mask.view(B, N, 1).to(x.dtype)
        return out


def dense_diff_pool(x, adj, s, mask=None, normalize=True):
    x = x.unsqueeze(0) if x.dim() == 2 else x
    adj = adj.unsqueeze(0) if adj.dim() == 2 else adj
    s = s.unsqueeze(0) if s.dim() == 2 else s
    batch_size, num_nodes, _ = x.size()
    s = torch.softmax(s, dim=-1)
    if mask is not None:
        mask = mask.view(batch_size, num_nodes, 1).to(x.dtype)
        x, s = x * mask, s * mask
    out = torch.matmul(s.transpose(1, 2), x)
    out_adj = torch.matmul(torch.matmul(s.transpose(1, 2), adj), s)
    link_loss = adj - torch.matmul(s, s.transpose(1, 2))
    link_loss = torch.norm(link_loss, p=2)
    if normalize is True:
        link_loss = link_loss / adj.numel()
    ent_loss = (-s * torch.log(s + 1e-15)).sum(dim=-1).mean()
    return out, out_adj, link_loss, ent_loss


class GNN(nn.Module):
    def __init__(self, in_channels, hidden_channels, out_channels, conv=DenseSAGEConv, lin=True):
        super().__init__()
        self.conv1 = conv(in_channels, hidden_channels)
        self.bn1 = nn.BatchNorm1d(hidden_channels)
        self.conv2 = conv(hidden_channels, out_channels)
        self.bn2 = nn.BatchNorm1d(out_channels)
        if lin is True:
            self.lin = nn.Linear(hidden_channels + out_channels, out_channels)
        else:
            self.lin = None

    def bn(self, i, x):
        batch_size, num_nodes, num_channels = x.size()
        x = x.view(-1, num_channels)
        x = getattr(self, f"bn{i}")(x)
        x = x.view(batch_size, num_nodes, num_channels)
        return x

    def forward(self, x, adj, mask=None):
        x1 = self.bn(1, self.conv1(x, adj, mask).relu())
        x2 = self.bn(2, self.conv2(x1, adj, mask).relu())
        x = torch.cat([x1, x2], dim=-1)
        if self.lin is not None:
            x = self.lin(x).relu()
        return x


class Net(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.gnn1_pool = GNN(in_channels, HIDDEN, CLUSTERS, conv=DenseGCNConv)
        self.gnn1_embed = GNN(in_channels, HIDDEN, HIDDEN, lin=False)
        self.gnn2_embed = GNN(2 * HIDDEN, HIDDEN, HIDDEN, lin=False)
        self.lin1 = nn.Linear(2 * HIDDEN, HIDDEN)
        self.lin2 = nn.Linear(HIDDEN, num_classes)

    def forward(self, x, adj, mask=None):
        s = self.gnn1_pool(x, adj, mask)
        x = self.gnn1_embed(x, adj, mask)
        x, adj, l1, e1 = dense_diff_pool(x, adj, s, mask)
        x = self.gnn2_embed(x, adj)
        x = x.mean(dim=1)
        x = self.lin1(x).relu()
        x = self.lin2(x)
        return F.log_softmax(x, dim=-1), l1, e1


def dense_inputs(batch_graphs):
    x, edge_index, batch, y = collate(batch_graphs)
    x_dense, mask = to_dense_batch(x, batch, max_num_nodes=MAX_NODES)
    adj = to_dense_adj(edge_index, batch, max_num_nodes=MAX_NODES)
    return x_dense, adj, mask, y


@torch.no_grad()
def test(model, dataset):
    model.eval()
    x, adj, mask, y = dense_inputs(dataset)
    pred = model(x, adj, mask)[0].argmax(dim=-1)
    return (pred == y).float().mean().item()


model = Net(4, 2)
optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
acc_before = test(model, test_graphs)
print(f"untrained test accuracy {acc_before:.4f}")

# ----------------------------------------------------------------------------------- checks before training
x, adj, mask, y = dense_inputs(test_graphs[:8])
num_nodes = [g["num_nodes"] for g in test_graphs[:8]]
masks_agree = torch.equal(construct_mask(MAX_NODES, num_nodes).squeeze(2).bool(), mask)
symmetric = torch.equal(adj, adj.transpose(1, 2))
print(f"dense batch: x {tuple(x.shape)}, adj {tuple(adj.shape)}, {int(adj.sum().item())} directed edges; "
      f"masks agree: {masks_agree}, symmetric: {symmetric}")
with torch.no_grad():
    model.eval()
    s_logits = model.gnn1_pool(x, adj, mask)
    z = model.gnn1_embed(x, adj, mask)
    out, out_adj, link, ent = dense_diff_pool(z, adj, s_logits, mask)
    s = torch.softmax(s_logits, dim=-1) * mask.unsqueeze(-1)
    sums = s.sum(-1)
    rows_ok = torch.allclose(sums[mask], torch.ones(int(mask.sum()))) and bool((sums[~mask] == 0).all())
    max_diff, link_sq, ent_sum = 0.0, 0.0, 0.0
    logit_diff = 0.0
    batched_logits = model(x, adj, mask)[0]
    for i, n in enumerate(num_nodes):
        o_i, a_i, l_i, e_i = dense_diff_pool(z[i, :n], adj[i, :n, :n], s_logits[i, :n], normalize=False)
        max_diff = max(max_diff, (o_i[0] - out[i]).abs().max().item(), (a_i[0] - out_adj[i]).abs().max().item())
        link_sq += l_i.item() ** 2
        ent_sum += e_i.item() * n
        alone = model(x[i:i + 1, :n], adj[i:i + 1, :n, :n])[0]
        logit_diff = max(logit_diff, (alone[0] - batched_logits[i]).abs().max().item())
    link_ok = abs(link_sq - (link.item() * adj.numel()) ** 2) < 1e-3 * link_sq
    ent_ok = abs(ent_sum - ent.item() * mask.numel()) < 1e-4 * ent_sum
print(f"pooled: x {tuple(out.shape)}, adj {tuple(out_adj.shape)}; assignment rows sum to one: {rows_ok}")
print(f"batched pooling vs per-graph loop: max diff {max_diff:.2e}, link ok {link_ok}, entropy ok {ent_ok}")
print(f"eval logits alone vs in the padded batch: max diff {logit_diff:.2e}")

# ----------------------------------------------------------------------------------- training
for epoch in range(1, EPOCHS + 1):
    model.train()
    perm = torch.randperm(len(train_graphs))
    loss_all, aux_all = 0.0, 0.0
    for start in range(0, len(train_graphs), BATCH):
        batch_graphs = [train_graphs[i] for i in perm[start:start + BATCH].tolist()]
        x, adj, mask, y = dense_inputs(batch_graphs)
        optimizer.zero_grad()
        output, link_loss, ent_loss = model(x, adj, mask)
        loss = F.nll_loss(output, y.view(-1))
        (loss + link_loss + ent_loss).backward()
        loss_all += y.size(0) * loss.item()
        aux_all += y.size(0) * (link_loss.item() + ent_loss.item())
        optimizer.step()
    if epoch % 4 == 0:
        acc = test(model, test_graphs)
        print(f"Epoch: {epoch:03d}, Loss: {loss_all / len(train_graphs):.4f}, "
              f"Aux: {aux_all / len(train_graphs):.4f}, Test Acc: {acc:.4f}")

train_acc = test(model, train_graphs)
test_acc = test(model, test_graphs)
checks = int(bool(masks_agree and symmetric and rows_ok and max_diff < 1e-4 and link_ok and ent_ok
                  and logit_diff < 1e-4))
print(f"FINAL acc_before={acc_before:.4f} train_acc={train_acc:.4f} test_acc={test_acc:.4f} "
      f"gain={test_acc - acc_before:.4f} checks_ok={checks}")
