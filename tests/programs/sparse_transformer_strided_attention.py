"""Sparse Transformer (Child et al. 2019, "Generating Long Sequences with Sparse Transformers"), its
attention as openai/sparse_attention's ``attention.py`` writes it (``get_attn_mask``,
``strided_transpose``, ``attention_impl``) ported to torch, in a small autoregressive model.

Factorised attention: a ``local`` head sees the previous ``stride`` positions, a ``strided`` head
every ``stride``-th position back, a ``fixed`` head its own block plus the last ``c`` columns of every
block. The masks are built by ``torch.arange`` comparisons (``q >= k``, ``torch.fmod(q - k, stride)``,
``torch.div(..., rounding_mode='floor')``) and applied by ``masked_fill(~mask, float('-inf'))``
before the softmax (and, as the TensorFlow original, ``w * mask + -1e9 * (1 - mask)``). The
block-sparse path gets the same result without an n x n mask: ``strided_transpose`` (``reshape`` to
``[n, bT_ctx, local_attn_ctx, embd]`` + ``transpose(1, 2)``) makes every residue class contiguous so
strided attention is causal attention inside ``view``-ed blocks, and the local band attends to its own
block and the one before (``F.pad`` + ``torch.cat`` of key blocks).

The model: token embeddings plus factorised row/column position embeddings, pre-norm blocks that
alternate local and strided heads, each run through ``torch.utils.checkpoint.checkpoint(block, x,
use_reentrant=False)`` in training, trained by AdamW with a linear warm-up (``LambdaLR``) on
sequences of 8 rows of 8 tokens where each row is the previous one plus one (mod the vocabulary):
every token after the first row is predictable from the token ``stride`` positions back.

Checks: the block-sparse paths equal the masked dense ones in values and gradients; checkpointed
blocks give the plain run's gradients (with dropout, whose masks the recomputation must replay);
the accuracy on the predictable rows.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

VOCAB = 12
STRIDE = 8  # local_attn_ctx
ROWS = 8
N_CTX = STRIDE * ROWS
BLOCKSIZE = 4


def get_attn_mask(n, attn_mode, local_attn_ctx=None):
    if attn_mode == 'all':
        b = torch.tril(torch.ones([n, n]))
    elif attn_mode == 'local':
        bandwidth = local_attn_ctx
        ctx = min(n - 1, bandwidth - 1)
        b = torch.tril(torch.ones([n, n])) - torch.tril(torch.ones([n, n]), -ctx - 1)
    elif attn_mode == 'strided':
        stride = local_attn_ctx
        x = torch.reshape(torch.arange(n, dtype=torch.int32), [n, 1])
        y = torch.transpose(x, 0, 1)
        z = torch.zeros([n, n], dtype=torch.int32)
        q = z + x
        k = z + y
        c1 = q >= k
        c2 = torch.eq(torch.fmod(q - k, stride), 0)
        c3 = torch.logical_and(c1, c2)
        b = c3.float()
    elif attn_mode == 'fixed':
        stride, c = local_attn_ctx, 2
        q = torch.arange(n)[:, None]
        k = torch.arange(n)[None, :]
        same_block = torch.div(q, stride, rounding_mode='floor') == torch.div(k, stride, rounding_mode='floor')
        summary = (k % stride) >= stride - c
        b = ((q >= k) & (same_block | summary)).float()
    else:
        raise ValueError('Not yet implemented')
    b = torch.reshape(b, [1, 1, n, n])
    return b


def strided_transpose(x, n_ctx, local_attn_ctx, blocksize):
    bT_ctx = n_ctx // local_attn_ctx
    assert bT_ctx % blocksize == 0, f'{bT_ctx}, {blocksize}'
    n, t, embd = x.size()
    x = torch.reshape(x, [n, bT_ctx, local_attn_ctx, embd])
    x = torch.transpose(x, 1, 2)
    x = torch.reshape(x, [n, t, embd])
    return x


def strided_untranspose(x, n_ctx, local_attn_ctx):
    bT_ctx = n_ctx // local_attn_ctx
    n, t, embd = x.size()
    return x.reshape(n, local_attn_ctx, bT_ctx, embd).transpose(1, 2).reshape(n, t, embd)


def split_heads(x, n):
    b, t, c = x.size()
    return x.view(b, t, n, c // n).permute(0, 2, 1, 3)


def merge_heads(x):
    b, h, t, d = x.size()
    return x.permute(0, 2, 1, 3).contiguous().view(b, t, h * d)


def attention_impl(q, k, v, heads, attn_mode, local_attn_ctx=None, tf_style=False):
    """The dense path: the full (n, n) score matrix, masked."""
    q = split_heads(q, heads)
    k = split_heads(k, heads)
    v = split_heads(v, heads)
    n_timesteps = k.size(2)
    mask = get_attn_mask(n_timesteps, attn_mode, local_attn_ctx).to(q.dtype)
    w = torch.matmul(q, k.transpose(-2, -1))
    scale_amount = 1.0 / np.sqrt(q.size(-1))
    w = w * scale_amount
    if tf_style:
        w = w * mask + -1e9 * (1 - mask)
    else:
        w = w.masked_fill(~mask.bool(), float('-inf'))
    w = F.softmax(w, dim=-1)
    a = torch.matmul(w, v)
    return merge_heads(a)


def causal_block_attention(q, k, v, extra_mask=None):
    """Attention inside the last-but-one dim's blocks: q, k, v (..., L, d) with keys masked causally
    (or by ``extra_mask``, broadcast against the scores)."""
    L, S = q.size(-2), k.size(-2)
    w = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    allowed = torch.ones(L, S, dtype=torch.bool).tril(S - L) if extra_mask is None else extra_mask
    w = w.masked_fill(~allowed, float('-inf'))
    return torch.softmax(w, dim=-1) @ v


def blocksparse_attention(q, k, v, heads, attn_mode, local_attn_ctx):
    """The block-sparse path: no (n, n) mask, only blocks of the sequence."""
    n, t, embd = q.size()
    if attn_mode == 'strided':
        bT_ctx = t // local_attn_ctx
        q, k, v = (strided_transpose(z, t, local_attn_ctx, BLOCKSIZE) for z in (q, k, v))
        q, k, v = (split_heads(z, heads).reshape(n, heads, local_attn_ctx, bT_ctx, -1) for z in (q, k, v))
        a = causal_block_attention(q, k, v)  # causal inside each residue class
        a = merge_heads(a.reshape(n, heads, t, -1))
        return strided_untranspose(a, t, local_attn_ctx)
    if attn_mode == 'local':
        nb = t // local_attn_ctx
        q, k, v = (split_heads(z, heads).reshape(n, heads, nb, local_attn_ctx, -1) for z in (q, k, v))
        # keys of the previous block and this one; block 0's "previous block" is padding
        k2 = torch.cat([F.pad(k, (0, 0, 0, 0, 1, 0))[:, :, :-1], k], dim=3)
        v2 = torch.cat([F.pad(v, (0, 0, 0, 0, 1, 0))[:, :, :-1], v], dim=3)
        i = torch.arange(local_attn_ctx)[:, None]
        j = torch.arange(2 * local_attn_ctx)[None, :]
        dist = local_attn_ctx + i - j
        band = (dist >= 0) & (dist < local_attn_ctx)
        real = (torch.arange(nb)[:, None, None] > 0) | (j >= local_attn_ctx)
        a = causal_block_attention(q, k2, v2, extra_mask=band & real)
        return merge_heads(a.reshape(n, heads, t, -1))
    raise ValueError(attn_mode)


class SparseAttention(nn.Module):
    def __init__(self, n_embd, n_head, attn_mode, local_attn_ctx, dropout=0.1):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.resid_dropout = nn.Dropout(dropout)
        self.n_head, self.attn_mode, self.local_attn_ctx = n_head, attn_mode, local_attn_ctx
        self.blocksparse = True

    def forward(self, x):
        q, k, v = self.c_attn(x).split(x.size(-1), dim=2)
        if self.blocksparse:
            a = blocksparse_attention(q, k, v, self.n_head, self.attn_mode, self.local_attn_ctx)
        else:
            a = attention_impl(q, k, v, self.n_head, self.attn_mode, self.local_attn_ctx)
        return self.resid_dropout(self.c_proj(a))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, attn_mode, local_attn_ctx, dropout=0.1):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = SparseAttention(n_embd, n_head, attn_mode, local_attn_ctx, dropout)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd),
                                 nn.Dropout(dropout))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class SparseTransformer(nn.Module):
    def __init__(self, vocab_size, n_embd=32, n_head=2, modes=('local', 'strided', 'local', 'strided'),
                 use_checkpoint=True):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.row_emb = nn.Parameter(torch.zeros(ROWS, n_embd))
        self.col_emb = nn.Parameter(torch.zeros(STRIDE, n_embd))
        self.blocks = nn.ModuleList([Block(n_embd, n_head, m, STRIDE) for m in modes])
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.use_checkpoint = use_checkpoint
        self.apply(self._init_weights)
        nn.init.normal_(self.row_emb, std=0.02)
        nn.init.normal_(self.col_emb, std=0.02)
        for name, p in self.named_parameters():
            if name.endswith('c_proj.weight') or name.endswith('mlp.2.weight'):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * len(modes)))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def set_blocksparse(self, flag):
        for block in self.blocks:
            block.attn.blocksparse = flag

    def forward(self, idx):
        t = idx.size(1)
        pos = torch.arange(t, device=idx.device)
        x = self.tok_emb(idx) + self.row_emb[pos // STRIDE] + self.col_emb[pos % STRIDE]
        for block in self.blocks:
            if self.use_checkpoint and self.training:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.head(self.ln_f(x))


def get_batch(batch_size, rng):
    first = rng.integers(0, VOCAB, size=(batch_size, 1, STRIDE))
    rows = (first + np.arange(ROWS)[None, :, None]) % VOCAB
    seq = torch.from_numpy(rows.reshape(batch_size, N_CTX).astype(np.int64))
    # predict token t from tokens < t: a start token then the sequence shifted by one
    inputs = torch.cat([torch.zeros(batch_size, 1, dtype=torch.long), seq[:, :-1]], dim=1)
    return inputs, seq


rng = np.random.default_rng(seed)

# the masks, and the block-sparse paths against the dense masked ones
for mode in ('all', 'local', 'strided', 'fixed'):
    m = get_attn_mask(N_CTX, mode, STRIDE)
    print(f"{mode:8s} mask {tuple(m.shape)} allowed pairs {int(m.sum().item())} of {N_CTX * N_CTX}")
heads, embd = 2, 16
q0, k0, v0 = (torch.randn(3, N_CTX, embd, dtype=torch.float64, requires_grad=True) for _ in range(3))
block_err = 0.0
for mode in ('strided', 'local'):
    dense = attention_impl(q0, k0, v0, heads, mode, STRIDE)
    dense_tf = attention_impl(q0, k0, v0, heads, mode, STRIDE, tf_style=True)
    sparse = blocksparse_attention(q0, k0, v0, heads, mode, STRIDE)
    g_out = torch.randn_like(dense)
    g_dense = torch.autograd.grad(dense, (q0, k0, v0), g_out)
    g_sparse = torch.autograd.grad(sparse, (q0, k0, v0), g_out)
    err = max([(dense - sparse).abs().max().item(), (dense - dense_tf).abs().max().item()]
              + [(a - b).abs().max().item() for a, b in zip(g_dense, g_sparse)])
    block_err = max(block_err, err)
    print(f"{mode} block-sparse vs masked dense {tuple(sparse.shape)}: values and q/k/v gradients err {err:.2e}")
assert block_err < 1e-10, block_err

model = SparseTransformer(VOCAB)
print(f"SparseTransformer parameters: {sum(p.numel() for p in model.parameters())}")

# checkpointed blocks (dropout replayed) give the plain run's gradients; dense and block paths agree
probe_x, probe_y = get_batch(4, rng)
grads = {}
for use_ckpt in (True, False):
    model.use_checkpoint = use_ckpt
    model.zero_grad()
    torch.manual_seed(1234)
    loss = F.cross_entropy(model(probe_x).view(-1, VOCAB), probe_y.view(-1))
    loss.backward()
    grads[use_ckpt] = [p.grad.clone() for p in model.parameters()]
model.use_checkpoint = True
model.zero_grad()
ckpt_err = max((a - b).abs().max().item() for a, b in zip(grads[True], grads[False]))
model.eval()
with torch.no_grad():
    logits_block = model(probe_x)
    model.set_blocksparse(False)
    logits_dense = model(probe_x)
    model.set_blocksparse(True)
model.train()
model_err = (logits_block - logits_dense).abs().max().item()
print(f"checkpoint vs plain gradients err {ckpt_err:.2e}; model block vs dense logits err {model_err:.2e}")

STEPS, WARMUP = 100, 15
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.01)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / WARMUP))
test_x, test_y = get_batch(64, rng)


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(test_x)
        loss = F.cross_entropy(logits.view(-1, VOCAB), test_y.view(-1)).item()
        pred = logits.argmax(-1)[:, STRIDE:]  # rows after the first are determined
        acc = (pred == test_y[:, STRIDE:]).float().mean().item()
    model.train()
    return loss, acc


loss_start, acc_start = evaluate()
for step in range(STEPS):
    x, y = get_batch(16, rng)
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, VOCAB), y.view(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    if step % 25 == 0 or step == STEPS - 1:
        print(f"step {step:3d} loss {loss.item():.4f} lr {scheduler.get_last_lr()[0]:.5f}")

loss_end, acc_end = evaluate()
print(f"test loss {loss_start:.4f} -> {loss_end:.4f} (first row alone costs {math.log(VOCAB) / ROWS:.4f}), "
      f"predictable-row accuracy {acc_start:.4f} -> {acc_end:.4f}")
print(f"FINAL test_loss={loss_end:.4f} acc={acc_end:.4f} block_err={block_err:.3e} ckpt_err={ckpt_err:.3e} "
      f"model_err={model_err:.3e}")
