"""RETRO (Borgeaud et al. 2021) as lucidrains/RETRO-pytorch writes it, without einops, on a toy
retrieval language model. Each batch draws a fresh database of "documents" (a key chunk and its
continuation chunk); a training sequence is a run of documents, so a continuation can only be
predicted by retrieving its document. Retrieval: frozen mean-pooled embeddings of chunks
(``requires_grad_(False)``), ``F.normalize`` + cosine similarity, ``torch.topk`` neighbours,
``index_select`` of the neighbour tokens. Model: rotary embeddings (``einsum('i , j -> i j')``,
``rotate_half`` by ``view`` + ``unbind``), an RMSNorm by ``x.norm(dim=-1, keepdim=True)``,
causal self-attention with a ``triu`` mask and ``-torch.finfo(dtype).max``, a neighbour encoder
(self-attention over each neighbour plus cross-attention to its source chunk), and chunked
cross-attention with the causal shift: queries moved by ``chunk - 1`` through ``F.pad`` with a
negative pad, cut into ``view(b, n_chunks, chunk, d)``, attending to that chunk's neighbours
(with a learned null key/value), then shifted back by ``F.pad``. Checks: the LM loss falls, the
continuation tokens are copied from the neighbours, changing a later chunk's neighbours leaves all
earlier logits unchanged (max abs difference), and the top-1 neighbour is the planted document.
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import einsum

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

num_tokens, chunk_size, num_neighbors = 64, 4, 2
seq_len, docs_per_seq, db_size = 32, 5, 48
n_chunks = seq_len // chunk_size


# ---- data: a fresh random database per batch; sequences are runs of its documents ----
def make_batch(batch_size, generator=None):
    db = torch.randint(0, num_tokens, (db_size, 2 * chunk_size), generator=generator)
    doc_ids = torch.randint(0, db_size, (batch_size, docs_per_seq), generator=generator)
    seq = db[doc_ids].view(batch_size, docs_per_seq * 2 * chunk_size)[:, :seq_len + 1]
    return seq, db, doc_ids


class ChunkEmbedder(nn.Module):
    """Stands in for the frozen BERT of the paper: mean-pooled token embeddings."""

    def __init__(self, dim=32):
        super().__init__()
        self.emb = nn.Embedding(num_tokens, dim)
        self.requires_grad_(False)

    def forward(self, chunks):
        return self.emb(chunks).mean(dim=-2)


embedder = ChunkEmbedder()


@torch.no_grad()
def retrieve(seq, db):
    """top-k database documents by cosine similarity of each sequence chunk to document keys."""
    b = seq.shape[0]
    seq = seq[:, :seq_len]
    queries = F.normalize(embedder(seq.view(b, n_chunks, chunk_size)), dim=-1)
    keys = F.normalize(embedder(db[:, :chunk_size]), dim=-1)
    sim = einsum('b k d, m d -> b k m', queries, keys)
    _, indices = torch.topk(sim, num_neighbors, dim=-1)
    neighbors = db.index_select(0, indices.view(-1)).view(b, n_chunks, num_neighbors, 2 * chunk_size)
    return neighbors, indices


# ---- rotary embeddings ----
class RotaryEmbedding(nn.Module):
    def __init__(self, dim):
        super().__init__()
        inv_freq = 1. / (10000 ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer('inv_freq', inv_freq)

    def forward(self, max_seq_len, *, offset=0):
        seq = torch.arange(max_seq_len, device=self.inv_freq.device) + offset
        freqs = einsum('i , j -> i j', seq.type_as(self.inv_freq), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb[None, None]


def rotate_half(x):
    x = x.view(*x.shape[:-1], 2, x.shape[-1] // 2)
    x1, x2 = x.unbind(dim=-2)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(t, freqs):
    rot_dim = freqs.shape[-1]
    t, t_pass = t[..., :rot_dim], t[..., rot_dim:]
    t = (t * freqs.cos()) + (rotate_half(t) * freqs.sin())
    return torch.cat((t, t_pass), dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-8):
        super().__init__()
        self.scale = dim ** -0.5
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        norm = x.norm(dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.gamma


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = RMSNorm(dim)

    def forward(self, x, *args, **kwargs):
        return self.fn(self.norm(x), *args, **kwargs) + x


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4):
        super().__init__()
        self.ff = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.ff(x)


class Attention(nn.Module):
    def __init__(self, dim, *, context_dim=None, dim_head=16, heads=4, causal=False, null_kv=False):
        super().__init__()
        context_dim = context_dim if context_dim is not None else dim
        self.heads, self.dim_head = heads, dim_head
        self.scale = dim_head ** -0.5
        self.causal = causal
        inner_dim = dim_head * heads
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_k = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_out = nn.Linear(inner_dim, dim)
        self.null_k = nn.Parameter(torch.randn(inner_dim)) if null_kv else None
        self.null_v = nn.Parameter(torch.randn(inner_dim)) if null_kv else None

    def forward(self, x, mask=None, context=None, pos_emb=None):
        b, h, dh = x.shape[0], self.heads, self.dim_head
        kv_input = context if context is not None else x
        q, k, v = self.to_q(x), self.to_k(kv_input), self.to_v(kv_input)
        q, k, v = (t.view(b, -1, h, dh).transpose(1, 2) for t in (q, k, v))
        q = q * self.scale
        if pos_emb is not None:
            q_pos_emb, k_pos_emb = pos_emb
            q = apply_rotary_pos_emb(q, q_pos_emb)
            k = apply_rotary_pos_emb(k, k_pos_emb)
        if self.null_k is not None:
            nk = self.null_k.view(1, h, 1, dh).expand(b, -1, -1, -1)
            nv = self.null_v.view(1, h, 1, dh).expand(b, -1, -1, -1)
            k, v = torch.cat((nk, k), dim=-2), torch.cat((nv, v), dim=-2)
        sim = einsum('b h i d, b h j d -> b h i j', q, k)
        mask_value = -torch.finfo(sim.dtype).max
        if mask is not None:
            if self.null_k is not None:
                mask = F.pad(mask, (1, 0), value=True)
            sim = sim.masked_fill(~mask[:, None, None, :], mask_value)
        if self.causal:
            i, j = sim.shape[-2:]
            causal_mask = torch.ones(i, j, dtype=torch.bool, device=x.device).triu(j - i + 1)
            sim = sim.masked_fill(causal_mask, mask_value)
        attn = sim.softmax(dim=-1)
        out = einsum('b h i j, b h j d -> b h i d', attn, v)
        out = out.transpose(1, 2).reshape(b, -1, h * dh)
        return self.to_out(out)


class ChunkedCrossAttention(nn.Module):
    def __init__(self, chunk_size, **kwargs):
        super().__init__()
        self.chunk_size = chunk_size
        self.cross_attn = Attention(null_kv=True, **kwargs)

    def forward(self, x, *, context, pos_emb):
        chunk_size = self.chunk_size
        b, n, d = x.shape
        num_chunks, num_retrieved = context.shape[1], context.shape[2]
        # a chunk's neighbours may only inform the tokens after the chunk's last token
        causal_padding = chunk_size - 1
        x = F.pad(x, (0, 0, -causal_padding, causal_padding), value=0.)
        seq_index = (n // chunk_size) * chunk_size
        x, x_remainder = x[:, :seq_index], x[:, seq_index:]
        seq_remain_len = x_remainder.shape[-2]
        q_pos_emb, k_pos_emb = pos_emb
        k_pos_emb = k_pos_emb.repeat(1, 1, num_retrieved, 1)
        x = x.view(b, num_chunks, chunk_size, d).reshape(b * num_chunks, chunk_size, d)
        context = context.reshape(b * num_chunks, -1, context.shape[-1])
        out = self.cross_attn(x, context=context, pos_emb=(q_pos_emb, k_pos_emb))
        out = out.view(b, num_chunks * chunk_size, d)
        out = F.pad(out, (0, 0, causal_padding, -causal_padding + seq_remain_len), value=0.)
        return out


class Encoder(nn.Module):
    def __init__(self, dim, context_dim, depth=1):
        super().__init__()
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                PreNorm(dim, Attention(dim)),
                PreNorm(dim, Attention(dim, context_dim=context_dim)),
                PreNorm(dim, FeedForward(dim)),
            ]))
        self.rotary_pos_emb = RotaryEmbedding(16)
        self.norm_out = RMSNorm(dim)

    def forward(self, x, *, chunked_seq):
        # x: (b * n_chunks * k, 2 * chunk, d); chunked_seq: (b * n_chunks * k, chunk, d)
        n = x.shape[-2]
        pos = self.rotary_pos_emb(n)
        for attn, cross_attn, ff in self.layers:
            x = attn(x, pos_emb=(pos, pos))
            x = cross_attn(x, context=chunked_seq)
            x = ff(x)
        return self.norm_out(x)


class RETRO(nn.Module):
    def __init__(self, dim=64, enc_dim=64, dec_depth=2, cca_layers=(2,)):
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.encoder = Encoder(enc_dim, context_dim=dim)
        self.rotary_pos_emb = RotaryEmbedding(16)
        self.layers = nn.ModuleList([])
        for layer_num in range(1, dec_depth + 1):
            cca = None
            if layer_num in cca_layers:
                cca = PreNorm(dim, ChunkedCrossAttention(chunk_size, dim=dim, context_dim=enc_dim))
            self.layers.append(nn.ModuleList([
                PreNorm(dim, Attention(dim, causal=True)), cca, PreNorm(dim, FeedForward(dim))]))
        self.norm_out = RMSNorm(dim)
        self.to_logits = nn.Linear(dim, num_tokens)

    def forward(self, seq, retrieved):
        b, n = seq.shape
        k = retrieved.shape[2]
        x = self.token_emb(seq)
        self_pos = self.rotary_pos_emb(n)
        cca_q_pos = self.rotary_pos_emb(chunk_size, offset=chunk_size - 1)
        cca_k_pos = self.rotary_pos_emb(2 * chunk_size)
        encoded = None
        for attn, cca, ff in self.layers:
            x = attn(x, pos_emb=(self_pos, self_pos))
            if cca is not None:
                if encoded is None:
                    # encode the neighbours once, each attending to the chunk it was retrieved for
                    chunked = x.view(b, n_chunks, 1, chunk_size, x.shape[-1])
                    chunked = chunked.expand(-1, -1, k, -1, -1).reshape(b * n_chunks * k, chunk_size, -1)
                    neigh = self.token_emb(retrieved).view(b * n_chunks * k, 2 * chunk_size, -1)
                    encoded = self.encoder(neigh, chunked_seq=chunked)
                    encoded = encoded.view(b, n_chunks, k, 2 * chunk_size, -1)
                x = cca(x, context=encoded, pos_emb=(cca_q_pos, cca_k_pos))
            x = ff(x)
        return self.to_logits(self.norm_out(x))


model = RETRO()
print(model.layers[1][1].fn)
print("parameters:", sum(p.numel() for p in model.parameters() if p.requires_grad))
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)

# continuation positions (the second chunk of each document) are predictable only by retrieval
label_pos = torch.arange(1, seq_len + 1)
is_cont = (label_pos // chunk_size) % 2 == 1

eval_gen = torch.Generator().manual_seed(1234)
eval_seq, eval_db, eval_docs = make_batch(64, generator=eval_gen)
eval_neighbors, eval_indices = retrieve(eval_seq, eval_db)


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(eval_seq[:, :-1], eval_neighbors)
        loss = F.cross_entropy(logits.reshape(-1, num_tokens), eval_seq[:, 1:].reshape(-1))
        pred = logits.argmax(-1)
        cont_acc = (pred == eval_seq[:, 1:])[:, is_cont].float().mean().item()
    model.train()
    return loss.item(), cont_acc


first_loss, _ = evaluate()
print(f"step   0 eval loss {first_loss:.4f}")
for step in range(1, 201):
    seq, db, _ = make_batch(12)
    neighbors, _ = retrieve(seq, db)
    logits = model(seq[:, :-1], neighbors)
    loss = F.cross_entropy(logits.reshape(-1, num_tokens), seq[:, 1:].reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 50 == 0:
        eval_loss, cont_acc = evaluate()
        print(f"step {step:3d} train loss {loss.item():.4f} eval loss {eval_loss:.4f} "
              f"continuation acc {cont_acc:.4f}")

# ---- retrieval: the top-1 neighbour of every key chunk is its own document ----
key_chunks = torch.arange(0, n_chunks, 2)
top1 = eval_indices[:, key_chunks, 0]
top1_hit = (top1 == eval_docs[:, :key_chunks.numel()]).float().mean().item()
print(f"retrieval top-1 hits the planted document: {top1_hit:.4f}")

# ---- causality: new neighbours for chunk c change no logit before the chunk's last token ----
model.eval()
c = 3
changed = eval_neighbors.clone()
changed[:, c] = torch.randint(0, num_tokens, changed[:, c].shape, generator=eval_gen)
with torch.no_grad():
    base = model(eval_seq[:, :-1], eval_neighbors)
    alt = model(eval_seq[:, :-1], changed)
boundary = (c + 1) * chunk_size - 1
causal_err = (base[:, :boundary] - alt[:, :boundary]).abs().max().item()
after = (base[:, boundary:] - alt[:, boundary:]).abs().max().item()
print(f"changing chunk {c}'s neighbours: earlier logits max diff {causal_err:.3g}, "
      f"later logits changed: {after > 0}")
assert causal_err < 1e-5 and after > 0

final_loss, cont_acc = evaluate()
print(f"FINAL first_loss={first_loss:.4f} final_loss={final_loss:.4f} cont_acc={cont_acc:.4f} "
      f"causal_err={causal_err:.6f} top1_hit={top1_hit:.4f}")
