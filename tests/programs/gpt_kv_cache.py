"""GPT generation with a key/value cache, the way HF-style and minimal-GPT codebases write it.

A small GPT trained on a synthetic repeating-pattern corpus, then sampled with a cache:
``past_key_values`` tuples grown by ``torch.cat((past_k, k), dim=-2)``, attention by
``F.scaled_dot_product_attention`` with ``is_causal=True`` on the prefill and with a bool
``attn_mask`` (padding-aware) on cached steps, ``torch.no_grad()`` greedy and temperature/top-p
sampling (``torch.sort(descending=True)``, ``torch.cumsum(F.softmax(...), dim=-1)``, the removed
mask ``scatter``-ed back).  The cached logits must agree with the uncached full-sequence ones.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

vocab_size, block_size, n_embd, n_head, n_layer = 12, 32, 32, 4, 2


class CausalSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x, layer_past=None, attention_mask=None):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(n_embd, dim=2)
        q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
        k = k.view(B, T, n_head, C // n_head).transpose(1, 2)
        v = v.view(B, T, n_head, C // n_head).transpose(1, 2)
        if layer_past is not None:
            past_k, past_v = layer_past
            k = torch.cat((past_k, k), dim=-2)
            v = torch.cat((past_v, v), dim=-2)
        present = (k, v)
        if attention_mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y), present


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention()
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * n_embd, n_embd))

    def forward(self, x, layer_past=None, attention_mask=None):
        a, present = self.attn(self.ln_1(x), layer_past=layer_past, attention_mask=attention_mask)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, present


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([Block() for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx, past_key_values=None, use_cache=False):
        B, T = idx.size()
        past_length = 0 if past_key_values is None else past_key_values[0][0].size(-2)
        pos = torch.arange(past_length, past_length + T, dtype=torch.long, device=idx.device).unsqueeze(0)
        x = self.wte(idx) + self.wpe(pos)
        attention_mask = None
        if past_key_values is not None:
            # new queries see every cached key and the causal part of their own
            total = past_length + T
            attention_mask = torch.ones(T, total, dtype=torch.bool).tril(diagonal=past_length)
        else:
            past_key_values = tuple([None] * len(self.h))
        presents = ()
        for block, layer_past in zip(self.h, past_key_values):
            x, present = block(x, layer_past=layer_past, attention_mask=attention_mask)
            presents = presents + (present,)
        logits = self.lm_head(self.ln_f(x))
        return logits, (presents if use_cache else None)


def get_batch(data, batch_size=16, T=16):
    ix = rng.integers(0, len(data) - T - 1, size=batch_size)
    x = torch.stack([torch.from_numpy(data[i:i + T].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + T].astype(np.int64)) for i in ix])
    return x, y


# a corpus of repeated short patterns: each next token is predictable from the last few
patterns = [rng.integers(0, vocab_size, size=int(rng.integers(3, 6))) for _ in range(4)]
data = np.concatenate([patterns[int(rng.integers(0, 4))] for _ in range(600)])

model = GPT()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
for step in range(1, 301):
    x, y = get_batch(data)
    logits, _ = model(x)
    loss = F.cross_entropy(logits.view(-1, vocab_size), y.view(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        print(f"step {step}: loss {loss.item():.4f}")

model.eval()


def top_p_filter(logits, top_p):
    sorted_logits, sorted_indices = torch.sort(logits, descending=True)
    cumulative_probs = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    sorted_indices_to_remove = cumulative_probs > top_p
    sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
    sorted_indices_to_remove[..., 0] = 0
    indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
    return logits.masked_fill(indices_to_remove, float("-inf"))


@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, top_p=None, do_sample=False, use_cache=True):
    past = None
    all_logits = []
    for _ in range(max_new_tokens):
        if use_cache and past is not None:
            logits, past = model(idx[:, -1:], past_key_values=past, use_cache=True)
        else:
            logits, past = model(idx, use_cache=use_cache)
        logits = logits[:, -1, :]
        all_logits.append(logits)
        if do_sample:
            logits = logits / temperature
            if top_p is not None:
                logits = top_p_filter(logits, top_p)
            probs = F.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx, torch.stack(all_logits, dim=1)


prompt = torch.from_numpy(np.stack([data[i:i + 6] for i in (0, 50, 100, 150)]).astype(np.int64))
cached_ids, cached_logits = generate(model, prompt, 20, use_cache=True)
plain_ids, plain_logits = generate(model, prompt, 20, use_cache=False)
print("greedy cached == uncached ids:", torch.equal(cached_ids, plain_ids))
print("greedy cached logits allclose:", torch.allclose(cached_logits, plain_logits, atol=1e-4))

# one forward over the whole generated sequence gives the same logits at every step
with torch.no_grad():
    full_logits, _ = model(cached_ids[:, :-1])
print("full-sequence logits allclose:", torch.allclose(full_logits[:, 5:], cached_logits, atol=1e-4))

# greedy continuation accuracy against the corpus rule: the next token follows the pattern
with torch.no_grad():
    x, y = get_batch(data, batch_size=64)
    logits, _ = model(x)
    val_loss = F.cross_entropy(logits.view(-1, vocab_size), y.view(-1)).item()
    val_acc = (logits.argmax(-1) == y).float().mean().item()

sampled, _ = generate(model, prompt, 20, temperature=0.8, top_p=0.9, do_sample=True)
# every sampled token has nonzero top-p mass; check the filter keeps at least one token per row
kept = torch.isfinite(top_p_filter(torch.randn(4, vocab_size), 0.5)).sum(dim=-1)
print("top-p kept at least one:", bool((kept >= 1).all()), "sampled shape:", tuple(sampled.shape))
print(f"FINAL val_loss={val_loss:.4f} val_acc={val_acc:.4f}")
