"""Muon (KellerJordan/Muon, modded-nanogpt) on a tiny token MLP, against an AdamW-only baseline.

``zeropower_via_newtonschulz5`` is the repo's quintic Newton-Schulz iteration in bfloat16: ``X = G.bfloat16()``,
tall matrices transposed through ``X.mT``, ``X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)``, then five
``A = X @ X.mT; B = b * A + c * A @ A; X = a * X + B @ X`` steps with (a, b, c) = (3.4445, -4.7750, 2.0315).
``muon_update`` keeps the momentum by ``momentum.lerp_(grad, 1 - beta)``, takes the Nesterov update by
``grad.lerp_(momentum, beta)``, orthogonalises it and scales it by ``max(1, rows / cols) ** 0.5``.
``MuonWithAuxAdam`` is a ``torch.optim.Optimizer`` subclass with a ``@torch.no_grad()`` step over param
groups flagged ``use_muon`` (hidden 2-D weights with Muon; the embedding, the head, biases and LayerNorm
gains with the repo's hand-written ``adam_update``).

Checked: the NS output's singular values (``torch.linalg.svdvals`` in float32) lie near 1 for wide, tall
and batched inputs, and the output points along the exact polar factor ``U @ Vh`` of ``torch.linalg.svd``;
the hand-written Adam half equals ``torch.optim.AdamW(weight_decay=0)`` beside ``Muon`` (a second route
to the same parameters); and Muon + Adam trains the model to a lower training loss than AdamW alone in the same steps.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def zeropower_via_newtonschulz5(G, steps: int):
    """
    Newton-Schulz iteration to compute the zeroth power / orthogonalization of G. We opt to use a
    quintic iteration whose coefficients are selected to maximize the slope at zero.
    """
    assert G.ndim >= 2  # batched Muon implementation by @scottjmaddox, and put into practice in the record by @YouJiacheng
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.bfloat16()
    if G.size(-2) > G.size(-1):
        X = X.mT

    # Ensure spectral norm is at most 1
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    # Perform the NS iterations
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A  # quintic computation strategy adapted from suggestion by @jxbz, @leloykun, and @YouJiacheng
        X = a * X + B @ X

    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


def muon_update(grad, momentum, beta=0.95, ns_steps=5, nesterov=True):
    momentum.lerp_(grad, 1 - beta)
    update = grad.lerp_(momentum, beta) if nesterov else momentum
    if update.ndim == 4:  # for the case of conv filters
        update = update.view(len(update), -1)
    update = zeropower_via_newtonschulz5(update, steps=ns_steps)
    update *= max(1, grad.size(-2) / grad.size(-1)) ** 0.5
    return update


def adam_update(grad, buf1, buf2, step, betas, eps):
    buf1.lerp_(grad, 1 - betas[0])
    buf2.lerp_(grad.square(), 1 - betas[1])
    buf1c = buf1 / (1 - betas[0] ** step)
    buf2c = buf2 / (1 - betas[1] ** step)
    return buf1c / (buf2c.sqrt() + eps)


class Muon(torch.optim.Optimizer):
    """
    Muon - MomentUm Orthogonalized by Newton-schulz (single-device variant).
    """

    def __init__(self, params, lr=0.02, weight_decay=0, momentum=0.95):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum)
        assert isinstance(params, list) and len(params) >= 1 and isinstance(params[0], torch.nn.Parameter)
        params = sorted(params, key=lambda x: x.size(), reverse=True)
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
                    # continue
                    p.grad = torch.zeros_like(p)  # Force synchronization
                state = self.state[p]
                if len(state) == 0:
                    state["momentum_buffer"] = torch.zeros_like(p)
                update = muon_update(p.grad, state["momentum_buffer"], beta=group["momentum"])
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update.reshape(p.shape), alpha=-group["lr"])

        return loss


class MuonWithAuxAdam(torch.optim.Optimizer):
    """
    Non-distributed variant of MuonWithAuxAdam.
    """

    def __init__(self, param_groups):
        for group in param_groups:
            assert "use_muon" in group
            if group["use_muon"]:
                # defaults
                group["lr"] = group.get("lr", 0.02)
                group["momentum"] = group.get("momentum", 0.95)
                group["weight_decay"] = group.get("weight_decay", 0)
                assert set(group.keys()) == set(["params", "lr", "momentum", "weight_decay", "use_muon"])
            else:
                # defaults
                group["lr"] = group.get("lr", 3e-4)
                group["betas"] = group.get("betas", (0.9, 0.95))
                group["eps"] = group.get("eps", 1e-10)
                group["weight_decay"] = group.get("weight_decay", 0)
                assert set(group.keys()) == set(["params", "lr", "betas", "eps", "weight_decay", "use_muon"])
        super().__init__(param_groups, dict())

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            if group["use_muon"]:
                for p in group["params"]:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    state = self.state[p]
                    if len(state) == 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    update = muon_update(p.grad, state["momentum_buffer"], beta=group["momentum"])
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update.reshape(p.shape), alpha=-group["lr"])
            else:
                for p in group["params"]:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    state = self.state[p]
                    if len(state) == 0:
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                        state["step"] = 0
                    state["step"] += 1
                    update = adam_update(p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"], group["betas"], group["eps"])
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update, alpha=-group["lr"])

        return loss


# ---------------------------------------------------------------------------------------------
# 1. The Newton-Schulz iteration on its own
# ---------------------------------------------------------------------------------------------
sv_lo, sv_hi, polar_cos = [], [], []
for shape in [(16, 48), (48, 16), (3, 12, 20), (64, 32)]:
    G = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    O = zeropower_via_newtonschulz5(G, steps=5)
    assert O.dtype == torch.bfloat16 and O.shape == G.shape
    s = torch.linalg.svdvals(O.float())
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    polar = U @ Vh
    cos = (O.float() * polar).sum(dim=(-2, -1)) / (O.float().norm(dim=(-2, -1)) * polar.norm(dim=(-2, -1)))
    sv_lo.append(s.min().item())
    sv_hi.append(s.max().item())
    polar_cos.append(cos.min().item())
    print(f"NS5 {tuple(shape)} bf16: singular values in [{s.min().item():.3f}, {s.max().item():.3f}], cosine to U@Vh {cos.min().item():.4f}")
sv_ok = min(sv_lo) > 0.5 and max(sv_hi) < 1.3

# ---------------------------------------------------------------------------------------------
# 2. A tiny token MLP: y = class of a random teacher over one-hot tokens
# ---------------------------------------------------------------------------------------------
VOCAB, SEQ, D, H, NCLS = 16, 8, 16, 64, 4
N_TRAIN, N_TEST = 2048, 512
teacher = rng.standard_normal((SEQ * VOCAB, NCLS))
tokens = rng.integers(0, VOCAB, size=(N_TRAIN + N_TEST, SEQ))
onehot = np.eye(VOCAB)[tokens].reshape(len(tokens), -1)
labels = (onehot @ teacher).argmax(1)
x_train = torch.from_numpy(tokens[:N_TRAIN]).long()
y_train = torch.from_numpy(labels[:N_TRAIN]).long()
x_test = torch.from_numpy(tokens[N_TRAIN:]).long()
y_test = torch.from_numpy(labels[N_TRAIN:]).long()


class TokenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.body = nn.Sequential(
            nn.Linear(SEQ * D, H),
            nn.ReLU(),
            nn.Linear(H, H),
            nn.ReLU(),
            nn.LayerNorm(H),
        )
        self.head = nn.Linear(H, NCLS)

    def forward(self, idx):
        x = self.embed(idx).flatten(1)
        return self.head(self.body(x))


def make_model():
    torch.manual_seed(seed)
    return TokenMLP()


def split_params(model):
    # Muon for the hidden 2-D weights; embedding, head, biases and gains with Adam
    hidden_weights = [p for p in model.body.parameters() if p.ndim >= 2]
    hidden_gains_biases = [p for p in model.body.parameters() if p.ndim < 2]
    nonhidden_params = [*model.head.parameters(), *model.embed.parameters()]
    return hidden_weights, hidden_gains_biases, nonhidden_params


def train(model, opts, steps, bs=64):
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, N_TRAIN, (bs,), generator=g)
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in opts:
            opt.step()
    return model


@torch.no_grad()
def evaluate(model):
    model.eval()
    train_loss = F.cross_entropy(model(x_train), y_train).item()
    logits = model(x_test)
    return train_loss, (logits.argmax(1) == y_test).float().mean().item()


STEPS = 80

model_muon = make_model()
hidden_weights, hidden_gains_biases, nonhidden_params = split_params(model_muon)
param_groups = [
    dict(params=hidden_weights, use_muon=True, lr=0.05, weight_decay=0.01),
    dict(params=hidden_gains_biases + nonhidden_params, use_muon=False, lr=3e-3, betas=(0.9, 0.95), weight_decay=0.01),
]
optimizer = MuonWithAuxAdam(param_groups)
print(f"param groups: muon {sum(p.numel() for p in hidden_weights)} params in {len(hidden_weights)} tensors, "
      f"adam {sum(p.numel() for p in hidden_gains_biases + nonhidden_params)} params")
train(model_muon, [optimizer], STEPS)
muon_loss, muon_acc = evaluate(model_muon)
print(f"Muon + aux Adam: train loss {muon_loss:.4f} test acc {muon_acc:.4f}")

model_adamw = make_model()
adamw = torch.optim.AdamW(model_adamw.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.01)
train(model_adamw, [adamw], STEPS)
adamw_loss, adamw_acc = evaluate(model_adamw)
print(f"AdamW only:      train loss {adamw_loss:.4f} test acc {adamw_acc:.4f}")

# ---------------------------------------------------------------------------------------------
# 3. Second route: Muon for the hidden weights + torch.optim.AdamW (weight_decay=0) for the rest
# ---------------------------------------------------------------------------------------------
model_a, model_b = make_model(), make_model()
hw_a, gb_a, nh_a = split_params(model_a)
opt_a = MuonWithAuxAdam([
    dict(params=hw_a, use_muon=True, lr=0.02),
    dict(params=gb_a + nh_a, use_muon=False, lr=3e-3, betas=(0.9, 0.95), eps=1e-8),
])
hw_b, gb_b, nh_b = split_params(model_b)
opt_b = [Muon(hw_b, lr=0.02), torch.optim.AdamW(gb_b + nh_b, lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0)]
# both routes step on the same gradients (model_a's), so a bfloat16 rounding flip cannot feed back
ROUTE_STEPS = 20
g = torch.Generator().manual_seed(seed)
for _ in range(ROUTE_STEPS):
    idx = torch.randint(0, N_TRAIN, (64,), generator=g)
    opt_a.zero_grad(set_to_none=True)
    F.cross_entropy(model_a(x_train[idx]), y_train[idx]).backward()
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        pb.grad = pa.grad.clone()
    opt_a.step()
    for opt in opt_b:
        opt.step()
route_diff = max((pa - pb).abs().max().item() for pa, pb in zip(model_a.parameters(), model_b.parameters()))
routes_agree = route_diff < 1e-5
print(f"MuonWithAuxAdam vs Muon + torch.optim.AdamW after {ROUTE_STEPS} steps: max |diff| < 1e-5: {routes_agree}")

print(f"FINAL muon_loss={muon_loss:.4f} adamw_loss={adamw_loss:.4f} muon_acc={muon_acc:.4f} "
      f"adamw_acc={adamw_acc:.4f} muon_beats_adamw={int(muon_loss < adamw_loss)} sv_min={min(sv_lo):.4f} "
      f"sv_max={max(sv_hi):.4f} sv_ok={int(sv_ok)} polar_cos={min(polar_cos):.4f} routes_agree={int(routes_agree)}")
