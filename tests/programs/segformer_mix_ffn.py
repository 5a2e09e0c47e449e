"""SegFormer as NVlabs/SegFormer writes it (mmseg/models/backbones/mix_transformer.py and
mmseg/models/decode_heads/segformer_head.py), a three-stage MiT at 32x32 trained to segment
squares and discs with their outlines ignored.

``OverlapPatchEmbed`` (``nn.Conv2d(kernel_size=7, stride=4, padding=patch_size[0] // 2)`` then
``x.flatten(2).transpose(1, 2)`` and ``LayerNorm``), efficient self-attention with the
spatial-reduction conv (``x.permute(0, 2, 1).reshape(B, C, H, W)``, ``self.sr`` with
``kernel_size=sr_ratio, stride=sr_ratio``, ``kv.reshape(B, -1, 2, heads, C // heads).permute(2, 0, 3, 1, 4)``),
the Mix-FFN's depthwise ``nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)`` on
``x.transpose(1, 2).view(B, C, H, W)``, ``DropPath`` with ``torch.linspace`` rates read by
``x.item()``, ``self.apply(self._init_weights)`` (``trunc_normal_``, the conv fan-out
``m.weight.data.normal_(0, math.sqrt(2.0 / fan_out))``), stage outputs by ``reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()``,
the all-MLP decoder (``linear_c4(c4).permute(0, 2, 1).reshape(n, -1, h, w)``, ``F.interpolate(size=c1.size()[2:],
mode="bilinear", align_corners=False)``, ``torch.cat`` into a 1x1 conv + BatchNorm fuse), AdamW with
a poly ``LambdaLR``, ``F.cross_entropy(ignore_index=255)`` on logits resized to the labels, and
mIoU by ``torch.bincount(n * gt + pred, minlength=n ** 2).reshape(n, n)``.
"""
# ruff: noqa: B006, B007, A002  (the repository's own spelling: list defaults such as embed_dims=[64, 128, ...],
# `for i, blk in enumerate(self.block1)`, mmseg's resize(input, ...))

import math
import os
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.init import trunc_normal_

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)


def drop_path(x, drop_prob: float = 0., training: bool = False):
    if drop_prob == 0. or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # work with diff dim tensors, not just 2D ConvNets
    random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
    random_tensor.floor_()  # binarize
    output = x.div(keep_prob) * random_tensor
    return output


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.dwconv = DWConv(hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)
        elif isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            fan_out //= m.groups
            m.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                m.bias.data.zero_()

    def forward(self, x, H, W):
        x = self.fc1(x)
        x = self.dwconv(x, H, W)
        x = self.act(x)
        x = self.drop(x)
        x = self.fc2(x)
        x = self.drop(x)
        return x


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0., proj_drop=0., sr_ratio=1):
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} should be divided by num_heads {num_heads}."

        self.dim = dim
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5

        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x, H, W):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)

        if self.sr_ratio > 1:
            x_ = x.permute(0, 2, 1).reshape(B, C, H, W)
            x_ = self.sr(x_).reshape(B, C, -1).permute(0, 2, 1)
            x_ = self.norm(x_)
            kv = self.kv(x_).reshape(B, -1, 2, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        else:
            kv = self.kv(x).reshape(B, -1, 2, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]

        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)

        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)

        return x


class Block(nn.Module):

    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop=0., attn_drop=0.,
                 drop_path=0., act_layer=nn.GELU, norm_layer=nn.LayerNorm, sr_ratio=1):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(
            dim,
            num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale,
            attn_drop=attn_drop, proj_drop=drop, sr_ratio=sr_ratio)
        # NOTE: drop path for stochastic depth, we shall see if this is better than dropout here
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = Mlp(in_features=dim, hidden_features=mlp_hidden_dim, act_layer=act_layer, drop=drop)

    def forward(self, x, H, W):
        x = x + self.drop_path(self.attn(self.norm1(x), H, W))
        x = x + self.drop_path(self.mlp(self.norm2(x), H, W))

        return x


class OverlapPatchEmbed(nn.Module):
    """ Image to Patch Embedding
    """

    def __init__(self, img_size=224, patch_size=7, stride=4, in_chans=3, embed_dim=768):
        super().__init__()
        patch_size = (patch_size, patch_size)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=stride,
                              padding=(patch_size[0] // 2, patch_size[1] // 2))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x):
        x = self.proj(x)
        _, _, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = self.norm(x)

        return x, H, W


class DWConv(nn.Module):
    def __init__(self, dim=768):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x, H, W):
        B, N, C = x.shape
        x = x.transpose(1, 2).view(B, C, H, W)
        x = self.dwconv(x)
        x = x.flatten(2).transpose(1, 2)

        return x


class MixVisionTransformer(nn.Module):
    def __init__(self, img_size=32, in_chans=3, embed_dims=[16, 32, 48], num_heads=[1, 2, 2],
                 mlp_ratios=[2, 2, 2], qkv_bias=True, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.1,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6), depths=[1, 1, 1], sr_ratios=[4, 2, 1]):
        super().__init__()
        self.depths = depths

        # patch_embed
        self.patch_embed1 = OverlapPatchEmbed(img_size=img_size, patch_size=7, stride=4, in_chans=in_chans,
                                              embed_dim=embed_dims[0])
        self.patch_embed2 = OverlapPatchEmbed(img_size=img_size // 4, patch_size=3, stride=2, in_chans=embed_dims[0],
                                              embed_dim=embed_dims[1])
        self.patch_embed3 = OverlapPatchEmbed(img_size=img_size // 8, patch_size=3, stride=2, in_chans=embed_dims[1],
                                              embed_dim=embed_dims[2])

        # transformer encoder
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]  # stochastic depth decay rule
        cur = 0
        self.block1 = nn.ModuleList([Block(
            dim=embed_dims[0], num_heads=num_heads[0], mlp_ratio=mlp_ratios[0], qkv_bias=qkv_bias,
            drop=drop_rate, attn_drop=attn_drop_rate, drop_path=dpr[cur + i], norm_layer=norm_layer,
            sr_ratio=sr_ratios[0])
            for i in range(depths[0])])
        self.norm1 = norm_layer(embed_dims[0])

        cur += depths[0]
        self.block2 = nn.ModuleList([Block(
            dim=embed_dims[1], num_heads=num_heads[1], mlp_ratio=mlp_ratios[1], qkv_bias=qkv_bias,
            drop=drop_rate, attn_drop=attn_drop_rate, drop_path=dpr[cur + i], norm_layer=norm_layer,
            sr_ratio=sr_ratios[1])
            for i in range(depths[1])])
        self.norm2 = norm_layer(embed_dims[1])

        cur += depths[1]
        self.block3 = nn.ModuleList([Block(
            dim=embed_dims[2], num_heads=num_heads[2], mlp_ratio=mlp_ratios[2], qkv_bias=qkv_bias,
            drop=drop_rate, attn_drop=attn_drop_rate, drop_path=dpr[cur + i], norm_layer=norm_layer,
            sr_ratio=sr_ratios[2])
            for i in range(depths[2])])
        self.norm3 = norm_layer(embed_dims[2])

        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)
        elif isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            fan_out //= m.groups
            m.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                m.bias.data.zero_()

    def forward_features(self, x):
        B = x.shape[0]
        outs = []

        # stage 1
        x, H, W = self.patch_embed1(x)
        for i, blk in enumerate(self.block1):
            x = blk(x, H, W)
        x = self.norm1(x)
        x = x.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
        outs.append(x)

        # stage 2
        x, H, W = self.patch_embed2(x)
        for i, blk in enumerate(self.block2):
            x = blk(x, H, W)
        x = self.norm2(x)
        x = x.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
        outs.append(x)

        # stage 3
        x, H, W = self.patch_embed3(x)
        for i, blk in enumerate(self.block3):
            x = blk(x, H, W)
        x = self.norm3(x)
        x = x.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
        outs.append(x)

        return outs

    def forward(self, x):
        x = self.forward_features(x)
        return x


class MLP(nn.Module):
    """
    Linear Embedding
    """
    def __init__(self, input_dim=2048, embed_dim=768):
        super().__init__()
        self.proj = nn.Linear(input_dim, embed_dim)

    def forward(self, x):
        x = x.flatten(2).transpose(1, 2)
        x = self.proj(x)
        return x


def resize(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return F.interpolate(input, size, scale_factor, mode, align_corners)


class SegFormerHead(nn.Module):
    def __init__(self, in_channels=[16, 32, 48], embedding_dim=32, num_classes=3, dropout_ratio=0.1):
        super().__init__()
        c1_in_channels, c2_in_channels, c3_in_channels = in_channels

        self.linear_c3 = MLP(input_dim=c3_in_channels, embed_dim=embedding_dim)
        self.linear_c2 = MLP(input_dim=c2_in_channels, embed_dim=embedding_dim)
        self.linear_c1 = MLP(input_dim=c1_in_channels, embed_dim=embedding_dim)

        # mmcv's ConvModule: conv without bias, BatchNorm, ReLU
        self.linear_fuse = nn.Sequential(
            nn.Conv2d(embedding_dim * 3, embedding_dim, kernel_size=1, bias=False),
            nn.BatchNorm2d(embedding_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout2d(dropout_ratio)
        self.linear_pred = nn.Conv2d(embedding_dim, num_classes, kernel_size=1)

    def forward(self, inputs):
        c1, c2, c3 = inputs

        ############## MLP decoder on C1-C3 ###########
        n, _, h, w = c3.shape

        _c3 = self.linear_c3(c3).permute(0, 2, 1).reshape(n, -1, c3.shape[2], c3.shape[3])
        _c3 = resize(_c3, size=c1.size()[2:], mode='bilinear', align_corners=False)

        _c2 = self.linear_c2(c2).permute(0, 2, 1).reshape(n, -1, c2.shape[2], c2.shape[3])
        _c2 = resize(_c2, size=c1.size()[2:], mode='bilinear', align_corners=False)

        _c1 = self.linear_c1(c1).permute(0, 2, 1).reshape(n, -1, c1.shape[2], c1.shape[3])

        _c = self.linear_fuse(torch.cat([_c3, _c2, _c1], dim=1))

        x = self.dropout(_c)
        x = self.linear_pred(x)

        return x


class SegFormer(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.backbone = MixVisionTransformer()
        self.decode_head = SegFormerHead(num_classes=num_classes)

    def forward(self, img):
        return self.decode_head(self.backbone(img))


# the data: a square (class 1) and a disc (class 2) in noisy colours; their outlines are 255, as
# VOC marks object borders to be ignored

SIZE = 32
yy, xx = np.mgrid[0:SIZE, 0:SIZE]


def make_sample():
    image = rng.normal(0.0, 0.2, size=(3, SIZE, SIZE)).astype(np.float32)
    label = np.zeros((SIZE, SIZE), dtype=np.int64)
    for cls in (1, 2):
        r = int(rng.integers(4, 8))
        cy, cx = (int(v) for v in rng.integers(r, SIZE - r, size=2))
        if cls == 1:
            inside = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
            border = inside & ((np.abs(yy - cy) == r) | (np.abs(xx - cx) == r))
        else:
            dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            inside = dist <= r
            border = inside & (dist > r - 1)
        image[:, inside] += rng.uniform(0.5, 1.0, size=(3, 1)).astype(np.float32)
        label[inside] = cls
        label[border] = 255
    return image, label


def make_set(n):
    samples = [make_sample() for _ in range(n)]
    return (torch.from_numpy(np.stack([s[0] for s in samples])),
            torch.from_numpy(np.stack([s[1] for s in samples])))


def fast_hist(gt, pred, n):
    k = (gt >= 0) & (gt < n)
    return torch.bincount(n * gt[k] + pred[k], minlength=n ** 2).reshape(n, n)


train_x, train_y = make_set(96)
test_x, test_y = make_set(32)
model = SegFormer(num_classes=3)
print(f"stage shapes {[tuple(o.shape) for o in model.backbone(train_x[:2])]}, "
      f"drop path rates {[round(b.drop_path.drop_prob, 3) if isinstance(b.drop_path, DropPath) else 0.0 for b in (model.backbone.block1[0], model.backbone.block2[0], model.backbone.block3[0])]}")

max_iters = 300
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.999), weight_decay=0.01)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: (1 - it / max_iters) ** 1.0)
for it in range(1, max_iters + 1):
    model.train()
    idx = torch.randint(0, len(train_x), (8,))
    img, gt = train_x[idx], train_y[idx]
    seg_logit = model(img)
    seg_logit = resize(seg_logit, size=gt.shape[1:], mode="bilinear", align_corners=False)
    loss = F.cross_entropy(seg_logit, gt, ignore_index=255)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    if it % 100 == 0:
        print(f"iter {it}: loss {loss.item():.4f} lr {scheduler.get_last_lr()[0]:.6f}")

model.eval()
with torch.no_grad():
    seg_logit = resize(model(test_x), size=test_y.shape[1:], mode="bilinear", align_corners=False)
    test_loss = F.cross_entropy(seg_logit, test_y, ignore_index=255).item()
    pred = seg_logit.argmax(dim=1)
    hist = fast_hist(test_y.flatten(), pred.flatten(), 3)
    iou = torch.diag(hist) / (hist.sum(0) + hist.sum(1) - torch.diag(hist))
    pixel_acc = (torch.diag(hist).sum() / hist.sum()).item()
print(f"test loss {test_loss:.4f}, pixel acc {pixel_acc:.4f}, IoU per class {[round(v, 4) for v in iou.tolist()]}, "
      f"{int(hist.sum())} labelled pixels")
print(f"FINAL loss={test_loss:.4f} pixel_acc={pixel_acc:.4f} miou={iou.mean().item():.4f}")
