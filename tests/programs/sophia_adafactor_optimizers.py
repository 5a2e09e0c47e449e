"""Second-order-ish optimisers written as ``torch.optim.Optimizer`` subclasses, the way Liuhong99/Sophia
(``SophiaG``) and the Adafactor ports (fairseq / Hugging Face transformers) write them, training a tiny
character language model, beside ``torch.optim.Adafactor`` and ``AdamW``.

``SophiaG`` keeps the repository's layout: ``defaults = dict(...)``, ``__setstate__`` with
``setdefault``, a ``@torch.no_grad()`` ``update_hessian`` doing ``state['hessian'].mul_(beta2)
.addcmul_(p.grad, p.grad, value=1 - beta2)``, ``step(closure=None, bs=...)`` with a float
``torch.zeros((1,))`` step tensor, decoupled ``param.mul_(1 - lr * weight_decay)`` and the clipped update
``ratio = (exp_avg.abs() / (rho * bs * hess + 1e-15)).clamp(None, 1)`` applied by
``param.addcmul_(exp_avg.sign(), ratio, value=-lr)`` (checked equal to the paper's
``torch.clamp(m / (rho * h * bs + eps), -1, 1)``). The Gauss-Newton-Bartlett estimate comes every k steps,
as ``train_sophiag.py`` does it: labels sampled by ``torch.distributions.Categorical(logits=logits)``, a
``cross_entropy`` on them backpropagated, ``update_hessian()``, ``zero_grad(set_to_none=True)``.

``Adafactor`` is the transformers port: ``_get_lr`` (relative step ``min(1e-2, 1 / sqrt(step))`` scaled
by ``max(eps[1], RMS(p))``), ``_rms``, ``_approx_sq_grad`` with ``rsqrt_()``/``rsqrt()``, factored
``exp_avg_sq_row``/``exp_avg_sq_col`` for matrices, update clipping by ``RMS(update) / clip_threshold``.
With ``relative_step=True, scale_parameter=True`` and no first moment its definition coincides with
``torch.optim.Adafactor(lr=1e-2)``: the two, from the same weights on the same batches, must give the
same parameters (``torch.allclose``) and losses.

Checked: every optimiser's loss falls, the hand-written and built-in Adafactor agree, and Sophia's
clipped update equals the paper's form.
"""

# ruff: noqa: UP008, UP032  (the repositories' own spelling: super(Class, self), str.format)

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.optimizer import Optimizer

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ----------------------------------------------------------------------------------- SophiaG
class SophiaG(Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.965, 0.99), rho=0.04, weight_decay=1e-1, *, maximize=False):
        if not 0.0 <= lr:
            raise ValueError("Invalid learning rate: {}".format(lr))
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError("Invalid beta parameter at index 0: {}".format(betas[0]))
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError("Invalid beta parameter at index 1: {}".format(betas[1]))
        if not 0.0 <= rho:
            raise ValueError("Invalid rho parameter at index 1: {}".format(rho))
        if not 0.0 <= weight_decay:
            raise ValueError("Invalid weight_decay value: {}".format(weight_decay))
        defaults = dict(lr=lr, betas=betas, rho=rho, weight_decay=weight_decay, maximize=maximize)
        super(SophiaG, self).__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("maximize", False)

    @torch.no_grad()
    def update_hessian(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.zeros((1,), dtype=torch.float, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["hessian"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if "hessian" not in state.keys():
                    state["hessian"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["hessian"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)

    @torch.no_grad()
    def step(self, closure=None, bs=5120):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Hero does not support sparse gradients")
                grad = p.grad if not group["maximize"] else -p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.zeros((1,), dtype=torch.float, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["hessian"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                exp_avg, hess, step_t = state["exp_avg"], state["hessian"], state["step"]
                step_t += 1
                p.mul_(1 - group["lr"] * group["weight_decay"])
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                step_size_neg = -group["lr"]
                ratio = (exp_avg.abs() / (group["rho"] * bs * hess + 1e-15)).clamp(None, 1)
                p.addcmul_(exp_avg.sign(), ratio, value=step_size_neg)
        return loss


# ----------------------------------------------------------------------------------- Adafactor
class Adafactor(Optimizer):
    def __init__(
        self,
        params,
        lr=None,
        eps=(1e-30, 1e-3),
        clip_threshold=1.0,
        decay_rate=-0.8,
        beta1=None,
        weight_decay=0.0,
        scale_parameter=True,
        relative_step=True,
        warmup_init=False,
    ):
        if lr is not None and relative_step:
            raise ValueError("Cannot combine manual `lr` and `relative_step=True` options")
        if warmup_init and not relative_step:
            raise ValueError("`warmup_init=True` requires `relative_step=True`")
        defaults = {
            "lr": lr,
            "eps": eps,
            "clip_threshold": clip_threshold,
            "decay_rate": decay_rate,
            "beta1": beta1,
            "weight_decay": weight_decay,
            "scale_parameter": scale_parameter,
            "relative_step": relative_step,
            "warmup_init": warmup_init,
        }
        super().__init__(params, defaults)

    @staticmethod
    def _get_lr(param_group, param_state):
        rel_step_sz = param_group["lr"]
        if param_group["relative_step"]:
            min_step = 1e-6 * param_state["step"] if param_group["warmup_init"] else 1e-2
            rel_step_sz = min(min_step, 1.0 / math.sqrt(param_state["step"]))
        param_scale = 1.0
        if param_group["scale_parameter"]:
            param_scale = max(param_group["eps"][1], param_state["RMS"])
        return param_scale * rel_step_sz

    @staticmethod
    def _get_options(param_group, param_shape):
        factored = len(param_shape) >= 2
        use_first_moment = param_group["beta1"] is not None
        return factored, use_first_moment

    @staticmethod
    def _rms(tensor):
        return tensor.norm(2) / (tensor.numel() ** 0.5)

    @staticmethod
    def _approx_sq_grad(exp_avg_sq_row, exp_avg_sq_col):
        r_factor = (exp_avg_sq_row / exp_avg_sq_row.mean(dim=-1, keepdim=True)).rsqrt_().unsqueeze(-1)
        c_factor = exp_avg_sq_col.unsqueeze(-2).rsqrt()
        return torch.mul(r_factor, c_factor)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            loss = closure()

        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.dtype in {torch.float16, torch.bfloat16}:
                    grad = grad.float()
                if grad.is_sparse:
                    raise RuntimeError("Adafactor does not support sparse gradients.")

                state = self.state[p]
                grad_shape = grad.shape

                factored, use_first_moment = self._get_options(group, grad_shape)
                if len(state) == 0:
                    state["step"] = 0
                    if use_first_moment:
                        state["exp_avg"] = torch.zeros_like(grad)
                    if factored:
                        state["exp_avg_sq_row"] = torch.zeros(grad_shape[:-1]).to(grad)
                        state["exp_avg_sq_col"] = torch.zeros(grad_shape[:-2] + grad_shape[-1:]).to(grad)
                    else:
                        state["exp_avg_sq"] = torch.zeros_like(grad)
                    state["RMS"] = 0

                p_data_fp32 = p
                if p.dtype in {torch.float16, torch.bfloat16}:
                    p_data_fp32 = p_data_fp32.float()

                state["step"] += 1
                state["RMS"] = self._rms(p_data_fp32)
                lr = self._get_lr(group, state)

                beta2t = 1.0 - math.pow(state["step"], group["decay_rate"])
                update = (grad**2) + group["eps"][0]
                if factored:
                    exp_avg_sq_row = state["exp_avg_sq_row"]
                    exp_avg_sq_col = state["exp_avg_sq_col"]
                    exp_avg_sq_row.mul_(beta2t).add_(update.mean(dim=-1), alpha=(1.0 - beta2t))
                    exp_avg_sq_col.mul_(beta2t).add_(update.mean(dim=-2), alpha=(1.0 - beta2t))
                    update = self._approx_sq_grad(exp_avg_sq_row, exp_avg_sq_col)
                    update.mul_(grad)
                else:
                    exp_avg_sq = state["exp_avg_sq"]
                    exp_avg_sq.mul_(beta2t).add_(update, alpha=(1.0 - beta2t))
                    update = exp_avg_sq.rsqrt().mul_(grad)

                update.div_((self._rms(update) / group["clip_threshold"]).clamp_(min=1.0))
                update.mul_(lr)

                if use_first_moment:
                    exp_avg = state["exp_avg"]
                    exp_avg.mul_(group["beta1"]).add_(update, alpha=(1 - group["beta1"]))
                    update = exp_avg

                if group["weight_decay"] != 0:
                    p_data_fp32.add_(p_data_fp32, alpha=(-group["weight_decay"] * lr))

                p_data_fp32.add_(-update)
                if p.dtype in {torch.float16, torch.bfloat16}:
                    p.copy_(p_data_fp32)

        return loss


# ----------------------------------------------------------------------------------- data and model
words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "park", "and", "then", "slept"]
rng = np.random.RandomState(7 + seed)
text = " ".join(words[i] for i in rng.randint(0, len(words), size=900))
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
vocab_size = len(chars)
n_split = int(0.9 * len(data))
train_data, val_data = data[:n_split], data[n_split:]
BLOCK, BATCH = 8, 16


def get_batch(split, generator):
    src = train_data if split == "train" else val_data
    ix = torch.randint(len(src) - BLOCK, (BATCH,), generator=generator)
    x = torch.stack([src[i : i + BLOCK] for i in ix])
    y = torch.stack([src[i + 1 : i + 1 + BLOCK] for i in ix])
    return x, y


class CharLM(nn.Module):
    """Embedding, a causal depthwise mix of the last 3 positions, an MLP, a tied-free head."""

    def __init__(self, vocab_size, n_embd=24, n_hidden=48):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.mix = nn.Conv1d(n_embd, n_embd, kernel_size=3, groups=n_embd)
        self.fc = nn.Linear(2 * n_embd, n_hidden)
        self.head = nn.Linear(n_hidden, vocab_size)

    def forward(self, idx, targets=None):
        x = self.wte(idx)  # (B, T, C)
        ctx = self.mix(F.pad(x.transpose(1, 2), (2, 0))).transpose(1, 2)
        h = torch.tanh(self.fc(torch.cat([x, ctx], dim=-1)))
        logits = self.head(h)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss


@torch.no_grad()
def estimate_loss(model):
    model.eval()
    g = torch.Generator().manual_seed(1000)
    losses = torch.zeros(10)
    for k in range(10):
        X, Y = get_batch("val", g)
        _, loss = model(X, Y)
        losses[k] = loss.item()
    model.train()
    return losses.mean().item()


base = CharLM(vocab_size)
init_state = {k: v.clone() for k, v in base.state_dict().items()}
STEPS = 300
HESS_INTERVAL = 10


def make_model():
    m = CharLM(vocab_size)
    m.load_state_dict(init_state)
    return m


def train(name, model, optimizer, sophia=False):
    g = torch.Generator().manual_seed(seed)
    start = estimate_loss(model)
    for iter_num in range(STEPS):
        X, Y = get_batch("train", g)
        logits, loss = model(X, Y)
        loss.backward()
        if sophia:
            optimizer.step(bs=BATCH * BLOCK)
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if sophia and iter_num % HESS_INTERVAL == HESS_INTERVAL - 1:
            logits, _ = model(X, None)
            samp_dist = torch.distributions.Categorical(logits=logits)
            y_sample = samp_dist.sample()
            loss_sampled = F.cross_entropy(
                logits.view(-1, logits.size(-1)), y_sample.view(-1), ignore_index=-1
            )
            loss_sampled.backward()
            optimizer.update_hessian()
            optimizer.zero_grad(set_to_none=True)
    end = estimate_loss(model)
    print(f"{name:>18}: val loss {start:.4f} -> {end:.4f}")
    return start, end


results = {}
results["adamw"] = train(
    "AdamW", m := make_model(), torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=0.1)
)
results["sophia"] = train(
    "SophiaG",
    m := make_model(),
    SophiaG(m.parameters(), lr=3e-3, betas=(0.965, 0.99), rho=0.05, weight_decay=0.1),
    sophia=True,
)
hand = make_model()
results["adafactor_hand"] = train("Adafactor (port)", hand, Adafactor(hand.parameters()))
builtin = make_model()
results["adafactor_torch"] = train(
    "optim.Adafactor", builtin, torch.optim.Adafactor(builtin.parameters(), lr=1e-2)
)
adafactor_agree = all(
    torch.allclose(p, q, rtol=1e-4, atol=1e-5) for p, q in zip(hand.parameters(), builtin.parameters())
)
param_gap = max((p - q).abs().max().item() for p, q in zip(hand.parameters(), builtin.parameters()))
print(f"hand-written Adafactor == torch.optim.Adafactor after {STEPS} steps: {adafactor_agree}")

# Sophia's clipped update: sign(m) * min(|m| / (rho h bs + eps), 1) == clamp(m / (rho h bs + eps), -1, 1)
m_t = torch.randn(50)
h_t = torch.rand(50) * 0.01
denom = 0.05 * BATCH * BLOCK * h_t + 1e-15
repo_form = m_t.sign() * (m_t.abs() / denom).clamp(None, 1)
paper_form = torch.clamp(m_t / denom, -1, 1)
clip_agree = torch.allclose(repo_form, paper_form)
print(f"Sophia clipped update, repository form == paper form: {clip_agree}")

falls = all(end < start - 0.3 for start, end in results.values())
checks = int(falls and adafactor_agree and clip_agree)
print(
    f"FINAL adamw={results['adamw'][1]:.4f} sophia={results['sophia'][1]:.4f} "
    f"adafactor_hand={results['adafactor_hand'][1]:.4f} adafactor_torch={results['adafactor_torch'][1]:.4f} "
    f"param_gap={param_gap:.6f} checks={checks}"
)
