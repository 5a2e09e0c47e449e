"""Planar and radial normalizing flows (Rezende & Mohamed 2015) fitted to the 2-D potentials U1-U4.

Each flow pushes samples of a ``torch.distributions.MultivariateNormal`` base through K layers and
is trained by reverse KL against the unnormalised target ``exp(-U(z))``: minimise the free energy
``E[log q_K(z_K) + beta_t U(z_K)]`` with the paper's annealed inverse temperature ``beta_t``.

A planar layer ``f(z) = z + u_hat tanh(w.z + b)`` keeps itself invertible with the paper's
constraint ``u_hat = u + (m(w.u) - w.u) w / ||w||^2``, ``m(x) = -1 + softplus(x)``, and adds
``log|1 + psi.u_hat|`` with ``psi = (1 - tanh^2) w``; a radial layer
``f(z) = z + beta h(alpha, r) (z - z0)`` with ``alpha = softplus(.)``, ``beta = -alpha + softplus(.)``
adds ``(d - 1) log(1 + beta h) + log(1 + beta h + beta h' r)``. After training, ``log Z`` is
estimated by importance sampling, ``logsumexp(-U - log q) - log N``, and compared with a grid
integral; the KL(q || p) and the effective sample size ``exp(2 logsumexp(lw) - logsumexp(2 lw)) / N``
are reported per potential and flow. U2-U4 do not decay along z1, so (as normflows does) they get
a soft boundary ``0.5 * (||z||_4 / 4)^8`` to make ``exp(-U)`` normalisable.
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import MultivariateNormal

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def w1(z):
    return torch.sin(2 * math.pi * z[:, 0] / 4)


def w2(z):
    return 3 * torch.exp(-0.5 * ((z[:, 0] - 1) / 0.6) ** 2)


def w3(z):
    return 3 * torch.sigmoid((z[:, 0] - 1) / 0.3)


def boundary(z):
    return 0.5 * (torch.linalg.vector_norm(z, ord=4, dim=1) / 4) ** 8


def U1(z):
    ring = 0.5 * ((torch.norm(z, p=2, dim=1) - 2) / 0.4) ** 2
    modes = torch.exp(-0.5 * ((z[:, 0] - 2) / 0.6) ** 2) + torch.exp(-0.5 * ((z[:, 0] + 2) / 0.6) ** 2)
    return ring - torch.log(modes + 1e-10)


def U2(z):
    return 0.5 * ((z[:, 1] - w1(z)) / 0.4) ** 2 + boundary(z)


def U3(z):
    a = torch.exp(-0.5 * ((z[:, 1] - w1(z)) / 0.35) ** 2)
    b = torch.exp(-0.5 * ((z[:, 1] - w1(z) + w2(z)) / 0.35) ** 2)
    return -torch.log(a + b + 1e-10) + boundary(z)


def U4(z):
    a = torch.exp(-0.5 * ((z[:, 1] - w1(z)) / 0.4) ** 2)
    b = torch.exp(-0.5 * ((z[:, 1] - w1(z) + w3(z)) / 0.35) ** 2)
    return -torch.log(a + b + 1e-10) + boundary(z)


POTENTIALS = {"U1": U1, "U2": U2, "U3": U3, "U4": U4}


class PlanarFlow(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.w = nn.Parameter(torch.randn(1, dim) * 0.1)
        self.u = nn.Parameter(torch.randn(1, dim) * 0.1)
        self.b = nn.Parameter(torch.zeros(1))

    def u_hat(self):
        wu = self.w @ self.u.t()
        m_wu = -1 + F.softplus(wu)
        return self.u + (m_wu - wu) * self.w / torch.sum(self.w ** 2)

    def forward(self, z):
        u_hat = self.u_hat()
        activation = torch.tanh(z @ self.w.t() + self.b)  # (B, 1)
        f_z = z + u_hat * activation
        psi = (1 - activation ** 2) * self.w  # h'(w.z + b) w
        log_det = torch.log(torch.abs(1 + psi @ u_hat.t()) + 1e-4)
        return f_z, log_det.squeeze(-1)


class RadialFlow(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.z0 = nn.Parameter(torch.randn(1, dim) * 0.5)
        self.alpha_prime = nn.Parameter(torch.zeros(1))
        self.beta_prime = nn.Parameter(torch.zeros(1))

    def forward(self, z):
        alpha = F.softplus(self.alpha_prime)
        beta = -alpha + F.softplus(self.beta_prime)  # beta >= -alpha keeps the layer invertible
        diff = z - self.z0
        r = diff.norm(dim=1, keepdim=True)
        h = 1 / (alpha + r)
        h_prime = -h ** 2
        f_z = z + beta * h * diff
        log_det = (self.dim - 1) * torch.log1p(beta * h) + torch.log1p(beta * h + beta * h_prime * r)
        return f_z, log_det.squeeze(-1)


class NormalizingFlow(nn.Module):
    def __init__(self, kind, dim=2, n_layers=8):
        super().__init__()
        layer = PlanarFlow if kind == "planar" else RadialFlow
        self.layers = nn.ModuleList([layer(dim) for _ in range(n_layers)])
        self.base = MultivariateNormal(torch.zeros(dim), torch.eye(dim))

    def forward(self, n):
        z = self.base.sample((n,))
        log_q = self.base.log_prob(z)
        for layer in self.layers:
            z, log_det = layer(z)
            log_q = log_q - log_det
        return z, log_q


def grid_log_z(potential, lim=5.0, n=300):
    xs = torch.linspace(-lim, lim, n)
    zz = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), dim=-1).reshape(-1, 2)
    cell = (xs[1] - xs[0]) ** 2
    return (torch.logsumexp(-potential(zz), dim=0) + torch.log(cell)).item()


def train_flow(kind, potential, steps=150, batch=128, anneal_steps=100):
    flow = NormalizingFlow(kind)
    optimizer = torch.optim.Adam(flow.parameters(), lr=2e-2)
    for step in range(steps):
        beta_t = min(1.0, 0.01 + step / anneal_steps)  # the paper's annealed inverse temperature
        z, log_q = flow(batch)
        loss = (log_q + beta_t * potential(z)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return flow


@torch.no_grad()
def evaluate(flow, potential, log_z_grid, n=4000):
    z, log_q = flow(n)
    log_w = -potential(z) - log_q
    log_z_is = (torch.logsumexp(log_w, dim=0) - math.log(n)).item()
    ess = torch.exp(2 * torch.logsumexp(log_w, dim=0) - torch.logsumexp(2 * log_w, dim=0)).item() / n
    free_energy = (log_q + potential(z)).mean().item()
    return free_energy + log_z_grid, log_z_is, ess, free_energy


base = MultivariateNormal(torch.zeros(2), torch.eye(2))
probe = torch.randn(5, 2)
by_hand = -0.5 * (probe ** 2).sum(1) - math.log(2 * math.pi)
print(f"MultivariateNormal log_prob matches the formula: {torch.allclose(base.log_prob(probe), by_hand, atol=1e-5)}")

planar = PlanarFlow(2)
with torch.no_grad():
    planar.u.copy_(-3 * planar.w / torch.sum(planar.w ** 2))  # w.u = -3 would break invertibility
    print(f"u_hat restores w.u_hat >= -1: {(planar.w @ planar.u_hat().t()).item() >= -1}")
x = torch.randn(6, 2, requires_grad=True)
y, log_det = planar(x)
jacobians = torch.stack([torch.autograd.functional.jacobian(lambda v: planar(v[None])[0][0], x[i].detach())
                         for i in range(6)])
by_jacobian = torch.log(torch.abs(torch.linalg.det(jacobians)) + 1e-4)
print(f"planar log-det equals log|det J|: {torch.allclose(log_det.detach(), by_jacobian, atol=1e-4)}")
radial = RadialFlow(2)
with torch.no_grad():
    radial.beta_prime.fill_(1.5)
y, log_det = radial(x)
jacobians = torch.stack([torch.autograd.functional.jacobian(lambda v: radial(v[None])[0][0], x[i].detach())
                         for i in range(6)])
print(f"radial log-det equals log|det J|: "
      f"{torch.allclose(log_det.detach(), torch.log(torch.linalg.det(jacobians)), atol=1e-4)}")

results = {}
for name, potential in POTENTIALS.items():
    log_z = grid_log_z(potential)
    for kind in ("planar", "radial"):
        flow = train_flow(kind, potential)
        kl, log_z_is, ess, free_energy = evaluate(flow, potential, log_z)
        results[f"{name}_{kind}"] = (kl, ess)
        print(f"{name} {kind}: free energy {free_energy:.4f} log Z grid {log_z:.4f} importance-weighted {log_z_is:.4f} "
              f"KL {kl:.4f} ESS {ess:.3f}")
        if kind == "planar":
            constrained = min((layer.w @ layer.u_hat().t()).item() for layer in flow.layers)
            print(f"  min w.u_hat over layers >= -1: {constrained >= -1}")

planar_kl = sum(results[f"{n}_planar"][0] for n in POTENTIALS) / len(POTENTIALS)
radial_kl = sum(results[f"{n}_radial"][0] for n in POTENTIALS) / len(POTENTIALS)
print(f"mean KL planar {planar_kl:.4f} radial {radial_kl:.4f}")
print("FINAL " + " ".join(f"kl_{key}={kl:.4f} ess_{key}={ess:.4f}" for key, (kl, ess) in results.items()))
