"""Linear attention and Gated Linear Attention (GLA) in the layout of fla-org/flash-linear-attention's
naive references (``fla/ops/*/naive.py``) and idiap/fast-transformers' ``CausalLinearAttention``.

Causal linear attention with the ``elu(x) + 1`` feature map is computed three ways: the parallel
form by ``torch.cumsum`` of the outer products ``k.unsqueeze(-1) * v.unsqueeze(-2)`` (with the
normaliser ``1 / (q . cumsum(k))``), the chunkwise form (intra-chunk ``q @ k.transpose(-1, -2)``
masked by ``torch.tril``, the inter-chunk state carried across chunks and read by
``torch.einsum('bhcd,bhde->bhce', ...)``) and the recurrent form stepping the state ``S``. GLA adds a
data-dependent per-key decay ``g = torch.sigmoid(...) ** (1 / 16)`` (``F.logsigmoid(gk) / 16`` in
log space): recurrent ``S = S * g + k^T v``, and chunkwise with ``torch.exp(torch.cumsum(log_g,
dim=-2))`` decays inside each chunk and the state decayed by the chunk's last cumulative gate.

A tiny GLA language model (embedding, GLA token mixer with an output gate, ``nn.LayerNorm``, an
MLP, tied head) is trained a few Adam steps on a synthetic next-token task in chunk mode. Checked:
the three forms agree (forward ``torch.allclose``), the chunk and recurrent forms give the same
parameter gradients (on a float64 ``copy.deepcopy(model).double()``), and the loss falls.
"""

import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

B, H, T, D, E, CHUNK = 2, 2, 32, 8, 8, 8


# ------------------------------------------------------------------ linear attention (fast-transformers)
def feature_map(x):
    return F.elu(x) + 1


def causal_linear_attention_cumsum(q, k, v, eps=1e-6):
    q, k = feature_map(q), feature_map(k)
    kv = torch.cumsum(k.unsqueeze(-1) * v.unsqueeze(-2), dim=2)  # b h t d e
    z = 1 / (torch.einsum("bhtd,bhtd->bht", q, k.cumsum(dim=2)) + eps)
    return torch.einsum("bhtd,bhtde,bht->bhte", q, kv, z)


def causal_linear_attention_chunk(q, k, v, chunk_size=CHUNK, eps=1e-6):
    q, k = feature_map(q), feature_map(k)
    b, h, t, d = q.shape
    e = v.shape[-1]
    q, k, v = (x.view(b, h, t // chunk_size, chunk_size, -1) for x in (q, k, v))
    mask = torch.tril(torch.ones(chunk_size, chunk_size, dtype=torch.bool))
    S = q.new_zeros(b, h, d, e)
    z_state = q.new_zeros(b, h, d)
    outs = []
    for i in range(t // chunk_size):
        q_i, k_i, v_i = q[:, :, i], k[:, :, i], v[:, :, i]
        attn = (q_i @ k_i.transpose(-1, -2)).masked_fill(~mask, 0)
        num = attn @ v_i + torch.einsum("bhcd,bhde->bhce", q_i, S)
        den = attn.sum(-1) + torch.einsum("bhcd,bhd->bhc", q_i, z_state)
        outs.append(num / (den + eps).unsqueeze(-1))
        S = S + k_i.transpose(-1, -2) @ v_i
        z_state = z_state + k_i.sum(-2)
    return torch.stack(outs, dim=2).view(b, h, t, e)


def causal_linear_attention_recurrent(q, k, v, eps=1e-6):
    q, k = feature_map(q), feature_map(k)
    b, h, t, d = q.shape
    S = q.new_zeros(b, h, d, v.shape[-1])
    z_state = q.new_zeros(b, h, d)
    o = []
    for i in range(t):
        S = S + k[:, :, i, :, None] * v[:, :, i, None, :]
        z_state = z_state + k[:, :, i]
        num = (q[:, :, i, None, :] @ S).squeeze(-2)
        den = (q[:, :, i] * z_state).sum(-1, keepdim=True)
        o.append(num / (den + eps))
    return torch.stack(o, dim=2)


# ------------------------------------------------------------------ GLA (fla naive references)
def naive_recurrent_gla(q, k, v, gk, scale=None):
    dtype = q.dtype
    q, k, v, gk = (x.float() if x.dtype in (torch.float16, torch.bfloat16) else x for x in (q, k, v, gk))
    b, h, t, d = q.shape
    if scale is None:
        scale = d**-0.5
    S = q.new_zeros(b, h, d, v.shape[-1])
    o = torch.zeros_like(v)
    for i in range(t):
        q_i = q[:, :, i] * scale
        k_i, v_i = k[:, :, i], v[:, :, i]
        g_i = gk[:, :, i].exp()
        kv_i = k_i[..., None] * v_i[..., None, :]
        S = S * g_i[..., None] + kv_i
        o[:, :, i] = (q_i[..., None] * S).sum(-2)
    return o.to(dtype)


def naive_chunk_gla(q, k, v, gk, chunk_size=CHUNK, scale=None):
    b, h, t, d = q.shape
    if scale is None:
        scale = d**-0.5
    n = t // chunk_size
    q, k, v, gk = (x.reshape(b, h, n, chunk_size, x.shape[-1]) for x in (q, k, v, gk))
    q = q * scale
    gk = torch.cumsum(gk, dim=-2)  # within each chunk
    mask = torch.triu(torch.ones(chunk_size, chunk_size, dtype=torch.bool), diagonal=1)
    S = q.new_zeros(b, h, d, v.shape[-1])
    o = torch.zeros_like(v)
    for i in range(n):
        q_i, k_i, v_i, g_i = q[:, :, i], k[:, :, i], v[:, :, i], gk[:, :, i]
        g_last = g_i[:, :, -1:]
        q_g = q_i * torch.exp(g_i)
        k_g = k_i * torch.exp(-g_i)
        A = (q_g @ k_g.transpose(-1, -2)).masked_fill(mask, 0)
        o_inter = torch.einsum("bhcd,bhde->bhce", q_g, S)
        o[:, :, i] = o_inter + A @ v_i
        S = S * torch.exp(g_last).transpose(-1, -2) + (k_i * torch.exp(g_last - g_i)).transpose(-1, -2) @ v_i
    return o.reshape(b, h, t, -1)


def naive_parallel_gla(q, k, v, gk, scale=None):
    # whole-sequence cumulative decay: exp(cumsum(log_g)) over time, as in the chunk form with one chunk
    d = q.shape[-1]
    if scale is None:
        scale = d**-0.5
    b_cum = torch.cumsum(gk, dim=-2)
    A = torch.einsum("bhid,bhjd->bhij", q * scale * torch.exp(b_cum), k * torch.exp(-b_cum))
    A = A.masked_fill(~torch.tril(torch.ones(q.shape[2], q.shape[2], dtype=torch.bool)), 0)
    return A @ v


torch_q = torch.randn(B, H, T, D, dtype=torch.float64)
torch_k = torch.randn(B, H, T, D, dtype=torch.float64)
torch_v = torch.randn(B, H, T, E, dtype=torch.float64)
la_cum = causal_linear_attention_cumsum(torch_q, torch_k, torch_v)
la_chunk = causal_linear_attention_chunk(torch_q, torch_k, torch_v)
la_rec = causal_linear_attention_recurrent(torch_q, torch_k, torch_v)
la_agree = torch.allclose(la_cum, la_chunk, atol=1e-10) and torch.allclose(la_cum, la_rec, atol=1e-10)
print(f"linear attention {tuple(la_cum.shape)}: cumsum == chunk == recurrent: {la_agree}")

gk_raw = torch.randn(B, H, T, D, dtype=torch.float64)
log_g = F.logsigmoid(gk_raw) / 16
g_rec = naive_recurrent_gla(torch_q, torch_k, torch_v, log_g)
g_chunk = naive_chunk_gla(torch_q, torch_k, torch_v, log_g)
g_par = naive_parallel_gla(torch_q, torch_k, torch_v, log_g)
gla_agree = torch.allclose(g_rec.double(), g_chunk, atol=1e-6) and torch.allclose(g_chunk, g_par, atol=1e-9)
gla_err = max((g_rec.double() - g_chunk).abs().max().item(), (g_par - g_chunk).abs().max().item())
print(f"GLA {tuple(g_chunk.shape)}: recurrent == chunk == parallel: {gla_agree}")


# ------------------------------------------------------------------ a tiny GLA language model
class GatedLinearAttention(nn.Module):
    def __init__(self, hidden_size, num_heads, gate_low_rank_dim=4, gate_logit_normalizer=16, mode="chunk"):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.mode = mode
        self.gate_logit_normalizer = gate_logit_normalizer
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.g_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.gk_proj = nn.Sequential(nn.Linear(hidden_size, gate_low_rank_dim, bias=False),
                                     nn.Linear(gate_low_rank_dim, hidden_size, bias=True))
        self.g_norm = nn.LayerNorm(self.head_dim, elementwise_affine=False)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def _heads(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states):
        b, t, _ = hidden_states.shape
        q = self._heads(self.q_proj(hidden_states))
        k = self._heads(self.k_proj(hidden_states))
        v = self._heads(self.v_proj(hidden_states))
        gk = self._heads(F.logsigmoid(self.gk_proj(hidden_states)) / self.gate_logit_normalizer)
        if self.mode == "chunk":
            o = naive_chunk_gla(q, k, v, gk)
        else:
            o = naive_recurrent_gla(q, k, v, gk)
        o = self.g_norm(o).transpose(1, 2).reshape(b, t, -1)
        o = o * F.silu(self.g_proj(hidden_states))
        return self.o_proj(o)


class GLABlock(nn.Module):
    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.attn_norm = nn.LayerNorm(hidden_size)
        self.attn = GatedLinearAttention(hidden_size, num_heads)
        self.mlp_norm = nn.LayerNorm(hidden_size)
        self.mlp = nn.Sequential(nn.Linear(hidden_size, 2 * hidden_size), nn.GELU(), nn.Linear(2 * hidden_size, hidden_size))

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class GLAForCausalLM(nn.Module):
    def __init__(self, vocab_size, hidden_size=32, num_heads=2, num_layers=2):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, hidden_size)
        self.layers = nn.ModuleList([GLABlock(hidden_size, num_heads) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(hidden_size)
        self.lm_head = nn.Linear(hidden_size, vocab_size, bias=False)
        self.lm_head.weight = self.embeddings.weight
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.1)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.5)

    def set_mode(self, mode):
        for layer in self.layers:
            layer.attn.mode = mode

    def forward(self, input_ids, labels=None):
        x = self.embeddings(input_ids)
        for layer in self.layers:
            x = layer(x)
        logits = self.lm_head(self.norm(x))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1))
        return logits, loss


VOCAB, SEQ, BATCH, STEPS = 12, 32, 16, 100


def get_batch(rng):
    # a periodic sequence with a random period (2..4) and random tokens: the next token is the one
    # `period` steps back, which an attention-like mixer with decay can learn
    x = np.zeros((BATCH, SEQ), dtype=np.int64)
    for r in range(BATCH):
        period = rng.integers(2, 5)
        pattern = rng.integers(0, VOCAB, size=period)
        x[r] = np.resize(pattern, SEQ)
    return torch.from_numpy(x)


model = GLAForCausalLM(VOCAB)
print(f"GLA LM parameters: {sum(p.numel() for p in model.parameters())}")

# gradients of the chunk and the recurrent forms agree on the same batch
rng = np.random.default_rng(seed)
probe = get_batch(rng)
model64 = copy.deepcopy(model).double()  # float64 so the comparison is not float32 rounding
grads = {}
for mode in ("chunk", "recurrent"):
    model64.set_mode(mode)
    model64.zero_grad()
    _, loss = model64(probe, labels=probe)
    loss.backward()
    grads[mode] = [p.grad.clone() for p in model64.parameters()]
grads_agree = all(torch.allclose(a, b, atol=1e-10, rtol=1e-7) for a, b in zip(grads["chunk"], grads["recurrent"]))
print(f"chunk vs recurrent gradients over {len(grads['chunk'])} tensors agree: {grads_agree}")

optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
model.zero_grad(set_to_none=True)
first_loss = None
for step in range(STEPS):
    batch = get_batch(rng)
    _, loss = model(batch, labels=batch)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if first_loss is None:
        first_loss = loss.item()
    if step % 25 == 0 or step == STEPS - 1:
        print(f"step {step:3d} loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    test = get_batch(rng)
    logits, test_loss = model(test, labels=test)
    pred = logits[:, 7:-1].argmax(-1)
    acc = (pred == test[:, 8:]).float().mean().item()
    model.set_mode("recurrent")
    logits_rec, _ = model(test)
    eval_agree = torch.allclose(logits, logits_rec, atol=1e-4)
print(f"test loss {test_loss.item():.4f} acc after warm-up {acc:.4f}, chunk == recurrent logits: {eval_agree}")

checks = int(la_agree and gla_agree and grads_agree and eval_agree)
print(f"FINAL first_loss={first_loss:.4f} test_loss={test_loss.item():.4f} acc={acc:.4f} forms_agree={checks}")
