"""Hypergraph neural networks as iMoonLab/HGNN (models/HGNN.py, utils/hypergraph_utils.py) and PyG's
``HypergraphConv`` write them, on a synthetic node-classification task with two feature modalities.

Hyperedges come from k-NN groups: ``torch.cdist`` distances, ``fill_diagonal_(0)`` so every vertex is
in its own group, ``torch.topk(..., largest=False)``, HGNN's probabilistic incidence
``exp(-d^2 / (m_prob * avg_dis)^2)`` written into ``H`` by ``scatter_`` on the transposed indices,
one ``H`` per modality joined by ``torch.cat(..., dim=1)``. Vertex/edge degrees give
``G = Dv^-1/2 H W De^-1 H^T Dv^-1/2`` three ways that must agree: dense ``torch.diag`` products,
``torch.sparse_coo_tensor(H.nonzero().t(), ...)`` with ``torch.sparse.mm`` on the sparse ``H`` and
its ``.t()``, and message passing by ``index_add_`` over the incidence list. A 2-layer HGNN
(``Parameter(torch.Tensor(in_ft, out_ft))`` + ``uniform_(-stdv, stdv)``, ``x.matmul(self.weight)``,
``G.matmul(x)``, dropout) trains with Adam + ``MultiStepLR``; a PyG-style hypergraph convolution
with hyperedge attention (``torch.cat([x_i, x_j], -1) * att``, ``leaky_relu``, a softmax over each
vertex's incident hyperedges by ``scatter_reduce(reduce="amax")`` + ``index_add_``, checked against
a dense masked ``softmax``) trains beside it. Checks: the routes agree, held-out accuracy, the loss
falls.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parameter import Parameter

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ---- data: a planted partition seen through two noisy modalities ----
rng = np.random.RandomState(0)
n_nodes, n_classes = 160, 4
labels_np = rng.randint(0, n_classes, size=n_nodes)
modalities = []
for dim, sep in ((8, 0.9), (12, 0.7)):
    centers = rng.randn(n_classes, dim)
    modalities.append((sep * centers[labels_np] + rng.randn(n_nodes, dim)).astype(np.float32))
fts = torch.from_numpy(np.concatenate(modalities, axis=1))
lbls = torch.from_numpy(labels_np.astype(np.int64))
perm = rng.permutation(n_nodes)
idx_train = torch.from_numpy(np.sort(perm[:48]))
idx_test = torch.from_numpy(np.sort(perm[48:]))


def construct_H_with_KNN(X, k_neig, is_probH=True, m_prob=1.0):
    """One hyperedge per vertex: the vertex and its k-1 nearest neighbours (HGNN's construction)."""
    dis_mat = torch.cdist(X, X)
    dis_mat.fill_diagonal_(0)
    n_obj = X.shape[0]
    dis_knn, nearest_idx = torch.topk(dis_mat, k_neig, dim=1, largest=False)
    avg_dis = dis_mat.mean(dim=1, keepdim=True)
    if is_probH:
        values = torch.exp(-dis_knn ** 2 / (m_prob * avg_dis) ** 2)
    else:
        values = torch.ones_like(dis_knn)
    H = torch.zeros(n_obj, n_obj)
    # column `center` gets its neighbours' rows
    H.scatter_(0, nearest_idx.t(), values.t())
    return H


def generate_G_from_H(H, W=None):
    n_edge = H.shape[1]
    if W is None:
        W = torch.ones(n_edge)
    DV = torch.sum(H * W, dim=1)
    DE = torch.sum(H, dim=0)
    invDE = torch.diag(torch.pow(DE, -1))
    DV2 = torch.diag(torch.pow(DV, -0.5))
    W = torch.diag(W)
    HT = H.t()
    return DV2 @ H @ W @ invDE @ HT @ DV2


H = torch.cat([construct_H_with_KNN(torch.from_numpy(m), k_neig=6) for m in modalities], dim=1)
assert H.shape == (n_nodes, 2 * n_nodes)
assert torch.all(torch.diagonal(H[:, :n_nodes]) == 1.0)
G = generate_G_from_H(H)
print(f"hypergraph: {H.shape[0]} vertices, {H.shape[1]} hyperedges, {int((H > 0).sum())} incidences")

# ---- the same propagation as sparse products and as message passing ----
edge_w = torch.ones(H.shape[1])
dv2 = torch.sum(H * edge_w, dim=1).pow(-0.5)
inv_de = torch.sum(H, dim=0).pow(-1)
incidence = H.nonzero().t()
H_sp = torch.sparse_coo_tensor(incidence, H[incidence[0], incidence[1]], H.shape).coalesce()
assert H_sp.is_sparse and H_sp._nnz() == incidence.shape[1]


def propagate_sparse(x):
    e = torch.sparse.mm(H_sp.t(), dv2[:, None] * x)
    e = e * (edge_w * inv_de)[:, None]
    return dv2[:, None] * torch.sparse.mm(H_sp, e)


def propagate_messages(x):
    v, e = incidence
    h = H[v, e]
    x1 = dv2[:, None] * x
    edge_feat = torch.zeros(H.shape[1], x.shape[1]).index_add_(0, e, h[:, None] * x1[v])
    edge_feat = edge_feat * (edge_w * inv_de)[:, None]
    out = torch.zeros_like(x).index_add_(0, v, h[:, None] * edge_feat[e])
    return dv2[:, None] * out


probe = torch.randn(n_nodes, 5, requires_grad=True)
dense_out = G.matmul(probe)
sparse_out = propagate_sparse(probe)
msg_out = propagate_messages(probe)
grads = [torch.autograd.grad((out * torch.arange(5.0)).sum(), probe)[0]
         for out in (dense_out, sparse_out, msg_out)]
prop_err = max((dense_out - sparse_out).abs().max().item(), (dense_out - msg_out).abs().max().item(),
               (grads[0] - grads[1]).abs().max().item(), (grads[0] - grads[2]).abs().max().item())
assert torch.allclose(G, G.t(), atol=1e-6)
print(f"dense vs sparse vs index_add_ propagation: max err {prop_err:.2e}")


class HGNN_conv(nn.Module):
    def __init__(self, in_ft, out_ft, bias=True):
        super().__init__()
        self.weight = Parameter(torch.Tensor(in_ft, out_ft))
        if bias:
            self.bias = Parameter(torch.Tensor(out_ft))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1. / math.sqrt(self.weight.size(1))
        self.weight.data.uniform_(-stdv, stdv)
        if self.bias is not None:
            self.bias.data.uniform_(-stdv, stdv)

    def forward(self, x, G):
        x = x.matmul(self.weight)
        if self.bias is not None:
            x = x + self.bias
        x = G.matmul(x)
        return x


class HGNN(nn.Module):
    def __init__(self, in_ch, n_class, n_hid, dropout=0.5):
        super().__init__()
        self.dropout = dropout
        self.hgc1 = HGNN_conv(in_ch, n_hid)
        self.hgc2 = HGNN_conv(n_hid, n_class)

    def forward(self, x, G):
        x = F.relu(self.hgc1(x, G))
        x = F.dropout(x, self.dropout, training=self.training)
        x = self.hgc2(x, G)
        return x


def scatter_softmax(src, index, num_nodes):
    """softmax of ``src`` within the groups given by ``index`` (torch_scatter-free)."""
    src_max = torch.full((num_nodes,), float('-inf')).scatter_reduce(
        0, index, src, reduce='amax', include_self=True)
    out = (src - src_max[index]).exp()
    out_sum = torch.zeros(num_nodes).index_add_(0, index, out)
    return out / (out_sum[index] + 1e-16)


class HypergraphConv(nn.Module):
    """PyG's HypergraphConv with attention (heads=1): vertex i takes sum_e alpha_ie mean_{j in e} x_j
    Theta, where alpha is a softmax over the hyperedges incident to i."""

    def __init__(self, in_channels, out_channels, negative_slope=0.2, dropout=0.0):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.att = Parameter(torch.empty(1, 2 * out_channels))
        self.bias = Parameter(torch.zeros(out_channels))
        self.negative_slope = negative_slope
        self.dropout = dropout
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.xavier_uniform_(self.att)

    def forward(self, x, hyperedge_index, num_edges):
        num_nodes = x.size(0)
        node_idx, edge_idx = hyperedge_index
        x = self.lin(x)
        B = torch.zeros(num_edges).index_add_(0, edge_idx, x.new_ones(node_idx.size(0)))
        hyperedge_attr = torch.zeros(num_edges, x.size(1)).index_add_(0, edge_idx, x[node_idx])
        hyperedge_attr = hyperedge_attr / B.clamp(min=1)[:, None]
        x_i, x_j = x[node_idx], hyperedge_attr[edge_idx]
        alpha = (torch.cat([x_i, x_j], dim=-1) * self.att).sum(dim=-1)
        alpha = F.leaky_relu(alpha, self.negative_slope)
        alpha = scatter_softmax(alpha, node_idx, num_nodes)
        self.last_alpha = alpha
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        # each vertex gathers its hyperedges' mean features, weighted by its attention over them
        out = torch.zeros_like(x).index_add_(0, node_idx, alpha[:, None] * hyperedge_attr[edge_idx])
        return out + self.bias


class HyperAttentionNet(nn.Module):
    def __init__(self, in_ch, n_class, n_hid, dropout=0.5):
        super().__init__()
        self.conv1 = HypergraphConv(in_ch, n_hid, dropout=0.1)
        self.conv2 = HypergraphConv(n_hid, n_class)
        self.dropout = dropout

    def forward(self, x, hyperedge_index, num_edges):
        x = F.elu(self.conv1(x, hyperedge_index, num_edges))
        x = F.dropout(x, self.dropout, training=self.training)
        return self.conv2(x, hyperedge_index, num_edges)


def train_model(model, forward, name, epochs=120):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    schedular = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[80], gamma=0.5)
    criterion = torch.nn.CrossEntropyLoss()
    first = None
    for epoch in range(epochs):
        model.train()
        optimizer.zero_grad()
        outputs = forward(model)
        loss = criterion(outputs[idx_train], lbls[idx_train])
        loss.backward()
        optimizer.step()
        schedular.step()
        first = loss.item() if first is None else first
        if epoch % 40 == 39:
            model.eval()
            with torch.no_grad():
                _, preds = torch.max(forward(model), 1)
            acc = torch.sum(preds[idx_test] == lbls.data[idx_test]).double() / len(idx_test)
            print(f"{name} epoch {epoch} loss {loss.item():.4f} test acc {acc.item():.4f} "
                  f"lr {schedular.get_last_lr()[0]:.4f}")
    return first, loss.item(), acc.item()


hgnn = HGNN(fts.shape[1], n_classes, n_hid=32)
first_loss, last_loss, hgnn_acc = train_model(hgnn, lambda m: m(fts, G), "hgnn")
assert last_loss < first_loss

att_net = HyperAttentionNet(fts.shape[1], n_classes, n_hid=16)
_, att_loss, att_acc = train_model(att_net, lambda m: m(fts, incidence, H.shape[1]), "hyperattention")

# ---- the scatter softmax against a dense masked softmax over each vertex's hyperedges ----
att_net.eval()
with torch.no_grad():
    conv = att_net.conv1
    x = conv.lin(fts)
    node_idx, edge_idx = incidence
    counts = torch.zeros(H.shape[1]).index_add_(0, edge_idx, torch.ones(edge_idx.numel()))
    edge_attr = torch.zeros(H.shape[1], x.size(1)).index_add_(0, edge_idx, x[node_idx]) / counts[:, None]
    scores = (x @ conv.att[0, :x.size(1)])[:, None] + (edge_attr @ conv.att[0, x.size(1):])[None, :]
    scores = F.leaky_relu(scores, conv.negative_slope).masked_fill(H == 0, float('-inf'))
    dense_alpha = scores.softmax(dim=1)[node_idx, edge_idx]
    conv(fts, incidence, H.shape[1])
    alpha = conv.last_alpha
    sums = torch.zeros(n_nodes).index_add_(0, node_idx, alpha)
    att_err = max((alpha - dense_alpha).abs().max().item(), (sums - 1).abs().max().item())
print(f"hyperedge attention: {alpha.numel()} weights, scatter vs dense softmax err {att_err:.2e}")
assert hgnn_acc > 1.5 / n_classes and att_acc > 1.5 / n_classes

print(f"FINAL loss={last_loss:.4f} acc={hgnn_acc:.4f} att_acc={att_acc:.4f} "
      f"prop_err={prop_err:.6f} att_err={att_err:.6f}")
