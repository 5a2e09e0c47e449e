"""Principal Neighbourhood Aggregation (Corso et al., NeurIPS 2020) as PyG's ``PNAConv`` and its
``examples/pna.py`` write it, with the message passing spelled out in plain torch (no torch_geometric),
on a synthetic graph-regression task (random graphs of typed nodes, the target a sum of per-node terms
that need the neighbours' types and the node degrees).

The pieces are PyG's: ``degree`` by ``scatter_add_`` of ones, the train-set degree histogram by
``torch.bincount(d, minlength=deg.numel())``, ``avg_deg`` ``'lin'``/``'log'`` from
``bin_degrees = torch.arange(deg.numel())``, a ``scatter(src, index, dim, dim_size, reduce)`` helper
(``index_add_`` for sums, ``index_add_`` of ones + ``clamp(min=1)`` for means, ``scatter_reduce_(0,
index, src, reduce='amax'/'amin', include_self=False)`` for max/min), ``std`` as ``torch.sqrt(torch.relu(
mean_squares - mean * mean) + 1e-5)``, the identity/amplification/attenuation scalers from ``deg.clamp_(1)``
and ``torch.log(deg + 1) / avg_deg['log']``, towers (``x.view(-1, 1, F_in).repeat(1, towers, 1)``,
per-tower pre-NNs on ``torch.cat([x_i, x_j], dim=-1)`` stacked by ``torch.stack(hs, dim=1)``, post-NNs on
``out[:, i]``), ``nn.Embedding`` node types, ``BatchNorm1d`` + ReLU between layers, ``global_add_pool``
over a batch vector, an MLP head, ``F.l1_loss``, Adam + ``ReduceLROnPlateau``.

Checked: each aggregator (mean, min, max, std) and the whole ``PNAConv`` agree with a dense-adjacency
implementation (messages for every node pair, ``masked_fill(~adj, float('-inf'))`` + ``amax``, sums by
``adj`` weights), in values and in the gradients w.r.t. the input features and the layer's parameters;
the trained PNA beats predicting the train mean (the same network with mean aggregation only is trained
and reported beside it).
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn import BatchNorm1d, Embedding, Linear, ModuleList, ReLU, Sequential

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)

NUM_TYPES = 4


# ----------------------------------------------------------------------------------- data
class Data:
    def __init__(self, x, edge_index, y):
        self.x, self.edge_index, self.y = x, edge_index, y
        self.num_nodes = x.size(0)


def make_graph(rng):
    n = rng.randint(5, 11)
    types = rng.randint(NUM_TYPES, size=n)
    edges = set()
    for i in range(1, n):  # a random tree keeps the graph connected, then a few extra edges
        edges.add((i, rng.randint(i)))
    for _ in range(rng.randint(0, n)):
        a, b = rng.randint(n, size=2)
        if a != b:
            edges.add((max(a, b), min(a, b)))
    src = [a for a, b in edges] + [b for a, b in edges]
    dst = [b for a, b in edges] + [a for a, b in edges]
    deg = np.bincount(dst, minlength=n)
    has_type3 = np.zeros(n)
    has_type3[np.array(dst)[types[np.array(src)] == 3]] = 1
    weights = np.array([0.5, -0.3, 0.8, 0.1])
    y = (weights[types] * np.sqrt(deg)).sum() + 0.7 * has_type3.sum() - 0.2 * (deg == 1).sum()
    return Data(torch.tensor(types, dtype=torch.long), torch.tensor([src, dst], dtype=torch.long),
                torch.tensor([y / 4.0], dtype=torch.float))


def collate(data_list):
    xs, eis, ys, batch = [], [], [], []
    offset = 0
    for i, data in enumerate(data_list):
        xs.append(data.x)
        eis.append(data.edge_index + offset)
        ys.append(data.y)
        batch.append(torch.full((data.num_nodes,), i, dtype=torch.long))
        offset += data.num_nodes
    return torch.cat(xs), torch.cat(eis, dim=1), torch.cat(ys), torch.cat(batch)


data_rng = np.random.RandomState(0)  # one data set; the seed moves init and batching
train_dataset = [make_graph(data_rng) for _ in range(96)]
test_dataset = [make_graph(data_rng) for _ in range(48)]


# ----------------------------------------------------------------------------------- utils
def degree(index, num_nodes=None, dtype=None):
    N = int(index.max()) + 1 if num_nodes is None else num_nodes
    out = torch.zeros((N,), dtype=dtype, device=index.device)
    one = torch.ones((index.size(0),), dtype=out.dtype, device=out.device)
    return out.scatter_add_(0, index, one)


def scatter(src, index, dim=0, dim_size=None, reduce="sum"):
    assert dim == 0
    dim_size = int(index.max()) + 1 if dim_size is None else dim_size
    size = list(src.size())
    size[0] = dim_size
    if reduce == "sum":
        return src.new_zeros(size).index_add_(0, index, src)
    if reduce == "mean":
        count = src.new_zeros(dim_size).index_add_(0, index, src.new_ones(index.numel()))
        out = src.new_zeros(size).index_add_(0, index, src)
        return out / count.clamp(min=1).view([-1] + [1] * (src.dim() - 1))
    if reduce in ("min", "max"):
        index = index.view([-1] + [1] * (src.dim() - 1)).expand_as(src)
        return src.new_zeros(size).scatter_reduce_(0, index, src, reduce=f"a{reduce}", include_self=False)
    raise ValueError(f"Encountered invalid `reduce` argument '{reduce}'")


def global_add_pool(x, batch, size=None):
    size = int(batch.max().item() + 1) if size is None else size
    return scatter(x, batch, dim=0, dim_size=size, reduce="sum")


# ----------------------------------------------------------------------------------- PNAConv
class PNAConv(torch.nn.Module):
    def __init__(self, in_channels, out_channels, aggregators, scalers, deg, towers=1, pre_layers=1,
                 post_layers=1, divide_input=False):
        super().__init__()
        if divide_input:
            assert in_channels % towers == 0
        assert out_channels % towers == 0
        self.in_channels, self.out_channels = in_channels, out_channels
        self.aggregators, self.scalers = aggregators, scalers
        self.towers, self.divide_input = towers, divide_input
        self.F_in = in_channels // towers if divide_input else in_channels
        self.F_out = self.out_channels // towers

        deg = deg.to(torch.float)
        num_nodes = int(deg.sum())
        bin_degrees = torch.arange(deg.numel())
        self.avg_deg = {
            "lin": float((bin_degrees * deg).sum()) / num_nodes,
            "log": float(((bin_degrees + 1).log() * deg).sum()) / num_nodes,
        }

        self.pre_nns = ModuleList()
        self.post_nns = ModuleList()
        for _ in range(towers):
            modules = [Linear(2 * self.F_in, self.F_in)]
            for _ in range(pre_layers - 1):
                modules += [ReLU()]
                modules += [Linear(self.F_in, self.F_in)]
            self.pre_nns.append(Sequential(*modules))

            in_channels = (len(aggregators) * len(scalers) + 1) * self.F_in
            modules = [Linear(in_channels, self.F_out)]
            for _ in range(post_layers - 1):
                modules += [ReLU()]
                modules += [Linear(self.F_out, self.F_out)]
            self.post_nns.append(Sequential(*modules))
        self.lin = Linear(out_channels, out_channels)

    def towers_input(self, x):
        if self.divide_input:
            return x.view(-1, self.towers, self.F_in)
        return x.view(-1, 1, self.F_in).repeat(1, self.towers, 1)

    def message(self, x_i, x_j):
        h = torch.cat([x_i, x_j], dim=-1)
        hs = [nn(h[:, i]) for i, nn in enumerate(self.pre_nns)]
        return torch.stack(hs, dim=1)

    def aggregate_each(self, inputs, index, dim_size):
        outs = {}
        for aggregator in self.aggregators:
            if aggregator in ("mean", "min", "max"):
                out = scatter(inputs, index, 0, dim_size, reduce=aggregator)
            elif aggregator == "std":
                mean = scatter(inputs, index, 0, dim_size, reduce="mean")
                mean_squares = scatter(inputs * inputs, index, 0, dim_size, reduce="mean")
                out = mean_squares - mean * mean
                out = torch.sqrt(torch.relu(out) + 1e-5)
            else:
                raise ValueError(f'Unknown aggregator "{aggregator}".')
            outs[aggregator] = out
        return outs

    def scale(self, outs, deg):
        out = torch.cat([outs[a] for a in self.aggregators], dim=-1)
        deg = deg.clamp_(1).view(-1, 1, 1)
        scaled = []
        for scaler in self.scalers:
            if scaler == "identity":
                scaled.append(out)
            elif scaler == "amplification":
                scaled.append(out * (torch.log(deg + 1) / self.avg_deg["log"]))
            elif scaler == "attenuation":
                scaled.append(out * (self.avg_deg["log"] / torch.log(deg + 1)))
            else:
                raise ValueError(f'Unknown scaler "{scaler}".')
        return torch.cat(scaled, dim=-1)

    def update(self, x, aggr_out):
        out = torch.cat([x, aggr_out], dim=-1)
        outs = [nn(out[:, i]) for i, nn in enumerate(self.post_nns)]
        out = torch.cat(outs, dim=1)
        return self.lin(out)

    def forward(self, x, edge_index):
        x = self.towers_input(x)
        j, i = edge_index
        msg = self.message(x.index_select(0, i), x.index_select(0, j))
        aggrs = self.aggregate_each(msg, i, x.size(0))
        deg = degree(i, x.size(0), dtype=msg.dtype)
        return self.update(x, self.scale(aggrs, deg))

    def forward_dense(self, x, adj):
        """The same layer on a dense adjacency (adj[i, j]: an edge j -> i): messages for every pair."""
        x = self.towers_input(x)
        N = x.size(0)
        msg = self.message(x.unsqueeze(1).expand(N, N, *x.shape[1:]).reshape(N * N, *x.shape[1:]),
                           x.unsqueeze(0).expand(N, N, *x.shape[1:]).reshape(N * N, *x.shape[1:]))
        msg = msg.view(N, N, *msg.shape[1:])
        return self.update(x, self.scale(dense_aggregates(msg, adj, self.aggregators), adj.sum(1)))


def dense_aggregates(msg, adj, aggregators):
    mask = adj.bool().view(*adj.shape, 1, 1)
    deg = adj.sum(1).clamp(min=1).view(-1, 1, 1)
    has = adj.sum(1).view(-1, 1, 1) > 0
    weights = adj.view(*adj.shape, 1, 1)
    mean = (weights * msg).sum(1) / deg
    outs = {}
    for aggregator in aggregators:
        if aggregator == "mean":
            outs[aggregator] = mean
        elif aggregator == "max":
            outs[aggregator] = torch.where(has, msg.masked_fill(~mask, float("-inf")).amax(1), 0.0)
        elif aggregator == "min":
            outs[aggregator] = torch.where(has, msg.masked_fill(~mask, float("inf")).amin(1), 0.0)
        elif aggregator == "std":
            mean_squares = (weights * msg * msg).sum(1) / deg
            outs[aggregator] = torch.sqrt(torch.relu(mean_squares - mean * mean) + 1e-5)
    return outs


# ----------------------------------------------------------------------------------- the net
class Net(torch.nn.Module):
    def __init__(self, deg, aggregators, scalers, hidden=16, num_layers=2, towers=2):
        super().__init__()
        self.node_emb = Embedding(NUM_TYPES, hidden)
        self.convs = ModuleList()
        self.batch_norms = ModuleList()
        for _ in range(num_layers):
            conv = PNAConv(in_channels=hidden, out_channels=hidden, aggregators=aggregators, scalers=scalers,
                           deg=deg, towers=towers, pre_layers=1, post_layers=1, divide_input=False)
            self.convs.append(conv)
            self.batch_norms.append(BatchNorm1d(hidden))
        self.mlp = Sequential(Linear(hidden, 16), ReLU(), Linear(16, 8), ReLU(), Linear(8, 1))

    def forward(self, x, edge_index, batch):
        x = self.node_emb(x)
        for conv, batch_norm in zip(self.convs, self.batch_norms):
            x = F.relu(batch_norm(conv(x, edge_index)))
        x = global_add_pool(x, batch)
        return self.mlp(x)


# Compute the maximum in-degree in the training data.
max_degree = -1
for data in train_dataset:
    d = degree(data.edge_index[1], num_nodes=data.num_nodes, dtype=torch.long)
    max_degree = max(max_degree, int(d.max()))

# Compute the in-degree histogram tensor
deg = torch.zeros(max_degree + 1, dtype=torch.long)
for data in train_dataset:
    d = degree(data.edge_index[1], num_nodes=data.num_nodes, dtype=torch.long)
    deg += torch.bincount(d, minlength=deg.numel())
print("degree histogram:", deg.tolist())

aggregators = ["mean", "min", "max", "std"]
scalers = ["identity", "amplification", "attenuation"]

# ----------------------------------------------------------------------------------- checks
x_b, ei_b, y_b, batch_b = collate(train_dataset[:6])
N = x_b.size(0)
adj = torch.zeros(N, N)
adj[ei_b[1], ei_b[0]] = 1.0
print("edges:", ei_b.size(1), "dense edges:", int(adj.sum().item()),
      "degree check:", torch.equal(degree(ei_b[1], N), adj.sum(1)))

conv = PNAConv(8, 8, aggregators, scalers, deg, towers=2)
feat = torch.randn(N, 8, requires_grad=True)
msg_in = conv.towers_input(feat)
j, i = ei_b
msg = conv.message(msg_in.index_select(0, i), msg_in.index_select(0, j))
sparse_aggr = conv.aggregate_each(msg, i, N)
msg_dense = conv.message(msg_in.unsqueeze(1).expand(N, N, 2, 8).reshape(N * N, 2, 8),
                         msg_in.unsqueeze(0).expand(N, N, 2, 8).reshape(N * N, 2, 8)).view(N, N, 2, -1)
dense_aggr = dense_aggregates(msg_dense, adj, aggregators)
worst = 0.0
for name in aggregators:
    a, b = sparse_aggr[name], dense_aggr[name]
    w = torch.randn(a.shape)
    ga = torch.autograd.grad((a * w).sum(), [feat] + list(conv.pre_nns.parameters()), retain_graph=True)
    gb = torch.autograd.grad((b * w).sum(), [feat] + list(conv.pre_nns.parameters()), retain_graph=True)
    value_ok = torch.allclose(a, b, atol=1e-5)
    grad_ok = all(torch.allclose(p, q, atol=1e-5) for p, q in zip(ga, gb))
    diff = max([(a - b).abs().max().item()] + [(p - q).abs().max().item() for p, q in zip(ga, gb)])
    worst = max(worst, diff)
    print(f"aggregator {name:4s}: values agree {value_ok}, gradients agree {grad_ok}")

out_sparse = conv(feat, ei_b)
out_dense = conv.forward_dense(feat, adj)
w = torch.randn(out_sparse.shape)
gs = torch.autograd.grad((out_sparse * w).sum(), [feat] + list(conv.parameters()))
gd = torch.autograd.grad((out_dense * w).sum(), [feat] + list(conv.parameters()))
conv_ok = torch.allclose(out_sparse, out_dense, atol=1e-5) and all(
    torch.allclose(p, q, atol=1e-5) for p, q in zip(gs, gd))
worst = max([worst, (out_sparse - out_dense).abs().max().item()] + [(p - q).abs().max().item() for p, q in zip(gs, gd)])
print("PNAConv sparse vs dense (output and every gradient) agree:", conv_ok, "shape", tuple(out_sparse.shape))
amp = torch.log(degree(i, N) + 1) / conv.avg_deg["log"]
print("amplification range ok:", bool(amp.min() > 0), "avg_deg lin > 1:", conv.avg_deg["lin"] > 1)


# ----------------------------------------------------------------------------------- training
def batches(dataset, batch_size, shuffle):
    order = torch.randperm(len(dataset)).tolist() if shuffle else list(range(len(dataset)))
    for s in range(0, len(order), batch_size):
        yield collate([dataset[k] for k in order[s:s + batch_size]])


@torch.no_grad()
def test(model, dataset):
    model.eval()
    total_error = 0
    for x, edge_index, y, batch in batches(dataset, 16, False):
        out = model(x, edge_index, batch)
        total_error += (out.squeeze() - y).abs().sum().item()
    return total_error / len(dataset)


def train_model(aggregators, epochs=25):
    model = Net(deg, aggregators, scalers)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=5,
                                                           min_lr=0.00001)
    for epoch in range(1, epochs + 1):
        model.train()
        total_loss = 0
        for x, edge_index, y, batch in batches(train_dataset, 16, True):
            optimizer.zero_grad()
            out = model(x, edge_index, batch)
            loss = F.l1_loss(out.squeeze(), y)
            loss.backward()
            total_loss += loss.item() * y.numel()
            optimizer.step()
        loss = total_loss / len(train_dataset)
        val_mae = test(model, train_dataset)
        scheduler.step(val_mae)
        if epoch % 5 == 0:
            print(f"[{'+'.join(aggregators)}] Epoch: {epoch:02d}, Loss: {loss:.4f}, Train: {val_mae:.4f}")
    return model


y_train = torch.cat([d.y for d in train_dataset])
y_test = torch.cat([d.y for d in test_dataset])
mean_mae = (y_test - y_train.mean()).abs().mean().item()
pna = train_model(aggregators)
pna_mae = test(pna, test_dataset)
mean_only = train_model(["mean"])
mean_only_mae = test(mean_only, test_dataset)
print(f"test MAE: PNA {pna_mae:.4f}  mean-only {mean_only_mae:.4f}  predict-mean {mean_mae:.4f}")
print("PNA beats predict-mean:", pna_mae < 0.5 * mean_mae)
print(f"FINAL pna_mae={pna_mae:.4f} mean_only_mae={mean_only_mae:.4f} baseline_mae={mean_mae:.4f} "
      f"dense_ok={float(conv_ok)} dense_diff={worst:.2e}")
