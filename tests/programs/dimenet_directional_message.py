"""DimeNet (Gasteiger et al., ICLR 2020) in the layout of PyG's ``torch_geometric.nn.models.DimeNet`` and
gasteigerjo/dimenet, at toy size, fitting energies and forces of a synthetic three-body potential.

Molecules of six atoms (two species) are placed at random in a small box (NumPy, rejection of close
pairs). The radius graph is built as ``radius_graph`` does it, from pairwise ``torch.cdist`` distances
masked by ``batch[:, None] == batch[None, :]``, the cutoff and the diagonal, with ``nonzero()`` giving
``edge_index = (j, i)`` (source, target). The triplets k->j->i come from PyG's ``triplets`` without
``SparseTensor``: incoming edges grouped by target with ``bincount`` + ``cumsum`` pointers, expanded by
``repeat_interleave`` and a local ``arange`` offset, ``i == k`` removed by a mask; they must equal a
brute-force Python loop over edge pairs. Angles are ``torch.atan2(torch.cross(pos_ji, pos_kj,
dim=1).norm(dim=-1), (pos_ji * pos_kj).sum(dim=-1))``.

The model has PyG's pieces: ``Envelope`` (the p = 6 polynomial), ``BesselBasisLayer`` whose ``freq``
Parameter is filled by ``torch.arange(1, n + 1, out=self.freq).mul_(PI)`` under ``torch.no_grad()``, a
``SphericalBasisLayer`` simplified to Legendre polynomials (by their recurrence) of cos(angle) times the
enveloped radial Bessel basis of d_kj, ``EmbeddingBlock`` on ``torch.cat([x[i], x[j], rbf], dim=-1)``,
``InteractionBlock``s (``lin_rbf``/``lin_sbf`` gating, ``x_kj[idx_kj] * sbf``, aggregation into edges by
``index_add_``, ``ResidualLayer``s, SiLU), and ``OutputBlock``s aggregating edges into atoms by
``scatter_add_`` with an expanded index; the energy per molecule by ``index_add``. Forces are
``-torch.autograd.grad(E.sum(), pos, create_graph=True)[0]``, and training on
``mse(E) + rho * mse(F)`` with Adam runs the double backward through every op above.

Checked: the triplet sets agree; the energy is invariant (and the forces equivariant) under a random
rotation (``torch.linalg.qr`` with the sign fixed and ``torch.linalg.det``) plus a translation; the
forces of a float64 copy (``copy.deepcopy(model).double()``) equal central finite differences of its
energy; the net force on each molecule vanishes; the force-matched training loss falls.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

PI = math.pi
NUM_MOLECULES, NUM_ATOMS, BOX, CUTOFF = 12, 6, 2.2, 2.0
HIDDEN, NUM_RADIAL, NUM_SPHERICAL, NUM_BLOCKS = 16, 6, 4, 2


# ----------------------------------------------------------------------------------- data
def random_molecule():
    coords = []
    while len(coords) < NUM_ATOMS:
        p = np.random.uniform(0.0, BOX, size=3)
        if all(np.linalg.norm(p - q) > 0.9 for q in coords):
            coords.append(p)
    return np.stack(coords)


def radius_graph(pos, r, batch):
    dist = torch.cdist(pos, pos)
    adj = (batch[:, None] == batch[None, :]) & (dist < r)
    adj.fill_diagonal_(False)
    col, row = adj.nonzero().t()  # grouped by target i; row = source j
    return torch.stack([row, col], dim=0)


def triplets(edge_index, num_nodes):
    row, col = edge_index  # j->i
    deg = torch.bincount(col, minlength=num_nodes)
    ptr = torch.cat([deg.new_zeros(1), deg.cumsum(0)])
    num_triplets = deg[row]  # for edge j->i, every edge k->j
    idx_ji = torch.arange(row.size(0)).repeat_interleave(num_triplets)
    start = (num_triplets.cumsum(0) - num_triplets).repeat_interleave(num_triplets)
    local = torch.arange(int(num_triplets.sum())) - start
    idx_kj = ptr[row].repeat_interleave(num_triplets) + local
    idx_i, idx_j, idx_k = col[idx_ji], row[idx_ji], row[idx_kj]
    mask = idx_i != idx_k  # Remove i == k triplets.
    return col, row, idx_i[mask], idx_j[mask], idx_k[mask], idx_kj[mask], idx_ji[mask]


def triplets_loop(edge_index):
    row, col = edge_index.tolist()
    found = set()
    for e1 in range(len(row)):  # k->j
        for e2 in range(len(row)):  # j->i
            if col[e1] == row[e2] and row[e1] != col[e2]:
                found.add((row[e1], row[e2], col[e2], e1, e2))
    return found


def target_energy(pos, z, edge_index, idx_i, idx_j, idx_k, batch):
    """A smooth Morse pair term plus an angular three-body term, both cut off at CUTOFF."""
    j, i = edge_index
    d = (pos[i] - pos[j]).norm(dim=-1)
    fc = 0.5 * (torch.cos(PI * d / CUTOFF) + 1.0)
    r0 = 1.0 + 0.15 * (z[i] + z[j]).to(pos.dtype)
    pair = 0.5 * ((1 - torch.exp(-1.5 * (d - r0))) ** 2 - 1.0) * fc
    v1, v2 = pos[idx_i] - pos[idx_j], pos[idx_k] - pos[idx_j]
    d1, d2 = v1.norm(dim=-1), v2.norm(dim=-1)
    cos = (v1 * v2).sum(-1) / (d1 * d2)
    fc3 = 0.25 * (torch.cos(PI * d1 / CUTOFF) + 1) * (torch.cos(PI * d2 / CUTOFF) + 1)
    three = 0.3 * (cos + 0.3) ** 2 * fc3
    per_atom = torch.zeros(pos.size(0), dtype=pos.dtype)
    per_atom.index_add_(0, i, pair).index_add_(0, idx_j, three)
    return torch.zeros(int(batch.max()) + 1, dtype=pos.dtype).index_add(0, batch, per_atom)


# ----------------------------------------------------------------------------------- model
class Envelope(nn.Module):
    def __init__(self, exponent):
        super().__init__()
        self.p = exponent + 1
        self.a = -(self.p + 1) * (self.p + 2) / 2
        self.b = self.p * (self.p + 2)
        self.c = -self.p * (self.p + 1) / 2

    def forward(self, x):
        p, a, b, c = self.p, self.a, self.b, self.c
        x_pow_p0 = x.pow(p - 1)
        x_pow_p1 = x_pow_p0 * x
        x_pow_p2 = x_pow_p1 * x
        return (1.0 / x + a * x_pow_p0 + b * x_pow_p1 + c * x_pow_p2) * (x < 1.0).to(x.dtype)


class BesselBasisLayer(nn.Module):
    def __init__(self, num_radial, cutoff=5.0, envelope_exponent=5):
        super().__init__()
        self.cutoff = cutoff
        self.envelope = Envelope(envelope_exponent)
        self.freq = nn.Parameter(torch.empty(num_radial))
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            torch.arange(1, self.freq.numel() + 1, out=self.freq).mul_(PI)
        self.freq.requires_grad_()

    def forward(self, dist):
        dist = dist.unsqueeze(-1) / self.cutoff
        return self.envelope(dist) * (self.freq * dist).sin()


class SphericalBasisLayer(nn.Module):
    def __init__(self, num_spherical, num_radial, cutoff=5.0, envelope_exponent=5):
        super().__init__()
        self.num_spherical = num_spherical
        self.num_radial = num_radial
        self.cutoff = cutoff
        self.envelope = Envelope(envelope_exponent)
        self.register_buffer("freq", torch.arange(1, num_radial + 1, dtype=torch.float) * PI)

    def legendre(self, x):
        out = [torch.ones_like(x), x]
        for n in range(1, self.num_spherical - 1):
            out.append(((2 * n + 1) * x * out[n] - n * out[n - 1]) / (n + 1))
        return torch.stack(out[: self.num_spherical], dim=1)

    def forward(self, dist, angle, idx_kj):
        dist = dist / self.cutoff
        rbf = self.envelope(dist).unsqueeze(-1) * torch.sin(self.freq * dist.unsqueeze(-1))
        cbf = self.legendre(torch.cos(angle))
        n, k = self.num_spherical, self.num_radial
        return (rbf[idx_kj].view(-1, 1, k) * cbf.view(-1, n, 1)).view(-1, n * k)


class EmbeddingBlock(nn.Module):
    def __init__(self, num_radial, hidden_channels, act):
        super().__init__()
        self.act = act
        self.emb = nn.Embedding(95, hidden_channels)
        self.lin_rbf = nn.Linear(num_radial, hidden_channels)
        self.lin = nn.Linear(3 * hidden_channels, hidden_channels)
        self.emb.weight.data.uniform_(-math.sqrt(3), math.sqrt(3))

    def forward(self, x, rbf, i, j):
        x = self.emb(x)
        rbf = self.act(self.lin_rbf(rbf))
        return self.act(self.lin(torch.cat([x[i], x[j], rbf], dim=-1)))


class ResidualLayer(nn.Module):
    def __init__(self, hidden_channels, act):
        super().__init__()
        self.act = act
        self.lin1 = nn.Linear(hidden_channels, hidden_channels)
        self.lin2 = nn.Linear(hidden_channels, hidden_channels)

    def forward(self, x):
        return x + self.act(self.lin2(self.act(self.lin1(x))))


class InteractionBlock(nn.Module):
    def __init__(self, hidden_channels, num_bilinear, num_spherical, num_radial, act):
        super().__init__()
        self.act = act
        self.lin_rbf = nn.Linear(num_radial, hidden_channels, bias=False)
        self.lin_sbf = nn.Linear(num_spherical * num_radial, num_bilinear, bias=False)
        self.lin_kj = nn.Linear(hidden_channels, hidden_channels)
        self.lin_ji = nn.Linear(hidden_channels, hidden_channels)
        self.lin_down = nn.Linear(hidden_channels, num_bilinear, bias=False)
        self.lin_up = nn.Linear(num_bilinear, hidden_channels, bias=False)
        self.layers_before_skip = nn.ModuleList([ResidualLayer(hidden_channels, act)])
        self.lin = nn.Linear(hidden_channels, hidden_channels)
        self.layers_after_skip = nn.ModuleList([ResidualLayer(hidden_channels, act)])

    def forward(self, x, rbf, sbf, idx_kj, idx_ji):
        x_ji = self.act(self.lin_ji(x))
        x_kj = self.act(self.lin_kj(x))
        x_kj = x_kj * self.lin_rbf(rbf)
        x_kj = self.act(self.lin_down(x_kj))
        x_kj = x_kj[idx_kj] * self.lin_sbf(sbf)
        x_kj = torch.zeros(x.size(0), x_kj.size(1), dtype=x_kj.dtype).index_add_(0, idx_ji, x_kj)
        x_kj = self.act(self.lin_up(x_kj))
        h = x_ji + x_kj
        for layer in self.layers_before_skip:
            h = layer(h)
        h = self.act(self.lin(h)) + x
        for layer in self.layers_after_skip:
            h = layer(h)
        return h


class OutputBlock(nn.Module):
    def __init__(self, num_radial, hidden_channels, out_channels, num_layers, act):
        super().__init__()
        self.act = act
        self.lin_rbf = nn.Linear(num_radial, hidden_channels, bias=False)
        self.lins = nn.ModuleList([nn.Linear(hidden_channels, hidden_channels) for _ in range(num_layers)])
        self.lin = nn.Linear(hidden_channels, out_channels, bias=False)

    def forward(self, x, rbf, i, num_nodes):
        x = self.lin_rbf(rbf) * x
        out = torch.zeros(num_nodes, x.size(1), dtype=x.dtype)
        out.scatter_add_(0, i.unsqueeze(-1).expand_as(x), x)
        for lin in self.lins:
            out = self.act(lin(out))
        return self.lin(out)


class DimeNet(nn.Module):
    def __init__(self, hidden_channels, out_channels, num_blocks, num_bilinear, num_spherical, num_radial,
                 cutoff=5.0, envelope_exponent=5, num_output_layers=2):
        super().__init__()
        self.cutoff = cutoff
        act = nn.SiLU()
        self.rbf = BesselBasisLayer(num_radial, cutoff, envelope_exponent)
        self.sbf = SphericalBasisLayer(num_spherical, num_radial, cutoff, envelope_exponent)
        self.emb = EmbeddingBlock(num_radial, hidden_channels, act)
        self.output_blocks = nn.ModuleList([
            OutputBlock(num_radial, hidden_channels, out_channels, num_output_layers, act)
            for _ in range(num_blocks + 1)
        ])
        self.interaction_blocks = nn.ModuleList([
            InteractionBlock(hidden_channels, num_bilinear, num_spherical, num_radial, act)
            for _ in range(num_blocks)
        ])

    def forward(self, z, pos, batch):
        edge_index = radius_graph(pos, r=self.cutoff, batch=batch)
        i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji = triplets(edge_index, num_nodes=z.size(0))

        # Calculate distances.
        dist = (pos[i] - pos[j]).pow(2).sum(dim=-1).sqrt()

        # Calculate angles.
        pos_i = pos[idx_i]
        pos_ji, pos_ki = pos[idx_j] - pos_i, pos[idx_k] - pos_i
        a = (pos_ji * pos_ki).sum(dim=-1)
        b = torch.cross(pos_ji, pos_ki, dim=1).norm(dim=-1)
        angle = torch.atan2(b, a)

        rbf = self.rbf(dist)
        sbf = self.sbf(dist, angle, idx_kj)

        # Embedding block.
        x = self.emb(z, rbf, i, j)
        P = self.output_blocks[0](x, rbf, i, num_nodes=pos.size(0))

        # Interaction blocks.
        for interaction_block, output_block in zip(self.interaction_blocks, self.output_blocks[1:]):
            x = interaction_block(x, rbf, sbf, idx_kj, idx_ji)
            P = P + output_block(x, rbf, i, num_nodes=pos.size(0))

        num_graphs = int(batch.max()) + 1
        return torch.zeros(num_graphs, P.size(1), dtype=P.dtype).index_add(0, batch, P).squeeze(-1)


def energy_and_forces(model, z, pos, batch, create_graph):
    pos = pos.detach().requires_grad_(True)
    energy = model(z, pos, batch)
    forces = -torch.autograd.grad(energy.sum(), pos, create_graph=create_graph)[0]
    return energy, forces


# ----------------------------------------------------------------------------------- main
coords = np.concatenate([random_molecule() for _ in range(NUM_MOLECULES)])
species = np.random.randint(0, 2, size=NUM_MOLECULES * NUM_ATOMS)
pos_all = torch.tensor(coords, dtype=torch.float)
z_all = torch.from_numpy(species).long() + 1  # H-like and C-like atomic numbers 1, 2
batch_all = torch.arange(NUM_MOLECULES).repeat_interleave(NUM_ATOMS)

edge_index = radius_graph(pos_all, CUTOFF, batch_all)
_, _, idx_i, idx_j, idx_k, idx_kj, idx_ji = triplets(edge_index, pos_all.size(0))
vectorized = set(zip(idx_k.tolist(), idx_j.tolist(), idx_i.tolist(), idx_kj.tolist(), idx_ji.tolist()))
looped = triplets_loop(edge_index)
print(f"graph: {pos_all.size(0)} atoms, {edge_index.size(1)} edges, {len(vectorized)} triplets")
print(f"triplets by index tricks equal the loop: {vectorized == looped}")

pos64 = pos_all.double().requires_grad_(True)
E_true = target_energy(pos64, z_all, edge_index, idx_i, idx_j, idx_k, batch_all)
F_true = -torch.autograd.grad(E_true.sum(), pos64)[0]
E_true, F_true = E_true.detach().float(), F_true.float()
e_mean, e_std = E_true.mean(), E_true.std()
print(f"target energies: mean {e_mean.item():.4f} std {e_std.item():.4f}")

n_train = 8 * NUM_ATOMS
train = slice(0, n_train)
test = slice(n_train, None)
batch_train = batch_all[train]
batch_test = batch_all[test] - 8

model = DimeNet(hidden_channels=HIDDEN, out_channels=1, num_blocks=NUM_BLOCKS, num_bilinear=8,
                num_spherical=NUM_SPHERICAL, num_radial=NUM_RADIAL, cutoff=CUTOFF, envelope_exponent=5)
print(f"parameters: {sum(p.numel() for p in model.parameters())}")

# Rotation + translation invariance (equivariance of forces).
q, r = torch.linalg.qr(torch.randn(3, 3, dtype=torch.double))
q = q * torch.sign(torch.diagonal(r))
if torch.linalg.det(q) < 0:
    q[:, 0] = -q[:, 0]
rot = q.float()
shift = torch.randn(1, 3)
E0, F0 = energy_and_forces(model, z_all, pos_all, batch_all, create_graph=False)
E1, F1 = energy_and_forces(model, z_all, pos_all @ rot.T + shift, batch_all, create_graph=False)
rot_energy_err = (E1 - E0).abs().max().item()
rot_force_err = (F1 - F0 @ rot.T).abs().max().item()
print(f"rotation: max |dE| {rot_energy_err:.2e}, max |dF| {rot_force_err:.2e}")
net_force = F0.view(NUM_MOLECULES, NUM_ATOMS, 3).sum(1).abs().max().item()
print(f"net force per molecule: {net_force:.2e}")

# Forces against central finite differences of the energy, in float64.
model64 = copy.deepcopy(model).double()
pos_fd = pos_all[:NUM_ATOMS].double()
z_fd, batch_fd = z_all[:NUM_ATOMS], batch_all[:NUM_ATOMS]
_, F_ad = energy_and_forces(model64, z_fd, pos_fd, batch_fd, create_graph=False)
h = 1e-5
fd_err = 0.0
with torch.no_grad():
    for atom in range(NUM_ATOMS):
        for axis in range(3):
            plus, minus = pos_fd.clone(), pos_fd.clone()
            plus[atom, axis] += h
            minus[atom, axis] -= h
            f_fd = -(model64(z_fd, plus, batch_fd) - model64(z_fd, minus, batch_fd)).sum() / (2 * h)
            fd_err = max(fd_err, abs(f_fd.item() - F_ad[atom, axis].item()))
print(f"forces vs finite differences (float64): max abs err {fd_err:.2e}")

# Force-matched training.
rho = 10.0
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
E_target = (E_true - e_mean) / e_std
F_target = F_true / e_std


def loss_on(part, molecules, batch):
    energy, forces = energy_and_forces(model, z_all[part], pos_all[part], batch, create_graph=model.training)
    e_loss = F.mse_loss(energy, E_target[molecules])
    f_loss = F.mse_loss(forces, F_target[part])
    return e_loss + rho * f_loss, e_loss, f_loss


losses = []
for step in range(60):
    model.train()
    optimizer.zero_grad()
    loss, e_loss, f_loss = loss_on(train, slice(0, 8), batch_train)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % 20 == 0:
        print(f"step {step:3d}  loss {loss.item():.4f}  energy {e_loss.item():.4f}  forces {f_loss.item():.4f}")

model.eval()
test_loss, test_e, test_f = loss_on(test, slice(8, None), batch_test)
first, last = float(np.mean(losses[:5])), float(np.mean(losses[-5:]))
print(f"train loss {first:.4f} -> {last:.4f}; test loss {test_loss.item():.4f}")
print(
    f"FINAL triplets_equal={int(vectorized == looped)} rot_energy_err={rot_energy_err:.3e} "
    f"rot_force_err={rot_force_err:.3e} fd_err={fd_err:.3e} net_force={net_force:.3e} "
    f"loss_ratio={last / first:.4f} test_loss={test_loss.item():.4f}"
)
