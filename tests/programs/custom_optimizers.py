"""Optimizers users write themselves by subclassing ``torch.optim.Optimizer``, as the popular repos do.

SAM (davda54/sam, sam.py): ``defaults = dict(rho=rho, adaptive=adaptive, **kwargs)``, a base
optimizer built over ``self.param_groups`` and shared back by ``self.param_groups =
self.base_optimizer.param_groups``, ``self.defaults.update(self.base_optimizer.defaults)``,
``first_step`` saving ``self.state[p]["old_p"] = p.data.clone()``, ``_grad_norm`` as
``torch.norm(torch.stack([...norm(p=2)...]), p=2)``, ``step(closure)`` with
``torch.enable_grad()(closure)``. Lion (lucidrains/lion-pytorch): decoupled ``p.data.mul_(1 - lr *
wd)``, ``exp_avg.clone().mul_(beta1).add(grad, alpha=1 - beta1).sign_()``, an ``@torch.no_grad()``
step. Lookahead (the alphadl/lookahead.pytorch style) wrapping Adam, its slow weights kept in the
shared ``self.state`` beside Adam's moments (``slow += (fast_p.data - slow) * alpha``, ``copy_``).
Each one's ``state_dict()``/``load_state_dict()`` round trip through a fresh optimizer must resume
identically; ``add_param_group`` adds a layer mid-run. A user
``LRScheduler`` subclass overriding ``get_lr`` (linear warm-up then polynomial decay) driven by
``last_epoch``, and ``ChainedScheduler`` stacking two built-in schedulers.
"""
# ruff: noqa: UP008, B023  (sam.py's own super(SAM, self) and the README's closure over the loop batch)

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ChainedScheduler, ConstantLR, ExponentialLR, LRScheduler

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

rng = np.random.RandomState(0)
centers = rng.randn(3, 10).astype(np.float32) * 1.5
labels_np = rng.randint(0, 3, size=384)
points_np = centers[labels_np] + rng.randn(384, 10).astype(np.float32)
x_all = torch.from_numpy(points_np)
y_all = torch.from_numpy(labels_np).long()
x_train, y_train, x_test, y_test = x_all[:256], y_all[:256], x_all[256:], y_all[256:]


class SAM(torch.optim.Optimizer):
    def __init__(self, params, base_optimizer, rho=0.05, adaptive=False, **kwargs):
        assert rho >= 0.0, f"Invalid rho, should be non-negative: {rho}"

        defaults = dict(rho=rho, adaptive=adaptive, **kwargs)
        super(SAM, self).__init__(params, defaults)

        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def first_step(self, zero_grad=False):
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)

            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.data.clone()
                e_w = (torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)  # climb to the local maximum "w + e(w)"

        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad=False):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.data = self.state[p]["old_p"]  # get back to "w" from "w + e(w)"

        self.base_optimizer.step()  # do the actual "sharpness-aware" update

        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure=None):
        assert closure is not None, "Sharpness Aware Minimization requires closure, but it was not provided"
        closure = torch.enable_grad()(closure)  # the closure should do a full forward-backward pass

        self.first_step(zero_grad=True)
        closure()
        self.second_step()

    def _grad_norm(self):
        shared_device = self.param_groups[0]["params"][0].device
        norm = torch.norm(
            torch.stack([
                ((torch.abs(p) if group["adaptive"] else 1.0) * p.grad).norm(p=2).to(shared_device)
                for group in self.param_groups for p in group["params"]
                if p.grad is not None
            ]),
            p=2
        )
        return norm

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups


class Lion(Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        assert lr > 0.
        assert all([0. <= beta <= 1. for beta in betas])
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            for p in filter(lambda p: p.grad is not None, group["params"]):
                grad, lr, wd, beta1, beta2, state = p.grad, group["lr"], group["weight_decay"], *group["betas"], \
                    self.state[p]

                # init state - exponential moving average of gradient values
                if len(state) == 0:
                    state["exp_avg"] = torch.zeros_like(p)

                exp_avg = state["exp_avg"]

                # stepweight decay
                p.data.mul_(1 - lr * wd)

                # weight update
                update = exp_avg.clone().mul_(beta1).add(grad, alpha=1 - beta1).sign_()
                p.add_(update, alpha=-lr)

                # decay the momentum running average coefficient
                exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)

        return loss


class Lookahead(Optimizer):
    def __init__(self, optimizer, alpha=0.5, k=5):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Invalid slow update rate: {alpha}")
        if not 1 <= k:
            raise ValueError(f"Invalid lookahead steps: {k}")
        self.optimizer = optimizer
        self.param_groups = self.optimizer.param_groups
        self.alpha = alpha
        self.k = k
        for group in self.param_groups:
            group["step_counter"] = 0
        self.defaults = self.optimizer.defaults
        self.state = self.optimizer.state

    def update(self, group):
        for fast_p in group["params"]:
            param_state = self.state[fast_p]
            if "slow_param" not in param_state:
                param_state["slow_param"] = torch.zeros_like(fast_p.data)
                param_state["slow_param"].copy_(fast_p.data)
            slow = param_state["slow_param"]
            slow += (fast_p.data - slow) * self.alpha
            fast_p.data.copy_(slow)

    def step(self, closure=None):
        loss = self.optimizer.step(closure)
        for group in self.param_groups:
            group["step_counter"] += 1
            if group["step_counter"] % self.k == 0:
                self.update(group)
        return loss

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict):
        self.optimizer.load_state_dict(state_dict)
        self.param_groups = self.optimizer.param_groups
        self.state = self.optimizer.state

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)


class WarmupPolyLR(LRScheduler):
    def __init__(self, optimizer, warmup_iters, max_iters, power=0.9, min_lr=1e-4, last_epoch=-1):
        self.warmup_iters = warmup_iters
        self.max_iters = max_iters
        self.power = power
        self.min_lr = min_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch < self.warmup_iters:
            factor = (self.last_epoch + 1) / self.warmup_iters
            return [base_lr * factor for base_lr in self.base_lrs]
        progress = (self.last_epoch - self.warmup_iters) / max(1, self.max_iters - self.warmup_iters)
        factor = (1 - min(progress, 1.0)) ** self.power
        return [self.min_lr + (base_lr - self.min_lr) * factor for base_lr in self.base_lrs]


def make_model():
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))


def evaluate(model):
    with torch.no_grad():
        logits = model(x_test)
        return F.cross_entropy(logits, y_test).item(), (logits.argmax(1) == y_test).float().mean().item()


def batches(step_count, batch_size=32):
    generator = torch.Generator().manual_seed(seed + 100)
    for _ in range(step_count):
        index = torch.randint(0, x_train.shape[0], (batch_size,), generator=generator)
        yield x_train[index], y_train[index]


def max_difference(model_a, model_b):
    return max((a - b).abs().max().item() for a, b in zip(model_a.parameters(), model_b.parameters()))


# --- SAM around SGD with momentum ---------------------------------------------------------------------------
print("SAM")
model = make_model()
optimizer = SAM(model.parameters(), torch.optim.SGD, rho=0.05, adaptive=False, lr=0.1, momentum=0.9)
print(sorted(optimizer.defaults.keys()))
print(optimizer.param_groups is optimizer.base_optimizer.param_groups, len(optimizer.param_groups))
for step, (inputs, targets) in enumerate(batches(60)):
    def closure():
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        return loss

    loss = F.cross_entropy(model(inputs), targets)
    loss.backward()
    optimizer.step(closure)
    optimizer.zero_grad()
    if step % 20 == 0:
        print(f"sam step {step} loss {loss.item():.4f} grad_state {len(optimizer.state)}")
sam_loss, sam_acc = evaluate(model)
print(f"sam test_loss {sam_loss:.4f} test_acc {sam_acc:.3f}")

# SAM with adaptive=True, first_step/second_step called by hand (the README's second usage)
model = make_model()
optimizer = SAM(model.parameters(), torch.optim.SGD, rho=2.0, adaptive=True, lr=0.1, momentum=0.9)
for inputs, targets in batches(40):
    F.cross_entropy(model(inputs), targets).backward()
    optimizer.first_step(zero_grad=True)
    F.cross_entropy(model(inputs), targets).backward()
    optimizer.second_step(zero_grad=True)
asam_loss, asam_acc = evaluate(model)
print(f"asam test_loss {asam_loss:.4f} test_acc {asam_acc:.3f}")
state_dict = optimizer.state_dict()
print(sorted(state_dict["param_groups"][0].keys()))
print(len(state_dict["state"]), sorted(state_dict["state"][0].keys()))

# --- Lion: train, checkpoint halfway, resume in a fresh optimizer -----------------------------------------------
print("Lion")
model = make_model()
optimizer = Lion(model.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1)
print(optimizer)
all_batches = list(batches(80))
for step, (inputs, targets) in enumerate(all_batches[:40]):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(inputs), targets)
    loss.backward()
    optimizer.step()
    if step % 20 == 0:
        print(f"lion step {step} loss {loss.item():.4f}")
checkpoint = {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict())}
print(sorted(checkpoint["optimizer"]["state"][0].keys()), checkpoint["optimizer"]["param_groups"][0]["betas"])

resumed = make_model()
resumed.load_state_dict(checkpoint["model"])
resumed_optimizer = Lion(resumed.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1)
resumed_optimizer.load_state_dict(checkpoint["optimizer"])
for run_model, run_optimizer in ((model, optimizer), (resumed, resumed_optimizer)):
    for inputs, targets in all_batches[40:]:
        run_optimizer.zero_grad()
        F.cross_entropy(run_model(inputs), targets).backward()
        run_optimizer.step()
lion_resume_diff = max_difference(model, resumed)
lion_loss, lion_acc = evaluate(model)
print(f"lion test_loss {lion_loss:.4f} test_acc {lion_acc:.3f} resume_diff {lion_resume_diff:.1e}")

# add_param_group: a new head joins mid-run with its own lr
head = nn.Linear(3, 3)
optimizer.add_param_group({"params": head.parameters(), "lr": 1e-3})
print(len(optimizer.param_groups), optimizer.param_groups[1]["betas"], optimizer.param_groups[1]["weight_decay"])
for inputs, targets in all_batches[:10]:
    optimizer.zero_grad()
    F.cross_entropy(head(model(inputs)), targets).backward()
    optimizer.step()
print(f"head state {len(optimizer.state)} {sorted(optimizer.state[head.weight].keys())}")
optimizer.zero_grad(set_to_none=False)
print(head.weight.grad.abs().sum().item(), model[0].weight.grad.shape)
print(optimizer)
try:
    optimizer.add_param_group({"params": head.parameters()})
except ValueError as error:
    print("ValueError:", error)

# --- Lookahead wrapping Adam ----------------------------------------------------------------------------------------
print("Lookahead")
model = make_model()
optimizer = Lookahead(torch.optim.Adam(model.parameters(), lr=1e-2), alpha=0.5, k=5)
for step, (inputs, targets) in enumerate(all_batches[:42]):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(inputs), targets)
    loss.backward()
    optimizer.step()
    if step % 20 == 0:
        print(f"lookahead step {step} loss {loss.item():.4f} counter {optimizer.param_groups[0]['step_counter']}")
checkpoint = {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict())}
print(sorted(checkpoint["optimizer"]["param_groups"][0].keys()))
print(sorted(checkpoint["optimizer"]["state"][0].keys()))
resumed = make_model()
resumed.load_state_dict(checkpoint["model"])
resumed_optimizer = Lookahead(torch.optim.Adam(resumed.parameters(), lr=1e-2), alpha=0.5, k=5)
resumed_optimizer.load_state_dict(checkpoint["optimizer"])
print(resumed_optimizer.param_groups[0]["step_counter"], resumed_optimizer.optimizer.state[resumed[0].weight]["step"])
for run_model, run_optimizer in ((model, optimizer), (resumed, resumed_optimizer)):
    for inputs, targets in all_batches[42:]:
        run_optimizer.zero_grad()
        F.cross_entropy(run_model(inputs), targets).backward()
        run_optimizer.step()
lookahead_resume_diff = max_difference(model, resumed)
lookahead_loss, lookahead_acc = evaluate(model)
print(f"lookahead test_loss {lookahead_loss:.4f} test_acc {lookahead_acc:.3f} resume_diff {lookahead_resume_diff:.1e}")

# --- a user LRScheduler: warm-up then polynomial decay; then ChainedScheduler --------------------------------------
print("Schedulers")
model = make_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
scheduler = WarmupPolyLR(optimizer, warmup_iters=5, max_iters=30, power=0.9, min_lr=1e-3)
print(f"initial lr {optimizer.param_groups[0]['lr']:.4f} last_epoch {scheduler.last_epoch} "
      f"initial_lr {optimizer.param_groups[0]['initial_lr']:.4f}")
lrs = []
for inputs, targets in all_batches[:30]:
    optimizer.zero_grad()
    F.cross_entropy(model(inputs), targets).backward()
    optimizer.step()
    scheduler.step()
    lrs.append(scheduler.get_last_lr()[0])
print(" ".join(f"{lr:.4f}" for lr in lrs[:8]), "...", f"{lrs[-1]:.4f}")
print(f"last_epoch {scheduler.last_epoch}", sorted(scheduler.state_dict().keys()))
poly_loss, poly_acc = evaluate(model)

# resume the scheduler from its state_dict midway with last_epoch
optimizer2 = torch.optim.SGD(make_model().parameters(), lr=0.2, momentum=0.9)
for group in optimizer2.param_groups:
    group["initial_lr"] = 0.2
scheduler2 = WarmupPolyLR(optimizer2, warmup_iters=5, max_iters=30, power=0.9, min_lr=1e-3, last_epoch=11)
print(f"resumed at last_epoch {scheduler2.last_epoch} lr {optimizer2.param_groups[0]['lr']:.4f} == {lrs[11]:.4f}")

optimizer = torch.optim.SGD(make_model().parameters(), lr=1.0)
scheduler = ChainedScheduler([ConstantLR(optimizer, factor=0.1, total_iters=2), ExponentialLR(optimizer, gamma=0.9)])
chained = []
for _ in range(6):
    optimizer.step()
    scheduler.step()
    chained.append(scheduler.get_last_lr()[0])
print("chained", " ".join(f"{lr:.4f}" for lr in chained))
print(len(scheduler.state_dict()["_schedulers"]))

print(f"FINAL sam_acc={sam_acc:.4f} asam_acc={asam_acc:.4f} lion_loss={lion_loss:.4f} "
      f"lookahead_loss={lookahead_loss:.4f} poly_loss={poly_loss:.4f} poly_acc={poly_acc:.4f} "
      f"lion_resume_diff={lion_resume_diff:.4f} lookahead_resume_diff={lookahead_resume_diff:.4f} "
      f"final_lr={lrs[-1]:.5f} chained_lr={chained[-1]:.5f}")
