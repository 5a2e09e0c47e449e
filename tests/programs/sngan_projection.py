"""SNGAN with a projection discriminator (Miyato & Koyama, ICLR 2018) in the style of
pfnet-research/sngan_projection and POSTECH-CVLab/PyTorch-StudioGAN, on synthetic class-conditional 16x16
images (three classes: a bright top half, a bright left half, a bright centre disc, with jitter and noise).

* Generator: ``nn.Linear`` to a 4x4 map, two ``GenBlock``s (conditional BatchNorm = ``nn.BatchNorm2d(
  affine=False)`` + an ``nn.Embedding`` giving ``gamma, beta = self.embed(y).chunk(2, 1)``, initialised by
  ``embed.weight.data[:, :num_features].normal_(1, 0.02)`` and ``[:, num_features:].zero_()``, ReLU,
  ``F.interpolate(scale_factor=2)``, conv), a final BN-ReLU-conv-``tanh``.
* Discriminator: ``snconv2d``/``snlinear``/``sn_embedding`` wrappers around ``nn.utils.spectral_norm``, ReLU,
  ``F.avg_pool2d``, ``h = torch.sum(self.activation(h), dim=[2, 3])``, and the projection ``output =
  self.linear(h) + torch.sum(self.embedding(y) * h, dim=1, keepdim=True)``.
* Training: hinge losses (``F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()``, ``-d_fake.mean()``),
  TTUR Adam with ``betas=(0.0, 0.9)``, ``n_dis`` critic steps per generator step, an EMA copy of G
  (``p_ema.copy_(p.lerp(p_ema, decay))``, buffers copied).

Checked: after power iterations the σ estimate ``u @ W @ v`` of ``nn.utils.spectral_norm`` (``weight_orig``,
``weight_u``, ``weight_v``) and of ``nn.utils.parametrizations.spectral_norm`` (``parametrizations.weight.original``,
``_u``, ``_v``) agree with ``torch.linalg.matrix_norm(W.flatten(1), 2)`` on a Linear, a Conv2d and an Embedding,
the normalised weights have unit spectral norm, and ``eval()`` freezes the vectors; a discriminator built
with the parametrizations API and given the same weights gives the same outputs; the projection equals its
hand-written inner product; then a class-conditional accuracy of generated samples (G and its EMA) under a
separately trained classifier.
"""

# ruff: noqa: UP031  (the repos' % formats)

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

NUM_CLASSES = 3
SIZE = 16
Z_DIM = 16
G_CH = 16
D_CH = 8
BATCH = 16
N_ITERS = 150
N_DIS = 1


def make_data(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    labels = rng.randint(0, NUM_CLASSES, size=n)
    images = np.full((n, 1, SIZE, SIZE), -0.8, dtype=np.float32)
    for i, c in enumerate(labels):
        j = rng.randint(-2, 3)
        if c == 0:
            region = yy < SIZE // 2 + j
        elif c == 1:
            region = xx < SIZE // 2 + j
        else:
            cy, cx = SIZE / 2 + rng.uniform(-2, 2, size=2)
            region = (yy - cy) ** 2 + (xx - cx) ** 2 < 16
        images[i, 0][region] = 0.8
    images += 0.1 * rng.randn(*images.shape).astype(np.float32)
    return torch.from_numpy(np.clip(images, -1, 1)), torch.from_numpy(labels)


def snconv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, sn=nn.utils.spectral_norm):
    return sn(nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding), eps=1e-6)


def snlinear(in_features, out_features, sn=nn.utils.spectral_norm):
    return sn(nn.Linear(in_features, out_features), eps=1e-6)


def sn_embedding(num_embeddings, embedding_dim, sn=nn.utils.spectral_norm):
    return sn(nn.Embedding(num_embeddings, embedding_dim), eps=1e-6)


class ConditionalBatchNorm2d(nn.Module):
    def __init__(self, num_features, num_classes):
        super().__init__()
        self.num_features = num_features
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.embed = nn.Embedding(num_classes, num_features * 2)
        self.embed.weight.data[:, :num_features].normal_(1, 0.02)
        self.embed.weight.data[:, num_features:].zero_()

    def forward(self, x, y):
        out = self.bn(x)
        gamma, beta = self.embed(y).chunk(2, 1)
        out = gamma.view(-1, self.num_features, 1, 1) * out + beta.view(-1, self.num_features, 1, 1)
        return out


class GenBlock(nn.Module):
    def __init__(self, in_channels, out_channels, num_classes):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_channels, num_classes)
        self.conv2d1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn2 = ConditionalBatchNorm2d(out_channels, num_classes)
        self.conv2d2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv2d0 = nn.Conv2d(in_channels, out_channels, 1)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x, label):
        x0 = x
        x = self.bn1(x, label)
        x = self.activation(x)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv2d1(x)
        x = self.bn2(x, label)
        x = self.activation(x)
        x = self.conv2d2(x)
        x0 = F.interpolate(x0, scale_factor=2, mode="nearest")
        x0 = self.conv2d0(x0)
        return x + x0


class Generator(nn.Module):
    def __init__(self, z_dim=Z_DIM, g_conv_dim=G_CH, num_classes=NUM_CLASSES):
        super().__init__()
        self.z_dim = z_dim
        self.g_conv_dim = g_conv_dim
        self.linear0 = nn.Linear(z_dim, g_conv_dim * 4 * 4)
        self.blocks = nn.ModuleList([GenBlock(g_conv_dim, g_conv_dim, num_classes),
                                     GenBlock(g_conv_dim, g_conv_dim, num_classes)])
        self.bn4 = nn.BatchNorm2d(g_conv_dim)
        self.activation = nn.ReLU(inplace=True)
        self.conv2d5 = nn.Conv2d(g_conv_dim, 1, 3, padding=1)
        self.tanh = nn.Tanh()

    def forward(self, z, label):
        act = self.linear0(z).view(-1, self.g_conv_dim, 4, 4)
        for block in self.blocks:
            act = block(act, label)
        act = self.activation(self.bn4(act))
        return self.tanh(self.conv2d5(act))


class DiscBlock(nn.Module):
    def __init__(self, in_channels, out_channels, downsample=True, sn=nn.utils.spectral_norm):
        super().__init__()
        self.downsample = downsample
        self.activation = nn.ReLU(inplace=False)
        self.conv2d1 = snconv2d(in_channels, out_channels, 3, padding=1, sn=sn)
        self.conv2d2 = snconv2d(out_channels, out_channels, 3, padding=1, sn=sn)
        self.conv2d0 = snconv2d(in_channels, out_channels, 1, sn=sn)

    def forward(self, x):
        x0 = x
        x = self.activation(x)
        x = self.conv2d1(x)
        x = self.activation(x)
        x = self.conv2d2(x)
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        x0 = self.conv2d0(x0)
        if self.downsample:
            x0 = F.avg_pool2d(x0, 2)
        return x + x0


class Discriminator(nn.Module):
    def __init__(self, d_conv_dim=D_CH, num_classes=NUM_CLASSES, sn=nn.utils.spectral_norm):
        super().__init__()
        self.blocks = nn.ModuleList([DiscBlock(1, d_conv_dim, sn=sn), DiscBlock(d_conv_dim, d_conv_dim * 2, sn=sn)])
        self.activation = nn.ReLU(inplace=True)
        self.linear1 = snlinear(d_conv_dim * 2, 1, sn=sn)
        self.embedding = sn_embedding(num_classes, d_conv_dim * 2, sn=sn)

    def features(self, x):
        h = x
        for block in self.blocks:
            h = block(h)
        h = self.activation(h)
        return torch.sum(h, dim=[2, 3])

    def forward(self, x, label):
        h = self.features(x)
        output = torch.squeeze(self.linear1(h))
        proj = torch.sum(torch.mul(self.embedding(label), h), 1)
        return output + proj


# ---- spectral norm checks ----
def sigma_old(module):
    w = module.weight_orig.flatten(1)
    return torch.dot(module.weight_u, torch.mv(w, module.weight_v)).item()


def sigma_new(module):
    w = module.parametrizations.weight.original.flatten(1)
    p = module.parametrizations.weight[0]
    return torch.dot(p._u, torch.mv(w, p._v)).item()


sn_err = 0.0
unit_err = 0.0
for name, make, x in [
    ("linear", lambda: nn.Linear(12, 8), torch.randn(4, 12)),
    ("conv", lambda: nn.Conv2d(3, 6, 3), torch.randn(2, 3, 5, 5)),
    ("embedding", lambda: nn.Embedding(5, 7), torch.tensor([0, 3, 4])),
]:
    old = nn.utils.spectral_norm(make(), n_power_iterations=1)
    new = nn.utils.parametrizations.spectral_norm(make(), n_power_iterations=1)
    for _ in range(40):
        old(x)
        new(x)
    true_old = torch.linalg.matrix_norm(old.weight_orig.detach().flatten(1), 2).item()
    true_new = torch.linalg.matrix_norm(new.parametrizations.weight.original.detach().flatten(1), 2).item()
    err = max(abs(sigma_old(old) - true_old) / true_old, abs(sigma_new(new) - true_new) / true_new)
    unit = max(abs(torch.linalg.matrix_norm(old.weight.detach().flatten(1), 2).item() - 1),
               abs(torch.linalg.matrix_norm(new.weight.detach().flatten(1), 2).item() - 1))
    sn_err = max(sn_err, err)
    unit_err = max(unit_err, unit)
    old_keys = sorted(k for k in old.state_dict())
    new_keys = sorted(k for k in new.state_dict())
    print("%-9s sigma rel err %.2e, normalised ||W||_2 - 1 %.2e, old keys %s, new keys %s"
          % (name, err, unit, old_keys, new_keys))

old.eval()
u_before = old.weight_u.clone()
new.eval()
nu_before = new.parametrizations.weight[0]._u.clone()
old(x)
new(x)
eval_frozen = int(torch.equal(u_before, old.weight_u) and torch.equal(nu_before, new.parametrizations.weight[0]._u))
print("eval() freezes u: %d" % eval_frozen)

# the same discriminator through the parametrizations API
D_old = Discriminator()
D_new = Discriminator(sn=nn.utils.parametrizations.spectral_norm)
converted = {}
for k, v in D_old.state_dict().items():
    if k.endswith("weight_orig"):
        converted[k[: -len("weight_orig")] + "parametrizations.weight.original"] = v
    elif not (k.endswith("weight_u") or k.endswith("weight_v")):
        converted[k] = v
missing, unexpected = D_new.load_state_dict(converted, strict=False)
print("parametrized D: %d missing (the u/v vectors), %d unexpected" % (len(missing), len(unexpected)))
xr, yr = make_data(8)
with torch.no_grad():
    for _ in range(100):
        out_old = D_old(xr, yr)
        out_new = D_new(xr, yr)
sn_api_diff = (out_old - out_new).abs().max().item() / out_old.abs().max().item()
h = D_old.features(xr)
manual = h @ D_old.linear1.weight.t() + D_old.linear1.bias + (D_old.embedding.weight[yr] * h).sum(1, keepdim=True)
out = D_old(xr, yr)
proj_diff = (manual.squeeze(1) - out).abs().max().item() / out.abs().max().item()
print("old vs parametrized D rel diff %.2e, projection vs hand-written rel diff %.2e" % (sn_api_diff, proj_diff))


# ---- a classifier for the evaluation, trained on real data ----
classifier = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                           nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, NUM_CLASSES))
c_opt = torch.optim.Adam(classifier.parameters(), lr=1e-2)
for _ in range(80):
    xb, yb = make_data(32)
    loss = F.cross_entropy(classifier(xb), yb)
    c_opt.zero_grad()
    loss.backward()
    c_opt.step()
classifier.eval()
xt, yt = make_data(300)
with torch.no_grad():
    clf_acc = (classifier(xt).argmax(1) == yt).float().mean().item()
print("classifier accuracy on real images %.4f" % clf_acc)


def generated_accuracy(gen, n=300):
    gen.eval()
    with torch.no_grad():
        y = torch.arange(n) % NUM_CLASSES
        z = torch.randn(n, Z_DIM)
        acc = (classifier(gen(z, y)).argmax(1) == y).float().mean().item()
    gen.train()
    return acc


# ---- training ----
G = Generator()
D = Discriminator()
G_ema = copy.deepcopy(G)
ema_decay = 0.95
g_optimizer = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.9))
d_optimizer = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.9))
print("G params %d, D params %d" % (sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())))

acc_start = generated_accuracy(G)
for it in range(N_ITERS):
    for _ in range(N_DIS):
        real_images, real_labels = make_data(BATCH)
        z = torch.randn(BATCH, Z_DIM)
        fake_labels = torch.randint(0, NUM_CLASSES, (BATCH,))
        with torch.no_grad():
            fake_images = G(z, fake_labels)
        d_real = D(real_images, real_labels)
        d_fake = D(fake_images, fake_labels)
        d_loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        d_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()

    z = torch.randn(BATCH, Z_DIM)
    fake_labels = torch.randint(0, NUM_CLASSES, (BATCH,))
    g_loss = -D(G(z, fake_labels), fake_labels).mean()
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()

    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.lerp(p_ema, ema_decay))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)

    if it % 50 == 0 or it == N_ITERS - 1:
        print("iter %3d d_loss %.4f g_loss %.4f acc %.3f" % (it, d_loss.item(), g_loss.item(), generated_accuracy(G_ema)))

acc_g = generated_accuracy(G)
acc_ema = generated_accuracy(G_ema)
d_sigma = max(abs(torch.linalg.matrix_norm(m.weight.detach().flatten(1), 2).item() - 1)
              for m in D.modules() if hasattr(m, "weight_orig"))
print("generated accuracy: start %.4f, G %.4f, EMA G %.4f; max | ||W_sn||_2 - 1 | in D %.2e"
      % (acc_start, acc_g, acc_ema, d_sigma))
print("FINAL sn_err=%.6f unit_err=%.6f eval_frozen=%d sn_api_diff=%.6f proj_diff=%.6f clf_acc=%.4f "
      "acc_start=%.4f acc_g=%.4f acc_ema=%.4f d_sigma=%.4f"
      % (sn_err, unit_err, eval_frozen, sn_api_diff, proj_diff, clf_acc, acc_start, acc_g, acc_ema, d_sigma))
