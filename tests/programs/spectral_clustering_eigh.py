"""Spectral clustering and Laplacian eigenmaps as people port scikit-learn's recipe to torch, and
SpectralNet (Shaham et al. 2018) as a learned variant.

The affinity is a k-nearest-neighbour graph from ``torch.cdist`` and ``torch.topk(..., largest=False)``
with the self-tuning Gaussian kernel ``exp(-d^2 / (sigma_i sigma_j))`` (Zelnik-Manor & Perona),
written by ``scatter_`` and again by ``index_put_`` (must agree), symmetrised by ``torch.maximum(W,
W.T)``. The normalized Laplacian ``I - D^{-1/2} A D^{-1/2}`` is built by ``torch.rsqrt`` and
broadcasting and by ``torch.diag`` matrix products (must agree); ``torch.linalg.eigvalsh`` counts
the graph's connected components (near-zero eigenvalues), ``torch.linalg.eigh`` gives the smallest
eigenvectors (rows normalised as Ng-Jordan-Weiss do) and the Fiedler vector of a connected
two-moons graph. K-means on the rows: k-means++ seeding by ``torch.multinomial`` on squared
distances, Lloyd steps by ``torch.argmin``, ``torch.bincount(minlength=)`` and ``index_add_``; the
accuracy by the best label matching over ``itertools.permutations``. Plain k-means on the raw
coordinates of concentric rings fails where the spectral embedding succeeds.

SpectralNet: an MLP trained with ``trace(Y^T L Y) / n`` where Y is the network's output made
orthonormal by ``torch.linalg.cholesky`` + ``torch.linalg.solve_triangular`` (the paper's
orthonorm layer), checked against ``torch.linalg.qr`` (the same columns up to sign); it then
clusters points it never saw. Eigenvector signs are arbitrary, so none are printed.
"""

import copy
import itertools
import math
import os

import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
generator = torch.Generator().manual_seed(seed)


def make_rings(n_per_ring, radii=(1.0, 3.0, 5.0), noise=0.1):
    points, labels = [], []
    for label, radius in enumerate(radii):
        # stratified angles: every arc of the ring gets its share of points
        angle = (torch.arange(n_per_ring) + torch.rand(n_per_ring)) * (2 * math.pi / n_per_ring)
        r = radius + noise * torch.randn(n_per_ring)
        points.append(torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1))
        labels.append(torch.full((n_per_ring,), label, dtype=torch.long))
    return torch.cat(points), torch.cat(labels)


def make_moons(n_per_moon, noise=0.06):
    t = torch.rand(n_per_moon) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    t = torch.rand(n_per_moon) * math.pi
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
    x = torch.cat([upper, lower]) + noise * torch.randn(2 * n_per_moon, 2)
    y = torch.cat([torch.zeros(n_per_moon, dtype=torch.long), torch.ones(n_per_moon, dtype=torch.long)])
    return x, y


def knn_affinity(x, n_neighbors):
    n = x.shape[0]
    dist = torch.cdist(x, x)
    knn_dist, knn_idx = torch.topk(dist, n_neighbors + 1, dim=1, largest=False)
    knn_dist, knn_idx = knn_dist[:, 1:], knn_idx[:, 1:]  # drop each point itself
    sigma = knn_dist[:, -1]
    weights = torch.exp(-knn_dist.pow(2) / (sigma[:, None] * sigma[knn_idx]))
    W = torch.zeros(n, n).scatter_(1, knn_idx, weights)
    rows = torch.arange(n).repeat_interleave(n_neighbors)
    W_put = torch.zeros(n, n)
    W_put.index_put_((rows, knn_idx.reshape(-1)), weights.reshape(-1))
    assert torch.equal(W, W_put), "scatter_ and index_put_ built different graphs"
    return torch.maximum(W, W.T)


def normalized_laplacian(A):
    d_inv_sqrt = torch.rsqrt(A.sum(dim=1))
    L = torch.eye(A.shape[0]) - d_inv_sqrt[:, None] * A * d_inv_sqrt[None, :]
    D_inv_sqrt = torch.diag(d_inv_sqrt)
    L_diag = torch.eye(A.shape[0]) - D_inv_sqrt @ A @ D_inv_sqrt
    assert torch.allclose(L, L_diag, atol=1e-6), "broadcast and diag Laplacians differ"
    return L


def kmeans_pp_init(x, k):
    centers = [x[torch.randint(x.shape[0], (1,), generator=generator)].squeeze(0)]
    for _ in range(k - 1):
        d2 = torch.cdist(x, torch.stack(centers)).pow(2).min(dim=1).values
        choice = torch.multinomial(d2 / d2.sum(), 1, generator=generator)
        centers.append(x[choice.item()])
    return torch.stack(centers)


def kmeans(x, k, n_iter=30, n_init=4):
    best_inertia, best_assign = math.inf, None
    for _ in range(n_init):
        centers = kmeans_pp_init(x, k)
        for _ in range(n_iter):
            assign = torch.argmin(torch.cdist(x, centers), dim=1)
            counts = torch.bincount(assign, minlength=k)
            sums = torch.zeros(k, x.shape[1]).index_add_(0, assign, x)
            new_centers = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centers)
            if torch.allclose(new_centers, centers):
                break
            centers = new_centers
        inertia = (x - centers[assign]).pow(2).sum().item()
        if inertia < best_inertia:
            best_inertia, best_assign, best_centers = inertia, assign, centers
    return best_assign, best_centers


def cluster_accuracy(pred, labels, k):
    best = 0
    for perm in itertools.permutations(range(k)):
        mapped = torch.tensor(perm)[pred]
        best = max(best, (mapped == labels).sum().item())
    return best / labels.numel()


# --- spectral clustering of three concentric rings ---
K = 3
x, labels = make_rings(90)
A = knn_affinity(x, n_neighbors=5)
L = normalized_laplacian(A)
print(f"affinity: {A.shape[0]} nodes, symmetric {torch.equal(A, A.T)}, no self loops {bool((A.diagonal() == 0).all())}")

eigenvalues = torch.linalg.eigvalsh(L)
n_components = int((eigenvalues < 1e-4).sum())
print(f"near-zero Laplacian eigenvalues (connected components): {n_components}, "
      f"spectral gap {eigenvalues[K].item():.4f}")

evals, evecs = torch.linalg.eigh(L)
assert torch.allclose(evals, eigenvalues, atol=1e-5)
residual = (L @ evecs - evecs * evals).abs().max().item()
print(f"eigh residual small {residual < 1e-4}, eigenvectors orthonormal "
      f"{torch.allclose(evecs.T @ evecs, torch.eye(evecs.shape[1]), atol=1e-4)}")
embedding = evecs[:, :K]
embedding = embedding / embedding.norm(dim=1, keepdim=True)
spectral_assign, _ = kmeans(embedding, K)
spectral_acc = cluster_accuracy(spectral_assign, labels, K)
raw_assign, _ = kmeans(x, K)
raw_acc = cluster_accuracy(raw_assign, labels, K)
print(f"rings: k-means on coordinates accuracy {raw_acc:.3f}, spectral clustering accuracy {spectral_acc:.3f}")
print(f"cluster sizes {sorted(torch.bincount(spectral_assign, minlength=K).tolist())}")

# --- the Fiedler vector of a connected graph ---
moons_x, moons_y = make_moons(80)
moons_L = normalized_laplacian(knn_affinity(moons_x, n_neighbors=10))
moons_evals, moons_evecs = torch.linalg.eigh(moons_L)
moons_components = int((moons_evals < 1e-4).sum())
fiedler = moons_evecs[:, 1]
fiedler_split = (fiedler > 0).long()
fiedler_acc = max((fiedler_split == moons_y).float().mean().item(), (fiedler_split != moons_y).float().mean().item())
print(f"moons: components {moons_components}, algebraic connectivity {moons_evals[1].item():.4f}, "
      f"Fiedler split accuracy {fiedler_acc:.3f}")


# --- SpectralNet ---
class SpectralNet(nn.Module):
    def __init__(self, in_dim, hidden, out_dim):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.Tanh(),
            nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, x, ortho_by="cholesky"):
        y_tilde = self.net(x)
        n = y_tilde.shape[0]
        if ortho_by == "qr":
            q, _ = torch.linalg.qr(y_tilde)
            return q * math.sqrt(n)
        gram = y_tilde.T @ y_tilde / n
        chol = torch.linalg.cholesky(gram)
        return torch.linalg.solve_triangular(chol, y_tilde.T, upper=False).T


scale = x.std()
model = SpectralNet(2, 64, K)
# the untrained outputs are nearly collinear, so the two orthonormalisations are compared in float64
model64 = copy.deepcopy(model).double()
with torch.no_grad():
    y_chol = model64(x.double() / scale)
    y_qr = model64(x.double() / scale, ortho_by="qr")
print(f"orthonorm layer: Y^T Y / n is identity {torch.allclose(y_chol.T @ y_chol / len(x), torch.eye(K, dtype=torch.float64), atol=1e-6)}, "
      f"cholesky and qr agree up to sign {torch.allclose(y_chol.abs(), y_qr.abs(), atol=1e-5)}")

optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=200, gamma=0.5)
losses = []
for step in range(600):
    y = model(x / scale)
    loss = torch.trace(y.T @ L @ y) / x.shape[0]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
    if step % 150 == 0:
        print(f"spectralnet step {step} loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    y = model(x / scale)
    net_embedding = y / y.norm(dim=1, keepdim=True)
    net_assign, net_centers = kmeans(net_embedding, K)
    net_acc = cluster_accuracy(net_assign, labels, K)
    # unseen points go through the orthonorm weights of the training set
    gram = model.net(x / scale).T @ model.net(x / scale) / x.shape[0]
    chol = torch.linalg.cholesky(gram)
    x_test, labels_test = make_rings(40)
    y_test = torch.linalg.solve_triangular(chol, model.net(x_test / scale).T, upper=False).T
    y_test = y_test / y_test.norm(dim=1, keepdim=True)
    test_assign = torch.argmin(torch.cdist(y_test, net_centers), dim=1)
    # the training clusters' matching, applied to the test points
    best_perm = max(itertools.permutations(range(K)),
                    key=lambda p: (torch.tensor(p)[net_assign] == labels).sum().item())
    test_acc = (torch.tensor(best_perm)[test_assign] == labels_test).float().mean().item()
print(f"spectralnet: loss {losses[0]:.4f} -> {losses[-1]:.4f}, train accuracy {net_acc:.3f}, unseen accuracy {test_acc:.3f}")

print(f"FINAL spectral_acc={spectral_acc:.4f} fiedler_acc={fiedler_acc:.4f} net_acc={net_acc:.4f} "
      f"test_acc={test_acc:.4f} components={n_components}")
