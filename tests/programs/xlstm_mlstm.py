"""The xLSTM mLSTM (Beck et al., "xLSTM: Extended Long Short-Term Memory", 2024) in its two forms.

As NX-AI/xlstm's ``mlstm/backends.py`` writes it. The recurrent step keeps a matrix memory C_t, a
normaliser n_t and the stabiliser m_t = max(log f_t + m_{t-1}, i~_t) (``torch.maximum``), with an
exponential input gate exp(i~_t - m_t), a sigmoid forget gate in log space (``F.logsigmoid``), C
grown by outer products (``k.unsqueeze(-1) * v.unsqueeze(-2)``, against ``torch.einsum``) and
h_t = C_t^T q_t / max(|n_t^T q_t|, exp(-m_t)), the stabilised max(|n^T q|, 1). The parallel form
builds the decay matrix from ``torch.cumsum`` of the log forget gates padded by a zero, ``repeat`` and
a transpose, masked by ``torch.where(torch.tril(...), ..., -float("inf"))``, adds the input gates,
subtracts the row max and takes ``torch.exp``: an attention with ``q @ k.transpose(-2, -1)``. The two
forms must agree to 1e-5 (outputs and, through ``autograd.grad``, input gradients).

An mLSTM block (pre-LayerNorm, up-projection with an output gate ``F.silu(z)``, a causal
``nn.Conv1d`` by ``F.pad`` feeding q and k, per-head ``F.group_norm``, a learnable skip, down-projection)
is trained as a small language model on multi-query associative recall: key-value pairs, then
queried keys whose values must be recalled. The forget-gate bias starts at ``torch.linspace(3.0, 6.0)``.
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

NUM_KEYS, NUM_VALUES, PAIRS, QUERIES = 8, 8, 4, 3
VOCAB = NUM_KEYS + NUM_VALUES
SEQ_LEN = 2 * PAIRS + 2 * QUERIES


def recall_batch(batch_size):
    """Sequences k1 v1 ... kP vP q1 w1 ... qQ wQ (keys distinct); the target at each q_i is its value w_i."""
    keys = torch.argsort(torch.rand(batch_size, NUM_KEYS), dim=1)[:, :PAIRS]
    values = torch.randint(NUM_KEYS, VOCAB, (batch_size, PAIRS))
    which = torch.argsort(torch.rand(batch_size, PAIRS), dim=1)[:, :QUERIES]
    queried_keys = torch.gather(keys, 1, which)
    queried_values = torch.gather(values, 1, which)
    tokens = torch.cat([torch.stack([keys, values], dim=2).flatten(1),
                        torch.stack([queried_keys, queried_values], dim=2).flatten(1)], dim=1)
    targets = torch.full_like(tokens, -100)
    targets[:, 2 * PAIRS::2] = queried_values  # predict each queried value at its key's position
    return tokens, targets


def parallel_stabilized_simple(queries, keys, values, igate_preact, fgate_preact, eps=0.0):
    """(B, NH, S, DH) q, k, v and (B, NH, S, 1) gate pre-activations -> (B, NH, S, DH)."""
    B, NH, S, DH = queries.shape
    log_fgates = F.logsigmoid(fgate_preact)
    ltr = torch.tril(torch.ones((S, S), dtype=torch.bool, device=queries.device))
    log_fgates_cumsum = torch.cat([torch.zeros((B, NH, 1, 1), dtype=queries.dtype, device=queries.device),
                                   torch.cumsum(log_fgates, dim=-2)], dim=-2)  # (B, NH, S + 1, 1)
    rep_log_fgates_cumsum = log_fgates_cumsum.repeat(1, 1, 1, S + 1)
    _log_fg_matrix = rep_log_fgates_cumsum - rep_log_fgates_cumsum.transpose(-2, -1)
    log_fg_matrix = torch.where(ltr, _log_fg_matrix[:, :, 1:, 1:], -float("inf"))
    log_D_matrix = log_fg_matrix + igate_preact.transpose(-2, -1)
    max_log_D, _ = torch.max(log_D_matrix, dim=-1, keepdim=True)
    D_matrix = torch.exp(log_D_matrix - max_log_D)
    keys_scaled = keys / math.sqrt(DH)
    qk_matrix = queries @ keys_scaled.transpose(-2, -1)
    C_matrix = qk_matrix * D_matrix
    normalizer = torch.maximum(C_matrix.sum(dim=-1, keepdim=True).abs(), torch.exp(-max_log_D))
    return (C_matrix / (normalizer + eps)) @ values


def recurrent_step_stabilized_simple(c_state, n_state, m_state, q, k, v, igate_preact, fgate_preact,
                                     outer="broadcast"):
    """One step: states (B, NH, DH, DH), (B, NH, DH), (B, NH, 1); q, k, v (B, NH, DH); gates (B, NH, 1)."""
    DH = q.shape[-1]
    log_fg_act = F.logsigmoid(fgate_preact)
    m_state_new = torch.maximum(log_fg_act + m_state, igate_preact)
    fg_act = torch.exp(log_fg_act + m_state - m_state_new)
    ig_act = torch.exp(igate_preact - m_state_new)
    k_scaled = k / math.sqrt(DH)
    if outer == "einsum":
        kv = torch.einsum("bhd,bhe->bhde", k_scaled, v)
    else:
        kv = k_scaled.unsqueeze(-1) * v.unsqueeze(-2)
    c_state_new = fg_act.unsqueeze(-1) * c_state + ig_act.unsqueeze(-1) * kv
    n_state_new = fg_act * n_state + ig_act * k_scaled
    h_num = torch.einsum("bhd,bhde->bhe", q, c_state_new)
    qn_dotproduct = (q * n_state_new).sum(dim=-1, keepdim=True)
    h_denom = torch.maximum(qn_dotproduct.abs(), torch.exp(-m_state_new))
    return h_num / h_denom, (c_state_new, n_state_new, m_state_new)


def recurrent_sequence(queries, keys, values, igate_preact, fgate_preact, outer="broadcast"):
    B, NH, S, DH = queries.shape
    c = queries.new_zeros(B, NH, DH, DH)
    n = queries.new_zeros(B, NH, DH)
    m = queries.new_zeros(B, NH, 1)
    outputs = []
    for t in range(S):
        h, (c, n, m) = recurrent_step_stabilized_simple(
            c, n, m, queries[:, :, t], keys[:, :, t], values[:, :, t],
            igate_preact[:, :, t], fgate_preact[:, :, t], outer=outer)
        outputs.append(h)
    return torch.stack(outputs, dim=2), m


class CausalConv1d(nn.Conv1d):
    def __init__(self, channels, kernel_size):
        super().__init__(channels, channels, kernel_size, groups=channels)
        self.left_pad = kernel_size - 1

    def forward(self, x):  # (B, S, D)
        return super().forward(F.pad(x.transpose(1, 2), (self.left_pad, 0))).transpose(1, 2)


class mLSTMLayer(nn.Module):
    def __init__(self, dim, num_heads=2, proj_factor=2, conv_kernel=4):
        super().__init__()
        inner = proj_factor * dim
        self.num_heads = num_heads
        self.proj_up = nn.Linear(dim, 2 * inner)
        self.conv1d = CausalConv1d(inner, conv_kernel)
        self.q_proj = nn.Linear(inner, inner)
        self.k_proj = nn.Linear(inner, inner)
        self.v_proj = nn.Linear(inner, inner)
        self.igate = nn.Linear(3 * inner, num_heads)
        self.fgate = nn.Linear(3 * inner, num_heads)
        self.learnable_skip = nn.Parameter(torch.ones(inner))
        self.outnorm_weight = nn.Parameter(torch.ones(inner))
        self.proj_down = nn.Linear(inner, dim)
        self.reset_gates()

    def reset_gates(self):
        nn.init.zeros_(self.fgate.weight)
        with torch.no_grad():
            self.fgate.bias.copy_(torch.linspace(3.0, 6.0, self.num_heads))
        nn.init.zeros_(self.igate.weight)
        nn.init.normal_(self.igate.bias, mean=0.0, std=0.1)

    def heads(self, x):  # (B, S, inner) -> (B, NH, S, DH)
        B, S, _ = x.shape
        return x.view(B, S, self.num_heads, -1).transpose(1, 2)

    def qkv_gates(self, x):
        x_mlstm, z = self.proj_up(x).chunk(2, dim=-1)
        x_conv = F.silu(self.conv1d(x_mlstm))
        q, k, v = self.q_proj(x_conv), self.k_proj(x_conv), self.v_proj(x_mlstm)
        gate_input = torch.cat([q, k, v], dim=-1)
        igate = self.igate(gate_input).transpose(1, 2).unsqueeze(-1)  # (B, NH, S, 1)
        fgate = self.fgate(gate_input).transpose(1, 2).unsqueeze(-1)
        return x_conv, z, self.heads(q), self.heads(k), self.heads(v), igate, fgate

    def forward(self, x, recurrent=False):
        B, S, _ = x.shape
        x_conv, z, q, k, v, igate, fgate = self.qkv_gates(x)
        if recurrent:
            h, _ = recurrent_sequence(q, k, v, igate, fgate)
        else:
            h = parallel_stabilized_simple(q, k, v, igate, fgate)
        # multi-head layer norm: a group norm with one group per head over (B * S, NH * DH)
        h = h.transpose(1, 2).reshape(B * S, -1)
        h = F.group_norm(h, self.num_heads, weight=self.outnorm_weight, eps=1e-5).view(B, S, -1)
        h = (h + self.learnable_skip * x_conv) * F.silu(z)
        return self.proj_down(h)


class mLSTMLanguageModel(nn.Module):
    def __init__(self, vocab, dim=32, num_blocks=1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(num_blocks)])
        self.blocks = nn.ModuleList([mLSTMLayer(dim) for _ in range(num_blocks)])
        self.post_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embedding.weight  # tied

    def forward(self, tokens, recurrent=False):
        x = self.embedding(tokens)
        for norm, block in zip(self.norms, self.blocks):
            x = x + block(norm(x), recurrent=recurrent)
        return self.head(self.post_norm(x))


# The two forms on random inputs, with large input gates to exercise the stabiliser.
B, NH, S, DH = 2, 2, 12, 8
q, k, v = (torch.randn(B, NH, S, DH) for _ in range(3))
igate = (torch.randn(B, NH, S, 1) * 4.0).requires_grad_(True)
fgate = (torch.randn(B, NH, S, 1) * 2.0 + 2.0).requires_grad_(True)
q.requires_grad_(True)
parallel = parallel_stabilized_simple(q, k, v, igate, fgate)
recurrent, m_last = recurrent_sequence(q, k, v, igate, fgate)
recurrent_einsum, _ = recurrent_sequence(q, k, v, igate, fgate, outer="einsum")
forward_diff = (parallel - recurrent).abs().max().item()
print(f"parallel vs recurrent max diff below 1e-5 {forward_diff < 1e-5}; einsum outer product equal "
      f"{torch.allclose(recurrent, recurrent_einsum, atol=1e-6)}; stabiliser m_T max {m_last.max().item():.3f}")
weights = torch.randn_like(parallel)
grads_parallel = torch.autograd.grad((parallel * weights).sum(), (q, igate, fgate))
grads_recurrent = torch.autograd.grad((recurrent * weights).sum(), (q, igate, fgate))
# relative to each gradient's scale: 1 / max(|n^T q|, 1) makes the q gradient large where |n^T q| is small
grad_diff = max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(grads_parallel, grads_recurrent))
print(f"gradients (q, igate, fgate) agree to 1e-4 of their scale {grad_diff < 1e-4}")
assert forward_diff < 1e-5 and grad_diff < 1e-4

# Without the stabiliser the exponential gates overflow float32.
raw_igate = torch.full((1, 1, 4, 1), 100.0)
print(f"exp(100) in float32 {torch.exp(raw_igate)[0, 0, 0].item()}; stabilised output finite "
      f"{torch.isfinite(parallel_stabilized_simple(*(torch.randn(1, 1, 4, 4) for _ in range(3)), raw_igate, raw_igate)).all().item()}")

model = mLSTMLanguageModel(VOCAB)
print(f"parameters {sum(p.numel() for p in model.parameters())}, forget-gate bias "
      f"{[round(b, 2) for b in model.blocks[0].fgate.bias.tolist()]}")
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
STEPS, BATCH = 200, 64
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=STEPS, pct_start=0.1)
for step in range(STEPS):
    tokens, targets = recall_batch(BATCH)
    logits = model(tokens)
    loss = F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1), ignore_index=-100)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    if step % 50 == 49:
        print(f"step {step + 1} loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    tokens, targets = recall_batch(256)
    logits = model(tokens)
    recurrent_logits = model(tokens[:16], recurrent=True)
    mask = targets != -100
    test_loss = F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1)).item()
    correct = (logits.argmax(-1) == targets)[mask].float()
    per_query = correct.view(-1, QUERIES).mean(0)
model_diff = (recurrent_logits - logits[:16]).abs().max().item()
print(f"trained model: recurrent and parallel logits agree below 1e-4 {model_diff < 1e-4}")
print("recall accuracy per query position", [f"{a:.3f}" for a in per_query.tolist()])
print(f"FINAL test_loss={test_loss:.4f} acc={correct.mean().item():.4f} acc_first_query={per_query[0].item():.4f} "
      f"acc_last_query={per_query[-1].item():.4f}")
