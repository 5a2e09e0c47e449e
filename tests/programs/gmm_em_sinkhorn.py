"""A Gaussian mixture fitted by EM and entropic optimal transport by Sinkhorn, written in torch as the
"GMM from scratch in PyTorch" notebooks and the log-domain Sinkhorn of POT / geomloss tutorials do it.

k-means++ initialisation (the first centre by ``torch.randint``, the next ones by
``torch.multinomial`` on squared ``torch.cdist`` distances), then EM: the E-step by
``MultivariateNormal(means, covariance_matrix=covs).log_prob(X[:, None, :])`` batched over the
components, ``torch.logsumexp`` for the log-likelihood and ``torch.softmax`` for the
responsibilities; the M-step with weighted second moments by ``torch.einsum("nk,nd,ne->kde", ...)``
and ``torch.eye`` regularisation; the log-likelihood printed per iteration (it must not decrease),
and clustering accuracy over label permutations (``itertools.permutations``). Then optimal transport
between two point clouds: the cost ``torch.cdist(x, y) ** 2``, log-domain Sinkhorn with
``f = log_a - torch.logsumexp(-C / eps + g[None, :], dim=1)`` and the symmetric update for ``g``, the
plan ``torch.exp(-C / eps + f[:, None] + g[None, :])`` with its marginals checked against the
weights, and a differentiable Sinkhorn loss (autograd through the iterations) that moves one cloud
onto the other by gradient descent on the point positions. Data: three Gaussian blobs, from NumPy.
"""

import itertools
import os

import numpy as np
import torch
from torch.distributions import MultivariateNormal

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

K, D, N_PER = 3, 2, 100
centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 4.0]]) + 0.3 * rng.standard_normal((K, D))
X_np, labels_np = [], []
for k in range(K):
    a = rng.standard_normal((D, D)) * 0.5
    X_np.append(centres[k] + rng.standard_normal((N_PER, D)) @ (a + 0.6 * np.eye(D)))
    labels_np.append(np.full(N_PER, k))
X = torch.from_numpy(np.concatenate(X_np)).float()
labels = torch.from_numpy(np.concatenate(labels_np))
N = X.shape[0]


def kmeans_plus_plus(X, k):
    centers = [X[torch.randint(0, X.shape[0], (1,)).item()]]
    for _ in range(1, k):
        d2 = torch.cdist(X, torch.stack(centers)).min(dim=1).values ** 2
        idx = torch.multinomial(d2 / d2.sum(), 1).item()
        centers.append(X[idx])
    return torch.stack(centers)


class GaussianMixture:
    def __init__(self, n_components, reg_covar=1e-4):
        self.k = n_components
        self.reg_covar = reg_covar

    def init_params(self, X):
        self.means = kmeans_plus_plus(X, self.k)
        self.weights = torch.full((self.k,), 1.0 / self.k)
        self.covs = torch.eye(X.shape[1]).repeat(self.k, 1, 1)

    def e_step(self, X):
        log_prob = MultivariateNormal(self.means, covariance_matrix=self.covs).log_prob(X[:, None, :])  # (N, K)
        weighted = log_prob + torch.log(self.weights)
        log_likelihood = torch.logsumexp(weighted, dim=1).sum()
        resp = torch.softmax(weighted, dim=1)
        return resp, log_likelihood

    def m_step(self, X, resp):
        nk = resp.sum(dim=0) + 10 * torch.finfo(resp.dtype).eps
        self.weights = nk / X.shape[0]
        self.means = resp.T @ X / nk[:, None]
        second = torch.einsum("nk,nd,ne->kde", resp, X, X) / nk[:, None, None]
        self.covs = second - self.means[:, :, None] * self.means[:, None, :] + self.reg_covar * torch.eye(X.shape[1])

    def fit(self, X, n_iter):
        self.init_params(X)
        history = []
        for it in range(1, n_iter + 1):
            resp, ll = self.e_step(X)
            history.append(ll.item())
            self.m_step(X, resp)
            if it % 5 == 0 or it == 1:
                print(f"em iter {it:2d} loglik {ll.item():.4f} weights {' '.join(f'{w:.3f}' for w in sorted(self.weights.tolist()))}")
        return history


gmm = GaussianMixture(K)
history = gmm.fit(X, 30)
resp, final_ll = gmm.e_step(X)
pred = resp.argmax(dim=1)
accuracy = max((torch.tensor(perm)[pred] == labels).float().mean().item() for perm in itertools.permutations(range(K)))
monotone = all(b >= a - 1e-3 for a, b in zip(history, history[1:]))
mean_err = max(torch.cdist(torch.from_numpy(centres).float(), gmm.means).min(dim=1).values.tolist())
print(f"gmm: loglik/n {final_ll.item() / N:.4f}, accuracy {accuracy:.4f}, worst centre error {mean_err:.4f}, "
      f"monotone {int(monotone)}, covs symmetric {int(torch.allclose(gmm.covs, gmm.covs.mT))}")


# ----------------------------------------------------------------- entropic optimal transport
def sinkhorn(x, y, a, b, eps=0.05, n_iter=100):
    C = torch.cdist(x, y) ** 2
    log_a, log_b = torch.log(a), torch.log(b)
    f = torch.zeros_like(a)
    g = torch.zeros_like(b)
    for _ in range(n_iter):
        f = log_a - torch.logsumexp(-C / eps + g[None, :], dim=1)
        g = log_b - torch.logsumexp(-C / eps + f[:, None], dim=0)
    P = torch.exp(-C / eps + f[:, None] + g[None, :])
    return (P * C).sum(), P


n, m = 40, 30
x0 = torch.randn(n, D) * 0.5
y = torch.from_numpy(rng.standard_normal((m, D)) * 0.3 + np.array([2.0, -1.0])).float()
a = torch.full((n,), 1.0 / n)
b = torch.full((m,), 1.0 / m)

with torch.no_grad():
    cost0, P0 = sinkhorn(x0, y, a, b)
row_gap = (P0.sum(dim=1) - a).abs().max().item()
col_gap = (P0.sum(dim=0) - b).abs().max().item()
print(f"sinkhorn: cost {cost0.item():.4f}, plan sum {P0.sum().item():.4f}, row marginal gap {row_gap:.2e}, "
      f"column marginal gap {col_gap:.2e}, shape {tuple(P0.shape)}")

x = x0.clone().requires_grad_(True)
optimizer = torch.optim.SGD([x], lr=0.5 * n)
for step in range(1, 31):
    optimizer.zero_grad()
    loss, _ = sinkhorn(x, y, a, b, n_iter=30)
    loss.backward()
    optimizer.step()
    if step % 10 == 0:
        print(f"flow step {step} sinkhorn loss {loss.item():.5f} |grad| {x.grad.norm().item():.5f}")
with torch.no_grad():
    final_cost, _ = sinkhorn(x, y, a, b)
    mean_gap = (x.mean(0) - y.mean(0)).norm().item()
    std_ratio = (x.std(0) / y.std(0)).mean().item()
print(f"moved cloud: mean gap {mean_gap:.4f}, std ratio {std_ratio:.4f}, cost {final_cost.item():.5f}")

print(f"FINAL loglik={final_ll.item() / N:.4f} accuracy={accuracy:.4f} mean_err={mean_err:.4f} "
      f"monotone={float(monotone):.1f} cost0={cost0.item():.4f} marginal_gap={max(row_gap, col_gap):.6f} "
      f"final_cost={final_cost.item():.5f} mean_gap={mean_gap:.4f} std_ratio={std_ratio:.4f}")
