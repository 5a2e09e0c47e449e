"""A matrix-product-state classifier (Stoudenmire & Schwab 2016, in the style of TorchMPS and
"tensor networks in PyTorch" notebooks) on a small synthetic image task, with the contraction and
canonicalisation tools such code is built from.

Pixels are embedded by the local feature map ``[cos(pi x / 2), sin(pi x / 2)]``; the MPS site tensors
(bond dimension ``chi``) are initialised as ``torch.eye`` plus noise and stacked with ``torch.stack``;
the label site sits in the middle. Contraction runs left to right with ``torch.einsum`` chains of three
operands (``'bi,ijk,bj->bk'`` style: environment, site, feature) and with ``torch.tensordot(a, b,
dims=([2], [0]))`` for the site-by-site product (the two must agree). Training by Adam on cross-entropy
of the contracted logits, the environments renormalised by ``torch.linalg.norm``. Then the MPS tools:
left-canonicalisation by ``torch.linalg.qr`` (``Q^T Q = I`` per site, the state unchanged), truncation
by ``torch.linalg.svd(full_matrices=False)`` keeping ``U[:, :chi]``, ``S[:chi]``, ``Vh[:chi]`` (the
error equals the discarded singular values), the overlap of a product state computed by
``torch.kron`` of local vectors against the MPS contraction, and a gradient through the SVD of a
well-conditioned matrix (the nuclear norm's gradient is ``U Vh``).
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# ----------------------------------------------------------------- data: 4x4 images, bar orientation
SIDE, N_TRAIN, N_TEST, CLASSES = 4, 256, 128, 2


def make_images(n):
    labels = rng.integers(0, CLASSES, size=n)
    images = rng.uniform(0, 0.35, size=(n, SIDE, SIDE))
    positions = rng.integers(0, SIDE, size=n)
    for k in range(n):
        if labels[k] == 0:
            images[k, positions[k], :] += 0.6      # a horizontal bar
        else:
            images[k, :, positions[k]] += 0.6      # a vertical bar
    images = np.clip(images, 0, 1).reshape(n, SIDE * SIDE)
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels)


train_x, train_y = make_images(N_TRAIN)
test_x, test_y = make_images(N_TEST)


def feature_map(x):
    """(B, N) pixels -> (B, N, 2) local feature vectors."""
    return torch.stack([torch.cos(math.pi * x / 2), torch.sin(math.pi * x / 2)], dim=-1)


class MPSClassifier(nn.Module):
    def __init__(self, n_sites, chi, n_classes, d=2, std=5e-2):
        super().__init__()
        self.n_sites, self.chi = n_sites, chi
        self.label_site = n_sites // 2
        eye = torch.eye(chi).unsqueeze(1).expand(chi, d, chi)            # (chi, d, chi)
        sites = [eye + std * torch.randn(chi, d, chi) for _ in range(n_sites)]
        self.sites = nn.Parameter(torch.stack(sites))                      # (N, chi, d, chi)
        label = torch.eye(chi).unsqueeze(1).expand(chi, n_classes, chi)
        self.label = nn.Parameter(label + std * torch.randn(chi, n_classes, chi))
        self.left = nn.Parameter(torch.ones(chi) / math.sqrt(chi), requires_grad=False)
        self.right = nn.Parameter(torch.ones(chi) / math.sqrt(chi), requires_grad=False)

    def contract_einsum(self, phi):
        """phi (B, N, d) -> logits (B, C), one three-operand einsum per site."""
        env = self.left.expand(phi.shape[0], -1)                             # (B, chi)
        log_scale = torch.zeros(phi.shape[0])
        for n in range(self.n_sites):
            if n == self.label_site:
                env_label = env
                env = torch.ones(phi.shape[0], self.chi) / math.sqrt(self.chi)
                label_scale = log_scale
                log_scale = torch.zeros(phi.shape[0])
            env = torch.einsum('bi,idk,bd->bk', env, self.sites[n], phi[:, n])
            norm = torch.linalg.norm(env, dim=1, keepdim=True)
            env = env / norm
            log_scale = log_scale + torch.log(norm.squeeze(1))
        right_env = torch.einsum('bk,k->b', env, self.right).unsqueeze(1)  # (B, 1)
        # the label site joins the left environment and the middle-to-right chain (started fresh)
        mid = torch.einsum('bi,ick->bck', env_label, self.label)
        logits = torch.einsum('bck,k->bc', mid, torch.ones(self.chi) / math.sqrt(self.chi)) * right_env
        return logits, label_scale + log_scale

    def contract_tensordot(self, phi):
        """The same chain by tensordot: contract each site with its feature first, then the bond."""
        b = phi.shape[0]
        env = self.left.expand(b, -1)
        for n in range(self.label_site):
            site_matrices = torch.tensordot(phi[:, n], self.sites[n], dims=([1], [1]))   # (B, chi, chi)
            env = torch.bmm(env.unsqueeze(1), site_matrices).squeeze(1)
            env = env / torch.linalg.norm(env, dim=1, keepdim=True)
        return env

    def forward(self, x):
        logits, _ = self.contract_einsum(feature_map(x))
        return logits


N_SITES = SIDE * SIDE
CHI = 6
model = MPSClassifier(N_SITES, CHI, CLASSES)
print("sites", tuple(model.sites.shape), "label", tuple(model.label.shape), "parameters",
      sum(p.numel() for p in model.parameters() if p.requires_grad))

with torch.no_grad():
    phi = feature_map(train_x[:8])
    env_a = model.left.expand(8, -1)
    for n in range(model.label_site):
        env_a = torch.einsum('bi,idk,bd->bk', env_a, model.sites[n], phi[:, n])
        env_a = env_a / torch.linalg.norm(env_a, dim=1, keepdim=True)
    env_b = model.contract_tensordot(phi)
    # tensordot of two site tensors over one bond: (chi, d, chi) x (chi, d, chi) -> (chi, d, d, chi)
    pair = torch.tensordot(model.sites[0], model.sites[1], dims=([2], [0]))
print("einsum chain == tensordot chain:", torch.allclose(env_a, env_b, atol=1e-5), "pair", tuple(pair.shape))

# scale the logits: an MPS's raw outputs are tiny or huge; a learned temperature keeps softmax usable
temperature = nn.Parameter(torch.tensor(4.0))
optimizer = torch.optim.Adam(list(model.parameters()) + [temperature], lr=5e-2)
EPOCHS, BATCH = 8, 32
for epoch in range(EPOCHS):
    perm = torch.randperm(N_TRAIN)
    total = 0.0
    for i in range(0, N_TRAIN, BATCH):
        idx = perm[i:i + BATCH]
        logits = model(train_x[idx])
        logits = temperature * logits / (logits.norm(dim=1, keepdim=True) + 1e-12)
        loss = F.cross_entropy(logits, train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    if (epoch + 1) % 2 == 0:
        print(f"epoch {epoch + 1}: loss {total / N_TRAIN:.4f}")
train_loss = total / N_TRAIN

with torch.no_grad():
    test_logits = model(test_x)
    test_acc = (test_logits.argmax(1) == test_y).float().mean().item()
print(f"test accuracy {test_acc:.4f}")

# ----------------------------------------------------------------- MPS tools on a random state
L, D_PHYS, CHI_FULL = 6, 2, 4
state_sites = [torch.randn(1 if n == 0 else CHI_FULL, D_PHYS, 1 if n == L - 1 else CHI_FULL, dtype=torch.float64)
               for n in range(L)]


def mps_to_vector(sites):
    psi = sites[0]
    for site in sites[1:]:
        psi = torch.tensordot(psi, site, dims=([psi.dim() - 1], [0]))
    return psi.reshape(-1)


psi = mps_to_vector(state_sites)
print("state size", psi.numel(), "site shapes", [tuple(s.shape) for s in state_sites])

# left-canonicalise by QR, moving R into the next site
canonical = []
carry = None
for n, site in enumerate(state_sites):
    if carry is not None:
        site = torch.tensordot(carry, site, dims=([1], [0]))
    left_dim, d, right_dim = site.shape
    if n == L - 1:
        canonical.append(site)
        break
    Q, R = torch.linalg.qr(site.reshape(left_dim * d, right_dim))
    canonical.append(Q.reshape(left_dim, d, Q.shape[1]))
    carry = R
isometry_err = max((torch.einsum('adb,adc->bc', s, s) - torch.eye(s.shape[2], dtype=torch.float64)).abs().max().item()
                   for s in canonical[:-1])
state_err = (mps_to_vector(canonical) - psi).abs().max().item()
print("QR canonical: isometries", isometry_err < 1e-12, "same state", state_err < 1e-10,
      "bond dims", [s.shape[2] for s in canonical])

# SVD truncation of the middle bond of the exact state, as DMRG-style sweeps do
matrix = psi.reshape(D_PHYS ** (L // 2), D_PHYS ** (L - L // 2))
U, S, Vh = torch.linalg.svd(matrix, full_matrices=False)
print("svd shapes", tuple(U.shape), tuple(S.shape), tuple(Vh.shape), "descending", bool((S[:-1] >= S[1:]).all()))
errors = []
for chi in (1, 2, 4, 8):
    approx = U[:, :chi] @ torch.diag(S[:chi]) @ Vh[:chi]
    err = torch.linalg.norm(matrix - approx).item()
    expected = torch.sqrt((S[chi:] ** 2).sum()).item()
    errors.append(err / torch.linalg.norm(matrix).item())
    print(f"chi {chi}: truncation error matches discarded weight {math.isclose(err, expected, rel_tol=1e-8, abs_tol=1e-10)}")

# the overlap with a product state: kron of local vectors against the MPS contraction
local = [torch.tensor([math.cos(0.3 * n), math.sin(0.3 * n)], dtype=torch.float64) for n in range(L)]
product = local[0]
for v in local[1:]:
    product = torch.kron(product, v)
env = torch.ones(1, dtype=torch.float64)
for site, v in zip(state_sites, local):
    env = torch.einsum('a,adb,d->b', env, site, v)
overlap_gap = abs(env.item() - torch.dot(product, psi).item()) / abs(env.item())
print("product-state overlap: kron == contraction", overlap_gap < 1e-10, "kron size", product.numel())

# gradient through the SVD of a well-conditioned matrix: d ||A||_* / dA = U Vh
A = (torch.randn(5, 4, dtype=torch.float64) + 3 * torch.eye(5, 4, dtype=torch.float64)).requires_grad_(True)
U_a, S_a, Vh_a = torch.linalg.svd(A, full_matrices=False)
S_a.sum().backward()
nuclear_grad_err = (A.grad - U_a @ Vh_a).abs().max().item()
A.grad = None
top = torch.linalg.svd(A, full_matrices=False)[1][0]
top.backward()
print("svd gradients: nuclear norm", nuclear_grad_err < 1e-10,
      "top singular value", torch.allclose(A.grad, torch.outer(U_a[:, 0], Vh_a[0]).detach(), atol=1e-10),
      "gradcheck", torch.autograd.gradcheck(lambda m: torch.linalg.svd(m, full_matrices=False)[1],
                                            (A.detach().clone().requires_grad_(True),)))
print(f"FINAL loss={train_loss:.4f} acc={test_acc:.4f} trunc1={errors[0]:.4f} trunc2={errors[1]:.4f} "
      f"trunc4={errors[2]:.4f}")
