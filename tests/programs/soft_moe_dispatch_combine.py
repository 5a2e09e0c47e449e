"""Soft MoE (Puigcerver et al., "From Sparse to Soft Mixtures of Experts"), the shape of
lucidrains/soft-moe-pytorch at tiny sizes: slot embeddings as an ``nn.Parameter`` of shape
``(experts, slots, dim)``, ``l2norm`` by ``F.normalize(t, dim=-1)`` with a learned scale (the paper's
normalised logits) and an ``RMSNorm`` by ``l2norm(x) * self.scale * self.gamma``,
``logits = einsum('b n d, e s d -> b n e s', x, slot_embeds)``, padded tokens masked by
``logits.masked_fill(~mask, -torch.finfo(logits.dtype).max)``, dispatch weights by
``logits.softmax(dim=1)`` over tokens, combine weights by a softmax over all ``e s`` after the
``rearrange('b n e s -> b n (e s)')`` written as ``reshape``/``flatten``, slots by
``einsum('b n d, b n e s -> b e s d')``, the experts as one batched FFN (``einsum`` with per-expert
weight tensors) and back by ``einsum('b s d, b n s -> b n d')``.

Checks: dispatch columns (over tokens) and combine rows (over slots) each sum to 1 and padded tokens
get no dispatch weight; the einsum experts equal an explicit per-expert loop in values and gradients;
a padded batch gives the same valid-token outputs as each sequence run alone; and accuracy rising on
a synthetic sequence task (which of two marker tokens is more frequent among the valid tokens).
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import einsum

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def exists(val):
    return val is not None


def l2norm(t):
    return F.normalize(t, dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return l2norm(x) * self.scale * self.gamma


class Experts(nn.Module):
    """All experts' feed-forwards at once: per-expert weights ``(e, d, h)`` applied by einsum."""

    def __init__(self, num_experts, dim, mult=4):
        super().__init__()
        hidden = int(dim * mult)
        self.w1 = nn.Parameter(torch.randn(num_experts, dim, hidden) * dim ** -0.5)
        self.b1 = nn.Parameter(torch.zeros(num_experts, 1, hidden))
        self.w2 = nn.Parameter(torch.randn(num_experts, hidden, dim) * hidden ** -0.5)
        self.b2 = nn.Parameter(torch.zeros(num_experts, 1, dim))

    def forward(self, x):
        # x: (b, e, s, d)
        hidden = einsum('b e s d, e d h -> b e s h', x, self.w1) + self.b1
        hidden = F.gelu(hidden)
        return einsum('b e s h, e h d -> b e s d', hidden, self.w2) + self.b2

    def forward_loop(self, x):
        # the same computation one expert at a time, as a list of FeedForwards would do it
        outs = []
        for e in range(x.shape[1]):
            h = F.gelu(x[:, e] @ self.w1[e] + self.b1[e])
            outs.append(h @ self.w2[e] + self.b2[e])
        return torch.stack(outs, dim=1)


class SoftMoE(nn.Module):
    def __init__(self, dim, *, seq_len=None, num_experts=4, num_slots=None, expert_mult=2):
        super().__init__()
        assert exists(seq_len) ^ exists(num_slots), 'either seq_len, or num_slots must be passed into SoftMoE'
        if not exists(num_slots):
            num_slots = seq_len // num_experts

        self.norm = RMSNorm(dim)
        self.slot_norm = RMSNorm(dim)
        self.slot_embeds = nn.Parameter(torch.randn(num_experts, num_slots, dim))
        # the paper's normalised logits: scale * <l2norm(x), l2norm(phi)>, scale learned
        self.logit_scale = nn.Parameter(torch.tensor(1.0))
        self.experts = Experts(num_experts, dim, mult=expert_mult)

    def forward(self, x, mask=None, use_loop=False, return_weights=False):
        b, n, d = x.shape
        x = self.norm(x)
        slot_embeds = self.slot_norm(self.slot_embeds)

        logits = einsum('b n d, e s d -> b n e s', l2norm(x), l2norm(slot_embeds))
        logits = logits * self.logit_scale.exp() * d ** 0.5

        # account for key padding mask
        if exists(mask):
            mask = mask[:, :, None, None]  # rearrange(mask, 'b n -> b n 1 1')
            logits = logits.masked_fill(~mask, -torch.finfo(logits.dtype).max)

        # get dispatch weights
        dispatch_weights = logits.softmax(dim=1)

        # get combine weights
        e, s = logits.shape[-2:]
        combine_weights = logits.reshape(b, n, e * s)  # rearrange(logits, 'b n e s -> b n (e s)')
        combine_weights = combine_weights.softmax(dim=-1)

        # derive slots by weighted average of input tokens using the dispatch weights
        slots = einsum('b n d, b n e s -> b e s d', x, dispatch_weights)

        # route the slots per expert to each expert
        out = self.experts.forward_loop(slots) if use_loop else self.experts(slots)

        # combine back out
        out = out.flatten(1, 2)  # rearrange(out, ' b e s d -> b (e s) d')
        out = einsum('b s d, b n s -> b n d', out, combine_weights)

        if return_weights:
            return out, dispatch_weights, combine_weights
        return out


class Classifier(nn.Module):
    def __init__(self, vocab, dim, seq_len, num_experts=4, num_slots=2, num_classes=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(seq_len, dim) * 0.02)
        self.moe = SoftMoE(dim, num_experts=num_experts, num_slots=num_slots)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens, mask):
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        x = x + self.moe(x, mask=mask)
        x = self.norm(x)
        m = mask.unsqueeze(-1).type_as(x)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head(pooled)


VOCAB, DIM, SEQ = 12, 16, 12
MARK_A, MARK_B = 1, 2


def make_batch(n):
    lengths = rng.integers(4, SEQ + 1, size=n)
    tokens = rng.integers(3, VOCAB, size=(n, SEQ))
    labels = np.zeros(n, dtype=np.int64)
    for i, L in enumerate(lengths):
        ka, kb = rng.choice([(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)])
        ka, kb = min(ka, L // 2), min(kb, L // 2)
        if ka == kb:
            ka = kb + 1
        pos = rng.permutation(L)[: ka + kb]
        tokens[i, pos[:ka]] = MARK_A
        tokens[i, pos[ka:]] = MARK_B
        labels[i] = int(ka > kb)
        # padding holds markers too, so a model that ignores the mask is misled
        tokens[i, L:] = rng.choice([MARK_A, MARK_B], size=SEQ - L)
    mask = np.arange(SEQ)[None, :] < lengths[:, None]
    return (torch.from_numpy(tokens).long(), torch.from_numpy(mask), torch.from_numpy(labels),
            lengths)


# ---- 1. weight checks and the einsum route against the loop on a fresh layer ----
moe = SoftMoE(DIM, num_experts=3, num_slots=2)
x = torch.randn(4, SEQ, DIM, requires_grad=True)
tok, mask, _, lengths = make_batch(4)
out, dispatch, combine = moe(x, mask=mask, return_weights=True)
dispatch_col_err = (dispatch.sum(dim=1) - 1).abs().max().item()
combine_row_err = (combine.sum(dim=-1) - 1).abs().max().item()
padded_dispatch = dispatch.masked_select(~mask[:, :, None, None]).abs().max().item()
print(f"dispatch columns sum to 1: max err {dispatch_col_err:.2e}; combine rows: {combine_row_err:.2e}; "
      f"padded dispatch weight {padded_dispatch:.1e}")
assert dispatch_col_err < 1e-5 and combine_row_err < 1e-5 and padded_dispatch == 0.0

g = torch.randn_like(out)
(gx_einsum,) = torch.autograd.grad(out, x, g)
out_loop = moe(x, mask=mask, use_loop=True)
(gx_loop,) = torch.autograd.grad(out_loop, x, g)
loop_err = (out - out_loop).abs().max().item()
loop_grad_err = (gx_einsum - gx_loop).abs().max().item()
w_grads = torch.autograd.grad((moe(x, mask=mask) * g).sum(), [moe.experts.w1, moe.slot_embeds])
w_grads_loop = torch.autograd.grad((moe(x, mask=mask, use_loop=True) * g).sum(),
                                   [moe.experts.w1, moe.slot_embeds])
w_grad_err = max((a - b).abs().max().item() for a, b in zip(w_grads, w_grads_loop))
print(f"einsum experts vs per-expert loop: out {loop_err:.2e}, dx {loop_grad_err:.2e}, dW {w_grad_err:.2e}")
assert loop_err < 1e-5 and loop_grad_err < 1e-5 and w_grad_err < 1e-4

# padding invariance: each sequence alone gives the padded batch's valid outputs
with torch.no_grad():
    pad_err = 0.0
    for i, L in enumerate(lengths):
        alone = moe(x[i:i + 1, :L])
        pad_err = max(pad_err, (alone[0] - out[i, :L]).abs().max().item())
print(f"padded batch vs sequences alone: max err {pad_err:.2e}")
assert pad_err < 1e-5

# ---- 2. learning: which marker is more frequent among the valid tokens ----
model = Classifier(VOCAB, DIM, SEQ, num_experts=4, num_slots=2)
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
test_tok, test_mask, test_y, _ = make_batch(256)


@torch.no_grad()
def evaluate():
    model.eval()
    pred = model(test_tok, test_mask).argmax(dim=-1)
    model.train()
    return (pred == test_y).float().mean().item()


acc_before = evaluate()
losses = []
for step in range(150):
    tok, mask, y, _ = make_batch(32)
    loss = F.cross_entropy(model(tok, mask), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 50 == 0:
        print(f"step {step:3d} loss {loss.item():.4f}")
acc_after = evaluate()
first, last = float(np.mean(losses[:10])), float(np.mean(losses[-10:]))
print(f"accuracy {acc_before:.3f} -> {acc_after:.3f}; loss {first:.4f} -> {last:.4f}; "
      f"logit scale {model.moe.logit_scale.exp().item():.3f}")
assert acc_after > acc_before and last < first

print(f"FINAL acc_before={acc_before:.4f} acc_after={acc_after:.4f} loss_first={first:.4f} "
      f"loss_last={last:.4f}")
