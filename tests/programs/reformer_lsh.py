"""Reformer's LSH attention (Kitaev et al.) as lucidrains/reformer-pytorch writes it, in a small
character-level language model.

Queries and keys are shared. Each hash round draws random rotations and hashes a vector to
``argmax(torch.cat([r, -r], -1))`` of ``r = torch.einsum('bhtd,hdr->bhtr', qk, rotations)``; the
rounds' buckets are offset and concatenated, and ``bucket * t + position`` keys are sorted by
``torch.argsort(..., stable=True)``. Queries are gathered into sorted order by ``torch.gather``,
values by ``index_select`` on the flattened batch, both cut into chunks; each chunk attends to
itself and its predecessor (``look_one_back`` by ``torch.cat``), with the causal mask, the self
mask at ``-1e5`` (a token attends to itself only when nothing else is allowed) and normalised keys.
The outputs and their ``logsumexp`` are put back in order by the undo sort (``argsort`` of the sort
indices, equal to a ``scatter`` of positions), and the hash rounds are combined with weights
``exp(lse - logsumexp(lse over rounds))``. On a sequence no longer than a bucket the result equals
full shared-QK attention, outputs and gradients; on longer ones it approximates it, better with
more hash rounds. The model is trained a few steps with Adam and evaluated with LSH and with full
attention on the same weights.

The data: text of random words from a small lexicon, made with NumPy.
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

TOKEN_SELF_ATTN_VALUE = -1e5


def look_one_back(x):
    """Each chunk joined by the chunk before it (the first by the last)."""
    x_extra = torch.cat([x[:, :, -1:, ...], x[:, :, :-1, ...]], dim=2)
    return torch.cat([x, x_extra], dim=3)


class LSHAttention(nn.Module):
    def __init__(self, bucket_size=8, n_hashes=2, causal=True):
        super().__init__()
        self.bucket_size = bucket_size
        self.n_hashes = n_hashes
        self.causal = causal

    def hash_vectors(self, n_buckets, vecs):
        b, h, t, d = vecs.shape
        rotations = torch.randn(self.n_hashes, h, d, n_buckets // 2)
        buckets = []
        for round_ in range(self.n_hashes):
            rotated = torch.einsum('bhtd,hdr->bhtr', vecs, rotations[round_])
            buckets.append(torch.argmax(torch.cat([rotated, -rotated], dim=-1), dim=-1) + round_ * n_buckets)
        return torch.cat(buckets, dim=-1)

    def forward(self, qk, v, return_sort=False):
        b, h, t, d = qk.shape
        n_buckets = max(2, t // self.bucket_size)
        n_chunks = self.n_hashes * max(1, t // self.bucket_size)
        with torch.no_grad():
            buckets = self.hash_vectors(n_buckets, qk.detach())
            ticker = torch.arange(self.n_hashes * t).expand(b, h, -1)
            buckets_and_t = t * buckets + (ticker % t)
            sticker = torch.argsort(buckets_and_t, dim=-1, stable=True)
            undo_sort = torch.argsort(sticker, dim=-1)
        st = sticker % t
        sqk = torch.gather(qk, 2, st.unsqueeze(-1).expand(-1, -1, -1, d))
        flat_index = (st + torch.arange(b * h).view(b, h, 1) * t).reshape(-1)
        sv = v.reshape(b * h * t, d).index_select(0, flat_index).view(b, h, -1, d)

        bq_t = bkv_t = st.reshape(b, h, n_chunks, -1)
        bq = sqk.reshape(b, h, n_chunks, -1, d)
        bv = sv.reshape(b, h, n_chunks, -1, d)
        bk = F.normalize(bq, p=2, dim=-1)
        bk, bv, bkv_t = look_one_back(bk), look_one_back(bv), look_one_back(bkv_t)

        dots = torch.einsum('bhcid,bhcjd->bhcij', bq, bk) * (d ** -0.5)
        if self.causal:
            dots.masked_fill_(bq_t[..., :, None] < bkv_t[..., None, :], -torch.finfo(dots.dtype).max)
        dots.masked_fill_(bq_t[..., :, None] == bkv_t[..., None, :], TOKEN_SELF_ATTN_VALUE)

        dots_logsumexp = torch.logsumexp(dots, dim=-1, keepdim=True)
        probs = torch.exp(dots - dots_logsumexp)
        bo = torch.einsum('bhcij,bhcjd->bhcid', probs, bv)

        so = bo.reshape(b, h, -1, d)
        slogits = dots_logsumexp.reshape(b, h, -1)
        o = torch.gather(so, 2, undo_sort.unsqueeze(-1).expand(-1, -1, -1, d))
        logits = torch.gather(slogits, 2, undo_sort)

        o = o.view(b, h, self.n_hashes, t, d)
        logits = logits.view(b, h, self.n_hashes, t, 1)
        weights = torch.exp(logits - torch.logsumexp(logits, dim=2, keepdim=True))
        out = torch.sum(o * weights, dim=2)
        if return_sort:
            return out, sticker, undo_sort, ticker
        return out


def full_attention(qk, v, causal=True):
    t, d = qk.shape[-2:]
    k = F.normalize(qk, p=2, dim=-1)
    dots = qk @ k.transpose(-1, -2) * (d ** -0.5)
    i = torch.arange(t)
    if causal:
        dots = dots.masked_fill(i[:, None] < i[None, :], -torch.finfo(dots.dtype).max)
    dots = dots.masked_fill(torch.eye(t, dtype=torch.bool), TOKEN_SELF_ATTN_VALUE)
    return F.softmax(dots, dim=-1) @ v


class Block(nn.Module):
    def __init__(self, dim, heads, bucket_size, n_hashes):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.to_qk = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        self.lsh = LSHAttention(bucket_size, n_hashes, causal=True)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x, attention="lsh"):
        b, t, dim = x.shape
        h = self.ln1(x)
        qk = self.to_qk(h).view(b, t, self.heads, -1).transpose(1, 2)
        v = self.to_v(h).view(b, t, self.heads, -1).transpose(1, 2)
        a = self.lsh(qk, v) if attention == "lsh" else full_attention(qk, v)
        x = x + self.to_out(a.transpose(1, 2).reshape(b, t, dim))
        return x + self.ff(self.ln2(x))


class ReformerLM(nn.Module):
    def __init__(self, vocab, dim=32, depth=2, heads=2, max_len=64, bucket_size=8, n_hashes=2):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, bucket_size, n_hashes) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def set_n_hashes(self, n):
        for block in self.blocks:
            block.lsh.n_hashes = n

    def forward(self, idx, attention="lsh"):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x, attention)
        return self.head(self.ln(x))


WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "big", "red", "hat", "and", "saw", "it"]
text = " ".join(rng.choice(WORDS, size=3000)) + " "
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
split = int(0.9 * len(data))
train_data, val_data = data[:split], data[split:]
print(f"text {len(text)} chars vocab {len(chars)}")

SEQ, BATCH = 64, 16


def get_batch(source):
    ix = torch.randint(len(source) - SEQ - 1, (BATCH,))
    x = torch.stack([source[i:i + SEQ] for i in ix])
    y = torch.stack([source[i + 1:i + SEQ + 1] for i in ix])
    return x, y


# the sort and its undo on one hashing
attn = LSHAttention(bucket_size=8, n_hashes=2)
qk = torch.randn(2, 2, 32, 8)
v = torch.randn(2, 2, 32, 8)
_, sticker, undo_sort, ticker = attn(qk, v, return_sort=True)
undo_by_scatter = torch.empty_like(sticker).scatter_(-1, sticker, ticker)
print("undo sort by argsort equals scatter", torch.equal(undo_sort, undo_by_scatter),
      "sorted back", torch.equal(torch.gather(sticker, -1, undo_sort), ticker))

# short sequences: one bucket per round, so LSH attention is full attention. Bidirectional, exactly;
# causal, up to the first token, which may attend only to itself: its two copies (chunk and
# look-back) at -1e5 make a logsumexp near -1e5, where float32 keeps only 1/128 of its fraction
short_errs, grad_errs, causal_errs = [], [], []
for n_hashes in (1, 2, 4):
    attn = LSHAttention(bucket_size=16, n_hashes=n_hashes, causal=False)
    qk = torch.randn(2, 2, 16, 8, requires_grad=True)
    v = torch.randn(2, 2, 16, 8, requires_grad=True)
    out_lsh = attn(qk, v)
    out_full = full_attention(qk, v, causal=False)
    g_lsh = torch.autograd.grad(out_lsh.square().sum(), (qk, v))
    g_full = torch.autograd.grad(out_full.square().sum(), (qk, v))
    short_errs.append((out_lsh - out_full).abs().max().item())
    grad_errs.append(max((a - b).abs().max().item() for a, b in zip(g_lsh, g_full)))
    attn.causal = True
    with torch.no_grad():
        causal_gap = (attn(qk, v) - full_attention(qk, v, causal=True)).abs()
    causal_errs.append(causal_gap[:, :, 1:].max().item())
    print(f"short sequence, {n_hashes} hash rounds: equals full attention {torch.allclose(out_lsh, out_full, atol=1e-5)} "
          f"gradients {all(torch.allclose(a, b, atol=1e-4) for a, b in zip(g_lsh, g_full))} "
          f"causal after the first token {causal_errs[-1]:.2e} first token {causal_gap[:, :, 0].max().item():.2e}")

model = ReformerLM(len(chars))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
STEPS = 80
for step in range(1, STEPS + 1):
    x, y = get_batch(train_data)
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 20 == 0:
        print(f"step {step} loss {loss.item():.4f}")

model.eval()
torch.manual_seed(seed + 1)
x_val, y_val = get_batch(val_data)
with torch.no_grad():
    full_logits = model(x_val, attention="full")
    full_loss = F.cross_entropy(full_logits.view(-1, len(chars)), y_val.view(-1)).item()
    lsh_losses, lsh_gaps = {}, {}
    for n_hashes in (1, 2, 4):
        model.set_n_hashes(n_hashes)
        lsh_logits = model(x_val)
        lsh_losses[n_hashes] = F.cross_entropy(lsh_logits.view(-1, len(chars)), y_val.view(-1)).item()
        lsh_gaps[n_hashes] = (F.softmax(lsh_logits, -1) - F.softmax(full_logits, -1)).abs().mean().item()
        print(f"val loss with {n_hashes} hash rounds {lsh_losses[n_hashes]:.4f} "
              f"prob gap to full attention {lsh_gaps[n_hashes]:.4f}")
print(f"val loss with full attention {full_loss:.4f} (uniform {math.log(len(chars)):.4f})")
print(f"FINAL val_full={full_loss:.4f} val_lsh1={lsh_losses[1]:.4f} val_lsh2={lsh_losses[2]:.4f} "
      f"val_lsh4={lsh_losses[4]:.4f} gap1={lsh_gaps[1]:.4f} gap4={lsh_gaps[4]:.4f} "
      f"short_err={max(short_errs):.6f} short_grad_err={max(grad_errs):.6f} short_causal_err={max(causal_errs):.6f}")
