"""Schedule-Free AdamW as facebookresearch/schedule_free's ``adamw_schedulefree.py`` writes it, trained
on a small synthetic regression as its examples do (``model.train(); optimizer.train()`` before the
training steps, ``model.eval(); optimizer.eval()`` before evaluation): ``train()``/``eval()`` moving
the parameters between y and x by ``p.data.lerp_(end=state['z'], weight=1-beta1)`` /
``weight=1-1/beta1`` under ``@torch.no_grad()``, the z sequence started by ``torch.clone(p,
memory_format=torch.preserve_format)``, linear warmup, ``weight_lr_power`` weights ``ckp1 =
weight/weight_sum``, the ``foreach`` path (``torch._foreach_mul_``/``_foreach_addcmul_``/
``_foreach_div``/``_foreach_sqrt_``/``_foreach_add_``/``_foreach_div_``/``_foreach_lerp_(y, z,
weight=ckp1)``/``_foreach_sub_``) against the per-parameter path (must agree), weight decay at y,
the refusal to ``step`` in eval mode, and ``state_dict``/``load_state_dict`` through ``torch.save``
into a ``BytesIO``.

Checks: eval-mode and train-mode parameters differ, x = (y - (1 - beta1) z) / beta1, the eval-mode
loss is the one reported; a run stopped and resumed from the saved state equals the uninterrupted
one exactly; the final loss against AdamW with a warmup + cosine ``LambdaLR`` (band).
"""

import copy
import io
import math
import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
random.seed(seed)
np.random.seed(seed)
torch.manual_seed(seed)


# ---- schedulefree/adamw_schedulefree.py ----
class AdamWScheduleFree(torch.optim.Optimizer):
    r"""
    Schedule-Free AdamW
    As the name suggests, no scheduler is needed with this optimizer.
    To add warmup, rather than using a learning rate schedule you can just
    set the warmup_steps parameter.

    This optimizer requires that .train() and .eval() be called before the
    beginning of training and evaluation respectively. The optimizer should
    also be placed in eval mode when saving checkpoints.
    """
    def __init__(self,
                 params,
                 lr=0.0025,
                 betas=(0.9, 0.999),
                 eps=1e-8,
                 weight_decay=0,
                 warmup_steps=0,
                 r=0.0,
                 weight_lr_power=2.0,
                 foreach=hasattr(torch, "_foreach_mul_")
                 ):

        defaults = dict(lr=lr,
                        betas=betas,
                        eps=eps,
                        r=r,
                        k=0,
                        warmup_steps=warmup_steps,
                        train_mode=True,
                        weight_sum=0.0,
                        lr_max=-1.0,
                        weight_lr_power=weight_lr_power,
                        weight_decay=weight_decay,
                        foreach=foreach)
        super().__init__(params, defaults)

    @torch.no_grad()
    def eval(self):
        for group in self.param_groups:
            train_mode = group['train_mode']
            beta1, _ = group['betas']
            if train_mode:
                for p in group['params']:
                    state = self.state[p]
                    if 'z' in state:
                        # Set p.data to x
                        p.data.lerp_(end=state['z'].to(p.data.device), weight=1-1/beta1)
                group['train_mode'] = False

    @torch.no_grad()
    def train(self):
        for group in self.param_groups:
            train_mode = group['train_mode']
            beta1, _ = group['betas']
            if not train_mode:
                for p in group['params']:
                    state = self.state[p]
                    if 'z' in state:
                        # Set p.data to y
                        p.data.lerp_(end=state['z'].to(p.data.device), weight=1-beta1)
                group['train_mode'] = True

    @torch.no_grad()
    def step(self, closure=None):
        """Performs a single optimization step.

        Arguments:
            closure (callable, optional): A closure that reevaluates the model
                and returns the loss.
        """
        if not self.param_groups[0]['train_mode']:
            raise Exception("Optimizer was not in train mode when step is called. "
                            "Please insert .train() and .eval() calls on the "
                            "optimizer. See documentation for details.")

        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            eps = group['eps']
            beta1, beta2 = group['betas']
            decay = group['weight_decay']
            k = group['k']
            r = group['r']
            warmup_steps = group['warmup_steps']
            weight_lr_power = group['weight_lr_power']

            if k < warmup_steps:
                sched = (k+1) / warmup_steps
            else:
                sched = 1.0

            bias_correction2 = 1 - beta2 ** (k+1)
            lr = group['lr']*sched
            group['scheduled_lr'] = lr  # For logging purposes

            lr_max = group['lr_max'] = max(lr, group['lr_max'])

            weight = ((k+1)**r) * (lr_max**weight_lr_power)
            weight_sum = group['weight_sum'] = group['weight_sum'] + weight

            try:
                ckp1 = weight/weight_sum
            except ZeroDivisionError:
                ckp1 = 0

            active_p = [p for p in group['params'] if p.grad is not None]

            for p in active_p:
                if 'z' not in self.state[p]:
                    self.state[p]['z'] = torch.clone(p, memory_format=torch.preserve_format)
                    self.state[p]['exp_avg_sq'] = torch.zeros_like(p, memory_format=torch.preserve_format)

            if group['foreach'] and len(active_p) > 0:
                y, grad, exp_avg_sq, z = zip(*[(p,
                                                p.grad,
                                                self.state[p]['exp_avg_sq'],
                                                self.state[p]['z'])
                                               for p in active_p])

                # Decay the first and second moment running average coefficient
                torch._foreach_mul_(exp_avg_sq, beta2)
                torch._foreach_addcmul_(exp_avg_sq, grad, grad, value=1-beta2)
                denom = torch._foreach_div(exp_avg_sq, bias_correction2)
                torch._foreach_sqrt_(denom)
                torch._foreach_add_(denom, eps)

                # Normalize grad in-place for memory efficiency
                torch._foreach_div_(grad, denom)

                # Weight decay calculated at y
                if decay != 0:
                    torch._foreach_add_(grad, y, alpha=decay)

                # These operations update y in-place,
                # without computing x explicitly.
                torch._foreach_lerp_(y, z, weight=ckp1)
                torch._foreach_add_(y, grad, alpha=lr*(beta1*(1-ckp1)-1))

                # z step
                torch._foreach_sub_(z, grad, alpha=lr)
            else:
                for p in active_p:
                    y = p.data  # Notation to match theory
                    grad = p.grad.data

                    state = self.state[p]

                    z = state['z']
                    exp_avg_sq = state['exp_avg_sq']

                    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2)
                    denom = exp_avg_sq.div(bias_correction2).sqrt_().add_(eps)

                    # Reuse grad buffer for memory efficiency
                    grad_normalized = grad.div_(denom)

                    # Weight decay calculated at y
                    if decay != 0:
                        grad_normalized.add_(y, alpha=decay)

                    # These operations update y in-place,
                    # without computing x explicitly.
                    y.lerp_(end=z, weight=ckp1)
                    y.add_(grad_normalized, alpha=lr*(beta1*(1-ckp1)-1))

                    # z step
                    z.sub_(grad_normalized, alpha=lr)

            group['k'] = k+1
        return loss


# ---- a small regression task ----
n_train, n_test, d_in = 512, 256, 8
rng = np.random.RandomState(100)
w_true = rng.randn(d_in, 1) / math.sqrt(d_in)
X = rng.randn(n_train + n_test, d_in).astype(np.float32)
Y = (np.sin(2.0 * X @ w_true) + 0.3 * (X[:, :1] * X[:, 1:2]) + 0.05 * rng.randn(n_train + n_test, 1)).astype(np.float32)
X_train, Y_train = torch.from_numpy(X[:n_train]), torch.from_numpy(Y[:n_train])
X_test, Y_test = torch.from_numpy(X[n_train:]), torch.from_numpy(Y[n_train:])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(d_in, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 1)

    def forward(self, x):
        x = F.gelu(self.fc1(x))
        x = F.gelu(self.fc2(x))
        return self.fc3(x)


batch_size = 32
total_steps = 480
batch_order = np.random.RandomState(7).randint(0, n_train, size=(total_steps, batch_size))
init_model = Net()


def train_steps(model, optimizer, start, stop, scheduler=None):
    model.train()
    if hasattr(optimizer, "train"):
        optimizer.train()
    for step in range(start, stop):
        idx = torch.from_numpy(batch_order[step])
        optimizer.zero_grad()
        loss = F.mse_loss(model(X_train[idx]), Y_train[idx])
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return loss.item()


@torch.no_grad()
def evaluate(model, optimizer):
    model.eval()
    if hasattr(optimizer, "eval"):
        optimizer.eval()
    return F.mse_loss(model(X_test), Y_test).item()


def make_sf(model, foreach):
    return AdamWScheduleFree(model.parameters(), lr=5e-3, betas=(0.9, 0.999), weight_decay=1e-4,
                             warmup_steps=40, foreach=foreach)


# Schedule-Free, foreach and per-parameter paths
model_sf = copy.deepcopy(init_model)
opt_sf = make_sf(model_sf, foreach=True)
model_loop = copy.deepcopy(init_model)
opt_loop = make_sf(model_loop, foreach=False)
for start in range(0, total_steps, 160):
    train_loss = train_steps(model_sf, opt_sf, start, start + 160)
    train_steps(model_loop, opt_loop, start, start + 160)
    test_loss = evaluate(model_sf, opt_sf)
    evaluate(model_loop, opt_loop)
    print(f"schedule-free step {start + 160}: train loss {train_loss:.4f} test loss (eval mode, x) "
          f"{test_loss:.4f} scheduled lr {opt_sf.param_groups[0]['scheduled_lr']:.4f}")
foreach_gap = max((a - b).abs().max().item() for a, b in zip(model_sf.parameters(), model_loop.parameters()))
print(f"foreach vs per-parameter: max gap {foreach_gap:.2e}")

# x (eval) against y (train), and x = (y - (1 - beta1) z) / beta1
beta1 = opt_sf.param_groups[0]['betas'][0]
x_params = [p.detach().clone() for p in model_sf.parameters()]
loss_x = evaluate(model_sf, opt_sf)
opt_sf.train()
model_sf.train()
y_params = [p.detach().clone() for p in model_sf.parameters()]
with torch.no_grad():
    loss_y = F.mse_loss(model_sf(X_test), Y_test).item()
z_params = [opt_sf.state[p]['z'] for p in model_sf.parameters()]
xy_gap = max((x - y).abs().max().item() for x, y in zip(x_params, y_params))
x_identity = max((x - (y - (1 - beta1) * z) / beta1).abs().max().item()
                 for x, y, z in zip(x_params, y_params, z_params))
print(f"eval (x) vs train (y) parameters: max gap {xy_gap:.3e}; x from y and z: {x_identity:.1e}")
print(f"test loss at x {loss_x:.4f}, at y {loss_y:.4f}")
try:
    opt_sf.eval()
    opt_sf.step()
    refused = False
except Exception as e:
    refused = "not in train mode" in str(e)
opt_sf.train()
print(f"step in eval mode refused: {refused}")

# resume: stop at 200 steps with the optimizer in eval mode, save, reload into fresh objects
model_a = copy.deepcopy(init_model)
opt_a = make_sf(model_a, foreach=True)
train_steps(model_a, opt_a, 0, 200)
evaluate(model_a, opt_a)
buffer = io.BytesIO()
torch.save({"model": model_a.state_dict(), "optimizer": opt_a.state_dict(), "step": 200}, buffer)
buffer.seek(0)
checkpoint = torch.load(buffer, weights_only=True)
model_b = Net()
opt_b = make_sf(model_b, foreach=True)
model_b.load_state_dict(checkpoint["model"])
opt_b.load_state_dict(checkpoint["optimizer"])
print(f"resumed at step {checkpoint['step']}: k={opt_b.param_groups[0]['k']} "
      f"train_mode={opt_b.param_groups[0]['train_mode']}")
train_steps(model_b, opt_b, checkpoint["step"], total_steps)
resumed_loss = evaluate(model_b, opt_b)
full = copy.deepcopy(init_model)
opt_full = make_sf(full, foreach=True)
train_steps(full, opt_full, 0, 200)
evaluate(full, opt_full)
train_steps(full, opt_full, 200, total_steps)
full_loss = evaluate(full, opt_full)
resume_exact = all(torch.equal(a, b) for a, b in zip(model_b.parameters(), full.parameters()))
resume_exact = resume_exact and all(torch.equal(opt_b.state[a]['z'], opt_full.state[b]['z'])
                                    for a, b in zip(model_b.parameters(), full.parameters()))
print(f"resumed run equals the uninterrupted one: {resume_exact} (test loss {resumed_loss:.4f})")

# AdamW with a warmup + cosine schedule
model_adamw = copy.deepcopy(init_model)
opt_adamw = torch.optim.AdamW(model_adamw.parameters(), lr=5e-3, betas=(0.9, 0.999), weight_decay=1e-4)
warmup = 40


def lr_lambda(step):
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


sched = torch.optim.lr_scheduler.LambdaLR(opt_adamw, lr_lambda)
train_steps(model_adamw, opt_adamw, 0, total_steps, scheduler=sched)
adamw_loss = evaluate(model_adamw, opt_adamw)
sf_loss = evaluate(model_sf, opt_sf)
print(f"test loss: schedule-free {sf_loss:.4f}, AdamW + cosine {adamw_loss:.4f}")
assert foreach_gap < 1e-5 and xy_gap > 1e-4 and x_identity < 1e-4 and refused and resume_exact

print(f"FINAL sf_loss={sf_loss:.4f} adamw_cosine_loss={adamw_loss:.4f} sf_over_adamw={sf_loss / adamw_loss:.4f} "
      f"loss_at_y={loss_y:.4f} xy_gap={xy_gap:.4f} resumed_exact={int(resume_exact)}")
