"""SchNet (Schütt et al. 2017/2018) in the PyG ``SchNet`` / schnetpack layout, learning a synthetic
molecular potential with force matching.

Molecules are small random 3-D point sets with three atom types whose energy is a sum of Morse pair
terms (type-dependent depth and equilibrium distance); labels are that energy and its analytic forces,
computed in NumPy. The model: ``nn.Embedding`` atom types, an all-pairs ``edge_index`` per molecule
built with ``torch.meshgrid(indexing='ij')`` (checked against ``torch.combinations`` in both
directions), distances ``(pos[row] - pos[col]).norm(dim=-1)`` (checked against ``torch.cdist``),
``GaussianSmearing`` (``torch.linspace`` offsets as a buffer, ``torch.exp(coeff * torch.pow(dist, 2))``),
the cosine cutoff ``0.5 * (torch.cos(dist * PI / cutoff) + 1.0)``, continuous-filter convolutions
(``CFConv``: filter network ``Linear`` + ``ShiftedSoftplus`` (``F.softplus(x) - self.shift``) +
``Linear``, messages ``x[col] * W`` summed by ``torch.zeros_like(x).index_add_(0, row, msg)``), the
atomwise head, energy de-standardised by ``mean``/``std`` buffers, and the per-molecule readout by
``index_add_`` over a ``batch`` vector (checked against ``scatter_add_``).

Training matches forces: ``pos.requires_grad_()``, ``forces = -torch.autograd.grad(energy.sum(), pos,
create_graph=True)[0]``, loss ``rho * mse(E) + (1 - rho) * mse(F)`` backpropagated through the
gradient (double backward through norm, softplus, cos, exp, index_add_), ``optim.AdamW``,
``lr_scheduler.ReduceLROnPlateau`` on the validation loss. Checked: energy and force MAE on held-out
molecules against the mean-energy and zero-force baselines, and central finite differences of the
predicted energy (float64 copy of the model) against the predicted forces.
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
rng = np.random.default_rng(seed)
PI = math.pi

# ----------------------------------------------------------------------------- the potential
N_TYPES = 3
DEPTH = np.array([1.0, 1.4, 0.7])
RADIUS = np.array([0.6, 0.75, 0.5])
ALPHA = 1.6


def morse_energy_forces(types, pos):
    """Morse pair potential: E = sum_{i<j} D_ij ((1 - exp(-a (r - r0)))^2 - 1), F = -dE/dpos."""
    diff = pos[:, None, :] - pos[None, :, :]
    r = np.linalg.norm(diff, axis=-1)
    np.fill_diagonal(r, 1.0)
    depth = np.sqrt(DEPTH[types][:, None] * DEPTH[types][None, :])
    r0 = RADIUS[types][:, None] + RADIUS[types][None, :]
    e = np.exp(-ALPHA * (r - r0))
    pair = depth * ((1 - e) ** 2 - 1)
    np.fill_diagonal(pair, 0.0)
    dpair_dr = depth * 2 * (1 - e) * ALPHA * e
    np.fill_diagonal(dpair_dr, 0.0)
    forces = -(dpair_dr / r)[:, :, None] * diff
    return pair.sum() / 2, forces.sum(1)


def make_molecule():
    n = int(rng.integers(4, 7))
    types = rng.integers(0, N_TYPES, n)
    pos = np.zeros((n, 3))
    for i in range(1, n):
        while True:
            candidate = pos[rng.integers(0, i)] + rng.normal(0, 1.0, 3)
            if np.linalg.norm(pos[:i] - candidate, axis=1).min() > 0.9:
                pos[i] = candidate
                break
    energy, forces = morse_energy_forces(types, pos)
    return types, pos - pos.mean(0), energy, forces


molecules = [make_molecule() for _ in range(260)]
train_set, val_set, test_set = molecules[:180], molecules[180:210], molecules[210:]


def collate(mols):
    """Concatenate molecules into one graph, as PyG's ``Batch.from_data_list`` does."""
    z = torch.cat([torch.from_numpy(m[0]) for m in mols]).long()
    pos = torch.cat([torch.from_numpy(m[1]) for m in mols]).float()
    energy = torch.tensor([m[2] for m in mols], dtype=torch.float32)
    forces = torch.cat([torch.from_numpy(m[3]) for m in mols]).float()
    batch = torch.cat([torch.full((len(m[0]),), i, dtype=torch.long) for i, m in enumerate(mols)])
    return z, pos, energy, forces, batch


def all_pairs_edge_index(batch):
    """Every ordered pair of distinct atoms in the same molecule (a radius graph with r = infinity)."""
    counts = torch.bincount(batch)
    starts = torch.cumsum(counts, 0) - counts
    rows, cols = [], []
    for start, n in zip(starts.tolist(), counts.tolist()):
        i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        keep = i != j
        rows.append(i[keep] + start)
        cols.append(j[keep] + start)
    return torch.stack([torch.cat(rows), torch.cat(cols)], dim=0)


# ----------------------------------------------------------------------------- the model
class GaussianSmearing(nn.Module):
    def __init__(self, start=0.0, stop=5.0, num_gaussians=50):
        super().__init__()
        offset = torch.linspace(start, stop, num_gaussians)
        self.coeff = -0.5 / (offset[1] - offset[0]).item() ** 2
        self.register_buffer("offset", offset)

    def forward(self, dist):
        dist = dist.view(-1, 1) - self.offset.view(1, -1)
        return torch.exp(self.coeff * torch.pow(dist, 2))


class ShiftedSoftplus(nn.Module):
    def __init__(self):
        super().__init__()
        self.shift = torch.log(torch.tensor(2.0)).item()

    def forward(self, x):
        return F.softplus(x) - self.shift


class CFConv(nn.Module):
    def __init__(self, in_channels, out_channels, num_filters, filter_net, cutoff):
        super().__init__()
        self.lin1 = nn.Linear(in_channels, num_filters, bias=False)
        self.lin2 = nn.Linear(num_filters, out_channels)
        self.nn = filter_net
        self.cutoff = cutoff
        self.reset_parameters()

    def reset_parameters(self):
        torch.nn.init.xavier_uniform_(self.lin1.weight)
        torch.nn.init.xavier_uniform_(self.lin2.weight)
        self.lin2.bias.data.fill_(0)

    def forward(self, x, edge_index, edge_weight, edge_attr):
        C = 0.5 * (torch.cos(edge_weight * PI / self.cutoff) + 1.0)
        W = self.nn(edge_attr) * C.view(-1, 1)
        x = self.lin1(x)
        row, col = edge_index
        msg = x[col] * W
        x = torch.zeros_like(x).index_add_(0, row, msg)
        return self.lin2(x)


class InteractionBlock(nn.Module):
    def __init__(self, hidden_channels, num_gaussians, num_filters, cutoff):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(num_gaussians, num_filters),
            ShiftedSoftplus(),
            nn.Linear(num_filters, num_filters),
        )
        self.conv = CFConv(hidden_channels, hidden_channels, num_filters, self.mlp, cutoff)
        self.act = ShiftedSoftplus()
        self.lin = nn.Linear(hidden_channels, hidden_channels)
        self.reset_parameters()

    def reset_parameters(self):
        torch.nn.init.xavier_uniform_(self.mlp[0].weight)
        self.mlp[0].bias.data.fill_(0)
        torch.nn.init.xavier_uniform_(self.mlp[2].weight)
        self.mlp[2].bias.data.fill_(0)
        self.conv.reset_parameters()
        torch.nn.init.xavier_uniform_(self.lin.weight)
        self.lin.bias.data.fill_(0)

    def forward(self, x, edge_index, edge_weight, edge_attr):
        x = self.conv(x, edge_index, edge_weight, edge_attr)
        x = self.act(x)
        x = self.lin(x)
        return x


class SchNet(nn.Module):
    def __init__(self, hidden_channels=32, num_filters=32, num_interactions=2, num_gaussians=25, cutoff=5.0,
                 mean=None, std=None):
        super().__init__()
        self.cutoff = cutoff
        self.embedding = nn.Embedding(N_TYPES, hidden_channels)
        self.distance_expansion = GaussianSmearing(0.0, cutoff, num_gaussians)
        self.interactions = nn.ModuleList(
            [InteractionBlock(hidden_channels, num_gaussians, num_filters, cutoff) for _ in range(num_interactions)]
        )
        self.lin1 = nn.Linear(hidden_channels, hidden_channels // 2)
        self.act = ShiftedSoftplus()
        self.lin2 = nn.Linear(hidden_channels // 2, 1)
        self.register_buffer("mean", torch.tensor(0.0 if mean is None else mean))
        self.register_buffer("std", torch.tensor(1.0 if std is None else std))

    def forward(self, z, pos, batch):
        edge_index = all_pairs_edge_index(batch)
        row, col = edge_index
        edge_weight = (pos[row] - pos[col]).norm(dim=-1)
        edge_attr = self.distance_expansion(edge_weight)

        h = self.embedding(z)
        for interaction in self.interactions:
            h = h + interaction(h, edge_index, edge_weight, edge_attr)

        h = self.lin1(h)
        h = self.act(h)
        h = self.lin2(h)
        h = h * self.std + self.mean

        num_graphs = int(batch.max()) + 1
        out = torch.zeros(num_graphs, 1, dtype=h.dtype, device=h.device).index_add_(0, batch, h)
        return out.squeeze(-1)


# ----------------------------------------------------------------------------- graph checks
z, pos, energy, forces, batch = collate(train_set[:4])
edge_index = all_pairs_edge_index(batch)
combos = []
for m in range(4):
    atoms = (batch == m).nonzero().squeeze(1)
    pairs = torch.combinations(atoms, r=2)
    combos.append(torch.cat([pairs, pairs.flip(1)], dim=0))
combos = torch.cat(combos)
same_pairs = sorted(map(tuple, combos.tolist())) == sorted(map(tuple, edge_index.t().tolist()))
row, col = edge_index
dist_norm = (pos[row] - pos[col]).norm(dim=-1)
dist_cdist = torch.cdist(pos, pos)[row, col]
per_atom = torch.arange(len(z), dtype=torch.float32)
scattered = torch.zeros(4).scatter_add_(0, batch, per_atom)
indexed = torch.zeros(4).index_add_(0, batch, per_atom)
print(f"{len(z)} atoms in 4 molecules, {edge_index.size(1)} directed edges; combinations agree {same_pairs}, "
      f"cdist agrees {torch.allclose(dist_norm, dist_cdist, atol=1e-5)}, "
      f"scatter_add_ agrees {torch.equal(scattered, indexed)}")

# ----------------------------------------------------------------------------- training
train_energy = torch.tensor([m[2] / len(m[0]) for m in train_set])
model = SchNet(mean=train_energy.mean().item(), std=train_energy.std().item())
print(f"SchNet with {sum(p.numel() for p in model.parameters())} parameters, buffers "
      f"{[name for name, _ in model.named_buffers()]}")
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=2)
rho = 0.1
BATCH_SIZE = 20


def predict(mols, create_graph):
    z, pos, energy, forces, batch = collate(mols)
    pos.requires_grad_()
    pred_energy = model(z, pos, batch)
    pred_forces = -torch.autograd.grad(pred_energy.sum(), pos, create_graph=create_graph)[0]
    return pred_energy, pred_forces, energy, forces


def evaluate(mols):
    model.eval()
    pred_energy, pred_forces, energy, forces = predict(mols, create_graph=False)
    model.train()
    return (pred_energy - energy).abs().mean().item(), (pred_forces - forces).abs().mean().item()


for epoch in range(1, 19):
    order = torch.randperm(len(train_set)).tolist()
    total = 0.0
    for start in range(0, len(order), BATCH_SIZE):
        mols = [train_set[i] for i in order[start:start + BATCH_SIZE]]
        pred_energy, pred_forces, energy, forces = predict(mols, create_graph=True)
        loss = rho * F.mse_loss(pred_energy, energy) + (1 - rho) * F.mse_loss(pred_forces, forces)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(mols)
    val_e, val_f = evaluate(val_set)
    scheduler.step(rho * val_e + (1 - rho) * val_f)
    if epoch % 3 == 0:
        print(f"epoch {epoch:2d} train loss {total / len(train_set):.4f} val energy MAE {val_e:.4f} "
              f"force MAE {val_f:.4f} lr {optimizer.param_groups[0]['lr']:.2e}")

energy_mae, force_mae = evaluate(test_set)
test_energy = torch.tensor([m[2] for m in test_set])
test_atoms = torch.tensor([len(m[0]) for m in test_set], dtype=torch.float32)
baseline_energy_mae = (test_energy - train_energy.mean() * test_atoms).abs().mean().item()
baseline_force_mae = torch.cat([torch.from_numpy(m[3]) for m in test_set]).abs().mean().item()
print(f"test energy MAE {energy_mae:.4f} (per-atom mean baseline {baseline_energy_mae:.4f}), "
      f"force MAE {force_mae:.4f} (zero-force baseline {baseline_force_mae:.4f})")
assert energy_mae < baseline_energy_mae and force_mae < baseline_force_mae

# the predicted forces are the negative gradient of the predicted energy: central differences in float64
model64 = copy.deepcopy(model).double().eval()
z, pos, _, _, batch = collate(test_set[:1])
pos = pos.double().requires_grad_()
forces64 = -torch.autograd.grad(model64(z, pos, batch).sum(), pos)[0]
eps = 1e-5
finite_difference = torch.zeros_like(pos)
with torch.no_grad():
    for atom in range(pos.size(0)):
        for axis in range(3):
            shifted = pos.detach().clone()
            shifted[atom, axis] += eps
            e_plus = model64(z, shifted, batch).sum()
            shifted[atom, axis] -= 2 * eps
            e_minus = model64(z, shifted, batch).sum()
            finite_difference[atom, axis] = -(e_plus - e_minus) / (2 * eps)
fd_error = (finite_difference - forces64).abs().max().item()
fd_ok = torch.allclose(finite_difference, forces64, rtol=1e-5, atol=1e-6)
print(f"finite differences of the energy match the forces {fd_ok} (max error {fd_error:.2e})")
print(f"FINAL energy_mae={energy_mae:.4f} energy_mae_ratio={energy_mae / baseline_energy_mae:.4f} "
      f"force_mae={force_mae:.4f} force_mae_ratio={force_mae / baseline_force_mae:.4f} fd_ok={int(fd_ok)}")
