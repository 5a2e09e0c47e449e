"""DeepSeek-V2 multi-head latent attention (deepseek-ai/DeepSeek-V2/V3 ``inference/model.py`` idioms).

``MLA`` with a low-rank query (``wq_a`` -> ``RMSNorm`` by ``F.rms_norm`` -> ``wq_b``), the KV compression ``wkv_a``
split by ``torch.split(kv, [kv_lora_rank, qk_rope_head_dim], dim=-1)`` into the latent ``c_kv`` and one decoupled
RoPE key shared by every head (``k_pe.unsqueeze(2)`` then ``expand``), ``kv_norm`` on the latent, the up-projection
``wkv_b`` used two ways: the naive path (``wkv_b(kv_norm(kv)).view(bsz, seqlen, n_heads, qk_nope + v)``, per-head
``k_cache``/``v_cache``) and the weight-absorbed path (``wkv_b.weight.view(n_heads, -1, kv_lora_rank)``,
``torch.einsum("bshd,hdc->bshc", q_nope, wkv_b[:, :qk_nope_head_dim])``, scores against the cached latent plus the
RoPE scores, values read from the latent and lifted by ``wkv_b[:, -v_head_dim:]``); RoPE by
``torch.view_as_complex(x.float().view(*x.shape[:-1], -1, 2))``, ``torch.polar`` and ``torch.view_as_real(...)
.flatten(3)``; the causal mask ``torch.full((seqlen, seqlen), float("-inf")).triu_(1)`` added as
``scores += mask.unsqueeze(1)``; ``scores.softmax(dim=-1, dtype=torch.float32).type_as(x)``; caches registered
``persistent=False`` and filled step by step under ``@torch.inference_mode()``. Checks: the absorbed path equals the
naive one (logits and gradients, through ``torch.autograd.grad``), incremental decoding with either cache equals
the full forward, the latent cache is a quarter of MHA's, and a tiny LM learns a copy task.
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

attn_impl = "naive"  # the repo's module-level switch: "naive" or "absorb"


@dataclass
class ModelArgs:
    max_batch_size: int = 8
    max_seq_len: int = 16
    vocab_size: int = 12
    dim: int = 32
    inter_dim: int = 64
    n_layers: int = 2
    n_heads: int = 4
    q_lora_rank: int = 16
    kv_lora_rank: int = 16
    qk_nope_head_dim: int = 8
    qk_rope_head_dim: int = 4
    v_head_dim: int = 8
    rope_theta: float = 10000.0


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor):
        return F.rms_norm(x, (self.dim,), self.weight, self.eps)


def precompute_freqs_cis(args: ModelArgs) -> torch.Tensor:
    dim = args.qk_rope_head_dim
    freqs = 1.0 / (args.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    t = torch.arange(args.max_seq_len)
    freqs = torch.outer(t, freqs)
    freqs_cis = torch.polar(torch.ones_like(freqs), freqs)
    return freqs_cis


def apply_rotary_emb(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    dtype = x.dtype
    x = torch.view_as_complex(x.float().view(*x.shape[:-1], -1, 2))
    freqs_cis = freqs_cis.view(1, x.size(1), 1, x.size(-1))
    y = torch.view_as_real(x * freqs_cis).flatten(3)
    return y.to(dtype)


class MLA(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.dim = args.dim
        self.n_heads = args.n_heads
        self.n_local_heads = args.n_heads
        self.q_lora_rank = args.q_lora_rank
        self.kv_lora_rank = args.kv_lora_rank
        self.qk_nope_head_dim = args.qk_nope_head_dim
        self.qk_rope_head_dim = args.qk_rope_head_dim
        self.qk_head_dim = args.qk_nope_head_dim + args.qk_rope_head_dim
        self.v_head_dim = args.v_head_dim

        self.wq_a = nn.Linear(self.dim, self.q_lora_rank, bias=False)
        self.q_norm = RMSNorm(self.q_lora_rank)
        self.wq_b = nn.Linear(self.q_lora_rank, self.n_heads * self.qk_head_dim, bias=False)
        self.wkv_a = nn.Linear(self.dim, self.kv_lora_rank + self.qk_rope_head_dim, bias=False)
        self.kv_norm = RMSNorm(self.kv_lora_rank)
        self.wkv_b = nn.Linear(self.kv_lora_rank, self.n_heads * (self.qk_nope_head_dim + self.v_head_dim), bias=False)
        self.wo = nn.Linear(self.n_heads * self.v_head_dim, self.dim, bias=False)
        self.softmax_scale = self.qk_head_dim ** -0.5

        # both caches, so one model can be run either way (the repo registers the one attn_impl needs)
        self.register_buffer("k_cache", torch.zeros(args.max_batch_size, args.max_seq_len, self.n_local_heads,
                                                    self.qk_head_dim), persistent=False)
        self.register_buffer("v_cache", torch.zeros(args.max_batch_size, args.max_seq_len, self.n_local_heads,
                                                    self.v_head_dim), persistent=False)
        self.register_buffer("kv_cache", torch.zeros(args.max_batch_size, args.max_seq_len, self.kv_lora_rank),
                             persistent=False)
        self.register_buffer("pe_cache", torch.zeros(args.max_batch_size, args.max_seq_len, self.qk_rope_head_dim),
                             persistent=False)

    def forward(self, x: torch.Tensor, start_pos: int, freqs_cis: torch.Tensor, mask, use_cache: bool = False):
        bsz, seqlen, _ = x.size()
        end_pos = start_pos + seqlen
        q = self.wq_b(self.q_norm(self.wq_a(x)))
        q = q.view(bsz, seqlen, self.n_local_heads, self.qk_head_dim)
        q_nope, q_pe = torch.split(q, [self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)
        q_pe = apply_rotary_emb(q_pe, freqs_cis)
        kv = self.wkv_a(x)
        kv, k_pe = torch.split(kv, [self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        k_pe = apply_rotary_emb(k_pe.unsqueeze(2), freqs_cis)
        if attn_impl == "naive":
            q = torch.cat([q_nope, q_pe], dim=-1)
            kv = self.wkv_b(self.kv_norm(kv))
            kv = kv.view(bsz, seqlen, self.n_local_heads, self.qk_nope_head_dim + self.v_head_dim)
            k_nope, v = torch.split(kv, [self.qk_nope_head_dim, self.v_head_dim], dim=-1)
            k = torch.cat([k_nope, k_pe.expand(-1, -1, self.n_local_heads, -1)], dim=-1)
            if use_cache:
                self.k_cache[:bsz, start_pos:end_pos] = k
                self.v_cache[:bsz, start_pos:end_pos] = v
                k, v = self.k_cache[:bsz, :end_pos], self.v_cache[:bsz, :end_pos]
            scores = torch.einsum("bshd,bthd->bsht", q, k) * self.softmax_scale
        else:
            wkv_b = self.wkv_b.weight
            wkv_b = wkv_b.view(self.n_local_heads, -1, self.kv_lora_rank)
            q_nope = torch.einsum("bshd,hdc->bshc", q_nope, wkv_b[:, :self.qk_nope_head_dim])
            kv_c, pe = self.kv_norm(kv), k_pe.squeeze(2)
            if use_cache:
                self.kv_cache[:bsz, start_pos:end_pos] = kv_c
                self.pe_cache[:bsz, start_pos:end_pos] = pe
                kv_c, pe = self.kv_cache[:bsz, :end_pos], self.pe_cache[:bsz, :end_pos]
            scores = (torch.einsum("bshc,btc->bsht", q_nope, kv_c) +
                      torch.einsum("bshr,btr->bsht", q_pe, pe)) * self.softmax_scale
        if mask is not None:
            scores += mask.unsqueeze(1)
        scores = scores.softmax(dim=-1, dtype=torch.float32).type_as(x)
        if attn_impl == "naive":
            x = torch.einsum("bsht,bthd->bshd", scores, v)
        else:
            x = torch.einsum("bsht,btc->bshc", scores, kv_c)
            x = torch.einsum("bshc,hdc->bshd", x, wkv_b[:, -self.v_head_dim:])
        x = self.wo(x.flatten(2))
        return x


class MLP(nn.Module):
    def __init__(self, dim: int, inter_dim: int):
        super().__init__()
        self.w1 = nn.Linear(dim, inter_dim, bias=False)
        self.w2 = nn.Linear(inter_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, inter_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, layer_id: int, args: ModelArgs):
        super().__init__()
        self.attn = MLA(args)
        self.ffn = MLP(args.dim, args.inter_dim)
        self.attn_norm = RMSNorm(args.dim)
        self.ffn_norm = RMSNorm(args.dim)

    def forward(self, x, start_pos, freqs_cis, mask, use_cache=False):
        x = x + self.attn(self.attn_norm(x), start_pos, freqs_cis, mask, use_cache)
        x = x + self.ffn(self.ffn_norm(x))
        return x


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.max_seq_len = args.max_seq_len
        self.embed = nn.Embedding(args.vocab_size, args.dim)
        self.layers = torch.nn.ModuleList()
        for layer_id in range(args.n_layers):
            self.layers.append(Block(layer_id, args))
        self.norm = RMSNorm(args.dim)
        self.head = nn.Linear(args.dim, args.vocab_size, bias=False)
        self.register_buffer("freqs_cis", precompute_freqs_cis(args), persistent=False)

    def forward(self, tokens: torch.Tensor, start_pos: int = 0, use_cache: bool = False):
        seqlen = tokens.size(1)
        h = self.embed(tokens)
        freqs_cis = self.freqs_cis[start_pos:start_pos + seqlen]
        mask = None
        if seqlen > 1:
            mask = torch.full((seqlen, seqlen), float("-inf"), device=tokens.device).triu_(1)
        for layer in self.layers:
            h = layer(h, start_pos, freqs_cis, mask, use_cache)
        return self.head(self.norm(h))

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, start_pos: int = 0):
        # the repo's inference forward: fills the caches, returns the last position's logits
        return self.forward(tokens, start_pos, use_cache=True)[:, -1]


args = ModelArgs()
SEP = 10
HALF = 6


def make_batch(n):
    x = rng.integers(0, 10, size=(n, HALF))
    seq = np.concatenate([x, np.full((n, 1), SEP), x], axis=1)
    tokens = torch.from_numpy(seq[:, :-1].copy())
    targets = torch.from_numpy(seq[:, 1:].copy())
    targets[:, :HALF] = -100  # only the copied half is predictable
    return tokens, targets


def max_diff(a, b):
    return (a - b).abs().max().item()


model = Transformer(args)
print(f"parameters {sum(p.numel() for p in model.parameters())} state_dict keys {len(model.state_dict())} "
      f"(caches not persistent: {not any('cache' in k for k in model.state_dict())})")

# 1. the absorbed path equals the naive one on a prefill, values and gradients
tokens, targets = make_batch(4)
params = [p for p in model.parameters()]
outs = {}
for impl in ("naive", "absorb"):
    attn_impl = impl
    logits = model(tokens)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100)
    grads = torch.autograd.grad(loss, params)
    outs[impl] = (logits.detach(), loss.item(), grads)
absorb_diff = max_diff(outs["naive"][0], outs["absorb"][0])
absorb_grad_diff = max(max_diff(a, b) for a, b in zip(outs["naive"][2], outs["absorb"][2]))
print(f"absorbed vs naive: logits max diff {absorb_diff:.2e} grads max diff {absorb_grad_diff:.2e}")
attn_impl = "naive"

# 2. the cache sizes: one latent + one shared RoPE key per token against per-head keys and values
mla = model.layers[0].attn
mla_numel = mla.kv_cache.numel() + mla.pe_cache.numel()
mha_numel = mla.k_cache.numel() + mla.v_cache.numel()
cache_ratio = mla_numel / mha_numel
print(f"cache elements per layer: latent {mla_numel} mha {mha_numel} ratio {cache_ratio:.4f} "
      f"(formula {(args.kv_lora_rank + args.qk_rope_head_dim) / (args.n_heads * (args.qk_nope_head_dim + args.qk_rope_head_dim + args.v_head_dim)):.4f})")

# 3. training on the copy task
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01, betas=(0.9, 0.95))
first_loss = None
for step in range(1, 241):
    tokens, targets = make_batch(32)
    logits = model(tokens)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if first_loss is None:
        first_loss = loss.item()
    if step % 60 == 0:
        print(f"step {step} loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    tokens, targets = make_batch(64)
    logits = model(tokens)
    val_loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100).item()
print(f"val loss {val_loss:.4f}")


# 4. incremental decoding with each cache against the full forward, greedy copying
def generate(model, prompt, max_new_tokens):
    tokens = prompt.clone()
    step_logits = []
    prev_pos = 0
    for cur_pos in range(prompt.size(1), prompt.size(1) + max_new_tokens):
        logits = model.decode(tokens[:, prev_pos:cur_pos], prev_pos)
        step_logits.append(logits)
        next_token = logits.argmax(dim=-1)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        prev_pos = cur_pos
    return tokens, torch.stack(step_logits, dim=1)


prompt_tokens, _ = make_batch(8)
prompt = prompt_tokens[:, :HALF + 1]
answer = prompt_tokens[:, :HALF]
decoded = {}
for impl in ("naive", "absorb"):
    attn_impl = impl
    out, step_logits = generate(model, prompt, HALF)
    decoded[impl] = (out, step_logits)
attn_impl = "naive"
with torch.no_grad():
    full_logits = model(decoded["naive"][0][:, :-1])[:, HALF:]
cache_naive_diff = max_diff(decoded["naive"][1], full_logits)
cache_absorb_diff = max_diff(decoded["absorb"][1], full_logits)
same_tokens = bool(torch.equal(decoded["naive"][0], decoded["absorb"][0]))
copy_acc = (decoded["absorb"][0][:, HALF + 1:] == answer).float().mean().item()
print(f"cached decoding vs full forward: naive {cache_naive_diff:.2e} absorb {cache_absorb_diff:.2e} "
      f"same greedy tokens {same_tokens}")
print(f"greedy copy accuracy {copy_acc:.4f} (chance {1 / 10:.4f}) first loss vs ln(10) {math.log(10):.4f}")

ok = (absorb_diff < 1e-4 and absorb_grad_diff < 1e-4 and cache_naive_diff < 1e-4 and cache_absorb_diff < 1e-4
      and same_tokens)
print(f"FINAL first_loss={first_loss:.4f} val_loss={val_loss:.4f} copy_acc={copy_acc:.4f} "
      f"cache_ratio={cache_ratio:.4f} checks_ok={int(ok)}")
