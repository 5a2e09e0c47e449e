"""Differentiable sorting with NeuralSort (Grover et al., 2019), as ermongroup/neuralsort writes it,
against Sinkhorn-normalised scores, learning to sort sets of items from their features.

``neural_sort(s, tau)`` builds the relaxed permutation ``softmax(((n + 1 - 2 i) s - A_s 1) / tau)``
the paper's way: ``A_s = torch.abs(s - s.permute(0, 2, 1))`` by broadcasting, ``A_s 1`` by
``torch.matmul`` with a ones matrix, the scaling ``(n + 1 - 2 * (torch.arange(n) + 1)).type(torch.float)``
and ``nn.Softmax(-1)``; the hard permutation by the original's index triplet (``repeat``, ``view``,
``transpose(dim0=1, dim1=0)``, ``flatten``, ``torch.stack``, ``P[b, r, c] = 1`` on ``torch.argmax``)
must equal ``F.one_hot(torch.argsort(s, descending=True))`` and ``torch.sort``'s indices, and the
straight-through variant is ``(P - P_hat).detach() + P_hat``. Sinkhorn normalisation of the same
logits in the log domain alternates ``torch.logsumexp`` over rows and columns. Three scoring networks
from one initialisation (``copy.deepcopy``) learn: NeuralSort with the row-wise cross-entropy
against the true permutation, Sinkhorn with the same loss, and the straight-through NeuralSort
trained only through a downstream regression of the sorted values (``P @ v``); each reports the
fraction of sets sorted exactly, of positions right, and the mean Spearman correlation.

The data: sets of 5 items drawn from torch's RNG, each with 6 features whose hidden value is a
fixed linear map plus a sine.
"""

import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

N_ITEMS, N_FEATURES = 5, 6
w_true = torch.randn(N_FEATURES)


def make_sets(batch):
    x = torch.rand(batch, N_ITEMS, N_FEATURES) * 2 - 1
    values = x @ w_true + 0.5 * torch.sin(3 * x[..., 0])
    return x, values


def neural_sort(s, tau=1.0, hard=False):
    """s: (batch, n, 1) scores; returns the (batch, n, n) relaxed permutation whose row i puts its
    mass on the item of rank i, largest first."""
    bsize, dim = s.size()[0], s.size()[1]
    one = torch.ones((dim, 1))
    A_s = torch.abs(s - s.permute(0, 2, 1))
    B = torch.matmul(A_s, torch.matmul(one, torch.transpose(one, 0, 1)))
    scaling = (dim + 1 - 2 * (torch.arange(dim) + 1)).type(torch.float)
    C = torch.matmul(s, scaling.unsqueeze(0))
    P_max = (C - B).permute(0, 2, 1)
    sm = nn.Softmax(-1)
    P_hat = sm(P_max / tau)
    if hard:
        P = torch.zeros_like(P_hat)
        b_idx = torch.arange(bsize).repeat([1, dim]).view(dim, bsize).transpose(dim0=1, dim1=0).flatten()
        r_idx = torch.arange(dim).repeat([bsize, 1]).flatten()
        c_idx = torch.argmax(P_hat, dim=-1).flatten()
        brc_idx = torch.stack((b_idx, r_idx, c_idx))
        P[brc_idx[0], brc_idx[1], brc_idx[2]] = 1
        P_hat = (P - P_hat).detach() + P_hat
    return P_hat


def neural_sort_logits(s, tau=1.0):
    dim = s.size(1)
    A_s = (s - s.transpose(1, 2)).abs()
    scaling = (dim + 1 - 2 * (torch.arange(dim) + 1)).float()
    return (scaling[:, None] * s.transpose(1, 2) - A_s.sum(-1).unsqueeze(1)) / tau


def log_sinkhorn(log_alpha, n_iters=20):
    for _ in range(n_iters):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-2, keepdim=True)
    return log_alpha


def true_permutation(values):
    return F.one_hot(torch.argsort(values, dim=-1, descending=True), values.size(-1)).float()


def spearman(scores, values):
    n = scores.size(-1)
    rank_pred = torch.argsort(torch.argsort(scores, dim=-1), dim=-1).float()
    rank_true = torch.argsort(torch.argsort(values, dim=-1), dim=-1).float()
    d2 = ((rank_pred - rank_true) ** 2).sum(-1)
    return 1 - 6 * d2 / (n * (n ** 2 - 1))


class Scorer(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_FEATURES, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        return self.net(x)  # (batch, n, 1)


# the relaxation's properties on random scores
probe = torch.randn(4, N_ITEMS, 1)
P_soft = neural_sort(probe, tau=0.5)
P_hard = neural_sort(probe, tau=0.5, hard=True)
by_argsort = F.one_hot(torch.argsort(probe.squeeze(-1), dim=-1, descending=True), N_ITEMS).float()
sorted_values, sorted_index = torch.sort(probe.squeeze(-1), dim=-1, descending=True)
print(f"rows sum to one {torch.allclose(P_soft.sum(-1), torch.ones(4, N_ITEMS))} "
      f"hard is argsort {torch.equal(P_hard, by_argsort)} hard is sort {torch.equal(P_hard.argmax(-1), sorted_index)} "
      f"sorts {torch.allclose((P_hard @ probe).squeeze(-1), sorted_values)}")
print(f"logits agree {torch.allclose(F.softmax(neural_sort_logits(probe, 0.5), -1), P_soft, atol=1e-6)}")
doubly = log_sinkhorn(neural_sort_logits(probe, 0.5)).exp()
print(f"sinkhorn columns sum to one {(doubly.sum(-2) - 1).abs().max().item() < 1e-5} "
      f"rows off by {(doubly.sum(-1) - 1).abs().max().item():.2e}")
for tau in (4.0, 1.0, 0.25, 0.05):
    gap = (neural_sort(probe, tau) - P_hard).abs().max().item()
    print(f"tau {tau} distance to the hard permutation {gap:.4f}")

test_x, test_values = make_sets(500)
test_perm = true_permutation(test_values)


@torch.no_grad()
def evaluate(scorer):
    scores = scorer(test_x).squeeze(-1)
    predicted = torch.argsort(scores, dim=-1, descending=True)
    target = torch.argsort(test_values, dim=-1, descending=True)
    exact = (predicted == target).all(dim=-1).float().mean().item()
    positions = (predicted == target).float().mean().item()
    return exact, positions, spearman(scores, test_values).mean().item()


def row_cross_entropy(P_true, log_P):
    return -(P_true * log_P).sum(-1).mean()


base = Scorer()
scorers = {name: copy.deepcopy(base) for name in ("neuralsort", "sinkhorn", "straight_through")}
optimizers = {name: torch.optim.Adam(scorer.parameters(), lr=3e-3) for name, scorer in scorers.items()}
exact, positions, rho = evaluate(base)
print(f"untrained exact {exact:.3f} positions {positions:.3f} spearman {rho:.3f}")

STEPS, BATCH, TAU = 300, 32, 1.0
for step in range(STEPS):
    x, values = make_sets(BATCH)
    P_true = true_permutation(values)
    losses = {}
    for name, scorer in scorers.items():
        s = scorer(x)
        if name == "neuralsort":
            loss = row_cross_entropy(P_true, torch.log(neural_sort(s, TAU) + 1e-20))
        elif name == "sinkhorn":
            loss = row_cross_entropy(P_true, log_sinkhorn(neural_sort_logits(s, TAU)))
        else:
            P = neural_sort(s, TAU, hard=True)
            sorted_target = torch.sort(values, dim=-1, descending=True).values
            loss = F.mse_loss((P @ values.unsqueeze(-1)).squeeze(-1), sorted_target)
        optimizers[name].zero_grad()
        loss.backward()
        optimizers[name].step()
        losses[name] = loss.item()
    if step % 100 == 99:
        print(f"step {step + 1} " + " ".join(f"{name} {value:.4f}" for name, value in losses.items()))

results = {name: evaluate(scorer) for name, scorer in scorers.items()}
for name, (exact, positions, rho) in results.items():
    print(f"{name} exact {exact:.3f} positions {positions:.3f} spearman {rho:.3f}")
print("FINAL " + " ".join(f"{name}_exact={r[0]:.4f} {name}_spearman={r[2]:.4f}" for name, r in results.items()))
