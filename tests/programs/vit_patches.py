"""A tiny Vision Transformer, in the style of the "ViT from scratch" tutorials and timm's ``PatchEmbed``.

Patchify two ways: ``nn.Conv2d(kernel_size=stride=patch)`` + ``flatten(2).transpose(1, 2)`` and
``F.unfold`` + ``einsum``; a class token ``nn.Parameter(torch.zeros(1, 1, d))`` broadcast with
``expand(B, -1, -1)``, a learned positional embedding with ``nn.init.trunc_normal_(std=.02)`` on top of
SimpleViT's fixed 2-D sin-cos one (``torch.meshgrid(indexing="ij")``, a ``register_buffer``),
pre-norm blocks with ``nn.MultiheadAttention(batch_first=True)`` (``need_weights``/averaged
attention maps), ``torch.einsum`` for a hand-written attention head, ``nn.GELU``, AdamW
with cosine warm-up through ``LambdaLR``, ``torch.no_grad()`` evaluation with
``torch.where(hit, 1.0, 0.0)``, patch rows with ``repeat_interleave``.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# data: 12x12 images of a horizontal bar, a vertical bar, a diagonal or a square outline at a
# random place, on noise: a patch sees only part of a shape, so the tokens must talk to each other
rng = np.random.RandomState(0)


def make_images(n):
    images = 0.45 * rng.randn(n, 1, 12, 12).astype(np.float32)
    labels = rng.randint(0, 4, size=n)
    for image, label in zip(images, labels):
        r, c = rng.randint(1, 7, size=2)
        if label == 0:
            image[0, r + 2, c:c + 5] += 2.0
        elif label == 1:
            image[0, r:r + 5, c + 2] += 2.0
        elif label == 2:
            image[0, np.arange(5) + r, np.arange(5) + c] += 2.0
        else:
            image[0, r:r + 5, c] += 2.0
            image[0, r:r + 5, c + 4] += 2.0
    return torch.from_numpy(images), torch.from_numpy(labels)


train_set = TensorDataset(*make_images(1024))
test_set = TensorDataset(*make_images(256))


def posemb_sincos_2d(h, w, dim, temperature=10000, dtype=torch.float32):
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    assert (dim % 4) == 0, "feature dimension must be multiple of 4 for sincos emb"
    omega = torch.arange(dim // 4) / (dim // 4 - 1)
    omega = 1.0 / (temperature ** omega)
    y = y.flatten()[:, None] * omega[None, :]
    x = x.flatten()[:, None] * omega[None, :]
    pe = torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), dim=1)
    return pe.type(dtype)


class PatchEmbed(nn.Module):
    def __init__(self, img_size=12, patch_size=3, in_chans=1, embed_dim=16, use_unfold=False):
        super().__init__()
        self.patch_size = patch_size
        self.num_patches = (img_size // patch_size) ** 2
        self.use_unfold = use_unfold
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        if self.use_unfold:
            # the same linear map as the convolution, written as unfold + einsum
            patches = F.unfold(x, kernel_size=self.patch_size, stride=self.patch_size)  # B, C*p*p, N
            weight = self.proj.weight.flatten(1)  # D, C*p*p
            return torch.einsum("bkn,dk->bnd", patches, weight) + self.proj.bias
        return self.proj(x).flatten(2).transpose(1, 2)  # B, N, D


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=2.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=0.0, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Dropout(0.0),
                                 nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x):
        h = self.norm1(x)
        attn_out, attn_weights = self.attn(h, h, h, need_weights=True)
        x = x + attn_out
        x = x + self.mlp(self.norm2(x))
        return x, attn_weights


class EinsumHead(nn.Module):
    """A single attention head pooling the tokens into the class token, written with einsum."""

    def __init__(self, dim):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.scale = dim ** -0.5

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        attn = torch.einsum("bqd,bkd->bqk", q[:, :1], k) * self.scale
        attn = attn.softmax(dim=-1)
        return torch.einsum("bqk,bkd->bqd", attn, v).squeeze(1)


class VisionTransformer(nn.Module):
    def __init__(self, num_classes=4, embed_dim=16, depth=2, num_heads=2):
        super().__init__()
        self.patch_embed = PatchEmbed(embed_dim=embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        grid = int(num_patches ** 0.5)
        self.register_buffer("fixed_pos_embed", posemb_sincos_2d(grid, grid, embed_dim), persistent=False)
        self.pos_drop = nn.Dropout(p=0.0)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.pool = EinsumHead(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x, use_unfold=False):
        self.patch_embed.use_unfold = use_unfold
        x = self.patch_embed(x)
        B = x.shape[0]
        cls_tokens = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, x + self.fixed_pos_embed), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        attention = []
        for blk in self.blocks:
            x, weights = blk(x)
            attention.append(weights)
        x = self.norm(x)
        return self.head(x[:, 0] + self.pool(x)), attention


model = VisionTransformer()
print(f"{sum(p.numel() for p in model.parameters())} parameters, {model.patch_embed.num_patches} patches")
decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos_embed" not in n and "cls_token" not in n]
no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos_embed" not in n
                                                            and "cls_token" not in n)]
optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                              lr=1e-2)
epochs, warmup_steps = 8, 8
train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
total_steps = epochs * len(train_loader)


def lr_lambda(step):
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
criterion = nn.CrossEntropyLoss()

for epoch in range(epochs):
    model.train()
    running = 0.0
    for images, labels in train_loader:
        logits, _ = model(images, use_unfold=epoch % 2 == 1)
        loss = criterion(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item() * images.size(0)
    print(f"epoch {epoch + 1}/{epochs} loss {running / len(train_set):.4f} lr {scheduler.get_last_lr()[0]:.6f}")

model.eval()
with torch.no_grad():
    images, labels = test_set.tensors
    logits, attention = model(images)
    logits_unfold, _ = model(images, use_unfold=True)
    test_loss = F.cross_entropy(logits, labels).item()
    acc = torch.where(logits.argmax(-1) == labels, 1.0, 0.0).mean().item()
    paths_agree = torch.allclose(logits, logits_unfold, atol=1e-4)
print(f"attention maps {tuple(attention[0].shape)}, rows sum to one: "
      f"{torch.allclose(attention[-1].sum(-1), torch.ones(1), atol=1e-5)}, conv and unfold agree: {paths_agree}")
cls_attention = attention[-1][:, 0, 1:].max(dim=-1).values.mean().item()
patch_rows = torch.arange(4).repeat_interleave(4).float()
cls_to_patches = attention[-1][:, 0, 1:] / attention[-1][:, 0, 1:].sum(-1, keepdim=True)
print(f"class token looks at patch row {(cls_to_patches * patch_rows).sum(-1).mean().item():.3f} on average, "
      f"state_dict keys {len(model.state_dict())}")
print(f"FINAL loss={test_loss:.4f} acc={acc:.4f} cls_attention_peak={cls_attention:.4f}")
