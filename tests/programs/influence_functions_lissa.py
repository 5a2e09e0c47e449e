"""Influence functions (Koh & Liang 2017) and TracIn (Pruthi et al. 2020) as their reference
code and the pytorch-influence-functions ports write them, on a logistic regression and a small MLP.

Hessian-vector products by double backward (``torch.autograd.grad(loss, params,
create_graph=True)`` then the gradient of ``(grads * v).sum()``), checked against the exact
Hessian from ``torch.autograd.functional.hessian`` and the closed form ``X^T diag(p(1-p)) X / n``;
inverse-HVPs exactly by ``torch.linalg.solve`` and by the LiSSA recursion
``h = v + (1 - damping) h - HVP_batch(h) / scale`` on ``torch.randint`` minibatches; influence of
each training point on a test loss, checked against leave-one-out retraining (Newton steps from
the optimum with one point's weight zeroed) by ``torch.corrcoef``; the MLP's parameters as one
flat vector unflattened by ``torch.split`` + ``view``, damped solves and ``torch.linalg.eigvalsh``;
TracIn over SGD checkpoints kept by ``copy.deepcopy(model.state_dict())``, self-influence finding
flipped labels, proponents of a test point.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.functional import hessian

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(5)

N, D = 160, 5
X_np = rng.randn(N, D)
true_w = rng.randn(D)
y_np = (X_np @ true_w + 0.8 * rng.randn(N) > 0).astype(np.float64)
X = torch.from_numpy(np.concatenate([X_np, np.ones((N, 1))], axis=1))  # bias column, float64
y = torch.from_numpy(y_np)
X_test = torch.from_numpy(np.concatenate([rng.randn(8, D), np.ones((8, 1))], axis=1))
y_test = torch.from_numpy((X_test[:, :D].numpy() @ true_w > 0).astype(np.float64))
L2 = 0.01


def logreg_loss(w, inputs, targets, weights=None):
    """Mean (or weighted by ``weights`` / n) logistic loss plus L2; the training objective."""
    losses = F.binary_cross_entropy_with_logits(inputs @ w, targets, reduction="none")
    if weights is not None:
        losses = losses * weights
    return losses.sum() / N + 0.5 * L2 * w.pow(2).sum()


def point_losses(w, inputs, targets):
    return F.binary_cross_entropy_with_logits(inputs @ w, targets, reduction="none")


def newton(w, weights=None, iterations=8):
    for _ in range(iterations):
        w = w.detach().requires_grad_(True)
        loss = logreg_loss(w, X, y, weights)
        (grad,) = torch.autograd.grad(loss, w)
        H = hessian(lambda v: logreg_loss(v, X, y, weights), w.detach())
        w = w.detach() - torch.linalg.solve(H, grad)
    return w.detach()


w_hat = torch.zeros(D + 1, dtype=torch.float64, requires_grad=True)
optimizer = torch.optim.LBFGS([w_hat], lr=1, max_iter=100, line_search_fn="strong_wolfe")


def closure():
    optimizer.zero_grad()
    loss = logreg_loss(w_hat, X, y)
    loss.backward()
    return loss


optimizer.step(closure)
w_hat = newton(w_hat)
grad_norm = torch.autograd.grad(logreg_loss(w_hat.requires_grad_(), X, y), w_hat)[0].norm().item()
w_hat = w_hat.detach()
with torch.no_grad():
    train_acc = ((X @ w_hat > 0).double() == y).double().mean().item()
print(f"logistic regression: train accuracy {train_acc:.3f}, gradient norm at the optimum below 1e-10: "
      f"{grad_norm < 1e-10}")


def hvp(loss_fn, params, v):
    """H v by double backward: grad of <grad(loss), v>."""
    params = params.detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(loss_fn(params), params, create_graph=True)
    (hv,) = torch.autograd.grad((grads * v).sum(), params)
    return hv


H = hessian(lambda w: logreg_loss(w, X, y), w_hat)
p = torch.sigmoid(X @ w_hat)
H_closed = X.T @ torch.diag(p * (1 - p)) @ X / N + L2 * torch.eye(D + 1, dtype=torch.float64)
v = torch.randn(D + 1, dtype=torch.float64)
print("Hessian", tuple(H.shape), "equals the closed form:", torch.allclose(H, H_closed),
      "HVP equals H @ v:", torch.allclose(hvp(lambda w: logreg_loss(w, X, y), w_hat, v), H @ v))

# influence of up-weighting each training point on the test loss: -g_test^T H^-1 g_i
w_req = w_hat.clone().requires_grad_(True)
(g_test,) = torch.autograd.grad(point_losses(w_req, X_test, y_test).sum(), w_req)
s_test = torch.linalg.solve(H, g_test)
train_grads = torch.stack([torch.autograd.grad(point_losses(w_req, X[i:i + 1], y[i:i + 1]).sum(), w_req)[0]
                           for i in range(N)])
influence = -(train_grads @ s_test)
print("influences", tuple(influence.shape), "helpful (negative):", int((influence < 0).sum()))


def lissa(loss_on_batch, params, v, n_samples, batch_size=32, damping=0.01, scale=10.0, depth=100, repeats=2):
    """Agarwal et al.'s stochastic inverse-HVP estimate, averaged over ``repeats`` runs: the
    recursion's fixed point divided by ``scale`` is ``(H + damping * scale * I)^-1 v``."""
    estimates = []
    for _ in range(repeats):
        h = v.clone()
        for _ in range(depth):
            index = torch.randint(0, n_samples, (batch_size,))
            hv = hvp(lambda w, index=index: loss_on_batch(w, index), params, h)
            h = v + (1 - damping) * h - hv / scale
        estimates.append(h / scale)
    return torch.stack(estimates).mean(0)


def batch_objective(w, index):
    losses = F.binary_cross_entropy_with_logits(X[index] @ w, y[index])
    return losses + 0.5 * L2 * w.pow(2).sum()


# the scale must bound the minibatch Hessians' eigenvalues (the full one's largest is printed)
print(f"Hessian eigenvalues in [{torch.linalg.eigvalsh(H)[0].item():.3f}, {torch.linalg.eigvalsh(H)[-1].item():.3f}]")
s_lissa = lissa(batch_objective, w_hat, g_test, N, damping=0.02, scale=0.5, depth=100)
s_damped = torch.linalg.solve(H + 0.02 * 0.5 * torch.eye(D + 1, dtype=torch.float64), g_test)
lissa_cos = F.cosine_similarity(s_lissa, s_damped, dim=0).item()
lissa_rel = ((s_lissa - s_damped).norm() / s_damped.norm()).item()
print(f"LiSSA against the damped exact solve: cosine {lissa_cos:.4f}, relative error {lissa_rel:.3f}")
influence_lissa = -(train_grads @ s_lissa)
rank_corr_lissa = torch.corrcoef(torch.stack([influence, influence_lissa]))[0, 1].item()

# leave-one-out retraining for the most and least influential points
order = influence.argsort()
chosen = torch.cat([order[:8], order[-8:]])
predicted, actual = [], []
base_test = point_losses(w_hat, X_test, y_test).sum().item()
for i in chosen.tolist():
    weights = torch.ones(N, dtype=torch.float64)
    weights[i] = 0.0
    w_loo = newton(w_hat, weights, iterations=5)
    actual.append(point_losses(w_loo, X_test, y_test).sum().item() - base_test)
    predicted.append(-influence[i].item() / N)  # removal is up-weighting by -1/n
pair = torch.tensor([predicted, actual], dtype=torch.float64)
loo_corr = torch.corrcoef(pair)[0, 1].item()
print(f"leave-one-out on {len(chosen)} points: Pearson r {loo_corr:.4f}, "
      f"signs agree {int((pair[0].sign() == pair[1].sign()).sum())} of {len(chosen)}")
print(f"LiSSA influences against exact ones: r {rank_corr_lissa:.4f}")

# ---- a small MLP: flat parameters, damped solves, TracIn ----
y_flip = y.clone().float()
flipped = torch.from_numpy(rng.choice(N, 16, replace=False))
y_flip[flipped] = 1 - y_flip[flipped]
X32 = X[:, :D].float()


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, 12)
        self.fc2 = nn.Linear(12, 1)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x))).squeeze(-1)


model = MLP()
lr = 0.5
optimizer = torch.optim.SGD(model.parameters(), lr=lr)
checkpoints = []
for epoch in range(1, 31):
    for index in torch.randperm(N).split(32):
        loss = F.binary_cross_entropy_with_logits(model(X32[index]), y_flip[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 6 == 0:
        checkpoints.append((copy.deepcopy(model.state_dict()), optimizer.param_groups[0]["lr"]))
        print(f"mlp epoch {epoch} loss {loss.item():.4f}")

shapes = [p.shape for p in model.parameters()]
sizes = [p.numel() for p in model.parameters()]
flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()
X64, y64 = X[:, :D], y_flip.double()


def mlp_forward(theta, inputs):
    w1, b1, w2, b2 = (t.view(s) for t, s in zip(torch.split(theta, sizes), shapes))
    return F.linear(torch.tanh(F.linear(inputs, w1, b1)), w2, b2).squeeze(-1)


def mlp_objective(theta):
    return F.binary_cross_entropy_with_logits(mlp_forward(theta, X64), y64) + 0.5 * 1e-3 * theta.pow(2).sum()


with torch.no_grad():
    same = torch.allclose(mlp_forward(flat, X64).float(), model(X32), atol=1e-5)
H_mlp = hessian(mlp_objective, flat)
eigenvalues = torch.linalg.eigvalsh(H_mlp)
print(f"MLP: {flat.numel()} parameters, flat forward equals the module: {same}, Hessian symmetric: "
      f"{torch.allclose(H_mlp, H_mlp.T)}")
damping = max(0.0, -eigenvalues[0].item()) + 0.05
theta = flat.clone().requires_grad_(True)
(g_test_mlp,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(
    mlp_forward(theta, X_test[:, :D]), y_test, reduction="sum"), theta)
exact = torch.linalg.solve(H_mlp + damping * torch.eye(flat.numel(), dtype=torch.float64), g_test_mlp)
print("damped solve residual below 1e-8:",
      ((H_mlp @ exact + damping * exact - g_test_mlp).norm() / g_test_mlp.norm()).item() < 1e-8)


def mlp_batch(theta, index):
    return (F.binary_cross_entropy_with_logits(mlp_forward(theta, X64[index]), y64[index])
            + 0.5 * 1e-3 * theta.pow(2).sum())


scale = float(eigenvalues[-1].item()) * 2 + damping
s_mlp = lissa(mlp_batch, flat, g_test_mlp, N, batch_size=64, damping=damping / scale, scale=scale, depth=150)
mlp_lissa_cos = F.cosine_similarity(s_mlp, exact, dim=0).item()
print(f"MLP LiSSA against the damped exact solve: cosine {mlp_lissa_cos:.4f}")

# TracIn: sum over checkpoints of lr * <grad loss(z), grad loss(z')>
self_influence = torch.zeros(N)
test_influence = torch.zeros(N)
probe = MLP()
for state, step_lr in checkpoints:
    probe.load_state_dict(state)
    params = list(probe.parameters())
    test_grad = torch.autograd.grad(F.binary_cross_entropy_with_logits(probe(X_test[:1, :D].float()),
                                                                      y_test[:1].float()), params)
    test_flat = torch.cat([g.reshape(-1) for g in test_grad])
    for i in range(N):
        grads = torch.autograd.grad(F.binary_cross_entropy_with_logits(probe(X32[i:i + 1]), y_flip[i:i + 1]), params)
        g = torch.cat([g.reshape(-1) for g in grads])
        self_influence[i] += step_lr * g.dot(g)
        test_influence[i] += step_lr * g.dot(test_flat)
top = self_influence.topk(len(flipped)).indices
found = int(torch.isin(top, flipped).sum())
print(f"TracIn self-influence: {found} of the top {len(flipped)} are flipped labels "
      f"(chance {len(flipped) ** 2 / N:.1f})")
proponents = test_influence.topk(10).indices
proponent_agree = (y_flip[proponents] == y_test[0].float()).float().mean().item()
print(f"top proponents sharing the test label {proponent_agree:.2f}")

print(f"FINAL train_acc={train_acc:.4f} loo_corr={loo_corr:.4f} lissa_cos={lissa_cos:.4f} "
      f"lissa_corr={rank_corr_lissa:.4f} mlp_lissa_cos={mlp_lissa_cos:.4f} tracin_found={found / len(flipped):.4f}")
