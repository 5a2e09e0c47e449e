"""Multi-token prediction (Gloeckle et al., 2024, "Better & Faster Large Language Models via
Multi-token Prediction") on a tiny GPT over a synthetic order-2 Markov token stream.

A shared trunk of causal transformer blocks (minGPT-style attention with a ``tril`` buffer and
``masked_fill``) feeds ``n`` independent heads, each one more transformer block, all sharing the final
``LayerNorm`` and the unembedding; head ``i`` predicts token ``t + i + 1``. Training uses the paper's
memory-efficient backward: the trunk output ``z`` is cut off by ``z_ = z.detach().requires_grad_()``,
each head's loss is ``.backward()``-ed in turn (so only one head's graph is alive at a time) and
accumulates into ``z_.grad``, then the trunk gets one ``z.backward(z_.grad)`` (on alternate steps
``torch.autograd.backward(z, grad_tensors=z_.grad)``). Checks: those gradients equal the naive
``sum(losses).backward()`` for every parameter; self-speculative decoding (heads 2..n draft, head 1
verifies, greedy acceptance) returns exactly the plain greedy tokens; the per-head losses fall.
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

VOCAB = 10
ORDER = 2
BLOCK_SIZE = 16
N_FUTURE = 3          # heads predicting t+1, t+2, t+3
N_EMBD = 32
N_HEAD = 2
N_TRUNK = 1
BATCH = 16
STEPS = 160
LR = 3e-3


def make_markov_table():
    """An order-2 chain: each context (a, b) has one favourite successor (p = 0.85)."""
    favourite = rng.integers(0, VOCAB, size=(VOCAB,) * ORDER)
    probs = np.full((VOCAB,) * ORDER + (VOCAB,), 0.15 / (VOCAB - 1))
    for ctx in np.ndindex(*(VOCAB,) * ORDER):
        probs[ctx + (favourite[ctx],)] = 0.85
    return probs


def sample_stream(probs, length):
    out = list(rng.integers(0, VOCAB, size=ORDER))
    for _ in range(length - ORDER):
        p = probs[tuple(out[-ORDER:])]
        out.append(int(rng.choice(VOCAB, p=p)))
    return np.array(out, dtype=np.int64)


TABLE = make_markov_table()
DATA = torch.from_numpy(sample_stream(TABLE, 6000))


def get_batch():
    ix = torch.randint(len(DATA) - BLOCK_SIZE - N_FUTURE, (BATCH,))
    return torch.stack([DATA[i:i + BLOCK_SIZE + N_FUTURE] for i in ix])


class CausalSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(N_EMBD, 3 * N_EMBD)
        self.c_proj = nn.Linear(N_EMBD, N_EMBD)
        self.register_buffer("bias", torch.tril(torch.ones(BLOCK_SIZE + N_FUTURE, BLOCK_SIZE + N_FUTURE))
                             .view(1, 1, BLOCK_SIZE + N_FUTURE, BLOCK_SIZE + N_FUTURE))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(N_EMBD, dim=2)
        k = k.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2)
        q = q.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2)
        v = v.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(N_EMBD)
        self.attn = CausalSelfAttention()
        self.ln_2 = nn.LayerNorm(N_EMBD)
        self.mlp = nn.Sequential(nn.Linear(N_EMBD, 4 * N_EMBD), nn.GELU(), nn.Linear(4 * N_EMBD, N_EMBD))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class MultiTokenGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, N_EMBD)
        self.wpe = nn.Embedding(BLOCK_SIZE + N_FUTURE, N_EMBD)
        self.trunk = nn.ModuleList([Block() for _ in range(N_TRUNK)])
        self.heads = nn.ModuleList([Block() for _ in range(N_FUTURE)])
        self.ln_f = nn.LayerNorm(N_EMBD)
        self.unembed = nn.Linear(N_EMBD, VOCAB, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward_trunk(self, idx):
        t = idx.size(1)
        pos = torch.arange(0, t, dtype=torch.long).unsqueeze(0)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.trunk:
            x = block(x)
        return x

    def forward_head(self, z, i):
        return self.unembed(self.ln_f(self.heads[i](z)))

    def forward(self, idx):
        z = self.forward_trunk(idx)
        return torch.stack([self.forward_head(z, i) for i in range(N_FUTURE)], dim=0)


def head_loss(logits, batch, i):
    """Head i at position t predicts batch[:, t + i + 1]."""
    targets = batch[:, i + 1:i + 1 + BLOCK_SIZE]
    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


def mtp_backward(model, batch, use_functional):
    """The paper's memory-efficient backward: one head graph alive at a time."""
    idx = batch[:, :BLOCK_SIZE]
    z = model.forward_trunk(idx)
    z_ = z.detach().requires_grad_()
    losses = []
    for i in range(N_FUTURE):
        loss = head_loss(model.forward_head(z_, i), batch, i)
        loss.backward()
        losses.append(loss.item())
    if use_functional:
        torch.autograd.backward(z, grad_tensors=z_.grad)
    else:
        z.backward(z_.grad)
    return losses


def naive_backward(model, batch):
    idx = batch[:, :BLOCK_SIZE]
    z = model.forward_trunk(idx)
    total = sum(head_loss(model.forward_head(z, i), batch, i) for i in range(N_FUTURE))
    total.backward()
    return total.item()


def grads_of(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def gradient_agreement(model, batch):
    model.zero_grad(set_to_none=True)
    mtp_backward(model, batch, use_functional=False)
    seq = grads_of(model)
    model.zero_grad(set_to_none=True)
    mtp_backward(model, batch, use_functional=True)
    func = grads_of(model)
    model.zero_grad(set_to_none=True)
    naive_backward(model, batch)
    naive = grads_of(model)
    model.zero_grad(set_to_none=True)
    assert seq.keys() == naive.keys()
    worst = 0.0
    for name in naive:
        assert torch.allclose(seq[name], naive[name], rtol=1e-4, atol=1e-6), name
        assert torch.allclose(func[name], naive[name], rtol=1e-4, atol=1e-6), name
        worst = max(worst, (seq[name] - naive[name]).abs().max().item(),
                    (func[name] - naive[name]).abs().max().item())
    return worst, len(naive)


@torch.no_grad()
def greedy_decode(model, prompt, max_len):
    seq = prompt.clone()
    while seq.size(1) < max_len:
        logits = model(seq)[0, :, -1, :]
        seq = torch.cat([seq, logits.argmax(-1, keepdim=True)], dim=1)
    return seq


@torch.no_grad()
def self_speculative_decode(model, prompt, max_len):
    """Blockwise parallel decoding: draft with every head, keep what head 1 would have chosen."""
    seq = prompt.clone()
    calls, accepted, drafted = 0, 0, 0
    while seq.size(1) < max_len:
        logits = model(seq)
        calls += 1
        draft = torch.stack([logits[i, 0, -1].argmax() for i in range(N_FUTURE)]).unsqueeze(0)
        draft = draft[:, :max_len - seq.size(1)]
        # head 1's own token is always right; the heads 2..n drafts need verifying
        candidate = torch.cat([seq, draft], dim=1)
        if draft.size(1) > 1:
            verify = model(candidate[:, :-1])[0, 0]
            calls += 1
            n_prev = seq.size(1)
            keep = 1
            for j in range(1, draft.size(1)):
                drafted += 1
                if verify[n_prev + j - 1].argmax().item() == draft[0, j].item():
                    keep += 1
                    accepted += 1
                else:
                    break
            seq = candidate[:, :n_prev + keep]
            # the verifier's prediction after the last kept token comes for free
            if keep < draft.size(1) and seq.size(1) < max_len:
                seq = torch.cat([seq, verify[n_prev + keep - 1].argmax().view(1, 1)], dim=1)
        else:
            seq = candidate
    return seq, calls, accepted, drafted


model = MultiTokenGPT()
n_params = sum(p.numel() for p in model.parameters())
print(f"model: trunk={N_TRUNK} heads={N_FUTURE} params={n_params}")
optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=0.01)

check_batch = get_batch()
err0, n_checked = gradient_agreement(model, check_batch)
print(f"grad check at init: params={n_checked} max_abs_diff={err0:.2e}")

first_losses = None
window = []
for step in range(STEPS):
    batch = get_batch()
    optimizer.zero_grad(set_to_none=True)
    losses = mtp_backward(model, batch, use_functional=step % 2 == 1)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    window.append(losses)
    if (step + 1) % 40 == 0:
        mean = np.mean(window, axis=0)
        window = []
        if first_losses is None:
            first_losses = mean
        print(f"step {step + 1:4d} " + " ".join(f"head{i + 1}={mean[i]:.4f}" for i in range(N_FUTURE)))
last_losses = mean

grad_err, _ = gradient_agreement(model, check_batch)
print(f"grad check after training: max_abs_diff={grad_err:.2e}")
for i in range(N_FUTURE):
    assert last_losses[i] < first_losses[i], f"head {i + 1} loss did not fall"

model.eval()
mismatches, total_calls, total_acc, total_drafted, total_tokens = 0, 0, 0, 0, 0
for _trial in range(6):
    start = torch.randint(len(DATA) - 4, (1,)).item()
    prompt = DATA[start:start + 4].unsqueeze(0)
    plain = greedy_decode(model, prompt, BLOCK_SIZE)
    spec, calls, acc, drafted = self_speculative_decode(model, prompt, BLOCK_SIZE)
    assert spec.shape == plain.shape
    mismatches += int((spec != plain).sum().item())
    total_calls += calls
    total_acc += acc
    total_drafted += drafted
    total_tokens += BLOCK_SIZE - prompt.size(1)
assert mismatches == 0, "speculative decoding changed the greedy tokens"
accept_rate = total_acc / max(total_drafted, 1)
print(f"decoding: tokens={total_tokens} forward_calls={total_calls} mismatches={mismatches} "
      f"acceptance={accept_rate:.3f}")

print(f"FINAL loss_h1={last_losses[0]:.4f} loss_h3={last_losses[-1]:.4f} grad_err={grad_err:.3e} "
      f"accept={accept_rate:.4f} spec_diff={mismatches}")
