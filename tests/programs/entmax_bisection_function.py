"""alpha-entmax as deep-spin/entmax writes it (entmax/root_finding.py and entmax/activations.py):
``EntmaxBisectFunction``, a ``torch.autograd.Function`` with ``classmethod`` forward/backward whose
forward scales ``X * (alpha - 1)``, brackets the threshold between ``max_val - 1 ** (alpha - 1)`` and
``max_val - (1 / d) ** (alpha - 1)`` and halves ``dm /= 2`` a fixed number of times, keeping the
``tau_lo`` whose ``f`` shares the sign of ``f_lo`` (``torch.where`` on ``(f_m * f_lo >= 0).unsqueeze``),
with ``torch.clamp(X - tau, min=0) ** (1 / (alpha - 1))`` and ``ensure_sum_one``; its backward is
the closed-form Jacobian-vector product (``gppr = torch.where(Y > 0, Y ** (2 - alpha), Y.new_zeros(1))``,
``dX = dY * gppr``, ``q = dX.sum(dim) / gppr.sum(dim)``, ``dX -= q * gppr``) plus the gradient in
``alpha`` (``Y * torch.log(Y)`` entropies); ``ctx.save_for_backward``, ``ctx.needs_input_grad``,
``alpha.expand(*alpha_shape)`` of a per-row alpha. Checked by ``torch.autograd.gradcheck`` in
float64 for X and alpha; the sparsemax limit (alpha = 2) against the sort-based sparsemax
(``torch.sort(descending=True)``, ``cumsum``, ``_make_ix_like``, ``gather`` at ``support_size - 1``)
and the exact sort-based ``entmax15`` against bisection at alpha = 1.5; the softmax limit (alpha
near 1). Then a classifier whose pooling is 1.5-entmax attention over a toy token sequence
(the label is carried by one marked token among distractors), Adam, accuracy and the attention's
sparsity (most positions get exactly zero weight).
"""
# ruff: noqa: B007  (the library's own spelling: `for it in range(n_iter)`)

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Function

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class EntmaxBisectFunction(Function):
    @classmethod
    def _gp(cls, x, alpha):
        return x ** (alpha - 1)

    @classmethod
    def _gp_inv(cls, y, alpha):
        return y ** (1 / (alpha - 1))

    @classmethod
    def _p(cls, X, alpha):
        return cls._gp_inv(torch.clamp(X, min=0), alpha)

    @classmethod
    def forward(cls, ctx, X, alpha=1.5, dim=-1, n_iter=50, ensure_sum_one=True):
        if not isinstance(alpha, torch.Tensor):
            alpha = torch.tensor(alpha, dtype=X.dtype, device=X.device)

        alpha_shape = list(X.shape)
        alpha_shape[dim] = 1
        alpha = alpha.expand(*alpha_shape)

        ctx.alpha = alpha
        ctx.dim = dim
        d = X.shape[dim]

        X = X * (alpha - 1)

        max_val, _ = X.max(dim=dim, keepdim=True)

        tau_lo = max_val - cls._gp(1, alpha)
        tau_hi = max_val - cls._gp(1 / d, alpha)

        f_lo = cls._p(X - tau_lo, alpha).sum(dim) - 1

        dm = tau_hi - tau_lo

        for it in range(n_iter):
            dm /= 2
            tau_m = tau_lo + dm
            p_m = cls._p(X - tau_m, alpha)
            f_m = p_m.sum(dim) - 1

            mask = (f_m * f_lo >= 0).unsqueeze(dim)
            tau_lo = torch.where(mask, tau_m, tau_lo)

        if ensure_sum_one:
            p_m /= p_m.sum(dim=dim).unsqueeze(dim=dim)

        ctx.save_for_backward(p_m)

        return p_m

    @classmethod
    def backward(cls, ctx, dY):
        (Y,) = ctx.saved_tensors

        gppr = torch.where(Y > 0, Y ** (2 - ctx.alpha), Y.new_zeros(1))

        dX = dY * gppr
        q = dX.sum(ctx.dim) / gppr.sum(ctx.dim)
        q = q.unsqueeze(ctx.dim)
        dX -= q * gppr

        d_alpha = None
        if ctx.needs_input_grad[1]:
            # alpha gradient computation
            # d_alpha = (partial_y / partial_alpha) * dY
            # NOTE: ensure alpha is not close to 1
            # since there is an indetermination
            # batch_size, _ = dY.shape

            # shannon terms
            S = torch.where(Y > 0, Y * torch.log(Y), Y.new_zeros(1))
            # shannon entropy
            ent = S.sum(ctx.dim).unsqueeze(ctx.dim)
            Y_skewed = gppr / gppr.sum(ctx.dim).unsqueeze(ctx.dim)

            d_alpha = dY * (Y - Y_skewed) / ((ctx.alpha - 1) ** 2)
            d_alpha -= dY * (S - Y_skewed * ent) / (ctx.alpha - 1)
            d_alpha = d_alpha.sum(ctx.dim).unsqueeze(ctx.dim)

        return dX, d_alpha, None, None, None


def entmax_bisect(X, alpha=1.5, dim=-1, n_iter=50, ensure_sum_one=True):
    return EntmaxBisectFunction.apply(X, alpha, dim, n_iter, ensure_sum_one)


class EntmaxBisect(nn.Module):
    def __init__(self, alpha=1.5, dim=-1, n_iter=50):
        self.dim = dim
        self.n_iter = n_iter
        self.alpha = alpha
        super().__init__()

    def forward(self, X):
        return entmax_bisect(X, alpha=self.alpha, dim=self.dim, n_iter=self.n_iter)


def _make_ix_like(X, dim):
    d = X.size(dim)
    rho = torch.arange(1, d + 1, device=X.device, dtype=X.dtype)
    view = [1] * X.dim()
    view[0] = -1
    return rho.view(view).transpose(0, dim)


def _sparsemax_threshold_and_support(X, dim=-1):
    topk, _ = torch.sort(X, dim=dim, descending=True)
    topk_cumsum = topk.cumsum(dim) - 1
    rhos = _make_ix_like(topk, dim)
    support = rhos * topk > topk_cumsum

    support_size = support.sum(dim=dim).unsqueeze(dim)
    tau = topk_cumsum.gather(dim, support_size - 1)
    tau /= support_size.to(X.dtype)
    return tau, support_size


def _entmax_threshold_and_support(X, dim=-1):
    Xsrt, _ = torch.sort(X, dim=dim, descending=True)

    rho = _make_ix_like(Xsrt, dim)
    mean = Xsrt.cumsum(dim) / rho
    mean_sq = (Xsrt**2).cumsum(dim) / rho
    ss = rho * (mean_sq - mean**2)
    delta = (1 - ss) / rho

    delta_nz = torch.clamp(delta, 0)
    tau = mean - torch.sqrt(delta_nz)

    support_size = (tau <= Xsrt).sum(dim).unsqueeze(dim)
    tau_star = tau.gather(dim, support_size - 1)
    return tau_star, support_size


def sparsemax(X, dim=-1):
    max_val, _ = X.max(dim=dim, keepdim=True)
    X = X - max_val
    tau, _ = _sparsemax_threshold_and_support(X, dim=dim)
    return torch.clamp(X - tau, min=0)


def entmax15(X, dim=-1):
    max_val, _ = X.max(dim=dim, keepdim=True)
    X = X - max_val
    X = X / 2
    tau_star, _ = _entmax_threshold_and_support(X, dim=dim)
    return torch.clamp(X - tau_star, min=0) ** 2


# --- the function itself --------------------------------------------------------------------
rng = np.random.RandomState(0)

X = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
alpha = (1.05 + torch.rand(6, 1, dtype=torch.float64)).requires_grad_()
gc_ok = torch.autograd.gradcheck(entmax_bisect, (X, alpha), eps=1e-6, atol=1e-4)
print(f"gradcheck X and alpha (float64): {gc_ok}")
assert gc_ok

Z = torch.randn(64, 12) * 3
P15 = entmax_bisect(Z, alpha=1.5)
sum_err = (P15.sum(-1) - 1).abs().max().item()
zero_frac = (P15 == 0).float().mean().item()
print(f"1.5-entmax: shape {tuple(P15.shape)} max |sum - 1| {sum_err:.2e} exact zeros {zero_frac:.3f}")
assert (P15 >= 0).all() and (P15 == 0).any() and sum_err < 1e-5

Z64 = Z.double()
sp_err = (entmax_bisect(Z64, alpha=2.0) - sparsemax(Z64)).abs().max().item()
e15_err = (entmax_bisect(Z64, alpha=1.5) - entmax15(Z64)).abs().max().item()
soft_err = (entmax_bisect(Z64 / 3, alpha=1.001) - torch.softmax(Z64 / 3, dim=-1)).abs().max().item()
print(f"alpha=2 vs sort sparsemax: {sp_err:.2e}   alpha=1.5 vs exact entmax15: {e15_err:.2e}")
print(f"alpha=1.001 vs softmax: {soft_err:.2e}")
assert soft_err < 1e-2
assert ((entmax_bisect(Z64, alpha=2.0) == 0) == (sparsemax(Z64) == 0)).float().mean() > 0.98

# the gradient through the closed-form backward agrees with autograd through the sort-based entmax15
Zg = Z64[:8].clone().requires_grad_()
w = torch.randn(8, 12, dtype=torch.float64)
(g_bisect,) = torch.autograd.grad((entmax_bisect(Zg, 1.5) * w).sum(), Zg)
(g_sort,) = torch.autograd.grad((entmax15(Zg) * w).sum(), Zg)
grad_err = (g_bisect - g_sort).abs().max().item()
print(f"grad bisect vs sort entmax15: {grad_err:.2e}")

# --- an attention classifier with 1.5-entmax pooling -----------------------------------------
V, T, N_CLASSES, MARK = 20, 10, 4, 1
n_train, n_test = 1536, 256


def make_data(n):
    tokens = rng.randint(2 + N_CLASSES, V, size=(n, T))
    pos = rng.randint(0, T - 1, size=n)
    y = rng.randint(0, N_CLASSES, size=n)
    tokens[np.arange(n), pos] = MARK
    tokens[np.arange(n), pos + 1] = 2 + y
    # distractors: class tokens elsewhere, not after the mark
    k = rng.randint(0, T, size=n)
    far = np.abs(k - pos - 1) > 1
    tokens[np.arange(n)[far], k[far]] = 2 + rng.randint(0, N_CLASSES, size=far.sum())
    return torch.from_numpy(tokens).long(), torch.from_numpy(y).long()


x_train, y_train = make_data(n_train)
x_test, y_test = make_data(n_test)


class EntmaxAttentionClassifier(nn.Module):
    def __init__(self, vocab, dim=32, n_classes=4, alpha=1.5):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(T, dim) * 0.1)
        self.mix = nn.Conv1d(dim, dim, kernel_size=2, padding=1)
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1))
        self.attn = EntmaxBisect(alpha=alpha, dim=-1, n_iter=30)
        self.out = nn.Linear(dim, n_classes)

    def forward(self, x):
        h = self.emb(x) + self.pos
        # each position sees its predecessor: the token after the mark can find it
        h = torch.tanh(self.mix(h.transpose(1, 2))[:, :, 1:].transpose(1, 2)) + h
        scores = self.score(h).squeeze(-1)
        p = self.attn(scores)
        pooled = torch.bmm(p.unsqueeze(1), h).squeeze(1)
        return self.out(pooled), p


model = EntmaxAttentionClassifier(V, n_classes=N_CLASSES)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

for epoch in range(10):
    model.train()
    perm = torch.randperm(n_train)
    total = 0.0
    for i in range(0, n_train, 128):
        idx = perm[i : i + 128]
        logits, _ = model(x_train[idx])
        loss = F.cross_entropy(logits, y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    if epoch % 2 == 1:
        print(f"epoch {epoch + 1} loss {total / n_train:.4f}")

model.eval()
with torch.no_grad():
    logits, p = model(x_test)
    acc = (logits.argmax(1) == y_test).float().mean().item()
    attn_zeros = (p == 0).float().mean().item()
    attn_sum_err = (p.sum(-1) - 1).abs().max().item()
print(f"test acc {acc:.3f} attention zeros {attn_zeros:.3f} max |sum - 1| {attn_sum_err:.2e}")
assert attn_sum_err < 1e-4 and acc > 2 / N_CLASSES

print(
    f"FINAL acc={acc:.4f} sparsemax_err={sp_err:.3e} entmax15_err={e15_err:.3e} "
    f"grad_err={grad_err:.3e} attn_zeros={attn_zeros:.4f}"
)
