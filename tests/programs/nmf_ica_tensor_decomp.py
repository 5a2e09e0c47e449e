"""Three matrix and tensor factorisations written in torch as the scikit-learn-free notebooks and
TensorLy-style tutorials do them (SVD initialisation for CP), on synthetic data.

NMF by Lee and Seung's multiplicative updates (``H *= (W.T @ V) / (W.T @ W @ H + eps)``,
``W *= (V @ H.T) / (W @ H @ H.T + eps)``) from ``torch.rand`` factors, the Frobenius error printed
(non-increasing) and the factors staying non-negative; FastICA in scikit-learn's parallel form on
three mixed signals: centring, whitening by ``torch.linalg.eigh`` of the covariance, the
``torch.tanh`` nonlinearity with ``g' = 1 - g ** 2``, symmetric decorrelation
``U @ torch.diag(torch.rsqrt(s)) @ U.T @ W``, and the recovered sources matched to the true ones by
absolute correlation (``torch.corrcoef``); CP decomposition of a 3-way tensor built by
``torch.einsum('ir,jr,kr->ijk', ...)``, by alternating least squares with Khatri-Rao products from
``torch.einsum('jr,kr->jkr', ...).reshape`` and ``torch.linalg.lstsq(...).solution`` on the
``permute``/``reshape`` unfoldings; ``torch.tensordot`` against ``einsum`` and ``torch.kron`` with
the identity ``(P kron Q) vec(Y) = vec(P Y Q^T)``. Reconstruction errors printed throughout.
"""

import os

import numpy as np
import torch

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def relative_error(approx, target):
    return (torch.linalg.norm(approx - target) / torch.linalg.norm(target)).item()


# ----------------------------------------------------------------- NMF, multiplicative updates
n_rows, n_cols, rank = 30, 24, 4
W_true = torch.from_numpy(rng.gamma(2.0, 1.0, size=(n_rows, rank))).float()
H_true = torch.from_numpy(rng.gamma(2.0, 1.0, size=(rank, n_cols))).float()
V = W_true @ H_true + 0.05 * torch.from_numpy(rng.random((n_rows, n_cols))).float()

eps = 1e-10
W = torch.rand(n_rows, rank) * V.mean().sqrt()
H = torch.rand(rank, n_cols) * V.mean().sqrt()
errors = []
for it in range(1, 301):
    H *= (W.T @ V) / (W.T @ W @ H + eps)
    W *= (V @ H.T) / (W @ H @ H.T + eps)
    errors.append(torch.linalg.norm(V - W @ H).item())
    if it % 100 == 0:
        print(f"nmf iter {it} frobenius {errors[-1]:.4f} relative {relative_error(W @ H, V):.5f}")
nmf_error = relative_error(W @ H, V)
nmf_monotone = all(b <= a * (1 + 1e-5) for a, b in zip(errors, errors[1:]))
nmf_nonneg = bool((W >= 0).all() and (H >= 0).all())
print(f"nmf: relative error {nmf_error:.5f}, non-increasing {int(nmf_monotone)}, non-negative {int(nmf_nonneg)}")

# ----------------------------------------------------------------- FastICA
n_samples = 2000
t = torch.linspace(0, 8, n_samples)
S_true = torch.stack([torch.sin(2 * t), torch.sign(torch.sin(3 * t)), 2 * ((t * 1.7) % 1) - 1])
S_true = S_true + 0.02 * torch.from_numpy(rng.standard_normal((3, n_samples))).float()
S_true = S_true / S_true.std(dim=1, keepdim=True)
A_mix = torch.tensor([[1.0, 1.0, 1.0], [0.5, 2.0, 1.0], [1.5, 1.0, 2.0]])
X = A_mix @ S_true                                                 # (3, n) observed mixtures

X_mean = X.mean(dim=1, keepdim=True)
Xc = X - X_mean
d, E = torch.linalg.eigh(Xc @ Xc.T / n_samples)
K_white = E @ torch.diag(torch.rsqrt(d)) @ E.T
Xw = K_white @ Xc
white_gap = (Xw @ Xw.T / n_samples - torch.eye(3)).abs().max().item()


def sym_decorrelation(W):
    s, U = torch.linalg.eigh(W @ W.T)
    return U @ torch.diag(torch.rsqrt(s)) @ U.T @ W


W_ica = sym_decorrelation(torch.randn(3, 3))
for _ in range(200):
    gwx = torch.tanh(W_ica @ Xw)
    g_prime = 1 - gwx ** 2
    W_new = sym_decorrelation(gwx @ Xw.T / n_samples - g_prime.mean(dim=1)[:, None] * W_ica)
    lim = (torch.abs(torch.abs(torch.einsum("ij,ij->i", W_new, W_ica)) - 1)).max().item()
    W_ica = W_new
    if lim < 1e-5:
        break
S_est = W_ica @ Xw
corr = torch.corrcoef(torch.cat([S_est, S_true]))[:3, 3:].abs()
ica_match = corr.max(dim=1).values.min().item()
ica_perm_ok = int(sorted(corr.argmax(dim=1).tolist()) == [0, 1, 2])
ica_converged = int(lim < 1e-5)
print(f"ica: whitened covariance gap {white_gap:.2e}, converged {ica_converged}, worst source |corr| "
      f"{ica_match:.4f}, one estimate per source {ica_perm_ok}")

# ----------------------------------------------------------------- CP decomposition by ALS
I, J, K, R = 8, 7, 6, 3
A_true = torch.randn(I, R)
B_true = torch.randn(J, R)
C_true = torch.randn(K, R)
T = torch.einsum("ir,jr,kr->ijk", A_true, B_true, C_true)
T_noisy = T + 0.01 * torch.randn(I, J, K)


def khatri_rao(U, V):
    return torch.einsum("jr,kr->jkr", U, V).reshape(-1, U.shape[1])


T0 = T_noisy.reshape(I, J * K)
T1 = T_noisy.permute(1, 0, 2).reshape(J, I * K)
T2 = T_noisy.permute(2, 0, 1).reshape(K, I * J)
# TensorLy's init="svd": the leading left singular vectors of each unfolding
A, B, C = (torch.linalg.svd(unfolding, full_matrices=False)[0][:, :R] for unfolding in (T0, T1, T2))
for it in range(1, 101):
    A = torch.linalg.lstsq(khatri_rao(B, C), T0.T).solution.T
    B = torch.linalg.lstsq(khatri_rao(A, C), T1.T).solution.T
    C = torch.linalg.lstsq(khatri_rao(A, B), T2.T).solution.T
    if it % 25 == 0:
        print(f"cp-als iter {it:3d} relative error {relative_error(torch.einsum('ir,jr,kr->ijk', A, B, C), T_noisy):.5f}")
cp_error = relative_error(torch.einsum("ir,jr,kr->ijk", A, B, C), T)
unfold_gap = (T.reshape(I, J * K) - A_true @ khatri_rao(B_true, C_true).T).abs().max().item()
print(f"cp: relative error to the clean tensor {cp_error:.5f}, mode-0 unfolding identity gap {unfold_gap:.2e}")

# ----------------------------------------------------------------- tensordot and kron
td = torch.tensordot(T, C_true, dims=([2], [0]))                  # (I, J, R)
td_gap = (td - torch.einsum("ijk,kr->ijr", T, C_true)).abs().max().item()
td_all = torch.tensordot(T, T, dims=3).item()
P, Q, Y = torch.randn(3, 4), torch.randn(2, 5), torch.randn(4, 5)
kron = torch.kron(P, Q)
kron_gap = (kron @ Y.reshape(-1) - (P @ Y @ Q.T).reshape(-1)).abs().max().item()
print(f"tensordot {tuple(td.shape)} gap {td_gap:.2e}, <T, T> {td_all / torch.linalg.norm(T).item() ** 2:.5f}, "
      f"kron {tuple(kron.shape)} vec identity gap {kron_gap:.2e}")

print(f"FINAL nmf_error={nmf_error:.5f} nmf_monotone={float(nmf_monotone):.1f} nmf_nonneg={float(nmf_nonneg):.1f} "
      f"ica_match={ica_match:.4f} ica_perm_ok={ica_perm_ok} white_gap={white_gap:.5f} cp_error={cp_error:.5f} "
      f"td_gap={td_gap:.5f} kron_gap={kron_gap:.5f}")
