"""GradNorm (Chen et al. 2018) balancing three regression tasks of very different scales.

In the style of the public re-implementations (brianlan/pytorch-grad-norm, hosseinshn/GradNorm,
LucasBoTang/GradNorm): a shared trunk `nn.Sequential` ending in `self.shared` (the last shared
layer, whose `weight` GradNorm measures) and one `nn.Linear` head per task in an `nn.ModuleList`;
learnable task weights `self.weights = nn.Parameter(torch.ones(T).float())`; per-task losses
`torch.stack([...])`; at the first iteration `initial_task_loss = task_loss.data.cpu().numpy()`
(and a `.detach()` tensor copy); the weighted loss `torch.mul(weights, task_loss).sum()` backward
with `retain_graph=True`; then `weights.grad.data = weights.grad.data * 0.0`, per-task
`torch.autograd.grad(weights[i] * task_loss[i], shared.weight, retain_graph=True,
create_graph=True)` with `torch.norm`, `torch.stack(norms)`, the inverse training rates
`loss_ratio / loss_ratio.mean()` from `task_loss.data.cpu().numpy() / initial_task_loss` (NumPy)
and from `(task_loss / l0).detach()` (torch, must agree), the target
`(mean_norm * inverse_train_rate ** alpha).detach()` as a constant, the L1 GradNorm loss
`torch.sum(torch.abs(norms - constant_term))` differentiated only into the weights by
`torch.autograd.grad(grad_norm_loss, model.weights)[0]` assigned to `weights.grad`, two Adams
(model without the weights, and the weights), and the renormalisation
`normalize_coeff = T / torch.sum(model.weights.data, dim=0)`, `model.weights.data = ...` under
`torch.no_grad()`. An equal-weighting baseline trains the same network from the same start.
Check: the per-task gradient norms from `autograd.grad` equal those from separate `backward()`
calls into `shared.weight.grad` with `zero_grad()` between them.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

n_tasks = 3
in_dim = 12
n_train = 384
n_test = 256
batch_size = 64
n_epochs = 30
alpha = 1.5
scales = [1.0, 10.0, 0.1]  # task outputs of very different magnitudes


# --- synthetic multi-task regression as in the paper's toy: B + eps_i shared, task-scaled tanh
def make_data(n):
    x = rng.normal(0, 1, (n, in_dim)).astype(np.float32)
    return x


B = rng.normal(0, 1, (in_dim, in_dim)).astype(np.float32) / np.sqrt(in_dim)
eps = [0.35 * rng.normal(0, 1, (in_dim, in_dim)).astype(np.float32) / np.sqrt(in_dim) for _ in range(n_tasks)]


def targets(x):
    ys = [scales[i] * np.tanh(x @ (B + eps[i])).sum(1, keepdims=True) / np.sqrt(in_dim) for i in range(n_tasks)]
    return np.concatenate(ys, 1).astype(np.float32)


x_train_np = make_data(n_train)
x_test_np = make_data(n_test)
x_train, y_train = torch.from_numpy(x_train_np), torch.from_numpy(targets(x_train_np))
x_test, y_test = torch.from_numpy(x_test_np), torch.from_numpy(targets(x_test_np))
y_train = y_train + 0.01 * torch.randn_like(y_train) * torch.tensor(scales)


class MultiTaskNet(nn.Module):
    def __init__(self, n_tasks, hidden=32):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.shared = nn.Linear(hidden, hidden)
        self.heads = nn.ModuleList([nn.Linear(hidden, 1) for _ in range(n_tasks)])
        self.weights = nn.Parameter(torch.ones(n_tasks).float())

    def get_last_shared_layer(self):
        return self.shared

    def forward(self, x, y):
        h = F.relu(self.shared(self.trunk(x)))
        task_loss = [F.mse_loss(head(h).squeeze(1), y[:, i]) for i, head in enumerate(self.heads)]
        return torch.stack(task_loss)


model = MultiTaskNet(n_tasks)
baseline = copy.deepcopy(model)
print(model)
print(f"parameters {sum(p.numel() for p in model.parameters())} weights {model.weights.data.tolist()}")

# --- check: norms of d(w_i L_i)/dW by autograd.grad equal those from backward() into .grad
xb, yb = x_train[:batch_size], y_train[:batch_size]
task_loss = model(xb, yb)
W = model.get_last_shared_layer().weight
norms_autograd = torch.stack([
    torch.norm(torch.autograd.grad(model.weights[i] * task_loss[i], W, retain_graph=True, create_graph=True)[0])
    for i in range(n_tasks)
])
norms_backward = []
for i in range(n_tasks):
    model.zero_grad()
    (model.weights[i] * task_loss[i]).backward(retain_graph=True)
    norms_backward.append(W.grad.norm().item())
model.zero_grad()
norm_err = (norms_autograd.detach() - torch.tensor(norms_backward)).abs().max().item()
print(f"initial grad norms {[round(v, 4) for v in norms_backward]} autograd vs backward err {norm_err:.2e}")
print(f"norms grad_fn {norms_autograd.grad_fn.name()} requires_grad {norms_autograd.requires_grad}")


def train(model, use_gradnorm):
    params = [p for name, p in model.named_parameters() if name != "weights"]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    weight_optimizer = torch.optim.Adam([model.weights], lr=2e-2)
    initial_task_loss = None
    l0 = None
    ratio_err = 0.0
    history = []
    for epoch in range(n_epochs):
        perm = torch.randperm(n_train)
        for start in range(0, n_train, batch_size):
            idx = perm[start:start + batch_size]
            task_loss = model(x_train[idx], y_train[idx])
            weighted_task_loss = torch.mul(model.weights, task_loss)
            if initial_task_loss is None:
                initial_task_loss = task_loss.data.cpu().numpy()
                l0 = task_loss.detach().clone()
            loss = torch.sum(weighted_task_loss)
            optimizer.zero_grad()
            weight_optimizer.zero_grad()
            loss.backward(retain_graph=True)
            if use_gradnorm:
                model.weights.grad.data = model.weights.grad.data * 0.0
                W = model.get_last_shared_layer().weight
                norms = []
                for i in range(n_tasks):
                    gygw = torch.autograd.grad(weighted_task_loss[i], W, retain_graph=True, create_graph=True)
                    norms.append(torch.norm(torch.mul(model.weights[i], gygw[0]) / model.weights[i]))
                norms = torch.stack(norms)
                loss_ratio = task_loss.data.cpu().numpy() / initial_task_loss
                inverse_train_rate = loss_ratio / np.mean(loss_ratio)
                rates_torch = (task_loss / l0).detach()
                rates_torch = rates_torch / rates_torch.mean()
                ratio_err = max(ratio_err, float(np.abs(rates_torch.numpy() - inverse_train_rate).max()))
                mean_norm = np.mean(norms.data.cpu().numpy())
                constant_term = torch.tensor(mean_norm * (inverse_train_rate ** alpha), requires_grad=False)
                grad_norm_loss = torch.sum(torch.abs(norms - constant_term))
                model.weights.grad = torch.autograd.grad(grad_norm_loss, model.weights)[0]
                weight_optimizer.step()
            else:
                model.weights.grad = None
            optimizer.step()
            if use_gradnorm:
                with torch.no_grad():
                    model.weights.data = model.weights.data.clamp(min=1e-3)
                    normalize_coeff = n_tasks / torch.sum(model.weights.data, dim=0)
                    model.weights.data = model.weights.data * normalize_coeff
        with torch.no_grad():
            test_loss = model(x_test, y_test)
        history.append(test_loss / torch.tensor(scales) ** 2)
        if epoch % 10 == 9:
            w = model.weights.data
            print(f"{'gradnorm' if use_gradnorm else 'equal'} epoch {epoch + 1} "
                  f"relative test losses {[round(v, 4) for v in history[-1].tolist()]} weights {[round(v, 3) for v in w.tolist()]}")
    return torch.stack(history), ratio_err


gn_history, ratio_err = train(model, use_gradnorm=True)
eq_history, _ = train(baseline, use_gradnorm=False)

w = model.weights.data
weight_spread = w.std().item()
weight_sum_err = abs(w.sum().item() - n_tasks)
gn_final = gn_history[-3:].mean(0)
eq_final = eq_history[-3:].mean(0)
gn_worst = gn_final.max().item()
eq_worst = eq_final.max().item()
first = gn_history[0].mean().item()
print(f"weights sum {w.sum().item():.4f} std {weight_spread:.3f} small-scale task weight {w[2].item():.3f}")
print(f"FINAL gn_rel_loss={gn_final.mean().item():.4f} eq_rel_loss={eq_final.mean().item():.4f} "
      f"gn_worst={gn_worst:.4f} eq_worst={eq_worst:.4f} first_rel_loss={first:.4f} "
      f"weight_spread={weight_spread:.3f} w_small={w[2].item():.3f} weight_sum_err={weight_sum_err:.2e} "
      f"norm_err={norm_err:.2e} ratio_err={ratio_err:.2e}")
