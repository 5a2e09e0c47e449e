"""t-SNE written in torch, the way the "t-SNE in PyTorch" ports of van der Maaten's tsne.py write it
(mxl1990/tsne-pytorch and the gists after it), in float64 by ``torch.set_default_dtype``: squared
distances by ``torch.cdist(X, X).pow(2)``, the per-point binary search for the Gaussian precision that
gives the target perplexity vectorised over points (``torch.where`` on the ``betamin``/``betamax``
bounds, infinite until set), symmetrised ``P = (P + P.T) / (2n)`` with ``clamp_min(1e-12)``, Student-t
``Q`` from the ``sum - 2 Y Y^T`` trick with its diagonal masked by ``fill_diagonal_(0.)``, and KL(P||Q)
minimised by autograd with early exaggeration, momentum and the delta-bar-delta gains of the original.
The autograd gradient is compared every iteration with the analytic t-SNE gradient
``4 sum_j (p_ij - q_ij)(y_i - y_j) / (1 + |y_i - y_j|^2)``; the embedding of three well-separated
10-D Gaussian blobs is scored by leave-one-out 5-NN accuracy.
"""

import math
import os

import numpy as np
import torch

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
torch.set_default_dtype(torch.float64)


def make_blobs(n_per, dim, rng):
    centres = rng.randn(3, dim) * 6.0
    X = np.concatenate([centres[k] + rng.randn(n_per, dim) for k in range(3)])
    labels = np.repeat(np.arange(3), n_per)
    return X, labels


def x2p_torch(X, tol=1e-5, perplexity=20.0, max_tries=60):
    n = X.shape[0]
    D = torch.cdist(X, X).pow(2)
    logU = math.log(perplexity)
    beta = torch.ones(n, 1)
    betamin = torch.full((n, 1), -math.inf)
    betamax = torch.full((n, 1), math.inf)
    tries = 0
    while True:
        tries += 1
        P = torch.exp(-D * beta)
        P.fill_diagonal_(0.)
        sumP = P.sum(dim=1, keepdim=True)
        H = torch.log(sumP) + beta * torch.sum(D * P, dim=1, keepdim=True) / sumP
        Hdiff = H - logU
        if Hdiff.abs().max() < tol or tries == max_tries:
            break
        too_flat = Hdiff > 0
        betamin = torch.where(too_flat, beta, betamin)
        betamax = torch.where(too_flat, betamax, beta)
        beta = torch.where(too_flat,
                           torch.where(torch.isinf(betamax), beta * 2., (beta + betamax) / 2.),
                           torch.where(torch.isinf(betamin), beta / 2., (beta + betamin) / 2.))
    print(f"binary search: {tries} rounds, max |H - log(perplexity)| {Hdiff.abs().max().item():.1e}, "
          f"mean sigma {torch.sqrt(1 / beta).mean().item():.4f}")
    return P / sumP, Hdiff.abs().max().item()


def student_t(Y):
    sum_Y = torch.sum(Y * Y, dim=1)
    num = -2. * torch.mm(Y, Y.t())
    num = 1. / (1. + torch.add(torch.add(num, sum_Y).t(), sum_Y))
    num.fill_diagonal_(0.)
    Q = num / torch.sum(num)
    return Q.clamp_min(1e-12), num


def kl_divergence(P, Q):
    return torch.sum(P * torch.log(P / Q))


def analytic_gradient(P, Y):
    with torch.no_grad():
        Q, num = student_t(Y)
        PQ = P - Q
        return 4. * torch.sum((PQ * num).unsqueeze(2) * (Y.unsqueeze(1) - Y.unsqueeze(0)), dim=1)


def knn_accuracy(Y, labels, k=5):
    d = torch.cdist(Y, Y)
    d.fill_diagonal_(float("inf"))
    idx = d.topk(k, dim=1, largest=False).indices
    pred = torch.mode(labels[idx], dim=1).values
    return (pred == labels).double().mean().item()


def tsne(X, no_dims=2, perplexity=20.0, max_iter=400, eta=100., exaggeration=4., stop_lying_iter=100):
    n = X.shape[0]
    initial_momentum, final_momentum, min_gain = 0.5, 0.8, 0.01
    Y = (torch.randn(n, no_dims) * 1e-4).requires_grad_(True)
    iY = torch.zeros(n, no_dims)
    gains = torch.ones(n, no_dims)

    P, perp_err = x2p_torch(X, 1e-5, perplexity)
    P = (P + P.t()) / (2 * n)
    P = P.clamp_min(1e-12)
    assert torch.allclose(P, P.t()) and abs(P.sum().item() - 1) < 1e-6
    with torch.no_grad():
        history = [kl_divergence(P, student_t(Y)[0]).item()]
    print(f"initial KL {history[0]:.4f}")
    P = P * exaggeration

    grad_err = 0.0
    for it in range(max_iter):
        Q, _ = student_t(Y)
        C = kl_divergence(P, Q)
        Y.grad = None
        C.backward()
        dY = Y.grad
        if it >= stop_lying_iter:
            analytic = analytic_gradient(P, Y.detach())
            grad_err = max(grad_err, ((dY - analytic).abs().max() / analytic.abs().max()).item())

        momentum = initial_momentum if it < 20 else final_momentum
        gains = (gains + 0.2) * ((dY > 0.) != (iY > 0.)).double() + \
            (gains * 0.8) * ((dY > 0.) == (iY > 0.)).double()
        gains[gains < min_gain] = min_gain
        iY = momentum * iY - eta * (gains * dY)
        with torch.no_grad():
            Y += iY
            Y -= torch.mean(Y, 0)

        if it == stop_lying_iter - 1:
            P = P / exaggeration
        if (it + 1) % 100 == 0:
            with torch.no_grad():
                kl = kl_divergence(P, student_t(Y)[0]).item()
            history.append(kl)
            print(f"iteration {it + 1}: KL {kl:.4f}, mean gain {gains.mean().item():.4f}")
    return Y.detach(), history, grad_err, perp_err


rng = np.random.RandomState(seed)
X_np, labels_np = make_blobs(50, 10, rng)
X = torch.from_numpy(X_np)
labels = torch.from_numpy(labels_np)
D_trick = torch.sum(X * X, 1)[:, None] - 2 * X @ X.T + torch.sum(X * X, 1)[None, :]
dist_err = (D_trick.clamp_min(0) - torch.cdist(X, X).pow(2)).abs().max().item() / D_trick.max().item()
print(f"data {tuple(X.shape)} {X.dtype}, cdist vs sum-2xx^T relative error {dist_err:.1e}")

Y, history, grad_err, perp_err = tsne(X)
assert history[-1] < history[1] < history[0], history
assert grad_err < 1e-4, grad_err  # P clamped to 1e-12 sums to 1 + O(n^2 1e-12)
acc = knn_accuracy(Y, labels)
print(f"embedding {tuple(Y.shape)}, 5-NN accuracy {acc:.4f}, autograd vs analytic gradient {grad_err:.1e}")
print(f"FINAL kl={history[-1]:.4f} kl_drop={history[0] - history[-1]:.4f} knn_acc={acc:.4f} "
      f"grad_err={grad_err:.2e} perp_err={perp_err:.2e}")
