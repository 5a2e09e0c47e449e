"""BitNet b1.58 (Ma et al., 2024) as the open reproductions write it, in a tiny causal LM.

``BitLinear(nn.Linear)`` from the "training tips, code and FAQ" recipe: an ``RMSNorm`` of the input
(``x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight``, checked against ``F.rms_norm`` and
``nn.RMSNorm``), per-token absmax 8-bit activations (``127.0 / x.abs().max(dim=-1, keepdim=True).values
.clamp_(min=1e-5)``, ``.round().clamp_(-128, 127)``), absmean ternary weights
(``(w / w.abs().mean()).round().clamp(-1, 1)``, kyegomez/BitNet's spelling, and the recipe's
``1.0 / w.abs().mean().clamp_(min=1e-5)`` scale), both through the straight-through estimator
``x + (q(x) - x).detach()`` into ``F.linear``. Checks: the quantised weights are exactly {-1, 0, 1}
times a scale and the activations integers in [-128, 127]; the STE gradients equal a custom
``autograd.Function`` STE's and equal the full-precision layer's where the rounding is the identity
(inputs on the 8-bit grid); an int8 inference path (``torch.int8`` ternary weights, ``torch.int32``
accumulation by ``torch.matmul`` on integer tensors, rescaling) reproduces the STE forward. Then a
GPT-style LM with BitLinear projections (embeddings and head kept full precision) and its
full-precision twin (``copy.deepcopy`` of the same initialisation) train a few hundred steps with AdamW
on a sparse Markov chain; both losses must fall toward the chain's entropy.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def activation_quant(x):
    """Per-token quantization to 8 bits. No grouping is needed for quantization."""
    scale = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp_(min=1e-5)
    y = (x * scale).round().clamp_(-128, 127) / scale
    return y


def weight_quant(w):
    """Per-tensor quantization to 1.58 bits. No grouping is needed for quantization."""
    scale = 1.0 / w.abs().mean().clamp_(min=1e-5)
    u = (w * scale).round().clamp_(-1, 1) / scale
    return u


def ternarize(w):
    """kyegomez/BitNet's absmean quantiser: ternary values and the scale."""
    gamma = w.abs().mean()
    return (w / gamma).round().clamp(-1, 1), gamma


class BitLinear(nn.Linear):
    """Only for training; an inference kernel would fuse the quantisation."""

    def __init__(self, in_features, out_features, bias=False, quantize=True):
        super().__init__(in_features, out_features, bias=bias)
        self.norm = RMSNorm(in_features)
        self.quantize = quantize

    def forward(self, x):
        w = self.weight
        x_norm = self.norm(x)
        if not self.quantize:  # the full-precision twin
            return F.linear(x_norm, w, self.bias)
        # A trick for implementing Straight-Through-Estimator (STE) using detach()
        x_quant = x_norm + (activation_quant(x_norm) - x_norm).detach()
        w_quant = w + (weight_quant(w) - w).detach()
        return F.linear(x_quant, w_quant, self.bias)


class STEQuant(torch.autograd.Function):
    """The same estimator as an autograd.Function: quantise forward, identity backward."""

    @staticmethod
    def forward(ctx, x, kind):
        return activation_quant(x) if kind == "act" else weight_quant(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size, quantize):
        super().__init__()
        self.n_head = n_head
        self.c_attn = BitLinear(n_embd, 3 * n_embd, quantize=quantize)
        self.c_proj = BitLinear(n_embd, n_embd, quantize=quantize)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size, quantize):
        super().__init__()
        self.attn = CausalSelfAttention(n_embd, n_head, block_size, quantize)
        self.fc = BitLinear(n_embd, 4 * n_embd, quantize=quantize)
        self.proj = BitLinear(4 * n_embd, n_embd, quantize=quantize)

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.proj(F.silu(self.fc(x)))


class BitGPT(nn.Module):
    def __init__(self, vocab_size, block_size=16, n_embd=32, n_head=2, n_layer=2, quantize=True):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList([Block(n_embd, n_head, block_size, quantize) for _ in range(n_layer)])
        self.ln_f = RMSNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02 * 4)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02 * 4)

    def set_quantize(self, flag):
        for m in self.modules():
            if isinstance(m, BitLinear):
                m.quantize = flag

    def forward(self, idx, targets=None):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


# ---- the quantisers ----
w = torch.randn(24, 16) * 0.05
t, gamma = ternarize(w)
values = [int(v) for v in torch.unique(t).tolist()]
wq = weight_quant(w)
recipe_agrees = torch.allclose(wq, t * gamma.clamp(min=1e-5), atol=1e-7)
zero_frac = (t == 0).float().mean().item()
print(f"ternary values {values}, zero fraction {zero_frac:.3f}, recipe scale agrees: {recipe_agrees}")

x = torch.randn(3, 5, 16) * torch.tensor([0.1, 1.0, 10.0]).view(3, 1, 1)
xq = activation_quant(x)
scale = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
ints = (xq * scale)
int_ok = bool((ints - ints.round()).abs().max() < 1e-3) and bool(ints.round().abs().max() <= 127)
act_err = (xq - x).abs().div(x.abs().max(dim=-1, keepdim=True).values).max().item()
print(f"activations on the 8-bit grid: {int_ok}, relative error <= 1/254: {act_err <= 0.5 / 127 + 1e-6}")

norm = RMSNorm(16)
with torch.no_grad():
    norm.weight.uniform_(0.5, 1.5)
ref = nn.RMSNorm(16, eps=1e-6)
ref.weight.data.copy_(norm.weight.data)
rms_gap = max((norm(x) - F.rms_norm(x, (16,), norm.weight, eps=1e-6)).abs().max().item(),
              (norm(x) - ref(x)).abs().max().item())
print(f"RMSNorm agrees with F.rms_norm and nn.RMSNorm: {rms_gap < 1e-5}")

# ---- STE gradients ----
layer = BitLinear(16, 8)
nn.init.normal_(layer.weight, std=0.1)
inp = torch.randn(4, 6, 16, requires_grad=True)
g_out = torch.randn(4, 6, 8)
layer(inp).backward(g_out)
g_in, g_w = inp.grad.clone(), layer.weight.grad.clone()

inp2 = inp.detach().clone().requires_grad_(True)
layer.zero_grad()
x_norm = layer.norm(inp2)
y2 = F.linear(STEQuant.apply(x_norm, "act"), STEQuant.apply(layer.weight, "weight"))
y2.backward(g_out)
ste_fn_err = max((inp2.grad - g_in).abs().max().item(), (layer.weight.grad - g_w).abs().max().item())
print(f"detach STE equals autograd.Function STE: {ste_fn_err < 1e-5}")

# where the rounding is the identity (normalised inputs already on the 8-bit grid) the STE gradients
# are the full-precision layer's gradients with the quantised weights
grid = torch.randint(-127, 128, (4, 6, 16)).float()
grid[..., 0] = 127.0  # the per-token absmax maps to 127 exactly
layer.norm = nn.Identity()
x_grid = (grid / 128.0).requires_grad_(True)  # absmax 127/128: the scale is exactly 128
exact_act = bool((activation_quant(x_grid.detach()) == x_grid.detach()).all())
layer.zero_grad()
layer(x_grid).backward(g_out)
ste_gx, ste_gw = x_grid.grad.clone(), layer.weight.grad.clone()
x_fp = x_grid.detach().clone().requires_grad_(True)
w_fp = weight_quant(layer.weight.detach()).requires_grad_(True)
F.linear(x_fp, w_fp).backward(g_out)
ste_fp_err = max((ste_gx - x_fp.grad).abs().max().item(), (ste_gw - w_fp.grad).abs().max().item())
print(f"grid inputs unchanged by quantisation: {exact_act}, STE grads equal full-precision grads: {ste_fp_err < 1e-5}")

# ---- int8 inference path ----
layer = BitLinear(16, 8)
nn.init.normal_(layer.weight, std=0.1)
with torch.no_grad():
    x_in = torch.randn(2, 5, 16)
    y_train = layer(x_in)
    t, gamma = ternarize(layer.weight)
    w_int8 = t.to(torch.int8)
    x_norm = layer.norm(x_in)
    a_scale = 127.0 / x_norm.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
    x_int8 = (x_norm * a_scale).round().clamp(-128, 127).to(torch.int8)
    acc = torch.matmul(x_int8.to(torch.int32), w_int8.to(torch.int32).t())
    y_int = acc.float() * gamma / a_scale
    int_gap = (y_int - y_train).abs().max().item()
print(f"int8 weights {w_int8.dtype} in {sorted(torch.unique(w_int8).tolist())}, accumulator {acc.dtype}, "
      f"matches the STE forward: {int_gap < 1e-4}")

# ---- training: BitNet LM against its full-precision twin ----
V, BLOCK, BATCH = 12, 16, 16
rng = np.random.RandomState(seed)
P = np.zeros((V, V))
for i in range(V):
    nxt = rng.choice(V, size=2, replace=False)
    P[i, nxt] = [0.75, 0.25]
entropy = -np.sum(P * np.log(np.where(P > 0, P, 1.0)), axis=1).mean()
seq = [0]
for _ in range(4000):
    seq.append(rng.choice(V, p=P[seq[-1]]))
data = torch.tensor(seq, dtype=torch.long)


def get_batch():
    ix = torch.randint(len(data) - BLOCK, (BATCH,))
    x = torch.stack([data[i:i + BLOCK] for i in ix])
    y = torch.stack([data[i + 1:i + 1 + BLOCK] for i in ix])
    return x, y


bit_model = BitGPT(V, block_size=BLOCK)
fp_model = copy.deepcopy(bit_model)
fp_model.set_quantize(False)
n_bitlinear = sum(isinstance(m, BitLinear) for m in bit_model.modules())
print(f"{n_bitlinear} BitLinear layers, {sum(p.numel() for p in bit_model.parameters())} parameters, "
      f"chain entropy {entropy:.4f}")

STEPS = 150
results = {}
for name, model in (("bitnet", bit_model), ("fp", fp_model)):
    torch.manual_seed(seed + 1)  # the same batches for both
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.01)
    losses = []
    for step in range(STEPS):
        xb, yb = get_batch()
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            print(f"{name} step {step + 1}: loss {np.mean(losses[-50:]):.4f}")
    results[name] = (np.mean(losses[:10]), np.mean(losses[-30:]))

with torch.no_grad():
    t_final, _ = ternarize(bit_model.blocks[0].fc.weight)
    final_values = [int(v) for v in torch.unique(t_final).tolist()]
print(f"trained first fc weights quantise to {final_values}")
print(f"FINAL bit_loss_start={results['bitnet'][0]:.4f} bit_loss={results['bitnet'][1]:.4f} "
      f"fp_loss={results['fp'][1]:.4f} entropy={entropy:.4f} zero_frac={zero_frac:.4f} "
      f"ste_err={max(ste_fn_err, ste_fp_err):.6f} int_gap={int_gap:.6f}")
