"""Optimizers as users write them, each a ``torch.optim.Optimizer`` subclass with a single-tensor loop and
a multi-tensor (``torch._foreach_*``) path that must take the same steps, on a spiral classifier.

Lion as lion-pytorch's current ``update_fn`` (``exp_avg.clone().lerp_(grad, 1 - beta1).sign_()``,
``exp_avg.lerp_(grad, 1 - beta2)``, decoupled ``p.data.mul_(1 - lr * wd)``) and its foreach form
(``torch._foreach_lerp``, ``torch._foreach_sign_``); LAMB as cybertronai/pytorch-lamb (``weight_norm =
p.data.pow(2).sum().sqrt().clamp(0, 10)``, the trust ratio ``w_norm / g_norm`` guarded by
``torch.where``, kept in ``state``); Adan as its authors' code (three moments, the gradient difference
kept as ``neg_pre_grad``, ``torch._foreach_mul_``/``_foreach_add_(alpha=)``/``_foreach_addcmul_``/
``_foreach_sqrt``/``_foreach_div_``/``_foreach_addcdiv_``/``_foreach_zero_``, bias corrections, the
proximal ``div_(1 + lr * wd)``); each step ``@torch.no_grad()`` with ``with torch.enable_grad(): loss =
closure()``. A Lookahead wrapper (lonePatient style) sharing ``self.param_groups`` with the inner
optimizer, slow weights in its own ``state``, ``state_dict`` holding ``fast_state``/``slow_state``; a
``state_dict`` round trip through ``torch.save``/``torch.load`` mid-run must resume bit for bit.
``register_step_pre_hook``/``register_step_post_hook`` (step counts, update norms, ``handle.remove()``),
the global ``register_optimizer_step_post_hook``, ``LinearLR`` warm-up into ``CosineAnnealingLR`` by
``SequentialLR`` on the wrapper.
"""
# ruff: noqa: B023  (each closure runs inside the step of the iteration that made it)

import copy
import io
import math
import os
from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import Optimizer
from torch.optim.optimizer import register_optimizer_step_post_hook

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ----------------------------------------------------------------- data: three interleaved spirals
rng = np.random.RandomState(0)
n_per, classes = 120, 3
points, labels = [], []
for c in range(classes):
    r = np.linspace(0.1, 1.0, n_per)
    theta = np.linspace(c * 4.0, (c + 1) * 4.0, n_per) + rng.randn(n_per) * 0.2
    points.append(np.stack([r * np.sin(theta), r * np.cos(theta)], 1))
    labels.append(np.full(n_per, c))
x_all = torch.from_numpy(np.concatenate(points).astype(np.float32))
y_all = torch.from_numpy(np.concatenate(labels)).long()
perm = torch.from_numpy(rng.permutation(len(x_all)))
x_train, y_train = x_all[perm[:270]], y_all[perm[:270]]
x_test, y_test = x_all[perm[270:]], y_all[perm[270:]]


def make_model():
    return nn.Sequential(nn.Linear(2, 48), nn.Tanh(), nn.Linear(48, 48), nn.Tanh(), nn.Linear(48, classes))


# ----------------------------------------------------------------- Lion
class Lion(Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, foreach=False):
        assert lr > 0.0
        assert all(0.0 <= beta <= 1.0 for beta in betas)
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, foreach=foreach)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            for p in params:
                if len(self.state[p]) == 0:
                    self.state[p]["exp_avg"] = torch.zeros_like(p)
            exp_avgs = [self.state[p]["exp_avg"] for p in params]
            lr, wd, (beta1, beta2) = group["lr"], group["weight_decay"], group["betas"]
            if group["foreach"]:
                torch._foreach_mul_(params, 1 - lr * wd)
                updates = torch._foreach_lerp(exp_avgs, grads, 1 - beta1)
                torch._foreach_sign_(updates)
                torch._foreach_add_(params, updates, alpha=-lr)
                torch._foreach_lerp_(exp_avgs, grads, 1 - beta2)
            else:
                for p, grad, exp_avg in zip(params, grads, exp_avgs):
                    p.data.mul_(1 - lr * wd)
                    update = exp_avg.clone().lerp_(grad, 1 - beta1).sign_()
                    p.add_(update, alpha=-lr)
                    exp_avg.lerp_(grad, 1 - beta2)
        return loss


# ----------------------------------------------------------------- LAMB
class Lamb(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, use_where=False):
        if not 0.0 <= lr:
            raise ValueError("Invalid learning rate: {}".format(lr))  # noqa: UP032  (the repository's spelling)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, use_where=use_where)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p.data)
                    state["exp_avg_sq"] = torch.zeros_like(p.data)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = group["lr"]
                weight_norm = p.data.pow(2).sum().sqrt().clamp(0, 10)
                adam_step = exp_avg / exp_avg_sq.sqrt().add(group["eps"])
                if group["weight_decay"] != 0:
                    adam_step.add_(p.data, alpha=group["weight_decay"])
                adam_norm = adam_step.pow(2).sum().sqrt()
                if group["use_where"]:
                    trust_ratio = torch.where((weight_norm > 0) & (adam_norm > 0), weight_norm / adam_norm,
                                              torch.ones_like(weight_norm))
                    p.data.add_(adam_step * trust_ratio, alpha=-step_size)
                else:
                    if weight_norm == 0 or adam_norm == 0:
                        trust_ratio = 1
                    else:
                        trust_ratio = weight_norm / adam_norm
                    p.data.add_(adam_step, alpha=-step_size * trust_ratio)
                state["weight_norm"] = weight_norm
                state["adam_norm"] = adam_norm
                state["trust_ratio"] = trust_ratio
        return loss


# ----------------------------------------------------------------- Adan
class Adan(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0,
                 no_prox=False, foreach=True):
        if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0 or not 0.0 <= betas[2] < 1.0:
            raise ValueError("Invalid beta parameters: {}".format(betas))  # noqa: UP032
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, no_prox=no_prox, foreach=foreach)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, exp_avg_diffs, neg_pre_grads = [], [], [], [], [], []
            beta1, beta2, beta3 = group["betas"]
            group["step"] = group.get("step", 0) + 1
            bias_correction1 = 1.0 - beta1 ** group["step"]
            bias_correction2 = 1.0 - beta2 ** group["step"]
            bias_correction3 = 1.0 - beta3 ** group["step"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                params.append(p)
                grads.append(p.grad)
                state = self.state[p]
                if len(state) == 0:
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["exp_avg_diff"] = torch.zeros_like(p)
                if "neg_pre_grad" not in state or group["step"] == 1:
                    state["neg_pre_grad"] = p.grad.clone().mul_(-1.0)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                exp_avg_diffs.append(state["exp_avg_diff"])
                neg_pre_grads.append(state["neg_pre_grad"])
            kwargs = dict(beta1=beta1, beta2=beta2, beta3=beta3, bias_correction1=bias_correction1,
                          bias_correction2=bias_correction2, bias_correction3_sqrt=math.sqrt(bias_correction3),
                          lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"],
                          no_prox=group["no_prox"])
            update = _multi_tensor_adan if group["foreach"] else _single_tensor_adan
            update(params, grads, exp_avgs, exp_avg_sqs, exp_avg_diffs, neg_pre_grads, **kwargs)
        return loss


def _single_tensor_adan(params, grads, exp_avgs, exp_avg_sqs, exp_avg_diffs, neg_pre_grads, *, beta1, beta2,
                        beta3, bias_correction1, bias_correction2, bias_correction3_sqrt, lr, weight_decay, eps,
                        no_prox):
    for param, grad, exp_avg, exp_avg_sq, exp_avg_diff, neg_grad_or_diff in zip(
            params, grads, exp_avgs, exp_avg_sqs, exp_avg_diffs, neg_pre_grads):
        neg_grad_or_diff.add_(grad)  # g_t - g_{t-1}
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_diff.mul_(beta2).add_(neg_grad_or_diff, alpha=1 - beta2)
        neg_grad_or_diff.mul_(beta2).add_(grad)
        exp_avg_sq.mul_(beta3).addcmul_(neg_grad_or_diff, neg_grad_or_diff, value=1 - beta3)
        denom = (exp_avg_sq.sqrt() / bias_correction3_sqrt).add_(eps)
        step_size_diff = lr * beta2 / bias_correction2
        step_size = lr / bias_correction1
        if no_prox:
            param.mul_(1 - lr * weight_decay)
            param.addcdiv_(exp_avg, denom, value=-step_size)
            param.addcdiv_(exp_avg_diff, denom, value=-step_size_diff)
        else:
            param.addcdiv_(exp_avg, denom, value=-step_size)
            param.addcdiv_(exp_avg_diff, denom, value=-step_size_diff)
            param.div_(1 + lr * weight_decay)
        neg_grad_or_diff.zero_().add_(grad, alpha=-1.0)


def _multi_tensor_adan(params, grads, exp_avgs, exp_avg_sqs, exp_avg_diffs, neg_pre_grads, *, beta1, beta2,
                       beta3, bias_correction1, bias_correction2, bias_correction3_sqrt, lr, weight_decay, eps,
                       no_prox):
    if len(params) == 0:
        return
    torch._foreach_add_(neg_pre_grads, grads)
    torch._foreach_mul_(exp_avgs, beta1)
    torch._foreach_add_(exp_avgs, grads, alpha=1 - beta1)
    torch._foreach_mul_(exp_avg_diffs, beta2)
    torch._foreach_add_(exp_avg_diffs, neg_pre_grads, alpha=1 - beta2)
    torch._foreach_mul_(neg_pre_grads, beta2)
    torch._foreach_add_(neg_pre_grads, grads)
    torch._foreach_mul_(exp_avg_sqs, beta3)
    torch._foreach_addcmul_(exp_avg_sqs, neg_pre_grads, neg_pre_grads, value=1 - beta3)
    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denom, bias_correction3_sqrt)
    torch._foreach_add_(denom, eps)
    step_size_diff = lr * beta2 / bias_correction2
    step_size = lr / bias_correction1
    if no_prox:
        torch._foreach_mul_(params, 1 - lr * weight_decay)
        torch._foreach_addcdiv_(params, exp_avgs, denom, value=-step_size)
        torch._foreach_addcdiv_(params, exp_avg_diffs, denom, value=-step_size_diff)
    else:
        torch._foreach_addcdiv_(params, exp_avgs, denom, value=-step_size)
        torch._foreach_addcdiv_(params, exp_avg_diffs, denom, value=-step_size_diff)
        torch._foreach_div_(params, 1 + lr * weight_decay)
    torch._foreach_zero_(neg_pre_grads)
    torch._foreach_add_(neg_pre_grads, grads, alpha=-1.0)


# ----------------------------------------------------------------- Lookahead
class Lookahead(Optimizer):
    def __init__(self, optimizer, k=5, alpha=0.5):
        self.optimizer = optimizer
        self.k = k
        self.alpha = alpha
        self.param_groups = self.optimizer.param_groups
        self.defaults = self.optimizer.defaults
        self.state = defaultdict(dict)
        self.fast_state = self.optimizer.state
        for group in self.param_groups:
            group["counter"] = 0
        self._optimizer_step_pre_hooks = {}
        self._optimizer_step_post_hooks = {}

    def update(self, group):
        for fast in group["params"]:
            param_state = self.state[fast]
            if "slow_param" not in param_state:
                param_state["slow_param"] = torch.zeros_like(fast.data)
                param_state["slow_param"].copy_(fast.data)
            slow = param_state["slow_param"]
            slow += (fast.data - slow) * self.alpha
            fast.data.copy_(slow)

    def step(self, closure=None):
        loss = self.optimizer.step(closure)
        for group in self.param_groups:
            if group["counter"] == 0:
                self.update(group)
            group["counter"] += 1
            if group["counter"] >= self.k:
                group["counter"] = 0
        return loss

    def state_dict(self):
        fast_state_dict = self.optimizer.state_dict()
        slow_state = {(id(k) if isinstance(k, torch.Tensor) else k): v for k, v in self.state.items()}
        fast_state = fast_state_dict["state"]
        param_groups = fast_state_dict["param_groups"]
        index_of = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        slow_state = {index_of[k]: v for k, v in slow_state.items()}
        return {"fast_state": fast_state, "slow_state": slow_state, "param_groups": param_groups}

    def load_state_dict(self, state_dict):
        fast_state_dict = {"state": state_dict["fast_state"], "param_groups": state_dict["param_groups"]}
        self.optimizer.load_state_dict(fast_state_dict)
        # the inner optimizer's load_state_dict made new group dicts: share those
        self.param_groups = self.optimizer.param_groups
        params = [p for g in self.param_groups for p in g["params"]]
        self.state = defaultdict(dict)
        for index, value in state_dict["slow_state"].items():
            self.state[params[index]] = {"slow_param": value["slow_param"].clone()}
        self.fast_state = self.optimizer.state


# ----------------------------------------------------------------- training helpers
def loss_fn(model, x, y):
    return F.cross_entropy(model(x), y)


def train(model, optimizer, steps, scheduler=None, batch=90, generator=None):
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x_train), (batch,), generator=generator)

        def closure():
            optimizer.zero_grad()
            loss = loss_fn(model, x_train[idx], y_train[idx])
            loss.backward()
            return loss

        losses.append(optimizer.step(closure).item())
        if scheduler is not None:
            scheduler.step()
    return losses


@torch.no_grad()
def evaluate(model):
    logits = model(x_test)
    return F.cross_entropy(logits, y_test).item(), (logits.argmax(1) == y_test).float().mean().item()


global_calls = [0]
global_handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: global_calls.__setitem__(0, global_calls[0] + 1))

results = {}
start = make_model().state_dict()
for name, build in [
    ("lion", lambda p: Lion(p, lr=3e-3, weight_decay=1e-2)),
    ("lamb", lambda p: Lamb(p, lr=2e-2, weight_decay=1e-3)),
    ("adan", lambda p: Adan(p, lr=2e-2, weight_decay=1e-3, foreach=False)),
]:
    model = make_model()
    model.load_state_dict(start)
    optimizer = build(model.parameters())
    g = torch.Generator().manual_seed(seed)
    losses = train(model, optimizer, 150, generator=g)
    test_loss, acc = evaluate(model)
    results[name] = acc
    results[name + "_loss"] = test_loss
    print(f"{name:5s} train loss {losses[0]:.4f} -> {np.mean(losses[-10:]):.4f}  test loss {test_loss:.4f} acc {acc:.4f}")

# the multi-tensor path and the where-guarded trust ratio take the loop's steps
agreements = []
for name, loop_build, other_build in [
    ("lion", lambda p: Lion(p, lr=3e-3, weight_decay=1e-2), lambda p: Lion(p, lr=3e-3, weight_decay=1e-2,
                                                                          foreach=True)),
    ("lamb", lambda p: Lamb(p, lr=2e-2, weight_decay=1e-3), lambda p: Lamb(p, lr=2e-2, weight_decay=1e-3,
                                                                          use_where=True)),
    ("adan", lambda p: Adan(p, lr=2e-2, weight_decay=1e-3, foreach=False),
     lambda p: Adan(p, lr=2e-2, weight_decay=1e-3, foreach=True)),
    ("adan no_prox", lambda p: Adan(p, lr=2e-2, weight_decay=1e-2, no_prox=True, foreach=False),
     lambda p: Adan(p, lr=2e-2, weight_decay=1e-2, no_prox=True, foreach=True)),
]:
    finals = []
    for build in (loop_build, other_build):
        model = make_model()
        model.load_state_dict(start)
        train(model, build(model.parameters()), 20, generator=torch.Generator().manual_seed(seed + 1))
        finals.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    gap = (finals[0] - finals[1]).abs().max().item()
    agreements.append(torch.allclose(finals[0], finals[1], rtol=1e-5, atol=1e-6))
    print(f"{name}: loop and second path agree: {agreements[-1]} (largest gap below 1e-5: {gap < 1e-5})")
paths_agree = int(all(agreements))

# ----------------------------------------------------------------- Lookahead(LAMB) with hooks and a schedule
model = make_model()
model.load_state_dict(start)
inner = Lamb(model.parameters(), lr=5e-2, weight_decay=1e-3)
lookahead = Lookahead(inner, k=5, alpha=0.5)
warmup = torch.optim.lr_scheduler.LinearLR(lookahead, start_factor=0.1, total_iters=20)
cosine = torch.optim.lr_scheduler.CosineAnnealingLR(lookahead, T_max=130)
scheduler = torch.optim.lr_scheduler.SequentialLR(lookahead, [warmup, cosine], milestones=[20])
seen = {"pre": 0, "post": 0, "lrs": [], "moves": []}


def pre_hook(optimizer, args, kwargs):
    seen["pre"] += 1
    seen["lrs"].append(optimizer.param_groups[0]["lr"])
    seen["before"] = [p.detach().clone() for p in optimizer.param_groups[0]["params"]]


def post_hook(optimizer, args, kwargs):
    seen["post"] += 1
    move = sum((p.detach() - b).pow(2).sum() for p, b in zip(optimizer.param_groups[0]["params"], seen["before"]))
    seen["moves"].append(move.sqrt().item())


pre_handle = inner.register_step_pre_hook(pre_hook)
post_handle = inner.register_step_post_hook(post_hook)
la_generator = torch.Generator().manual_seed(seed + 2)
losses = train(model, lookahead, 75, scheduler=scheduler, generator=la_generator)

# resume from a checkpoint mid-run: a fresh model, inner optimizer, wrapper and scheduler
buffer = io.BytesIO()
torch.save({"model": model.state_dict(), "optimizer": lookahead.state_dict(), "scheduler": scheduler.state_dict(),
            "generator": la_generator.get_state()}, buffer)
reference_model = copy.deepcopy(model)
losses += train(model, lookahead, 75, scheduler=scheduler, generator=la_generator)
pre_handle.remove()
post_handle.remove()

buffer.seek(0)
checkpoint = torch.load(buffer)
resumed = make_model()
resumed.load_state_dict(checkpoint["model"])
assert all(torch.equal(a, b) for a, b in zip(resumed.parameters(), reference_model.parameters()))
resumed_inner = Lamb(resumed.parameters(), lr=5e-2, weight_decay=1e-3)
resumed_lookahead = Lookahead(resumed_inner, k=5, alpha=0.5)
resumed_scheduler = torch.optim.lr_scheduler.SequentialLR(
    resumed_lookahead, [torch.optim.lr_scheduler.LinearLR(resumed_lookahead, start_factor=0.1, total_iters=20),
                        torch.optim.lr_scheduler.CosineAnnealingLR(resumed_lookahead, T_max=130)], milestones=[20])
# the schedulers' constructors step the learning rate: load the optimizer's state after building them
resumed_lookahead.load_state_dict(checkpoint["optimizer"])
resumed_scheduler.load_state_dict(checkpoint["scheduler"])
resumed_generator = torch.Generator()
resumed_generator.set_state(checkpoint["generator"])
train(resumed, resumed_lookahead, 75, scheduler=resumed_scheduler, generator=resumed_generator)
resume_equal = int(all(torch.equal(a, b) for a, b in zip(model.parameters(), resumed.parameters())))
test_loss, lookahead_acc = evaluate(model)
print(f"lookahead(lamb) train loss {losses[0]:.4f} -> {np.mean(losses[-10:]):.4f} test loss {test_loss:.4f} "
      f"acc {lookahead_acc:.4f}")
print(f"hooks: {seen['pre']} pre, {seen['post']} post calls; lr {seen['lrs'][0]:.5f} -> {max(seen['lrs']):.5f} "
      f"-> {seen['lrs'][-1]:.5f}; mean move {np.mean(seen['moves']):.4f}; last lr {lookahead.param_groups[0]['lr']:.6f}")
print("trust ratios of the last step: " + " ".join(
    f"{float(inner.state[p]['trust_ratio']):.3f}" for p in model.parameters()))
print(f"resumed run equals the uninterrupted one: {bool(resume_equal)}; slow weights held: "
      f"{len(lookahead.state)}; global post-hook calls {global_calls[0]}")
global_handle.remove()

print(f"FINAL lion_acc={results['lion']:.4f} lamb_acc={results['lamb']:.4f} adan_acc={results['adan']:.4f} "
      f"lion_loss={results['lion_loss']:.4f} lamb_loss={results['lamb_loss']:.4f} adan_loss={results['adan_loss']:.4f} "
      f"lookahead_acc={lookahead_acc:.4f} lookahead_loss={test_loss:.4f} paths_agree={paths_agree} "
      f"resume_equal={resume_equal}")
