"""Speculative sampling (Leviathan et al. 2023; Chen et al. 2023) with a GRU draft and a GPT target.

A synthetic language (an order-2 Markov chain over 10 tokens) trains a tiny causal transformer as
the target and a small ``nn.GRU`` as the draft (fewer steps, so it is a worse model of the
language). Decoding drafts ``K`` tokens from ``q``, scores all of them with one target call, keeps
draft token ``x`` when ``torch.rand(()) < p(x) / q(x)``, and at the first rejection samples from
the residual ``torch.clamp(p - q, min=0)`` renormalised, by ``torch.multinomial``; when every draft
survives the target's next distribution gives a bonus token. The per-sequence generator reports the
acceptance rate and tokens per target call; a batched edition of the same rule (acceptance by
``torch.rand(B, K) < p / q``, accepted prefixes by ``cumprod``, the residual of row ``n`` picked by
advanced indexing, rows needing a second round continued alone) draws 6000 samples of the first
two tokens, whose empirical joint must match the target's exact joint as closely as plain
ancestral sampling from the target does (total variation and chi-square), while taking the draft's
tokens uncorrected does not.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB = 10
SEQ_LEN = 32
K = 4


def make_language():
    """An order-2 chain: each pair of previous tokens picks a peaked next-token distribution."""
    logits = rng.normal(0.0, 2.0, size=(VOCAB, VOCAB, VOCAB))
    table = np.exp(logits)
    return table / table.sum(-1, keepdims=True)


def sample_corpus(table, n):
    seqs = np.zeros((n, SEQ_LEN), dtype=np.int64)
    seqs[:, :2] = rng.integers(0, VOCAB, size=(n, 2))
    for t in range(2, SEQ_LEN):
        probs = table[seqs[:, t - 2], seqs[:, t - 1]]
        u = rng.random((n, 1))
        seqs[:, t] = np.minimum((probs.cumsum(-1) < u).sum(-1), VOCAB - 1)
    return torch.from_numpy(seqs)


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_head):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, d_model, n_head):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_head)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab, d_model=32, n_head=2, n_layer=2, max_len=SEQ_LEN):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, d_model)
        self.pos_emb = nn.Embedding(max_len, d_model)
        self.blocks = nn.Sequential(*[Block(d_model, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, idx):
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)
        return self.head(self.ln_f(self.blocks(x)))


class GRUDraft(nn.Module):
    def __init__(self, vocab, hidden=16):
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx):
        out, _ = self.gru(self.emb(idx))
        return self.head(out)


def train(model, data, steps, lr, batch=32):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    for _ in range(steps):
        rows = torch.randint(0, len(data), (batch,))
        x = data[rows]
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), x[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()


@torch.no_grad()
def eval_loss(model, data):
    logits = model(data[:, :-1])
    return F.cross_entropy(logits.reshape(-1, VOCAB), data[:, 1:].reshape(-1)).item()


@torch.no_grad()
def speculative_generate(target, draft, prompt, max_new_tokens, k=K):
    """Leviathan et al.'s Algorithm 1 for one sequence; returns the tokens and the counters."""
    seq = prompt.clone()
    stats = {"target_calls": 0, "drafted": 0, "accepted": 0}
    while seq.numel() - prompt.numel() < max_new_tokens:
        gamma = min(k, max_new_tokens - (seq.numel() - prompt.numel()))
        ctx = seq
        draft_probs = []
        for _ in range(gamma):
            q = F.softmax(draft(ctx[None])[0, -1], dim=-1)
            token = torch.multinomial(q, num_samples=1)
            draft_probs.append(q)
            ctx = torch.cat([ctx, token])
        p = F.softmax(target(ctx[None])[0, seq.numel() - 1:], dim=-1)  # gamma + 1 distributions
        stats["target_calls"] += 1
        stats["drafted"] += gamma
        n = 0
        for i in range(gamma):
            x = ctx[seq.numel() + i]
            if torch.rand(()) < p[i, x] / draft_probs[i][x]:
                n += 1
            else:
                break
        stats["accepted"] += n
        if n < gamma:
            residual = torch.clamp(p[n] - draft_probs[n], min=0)
            residual = residual / residual.sum()
            next_token = torch.multinomial(residual, num_samples=1)
        else:
            next_token = torch.multinomial(p[gamma], num_samples=1)  # the bonus token
        seq = torch.cat([ctx[:seq.numel() + n], next_token])
    return seq[prompt.numel():prompt.numel() + max_new_tokens], stats


@torch.no_grad()
def speculative_round(target, draft, prefix, k=K):
    """One speculative step for a batch of prefixes of equal length: the drafts, how many each row
    accepted, and the token each row samples after them (residual or bonus)."""
    B, L = prefix.shape
    ctx = prefix
    qs = []
    for _ in range(k):
        q = F.softmax(draft(ctx)[:, -1], dim=-1)
        qs.append(q)
        ctx = torch.cat([ctx, torch.multinomial(q, 1)], dim=1)
    q = torch.stack(qs, dim=1)  # (B, k, V)
    p = F.softmax(target(ctx)[:, L - 1:], dim=-1)  # (B, k + 1, V)
    drafts = ctx[:, L:]
    p_draft = p[:, :k].gather(-1, drafts.unsqueeze(-1)).squeeze(-1)
    q_draft = q.gather(-1, drafts.unsqueeze(-1)).squeeze(-1)
    accept = torch.rand(B, k) < p_draft / q_draft
    n_accepted = accept.long().cumprod(dim=1).sum(dim=1)
    q_padded = torch.cat([q, torch.zeros(B, 1, q.size(-1))], dim=1)  # no draft at k: the bonus is p itself
    rows = torch.arange(B)
    residual = torch.clamp(p[rows, n_accepted] - q_padded[rows, n_accepted], min=0)
    residual = residual / residual.sum(dim=-1, keepdim=True)
    next_token = torch.multinomial(residual, 1).squeeze(1)
    return drafts, n_accepted, next_token


@torch.no_grad()
def first_two_speculative(target, draft, prompt, n):
    prefix = prompt.expand(n, -1)
    drafts, n_accepted, next_token = speculative_round(target, draft, prefix)
    first = torch.where(n_accepted >= 1, drafts[:, 0], next_token)
    second = torch.where(n_accepted >= 2, drafts[:, 1], next_token)
    again = n_accepted == 0  # these rows emitted one token; a second round gives their next one
    continued = torch.cat([prefix[again], first[again].unsqueeze(1)], dim=1)
    drafts2, n2, next2 = speculative_round(target, draft, continued)
    second[again] = torch.where(n2 >= 1, drafts2[:, 0], next2)
    return first, second, n_accepted


@torch.no_grad()
def first_two_ancestral(model, prompt, n):
    x = prompt.expand(n, -1)
    out = []
    for _ in range(2):
        probs = F.softmax(model(x)[:, -1], dim=-1)
        token = torch.multinomial(probs, 1)
        out.append(token.squeeze(1))
        x = torch.cat([x, token], dim=1)
    return out


@torch.no_grad()
def exact_joint(model, prompt):
    p1 = F.softmax(model(prompt[None])[0, -1], dim=-1)
    extended = torch.cat([prompt.expand(VOCAB, -1), torch.arange(VOCAB).unsqueeze(1)], dim=1)
    p2 = F.softmax(model(extended)[:, -1], dim=-1)
    return p1[:, None] * p2


def empirical_joint(first, second):
    counts = torch.bincount(first * VOCAB + second, minlength=VOCAB * VOCAB).float()
    return counts.view(VOCAB, VOCAB) / first.numel()


def chi_square_per_dof(empirical, expected, n):
    cells = expected * n >= 5
    observed, wanted = empirical[cells] * n, expected[cells] * n
    return (((observed - wanted) ** 2 / wanted).sum() / (cells.sum() - 1)).item()


language = make_language()
train_data = sample_corpus(language, 400)
test_data = sample_corpus(language, 200)
entropy = -(language * np.log(language)).sum(-1).mean()
print(f"corpus {tuple(train_data.shape)} vocab {VOCAB} mean conditional entropy {entropy:.3f} nats")

target = TinyGPT(VOCAB)
draft = GRUDraft(VOCAB)
print(f"target {sum(p.numel() for p in target.parameters())} parameters, "
      f"draft {sum(p.numel() for p in draft.parameters())} parameters")
train(target, train_data, steps=100, lr=1e-2)
train(draft, train_data, steps=50, lr=1e-2)
target.eval()
draft.eval()
target_loss, draft_loss = eval_loss(target, test_data), eval_loss(draft, test_data)
print(f"test loss target {target_loss:.4f} draft {draft_loss:.4f}")

# acceptance over a few generations, one sequence at a time
totals = {"target_calls": 0, "drafted": 0, "accepted": 0}
generated = 0
for row in range(6):
    prompt = test_data[row, :4]
    tokens, stats = speculative_generate(target, draft, prompt, max_new_tokens=24)
    generated += tokens.numel()
    for key in totals:
        totals[key] += stats[key]
    if row < 2:
        print(f"prompt {prompt.tolist()} -> {len(tokens.tolist())} tokens in {stats['target_calls']} target calls")
acceptance = totals["accepted"] / totals["drafted"]
tokens_per_call = generated / totals["target_calls"]
print(f"acceptance rate {acceptance:.3f} tokens per target call {tokens_per_call:.3f} (K={K})")

# the expected acceptance of one draft token, alpha = E[sum min(p, q)], on the test contexts
with torch.no_grad():
    p_test = F.softmax(target(test_data[:, :-1]), dim=-1)
    q_test = F.softmax(draft(test_data[:, :-1]), dim=-1)
    alpha = torch.minimum(p_test, q_test).sum(-1).mean().item()
print(f"alpha {alpha:.3f}; expected tokens per call {(1 - alpha ** (K + 1)) / (1 - alpha):.3f}")

# the distribution of the first two tokens after one prompt
N = 6000
prompt = test_data[0, :6]
exact = exact_joint(target, prompt)
print(f"exact joint sums to one {abs(exact.sum().item() - 1) < 1e-4}")
first, second, n_accepted = first_two_speculative(target, draft, prompt, N)
spec = empirical_joint(first, second)
plain = empirical_joint(*first_two_ancestral(target, prompt, N))
uncorrected = empirical_joint(*first_two_ancestral(draft, prompt, N))
tv_spec = 0.5 * (spec - exact).abs().sum().item()
tv_plain = 0.5 * (plain - exact).abs().sum().item()
tv_draft = 0.5 * (uncorrected - exact).abs().sum().item()
chi2_spec = chi_square_per_dof(spec, exact, N)
chi2_plain = chi_square_per_dof(plain, exact, N)
print(f"first token TV speculative {0.5 * (spec.sum(1) - exact.sum(1)).abs().sum().item():.4f}")
print(f"joint TV speculative {tv_spec:.4f} plain {tv_plain:.4f} draft alone {tv_draft:.4f}")
print(f"chi2/dof speculative {chi2_spec:.3f} plain {chi2_plain:.3f}")
print(f"batched round accepted {n_accepted.float().mean().item():.3f} of {K} drafts on average")
matches = chi2_spec < 2.0 and tv_draft > 3 * tv_spec
print(f"speculative sampling matches the target: {matches}")

print(f"FINAL target_loss={target_loss:.4f} draft_loss={draft_loss:.4f} acceptance={acceptance:.4f} "
      f"tokens_per_call={tokens_per_call:.4f} alpha={alpha:.4f} tv_spec={tv_spec:.4f} tv_plain={tv_plain:.4f} "
      f"tv_draft={tv_draft:.4f} chi2_spec={chi2_spec:.4f} matches={int(matches)}")
