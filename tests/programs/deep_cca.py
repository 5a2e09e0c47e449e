"""Deep CCA (Andrew et al. 2013) as the common PyTorch port (Michaelvll/DeepCCA) writes it.

Two ``MlpNet`` views (an ``nn.ModuleList`` of ``nn.Sequential`` blocks: ``Linear``, ``Sigmoid``,
``BatchNorm1d(affine=False)``), turned into float64 by ``.double()``, trained by the port's
``cca_loss``: centred views ``H - H.mean(dim=1).unsqueeze(dim=1)``, regularised covariances
``(1.0 / (m - 1)) * torch.matmul(...) + r1 * torch.eye(o1)``, their eigen decompositions by
``torch.linalg.eigh`` with the stability filter ``torch.gt(D, eps).nonzero()[:, 0]``, inverse square
roots ``torch.matmul(torch.matmul(V, torch.diag(D ** -0.5)), V.t())``, and the correlation either
from the top ``outdim_size`` eigenvalues of ``T.t() @ T`` (``torch.where`` floor, ``topk``,
``torch.sum(torch.sqrt(U))``) or from all of them. The trace norm is computed three ways: the
matrix square root of ``T.t() @ T`` by ``eigh`` under ``torch.trace``, ``torch.linalg.svdvals``
(the two must agree), and the port's elementwise ``torch.trace(torch.sqrt(T.t() @ T))``, which
is the sum of T's column norms and so can only be larger. Gradients through ``eigh`` are checked
by ``torch.autograd.gradcheck``; the whitening by ``assert_close`` to the identity.

The data: two views of a shared 2-d latent, one a linear mix of the latent, the other a linear mix
of even functions of it (``z1 ** 2``, ``cos(pi z2)``), so that linear CCA on the raw views finds
almost nothing and Deep CCA finds the shared signal. After training (Adam, ``StepLR``, minibatches
by ``torch.randperm``), linear CCA is fitted on the networks' outputs, as the port does, and the
test canonical correlations are measured by ``torch.corrcoef``.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


class cca_loss:
    def __init__(self, outdim_size, use_all_singular_values, device):
        self.outdim_size = outdim_size
        self.use_all_singular_values = use_all_singular_values
        self.device = device

    def whiten(self, H1, H2):
        """The port's first half: T = Sigma11^-1/2 Sigma12 Sigma22^-1/2 (views as rows)."""
        r1 = 1e-3
        r2 = 1e-3
        eps = 1e-9

        H1, H2 = H1.t(), H2.t()
        o1 = H1.size(0)
        o2 = H2.size(0)
        m = H1.size(1)

        H1bar = H1 - H1.mean(dim=1).unsqueeze(dim=1)
        H2bar = H2 - H2.mean(dim=1).unsqueeze(dim=1)

        SigmaHat12 = (1.0 / (m - 1)) * torch.matmul(H1bar, H2bar.t())
        SigmaHat11 = (1.0 / (m - 1)) * torch.matmul(H1bar, H1bar.t()) + r1 * torch.eye(o1, device=self.device)
        SigmaHat22 = (1.0 / (m - 1)) * torch.matmul(H2bar, H2bar.t()) + r2 * torch.eye(o2, device=self.device)

        # Calculating the root inverse of covariance matrices by using eigen decomposition
        [D1, V1] = torch.linalg.eigh(SigmaHat11)
        [D2, V2] = torch.linalg.eigh(SigmaHat22)

        # Added to increase stability
        posInd1 = torch.gt(D1, eps).nonzero()[:, 0]
        D1 = D1[posInd1]
        V1 = V1[:, posInd1]
        posInd2 = torch.gt(D2, eps).nonzero()[:, 0]
        D2 = D2[posInd2]
        V2 = V2[:, posInd2]

        SigmaHat11RootInv = torch.matmul(torch.matmul(V1, torch.diag(D1 ** -0.5)), V1.t())
        SigmaHat22RootInv = torch.matmul(torch.matmul(V2, torch.diag(D2 ** -0.5)), V2.t())

        Tval = torch.matmul(torch.matmul(SigmaHat11RootInv, SigmaHat12), SigmaHat22RootInv)
        return Tval, SigmaHat11, SigmaHat11RootInv

    def loss(self, H1, H2):
        r1 = 1e-3
        eps = 1e-9
        Tval, _, _ = self.whiten(H1, H2)

        if self.use_all_singular_values:
            # all singular values are used to calculate the correlation: the trace norm of T,
            # tr((T'T)^1/2) with the matrix square root taken through eigh
            tmp = torch.matmul(Tval.t(), Tval)
            evals, evecs = torch.linalg.eigh(tmp)
            root = evecs @ torch.diag(evals.clamp(min=eps).sqrt()) @ evecs.t()
            corr = torch.trace(root)
        else:
            # just the top self.outdim_size singular values are used
            trace_TT = torch.matmul(Tval.t(), Tval)
            trace_TT = torch.add(trace_TT, (torch.eye(trace_TT.shape[0]) * r1).to(self.device))  # regularization for more stability
            U, V = torch.linalg.eigh(trace_TT)
            U = torch.where(U > eps, U, (torch.ones(U.shape).double() * eps).to(self.device))
            U = U.topk(self.outdim_size)[0]
            corr = torch.sum(torch.sqrt(U))
        return -corr


class MlpNet(nn.Module):
    def __init__(self, layer_sizes, input_size):
        super().__init__()
        layers = []
        layer_sizes = [input_size] + layer_sizes
        for l_id in range(len(layer_sizes) - 1):
            if l_id == len(layer_sizes) - 2:
                layers.append(nn.Sequential(
                    nn.BatchNorm1d(num_features=layer_sizes[l_id], affine=False),
                    nn.Linear(layer_sizes[l_id], layer_sizes[l_id + 1]),
                ))
            else:
                layers.append(nn.Sequential(
                    nn.Linear(layer_sizes[l_id], layer_sizes[l_id + 1]),
                    nn.Sigmoid(),
                    nn.BatchNorm1d(num_features=layer_sizes[l_id + 1], affine=False),
                ))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class DeepCCA(nn.Module):
    def __init__(self, layer_sizes1, layer_sizes2, input_size1, input_size2, outdim_size, use_all_singular_values,
                 device=torch.device('cpu')):
        super().__init__()
        self.model1 = MlpNet(layer_sizes1, input_size1).double()
        self.model2 = MlpNet(layer_sizes2, input_size2).double()
        self.loss = cca_loss(outdim_size, use_all_singular_values, device).loss

    def forward(self, x1, x2):
        output1 = self.model1(x1)
        output2 = self.model2(x2)
        return output1, output2


def linear_cca(H1, H2, outdim_size, r=1e-4):
    """Linear CCA (rows are samples): projections w1, w2 and the means, as the port's linear_cca."""
    m = H1.shape[0]
    m1, m2 = H1.mean(dim=0), H2.mean(dim=0)
    H1bar, H2bar = H1 - m1, H2 - m2
    S11 = H1bar.T @ H1bar / (m - 1) + r * torch.eye(H1.shape[1], dtype=H1.dtype)
    S22 = H2bar.T @ H2bar / (m - 1) + r * torch.eye(H2.shape[1], dtype=H2.dtype)
    S12 = H1bar.T @ H2bar / (m - 1)
    D1, V1 = torch.linalg.eigh(S11)
    D2, V2 = torch.linalg.eigh(S22)
    S11_root_inv = V1 @ torch.diag(D1.rsqrt()) @ V1.T
    S22_root_inv = V2 @ torch.diag(D2.rsqrt()) @ V2.T
    T = S11_root_inv @ S12 @ S22_root_inv
    U, S, Vh = torch.linalg.svd(T, full_matrices=False)
    w1 = S11_root_inv @ U[:, :outdim_size]
    w2 = S22_root_inv @ Vh.T[:, :outdim_size]
    return w1, w2, m1, m2, S[:outdim_size]


def canonical_correlations(H1, H2, fitted):
    """Per-component Pearson correlations of the projected views, by torch.corrcoef."""
    w1, w2, m1, m2, _ = fitted
    P1, P2 = (H1 - m1) @ w1, (H2 - m2) @ w2
    corrs = [torch.corrcoef(torch.stack([P1[:, k], P2[:, k]]))[0, 1] for k in range(w1.shape[1])]
    return torch.stack(corrs).abs()


def make_views(n):
    z = rng.uniform(-1, 1, size=(n, 2))
    noise = rng.normal(0, 1, size=(n, 4))
    shared1 = np.concatenate([z, noise[:, :2]], axis=1)
    shared2 = np.concatenate([z[:, :1] ** 2 - 1 / 3, np.cos(np.pi * z[:, 1:]), noise[:, 2:]], axis=1)
    view1 = shared1 @ MIX1 + 0.05 * rng.normal(size=(n, 6))
    view2 = shared2 @ MIX2 + 0.05 * rng.normal(size=(n, 6))
    return torch.from_numpy(view1), torch.from_numpy(view2)


MIX1 = rng.normal(size=(4, 6)) * np.array([[1.0], [1.0], [0.3], [0.3]])
MIX2 = rng.normal(size=(4, 6)) * np.array([[2.0], [2.0], [0.3], [0.3]])
train1, train2 = make_views(800)
test1, test2 = make_views(400)
print(f"views {tuple(train1.shape)} {tuple(train2.shape)} dtype {train1.dtype}")

# --- checks of the loss on small inputs ---
outdim_size = 2
top_k = cca_loss(outdim_size, use_all_singular_values=False, device=torch.device('cpu'))
all_k = cca_loss(outdim_size, use_all_singular_values=True, device=torch.device('cpu'))
h1 = torch.randn(24, 2, dtype=torch.float64, requires_grad=True)
h2 = (h1.detach() @ torch.randn(2, 2, dtype=torch.float64) + 0.5 * torch.randn(24, 2, dtype=torch.float64)).requires_grad_()
print("gradcheck through eigh (top-k):", torch.autograd.gradcheck(top_k.loss, (h1, h2), eps=1e-6, atol=1e-5))
print("gradcheck through eigh (all):", torch.autograd.gradcheck(all_k.loss, (h1, h2), eps=1e-6, atol=1e-5))

T, Sigma11, root_inv = top_k.whiten(h1.detach(), h2.detach())
torch.testing.assert_close(root_inv @ Sigma11 @ root_inv, torch.eye(2, dtype=torch.float64))
print("whitening gives the identity: True")
nuclear_eigh = -all_k.loss(h1.detach(), h2.detach())
nuclear_svd = torch.linalg.svdvals(T).sum()
port_trace = torch.trace(torch.sqrt(T.t() @ T))
column_norms = torch.linalg.vector_norm(T, dim=0).sum()
print(f"trace norm: eigh sqrt {nuclear_eigh.item():.6f} svdvals {nuclear_svd.item():.6f} "
      f"agree {torch.allclose(nuclear_eigh, nuclear_svd)}")
print(f"elementwise sqrt trace {port_trace.item():.6f} = column norms {torch.allclose(port_trace, column_norms)}, "
      f">= trace norm {bool(port_trace >= nuclear_svd)}")
evals = torch.linalg.eigvalsh(T.t() @ T)
print("eigvalsh matches eigh", torch.allclose(evals, torch.linalg.eigh(T.t() @ T).eigenvalues),
      "top-k loss matches svdvals", torch.allclose(-top_k.loss(h1, h2), (evals + 1e-3).sqrt().sum()))

# --- linear CCA on the raw views ---
raw_fit = linear_cca(train1, train2, outdim_size)
raw_train = raw_fit[4].sum().item()
raw_test = canonical_correlations(test1, test2, raw_fit).sum().item()
print(f"linear CCA on raw views: train {raw_train:.4f} test {raw_test:.4f} (of {outdim_size})")

# --- Deep CCA ---
model = DeepCCA([32, 32, outdim_size], [32, 32, outdim_size], train1.shape[1], train2.shape[1], outdim_size,
                use_all_singular_values=False)
print(f"DeepCCA parameters {sum(p.numel() for p in model.parameters())} dtype {next(model.parameters()).dtype}")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.5)
EPOCHS, BATCH = 90, 200
for epoch in range(EPOCHS):
    model.train()
    train_losses = []
    for idx in torch.randperm(len(train1)).split(BATCH):
        optimizer.zero_grad()
        o1, o2 = model(train1[idx], train2[idx])
        loss = model.loss(o1, o2)
        train_losses.append(loss.item())
        loss.backward()
        optimizer.step()
    scheduler.step()
    if epoch % 30 == 29:
        model.eval()
        with torch.no_grad():
            val_loss = model.loss(*model(test1, test2))
        print(f"epoch {epoch + 1} train loss {np.mean(train_losses):.4f} test loss {val_loss.item():.4f} "
              f"lr {scheduler.get_last_lr()[0]:.5f}")

model.eval()
with torch.no_grad():
    out1, out2 = model(train1, train2)
    fitted = linear_cca(out1, out2, outdim_size)
    deep_train = canonical_correlations(out1, out2, fitted).sum().item()
    deep_test = canonical_correlations(*model(test1, test2), fitted).sum().item()
    test_loss = -model.loss(*model(test1, test2)).item()
print(f"Deep CCA: train {deep_train:.4f} test {deep_test:.4f} loss-based test corr {test_loss:.4f}")
print(f"Deep CCA beats linear CCA on test by {deep_test - raw_test:.4f} "
      f"({deep_test / outdim_size:.3f} of the maximum, linear {raw_test / outdim_size:.3f}) of {math.floor(outdim_size)}")
print(f"FINAL deep_test={deep_test:.4f} linear_test={raw_test:.4f} deep_train={deep_train:.4f}")
