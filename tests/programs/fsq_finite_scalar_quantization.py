"""Finite Scalar Quantization (Mentzer et al. 2023) against an EMA VQ-VAE codebook of the same size.

``FSQ`` as lucidrains' vector-quantize-pytorch writes it: ``_levels``/``_basis`` non-persistent
buffers (``torch.cumprod(torch.tensor([1] + levels[:-1]), dim=0, dtype=torch.int32)``), ``bound`` by
``half_l = (levels - 1) * (1 + eps) / 2``, ``offset = torch.where(levels % 2 == 0, 0.5, 0.0)``,
``shift = (offset / half_l).atanh()`` and ``(z + shift).tanh() * half_l - offset``, ``round_ste`` as
``z + (z.round() - z).detach()``, ``quantized / half_width`` with ``half_width = levels // 2``,
``codes_to_indices`` by ``(zhat * basis).sum(dim=-1).to(torch.int32)`` and back by
``(indices // basis) % levels``, the ``implicit_codebook`` buffer, ``project_in``/``project_out``
linears. The VQ side: a codebook of the same size with EMA updates as rosinality's ``Quantize``
(``embed``/``cluster_size``/``embed_avg`` buffers, nearest code by ``torch.cdist`` + ``argmin``
checked against the expanded ``x^2 - 2 x e + e^2`` distances, counts and sums by ``index_add_``,
Laplace smoothing of the cluster sizes), ``F.mse_loss(quantize.detach(), input)`` commitment, the
straight-through ``input + (quantize - input).detach()``, and lucidrains-style dead-code restarts from
the batch where the EMA cluster size falls under a threshold. Both autoencoders (strided ``Conv2d``
down, ``ConvTranspose2d`` up) train with Adam on 12x12 images of discs, squares and bars.
Checks: the index round trip is exact for the implicit codebook and for encoded latents, the STE
passes gradients through unchanged, codebook usage by ``torch.unique`` (and the perplexity), and
reconstruction losses falling for both.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

SIZE = 12


def make_images(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    imgs = np.zeros((n, 1, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        kind = rng.randint(3)
        cy, cx = rng.uniform(3, SIZE - 3, size=2)
        r = rng.uniform(1.5, 3.0)
        if kind == 0:
            m = (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
        elif kind == 1:
            m = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
        else:
            m = np.abs(yy - cy) <= 0.8 if rng.rand() < 0.5 else np.abs(xx - cx) <= 0.8
        imgs[i, 0] = m * rng.uniform(0.6, 1.0)
    imgs += 0.05 * rng.randn(*imgs.shape).astype(np.float32)
    return torch.from_numpy(imgs)


# ---------------------------------------------------------------- FSQ

def round_ste(z):
    """Round with straight through gradients."""
    zhat = z.round()
    return z + (zhat - z).detach()


class FSQ(nn.Module):
    def __init__(self, levels, dim=None):
        super().__init__()
        _levels = torch.tensor(levels, dtype=torch.int32)
        self.register_buffer("_levels", _levels, persistent=False)

        _basis = torch.cumprod(torch.tensor([1] + levels[:-1]), dim=0, dtype=torch.int32)
        self.register_buffer("_basis", _basis, persistent=False)

        codebook_dim = len(levels)
        self.codebook_dim = codebook_dim
        dim = dim if dim is not None else codebook_dim
        has_projections = dim != codebook_dim
        self.project_in = nn.Linear(dim, codebook_dim) if has_projections else nn.Identity()
        self.project_out = nn.Linear(codebook_dim, dim) if has_projections else nn.Identity()

        self.codebook_size = self._levels.prod().item()
        implicit_codebook = self._indices_to_codes(torch.arange(self.codebook_size))
        self.register_buffer("implicit_codebook", implicit_codebook, persistent=False)

    def bound(self, z, eps=1e-3):
        """Bound `z`, an array of shape (..., d)."""
        half_l = (self._levels - 1) * (1 + eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_l).atanh()
        return (z + shift).tanh() * half_l - offset

    def quantize(self, z):
        """Quantizes z, returns quantized zhat, same shape as z."""
        quantized = round_ste(self.bound(z))
        half_width = self._levels // 2  # Renormalize to [-1, 1].
        return quantized / half_width

    def _scale_and_shift(self, zhat_normalized):
        half_width = self._levels // 2
        return (zhat_normalized * half_width) + half_width

    def _scale_and_shift_inverse(self, zhat):
        half_width = self._levels // 2
        return (zhat - half_width) / half_width

    def _indices_to_codes(self, indices):
        level_indices = self.indices_to_level_indices(indices)
        codes = self._scale_and_shift_inverse(level_indices)
        return codes

    def codes_to_indices(self, zhat):
        """Converts a `code` to an index in the codebook."""
        assert zhat.shape[-1] == self.codebook_dim
        zhat = self._scale_and_shift(zhat)
        return (zhat * self._basis).sum(dim=-1).to(torch.int32)

    def indices_to_level_indices(self, indices):
        indices = indices.unsqueeze(-1)
        codes_non_centered = (indices // self._basis) % self._levels
        return codes_non_centered

    def indices_to_codes(self, indices):
        codes = self._indices_to_codes(indices)
        return self.project_out(codes)

    def forward(self, z):
        # z: (b, d, h, w) -> (b, h, w, d)
        z = z.permute(0, 2, 3, 1)
        z = self.project_in(z)
        codes = self.quantize(z)
        indices = self.codes_to_indices(codes)
        out = self.project_out(codes)
        return out.permute(0, 3, 1, 2), indices, codes


# ---------------------------------------------------------------- EMA VQ

class Quantize(nn.Module):
    def __init__(self, dim, n_embed, decay=0.9, eps=1e-5, threshold_ema_dead_code=0.05):
        super().__init__()
        self.dim = dim
        self.n_embed = n_embed
        self.decay = decay
        self.eps = eps
        self.threshold_ema_dead_code = threshold_ema_dead_code

        embed = torch.randn(n_embed, dim)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.ones(n_embed))
        self.register_buffer("embed_avg", embed.clone())
        self.restarts = 0

    def forward(self, input):
        input = input.permute(0, 2, 3, 1)
        flatten = input.reshape(-1, self.dim)
        dist = torch.cdist(flatten, self.embed)
        embed_ind = dist.argmin(1)
        dist2 = flatten.pow(2).sum(1, keepdim=True) - 2 * flatten @ self.embed.t() + self.embed.pow(2).sum(1)[None]
        self.last_agreement = (dist2.argmin(1) == embed_ind).float().mean().item()
        embed_ind = embed_ind.view(*input.shape[:-1])
        quantize = F.embedding(embed_ind, self.embed)

        if self.training:
            with torch.no_grad():
                flat_ind = embed_ind.reshape(-1)
                counts = torch.zeros(self.n_embed).index_add_(0, flat_ind, torch.ones(flat_ind.shape[0]))
                embed_sum = torch.zeros(self.n_embed, self.dim).index_add_(0, flat_ind, flatten)
                self.cluster_size.data.mul_(self.decay).add_(counts, alpha=1 - self.decay)
                self.embed_avg.data.mul_(self.decay).add_(embed_sum, alpha=1 - self.decay)
                n = self.cluster_size.sum()
                cluster_size = (self.cluster_size + self.eps) / (n + self.n_embed * self.eps) * n
                embed_normalized = self.embed_avg / cluster_size.unsqueeze(1)
                self.embed.data.copy_(embed_normalized)
                self.expire_codes_(flatten)

        diff = F.mse_loss(quantize.detach(), input)
        quantize = input + (quantize - input).detach()
        return quantize.permute(0, 3, 1, 2), diff, embed_ind

    def expire_codes_(self, batch_samples):
        expired_codes = self.cluster_size < self.threshold_ema_dead_code
        if not torch.any(expired_codes):
            return
        n = int(expired_codes.sum().item())
        rand = torch.randint(0, batch_samples.shape[0], (n,))
        sampled = batch_samples[rand].detach()
        self.embed.data[expired_codes] = sampled
        self.embed_avg.data[expired_codes] = sampled
        self.cluster_size.data[expired_codes] = 1.0
        self.restarts += n


class Encoder(nn.Module):
    def __init__(self, channel=16, dim=8):
        super().__init__()
        self.blocks = nn.Sequential(
            nn.Conv2d(1, channel, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channel, channel, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channel, dim, 1),
        )

    def forward(self, x):
        return self.blocks(x)


class Decoder(nn.Module):
    def __init__(self, channel=16, dim=8):
        super().__init__()
        self.blocks = nn.Sequential(
            nn.Conv2d(dim, channel, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(channel, channel, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(channel, 1, 4, stride=2, padding=1),
        )

    def forward(self, x):
        return self.blocks(x)


class AutoEncoder(nn.Module):
    def __init__(self, quantizer, dim=8):
        super().__init__()
        self.enc = Encoder(dim=dim)
        self.quantizer = quantizer
        self.dec = Decoder(dim=dim)

    def forward(self, x):
        z = self.enc(x)
        if isinstance(self.quantizer, FSQ):
            q, indices, _ = self.quantizer(z)
            commit = torch.zeros(())
        else:
            q, commit, indices = self.quantizer(z)
        return self.dec(q), commit, indices


levels = [5, 4, 3]
fsq = FSQ(levels, dim=8)
print(f"FSQ levels {levels}: codebook size {fsq.codebook_size}, basis {fsq._basis.tolist()}, "
      f"implicit codebook {tuple(fsq.implicit_codebook.shape)}")
print(f"state_dict keys: {sorted(fsq.state_dict().keys())}")
all_indices = torch.arange(fsq.codebook_size)
roundtrip_codebook = torch.equal(fsq.codes_to_indices(fsq.implicit_codebook), all_indices.to(torch.int32))
bounded = fsq.quantize(torch.linspace(-6, 6, 101)[:, None].expand(-1, 3).contiguous())
grid_values = [torch.unique(bounded[:, i]).numel() for i in range(3)]
print(f"codebook round trip exact: {roundtrip_codebook}; values per axis over a wide range: {grid_values}")

z = torch.randn(4, 3, requires_grad=True)
round_ste(z).sum().backward()
ste_ok = torch.equal(z.grad, torch.ones_like(z))
print(f"round_ste gradient is the identity: {ste_ok}")

train_x = make_images(512)
test_x = make_images(128)

results = {}
usage = {}
for name in ("fsq", "vq"):
    torch.manual_seed(seed + 1)
    quantizer = FSQ(levels, dim=8) if name == "fsq" else Quantize(8, fsq.codebook_size)
    model = AutoEncoder(quantizer)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.no_grad():
        model.eval()
        rec0 = F.mse_loss(model(test_x)[0], test_x).item()
        model.train()
    for step in range(150):
        idx = torch.randint(0, train_x.shape[0], (64,))
        x = train_x[idx]
        out, commit, indices = model(x)
        recon_loss = F.mse_loss(out, x)
        loss = recon_loss + 0.25 * commit
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"{name} step {step:3d} recon {recon_loss.item():.5f}")
    model.eval()
    with torch.no_grad():
        out, _, indices = model(test_x)
        rec1 = F.mse_loss(out, test_x).item()
        used = torch.unique(indices)
        counts = torch.bincount(indices.flatten().long(), minlength=fsq.codebook_size).float()
        p = counts / counts.sum()
        perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum()).item()
    results[name] = (rec0, rec1)
    usage[name] = (used.numel(), perplexity)
    print(f"{name}: test recon {rec0:.5f} -> {rec1:.5f}, codes used {used.numel()}/{fsq.codebook_size}, "
          f"perplexity {perplexity:.2f}")
    if name == "fsq":
        with torch.no_grad():
            z = model.quantizer.project_in(model.enc(test_x).permute(0, 2, 3, 1))
            codes = model.quantizer.quantize(z)
            idx = model.quantizer.codes_to_indices(codes)
            back = model.quantizer._indices_to_codes(idx)
        roundtrip_latents = torch.equal(back, codes) and torch.equal(idx, indices)
        print(f"fsq latents: indices -> codes -> indices exact: {roundtrip_latents}")
    else:
        agreement = model.quantizer.last_agreement
        print(f"vq: cdist argmin agrees with expanded distances on {agreement:.3f} of vectors, "
              f"dead codes restarted {model.quantizer.restarts}")

ok = (roundtrip_codebook and roundtrip_latents and ste_ok and grid_values == levels
      and results["fsq"][1] < 0.5 * results["fsq"][0] and results["vq"][1] < 0.5 * results["vq"][0]
      and agreement > 0.95)
print(f"FINAL fsq_rec={results['fsq'][1]:.5f} vq_rec={results['vq'][1]:.5f} fsq_used={usage['fsq'][0]} "
      f"vq_used={usage['vq'][0]} fsq_perplexity={usage['fsq'][1]:.3f} vq_perplexity={usage['vq'][1]:.3f} ok={int(ok)}")
