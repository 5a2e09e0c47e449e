"""Kolmogorov-Arnold Networks (Liu et al. 2024) with B-spline edges, as efficient-kan and pykan write them.

``KANLinear`` keeps a uniform knot grid (extended by ``spline_order`` knots on each side) as a buffer,
``grid = (torch.arange(-k, G + k + 1) * h + lo).expand(in_features, -1).contiguous()``, and evaluates
the B-spline bases by the Cox-de Boor recursion: order 0 from the comparisons
``((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)``, each higher order from the two neighbours
of the one below. Learnable coefficients (B, in, G+k) x (out, in, G+k) are combined by
``torch.einsum("bik,oik->bo", ...)``, beside a SiLU residual branch ``F.linear(F.silu(x), base_weight)``.
The bases are checked to sum to one inside the grid (partition of unity) and against de Boor's
``scipy``-free closed form for the cubic; the coefficients start from ``curve2coeff``, a batched
``torch.linalg.lstsq`` (in, N, G+k) x (in, N, out) fit of noise curves.

Training fits the symbolic toy ``f(x, y) = exp(sin(pi x) + y^2)`` with a [2, 5, 1] KAN by Adam under
an L1 + entropy sparsity regulariser on the mean absolute spline activations; then grid refinement
(G = 5 -> 10) places each layer's finer knots at its input samples' quantiles (``torch.sort``,
``torch.linspace(..., dtype=torch.int64)`` indices, efficient-kan's ``update_grid``) and refits the
coefficients to the coarse layer's spline outputs with ``torch.linalg.lstsq(driver="gelsd")`` (the
function barely changes), and training continues.
Reports train/test RMSE before and after refinement.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


class KANLinear(nn.Module):
    def __init__(self, in_features, out_features, grid_size=5, spline_order=3, scale_noise=0.1,
                 grid_range=(-1.0, 1.0)):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.grid_range = grid_range
        h = (grid_range[1] - grid_range[0]) / grid_size
        grid = (torch.arange(-spline_order, grid_size + spline_order + 1) * h + grid_range[0])
        self.register_buffer("grid", grid.expand(in_features, -1).contiguous())
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_weight = nn.Parameter(torch.empty(out_features, in_features, grid_size + spline_order))
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))
        with torch.no_grad():
            noise = (torch.rand(grid_size + 1, in_features, out_features) - 0.5) * scale_noise / grid_size
            self.spline_weight.data.copy_(self.curve2coeff(self.grid.T[spline_order:-spline_order], noise))

    def b_splines(self, x):
        """B-spline bases (batch, in, grid_size + spline_order) by the Cox-de Boor recursion."""
        grid = self.grid
        x = x.unsqueeze(-1)
        bases = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
        for k in range(1, self.spline_order + 1):
            bases = (
                (x - grid[:, : -(k + 1)]) / (grid[:, k:-1] - grid[:, : -(k + 1)]) * bases[:, :, :-1]
            ) + (
                (grid[:, k + 1 :] - x) / (grid[:, k + 1 :] - grid[:, 1:(-k)]) * bases[:, :, 1:]
            )
        assert bases.size() == (x.size(0), self.in_features, self.grid_size + self.spline_order)
        return bases.contiguous()

    def curve2coeff(self, x, y):
        """Coefficients whose splines pass (in least squares) through y (batch, in, out) at x (batch, in)."""
        A = self.b_splines(x).transpose(0, 1)  # (in, batch, coeff)
        B = y.transpose(0, 1)  # (in, batch, out)
        # gelsd, not the CPU default gelsy: torch's gelsy reuses a stale pivot array across a batch
        # (pytorch#187411) and can return zeros for a rank-deficient element, as the initial fit's is
        solution = torch.linalg.lstsq(A, B, driver="gelsd").solution  # (in, coeff, out)
        return solution.permute(2, 0, 1).contiguous()

    def spline_output(self, x):
        return torch.einsum("bik,oik->bo", self.b_splines(x), self.spline_weight)

    def forward(self, x):
        base = F.linear(F.silu(x), self.base_weight)
        self.activations = torch.einsum("bik,oik->boi", self.b_splines(x), self.spline_weight)
        return base + self.activations.sum(dim=-1)

    def regularization_loss(self, regularize_activation=1.0, regularize_entropy=1.0):
        l1 = self.activations.abs().mean(dim=0)  # (out, in): the mean size of each edge's function
        activation_loss = l1.sum()
        p = l1 / activation_loss
        entropy_loss = -torch.sum(p * torch.log(p + 1e-12))
        return regularize_activation * activation_loss + regularize_entropy * entropy_loss

    @torch.no_grad()
    def refine(self, new_grid_size, x, margin=0.01, grid_eps=0.02):
        """A layer on a finer grid fitted to the samples x (batch, in), whose splines match this one's there.

        The knots follow efficient-kan's update_grid: mostly the samples' quantiles, a little of a
        uniform grid over their range, extended by spline_order uniform steps on each side."""
        finer = KANLinear(self.in_features, self.out_features, grid_size=new_grid_size,
                          spline_order=self.spline_order, scale_noise=0.0, grid_range=self.grid_range)
        finer.base_weight.copy_(self.base_weight)
        coarse = torch.einsum("bik,oik->bio", self.b_splines(x), self.spline_weight)  # (batch, in, out)
        x_sorted = torch.sort(x, dim=0)[0]
        grid_adaptive = x_sorted[torch.linspace(0, x.size(0) - 1, new_grid_size + 1, dtype=torch.int64)]
        uniform_step = (x_sorted[-1] - x_sorted[0] + 2 * margin) / new_grid_size
        grid_uniform = (torch.arange(new_grid_size + 1, dtype=torch.float32).unsqueeze(1) * uniform_step
                        + x_sorted[0] - margin)
        grid = grid_eps * grid_uniform + (1 - grid_eps) * grid_adaptive
        grid = torch.cat([
            grid[:1] - uniform_step * torch.arange(self.spline_order, 0, -1, device=x.device).unsqueeze(1),
            grid,
            grid[-1:] + uniform_step * torch.arange(1, self.spline_order + 1, device=x.device).unsqueeze(1),
        ], dim=0)
        finer.grid.copy_(grid.T)
        finer.spline_weight.data = finer.curve2coeff(x, coarse)
        return finer


class KAN(nn.Module):
    def __init__(self, widths, grid_size=5):
        super().__init__()
        self.layers = nn.ModuleList(
            KANLinear(i, o, grid_size=grid_size) for i, o in zip(widths[:-1], widths[1:])
        )

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def regularization_loss(self):
        return sum(layer.regularization_loss() for layer in self.layers)

    @torch.no_grad()
    def refine(self, new_grid_size, x):
        finer = KAN.__new__(KAN)
        nn.Module.__init__(finer)
        layers = []
        for layer in self.layers:
            layers.append(layer.refine(new_grid_size, x))
            x = layer(x)  # the next layer's samples
        finer.layers = nn.ModuleList(layers)
        return finer


def target(xy):
    return torch.exp(torch.sin(math.pi * xy[:, :1]) + xy[:, 1:] ** 2)


def rmse(model, x, y):
    with torch.no_grad():
        return torch.sqrt(F.mse_loss(model(x), y)).item()


# --- the bases ---
probe = KANLinear(2, 1)
inside = torch.rand(200, 2) * 1.98 - 0.99
bases = probe.b_splines(inside)
print(f"bases {tuple(bases.shape)}, partition of unity {torch.allclose(bases.sum(-1), torch.ones(200, 2), atol=1e-5)}, "
      f"non-negative {bool((bases >= 0).all())}")
# the cubic B-spline on uniform knots, centred on its middle knot, in closed form
u = torch.linspace(-1.9, 1.9, 39)
t = probe.grid[0]
h = (t[1] - t[0]).item()
s = ((u[:, None] - t[None, :-4]) / h - 2.0).abs()
closed = torch.where(s < 1, 2 / 3 - s ** 2 + s ** 3 / 2, torch.where(s < 2, (2 - s) ** 3 / 6, torch.zeros_like(s)))
recursed = probe.b_splines(u[:, None].expand(-1, 2))[:, 0]
print(f"Cox-de Boor matches the closed-form cubic: {torch.allclose(recursed, closed, atol=1e-5)}")
print(f"outside the extended grid the bases vanish: {probe.b_splines(torch.full((1, 2), 3.0)).abs().sum().item()}")

# --- data ---
train_x = torch.rand(400, 2) * 2 - 1
test_x = torch.rand(400, 2) * 2 - 1
train_y, test_y = target(train_x), target(test_x)
print(f"train {tuple(train_x.shape)} targets in [{train_y.min().item():.3f}, {train_y.max().item():.3f}]")

model = KAN([2, 5, 1], grid_size=5)
print(f"parameters {sum(p.numel() for p in model.parameters())}, "
      f"grid buffers {[tuple(b.shape) for b in model.buffers()]}")


def train(model, steps, lr, lamb=1e-3):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        optimizer.zero_grad()
        mse = F.mse_loss(model(train_x), train_y)
        loss = mse + lamb * model.regularization_loss()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"step {step} mse {mse.item():.5f} reg {model.regularization_loss().item():.4f}")
    return model


train(model, 300, lr=0.02)
coarse_train, coarse_test = rmse(model, train_x, train_y), rmse(model, test_x, test_y)
print(f"grid 5: train RMSE {coarse_train:.4f} test RMSE {coarse_test:.4f}")

finer = model.refine(10, train_x)
with torch.no_grad():
    refit_gap = (finer(test_x) - model(test_x)).abs().max().item()
print(f"grid 10 refit: {sum(p.numel() for p in finer.parameters())} parameters, "
      f"largest change of the function {refit_gap:.4f}")
train(finer, 200, lr=0.01)
fine_train, fine_test = rmse(finer, train_x, train_y), rmse(finer, test_x, test_y)
print(f"grid 10: train RMSE {fine_train:.4f} test RMSE {fine_test:.4f}")

with torch.no_grad():
    finer(train_x)
    edge_scale = finer.layers[0].activations.abs().mean(0)
print("first-layer edge scales (x, y) per hidden unit:", [round(v, 3) for v in edge_scale.sum(0).tolist()])
print(f"FINAL coarse_train={coarse_train:.4f} coarse_test={coarse_test:.4f} fine_train={fine_train:.4f} "
      f"fine_test={fine_test:.4f} refit_gap={refit_gap:.4f}")
