"""CaiT (Touvron et al., "Going deeper with Image Transformers") in the facebookresearch/deit
``cait_models.py`` layout, at toy width on synthetic patch images.

The model keeps the reference's structure: a timm-style ``PatchEmbed`` (strided ``nn.Conv2d`` +
``flatten(2).transpose(1, 2)``), ``Mlp``, ``DropPath`` (``x.new_empty(shape).bernoulli_(keep_prob)``
+ ``div_``), self-attention blocks ``LayerScale_Block`` with ``gamma_1 * ...``/``gamma_2 * ...``
around ``Attention_talking_head`` (``proj_l``/``proj_w`` Linears over the heads dimension applied by
``attn.permute(0, 2, 3, 1)`` ... ``.permute(0, 3, 1, 2)`` before and after the softmax), then
class-attention blocks ``LayerScale_Block_CA`` where only the class token queries
(``Class_Attention``: ``self.q(x[:, 0]).unsqueeze(1)``, keys and values over
``torch.cat((x_cls, x), dim=1)``); ``trunc_normal_(std=.02)`` on the position embedding, the class
token and every Linear through ``self.apply(self._init_weights)``; ``no_weight_decay`` names kept
out of AdamW's decay group; a cosine schedule by ``LambdaLR``.

The task: 16x16 images of noise with one 4x4 textured patch (horizontal stripes, vertical stripes,
checkerboard or a solid blob) at a random patch position; the class is the texture.

Checked: with ``proj_l``/``proj_w`` set to the identity the talking-heads attention equals timm's
plain ``Attention`` loaded from the same state dict (``strict=False``) and
``F.scaled_dot_product_attention``; ``Class_Attention`` equals the first row of full attention
computed with the same q/k/v on every token; and held-out accuracy rising above chance.
"""

# ruff: noqa: UP008, UP034, B007  (the reference's own spelling: super(DropPath, self), torch.ones((dim)), unused loop indices)

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.init import trunc_normal_

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

IMG, PATCH, CLASSES = 16, 4, 4


def make_images(n):
    images = 0.6 * rng.randn(n, 3, IMG, IMG).astype(np.float32)
    labels = rng.randint(0, CLASSES, size=n)
    yy, xx = np.mgrid[0:PATCH, 0:PATCH]
    textures = [
        np.where(yy % 2 == 0, 1.5, -1.5),
        np.where(xx % 2 == 0, 1.5, -1.5),
        np.where((xx + yy) % 2 == 0, 1.5, -1.5),
        np.full((PATCH, PATCH), 1.5),
    ]
    for i in range(n):
        py, px = rng.randint(0, IMG // PATCH, size=2) * PATCH
        images[i, :, py:py + PATCH, px:px + PATCH] += textures[labels[i]][None]
    return torch.from_numpy(images), torch.from_numpy(labels).long()


# ----------------------------------------------------------------------------------- timm layers
def drop_path(x, drop_prob: float = 0., training: bool = False, scale_by_keep: bool = True):
    if drop_prob == 0. or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # work with diff dim tensors, not just 2D ConvNets
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    """Drop paths (Stochastic Depth) per sample  (when applied in main path of residual blocks)."""

    def __init__(self, drop_prob: float = 0., scale_by_keep: bool = True):
        super(DropPath, self).__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self):
        return f'drop_prob={round(self.drop_prob, 3):0.3f}'


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop(x)
        x = self.fc2(x)
        x = self.drop(x)
        return x


class PatchEmbed(nn.Module):
    """ Image to Patch Embedding
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        B, C, H, W = x.shape
        assert H == self.img_size[0] and W == self.img_size[1], \
            f"Input image size ({H}*{W}) doesn't match model ({self.img_size[0]}*{self.img_size[1]})."
        x = self.proj(x).flatten(2).transpose(1, 2)
        return x


class Attention(nn.Module):
    # timm's plain ViT attention, the reference the talking heads reduce to
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0., proj_drop=0.):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x


# ----------------------------------------------------------------------------------- cait_models.py
class Class_Attention(nn.Module):
    # taken from https://github.com/rwightman/pytorch-image-models/blob/master/timm/models/vision_transformer.py
    # with slight modifications to do CA
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0., proj_drop=0.):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5

        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        q = self.q(x[:, 0]).unsqueeze(1).reshape(B, 1, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)
        k = self.k(x).reshape(B, N, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)

        q = q * self.scale
        v = self.v(x).reshape(B, N, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)

        attn = (q @ k.transpose(-2, -1))
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)

        x_cls = (attn @ v).transpose(1, 2).reshape(B, 1, C)
        x_cls = self.proj(x_cls)
        x_cls = self.proj_drop(x_cls)

        return x_cls


class LayerScale_Block_CA(nn.Module):
    # taken from https://github.com/rwightman/pytorch-image-models/blob/master/timm/models/vision_transformer.py
    # with slight modifications to add CA and LayerScale
    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop=0., attn_drop=0.,
                 drop_path=0., act_layer=nn.GELU, norm_layer=nn.LayerNorm, Attention_block=Class_Attention,
                 Mlp_block=Mlp, init_values=1e-4):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention_block(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = Mlp_block(in_features=dim, hidden_features=mlp_hidden_dim, act_layer=act_layer, drop=drop)
        self.gamma_1 = nn.Parameter(init_values * torch.ones((dim)), requires_grad=True)
        self.gamma_2 = nn.Parameter(init_values * torch.ones((dim)), requires_grad=True)

    def forward(self, x, x_cls):
        u = torch.cat((x_cls, x), dim=1)

        x_cls = x_cls + self.drop_path(self.gamma_1 * self.attn(self.norm1(u)))

        x_cls = x_cls + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x_cls)))

        return x_cls


class Attention_talking_head(nn.Module):
    # taken from https://github.com/rwightman/pytorch-image-models/blob/master/timm/models/vision_transformer.py
    # with slight modifications to add Talking Heads Attention (https://arxiv.org/pdf/2003.02436v1.pdf)
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0., proj_drop=0.):
        super().__init__()

        self.num_heads = num_heads

        head_dim = dim // num_heads

        self.scale = qk_scale or head_dim ** -0.5

        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)

        self.proj = nn.Linear(dim, dim)

        self.proj_l = nn.Linear(num_heads, num_heads)
        self.proj_w = nn.Linear(num_heads, num_heads)

        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]

        attn = (q @ k.transpose(-2, -1))

        attn = self.proj_l(attn.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

        attn = attn.softmax(dim=-1)

        attn = self.proj_w(attn.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        attn = self.attn_drop(attn)

        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x


class LayerScale_Block(nn.Module):
    # taken from https://github.com/rwightman/pytorch-image-models/blob/master/timm/models/vision_transformer.py
    # with slight modifications to add layerScale
    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop=0., attn_drop=0.,
                 drop_path=0., act_layer=nn.GELU, norm_layer=nn.LayerNorm, Attention_block=Attention_talking_head,
                 Mlp_block=Mlp, init_values=1e-4):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention_block(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = Mlp_block(in_features=dim, hidden_features=mlp_hidden_dim, act_layer=act_layer, drop=drop)
        self.gamma_1 = nn.Parameter(init_values * torch.ones((dim)), requires_grad=True)
        self.gamma_2 = nn.Parameter(init_values * torch.ones((dim)), requires_grad=True)

    def forward(self, x):
        x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x)))
        x = x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))
        return x


class cait_models(nn.Module):
    # taken from https://github.com/rwightman/pytorch-image-models/blob/master/timm/models/vision_transformer.py
    # with slight modifications to adapt to our cait models
    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., norm_layer=nn.LayerNorm, global_pool=None,
                 block_layers=LayerScale_Block,
                 block_layers_token=LayerScale_Block_CA,
                 Patch_layer=PatchEmbed, act_layer=nn.GELU,
                 Attention_block=Attention_talking_head, Mlp_block=Mlp,
                 init_scale=1e-4,
                 Attention_block_token_only=Class_Attention,
                 Mlp_block_token_only=Mlp,
                 depth_token_only=2,
                 mlp_ratio_clstk=4.0):
        super().__init__()

        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim

        self.patch_embed = Patch_layer(
            img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)

        num_patches = self.patch_embed.num_patches

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, embed_dim))
        self.pos_drop = nn.Dropout(p=drop_rate)

        dpr = [drop_path_rate for i in range(depth)]
        self.blocks = nn.ModuleList([
            block_layers(
                dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                drop=drop_rate, attn_drop=attn_drop_rate, drop_path=dpr[i], norm_layer=norm_layer,
                act_layer=act_layer, Attention_block=Attention_block, Mlp_block=Mlp_block, init_values=init_scale)
            for i in range(depth)])

        self.blocks_token_only = nn.ModuleList([
            block_layers_token(
                dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio_clstk, qkv_bias=qkv_bias, qk_scale=qk_scale,
                drop=0.0, attn_drop=0.0, drop_path=0.0, norm_layer=norm_layer,
                act_layer=act_layer, Attention_block=Attention_block_token_only,
                Mlp_block=Mlp_block_token_only, init_values=init_scale)
            for i in range(depth_token_only)])

        self.norm = norm_layer(embed_dim)

        self.feature_info = [dict(num_chs=embed_dim, reduction=0, module='head')]
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

        trunc_normal_(self.pos_embed, std=.02)
        trunc_normal_(self.cls_token, std=.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def no_weight_decay(self):
        return {'pos_embed', 'cls_token'}

    def forward_features(self, x):
        B = x.shape[0]
        x = self.patch_embed(x)

        cls_tokens = self.cls_token.expand(B, -1, -1)

        x = x + self.pos_embed
        x = self.pos_drop(x)

        for i, blk in enumerate(self.blocks):
            x = blk(x)

        for i, blk in enumerate(self.blocks_token_only):
            cls_tokens = blk(x, cls_tokens)

        x = torch.cat((cls_tokens, x), dim=1)

        x = self.norm(x)
        return x[:, 0]

    def forward(self, x):
        x = self.forward_features(x)

        x = self.head(x)

        return x


# ----------------------------------------------------------------------------------- identities
dim, heads = 32, 4
tokens = torch.randn(3, 9, dim)

talking = Attention_talking_head(dim, num_heads=heads, qkv_bias=True)
with torch.no_grad():
    talking.proj_l.weight.copy_(torch.eye(heads))
    talking.proj_l.bias.zero_()
    talking.proj_w.weight.copy_(torch.eye(heads))
    talking.proj_w.bias.zero_()
plain = Attention(dim, num_heads=heads, qkv_bias=True)
missing, unexpected = plain.load_state_dict(talking.state_dict(), strict=False)
print(f"plain Attention from talking-heads state dict: missing {len(missing)}, unexpected {sorted(unexpected)}")
with torch.no_grad():
    out_talking, out_plain = talking(tokens), plain(tokens)
    qkv = talking.qkv(tokens).reshape(3, 9, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
    sdpa = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(3, 9, dim)
    out_sdpa = talking.proj(sdpa)
talking_gap = max((out_talking - out_plain).abs().max().item(), (out_talking - out_sdpa).abs().max().item())
mixed = copy.deepcopy(talking)
nn.init.normal_(mixed.proj_l.weight)
with torch.no_grad():
    mixed_gap = (mixed(tokens) - out_plain).abs().max().item()
print(f"identity talking heads == plain attention == sdpa: {talking_gap < 1e-5}; mixed heads differ: {mixed_gap > 1e-3}")

ca = Class_Attention(dim, num_heads=heads, qkv_bias=True)
with torch.no_grad():
    B, N, C = tokens.shape
    q = ca.q(tokens).reshape(B, N, heads, C // heads).permute(0, 2, 1, 3) * ca.scale
    k = ca.k(tokens).reshape(B, N, heads, C // heads).permute(0, 2, 1, 3)
    v = ca.v(tokens).reshape(B, N, heads, C // heads).permute(0, 2, 1, 3)
    full = ((q @ k.transpose(-2, -1)).softmax(dim=-1) @ v).transpose(1, 2).reshape(B, N, C)
    full_first = ca.proj(full)[:, :1]
    class_gap = (ca(tokens) - full_first).abs().max().item()
print(f"class attention == first row of full attention: {class_gap < 1e-5}, shape {tuple(ca(tokens).shape)}")

drop = DropPath(0.5)
ones = torch.ones(64, 3, 5)
kept = drop(ones)
per_sample = kept.flatten(1)
rows_ok = bool(((per_sample == 0).all(1) | (per_sample == 2).all(1)).all())
print(f"DropPath: {drop}, rows all-dropped or all-scaled: {rows_ok}, eval identity: {torch.equal(drop.eval()(ones), ones)}")

# ----------------------------------------------------------------------------------- training
train_x, train_y = make_images(384)
val_x, val_y = make_images(192)
model = cait_models(img_size=IMG, patch_size=PATCH, in_chans=3, num_classes=CLASSES, embed_dim=dim, depth=2,
                    num_heads=heads, mlp_ratio=2, qkv_bias=True, drop_path_rate=0.05, init_scale=0.1,
                    depth_token_only=1, mlp_ratio_clstk=2.0)
n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"cait: {len(model.blocks)} SA blocks, {len(model.blocks_token_only)} CA block, {n_params} params, "
      f"{model.patch_embed.num_patches} patches")

skip = model.no_weight_decay()
decay, no_decay = [], []
for name, param in model.named_parameters():
    if not param.requires_grad:
        continue
    if len(param.shape) == 1 or name.endswith(".bias") or name in skip:
        no_decay.append(param)
    else:
        decay.append(param)
optimizer = torch.optim.AdamW([{'params': no_decay, 'weight_decay': 0.}, {'params': decay, 'weight_decay': 0.05}],
                              lr=3e-3)
epochs, batch_size = 6, 32
steps_per_epoch = len(train_x) // batch_size
total = epochs * steps_per_epoch
warmup = steps_per_epoch
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))))
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)


@torch.no_grad()
def evaluate(x, y):
    model.eval()
    logits = model(x)
    return (logits.argmax(1) == y).float().mean().item(), F.cross_entropy(logits, y).item()


acc_start, _ = evaluate(val_x, val_y)
print(f"val acc before training {acc_start:.4f}")
for epoch in range(epochs):
    model.train()
    perm = torch.randperm(len(train_x))
    running = 0.0
    for i in range(steps_per_epoch):
        idx = perm[i * batch_size:(i + 1) * batch_size]
        loss = criterion(model(train_x[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running += loss.item()
    acc, val_loss = evaluate(val_x, val_y)
    print(f"epoch {epoch + 1}/{epochs}: train loss {running / steps_per_epoch:.4f} val loss {val_loss:.4f} "
          f"val acc {acc:.4f} lr {scheduler.get_last_lr()[0]:.6f}")

gamma = model.blocks[0].gamma_1.detach()
print(f"layer-scale gamma_1 of block 0: mean {gamma.mean().item():.4f}")
identities = int(talking_gap < 1e-5 and mixed_gap > 1e-3 and class_gap < 1e-5 and rows_ok)
print(f"FINAL acc_start={acc_start:.4f} acc={acc:.4f} val_loss={val_loss:.4f} identities_ok={identities}")
