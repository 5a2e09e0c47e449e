"""Expert-choice routing (Zhou et al. 2022, "Mixture-of-Experts with Expert Choice Routing") in a tiny
transformer language model on synthetic Markov sequences.

Instead of each token choosing its top-k experts, each expert chooses its top-``capacity`` tokens:
``scores = softmax(x @ W_g, dim=-1)`` over the (tokens, experts) matrix, ``torch.topk(scores.t(),
k=capacity, dim=-1)`` gives every expert its gates and token indices, ``F.one_hot(idx, num_tokens).float()``
the (E, capacity, tokens) dispatch tensor, ``torch.einsum("ect,td->ecd", dispatch, x)`` the expert
inputs; the expert FFNs run batched by ``torch.bmm`` over stacked weights
(``nn.Parameter(torch.empty(E, d, h))`` with ``nn.init.kaiming_uniform_(w[e], a=math.sqrt(5))`` per
slice and fan-in ``uniform_`` biases) and are combined with the gates by
``torch.einsum("ec,ect,ecd->td", gates, dispatch, out)``; tokens picked by no expert pass through the
residual only, and a token may be picked by several. Capacity is ``int(n * capacity_factor / E)``
(factor 2, as the paper). Counted by ``torch.bincount(idx.flatten(), minlength=n)`` (and the dispatch
tensor's sum): the fraction of tokens with 0 experts and the mean experts per token. Pre-LayerNorm
blocks with causal ``nn.MultiheadAttention(batch_first=True)`` under
``nn.Transformer.generate_square_subsequent_mask``, tied embeddings, AdamW with ``no_decay`` groups,
a warm-up + cosine ``LambdaLR``, ``clip_grad_norm_``. Reports validation perplexity (``math.exp``)
before/after, against the Markov source's entropy.

Check: the einsum dispatch/combine equals an explicit loop over experts gathering ``x[idx[e]]`` and
scattering ``gates[e, :, None] * out_e`` by ``index_add_`` (values, and gradients into the input, the
gate and the stacked weights).
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

VOCAB, SEQ, DIM, HIDDEN, N_EXPERTS, N_LAYERS = 24, 16, 32, 32, 8, 2


class ExpertChoiceMoE(nn.Module):
    def __init__(self, d_model, d_hidden, num_experts, capacity_factor=2.0):
        super().__init__()
        self.num_experts = num_experts
        self.capacity_factor = capacity_factor
        self.gate = nn.Linear(d_model, num_experts, bias=False)  # W_g
        self.w1 = nn.Parameter(torch.empty(num_experts, d_model, d_hidden))
        self.b1 = nn.Parameter(torch.empty(num_experts, 1, d_hidden))
        self.w2 = nn.Parameter(torch.empty(num_experts, d_hidden, d_model))
        self.b2 = nn.Parameter(torch.empty(num_experts, 1, d_model))
        self.reset_parameters()
        self.last_stats = None

    def reset_parameters(self):
        for e in range(self.num_experts):
            nn.init.kaiming_uniform_(self.w1[e], a=math.sqrt(5))
            nn.init.kaiming_uniform_(self.w2[e], a=math.sqrt(5))
        # nn.Linear's bias init, with fan-in from the stored (in, out) layout
        nn.init.uniform_(self.b1, -1 / math.sqrt(self.w1.size(1)), 1 / math.sqrt(self.w1.size(1)))
        nn.init.uniform_(self.b2, -1 / math.sqrt(self.w2.size(1)), 1 / math.sqrt(self.w2.size(1)))

    def route(self, tokens):
        n = tokens.size(0)
        capacity = int(n * self.capacity_factor / self.num_experts)
        scores = F.softmax(self.gate(tokens), dim=-1)  # (n, E)
        gates, idx = torch.topk(scores.t(), k=capacity, dim=-1)  # (E, c): each expert picks its tokens
        return gates, idx

    def experts(self, xin):
        h = F.gelu(torch.bmm(xin, self.w1) + self.b1)
        return torch.bmm(h, self.w2) + self.b2  # (E, c, d)

    def forward(self, x):
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])
        n = tokens.size(0)
        gates, idx = self.route(tokens)
        dispatch = F.one_hot(idx, n).float()  # (E, c, n)
        xin = torch.einsum("ect,td->ecd", dispatch, tokens)
        out = self.experts(xin)
        combined = torch.einsum("ec,ect,ecd->td", gates, dispatch, out)
        with torch.no_grad():
            per_token = torch.bincount(idx.flatten(), minlength=n)
            assert torch.equal(per_token.float(), dispatch.sum((0, 1)))
            self.last_stats = ((per_token == 0).float().mean().item(), per_token.float().mean().item())
        return combined.view(shape)

    def forward_loop(self, x):
        """The same layer by an explicit gather / scatter per expert."""
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])
        gates, idx = self.route(tokens)
        combined = torch.zeros_like(tokens)
        for e in range(self.num_experts):
            xe = tokens[idx[e]]  # (c, d)
            he = F.gelu(xe @ self.w1[e] + self.b1[e])
            oe = he @ self.w2[e] + self.b2[e]
            combined = combined.index_add_(0, idx[e], gates[e, :, None] * oe)
        return combined.view(shape)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(DIM)
        self.attn = nn.MultiheadAttention(DIM, 4, dropout=0.0, batch_first=True)
        self.ln_2 = nn.LayerNorm(DIM)
        self.moe = ExpertChoiceMoE(DIM, HIDDEN, N_EXPERTS)

    def forward(self, x, attn_mask):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=attn_mask, need_weights=False)[0]
        return x + self.moe(self.ln_2(x))


class MoELM(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, DIM)
        self.wpe = nn.Embedding(SEQ, DIM)
        self.blocks = nn.ModuleList([Block() for _ in range(N_LAYERS)])
        self.ln_f = nn.LayerNorm(DIM)
        self.lm_head = nn.Linear(DIM, VOCAB, bias=False)
        self.lm_head.weight = self.wte.weight
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(SEQ), persistent=False)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        T = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x, self.causal[:T, :T])
        logits = self.lm_head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


# a sparse first-order Markov source: each token has three successors with fixed probabilities
succ = np.stack([rng.choice(VOCAB, size=3, replace=False) for _ in range(VOCAB)])
succ_p = np.array([0.7, 0.2, 0.1])
source_entropy = float(-(succ_p * np.log(succ_p)).sum())


def make_sequences(n):
    seqs = np.zeros((n, SEQ + 1), dtype=np.int64)
    seqs[:, 0] = rng.randint(VOCAB, size=n)
    for t in range(1, SEQ + 1):
        choice = (rng.rand(n)[:, None] > np.cumsum(succ_p)[None, :-1]).sum(1)
        seqs[:, t] = succ[seqs[:, t - 1], choice]
    data = torch.from_numpy(seqs)
    return data[:, :-1].contiguous(), data[:, 1:].contiguous()


# --- check: einsum dispatch/combine against the index_add_ loop, values and gradients
moe = ExpertChoiceMoE(DIM, HIDDEN, N_EXPERTS)
xa = torch.randn(3, 8, DIM, requires_grad=True)
xb = xa.detach().clone().requires_grad_()
ya, yb = moe(xa), moe.forward_loop(xb)
weights = torch.randn_like(ya)
ga = torch.autograd.grad((ya * weights).sum(), [xa, moe.gate.weight, moe.w1, moe.b2])
gb = torch.autograd.grad((yb * weights).sum(), [xb, moe.gate.weight, moe.w1, moe.b2])
loop_err = (ya - yb).abs().max().item()
loop_grad_err = max((a - b).abs().max().item() for a, b in zip(ga, gb))
print(f"einsum vs index_add_ loop err {loop_err:.2e} grad err {loop_grad_err:.2e}; "
      f"capacity {int(24 * 2.0 / N_EXPERTS)} of 24 tokens, zero-expert fraction {moe.last_stats[0]:.3f}")

model = MoELM()
train_x, train_y = make_sequences(768)
val_x, val_y = make_sequences(128)

decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "ln" not in n]
no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "ln" not in n)]
optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                               {"params": no_decay, "weight_decay": 0.0}], lr=3e-3, betas=(0.9, 0.95))
batch_size, epochs = 32, 4
total = epochs * len(train_x) // batch_size
warmup = total // 10
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))))


@torch.no_grad()
def evaluate():
    model.eval()
    losses, zero_frac = [], []
    for b in range(0, len(val_x), 32):
        _, loss = model(val_x[b:b + 32], val_y[b:b + 32])
        losses.append(loss.item())
        zero_frac.append(np.mean([blk.moe.last_stats[0] for blk in model.blocks]))
    model.train()
    return math.exp(np.mean(losses)), float(np.mean(zero_frac))


ppl_before, _ = evaluate()
print(f"before: val perplexity {ppl_before:.3f} (source {math.exp(source_entropy):.3f})")
for epoch in range(epochs):
    perm = torch.randperm(len(train_x))
    running = 0.0
    for b in range(0, len(perm), batch_size):
        idx = perm[b:b + batch_size]
        _, loss = model(train_x[idx], train_y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running += loss.item()
    ppl, zero_frac = evaluate()
    per_expert = [blk.moe.last_stats[1] for blk in model.blocks]
    print(f"epoch {epoch} train loss {running / (len(perm) // batch_size):.4f} val ppl {ppl:.3f} "
          f"zero-expert tokens {zero_frac:.3f} experts per token {np.mean(per_expert):.2f}")

ppl_after, zero_frac = evaluate()
print(f"after: val perplexity {ppl_after:.3f} (source {math.exp(source_entropy):.3f})")
print(f"FINAL ppl_before={ppl_before:.4f} ppl_after={ppl_after:.4f} ppl_over_source="
      f"{ppl_after / math.exp(source_entropy):.4f} zero_expert_frac={zero_frac:.4f} "
      f"loop_err={loop_err:.2e} loop_grad_err={loop_grad_err:.2e}")
