"""Graph networks as pygcn, pyGAT and PyG's message passing write them, on a tiny synthetic graph
(a 3-community stochastic block model): the renormalised adjacency ``D^-1/2 (A + I) D^-1/2`` built
in NumPy and turned into pygcn's legacy ``torch.sparse.FloatTensor(indices, values, shape)`` from
``np.vstack((row, col))``; a GraphConvolution layer with ``Parameter(torch.FloatTensor(in, out))``
+ ``weight.data.uniform_`` and ``torch.spmm``; ``torch.sparse.mm``; the same propagation written
with ``index_select`` and ``scatter_add_`` (must agree); a GAT with ``xavier_uniform_(gain=1.414)``, ``Wh1 + Wh2.T``,
``nn.LeakyReLU``, the ``-9e15 * torch.ones_like(e)`` mask through ``torch.where(adj > 0, ...)``,
attention heads registered by ``add_module``, ``F.elu``; ``log_softmax`` + ``nll_loss`` on the
train mask, ``output.max(1)[1].type_as(labels)`` accuracy, Adam with weight decay.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.nn.parameter import Parameter

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

# ---- data: nodes in 3 communities, dense inside, sparse across; features are noisy ----
rng = np.random.RandomState(0)
n_nodes, n_classes, n_feat = 60, 3, 12
labels_np = np.repeat(np.arange(n_classes), n_nodes // n_classes)
same = labels_np[:, None] == labels_np[None, :]
prob = np.where(same, 0.25, 0.02)
upper = np.triu(rng.rand(n_nodes, n_nodes) < prob, 1)
adj_np = (upper | upper.T).astype(np.float32)
centers = rng.randn(n_classes, n_feat)
features_np = (0.6 * centers[labels_np] + rng.randn(n_nodes, n_feat)).astype(np.float32)


def normalize_adj(mx):
    """Symmetrically normalise a dense adjacency with self loops: D^-1/2 (A + I) D^-1/2."""
    mx = mx + np.eye(mx.shape[0], dtype=mx.dtype)
    rowsum = np.array(mx.sum(1))
    r_inv_sqrt = np.power(rowsum, -0.5).flatten()
    r_inv_sqrt[np.isinf(r_inv_sqrt)] = 0.
    return (mx * r_inv_sqrt[:, None]) * r_inv_sqrt[None, :]


def dense_to_torch_sparse_tensor(mx):
    row, col = np.nonzero(mx)
    indices = torch.from_numpy(np.vstack((row, col)).astype(np.int64))
    values = torch.from_numpy(mx[row, col].astype(np.float32))
    shape = torch.Size(mx.shape)
    return torch.sparse.FloatTensor(indices, values, shape)


adj_norm = normalize_adj(adj_np)
adj = dense_to_torch_sparse_tensor(adj_norm)
features = torch.FloatTensor(features_np)
labels = torch.LongTensor(labels_np)
perm = rng.permutation(n_nodes)
idx_train = torch.LongTensor(np.sort(perm[:15]))
idx_val = torch.LongTensor(np.sort(perm[15:30]))
idx_test = torch.LongTensor(np.sort(perm[30:]))
print(f"graph: {n_nodes} nodes, {int(adj_np.sum()) // 2} edges, {len(idx_train)} train")


class GraphConvolution(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(torch.FloatTensor(in_features, out_features))
        if bias:
            self.bias = Parameter(torch.FloatTensor(out_features))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1. / math.sqrt(self.weight.size(1))
        self.weight.data.uniform_(-stdv, stdv)
        if self.bias is not None:
            self.bias.data.uniform_(-stdv, stdv)

    def forward(self, input, adj):
        support = torch.mm(input, self.weight)
        output = torch.spmm(adj, support)
        if self.bias is not None:
            return output + self.bias
        else:
            return output

    def __repr__(self):
        return self.__class__.__name__ + ' (' + str(self.in_features) + ' -> ' + str(self.out_features) + ')'


class GCN(nn.Module):
    def __init__(self, nfeat, nhid, nclass, dropout):
        super().__init__()
        self.gc1 = GraphConvolution(nfeat, nhid)
        self.gc2 = GraphConvolution(nhid, nclass)
        self.dropout = dropout

    def forward(self, x, adj):
        x = F.relu(self.gc1(x, adj))
        x = F.dropout(x, self.dropout, training=self.training)
        x = self.gc2(x, adj)
        return F.log_softmax(x, dim=1)


class GraphAttentionLayer(nn.Module):
    def __init__(self, in_features, out_features, dropout, alpha, concat=True):
        super().__init__()
        self.dropout = dropout
        self.in_features = in_features
        self.out_features = out_features
        self.alpha = alpha
        self.concat = concat

        self.W = nn.Parameter(torch.empty(size=(in_features, out_features)))
        nn.init.xavier_uniform_(self.W.data, gain=1.414)
        self.a = nn.Parameter(torch.empty(size=(2 * out_features, 1)))
        nn.init.xavier_uniform_(self.a.data, gain=1.414)

        self.leakyrelu = nn.LeakyReLU(self.alpha)

    def forward(self, h, adj):
        Wh = torch.mm(h, self.W)
        e = self._prepare_attentional_mechanism_input(Wh)

        zero_vec = -9e15 * torch.ones_like(e)
        attention = torch.where(adj > 0, e, zero_vec)
        attention = F.softmax(attention, dim=1)
        attention = F.dropout(attention, self.dropout, training=self.training)
        h_prime = torch.matmul(attention, Wh)

        if self.concat:
            return F.elu(h_prime)
        else:
            return h_prime

    def _prepare_attentional_mechanism_input(self, Wh):
        Wh1 = torch.matmul(Wh, self.a[:self.out_features, :])
        Wh2 = torch.matmul(Wh, self.a[self.out_features:, :])
        # broadcast add
        e = Wh1 + Wh2.T
        return self.leakyrelu(e)


class GAT(nn.Module):
    def __init__(self, nfeat, nhid, nclass, dropout, alpha, nheads):
        super().__init__()
        self.dropout = dropout

        self.attentions = [GraphAttentionLayer(nfeat, nhid, dropout=dropout, alpha=alpha, concat=True)
                           for _ in range(nheads)]
        for i, attention in enumerate(self.attentions):
            self.add_module(f'attention_{i}', attention)

        self.out_att = GraphAttentionLayer(nhid * nheads, nclass, dropout=dropout, alpha=alpha, concat=False)

    def forward(self, x, adj):
        x = F.dropout(x, self.dropout, training=self.training)
        x = torch.cat([att(x, adj) for att in self.attentions], dim=1)
        x = F.dropout(x, self.dropout, training=self.training)
        x = F.elu(self.out_att(x, adj))
        return F.log_softmax(x, dim=1)


def accuracy(output, labels):
    preds = output.max(1)[1].type_as(labels)
    correct = preds.eq(labels).double()
    correct = correct.sum()
    return correct / len(labels)


def fit(model, adj_input, name, epochs, lr):
    optimizer = optim.Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    for epoch in range(epochs):
        model.train()
        optimizer.zero_grad()
        output = model(features, adj_input)
        loss_train = F.nll_loss(output[idx_train], labels[idx_train])
        acc_train = accuracy(output[idx_train], labels[idx_train])
        loss_train.backward()
        optimizer.step()
        if (epoch + 1) % 20 == 0:
            model.eval()
            output = model(features, adj_input)
            loss_val = F.nll_loss(output[idx_val], labels[idx_val])
            acc_val = accuracy(output[idx_val], labels[idx_val])
            print(f'{name} Epoch: {epoch + 1:04d}', f'loss_train: {loss_train.item():.4f}',
                  f'acc_train: {acc_train.item():.4f}', f'loss_val: {loss_val.item():.4f}',
                  f'acc_val: {acc_val.item():.4f}')
    model.eval()
    with torch.no_grad():
        output = model(features, adj_input)
        loss_test = F.nll_loss(output[idx_test], labels[idx_test])
        acc_test = accuracy(output[idx_test], labels[idx_test])
    print(f"{name} test set results:", f"loss= {loss_test.item():.4f}",
          f"accuracy= {acc_test.item():.4f}")
    return acc_test.item()


gcn = GCN(nfeat=n_feat, nhid=16, nclass=n_classes, dropout=0.5)
print(gcn.gc1)
gcn_acc = fit(gcn, adj, "GCN", epochs=60, lr=0.01)

# the same propagation as message passing over an edge list (PyG style), compared with spmm
edge_index = adj.coalesce().indices()
src, dst = edge_index[0], edge_index[1]
deg = torch.zeros(n_nodes).scatter_add_(0, dst, torch.ones(dst.size(0)))
norm = deg.pow(-0.5)[src] * deg.pow(-0.5)[dst]
with torch.no_grad():
    support = torch.mm(features, gcn.gc1.weight)
    messages = support.index_select(0, src) * norm.view(-1, 1)
    propagated = torch.zeros_like(support).scatter_add_(0, dst.unsqueeze(-1).expand(-1, support.size(1)), messages)
    by_spmm = torch.sparse.mm(adj, support)
    mp_error = (propagated - by_spmm).abs().max().item()
print("message passing vs spmm max error below 1e-5:", mp_error < 1e-5)

gat = GAT(nfeat=n_feat, nhid=8, nclass=n_classes, dropout=0.1, alpha=0.2, nheads=4)
dense_adj = torch.FloatTensor(adj_np + np.eye(n_nodes, dtype=np.float32))
gat_acc = fit(gat, dense_adj, "GAT", epochs=60, lr=0.01)
print(f"FINAL gcn_acc={gcn_acc:.4f} gat_acc={gat_acc:.4f}")
