"""Kipf's pygcn (tkipf/pygcn: utils.py, layers.py, models.py, train.py) at toy size, with the sparse
tensor idioms GCN users write around it.

A planted-partition graph built with SciPy the way pygcn's ``load_data`` builds Cora's:
``sp.coo_matrix((np.ones(...), (edges[:, 0], edges[:, 1])))``, the symmetric fix ``adj + adj.T.multiply(adj.T
> adj) - adj.multiply(adj.T > adj)``, row ``normalize`` by ``sp.diags(r_inv).dot(mx)`` with ``r_inv[np.isinf(r_inv)]
= 0.``, and ``sparse_mx_to_torch_sparse_tensor`` (``tocoo().astype(np.float32)``, ``torch.from_numpy(np.vstack((row,
col)).astype(np.int64))``, ``torch.sparse.FloatTensor(indices, values, shape)`` as the repo wrote it, beside
``torch.sparse_coo_tensor``); ``GraphConvolution`` with ``torch.mm(input, self.weight)`` and ``torch.spmm(adj,
support)``, ``reset_parameters`` by ``uniform_(-stdv, stdv)``, ``F.dropout(x, self.dropout, training=self.training)``,
``log_softmax`` + ``nll_loss`` on ``idx_train``, ``accuracy`` by ``output.max(1)[1].type_as(labels)``.

Then the sparse API itself: an uncoalesced tensor with duplicate entries and ``.coalesce()``,
``.indices()``/``.values()``/``._nnz()``/``is_coalesced()``, ``.to_dense()``, ``torch.sparse.sum`` (all and
``dim=1``, itself sparse), ``adj.t()`` (equal to ``adj`` for the symmetrically normalised graph),
``to_sparse()`` of a dense matrix, gradients through ``torch.sparse.mm`` into the dense operand checked against
the dense model, and a GCN trained on ``D^-1/2 (A + I) D^-1/2`` against the same model on the dense matrix.
"""

# ruff: noqa: UP032  (pygcn's own "...".format spelling)

import os

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.nn.parameter import Parameter

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ----------------------------------------------------------------- pygcn utils.py
def encode_onehot(labels):
    classes = sorted(set(labels))
    classes_dict = {c: np.identity(len(classes))[i, :] for i, c in enumerate(classes)}
    return np.array(list(map(classes_dict.get, labels)), dtype=np.int32)


def normalize(mx):
    """Row-normalize sparse matrix"""
    rowsum = np.array(mx.sum(1))
    with np.errstate(divide="ignore"):
        r_inv = np.power(rowsum, -1).flatten()
    r_inv[np.isinf(r_inv)] = 0.
    r_mat_inv = sp.diags(r_inv)
    mx = r_mat_inv.dot(mx)
    return mx


def accuracy(output, labels):
    preds = output.max(1)[1].type_as(labels)
    correct = preds.eq(labels).double()
    correct = correct.sum()
    return correct / len(labels)


def sparse_mx_to_torch_sparse_tensor(sparse_mx):
    """Convert a scipy sparse matrix to a torch sparse tensor."""
    sparse_mx = sparse_mx.tocoo().astype(np.float32)
    indices = torch.from_numpy(
        np.vstack((sparse_mx.row, sparse_mx.col)).astype(np.int64))
    values = torch.from_numpy(sparse_mx.data)
    shape = torch.Size(sparse_mx.shape)
    return torch.sparse.FloatTensor(indices, values, shape)


def load_data(n_nodes=90, n_classes=3, n_features=40):
    """A planted partition graph with class-correlated bag-of-words features (stands in for Cora)."""
    labels_raw = np.repeat(np.arange(n_classes), n_nodes // n_classes)
    np.random.shuffle(labels_raw)
    same = labels_raw[:, None] == labels_raw[None, :]
    probs = np.where(same, 0.15, 0.01)
    upper = np.triu(np.random.rand(n_nodes, n_nodes) < probs, k=1)
    edges = np.array(np.nonzero(upper)).T
    word_probs = np.random.rand(n_classes, n_features) * 0.4
    features = sp.csr_matrix((np.random.rand(n_nodes, n_features) < word_probs[labels_raw]).astype(np.float32))
    labels = encode_onehot(labels_raw)
    adj = sp.coo_matrix((np.ones(edges.shape[0]), (edges[:, 0], edges[:, 1])),
                        shape=(labels.shape[0], labels.shape[0]),
                        dtype=np.float32)
    # build symmetric adjacency matrix
    adj = adj + adj.T.multiply(adj.T > adj) - adj.multiply(adj.T > adj)
    features = normalize(features)
    adj_raw = adj
    adj = normalize(adj + sp.eye(adj.shape[0]))
    idx_train = range(30)
    idx_val = range(30, 55)
    idx_test = range(55, 90)
    features = torch.FloatTensor(np.array(features.todense()))
    labels = torch.LongTensor(np.where(labels)[1])
    adj = sparse_mx_to_torch_sparse_tensor(adj)
    idx_train = torch.LongTensor(idx_train)
    idx_val = torch.LongTensor(idx_val)
    idx_test = torch.LongTensor(idx_test)
    return adj, features, labels, idx_train, idx_val, idx_test, adj_raw


# ----------------------------------------------------------------- pygcn layers.py / models.py
class GraphConvolution(nn.Module):
    """Simple GCN layer, similar to https://arxiv.org/abs/1609.02907"""

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
        stdv = 1. / np.sqrt(self.weight.size(1))
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


# ----------------------------------------------------------------- pygcn train.py
adj, features, labels, idx_train, idx_val, idx_test, adj_raw = load_data()
print("adj", adj.layout, tuple(adj.shape), "nnz", adj._nnz(), "dtype", adj.dtype, "features", tuple(features.shape))
model = GCN(nfeat=features.shape[1], nhid=16, nclass=labels.max().item() + 1, dropout=0.5)
print(model.gc1, model.gc2)
optimizer = optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)


def train(epoch):
    model.train()
    optimizer.zero_grad()
    output = model(features, adj)
    loss_train = F.nll_loss(output[idx_train], labels[idx_train])
    acc_train = accuracy(output[idx_train], labels[idx_train])
    loss_train.backward()
    optimizer.step()
    model.eval()
    output = model(features, adj)
    loss_val = F.nll_loss(output[idx_val], labels[idx_val])
    acc_val = accuracy(output[idx_val], labels[idx_val])
    if (epoch + 1) % 50 == 0:
        print('Epoch: {:04d}'.format(epoch + 1),
              'loss_train: {:.4f}'.format(loss_train.item()),
              'acc_train: {:.4f}'.format(acc_train.item()),
              'loss_val: {:.4f}'.format(loss_val.item()),
              'acc_val: {:.4f}'.format(acc_val.item()))


def test():
    model.eval()
    output = model(features, adj)
    loss_test = F.nll_loss(output[idx_test], labels[idx_test])
    acc_test = accuracy(output[idx_test], labels[idx_test])
    print("Test set results:",
          "loss= {:.4f}".format(loss_test.item()),
          "accuracy= {:.4f}".format(acc_test.item()))
    return loss_test.item(), acc_test.item()


for epoch in range(150):
    train(epoch)
pygcn_loss, pygcn_acc = test()

# ----------------------------------------------------------------- the sparse API
coo = adj_raw.tocoo()
indices = torch.from_numpy(np.vstack((coo.row, coo.col)).astype(np.int64))
values = torch.from_numpy(coo.data.astype(np.float32))
A = torch.sparse_coo_tensor(indices, values, coo.shape)
legacy = torch.sparse.FloatTensor(indices, values, torch.Size(coo.shape))
print("sparse_coo_tensor == legacy FloatTensor:", torch.equal(A.to_dense(), legacy.to_dense()),
      "coalesced", A.is_coalesced(), A.coalesce().is_coalesced())

# duplicates are summed by coalesce; indices come back sorted
dup = torch.sparse_coo_tensor(torch.tensor([[2, 0, 2, 1], [1, 3, 1, 0]]), torch.tensor([1.0, 2.0, 3.0, 4.0]), (3, 4))
dup_c = dup.coalesce()
print("duplicates: nnz", dup._nnz(), "->", dup_c._nnz(), "indices", dup_c.indices().tolist(),
      "values", dup_c.values().tolist(), "dense row 2", dup.to_dense()[2].tolist())

# the GCN propagation matrix D^-1/2 (A + I) D^-1/2, built with sparse ops only
n = A.shape[0]
eye_idx = torch.arange(n).unsqueeze(0).repeat(2, 1)
A_hat = (A + torch.sparse_coo_tensor(eye_idx, torch.ones(n), (n, n))).coalesce()
deg = torch.sparse.sum(A_hat, dim=1).to_dense()
row, col = A_hat.indices()
norm_values = A_hat.values() * deg[row].pow(-0.5) * deg[col].pow(-0.5)
A_norm = torch.sparse_coo_tensor(A_hat.indices(), norm_values, A_hat.shape).coalesce()
A_dense = A_norm.to_dense()
print("degree sum", torch.sparse.sum(A_hat).item(), "row-sum layout", torch.sparse.sum(A_hat, dim=1).layout,
      "symmetric", torch.equal(A_norm.t().coalesce().to_dense(), A_dense),
      "to_sparse round trip", torch.equal(A_dense.to_sparse().to_dense(), A_dense),
      "to_sparse nnz", A_dense.to_sparse()._nnz() == A_norm._nnz())

# gradients through torch.sparse.mm flow into the dense operand only, as the dense product's do
X_dense = torch.randn(n, 5, requires_grad=True)
W = torch.randn(5, 3)
out_sparse = torch.sparse.mm(A_norm, X_dense @ W)
out_sparse.pow(2).sum().backward()
grad_sparse = X_dense.grad.clone()
X_dense.grad = None
(A_dense @ (X_dense @ W)).pow(2).sum().backward()
print("sparse.mm vs dense: forward", torch.allclose(out_sparse, A_dense @ (X_dense @ W), atol=1e-5),
      "grad", torch.allclose(grad_sparse, X_dense.grad, atol=1e-4), "adj grad", A_norm.grad,
      "out layout", out_sparse.layout)


# a 2-layer GCN on the sparse matrix against the same model on the dense one
class DenseOrSparseGCN(nn.Module):
    def __init__(self, nfeat, nhid, nclass):
        super().__init__()
        self.lin1 = nn.Linear(nfeat, nhid)
        self.lin2 = nn.Linear(nhid, nclass)

    def forward(self, x, a):
        mm = torch.sparse.mm if a.is_sparse else torch.mm
        x = F.relu(mm(a, self.lin1(x)))
        return F.log_softmax(mm(a, self.lin2(x)), dim=1)


sparse_model = DenseOrSparseGCN(features.shape[1], 16, 3)
dense_model = DenseOrSparseGCN(features.shape[1], 16, 3)
dense_model.load_state_dict(sparse_model.state_dict())
opt_s = optim.Adam(sparse_model.parameters(), lr=0.02)
opt_d = optim.Adam(dense_model.parameters(), lr=0.02)
for _ in range(100):
    for net, opt, a in ((sparse_model, opt_s, A_norm), (dense_model, opt_d, A_dense)):
        opt.zero_grad()
        loss = F.nll_loss(net(features, a)[idx_train], labels[idx_train])
        loss.backward()
        opt.step()
with torch.no_grad():
    out_s = sparse_model(features, A_norm)
    out_d = dense_model(features, A_dense)
weight_gap = max((p - q).abs().max().item() for p, q in zip(sparse_model.parameters(), dense_model.parameters()))
sym_acc = accuracy(out_s[idx_test], labels[idx_test]).item()
print("sparse vs dense model after 100 steps: weights close", weight_gap < 1e-3,
      "same predictions", torch.equal(out_s.argmax(1), out_d.argmax(1)))
print(f"FINAL pygcn_loss={pygcn_loss:.4f} pygcn_acc={pygcn_acc:.4f} sym_acc={sym_acc:.4f} "
      f"sym_loss={F.nll_loss(out_s[idx_test], labels[idx_test]).item():.4f}")
