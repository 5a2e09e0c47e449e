"""Gilmer et al.'s MPNN as PyG's examples/qm9_nn_conv.py writes it, without torch_geometric, on
synthetic molecular graphs (random bonds with bond-type features, a per-atom target from
planted substructure counts): an ``NNConv`` edge network by hand (``nn.Sequential`` mapping edge features
to ``(in, out)`` matrices, ``torch.bmm(x_j.unsqueeze(1), W).squeeze(1)``, ``index_add_`` mean
aggregation over ``torch.bincount`` degrees, against ``scatter_add_`` with an expanded index and
``scatter_reduce_(reduce='mean', include_self=False)``), the ``nn.GRU`` update stepped ``T`` times,
the ``Set2Set`` readout (an ``nn.LSTM`` query, scores ``(x * q[batch]).sum(dim=-1, keepdim=True)``,
a per-graph softmax by ``scatter_reduce_`` max subtraction + ``exp`` + ``index_add_`` normalisation
against a per-graph ``F.softmax`` loop, ``torch.cat([q, r], dim=-1)``), target normalisation by
mean/std, Adam + ``ReduceLROnPlateau(mode='min', factor=0.7, patience=2, min_lr=0.00001)`` on the
validation error, and the test MAE against the mean baseline.
"""
# ruff: noqa: B007  (the PyG example's own loop: for i in range(3))

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn import GRU, LSTM, Linear, ReLU, Sequential

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

NUM_ATOM_TYPES, NUM_BOND_TYPES = 4, 3
NUM_GRAPHS = 384


def random_molecule():
    n = rng.randint(5, 11)
    atoms = rng.choice(NUM_ATOM_TYPES, size=n, p=[0.4, 0.3, 0.2, 0.1])
    bonds = {(rng.randint(0, i), i) for i in range(1, n)}  # a random spanning tree
    for _ in range(rng.randint(0, 3)):  # a few rings
        a, b = sorted(rng.choice(n, 2, replace=False))
        bonds.add((int(a), int(b)))
    bonds = sorted(bonds)
    bond_types = rng.choice(NUM_BOND_TYPES, size=len(bonds), p=[0.6, 0.3, 0.1])
    # planted target, per atom as QM9's intensive properties: C=O-like pairs (types 0-1 joined by a
    # double bond) and type-2 atoms bonded to a type-3 atom
    pairs = 0
    linked = set()
    for (a, b), t in zip(bonds, bond_types):
        if t == 1 and {atoms[a], atoms[b]} == {0, 1}:
            pairs += 1
        for u, v in ((a, b), (b, a)):
            if atoms[u] == 2 and atoms[v] == 3:
                linked.add(u)
    target = 4.0 * (1.0 * pairs + 0.8 * len(linked)) / n
    x = np.eye(NUM_ATOM_TYPES, dtype=np.float32)[atoms]
    src = [a for a, b in bonds] + [b for a, b in bonds]
    dst = [b for a, b in bonds] + [a for a, b in bonds]
    edge_attr = np.eye(NUM_BOND_TYPES, dtype=np.float32)[np.concatenate([bond_types, bond_types])]
    return x, np.array([src, dst], dtype=np.int64), edge_attr, target


graphs = [random_molecule() for _ in range(NUM_GRAPHS)]
print(f"graphs {NUM_GRAPHS} nodes {sum(len(g[0]) for g in graphs)} edges {sum(g[1].shape[1] for g in graphs)}")


def collate(items):
    """Concatenate graphs into one disconnected graph, as torch_geometric's Batch does."""
    xs, edge_indices, edge_attrs, ys, sizes = [], [], [], [], []
    offset = 0
    for x, edge_index, edge_attr, y in items:
        xs.append(torch.from_numpy(x))
        edge_indices.append(torch.from_numpy(edge_index) + offset)
        edge_attrs.append(torch.from_numpy(edge_attr))
        ys.append(y)
        sizes.append(len(x))
        offset += len(x)
    batch = torch.repeat_interleave(torch.arange(len(items)), torch.tensor(sizes))
    return (torch.cat(xs), torch.cat(edge_indices, dim=1), torch.cat(edge_attrs), batch,
            torch.tensor(ys, dtype=torch.float))


# Normalize targets to mean = 0 and std = 1.
all_y = torch.tensor([g[3] for g in graphs], dtype=torch.float)
train_graphs, val_graphs, test_graphs = graphs[:256], graphs[256:320], graphs[320:]
mean = all_y[:256].mean()
std = all_y[:256].std()
print(f"target mean {mean.item():.4f} std {std.item():.4f}")


class NNConv(torch.nn.Module):
    def __init__(self, in_channels, out_channels, nn, aggr="mean"):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.nn = nn
        self.aggr = aggr
        self.root = Linear(in_channels, out_channels, bias=False)
        self.bias = torch.nn.Parameter(torch.zeros(out_channels))

    def message(self, x_j, edge_attr):
        weight = self.nn(edge_attr)
        weight = weight.view(-1, self.in_channels, self.out_channels)
        return torch.bmm(x_j.unsqueeze(1), weight).squeeze(1)

    def aggregate(self, msg, index, num_nodes, route="index_add"):
        if route == "index_add":
            out = torch.zeros(num_nodes, msg.size(1)).index_add_(0, index, msg)
        elif route == "scatter_add":
            out = torch.zeros(num_nodes, msg.size(1)).scatter_add_(0, index.view(-1, 1).expand_as(msg), msg)
        else:
            return torch.zeros(num_nodes, msg.size(1)).scatter_reduce_(
                0, index.view(-1, 1).expand_as(msg), msg, reduce="mean", include_self=False)
        deg = torch.bincount(index, minlength=num_nodes).clamp(min=1)
        return out / deg.unsqueeze(-1).to(out.dtype)

    def forward(self, x, edge_index, edge_attr, route="index_add"):
        src, dst = edge_index
        msg = self.message(x[src], edge_attr)
        out = self.aggregate(msg, dst, x.size(0), route)
        return out + self.root(x) + self.bias


def scatter_softmax(src, index, num_segments):
    src_max = torch.full((num_segments, 1), float("-inf")).scatter_reduce_(
        0, index.view(-1, 1), src, reduce="amax", include_self=True)
    out = (src - src_max[index]).exp()
    out_sum = torch.zeros(num_segments, 1).index_add_(0, index, out) + 1e-16
    return out / out_sum[index]


class Set2Set(torch.nn.Module):
    def __init__(self, in_channels, processing_steps, num_layers=1):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 2 * in_channels
        self.processing_steps = processing_steps
        self.lstm = LSTM(self.out_channels, in_channels, num_layers)

    def forward(self, x, batch, dim_size):
        h = (x.new_zeros((self.lstm.num_layers, dim_size, x.size(-1))),
             x.new_zeros((self.lstm.num_layers, dim_size, x.size(-1))))
        q_star = x.new_zeros(dim_size, self.out_channels)
        for _ in range(self.processing_steps):
            q, h = self.lstm(q_star.unsqueeze(0), h)
            q = q.view(dim_size, self.in_channels)
            e = (x * q[batch]).sum(dim=-1, keepdim=True)
            a = scatter_softmax(e, batch, dim_size)
            r = torch.zeros(dim_size, x.size(-1)).index_add_(0, batch, a * x)
            q_star = torch.cat([q, r], dim=-1)
        return q_star

    def __repr__(self):
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"


dim = 16


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin0 = torch.nn.Linear(NUM_ATOM_TYPES, dim)
        nn = Sequential(Linear(NUM_BOND_TYPES, 32), ReLU(), Linear(32, dim * dim))
        self.conv = NNConv(dim, dim, nn, aggr="mean")
        self.gru = GRU(dim, dim)
        self.set2set = Set2Set(dim, processing_steps=3)
        self.lin1 = torch.nn.Linear(2 * dim, dim)
        self.lin2 = torch.nn.Linear(dim, 1)

    def forward(self, data):
        x, edge_index, edge_attr, batch, _ = data
        out = F.relu(self.lin0(x))
        h = out.unsqueeze(0)
        for i in range(3):
            m = F.relu(self.conv(out, edge_index, edge_attr))
            out, h = self.gru(m.unsqueeze(0), h)
            out = out.squeeze(0)
        out = self.set2set(out, batch, int(batch.max()) + 1)
        out = F.relu(self.lin1(out))
        out = self.lin2(out)
        return out.view(-1)


model = Net()
print(model.set2set)

# ---- the pieces against other routes ----
check = collate(test_graphs[:6])
x_c, ei_c, ea_c, batch_c, _ = check
h_c = F.relu(model.lin0(x_c))
routes = [model.conv(h_c, ei_c, ea_c, route=r) for r in ("index_add", "scatter_add", "scatter_mean")]
conv_diff = max((routes[0] - r).abs().max().item() for r in routes[1:])
loop = torch.stack([h_c[ei_c[0, k]] @ model.conv.nn(ea_c[k]).view(dim, dim) for k in range(ei_c.shape[1])])
msg_diff = (model.conv.message(h_c[ei_c[0]], ea_c) - loop).abs().max().item()
e_c = torch.randn(len(batch_c), 1)
soft = scatter_softmax(e_c, batch_c, 6)
soft_ref = torch.cat([F.softmax(e_c[batch_c == g], dim=0) for g in range(6)])
soft_diff = (soft - soft_ref).abs().max().item()
sums = torch.zeros(6).index_add_(0, batch_c, soft.squeeze(1))
print(f"NNConv index_add vs scatter routes {conv_diff:.2e} bmm vs per-edge {msg_diff:.2e}")
print(f"segment softmax vs per-graph F.softmax {soft_diff:.2e} sums to one {torch.allclose(sums, torch.ones(6))}")

optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.7, patience=2, min_lr=0.00001)


def batches(items, size, shuffle):
    order = torch.randperm(len(items)).tolist() if shuffle else list(range(len(items)))
    for start in range(0, len(items), size):
        yield collate([items[i] for i in order[start:start + size]])


def train():
    model.train()
    loss_all = 0
    for data in batches(train_graphs, 32, shuffle=True):
        optimizer.zero_grad()
        loss = F.mse_loss(model(data), (data[4] - mean) / std)
        loss.backward()
        loss_all += loss.item() * len(data[4])
        optimizer.step()
    return loss_all / len(train_graphs)


def test(items):
    model.eval()
    error = 0
    with torch.no_grad():
        for data in batches(items, 48, shuffle=False):
            error += (model(data) * std + mean - data[4]).abs().sum().item()  # MAE
    return error / len(items)


best_val_error = None
for epoch in range(1, 21):
    lr = scheduler.optimizer.param_groups[0]["lr"]
    loss = train()
    val_error = test(val_graphs)
    scheduler.step(val_error)
    if best_val_error is None or val_error <= best_val_error:
        test_error = test(test_graphs)
        best_val_error = val_error
    if epoch % 4 == 0:
        print(f"Epoch: {epoch:03d}, LR: {lr:7f}, Loss: {loss:.7f}, Val MAE: {val_error:.7f}, Test MAE: {test_error:.7f}")

test_y = torch.tensor([g[3] for g in test_graphs])
baseline = (test_y - mean).abs().mean().item()
final_lr = optimizer.param_groups[0]["lr"]
print(f"mean baseline MAE {baseline:.4f} model MAE {test_error:.4f} ratio {test_error / baseline:.4f}")
print(f"FINAL test_mae={test_error:.4f} baseline_mae={baseline:.4f} ratio={test_error / baseline:.4f} "
      f"best_val={best_val_error:.4f} final_lr={final_lr:.6f} conv_diff={conv_diff:.6f} msg_diff={msg_diff:.6f} "
      f"softmax_diff={soft_diff:.6f}")
