"""A physics-informed neural network for the viscous Burgers equation, as the PyTorch ports of
maziarraissi/PINNs (continuous_time_inference (Burgers)) write it:

    u_t + u u_x - (0.01 / pi) u_xx = 0,  x in [-1, 1], t in [0, 1],  u(0, x) = -sin(pi x),  u(t, +-1) = 0.

A ``DNN`` of ``nn.Linear`` + ``nn.Tanh`` layers built from an ``OrderedDict`` on ``torch.cat([x, t], dim=1)``;
collocation points drawn by Latin-hypercube-like NumPy sampling and made leaves with
``requires_grad_(True)`` (and the repo's ``torch.tensor(..., requires_grad=True)``);
``torch.autograd.grad(u, x, grad_outputs=torch.ones_like(u), retain_graph=True, create_graph=True)[0]``
for u_x and u_t, then u_xx through u_x; the residual, boundary and initial MSE losses; Adam, then
``optim.LBFGS(..., line_search_fn="strong_wolfe")`` with a closure counting its calls; evaluation on a
``torch.linspace`` x ``torch.linspace`` grid from ``torch.meshgrid(indexing="ij")`` under ``torch.no_grad()``
against the Cole-Hopf solution computed by Gauss-Hermite quadrature in NumPy. The autograd second
derivative is also checked against ``torch.autograd.functional.hessian`` on one point and against the
exact u_xx of a closed form.
"""

import math
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
nu = 0.01 / np.pi


# ----------------------------------------------------------------- the exact solution (Cole-Hopf)
def burgers_exact(x, t, n_quad=60):
    """u(x, t) by Gauss-Hermite quadrature of the Cole-Hopf integrals (Basdevant et al. 1986)."""
    z, w = np.polynomial.hermite.hermgauss(n_quad)
    x = np.asarray(x, dtype=np.float64)[..., None]
    t = np.maximum(np.asarray(t, dtype=np.float64)[..., None], 1e-8)
    y = x - np.sqrt(4 * nu * t) * z
    f = np.exp(-np.cos(np.pi * y) / (2 * np.pi * nu))
    num = -np.sum(w * np.sin(np.pi * y) * f, axis=-1)
    den = np.sum(w * f, axis=-1)
    return num / den


# ----------------------------------------------------------------- the network (the repo's DNN)
class DNN(torch.nn.Module):
    def __init__(self, layers):
        super(DNN, self).__init__()  # noqa: UP008  (the repo's spelling)
        self.depth = len(layers) - 1
        self.activation = torch.nn.Tanh
        layer_list = list()
        for i in range(self.depth - 1):
            layer_list.append(("layer_%d" % i, torch.nn.Linear(layers[i], layers[i + 1])))  # noqa: UP031
            layer_list.append(("activation_%d" % i, self.activation()))  # noqa: UP031
        layer_list.append(("layer_%d" % (self.depth - 1), torch.nn.Linear(layers[-2], layers[-1])))  # noqa: UP031
        layerDict = OrderedDict(layer_list)
        self.layers = torch.nn.Sequential(layerDict)

    def forward(self, x):
        return self.layers(x)


class PhysicsInformedNN:
    def __init__(self, X_u, u, X_f, layers, lb, ub):
        self.lb = torch.tensor(lb).float()
        self.ub = torch.tensor(ub).float()
        self.x_u = torch.tensor(X_u[:, 0:1], requires_grad=True).float()
        self.t_u = torch.tensor(X_u[:, 1:2], requires_grad=True).float()
        self.x_f = torch.from_numpy(X_f[:, 0:1]).float().requires_grad_(True)
        self.t_f = torch.from_numpy(X_f[:, 1:2]).float().requires_grad_(True)
        self.u = torch.tensor(u).float()
        self.dnn = DNN(layers)
        for m in self.dnn.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)
        self.iter = 0
        self.losses = []

    def net_u(self, x, t):
        # scale the inputs to [-1, 1] as the TF original does
        X = 2.0 * (torch.cat([x, t], dim=1) - self.lb) / (self.ub - self.lb) - 1.0
        return self.dnn(X)

    def net_f(self, x, t):
        """The Burgers residual by autograd."""
        u = self.net_u(x, t)
        u_t = torch.autograd.grad(u, t, grad_outputs=torch.ones_like(u), retain_graph=True, create_graph=True)[0]
        u_x = torch.autograd.grad(u, x, grad_outputs=torch.ones_like(u), retain_graph=True, create_graph=True)[0]
        u_xx = torch.autograd.grad(u_x, x, grad_outputs=torch.ones_like(u_x), retain_graph=True,
                                   create_graph=True)[0]
        return u_t + u * u_x - nu * u_xx

    def loss_func(self):
        u_pred = self.net_u(self.x_u, self.t_u)
        f_pred = self.net_f(self.x_f, self.t_f)
        loss_u = torch.mean((self.u - u_pred) ** 2)
        loss_f = torch.mean(f_pred ** 2)
        return loss_u, loss_f

    def train(self, adam_steps, lbfgs_iter):
        optimizer_adam = torch.optim.Adam(self.dnn.parameters(), lr=5e-3)
        self.dnn.train()
        for step in range(adam_steps):
            optimizer_adam.zero_grad()
            loss_u, loss_f = self.loss_func()
            loss = loss_u + loss_f
            loss.backward()
            optimizer_adam.step()
            if (step + 1) % 100 == 0:
                print("Adam It: %d, Loss: %.3e, Loss_u: %.3e, Loss_f: %.3e"  # noqa: UP031
                      % (step + 1, loss.item(), loss_u.item(), loss_f.item()))

        optimizer = torch.optim.LBFGS(self.dnn.parameters(), lr=1.0, max_iter=lbfgs_iter, max_eval=lbfgs_iter * 5 // 4,
                                      history_size=50, tolerance_grad=1e-7, tolerance_change=1.0 * np.finfo(float).eps,
                                      line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss_u, loss_f = self.loss_func()
            loss = loss_u + loss_f
            loss.backward()
            self.iter += 1
            self.losses.append(loss.item())
            return loss

        optimizer.step(closure)
        print("LBFGS evaluations > 1:", self.iter > 1, "loss decreased:", self.losses[-1] < self.losses[0])

    def predict(self, X):
        x = torch.tensor(X[:, 0:1], requires_grad=True).float()
        t = torch.tensor(X[:, 1:2], requires_grad=True).float()
        self.dnn.eval()
        u = self.net_u(x, t)
        f = self.net_f(x, t)
        return u.detach().cpu().numpy(), f.detach().cpu().numpy()


# ----------------------------------------------------------------- second derivatives, checked
x = torch.linspace(-1, 1, 7).view(-1, 1).requires_grad_(True)
u = torch.sin(math.pi * x) * torch.exp(x)
u_x = torch.autograd.grad(u, x, grad_outputs=torch.ones_like(u), create_graph=True)[0]
u_xx = torch.autograd.grad(u_x, x, grad_outputs=torch.ones_like(u_x), create_graph=True)[0]
exact_xx = torch.exp(x) * ((1 - math.pi ** 2) * torch.sin(math.pi * x) + 2 * math.pi * torch.cos(math.pi * x))
print("u_xx of sin(pi x) exp(x) matches the closed form:", torch.allclose(u_xx, exact_xx, atol=1e-4),
      "u_xx has a graph:", u_xx.requires_grad)

layers = [2, 20, 20, 20, 20, 1]
lb, ub = np.array([-1.0, 0.0]), np.array([1.0, 1.0])
probe = DNN(layers)
point = torch.tensor([[0.3, 0.4]])
H = torch.autograd.functional.hessian(lambda p: probe(p).sum(), point)
p = point.clone().requires_grad_(True)
out = probe(p)
g = torch.autograd.grad(out, p, grad_outputs=torch.ones_like(out), create_graph=True)[0]
g_xx = torch.autograd.grad(g[:, 0:1], p, grad_outputs=torch.ones_like(out))[0]
print("hessian shape:", tuple(H.shape), "u_xx by nested grad equals the hessian's:",
      torch.allclose(g_xx[0, 0], H[0, 0, 0, 0], atol=1e-6), torch.allclose(g_xx[0, 1], H[0, 0, 0, 1], atol=1e-6))

# ----------------------------------------------------------------- the data
N_u, N_f = 100, 1000
x_ic = np.random.uniform(-1, 1, size=(N_u // 2, 1))
X_ic = np.hstack([x_ic, np.zeros_like(x_ic)])
u_ic = -np.sin(np.pi * x_ic)
t_bc = np.random.uniform(0, 1, size=(N_u // 2, 1))
X_bc = np.hstack([np.where(np.arange(N_u // 2)[:, None] % 2 == 0, -1.0, 1.0), t_bc])
u_bc = np.zeros_like(t_bc)
X_u_train = np.vstack([X_ic, X_bc])
u_train = np.vstack([u_ic, u_bc])
# stratified (Latin-hypercube-like) collocation points, and the boundary/initial points with them
strata = (np.random.permutation(N_f)[:, None] + np.random.uniform(size=(N_f, 2))) / N_f
X_f_train = lb + (ub - lb) * np.hstack([strata[:, 0:1], strata[np.random.permutation(N_f), 1:2]])
X_f_train = np.vstack((X_f_train, X_u_train))
print("training points:", X_u_train.shape, "collocation points:", X_f_train.shape)

model = PhysicsInformedNN(X_u_train, u_train, X_f_train, layers, lb, ub)
model.train(adam_steps=300, lbfgs_iter=100)

# ----------------------------------------------------------------- evaluation on a grid
xs = torch.linspace(-1, 1, 41)
ts = torch.linspace(0, 1, 21)
X, T = torch.meshgrid(xs, ts, indexing="ij")
with torch.no_grad():
    u_grid = model.net_u(X.reshape(-1, 1), T.reshape(-1, 1)).view(X.shape)
u_star = burgers_exact(X.numpy(), T.numpy())
error_u = np.linalg.norm(u_star - u_grid.numpy(), 2) / np.linalg.norm(u_star, 2)
print("grid:", tuple(X.shape), "meshgrid ij:", torch.equal(X[:, 0], xs), torch.equal(T[0], ts))
print("Error u: %e" % error_u)  # noqa: UP031
_, f_pred = model.predict(np.stack([X.reshape(-1).numpy(), T.reshape(-1).numpy()], 1))
initial_error = np.abs(u_grid[:, 0].numpy() + np.sin(np.pi * xs.numpy())).max()
print(f"FINAL error_u={error_u:.4f} residual={np.mean(f_pred ** 2):.5f} "
      f"initial_error={initial_error:.4f} lbfgs_evals={model.iter}")
