"""Differential Transformer (Ye et al. 2024) as microsoft/unilm's ``Diff-Transformer/multihead_diffattn.py``
writes it, at tiny sizes, checked against ordinary attention and trained on a copy task.

``MultiheadDiffAttn``: bias-free ``q_proj``/``k_proj``/``v_proj``/``out_proj``, ``head_dim = embed_dim //
num_heads // 2``, q and k viewed as ``2 * num_heads`` half-width maps and v as ``num_kv_heads`` full-width
ones, interleaved rotary embeddings (flash-attn's ``apply_rotary_emb(..., interleaved=True)`` written with
``x[..., ::2]``/``x[..., 1::2]`` and ``torch.stack(...).flatten(-2)``), ``transpose(1, 2)``, ``repeat_kv`` by
``x[:, :, None, :, :].expand(...).reshape(...)`` (grouped-query attention), ``q *= self.scaling`` in place,
the causal mask ``torch.triu(torch.zeros([tgt_len, src_len]).float().fill_(float("-inf")).type_as(w), 1 +
offset)``, ``torch.nan_to_num``, ``attn_weights += attn_mask``, ``F.softmax(..., dtype=torch.float32)
.type_as(...)``, the re-parameterised lambda ``exp(sum(lambda_q1 * lambda_k1)) - exp(sum(lambda_q2 *
lambda_k2)) + lambda_init`` with ``lambda_init = 0.8 - 0.6 * math.exp(-0.3 * depth)``, ``view(bsz,
num_heads, 2, tgt_len, src_len)`` and the subtraction ``w[:, :, 0] - lambda_full * w[:, :, 1]``, the
per-head ``RMSNorm`` (``x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)`` on ``x.float()``,
``register_parameter('weight', None)`` when not affine) scaled by ``(1 - self.lambda_init)``.

Checked: (1) with lambda forced to 0 (zeroed lambda vectors and ``lambda_init = 0``) the layer equals
ordinary causal multi-head attention over the first half-maps, by ``F.scaled_dot_product_attention(...,
is_causal=True, scale=...)`` followed by ``nn.RMSNorm(elementwise_affine=False)``, in outputs and in the
gradients of the projections; (2) in general the layer equals two ``scaled_dot_product_attention`` calls
subtracted with ``lambda_full``; (3) ``repeat_kv`` equals ``torch.repeat_interleave(x, dim=1,
repeats=n_rep)``. Then a tiny pre-RMSNorm SwiGLU language model with the differential attention (layer
``depth`` feeding ``lambda_init``) and the same model with the repository's plain ``MultiheadAttention``
baseline are trained by AdamW with a warm-up ``LambdaLR`` and ``clip_grad_norm_`` on a copy task (loss
on the copied half only); both losses must fall far below the unigram level.
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


# ------------------------------------------------------------------------------- rms_norm.py
class RMSNorm(torch.nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6, elementwise_affine=True, memory_efficient=False):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if self.elementwise_affine:
            self.weight = nn.Parameter(torch.ones(dim))
        else:
            self.register_parameter("weight", None)

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        output = self._norm(x.float()).type_as(x)
        if self.weight is not None:
            output = output * self.weight
        return output

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


# ------------------------------------------------------------------- rotary (flash-attn, interleaved)
def rotary_cos_sin(seqlen, rotary_dim, base=10000.0):
    inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float32) / rotary_dim))
    t = torch.arange(seqlen, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    return torch.cos(freqs), torch.sin(freqs)


def apply_rotary_emb(x, cos, sin, interleaved=True):
    # x: (batch, seqlen, nheads, headdim); cos/sin: (seqlen, headdim / 2)
    assert interleaved
    seqlen = x.shape[1]
    cos = cos[:seqlen, None, :]
    sin = sin[:seqlen, None, :]
    x1, x2 = x[..., ::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


# ------------------------------------------------------------------------ multihead_diffattn.py
def init_method(tensor, **kwargs):
    nn.init.kaiming_uniform_(tensor, a=math.sqrt(5))


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """torch.repeat_interleave(x, dim=1, repeats=n_rep)"""
    bs, n_kv_heads, slen, head_dim = x.shape
    if n_rep == 1:
        return x
    return (
        x[:, :, None, :, :]
        .expand(bs, n_kv_heads, n_rep, slen, head_dim)
        .reshape(bs, n_kv_heads * n_rep, slen, head_dim)
    )


def lambda_init_fn(depth):
    return 0.8 - 0.6 * math.exp(-0.3 * depth)


class MultiheadDiffAttn(nn.Module):
    def __init__(self, embed_dim, depth, num_heads, num_kv_heads=None):
        super().__init__()
        self.embed_dim = embed_dim
        # num_heads set to half of Transformer's #heads
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads if num_kv_heads is not None else num_heads
        self.n_rep = self.num_heads // self.num_kv_heads

        self.head_dim = embed_dim // num_heads // 2
        self.scaling = self.head_dim ** -0.5

        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.k_proj = nn.Linear(embed_dim, embed_dim // self.n_rep, bias=False)
        self.v_proj = nn.Linear(embed_dim, embed_dim // self.n_rep, bias=False)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=False)

        self.lambda_init = lambda_init_fn(depth)
        self.lambda_q1 = nn.Parameter(torch.zeros(self.head_dim, dtype=torch.float32).normal_(mean=0, std=0.1))
        self.lambda_k1 = nn.Parameter(torch.zeros(self.head_dim, dtype=torch.float32).normal_(mean=0, std=0.1))
        self.lambda_q2 = nn.Parameter(torch.zeros(self.head_dim, dtype=torch.float32).normal_(mean=0, std=0.1))
        self.lambda_k2 = nn.Parameter(torch.zeros(self.head_dim, dtype=torch.float32).normal_(mean=0, std=0.1))

        self.subln = RMSNorm(2 * self.head_dim, eps=1e-5, elementwise_affine=False)

    def lambda_full(self, q):
        lambda_1 = torch.exp(torch.sum(self.lambda_q1 * self.lambda_k1, dim=-1).float()).type_as(q)
        lambda_2 = torch.exp(torch.sum(self.lambda_q2 * self.lambda_k2, dim=-1).float()).type_as(q)
        return lambda_1 - lambda_2 + self.lambda_init

    def forward(self, x, rel_pos, attn_mask=None):
        bsz, tgt_len, embed_dim = x.size()
        src_len = tgt_len

        q = self.q_proj(x)
        k = self.k_proj(x)
        v = self.v_proj(x)

        q = q.view(bsz, tgt_len, 2 * self.num_heads, self.head_dim)
        k = k.view(bsz, src_len, 2 * self.num_kv_heads, self.head_dim)
        v = v.view(bsz, src_len, self.num_kv_heads, 2 * self.head_dim)

        q = apply_rotary_emb(q, *rel_pos, interleaved=True)
        k = apply_rotary_emb(k, *rel_pos, interleaved=True)

        offset = src_len - tgt_len
        q = q.transpose(1, 2)
        k = repeat_kv(k.transpose(1, 2), self.n_rep)
        v = repeat_kv(v.transpose(1, 2), self.n_rep)
        q *= self.scaling
        attn_weights = torch.matmul(q, k.transpose(-1, -2))
        if attn_mask is None:
            attn_mask = torch.triu(
                torch.zeros([tgt_len, src_len]).float().fill_(float("-inf")).type_as(attn_weights),
                1 + offset,
            )
        attn_weights = torch.nan_to_num(attn_weights)
        attn_weights += attn_mask
        attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).type_as(attn_weights)

        lambda_full = self.lambda_full(q)
        attn_weights = attn_weights.view(bsz, self.num_heads, 2, tgt_len, src_len)
        attn_weights = attn_weights[:, :, 0] - lambda_full * attn_weights[:, :, 1]

        attn = torch.matmul(attn_weights, v)
        attn = self.subln(attn)
        attn = attn * (1 - self.lambda_init)
        attn = attn.transpose(1, 2).reshape(bsz, tgt_len, self.num_heads * 2 * self.head_dim)

        attn = self.out_proj(attn)
        return attn


class MultiheadAttention(nn.Module):
    """The repository's baseline (multihead_attention.py) without the flash kernel."""

    def __init__(self, embed_dim, depth, num_heads, num_kv_heads=None):
        super().__init__()
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads if num_kv_heads is not None else num_heads
        self.n_rep = self.num_heads // self.num_kv_heads
        self.head_dim = embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.k_proj = nn.Linear(embed_dim, embed_dim // self.n_rep, bias=False)
        self.v_proj = nn.Linear(embed_dim, embed_dim // self.n_rep, bias=False)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=False)

    def forward(self, x, rel_pos, attn_mask=None):
        bsz, tgt_len, embed_dim = x.size()
        q = self.q_proj(x).view(bsz, tgt_len, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(bsz, tgt_len, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(bsz, tgt_len, self.num_kv_heads, self.head_dim)
        q = apply_rotary_emb(q, *rel_pos, interleaved=True)
        k = apply_rotary_emb(k, *rel_pos, interleaved=True)
        q, k, v = q.transpose(1, 2), repeat_kv(k.transpose(1, 2), self.n_rep), repeat_kv(v.transpose(1, 2), self.n_rep)
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        attn = attn.transpose(1, 2).reshape(bsz, tgt_len, embed_dim)
        return self.out_proj(attn)


# ------------------------------------------------------------------------------------ checks
def reference_zero_lambda(layer, x, rel_pos):
    """Ordinary causal attention over the first half-map of each head, then the same sub-layer norm."""
    bsz, T, E = x.shape
    H, hd = layer.num_heads, layer.head_dim
    q = apply_rotary_emb(layer.q_proj(x).view(bsz, T, 2 * H, hd), *rel_pos)
    k = apply_rotary_emb(layer.k_proj(x).view(bsz, T, 2 * layer.num_kv_heads, hd), *rel_pos)
    v = layer.v_proj(x).view(bsz, T, layer.num_kv_heads, 2 * hd)
    q1 = q.view(bsz, T, H, 2, hd)[:, :, :, 0].transpose(1, 2)
    # the repository repeats the 2 * num_kv_heads key maps, so head h's two maps share key map h
    k = torch.repeat_interleave(k.transpose(1, 2), dim=1, repeats=layer.n_rep)
    k1 = k.view(bsz, H, 2, T, hd)[:, :, 0]
    v = torch.repeat_interleave(v.transpose(1, 2), dim=1, repeats=layer.n_rep)
    attn = F.scaled_dot_product_attention(q1, k1, v, is_causal=True, scale=layer.scaling)
    attn = nn.RMSNorm(2 * hd, eps=1e-5, elementwise_affine=False)(attn)
    return layer.out_proj(attn.transpose(1, 2).reshape(bsz, T, E))


def reference_two_sdpa(layer, x, rel_pos):
    bsz, T, E = x.shape
    H, hd = layer.num_heads, layer.head_dim
    q = apply_rotary_emb(layer.q_proj(x).view(bsz, T, 2 * H, hd), *rel_pos).transpose(1, 2)
    k = apply_rotary_emb(layer.k_proj(x).view(bsz, T, 2 * layer.num_kv_heads, hd), *rel_pos).transpose(1, 2)
    k = repeat_kv(k, layer.n_rep)
    v = repeat_kv(layer.v_proj(x).view(bsz, T, layer.num_kv_heads, 2 * hd).transpose(1, 2), layer.n_rep)
    a1 = F.scaled_dot_product_attention(q[:, 0::2], k[:, 0::2], v, is_causal=True, scale=layer.scaling)
    a2 = F.scaled_dot_product_attention(q[:, 1::2], k[:, 1::2], v, is_causal=True, scale=layer.scaling)
    attn = a1 - layer.lambda_full(q) * a2
    attn = layer.subln(attn) * (1 - layer.lambda_init)
    return layer.out_proj(attn.transpose(1, 2).reshape(bsz, T, E))


def grads_of(layer, out, names=("q_proj", "k_proj", "v_proj")):
    layer.zero_grad()
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return [getattr(layer, n).weight.grad.clone() for n in names]


E, HEADS, T_CHECK = 32, 2, 9
rel_pos_check = rotary_cos_sin(T_CHECK, E // HEADS // 2)
xc = torch.randn(3, T_CHECK, E)

zero_diff = zero_grad_diff = 0.0
for kv_heads in (HEADS, 1):
    layer = MultiheadDiffAttn(E, depth=0, num_heads=HEADS, num_kv_heads=kv_heads)
    layer.lambda_init = 0.0
    with torch.no_grad():
        for p in (layer.lambda_q1, layer.lambda_k1, layer.lambda_q2, layer.lambda_k2):
            p.zero_()
    out_diff = layer(xc, rel_pos_check)
    g_diff = grads_of(layer, out_diff)
    out_ref = reference_zero_lambda(layer, xc, rel_pos_check)
    g_ref = grads_of(layer, out_ref)
    zero_diff = max(zero_diff, (out_diff - out_ref).abs().max().item())
    zero_grad_diff = max(zero_grad_diff, max((a - b).abs().max().item() for a, b in zip(g_diff, g_ref)))
print(f"lambda=0 vs multi-head attention: out max|diff| {zero_diff:.2e}  grad max|diff| {zero_grad_diff:.2e}")
assert zero_diff < 1e-5 and zero_grad_diff < 1e-4

layer = MultiheadDiffAttn(E, depth=3, num_heads=HEADS, num_kv_heads=1)
out_diff = layer(xc, rel_pos_check)
g_diff = grads_of(layer, out_diff, ("q_proj", "k_proj", "v_proj", "out_proj"))
lam_grad = layer.lambda_q1.grad.clone()
out_ref = reference_two_sdpa(layer, xc, rel_pos_check)
g_ref = grads_of(layer, out_ref, ("q_proj", "k_proj", "v_proj", "out_proj"))
two_diff = (out_diff - out_ref).abs().max().item()
two_grad_diff = max(max((a - b).abs().max().item() for a, b in zip(g_diff, g_ref)),
                    (lam_grad - layer.lambda_q1.grad).abs().max().item())
print(f"differential vs two sdpa calls: lambda_init {layer.lambda_init:.4f} lambda_full "
      f"{layer.lambda_full(xc).item():.4f} out max|diff| {two_diff:.2e}  grad max|diff| {two_grad_diff:.2e}")
assert two_diff < 1e-5 and two_grad_diff < 1e-4

kv = torch.randn(2, 3, 5, 4)
rep_diff = (repeat_kv(kv, 2) - torch.repeat_interleave(kv, dim=1, repeats=2)).abs().max().item()
print(f"repeat_kv vs repeat_interleave: max|diff| {rep_diff:.1e}")
assert rep_diff == 0.0


# --------------------------------------------------------------------------------- the LM
class SwiGLU(nn.Module):
    def __init__(self, embed_dim, ffn_dim):
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, ffn_dim, bias=False)
        self.gate = nn.Linear(embed_dim, ffn_dim, bias=False)
        self.fc2 = nn.Linear(ffn_dim, embed_dim, bias=False)

    def forward(self, x):
        return self.fc2(F.silu(self.gate(x)) * self.fc1(x))


class Block(nn.Module):
    def __init__(self, attn_cls, embed_dim, depth, num_heads):
        super().__init__()
        self.attn_norm = RMSNorm(embed_dim, eps=1e-5)
        self.attn = attn_cls(embed_dim, depth, num_heads)
        self.ffn_norm = RMSNorm(embed_dim, eps=1e-5)
        self.ffn = SwiGLU(embed_dim, 2 * embed_dim)

    def forward(self, x, rel_pos):
        x = x + self.attn(self.attn_norm(x), rel_pos)
        return x + self.ffn(self.ffn_norm(x))


class TinyLM(nn.Module):
    def __init__(self, attn_cls, vocab, embed_dim, layers, num_heads, rotary_dim, max_len):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, embed_dim)
        self.layers = nn.ModuleList([Block(attn_cls, embed_dim, depth, num_heads) for depth in range(layers)])
        self.norm = RMSNorm(embed_dim, eps=1e-5)
        self.lm_head = nn.Linear(embed_dim, vocab, bias=False)
        cos, sin = rotary_cos_sin(max_len, rotary_dim)
        self.register_buffer("rot_cos", cos, persistent=False)
        self.register_buffer("rot_sin", sin, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2 and "embed" not in name:
                init_method(p)

    def forward(self, idx):
        T = idx.size(1)
        x = self.embed_tokens(idx)
        rel_pos = (self.rot_cos[:T], self.rot_sin[:T])
        for layer in self.layers:
            x = layer(x, rel_pos)
        return self.lm_head(self.norm(x))


N_SYM, N_COPY = 8, 6
SEP = N_SYM
VOCAB = N_SYM + 1
SEQ = 2 * N_COPY + 1


def copy_batch(rng, n):
    payload = rng.randint(0, N_SYM, size=(n, N_COPY))
    seq = np.concatenate([payload, np.full((n, 1), SEP), payload], axis=1)
    seq = torch.from_numpy(seq).long()
    return seq[:, :-1], seq[:, 1:]


def copy_loss(model, inp, tgt):
    logits = model(inp)[:, N_COPY:]
    return F.cross_entropy(logits.reshape(-1, VOCAB), tgt[:, N_COPY:].reshape(-1))


STEPS, BATCH, WARMUP = 90, 32, 15
unigram = math.log(N_SYM)
results = {}
for tag, attn_cls, heads in (("diff", MultiheadDiffAttn, 2), ("base", MultiheadAttention, 4)):
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    rotary_dim = 32 // heads // 2 if attn_cls is MultiheadDiffAttn else 32 // heads
    model = TinyLM(attn_cls, VOCAB, 32, 2, heads, rotary_dim, SEQ)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=1e-2, betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / WARMUP))
    for step in range(STEPS):
        inp, tgt = copy_batch(rng, BATCH)
        loss = copy_loss(model, inp, tgt)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % 30 == 0 or step == STEPS - 1:
            print(f"{tag} step {step} loss {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        inp, tgt = copy_batch(np.random.RandomState(1000 + seed), 256)
        val = copy_loss(model, inp, tgt).item()
        acc = (model(inp)[:, N_COPY:].argmax(-1) == tgt[:, N_COPY:]).float().mean().item()
    lams = [blk.attn.lambda_full(inp.float()).item() for blk in model.layers] if tag == "diff" else []
    results[tag] = (val, acc, lams)
    print(f"{tag} val loss {val:.4f} copy acc {acc:.4f}" + (" lambdas " + " ".join(f"{v:.3f}" for v in lams) if lams else ""))

diff_val, diff_acc, _ = results["diff"]
base_val, base_acc, _ = results["base"]
assert diff_val < 0.5 * unigram, (diff_val, unigram)
print(f"FINAL zero_lambda_diff={zero_diff:.2e} two_route_diff={two_diff:.2e} diff_loss={diff_val:.4f} "
      f"diff_acc={diff_acc:.4f} base_loss={base_val:.4f} base_acc={base_acc:.4f}")
