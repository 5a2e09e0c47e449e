"""PyTorch Geometric's ``MessagePassing`` written by hand, with GCN, GAT, GraphSAGE and GIN layers.

A ``MessagePassing`` base class as PyG's: ``inspect.signature(self.message)`` read once in
``__init__`` to learn which ``x_i``/``x_j`` (and ``index``, ``size_i``) the message wants,
``propagate(edge_index, size=None, **kwargs)`` collecting ``x_j`` by ``index_select`` on
``edge_index[0]`` and ``x_i`` on ``edge_index[1]`` (a ``(src, dst)`` tuple picks its side),
``aggregate`` by a ``scatter`` with ``reduce='sum'|'mean'|'max'`` (``scatter_add_``, and
``torch.zeros(...).scatter_reduce_(0, index.view(-1, 1).expand_as(src), src, reduce,
include_self=False)``), ``update``. The utilities: ``add_self_loops`` with ``torch.arange``,
``degree`` by ``bincount`` against ``scatter_add``, GCN's ``deg.pow(-0.5)`` with
``masked_fill_(deg_inv_sqrt == float('inf'), 0)``, ``softmax(src, index)`` by segment
(``scatter_reduce`` amax, ``exp``, sum). The layers: ``GCNConv`` (checked against the dense
``D^-1/2 (A + I) D^-1/2 X W``), ``GATConv`` with two heads (``att_src``/``att_dst`` by
``glorot``, ``leaky_relu(0.2)``, attention dropout), ``SAGEConv`` with mean and max
aggregation, ``GINConv`` over an ``MLP``. Node classification on a synthetic stochastic block
model graph with weak features, full-batch with train/test masks.
"""

import inspect
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# ---- synthetic SBM graph --------------------------------------------------------------------
NUM_CLASSES = 3
PER_CLASS = 30
N = NUM_CLASSES * PER_CLASS
P_IN, P_OUT = 0.16, 0.015
labels_np = np.repeat(np.arange(NUM_CLASSES), PER_CLASS)
prob = np.where(labels_np[:, None] == labels_np[None, :], P_IN, P_OUT)
upper = np.triu(rng.random((N, N)) < prob, k=1)
upper[:, -2:] = False  # two isolated nodes: their degree is 0 without self-loops
src_np, dst_np = np.nonzero(upper | upper.T)
edge_index = torch.from_numpy(np.stack([src_np, dst_np]).astype(np.int64))
means = rng.normal(0.0, 1.0, size=(NUM_CLASSES, 16))
x = torch.from_numpy((rng.normal(0.0, 1.0, size=(N, 16)) + 0.45 * means[labels_np]).astype(np.float32))
y = torch.from_numpy(labels_np)
train_mask = torch.zeros(N, dtype=torch.bool)
for c in range(NUM_CLASSES):
    train_mask[c * PER_CLASS + torch.from_numpy(rng.permutation(PER_CLASS)[:8])] = True
test_mask = ~train_mask


# ---- torch_geometric.utils, by hand ---------------------------------------------------------
def broadcast(src, other, dim):
    if dim < 0:
        dim = other.dim() + dim
    if src.dim() == 1:
        for _ in range(0, dim):
            src = src.unsqueeze(0)
    for _ in range(src.dim(), other.dim()):
        src = src.unsqueeze(-1)
    src = src.expand(other.size())
    return src


def scatter(src, index, dim=0, dim_size=None, reduce='sum'):
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() > 0 else 0
    size = list(src.size())
    size[dim] = dim_size
    if reduce == 'sum' or reduce == 'add':
        index = broadcast(index, src, dim)
        return src.new_zeros(size).scatter_add_(dim, index, src)
    if reduce == 'mean':
        index = broadcast(index, src, dim)
        return torch.zeros(size, dtype=src.dtype, device=src.device).scatter_reduce_(
            dim, index, src, 'mean', include_self=False)
    if reduce == 'max':
        if src.dim() == 2:
            index = index.view(-1, 1).expand_as(src)
        else:
            index = broadcast(index, src, dim)
        return torch.zeros(size, dtype=src.dtype, device=src.device).scatter_reduce_(
            dim, index, src, 'amax', include_self=False)
    raise ValueError(f"Encountered invalid `reduce` argument '{reduce}'")


def add_self_loops(edge_index, num_nodes=None):
    N = int(edge_index.max()) + 1 if num_nodes is None else num_nodes
    loop_index = torch.arange(0, N, dtype=torch.long, device=edge_index.device)
    loop_index = loop_index.unsqueeze(0).repeat(2, 1)
    edge_index = torch.cat([edge_index, loop_index], dim=1)
    return edge_index, None


def degree(index, num_nodes=None, dtype=None):
    N = int(index.max()) + 1 if num_nodes is None else num_nodes
    out = torch.zeros((N, ), dtype=dtype, device=index.device)
    one = torch.ones((index.size(0), ), dtype=out.dtype, device=out.device)
    return out.scatter_add_(0, index, one)


def softmax(src, index, num_nodes=None, dim=0):
    N = int(index.max()) + 1 if num_nodes is None else num_nodes
    src_max = scatter(src.detach(), index, dim, dim_size=N, reduce='max')
    out = src - src_max.index_select(dim, index)
    out = out.exp()
    out_sum = scatter(out, index, dim, dim_size=N, reduce='sum') + 1e-16
    out_sum = out_sum.index_select(dim, index)
    return out / out_sum


def glorot(value):
    if value is not None:
        stdv = math.sqrt(6.0 / (value.size(-2) + value.size(-1)))
        value.data.uniform_(-stdv, stdv)


# ---- MessagePassing -------------------------------------------------------------------------
class MessagePassing(nn.Module):
    special_args = {'edge_index', 'index', 'size', 'size_i', 'size_j', 'dim_size'}

    def __init__(self, aggr='add', flow='source_to_target', node_dim=-2):
        super().__init__()
        self.aggr = aggr
        assert self.aggr in ['add', 'sum', 'mean', 'max']
        self.flow = flow
        assert self.flow in ['source_to_target', 'target_to_source']
        self.node_dim = node_dim
        self.__user_args__ = [p for p in inspect.signature(self.message).parameters.keys()
                              if p not in ('self', 'kwargs')]

    def _set_size(self, size, dim, src):
        the_size = size[dim]
        if the_size is None:
            size[dim] = src.size(self.node_dim)
        elif the_size != src.size(self.node_dim):
            raise ValueError(f'Encountered tensor with size {src.size(self.node_dim)} in dimension '
                             f'{self.node_dim}, but expected size {the_size}.')

    def _collect(self, args, edge_index, size, kwargs):
        i, j = (1, 0) if self.flow == 'source_to_target' else (0, 1)
        out = {}
        for arg in args:
            if arg[-2:] not in ['_i', '_j']:
                out[arg] = kwargs.get(arg, None)
            else:
                dim = j if arg[-2:] == '_j' else i
                data = kwargs.get(arg[:-2], None)
                if isinstance(data, (tuple, list)):
                    assert len(data) == 2
                    data = data[dim]
                if isinstance(data, torch.Tensor):
                    self._set_size(size, dim, data)
                    data = data.index_select(self.node_dim, edge_index[dim])
                out[arg] = data
        out['edge_index'] = edge_index
        out['index'] = edge_index[i]
        out['size'] = size
        out['size_i'] = size[i] if size[i] is not None else size[j]
        out['size_j'] = size[j] if size[j] is not None else size[i]
        out['dim_size'] = out['size_i']
        return out

    def propagate(self, edge_index, size=None, **kwargs):
        size = [None, None] if size is None else list(size)
        coll = self._collect(self.__user_args__, edge_index, size, kwargs)
        msg_kwargs = {name: coll[name] for name in self.__user_args__}
        out = self.message(**msg_kwargs)
        out = self.aggregate(out, index=coll['index'], dim_size=coll['dim_size'])
        return self.update(out)

    def message(self, x_j):
        return x_j

    def aggregate(self, inputs, index, dim_size=None):
        return scatter(inputs, index, dim=self.node_dim, dim_size=dim_size, reduce=self.aggr)

    def update(self, inputs):
        return inputs

    def __repr__(self):
        return f'{self.__class__.__name__}({self.in_channels}, {self.out_channels})'


class GCNConv(MessagePassing):
    def __init__(self, in_channels, out_channels):
        super().__init__(aggr='add')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self):
        glorot(self.lin.weight)
        self.bias.data.zero_()

    def forward(self, x, edge_index):
        edge_index, _ = add_self_loops(edge_index, num_nodes=x.size(0))
        x = self.lin(x)
        row, col = edge_index
        deg = degree(col, x.size(0), dtype=x.dtype)
        deg_inv_sqrt = deg.pow(-0.5)
        deg_inv_sqrt.masked_fill_(deg_inv_sqrt == float('inf'), 0)
        norm = deg_inv_sqrt[row] * deg_inv_sqrt[col]
        out = self.propagate(edge_index, x=x, norm=norm)
        out = out + self.bias
        return out

    def message(self, x_j, norm):
        return norm.view(-1, 1) * x_j


class GATConv(MessagePassing):
    def __init__(self, in_channels, out_channels, heads=1, concat=True, negative_slope=0.2, dropout=0.0):
        super().__init__(aggr='add', node_dim=0)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.heads, self.concat = heads, concat
        self.negative_slope, self.dropout = negative_slope, dropout
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        self.bias = nn.Parameter(torch.empty(heads * out_channels if concat else out_channels))
        self.reset_parameters()

    def reset_parameters(self):
        glorot(self.lin.weight)
        glorot(self.att_src)
        glorot(self.att_dst)
        nn.init.zeros_(self.bias)

    def forward(self, x, edge_index, return_attention_weights=False):
        H, C = self.heads, self.out_channels
        x = self.lin(x).view(-1, H, C)
        alpha_src = (x * self.att_src).sum(dim=-1)
        alpha_dst = (x * self.att_dst).sum(dim=-1)
        edge_index, _ = add_self_loops(edge_index, num_nodes=x.size(0))
        out = self.propagate(edge_index, x=x, alpha=(alpha_src, alpha_dst))
        if self.concat:
            out = out.view(-1, self.heads * self.out_channels)
        else:
            out = out.mean(dim=1)
        out = out + self.bias
        if return_attention_weights:
            return out, (edge_index, self._alpha)
        return out

    def message(self, x_j, alpha_j, alpha_i, index, size_i):
        alpha = alpha_j + alpha_i
        alpha = F.leaky_relu(alpha, self.negative_slope)
        alpha = softmax(alpha, index, num_nodes=size_i)
        self._alpha = alpha
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        return x_j * alpha.unsqueeze(-1)


class SAGEConv(MessagePassing):
    def __init__(self, in_channels, out_channels, aggr='mean'):
        super().__init__(aggr=aggr)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lin_l = nn.Linear(in_channels, out_channels, bias=True)
        self.lin_r = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x, edge_index):
        out = self.propagate(edge_index, x=(x, x))
        out = self.lin_l(out)
        return out + self.lin_r(x)

    def message(self, x_j):
        return x_j


class MLP(nn.Sequential):
    def __init__(self, channel_list):
        layers = []
        for i in range(1, len(channel_list)):
            layers.append(nn.Linear(channel_list[i - 1], channel_list[i]))
            if i < len(channel_list) - 1:
                layers.append(nn.BatchNorm1d(channel_list[i]))
                layers.append(nn.ReLU())
        super().__init__(*layers)


class GINConv(MessagePassing):
    def __init__(self, nn_module, eps=0.0, train_eps=False):
        super().__init__(aggr='add')
        self.nn = nn_module
        self.in_channels = nn_module[0].in_features
        self.out_channels = nn_module[-1].out_features
        if train_eps:
            self.eps = nn.Parameter(torch.tensor([eps]))
        else:
            self.register_buffer('eps', torch.tensor([eps]))

    def forward(self, x, edge_index):
        out = self.propagate(edge_index, x=(x, x))
        out = out + (1 + self.eps) * x
        return self.nn(out)


# ---- sanity checks of the machinery ---------------------------------------------------------
deg_bincount = torch.bincount(edge_index[1], minlength=N)
deg_scatter = degree(edge_index[1], N, dtype=torch.long)
deg_no_loops = degree(edge_index[1], N).pow(-0.5)
zeroed = int((deg_no_loops == float('inf')).sum())
deg_no_loops.masked_fill_(deg_no_loops == float('inf'), 0)
print(f"graph: {N} nodes, {edge_index.size(1)} directed edges, degree forms agree: "
      f"{torch.equal(deg_bincount, deg_scatter)}, isolated nodes zeroed {zeroed}")

torch.manual_seed(seed)
probe = GCNConv(16, 4)
with torch.no_grad():
    dense = torch.zeros(N, N)
    dense[edge_index[1], edge_index[0]] = 1.0
    dense = dense + torch.eye(N)
    d = dense.sum(1).pow(-0.5)
    expected = (d.view(-1, 1) * dense * d.view(1, -1)) @ probe.lin(x) + probe.bias
    gcn_diff = (probe(x, edge_index) - expected).abs().max().item()
    mean_agg = scatter(x[edge_index[0]], edge_index[1], dim_size=N, reduce='mean')
    sum_agg = scatter(x[edge_index[0]], edge_index[1], dim_size=N, reduce='sum')
    mean_diff = (mean_agg * deg_bincount.clamp(min=1).view(-1, 1) - sum_agg).abs().max().item()
    max_agg = scatter(x[edge_index[0]], edge_index[1], dim_size=N, reduce='max')
    loop_max = torch.stack([x[edge_index[0][edge_index[1] == n]].max(0).values if deg_bincount[n] > 0
                            else torch.zeros(16) for n in range(N)])
    max_diff = (max_agg - loop_max).abs().max().item()
    scores = torch.randn(edge_index.size(1), 2)
    seg = softmax(scores, edge_index[1], num_nodes=N)
    seg_sums = scatter(seg, edge_index[1], dim_size=N, reduce='sum')
    has_in = deg_bincount > 0
    softmax_ok = torch.allclose(seg_sums[has_in], torch.ones_like(seg_sums[has_in]), atol=1e-5)
print(f"GCN matches dense: {gcn_diff < 1e-5}, mean = sum / deg: {mean_diff < 1e-4}, "
      f"max matches loop: {max_diff < 1e-6}, segment softmax sums to one: {softmax_ok}")
print(f"message args: GCN {probe.__user_args__}, GAT {GATConv(4, 4).__user_args__}")


# ---- the models -------------------------------------------------------------------------------
class GCN(nn.Module):
    def __init__(self, in_channels, hidden, out_channels):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, out_channels)

    def forward(self, x, edge_index):
        x = F.dropout(x, p=0.5, training=self.training)
        x = self.conv1(x, edge_index).relu()
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index)


class GAT(nn.Module):
    def __init__(self, in_channels, hidden, out_channels, heads=2):
        super().__init__()
        self.conv1 = GATConv(in_channels, hidden, heads=heads, dropout=0.3)
        self.conv2 = GATConv(hidden * heads, out_channels, heads=1, concat=False, dropout=0.3)

    def forward(self, x, edge_index):
        x = F.dropout(x, p=0.5, training=self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index)


class SAGE(nn.Module):
    def __init__(self, in_channels, hidden, out_channels, aggr):
        super().__init__()
        self.conv1 = SAGEConv(in_channels, hidden, aggr=aggr)
        self.conv2 = SAGEConv(hidden, out_channels, aggr=aggr)

    def forward(self, x, edge_index):
        x = self.conv1(x, edge_index).relu()
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index)


class GIN(nn.Module):
    def __init__(self, in_channels, hidden, out_channels):
        super().__init__()
        self.conv1 = GINConv(MLP([in_channels, hidden, hidden]), train_eps=True)
        self.conv2 = GINConv(MLP([hidden, hidden, hidden]), train_eps=True)
        self.lin = nn.Linear(hidden, out_channels)

    def forward(self, x, edge_index):
        x = self.conv1(x, edge_index).relu()
        x = self.conv2(x, edge_index).relu()
        x = F.dropout(x, p=0.5, training=self.training)
        return self.lin(x)


def train_and_test(name, model, epochs=80, lr=0.01):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    for _epoch in range(1, epochs + 1):
        model.train()
        optimizer.zero_grad()
        out = model(x, edge_index)
        loss = F.cross_entropy(out[train_mask], y[train_mask])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model(x, edge_index).argmax(dim=-1)
        acc = int((pred[test_mask] == y[test_mask]).sum()) / int(test_mask.sum())
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, final train loss "
          f"{loss.item():.4f}, test acc {acc:.4f}")
    return loss.item(), acc


results = {}
results['gcn'] = train_and_test('GCN', GCN(16, 16, NUM_CLASSES))
gat = GAT(16, 8, NUM_CLASSES)
results['gat'] = train_and_test('GAT', gat)
with torch.no_grad():
    _, (att_index, att) = gat.conv1(x, edge_index, return_attention_weights=True)
    att_sums = scatter(att, att_index[1], dim_size=N, reduce='sum')
print(f"GAT attention {tuple(att.shape)}, per-node sums to one: "
      f"{torch.allclose(att_sums, torch.ones_like(att_sums), atol=1e-5)}")
results['sage_mean'] = train_and_test('SAGE mean', SAGE(16, 16, NUM_CLASSES, 'mean'))
results['sage_max'] = train_and_test('SAGE max', SAGE(16, 16, NUM_CLASSES, 'max'))
results['gin'] = train_and_test('GIN', GIN(16, 16, NUM_CLASSES))
mlp_only = MLP([16, 16, NUM_CLASSES])
opt = torch.optim.Adam(mlp_only.parameters(), lr=0.01, weight_decay=5e-4)
for _ in range(80):
    mlp_only.train()
    opt.zero_grad()
    F.cross_entropy(mlp_only(x)[train_mask], y[train_mask]).backward()
    opt.step()
mlp_only.eval()
with torch.no_grad():
    mlp_acc = (mlp_only(x).argmax(-1)[test_mask] == y[test_mask]).float().mean().item()
print(f"features-only MLP test acc {mlp_acc:.4f}")

print("FINAL " + " ".join(f"{k}_acc={v[1]:.4f}" for k, v in results.items())
      + f" mlp_acc={mlp_acc:.4f} gcn_loss={results['gcn'][0]:.4f} gat_loss={results['gat'][0]:.4f}")
