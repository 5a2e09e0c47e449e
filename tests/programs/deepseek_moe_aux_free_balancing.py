"""DeepSeekMoE / DeepSeek-V3 (DeepSeek-AI 2024; deepseek-ai/DeepSeek-V3 ``inference/model.py`` and
Hugging Face ``modeling_deepseek_v3``) mixture-of-experts at toy size in a tiny causal LM.

Fine-grained routed experts plus an always-on shared expert, all SwiGLU (``w2(F.silu(w1(x)) * w3(x))``);
the V3 gate: sigmoid affinities ``scores = linear(x, weight).sigmoid()``, group-limited routing
(``scores.view(T, n_groups, -1).topk(2, dim=-1)[0].sum(dim=-1)``, ``new_ones(..., dtype=bool).scatter_(1,
indices, False)``, ``masked_fill_(mask.unsqueeze(-1), float("-inf")).flatten(1)``), top-k chosen on
``scores + bias`` but weights gathered from the un-biased scores and normalised over the chosen
(``weights /= weights.sum(dim=-1, keepdim=True)``, ``weights *= route_scale``); the auxiliary-loss-free
balancing bias, a buffer updated outside autograd (``bias += gamma * torch.sign(load.float().mean() - load)``
under ``torch.no_grad()``, ``load = torch.bincount(topk_idx.flatten(), minlength=E)``); the
sequence-wise balance loss with a small alpha; ``F.rms_norm`` RMSNorm, ``F.scaled_dot_product_attention
(is_causal=True)``, tied-free LM head, AdamW + ``clip_grad_norm_``.

Four dispatches that must agree (values and gradients): sorted dispatch (``argsort`` of the flat
expert ids, ``index_select`` of tokens, ``split`` by ``bincount`` counts, combine by ``index_add_``);
the V3 inference loop (``torch.where(indices == i)``, ``y[idx] += expert(x[idx]) * weights[idx, top,
None]``); HF's training path (``repeat_interleave``, ``y[flat_topk_idx == i] = expert(...)``,
``(y.view(*topk_weight.shape, -1) * topk_weight.unsqueeze(-1)).sum(dim=1)``) and ``moe_infer``
(``cnts.scatter_(1, topk_ids, 1)``, ``new_x = torch.empty_like(outs); new_x[idxs] = outs``,
``.mul_(topk_weight.unsqueeze(dim=-1)).sum(dim=1)``); against the dense loop over every expert with a
``scatter``-built combine mask. The task: each sequence follows one of four affine rules mod V with
noise, so the next token depends on which rule the context shows. Reported: loss, and the load's
max/mean ratio with the learned bias against the same router without it.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

VOCAB, SEQ, DIM, HEADS = 16, 24, 32, 4
N_ROUTED, N_SHARED, TOPK, N_GROUPS, TOPK_GROUPS = 8, 1, 2, 4, 2
MOE_INTER = 16
RULES = [(1, 1), (3, 2), (5, 7), (7, 3)]  # x_{t+1} = a * x_t + b mod VOCAB


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.rms_norm(x, (self.dim,), self.weight, self.eps)


class Expert(nn.Module):
    def __init__(self, dim, inter_dim):
        super().__init__()
        self.w1 = nn.Linear(dim, inter_dim, bias=False)
        self.w2 = nn.Linear(inter_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, inter_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Gate(nn.Module):
    def __init__(self, dim, n_routed=N_ROUTED, topk=TOPK, n_groups=N_GROUPS, topk_groups=TOPK_GROUPS,
                 route_scale=1.0):
        super().__init__()
        self.dim, self.topk, self.n_groups, self.topk_groups = dim, topk, n_groups, topk_groups
        self.route_scale = route_scale
        self.weight = nn.Parameter(torch.empty(n_routed, dim))
        nn.init.normal_(self.weight, std=0.1)
        self.register_buffer('bias', torch.zeros(n_routed, dtype=torch.float32))
        self.use_bias = True

    def forward(self, x):
        scores = F.linear(x, self.weight)
        scores = scores.sigmoid()
        original_scores = scores
        if self.use_bias:
            scores = scores + self.bias
        if self.n_groups > 1:
            scores = scores.view(x.size(0), self.n_groups, -1)
            group_scores = scores.topk(2, dim=-1)[0].sum(dim=-1)
            indices = group_scores.topk(self.topk_groups, dim=-1)[1]
            mask = scores.new_ones(x.size(0), self.n_groups, dtype=bool).scatter_(1, indices, False)
            scores = scores.masked_fill_(mask.unsqueeze(-1), float("-inf")).flatten(1)
        indices = torch.topk(scores, self.topk, dim=-1)[1]
        weights = original_scores.gather(1, indices)
        weights /= weights.sum(dim=-1, keepdim=True)
        weights *= self.route_scale
        return weights.type_as(x), indices, original_scores


class MoE(nn.Module):
    def __init__(self, dim, dispatch='sorted'):
        super().__init__()
        self.dim = dim
        self.n_routed_experts = N_ROUTED
        self.dispatch = dispatch
        self.gate = Gate(dim)
        self.experts = nn.ModuleList([Expert(dim, MOE_INTER) for _ in range(N_ROUTED)])
        self.shared_experts = Expert(dim, N_SHARED * MOE_INTER)
        self.last_indices = None
        self.last_scores = None

    def routed_sorted(self, x, weights, indices):
        flat_idx = indices.flatten()
        order = flat_idx.argsort(stable=True)
        token_idx = order // self.gate.topk
        sorted_x = x.index_select(0, token_idx)
        counts = torch.bincount(flat_idx, minlength=self.n_routed_experts)
        outs = [expert(chunk) for expert, chunk in zip(self.experts, sorted_x.split(counts.tolist()))]
        out = torch.cat(outs) * weights.flatten()[order, None]
        return torch.zeros_like(x).index_add_(0, token_idx, out)

    def routed_v3_loop(self, x, weights, indices):
        y = torch.zeros_like(x)
        counts = torch.bincount(indices.flatten(), minlength=self.n_routed_experts).tolist()
        for i in range(self.n_routed_experts):
            if counts[i] == 0:
                continue
            expert = self.experts[i]
            idx, top = torch.where(indices == i)
            y[idx] += expert(x[idx]) * weights[idx, top, None]
        return y

    def routed_hf_train(self, x, weights, indices):
        flat_topk_idx = indices.view(-1)
        hidden = x.repeat_interleave(self.gate.topk, dim=0)
        y = torch.empty_like(hidden)
        for i, expert in enumerate(self.experts):
            y[flat_topk_idx == i] = expert(hidden[flat_topk_idx == i])
        return (y.view(*weights.shape, -1) * weights.unsqueeze(-1)).sum(dim=1)

    def routed_moe_infer(self, x, weights, topk_ids):
        cnts = topk_ids.new_zeros((topk_ids.shape[0], len(self.experts)))
        cnts.scatter_(1, topk_ids, 1)
        tokens_per_expert = cnts.sum(dim=0)
        idxs = topk_ids.view(-1).argsort()
        sorted_tokens = x[idxs // topk_ids.shape[1]]
        tokens_per_expert = tokens_per_expert.cpu().numpy()
        outputs = []
        start_idx = 0
        for i, num_tokens in enumerate(tokens_per_expert):
            end_idx = start_idx + num_tokens
            if num_tokens == 0:
                continue
            outputs.append(self.experts[i](sorted_tokens[start_idx:end_idx]))
            start_idx = end_idx
        outs = torch.cat(outputs, dim=0) if len(outputs) else sorted_tokens.new_empty(0)
        new_x = torch.empty_like(outs)
        new_x[idxs] = outs
        return (new_x.view(*topk_ids.shape, -1).type(weights.dtype).mul_(weights.unsqueeze(dim=-1))
                .sum(dim=1).type(new_x.dtype))

    def routed_dense(self, x, weights, indices):
        combine = torch.zeros(x.size(0), self.n_routed_experts).scatter(1, indices, weights)
        return sum(combine[:, i:i + 1] * expert(x) for i, expert in enumerate(self.experts))

    def forward(self, x):
        shape = x.size()
        x = x.view(-1, self.dim)
        weights, indices, scores = self.gate(x)
        self.last_indices, self.last_scores = indices, scores
        y = getattr(self, 'routed_' + self.dispatch)(x, weights, indices)
        z = self.shared_experts(x)
        return (y + z).view(shape)


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.attn_norm = RMSNorm(dim)
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.ffn_norm = RMSNorm(dim)
        self.ffn = MoE(dim)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.wqkv(self.attn_norm(x)).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        h = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.wo(h.transpose(1, 2).reshape(B, T, C))
        return x + self.ffn(self.ffn_norm(x))


class TinyLM(nn.Module):
    def __init__(self, n_layers=2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.pos = nn.Parameter(torch.randn(SEQ, DIM) * 0.02)
        self.layers = nn.ModuleList([Block(DIM, HEADS) for _ in range(n_layers)])
        self.norm = RMSNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB, bias=False)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos[:tokens.size(1)]
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))

    def moes(self):
        return [layer.ffn for layer in self.layers]


def sequence_balance_loss(scores, indices, batch, seq, alpha=1e-3):
    """L_bal = alpha * sum_i f_i P_i per sequence: f_i = E / (K T) * count_i, P_i = mean_t s'_i,t."""
    E = scores.size(-1)
    scores = scores.view(batch, seq, E)
    normed = scores / scores.sum(dim=-1, keepdim=True)
    P = normed.mean(dim=1)  # batch, E
    counts = torch.zeros(batch, E).scatter_add_(1, indices.view(batch, seq * TOPK),
                                                 torch.ones(batch, seq * TOPK))
    f = counts * E / (TOPK * seq)
    return alpha * (f * P).sum(dim=1).mean()


def make_batch(n, rng):
    rule = rng.integers(0, len(RULES), size=n)
    seqs = np.zeros((n, SEQ + 1), dtype=np.int64)
    seqs[:, 0] = rng.integers(0, VOCAB, size=n)
    for t in range(SEQ):
        a = np.array([RULES[r][0] for r in rule])
        b = np.array([RULES[r][1] for r in rule])
        nxt = (a * seqs[:, t] + b) % VOCAB
        noise = rng.random(n) < 0.1
        seqs[:, t + 1] = np.where(noise, rng.integers(0, VOCAB, size=n), nxt)
    seqs = torch.from_numpy(seqs)
    return seqs[:, :-1], seqs[:, 1:]


rng = np.random.default_rng(seed)

# --- the dispatches against the dense masked loop, values and gradients
moe = MoE(DIM)
with torch.no_grad():
    moe.gate.bias.copy_(torch.randn(N_ROUTED) * 0.05)
x = torch.randn(3, 10, DIM, requires_grad=True)
w = torch.randn(3, 10, DIM)
results = {}
for dispatch in ('dense', 'sorted', 'v3_loop', 'hf_train', 'moe_infer'):
    moe.dispatch = dispatch
    out = moe(x)
    grads = torch.autograd.grad((out * w).sum(), [x, moe.gate.weight, moe.experts[0].w1.weight,
                                                  moe.shared_experts.w2.weight])
    results[dispatch] = (out, grads)
dispatch_err = 0.0
ref_out, ref_grads = results['dense']
for name, (out, grads) in results.items():
    err = max([(out - ref_out).abs().max().item()] + [(g - r).abs().max().item() for g, r in zip(grads, ref_grads)])
    dispatch_err = max(dispatch_err, err)
    print(f"dispatch {name} vs dense masked loop: err {err:.2e}")
with torch.no_grad():
    weights, indices, scores = moe.gate(x.view(-1, DIM))
    groups_hit = (indices // (N_ROUTED // N_GROUPS)).sort(dim=1).values
    group_ok = bool(((groups_hit[:, 1:] != groups_hit[:, :-1]).sum(dim=1) + 1 <= TOPK_GROUPS).all())
    weight_sum_err = (weights.sum(-1) - 1).abs().max().item()
print(f"weights sum to route_scale: err {weight_sum_err:.2e}, group-limited: {group_ok}")

# --- training
model = TinyLM()
print(f"TinyLM parameters: {sum(p.numel() for p in model.parameters())}")
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
STEPS, BATCH, GAMMA = 160, 24, 0.01
val_x, val_y = make_batch(128, rng)


def load_ratio(indices):
    load = torch.bincount(indices.flatten(), minlength=N_ROUTED).float()
    return (load.max() / load.mean()).item()


@torch.no_grad()
def evaluate(use_bias=True):
    model.eval()
    for m in model.moes():
        m.gate.use_bias = use_bias
    logits = model(val_x)
    ratios = [load_ratio(m.last_indices) for m in model.moes()]
    for m in model.moes():
        m.gate.use_bias = True
    model.train()
    return F.cross_entropy(logits.view(-1, VOCAB), val_y.reshape(-1)).item(), max(ratios)


loss_start, ratio_start = evaluate()
for step in range(STEPS):
    inp, tgt = make_batch(BATCH, rng)
    logits = model(inp)
    lm_loss = F.cross_entropy(logits.view(-1, VOCAB), tgt.reshape(-1))
    bal_loss = sum(sequence_balance_loss(m.last_scores, m.last_indices, BATCH, SEQ) for m in model.moes())
    loss = lm_loss + bal_loss
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    with torch.no_grad():  # auxiliary-loss-free balancing
        for m in model.moes():
            load = torch.bincount(m.last_indices.flatten(), minlength=N_ROUTED)
            m.gate.bias += GAMMA * torch.sign(load.float().mean() - load)
    if (step + 1) % 40 == 0:
        print(f"step {step + 1} lm loss {lm_loss.item():.4f} balance loss {bal_loss.item():.5f}")

loss_end, ratio_end = evaluate()
_, ratio_unbiased = evaluate(use_bias=False)
bias_range = max((m.gate.bias.max() - m.gate.bias.min()).item() for m in model.moes())
print(f"val loss {loss_start:.4f} -> {loss_end:.4f}")
print(f"load max/mean {ratio_start:.3f} -> {ratio_end:.3f} (without the bias {ratio_unbiased:.3f}), "
      f"bias range {bias_range:.3f}")
check_err = max(dispatch_err, weight_sum_err)
print(f"FINAL loss={loss_end:.4f} load_ratio={ratio_end:.3f} unbiased_ratio={ratio_unbiased:.3f} "
      f"group_ok={int(group_ok)} check_err={check_err:.3e}")
