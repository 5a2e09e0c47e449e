"""Infini-attention (Munkhdalai et al. 2024, "Leave No Context Behind: Efficient Infinite Context
Transformers with Infini-attention"), as its public PyTorch ports write it, on a long-range recall task.

A long sequence is processed segment by segment. Inside a segment, local causal softmax attention by
``F.scaled_dot_product_attention(q, k, v, is_causal=True)`` (and by an explicit ``torch.triu`` mask
with ``masked_fill``: must agree). Across segments, a compressive memory per head:
``sigma = F.elu(x) + 1``, ``M = M + sigma(K).transpose(-2, -1) @ V``, normaliser
``z = z + sigma(K).sum(dim=-2)``, retrieval ``sigma(Q) @ M / (sigma(Q) @ z.unsqueeze(-1))``, and the
delta-rule update ``V - sigma(K) @ M / (sigma(K) @ z[..., None])``. A learned per-head gate
``torch.sigmoid(self.beta)`` mixes memory and local attention. The memory is returned ``.detach()``ed
so a stream can be fed in chunks (truncated BPTT) and each optimizer step starts from it.

The task: the first token of a 64-token sequence (4 segments of 16) is one of 4 signal tokens, the
rest is noise, and the last token is a query; the model must recall the signal three segments back,
where local attention cannot see it. The linear-memory model is trained by AdamW + ``clip_grad_norm_``.

Checks: the memory retrieval over segments equals linear attention over the whole prefix computed at
once (a block-causal ``sigma(Q) @ sigma(K).T`` matrix); SDPA equals the explicit mask (values and
gradients); a stream fed segment by segment with the detached memory carried equals one call.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

NOISE, SIGNALS = 12, 4
QUERY = NOISE + SIGNALS
VOCAB = QUERY + 1
SEG_LEN, N_SEG = 16, 4
SEQ_LEN = SEG_LEN * N_SEG
DIM, HEADS = 32, 2


def sigma(x):
    return F.elu(x) + 1


class InfiniAttention(nn.Module):
    def __init__(self, dim, n_heads, segment_len, update="linear", explicit_mask=False):
        super().__init__()
        self.n_heads = n_heads
        self.d_head = dim // n_heads
        self.segment_len = segment_len
        self.update = update
        self.explicit_mask = explicit_mask
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)
        self.beta = nn.Parameter(torch.zeros(1, n_heads, 1, 1))

    def _retrieve(self, q, mem, z):
        sq = sigma(q)
        return (sq @ mem) / (sq @ z.unsqueeze(-1))

    def _update(self, k, v, mem, z):
        sk = sigma(k)
        if mem is None:
            return sk.transpose(-2, -1) @ v, sk.sum(dim=-2)
        if self.update == "delta":
            v = v - (sk @ mem) / (sk @ z[..., None])
        return mem + sk.transpose(-2, -1) @ v, z + sk.sum(dim=-2)

    def _local(self, q, k, v):
        if not self.explicit_mask:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        n = q.size(-2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
        return torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1) @ v

    def forward(self, x, mem=None, z=None, return_parts=False):
        b, n, _ = x.shape
        outs, mems, locs = [], [], []
        for seg in x.split(self.segment_len, dim=1):
            s = seg.size(1)
            q, k, v = self.qkv(seg).view(b, s, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
            a_dot = self._local(q, k, v)
            if mem is None:
                a_mem = torch.zeros_like(a_dot)
            else:
                a_mem = self._retrieve(q, mem, z)
            gate = torch.sigmoid(self.beta)
            a = gate * a_mem + (1 - gate) * a_dot
            mem, z = self._update(k, v, mem, z)
            outs.append(a.transpose(1, 2).reshape(b, s, -1))
            mems.append(a_mem)
            locs.append(a_dot)
        y = self.out(torch.cat(outs, dim=1))
        if return_parts:
            return y, torch.cat(mems, dim=2), torch.cat(locs, dim=2)
        return y, mem.detach(), z.detach()


class InfiniLM(nn.Module):
    def __init__(self, update="linear"):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, DIM)
        self.pos = nn.Embedding(SEG_LEN, DIM)
        self.ln1 = nn.LayerNorm(DIM)
        self.attn = InfiniAttention(DIM, HEADS, SEG_LEN, update=update)
        self.ln2 = nn.LayerNorm(DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, 4 * DIM), nn.GELU(), nn.Linear(4 * DIM, DIM))
        self.ln_f = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB)

    def forward(self, idx, mem=None, z=None):
        pos = torch.arange(idx.size(1)) % SEG_LEN
        x = self.tok(idx) + self.pos(pos)
        h, mem, z = self.attn(self.ln1(x), mem, z)
        x = x + h
        x = x + self.mlp(self.ln2(x))
        return self.head(self.ln_f(x)), mem, z


def make_batch(n, rng):
    seq = rng.integers(0, NOISE, size=(n, SEQ_LEN))
    target = rng.integers(0, SIGNALS, size=n)
    seq[:, 0] = NOISE + target
    seq[:, -1] = QUERY
    return torch.from_numpy(seq.astype(np.int64)), torch.from_numpy(target.astype(np.int64))


rng = np.random.default_rng(seed)

# --- memory retrieval over segments vs linear attention over the whole prefix at once
attn = InfiniAttention(DIM, HEADS, SEG_LEN).double()
x = torch.randn(3, SEQ_LEN, DIM, dtype=torch.float64)
with torch.no_grad():
    _, a_mem, _ = attn(x, return_parts=True)
    q, k, v = attn.qkv(x).view(3, SEQ_LEN, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
    seg_id = torch.arange(SEQ_LEN) // SEG_LEN
    earlier = seg_id[:, None] > seg_id[None, :]  # keys in strictly earlier segments
    scores = (sigma(q) @ sigma(k).transpose(-2, -1)) * earlier
    linear = (scores @ v) / scores.sum(dim=-1, keepdim=True)
    memory_err = (a_mem[:, :, SEG_LEN:] - linear[:, :, SEG_LEN:]).abs().max().item()
    first_zero = a_mem[:, :, :SEG_LEN].abs().max().item()
print(f"memory retrieval vs prefix linear attention {tuple(linear.shape)}: err {memory_err:.2e}, "
      f"first segment {first_zero:.1f}")

# --- SDPA(is_causal=True) vs the explicit triu mask, values and gradients
xs = torch.randn(2, SEQ_LEN, DIM, requires_grad=True)
attn_mask = InfiniAttention(DIM, HEADS, SEG_LEN, explicit_mask=True)
attn_sdpa = InfiniAttention(DIM, HEADS, SEG_LEN)
attn_sdpa.load_state_dict(attn_mask.state_dict())
y1, _, _ = attn_sdpa(xs)
y2, _, _ = attn_mask(xs)
w = torch.randn_like(y1)
g1 = torch.autograd.grad((y1 * w).sum(), [xs] + list(attn_sdpa.parameters()))
g2 = torch.autograd.grad((y2 * w).sum(), [xs] + list(attn_mask.parameters()))
sdpa_err = max([(y1 - y2).abs().max().item()] + [(a - b).abs().max().item() for a, b in zip(g1, g2)])
print(f"sdpa is_causal vs explicit mask: err {sdpa_err:.2e}")

# --- a stream fed segment by segment, memory carried detached, equals one call (both updates)
stream_err = 0.0
for update in ("linear", "delta"):
    lm = InfiniLM(update)
    idx, _ = make_batch(4, rng)
    with torch.no_grad():
        whole, mem_w, z_w = lm(idx)
        mem = z = None
        pieces = []
        for seg in idx.split(SEG_LEN, dim=1):
            logits, mem, z = lm(seg, mem, z)
            pieces.append(logits)
        stream = torch.cat(pieces, dim=1)
    err = max((whole - stream).abs().max().item(), (mem_w - mem).abs().max().item())
    stream_err = max(stream_err, err)
    print(f"{update} memory {tuple(mem.shape)} z {tuple(z.shape)} stream vs whole: err {err:.2e}, "
          f"requires_grad {mem.requires_grad}")

check_err = max(memory_err, sdpa_err, stream_err)

# --- training on the recall task
test_x, test_y = make_batch(256, rng)
STEPS, BATCH = 240, 32


def evaluate(model):
    model.eval()
    with torch.no_grad():
        logits, _, _ = model(test_x)
        loss = F.cross_entropy(logits[:, -1], NOISE + test_y).item()
        acc = (logits[:, -1, NOISE:QUERY].argmax(-1) == test_y).float().mean().item()
    model.train()
    return loss, acc


results = {}
for update in ("linear",):
    torch.manual_seed(seed)
    model = InfiniLM(update)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    loss0, acc0 = evaluate(model)
    for step in range(STEPS):
        idx, target = make_batch(BATCH, rng)
        logits, _, _ = model(idx)
        loss = F.cross_entropy(logits[:, -1], NOISE + target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 60 == 59:
            print(f"{update} step {step + 1} loss {loss.item():.4f}")
    loss1, acc1 = evaluate(model)
    gate = torch.sigmoid(model.attn.beta).flatten().tolist()
    print(f"{update}: test loss {loss0:.4f} -> {loss1:.4f}, recall accuracy {acc0:.4f} -> {acc1:.4f}, "
          f"gates {gate[0]:.3f} {gate[1]:.3f}")
    results[update] = (loss1, acc1)

print(f"FINAL loss={results['linear'][0]:.4f} acc={results['linear'][1]:.4f} check_err={check_err:.3e}")
