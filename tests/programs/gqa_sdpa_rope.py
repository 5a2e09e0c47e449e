"""Llama/Mistral grouped-query attention with RoPE and a KV cache (meta-llama/llama model.py, HF modeling_llama).

Meta's ``precompute_freqs_cis`` by ``torch.outer`` and ``torch.polar(torch.ones_like(freqs), freqs)``,
``reshape_for_broadcast`` and ``apply_rotary_emb`` by ``torch.view_as_complex(xq.float().reshape(*xq.shape[:-1],
-1, 2))`` and ``torch.view_as_real(xq_ * freqs_cis).flatten(3)``; HF's ``rotate_half`` (``torch.cat((-x2, x1),
dim=-1)``) with ``cos``/``sin`` from ``torch.cat((freqs, freqs), dim=-1)`` on the weights permuted as HF's
convert_llama_weights_to_hf does (must equal the complex form, values and gradients); the NTK-aware base
``base * alpha ** (dim / (dim - 2))`` and HF's dynamic NTK formula; ``repeat_kv`` by ``x[:, :, :, None,
:].expand(bs, slen, n_kv_heads, n_rep, head_dim).reshape(...)``; attention three ways:
``F.scaled_dot_product_attention(q, k, v, is_causal=True)`` on repeated heads, ``enable_gqa=True`` on the grouped
heads and the manual ``torch.triu(torch.full((s, s), float("-inf")), diagonal=1)`` + ``torch.hstack`` mask with
``F.softmax(scores.float(), dim=-1).type_as(xq)`` (all must agree, gradients too); Meta's ``cache_k``/``cache_v``
filled by slice assignment ``self.cache_k[:bsz, start_pos : start_pos + seqlen] = xk`` during prefill and
one-token decoding (cached logits must equal the full forward); a tiny LM trained by AdamW on sequences
counting by a per-sequence step, then greedy decoding with the cache against recomputation.
"""

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


@dataclass
class ModelArgs:
    dim: int = 32
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    vocab_size: int = 16
    multiple_of: int = 16
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_batch_size: int = 8
    max_seq_len: int = 32
    attn_impl: str = "sdpa"


def precompute_freqs_cis(dim: int, end: int, theta: float = 10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device, dtype=torch.float32)
    freqs = torch.outer(t, freqs)
    freqs_cis = torch.polar(torch.ones_like(freqs), freqs)  # complex64
    return freqs_cis


def ntk_theta(theta, dim, alpha):
    """The NTK-aware scaled base (bloc97): stretch the low frequencies, keep the high ones."""
    return theta * alpha ** (dim / (dim - 2))


def dynamic_ntk_base(base, dim, seq_len, max_position_embeddings, scaling_factor):
    """HF LlamaDynamicNTKScalingRotaryEmbedding's base for a sequence longer than training."""
    return base * (
        (scaling_factor * seq_len / max_position_embeddings) - (scaling_factor - 1)
    ) ** (dim / (dim - 2))


def reshape_for_broadcast(freqs_cis: torch.Tensor, x: torch.Tensor):
    ndim = x.ndim
    assert 0 <= 1 < ndim
    assert freqs_cis.shape == (x.shape[1], x.shape[-1])
    shape = [d if i == 1 or i == ndim - 1 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(*shape)


def apply_rotary_emb(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


# ---- the Hugging Face form: half-split rotation on permuted weights ----
class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, dim, max_position_embeddings=2048, base=10000):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @torch.no_grad()
    def forward(self, x, position_ids):
        inv_freq_expanded = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos()
        sin = emb.sin()
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def rotate_half(x):
    """Rotates half the hidden dims of the input."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


def permute(w, n_heads, dim1, dim2):
    """convert_llama_weights_to_hf.py: interleaved pairs -> the two halves."""
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """torch.repeat_interleave(x, dim=2, repeats=n_rep)"""
    bs, slen, n_kv_heads, head_dim = x.shape
    if n_rep == 1:
        return x
    return (
        x[:, :, :, None, :]
        .expand(bs, slen, n_kv_heads, n_rep, head_dim)
        .reshape(bs, slen, n_kv_heads * n_rep, head_dim)
    )


class RMSNorm(torch.nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        output = self._norm(x.float()).type_as(x)
        return output * self.weight


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_kv_heads = args.n_heads if args.n_kv_heads is None else args.n_kv_heads
        self.n_local_heads = args.n_heads
        self.n_local_kv_heads = self.n_kv_heads
        self.n_rep = self.n_local_heads // self.n_local_kv_heads
        self.head_dim = args.dim // args.n_heads
        self.attn_impl = args.attn_impl

        self.wq = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * self.head_dim, args.dim, bias=False)

        self.cache_k = torch.zeros(
            (args.max_batch_size, args.max_seq_len, self.n_local_kv_heads, self.head_dim)
        )
        self.cache_v = torch.zeros(
            (args.max_batch_size, args.max_seq_len, self.n_local_kv_heads, self.head_dim)
        )

    def forward(self, x, start_pos, freqs_cis, mask, use_cache=False):
        bsz, seqlen, _ = x.shape
        xq, xk, xv = self.wq(x), self.wk(x), self.wv(x)

        xq = xq.view(bsz, seqlen, self.n_local_heads, self.head_dim)
        xk = xk.view(bsz, seqlen, self.n_local_kv_heads, self.head_dim)
        xv = xv.view(bsz, seqlen, self.n_local_kv_heads, self.head_dim)

        xq, xk = apply_rotary_emb(xq, xk, freqs_cis=freqs_cis)

        if use_cache:
            self.cache_k = self.cache_k.to(xq)
            self.cache_v = self.cache_v.to(xq)

            self.cache_k[:bsz, start_pos: start_pos + seqlen] = xk
            self.cache_v[:bsz, start_pos: start_pos + seqlen] = xv

            keys = self.cache_k[:bsz, : start_pos + seqlen]
            values = self.cache_v[:bsz, : start_pos + seqlen]
        else:
            keys, values = xk, xv

        if self.attn_impl == "gqa" and not use_cache:
            # grouped heads straight into SDPA: no repeat_kv copy
            output = F.scaled_dot_product_attention(
                xq.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2), is_causal=True, enable_gqa=True
            )
            output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
            return self.wo(output)

        keys = repeat_kv(keys, self.n_rep)  # (bs, cache_len + seqlen, n_local_heads, head_dim)
        values = repeat_kv(values, self.n_rep)

        xq = xq.transpose(1, 2)  # (bs, n_local_heads, seqlen, head_dim)
        keys = keys.transpose(1, 2)
        values = values.transpose(1, 2)
        if self.attn_impl == "sdpa" and not use_cache:
            output = F.scaled_dot_product_attention(xq, keys, values, is_causal=True)
        else:
            scores = torch.matmul(xq, keys.transpose(2, 3)) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores + mask  # (bs, n_local_heads, seqlen, cache_len + seqlen)
            scores = F.softmax(scores.float(), dim=-1).type_as(xq)
            output = torch.matmul(scores, values)  # (bs, n_local_heads, seqlen, head_dim)
        output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.wo(output)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, multiple_of: int):
        super().__init__()
        hidden_dim = int(2 * hidden_dim / 3)
        hidden_dim = multiple_of * ((hidden_dim + multiple_of - 1) // multiple_of)
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, layer_id: int, args: ModelArgs):
        super().__init__()
        self.n_heads = args.n_heads
        self.dim = args.dim
        self.head_dim = args.dim // args.n_heads
        self.attention = Attention(args)
        self.feed_forward = FeedForward(dim=args.dim, hidden_dim=4 * args.dim, multiple_of=args.multiple_of)
        self.layer_id = layer_id
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(self, x, start_pos, freqs_cis, mask, use_cache=False):
        h = x + self.attention(self.attention_norm(x), start_pos, freqs_cis, mask, use_cache)
        out = h + self.feed_forward(self.ffn_norm(h))
        return out


class Transformer(nn.Module):
    def __init__(self, params: ModelArgs):
        super().__init__()
        self.params = params
        self.vocab_size = params.vocab_size
        self.n_layers = params.n_layers

        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = torch.nn.ModuleList()
        for layer_id in range(params.n_layers):
            self.layers.append(TransformerBlock(layer_id, params))
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)
        self.set_theta(params.rope_theta)

    def set_theta(self, theta):
        self.freqs_cis = precompute_freqs_cis(
            self.params.dim // self.params.n_heads, self.params.max_seq_len * 2, theta
        )

    def set_attn_impl(self, impl):
        for layer in self.layers:
            layer.attention.attn_impl = impl

    def forward(self, tokens: torch.Tensor, start_pos: int = 0, use_cache: bool = False):
        _bsz, seqlen = tokens.shape
        h = self.tok_embeddings(tokens)
        self.freqs_cis = self.freqs_cis.to(h.device)
        freqs_cis = self.freqs_cis[start_pos: start_pos + seqlen]

        mask = None
        if seqlen > 1:
            mask = torch.full((seqlen, seqlen), float("-inf"), device=tokens.device)
            mask = torch.triu(mask, diagonal=1)
            # When performing key-value caching, we compute the attention scores
            # only for the new sequence. Thus, the matrix of scores is of size
            # (seqlen, cache_len + seqlen), and the only masked entries are (i, j) for
            # j > cache_len + i, since row i corresponds to token cache_len + i.
            mask = torch.hstack([torch.zeros((seqlen, start_pos), device=tokens.device), mask]).type_as(h)

        for layer in self.layers:
            h = layer(h, start_pos, freqs_cis, mask, use_cache)
        h = self.norm(h)
        output = self.output(h).float()
        return output


def make_batch(n, seq_len):
    """Each row counts mod VOCAB from a random start by a random step in {1, 2, 3}."""
    start = rng.integers(0, 16, size=(n, 1))
    step = rng.integers(1, 4, size=(n, 1))
    seq = (start + step * np.arange(seq_len + 1)[None, :]) % 16
    seq = torch.from_numpy(seq.astype(np.int64))
    return seq[:, :-1].contiguous(), seq[:, 1:].contiguous()


def max_diff(a, b):
    return (a - b).abs().max().item()


# ---- 1. the complex rotation against HF's rotate_half on permuted weights ----
head_dim, n_heads, seqlen = 8, 4, 12
freqs_cis = precompute_freqs_cis(head_dim, seqlen)
print(f"freqs_cis dtype {freqs_cis.dtype} shape {tuple(freqs_cis.shape)} |freqs_cis| - 1 max "
      f"{max_diff(freqs_cis.abs(), torch.ones(())):.2e}")
x = torch.randn(2, seqlen, n_heads * head_dim)
wq = torch.randn(n_heads * head_dim, n_heads * head_dim, requires_grad=True)
wk = torch.randn(n_heads * head_dim, n_heads * head_dim, requires_grad=True)
xq = (x @ wq.T).view(2, seqlen, n_heads, head_dim)
xk = (x @ wk.T).view(2, seqlen, n_heads, head_dim)
xq_out, xk_out = apply_rotary_emb(xq, xk, freqs_cis)
scores_meta = torch.matmul(xq_out.transpose(1, 2), xk_out.transpose(1, 2).transpose(2, 3))

wq_hf = permute(wq, n_heads, n_heads * head_dim, n_heads * head_dim)
wk_hf = permute(wk, n_heads, n_heads * head_dim, n_heads * head_dim)
q_hf = (x @ wq_hf.T).view(2, seqlen, n_heads, head_dim).transpose(1, 2)
k_hf = (x @ wk_hf.T).view(2, seqlen, n_heads, head_dim).transpose(1, 2)
rotary = LlamaRotaryEmbedding(head_dim)
position_ids = torch.arange(seqlen).unsqueeze(0).expand(2, -1)
cos, sin = rotary(q_hf, position_ids)
q_hf, k_hf = apply_rotary_pos_emb(q_hf, k_hf, cos, sin)
scores_hf = torch.matmul(q_hf, k_hf.transpose(2, 3))
rope_forms_diff = max_diff(scores_meta, scores_hf) / scores_meta.abs().max().item()
g_meta = torch.autograd.grad(scores_meta.square().mean(), (wq, wk))
g_hf = torch.autograd.grad(scores_hf.square().mean(), (wq, wk))
rope_grad_diff = max(max_diff(a, b) / a.abs().max().item() for a, b in zip(g_meta, g_hf))
print(f"rotate_half vs complex: scores rel diff {rope_forms_diff:.2e} grads rel diff {rope_grad_diff:.2e}")

# rotation keeps norms and the scores depend on relative positions only
q1 = torch.randn(1, 1, 1, head_dim)
k1 = torch.randn(1, 1, 1, head_dim)
long_freqs = precompute_freqs_cis(head_dim, 64)
ntk_freqs = precompute_freqs_cis(head_dim, 64, ntk_theta(10000.0, head_dim, 4.0))
rel_errs = []
for table in (long_freqs, ntk_freqs):
    dots = []
    for m, n in ((5, 2), (20, 17), (61, 58)):
        qm, _ = apply_rotary_emb(q1, q1, table[m:m + 1])
        kn, _ = apply_rotary_emb(k1, k1, table[n:n + 1])
        dots.append((qm * kn).sum().item())
    rel_errs.append(max(abs(d - dots[0]) for d in dots) / abs(dots[0]))
print(f"relative-position invariance: plain {rel_errs[0]:.2e} ntk {rel_errs[1]:.2e}")
ntk_angle_ratio = (ntk_freqs[1].angle()[-1] / long_freqs[1].angle()[-1]).item()
dyn_base = dynamic_ntk_base(10000.0, head_dim, 64, 32, 2.0)
print(f"ntk theta(alpha=4) {ntk_theta(10000.0, head_dim, 4.0):.1f} lowest-frequency ratio {ntk_angle_ratio:.4f} "
      f"dynamic base(seq 64, max 32, factor 2) {dyn_base:.1f} alpha=1 unchanged "
      f"{max_diff(precompute_freqs_cis(head_dim, 8, ntk_theta(10000.0, head_dim, 1.0)), long_freqs[:8]):.1e}")

# ---- 2. the model; SDPA, enable_gqa and the manual mask agree ----
args = ModelArgs()
model = Transformer(args)
tokens, targets = make_batch(4, 16)
outs, grads = {}, {}
for impl in ("sdpa", "gqa", "manual"):
    model.set_attn_impl(impl)
    model.zero_grad()
    logits = model(tokens)
    F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1)).backward()
    outs[impl] = logits.detach()
    grads[impl] = torch.cat([p.grad.flatten() for p in model.parameters()])
attn_diff = max(max_diff(outs["sdpa"], outs[k]) for k in ("gqa", "manual"))
attn_grad_diff = max(max_diff(grads["sdpa"], grads[k]) for k in ("gqa", "manual")) / grads["sdpa"].abs().max().item()
print(f"sdpa vs enable_gqa vs manual: logits max diff {attn_diff:.2e} grad rel diff {attn_grad_diff:.2e}")
model.zero_grad()

# ---- 3. training ----
model.set_attn_impl("sdpa")
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
model.train()
first_loss = None
for step in range(120):
    xb, yb = make_batch(16, 16)
    logits = model(xb)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), yb.view(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if first_loss is None:
        first_loss = loss.item()
    if step % 30 == 0 or step == 119:
        print(f"step {step} loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    xv, yv = make_batch(32, 16)
    logits = model(xv)
    val_loss = F.cross_entropy(logits.view(-1, logits.size(-1)), yv.view(-1)).item()
    # the last half of each row is predictable from the step seen in the first half
    val_acc = (logits[:, 8:].argmax(-1) == yv[:, 8:]).float().mean().item()
print(f"val loss {val_loss:.4f} acc(second half) {val_acc:.4f}")


# ---- 4. the KV cache: prefill + one-token decoding == the full forward ----
@torch.inference_mode()
def generate_cached(model, prompt, max_gen_len):
    bsz, prompt_len = prompt.shape
    total_len = prompt_len + max_gen_len
    tokens = torch.full((bsz, total_len), 0, dtype=torch.long)
    tokens[:, :prompt_len] = prompt
    prev_pos = 0
    step_logits = []
    for cur_pos in range(prompt_len, total_len):
        logits = model.forward(tokens[:, prev_pos:cur_pos], prev_pos, use_cache=True)
        step_logits.append(logits[:, -1])
        next_token = torch.argmax(logits[:, -1], dim=-1)
        tokens[:, cur_pos] = next_token
        prev_pos = cur_pos
    return tokens, torch.stack(step_logits, dim=1)


@torch.inference_mode()
def generate_full(model, prompt, max_gen_len):
    tokens = prompt
    for _ in range(max_gen_len):
        logits = model(tokens)
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tokens


prompt, _ = make_batch(6, 6)
gen_cached, cached_logits = generate_cached(model, prompt, 14)
gen_full = generate_full(model, prompt, 14)
with torch.no_grad():
    full_logits = model(gen_cached[:, :-1])[:, prompt.shape[1] - 1:]
cache_diff = max_diff(cached_logits, full_logits)
same_tokens = bool(torch.equal(gen_cached, gen_full))
continues = (gen_cached[:, 6:] == (gen_cached[:, 5:-1] + (prompt[:, 1:2] - prompt[:, :1]) % 16) % 16)
print(f"cache_k shape {tuple(model.layers[0].attention.cache_k.shape)} cached vs full logits max diff "
      f"{cache_diff:.2e} same greedy tokens {same_tokens}")
print(f"greedy continuation follows the step: {continues.float().mean().item():.4f}")

# longer contexts: plain RoPE past the trained length and the NTK-scaled base
with torch.no_grad():
    xl, yl = make_batch(16, 40)
    long_plain = F.cross_entropy(model(xl).flatten(0, 1), yl.flatten()).item()
    model.set_theta(ntk_theta(args.rope_theta, args.dim // args.n_heads, 2.0))
    long_ntk = F.cross_entropy(model(xl).flatten(0, 1), yl.flatten()).item()
print(f"length 40 loss: plain rope {long_plain:.4f} ntk alpha=2 {long_ntk:.4f}")

ok = (rope_forms_diff < 1e-5 and rope_grad_diff < 1e-5 and max(rel_errs) < 1e-4 and attn_diff < 1e-5
      and attn_grad_diff < 1e-4 and cache_diff < 1e-4 and same_tokens)
print(f"FINAL first_loss={first_loss:.4f} val_loss={val_loss:.4f} val_acc={val_acc:.4f} "
      f"follow={continues.float().mean().item():.4f} long_plain={long_plain:.4f} long_ntk={long_ntk:.4f} "
      f"checks_ok={int(ok)}")
