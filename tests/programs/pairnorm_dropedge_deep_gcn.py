"""A deep GCN with PairNorm (LingxiaoShawn/PairNorm) and DropEdge on a planted-partition graph:
``edge_index`` as a ``torch.LongTensor`` of both directions, DropEdge by a fresh
``torch.rand(E) >= p`` mask each epoch, self loops added with ``torch.arange``, the degree by
``scatter_add_`` (checked against ``torch.bincount(minlength=)``), the symmetric normalisation
``D^-1/2 (A + I) D^-1/2`` as a ``torch.sparse_coo_tensor`` used through ``torch.sparse.mm``
(against the dense ``to_dense()`` product: must agree), PairNorm's 'PN' and row-wise 'PN-SI'
modes (``x - x.mean(0)``, ``scale * x / (1e-6 + x.pow(2).sum(1).mean()).sqrt()``), ten graph
convolutions with residual connections, Adam with weight decay, early stopping on validation
accuracy with the best ``state_dict`` kept by ``copy.deepcopy``. Over-smoothing is measured as the
paper's row-diff: the mean pairwise ``torch.cdist`` of the row-normalised node representations,
which collapses in the plain deep GCN and does not under PairNorm.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

# ---- planted partition graph: 4 blocks, dense inside, sparse across; weak noisy features ----
rng = np.random.RandomState(seed)
n_nodes, n_classes, n_feat = 160, 4, 16
labels_np = np.repeat(np.arange(n_classes), n_nodes // n_classes)
same = labels_np[:, None] == labels_np[None, :]
upper = np.triu(rng.rand(n_nodes, n_nodes) < np.where(same, 0.12, 0.01), 1)
row, col = np.nonzero(upper | upper.T)
edge_index = torch.LongTensor(np.vstack((row, col)))
centers = rng.randn(n_classes, n_feat)
x_all = torch.FloatTensor(0.5 * centers[labels_np] + rng.randn(n_nodes, n_feat))
labels = torch.LongTensor(labels_np)
perm = torch.from_numpy(rng.permutation(n_nodes))
idx_train, idx_val, idx_test = perm[:40], perm[40:80], perm[80:]
print(f"graph: {n_nodes} nodes, {edge_index.size(1)} directed edges, {n_classes} blocks")


def dropout_adj(edge_index, p, training):
    """DropEdge: keep each directed edge with probability 1 - p."""
    if not training or p == 0:
        return edge_index
    mask = torch.rand(edge_index.size(1)) >= p
    return edge_index[:, mask]


def gcn_norm(edge_index, num_nodes):
    """Self loops, then the symmetric normalisation as a sparse COO matrix."""
    loops = torch.arange(num_nodes, dtype=torch.long).unsqueeze(0).repeat(2, 1)
    edge_index = torch.cat([edge_index, loops], dim=1)
    row, col = edge_index
    deg = torch.zeros(num_nodes).scatter_add_(0, row, torch.ones(row.size(0)))
    assert torch.equal(deg.long(), torch.bincount(row, minlength=num_nodes))
    deg_inv_sqrt = deg.pow(-0.5)
    deg_inv_sqrt[deg_inv_sqrt == float("inf")] = 0
    values = deg_inv_sqrt[row] * deg_inv_sqrt[col]
    return torch.sparse_coo_tensor(edge_index, values, (num_nodes, num_nodes))


class PairNorm(nn.Module):
    def __init__(self, mode="PN", scale=1):
        assert mode in ["None", "PN", "PN-SI", "PN-SCS"]
        super().__init__()
        self.mode = mode
        self.scale = scale

    def forward(self, x):
        if self.mode == "None":
            return x
        col_mean = x.mean(dim=0)
        if self.mode == "PN":
            x = x - col_mean
            rownorm_mean = (1e-6 + x.pow(2).sum(dim=1).mean()).sqrt()
            x = self.scale * x / rownorm_mean
        if self.mode == "PN-SI":
            x = x - col_mean
            rownorm_individual = (1e-6 + x.pow(2).sum(dim=1, keepdim=True)).sqrt()
            x = self.scale * x / rownorm_individual
        if self.mode == "PN-SCS":
            rownorm_individual = (1e-6 + x.pow(2).sum(dim=1, keepdim=True)).sqrt()
            x = self.scale * x / rownorm_individual - col_mean
        return x


class GraphConv(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.FloatTensor(in_features, out_features))
        self.bias = nn.Parameter(torch.FloatTensor(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1. / math.sqrt(self.weight.size(1))
        self.weight.data.uniform_(-stdv, stdv)
        if self.bias is not None:
            self.bias.data.uniform_(-stdv, stdv)

    def forward(self, x, adj):
        support = torch.mm(x, self.weight)
        output = torch.sparse.mm(adj, support)
        if self.bias is not None:
            output = output + self.bias
        return output


class DeepGCN(nn.Module):
    def __init__(self, nfeat, nhid, nclass, dropout, nlayer=10, residual=0, norm_mode="None",
                 norm_scale=1, dropedge=0.0):
        super().__init__()
        self.hidden_layers = nn.ModuleList(
            [GraphConv(nfeat if i == 0 else nhid, nhid) for i in range(nlayer - 1)])
        self.out_layer = GraphConv(nhid, nclass)
        self.dropout = nn.Dropout(p=dropout)
        self.relu = nn.ReLU(True)
        self.norm = PairNorm(norm_mode, norm_scale)
        self.skip = residual
        self.dropedge = dropedge

    def forward(self, x, edge_index, return_hidden=False):
        adj = gcn_norm(dropout_adj(edge_index, self.dropedge, self.training), x.size(0))
        x_old = 0
        for i, layer in enumerate(self.hidden_layers):
            x = self.dropout(x)
            x = layer(x, adj)
            x = self.norm(x)
            x = self.relu(x)
            if self.skip > 0 and i % self.skip == 0:
                x = x + x_old
                x_old = x
        if return_hidden:
            return x
        x = self.dropout(x)
        return self.out_layer(x, adj)


def row_diff(h):
    """Mean pairwise distance of the row-normalised representations (0 when collapsed)."""
    h = F.normalize(h, p=2, dim=1)
    return torch.cdist(h, h).mean().item()


# ---- over-smoothing at initialisation: the plain deep GCN against PairNorm ----
plain = DeepGCN(n_feat, 32, n_classes, dropout=0.0, nlayer=10)
pn = DeepGCN(n_feat, 32, n_classes, dropout=0.0, nlayer=10, norm_mode="PN")
plain.eval()
pn.eval()
with torch.no_grad():
    rd_input = row_diff(x_all)
    rd_plain = row_diff(plain(x_all, edge_index, return_hidden=True))
    rd_pn = row_diff(pn(x_all, edge_index, return_hidden=True))
print(f"row-diff: input {rd_input:.4f} plain {rd_plain:.4f} pairnorm {rd_pn:.4f}")
assert rd_plain < rd_pn

# ---- sparse and dense propagation agree ----
adj = gcn_norm(edge_index, n_nodes)
with torch.no_grad():
    support = torch.mm(x_all, pn.hidden_layers[0].weight)
    sparse_out = torch.sparse.mm(adj, support)
    dense_out = adj.to_dense() @ support
sparse_dense_err = (sparse_out - dense_out).abs().max().item()
print(f"adj nnz {adj._nnz()} is_sparse {adj.is_sparse} sparse vs dense error below 1e-5:",
      sparse_dense_err < 1e-5)


# ---- train PN-SI with residuals and DropEdge, early stopping on validation ----
def accuracy(output, labels):
    preds = output.max(1)[1].type_as(labels)
    return preds.eq(labels).double().sum().item() / len(labels)


model = DeepGCN(n_feat, 32, n_classes, dropout=0.1, nlayer=10, residual=1, norm_mode="PN-SI",
                norm_scale=1, dropedge=0.2)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
best_val, best_state, bad_epochs, patience = -1.0, None, 0, 20
first_loss, stopped_at = None, 100
for epoch in range(1, 101):
    model.train()
    optimizer.zero_grad()
    output = model(x_all, edge_index)
    loss = F.cross_entropy(output[idx_train], labels[idx_train])
    loss.backward()
    optimizer.step()
    if first_loss is None:
        first_loss = loss.item()
    model.eval()
    with torch.no_grad():
        output = model(x_all, edge_index)
        val_acc = accuracy(output[idx_val], labels[idx_val])
    if val_acc > best_val:
        best_val, best_state, bad_epochs = val_acc, copy.deepcopy(model.state_dict()), 0
    else:
        bad_epochs += 1
    if bad_epochs >= patience:
        stopped_at = epoch
        break
print(f"trained {stopped_at} epochs: loss {first_loss:.4f} -> {loss.item():.4f}, "
      f"last val_acc {val_acc:.4f}")

model.load_state_dict(best_state)
model.eval()
with torch.no_grad():
    output = model(x_all, edge_index)
    test_acc = accuracy(output[idx_test], labels[idx_test])
    rd_trained = row_diff(model(x_all, edge_index, return_hidden=True))
print(f"best val {best_val:.4f} test acc {test_acc:.4f} trained row-diff {rd_trained:.4f}")
assert test_acc > 1.0 / n_classes
print(f"FINAL test_acc={test_acc:.4f} rowdiff_plain={rd_plain:.4f} rowdiff_pn={rd_pn:.4f} "
      f"sparse_dense_err={sparse_dense_err:.6f}")
