"""Grokking modular addition (Power et al. 2022; Nanda et al. 2023, "Progress measures for grokking").

In the style of Neel Nanda's grokking notebook/`transformers.py`, without einops: a one-layer
transformer on `a b =` tokens with `W_E`/`W_pos`/`W_U` as raw `nn.Parameter`s, attention written
with `torch.einsum` (`'ihd,bpd->biph'`, `'biph,biqh->biqp'`), a `tril` mask buffer subtracted as
`- 1e10 * (1 - mask)`, an einsum MLP, logits on the last token only, the `float64`
`cross_entropy_high_precision` (`log_softmax` + `gather`) against `F.cross_entropy`, full-batch
AdamW(weight_decay=1.0, betas=(0.9, 0.98)) with a `LambdaLR` warm-up, a `torch.randperm` train/val
split. Reported: train/val accuracy at start and end, the parameters' norm trajectory (memorisation
raises it, weight decay then pulls it down from its peak), and how
concentrated the embedding is in a few Fourier frequencies (`torch.fft.fft` over the token axis,
`.abs().pow(2)`). Check: the einsum attention equals `F.scaled_dot_product_attention(is_causal=True)`.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

p = 23
d_model, num_heads, d_head, d_mlp = 64, 4, 16, 128
n_ctx = 3
frac_train = 0.5
lr, wd = 3e-3, 1.0
num_epochs = 400

# --- data: every pair (a, b), the token p is "="
pairs = torch.tensor([(i, j, p) for i in range(p) for j in range(p)], dtype=torch.long)
labels_all = (pairs[:, 0] + pairs[:, 1]) % p
perm = torch.randperm(len(pairs))
n_train = int(frac_train * len(pairs))
train_idx, test_idx = perm[:n_train], perm[n_train:]
train, test = pairs[train_idx], pairs[test_idx]
train_labels, test_labels = labels_all[train_idx], labels_all[test_idx]
print(f"pairs {len(pairs)} train {len(train)} test {len(test)} vocab {p + 1}")


class Embed(nn.Module):
    def __init__(self, d_vocab, d_model):
        super().__init__()
        self.W_E = nn.Parameter(torch.randn(d_model, d_vocab) / np.sqrt(d_model))

    def forward(self, x):
        return torch.einsum("dbp -> bpd", self.W_E[:, x])


class Unembed(nn.Module):
    def __init__(self, d_vocab, d_model):
        super().__init__()
        self.W_U = nn.Parameter(torch.randn(d_model, d_vocab) / np.sqrt(d_vocab))

    def forward(self, x):
        return x @ self.W_U


class PosEmbed(nn.Module):
    def __init__(self, max_ctx, d_model):
        super().__init__()
        self.W_pos = nn.Parameter(torch.randn(max_ctx, d_model) / np.sqrt(d_model))

    def forward(self, x):
        return x + self.W_pos[: x.shape[-2]]


class Attention(nn.Module):
    def __init__(self, d_model, num_heads, d_head, n_ctx):
        super().__init__()
        self.W_K = nn.Parameter(torch.randn(num_heads, d_head, d_model) / np.sqrt(d_model))
        self.W_Q = nn.Parameter(torch.randn(num_heads, d_head, d_model) / np.sqrt(d_model))
        self.W_V = nn.Parameter(torch.randn(num_heads, d_head, d_model) / np.sqrt(d_model))
        self.W_O = nn.Parameter(torch.randn(d_model, d_head * num_heads) / np.sqrt(d_model))
        self.register_buffer("mask", torch.tril(torch.ones((n_ctx, n_ctx))))
        self.d_head = d_head

    def qkv(self, x):
        k = torch.einsum("ihd,bpd->biph", self.W_K, x)
        q = torch.einsum("ihd,bpd->biph", self.W_Q, x)
        v = torch.einsum("ihd,bpd->biph", self.W_V, x)
        return q, k, v

    def forward(self, x):
        q, k, v = self.qkv(x)
        attn_scores_pre = torch.einsum("biph,biqh->biqp", k, q)
        n = x.shape[-2]
        attn_scores_masked = torch.tril(attn_scores_pre) - 1e10 * (1 - self.mask[:n, :n])
        attn_matrix = F.softmax(attn_scores_masked / np.sqrt(self.d_head), dim=-1)
        z = torch.einsum("biph,biqp->biqh", v, attn_matrix)
        z_flat = z.permute(0, 2, 1, 3).reshape(z.shape[0], n, -1)  # 'b i q h -> b q (i h)'
        return torch.einsum("df,bqf->bqd", self.W_O, z_flat)

    def forward_sdpa(self, x):
        q, k, v = self.qkv(x)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        z_flat = z.transpose(1, 2).flatten(2)
        return F.linear(z_flat, self.W_O)


class MLP(nn.Module):
    def __init__(self, d_model, d_mlp):
        super().__init__()
        self.W_in = nn.Parameter(torch.randn(d_mlp, d_model) / np.sqrt(d_model))
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.W_out = nn.Parameter(torch.randn(d_model, d_mlp) / np.sqrt(d_model))
        self.b_out = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        x = torch.einsum("md,bpd->bpm", self.W_in, x) + self.b_in
        x = F.relu(x)
        return torch.einsum("dm,bpm->bpd", self.W_out, x) + self.b_out


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = Embed(p + 1, d_model)
        self.pos_embed = PosEmbed(n_ctx, d_model)
        self.attn = Attention(d_model, num_heads, d_head, n_ctx)
        self.mlp = MLP(d_model, d_mlp)
        self.unembed = Unembed(p, d_model)

    def forward(self, x):
        x = self.pos_embed(self.embed(x))
        x = x + self.attn(x)
        x = x + self.mlp(x)
        return self.unembed(x)


def cross_entropy_high_precision(logits, labels):
    logprobs = F.log_softmax(logits.to(torch.float64), dim=-1)
    prediction_logprobs = torch.gather(logprobs, index=labels[:, None], dim=-1)
    return -torch.mean(prediction_logprobs)


def full_loss(model, data, labels):
    logits = model(data)[:, -1]
    return cross_entropy_high_precision(logits, labels), logits


def accuracy(logits, labels):
    return (logits.argmax(-1) == labels).float().mean().item()


def weight_norm(model):
    return torch.sqrt(sum(param.pow(2).sum() for param in model.parameters())).item()


model = Transformer()

# --- check: the einsum attention is scaled dot-product attention with a causal mask
with torch.no_grad():
    h = model.pos_embed(model.embed(train[:64]))
    attn_err = (model.attn(h) - model.attn.forward_sdpa(h)).abs().max().item()
print(f"einsum vs sdpa attention max err {attn_err:.2e}")

optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd, betas=(0.9, 0.98))
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(step / 10, 1))

with torch.no_grad():
    _, logits0 = full_loss(model, test, test_labels)
val_acc_start = accuracy(logits0, test_labels)
norm_start = weight_norm(model)
print(f"start val acc {val_acc_start:.4f} weight norm {norm_start:.2f}")

norms = []
for epoch in range(num_epochs):
    train_loss, train_logits = full_loss(model, train, train_labels)
    optimizer.zero_grad()
    train_loss.backward()
    optimizer.step()
    scheduler.step()
    if (epoch + 1) % 100 == 0:
        with torch.no_grad():
            test_loss, test_logits = full_loss(model, test, test_labels)
        norms.append(weight_norm(model))
        print(f"epoch {epoch + 1} train loss {train_loss.item():.4f} test loss {test_loss.item():.4f} "
              f"train acc {accuracy(train_logits, train_labels):.3f} test acc "
              f"{accuracy(test_logits, test_labels):.3f} norm {norms[-1]:.2f}")

with torch.no_grad():
    train_loss, train_logits = full_loss(model, train, train_labels)
    test_loss, test_logits = full_loss(model, test, test_labels)
    ce_err = abs(train_loss.item() - F.cross_entropy(train_logits, train_labels).item())
train_acc, val_acc = accuracy(train_logits, train_labels), accuracy(test_logits, test_labels)
print(f"high-precision vs F.cross_entropy err {ce_err:.2e}")

# --- Fourier view of the embedding: energy per frequency over the p number tokens
with torch.no_grad():
    W_E = model.embed.W_E[:, :p].T  # [p, d_model]
    spectrum = torch.fft.fft(W_E, dim=0)
    energy = spectrum.abs().pow(2).sum(-1)  # [p], symmetric: k and p - k
    freq_energy = energy[1 : p // 2 + 1] + energy[p // 2 + 1 :].flip(0)
    top = torch.topk(freq_energy, 4)
    concentration = (top.values.sum() / freq_energy.sum()).item()
    # the same spectrum from an explicit DFT matrix
    k = torch.arange(p, dtype=torch.float64)
    angles = 2 * math.pi * torch.outer(k, k) / p
    dft_energy = (torch.cos(angles) @ W_E.double()).pow(2).sum(-1) + (torch.sin(angles) @ W_E.double()).pow(2).sum(-1)
    fft_err = ((dft_energy - energy.double()).abs().max() / dft_energy.max()).item()
print(f"top frequencies {sorted((top.indices + 1).tolist())} energy share {concentration:.3f} "
      f"(uniform {4 / (p // 2):.3f}) fft err {fft_err:.2e}")

print(f"FINAL train_acc={train_acc:.4f} val_acc_start={val_acc_start:.4f} val_acc={val_acc:.4f} "
      f"train_loss={train_loss.item():.4f} norm_start={norm_start:.2f} norm_peak={max(norms):.2f} "
      f"norm_end={norms[-1]:.2f} norm_drop={max(norms) - norms[-1]:.2f} fourier_top4={concentration:.3f} attn_err={attn_err:.2e} "
      f"ce_err={ce_err:.2e} fft_err={fft_err:.2e}")
