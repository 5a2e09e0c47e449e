"""Mega (Ma et al. 2022): moving-average equipped gated attention in a tiny causal LM.

In the style of facebookresearch/mega (`fairseq/modules/exponential_moving_average.py`,
`moving_average_gated_attention.py`, `relative_positional_bias.py`): the multi-dimensional damped
EMA with parameters `delta`, `alpha` (`nn.Parameter(torch.Tensor(embed_dim, ndim, 1))`), `beta`,
`gamma` and the residual `omega`, initialised by `nn.init.normal_` and `with torch.no_grad()`
index assignments; `_calc_coeffs` (`p = torch.sigmoid(self.delta)`, `q = 1.0 - p * torch.sigmoid(
self.alpha)`), `_compute_kernel` by `vander = torch.arange(length).to(p).view(1, 1, length) *
torch.log(q)` and `torch.exp(vander)`, `torch.einsum('dnl,dn->dl', kernel, self.gamma * self.scale)`,
the causal long convolution `torch.fft.rfft(x.float(), n=2 * fft_len)` x `torch.fft.rfft(k.float(),
n=2 * fft_len)` -> `torch.fft.irfft(..., n=2 * fft_len)[..., :seq_len].type_as(x)`, `out + residual *
self.omega`, `F.silu`; the gated attention unit (`self.v_proj`, `self.mx_proj` output split by
`torch.split(base, [D, Z, H + D], dim=-1)`, `torch.sigmoid(u)` update gate, `F.silu(zr)` then
`torch.split(zr, [Z, H], dim=-1)`, q/k from the shared `z` by `z.unsqueeze(2) * self.gamma +
self.beta` and `torch.unbind(base, dim=2)`), `SimpleRelativePositionalBias` (`rel_pos_bias[max_positions
- seq_len:max_positions + seq_len - 1]`, `F.pad(t, (0, seq_len))`, `torch.Tensor.repeat`, `view`
and slicing to the Toeplitz matrix), the `softmax` attention with a `torch.triu(..., 1)` causal
`-inf` mask and the `laplace` attention function `0.5 * (1.0 + torch.erf((x - mu) / (std *
math.sqrt(2.0))))` with a multiplicative causal mask, `torch.addcmul(x, u, h - x)` for the update,
`nn.LayerNorm`; a Mega LM against a plain-attention LM of the same width on a synthetic long-range
copy task (the token at position t repeats the one 12 steps back), AdamW + `clip_grad_norm_`.
Check: the FFT-convolution EMA equals the step-by-step recurrence `h_t = p * x_t + q * h_{t-1}`
summed with `gamma` in a Python loop, and the relative bias equals `rel_pos_bias[j - i + max_positions - 1]`.
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

vocab = 8
lag = 12
seq_len = 32
embed_dim = 32
zdim = 16
hdim = 48
ndim = 4
n_steps = 100
batch_size = 16


def make_batch(n):
    """Random tokens with every token from position `lag` on repeating the one `lag` steps back."""
    head = rng.randint(1, vocab, (n, lag))
    reps = int(math.ceil((seq_len + 1) / lag))
    seq = np.tile(head, (1, reps))[:, :seq_len + 1]
    noise = rng.rand(n, seq_len + 1) < 0.05
    seq = np.where(noise, rng.randint(1, vocab, (n, seq_len + 1)), seq)
    seq = torch.from_numpy(seq).long()
    return seq[:, :-1], seq[:, 1:]


class MultiHeadEMA(nn.Module):
    def __init__(self, embed_dim, ndim=2, bidirectional=False, truncation=None):
        super().__init__()
        self.embed_dim = embed_dim
        self.ndim = ndim
        self.bidirectional = bidirectional
        self.truncation = truncation
        self.scale = math.sqrt(1.0 / self.ndim)
        kernel_dim = 2 * embed_dim if self.bidirectional else embed_dim
        self.delta = nn.Parameter(torch.Tensor(kernel_dim, ndim, 1))
        self.alpha = nn.Parameter(torch.Tensor(kernel_dim, ndim, 1))
        self.beta = nn.Parameter(torch.Tensor(kernel_dim, ndim, 1))
        self.gamma = nn.Parameter(torch.Tensor(kernel_dim, ndim))
        self.omega = nn.Parameter(torch.Tensor(embed_dim))
        self._kernel = None
        self._coeffs = None
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            nn.init.normal_(self.delta, mean=0.0, std=0.2)
            nn.init.normal_(self.alpha, mean=0.0, std=0.2)
            val = torch.ones(self.ndim, 1)
            if self.ndim > 1:
                idx = torch.tensor(list(range(1, self.ndim, 2)))
                val.index_fill_(0, idx, -1.0)
            self.beta.normal_(mean=0.0, std=0.02).add_(val)
            nn.init.normal_(self.gamma, mean=0.0, std=1.0)
            nn.init.normal_(self.omega, mean=0.0, std=1.0)

    def _calc_coeffs(self):
        self._coeffs = None
        p = torch.sigmoid(self.delta)
        alpha = torch.sigmoid(self.alpha)
        q = 1.0 - p * alpha
        return p, q

    def _compute_kernel(self, length):
        self._kernel = None
        p, q = self._calc_coeffs()
        vander = torch.arange(length).to(p).view(1, 1, length) * torch.log(q)
        kernel = (p * self.beta) * torch.exp(vander)
        return torch.einsum("dnl,dn->dl", kernel, self.gamma * self.scale)

    def forward(self, x):
        """x: (seq_len, bsz, embed_dim) as fairseq lays it out."""
        seq_len, bsz, embed_dim = x.size()
        residual = x * self.omega
        x = x.permute(1, 2, 0)  # B x D x L
        k = self._compute_kernel(seq_len)
        fft_len = seq_len
        k_f = torch.fft.rfft(k.float(), n=2 * fft_len)
        x_f = torch.fft.rfft(x.float(), n=2 * fft_len)
        out = torch.fft.irfft(x_f * k_f, n=2 * fft_len)[..., 0:seq_len]
        out = out.type_as(x)
        out = out.permute(2, 0, 1) + residual
        return F.silu(out)

    def recurrence(self, x):
        """The same EMA as a loop: h_t = p * beta * x_t + q * h_{t-1} per (dim, ndim), then gamma."""
        seq_len, bsz, embed_dim = x.size()
        p, q = self._calc_coeffs()
        p, q, beta = p.squeeze(-1), q.squeeze(-1), self.beta.squeeze(-1)
        h = x.new_zeros(bsz, embed_dim, self.ndim)
        outs = []
        for t in range(seq_len):
            h = p * beta * x[t].unsqueeze(-1) + q * h
            outs.append(torch.einsum("bdn,dn->bd", h, self.gamma * self.scale))
        return F.silu(torch.stack(outs) + x * self.omega)


class SimpleRelativePositionalBias(nn.Module):
    def __init__(self, max_positions):
        super().__init__()
        self.max_positions = max_positions
        self.rel_pos_bias = nn.Parameter(torch.Tensor(2 * max_positions - 1))
        nn.init.normal_(self.rel_pos_bias, mean=0.0, std=0.02)

    def forward(self, seq_len):
        b = self.rel_pos_bias[(self.max_positions - seq_len):(self.max_positions + seq_len - 1)]
        t = F.pad(b, (0, seq_len))
        t = torch.Tensor.repeat(t, seq_len)
        t = t[:-seq_len]
        t = t.view(seq_len, 3 * seq_len - 2)
        r = (2 * seq_len - 1) // 2
        start = r
        end = t.size(1) - r
        t = t[:, start:end]
        return t


def laplace(x, mu=0.707107, std=0.282095):
    x = (x - mu).div(std * math.sqrt(2.0))
    return 0.5 * (1.0 + torch.erf(x))


class MovingAverageGatedAttention(nn.Module):
    def __init__(self, embed_dim, zdim, hdim, ndim, max_positions, attention_activation="softmax"):
        super().__init__()
        self.embed_dim, self.zdim, self.hdim = embed_dim, zdim, hdim
        self.attention_activation = attention_activation
        self.scaling = self.zdim ** -0.5 if attention_activation == "softmax" else None
        self.move = MultiHeadEMA(embed_dim, ndim=ndim)
        self.v_proj = nn.Linear(embed_dim, hdim)
        self.mx_proj = nn.Linear(embed_dim, zdim + hdim + 2 * embed_dim)
        self.h_proj = nn.Linear(hdim, embed_dim)
        self.gamma = nn.Parameter(torch.Tensor(2, zdim))
        self.beta = nn.Parameter(torch.Tensor(2, zdim))
        self.rel_pos_bias = SimpleRelativePositionalBias(max_positions)
        self.norm = nn.LayerNorm(embed_dim)
        nn.init.normal_(self.gamma, mean=0.0, std=0.02)
        nn.init.constant_(self.beta, 0.0)

    def softmax_attention(self, q, k):
        seq_len = k.size(1)
        bias = self.rel_pos_bias(seq_len)
        q = q * self.scaling
        qk = torch.bmm(q, k.transpose(1, 2)) + bias
        attn_mask = torch.triu(torch.full((seq_len, seq_len), float("-inf")), 1)
        qk = qk + attn_mask.unsqueeze(0)
        return F.softmax(qk, dim=-1, dtype=torch.float32).type_as(qk)

    def element_attention(self, q, k):
        seq_len = k.size(1)
        bias = self.rel_pos_bias(seq_len)
        qk = torch.bmm(q, k.transpose(1, 2)) / seq_len + bias
        causal = torch.tril(torch.ones(seq_len, seq_len))
        return laplace(qk) * causal

    def forward(self, x):
        """x: (seq_len, bsz, embed_dim)."""
        seq_len, bsz, embed_dim = x.size()
        residual = x
        x = self.norm(x)
        v = F.silu(self.v_proj(x))
        mx = self.move(x)
        base = self.mx_proj(mx)
        u, zr, hx = torch.split(base, [self.embed_dim, self.zdim + self.hdim, self.embed_dim], dim=-1)
        u = torch.sigmoid(u)
        z, r = torch.split(F.silu(zr), [self.zdim, self.hdim], dim=-1)
        z = z.unsqueeze(2) * self.gamma + self.beta
        q, k = torch.unbind(z, dim=2)
        q, k, v = (t.transpose(0, 1) for t in (q, k, v))
        if self.attention_activation == "softmax":
            attn_weights = self.softmax_attention(q, k)
        else:
            attn_weights = self.element_attention(q, k)
        h = torch.bmm(attn_weights, v).transpose(0, 1)
        h = F.silu(hx + self.h_proj(h * r))
        return torch.addcmul(residual, u, h - residual)


class PlainBlock(nn.Module):
    def __init__(self, embed_dim):
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim)
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.ff = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, 2 * embed_dim), nn.SiLU(),
                                nn.Linear(2 * embed_dim, embed_dim))

    def forward(self, x):
        seq_len = x.size(0)
        q, k, v = self.qkv(self.norm(x)).transpose(0, 1).chunk(3, dim=-1)
        qk = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(q.size(-1))
        qk = qk.masked_fill(torch.triu(torch.ones(seq_len, seq_len, dtype=torch.bool), 1), float("-inf"))
        x = x + self.proj(torch.bmm(qk.softmax(-1), v)).transpose(0, 1)
        return x + self.ff(x)


class LM(nn.Module):
    def __init__(self, mega, attention_activation="softmax"):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed_dim)
        if mega:
            self.layers = nn.ModuleList([MovingAverageGatedAttention(embed_dim, zdim, hdim, ndim, seq_len,
                                                                     attention_activation) for _ in range(2)])
        else:
            self.pos = nn.Parameter(torch.randn(seq_len, 1, embed_dim) * 0.02)
            self.layers = nn.ModuleList([PlainBlock(embed_dim) for _ in range(2)])
        self.final_norm = nn.LayerNorm(embed_dim)
        self.out = nn.Linear(embed_dim, vocab)

    def forward(self, tokens):
        x = self.embed(tokens).transpose(0, 1)
        if hasattr(self, "pos"):
            x = x + self.pos[:x.size(0)]
        for layer in self.layers:
            x = layer(x)
        return self.out(self.final_norm(x)).transpose(0, 1)


# --- checks: FFT EMA == the recurrence; the Toeplitz bias == rel_pos_bias[i - j + L - 1]
ema = MultiHeadEMA(6, ndim=3).double()
x_check = torch.randn(20, 2, 6, dtype=torch.float64)
ema_err = (ema(x_check) - ema.recurrence(x_check)).abs().max().item()
ema32 = MultiHeadEMA(6, ndim=3)
x32 = torch.randn(20, 2, 6)
ema32_err = (ema32(x32) - ema32.recurrence(x32)).abs().max().item()
rpb = SimpleRelativePositionalBias(10)
L = 7
i, j = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
bias_err = (rpb(L) - rpb.rel_pos_bias[j - i + rpb.max_positions - 1]).abs().max().item()
print(f"EMA fft vs recurrence err float64 {ema_err:.2e} float32 {ema32_err:.2e}, rel bias err {bias_err:.2e}")


def train(model, n_steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    losses = []
    for _ in range(n_steps):
        x, y = make_batch(batch_size)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def evaluate(model):
    x, y = make_batch(64)
    logits = model(x)
    late = slice(lag, None)  # positions where the copy is predictable
    acc = (logits[:, late].argmax(-1) == y[:, late]).float().mean().item()
    return F.cross_entropy(logits[:, late].reshape(-1, vocab), y[:, late].reshape(-1)).item(), acc


results = {}
for name, model in (("mega", LM(True)), ("mega_laplace", LM(True, "laplace")), ("plain", LM(False))):
    losses = train(model, n_steps)
    eval_loss, acc = evaluate(model)
    results[name] = (losses, eval_loss, acc)
    print(f"{name}: params {sum(p.numel() for p in model.parameters())} loss {np.mean(losses[:10]):.3f} -> "
          f"{np.mean(losses[-10:]):.3f} eval loss {eval_loss:.3f} copy acc {acc:.3f}")

print(f"FINAL mega_loss={results['mega'][1]:.4f} mega_acc={results['mega'][2]:.4f} "
      f"laplace_loss={results['mega_laplace'][1]:.4f} laplace_acc={results['mega_laplace'][2]:.4f} "
      f"plain_loss={results['plain'][1]:.4f} plain_acc={results['plain'][2]:.4f} "
      f"mega_first={np.mean(results['mega'][0][:10]):.4f} ema_err={ema_err:.2e} ema32_err={ema32_err:.2e} "
      f"bias_err={bias_err:.2e}")
