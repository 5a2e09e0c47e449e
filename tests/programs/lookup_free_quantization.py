"""Lookup-free quantization (MAGVIT-v2, Yu et al. 2023) in a 1-d autoencoder of synthetic signals.

In the style of lucidrains/vector-quantize-pytorch (`lookup_free_quantization.py`): the `LFQ` module
with `codebook_dim = int(log2(codebook_size))`, `project_in`/`project_out` Linears (`nn.Identity()`
when the widths match), `self.register_buffer('mask', 2 ** torch.arange(codebook_dim - 1, -1, -1),
persistent=False)`, the implicit codebook `((all_codes[..., None].int() & self.mask) != 0).float()`
mapped to +-`codebook_scale` by `bits_to_codes`, sign quantisation
`torch.where(x > 0, codebook_value, -codebook_value)` with `codebook_value = torch.ones_like(x) *
self.codebook_scale`, the straight-through `x + (quantized - x).detach()` in training, indices by
`((x > 0).int() * self.mask.int()).sum(dim=-1)`, `indices_to_codes` for decoding; the entropy
auxiliary loss (`distance = -2 * einsum('... i d, j d -> ... i j', original_input, self.codebook)`,
`prob = (-distance * inv_temperature).softmax(dim=-1)`, per-sample entropy minus `diversity_gamma`
times the batch codebook entropy, `log(t) = t.clamp(min=eps).log()`), the commitment
`F.mse_loss(original_input, quantized.detach(), reduction='none')`, a Conv1d/ConvTranspose1d
autoencoder trained by Adam, `state_dict()` without the non-persistent buffers.
Reports reconstruction error, codebook usage and perplexity of the codes.
Checks: the einsum distances equal `torch.cdist(...) ** 2` less the constant norms, indices -> codes ->
indices round-trips exactly over the whole codebook, and decoding the indices equals the quantized forward.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import einsum

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

signal_len = 64
n_train, n_test = 384, 96
batch_size = 32
steps = 240
codebook_size = 2 ** 6
latent_dim = 12


def log(t, eps=1e-5):
    return t.clamp(min=eps).log()


def entropy(prob):
    return (-prob * log(prob)).sum(dim=-1)


# --- data: two sinusoids with integer frequencies, random amplitudes and phases, and a small step
def make_signals(n):
    t = np.arange(signal_len) / signal_len
    x = np.zeros((n, 1, signal_len), np.float32)
    for i in range(n):
        f1, f2 = rng.randint(1, 4), rng.randint(4, 8)
        a1, a2 = rng.uniform(0.5, 1.0), rng.uniform(0.1, 0.4)
        x[i, 0] = a1 * np.sin(2 * np.pi * f1 * t + rng.uniform(0, 2 * np.pi)) \
            + a2 * np.sin(2 * np.pi * f2 * t + rng.uniform(0, 2 * np.pi)) \
            + 0.02 * rng.randn(signal_len)
    return torch.from_numpy(x)


class LFQ(nn.Module):
    def __init__(self, *, dim=None, codebook_size=None, entropy_loss_weight=0.1, commitment_loss_weight=0.25,
                 diversity_gamma=1.0, straight_through_activation=nn.Identity(), codebook_scale=1.0):
        super().__init__()
        codebook_dim = int(math.log2(codebook_size))
        dim = dim if dim is not None else codebook_dim
        has_projections = dim != codebook_dim
        self.project_in = nn.Linear(dim, codebook_dim) if has_projections else nn.Identity()
        self.project_out = nn.Linear(codebook_dim, dim) if has_projections else nn.Identity()
        self.has_projections = has_projections
        self.dim = dim
        self.codebook_dim = codebook_dim
        self.codebook_size = codebook_size
        self.activation = straight_through_activation
        self.diversity_gamma = diversity_gamma
        self.entropy_loss_weight = entropy_loss_weight
        self.commitment_loss_weight = commitment_loss_weight
        self.codebook_scale = codebook_scale
        self.register_buffer("mask", 2 ** torch.arange(codebook_dim - 1, -1, -1), persistent=False)
        self.register_buffer("zero", torch.tensor(0.0), persistent=False)
        all_codes = torch.arange(codebook_size)
        bits = ((all_codes[..., None].int() & self.mask) != 0).float()
        codebook = self.bits_to_codes(bits)
        self.register_buffer("codebook", codebook, persistent=False)

    def bits_to_codes(self, bits):
        return bits * self.codebook_scale * 2 - self.codebook_scale

    @property
    def dtype(self):
        return self.codebook.dtype

    def indices_to_codes(self, indices, project_out=True):
        bits = ((indices[..., None].int() & self.mask) != 0).to(self.dtype)
        codes = self.bits_to_codes(bits)
        if project_out:
            codes = self.project_out(codes)
        return codes

    def forward(self, x, inv_temperature=100.0):
        """x: (b, d, n) -> quantized (b, d, n), indices (b, n), aux loss."""
        x = x.permute(0, 2, 1)
        x = self.project_in(x)
        original_input = x
        codebook_value = torch.ones_like(x) * self.codebook_scale
        quantized = torch.where(x > 0, codebook_value, -codebook_value)
        if self.training:
            x = self.activation(x)
            x = x + (quantized - x).detach()
        else:
            x = quantized
        indices = ((x > 0).int() * self.mask.int()).sum(dim=-1)
        if self.training:
            distance = -2 * einsum("... i d, j d -> ... i j", original_input, self.codebook)
            prob = (-distance * inv_temperature).softmax(dim=-1)
            per_sample_entropy = entropy(prob).mean()
            avg_prob = prob.reshape(-1, self.codebook_size).mean(dim=0)
            codebook_entropy = entropy(avg_prob).mean()
            entropy_aux_loss = per_sample_entropy - self.diversity_gamma * codebook_entropy
            commit_loss = F.mse_loss(original_input, quantized.detach(), reduction="none").mean()
        else:
            entropy_aux_loss = commit_loss = self.zero
        x = self.project_out(x)
        x = x.permute(0, 2, 1)
        aux_loss = entropy_aux_loss * self.entropy_loss_weight + commit_loss * self.commitment_loss_weight
        return x, indices, aux_loss


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv1d(1, 32, 4, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv1d(32, 32, 4, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv1d(32, latent_dim, 3, padding=1))
        self.quantizer = LFQ(dim=latent_dim, codebook_size=codebook_size)
        self.decoder = nn.Sequential(nn.Conv1d(latent_dim, 32, 3, padding=1), nn.ReLU(),
                                     nn.ConvTranspose1d(32, 32, 4, stride=2, padding=1), nn.ReLU(),
                                     nn.ConvTranspose1d(32, 1, 4, stride=2, padding=1))

    def forward(self, x):
        z = self.encoder(x)
        q, indices, aux = self.quantizer(z)
        return self.decoder(q), indices, aux

    def decode_indices(self, indices):
        codes = self.quantizer.indices_to_codes(indices)
        return self.decoder(codes.permute(0, 2, 1))


train_x, test_x = make_signals(n_train), make_signals(n_test)
model = Autoencoder()
lfq = model.quantizer
print(f"codebook {tuple(lfq.codebook.shape)} mask {lfq.mask.tolist()} dtype {lfq.mask.dtype}")
print(f"state_dict has mask {'quantizer.mask' in model.state_dict()} codebook {'quantizer.codebook' in model.state_dict()}; buffers {len(list(model.buffers()))}")

# --- check 1: the einsum distances equal cdist ** 2 less |x|^2 and |c|^2 (= codebook_dim)
with torch.no_grad():
    z = lfq.project_in(model.encoder(train_x[:8]).permute(0, 2, 1))
    distance = -2 * einsum("... i d, j d -> ... i j", z, lfq.codebook)
    cd = torch.cdist(z, lfq.codebook.expand(z.shape[0], -1, -1)) ** 2
    rescaled = cd - z.pow(2).sum(-1, keepdim=True) - lfq.codebook_dim
    dist_err = ((distance - rescaled).abs().max() / distance.abs().max()).item()
    nearest_agree = (distance.argmin(-1) == torch.cdist(z, lfq.codebook[None]).argmin(-1)).float().mean().item()
print(f"einsum distance vs cdist^2 rel err {dist_err:.2e}, nearest codes agree {nearest_agree:.3f}")

# --- check 2: indices -> codes -> indices round-trips over the whole codebook
all_idx = torch.arange(codebook_size)
codes = lfq.indices_to_codes(all_idx, project_out=False)
back = ((codes > 0).int() * lfq.mask.int()).sum(dim=-1)
roundtrip_err = (back != all_idx).sum().item() + (codes - lfq.codebook).abs().max().item()
print(f"round trip mismatches {roundtrip_err} codes {tuple(codes.shape)} {codes.dtype} index dtype {back.dtype}")

optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)


@torch.no_grad()
def evaluate():
    model.eval()
    recon, indices, _ = model(test_x)
    model.train()
    mse = F.mse_loss(recon, test_x).item()
    counts = torch.bincount(indices.flatten(), minlength=codebook_size).float()
    p = counts / counts.sum()
    perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum()).item()
    usage = (counts > 0).float().mean().item()
    return mse, usage, perplexity


mse_before, usage_before, ppl_before = evaluate()
print(f"before: mse {mse_before:.4f} usage {usage_before:.3f} perplexity {ppl_before:.2f}")
for step in range(steps):
    idx = torch.randint(0, n_train, (batch_size,))
    x = train_x[idx]
    recon, indices, aux_loss = model(x)
    rec_loss = F.mse_loss(recon, x)
    loss = rec_loss + aux_loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if (step + 1) % 80 == 0:
        mse, usage, ppl = evaluate()
        print(f"step {step + 1} train rec {rec_loss.item():.4f} aux {aux_loss.item():.4f} "
              f"test mse {mse:.4f} usage {usage:.3f} perplexity {ppl:.2f}")

mse_after, usage_after, ppl_after = evaluate()
# --- check 3: decoding the indices equals the eval-mode forward; the straight-through gradient is the identity
with torch.no_grad():
    model.eval()
    recon, indices, _ = model(test_x)
    decode_err = (model.decode_indices(indices) - recon).abs().max().item()
    model.train()
plain_lfq = LFQ(codebook_size=codebook_size)
probe = torch.randn(2, plain_lfq.codebook_dim, 5, requires_grad=True)
out, _, _ = plain_lfq(probe)
weights = torch.randn_like(out)
(out * weights).sum().backward()
ste_err = (probe.grad - weights).abs().max().item() + (out - torch.sign(probe)).abs().max().item()
print(f"decode(indices) vs forward err {decode_err:.2e}, straight-through err {ste_err:.2e} "
      f"projections {type(plain_lfq.project_in).__name__}")
print(f"FINAL mse_before={mse_before:.4f} mse_after={mse_after:.4f} mse_ratio={mse_after / mse_before:.4f} "
      f"usage={usage_after:.4f} perplexity={ppl_after:.3f} dist_err={dist_err:.2e} "
      f"roundtrip_err={roundtrip_err:.1e} decode_err={decode_err:.2e} ste_err={ste_err:.2e}")
