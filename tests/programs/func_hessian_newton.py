"""Second-order optimisation with ``torch.func``, as people write it after the "Jacobians, Hessians,
hvp, vhp, and more" tutorial: a small regression MLP whose loss is a function of one flat parameter
vector.

``torch.nn.utils.parameters_to_vector`` / ``vector_to_parameters`` flatten and restore the weights;
``unflatten`` splits a vector into the named shapes for ``torch.func.functional_call(model, params,
(x,))``. ``torch.func.grad`` of the flat loss equals autograd's gradient; ``torch.func.hessian``
equals ``jacfwd(jacrev(f))`` and ``jacrev(jacrev(f))``; damped Newton steps solve ``(H + lambda I) d =
g`` with ``torch.linalg.solve``; Gauss-Newton builds ``J^T J`` from ``jacrev`` of the residuals;
``torch.func.vmap(jacrev(f_single), in_dims=(None, 0))`` gives per-example Jacobians that must equal
the rows of the batch Jacobian; ``torch.func.jvp`` / ``vjp`` against ``J @ v`` / ``J^T u``;
``torch.autograd.functional.hvp`` / ``vhp`` against ``H @ v``; and Hessian-free conjugate-gradient
steps whose products come from ``torch.autograd.grad(..., create_graph=True)`` twice. Float64.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
from torch.func import functional_call, grad, hessian, jacfwd, jacrev, jvp, vjp, vmap
from torch.nn.utils import parameters_to_vector, vector_to_parameters

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
torch.set_default_dtype(torch.float64)

# ----------------------------------------------------------------- data: y = sin(2x1) + 0.5 x2^2
N = 48
x_np = rng.uniform(-1.5, 1.5, size=(N, 2))
y_np = np.sin(2 * x_np[:, :1]) + 0.5 * x_np[:, 1:] ** 2 + rng.normal(0, 0.05, size=(N, 1))
X = torch.from_numpy(x_np)
Y = torch.from_numpy(y_np)

model = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1))
names = [name for name, _ in model.named_parameters()]
shapes = [p.shape for p in model.parameters()]
numels = [p.numel() for p in model.parameters()]
theta0 = parameters_to_vector(model.parameters()).detach()
P = theta0.numel()
print("parameters", P, "names", names, "dtype", theta0.dtype)


def unflatten(theta):
    return {name: chunk.view(shape) for name, chunk, shape in zip(names, torch.split(theta, numels), shapes)}


def residuals(theta, x=X, y=Y):
    return (functional_call(model, unflatten(theta), (x,)) - y).squeeze(-1)


def loss_fn(theta):
    return 0.5 * residuals(theta).pow(2).mean()


# ----------------------------------------------------------------- checks of the transforms
g_func = grad(loss_fn)(theta0)
theta_leaf = theta0.clone().requires_grad_(True)
g_autograd, = torch.autograd.grad(loss_fn(theta_leaf), theta_leaf)
H = hessian(loss_fn)(theta0)
H_fwdrev = jacfwd(jacrev(loss_fn))(theta0)
H_revrev = jacrev(jacrev(loss_fn))(theta0)
print("grad shape", tuple(g_func.shape), "hessian shape", tuple(H.shape))
print("grad == autograd", torch.allclose(g_func, g_autograd, rtol=1e-10, atol=1e-12),
      "hessian == jacfwd(jacrev)", torch.allclose(H, H_fwdrev, rtol=1e-10, atol=1e-12),
      "== jacrev(jacrev)", torch.allclose(H, H_revrev, rtol=1e-10, atol=1e-12), "symmetric", torch.allclose(H, H.T))

J = jacrev(residuals)(theta0)                   # (N, P)
J_fwd = jacfwd(residuals)(theta0)


def residual_single(theta, x, y):
    return (functional_call(model, unflatten(theta), (x.unsqueeze(0),)) - y).squeeze()


per_example = vmap(jacrev(residual_single), in_dims=(None, 0, 0))(theta0, X, Y)
print("jacobian", tuple(J.shape), "per-example", tuple(per_example.shape),
      "vmap == batch", torch.allclose(per_example, J, rtol=1e-10, atol=1e-12),
      "jacfwd == jacrev", torch.allclose(J_fwd, J, rtol=1e-10, atol=1e-12))

v = torch.randn(P)
u = torch.randn(N)
_, Jv = jvp(residuals, (theta0,), (v,))
_, vjp_fn = vjp(residuals, theta0)
JTu, = vjp_fn(u)
_, Hv = torch.autograd.functional.hvp(loss_fn, theta0, v)
_, vH = torch.autograd.functional.vhp(loss_fn, theta0, v)
print("jvp == J v", torch.allclose(Jv, J @ v, rtol=1e-10, atol=1e-12),
      "vjp == J^T u", torch.allclose(JTu, J.T @ u, rtol=1e-10, atol=1e-12),
      "hvp == H v", torch.allclose(Hv, H @ v, rtol=1e-10, atol=1e-12),
      "vhp == v H", torch.allclose(vH, v @ H, rtol=1e-10, atol=1e-12))

# vector_to_parameters writes a vector back into the module; the module then computes loss_fn
vector_to_parameters(theta0 + 0.01 * v, model.parameters())
with torch.no_grad():
    direct = 0.5 * (model(X) - Y).pow(2).mean().item()
print("vector_to_parameters round trip:", math.isclose(direct, loss_fn(theta0 + 0.01 * v).item(), rel_tol=1e-12))
vector_to_parameters(theta0, model.parameters())

# ----------------------------------------------------------------- damped Newton
theta = theta0.clone()
damping = 1e-2
newton_losses = []
for it in range(12):
    g = grad(loss_fn)(theta)
    H = hessian(loss_fn)(theta)
    step = torch.linalg.solve(H + damping * torch.eye(P), g)
    candidate = theta - step
    if loss_fn(candidate) < loss_fn(theta):
        theta, damping = candidate, max(damping / 3, 1e-6)
    else:
        damping *= 4
    newton_losses.append(loss_fn(theta).item())
    if (it + 1) % 4 == 0:
        print(f"newton iter {it + 1}: loss {newton_losses[-1]:.6f} grad norm {g.norm().item():.2e}")
newton_loss = newton_losses[-1]

# ----------------------------------------------------------------- Gauss-Newton (Levenberg-Marquardt)
theta = theta0.clone()
mu = 1e-2
for it in range(12):
    r = residuals(theta)
    J = jacrev(residuals)(theta)
    JTJ = J.T @ J / N
    step = torch.linalg.solve(JTJ + mu * torch.eye(P), J.T @ r / N)
    candidate = theta - step
    if loss_fn(candidate) < loss_fn(theta):
        theta, mu = candidate, max(mu / 3, 1e-6)
    else:
        mu *= 4
    if (it + 1) % 4 == 0:
        print(f"gauss-newton iter {it + 1}: loss {loss_fn(theta).item():.6f} mu {mu:.1e}")
gn_loss = loss_fn(theta).item()


# ----------------------------------------------------------------- Hessian-free: CG on double backward
def hessian_vector(theta, vec):
    theta = theta.detach().requires_grad_(True)
    g, = torch.autograd.grad(loss_fn(theta), theta, create_graph=True)
    hv, = torch.autograd.grad(g @ vec, theta)
    return hv


def conjugate_gradient(theta, b, damping, iters=20, tol=1e-10):
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = r @ r
    for _ in range(iters):
        Ap = hessian_vector(theta, p) + damping * p
        curvature = p @ Ap
        if curvature <= 0:
            break
        alpha = rs / curvature
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = r @ r
        if rs_new < tol:
            break
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


theta = theta0.clone()
damping = 1e-1
for it in range(10):
    g = grad(loss_fn)(theta)
    step = conjugate_gradient(theta, g, damping)
    candidate = theta - step
    if loss_fn(candidate) < loss_fn(theta):
        theta, damping = candidate, max(damping / 3, 1e-5)
    else:
        damping *= 4
    if (it + 1) % 5 == 0:
        print(f"hessian-free iter {it + 1}: loss {loss_fn(theta).item():.6f}")
hf_loss = loss_fn(theta).item()

# ----------------------------------------------------------------- first-order baseline
vector_to_parameters(theta0, model.parameters())
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(36):
    optimizer.zero_grad()
    loss = 0.5 * (model(X) - Y).pow(2).mean()
    loss.backward()
    optimizer.step()
adam_loss = loss.item()
print(f"after 36 Adam steps: loss {adam_loss:.6f}")
print(f"FINAL newton={newton_loss:.6f} gauss_newton={gn_loss:.6f} hessian_free={hf_loss:.6f} "
      f"adam={adam_loss:.6f} log_ratio={math.log10(adam_loss / newton_loss):.3f}")
