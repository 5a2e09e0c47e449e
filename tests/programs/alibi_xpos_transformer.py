"""ALiBi and rotary position schemes (ofirpress/attention_with_linear_biases, BLOOM, GPT-NeoX) in a tiny causal LM.

ALiBi slopes by ``get_slopes`` with the closest-power-of-2 recursion for a non-power-of-2 head count,
``torch.Tensor(get_slopes(n))``, the bias ``slopes[:, None, None] * torch.arange(n)[None, None, :]``
and BLOOM's ``build_alibi_tensor`` from ``attention_mask.cumsum(-1) - 1) * attention_mask`` (with left
padding) fed to ``torch.baddbmm(alibi, q, k.transpose(1, 2), beta=1.0, alpha=1 / math.sqrt(d))``; GPT-NeoX
rotary embeddings (``inv_freq`` buffer, ``torch.einsum("i,j->ij", t, inv_freq)``, ``torch.cat((freqs, freqs),
dim=-1)``, ``rotate_half`` by ``x.chunk(2, dim=-1)``, a partial ``rotary_ndims``); attention by
``F.scaled_dot_product_attention(attn_mask=float bias)`` against the manual ``softmax`` path (must
agree). Two tiny causal LMs (ALiBi, rotary) trained on a periodic-token task at length 16, then their
losses on length 32 and 48 (ALiBi extrapolates).
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB, D_MODEL, N_HEAD, N_LAYER = 16, 48, 6, 2


def get_slopes(n):
    def get_slopes_power_of_2(n):
        start = (2 ** (-2 ** -(math.log2(n) - 3)))
        ratio = start
        return [start * ratio ** i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    else:
        closest_power_of_2 = 2 ** math.floor(math.log2(n))
        return get_slopes_power_of_2(closest_power_of_2) + get_slopes(2 * closest_power_of_2)[0::2][:n - closest_power_of_2]


def build_alibi_tensor(attention_mask, num_heads, dtype):
    """BLOOM's form: (batch_size * num_heads, 1, seq_length), positions counted over the unpadded tokens."""
    batch_size, seq_length = attention_mask.shape
    closest_power_of_2 = 2 ** math.floor(math.log2(num_heads))
    base = torch.tensor(2 ** (-(2 ** -(math.log2(closest_power_of_2) - 3))), device=attention_mask.device,
                        dtype=torch.float32)
    powers = torch.arange(1, 1 + closest_power_of_2, device=attention_mask.device, dtype=torch.int32)
    slopes = torch.pow(base, powers)

    if closest_power_of_2 != num_heads:
        extra_base = torch.tensor(2 ** (-(2 ** -(math.log2(2 * closest_power_of_2) - 3))),
                                  device=attention_mask.device, dtype=torch.float32)
        num_remaining_heads = min(closest_power_of_2, num_heads - closest_power_of_2)
        extra_powers = torch.arange(1, 1 + 2 * num_remaining_heads, 2, device=attention_mask.device,
                                    dtype=torch.int32)
        slopes = torch.cat([slopes, torch.pow(extra_base, extra_powers)], dim=0)

    arange_tensor = ((attention_mask.cumsum(dim=-1) - 1) * attention_mask)[:, None, :]
    alibi = slopes[..., None] * arange_tensor
    return alibi.reshape(batch_size * num_heads, 1, seq_length).to(dtype)


class RotaryEmbedding(nn.Module):
    def __init__(self, dim, max_position_embeddings=2048, base=10000):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.max_seq_len_cached = max_position_embeddings
        t = torch.arange(self.max_seq_len_cached, dtype=self.inv_freq.dtype)
        freqs = torch.einsum("i,j->ij", t, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos_cached = emb.cos()[None, None, :, :]
        self.sin_cached = emb.sin()[None, None, :, :]

    def forward(self, x, seq_len=None):
        return self.cos_cached[:seq_len, ...].to(x.device), self.sin_cached[:seq_len, ...].to(x.device)


def rotate_half(x):
    """Rotates half the hidden dims of the input."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, offset: int = 0):
    cos = cos[..., offset: q.shape[-2] + offset, :]
    sin = sin[..., offset: q.shape[-2] + offset, :]
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


class CausalSelfAttention(nn.Module):
    def __init__(self, position, max_len=64, rotary_pct=0.5):
        super().__init__()
        self.n_head = N_HEAD
        self.head_dim = D_MODEL // N_HEAD
        self.query_key_value = nn.Linear(D_MODEL, 3 * D_MODEL)
        self.dense = nn.Linear(D_MODEL, D_MODEL)
        self.position = position
        if position == "alibi":
            slopes = torch.Tensor(get_slopes(N_HEAD))
            self.register_buffer("slopes", slopes, persistent=False)
        else:
            self.rotary_ndims = int(self.head_dim * rotary_pct)
            self.rotary_emb = RotaryEmbedding(self.rotary_ndims, max_position_embeddings=max_len)
        self.register_buffer("causal", torch.tril(torch.ones(max_len, max_len, dtype=torch.bool)), persistent=False)

    def bias(self, n):
        """(n_head, n, n) float bias: ALiBi's distance penalty (zero for rotary) and -inf above the diagonal."""
        if self.position == "alibi":
            # the original repository's form: slope * key index, constant along each query row but for the mask,
            # so softmax sees the same thing as -slope * (query - key)
            bias = self.slopes[:, None, None] * torch.arange(n)[None, None, :]
        else:
            bias = torch.zeros(1, 1, n)
        bias = bias.expand(self.n_head, n, n)
        return bias.masked_fill(~self.causal[:n, :n], float("-inf"))

    def forward(self, x, use_sdpa=True):
        B, T, C = x.size()
        qkv = self.query_key_value(x).view(B, T, self.n_head, 3 * self.head_dim).permute(0, 2, 1, 3)
        q, k, v = qkv.split(self.head_dim, dim=-1)
        if self.position == "rotary":
            query_rot, query_pass = q[..., :self.rotary_ndims], q[..., self.rotary_ndims:]
            key_rot, key_pass = k[..., :self.rotary_ndims], k[..., self.rotary_ndims:]
            cos, sin = self.rotary_emb(v, seq_len=T)
            query_rot, key_rot = apply_rotary_pos_emb(query_rot, key_rot, cos, sin)
            q = torch.cat((query_rot, query_pass), dim=-1)
            k = torch.cat((key_rot, key_pass), dim=-1)
        bias = self.bias(T)
        if use_sdpa:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att + bias
            att = F.softmax(att, dim=-1)
            y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.dense(y)


class Block(nn.Module):
    def __init__(self, position):
        super().__init__()
        self.ln_1 = nn.LayerNorm(D_MODEL)
        self.attn = CausalSelfAttention(position)
        self.ln_2 = nn.LayerNorm(D_MODEL)
        self.mlp = nn.Sequential(nn.Linear(D_MODEL, 4 * D_MODEL), nn.GELU(), nn.Linear(4 * D_MODEL, D_MODEL))

    def forward(self, x, use_sdpa=True):
        x = x + self.attn(self.ln_1(x), use_sdpa=use_sdpa)
        x = x + self.mlp(self.ln_2(x))
        return x


class TinyLM(nn.Module):
    def __init__(self, position):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, D_MODEL)
        self.blocks = nn.ModuleList([Block(position) for _ in range(N_LAYER)])
        self.ln_f = nn.LayerNorm(D_MODEL)
        self.lm_head = nn.Linear(D_MODEL, VOCAB, bias=False)

    def forward(self, idx, targets=None, use_sdpa=True):
        x = self.wte(idx)
        for block in self.blocks:
            x = block(x, use_sdpa=use_sdpa)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def get_batch(n, length):
    """Each sequence repeats a random motif of period 2..5: after one period every token is predictable."""
    seqs = np.empty((n, length + 1), dtype=np.int64)
    for i in range(n):
        period = rng.integers(2, 6)
        motif = rng.integers(0, VOCAB, size=period)
        seqs[i] = np.resize(motif, length + 1)
    seqs = torch.from_numpy(seqs)
    return seqs[:, :-1].contiguous(), seqs[:, 1:].contiguous()


print(f"slopes for 8 heads {[round(s, 4) for s in get_slopes(8)]}")
print(f"slopes for 6 heads {[round(s, 4) for s in get_slopes(6)]}")
mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
alibi = build_alibi_tensor(mask, 6, torch.float32)
print(f"BLOOM alibi {tuple(alibi.shape)}, slopes agree "
      f"{torch.allclose(alibi.view(2, 6, 5)[1, :, 1], torch.tensor(get_slopes(6)))}, "
      f"left padding zero {bool((alibi.view(2, 6, 5)[0, :, :3] == 0).all())}")

# BLOOM's baddbmm scores against the explicit matmul + scale + bias
q, k = torch.randn(12, 5, 8), torch.randn(12, 5, 8)
scores = torch.baddbmm(alibi, q, k.transpose(1, 2), beta=1.0, alpha=1 / math.sqrt(8))
manual = alibi + (q @ k.transpose(1, 2)) / math.sqrt(8)
print(f"baddbmm scores {tuple(scores.shape)} agree with the manual form: {torch.allclose(scores, manual, atol=1e-6)}")

results = {}
for position in ("alibi", "rotary"):
    torch.manual_seed(seed)
    model = TinyLM(position)
    x, _ = get_batch(4, 16)
    with torch.no_grad():
        logits_sdpa, _ = model(x, use_sdpa=True)
        logits_manual, _ = model(x, use_sdpa=False)
    print(f"{position}: sdpa agrees with the manual softmax path: {torch.allclose(logits_sdpa, logits_manual, atol=1e-5)}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    for step in range(1, 121):
        xb, yb = get_batch(16, 16)
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 60 == 0:
            print(f"{position} step {step}: loss {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        for length in (16, 32, 48):
            xb, yb = get_batch(32, length)
            logits, _ = model(xb, use_sdpa=True)
            # the loss after the first 6 tokens, where every motif has been seen once
            tail_loss = F.cross_entropy(logits[:, 6:].reshape(-1, VOCAB), yb[:, 6:].reshape(-1)).item()
            results[f"{position}_{length}"] = tail_loss
            print(f"{position} length {length}: loss {tail_loss:.4f}")

print("FINAL " + " ".join(f"{key}={value:.4f}" for key, value in results.items()))
