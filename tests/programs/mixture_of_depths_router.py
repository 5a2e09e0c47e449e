"""Mixture-of-Depths (Raposo et al. 2024) against a Switch-style token-choice MoE, in tiny causal LMs.

MoD: a scalar ``router`` per token, ``torch.topk(router_logits, k=capacity, dim=1, sorted=False)``, the chosen
positions put back in sequence order by ``torch.sort`` + ``torch.gather`` of the weights, tokens gathered with
``idx.unsqueeze(-1).expand(-1, -1, d)``, a causal attention + MLP block run on the chosen tokens only, its output
scaled by ``torch.sigmoid(weights)`` and written into the residual stream by ``torch.scatter_add`` (against
``torch.scatter`` of ``chosen + out``, which must agree), tokens the router skipped passed through unchanged, and
the causal auxiliary predictor (an MLP on ``x.detach()``) trained on the top-k membership with
``F.binary_cross_entropy_with_logits``, then used for autoregressive routing. Switch: fairseq/GShard
``top1gating`` (``F.one_hot(expert_idx, E)``, ``torch.cumsum(mask, dim=0) - 1`` locations, ``mask *
torch.lt(locations, capacity)``, ``einsum("se,sc->sec")`` combine weights, ``einsum("sec,sm->ecm")`` dispatch),
against a per-token loop, dropped tokens passed through unchanged, and the load balancing loss ``E * sum(f_i *
P_i)`` (equal to ``torch.mean(me * ce) * E * E``). A dense, a MoD and a Switch LM trained by AdamW on the same
batches.
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

VOCAB, SEQ, D_MODEL = 10, 16, 32


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_head=2):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        att = att.masked_fill(~mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.c_fc = nn.Linear(d_model, 4 * d_model)
        self.c_proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class BlockDelta(nn.Module):
    """A pre-norm transformer block returning f(x), the residual update, not x + f(x)."""

    def __init__(self, d_model, ffn=None):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = ffn if ffn is not None else MLP(d_model)

    def forward(self, x):
        h = self.attn(self.ln_1(x))
        return h + self.mlp(self.ln_2(x + h))


class DenseBlock(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.block = BlockDelta(d_model)

    def forward(self, x):
        return x + self.block(x), {}


class MoDBlock(nn.Module):
    def __init__(self, d_model, capacity_factor=0.5):
        super().__init__()
        self.capacity_factor = capacity_factor
        self.router = nn.Linear(d_model, 1, bias=False)
        self.block = BlockDelta(d_model)
        # causal predictor of top-k membership, trained on detached inputs
        self.aux_router = nn.Sequential(nn.Linear(d_model, d_model // 2), nn.SiLU(), nn.Linear(d_model // 2, 1))

    def route(self, x, use_predictor=False):
        b, s, d = x.shape
        capacity = int(self.capacity_factor * s)
        router_logits = self.router(x).squeeze(-1)                             # (b, s)
        if use_predictor:
            # autoregressive sampling: no top-k over the future, the predictor decides per token
            selected = self.aux_router(x).squeeze(-1) > 0
            return router_logits, selected, None, None
        weights, selected_tokens = torch.topk(router_logits, k=capacity, dim=1, sorted=False)
        selected_tokens, index = torch.sort(selected_tokens, dim=1)           # keep causal order
        weights = torch.gather(weights, dim=1, index=index)
        return router_logits, selected_tokens, weights, capacity

    def forward(self, x, use_predictor=False):
        b, s, d = x.shape
        router_logits, selected_tokens, weights, capacity = self.route(x, use_predictor)
        if use_predictor:
            # one sequence at a time, the chosen positions may differ in number
            outputs = []
            for row in range(b):
                positions = selected_tokens[row].nonzero().squeeze(-1)
                if positions.numel() == 0:
                    outputs.append(x[row])
                    continue
                chosen = x[row, positions].unsqueeze(0)
                out = self.block(chosen) * torch.sigmoid(router_logits[row, positions]).unsqueeze(-1)
                outputs.append(x[row].index_add(0, positions, out[0]))
            return torch.stack(outputs), {}

        idx = selected_tokens.unsqueeze(-1).expand(-1, -1, d)
        chosen = torch.gather(x, dim=1, index=idx)                             # (b, capacity, d)
        out = self.block(chosen) * torch.sigmoid(weights).unsqueeze(-1)
        x_out = torch.scatter_add(x, dim=1, index=idx, src=out)

        targets = torch.zeros_like(router_logits).scatter(1, selected_tokens, 1.0)
        aux_logits = self.aux_router(x.detach()).squeeze(-1)
        aux_loss = F.binary_cross_entropy_with_logits(aux_logits, targets)
        aux_acc = ((aux_logits > 0).float() == targets).float().mean()
        return x_out, {"aux_loss": aux_loss, "aux_acc": aux_acc, "selected": selected_tokens,
                       "out": out, "chosen": chosen, "idx": idx}


def top1gating(logits, capacity_factor=1.25):
    """fairseq's GShard top-1 gating: (l_aux, combine weights (s, e, c), dispatch mask (s, e, c))."""
    gates = F.softmax(logits, dim=1)
    num_tokens, num_experts = gates.shape
    capacity = math.ceil(num_tokens / num_experts * capacity_factor)

    indices1_s = torch.argmax(gates, dim=1)
    mask1 = F.one_hot(indices1_s, num_classes=num_experts)

    # load balancing: E * sum_i f_i * P_i, fairseq writes it as mean * E * E
    me = torch.mean(gates, dim=0)
    ce = torch.mean(mask1.to(gates.dtype), dim=0)
    l_aux = torch.mean(me * ce) * num_experts * num_experts

    locations1 = torch.cumsum(mask1, dim=0) - 1
    mask1 = mask1 * torch.lt(locations1, capacity)
    locations1_s = torch.sum(locations1 * mask1, dim=1)
    gates1_s = (gates * mask1).sum(dim=1)
    locations1_sc = F.one_hot(locations1_s, num_classes=capacity).to(gates.dtype)
    combine1_sec = torch.einsum("se,sc->sec", gates1_s.unsqueeze(-1) * mask1.to(gates.dtype), locations1_sc)
    dispatch_mask = combine1_sec.bool()
    return l_aux, combine1_sec, dispatch_mask, (me, ce, indices1_s, mask1)


class SwitchFFN(nn.Module):
    def __init__(self, d_model, num_experts=4, capacity_factor=1.25):
        super().__init__()
        self.gate = nn.Linear(d_model, num_experts, bias=False)
        self.experts = nn.ModuleList([MLP(d_model) for _ in range(num_experts)])
        self.capacity_factor = capacity_factor
        self.l_aux = None

    def forward(self, x):
        shape = x.shape
        reshaped = x.reshape(-1, shape[-1])
        l_aux, combine, dispatch_mask, _ = top1gating(self.gate(reshaped), self.capacity_factor)
        dispatched = torch.einsum("sec,sm->ecm", dispatch_mask.to(x.dtype), reshaped)
        expert_outputs = torch.stack([expert(dispatched[e]) for e, expert in enumerate(self.experts)])
        combined = torch.einsum("sec,ecm->sm", combine, expert_outputs)
        self.l_aux = l_aux
        return combined.reshape(shape)


class SwitchBlock(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.block = BlockDelta(d_model, ffn=SwitchFFN(d_model))

    def forward(self, x):
        x = x + self.block(x)
        return x, {"l_aux": self.block.mlp.l_aux}


class TinyLM(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, D_MODEL)
        self.wpe = nn.Embedding(SEQ, D_MODEL)
        second = {"dense": DenseBlock, "mod": MoDBlock, "switch": SwitchBlock}[kind]
        self.h = nn.ModuleList([DenseBlock(D_MODEL), second(D_MODEL), DenseBlock(D_MODEL)])
        self.ln_f = nn.LayerNorm(D_MODEL)
        self.lm_head = nn.Linear(D_MODEL, VOCAB, bias=False)

    def forward(self, idx, targets=None, **kwargs):
        pos = torch.arange(0, idx.size(1), dtype=torch.long)
        x = self.wte(idx) + self.wpe(pos)
        extras = {}
        for block in self.h:
            if isinstance(block, MoDBlock):
                x, info = block(x, **kwargs)
            else:
                x, info = block(x)
            extras.update(info)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss, extras


def make_batch(batch_size):
    """Each sequence counts up by its own step modulo VOCAB."""
    start = rng.integers(0, VOCAB, size=(batch_size, 1))
    step = rng.integers(1, 4, size=(batch_size, 1))
    tokens = torch.from_numpy((start + step * np.arange(SEQ + 1)[None, :]) % VOCAB)
    return tokens[:, :-1], tokens[:, 1:]


# --- MoD routing on its own
mod = MoDBlock(D_MODEL)
x = torch.randn(4, SEQ, D_MODEL)
x_out, info = mod(x)
routed = torch.zeros(4, SEQ, dtype=torch.bool).scatter(1, info["selected"], True)
unrouted_diff = (x_out[~routed] - x[~routed]).abs().max().item()
scattered = torch.scatter(x, 1, info["idx"], info["chosen"] + info["out"])
scatter_err = (scattered - x_out).abs().max().item()
sorted_idx = torch.topk(mod.router(x).squeeze(-1), k=SEQ // 2, dim=1).indices.sort(dim=1).values
print(f"mod: capacity {info['selected'].size(1)} of {SEQ}, routed per row {routed.sum(1).tolist()}, "
      f"same set as sorted topk {torch.equal(sorted_idx, info['selected'])}")
print(f"mod: unrouted max change {unrouted_diff:.2e}, scatter vs scatter_add err {scatter_err:.2e}")

# --- Switch gating on its own
ffn = SwitchFFN(D_MODEL, num_experts=4, capacity_factor=1.0)
with torch.no_grad():
    ffn.gate.weight.normal_(0, 1.0)
tokens = torch.randn(24, D_MODEL)
l_aux, combine, dispatch_mask, (me, ce, expert_idx, kept) = top1gating(ffn.gate(tokens), 1.0)
switch_l_aux = 4 * torch.sum(ce * me)
print(f"switch: combine {tuple(combine.shape)}, per-expert load {F.one_hot(expert_idx, 4).sum(0).tolist()}, "
      f"kept {int(kept.sum())} of {tokens.size(0)}")
combined = ffn(tokens)
loop = torch.zeros_like(tokens)
gates = F.softmax(ffn.gate(tokens), dim=1)
for s in range(tokens.size(0)):
    e = int(expert_idx[s])
    if kept[s, e]:
        loop[s] = gates[s, e] * ffn.experts[e](tokens[s:s + 1])[0]
switch_err = (combined - loop).abs().max().item()
dropped = kept.sum(1) == 0
passed = tokens + combined
dropped_diff = (passed[dropped] - tokens[dropped]).abs().max().item() if dropped.any() else 0.0
print(f"switch: dispatch/combine vs loop err {switch_err:.2e}, dropped tokens {int(dropped.sum())} "
      f"changed by {dropped_diff:.2e}, l_aux {l_aux.item():.4f} vs E*sum(f*P) {switch_l_aux.item():.4f}")
laux_err = (l_aux - switch_l_aux).abs().item()


# --- three LMs on the same batches
def train(kind, steps=120):
    torch.manual_seed(seed)
    model = TinyLM(kind)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    for step in range(1, steps + 1):
        inputs, targets = make_batch(32)
        _, loss, extras = model(inputs, targets)
        total = loss
        if "aux_loss" in extras:
            total = total + extras["aux_loss"]
        if "l_aux" in extras:
            total = total + 0.01 * extras["l_aux"]
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 60 == 0:
            print(f"  {kind} step {step}: loss {loss.item():.4f}")
    return model


@torch.no_grad()
def evaluate(model, **kwargs):
    model.eval()
    inputs, targets = make_batch(128)
    logits, loss, extras = model(inputs, targets, **kwargs)
    acc = (logits.argmax(-1)[:, 1:] == targets[:, 1:]).float().mean().item()
    model.train()
    return loss.item(), acc, extras


rng = np.random.default_rng(seed + 1)
dense_loss, dense_acc, _ = evaluate(train("dense"))
rng = np.random.default_rng(seed + 1)
mod_model = train("mod")
mod_loss, mod_acc, mod_extras = evaluate(mod_model)
aux_acc = mod_extras["aux_acc"].item()
pred_loss, pred_acc, _ = evaluate(mod_model, use_predictor=True)
rng = np.random.default_rng(seed + 1)
switch_model = train("switch")
switch_loss, switch_acc, switch_extras = evaluate(switch_model)
print(f"dense: loss {dense_loss:.4f} acc {dense_acc:.4f}")
print(f"mod: loss {mod_loss:.4f} acc {mod_acc:.4f}, aux predictor acc {aux_acc:.4f}, "
      f"predictor-routed loss {pred_loss:.4f} acc {pred_acc:.4f}")
print(f"switch: loss {switch_loss:.4f} acc {switch_acc:.4f}, l_aux {switch_extras['l_aux'].item():.4f}")
print(f"FINAL dense_loss={dense_loss:.4f} mod_loss={mod_loss:.4f} switch_loss={switch_loss:.4f} "
      f"mod_acc={mod_acc:.4f} aux_acc={aux_acc:.4f} pred_acc={pred_acc:.4f} unrouted={unrouted_diff:.6f} "
      f"scatter_err={scatter_err:.6f} switch_err={switch_err:.6f} laux_err={laux_err:.6f}")
