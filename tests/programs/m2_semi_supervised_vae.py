"""Kingma et al.'s M2 semi-supervised VAE (NeurIPS 2014; dpkingma/nips14-ssl, pyro's ss-vae tutorial
written in plain torch), at tiny sizes on synthetic binary "digits".

Four classes of 48-pixel binary images: each class has its own prototype logits, a 2-d style vector
shifts every class alike, pixels are Bernoulli. Only 3 labels per class are known. The encoder
``q(y|x)`` (``F.softmax`` of an MLP) and ``q(z|x,y)`` (an MLP on ``torch.cat([x, y], -1)`` giving ``loc`` and
``F.softplus`` scale), the decoder ``p(x|y,z)`` with the Bernoulli likelihood as
``F.binary_cross_entropy_with_logits(logits, x, reduction='none').sum(-1)``, the Gaussian KL in closed
form, the uniform prior ``log p(y) = -log C``. The unlabelled bound sums over all classes by
enumeration: ``torch.eye(C)`` expanded over the batch and ``x.repeat_interleave(C, dim=0)``, the
per-class losses ``view(B, C)``, weighted by ``q(y|x)`` and corrected by its entropy; the labelled
part adds ``alpha * F.cross_entropy`` on the classifier's logits (``alpha = 30``, the role of pyro's
``aux_loss_multiplier``). Adam over both.

Checked: the enumerated bound equals a loop over classes with ``F.one_hot(torch.full(...))``, the M2
classifier's test accuracy with 12 labels against the same classifier trained on those labels alone,
and the test ELBO rises.
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

C, D, Z, H = 4, 48, 2, 64
N_TRAIN, N_TEST, LABELS_PER_CLASS = 800, 400, 3
EPOCHS, BATCH = 16, 80

rng = np.random.RandomState(seed)
prototypes = rng.randn(C, D) * 1.5
style_map = rng.randn(2, D) * 2.5


def make_data(n):
    y = rng.randint(C, size=n)
    style = rng.randn(n, 2)
    logits = prototypes[y] + style @ style_map
    x = (rng.rand(n, D) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y).long()


x_train, y_train = make_data(N_TRAIN)
x_test, y_test = make_data(N_TEST)
labelled_idx = torch.cat([torch.nonzero(y_train == c).view(-1)[:LABELS_PER_CLASS] for c in range(C)])
mask = torch.zeros(N_TRAIN, dtype=torch.bool)
mask[labelled_idx] = True
x_sup, y_sup = x_train[mask], y_train[mask]
x_unsup = x_train[~mask]
print(f"data: {N_TRAIN} train ({int(mask.sum())} labelled), {N_TEST} test, {C} classes, {D} pixels")


class Encoder_y(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, H), nn.Softplus(), nn.Linear(H, C))

    def forward(self, x):
        return self.net(x)


class Encoder_z(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(D + C, H), nn.Softplus())
        self.loc = nn.Linear(H, Z)
        self.scale = nn.Linear(H, Z)

    def forward(self, x, y):
        h = self.hidden(torch.cat([x, y], -1))
        return self.loc(h), F.softplus(self.scale(h)) + 1e-3


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(Z + C, H), nn.Softplus(), nn.Linear(H, D))

    def forward(self, z, y):
        return self.net(torch.cat([z, y], -1))


class SSVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder_y = Encoder_y()
        self.encoder_z = Encoder_z()
        self.decoder = Decoder()

    def neg_elbo_labelled(self, x, y_onehot):
        """-ELBO(x, y) per example: reconstruction + KL(q(z|x,y) || N(0, I)) - log p(y)."""
        loc, scale = self.encoder_z(x, y_onehot)
        z = loc + scale * torch.randn_like(loc) if self.training else loc
        logits = self.decoder(z, y_onehot)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        kl = 0.5 * (loc.pow(2) + scale.pow(2) - 1 - 2 * torch.log(scale)).sum(-1)
        return rec + kl + math.log(C)

    def neg_elbo_unlabelled(self, x):
        """-U(x): the labelled bound enumerated over every class, weighted by q(y|x), minus its entropy."""
        B = x.size(0)
        ys = torch.eye(C).unsqueeze(0).expand(B, C, C).reshape(B * C, C)
        xs = x.repeat_interleave(C, dim=0)
        L = self.neg_elbo_labelled(xs, ys).view(B, C)
        q_y = F.softmax(self.encoder_y(x), dim=-1)
        entropy = -(q_y * torch.log(q_y + 1e-8)).sum(-1)
        return (q_y * L).sum(-1) - entropy, L

    def neg_elbo_unlabelled_loop(self, x):
        B = x.size(0)
        losses = []
        for c in range(C):
            y = F.one_hot(torch.full((B,), c, dtype=torch.long), C).float()
            losses.append(self.neg_elbo_labelled(x, y))
        L = torch.stack(losses, dim=1)
        q_y = F.softmax(self.encoder_y(x), dim=-1)
        entropy = -(q_y * torch.log(q_y + 1e-8)).sum(-1)
        return (q_y * L).sum(-1) - entropy, L


def accuracy(classifier, x, y):
    with torch.no_grad():
        return (classifier(x).argmax(-1) == y).float().mean().item()


def test_elbo(model):
    model.eval()
    with torch.no_grad():
        loss, _ = model.neg_elbo_unlabelled(x_test)
    model.train()
    return -loss.mean().item()


model = SSVAE()
alpha = 30.0
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

model.eval()  # z at its mean: both routes see the same numbers
with torch.no_grad():
    enum_loss, enum_L = model.neg_elbo_unlabelled(x_test[:16])
    loop_loss, loop_L = model.neg_elbo_unlabelled_loop(x_test[:16])
model.train()
route_err = max((enum_loss - loop_loss).abs().max().item(), (enum_L - loop_L).abs().max().item())
print(f"enumerated bound vs per-class loop: max abs diff {route_err:.2e}")

elbo_init = test_elbo(model)
print(f"init: test ELBO {elbo_init:.3f}")

n_unsup = x_unsup.size(0)
for epoch in range(1, EPOCHS + 1):
    perm = torch.randperm(n_unsup)
    total = 0.0
    for i in range(0, n_unsup, BATCH):
        xb = x_unsup[perm[i:i + BATCH]]
        sup = torch.randint(0, x_sup.size(0), (BATCH // 2,))
        xs, ys = x_sup[sup], y_sup[sup]
        loss_u, _ = model.neg_elbo_unlabelled(xb)
        loss_l = model.neg_elbo_labelled(xs, F.one_hot(ys, C).float())
        loss_c = F.cross_entropy(model.encoder_y(xs), ys)
        loss = loss_u.mean() + loss_l.mean() + alpha * loss_c
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    if epoch % 4 == 0:
        print(f"epoch {epoch} loss {total:.2f} test acc {accuracy(model.encoder_y, x_test, y_test):.3f}")

elbo_final = test_elbo(model)
acc_m2 = accuracy(model.encoder_y, x_test, y_test)

baseline = Encoder_y()
opt_b = torch.optim.Adam(baseline.parameters(), lr=3e-3)
for _step in range(EPOCHS * math.ceil(n_unsup / BATCH)):
    sup = torch.randint(0, x_sup.size(0), (BATCH // 2,))
    loss_b = F.cross_entropy(baseline(x_sup[sup]), y_sup[sup])
    opt_b.zero_grad()
    loss_b.backward()
    opt_b.step()
acc_base = accuracy(baseline, x_test, y_test)
print(f"final: test ELBO {elbo_final:.3f}, M2 acc {acc_m2:.3f}, labels-only acc {acc_base:.3f}")
print(f"FINAL route_err={route_err:.6f} elbo_init={elbo_init:.4f} elbo_final={elbo_final:.4f} "
      f"acc_m2={acc_m2:.4f} acc_base={acc_base:.4f} gain={acc_m2 - acc_base:.4f}")
