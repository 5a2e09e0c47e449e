"""minGRU and minLSTM ("Were RNNs All We Needed?", Feng et al. 2024) with the log-space parallel scan of
Heinsen (2023), as the paper's appendix and lucidrains/minGRU-pytorch write them, on a character task.

The scan: ``a_star = F.pad(torch.cumsum(log_coeffs, dim=1), (0, 0, 1, 0))``, ``log_h0_plus_b_star =
torch.logcumsumexp(log_values - a_star, dim=1)``, ``log_h = a_star + log_h0_plus_b_star``,
``torch.exp(log_h)[:, 1:]``, and lucidrains' ``heinsen_associative_scan_log`` (``log_coeffs.cumsum(dim=1)``,
``.logcumsumexp(dim=1)``, ``.exp()``); ``g(x) = torch.where(x >= 0, x + 0.5, x.sigmoid())`` and ``log_g(x) =
torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))``; log-sigmoid as ``-F.softplus(-k)``; the
minLSTM's normalised gates by ``diff = F.softplus(-f) - F.softplus(-i)``. Sequential forms step the
recurrences ``h = (1 - z) * h + z * g(h_tilde)`` and ``h = f' * h + i' * g(h_tilde)`` with ``f' = f / (f +
i)``. lucidrains' ``minGRU`` module (``to_hidden_and_gate(x).chunk(2, dim=-1)``, ``torch.lerp(prev_hidden,
hidden, gate)`` for one step, ``torch.cat((prev_hidden.log(), log_values), dim=1)`` with ``F.pad(log_coeffs,
(0, 0, 1, 0))`` to continue from a hidden state, ``return_next_prev_hidden``) inside ``minGRULM`` (the
``F.normalize(x, dim=-1) * self.scale * (self.gamma + 1)`` RMSNorm, a GELU ``FeedForward``,
``CausalDepthWiseConv1d`` by ``F.pad(x, (k - 1, 0), value=0.)`` + grouped ``nn.Conv1d``, ``ModuleList`` of
``ModuleList`` layers, ``F.cross_entropy(logits.transpose(1, 2), labels)``).

Checked: the parallel scans equal the sequential recurrences (max abs difference of outputs and of the
gradients of the input and of every weight), ``torch.autograd.gradcheck`` of the scan in float64, the two
scan spellings against each other, the minGRU continued from ``prev_hidden`` over a split sequence against
one run over the whole, and the trained LM's token-by-token recurrent decoding (``prev_hiddens``) against
its parallel logits; the LMs (with and without the causal convolution) must learn the character task.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import Linear, Module, ModuleList

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


def exists(v):
    return v is not None


def default(v, d):
    return v if exists(v) else d


# ------------------------------------------------------------------ the paper's appendix (B.3)
def parallel_scan_log(log_coeffs, log_values):
    # log_coeffs: (batch_size, seq_len, input_size)
    # log_values: (batch_size, seq_len + 1, input_size)
    a_star = F.pad(torch.cumsum(log_coeffs, dim=1), (0, 0, 1, 0))
    log_h0_plus_b_star = torch.logcumsumexp(log_values - a_star, dim=1)
    log_h = a_star + log_h0_plus_b_star
    return torch.exp(log_h)[:, 1:]


def g(x):
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x):
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


class MinGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.linear_z = nn.Linear(input_size, hidden_size)
        self.linear_h = nn.Linear(input_size, hidden_size)

    def forward(self, x, h_0):
        # parallel mode; x: (batch_size, seq_len, input_size), h_0: (batch_size, 1, hidden_size)
        k = self.linear_z(x)
        log_z = -F.softplus(-k)
        log_coeffs = -F.softplus(k)
        log_h_0 = log_g(h_0)
        log_tilde_h = log_g(self.linear_h(x))
        return parallel_scan_log(log_coeffs, torch.cat([log_h_0, log_z + log_tilde_h], dim=1))

    def forward_sequential(self, x, h_0):
        h_prev = g(h_0[:, 0])
        outs = []
        for t in range(x.size(1)):
            x_t = x[:, t]
            z = torch.sigmoid(self.linear_z(x_t))
            h_tilde = g(self.linear_h(x_t))
            h_prev = (1 - z) * h_prev + z * h_tilde
            outs.append(h_prev)
        return torch.stack(outs, dim=1)


class MinLSTM(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.linear_f = nn.Linear(input_size, hidden_size)
        self.linear_i = nn.Linear(input_size, hidden_size)
        self.linear_h = nn.Linear(input_size, hidden_size)

    def forward(self, x_t, h_0):
        diff = F.softplus(-self.linear_f(x_t)) - F.softplus(-self.linear_i(x_t))
        log_f = -F.softplus(diff)
        log_i = -F.softplus(-diff)
        log_h_0 = log_g(h_0)
        log_tilde_h = log_g(self.linear_h(x_t))
        return parallel_scan_log(log_f, torch.cat([log_h_0, log_i + log_tilde_h], dim=1))

    def forward_sequential(self, x, h_0):
        h_prev = g(h_0[:, 0])
        outs = []
        for t in range(x.size(1)):
            x_t = x[:, t]
            f_t = torch.sigmoid(self.linear_f(x_t))
            i_t = torch.sigmoid(self.linear_i(x_t))
            tilde_h_t = g(self.linear_h(x_t))
            f_prime_t = f_t / (f_t + i_t)
            i_prime_t = i_t / (f_t + i_t)
            h_prev = f_prime_t * h_prev + i_prime_t * tilde_h_t
            outs.append(h_prev)
        return torch.stack(outs, dim=1)


# --------------------------------------------------------------- lucidrains/minGRU-pytorch
def heinsen_associative_scan_log(log_coeffs, log_values):
    a_star = log_coeffs.cumsum(dim=1)
    log_h0_plus_b_star = (log_values - a_star).logcumsumexp(dim=1)
    log_h = a_star + log_h0_plus_b_star
    return log_h.exp()


class minGRU(Module):
    def __init__(self, dim, expansion_factor=1., proj_out=None):
        super().__init__()
        dim_inner = int(dim * expansion_factor)
        proj_out = default(proj_out, expansion_factor != 1.)
        self.to_hidden_and_gate = Linear(dim, dim_inner * 2, bias=False)
        self.to_out = Linear(dim_inner, dim, bias=False) if proj_out else nn.Identity()

    def forward(self, x, prev_hidden=None, return_next_prev_hidden=False):
        seq_len = x.shape[1]
        hidden, gate = self.to_hidden_and_gate(x).chunk(2, dim=-1)

        if seq_len == 1:
            # handle sequential
            hidden = g(hidden)
            gate = gate.sigmoid()
            out = torch.lerp(prev_hidden, hidden, gate) if exists(prev_hidden) else (hidden * gate)
        else:
            # parallel
            log_coeffs = -F.softplus(gate)
            log_z = -F.softplus(-gate)
            log_tilde_h = log_g(hidden)
            log_values = log_z + log_tilde_h

            if exists(prev_hidden):
                log_values = torch.cat((prev_hidden.log(), log_values), dim=1)
                log_coeffs = F.pad(log_coeffs, (0, 0, 1, 0))

            out = heinsen_associative_scan_log(log_coeffs, log_values)
            out = out[:, -seq_len:]

        next_prev_hidden = out[:, -1:]
        out = self.to_out(out)

        if not return_next_prev_hidden:
            return out
        return out, next_prev_hidden


class CausalDepthWiseConv1d(Module):
    def __init__(self, dim, kernel_size):
        super().__init__()
        self.kernel_size = kernel_size
        self.net = nn.Sequential(
            nn.Conv1d(dim, dim, kernel_size=kernel_size, groups=dim),
            nn.Conv1d(dim, dim, kernel_size=1),
        )

    def forward(self, x):
        x = x.transpose(1, 2)  # b n d -> b d n
        x = F.pad(x, (self.kernel_size - 1, 0), value=0.)
        x = self.net(x)
        return x.transpose(1, 2)  # b d n -> b n d


def FeedForward(dim, mult=4):
    dim_inner = int(dim * mult)
    return nn.Sequential(Linear(dim, dim_inner), nn.GELU(), Linear(dim_inner, dim))


class RMSNorm(Module):
    def __init__(self, dim):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return F.normalize(x, dim=-1) * self.scale * (self.gamma + 1)


class minGRULM(Module):
    def __init__(self, *, num_tokens, dim, depth, ff_mult=4, min_gru_expansion=1.5, conv_kernel_size=3,
                 enable_conv=False):
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.layers = ModuleList([])
        for _ in range(depth):
            self.layers.append(ModuleList([
                CausalDepthWiseConv1d(dim, conv_kernel_size) if enable_conv else None,
                RMSNorm(dim),
                minGRU(dim, expansion_factor=min_gru_expansion),
                RMSNorm(dim),
                FeedForward(dim, mult=ff_mult),
            ]))
        self.norm = RMSNorm(dim)
        self.to_logits = nn.Linear(dim, num_tokens, bias=False)

    def forward(self, x, return_loss=False, return_prev_hiddens=False, prev_hiddens=None):
        if return_loss:
            x, labels = x[:, :-1], x[:, 1:]

        x = self.token_emb(x)

        # handle previous hiddens, for recurrent decoding
        if exists(prev_hiddens):
            x = x[:, -1:]

        next_prev_hiddens = []
        prev_hiddens = iter(default(prev_hiddens, []))

        for conv, norm, mingru, ff_norm, ff in self.layers:
            if exists(conv):
                x = conv(x) + x

            prev_hidden = next(prev_hiddens, None)
            min_gru_out, next_prev_hidden = mingru(norm(x), prev_hidden, return_next_prev_hidden=True)
            x = min_gru_out + x
            next_prev_hiddens.append(next_prev_hidden)

            x = ff(ff_norm(x)) + x

        embed = self.norm(x)
        logits = self.to_logits(embed)

        if not return_loss:
            if not return_prev_hiddens:
                return logits
            return logits, next_prev_hiddens

        loss = F.cross_entropy(logits.transpose(1, 2), labels)
        return loss


# ------------------------------------------------------------------------ scan == recurrence
def weighted_grads(module, out, inputs):
    weights = torch.linspace(-1.0, 1.0, out.numel()).view_as(out)
    params = list(module.parameters())
    return torch.autograd.grad((out * weights).sum(), inputs + params)


B, T, D_IN, D_H = 4, 24, 6, 10
x = torch.randn(B, T, D_IN, requires_grad=True)
h0 = torch.randn(B, 1, D_H, requires_grad=True)
scan_diff = scan_grad_diff = 0.0
for cell_cls in (MinGRU, MinLSTM):
    cell = cell_cls(D_IN, D_H)
    par = cell(x, h0)
    seq = cell.forward_sequential(x, h0)
    d_out = (par - seq).abs().max().item()
    d_grad = max((a - b).abs().max().item()
                 for a, b in zip(weighted_grads(cell, par, [x, h0]), weighted_grads(cell, seq, [x, h0])))
    print(f"{cell_cls.__name__}: parallel vs sequential out max|diff| {d_out:.2e}  grad max|diff| {d_grad:.2e}")
    scan_diff, scan_grad_diff = max(scan_diff, d_out), max(scan_grad_diff, d_grad)
assert scan_diff < 1e-5 and scan_grad_diff < 1e-4

log_c = (-F.softplus(torch.randn(2, 7, 3, dtype=torch.double))).requires_grad_()
log_v = torch.randn(2, 8, 3, dtype=torch.double, requires_grad=True)
ok = torch.autograd.gradcheck(parallel_scan_log, (log_c, log_v), eps=1e-6, atol=1e-5)
two_spellings = (parallel_scan_log(log_c, log_v)
                 - heinsen_associative_scan_log(F.pad(log_c, (0, 0, 1, 0)), log_v)[:, 1:]).abs().max().item()
print(f"gradcheck(parallel_scan_log) {ok}; appendix vs lucidrains scan max|diff| {two_spellings:.1e}")
assert ok and two_spellings < 1e-12

layer = minGRU(D_IN, expansion_factor=1.5)
full, _ = layer(x, return_next_prev_hidden=True)
first, hidden = layer(x[:, :10], return_next_prev_hidden=True)
second, _ = layer(x[:, 10:], hidden, return_next_prev_hidden=True)
cont_diff = (torch.cat([first, second], dim=1) - full).abs().max().item()
print(f"minGRU continued from prev_hidden vs one pass: max|diff| {cont_diff:.2e}")
assert cont_diff < 1e-5


# ------------------------------------------------------------------------------- char task
words = ["min", "gru", "scan", "log", "space", "gate", "state", "and", "the", "of", "parallel"]
rng = np.random.RandomState(4321)
text = " ".join(words[i] for i in rng.randint(0, len(words), size=1100)) + " "
chars = sorted(set(text))
stoi = {ch: i for i, ch in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n_train = int(0.9 * len(data))
train_data, val_data = data[:n_train], data[n_train:]
counts = torch.bincount(train_data, minlength=len(chars)).double()
probs = counts / counts.sum()
unigram = -(probs * torch.log(probs.clamp_min(1e-12))).sum().item()
print(f"chars {len(chars)} train {len(train_data)} unigram entropy {unigram:.4f}")

SEQ_LEN, BATCH, STEPS = 33, 16, 80


def sample(d, gen, n):
    ix = torch.randint(0, len(d) - SEQ_LEN, (n,), generator=gen)
    return torch.stack([d[i:i + SEQ_LEN] for i in ix.tolist()])


results = {}
for enable_conv in (False, True):
    tag = "conv" if enable_conv else "plain"
    torch.manual_seed(seed)
    model = minGRULM(num_tokens=len(chars), dim=32, depth=2, ff_mult=2, enable_conv=enable_conv)
    optim = torch.optim.Adam(model.parameters(), lr=4e-3)
    gen = torch.Generator().manual_seed(seed)
    for step in range(STEPS):
        model.train()
        loss = model(sample(train_data, gen, BATCH), return_loss=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optim.step()
        optim.zero_grad()
        if step % 40 == 0 or step == STEPS - 1:
            print(f"{tag} step {step} loss {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        val = model(sample(val_data, torch.Generator().manual_seed(99), 64), return_loss=True).item()
    results[tag] = val
    print(f"{tag} val loss {val:.4f} bits/char {val / math.log(2):.4f}")
    if not enable_conv:
        plain = model

# recurrent decoding with cached hidden states equals the parallel logits
with torch.no_grad():
    prompt = sample(val_data, torch.Generator().manual_seed(5), 2)[:, :20]
    parallel_logits = plain(prompt)
    prev_hiddens, steps = None, []
    for t in range(prompt.size(1)):
        logits, prev_hiddens = plain(prompt[:, :t + 1], return_prev_hiddens=True, prev_hiddens=prev_hiddens)
        steps.append(logits[:, -1])
    decode_diff = (torch.stack(steps, dim=1) - parallel_logits).abs().max().item()
    greedy = prompt[:1]
    hiddens = None
    for _ in range(12):
        logits, hiddens = plain(greedy, return_prev_hiddens=True, prev_hiddens=hiddens)
        greedy = torch.cat((greedy, logits[:, -1:].argmax(-1)), dim=-1)
print(f"recurrent decoding vs parallel logits: max|diff| {decode_diff:.2e}")
print(f"greedy continuation by cached recurrence: {greedy.size(1)} tokens")
assert decode_diff < 1e-4
assert results["plain"] < 0.6 * unigram and results["conv"] < 0.6 * unigram, (results, unigram)
print(f"FINAL scan_diff={scan_diff:.2e} scan_grad_diff={scan_grad_diff:.2e} decode_diff={decode_diff:.2e} "
      f"val_plain={results['plain']:.4f} val_conv={results['conv']:.4f}")
