"""Residual vector quantization as in facebookresearch/encodec (quantization/core_vq.py) and
lucidrains' vector-quantize-pytorch, on clustered latents and a tiny Conv1d codec.

``EuclideanCodebook`` with ``kmeans`` init (``torch.randperm``/``torch.randint`` in ``sample_vectors``,
``torch.bincount(buckets, minlength=...)``, ``new_zeros(...).scatter_add_(0, buckets[:, None].expand(-1, d),
samples)``, ``torch.where(zero_mask[..., None], means, new_means)``), the ``inited`` buffer made by
``torch.Tensor([not kmeans_init])`` and tested by ``if self.inited``, the distance ``-(x.pow(2).sum(1,
keepdim=True) - 2 * x @ embed + embed.pow(2).sum(0, keepdim=True))`` with ``.max(dim=-1).indices`` (against
``torch.cdist(...).argmin``), ``F.one_hot(...).type(dtype)``, ``F.embedding`` dequantisation, EMA updates by
``ema_inplace`` (``moving_avg.data.mul_(decay).add_(new, alpha=(1 - decay))``) and ``laplace_smoothing``,
dead-code expiry ``expire_codes_`` (``torch.where(mask[..., None], sample_vectors(...), self.embed)``), the
straight-through ``x + (quantize - x).detach()`` (its gradient is the identity), the commitment loss
``F.mse_loss(quantize.detach(), x)`` in a ``torch.tensor([0.0], requires_grad=self.training)`` accumulator,
``ResidualVectorQuantization`` over ``n_q`` codebooks with ``map(torch.stack, ...)``; the quantisation
error falls as quantizers are added, ``decode(encode(x))`` equals the forward's output, and a Conv1d
encoder/decoder trained by Adam around the RVQ reconstructs better than with one quantizer.
"""

import os
import typing as tp

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def default(val: tp.Any, d: tp.Any) -> tp.Any:
    return val if val is not None else d


def ema_inplace(moving_avg, new, decay: float):
    moving_avg.data.mul_(decay).add_(new, alpha=(1 - decay))


def laplace_smoothing(x, n_categories: int, epsilon: float = 1e-5):
    return (x + epsilon) / (x.sum() + n_categories * epsilon)


def uniform_init(*shape: int):
    t = torch.empty(shape)
    nn.init.kaiming_uniform_(t)
    return t


def sample_vectors(samples, num: int):
    num_samples, device = samples.shape[0], samples.device

    if num_samples >= num:
        indices = torch.randperm(num_samples, device=device)[:num]
    else:
        indices = torch.randint(0, num_samples, (num,), device=device)

    return samples[indices]


def kmeans(samples, num_clusters: int, num_iters: int = 10):
    dim, dtype = samples.shape[-1], samples.dtype

    means = sample_vectors(samples, num_clusters)

    for _ in range(num_iters):
        diffs = samples[:, None, :] - means[None, :, :]
        dists = -(diffs ** 2).sum(dim=-1)

        buckets = dists.max(dim=-1).indices
        bins = torch.bincount(buckets, minlength=num_clusters)
        zero_mask = bins == 0
        bins_min_clamped = bins.masked_fill(zero_mask, 1)

        new_means = buckets.new_zeros(num_clusters, dim, dtype=dtype)
        new_means.scatter_add_(0, buckets[:, None].expand(-1, dim), samples)
        new_means = new_means / bins_min_clamped[..., None]

        means = torch.where(zero_mask[..., None], means, new_means)

    return means, bins


class EuclideanCodebook(nn.Module):
    """Codebook with Euclidean distance."""

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        kmeans_init: int = False,
        kmeans_iters: int = 10,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        threshold_ema_dead_code: int = 2,
    ):
        super().__init__()
        self.decay = decay
        init_fn: tp.Callable[..., torch.Tensor] | tp.Any = uniform_init if not kmeans_init else torch.zeros
        embed = init_fn(codebook_size, dim)

        self.codebook_size = codebook_size

        self.kmeans_iters = kmeans_iters
        self.epsilon = epsilon
        self.threshold_ema_dead_code = threshold_ema_dead_code
        self.expired = 0

        self.register_buffer("inited", torch.Tensor([not kmeans_init]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def init_embed_(self, data):
        if self.inited:
            return

        embed, cluster_size = kmeans(data, self.codebook_size, self.kmeans_iters)
        self.embed.data.copy_(embed)
        self.embed_avg.data.copy_(embed.clone())
        self.cluster_size.data.copy_(cluster_size)
        self.inited.data.copy_(torch.Tensor([True]))

    def replace_(self, samples, mask):
        modified_codebook = torch.where(
            mask[..., None], sample_vectors(samples, self.codebook_size), self.embed
        )
        self.embed.data.copy_(modified_codebook)

    def expire_codes_(self, batch_samples):
        if self.threshold_ema_dead_code == 0:
            return

        expired_codes = self.cluster_size < self.threshold_ema_dead_code
        if not torch.any(expired_codes):
            return

        self.expired += int(expired_codes.sum())
        batch_samples = batch_samples.reshape(-1, batch_samples.shape[-1])
        self.replace_(batch_samples, mask=expired_codes)

    def preprocess(self, x):
        x = x.reshape(-1, x.shape[-1])
        return x

    def quantize(self, x):
        embed = self.embed.t()
        dist = -(
            x.pow(2).sum(1, keepdim=True)
            - 2 * x @ embed
            + embed.pow(2).sum(0, keepdim=True)
        )
        embed_ind = dist.max(dim=-1).indices
        return embed_ind

    def postprocess_emb(self, embed_ind, shape):
        return embed_ind.view(*shape[:-1])

    def dequantize(self, embed_ind):
        quantize = F.embedding(embed_ind, self.embed)
        return quantize

    def encode(self, x):
        shape = x.shape
        # pre-process
        x = self.preprocess(x)
        # quantize
        embed_ind = self.quantize(x)
        # post-process
        embed_ind = self.postprocess_emb(embed_ind, shape)
        return embed_ind

    def decode(self, embed_ind):
        quantize = self.dequantize(embed_ind)
        return quantize

    def forward(self, x):
        shape, dtype = x.shape, x.dtype
        x = self.preprocess(x)

        self.init_embed_(x)

        embed_ind = self.quantize(x)
        embed_onehot = F.one_hot(embed_ind, self.codebook_size).type(dtype)
        embed_ind = self.postprocess_emb(embed_ind, shape)
        quantize = self.dequantize(embed_ind)

        if self.training:
            # We do the expiry of code at that point as buffers are in sync
            # and all the workers will take the same decision.
            self.expire_codes_(x)
            ema_inplace(self.cluster_size, embed_onehot.sum(0), self.decay)
            embed_sum = x.t() @ embed_onehot
            ema_inplace(self.embed_avg, embed_sum.t(), self.decay)
            cluster_size = (
                laplace_smoothing(self.cluster_size, self.codebook_size, self.epsilon)
                * self.cluster_size.sum()
            )
            embed_normalized = self.embed_avg / cluster_size.unsqueeze(1)
            self.embed.data.copy_(embed_normalized)

        return quantize, embed_ind


class VectorQuantization(nn.Module):
    """Vector quantization implementation.
    Currently supports only euclidean distance.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        codebook_dim: int | None = None,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 50,
        threshold_ema_dead_code: int = 2,
        commitment_weight: float = 1.,
    ):
        super().__init__()
        _codebook_dim: int = default(codebook_dim, dim)

        requires_projection = _codebook_dim != dim
        self.project_in = (nn.Linear(dim, _codebook_dim) if requires_projection else nn.Identity())
        self.project_out = (nn.Linear(_codebook_dim, dim) if requires_projection else nn.Identity())

        self.epsilon = epsilon
        self.commitment_weight = commitment_weight

        self._codebook = EuclideanCodebook(dim=_codebook_dim, codebook_size=codebook_size,
                                           kmeans_init=kmeans_init, kmeans_iters=kmeans_iters,
                                           decay=decay, epsilon=epsilon,
                                           threshold_ema_dead_code=threshold_ema_dead_code)
        self.codebook_size = codebook_size

    @property
    def codebook(self):
        return self._codebook.embed

    def encode(self, x):
        x = x.permute(0, 2, 1)  # b d n -> b n d
        x = self.project_in(x)
        embed_in = self._codebook.encode(x)
        return embed_in

    def decode(self, embed_ind):
        quantize = self._codebook.decode(embed_ind)
        quantize = self.project_out(quantize)
        quantize = quantize.permute(0, 2, 1)  # b n d -> b d n
        return quantize

    def forward(self, x):
        device = x.device
        x = x.permute(0, 2, 1)
        x = self.project_in(x)

        quantize, embed_ind = self._codebook(x)

        if self.training:
            quantize = x + (quantize - x).detach()

        loss = torch.tensor([0.0], device=device, requires_grad=self.training)

        if self.training:
            if self.commitment_weight > 0:
                commit_loss = F.mse_loss(quantize.detach(), x)
                loss = loss + commit_loss * self.commitment_weight

        quantize = self.project_out(quantize)
        quantize = quantize.permute(0, 2, 1)
        return quantize, embed_ind, loss


class ResidualVectorQuantization(nn.Module):
    """Residual vector quantization implementation.
    Follows Algorithm 1. in https://arxiv.org/pdf/2107.03312.pdf
    """

    def __init__(self, *, num_quantizers, **kwargs):
        super().__init__()
        self.layers = nn.ModuleList(
            [VectorQuantization(**kwargs) for _ in range(num_quantizers)]
        )

    def forward(self, x, n_q: int | None = None):
        quantized_out = 0.0
        residual = x

        all_losses = []
        all_indices = []

        n_q = n_q or len(self.layers)

        for layer in self.layers[:n_q]:
            quantized, indices, loss = layer(residual)
            residual = residual - quantized
            quantized_out = quantized_out + quantized

            all_indices.append(indices)
            all_losses.append(loss)

        out_losses, out_indices = map(torch.stack, (all_losses, all_indices))
        return quantized_out, out_indices, out_losses

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        residual = x
        all_indices = []
        n_q = n_q or len(self.layers)
        for layer in self.layers[:n_q]:
            indices = layer.encode(residual)
            quantized = layer.decode(indices)
            residual = residual - quantized
            all_indices.append(indices)
        out_indices = torch.stack(all_indices)
        return out_indices

    def decode(self, q_indices: torch.Tensor) -> torch.Tensor:
        quantized_out = torch.tensor(0.0, device=q_indices.device)
        for i, indices in enumerate(q_indices):
            layer = self.layers[i]
            quantized = layer.decode(indices)
            quantized_out = quantized_out + quantized
        return quantized_out


# ---- data: latents (B, D, T) drawn around a few centres, plus fine structure ----
D, T, N_Q, CODEBOOK = 8, 16, 4, 16
centres = rng.standard_normal((6, D)) * 2.0


def make_latents(n):
    which = rng.integers(0, len(centres), size=(n, T))
    x = centres[which] + 0.5 * rng.standard_normal((n, T, D))
    return torch.from_numpy(x.transpose(0, 2, 1).astype(np.float32))


latents = [make_latents(32) for _ in range(12)]
held_out = make_latents(64)

# ---- 1. the codebook pieces ----
probe = latents[0].permute(0, 2, 1).reshape(-1, D)
means, bins = kmeans(probe, CODEBOOK, 10)
codebook = EuclideanCodebook(D, CODEBOOK, kmeans_init=True, kmeans_iters=10, decay=0.8)
print(f"inited before {bool(codebook.inited)} buffers {[n for n, _ in codebook.named_buffers()]}")
codebook.eval()
codebook(probe)
ind = codebook.encode(probe)
ind_cdist = torch.cdist(probe, codebook.embed).argmin(dim=1)
print(f"inited after {bool(codebook.inited)} bins sum {int(bins.sum())} of {probe.shape[0]}")
ind_agree = (ind == ind_cdist).float().mean().item()

# ---- 2. residual VQ learned by EMA: more quantizers, less error ----
rvq = ResidualVectorQuantization(num_quantizers=N_Q, dim=D, codebook_size=CODEBOOK, kmeans_init=True,
                                 kmeans_iters=10, decay=0.8, threshold_ema_dead_code=2)
rvq.train()
for epoch in range(3):
    commit = 0.0
    for x in latents:
        quantized, codes, losses = rvq(x)
        commit += losses.sum().item()
    print(f"epoch {epoch} commit {commit / len(latents):.4f} codes {tuple(codes.shape)} losses {tuple(losses.shape)}")
print(f"expired codes per layer {[layer._codebook.expired for layer in rvq.layers]}")

rvq.eval()
errors = []
with torch.no_grad():
    for n_q in range(1, N_Q + 1):
        quantized, codes, _ = rvq(held_out, n_q=n_q)
        errors.append(F.mse_loss(quantized, held_out).item())
    print("error by n_q " + " ".join(f"{e:.4f}" for e in errors))
    quantized, codes, _ = rvq(held_out)
    decoded = rvq.decode(rvq.encode(held_out))
    roundtrip_exact = float(torch.equal(rvq.encode(held_out), codes)) * float(torch.allclose(decoded, quantized, atol=1e-6))
monotone = float(all(a > b for a, b in zip(errors, errors[1:])))

# ---- 3. the straight-through estimator ----
rvq.train()
x = held_out[:4].clone().requires_grad_(True)
w = torch.randn_like(x)
quantized, _, losses = rvq.layers[0](x)
(quantized * w).sum().backward()
st_grad_err = (x.grad - w).abs().max().item()
x.grad = None
_, _, losses = rvq.layers[0](x)
losses.sum().backward()
commit_grad_nonzero = float(x.grad.abs().sum().item() > 0)
print(f"straight-through grad err {st_grad_err:.2e} commitment grad nonzero {commit_grad_nonzero:.0f} requires_grad {losses.requires_grad}")


# ---- 4. a tiny codec: Conv1d encoder -> RVQ -> Conv1d decoder ----
class TinyCodec(nn.Module):
    def __init__(self, n_q):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv1d(1, 16, 4, stride=2, padding=1), nn.ELU(), nn.Conv1d(16, D, 3, padding=1))
        self.quantizer = ResidualVectorQuantization(num_quantizers=n_q, dim=D, codebook_size=CODEBOOK,
                                                    kmeans_init=True, kmeans_iters=10, decay=0.9)
        self.decoder = nn.Sequential(nn.Conv1d(D, 16, 3, padding=1), nn.ELU(),
                                     nn.ConvTranspose1d(16, 1, 4, stride=2, padding=1))

    def forward(self, wav, n_q=None):
        emb = self.encoder(wav)
        quantized, codes, commit_losses = self.quantizer(emb, n_q=n_q)
        return self.decoder(quantized), codes, commit_losses


def make_waves(n, length=32):
    t = np.arange(length) / length
    freq = rng.integers(1, 5, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    amp = rng.uniform(0.5, 1.0, size=(n, 1))
    wav = amp * np.sin(2 * np.pi * freq * t + phase)
    return torch.from_numpy(wav[:, None, :].astype(np.float32))


train_wavs, test_wavs = make_waves(256), make_waves(64)
results = {}
for n_q in (1, N_Q):
    torch.manual_seed(seed + 1)
    codec = TinyCodec(n_q)
    optimizer = torch.optim.Adam(codec.parameters(), lr=3e-3)
    for _ in range(150):
        idx = torch.randint(0, len(train_wavs), (32,))
        out, codes, commit_losses = codec(train_wavs[idx])
        loss = F.mse_loss(out, train_wavs[idx]) + 0.25 * commit_losses.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    codec.eval()
    with torch.no_grad():
        out, codes, _ = codec(test_wavs)
        results[n_q] = F.mse_loss(out, test_wavs).item()
        used = len(torch.unique(codes[0]))
    print(f"codec n_q {n_q} test mse {results[n_q]:.4f} codes {tuple(codes.shape)} used {used}")

print(
    f"FINAL ind_agree={ind_agree:.4f} monotone={monotone:.1f} roundtrip={roundtrip_exact:.1f}"
    f" err1={errors[0]:.4f} err4={errors[-1]:.4f} st_grad_ok={float(st_grad_err < 1e-6):.1f}"
    f" codec1={results[1]:.4f} codec4={results[N_Q]:.4f} codec_gain={float(results[N_Q] < results[1]):.1f}"
)
