"""XCiT (El-Nouby et al. 2021, "XCiT: Cross-Covariance Image Transformers"; facebookresearch/xcit
``xcit.py``) at tiny sizes on synthetic images.

``ConvPatchEmbed``: a stack of stride-2 ``conv3x3`` (``nn.Sequential(nn.Conv2d(..., 3, stride=2,
padding=1, bias=False), nn.BatchNorm2d(...))``) with ``nn.GELU`` between, tokens by
``x.flatten(2).transpose(1, 2)``, returning ``(x, (Hp, Wp))``; the Fourier
``PositionalEncodingFourier`` (``torch.arange``/``cumsum`` grids, ``self.temperature ** (2 * (dim_t //
2) / hidden_dim)``, ``torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=4).flatten(3)``,
``permute(0, 3, 1, 2)``, a 1x1 ``Conv2d`` projection); the ``XCA`` block: ``qkv.reshape(B, N, 3,
num_heads, C // num_heads).permute(2, 0, 3, 1, 4)``, ``q.transpose(-2, -1)``, ``F.normalize(q,
dim=-1)``, a learnable ``temperature = nn.Parameter(torch.ones(num_heads, 1, 1))``, ``attn = (q @
k.transpose(-2, -1)) * self.temperature``, ``softmax``, ``(attn @ v).permute(0, 3, 1, 2).reshape(B, N,
C)``, ``@torch.jit.ignore`` ``no_weight_decay`` returning ``{'temperature'}``; the ``LPI`` local patch
interaction (depthwise ``nn.Conv2d(groups=dim)``, ``nn.GELU``, ``nn.SyncBatchNorm`` replaced by
``nn.BatchNorm2d``, tokens <-> map by ``x.permute(0, 2, 1).reshape(B, C, H, W)`` and
``reshape(B, C, N).permute(0, 2, 1)``); ``XCABlock`` with LayerScale ``gamma1 = nn.Parameter(eta *
torch.ones(dim))``; class-attention layers (``ClassAttention`` on ``torch.cat((cls_tokens, x),
dim=1)`` with the query from the class token only, ``ClassAttentionBlock`` with ``tokens_norm`` and
timm's ``torch.cat([self.norm2(x[:, 0:1]), x[:, 1:]], dim=1)``);
``trunc_normal_(self.cls_token, std=.02)`` and ``self.apply(self._init_weights)``; AdamW with the
``no_weight_decay`` names excluded, cosine LR, ``CrossEntropyLoss(label_smoothing=0.1)``.

The task: which of four oriented stripe textures (plus noise) an image holds.
Check: XCA equals an explicit per-head loop computing the d x d cross-covariance attention (values
and gradients), and the class attention equals a full attention whose query rows are all but the
first masked out.
"""

import math
import os
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

IMG, DIM, HEADS, NUM_CLASSES = 16, 32, 4, 4


class PositionalEncodingFourier(nn.Module):
    def __init__(self, hidden_dim=16, dim=768, temperature=10000):
        super().__init__()
        self.token_projection = nn.Conv2d(hidden_dim * 2, dim, kernel_size=1)
        self.scale = 2 * math.pi
        self.temperature = temperature
        self.hidden_dim = hidden_dim
        self.dim = dim

    def forward(self, B, H, W):
        mask = torch.zeros(B, H, W).bool().to(self.token_projection.weight.device)
        not_mask = ~mask
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        eps = 1e-6
        y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
        x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale

        dim_t = torch.arange(self.hidden_dim, dtype=torch.float32, device=mask.device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.hidden_dim)

        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos = torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)
        return self.token_projection(pos)


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class ConvPatchEmbed(nn.Module):
    """Two stride-2 conv3x3 + BN with GELU between: 16x16 -> 4x4 patches of 4 pixels."""

    def __init__(self, img_size=IMG, patch_size=4, in_chans=3, embed_dim=DIM):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Sequential(
            conv3x3(in_chans, embed_dim // 2, 2),
            nn.GELU(),
            conv3x3(embed_dim // 2, embed_dim, 2),
        )

    def forward(self, x, padding_size=None):
        B, C, H, W = x.shape
        x = self.proj(x)
        Hp, Wp = x.shape[2], x.shape[3]
        x = x.flatten(2).transpose(1, 2)
        return x, (Hp, Wp)


class LPI(nn.Module):
    def __init__(self, in_features, act_layer=nn.GELU, kernel_size=3):
        super().__init__()
        padding = kernel_size // 2
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding, groups=in_features)
        self.act = act_layer()
        self.bn = nn.BatchNorm2d(in_features)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding, groups=in_features)

    def forward(self, x, H, W):
        B, N, C = x.shape
        x = x.permute(0, 2, 1).reshape(B, C, H, W)
        x = self.conv1(x)
        x = self.act(x)
        x = self.bn(x)
        x = self.conv2(x)
        x = x.reshape(B, C, N).permute(0, 2, 1)
        return x


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class XCA(nn.Module):
    """Cross-covariance attention: attention over channels, d x d per head, linear in tokens."""

    def __init__(self, dim, num_heads=8, qkv_bias=False, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, return_attn=False):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]

        q = q.transpose(-2, -1)
        k = k.transpose(-2, -1)
        v = v.transpose(-2, -1)

        q = torch.nn.functional.normalize(q, dim=-1)
        k = torch.nn.functional.normalize(k, dim=-1)

        attn = (q @ k.transpose(-2, -1)) * self.temperature
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)

        x = (attn @ v).permute(0, 3, 1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        if return_attn:
            return x, attn
        return x

    @torch.jit.ignore
    def no_weight_decay(self):
        return {'temperature'}


class XCABlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=2.0, qkv_bias=True, act_layer=nn.GELU,
                 norm_layer=nn.LayerNorm, eta=1.0):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = XCA(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.norm3 = norm_layer(dim)
        self.local_mp = LPI(in_features=dim, act_layer=act_layer)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer)
        self.gamma1 = nn.Parameter(eta * torch.ones(dim), requires_grad=True)
        self.gamma3 = nn.Parameter(eta * torch.ones(dim), requires_grad=True)
        self.gamma2 = nn.Parameter(eta * torch.ones(dim), requires_grad=True)

    def forward(self, x, H, W):
        x = x + self.gamma1 * self.attn(self.norm1(x))
        x = x + self.gamma3 * self.local_mp(self.norm3(x), H, W)
        x = x + self.gamma2 * self.mlp(self.norm2(x))
        return x


class ClassAttention(nn.Module):
    """Class attention: only the class token queries; keys and values from every token."""

    def __init__(self, dim, num_heads=8, qkv_bias=False):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        qc = q[:, :, 0:1]  # CLS token
        attn_cls = (qc * k).sum(dim=-1) * self.scale
        attn_cls = attn_cls.softmax(dim=-1)
        cls_tkn = (attn_cls.unsqueeze(2) @ v).transpose(1, 2).reshape(B, 1, C)
        cls_tkn = self.proj(cls_tkn)
        x = torch.cat([cls_tkn, x[:, 1:]], dim=1)
        return x


class ClassAttentionBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=2.0, qkv_bias=True, norm_layer=nn.LayerNorm,
                 eta=1.0, tokens_norm=False):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = ClassAttention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))
        self.gamma1 = nn.Parameter(eta * torch.ones(dim), requires_grad=True)
        self.gamma2 = nn.Parameter(eta * torch.ones(dim), requires_grad=True)
        self.tokens_norm = tokens_norm

    def forward(self, x, H, W, mask=None):
        x = x + self.gamma1 * self.attn(self.norm1(x))
        if self.tokens_norm:
            x = self.norm2(x)
        else:
            x = torch.cat([self.norm2(x[:, 0:1]), x[:, 1:]], dim=1)
        x_res = x
        cls_token = x[:, 0:1]
        cls_token = self.gamma2 * self.mlp(cls_token)
        x = torch.cat([cls_token, x[:, 1:]], dim=1)
        x = x_res + x
        return x


class XCiT(nn.Module):
    def __init__(self, img_size=IMG, patch_size=4, num_classes=NUM_CLASSES, embed_dim=DIM, depth=2,
                 num_heads=HEADS, mlp_ratio=2.0, qkv_bias=True, cls_attn_layers=1, eta=1.0,
                 tokens_norm=False):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.patch_embed = ConvPatchEmbed(img_size=img_size, embed_dim=embed_dim, patch_size=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.blocks = nn.ModuleList([
            XCABlock(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                     norm_layer=norm_layer, eta=eta)
            for _ in range(depth)])
        self.cls_attn_blocks = nn.ModuleList([
            ClassAttentionBlock(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                                norm_layer=norm_layer, eta=eta, tokens_norm=tokens_norm)
            for _ in range(cls_attn_layers)])
        self.norm = norm_layer(embed_dim)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.pos_embeder = PositionalEncodingFourier(dim=embed_dim)
        self.use_pos = True

        nn.init.trunc_normal_(self.cls_token, std=.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {'pos_embed', 'cls_token', 'dist_token'}

    def forward_features(self, x):
        B, C, H, W = x.shape
        x, (Hp, Wp) = self.patch_embed(x)
        if self.use_pos:
            pos_encoding = self.pos_embeder(B, Hp, Wp).reshape(B, -1, x.shape[1]).permute(0, 2, 1)
            x = x + pos_encoding
        for blk in self.blocks:
            x = blk(x, Hp, Wp)
        cls_tokens = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        for blk in self.cls_attn_blocks:
            x = blk(x, Hp, Wp)
        x = self.norm(x)[:, 0]
        return x

    def forward(self, x):
        return self.head(self.forward_features(x))


def make_stripes(n, rng):
    """Four orientations of a sinusoidal grating with random phase, frequency and colour, plus noise."""
    labels = rng.integers(0, NUM_CLASSES, size=n)
    yy, xx = np.meshgrid(np.arange(IMG), np.arange(IMG), indexing="ij")
    directions = [(1, 0), (0, 1), (1, 1), (1, -1)]
    images = np.empty((n, 3, IMG, IMG), dtype=np.float32)
    for i, c in enumerate(labels):
        dy, dx = directions[c]
        freq = rng.uniform(0.6, 1.2)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(freq * (dy * yy + dx * xx) + phase)
        colour = rng.uniform(0.5, 1.0, size=(3, 1, 1))
        images[i] = colour * wave + 0.8 * rng.standard_normal((3, IMG, IMG))
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def xca_loop(xca, x):
    """The d x d cross-covariance attention written out per batch element and head."""
    B, N, C = x.shape
    h = xca.num_heads
    d = C // h
    q_all, k_all, v_all = xca.qkv(x).split(C, dim=-1)
    outs = []
    for b in range(B):
        heads = []
        for i in range(h):
            q = q_all[b, :, i * d:(i + 1) * d]  # N, d
            k = k_all[b, :, i * d:(i + 1) * d]
            v = v_all[b, :, i * d:(i + 1) * d]
            q_hat = q / q.norm(dim=0, keepdim=True).clamp_min(1e-12)  # each channel over the tokens
            k_hat = k / k.norm(dim=0, keepdim=True).clamp_min(1e-12)
            cross_cov = q_hat.t() @ k_hat  # d x d
            attn = torch.softmax(cross_cov * xca.temperature[i], dim=-1)
            heads.append(v @ attn.t())  # N, d
        outs.append(torch.cat(heads, dim=1))
    return xca.proj(torch.stack(outs))


def class_attention_full(ca, x):
    """Full softmax attention, kept only on the class token's row."""
    B, N, C = x.shape
    qkv = ca.qkv(x).reshape(B, N, 3, ca.num_heads, C // ca.num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    attn = ((q @ k.transpose(-2, -1)) * ca.scale).softmax(dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(B, N, C)
    return torch.cat([ca.proj(out[:, :1]), x[:, 1:]], dim=1)


rng = np.random.default_rng(seed)

# --- XCA against the per-head loop; class attention against full attention
xca = XCA(DIM, num_heads=HEADS, qkv_bias=True)
with torch.no_grad():
    xca.temperature.copy_(torch.rand(HEADS, 1, 1) + 0.5)
xt = torch.randn(2, 9, DIM, requires_grad=True)
out_xca, attn_map = xca(xt, return_attn=True)
out_loop = xca_loop(xca, xt)
w = torch.randn_like(out_xca)
params = (xt, xca.temperature, xca.qkv.weight)
g_xca = torch.autograd.grad((out_xca * w).sum(), params)
g_loop = torch.autograd.grad((out_loop * w).sum(), params)
xca_err = max([(out_xca - out_loop).abs().max().item()] + [(a - b).abs().max().item() for a, b in zip(g_xca, g_loop)])
print(f"XCA {tuple(out_xca.shape)} attention {tuple(attn_map.shape)} vs per-head loop: err {xca_err:.2e}")

ca = ClassAttention(DIM, num_heads=HEADS, qkv_bias=True)
with torch.no_grad():
    xc = torch.randn(2, 10, DIM)
    cls_err = (ca(xc) - class_attention_full(ca, xc)).abs().max().item()
print(f"class attention vs full attention's first row: err {cls_err:.2e}")
check_err = max(xca_err, cls_err)

# --- training
model = XCiT()
print(f"XCiT parameters: {sum(p.numel() for p in model.parameters())}")
train_x, train_y = make_stripes(384, rng)
test_x, test_y = make_stripes(256, rng)

skip = model.no_weight_decay() | {f"blocks.{i}.attn.temperature" for i in range(len(model.blocks))}
decay, no_decay = [], []
for name, param in model.named_parameters():
    if len(param.shape) == 1 or name.endswith(".bias") or name in skip or name.endswith("temperature"):
        no_decay.append(param)
    else:
        decay.append(param)
print(f"parameter groups: {len(decay)} with decay, {len(no_decay)} without")
EPOCHS, BATCH = 8, 32
optimizer = torch.optim.AdamW([{'params': no_decay, 'weight_decay': 0.},
                               {'params': decay, 'weight_decay': 0.05}], lr=2e-3)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS * (train_x.size(0) // BATCH))
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)


@torch.no_grad()
def evaluate():
    model.eval()
    logits = model(test_x)
    loss = F.cross_entropy(logits, test_y).item()
    acc = (logits.argmax(dim=1) == test_y).float().mean().item()
    model.train()
    return loss, acc


loss_start, acc_start = evaluate()
for epoch in range(EPOCHS):
    perm = torch.randperm(train_x.size(0))
    total, count = 0.0, 0
    for i in range(0, train_x.size(0), BATCH):
        idx = perm[i:i + BATCH]
        loss = criterion(model(train_x[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        total += loss.item() * idx.numel()
        count += idx.numel()
    print(f"epoch {epoch} train loss {total / count:.4f}")

loss_end, acc_end = evaluate()
temperatures = torch.cat([blk.attn.temperature.detach().flatten() for blk in model.blocks])
print(f"learned temperatures: min {temperatures.min().item():.3f} max {temperatures.max().item():.3f}")
print(f"test loss {loss_start:.4f} -> {loss_end:.4f}, accuracy {acc_start:.4f} -> {acc_end:.4f}")
print(f"FINAL test_loss={loss_end:.4f} acc={acc_end:.4f} check_err={check_err:.3e}")
