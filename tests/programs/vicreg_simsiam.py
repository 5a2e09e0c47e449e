"""VICReg and SimSiam, the shape of facebookresearch/vicreg (``main_vicreg.py``) and
facebookresearch/simsiam (``simsiam/builder.py``, ``main_simsiam.py``, ``main_lincls.py``) at tiny
sizes. VICReg: ``off_diagonal(x)`` by ``x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()``
(against a ``~torch.eye(n, dtype=torch.bool)`` mask: must agree), the invariance term
``F.mse_loss``, the variance term ``torch.sqrt(x.var(dim=0) + 0.0001)`` under ``F.relu(1 - std_x)``,
the covariance ``(x.T @ x) / (batch_size - 1)``; its ``Projector`` built from an ``"8192-8192-8192"``
style ``mlp`` string. SimSiam: a projector ending in ``BatchNorm1d(affine=False)`` with the
``fc[6].bias.requires_grad = False`` hack, the bottleneck predictor, ``D(p, z)`` as
``-F.cosine_similarity(p, z.detach(), dim=-1).mean()``, SGD with ``init_lr = lr * batch_size / 256``
over ``[{'params': encoder}, {'params': predictor, 'fix_lr': True}]`` and the cosine
``adjust_learning_rate`` writing ``param_group['lr']`` only where ``'fix_lr' not in param_group``.
Then ``main_lincls``'s linear probe: the backbone frozen by ``requires_grad = False`` except
``fc``, ``model.fc.weight.data.normal_(mean=0.0, std=0.01)`` + ``bias.data.zero_()``,
``model.eval()``, and the ``sanity_check`` that the frozen weights did not move.
Data: four clusters of 16-d vectors seen through random noise + feature-dropout views.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

D_IN, N_CLASSES = 16, 4
centres = rng.randn(N_CLASSES, D_IN).astype(np.float32) * 0.5


def make_data(n):
    y = rng.randint(0, N_CLASSES, n)
    x = centres[y] + 1.0 * rng.randn(n, D_IN).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


x_train, y_train = make_data(384)
x_test, y_test = make_data(256)


def augment(x):
    x = x + 0.4 * torch.randn_like(x)
    keep = (torch.rand_like(x) > 0.2).float()
    return x * keep


class Backbone(nn.Module):
    """A tiny ResNet stand-in: an encoder whose last layer is ``fc`` (as torchvision's resnets)."""

    def __init__(self, num_classes=32):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Linear(D_IN, 64), nn.BatchNorm1d(64), nn.ReLU(inplace=True))
        self.layer2 = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(inplace=True))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(self.layer2(self.layer1(x)))


# ----------------------------------------------------------------------------- VICReg


def off_diagonal(x):
    # return a flattened view of the off-diagonal elements of a square matrix
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def Projector(mlp, embedding):
    mlp_spec = f"{embedding}-{mlp}"
    layers = []
    f = list(map(int, mlp_spec.split("-")))
    for i in range(len(f) - 2):
        layers.append(nn.Linear(f[i], f[i + 1]))
        layers.append(nn.BatchNorm1d(f[i + 1]))
        layers.append(nn.ReLU(True))
    layers.append(nn.Linear(f[-2], f[-1], bias=False))
    return nn.Sequential(*layers)


class VICReg(nn.Module):
    def __init__(self, mlp="48-48-48", sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0, batch_size=64):
        super().__init__()
        self.num_features = int(mlp.split("-")[-1])
        self.backbone = Backbone()
        self.backbone.fc = nn.Identity()
        self.embedding = 32
        self.projector = Projector(mlp, self.embedding)
        self.sim_coeff, self.std_coeff, self.cov_coeff = sim_coeff, std_coeff, cov_coeff
        self.batch_size = batch_size

    def forward(self, x, y):
        x = self.projector(self.backbone(x))
        y = self.projector(self.backbone(y))

        repr_loss = F.mse_loss(x, y)

        x = x - x.mean(dim=0)
        y = y - y.mean(dim=0)

        std_x = torch.sqrt(x.var(dim=0) + 0.0001)
        std_y = torch.sqrt(y.var(dim=0) + 0.0001)
        std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2

        cov_x = (x.T @ x) / (self.batch_size - 1)
        cov_y = (y.T @ y) / (self.batch_size - 1)
        cov_loss = off_diagonal(cov_x).pow_(2).sum().div(
            self.num_features
        ) + off_diagonal(cov_y).pow_(2).sum().div(self.num_features)

        loss = (
            self.sim_coeff * repr_loss
            + self.std_coeff * std_loss
            + self.cov_coeff * cov_loss
        )
        return loss, (repr_loss.item(), std_loss.item(), cov_loss.item())


# the view trick against a boolean mask, on a rectangular-free square and its gradient
probe = torch.randn(7, 7, requires_grad=True)
a = off_diagonal(probe)
b = probe[~torch.eye(7, dtype=torch.bool)]
(a.pow(2).sum()).backward()
g_view = probe.grad.clone()
probe.grad = None
(b.pow(2).sum()).backward()
offdiag_err = (a - b).abs().max().item() + (g_view - probe.grad).abs().max().item()
print(f"off_diagonal: {a.numel()} elements, view vs mask max err {offdiag_err:.2e}")

batch_size = 64
vicreg = VICReg(batch_size=batch_size)
opt = torch.optim.Adam(vicreg.parameters(), lr=2e-3, weight_decay=1e-6)
vic_first = vic_last = None
for epoch in range(6):
    perm = torch.randperm(x_train.shape[0])
    total, parts, steps = 0.0, np.zeros(3), 0
    vicreg.train()
    for i in range(0, x_train.shape[0], batch_size):
        xb = x_train[perm[i:i + batch_size]]
        loss, comps = vicreg(augment(xb), augment(xb))
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
        parts += comps
        steps += 1
    total /= steps
    parts /= steps
    vic_first = total if vic_first is None else vic_first
    vic_last = total
    print(f"vicreg epoch {epoch} loss {total:.4f} repr {parts[0]:.4f} std {parts[1]:.4f} cov {parts[2]:.4f}")

# ----------------------------------------------------------------------------- SimSiam


class SimSiam(nn.Module):
    """Build a SimSiam model."""

    def __init__(self, base_encoder, dim=48, pred_dim=12):
        super().__init__()
        # create the encoder; num_classes is the output fc dimension, zero-initialise last BNs
        self.encoder = base_encoder(num_classes=dim)

        # build a 3-layer projector
        prev_dim = self.encoder.fc.weight.shape[1]
        self.encoder.fc = nn.Sequential(nn.Linear(prev_dim, prev_dim, bias=False),
                                        nn.BatchNorm1d(prev_dim),
                                        nn.ReLU(inplace=True),  # first layer
                                        nn.Linear(prev_dim, prev_dim, bias=False),
                                        nn.BatchNorm1d(prev_dim),
                                        nn.ReLU(inplace=True),  # second layer
                                        self.encoder.fc,
                                        nn.BatchNorm1d(dim, affine=False))  # output layer
        self.encoder.fc[6].bias.requires_grad = False  # hack: not use bias as it is followed by BN

        # build a 2-layer predictor
        self.predictor = nn.Sequential(nn.Linear(dim, pred_dim, bias=False),
                                       nn.BatchNorm1d(pred_dim),
                                       nn.ReLU(inplace=True),  # hidden layer
                                       nn.Linear(pred_dim, dim))  # output layer

    def forward(self, x1, x2):
        z1 = self.encoder(x1)  # NxC
        z2 = self.encoder(x2)  # NxC

        p1 = self.predictor(z1)  # NxC
        p2 = self.predictor(z2)  # NxC

        return p1, p2, z1.detach(), z2.detach()


def D(p, z):
    # negative cosine similarity with stop-gradient
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()


def D_manual(p, z):
    p = F.normalize(p, dim=1)
    z = F.normalize(z, dim=1)
    return -(p * z).sum(dim=1).mean()


def adjust_learning_rate(optimizer, init_lr, epoch, epochs):
    """Decay the learning rate based on schedule"""
    cur_lr = init_lr * 0.5 * (1. + math.cos(math.pi * epoch / epochs))
    for param_group in optimizer.param_groups:
        if 'fix_lr' in param_group and param_group['fix_lr']:
            param_group['lr'] = init_lr
        else:
            param_group['lr'] = cur_lr


model = SimSiam(Backbone)
criterion = nn.CosineSimilarity(dim=1)
lr, epochs = 0.4, 8
init_lr = lr * batch_size / 256
optim_params = [{'params': model.encoder.parameters(), 'fix_lr': False},
                {'params': model.predictor.parameters(), 'fix_lr': True}]
optimizer = torch.optim.SGD(optim_params, init_lr, momentum=0.9, weight_decay=1e-4)
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"simsiam trainable parameters {n_trainable}, init_lr {init_lr:.4f}")

sim_err = 0.0
sim_first = sim_last = None
for epoch in range(epochs):
    adjust_learning_rate(optimizer, init_lr, epoch, epochs)
    model.train()
    perm = torch.randperm(x_train.shape[0])
    total, steps = 0.0, 0
    for i in range(0, x_train.shape[0], batch_size):
        xb = x_train[perm[i:i + batch_size]]
        p1, p2, z1, z2 = model(x1=augment(xb), x2=augment(xb))
        loss = -(criterion(p1, z2).mean() + criterion(p2, z1).mean()) * 0.5
        alt = D(p1, z2) / 2 + D(p2, z1) / 2
        sim_err = max(sim_err, abs(loss.item() - alt.item()),
                      abs(D(p1, z2).item() - D_manual(p1, z2).item()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
        steps += 1
    total /= steps
    sim_first = total if sim_first is None else sim_first
    sim_last = total
    lrs = [g['lr'] for g in optimizer.param_groups]
    print(f"simsiam epoch {epoch} loss {total:.4f} lr {lrs[0]:.4f} pred_lr {lrs[1]:.4f}")

with torch.no_grad():
    model.eval()
    z = F.normalize(model.encoder(x_test), dim=1)
    collapse_std = z.std(dim=0).mean().item() * math.sqrt(z.shape[1])
print(f"simsiam output std x sqrt(dim) {collapse_std:.4f} (collapse -> 0), cos-loss agreement {sim_err:.2e}")

# ----------------------------------------------------------------------------- linear probes


def linear_probe(encoder_state, name):
    """main_lincls: load the pre-trained encoder, freeze all but fc, re-init fc, train it."""
    model = Backbone(num_classes=N_CLASSES)
    for name_, param in model.named_parameters():
        if name_ not in ['fc.weight', 'fc.bias']:
            param.requires_grad = False
    # init the fc layer
    model.fc.weight.data.normal_(mean=0.0, std=0.01)
    model.fc.bias.data.zero_()

    state_dict = {k: v for k, v in encoder_state.items() if not k.startswith('fc')}
    msg = model.load_state_dict(state_dict, strict=False)
    assert set(msg.missing_keys) == {"fc.weight", "fc.bias"}, msg.missing_keys

    parameters = list(filter(lambda p: p.requires_grad, model.parameters()))
    assert len(parameters) == 2  # fc.weight, fc.bias
    optimizer = torch.optim.SGD(parameters, 0.5, momentum=0.9, weight_decay=0.)
    before = {k: v.clone() for k, v in model.state_dict().items() if 'fc' not in k}
    for _epoch in range(25):
        model.eval()  # BN statistics frozen as in the linear protocol
        perm = torch.randperm(x_train.shape[0])
        for i in range(0, x_train.shape[0], batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    # sanity_check: the frozen backbone must not have moved
    for k, v in model.state_dict().items():
        if 'fc' not in k:
            assert torch.equal(v, before[k]), k
    with torch.no_grad():
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"linear probe on {name}: test acc {acc:.4f}, loss {loss.item():.4f}")
    return acc


vic_acc = linear_probe(vicreg.backbone.state_dict(), "vicreg")
sim_acc = linear_probe(model.encoder.state_dict(), "simsiam")
print(f"FINAL vic_loss_first={vic_first:.4f} vic_loss={vic_last:.4f} sim_loss={sim_last:.4f} "
      f"vic_acc={vic_acc:.4f} sim_acc={sim_acc:.4f} offdiag_err={offdiag_err:.6f} "
      f"cos_err={sim_err:.6f} sim_std={collapse_std:.4f}")
