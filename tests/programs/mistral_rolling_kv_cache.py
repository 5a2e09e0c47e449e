"""mistralai/mistral-inference's sliding-window attention with a rolling buffer KV cache, at tiny sizes.

``ModelArgs`` as a dataclass (``sliding_window``, ``n_kv_heads``), ``repeat_kv`` by
``torch.repeat_interleave(keys, repeats=repeats, dim=dim)`` for grouped-query attention,
``precompute_freqs_cis`` by ``torch.polar(torch.ones_like(freqs), freqs)`` indexed by ``positions``,
``apply_rotary_emb`` through ``torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))`` and
``torch.view_as_real(xq_ * freqs_cis).flatten(3)``, the banded causal mask of one_file_ref.py
(``torch.full`` of ones, ``torch.tril(tensor, diagonal=0)``, ``torch.triu(mask, diagonal=-window)``,
``torch.log``), ``scores += mask[None, None, ...]`` and ``softmax(scores.float())``; the rotating buffer
cache of cache.py written at ``positions % sliding_window`` by ``index_copy_`` (chunked prefill) and by
``scatter_`` of a ``repeat``-ed index (one token at a time), read back in order by ``unrotate``
(``torch.roll`` against the repository's ``torch.cat([cache[position:], cache[:position]])``), chunked
prefill of a prompt longer than the window with a mask over cached and new key positions.

A tiny LM is trained with the window mask on an order-2 Markov chain over 16 tokens; generation with
the rolling cache (chunked prefill, then greedy decoding past several wraps of the buffer) must give
the same logits as recomputing the whole sequence with the window mask at every step.
"""
# ruff: noqa: UP045  (the repository's Optional[...] spelling)

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB = 16
TABLE = rng.integers(0, VOCAB, size=(VOCAB, VOCAB))


def markov_stream(n):
    out = list(rng.integers(0, VOCAB, size=2))
    for _ in range(n - 2):
        if rng.random() < 0.1:
            out.append(int(rng.integers(0, VOCAB)))
        else:
            out.append(int(TABLE[out[-2], out[-1]]))
    return np.array(out, dtype=np.int64)


@dataclass
class ModelArgs:
    dim: int
    n_layers: int
    head_dim: int
    hidden_dim: int
    n_heads: int
    n_kv_heads: int
    norm_eps: float
    vocab_size: int
    sliding_window: int
    max_batch_size: int = 0
    rope_theta: float = 10000.0


def repeat_kv(keys: torch.Tensor, values: torch.Tensor, repeats: int, dim: int):
    keys = torch.repeat_interleave(keys, repeats=repeats, dim=dim)
    values = torch.repeat_interleave(values, repeats=repeats, dim=dim)
    return keys, values


def precompute_freqs_cis(dim: int, end: int, theta: float = 10000.0) -> torch.Tensor:
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    return torch.polar(torch.ones_like(freqs), freqs)  # complex64


def apply_rotary_emb(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = freqs_cis[:, None, :]
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


def unrotate(cache: torch.Tensor, seqlen: int) -> torch.Tensor:
    # cache.py: (W, H, D) rotating buffer back into position order
    assert cache.ndim == 3
    position = seqlen % cache.shape[0]
    if seqlen < cache.shape[0]:
        return cache[:seqlen]
    elif position == 0:
        return cache
    else:
        return torch.cat([cache[position:], cache[:position]], dim=0)


def unrotate_roll(cache: torch.Tensor, seqlen: int) -> torch.Tensor:
    if seqlen < cache.shape[0]:
        return cache[:seqlen]
    return torch.roll(cache, shifts=-(seqlen % cache.shape[0]), dims=0)


class RotatingBufferCache:
    """One (B, W, H_kv, D) buffer per layer; ``seqlen`` tokens seen so far."""

    def __init__(self, n_layers, max_batch_size, sliding_window, n_kv_heads, head_dim):
        self.sliding_window = sliding_window
        self.cache_k = torch.empty((n_layers, max_batch_size, sliding_window, n_kv_heads, head_dim))
        self.cache_v = torch.empty((n_layers, max_batch_size, sliding_window, n_kv_heads, head_dim))
        self.seqlen = 0
        self.roll_err = 0.0

    def ordered(self, layer_id, bsz):
        ks, vs = [], []
        for b in range(bsz):
            k_cat = unrotate(self.cache_k[layer_id, b], self.seqlen)
            k_roll = unrotate_roll(self.cache_k[layer_id, b], self.seqlen)
            self.roll_err = max(self.roll_err, (k_cat - k_roll).abs().max().item() if k_cat.numel() else 0.0)
            ks.append(k_roll)
            vs.append(unrotate_roll(self.cache_v[layer_id, b], self.seqlen))
        return torch.stack(ks), torch.stack(vs)

    def write_chunk(self, layer_id, xk, xv, positions):
        # chunked prefill: the last W positions go to positions % W
        W = self.sliding_window
        idx = positions[-W:] % W
        self.cache_k[layer_id].index_copy_(1, idx, xk[:, -W:])
        self.cache_v[layer_id].index_copy_(1, idx, xv[:, -W:])

    def write_scatter(self, layer_id, xk, xv, positions):
        # one_file_ref.py
        bsz, _, n_kv_heads, head_dim = xk.shape
        scatter_pos = (positions[-self.sliding_window:] % self.sliding_window)[None, :, None, None]
        scatter_pos = scatter_pos.repeat(bsz, 1, n_kv_heads, head_dim)
        self.cache_k[layer_id, :bsz].scatter_(dim=1, index=scatter_pos, src=xk[:, -self.sliding_window:])
        self.cache_v[layer_id, :bsz].scatter_(dim=1, index=scatter_pos, src=xv[:, -self.sliding_window:])


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.n_heads = args.n_heads
        self.n_kv_heads = args.n_kv_heads
        self.repeats = self.n_heads // self.n_kv_heads
        self.sliding_window = args.sliding_window
        self.scale = args.head_dim ** -0.5
        self.wq = nn.Linear(args.dim, args.n_heads * args.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, args.n_kv_heads * args.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, args.n_kv_heads * args.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * args.head_dim, args.dim, bias=False)

    def forward(self, x, freqs_cis, positions, mask, cache=None, layer_id=0):
        bsz, seqlen, _ = x.shape
        xq, xk, xv = self.wq(x), self.wk(x), self.wv(x)
        xq = xq.view(bsz, seqlen, self.n_heads, self.args.head_dim)
        xk = xk.view(bsz, seqlen, self.n_kv_heads, self.args.head_dim)
        xv = xv.view(bsz, seqlen, self.n_kv_heads, self.args.head_dim)
        xq, xk = apply_rotary_emb(xq, xk, freqs_cis=freqs_cis)

        if cache is None:
            key, value = xk, xv
        else:
            past_k, past_v = cache.ordered(layer_id, bsz)
            key = torch.cat([past_k, xk], dim=1)
            value = torch.cat([past_v, xv], dim=1)
            if seqlen == 1:
                cache.write_scatter(layer_id, xk, xv, positions)
            else:
                cache.write_chunk(layer_id, xk, xv, positions)
        key, value = repeat_kv(key, value, self.repeats, dim=2)

        query = xq.transpose(1, 2)
        key = key.transpose(1, 2)
        value = value.transpose(1, 2)
        # scores : [bsz, n_heads, seqlen, keys]
        scores = torch.matmul(query, key.transpose(2, 3)) * self.scale
        if mask is not None:
            scores += mask[None, None, ...]
        scores = scores.float()
        scores = F.softmax(scores, dim=-1).type_as(query)
        output = torch.matmul(scores, value)
        output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.wo(output)


class FeedForward(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.w1 = nn.Linear(args.dim, args.hidden_dim, bias=False)
        self.w2 = nn.Linear(args.hidden_dim, args.dim, bias=False)
        self.w3 = nn.Linear(args.dim, args.hidden_dim, bias=False)

    def forward(self, x) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


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


class TransformerBlock(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args=args)
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(self, x, freqs_cis, positions, mask, cache=None, layer_id=0):
        r = self.attention.forward(self.attention_norm(x), freqs_cis, positions, mask, cache, layer_id)
        h = x + r
        r = self.feed_forward.forward(self.ffn_norm(h))
        out = h + r
        return out


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.vocab_size = args.vocab_size
        self.n_layers = args.n_layers
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = torch.nn.ModuleList([TransformerBlock(args=args) for _ in range(args.n_layers)])
        self.norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        self.freqs_cis = precompute_freqs_cis(args.head_dim, 128, theta=args.rope_theta)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor,
                cache: Optional[RotatingBufferCache] = None):
        h = self.tok_embeddings(input_ids)
        freqs_cis = self.freqs_cis[positions]
        seqlen = input_ids.shape[1]
        W = self.args.sliding_window
        mask: Optional[torch.Tensor] = None
        if cache is None:
            if seqlen > 1:
                tensor = torch.full((seqlen, seqlen), dtype=h.dtype, fill_value=1, device=h.device)
                mask = torch.tril(tensor, diagonal=0).to(h.dtype)
                # make the mask banded to account for sliding window (W keys per query)
                mask = torch.triu(mask, diagonal=-(W - 1))
                mask = torch.log(mask)
        else:
            # keys: the cached positions still in the buffer, then this chunk's
            start = cache.seqlen
            k_pos = torch.cat([torch.arange(max(0, start - W), start), positions])
            q_pos = positions
            allowed = (k_pos[None, :] <= q_pos[:, None]) & (q_pos[:, None] - k_pos[None, :] < W)
            mask = torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))
        for layer_id, layer in enumerate(self.layers):
            h = layer(h, freqs_cis, positions, mask, cache, layer_id)
        if cache is not None:
            cache.seqlen += seqlen
        return self.output(self.norm(h)).float()


args = ModelArgs(dim=32, n_layers=2, head_dim=8, hidden_dim=64, n_heads=4, n_kv_heads=2,
                 norm_eps=1e-5, vocab_size=VOCAB, sliding_window=5, max_batch_size=2)
model = Transformer(args)
n_params = sum(p.numel() for p in model.parameters())
print(f"{n_params} parameters, window {args.sliding_window}, GQA repeats {args.n_heads // args.n_kv_heads}")

# the banded mask: row i sees exactly min(i + 1, W) keys
m = torch.triu(torch.tril(torch.full((8, 8), fill_value=1.0)), diagonal=-(args.sliding_window - 1))
print("keys per query:", m.sum(1).long().tolist())

# --- training with the window mask
stream = torch.from_numpy(markov_stream(6000))
SEQ, BATCH = 20, 16
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
losses = []
for step in range(120):
    ix = torch.from_numpy(rng.integers(0, len(stream) - SEQ - 1, size=BATCH))
    x = torch.stack([stream[i:i + SEQ] for i in ix])
    y = torch.stack([stream[i + 1:i + 1 + SEQ] for i in ix])
    logits = model(x, torch.arange(SEQ))
    loss = F.cross_entropy(logits.view(-1, VOCAB), y.view(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    losses.append(loss.item())
    if step % 40 == 0 or step == 119:
        print(f"step {step}: loss {loss.item():.4f}")
loss_first = float(np.mean(losses[:5]))
loss_last = float(np.mean(losses[-5:]))

# --- generation: rolling cache (chunked prefill + one-token decode) against full recomputation
model.eval()
PROMPT, CHUNK, NEW = 8, 3, 10
prompts = torch.stack([stream[100:100 + PROMPT], stream[900:900 + PROMPT]])
with torch.no_grad():
    cache = RotatingBufferCache(args.n_layers, args.max_batch_size, args.sliding_window,
                                args.n_kv_heads, args.head_dim)
    for s in range(0, PROMPT, CHUNK):
        chunk = prompts[:, s:s + CHUNK]
        logits = model(chunk, torch.arange(s, s + chunk.shape[1]), cache=cache)
    prefill_last = logits[:, -1]
    seq = prompts.clone()
    cached_logits = [prefill_last]
    nxt = prefill_last.argmax(-1, keepdim=True)
    for _ in range(NEW - 1):
        seq = torch.cat([seq, nxt], dim=1)
        step_logits = model(nxt, torch.tensor([seq.shape[1] - 1]), cache=cache)[:, -1]
        cached_logits.append(step_logits)
        nxt = step_logits.argmax(-1, keepdim=True)
    seq = torch.cat([seq, nxt], dim=1)
    cached_logits = torch.stack(cached_logits, dim=1)

    full_logits = []
    for t in range(PROMPT, PROMPT + NEW):
        full_logits.append(model(seq[:, :t], torch.arange(t))[:, -1])
    full_logits = torch.stack(full_logits, dim=1)
    # the whole sequence in one forward gives every step's logits too
    one_pass = model(seq[:, :-1], torch.arange(seq.shape[1] - 1))[:, PROMPT - 1:]
    # without the window the logits must differ once the sequence outgrows it
    no_window = args.sliding_window
    args.sliding_window = 1000
    unwindowed = model(seq[:, :-1], torch.arange(seq.shape[1] - 1))[:, PROMPT - 1:]
    args.sliding_window = no_window

cache_err = (cached_logits - full_logits).abs().max().item()
pass_err = (one_pass - full_logits).abs().max().item()
window_gap = (unwindowed - full_logits).abs().max().item()
print(f"generated {tuple(seq.shape)}, buffer wrapped {cache.seqlen // args.sliding_window} times; "
      f"cache vs full max err {cache_err:.2e}, one pass err {pass_err:.2e}, roll vs cat {cache.roll_err:.1e}")
cache_match = float(cache_err < 1e-4 and pass_err < 1e-4 and cache.roll_err == 0.0
                    and torch.equal(cached_logits.argmax(-1), full_logits.argmax(-1)))
window_matters = float(window_gap > 1e-3)


def follow_rate(s):
    hits = 0
    for row in s.tolist():
        for t in range(PROMPT, len(row)):
            hits += int(row[t] == TABLE[row[t - 2], row[t - 1]])
    return hits / (len(s) * (len(s[0]) - PROMPT))


print(f"FINAL loss_first={loss_first:.4f} loss_last={loss_last:.4f} cache_match={cache_match:.0f} "
      f"window_matters={window_matters:.0f} follow={follow_rate(seq):.4f}")
