"""Elastic Weight Consolidation (Kirkpatrick et al., 2017) on permuted tasks, with torch.func.

Each task is the same classification problem with its features shuffled by a fixed permutation
(``x[:, torch.randperm(D)]``, the permuted-MNIST recipe). After a task, the diagonal Fisher
information is estimated from per-sample gradients: ``torch.func.vmap(torch.func.grad(loss_fn),
in_dims=(None, None, 0, 0))`` over ``torch.func.functional_call(model, (params, buffers), ...)`` of
``{k: v.detach() for k, v in model.named_parameters()}``, squared and averaged over the samples, with
the labels drawn from the model's own predictive distribution (the "true" Fisher) by
``torch.multinomial``. The old parameters are kept as ``{n: p.detach().clone()}`` and the loss of
later tasks gains ``lambda / 2 * sum(F * (p - p_old) ** 2)``. A baseline trained without the
penalty starts as ``copy.deepcopy`` of the model, and both report accuracy on every task seen so far.

The data: a noisy Gaussian-mixture classification made with NumPy.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

D, CLASSES, TASKS = 24, 4, 3
EWC_LAMBDA = 20.0

centres = rng.normal(0.0, 1.0, size=(CLASSES, D)).astype(np.float32)


def make_split(n):
    labels = rng.integers(0, CLASSES, size=n)
    x = centres[labels] + rng.normal(0.0, 1.8, size=(n, D)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(labels)


base_train, base_train_y = make_split(384)
base_test, base_test_y = make_split(256)
permutations = [torch.arange(D)] + [torch.randperm(D) for _ in range(TASKS - 1)]
tasks = [((base_train[:, perm], base_train_y), (base_test[:, perm], base_test_y)) for perm in permutations]
print(f"{TASKS} tasks of {tuple(tasks[0][0][0].shape)}; permutations are bijections "
      f"{all(torch.equal(perm.sort().values, torch.arange(D)) for perm in permutations)}")


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, CLASSES))

    def forward(self, x):
        return self.net(x)


def diagonal_fisher(model, inputs):
    """Mean of squared per-sample gradients of the log-likelihood, labels sampled from the model."""
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    with torch.no_grad():
        probs = F.softmax(model(inputs), dim=1)
        sampled = torch.multinomial(probs, 1).squeeze(1)

    def compute_loss(params, buffers, sample, target):
        batch = sample.unsqueeze(0)
        targets = target.unsqueeze(0)
        predictions = functional_call(model, (params, buffers), (batch,))
        return F.cross_entropy(predictions, targets)

    per_sample_grads = vmap(grad(compute_loss), in_dims=(None, None, 0, 0))(params, buffers, inputs, sampled)
    model.train()
    return {n: g.pow(2).mean(0) for n, g in per_sample_grads.items()}


class EWC:
    def __init__(self):
        self.fishers, self.old_params = [], []

    def consolidate(self, model, inputs):
        self.fishers.append(diagonal_fisher(model, inputs))
        self.old_params.append({n: p.detach().clone() for n, p in model.named_parameters()})

    def penalty(self, model):
        loss = 0.0
        for fisher, old in zip(self.fishers, self.old_params):
            for n, p in model.named_parameters():
                loss = loss + (fisher[n] * (p - old[n]) ** 2).sum()
        return EWC_LAMBDA / 2 * loss


def train_task(model, task, ewc=None, epochs=3, batch=32):
    (x, y), _ = task
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch):
            index = order[start:start + batch]
            loss = F.cross_entropy(model(x[index]), y[index])
            if ewc is not None and ewc.fishers:
                loss = loss + ewc.penalty(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return loss.item()


@torch.no_grad()
def evaluate(model, seen):
    model.eval()
    accs = []
    for _, (x, y) in seen:
        accs.append((model(x).argmax(1) == y).float().mean().item())
    model.train()
    return accs


model = MLP()
ewc = EWC()
train_task(model, tasks[0])
ewc.consolidate(model, tasks[0][0][0][:128])
baseline = copy.deepcopy(model)
print(f"task 0 acc {evaluate(model, tasks[:1])[0]:.4f}; baseline is a copy {baseline is not model and torch.equal(baseline.net[0].weight, model.net[0].weight)}")
fisher = ewc.fishers[0]
print("fisher keys", list(fisher))
print("fisher shapes", [tuple(v.shape) for v in fisher.values()])
print(f"fisher mean {sum(v.sum().item() for v in fisher.values()) / sum(v.numel() for v in fisher.values()):.6f} "
      f"max {max(v.max().item() for v in fisher.values()):.6f}")

# the vmap'd per-sample gradients equal a loop of autograd.grad over single samples
x0, y0 = tasks[0][0][0][:4], tasks[0][0][1][:4]
params = dict(model.named_parameters())
looped = []
for i in range(4):
    model.zero_grad()
    F.cross_entropy(model(x0[i:i + 1]), y0[i:i + 1]).backward()
    looped.append(model.net[0].weight.grad.clone())
vmapped = vmap(grad(lambda p, xs, ys: F.cross_entropy(functional_call(model, p, (xs.unsqueeze(0),)), ys.unsqueeze(0))),
               in_dims=(None, 0, 0))(params, x0, y0)
print(f"per-sample grads match a loop: {torch.allclose(torch.stack(looped), vmapped['net.0.weight'], atol=1e-6)} "
      f"requires_grad {vmapped['net.0.weight'].requires_grad} grad_fn {vmapped['net.0.weight'].grad_fn is None}")
model.zero_grad()

history = []
for t in range(1, TASKS):
    ewc_loss = train_task(model, tasks[t], ewc=ewc)
    plain_loss = train_task(baseline, tasks[t])
    seen = tasks[:t + 1]
    ewc_accs, plain_accs = evaluate(model, seen), evaluate(baseline, seen)
    penalty = ewc.penalty(model).item()
    print(f"after task {t}: ewc loss {ewc_loss:.4f} penalty {penalty:.4f} accs {[f'{a:.3f}' for a in ewc_accs]}")
    print(f"after task {t}: sgd loss {plain_loss:.4f} accs {[f'{a:.3f}' for a in plain_accs]}")
    history.append((ewc_accs, plain_accs))
    ewc.consolidate(model, tasks[t][0][0][:128])

drift = sum((p - ewc.old_params[0][n]).pow(2).sum().item() for n, p in model.named_parameters())
plain_drift = sum((p - ewc.old_params[0][n]).pow(2).sum().item() for n, p in baseline.named_parameters())
ewc_accs, plain_accs = history[-1]
print(f"parameter drift from task 0: ewc {drift:.4f} sgd {plain_drift:.4f}")
print(f"FINAL ewc_task0={ewc_accs[0]:.4f} sgd_task0={plain_accs[0]:.4f} ewc_last={ewc_accs[-1]:.4f} "
      f"sgd_last={plain_accs[-1]:.4f} ewc_mean={sum(ewc_accs) / TASKS:.4f} sgd_mean={sum(plain_accs) / TASKS:.4f} "
      f"drift_ratio={drift / plain_drift:.4f}")
