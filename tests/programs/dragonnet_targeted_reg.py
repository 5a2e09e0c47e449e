"""Dragonnet (Shi, Blei & Veitch, NeurIPS 2019) with targeted regularisation, in the layout of
claudiashi57/dragonnet and its PyTorch ports, on a synthetic confounded observational study.

Covariates ``x`` drive both the treatment (propensity ``sigmoid(x @ w_t)``) and the outcome, so the
naive difference of means is biased; the true individual effect ``tau(x)`` is known, so every estimate
is scored against the sample ATE. The model is the repository's: a shared ELU representation ``z``, a
propensity head ``torch.sigmoid(self.t_predictions(z))``, two outcome heads ``y0``/``y1``, and the
epsilon layer of targeted regularisation as ``nn.Parameter(torch.randn(1))`` broadcast by
``self.epsilon * torch.ones_like(t_pred)``. The losses are ``dragonnet_loss`` (``torch.sum((1 - t) *
(y0 - y) ** 2) + torch.sum(t * (y1 - y) ** 2)`` + BCE on ``t_pred = (t_pred + 0.01) / 1.02``) and
``tarreg_loss`` (``h = t / t_pred - (1 - t) / (1 - t_pred)``, ``y_pert = y_pred + eps * h``). Training is
``torch.optim.SGD(momentum=0.9, nesterov=True)`` + ``ReduceLROnPlateau`` on a validation loss, with the
best ``state_dict`` kept.

Checked: the BCE by ``F.binary_cross_entropy(reduction='sum')`` against the hand-written formula, the
targeted-regularisation estimating equation (``d loss / d eps == -2 sum(h * (y - y_pert))``, by
``torch.autograd.grad`` against the closed form), and the ATE estimates of ``ate.py`` -- naive (mean of
``q1 - q0``), IPW with clipped propensities, and the TMLE-style one-step update -- against the truth and
against the biased difference of means.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

N, D = 800, 6


# ----------------------------------------------------------------------------------- data
def make_data(n, rng):
    x = rng.normal(size=(n, D)).astype(np.float32)
    logit = 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2]
    e = 1.0 / (1.0 + np.exp(-logit))
    t = (rng.uniform(size=n) < e).astype(np.float32)
    mu0 = 2.0 * x[:, 0] + np.sin(2.0 * x[:, 1]) + 0.5 * x[:, 3] ** 2
    tau = 1.0 + 0.5 * x[:, 0] + 0.5 * np.tanh(x[:, 4])
    y0 = mu0 + 0.3 * rng.normal(size=n)
    y1 = mu0 + tau + 0.3 * rng.normal(size=n)
    y = t * y1 + (1 - t) * y0
    return x, t.reshape(-1, 1), y.astype(np.float32).reshape(-1, 1), tau.astype(np.float32), e


rng = np.random.RandomState(seed)
x_np, t_np, y_np, tau_np, e_np = make_data(N, rng)
true_ate = float(tau_np.mean())
print(f"n={N} treated={int(t_np.sum())} true ATE={true_ate:.4f}")

# the repository standardises y before training and scales back afterwards
y_mean, y_std = y_np.mean(), y_np.std()
x = torch.from_numpy(x_np)
t = torch.from_numpy(t_np)
y = torch.from_numpy((y_np - y_mean) / y_std)

perm = torch.randperm(N)
train_idx, val_idx = perm[: int(0.8 * N)], perm[int(0.8 * N) :]


# ----------------------------------------------------------------------------------- model
class DragonNet(nn.Module):
    def __init__(self, input_dim, shared_hidden=48, outcome_hidden=24):
        super().__init__()
        self.fc1 = nn.Linear(in_features=input_dim, out_features=shared_hidden)
        self.fc2 = nn.Linear(in_features=shared_hidden, out_features=shared_hidden)
        self.fcz = nn.Linear(in_features=shared_hidden, out_features=shared_hidden)

        self.t_predictions = nn.Linear(in_features=shared_hidden, out_features=1)

        self.y0_fc1 = nn.Linear(in_features=shared_hidden, out_features=outcome_hidden)
        self.y0_fc2 = nn.Linear(in_features=outcome_hidden, out_features=outcome_hidden)
        self.y0_out = nn.Linear(in_features=outcome_hidden, out_features=1)

        self.y1_fc1 = nn.Linear(in_features=shared_hidden, out_features=outcome_hidden)
        self.y1_fc2 = nn.Linear(in_features=outcome_hidden, out_features=outcome_hidden)
        self.y1_out = nn.Linear(in_features=outcome_hidden, out_features=1)

        self.epsilon = nn.Parameter(torch.randn(1) * 0.01)

    def forward(self, inputs):
        z = F.elu(self.fc1(inputs))
        z = F.elu(self.fc2(z))
        z = F.elu(self.fcz(z))

        t_pred = torch.sigmoid(self.t_predictions(z))

        y0 = F.elu(self.y0_fc1(z))
        y0 = F.elu(self.y0_fc2(y0))
        y0 = self.y0_out(y0)

        y1 = F.elu(self.y1_fc1(z))
        y1 = F.elu(self.y1_fc2(y1))
        y1 = self.y1_out(y1)

        eps = self.epsilon * torch.ones_like(t_pred)[:, 0:1]
        return y0, y1, t_pred, eps


def dragonnet_loss(y_true, t_true, t_pred, y0_pred, y1_pred, eps, alpha=1.0, beta=None):
    t_pred = (t_pred + 0.01) / 1.02
    loss_t = torch.sum(F.binary_cross_entropy(t_pred, t_true, reduction="sum"))
    loss0 = torch.sum((1.0 - t_true) * torch.square(y_true - y0_pred))
    loss1 = torch.sum(t_true * torch.square(y_true - y1_pred))
    loss_y = loss0 + loss1
    return loss_y + alpha * loss_t


def tarreg_loss(y_true, t_true, t_pred, y0_pred, y1_pred, eps, alpha=1.0, beta=1.0):
    vanilla_loss = dragonnet_loss(y_true, t_true, t_pred, y0_pred, y1_pred, eps, alpha)
    t_pred = (t_pred + 0.01) / 1.02
    y_pred = t_true * y1_pred + (1 - t_true) * y0_pred
    h = (t_true / t_pred) - ((1 - t_true) / (1 - t_pred))
    y_pert = y_pred + eps * h
    targeted_regularization = torch.sum((y_true - y_pert) ** 2)
    return vanilla_loss + beta * targeted_regularization


# ----------------------------------------------------------------------------------- checks
model = DragonNet(D)
with torch.no_grad():
    y0_p, y1_p, t_p, eps_p = model(x[:64])
tp = (t_p + 0.01) / 1.02
bce_hand = -torch.sum(t[:64] * torch.log(tp) + (1 - t[:64]) * torch.log(1 - tp))
bce_f = F.binary_cross_entropy(tp, t[:64], reduction="sum")
bce_ok = torch.allclose(bce_f, bce_hand, rtol=1e-5)
print(f"BCE by F.binary_cross_entropy == by hand: {bce_ok}")


# ----------------------------------------------------------------------------------- training
class Dragonnet:
    def __init__(self, input_dim, epochs=40, batch_size=64, learning_rate=1e-3, momentum=0.9,
                 targeted_reg=True, alpha=1.0, beta=1.0):
        self.model = DragonNet(input_dim)
        self.epochs = epochs
        self.batch_size = batch_size
        self.alpha, self.beta = alpha, beta
        self.optim = torch.optim.SGD(self.model.parameters(), lr=learning_rate, momentum=momentum,
                                     nesterov=True, weight_decay=1e-4)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optim, mode="min", factor=0.5, patience=3, threshold=0.0, cooldown=0, min_lr=0)
        self.loss_f = tarreg_loss if targeted_reg else dragonnet_loss
        self.train_loader = DataLoader(TensorDataset(x[train_idx], t[train_idx], y[train_idx]),
                                       batch_size=batch_size, shuffle=True)

    def fit(self):
        best_loss, best_state = float("inf"), None
        for epoch in range(self.epochs):
            self.model.train()
            for xb, tb, yb in self.train_loader:
                y0_pred, y1_pred, t_pred, eps = self.model(xb)
                loss = self.loss_f(yb, tb, t_pred, y0_pred, y1_pred, eps, self.alpha, self.beta)
                self.optim.zero_grad()
                loss.backward()
                self.optim.step()
            self.model.eval()
            with torch.no_grad():
                y0_pred, y1_pred, t_pred, eps = self.model(x[val_idx])
                val_loss = self.loss_f(y[val_idx], t[val_idx], t_pred, y0_pred, y1_pred, eps,
                                       self.alpha, self.beta).item() / len(val_idx)
            self.scheduler.step(val_loss)
            if val_loss < best_loss:
                best_loss, best_state = val_loss, copy.deepcopy(self.model.state_dict())
            if epoch % 10 == 0 or epoch == self.epochs - 1:
                print(f"epoch {epoch:3d} val loss {val_loss:.4f} lr {self.optim.param_groups[0]['lr']:.5f}")
        self.model.load_state_dict(best_state)
        return best_loss

    @torch.no_grad()
    def predict(self, inputs):
        self.model.eval()
        y0_pred, y1_pred, t_pred, eps = self.model(inputs)
        return y0_pred, y1_pred, t_pred, eps


# ----------------------------------------------------------------------------------- ATE (ate.py)
def truncate_by_g(attribute, g, level=0.01):
    keep_these = torch.logical_and(g >= level, g <= 1.0 - level)
    return attribute[keep_these]


def psi_naive(q_t0, q_t1, g, t, y, truncate_level=0.0):
    ite = q_t1 - q_t0
    return torch.mean(truncate_by_g(ite, g, level=truncate_level))


def psi_ipw(g, t, y, clip=0.05):
    g = g.clamp(clip, 1 - clip)
    ite = (t / g - (1 - t) / (1 - g)) * y
    return torch.mean(ite)


def psi_tmle_cont_outcome(q_t0, q_t1, g, t, y, truncate_level=0.05):
    g = g.clamp(truncate_level, 1 - truncate_level)
    h = t * (1.0 / g) - (1.0 - t) / (1.0 - g)
    full_q = (1.0 - t) * q_t0 + t * q_t1
    eps_hat = torch.sum(h * (y - full_q)) / torch.sum(torch.square(h))
    q_t0_pert = q_t0 - eps_hat / (1.0 - g)
    q_t1_pert = q_t1 + eps_hat / g
    return torch.mean(q_t1_pert - q_t0_pert)


results = {}
for name, targeted in (("dragonnet", False), ("tarreg", True)):
    torch.manual_seed(seed + 1)
    runner = Dragonnet(D, targeted_reg=targeted)
    best = runner.fit()
    y0_pred, y1_pred, t_pred, eps = runner.predict(x)
    q0 = (y0_pred * y_std + y_mean).squeeze(1)
    q1 = (y1_pred * y_std + y_mean).squeeze(1)
    g = t_pred.squeeze(1)
    tt, yy = t.squeeze(1), torch.from_numpy(y_np).squeeze(1)
    est = {
        "naive": psi_naive(q0, q1, g, tt, yy, truncate_level=0.01).item(),
        "ipw": psi_ipw(g, tt, yy).item(),
        "tmle": psi_tmle_cont_outcome(q0, q1, g, tt, yy).item(),
    }
    g_corr = float(np.corrcoef(g.numpy(), e_np)[0, 1])
    print(f"{name}: best val loss {best:.4f} eps {runner.model.epsilon.item():+.4f} "
          f"propensity corr {g_corr:.3f} ATE naive {est['naive']:.4f} ipw {est['ipw']:.4f} tmle {est['tmle']:.4f}")
    results[name] = (runner, est, g_corr)

# the targeted-regularisation estimating equation: d/d eps of the perturbation term
runner = results["tarreg"][0]
model = runner.model
y0_pred, y1_pred, t_pred, eps = model(x)
tp = (t_pred + 0.01) / 1.02
h = t / tp - (1 - t) / (1 - tp)
y_pert = t * y1_pred + (1 - t) * y0_pred + eps * h
reg = torch.sum((y - y_pert) ** 2)
(g_eps,) = torch.autograd.grad(reg, model.epsilon)
closed = -2.0 * torch.sum(h * (y - y_pert))
eq_ok = torch.allclose(g_eps, closed.reshape(1), rtol=1e-4, atol=1e-3)
print(f"d reg / d eps by autograd == -2 sum(h (y - y_pert)): {eq_ok}")

diff_means = float(y_np[t_np == 1].mean() - y_np[t_np == 0].mean())
est_t = results["tarreg"][1]
est_d = results["dragonnet"][1]
print(f"difference of means {diff_means:.4f} (bias {diff_means - true_ate:+.4f})")

print(
    f"FINAL diff_means_err={abs(diff_means - true_ate):.4f} "
    f"dragon_naive_err={abs(est_d['naive'] - true_ate):.4f} "
    f"tarreg_naive_err={abs(est_t['naive'] - true_ate):.4f} "
    f"tarreg_tmle_err={abs(est_t['tmle'] - true_ate):.4f} "
    f"ipw_err={abs(est_t['ipw'] - true_ate):.4f} "
    f"propensity_corr={results['tarreg'][2]:.4f} checks={int(bce_ok and eq_ok)}"
)
