"""The less common optimisers and schedulers of ``torch.optim`` as training scripts use them, each run
with a mid-run checkpoint that must resume exactly.

Optimisers: ``Adamax``, ``NAdam(momentum_decay=..., decoupled_weight_decay=True)``,
``RAdam(decoupled_weight_decay=True)``, ``Rprop(etas=..., step_sizes=...)`` full batch, ``ASGD(t0=...)``
evaluated on its averaged parameters ``optimizer.state[p]['ax']``, ``SGD(maximize=True)`` on a
log-likelihood, ``Adagrad(lr_decay=..., initial_accumulator_value=...)``. Schedulers: ``CyclicLR``
(``mode='triangular2'`` with ``cycle_momentum`` moving SGD's momentum, and ``exp_range``),
``MultiplicativeLR``, ``PolynomialLR(power=2.0)``, ``ChainedScheduler`` of ``ConstantLR`` and
``ExponentialLR``, ``CosineAnnealingLR(eta_min=...)``, and a user ``LRScheduler`` subclass with
``get_lr`` on ``self.last_epoch``/``self.base_lrs``. Each run saves ``model``, ``optimizer`` and
``scheduler`` ``state_dict``s plus ``torch.get_rng_state()`` and the shuffling ``Generator``'s
``get_state()`` into one ``torch.save`` to a ``BytesIO`` after half its epochs, builds everything
fresh, ``torch.load(..., weights_only=True)``, restores, and must end with the uninterrupted run's
parameters bit for bit (``torch.equal``).

The data: a noisy nonlinear regression made with NumPy.
"""

import copy
import io
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import lr_scheduler

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N, D = 192, 6
X_np = rng.normal(size=(N, D)).astype(np.float32)
w_true = rng.normal(size=(D,)).astype(np.float32)
y_np = (np.tanh(X_np @ w_true) + 0.3 * np.sin(2 * X_np[:, 0]) + 0.05 * rng.normal(size=N)).astype(np.float32)
X = torch.from_numpy(X_np)
y = torch.from_numpy(y_np).unsqueeze(1)
X_train, y_train, X_test, y_test = X[:144], y[:144], X[144:], y[144:]

EPOCHS = 8
BATCH = 24


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, 24)
        self.fc2 = nn.Linear(24, 1)
        self.log_sigma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class WarmupInverseSqrt(lr_scheduler.LRScheduler):
    """The transformer schedule as users subclass it: linear warm-up, then 1/sqrt(step)."""

    def __init__(self, optimizer, warmup_steps, last_epoch=-1):
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        step = max(self.last_epoch, 1)
        scale = min(step / self.warmup_steps, math.sqrt(self.warmup_steps / step))
        return [base_lr * scale for base_lr in self.base_lrs]


init_model = Net()
init_state = copy.deepcopy(init_model.state_dict())


def gaussian_nll(model, xb, yb):
    """Negative log-likelihood with a learned noise scale (maximised, negated, by the maximize run)."""
    mu = model(xb)
    sigma = model.log_sigma.exp()
    return (0.5 * ((yb - mu) / sigma) ** 2 + model.log_sigma).mean() + 0.5 * math.log(2 * math.pi)


CONFIGS = {
    "adamax": (lambda p: torch.optim.Adamax(p, lr=0.02, betas=(0.9, 0.99), weight_decay=1e-4),
               lambda o: lr_scheduler.MultiplicativeLR(o, lr_lambda=lambda epoch: 0.9), "epoch"),
    "nadam": (lambda p: torch.optim.NAdam(p, lr=0.01, momentum_decay=0.004, weight_decay=0.01,
                                          decoupled_weight_decay=True),
              lambda o: lr_scheduler.PolynomialLR(o, total_iters=EPOCHS, power=2.0), "epoch"),
    "radam": (lambda p: torch.optim.RAdam(p, lr=0.01, weight_decay=0.01, decoupled_weight_decay=True),
              lambda o: WarmupInverseSqrt(o, warmup_steps=10), "batch"),
    "sgd_cyclic": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                   lambda o: lr_scheduler.CyclicLR(o, base_lr=0.005, max_lr=0.05, step_size_up=6,
                                                   mode="triangular2", cycle_momentum=True,
                                                   base_momentum=0.8, max_momentum=0.9), "batch"),
    "sgd_exp_range": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.5),
                      lambda o: lr_scheduler.CyclicLR(o, base_lr=0.01, max_lr=0.08, step_size_up=4,
                                                      step_size_down=8, mode="exp_range", gamma=0.97,
                                                      cycle_momentum=False), "batch"),
    "sgd_maximize": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, maximize=True),
                     lambda o: lr_scheduler.ChainedScheduler([lr_scheduler.ConstantLR(o, factor=0.5, total_iters=2),
                                                              lr_scheduler.ExponentialLR(o, gamma=0.9)]), "epoch"),
    "adagrad": (lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=1e-3, initial_accumulator_value=0.1),
                lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=EPOCHS, eta_min=0.01), "epoch"),
    "asgd": (lambda p: torch.optim.ASGD(p, lr=0.05, lambd=1e-4, alpha=0.75, t0=20, weight_decay=0.0),
             lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5), "epoch"),
}


def build(name):
    make_opt, make_sched, per = CONFIGS[name]
    model = Net()
    model.load_state_dict(init_state)
    optimizer = make_opt(model.parameters())
    scheduler = make_sched(optimizer)
    return model, optimizer, scheduler, per


def run_epochs(name, model, optimizer, scheduler, per, generator, start, stop):
    for _ in range(start, stop):
        model.train()
        perm = torch.randperm(X_train.shape[0], generator=generator)
        noise = 0.01 * torch.randn(X_train.shape[0], 1)  # draws from the global generator too
        for i in range(0, X_train.shape[0], BATCH):
            idx = perm[i:i + BATCH]
            optimizer.zero_grad()
            loss = gaussian_nll(model, X_train[idx], y_train[idx] + noise[idx])
            (-loss if name == "sgd_maximize" else loss).backward()
            optimizer.step()
            if per == "batch":
                scheduler.step()
        if per == "epoch":
            scheduler.step()


def train(name, resume_at=None):
    model, optimizer, scheduler, per = build(name)
    torch.manual_seed(seed + 1)
    generator = torch.Generator().manual_seed(seed + 2)
    if resume_at is None:
        run_epochs(name, model, optimizer, scheduler, per, generator, 0, EPOCHS)
        return model, optimizer, scheduler
    run_epochs(name, model, optimizer, scheduler, per, generator, 0, resume_at)
    buffer = io.BytesIO()
    torch.save({"epoch": resume_at, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng_state": torch.get_rng_state(),
                "generator_state": generator.get_state()}, buffer)
    del model, optimizer, scheduler, generator
    torch.manual_seed(12345)  # whatever happens before the restore must not matter
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    model, optimizer, scheduler, per = build(name)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng_state"])
    generator = torch.Generator()
    generator.set_state(checkpoint["generator_state"])
    run_epochs(name, model, optimizer, scheduler, per, generator, checkpoint["epoch"], EPOCHS)
    return model, optimizer, scheduler


@torch.no_grad()
def test_mse(model):
    model.eval()
    return F.mse_loss(model(X_test), y_test).item()


results = {}
all_exact = True
for name in CONFIGS:
    model, optimizer, scheduler = train(name)
    resumed, _, resumed_scheduler = train(name, resume_at=EPOCHS // 2)
    exact = all(torch.equal(a, b) for a, b in zip(model.parameters(), resumed.parameters()))
    exact = exact and scheduler.get_last_lr() == resumed_scheduler.get_last_lr()
    all_exact = all_exact and exact
    mse = test_mse(model)
    group = optimizer.param_groups[0]
    extra = ""
    if name == "sgd_cyclic":
        extra = f" momentum={group['momentum']:.4f}"
    if name == "asgd":
        averaged = copy.deepcopy(model)
        with torch.no_grad():
            for p, q in zip(model.parameters(), averaged.parameters()):
                q.copy_(optimizer.state[p]["ax"])
        extra = f" averaged_mse={test_mse(averaged):.4f} mu={optimizer.state[model.fc1.weight]['mu'].item():.4f}"
    if name == "nadam":
        extra = f" mu_product={optimizer.state[model.fc1.weight]['mu_product'].item():.3e}"
    results[name] = mse
    print(f"{name:14s} lr={scheduler.get_last_lr()[0]:.6f} test_mse={mse:.4f} "
          f"sigma={model.log_sigma.exp().item():.4f} resumed_exact={exact}{extra}")
    print(f"{'':14s} state {list(optimizer.state_dict()['state'][0])} scheduler {list(scheduler.state_dict())[:3]}")

# Rprop is a full-batch method: one step per epoch on the whole training set.
model = Net()
model.load_state_dict(init_state)
optimizer = torch.optim.Rprop(model.parameters(), lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 1.0))
for epoch in range(30):
    optimizer.zero_grad()
    loss = gaussian_nll(model, X_train, y_train)
    loss.backward()
    optimizer.step()
    if epoch % 10 == 0:
        print(f"rprop epoch {epoch:2d} nll={loss.item():.4f}")
print(f"rprop state {list(optimizer.state[model.fc2.weight])}")
step_size = optimizer.state[model.fc2.weight]["step_size"]
print(f"rprop step sizes min={step_size.min().item():.2e} max={step_size.max().item():.2e}")
results["rprop"] = test_mse(model)
print(f"rprop test_mse={results['rprop']:.4f}")

print(f"resumes exact: {all_exact}")
print("FINAL " + " ".join(f"{k}={v:.4f}" for k, v in results.items()) + f" exact={int(all_exact)}")
