"""PaiNN (Schütt, Unke & Gastegger, ICML 2021) in schnetpack's layout (``schnetpack.representation.PaiNN``
with ``PaiNNInteraction``/``PaiNNMixing``, ``snn.Dense``, ``snn.scatter_add``, ``snn.replicate_module``,
``Atomwise`` + ``Forces``), learning a toy many-body potential from energies and forces.

Molecules are small random point clouds of two species (Z = 1, 6) collated schnetpack-style into one
batch (``idx_m``, all-pairs ``idx_i``/``idx_j`` offset by the atom counts' ``torch.cumsum``); labels are a
soft pair potential plus a three-body angular term and its analytic forces, computed in NumPy.
The model: ``r_ij = R[idx_j] - R[idx_i]``, ``torch.norm(r_ij, dim=1, keepdim=True)``, ``dir_ij = r_ij /
d_ij``, a sinc (Bessel) radial basis ``sin(d * freqs) / d`` with the ``torch.where(inputs == 0, ...)``
guard and a Gaussian one, times the ``cosine_cutoff`` (``0.5 * (torch.cos(...) + 1.0)``, ``*= (input <
cutoff).float()``); filters ``self.filter_net(phi_ij) * fcut[..., None]`` split per interaction with
``torch.split``; scalar features ``q = self.embedding(Z)[:, None]`` (N, 1, F) and vector features ``mu``
(N, 3, F) from ``torch.zeros``; ``PaiNNInteraction`` splits ``Wij * x[idx_j]`` into three by
``torch.split(x, self.n_atom_basis, dim=-1)``, ``dmu = dmuR * dir_ij[..., None] + dmumu * mu[idx_j]``,
summed by ``index_add``; ``PaiNNMixing``'s bias-free ``mu_channel_mix``, ``torch.sqrt(torch.sum(mu_V**2,
dim=-2, keepdim=True) + self.epsilon)`` and ``torch.sum(mu_V * mu_W, dim=1, keepdim=True)``. The energy
is ``Atomwise``'s per-atom MLP summed per molecule; forces ``-torch.autograd.grad([Epred], [R],
grad_outputs=[torch.ones_like(Epred)], create_graph=self.training)[0]``; loss ``0.01 * mse(E) + 0.99 *
mse(F)`` (schnetpack's ``ModelOutput`` weights) through the double backward, Adam + ``ReduceLROnPlateau``.

Checked: under a random orthogonal matrix (``torch.linalg.qr`` of a Gaussian, sign-fixed by the diagonal
of ``R``) ``mu`` and the forces rotate with the input while ``q`` and the energy do not change; a
translation leaves the energy unchanged; the predicted forces equal a central finite difference of the
energy (float64 copy); the force loss falls well below its start and below the zero-force baseline.
"""

import copy
import math
import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.init import xavier_uniform_, zeros_

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ----------------------------------------------------------------------------- the toy potential
def toy_energy_forces(Z, R):
    """E = sum_{i<j} A exp(-r/b) - C / (1 + r^2)^2  +  k sum_{j<k around i} cos(theta_jik) w_ij w_ik."""
    A, b, C, k = 3.0, 0.6, 1.0, 0.5
    scale = np.where(Z == 6, 1.2, 0.8)
    n = len(Z)
    E = 0.0
    G = np.zeros_like(R)
    for i in range(n):
        for j in range(i + 1, n):
            d = R[j] - R[i]
            r = np.linalg.norm(d)
            s = scale[i] * scale[j]
            E += s * (A * np.exp(-r / b) - C / (1 + r ** 2) ** 2)
            dE_dr = s * (-A / b * np.exp(-r / b) + 4 * C * r / (1 + r ** 2) ** 3)
            G[j] += dE_dr * d / r
            G[i] -= dE_dr * d / r
    # three-body term with smooth weights w = exp(-r^2 / 2)
    for i in range(n):
        for j in range(n):
            for m in range(j + 1, n):
                if i in (j, m):
                    continue
                u, v = R[j] - R[i], R[m] - R[i]
                ru, rv = np.linalg.norm(u), np.linalg.norm(v)
                cos = u @ v / (ru * rv)
                wu, wv = np.exp(-ru ** 2 / 2), np.exp(-rv ** 2 / 2)
                E += k * cos * wu * wv
                dcos_du = v / (ru * rv) - cos * u / ru ** 2
                dcos_dv = u / (ru * rv) - cos * v / rv ** 2
                gu = k * (dcos_du * wu * wv - cos * wv * u * wu)
                gv = k * (dcos_dv * wu * wv - cos * wu * v * wv)
                G[j] += gu
                G[m] += gv
                G[i] -= gu + gv
    return E, -G


def make_molecule(rng):
    n = rng.randint(4, 7)
    while True:
        R = rng.uniform(-1.3, 1.3, size=(n, 3))
        dist = np.linalg.norm(R[:, None] - R[None], axis=-1) + 10 * np.eye(n)
        if dist.min() > 0.7:
            break
    Z = rng.choice([1, 6], size=n)
    E, Fr = toy_energy_forces(Z, R)
    return {"_atomic_numbers": torch.tensor(Z), "_positions": torch.tensor(R, dtype=torch.float32),
            "energy": torch.tensor([E], dtype=torch.float32), "forces": torch.tensor(Fr, dtype=torch.float32)}


def _atoms_collate_fn(batch):
    """schnetpack.data.loader._atoms_collate_fn with an all-pairs neighbour list."""
    elem = batch[0]
    idx_keys = {"_idx_i", "_idx_j"}
    coll_batch = {}
    for key in elem:
        if key not in idx_keys:
            coll_batch[key] = torch.cat([d[key] for d in batch], 0)
    n_atoms = torch.tensor([d["_atomic_numbers"].shape[0] for d in batch])
    coll_batch["_n_atoms"] = n_atoms
    seg_m = torch.cumsum(n_atoms, dim=0)
    seg_m = torch.cat([torch.zeros((1,), dtype=seg_m.dtype), seg_m], dim=0)
    idx_m = torch.repeat_interleave(torch.arange(len(batch)), repeats=n_atoms, dim=0)
    coll_batch["_idx_m"] = idx_m
    idx_i, idx_j = [], []
    for m, n in enumerate(n_atoms.tolist()):
        ii, jj = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        keep = ii != jj
        idx_i.append(ii[keep] + seg_m[m])
        idx_j.append(jj[keep] + seg_m[m])
    coll_batch["_idx_i"] = torch.cat(idx_i, 0)
    coll_batch["_idx_j"] = torch.cat(idx_j, 0)
    return coll_batch


# ----------------------------------------------------------------------------- schnetpack.nn
def scatter_add(x: torch.Tensor, idx_i: torch.Tensor, dim_size: int, dim: int = 0) -> torch.Tensor:
    shape = list(x.shape)
    shape[dim] = dim_size
    tmp = torch.zeros(shape, dtype=x.dtype, device=x.device)
    y = tmp.index_add(dim, idx_i, x)
    return y


class Dense(nn.Linear):
    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation: Callable | None = None, weight_init: Callable = xavier_uniform_,
                 bias_init: Callable = zeros_):
        self.weight_init = weight_init
        self.bias_init = bias_init
        super(Dense, self).__init__(in_features, out_features, bias)  # noqa: UP008  (the repo's spelling)
        self.activation = activation
        if self.activation is None:
            self.activation = nn.Identity()

    def reset_parameters(self):
        self.weight_init(self.weight)
        if self.bias is not None:
            self.bias_init(self.bias)

    def forward(self, input: torch.Tensor):
        y = F.linear(input, self.weight, self.bias)
        y = self.activation(y)
        return y


def replicate_module(module_factory: Callable[[], nn.Module], n: int, share_params: bool):
    if share_params:
        module_list = nn.ModuleList([module_factory()] * n)
    else:
        module_list = nn.ModuleList([module_factory() for i in range(n)])
    return module_list


def build_mlp(n_in: int, n_out: int, n_hidden: int, n_layers: int = 2, activation: Callable = F.silu):
    n_neurons = [n_in] + [n_hidden] * (n_layers - 1)
    layers = [Dense(n_neurons[i], n_neurons[i + 1], activation=activation) for i in range(n_layers - 1)]
    layers.append(Dense(n_neurons[-1], n_out, activation=None))
    return nn.Sequential(*layers)


class BesselRBF(nn.Module):
    """sinc expansion: sin(n pi d / cutoff) / d"""

    def __init__(self, n_rbf: int, cutoff: float):
        super(BesselRBF, self).__init__()  # noqa: UP008
        self.n_rbf = n_rbf
        freqs = torch.arange(1, n_rbf + 1) * math.pi / cutoff
        self.register_buffer("freqs", freqs)

    def forward(self, inputs):
        ax = inputs[..., None] * self.freqs
        sinax = torch.sin(ax)
        norm = torch.where(inputs == 0, torch.tensor(1.0, device=inputs.device), inputs)
        y = sinax / norm[..., None]
        return y


class GaussianRBF(nn.Module):
    def __init__(self, n_rbf: int, cutoff: float, start: float = 0.0, trainable: bool = False):
        super(GaussianRBF, self).__init__()  # noqa: UP008
        self.n_rbf = n_rbf
        offset = torch.linspace(start, cutoff, n_rbf)
        widths = torch.FloatTensor(torch.abs(offset[1] - offset[0]) * torch.ones_like(offset))
        if trainable:
            self.widths = nn.Parameter(widths)
            self.offsets = nn.Parameter(offset)
        else:
            self.register_buffer("widths", widths)
            self.register_buffer("offsets", offset)

    def forward(self, inputs: torch.Tensor):
        coeff = -0.5 / torch.pow(self.widths, 2)
        diff = inputs[..., None] - self.offsets
        y = torch.exp(coeff * torch.pow(diff, 2))
        return y


def cosine_cutoff(input: torch.Tensor, cutoff: torch.Tensor):
    input_cut = 0.5 * (torch.cos(input * math.pi / cutoff) + 1.0)
    input_cut *= (input < cutoff).float()
    return input_cut


class CosineCutoff(nn.Module):
    def __init__(self, cutoff: float):
        super(CosineCutoff, self).__init__()  # noqa: UP008
        self.register_buffer("cutoff", torch.FloatTensor([cutoff]))

    def forward(self, input: torch.Tensor):
        return cosine_cutoff(input, self.cutoff)


# ----------------------------------------------------------------------------- PaiNN
class PaiNNInteraction(nn.Module):
    def __init__(self, n_atom_basis: int, activation: Callable):
        super(PaiNNInteraction, self).__init__()  # noqa: UP008
        self.n_atom_basis = n_atom_basis
        self.interatomic_context_net = nn.Sequential(
            Dense(n_atom_basis, n_atom_basis, activation=activation),
            Dense(n_atom_basis, 3 * n_atom_basis, activation=None),
        )

    def forward(self, q, mu, Wij, dir_ij, idx_i, idx_j, n_atoms: int):
        x = self.interatomic_context_net(q)
        xj = x[idx_j]
        muj = mu[idx_j]
        x = Wij * xj

        dq, dmuR, dmumu = torch.split(x, self.n_atom_basis, dim=-1)
        dq = scatter_add(dq, idx_i, dim_size=n_atoms)
        dmu = dmuR * dir_ij[..., None] + dmumu * muj
        dmu = scatter_add(dmu, idx_i, dim_size=n_atoms)

        q = q + dq
        mu = mu + dmu
        return q, mu


class PaiNNMixing(nn.Module):
    def __init__(self, n_atom_basis: int, activation: Callable, epsilon: float = 1e-8):
        super(PaiNNMixing, self).__init__()  # noqa: UP008
        self.n_atom_basis = n_atom_basis
        self.intraatomic_context_net = nn.Sequential(
            Dense(2 * n_atom_basis, n_atom_basis, activation=activation),
            Dense(n_atom_basis, 3 * n_atom_basis, activation=None),
        )
        self.mu_channel_mix = Dense(n_atom_basis, 2 * n_atom_basis, activation=None, bias=False)
        self.epsilon = epsilon

    def forward(self, q, mu):
        mu_mix = self.mu_channel_mix(mu)
        mu_V, mu_W = torch.split(mu_mix, self.n_atom_basis, dim=-1)
        mu_Vn = torch.sqrt(torch.sum(mu_V**2, dim=-2, keepdim=True) + self.epsilon)

        ctx = torch.cat([q, mu_Vn], dim=-1)
        x = self.intraatomic_context_net(ctx)

        dq_intra, dmu_intra, dqmu_intra = torch.split(x, self.n_atom_basis, dim=-1)
        dmu_intra = dmu_intra * mu_W

        dqmu_intra = dqmu_intra * torch.sum(mu_V * mu_W, dim=1, keepdim=True)

        q = q + dq_intra + dqmu_intra
        mu = mu + dmu_intra
        return q, mu


class PaiNN(nn.Module):
    def __init__(self, n_atom_basis: int, n_interactions: int, radial_basis: nn.Module,
                 cutoff_fn: Callable | None = None, activation: Callable | None = F.silu,
                 max_z: int = 101, shared_interactions: bool = False, shared_filters: bool = False,
                 epsilon: float = 1e-8):
        super(PaiNN, self).__init__()  # noqa: UP008
        self.n_atom_basis = n_atom_basis
        self.n_interactions = n_interactions
        self.cutoff_fn = cutoff_fn
        self.cutoff = cutoff_fn.cutoff
        self.radial_basis = radial_basis

        self.embedding = nn.Embedding(max_z, n_atom_basis, padding_idx=0)

        self.share_filters = shared_filters
        if shared_filters:
            self.filter_net = Dense(self.radial_basis.n_rbf, 3 * n_atom_basis, activation=None)
        else:
            self.filter_net = Dense(self.radial_basis.n_rbf, self.n_interactions * n_atom_basis * 3,
                                    activation=None)

        self.interactions = replicate_module(
            lambda: PaiNNInteraction(n_atom_basis=self.n_atom_basis, activation=activation),
            self.n_interactions, shared_interactions)
        self.mixing = replicate_module(
            lambda: PaiNNMixing(n_atom_basis=self.n_atom_basis, activation=activation, epsilon=epsilon),
            self.n_interactions, shared_interactions)

    def forward(self, inputs: dict[str, torch.Tensor]):
        atomic_numbers = inputs["_atomic_numbers"]
        r_ij = inputs["_Rij"]
        idx_i = inputs["_idx_i"]
        idx_j = inputs["_idx_j"]
        n_atoms = atomic_numbers.shape[0]

        # compute atom and pair features
        d_ij = torch.norm(r_ij, dim=1, keepdim=True)
        dir_ij = r_ij / d_ij
        phi_ij = self.radial_basis(d_ij)
        fcut = self.cutoff_fn(d_ij)

        filters = self.filter_net(phi_ij) * fcut[..., None]
        if self.share_filters:
            filter_list = [filters] * self.n_interactions
        else:
            filter_list = torch.split(filters, 3 * self.n_atom_basis, dim=-1)

        q = self.embedding(atomic_numbers)[:, None]
        qs = q.shape
        mu = torch.zeros((qs[0], 3, qs[2]), device=q.device, dtype=q.dtype)

        for i, (interaction, mixing) in enumerate(zip(self.interactions, self.mixing)):
            q, mu = interaction(q, mu, filter_list[i], dir_ij, idx_i, idx_j, n_atoms)
            q, mu = mixing(q, mu)

        q = q.squeeze(1)

        inputs["scalar_representation"] = q
        inputs["vector_representation"] = mu
        return inputs


class PairwiseDistances(nn.Module):
    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        R = inputs["_positions"]
        idx_i = inputs["_idx_i"]
        idx_j = inputs["_idx_j"]
        inputs["_Rij"] = R[idx_j] - R[idx_i]
        return inputs


class Atomwise(nn.Module):
    def __init__(self, n_in: int, n_out: int = 1, n_hidden: int | None = None, n_layers: int = 2,
                 output_key: str = "y"):
        super(Atomwise, self).__init__()  # noqa: UP008
        self.output_key = output_key
        self.model_outputs = [output_key]
        self.outnet = build_mlp(n_in=n_in, n_out=n_out, n_hidden=n_hidden or n_in, n_layers=n_layers)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        y = self.outnet(inputs["scalar_representation"])
        idx_m = inputs["_idx_m"]
        maxm = int(idx_m[-1]) + 1
        y = scatter_add(y, idx_m, dim_size=maxm)
        y = torch.squeeze(y, -1)
        inputs[self.output_key] = y
        return inputs


class Forces(nn.Module):
    def __init__(self, energy_key: str = "energy", force_key: str = "forces"):
        super(Forces, self).__init__()  # noqa: UP008
        self.energy_key = energy_key
        self.force_key = force_key
        self.model_outputs = [force_key]
        self.required_derivatives = ["_positions"]

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        Epred = inputs[self.energy_key]
        go: list[torch.Tensor | None] = [torch.ones_like(Epred)]
        dEdR = torch.autograd.grad([Epred], [inputs["_positions"]], grad_outputs=go,
                                   create_graph=self.training, retain_graph=True)[0]
        inputs[self.force_key] = -dEdR
        return inputs


class NeuralNetworkPotential(nn.Module):
    def __init__(self, representation, input_modules, output_modules):
        super().__init__()
        self.representation = representation
        self.input_modules = nn.ModuleList(input_modules)
        self.output_modules = nn.ModuleList(output_modules)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs = dict(inputs)
        inputs["_positions"] = inputs["_positions"].detach().requires_grad_()
        for m in self.input_modules:
            inputs = m(inputs)
        inputs = self.representation(inputs)
        for m in self.output_modules:
            inputs = m(inputs)
        return inputs


# ----------------------------------------------------------------------------- data and model
data_rng = np.random.RandomState(0)  # one data set; the seed moves init and batch order
molecules = [make_molecule(data_rng) for _ in range(72)]
train_set, test_set = molecules[:56], molecules[56:]
n_atom_basis, cutoff = 16, 4.0
painn = PaiNN(n_atom_basis=n_atom_basis, n_interactions=2, radial_basis=BesselRBF(n_rbf=12, cutoff=cutoff),
              cutoff_fn=CosineCutoff(cutoff))
model = NeuralNetworkPotential(
    representation=painn,
    input_modules=[PairwiseDistances()],
    output_modules=[Atomwise(n_in=n_atom_basis, output_key="energy"), Forces()],
)
print(f"{sum(len(m['_atomic_numbers']) for m in molecules)} atoms in {len(molecules)} molecules, "
      f"{sum(p.numel() for p in model.parameters())} parameters")

gauss = GaussianRBF(n_rbf=12, cutoff=cutoff)
probe_d = torch.linspace(0.0, 5.0, 6)[:, None]
sinc = BesselRBF(12, cutoff)(probe_d)
print(f"radial bases: gaussian {tuple(gauss(probe_d).shape)}, sinc {tuple(sinc.shape)} "
      f"finite at d=0 {bool(torch.isfinite(sinc).all())}, cutoff beyond {cutoff}: "
      f"{cosine_cutoff(probe_d, torch.tensor(cutoff)).flatten()[-1].item():.1f}")


def batches(data, batch_size, shuffle):
    order = torch.randperm(len(data)).tolist() if shuffle else list(range(len(data)))
    for s in range(0, len(data), batch_size):
        yield _atoms_collate_fn([data[k] for k in order[s:s + batch_size]])


# ----------------------------------------------------------------------------- symmetry checks
def random_orthogonal(dtype=torch.float32):
    A = torch.randn(3, 3, dtype=torch.float64)
    Q, Rm = torch.linalg.qr(A)
    Q = Q * torch.sign(torch.diagonal(Rm))[None, :]
    return Q.to(dtype)


def check_symmetries(model, batch):
    model.eval()
    out = model(batch)
    Q = random_orthogonal()
    rot = dict(batch)
    rot["_positions"] = batch["_positions"] @ Q
    out_rot = model(rot)
    shift = dict(batch)
    shift["_positions"] = batch["_positions"] + torch.tensor([[0.7, -1.3, 2.1]])
    out_shift = model(shift)
    mu = out["vector_representation"]
    mu_err = (torch.einsum("nif,ij->njf", mu, Q) - out_rot["vector_representation"]).abs().max().item()
    f_err = (out["forces"] @ Q - out_rot["forces"]).abs().max().item()
    q_err = (out["scalar_representation"] - out_rot["scalar_representation"]).abs().max().item()
    e_rot = (out["energy"] - out_rot["energy"]).abs().max().item()
    e_shift = (out["energy"] - out_shift["energy"]).abs().max().item()
    scale = out["forces"].abs().max().item() + mu.abs().max().item()
    model.train()
    return max(mu_err, f_err) / scale, max(q_err, e_rot, e_shift), abs(torch.linalg.det(Q).item())


def fd_force_check(model, batch, h=1e-5):
    m64 = copy.deepcopy(model).double().eval()
    b64 = {k: (v.double() if v.is_floating_point() else v) for k, v in batch.items()}
    F_pred = m64(b64)["forces"].detach()
    V = torch.randn(b64["_positions"].shape, dtype=torch.float64)
    plus, minus = dict(b64), dict(b64)
    plus["_positions"] = b64["_positions"] + h * V
    minus["_positions"] = b64["_positions"] - h * V
    dE = (m64(plus)["energy"].sum() - m64(minus)["energy"].sum()).item() / (2 * h)
    return abs(dE + (F_pred * V).sum().item()) / (abs(dE) + 1e-12)


check_batch = _atoms_collate_fn(test_set[:4])
eq_before, inv_before, det = check_symmetries(model, check_batch)
print(f"untrained: equivariance err {eq_before:.1e}, invariance err {inv_before:.1e}, |det Q| {det:.3f}")


# ----------------------------------------------------------------------------- training
def evaluate(model, data):
    model.eval()
    e_err, f_err, f_base, n_f = 0.0, 0.0, 0.0, 0
    for batch in batches(data, 16, shuffle=False):
        out = model(batch)
        e_err += ((out["energy"].detach() - batch["energy"]) ** 2).sum().item()
        f_err += ((out["forces"].detach() - batch["forces"]) ** 2).sum().item()
        f_base += (batch["forces"] ** 2).sum().item()
        n_f += batch["forces"].numel()
    model.train()
    return e_err / len(data), f_err / n_f, f_base / n_f


optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
loss_weights = {"energy": 0.01, "forces": 0.99}
mse = nn.MSELoss()
_, f_start, f_zero = evaluate(model, test_set)
first_loss = None
for epoch in range(1, 25 + 1):
    model.train()
    running = 0.0
    for batch in batches(train_set, 8, shuffle=True):
        optimizer.zero_grad()
        pred = model(batch)
        loss = sum(w * mse(pred[k], batch[k]) for k, w in loss_weights.items())
        loss.backward()
        optimizer.step()
        running += loss.item()
    first_loss = running if first_loss is None else first_loss
    e_mse, f_mse, _ = evaluate(model, test_set)
    scheduler.step(loss_weights["energy"] * e_mse + loss_weights["forces"] * f_mse)
    if epoch % 5 == 0:
        print(f"epoch {epoch}: train loss {running:.4f}, test energy mse {e_mse:.4f}, force mse {f_mse:.4f}, "
              f"lr {optimizer.param_groups[0]['lr']:.2e}")

eq_after, inv_after, _ = check_symmetries(model, check_batch)
fd_err = fd_force_check(model, check_batch)
print(f"trained: equivariance err {eq_after:.1e}, invariance err {inv_after:.1e}, "
      f"finite-difference force err {fd_err:.1e}")
print(f"force mse: zero-force baseline {f_zero:.4f}, untrained {f_start:.4f}, trained {f_mse:.4f}")
print(f"FINAL equiv_err={max(eq_before, eq_after):.2e} inv_err={max(inv_before, inv_after):.2e} "
      f"fd_err={fd_err:.2e} force_mse={f_mse:.4f} force_ratio={f_mse / f_zero:.4f} "
      f"energy_mse={e_mse:.4f} loss_drop={running / first_loss:.4f}")
