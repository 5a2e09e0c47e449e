"""Set Transformer as juho-lee/set_transformer writes it (modules.py, models.py, max_regression_demo,
mixture_of_mvns.py), on two toy tasks.

``MAB`` splits heads by ``torch.cat(Q.split(dim_split, 2), 0)``, attends by
``torch.softmax(Q_.bmm(K_.transpose(1, 2)) / math.sqrt(self.dim_V), 2)``, merges by
``torch.cat((Q_ + A.bmm(V_)).split(Q.size(0), 0), 2)`` and reads its optional LayerNorms by
``getattr(self, 'ln0', None)``; ``SAB``, ``ISAB`` with inducing points ``nn.Parameter(torch.Tensor(1, m, d))``
+ ``nn.init.xavier_uniform_`` broadcast by ``self.I.repeat(X.size(0), 1, 1)``, and ``PMA`` with seeds.
Task 1, the max-regression demo: a ``SmallSetTransformer`` (SAB, SAB, PMA, Linear) and a ``DeepSet``
(``X.mean(dim=-2)`` pooling) trained with ``nn.L1Loss`` to output the largest element of a set.
Task 2, amortised clustering: a ``SetTransformer`` (ISAB, ISAB | PMA(k seeds), SAB, Linear) reads a set of
2-d points drawn from a mixture of k Gaussians and outputs the mixture's weights (``torch.softmax``),
means and log standard deviations, trained on the mixture's log-likelihood by ``torch.logsumexp``;
its likelihood is compared with the generating mixture's. The outputs must not change when the set is
permuted (``X[:, torch.randperm(n)]``).
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ----------------------------------------------------------------- modules.py
class MAB(nn.Module):
    def __init__(self, dim_Q, dim_K, dim_V, num_heads, ln=False):
        super(MAB, self).__init__()  # noqa: UP008  (the repo's spelling)
        self.dim_V = dim_V
        self.num_heads = num_heads
        self.fc_q = nn.Linear(dim_Q, dim_V)
        self.fc_k = nn.Linear(dim_K, dim_V)
        self.fc_v = nn.Linear(dim_K, dim_V)
        if ln:
            self.ln0 = nn.LayerNorm(dim_V)
            self.ln1 = nn.LayerNorm(dim_V)
        self.fc_o = nn.Linear(dim_V, dim_V)

    def forward(self, Q, K):
        Q = self.fc_q(Q)
        K, V = self.fc_k(K), self.fc_v(K)

        dim_split = self.dim_V // self.num_heads
        Q_ = torch.cat(Q.split(dim_split, 2), 0)
        K_ = torch.cat(K.split(dim_split, 2), 0)
        V_ = torch.cat(V.split(dim_split, 2), 0)

        A = torch.softmax(Q_.bmm(K_.transpose(1, 2)) / math.sqrt(self.dim_V), 2)
        O = torch.cat((Q_ + A.bmm(V_)).split(Q.size(0), 0), 2)  # noqa: E741  (the repo's name)
        O = O if getattr(self, "ln0", None) is None else self.ln0(O)  # noqa: E741
        O = O + F.relu(self.fc_o(O))  # noqa: E741
        O = O if getattr(self, "ln1", None) is None else self.ln1(O)  # noqa: E741
        return O


class SAB(nn.Module):
    def __init__(self, dim_in, dim_out, num_heads, ln=False):
        super(SAB, self).__init__()  # noqa: UP008
        self.mab = MAB(dim_in, dim_in, dim_out, num_heads, ln=ln)

    def forward(self, X):
        return self.mab(X, X)


class ISAB(nn.Module):
    def __init__(self, dim_in, dim_out, num_heads, num_inds, ln=False):
        super(ISAB, self).__init__()  # noqa: UP008
        self.I = nn.Parameter(torch.Tensor(1, num_inds, dim_out))
        nn.init.xavier_uniform_(self.I)
        self.mab0 = MAB(dim_out, dim_in, dim_out, num_heads, ln=ln)
        self.mab1 = MAB(dim_in, dim_out, dim_out, num_heads, ln=ln)

    def forward(self, X):
        H = self.mab0(self.I.repeat(X.size(0), 1, 1), X)
        return self.mab1(X, H)


class PMA(nn.Module):
    def __init__(self, dim, num_heads, num_seeds, ln=False):
        super(PMA, self).__init__()  # noqa: UP008
        self.S = nn.Parameter(torch.Tensor(1, num_seeds, dim))
        nn.init.xavier_uniform_(self.S)
        self.mab = MAB(dim, dim, dim, num_heads, ln=ln)

    def forward(self, X):
        return self.mab(self.S.repeat(X.size(0), 1, 1), X)


# ----------------------------------------------------------------- models.py
class SetTransformer(nn.Module):
    def __init__(self, dim_input, num_outputs, dim_output, num_inds=32, dim_hidden=128, num_heads=4, ln=False):
        super(SetTransformer, self).__init__()  # noqa: UP008
        self.enc = nn.Sequential(
            ISAB(dim_input, dim_hidden, num_heads, num_inds, ln=ln),
            ISAB(dim_hidden, dim_hidden, num_heads, num_inds, ln=ln))
        self.dec = nn.Sequential(
            PMA(dim_hidden, num_heads, num_outputs, ln=ln),
            SAB(dim_hidden, dim_hidden, num_heads, ln=ln),
            SAB(dim_hidden, dim_hidden, num_heads, ln=ln),
            nn.Linear(dim_hidden, dim_output))

    def forward(self, X):
        return self.dec(self.enc(X))


# ----------------------------------------------------------------- max_regression_demo
class SmallSetTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(
            SAB(dim_in=1, dim_out=32, num_heads=4),
            SAB(dim_in=32, dim_out=32, num_heads=4))
        self.dec = nn.Sequential(
            PMA(dim=32, num_heads=4, num_seeds=1),
            nn.Linear(in_features=32, out_features=1))

    def forward(self, x):
        x = self.enc(x)
        x = self.dec(x)
        return x.squeeze(-1)


class DeepSet(nn.Module):
    def __init__(self, in_features, set_features=32):
        super(DeepSet, self).__init__()  # noqa: UP008
        self.in_features = in_features
        self.out_features = set_features
        self.feature_extractor = nn.Sequential(
            nn.Linear(in_features, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, set_features))
        self.regressor = nn.Sequential(
            nn.Linear(set_features, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, input):
        x = input
        x = self.feature_extractor(x)
        x = x.mean(dim=-2)
        x = self.regressor(x)
        return x


def gen_data(batch_size, max_length=10):
    length = np.random.randint(1, max_length + 1)
    x = np.random.randint(1, 100, (batch_size, length)) / 100.0
    y = np.max(x, axis=1)
    x, y = np.expand_dims(x, axis=2), np.expand_dims(y, axis=1)
    return x, y


def train_max(model, steps=200):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.L1Loss()
    losses = []
    for _ in range(steps):
        x, y = gen_data(batch_size=2 ** 6, max_length=10)
        x, y = torch.from_numpy(x).float(), torch.from_numpy(y).float()
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.mean(losses[-50:])


def eval_max(model, n=200):
    with torch.no_grad():
        x = torch.from_numpy(np.random.randint(1, 100, (n, 10, 1)) / 100.0).float()
        return F.l1_loss(model(x), x.max(dim=1)[0]).item(), model, x


set_model = SmallSetTransformer()
deep_set = DeepSet(in_features=1)
print("max regression, last-50 train L1: set transformer %.4f deep set %.4f"  # noqa: UP031
      % (train_max(set_model), train_max(deep_set)))
st_l1, _, x = eval_max(set_model)
ds_l1, _, _ = eval_max(deep_set)
print(f"max regression test L1: set transformer {st_l1:.4f} deep set {ds_l1:.4f}")
with torch.no_grad():
    permuted = x[:, torch.randperm(x.shape[1])]
    print("permutation invariant:", torch.allclose(set_model(x), set_model(permuted), atol=1e-5),
          torch.allclose(deep_set(x), deep_set(permuted), atol=1e-5))


# ----------------------------------------------------------------- mixture_of_mvns (amortised clustering)
K_CLUSTERS, N_POINTS = 3, 48


def sample_mixtures(batch_size):
    """Sets of points from random mixtures of K isotropic Gaussians in 2-d, means in the unit square."""
    logits = torch.randn(batch_size, K_CLUSTERS) * 0.3
    pi = torch.softmax(logits, -1)
    mu = -1.0 + 2.0 * torch.rand(batch_size, K_CLUSTERS, 2)
    sigma = 0.08 + 0.05 * torch.rand(batch_size, K_CLUSTERS, 1)
    labels = torch.multinomial(pi, N_POINTS, replacement=True)
    idx = labels.unsqueeze(-1).expand(-1, -1, 2)
    X = torch.gather(mu, 1, idx) + torch.gather(sigma.expand(-1, -1, 2), 1, idx) * torch.randn(batch_size, N_POINTS, 2)
    return X, (pi, mu, sigma)


def mog_log_likelihood(X, pi, mu, log_sigma):
    """Mean per-point log-likelihood of X (B, N, 2) under mixtures (B, K) x (B, K, 2) x (B, K, 1)."""
    diff = X.unsqueeze(2) - mu.unsqueeze(1)  # B, N, K, 2
    sigma = log_sigma.exp().unsqueeze(1)  # B, 1, K, 1
    log_normal = (-0.5 * (diff / sigma).pow(2) - torch.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)
    return torch.logsumexp(torch.log(pi).unsqueeze(1) + log_normal, dim=2).mean()


def parse(out):
    pi = torch.softmax(out[..., 0], -1)
    mu = out[..., 1:3]
    log_sigma = out[..., 3:4]
    return pi, mu, log_sigma


net = SetTransformer(dim_input=2, num_outputs=K_CLUSTERS, dim_output=4, num_inds=16, dim_hidden=32,
                     num_heads=4, ln=True)
print("parameters:", sum(p.numel() for p in net.parameters()), "inducing points:", tuple(net.enc[0].I.shape),
      "has ln0:", getattr(net.enc[0].mab0, "ln0", None) is not None)
optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
for step in range(1, 151):
    X, _ = sample_mixtures(16)
    loss = -mog_log_likelihood(X, *parse(net(X)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0 or step == 1:
        print(f"clustering step {step}: nll {loss.item():.3f}")

net.eval()
with torch.no_grad():
    X, (pi, mu, sigma) = sample_mixtures(64)
    out = net(X)
    ll = mog_log_likelihood(X, *parse(out)).item()
    oracle = mog_log_likelihood(X, pi, mu, torch.log(sigma)).item()
    permuted_out = net(X[:, torch.randperm(N_POINTS)])
    print("clustering output:", tuple(out.shape), "permutation invariant:",
          torch.allclose(out, permuted_out, atol=1e-4))
print(f"FINAL st_l1={st_l1:.4f} deepset_l1={ds_l1:.4f} cluster_ll={ll:.4f} oracle_ll={oracle:.4f} "
      f"ll_gap={oracle - ll:.4f}")
