"""The Differential Transformer (Ye et al. 2024) against plain attention on an induction/copy task.

In the style of microsoft/unilm Diff-Transformer (`multihead_diffattn.py`, `multihead_flashdiff_2.py`)
with Llama's complex rotary embeddings: `precompute_freqs_cis` by `torch.polar(torch.ones_like(freqs),
freqs)`, `apply_rotary_emb` through `torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))`,
`reshape_for_broadcast` and `torch.view_as_real(...).flatten(3)` (against the interleaved cos/sin
form); q/k split into two half-width maps per head, two causal softmax maps (`torch.triu` of a
`-inf` filled matrix) subtracted with the re-parameterised lambda
`exp(sum(lambda_q1 * lambda_k1)) - exp(sum(lambda_q2 * lambda_k2)) + lambda_init`,
`lambda_init = 0.8 - 0.6 * math.exp(-0.3 * depth)`, the per-head `nn.RMSNorm(2 * head_dim, eps=1e-5,
elementwise_affine=True)` times `(1 - lambda_init)`; the flash variant as two
`F.scaled_dot_product_attention(is_causal=True)` calls per half of v, `torch.cat` and `unbind`
(must agree with the matmul form in outputs and gradients). A pre-norm SwiGLU LM with
`nn.RMSNorm` and a plain-attention baseline of the same width are trained by AdamW (no decay on
norms and lambdas) + warm-up/cosine `LambdaLR` + `clip_grad_norm_` on sequences `x SEP x`, scored
on the copied half. Checks: with lambda forced to 0 the layer equals ordinary attention over the
first halves (SDPA + RMSNorm); with identical halves and lambda 1 the differential map is zero.
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

VOCAB, SEP = 16, 16
HALF = 8
SEQ = 2 * HALF + 1
D_MODEL, N_HEADS, N_LAYERS = 32, 2, 2  # N_HEADS differential heads = 2 * N_HEADS softmax maps
BATCH, STEPS = 32, 240


def lambda_init_fn(depth):
    return 0.8 - 0.6 * math.exp(-0.3 * depth)


def precompute_freqs_cis(dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    return torch.polar(torch.ones_like(freqs), freqs)


def reshape_for_broadcast(freqs_cis, x):
    ndim = x.ndim
    shape = [d if i == 1 or i == ndim - 1 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(*shape)


def apply_rotary_emb(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


def apply_rotary_interleaved(x, cos, sin):
    x1, x2 = x[..., ::2], x[..., 1::2]
    cos, sin = cos[:, None, :], sin[:, None, :]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class MultiheadDiffAttn(nn.Module):
    def __init__(self, embed_dim, depth, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads // 2
        self.scaling = self.head_dim ** -0.5
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.lambda_init = lambda_init_fn(depth)
        self.lambda_q1 = nn.Parameter(torch.zeros(self.head_dim, dtype=torch.float32).normal_(mean=0, std=0.1))
        self.lambda_k1 = nn.Parameter(torch.zeros(self.head_dim, dtype=torch.float32).normal_(mean=0, std=0.1))
        self.lambda_q2 = nn.Parameter(torch.zeros(self.head_dim, dtype=torch.float32).normal_(mean=0, std=0.1))
        self.lambda_k2 = nn.Parameter(torch.zeros(self.head_dim, dtype=torch.float32).normal_(mean=0, std=0.1))
        self.subln = nn.RMSNorm(2 * self.head_dim, eps=1e-5, elementwise_affine=True)
        self.force_lambda = None

    def lambda_full(self, like):
        if self.force_lambda is not None:
            return torch.tensor(self.force_lambda).type_as(like)
        lambda_1 = torch.exp(torch.sum(self.lambda_q1 * self.lambda_k1, dim=-1).float()).type_as(like)
        lambda_2 = torch.exp(torch.sum(self.lambda_q2 * self.lambda_k2, dim=-1).float()).type_as(like)
        return lambda_1 - lambda_2 + self.lambda_init

    def project(self, x, freqs_cis):
        bsz, tgt_len, _ = x.size()
        q = self.q_proj(x).view(bsz, tgt_len, 2 * self.num_heads, self.head_dim)
        k = self.k_proj(x).view(bsz, tgt_len, 2 * self.num_heads, self.head_dim)
        v = self.v_proj(x).view(bsz, tgt_len, self.num_heads, 2 * self.head_dim)
        q, k = apply_rotary_emb(q, k, freqs_cis)
        return q, k, v

    def forward(self, x, freqs_cis):
        bsz, tgt_len, embed_dim = x.size()
        q, k, v = self.project(x, freqs_cis)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = q * self.scaling
        attn_weights = torch.matmul(q, k.transpose(-1, -2))
        attn_mask = torch.triu(torch.zeros([tgt_len, tgt_len]).float().fill_(float("-inf")).type_as(attn_weights), 1)
        attn_weights = torch.nan_to_num(attn_weights)
        attn_weights += attn_mask
        attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).type_as(attn_weights)
        attn_weights = attn_weights.view(bsz, self.num_heads, 2, tgt_len, tgt_len)
        attn_weights = attn_weights[:, :, 0] - self.lambda_full(q) * attn_weights[:, :, 1]
        attn = torch.matmul(attn_weights, v)
        attn = self.subln(attn)
        attn = attn * (1 - self.lambda_init)
        attn = attn.transpose(1, 2).reshape(bsz, tgt_len, self.num_heads * 2 * self.head_dim)
        return self.out_proj(attn)

    def forward_flash(self, x, freqs_cis):
        """multihead_flashdiff_2: two causal attentions per half of v, flash_attn_func -> SDPA."""
        bsz, tgt_len, embed_dim = x.size()
        q, k, v = self.project(x, freqs_cis)
        q = q.reshape(bsz, tgt_len, self.num_heads, 2, self.head_dim)
        k = k.reshape(bsz, tgt_len, self.num_heads, 2, self.head_dim)
        q1, q2 = q.unbind(3)
        k1, k2 = k.unbind(3)
        v1, v2 = torch.chunk(v, 2, dim=-1)

        def flash(qh, kh, vh):
            out = F.scaled_dot_product_attention(qh.transpose(1, 2), kh.transpose(1, 2), vh.transpose(1, 2),
                                                 is_causal=True, scale=self.scaling)
            return out

        attn1 = torch.cat([flash(q1, k1, v1), flash(q1, k1, v2)], dim=-1)
        attn2 = torch.cat([flash(q2, k2, v1), flash(q2, k2, v2)], dim=-1)
        attn = attn1 - self.lambda_full(q) * attn2
        attn = self.subln(attn)
        attn = attn * (1 - self.lambda_init)
        attn = attn.transpose(1, 2).reshape(bsz, tgt_len, self.num_heads * 2 * self.head_dim)
        return self.out_proj(attn)


class PlainAttn(nn.Module):
    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.wqkv = nn.Linear(embed_dim, 3 * embed_dim, bias=False)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=False)

    def forward(self, x, freqs_cis):
        bsz, seqlen, _ = x.shape
        q, k, v = self.wqkv(x).split(x.shape[-1], dim=-1)
        q = q.view(bsz, seqlen, self.num_heads, self.head_dim)
        k = k.view(bsz, seqlen, self.num_heads, self.head_dim)
        v = v.view(bsz, seqlen, self.num_heads, self.head_dim)
        q, k = apply_rotary_emb(q, k, freqs_cis)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.out_proj(out.transpose(1, 2).contiguous().view(bsz, seqlen, -1))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, depth, differential):
        super().__init__()
        self.attention_norm = nn.RMSNorm(D_MODEL, eps=1e-5)
        self.attention = MultiheadDiffAttn(D_MODEL, depth, N_HEADS) if differential else PlainAttn(D_MODEL, 2 * N_HEADS)
        self.ffn_norm = nn.RMSNorm(D_MODEL, eps=1e-5)
        self.feed_forward = FeedForward(D_MODEL, 2 * D_MODEL)

    def forward(self, x, freqs_cis):
        h = x + self.attention(self.attention_norm(x), freqs_cis)
        return h + self.feed_forward(self.ffn_norm(h))


class LM(nn.Module):
    def __init__(self, differential):
        super().__init__()
        self.tok_embeddings = nn.Embedding(VOCAB + 1, D_MODEL)
        self.layers = nn.ModuleList([Block(depth, differential) for depth in range(N_LAYERS)])
        self.norm = nn.RMSNorm(D_MODEL, eps=1e-5)
        self.output = nn.Linear(D_MODEL, VOCAB + 1, bias=False)
        head_dim = D_MODEL // (2 * N_HEADS) if not differential else D_MODEL // N_HEADS // 2
        self.register_buffer("freqs_cis", precompute_freqs_cis(head_dim, SEQ), persistent=False)

    def forward(self, tokens):
        h = self.tok_embeddings(tokens)
        freqs_cis = self.freqs_cis[: tokens.shape[1]]
        for layer in self.layers:
            h = layer(h, freqs_cis)
        return self.output(self.norm(h))


def get_batch(n):
    x = torch.randint(0, VOCAB, (n, HALF))
    seq = torch.cat([x, torch.full((n, 1), SEP), x], dim=1)
    return seq[:, :-1], seq[:, 1:]


def copy_loss(logits, targets):
    # only the copied half is predictable: positions from SEP on
    logits, targets = logits[:, HALF:], targets[:, HALF:]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


# --- check: Llama's complex rotary equals the interleaved cos/sin rotation
head_dim = D_MODEL // N_HEADS // 2
fc = precompute_freqs_cis(head_dim, SEQ)
xq = torch.randn(2, SEQ, 4, head_dim)
rq, _ = apply_rotary_emb(xq, xq, fc)
rotary_err = (rq - apply_rotary_interleaved(xq, fc.real, fc.imag)).abs().max().item()
print(f"rotary complex vs interleaved err {rotary_err:.2e} freqs {tuple(fc.shape)} {fc.dtype}")

# --- checks on one differential layer
layer = MultiheadDiffAttn(D_MODEL, 1, N_HEADS)
x = torch.randn(3, SEQ, D_MODEL, requires_grad=True)
out = layer(x, fc)
out.square().sum().backward()
grads = [p.grad.clone() for p in (layer.q_proj.weight, layer.lambda_q1, layer.subln.weight)] + [x.grad.clone()]
layer.zero_grad()
x.grad = None
out_flash = layer.forward_flash(x, fc)
out_flash.square().sum().backward()
grads_flash = [p.grad for p in (layer.q_proj.weight, layer.lambda_q1, layer.subln.weight)] + [x.grad]
flash_err = max([(out - out_flash).abs().max().item()] + [(a - b).abs().max().item() for a, b in zip(grads, grads_flash)])
print(f"matmul vs flash (SDPA) form: max err over output and grads {flash_err:.2e}")

with torch.no_grad():
    layer.force_lambda = 0.0
    out0 = layer(x, fc)
    q, k, v = layer.project(x, fc)
    q1 = q.view(3, SEQ, N_HEADS, 2, head_dim)[:, :, :, 0].transpose(1, 2)
    k1 = k.view(3, SEQ, N_HEADS, 2, head_dim)[:, :, :, 0].transpose(1, 2)
    ordinary = F.scaled_dot_product_attention(q1, k1, v.transpose(1, 2), is_causal=True)
    ordinary = layer.subln(ordinary) * (1 - layer.lambda_init)
    ordinary = layer.out_proj(ordinary.transpose(1, 2).reshape(3, SEQ, D_MODEL))
    lambda0_err = (out0 - ordinary).abs().max().item()
    # identical halves: copy the first half's q/k rows onto the second's, lambda 1 cancels the maps
    layer.force_lambda = 1.0
    for proj in (layer.q_proj, layer.k_proj):
        w = proj.weight.view(N_HEADS, 2, head_dim, D_MODEL)
        w[:, 1] = w[:, 0]
    same_out = layer(x, fc)
    identical_err = same_out.abs().max().item()  # a zero map gives RMSNorm(0) = 0
    layer.force_lambda = None
print(f"lambda=0 vs ordinary attention err {lambda0_err:.2e}; identical halves, lambda=1: |out| {identical_err:.2e}")
print(f"lambda_init by depth {[round(lambda_init_fn(d), 4) for d in range(N_LAYERS)]}")


def param_groups(model):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "lambda" in name else decay).append(p)
    return [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]


def train(differential, label):
    torch.manual_seed(seed + 1)
    model = LM(differential)
    optimizer = torch.optim.AdamW(param_groups(model), lr=3e-3, betas=(0.9, 0.98), eps=1e-8)
    warmup = 20
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (STEPS - warmup))))
    losses = []
    for step in range(STEPS):
        inputs, targets = get_batch(BATCH)
        loss = copy_loss(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if (step + 1) % 80 == 0:
            print(f"{label} step {step + 1} loss {sum(losses[-20:]) / 20:.4f} lr {scheduler.get_last_lr()[0]:.5f}")
    model.eval()
    with torch.no_grad():
        inputs, targets = get_batch(256)
        logits = model(inputs)
        acc = (logits[:, HALF:].argmax(-1) == targets[:, HALF:]).float().mean().item()
        eval_loss = copy_loss(logits, targets).item()
    lambdas = [blk.attention.lambda_full(torch.zeros(())).item() for blk in model.layers] if differential else []
    return sum(losses[:10]) / 10, eval_loss, acc, lambdas


diff_first, diff_loss, diff_acc, lambdas = train(True, "diff")
base_first, base_loss, base_acc, _ = train(False, "base")
print(f"learned lambda_full per layer {[round(v, 3) for v in lambdas]}")
print(f"diff acc {diff_acc:.4f} loss {diff_loss:.4f}; baseline acc {base_acc:.4f} loss {base_loss:.4f}")
print(f"FINAL diff_loss_first={diff_first:.4f} diff_loss={diff_loss:.4f} diff_acc={diff_acc:.4f} "
      f"base_loss={base_loss:.4f} base_acc={base_acc:.4f} lambda_mean={sum(lambdas) / len(lambdas):.4f} "
      f"rotary_err={rotary_err:.2e} flash_err={flash_err:.2e} lambda0_err={lambda0_err:.2e} identical_err={identical_err:.2e}")
