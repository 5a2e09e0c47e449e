"""Classical linear algebra for data written in torch, as the "PCA / whitening from scratch in PyTorch"
posts and notebooks do it, in float32 on a low-rank cloud with noise.

PCA by ``torch.linalg.svd(Xc, full_matrices=False)`` (explained variance ``S ** 2 / (n - 1)`` and its
ratio, scores ``U * S`` equal to ``Xc @ Vh.T``) against ``torch.pca_lowrank(A, q, center=True, niter=2)``
under a seeded generator, compared sign-invariantly by ``|V_lr.T @ V|``; ZCA whitening by
``torch.linalg.eigh`` of the covariance and ``U @ torch.diag(torch.rsqrt(eigvals + eps)) @ U.T``
(the whitened covariance is the identity); orthogonal Procrustes (``U @ Vh`` from
``torch.linalg.svd(B.T @ A)``) recovering a rotation; ``torch.linalg.matrix_rank`` of the clean
low-rank matrix, ``torch.linalg.pinv`` with the Moore-Penrose identities, ``torch.linalg.lstsq(A, B).solution``
against ``pinv(A) @ B``, ``torch.linalg.qr(mode="reduced")`` spanning the principal subspace
(projectors compared, so signs do not matter); finally a tiny linear autoencoder trained with Adam
whose decoder spans the PCA subspace, measured by principal angles from ``torch.linalg.svdvals``.
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

N, D, K = 300, 8, 3
# a rank-3 cloud with decreasing scales plus isotropic noise
basis, _ = np.linalg.qr(rng.standard_normal((D, K)))
scales = np.array([3.0, 2.0, 1.2])
latent = rng.standard_normal((N, K)) * scales
clean_np = latent @ basis.T + rng.standard_normal(D) * 2.0       # a non-zero mean
X = torch.from_numpy(clean_np + 0.1 * rng.standard_normal((N, D))).float()
clean = torch.from_numpy(clean_np).float()

# ----------------------------------------------------------------- PCA by SVD
mean = X.mean(dim=0, keepdim=True)
Xc = X - mean
U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
explained_variance = S ** 2 / (N - 1)
ratio = explained_variance / explained_variance.sum()
print("explained variance ratio:", " ".join(f"{r:.4f}" for r in ratio[:4].tolist()))
scores_gap = ((U * S) - Xc @ Vh.T).abs().max().item()
print(f"U S vs Xc V^T max gap {scores_gap:.2e}, shapes U {tuple(U.shape)} S {tuple(S.shape)} Vh {tuple(Vh.shape)}")
V_k = Vh[:K].T                                                    # (D, K)

torch.manual_seed(seed)
U_lr, S_lr, V_lr = torch.pca_lowrank(X, q=K + 1, center=True, niter=2)
lowrank_align = (V_lr[:, :K].T @ V_k).abs().diagonal().min().item()
lowrank_sv_gap = ((S_lr[:K] - S[:K]).abs() / S[:K]).max().item()
print(f"pca_lowrank: shapes {tuple(U_lr.shape)} {tuple(S_lr.shape)} {tuple(V_lr.shape)}, "
      f"min |cos| to svd axes {lowrank_align:.4f}, singular value gap {lowrank_sv_gap:.2e}")

# ----------------------------------------------------------------- ZCA whitening
eps = 1e-5
cov = Xc.T @ Xc / (N - 1)
eigvals, eigvecs = torch.linalg.eigh(cov)
W_zca = eigvecs @ torch.diag(torch.rsqrt(eigvals + eps)) @ eigvecs.T
Xw = Xc @ W_zca
cov_w = Xw.T @ Xw / (N - 1)
white_gap = (cov_w - torch.eye(D)).abs().max().item()
eig_order_ok = bool(torch.all(eigvals[1:] >= eigvals[:-1]))
eig_vs_svd = ((eigvals.flip(0) - explained_variance).abs() / explained_variance).max().item()
print(f"zca: |cov(Xw) - I|max {white_gap:.2e}, eigvalsh ascending {int(eig_order_ok)}, "
      f"eigh vs svd variance gap {eig_vs_svd:.2e}, W symmetric gap {(W_zca - W_zca.T).abs().max().item():.2e}")

# ----------------------------------------------------------------- orthogonal Procrustes
angle = 0.7
R_true = torch.eye(D)
R_true[0, 0], R_true[0, 1], R_true[1, 0], R_true[1, 1] = math.cos(angle), -math.sin(angle), math.sin(angle), math.cos(angle)
A = Xc[:50]
B = A @ R_true.T + 0.01 * torch.randn(50, D)
u, s, vh = torch.linalg.svd(B.T @ A)
R_hat = u @ vh                                                    # argmin ||R A^T - B^T||, R orthogonal
procrustes_err = torch.linalg.matrix_norm(R_hat - R_true).item()
orth_gap = (R_hat @ R_hat.T - torch.eye(D)).abs().max().item()
print(f"procrustes: ||R - R_true||_F {procrustes_err:.4f}, ||R R^T - I||max {orth_gap:.2e}, "
      f"det {torch.linalg.det(R_hat).item():.4f}")

# ----------------------------------------------------------------- rank, pseudo-inverse, least squares, QR
rank_clean = torch.linalg.matrix_rank(clean - clean.mean(0)).item()
rank_noisy = torch.linalg.matrix_rank(Xc).item()
P = torch.linalg.pinv(Xc)
penrose = max(((Xc @ P @ Xc) - Xc).abs().max().item(), ((P @ Xc @ P) - P).abs().max().item() * S[-1].item())
targets = Xc @ torch.randn(D, 2) + 0.05 * torch.randn(N, 2)
sol = torch.linalg.lstsq(Xc, targets).solution
lstsq_gap = (sol - P @ targets).abs().max().item()
Q, Rq = torch.linalg.qr(Xc @ V_k, mode="reduced")
proj_gap = ((Q @ Q.T) - (U[:, :K] @ U[:, :K].T)).abs().max().item()
print(f"rank clean {rank_clean} noisy {rank_noisy}, penrose {penrose:.2e}, lstsq vs pinv {lstsq_gap:.2e}, "
      f"Q {tuple(Q.shape)} R {tuple(Rq.shape)} projector gap {proj_gap:.2e}")


# ----------------------------------------------------------------- a linear autoencoder finds the PCA subspace
class AutoEncoder(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.encoder = nn.Linear(d, k, bias=False)
        self.decoder = nn.Linear(k, d, bias=False)

    def forward(self, x):
        return self.decoder(self.encoder(x))


model = AutoEncoder(D, K)
optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
Xs = Xc / Xc.std()
for epoch in range(1, 301):
    optimizer.zero_grad()
    loss = F.mse_loss(model(Xs), Xs)
    loss.backward()
    optimizer.step()
    if epoch % 100 == 0:
        print(f"autoencoder epoch {epoch} loss {loss.item():.5f}")

with torch.no_grad():
    Qd, _ = torch.linalg.qr(model.decoder.weight)                 # an orthonormal basis of the decoder's span
    cosines = torch.linalg.svdvals(Qd.T @ V_k).clamp(max=1.0)
    max_angle = torch.rad2deg(torch.acos(cosines.min())).item()
    pca_loss = F.mse_loss((Xs @ V_k) @ V_k.T, Xs).item()
print(f"principal angles (deg): {' '.join(f'{a:.3f}' for a in torch.rad2deg(torch.acos(cosines)).tolist())}, "
      f"pca reconstruction loss {pca_loss:.5f}")

print(f"FINAL ratio1={ratio[0].item():.4f} ratio3={ratio[:3].sum().item():.4f} lowrank_align={lowrank_align:.4f} "
      f"white_gap={white_gap:.5f} procrustes_err={procrustes_err:.4f} rank_clean={rank_clean} rank_noisy={rank_noisy} "
      f"lstsq_gap={lstsq_gap:.5f} proj_gap={proj_gap:.5f} ae_loss={loss.item():.5f} pca_loss={pca_loss:.5f} "
      f"max_angle={max_angle:.3f}")
