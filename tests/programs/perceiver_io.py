"""A Perceiver IO classifier, in the idioms of the public Perceiver implementations, with plain torch.

A learned latent array ``nn.Parameter(torch.randn(n_latents, d))`` broadcast to the batch by
``repeat`` (encoder) and ``expand(b, -1, -1)`` (decoder query), cross-attention from the latents
to a long input through ``nn.MultiheadAttention(d, h, kdim=..., vdim=..., batch_first=True)``
(input and latent widths differ), latent self-attention blocks, Fourier position features
(``torch.linspace``, ``torch.meshgrid``, ``sin``/``cos`` of ``pi * scales * pos`` concatenated with
the positions), einops-free ``rearrange`` done with ``view``/``permute``/``reshape``, pre-norm
``LayerNorm``, ``F.gelu`` feed-forwards, an output-query decoder, ``cross_entropy`` loss.
The task: which quadrant of a small image holds the brightest blob.
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

H = W = 12
N_CLASSES = 4


def make_images(n):
    """(n, H, W, 1) channels-last images: one bright blob in a random quadrant, dimmer distractors."""
    yy, xx = np.mgrid[0:H, 0:W]
    images = rng.normal(0, 0.1, size=(n, H, W, 1)).astype(np.float32)
    labels = rng.integers(0, N_CLASSES, size=n)
    for i, label in enumerate(labels):
        cy = rng.uniform(1, H / 2 - 1) + (H / 2 if label >= 2 else 0)
        cx = rng.uniform(1, W / 2 - 1) + (W / 2 if label % 2 else 0)
        images[i, :, :, 0] += 3.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
        dy, dx = rng.uniform(0, H, size=2)
        images[i, :, :, 0] += 1.0 * np.exp(-((yy - dy) ** 2 + (xx - dx) ** 2) / 2.0)
    return torch.from_numpy(images), torch.from_numpy(labels)


def fourier_encode(x, max_freq, num_bands=4):
    """Fourier features of positions in [-1, 1]: (..., d) -> (..., d * (2 * num_bands + 1))."""
    x = x.unsqueeze(-1)
    dtype, orig_x = x.dtype, x
    scales = torch.linspace(1., max_freq / 2, num_bands, dtype=dtype)
    scales = scales[(*((None,) * (len(x.shape) - 1)), Ellipsis)]
    x = x * scales * math.pi
    x = torch.cat([x.sin(), x.cos()], dim=-1)
    x = torch.cat((x, orig_x), dim=-1)
    return x


class PreNorm(nn.Module):
    def __init__(self, dim, fn, context_dim=None):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim) if context_dim is not None else None

    def forward(self, x, **kwargs):
        x = self.norm(x)
        if self.norm_context is not None:
            kwargs["context"] = self.norm_context(kwargs["context"])
        return self.fn(x, **kwargs)


class GEGLU(nn.Module):
    def forward(self, x):
        x, gates = x.chunk(2, dim=-1)
        return x * F.gelu(gates)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult * 2), GEGLU(), nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.net(x)


class CrossAttention(nn.Module):
    """Latents (queries, width ``dim``) attend to the input (keys/values, width ``context_dim``)."""

    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, kdim=context_dim, vdim=context_dim, batch_first=True)

    def forward(self, x, context):
        out, weights = self.attn(x, context, context, need_weights=True)
        self.last_weights = weights.detach()
        return out


class SelfAttention(nn.Module):
    """Hand-written multi-head attention with the einops rearranges done by view/permute."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        h = self.heads
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        # rearrange('b n (h d) -> (b h) n d')
        q, k, v = (t.view(b, n, h, d // h).permute(0, 2, 1, 3).reshape(b * h, n, d // h) for t in (q, k, v))
        sim = torch.einsum('b i d, b j d -> b i j', q, k) * self.scale
        attn = sim.softmax(dim=-1)
        out = torch.einsum('b i j, b j d -> b i d', attn, v)
        # rearrange('(b h) n d -> b n (h d)')
        out = out.view(b, h, n, d // h).permute(0, 2, 1, 3).reshape(b, n, d)
        return self.to_out(out)


class PerceiverIO(nn.Module):
    def __init__(self, input_channels, num_freq_bands, max_freq, depth, num_latents, latent_dim,
                 cross_heads, latent_heads, queries_dim, num_classes):
        super().__init__()
        self.num_freq_bands, self.max_freq = num_freq_bands, max_freq
        input_dim = input_channels + 2 * (2 * num_freq_bands + 1)
        self.latents = nn.Parameter(torch.randn(num_latents, latent_dim))
        self.cross_attend_blocks = nn.ModuleList([
            PreNorm(latent_dim, CrossAttention(latent_dim, input_dim, cross_heads), context_dim=input_dim),
            PreNorm(latent_dim, FeedForward(latent_dim)),
        ])
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                PreNorm(latent_dim, SelfAttention(latent_dim, latent_heads)),
                PreNorm(latent_dim, FeedForward(latent_dim)),
            ]))
        self.decoder_queries = nn.Parameter(torch.randn(1, queries_dim))
        self.decoder_cross_attn = PreNorm(queries_dim, CrossAttention(queries_dim, latent_dim, cross_heads),
                                          context_dim=latent_dim)
        self.to_logits = nn.Sequential(nn.LayerNorm(queries_dim), nn.Linear(queries_dim, num_classes))

    def forward(self, data):
        b, *axis, _ = data.shape
        # positions in [-1, 1] per axis, Fourier-encoded and concatenated to the data
        axis_pos = list(map(lambda size: torch.linspace(-1., 1., steps=size), axis))
        pos = torch.stack(torch.meshgrid(*axis_pos, indexing='ij'), dim=-1)
        enc_pos = fourier_encode(pos, self.max_freq, self.num_freq_bands)
        enc_pos = enc_pos.view(*enc_pos.shape[:len(axis)], -1)          # rearrange('... n d -> ... (n d)')
        enc_pos = enc_pos.unsqueeze(0).expand(b, *enc_pos.shape)        # repeat('... -> b ...', b=b)
        data = torch.cat((data, enc_pos), dim=-1)
        data = data.reshape(b, -1, data.shape[-1])                      # rearrange('b ... d -> b (...) d')

        x = self.latents.unsqueeze(0).repeat(b, 1, 1)                   # repeat('n d -> b n d', b=b)
        cross_attn, cross_ff = self.cross_attend_blocks
        x = cross_attn(x, context=data) + x
        x = cross_ff(x) + x
        for self_attn, self_ff in self.layers:
            x = self_attn(x) + x
            x = self_ff(x) + x

        queries = self.decoder_queries.expand(b, -1, -1)                # (b, 1, queries_dim)
        latents = self.decoder_cross_attn(queries, context=x)
        return self.to_logits(latents).squeeze(1)


model = PerceiverIO(input_channels=1, num_freq_bands=4, max_freq=6., depth=2, num_latents=8, latent_dim=32,
                    cross_heads=2, latent_heads=4, queries_dim=24, num_classes=N_CLASSES)
print(f"input sequence: {H * W} positions of {1 + 2 * (2 * 4 + 1)} features; latents {tuple(model.latents.shape)}")
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)

x_train, y_train = make_images(384)
x_test, y_test = make_images(128)
BATCH = 32
for epoch in range(1, 13):
    model.train()
    perm = torch.randperm(len(x_train))
    total = 0.0
    for i in range(0, len(x_train), BATCH):
        idx = perm[i:i + BATCH]
        logits = model(x_train[idx])
        loss = F.cross_entropy(logits, y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    if epoch % 3 == 0:
        print(f"epoch {epoch}: train loss {total / len(x_train):.4f}")

model.eval()
with torch.no_grad():
    logits = model(x_test)
    test_loss = F.cross_entropy(logits, y_test).item()
    acc = (logits.argmax(-1) == y_test).float().mean().item()
    weights = model.cross_attend_blocks[0].fn.last_weights
print(f"cross-attention map: {tuple(weights.shape)}, rows sum to {weights.sum(-1).mean().item():.4f}")
print(f"FINAL test_loss={test_loss:.4f} acc={acc:.4f}")
