"""Mamba-2's chunked SSD ("ssd_minimal.py" of state-spaces/mamba), checked and trained on a copy task.

``segsum`` as the reference writes it (the input repeated along a new last axis by
``x[..., None].expand``, ``torch.tril(torch.ones(T, T, dtype=bool), diagonal=-1)`` masks,
``masked_fill(~mask, 0)``, ``torch.cumsum(x, dim=-2)``, ``masked_fill(~mask, -torch.inf)``) and
its unstable form ``x_cumsum[..., :, None] - x_cumsum[..., None, :]`` (must agree),
``ssd_minimal_discrete`` with einops' rearranges written by ``reshape``/``permute``:
``L = torch.exp(segsum(A))``, the four ``torch.einsum`` steps (diagonal blocks
``"bclhn,bcshn,bhcls,bcshp->bclhp"``, intra-chunk states with ``exp(A_cumsum[:, :, :, -1:] -
A_cumsum)``, the inter-chunk recurrence over ``torch.exp(segsum(F.pad(A_cumsum[:, :, :, -1], (1,
0))))``, state-to-output), ``torch.zeros_like(states[:, :1])`` initial states; outputs, final
states and gradients checked against a naive sequential scan, and chunk sizes checked to agree.
Then a tiny Mamba-2-ish LM (``in_proj`` split into ``z, xBC, dt``, a causal depthwise ``Conv1d``,
``F.softplus(dt + dt_bias)``, ``A = -torch.exp(A_log)``, ``D`` skip, gated RMSNorm, weight tying)
trained with AdamW on copying a random token string after a separator.
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def segsum_unstable(x):
    """Naive segment sum calculation."""
    T = x.size(-1)
    x_cumsum = torch.cumsum(x, dim=-1)
    x_segsum = x_cumsum[..., :, None] - x_cumsum[..., None, :]
    mask = torch.tril(torch.ones(T, T, device=x.device, dtype=bool), diagonal=0)
    x_segsum = x_segsum.masked_fill(~mask, -torch.inf)
    return x_segsum


def segsum(x):
    """More stable segment sum calculation."""
    T = x.size(-1)
    x = x[..., None].expand(*x.shape, T)  # repeat(x, "... d -> ... d e", e=T)
    mask = torch.tril(torch.ones(T, T, device=x.device, dtype=bool), diagonal=-1)
    x = x.masked_fill(~mask, 0)
    x_segsum = torch.cumsum(x, dim=-2)
    mask = torch.tril(torch.ones(T, T, device=x.device, dtype=bool), diagonal=0)
    x_segsum = x_segsum.masked_fill(~mask, -torch.inf)
    return x_segsum


def ssd_minimal_discrete(X, A, B, C, block_len, initial_states=None):
    """
    Arguments:
        X: (batch, length, n_heads, d_head)
        A: (batch, length, n_heads)
        B: (batch, length, n_heads, d_state)
        C: (batch, length, n_heads, d_state)
    Return:
        Y: (batch, length, n_heads, d_head)
    """
    assert X.dtype == A.dtype == B.dtype == C.dtype
    assert X.shape[1] % block_len == 0

    # Rearrange into blocks/chunks: "b (c l) ... -> b c l ..."
    b, length = X.shape[:2]
    X, A, B, C = [x.reshape(b, length // block_len, block_len, *x.shape[2:]) for x in (X, A, B, C)]

    A = A.permute(0, 3, 1, 2)  # "b c l h -> b h c l"
    A_cumsum = torch.cumsum(A, dim=-1)

    # 1. Compute the output for each intra-chunk (diagonal blocks)
    L = torch.exp(segsum(A))
    Y_diag = torch.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", C, B, L, X)

    # 2. Compute the state for each intra-chunk
    # (right term of low-rank factorization of off-diagonal blocks; B terms)
    decay_states = torch.exp(A_cumsum[:, :, :, -1:] - A_cumsum)
    states = torch.einsum("bclhn,bhcl,bclhp->bchpn", B, decay_states, X)

    # 3. Compute the inter-chunk SSM recurrence; produces correct SSM states at chunk boundaries
    # (middle term of factorization of off-diag blocks; A terms)
    if initial_states is None:
        initial_states = torch.zeros_like(states[:, :1])
    states = torch.cat([initial_states, states], dim=1)
    decay_chunk = torch.exp(segsum(F.pad(A_cumsum[:, :, :, -1], (1, 0))))
    new_states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final_state = new_states[:, :-1], new_states[:, -1]

    # 4. Compute state -> output conversion per chunk
    # (left term of low-rank factorization of off-diagonal blocks; C terms)
    state_decay_out = torch.exp(A_cumsum)
    Y_off = torch.einsum('bclhn,bchpn,bhcl->bclhp', C, states, state_decay_out)

    # Add output of intra-chunk and inter-chunk terms (diagonal and off-diagonal blocks)
    Y = Y_diag + Y_off
    Y = Y.reshape(b, length, *Y.shape[3:])  # "b c l h p -> b (c l) h p"
    return Y, final_state


def ssd_naive_scan(X, A, B, C):
    """The recurrence the chunked form computes: h_t = exp(A_t) h_{t-1} + x_t B_t^T, y_t = h_t C_t."""
    b, length, h, p = X.shape
    n = B.shape[-1]
    state = X.new_zeros(b, h, p, n)
    ys = []
    for t in range(length):
        state = torch.exp(A[:, t])[..., None, None] * state + torch.einsum("bhp,bhn->bhpn", X[:, t], B[:, t])
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]))
    return torch.stack(ys, dim=1), state


# ---- the reference's own test, at tiny sizes --------------------------------------------------
batch, seqlen, chunk_size, nheads, headdim, dstate = 2, 24, 6, 3, 4, 5
x = torch.randn(batch, seqlen, nheads, headdim, dtype=torch.float64)
dt = F.softplus(torch.randn(batch, seqlen, nheads, dtype=torch.float64) - 1).requires_grad_()
A = (-torch.exp(torch.rand(nheads, dtype=torch.float64))).requires_grad_()
B = torch.randn(batch, seqlen, nheads, dstate, dtype=torch.float64)
C = torch.randn(batch, seqlen, nheads, dstate, dtype=torch.float64)

seg_a = torch.randn(2, 3, 7, dtype=torch.float64)
stable, unstable = segsum(seg_a), segsum_unstable(seg_a)
finite = torch.isfinite(stable)
print(f"segsum forms agree: {torch.equal(finite, torch.isfinite(unstable))}, "
      f"{torch.allclose(stable[finite], unstable[finite])}; -inf above the diagonal: {int((~finite).sum())}")

y_min, final_min = ssd_minimal_discrete(x * dt.unsqueeze(-1), A * dt, B, C, chunk_size)
y_ref, final_ref = ssd_naive_scan(x * dt.unsqueeze(-1), A * dt, B, C)
y_err = (y_min - y_ref).abs().max().item()
state_err = (final_min - final_ref).abs().max().item()
grads_min = torch.autograd.grad(y_min.square().sum(), (dt, A))
grads_ref = torch.autograd.grad(y_ref.square().sum(), (dt, A))
grad_err = max((g1 - g2).abs().max().item() for g1, g2 in zip(grads_min, grads_ref))
y_other, _ = ssd_minimal_discrete(x * dt.unsqueeze(-1), A * dt, B, C, 4)
chunk_err = (y_other - y_min).abs().max().item()
print(f"chunked SSD {tuple(y_min.shape)} vs sequential scan: outputs {y_err < 1e-10}, final states "
      f"{state_err < 1e-10}, gradients {grad_err < 1e-9}; chunk 4 vs 6 {chunk_err < 1e-10}")

# continuing from a final state equals running the whole sequence
half = seqlen // 2
Xd, Ad = (x * dt.unsqueeze(-1)).detach(), (A * dt).detach()
y_first, state_first = ssd_minimal_discrete(Xd[:, :half], Ad[:, :half], B[:, :half], C[:, :half], chunk_size)
y_second, _ = ssd_minimal_discrete(Xd[:, half:], Ad[:, half:], B[:, half:], C[:, half:], chunk_size,
                                   initial_states=state_first.unsqueeze(1))
resume_err = (torch.cat([y_first, y_second], dim=1) - y_min.detach()).abs().max().item()
print(f"resuming from the final state matches: {resume_err < 1e-10}")


# ---- a tiny Mamba-2-ish language model ---------------------------------------------------------
class RMSNormGated(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x, z):
        x = x * F.silu(z)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Mamba2Block(nn.Module):
    def __init__(self, d_model, d_state=8, d_conv=4, expand=2, headdim=8, chunk_size=4):
        super().__init__()
        self.d_inner = expand * d_model
        self.nheads = self.d_inner // headdim
        self.headdim, self.d_state, self.chunk_size = headdim, d_state, chunk_size
        conv_dim = self.d_inner + 2 * d_state
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * d_state + self.nheads, bias=False)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, kernel_size=d_conv, groups=conv_dim, padding=d_conv - 1)
        dt = torch.exp(torch.rand(self.nheads) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = RMSNormGated(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, u):
        batch, seqlen, _ = u.shape
        zxbcdt = self.in_proj(u)
        z, xBC, dt = torch.split(zxbcdt, [self.d_inner, self.d_inner + 2 * self.d_state, self.nheads], dim=-1)
        dt = F.softplus(dt + self.dt_bias)
        xBC = F.silu(self.conv1d(xBC.transpose(1, 2))[..., :seqlen].transpose(1, 2))
        x, B, C = torch.split(xBC, [self.d_inner, self.d_state, self.d_state], dim=-1)
        A = -torch.exp(self.A_log.float())
        x = x.reshape(batch, seqlen, self.nheads, self.headdim)
        # one group of B and C shared by every head
        B = B.unsqueeze(2).expand(batch, seqlen, self.nheads, self.d_state)
        C = C.unsqueeze(2).expand(batch, seqlen, self.nheads, self.d_state)
        y, _ = ssd_minimal_discrete(x * dt.unsqueeze(-1), A * dt, B, C, self.chunk_size)
        y = y + x * self.D[:, None]
        y = y.reshape(batch, seqlen, self.d_inner)
        return self.out_proj(self.norm(y, z))


class Mamba2LM(nn.Module):
    def __init__(self, vocab, d_model=32, n_layer=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        self.layers = nn.ModuleList([Mamba2Block(d_model) for _ in range(n_layer)])
        self.norms = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(n_layer)])
        self.norm_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)
        self.lm_head.weight = self.embedding.weight

    def forward(self, ids):
        h = self.embedding(ids)
        for norm, layer in zip(self.norms, self.layers):
            h = h + layer(norm(h))
        return self.lm_head(self.norm_f(h))


VOCAB, SEP, COPY_LEN = 8, 8, 5
# [a b c d e SEP a b c d e ...]: the model sees 12 tokens (3 chunks of 4) and must copy after SEP


def copy_batch(n):
    tokens = torch.randint(0, VOCAB, (n, COPY_LEN))
    seq = torch.cat([tokens, torch.full((n, 1), SEP), tokens, torch.randint(0, VOCAB, (n, 2))], dim=1)
    inputs, targets = seq[:, :-1], seq[:, 1:].clone()
    targets[:, :COPY_LEN] = -100
    targets[:, 2 * COPY_LEN:] = -100
    return inputs, targets


model = Mamba2LM(VOCAB + 1)
optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.01)
print(f"Mamba-2 LM: {sum(p.numel() for p in model.parameters())} parameters, "
      f"{model.layers[0].nheads} heads of {model.layers[0].headdim}")
STEPS = 150
for step in range(1, STEPS + 1):
    inputs, targets = copy_batch(32)
    logits = model(inputs)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step}: loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    inputs, targets = copy_batch(256)
    logits = model(inputs)
    val_loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1)).item()
    keep = targets != -100
    acc = (logits.argmax(-1)[keep] == targets[keep]).float().mean().item()
print(f"FINAL val_loss={val_loss:.4f} copy_acc={acc:.4f}")
