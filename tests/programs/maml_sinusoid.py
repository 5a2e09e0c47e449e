"""MAML on sine-wave regression, the way the original paper's and learn2learn's tutorials write it.

Tasks are sine waves with random amplitude and phase; each meta-step samples a batch of tasks,
adapts a copy of the weights with a few hand-written SGD steps on the support set
(``torch.autograd.grad(loss, params.values(), create_graph=True)``), evaluates the adapted ("fast")
weights on the query set through ``torch.func.functional_call(model, new_params, (x,))``, and
meta-updates with ``Adam`` on the query loss summed over the task batch -- second order, through
the inner loop.  A second edition writes the net as ``F.linear(x, w, b)`` on a list of tensors;
both must agree with each other, and the first-order variant (``create_graph=False``) is trained
beside them.  Adapted models must beat the unadapted meta-initialisation on new tasks.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

inner_lr, inner_steps, meta_lr, tasks_per_batch, k_shot = 0.01, 1, 5e-3, 4, 10


def sample_task():
    amplitude = rng.uniform(0.1, 5.0)
    phase = rng.uniform(0, math.pi)

    def draw(n):
        x = rng.uniform(-5.0, 5.0, size=(n, 1)).astype(np.float32)
        return torch.from_numpy(x), torch.from_numpy(amplitude * np.sin(x - phase).astype(np.float32))
    return draw


class SineNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1))

    def forward(self, x):
        return self.net(x)


def adapt(model, params, x, y, steps, first_order=False):
    """Inner loop: plain SGD on a dict of named parameters, kept differentiable."""
    for _ in range(steps):
        loss = F.mse_loss(functional_call(model, params, (x,)), y)
        grads = torch.autograd.grad(loss, params.values(), create_graph=not first_order)
        params = {name: p - inner_lr * g for (name, p), g in zip(params.items(), grads)}
    return params


def meta_train(model, steps, first_order=False):
    meta_opt = torch.optim.Adam(model.parameters(), lr=meta_lr)
    for step in range(1, steps + 1):
        meta_opt.zero_grad()
        meta_loss = 0.0
        for _ in range(tasks_per_batch):
            draw = sample_task()
            x_s, y_s = draw(k_shot)
            x_q, y_q = draw(k_shot)
            fast = adapt(model, dict(model.named_parameters()), x_s, y_s, inner_steps, first_order)
            meta_loss = meta_loss + F.mse_loss(functional_call(model, fast, (x_q,)), y_q)
        meta_loss = meta_loss / tasks_per_batch
        meta_loss.backward()
        meta_opt.step()
        if step % 100 == 0:
            print(f"{'fomaml' if first_order else 'maml'} step {step}: meta loss {meta_loss.item():.4f}")
    return model


# --- the functional edition: the net as a list of tensors and F.linear -----------------------------
def functional_forward(x, weights):
    x = F.relu(F.linear(x, weights[0], weights[1]))
    x = F.relu(F.linear(x, weights[2], weights[3]))
    return F.linear(x, weights[4], weights[5])


def functional_adapt(weights, x, y, steps):
    for _ in range(steps):
        loss = F.mse_loss(functional_forward(x, weights), y)
        grads = torch.autograd.grad(loss, weights, create_graph=True)
        weights = [w - inner_lr * g for w, g in zip(weights, grads)]
    return weights


# both editions compute the same second-order meta-gradient from the same initial weights
model = SineNet()
weights = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
draw = sample_task()
x_s, y_s = draw(k_shot)
x_q, y_q = draw(k_shot)
fast = adapt(model, dict(model.named_parameters()), x_s, y_s, 2)
loss_module = F.mse_loss(functional_call(model, fast, (x_q,)), y_q)
grads_module = torch.autograd.grad(loss_module, list(model.parameters()))
fast_weights = functional_adapt(weights, x_s, y_s, 2)
loss_functional = F.mse_loss(functional_forward(x_q, fast_weights), y_q)
grads_functional = torch.autograd.grad(loss_functional, weights)
print("editions agree on the query loss:", torch.allclose(loss_module, loss_functional, atol=1e-5))
print("editions agree on the meta-gradient:",
      all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(grads_module, grads_functional)))
# learn2learn's maml_update reads the gradients straight off model.parameters()
first_grads = torch.autograd.grad(F.mse_loss(model(x_s), y_s), model.parameters(), create_graph=True)
by_name = torch.autograd.grad(F.mse_loss(model(x_s), y_s), dict(model.named_parameters()))
print("grads by parameters() and by name agree:", type(by_name).__name__,
      all(torch.allclose(g, by_name[n]) for (n, _), g in zip(model.named_parameters(), first_grads)))
# the second-order term is really there: first-order gradients differ from the full ones
fast_fo = adapt(model, dict(model.named_parameters()), x_s, y_s, 2, first_order=True)
grads_fo = torch.autograd.grad(F.mse_loss(functional_call(model, fast_fo, (x_q,)), y_q), list(model.parameters()))
print("first-order meta-gradient differs:",
      any(not torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(grads_module, grads_fo)))
print("fast weights track the graph:", all(p.grad_fn is not None for p in fast.values()),
      "first-order fast weights:", all(p.grad_fn is not None for p in fast_fo.values()))

maml = meta_train(SineNet(), 200)
fomaml = meta_train(SineNet(), 200, first_order=True)


def evaluate(model, n_tasks=10, steps=5):
    before, after = 0.0, 0.0
    for _ in range(n_tasks):
        draw = sample_task()
        x_s, y_s = draw(k_shot)
        x_q, y_q = draw(100)
        with torch.no_grad():
            before += F.mse_loss(model(x_q), y_q).item()
        fast = adapt(model, {n: p.detach().requires_grad_(True) for n, p in model.named_parameters()},
                     x_s, y_s, steps, first_order=True)
        with torch.no_grad():
            after += F.mse_loss(functional_call(model, fast, (x_q,)), y_q).item()
    return before / n_tasks, after / n_tasks


maml_before, maml_after = evaluate(maml)
fomaml_before, fomaml_after = evaluate(fomaml)
print(f"maml: before {maml_before:.4f} after {maml_after:.4f}")
print(f"fomaml: before {fomaml_before:.4f} after {fomaml_after:.4f}")
print(f"FINAL maml_after={maml_after:.4f} fomaml_after={fomaml_after:.4f} "
      f"maml_gain={maml_before - maml_after:.4f}")
