"""A linear-Gaussian state-space model written in torch, as the "Kalman filter in PyTorch" notebooks and
pykalman-style EM code do it: float64 tensors, a batch of independent sequences filtered together.

The Kalman filter steps every sequence at once with batched ``@`` and ``.mT``: the innovation
covariance ``S = C P C^T + R`` factored by ``torch.linalg.cholesky``, the gain by
``torch.cholesky_solve(C @ P, L).mT``, the Joseph-form covariance update, and the log-likelihood
of each innovation by ``MultivariateNormal(C m, scale_tril=L).log_prob(y_t)`` (checked against the
hand formula with ``torch.linalg.slogdet`` and ``torch.linalg.solve``). ``Q`` and ``R`` are built
by ``torch.diag_embed``. The RTS smoother runs backwards with the smoother gain from
``torch.linalg.solve(P_pred, A @ P_filt).mT`` and gives the lag-one covariances. The transition
matrix is learned first by gradient ascent on the log-likelihood through the whole filter with
Adam, then from a fresh start by EM: the closed-form M-step
``A = (sum E[x_t x_{t-1}^T]) (sum E[x_{t-1} x_{t-1}^T])^-1`` by ``torch.linalg.solve`` on the
smoothed moments, with the log-likelihood printed per iteration (it must not decrease).
Data: a damped rotation observed through a fixed 3x2 matrix, from NumPy.
"""

import math
import os

import numpy as np
import torch
from torch.distributions import MultivariateNormal

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

B, T, DX, DY = 4, 40, 2, 3
theta = 0.3 + 0.2 * rng.random()
A_true_np = 0.95 * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
C_np = rng.standard_normal((DY, DX))
q_std, r_std = 0.3, 0.4

x_np = np.zeros((B, T, DX))
x_np[:, 0] = rng.standard_normal((B, DX))
for t in range(1, T):
    x_np[:, t] = x_np[:, t - 1] @ A_true_np.T + q_std * rng.standard_normal((B, DX))
y_np = x_np @ C_np.T + r_std * rng.standard_normal((B, T, DY))

A_true = torch.from_numpy(A_true_np)
C = torch.from_numpy(C_np)
Y = torch.from_numpy(y_np)                      # (B, T, DY)
Q = torch.diag_embed(torch.full((DX,), q_std ** 2, dtype=torch.float64))
R = torch.diag_embed(torch.full((DY,), r_std ** 2, dtype=torch.float64))
mu0 = torch.zeros(B, DX, dtype=torch.float64)
P0 = torch.eye(DX, dtype=torch.float64).expand(B, DX, DX)
I_x = torch.eye(DX, dtype=torch.float64)


def kalman_filter(A, C, Q, R, mu0, P0, Y):
    """Filter a batch of sequences; returns the total log-likelihood and the per-step moments."""
    m, P = mu0, P0
    loglik = torch.zeros(Y.shape[0], dtype=Y.dtype)
    m_pred, P_pred, m_filt, P_filt = [], [], [], []
    for t in range(Y.shape[1]):
        if t > 0:
            m = m @ A.mT
            P = A @ P @ A.mT + Q
        m_pred.append(m)
        P_pred.append(P)
        S = C @ P @ C.mT + R
        L = torch.linalg.cholesky(S)
        y_hat = m @ C.mT
        loglik = loglik + MultivariateNormal(y_hat, scale_tril=L).log_prob(Y[:, t])
        K = torch.cholesky_solve(C @ P, L).mT             # P C^T S^-1, (B, DX, DY)
        m = m + (K @ (Y[:, t] - y_hat).unsqueeze(-1)).squeeze(-1)
        I_KC = I_x - K @ C
        P = I_KC @ P @ I_KC.mT + K @ R @ K.mT           # Joseph form stays symmetric
        m_filt.append(m)
        P_filt.append(P)
    stack = lambda xs: torch.stack(xs, dim=1)          # noqa: E731
    return loglik.sum(), stack(m_pred), stack(P_pred), stack(m_filt), stack(P_filt)


def innovation_loglik(A, C, Q, R, mu0, P0, Y):
    """The same log-likelihood by slogdet and solve, for a check of MultivariateNormal."""
    m, P = mu0, P0
    total = 0.0
    for t in range(Y.shape[1]):
        if t > 0:
            m = m @ A.mT
            P = A @ P @ A.mT + Q
        S = C @ P @ C.mT + R
        e = Y[:, t] - m @ C.mT
        sign, logabsdet = torch.linalg.slogdet(S)
        maha = (e.unsqueeze(-2) @ torch.linalg.solve(S, e.unsqueeze(-1))).squeeze(-1).squeeze(-1)
        total = total + (-0.5 * (DY * math.log(2 * math.pi) + logabsdet + maha)).sum()
        K = torch.linalg.solve(S, C @ P).mT
        m = m + (K @ e.unsqueeze(-1)).squeeze(-1)
        P = (I_x - K @ C) @ P
    return total


def rts_smoother(A, m_pred, P_pred, m_filt, P_filt):
    """Rauch-Tung-Striebel: smoothed means, covariances and lag-one covariances Cov(x_t, x_{t-1})."""
    ms, Ps = [m_filt[:, -1]], [P_filt[:, -1]]
    lag_one = []
    for t in range(T - 2, -1, -1):
        J = torch.linalg.solve(P_pred[:, t + 1], A @ P_filt[:, t]).mT      # P_f A^T P_pred^-1
        m_s = m_filt[:, t] + (J @ (ms[0] - m_pred[:, t + 1]).unsqueeze(-1)).squeeze(-1)
        P_s = P_filt[:, t] + J @ (Ps[0] - P_pred[:, t + 1]) @ J.mT
        lag_one.insert(0, Ps[0] @ J.mT)
        ms.insert(0, m_s)
        Ps.insert(0, P_s)
    return torch.stack(ms, dim=1), torch.stack(Ps, dim=1), torch.stack(lag_one, dim=1)


with torch.no_grad():
    ll_true, *_ = kalman_filter(A_true, C, Q, R, mu0, P0, Y)
    ll_hand = innovation_loglik(A_true, C, Q, R, mu0, P0, Y)
mvn_gap = abs(ll_true.item() - ll_hand.item())
print(f"log-likelihood at the true A: {ll_true.item():.4f} (slogdet formula gap {mvn_gap:.2e})")

# ----------------------------------------------------------------- gradient ascent through the filter
A_param = torch.nn.Parameter(0.5 * torch.eye(DX, dtype=torch.float64) + 0.01 * torch.randn(DX, DX, dtype=torch.float64))
optimizer = torch.optim.Adam([A_param], lr=0.05)
for it in range(1, 41):
    optimizer.zero_grad()
    ll, *_ = kalman_filter(A_param, C, Q, R, mu0, P0, Y)
    (-ll / (B * T)).backward()
    optimizer.step()
    if it % 10 == 0:
        print(f"adam iter {it:3d} loglik {ll.item():.4f} |grad| {A_param.grad.norm().item():.5f}")
with torch.no_grad():
    ll_adam = kalman_filter(A_param, C, Q, R, mu0, P0, Y)[0].item()
adam_err = torch.linalg.matrix_norm(A_param.detach() - A_true).item()
print(f"adam: loglik {ll_adam:.4f}, ||A - A_true||_F {adam_err:.4f}")

# ----------------------------------------------------------------- EM with a closed-form M-step for A
A_em = 0.5 * torch.eye(DX, dtype=torch.float64)
history = []
with torch.no_grad():
    for it in range(1, 16):
        ll, m_pred, P_pred, m_filt, P_filt = kalman_filter(A_em, C, Q, R, mu0, P0, Y)
        history.append(ll.item())
        ms, Ps, lag = rts_smoother(A_em, m_pred, P_pred, m_filt, P_filt)
        # E[x_t x_t^T] = P_s + m m^T ; E[x_t x_{t-1}^T] = Cov(x_t, x_{t-1}) + m_t m_{t-1}^T
        Exx = Ps + ms.unsqueeze(-1) @ ms.unsqueeze(-2)
        Exx_lag = lag + ms[:, 1:].unsqueeze(-1) @ ms[:, :-1].unsqueeze(-2)
        S10 = Exx_lag.sum(dim=(0, 1))
        S00 = Exx[:, :-1].sum(dim=(0, 1))
        A_em = torch.linalg.solve(S00, S10.mT).mT     # S10 S00^-1
        print(f"em iter {it:2d} loglik {ll.item():.4f}")
    ll_em = kalman_filter(A_em, C, Q, R, mu0, P0, Y)[0].item()
monotone = all(b >= a - 1e-8 for a, b in zip(history, history[1:] + [ll_em]))
em_err = torch.linalg.matrix_norm(A_em - A_true).item()
eig_abs = torch.linalg.eigvals(A_em).abs().max().item()
print(f"em: loglik {ll_em:.4f}, ||A - A_true||_F {em_err:.4f}, spectral radius {eig_abs:.4f}, "
      f"monotone {int(monotone)}")

smoothed_rmse = (ms - torch.from_numpy(x_np)).pow(2).mean().sqrt().item()
filtered_rmse = (m_filt - torch.from_numpy(x_np)).pow(2).mean().sqrt().item()
print(f"state rmse: filtered {filtered_rmse:.4f}, smoothed {smoothed_rmse:.4f}")

print(f"FINAL ll_true={ll_true.item():.4f} ll_adam={ll_adam:.4f} ll_em={ll_em:.4f} adam_err={adam_err:.4f} "
      f"em_err={em_err:.4f} spectral_radius={eig_abs:.4f} monotone={float(monotone):.1f} "
      f"mvn_ok={float(mvn_gap < 1e-8):.1f} filtered_rmse={filtered_rmse:.4f} smoothed_rmse={smoothed_rmse:.4f}")
