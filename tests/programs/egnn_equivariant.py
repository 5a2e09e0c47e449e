"""E(n)-equivariant graph neural network (Satorras, Hoogeboom and Welling, 2021) on a spring system.

The ``vgsatorras/egnn`` repository's ``E_GCL`` / ``E_GCL_vel`` layers at toy size, predicting
where five charged particles joined by springs are after a short simulated time (the paper's n-body
task, made with NumPy; node features are the speed and the charge): a fully connected edge index from ``torch.combinations`` (both
directions) offset per graph of the batch, ``coord_diff = coord[row] - coord[col]`` and
``radial = (coord_diff ** 2).sum(-1, keepdim=True)``, edge and node MLPs with ``nn.SiLU``,
``unsorted_segment_sum`` by ``result.index_add_(0, segment_ids, data)`` and
``unsorted_segment_mean`` by ``scatter_add_`` with ``segment_ids.unsqueeze(-1).expand_as(data)``
and ``count.clamp(min=1)``, the coordinate update ``coord_diff * coord_mlp(edge_feat)`` clipped by
``torch.clamp(trans, min=-100, max=100)``, the last layer's ``xavier_uniform_(gain=0.001)``,
the velocity term ``coord_mlp_vel(h) * vel``, Adam with weight decay on the MSE of positions.
The equivariance check applies a random rotation (``torch.linalg.qr`` of a ``randn`` matrix,
columns sign-fixed by ``torch.sign(torch.diagonal(R))``) and a translation, and prints the largest
deviation between transformed outputs and outputs of transformed inputs, for the EGNN and for a
plain MLP on coordinates.
"""

import os

import numpy as np
import torch
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_NODES, DT, STEPS = 5, 0.01, 100


def simulate(n_systems):
    """Charged particles joined pairwise by springs of stiffness c_i * c_j; symplectic Euler."""
    charges = rng.choice([-1.0, 1.0], size=(n_systems, N_NODES))
    stiffness = charges[:, :, None] * charges[:, None, :]
    pos = rng.normal(size=(n_systems, N_NODES, 3))
    vel = rng.normal(scale=0.5, size=(n_systems, N_NODES, 3))
    x0, v0 = pos.copy(), vel.copy()
    for _ in range(STEPS):
        diff = pos[:, :, None, :] - pos[:, None, :, :]
        force = -(stiffness[..., None] * diff).sum(2)
        vel = vel + DT * force
        pos = pos + DT * vel
    return [torch.tensor(a, dtype=torch.float32) for a in (x0, v0, charges, pos)]


def unsorted_segment_sum(data, segment_ids, num_segments):
    result = data.new_full((num_segments, data.size(1)), 0)
    result.index_add_(0, segment_ids, data)
    return result


def unsorted_segment_mean(data, segment_ids, num_segments):
    result_shape = (num_segments, data.size(1))
    segment_ids = segment_ids.unsqueeze(-1).expand_as(data)
    result = data.new_full(result_shape, 0)
    count = data.new_full(result_shape, 0)
    result.scatter_add_(0, segment_ids, data)
    count.scatter_add_(0, segment_ids, torch.ones_like(data))
    return result / count.clamp(min=1)


class E_GCL_vel(nn.Module):
    def __init__(self, input_nf, output_nf, hidden_nf, act_fn=nn.SiLU(), residual=True):
        super().__init__()
        self.residual = residual
        self.edge_mlp = nn.Sequential(nn.Linear(input_nf * 2 + 1, hidden_nf), act_fn,
                                      nn.Linear(hidden_nf, hidden_nf), act_fn)
        self.node_mlp = nn.Sequential(nn.Linear(hidden_nf + input_nf, hidden_nf), act_fn,
                                      nn.Linear(hidden_nf, output_nf))
        layer = nn.Linear(hidden_nf, 1, bias=False)
        torch.nn.init.xavier_uniform_(layer.weight, gain=0.001)
        self.coord_mlp = nn.Sequential(nn.Linear(hidden_nf, hidden_nf), act_fn, layer)
        self.coord_mlp_vel = nn.Sequential(nn.Linear(input_nf, hidden_nf), act_fn, nn.Linear(hidden_nf, 1))

    def edge_model(self, source, target, radial):
        return self.edge_mlp(torch.cat([source, target, radial], dim=1))

    def node_model(self, x, edge_index, edge_attr):
        row, col = edge_index
        agg = unsorted_segment_sum(edge_attr, row, num_segments=x.size(0))
        out = self.node_mlp(torch.cat([x, agg], dim=1))
        if self.residual:
            out = x + out
        return out

    def coord_model(self, coord, edge_index, coord_diff, edge_feat):
        row, col = edge_index
        trans = coord_diff * self.coord_mlp(edge_feat)
        trans = torch.clamp(trans, min=-100, max=100)  # this is never activated but just in case it explosed it may save the train
        agg = unsorted_segment_mean(trans, row, num_segments=coord.size(0))
        return coord + agg

    def coord2radial(self, edge_index, coord):
        row, col = edge_index
        coord_diff = coord[row] - coord[col]
        radial = (coord_diff ** 2).sum(-1, keepdim=True)
        return radial, coord_diff

    def forward(self, h, edge_index, coord, vel):
        row, col = edge_index
        radial, coord_diff = self.coord2radial(edge_index, coord)
        edge_feat = self.edge_model(h[row], h[col], radial)
        coord = self.coord_model(coord, edge_index, coord_diff, edge_feat)
        coord = coord + self.coord_mlp_vel(h) * vel
        h = self.node_model(h, edge_index, edge_feat)
        return h, coord


class EGNN_vel(nn.Module):
    def __init__(self, in_node_nf, hidden_nf, n_layers=3):
        super().__init__()
        self.embedding = nn.Linear(in_node_nf, hidden_nf)
        self.layers = nn.ModuleList([E_GCL_vel(hidden_nf, hidden_nf, hidden_nf) for _ in range(n_layers)])

    def forward(self, h, x, edges, vel):
        h = self.embedding(h)
        for layer in self.layers:
            h, x = layer(h, edges, x, vel)
        return x


def get_edges_batch(n_nodes, batch_size):
    pairs = torch.combinations(torch.arange(n_nodes), r=2)
    rows = torch.cat([pairs[:, 0], pairs[:, 1]])
    cols = torch.cat([pairs[:, 1], pairs[:, 0]])
    offsets = (torch.arange(batch_size) * n_nodes).repeat_interleave(len(rows))
    return [rows.repeat(batch_size) + offsets, cols.repeat(batch_size) + offsets]


class CoordMLP(nn.Module):
    """A non-equivariant baseline: all positions and velocities in, all positions out."""

    def __init__(self, hidden_nf):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_NODES * 7, hidden_nf), nn.SiLU(), nn.Linear(hidden_nf, N_NODES * 3))

    def forward(self, h, x, edges, vel):
        inp = torch.cat([x.view(-1, N_NODES * 3), vel.view(-1, N_NODES * 3), h[:, 1].view(-1, N_NODES)], dim=1)
        return x + self.net(inp).view(-1, 3)


def batch_inputs(x0, v0, charges):
    b = x0.shape[0]
    x = x0.reshape(b * N_NODES, 3)
    vel = v0.reshape(b * N_NODES, 3)
    nodes = torch.sqrt(torch.sum(vel ** 2, dim=1)).unsqueeze(1).detach()
    h = torch.cat([nodes, charges.reshape(-1, 1)], dim=1)
    return h, x, get_edges_batch(N_NODES, b), vel


x0_train, v0_train, c_train, x1_train = simulate(200)
x0_test, v0_test, c_test, x1_test = simulate(100)
edges = get_edges_batch(N_NODES, 2)
print(f"edges per graph {len(edges[0]) // 2}, train {tuple(x0_train.shape)}, test {tuple(x0_test.shape)}")

Q, R = torch.linalg.qr(torch.randn(3, 3))
Q = Q * torch.sign(torch.diagonal(R))
shift = torch.randn(1, 3)
print(f"rotation orthogonal {torch.allclose(Q.T @ Q, torch.eye(3), atol=1e-5)}")

results = {}
for name, model in [("egnn", EGNN_vel(2, 32, n_layers=3)), ("mlp", CoordMLP(64))]:
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3, weight_decay=1e-12)
    loss_mse = nn.MSELoss()
    for epoch in range(1, 31):
        perm = torch.randperm(x0_train.shape[0])
        for i in range(0, x0_train.shape[0], 50):
            idx = perm[i:i + 50]
            h, x, batch_edges, vel = batch_inputs(x0_train[idx], v0_train[idx], c_train[idx])
            loss = loss_mse(model(h, x, batch_edges, vel), x1_train[idx].reshape(-1, 3))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if epoch % 10 == 0:
            print(f"{name} epoch {epoch}: train mse {loss.item():.4f}")
    with torch.no_grad():
        h, x, batch_edges, vel = batch_inputs(x0_test, v0_test, c_test)
        pred = model(h, x, batch_edges, vel)
        test_mse = loss_mse(pred, x1_test.reshape(-1, 3)).item()
        pred_transformed = model(h, x @ Q + shift, batch_edges, vel @ Q)
        deviation = (pred_transformed - (pred @ Q + shift)).abs().max().item()
    print(f"{name}: test mse {test_mse:.4f}, max deviation under rotation+translation {deviation:.2e}")
    results[name] = (test_mse, deviation)

static_mse = nn.functional.mse_loss(x0_test, x1_test).item()
print(f"FINAL egnn_mse={results['egnn'][0]:.4f} mlp_mse={results['mlp'][0]:.4f} static_mse={static_mse:.4f} "
      f"egnn_equiv_dev={results['egnn'][1]:.4f} mlp_equiv_dev={results['mlp'][1]:.4f}")
