"""DeltaNet (Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over Sequence
Length") in the layout of fla-org/flash-linear-attention's naive torch references
(``fla/ops/delta_rule/naive.py``), trained on a toy associative-recall task.

The delta rule keeps a fast-weight state ``S`` (d_k x d_v) and, per token, writes the value the
key should retrieve: ``S = S + beta * k^T (v - k S)`` with L2-normalised keys and a per-token
write strength ``beta = sigmoid(...)``. It is computed two ways: the recurrent loop, and the
chunkwise form, where the WY/UT representation of a chunk's product of Householder-like updates
is built row by row (``attn[..., i, :i] += (attn[..., i, :, None].clone() * attn[..., :, :i].clone()).sum(-2)``),
plus ``torch.eye``, giving ``u = A v`` and ``w = A k_beta``; the state is then carried across chunks.

A small model (embedding, two DeltaNet layers with a causal depthwise short convolution + SiLU on
q/k/v, ``nn.RMSNorm``, a SwiGLU MLP, an output head) learns multi-query associative recall: a
sequence lists key/value pairs, then asks keys again, and must answer each with its value. Checked:
the chunked and recurrent forms agree (forward on random inputs, the model's logits and one
parameter's gradient, in float64), and recall accuracy rises from chance.
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


def rearrange_chunks(x, chunk_size):
    # einops: rearrange(x, 'b h (n c) d -> b h n c d', c=chunk_size)
    b, h, l, d = x.shape
    return x.reshape(b, h, l // chunk_size, chunk_size, d)


def delta_rule_recurrence(q, k, v, beta, initial_state=None):
    orig_dtype = q.dtype
    b, h, l, d_k = q.shape
    q, k, v, beta = map(lambda x: x.float() if x.dtype != torch.float64 else x, [q, k, v, beta])
    d_v = v.shape[-1]
    o = torch.zeros_like(v)
    S = torch.zeros(b, h, d_k, d_v).to(v)
    q = q * (d_k**-0.5)
    if beta.ndim < v.ndim:
        beta = beta[..., None]
    if initial_state is not None:
        S += initial_state
    for i in range(l):
        _k = k[:, :, i]
        _q = q[:, :, i]
        _v = v[:, :, i].clone()
        beta_i = beta[:, :, i]
        _v = _v - (S.clone() * _k[..., None]).sum(-2)
        _v = _v * beta_i
        S = S.clone() + _k.unsqueeze(-1) * _v.unsqueeze(-2)
        o[:, :, i] = torch.einsum("bhd,bhdm->bhm", _q, S)
    return o.to(orig_dtype), S


def delta_rule_chunkwise(q, k, v, beta, chunk_size=8):
    b, h, l, d_k = q.shape
    d_v = v.shape[-1]
    q = q * (d_k**-0.5)
    v = v * beta[..., None]
    k_beta = k * beta[..., None]
    assert l % chunk_size == 0
    # (I - tril(diag(beta) K K^T, -1))^{-1} by forward substitution, one row at a time
    mask = torch.triu(torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device), diagonal=0)
    q, k, v, k_beta = (rearrange_chunks(x, chunk_size) for x in (q, k, v, k_beta))
    attn = -(k_beta @ k.transpose(-1, -2)).masked_fill(mask, 0)
    for i in range(1, chunk_size):
        attn[..., i, :i] = attn[..., i, :i] + (attn[..., i, :, None].clone() * attn[..., :, :i].clone()).sum(-2)
    attn = attn + torch.eye(chunk_size, dtype=torch.float, device=q.device)
    u = attn @ v
    w = attn @ k_beta
    S = k.new_zeros(b, h, d_k, d_v)
    o = torch.zeros_like(v)
    mask = torch.triu(torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device), diagonal=1)
    for i in range(0, l // chunk_size):
        q_i, k_i = q[:, :, i], k[:, :, i]
        attn = (q_i @ k_i.transpose(-1, -2)).masked_fill_(mask, 0)
        u_i = u[:, :, i] - w[:, :, i] @ S
        o_inter = q_i @ S
        o[:, :, i] = o_inter + attn @ u_i
        S = S + k_i.transpose(-1, -2) @ u_i
    return o.reshape(b, h, l, d_v), S


# ------------------------------------------------------------------ the two forms on random inputs
B, H, L, DK, DV = 2, 2, 32, 8, 6
q0 = F.normalize(torch.randn(B, H, L, DK, dtype=torch.float64), p=2, dim=-1)
k0 = F.normalize(torch.randn(B, H, L, DK, dtype=torch.float64), p=2, dim=-1)
v0 = torch.randn(B, H, L, DV, dtype=torch.float64)
beta0 = torch.rand(B, H, L, dtype=torch.float64).sigmoid()
o_rec, S_rec = delta_rule_recurrence(q0, k0, v0, beta0)
o_chunk, S_chunk = delta_rule_chunkwise(q0, k0, v0, beta0)
forward_err = max((o_rec - o_chunk).abs().max().item(), (S_rec - S_chunk).abs().max().item())
assert o_chunk.shape == (B, H, L, DV) and S_chunk.shape == (B, H, DK, DV)
assert torch.allclose(o_rec, o_chunk, atol=1e-10), forward_err
print(f"delta rule {tuple(o_chunk.shape)}, state {tuple(S_chunk.shape)}: recurrent == chunkwise: "
      f"{torch.allclose(o_rec, o_chunk, atol=1e-10)}")

# a key written with beta = 1 is retrieved exactly, whatever was stored under it before
k_one = F.normalize(torch.randn(1, 1, 1, DK, dtype=torch.float64), dim=-1)
state = S_rec[:1, :1]
v_new = torch.randn(1, 1, 1, DV, dtype=torch.float64)
_, S_written = delta_rule_recurrence(k_one * DK**0.5, k_one, v_new, torch.ones(1, 1, 1, dtype=torch.float64),
                                     initial_state=state)
retrieval_err = (k_one[0, 0] @ S_written[0, 0] - v_new[0, 0]).abs().max().item()
assert retrieval_err < 1e-12, retrieval_err
print(f"overwrite with beta=1 then read back: exact: {retrieval_err < 1e-12}")


# ------------------------------------------------------------------ the model
class ShortConvolution(nn.Conv1d):
    """fla's causal depthwise convolution over time, on (batch, time, channels)."""

    def __init__(self, hidden_size, kernel_size=4):
        super().__init__(hidden_size, hidden_size, kernel_size, groups=hidden_size, padding=kernel_size - 1, bias=False)

    def forward(self, x):
        t = x.shape[1]
        y = super().forward(x.transpose(1, 2))[..., :t]
        return F.silu(y).transpose(1, 2)


class DeltaNet(nn.Module):
    def __init__(self, hidden_size, num_heads, mode="chunk", chunk_size=8):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.mode = mode
        self.chunk_size = chunk_size
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.b_proj = nn.Linear(hidden_size, num_heads, bias=False)
        self.q_conv1d = ShortConvolution(hidden_size)
        self.k_conv1d = ShortConvolution(hidden_size)
        self.v_conv1d = ShortConvolution(hidden_size)
        self.o_norm = nn.RMSNorm(self.head_dim, eps=1e-5)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, hidden_states):
        b, t, _ = hidden_states.shape
        q = self.q_conv1d(self.q_proj(hidden_states))
        k = self.k_conv1d(self.k_proj(hidden_states))
        v = self.v_conv1d(self.v_proj(hidden_states))
        q, k, v = (x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2) for x in (q, k, v))
        q = F.normalize(q, p=2, dim=-1)
        k = F.normalize(k, p=2, dim=-1)
        beta = torch.sigmoid(self.b_proj(hidden_states)).transpose(1, 2)  # b h t
        if self.mode == "chunk":
            o, _ = delta_rule_chunkwise(q, k, v, beta, self.chunk_size)
        else:
            o, _ = delta_rule_recurrence(q, k, v, beta)
        o = self.o_norm(o).transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(o)


class GatedMLP(nn.Module):
    def __init__(self, hidden_size, intermediate_size):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, 2 * intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x):
        gate, y = self.gate_proj(x).chunk(2, -1)
        return self.down_proj(F.silu(gate) * y)


class DeltaNetBlock(nn.Module):
    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.attn_norm = nn.RMSNorm(hidden_size, eps=1e-5)
        self.attn = DeltaNet(hidden_size, num_heads)
        self.mlp_norm = nn.RMSNorm(hidden_size, eps=1e-5)
        self.mlp = GatedMLP(hidden_size, 2 * hidden_size)

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class DeltaNetForCausalLM(nn.Module):
    def __init__(self, vocab_size, hidden_size=32, num_heads=2, num_layers=2):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, hidden_size)
        self.layers = nn.ModuleList([DeltaNetBlock(hidden_size, num_heads) for _ in range(num_layers)])
        self.norm = nn.RMSNorm(hidden_size, eps=1e-5)
        self.lm_head = nn.Linear(hidden_size, vocab_size, bias=False)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02 if isinstance(module, nn.Linear) else 1.0)

    def set_mode(self, mode):
        for layer in self.layers:
            layer.attn.mode = mode

    def forward(self, input_ids):
        x = self.embeddings(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


# ------------------------------------------------------------------ multi-query associative recall
NUM_KEYS, NUM_VALUES, PAIRS, BATCH, STEPS = 16, 16, 4, 64, 160
VOCAB = NUM_KEYS + NUM_VALUES
SEQ = 4 * PAIRS


def get_batch(rng):
    # k1 v1 k2 v2 ... kP vP | q1 a1 q2 a2 ... : each query is a listed key, each answer its value
    x = np.zeros((BATCH, SEQ), dtype=np.int64)
    for r in range(BATCH):
        keys = rng.permutation(NUM_KEYS)[:PAIRS]
        values = rng.integers(0, NUM_VALUES, size=PAIRS) + NUM_KEYS
        order = rng.permutation(PAIRS)
        x[r, 0:2 * PAIRS:2], x[r, 1:2 * PAIRS:2] = keys, values
        x[r, 2 * PAIRS::2], x[r, 2 * PAIRS + 1::2] = keys[order], values[order]
    x = torch.from_numpy(x)
    inputs, targets = x, torch.full_like(x, -100)
    targets[:, 2 * PAIRS:-1:2] = x[:, 2 * PAIRS + 1::2]  # answer the query key at each even position
    return inputs, targets


def recall_accuracy(logits, targets):
    answered = targets != -100
    return (logits.argmax(-1)[answered] == targets[answered]).float().mean().item()


rng = np.random.default_rng(seed)
model = DeltaNetForCausalLM(VOCAB)
print(f"DeltaNet LM parameters: {sum(p.numel() for p in model.parameters())}")

# chunk and recurrent forms: the same logits and the same gradient, in float64
probe_x, probe_y = get_batch(rng)
model64 = copy.deepcopy(model).double()
logits64, grads = {}, {}
for mode in ("chunk", "recurrent"):
    model64.set_mode(mode)
    model64.zero_grad()
    out = model64(probe_x)
    F.cross_entropy(out.view(-1, VOCAB), probe_y.view(-1), ignore_index=-100).backward()
    logits64[mode] = out.detach()
    grads[mode] = model64.layers[0].attn.k_proj.weight.grad.clone()
logits_err = (logits64["chunk"] - logits64["recurrent"]).abs().max().item()
grad_err = ((grads["chunk"] - grads["recurrent"]).abs().max() / grads["recurrent"].abs().max()).item()
assert logits_err < 1e-9 and grad_err < 1e-8, (logits_err, grad_err)
print(f"chunk vs recurrent model logits {tuple(logits64['chunk'].shape)} and k_proj gradient "
      f"{tuple(grads['chunk'].shape)} agree: {logits_err < 1e-9 and grad_err < 1e-8}")

optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, betas=(0.9, 0.95), weight_decay=0.1)
test_x, test_y = get_batch(rng)
with torch.no_grad():
    acc_start = recall_accuracy(model(test_x), test_y)
for step in range(STEPS):
    inputs, targets = get_batch(rng)
    logits = model(inputs)
    loss = F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1), ignore_index=-100)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 40 == 0 or step == STEPS - 1:
        print(f"step {step:3d} loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    logits = model(test_x)
    test_loss = F.cross_entropy(logits.view(-1, VOCAB), test_y.view(-1), ignore_index=-100).item()
    acc_end = recall_accuracy(logits, test_y)
    model.set_mode("recurrent")
    eval_err = (model(test_x) - logits).abs().max().item()
assert eval_err < 1e-3, eval_err
print(f"recall accuracy {acc_start:.4f} -> {acc_end:.4f} (chance {1 / NUM_VALUES:.4f}), test loss {test_loss:.4f}")
print(f"FINAL test_loss={test_loss:.4f} acc={acc_end:.4f} forward_err={max(forward_err, logits_err):.3e} "
      f"grad_err={grad_err:.3e}")
