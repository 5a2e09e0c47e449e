"""A minimal Mamba language model (johnma2006/mamba-minimal idioms) trained on a synthetic sequence.

``ModelArgs`` as a dataclass with ``__post_init__`` (``d_inner``, ``dt_rank='auto'`` by
``math.ceil``, the vocabulary padded to a multiple), ``MambaBlock`` with ``in_proj(x).split(
split_size=[d_inner, d_inner], dim=-1)``, a depthwise causal ``nn.Conv1d(groups=d_inner,
padding=d_conv - 1)`` cut back by ``[:, :, :l]``, einops' rearranges done by ``transpose``,
``F.silu``, ``F.softplus`` for delta, ``A = -torch.exp(self.A_log.float())`` from
``A_log = nn.Parameter(torch.log(A))`` with ``A = torch.arange(1, n + 1).repeat(d_inner, 1)``,
the discretisation by ``torch.einsum('b l d, d n -> b l d n', ...)`` and ``torch.exp``, the
sequential selective scan over ``range(l)`` collecting ``torch.stack(ys, dim=1)``, ``RMSNorm``
written by hand (``x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * self.weight``),
weight tying, and mamba-minimal's ``generate`` (``topk`` cut-off, ``probs.sum(axis=1,
keepdims=True)``, ``torch.multinomial``). The corpus: an order-2 Markov chain over 14 tokens.
"""

import math
import os
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

VOCAB = 14
# an order-2 chain: the next token depends on the last two, mostly deterministic
TABLE = rng.integers(0, VOCAB, size=(VOCAB, VOCAB))


def sample_sequences(n, length):
    seqs = np.empty((n, length), dtype=np.int64)
    seqs[:, :2] = rng.integers(0, VOCAB, size=(n, 2))
    for t in range(2, length):
        nxt = TABLE[seqs[:, t - 2], seqs[:, t - 1]]
        noise = rng.random(n) < 0.1
        seqs[:, t] = np.where(noise, rng.integers(0, VOCAB, size=n), nxt)
    return torch.from_numpy(seqs)


@dataclass
class ModelArgs:
    d_model: int
    n_layer: int
    vocab_size: int
    d_state: int = 16
    expand: int = 2
    dt_rank: Union[int, str] = 'auto'  # noqa: UP007  (the repository's spelling)
    d_conv: int = 4
    pad_vocab_size_multiple: int = 8
    conv_bias: bool = True
    bias: bool = False

    def __post_init__(self):
        self.d_inner = int(self.expand * self.d_model)

        if self.dt_rank == 'auto':
            self.dt_rank = math.ceil(self.d_model / 16)

        if self.vocab_size % self.pad_vocab_size_multiple != 0:
            self.vocab_size += (self.pad_vocab_size_multiple
                                - self.vocab_size % self.pad_vocab_size_multiple)


class Mamba(nn.Module):
    def __init__(self, args: ModelArgs):
        """Full Mamba model."""
        super().__init__()
        self.args = args

        self.embedding = nn.Embedding(args.vocab_size, args.d_model)
        self.layers = nn.ModuleList([ResidualBlock(args) for _ in range(args.n_layer)])
        self.norm_f = RMSNorm(args.d_model)

        self.lm_head = nn.Linear(args.d_model, args.vocab_size, bias=False)
        self.lm_head.weight = self.embedding.weight  # Tie output projection to embedding weights.

    def forward(self, input_ids):
        x = self.embedding(input_ids)

        for layer in self.layers:
            x = layer(x)

        x = self.norm_f(x)
        logits = self.lm_head(x)

        return logits


class ResidualBlock(nn.Module):
    def __init__(self, args: ModelArgs):
        """Simple block wrapping Mamba block with normalization and residual connection."""
        super().__init__()
        self.args = args
        self.mixer = MambaBlock(args)
        self.norm = RMSNorm(args.d_model)

    def forward(self, x):
        output = self.mixer(self.norm(x)) + x

        return output


class MambaBlock(nn.Module):
    def __init__(self, args: ModelArgs):
        """A single Mamba block, as described in Figure 3 in Section 3.4 in the Mamba paper [1]."""
        super().__init__()
        self.args = args

        self.in_proj = nn.Linear(args.d_model, args.d_inner * 2, bias=args.bias)

        self.conv1d = nn.Conv1d(
            in_channels=args.d_inner,
            out_channels=args.d_inner,
            bias=args.conv_bias,
            kernel_size=args.d_conv,
            groups=args.d_inner,
            padding=args.d_conv - 1,
        )

        # x_proj takes in `x` and outputs the input-specific Δ, B, C
        self.x_proj = nn.Linear(args.d_inner, args.dt_rank + args.d_state * 2, bias=False)

        # dt_proj projects Δ from dt_rank to d_in
        self.dt_proj = nn.Linear(args.dt_rank, args.d_inner, bias=True)

        A = torch.arange(1, args.d_state + 1).repeat(args.d_inner, 1)  # repeat('n -> d n', d=d_inner)
        self.A_log = nn.Parameter(torch.log(A))
        self.D = nn.Parameter(torch.ones(args.d_inner))
        self.out_proj = nn.Linear(args.d_inner, args.d_model, bias=args.bias)

    def forward(self, x):
        (b, l, d) = x.shape

        x_and_res = self.in_proj(x)  # shape (b, l, 2 * d_in)
        (x, res) = x_and_res.split(split_size=[self.args.d_inner, self.args.d_inner], dim=-1)

        x = x.transpose(1, 2)  # rearrange(x, 'b l d_in -> b d_in l')
        x = self.conv1d(x)[:, :, :l]
        x = x.transpose(1, 2)  # rearrange(x, 'b d_in l -> b l d_in')

        x = F.silu(x)

        y = self.ssm(x)

        y = y * F.silu(res)

        output = self.out_proj(y)

        return output

    def ssm(self, x):
        (d_in, n) = self.A_log.shape

        # Compute ∆ A B C D, the state space parameters.
        A = -torch.exp(self.A_log.float())  # shape (d_in, n)
        D = self.D.float()

        x_dbl = self.x_proj(x)  # (b, l, dt_rank + 2*n)

        (delta, B, C) = x_dbl.split(split_size=[self.args.dt_rank, n, n], dim=-1)  # delta: (b, l, dt_rank). B, C: (b, l, n)
        delta = F.softplus(self.dt_proj(delta))  # (b, l, d_in)

        y = self.selective_scan(x, delta, A, B, C, D)  # This is similar to run_SSM(A, B, C, u) in The Annotated S4 [2]

        return y

    def selective_scan(self, u, delta, A, B, C, D):
        (b, l, d_in) = u.shape
        n = A.shape[1]

        # Discretize continuous parameters (A, B)
        deltaA = torch.exp(torch.einsum('b l d, d n -> b l d n', delta, A))
        deltaB_u = torch.einsum('b l d, b l n, b l d -> b l d n', delta, B, u)

        # Perform selective scan (see scan_SSM() in The Annotated S4 [2])
        x = torch.zeros((b, d_in, n), device=deltaA.device)
        ys = []
        for i in range(l):
            x = deltaA[:, i] * x + deltaB_u[:, i]
            y = torch.einsum('b d n, b n -> b d', x, C[:, i, :])
            ys.append(y)
        y = torch.stack(ys, dim=1)  # shape (b, l, d_in)

        y = y + u * D

        return y


class RMSNorm(nn.Module):
    def __init__(self,
                 d_model: int,
                 eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x):
        output = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

        return output


@torch.no_grad()
def generate(model, input_ids, n_tokens_to_gen: int = 8, sample: bool = True, top_k: int = 4):
    model.eval()
    for token_n in range(n_tokens_to_gen):  # noqa: B007  (the repository's own loop)
        indices_to_input = input_ids
        next_token_logits = model(indices_to_input)[:, -1]

        probs = F.softmax(next_token_logits, dim=-1)
        (batch, vocab_size) = probs.shape

        if top_k is not None:
            (values, indices) = torch.topk(probs, k=top_k)
            probs[probs < values[:, -1, None]] = 0
            probs = probs / probs.sum(axis=1, keepdims=True)

        if sample:
            next_indices = torch.multinomial(probs, num_samples=1)
        else:
            next_indices = torch.argmax(probs, dim=-1)[:, None]

        input_ids = torch.cat([input_ids, next_indices], dim=1)
    return input_ids


args = ModelArgs(d_model=32, n_layer=2, vocab_size=VOCAB, d_state=8)
model = Mamba(args)
print(f"d_inner {args.d_inner}, dt_rank {args.dt_rank}, padded vocab {args.vocab_size}, "
      f"A_log {tuple(model.layers[0].mixer.A_log.shape)}, tied {model.lm_head.weight is model.embedding.weight}")
optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.01)

SEQ, BATCH, STEPS = 16, 16, 90
train_data = sample_sequences(BATCH * 16, SEQ + 1)
val_data = sample_sequences(64, SEQ + 1)
for step in range(1, STEPS + 1):
    model.train()
    start = ((step - 1) * BATCH) % len(train_data)
    batch = train_data[start:start + BATCH]
    logits = model(batch[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 30 == 0:
        print(f"step {step}: loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    logits = model(val_data[:, :-1])
    val_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), val_data[:, 1:].reshape(-1)).item()
    # positions from 2 on are predictable from the two tokens before
    pred = logits[:, 1:].argmax(-1)
    acc = (pred == val_data[:, 2:]).float().mean().item()

prompt = val_data[:4, :6]
out = generate(model, prompt, n_tokens_to_gen=8, sample=False)
greedy_hits = 0
for row in out.tolist():
    for t in range(6, len(row)):
        greedy_hits += int(row[t] == TABLE[row[t - 2], row[t - 1]])
sampled = generate(model, prompt, n_tokens_to_gen=8, sample=True)
print(f"generated {tuple(out.shape)} greedy and {tuple(sampled.shape)} sampled; greedy follows the chain "
      f"{greedy_hits} of 32")
print(f"FINAL val_loss={val_loss:.4f} acc={acc:.4f} greedy_follow={greedy_hits / 32:.4f}")
