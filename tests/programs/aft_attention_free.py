"""Attention Free Transformer (Zhai et al., 2021) in the layout of lucidrains/aft-pytorch and the AFT
reference implementations, on a synthetic lag-copy sequence task.

The task: a sequence of ``T`` random tokens; the target at position ``t`` is the token ``LAG`` positions
earlier (``(t - LAG) mod T``), so a model must route information between fixed relative positions. Every
model is the same pre-LayerNorm block (token + learned position embeddings, the token mixer, a residual
feed-forward layer, a linear head); only the token mixer changes:

* ``AFTFull``: learned pairwise position biases ``self.wbias`` (``xavier_uniform_``),
  ``temp = torch.exp(temp_wbias) @ torch.mul(torch.exp(K), V)``,
  ``weighted = temp / (torch.exp(temp_wbias) @ torch.exp(K))``, gated by ``Q_sig = torch.sigmoid(Q)``;
* ``AFTSimple``: no position biases, ``weights = torch.mul(F.softmax(K, dim=1), V).sum(dim=1, keepdim=True)``;
* ``AFTLocal``: ``wbias`` kept only in a band ``|t - t'| < s`` built by ``torch.triu``/``torch.tril`` (zero,
  i.e. ``exp(0) = 1``, outside it, as in the paper);
* ``AFTFull(causal=True)``: the biases masked below the diagonal;
* ``nn.MultiheadAttention(batch_first=True)`` as the baseline.

Checked: the numerically stable AFT-full (``K - K.max(dim=1, keepdim=True)[0]``, ``w - w.max(dim=1,
keepdim=True)[0]``) equals the plain formula in value and gradient, and stays finite where the plain one
overflows; causal AFT-simple by ``torch.cumsum`` equals the masked-matrix route (value and gradient), and
its stable cumsum form (``exp(K - max)``) too; AFT-local with ``s >= T`` equals AFT-full; then the loss
curves and the lag-copy accuracy of every model on held-out sequences.
"""

# ruff: noqa: UP031, B007  (the repos' % formats, for step in range(STEPS))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

VOCAB = 8
T = 12
LAG = 3
DIM = 32
HIDDEN = 32
STEPS = 150
BATCH = 32


def make_batch(n):
    x = rng.randint(0, VOCAB, size=(n, T))
    y = np.roll(x, LAG, axis=1)
    return torch.from_numpy(x), torch.from_numpy(y)


class AFTFull(nn.Module):
    def __init__(self, max_seqlen, dim, hidden_dim=64, causal=False):
        super().__init__()
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.causal = causal
        self.to_q = nn.Linear(dim, hidden_dim)
        self.to_k = nn.Linear(dim, hidden_dim)
        self.to_v = nn.Linear(dim, hidden_dim)
        self.project = nn.Linear(hidden_dim, dim)
        self.wbias = nn.Parameter(torch.Tensor(max_seqlen, max_seqlen))
        nn.init.xavier_uniform_(self.wbias)

    def position_bias(self, T):
        return self.wbias[:T, :T]

    def forward(self, x, stable=False):
        B, T, _ = x.shape
        Q = self.to_q(x).view(B, T, self.hidden_dim)
        K = self.to_k(x).view(B, T, self.hidden_dim)
        V = self.to_v(x).view(B, T, self.hidden_dim)
        temp_wbias = self.position_bias(T).unsqueeze(0)  # sequences can still be variable length

        if stable:
            # exp(w - max w) and exp(K - max K): the maxima cancel between numerator and denominator
            K = K - K.max(dim=1, keepdim=True)[0]
            temp_wbias = temp_wbias - temp_wbias.max(dim=-1, keepdim=True)[0]
        exp_w = torch.exp(temp_wbias)
        if self.causal:
            exp_w = exp_w * torch.tril(torch.ones(T, T))

        Q_sig = torch.sigmoid(Q)
        temp = exp_w @ torch.mul(torch.exp(K), V)
        weighted = temp / (exp_w @ torch.exp(K))
        Yt = torch.mul(Q_sig, weighted)

        Yt = Yt.view(B, T, self.hidden_dim)
        Yt = self.project(Yt)
        return Yt


class AFTLocal(AFTFull):
    def __init__(self, max_seqlen, dim, hidden_dim=64, s=256):
        super().__init__(max_seqlen, dim, hidden_dim)
        self.s = s

    def position_bias(self, T):
        w = self.wbias[:T, :T]
        band = torch.triu(torch.tril(torch.ones_like(w), diagonal=self.s - 1), diagonal=-(self.s - 1))
        return w * band


class AFTSimple(nn.Module):
    def __init__(self, max_seqlen, dim, hidden_dim=64):
        super().__init__()
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.to_q = nn.Linear(dim, hidden_dim)
        self.to_k = nn.Linear(dim, hidden_dim)
        self.to_v = nn.Linear(dim, hidden_dim)
        self.project = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        B, T, _ = x.shape
        Q = self.to_q(x).view(B, T, self.hidden_dim)
        K = self.to_k(x).view(B, T, self.hidden_dim)
        V = self.to_v(x).view(B, T, self.hidden_dim)

        weights = torch.mul(F.softmax(K, dim=1), V).sum(dim=1, keepdim=True)
        Q_sig = torch.sigmoid(Q)
        Yt = torch.mul(Q_sig, weights)

        Yt = Yt.view(B, T, self.hidden_dim)
        Yt = self.project(Yt)
        return Yt


def aft_simple_causal_cumsum(Q, K, V, stable=False):
    if stable:
        K = K - K.max(dim=1, keepdim=True)[0]
    num = torch.cumsum(torch.exp(K) * V, dim=1)
    den = torch.cumsum(torch.exp(K), dim=1)
    return torch.sigmoid(Q) * num / den


def aft_simple_causal_masked(Q, K, V):
    T = K.shape[1]
    mask = torch.tril(torch.ones(T, T, dtype=K.dtype)).unsqueeze(0)
    num = mask @ (torch.exp(K) * V)
    den = mask @ torch.exp(K)
    return torch.sigmoid(Q) * num / den


class MHAMixer(nn.Module):
    def __init__(self, dim, heads=2):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        out, _ = self.attn(x, x, x, need_weights=False)
        return out


class Model(nn.Module):
    def __init__(self, mixer):
        super().__init__()
        self.tok_emb = nn.Embedding(VOCAB, DIM)
        self.pos_emb = nn.Parameter(torch.randn(1, T, DIM) * 0.02)
        self.norm1 = nn.LayerNorm(DIM)
        self.mixer = mixer
        self.norm2 = nn.LayerNorm(DIM)
        self.ff = nn.Sequential(nn.Linear(DIM, 2 * DIM), nn.GELU(), nn.Linear(2 * DIM, DIM))
        self.head = nn.Linear(DIM, VOCAB)

    def forward(self, idx):
        x = self.tok_emb(idx) + self.pos_emb[:, : idx.shape[1]]
        x = x + self.mixer(self.norm1(x))
        x = x + self.ff(self.norm2(x))
        return self.head(x)


# ---- checks of the formulas ----
aft = AFTFull(T, DIM, HIDDEN).double()
with torch.no_grad():
    aft.wbias.mul_(3.0)
x = torch.randn(2, T, DIM, dtype=torch.float64, requires_grad=True)
plain = aft(x)
stable = aft(x, stable=True)
g_plain = torch.autograd.grad(plain.pow(2).sum(), (x, aft.wbias))
g_stable = torch.autograd.grad(stable.pow(2).sum(), (x, aft.wbias))
stable_diff = (plain - stable).abs().max().item()
stable_grad_diff = max((a - b).abs().max().item() for a, b in zip(g_plain, g_stable))
print("AFT-full stable vs plain: max |diff| %.2e, grad max |diff| %.2e" % (stable_diff, stable_grad_diff))

aft32 = AFTFull(T, DIM, HIDDEN)
with torch.no_grad():
    aft32.to_k.weight.mul_(400.0)
    big = aft32(torch.randn(2, T, DIM))
    big_stable = aft32(torch.randn(2, T, DIM), stable=True)
plain_finite = int(torch.isfinite(big).all().item())
stable_finite = int(torch.isfinite(big_stable).all().item())
print("large keys: plain finite %d, stable finite %d" % (plain_finite, stable_finite))

Q = torch.randn(3, T, HIDDEN, dtype=torch.float64, requires_grad=True)
K = torch.randn(3, T, HIDDEN, dtype=torch.float64, requires_grad=True)
V = torch.randn(3, T, HIDDEN, dtype=torch.float64, requires_grad=True)
by_cumsum = aft_simple_causal_cumsum(Q, K, V)
by_mask = aft_simple_causal_masked(Q, K, V)
by_cumsum_stable = aft_simple_causal_cumsum(Q, K, V, stable=True)
causal_diff = max((by_cumsum - by_mask).abs().max().item(), (by_cumsum_stable - by_mask).abs().max().item())
u = torch.randn_like(by_mask)
g_cumsum = torch.autograd.grad((by_cumsum * u).sum(), (Q, K, V))
g_mask = torch.autograd.grad((by_mask * u).sum(), (Q, K, V))
causal_grad_diff = max((a - b).abs().max().item() for a, b in zip(g_cumsum, g_mask))
last = torch.sigmoid(Q[:, -1:]) * (F.softmax(K, dim=1) * V).sum(dim=1, keepdim=True)
last_diff = (by_cumsum[:, -1:] - last).abs().max().item()
print("causal AFT-simple cumsum vs masked: max |diff| %.2e, grad %.2e, last step vs softmax %.2e"
      % (causal_diff, causal_grad_diff, last_diff))

local = AFTLocal(T, DIM, HIDDEN, s=T).double()
full = AFTFull(T, DIM, HIDDEN).double()
full.load_state_dict(local.state_dict())
xl = torch.randn(2, T, DIM, dtype=torch.float64)
local_full_diff = (local(xl) - full(xl)).abs().max().item()
band = torch.triu(torch.tril(torch.ones(T, T), diagonal=2), diagonal=-2)
print("AFT-local(s=T) vs AFT-full: max |diff| %.2e, band(s=3) nonzeros %d" % (local_full_diff, int(band.sum())))


# ---- training ----
def train(name, mixer):
    model = Model(mixer)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.CrossEntropyLoss()
    losses = []
    for step in range(STEPS):
        xb, yb = make_batch(BATCH)
        logits = model(xb)
        loss = criterion(logits.view(-1, VOCAB), yb.view(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 40 == 0 or step == STEPS - 1:
            print("%-8s step %3d loss %.4f" % (name, step, loss.item()))
    model.eval()
    with torch.no_grad():
        xt, yt = test_x, test_y
        pred = model(xt).argmax(dim=-1)
        acc = (pred == yt).float().mean().item()
    print("%-8s held-out acc %.4f, mean loss first 10 %.4f last 10 %.4f"
          % (name, acc, np.mean(losses[:10]), np.mean(losses[-10:])))
    return acc, float(np.mean(losses[-10:]))


test_x, test_y = make_batch(256)
results = {
    "full": train("full", AFTFull(T, DIM, HIDDEN)),
    "simple": train("simple", AFTSimple(T, DIM, HIDDEN)),
    "local": train("local", AFTLocal(T, DIM, HIDDEN, s=LAG + 1)),
    "causal": train("causal", AFTFull(T, DIM, HIDDEN, causal=True)),
    "mha": train("mha", MHAMixer(DIM)),
}

print(
    "FINAL stable_diff=%.6f stable_grad_diff=%.6f plain_finite=%d stable_finite=%d causal_diff=%.6f "
    "causal_grad_diff=%.6f local_full_diff=%.6f %s"
    % (stable_diff, stable_grad_diff, plain_finite, stable_finite, causal_diff, causal_grad_diff, local_full_diff,
       " ".join("acc_%s=%.4f loss_%s=%.4f" % (k, a, k, lo) for k, (a, lo) in results.items()))
)
