"""RoPE context extension: linear position interpolation, NTK-aware base scaling and YaRN (jquesnelle/yarn's
``LlamaYaRNScaledRotaryEmbedding``, HF ``_compute_yarn_parameters``).

Base inverse frequencies ``1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))``; linear interpolation dividing the
positions by the scale (``t = t / self.scaling_factor``); the NTK-aware base ``base * scale ** (dim / (dim - 2))``;
YaRN's ``_yarn_find_correction_dim``/``_yarn_find_correction_range`` (``math.log``, ``math.floor``, ``math.ceil``,
clamped to ``[0, dim - 1]``) and ``_yarn_linear_ramp_mask`` (``torch.arange`` and ``torch.clamp(linear_func, 0, 1)``)
blending interpolated and extrapolated frequencies, the attention temperature ``0.1 * math.log(scale) + 1.0`` folded
into the cos/sin caches, which are ``register_buffer(..., persistent=False)`` buffers built by ``torch.einsum("i,j->ij",
t, self.inv_freq)`` + ``torch.cat((freqs, freqs), dim=-1)`` and rebuilt when a longer sequence arrives; HF's
``rotate_half``/``apply_rotary_pos_emb``. A tiny Llama-style LM is trained on periodic sequences at length 16 and
evaluated at 32 and 64 under each method (same weights, swapped rotary modules through ``load_state_dict``). Checks:
q.k after RoPE depends only on the relative position (the same pair shifted gives the same score, for every
method's frequencies), the YaRN frequencies equal a direct NumPy formula, the temperature scales the logits by
``mscale ** 2``, and the caches stay out of ``state_dict``.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

TRAIN_LEN = 16
SCALE = 4.0
VOCAB = 12


# ---- jquesnelle/yarn scaled_rope helpers
def _yarn_find_correction_dim(num_rotations, dim, base=10000, max_position_embeddings=2048):
    return (dim * math.log(max_position_embeddings / (num_rotations * 2 * math.pi))) / (2 * math.log(base))


def _yarn_find_correction_range(low_rot, high_rot, dim, base=10000, max_position_embeddings=2048):
    low = math.floor(_yarn_find_correction_dim(low_rot, dim, base, max_position_embeddings))
    high = math.ceil(_yarn_find_correction_dim(high_rot, dim, base, max_position_embeddings))
    return max(low, 0), min(high, dim - 1)  # Clamp values just in case


def _yarn_linear_ramp_mask(min, max, dim):
    if min == max:
        max += 0.001  # Prevent singularity

    linear_func = (torch.arange(dim, dtype=torch.float32) - min) / (max - min)
    ramp_func = torch.clamp(linear_func, 0, 1)
    return ramp_func


def _yarn_get_mscale(scale=1):
    if scale <= 1:
        return 1.0
    return 0.1 * math.log(scale) + 1.0


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, dim, max_position_embeddings=2048, base=10000, device=None):
        super().__init__()
        self.dim = dim
        self.base = base
        self.max_position_embeddings = max_position_embeddings
        self.mscale = 1.0
        self.init_inv_freq(device)
        self._set_cos_sin_cache(max_position_embeddings, device=self.inv_freq.device, dtype=torch.get_default_dtype())

    def init_inv_freq(self, device):
        inv_freq = 1.0 / (self.base ** (torch.arange(0, self.dim, 2).float().to(device) / self.dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def positions(self, seq_len, device, dtype):
        return torch.arange(seq_len, device=device, dtype=dtype)

    def _set_cos_sin_cache(self, seq_len, device, dtype):
        self.max_seq_len_cached = seq_len
        t = self.positions(seq_len, device, self.inv_freq.dtype)
        freqs = torch.einsum("i,j->ij", t, self.inv_freq)
        # Different from paper, but it uses a different permutation in order to obtain the same calculation
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", (emb.cos() * self.mscale)[None, None, :, :].to(dtype), persistent=False)
        self.register_buffer("sin_cached", (emb.sin() * self.mscale)[None, None, :, :].to(dtype), persistent=False)

    def forward(self, x, seq_len=None):
        # x: [bs, num_attention_heads, seq_len, head_size]
        if seq_len > self.max_seq_len_cached:
            self._set_cos_sin_cache(seq_len=seq_len, device=x.device, dtype=x.dtype)
        return (
            self.cos_cached[:, :, :seq_len, ...].to(dtype=x.dtype),
            self.sin_cached[:, :, :seq_len, ...].to(dtype=x.dtype),
        )


class LlamaLinearScalingRotaryEmbedding(LlamaRotaryEmbedding):
    """LlamaRotaryEmbedding extended with linear scaling. Credits to the Reddit user /u/kaiokendev"""

    def __init__(self, dim, max_position_embeddings=2048, base=10000, device=None, scaling_factor=1.0):
        self.scaling_factor = scaling_factor
        super().__init__(dim, max_position_embeddings, base, device)

    def positions(self, seq_len, device, dtype):
        t = torch.arange(seq_len, device=device, dtype=dtype)
        t = t / self.scaling_factor
        return t


class LlamaNTKScaledRotaryEmbedding(LlamaRotaryEmbedding):
    """NTK-aware scaled RoPE (bloc97): the base stretched so the lowest frequency is interpolated."""

    def __init__(self, dim, max_position_embeddings=2048, base=10000, device=None, scaling_factor=1.0):
        base = base * scaling_factor ** (dim / (dim - 2))
        super().__init__(dim, max_position_embeddings, base, device)


class LlamaYaRNScaledRotaryEmbedding(LlamaRotaryEmbedding):
    def __init__(self, dim, max_position_embeddings=2048, base=10000, scale=1, original_max_position_embeddings=2048,
                 extrapolation_factor=1, attn_factor=1, beta_fast=32, beta_slow=1, device=None):
        self.scale = scale
        self.original_max_position_embeddings = original_max_position_embeddings
        self.extrapolation_factor = extrapolation_factor
        self.attn_factor = attn_factor
        self.beta_fast = beta_fast
        self.beta_slow = beta_slow
        super().__init__(dim, max_position_embeddings, base, device)

    def init_inv_freq(self, device):
        pos_freqs = self.base ** (torch.arange(0, self.dim, 2).float().to(device) / self.dim)
        inv_freq_extrapolation = 1.0 / pos_freqs
        inv_freq_interpolation = 1.0 / (self.scale * pos_freqs)

        low, high = _yarn_find_correction_range(self.beta_fast, self.beta_slow, self.dim, self.base,
                                                self.original_max_position_embeddings)
        inv_freq_mask = (1 - _yarn_linear_ramp_mask(low, high, self.dim // 2).float().to(device)) \
            * self.extrapolation_factor  # Get n-d rotational scaling corrected for extrapolation
        inv_freq = inv_freq_interpolation * (1 - inv_freq_mask) + inv_freq_extrapolation * inv_freq_mask

        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.mscale = float(_yarn_get_mscale(self.scale) * self.attn_factor)  # Get n-d magnitude scaling corrected for interpolation


def rotate_half(x):
    """Rotates half the hidden dims of the input."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids):
    cos = cos.squeeze(1).squeeze(0)  # [seq_len, dim]
    sin = sin.squeeze(1).squeeze(0)  # [seq_len, dim]
    cos = cos[position_ids].unsqueeze(1)  # [bs, 1, seq_len, dim]
    sin = sin[position_ids].unsqueeze(1)  # [bs, 1, seq_len, dim]
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


HEAD_DIM = 16
BASE = 100.0


def make_rope(method):
    if method == "plain":
        return LlamaRotaryEmbedding(HEAD_DIM, TRAIN_LEN, base=BASE)
    if method == "linear":
        return LlamaLinearScalingRotaryEmbedding(HEAD_DIM, TRAIN_LEN, base=BASE, scaling_factor=SCALE)
    if method == "ntk":
        return LlamaNTKScaledRotaryEmbedding(HEAD_DIM, TRAIN_LEN, base=BASE, scaling_factor=SCALE)
    return LlamaYaRNScaledRotaryEmbedding(HEAD_DIM, TRAIN_LEN, base=BASE, scale=SCALE,
                                          original_max_position_embeddings=TRAIN_LEN, beta_fast=2, beta_slow=0.1)


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        variance = hidden_states.to(torch.float32).pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states


class Attention(nn.Module):
    def __init__(self, hidden, n_heads, method):
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = hidden // n_heads
        self.q_proj = nn.Linear(hidden, hidden, bias=False)
        self.k_proj = nn.Linear(hidden, hidden, bias=False)
        self.v_proj = nn.Linear(hidden, hidden, bias=False)
        self.o_proj = nn.Linear(hidden, hidden, bias=False)
        self.rotary_emb = make_rope(method)

    def forward(self, x, position_ids):
        bsz, q_len, _ = x.size()
        q = self.q_proj(x).view(bsz, q_len, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(bsz, q_len, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(bsz, q_len, self.n_heads, self.head_dim).transpose(1, 2)
        cos, sin = self.rotary_emb(v, seq_len=q_len)
        q, k = apply_rotary_pos_emb(q, k, cos, sin, position_ids)
        attn_weights = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        causal = torch.full((q_len, q_len), float("-inf")).triu(1)
        attn_weights = attn_weights + causal[None, None]
        attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(attn_weights, v)
        out = out.transpose(1, 2).reshape(bsz, q_len, -1)
        return self.o_proj(out)


class DecoderLayer(nn.Module):
    def __init__(self, hidden, n_heads, method):
        super().__init__()
        self.self_attn = Attention(hidden, n_heads, method)
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, hidden))
        self.input_layernorm = LlamaRMSNorm(hidden)
        self.post_attention_layernorm = LlamaRMSNorm(hidden)

    def forward(self, x, position_ids):
        x = x + self.self_attn(self.input_layernorm(x), position_ids)
        return x + self.mlp(self.post_attention_layernorm(x))


class TinyLlama(nn.Module):
    def __init__(self, method="plain", hidden=32, n_heads=2, n_layers=2):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, hidden)
        self.layers = nn.ModuleList([DecoderLayer(hidden, n_heads, method) for _ in range(n_layers)])
        self.norm = LlamaRMSNorm(hidden)
        self.lm_head = nn.Linear(hidden, VOCAB, bias=False)

    def forward(self, input_ids):
        position_ids = torch.arange(input_ids.shape[1], dtype=torch.long).unsqueeze(0).expand(input_ids.shape[0], -1)
        h = self.embed_tokens(input_ids)
        for layer in self.layers:
            h = layer(h, position_ids)
        return self.lm_head(self.norm(h))


def make_batch(n, length):
    """Periodic sequences: a random block of period 2..5 repeated; the targets after the first period are
    predictable by attending a fixed relative offset back."""
    x = np.zeros((n, length + 1), dtype=np.int64)
    mask = np.zeros((n, length), dtype=bool)
    for i in range(n):
        period = int(rng.integers(2, 6))
        block = rng.integers(0, VOCAB, size=period)
        x[i] = np.resize(block, length + 1)
        mask[i, period - 1:] = True
    inputs, targets = torch.from_numpy(x[:, :-1].copy()), torch.from_numpy(x[:, 1:].copy())
    targets[~torch.from_numpy(mask)] = -100
    return inputs, targets


def lm_loss(model, inputs, targets):
    logits = model(inputs)
    return F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1), ignore_index=-100)


# ---- 1. relative-position property of every method's frequencies
q_vec = torch.randn(1, 1, 1, HEAD_DIM)
k_vec = torch.randn(1, 1, 1, HEAD_DIM)
rel_err = 0.0
for method in ("plain", "linear", "ntk", "yarn"):
    rope = make_rope(method)
    cos, sin = rope(q_vec, seq_len=64)
    scores = []
    for m, n in ((9, 3), (9 + 40, 3 + 40), (20, 14)):
        q_m, _ = apply_rotary_pos_emb(q_vec, q_vec, cos, sin, torch.tensor([[m]]))
        _, k_n = apply_rotary_pos_emb(k_vec, k_vec, cos, sin, torch.tensor([[n]]))
        scores.append((q_m * k_n).sum().item())
    rel_err = max(rel_err, abs(scores[0] - scores[1]), abs(scores[0] - scores[2]))
print(f"q.k after rope depends on m - n only: max diff over shifts {rel_err:.2e}")

# ---- 2. YaRN frequencies against a direct NumPy formula, and the temperature
yarn = make_rope("yarn")
d = np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM
wavelen = 2 * np.pi * BASE ** d
rotations = TRAIN_LEN / wavelen
lo = max(math.floor(HEAD_DIM * math.log(TRAIN_LEN / (2 * 2 * math.pi)) / (2 * math.log(BASE))), 0)
hi = min(math.ceil(HEAD_DIM * math.log(TRAIN_LEN / (0.1 * 2 * math.pi)) / (2 * math.log(BASE))), HEAD_DIM - 1)
ramp = np.clip((np.arange(HEAD_DIM // 2) - lo) / (hi - lo), 0, 1)
np_inv_freq = (1 / BASE ** d) * (1 - ramp) + (1 / (SCALE * BASE ** d)) * ramp
yarn_freq_err = float(np.max(np.abs(yarn.inv_freq.numpy() - np_inv_freq) / np_inv_freq))
print(f"yarn correction range [{lo}, {hi}] rotations per dim {np.round(rotations, 3).tolist()}")
print(f"yarn inv_freq vs numpy max rel err {yarn_freq_err:.2e} mscale {yarn.mscale:.4f} "
      f"(0.1 * ln(s) + 1 = {0.1 * math.log(SCALE) + 1:.4f})")
plain_cache = LlamaRotaryEmbedding(HEAD_DIM, TRAIN_LEN, base=BASE)
plain_cache.inv_freq = yarn.inv_freq.clone()
plain_cache._set_cos_sin_cache(TRAIN_LEN, None, torch.float32)
cos_t, sin_t = yarn(q_vec, seq_len=TRAIN_LEN)
cos_1, sin_1 = plain_cache(q_vec, seq_len=TRAIN_LEN)
pos = torch.tensor([[11]])
s_t = (apply_rotary_pos_emb(q_vec, k_vec, cos_t, sin_t, pos)[0] * apply_rotary_pos_emb(q_vec, k_vec, cos_t, sin_t, torch.tensor([[4]]))[1]).sum()
s_1 = (apply_rotary_pos_emb(q_vec, k_vec, cos_1, sin_1, pos)[0] * apply_rotary_pos_emb(q_vec, k_vec, cos_1, sin_1, torch.tensor([[4]]))[1]).sum()
temp_err = abs(s_t.item() - yarn.mscale ** 2 * s_1.item())
print(f"temperature: scaled score / plain score = {s_t.item() / s_1.item():.4f} (mscale^2 {yarn.mscale ** 2:.4f})")

# ---- 3. train at length 16 with plain RoPE
model = TinyLlama("plain")
keys = sorted(model.state_dict())
no_caches = not any(k.endswith(("inv_freq", "cos_cached", "sin_cached")) for k in keys)
print(f"state_dict keys {len(keys)} caches absent {no_caches}")
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
first_loss = None
for step in range(1, 201):
    inputs, targets = make_batch(32, TRAIN_LEN)
    loss = lm_loss(model, inputs, targets)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if first_loss is None:
        first_loss = loss.item()
    if step % 50 == 0:
        print(f"step {step} loss {loss.item():.4f}")

# ---- 4. evaluate at L, 2L and 4L with each rotary module (the weights moved by load_state_dict)
eval_sets = {length: make_batch(64, length) for length in (TRAIN_LEN, 2 * TRAIN_LEN, 4 * TRAIN_LEN)}
losses = {}
for method in ("plain", "linear", "ntk", "yarn"):
    m = TinyLlama(method)
    m.load_state_dict(model.state_dict())
    m.eval()
    with torch.no_grad():
        for length, (inputs, targets) in eval_sets.items():
            losses[(method, length)] = lm_loss(m, inputs, targets).item()
    cache_len = m.layers[0].self_attn.rotary_emb.max_seq_len_cached
    print(f"{method:>6}: loss @16 {losses[(method, 16)]:.4f} @32 {losses[(method, 32)]:.4f} "
          f"@64 {losses[(method, 64)]:.4f} (cache grown to {cache_len})")

# without fine-tuning, linear interpolation squeezes the trained offsets (worst at every length), while NTK and
# YaRN keep the high frequencies the model relies on
linear_worst = all(losses[("linear", n)] > max(losses[("ntk", n)], losses[("yarn", n)]) for n in (16, 64))
print(f"linear interpolation worst at 16 and 64 without fine-tuning: {linear_worst}")

ok = rel_err < 1e-4 and yarn_freq_err < 1e-5 and temp_err < 1e-4 and no_caches
print(f"FINAL first_loss={first_loss:.4f} train_loss={losses[('plain', 16)]:.4f} "
      f"plain_64={losses[('plain', 64)]:.4f} linear_64={losses[('linear', 64)]:.4f} ntk_64={losses[('ntk', 64)]:.4f} "
      f"yarn_64={losses[('yarn', 64)]:.4f} yarn_32={losses[('yarn', 32)]:.4f} linear_16={losses[('linear', 16)]:.4f} "
      f"linear_worst={int(linear_worst)} checks_ok={int(ok)}")
