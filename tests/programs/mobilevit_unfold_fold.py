"""MobileViT (Mehta & Rastegari, ICLR 2022) in the apple/ml-cvnets layout, on synthetic texture images.

Images are 3x20x20 with one of four noisy textures (horizontal, vertical and diagonal stripes, a
checkerboard) at a random phase and contrast. The network keeps the reference's structure at toy width: a
strided ``conv_3x3`` stem with ``nn.SiLU``, MobileNetV2 ``InvertedResidual`` blocks (1x1 expand, 3x3
depthwise with ``groups=hidden_dim``, 1x1 linear projection, ``use_res_connect`` when the stride is 1 and
the widths match), and a ``MobileViTBlock``: ``local_rep`` (3x3 conv + 1x1 conv), ``unfolding`` of the
feature map into ``[B * P, N, C]`` patches by ``reshape``/``transpose`` exactly as ml-cvnets writes it, a
pre-norm ``TransformerEncoder`` over the patches (ml-cvnets' ``MultiHeadAttention`` with a fused
``qkv_proj``, ``qkv.transpose(1, 3).contiguous()``, ``query * self.scaling``), ``folding`` back, the
``conv_proj`` 1x1 conv and the ``fusion`` 3x3 conv over ``torch.cat((res, fm), dim=1)``. The 5x5 map
under 2x2 patches is not divisible, so ``unfolding``/``folding`` go through ``F.interpolate(...,
mode="bilinear", align_corners=False)`` as in the reference. Training is AdamW + ``CosineAnnealingLR``
with ``CrossEntropyLoss(label_smoothing=0.1)``.

Checked: held-out accuracy; that the reshape/transpose ``unfolding`` equals MobileViTv2's
``F.unfold(kernel_size=patch, stride=patch)`` route (``unfolding_pytorch``) after a ``permute``, and that
``folding`` equals ``F.fold``; that ``fold(unfold(x)) == x`` and ``unfold(fold(p)) == p`` by
``torch.equal``, for both routes; and that a loss's gradient through either route is the same.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

NUM_CLASSES = 4
SIZE = 20


def make_images(n):
    yy, xx = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    labels = rng.randint(0, NUM_CLASSES, size=n)
    images = np.zeros((n, 3, SIZE, SIZE), dtype=np.float32)
    for i, label in enumerate(labels):
        period = rng.uniform(3.0, 6.0)
        phase = rng.uniform(0, 2 * np.pi)
        if label == 0:
            pattern = np.sin(2 * np.pi * yy / period + phase)
        elif label == 1:
            pattern = np.sin(2 * np.pi * xx / period + phase)
        elif label == 2:
            pattern = np.sin(2 * np.pi * (xx + yy) / (period * 1.4) + phase)
        else:
            pattern = np.sign(np.sin(2 * np.pi * xx / period + phase) * np.sin(2 * np.pi * yy / period + phase))
        colour = rng.uniform(0.5, 1.5, size=(3, 1, 1))
        images[i] = colour * pattern[None] + rng.normal(0, 0.6, size=(3, SIZE, SIZE))
    return torch.from_numpy(images), torch.from_numpy(labels).long()


def make_divisible(v, divisor=8, min_value=None):
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvLayer(nn.Sequential):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, use_norm=True, use_act=True):
        padding = (kernel_size - 1) // 2
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=not use_norm)]
        if use_norm:
            layers.append(nn.BatchNorm2d(out_channels, momentum=0.1))
        if use_act:
            layers.append(nn.SiLU(inplace=False))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        assert stride in [1, 2]
        hidden_dim = make_divisible(int(round(in_channels * expand_ratio)), 8)
        block = nn.Sequential()
        if expand_ratio != 1:
            block.add_module(name="exp_1x1", module=ConvLayer(in_channels, hidden_dim, kernel_size=1))
        block.add_module(name="conv_3x3", module=ConvLayer(hidden_dim, hidden_dim, kernel_size=3, stride=stride, groups=hidden_dim))
        block.add_module(name="red_1x1", module=ConvLayer(hidden_dim, out_channels, kernel_size=1, use_act=False))
        self.block = block
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.exp = expand_ratio
        self.stride = stride
        self.use_res_connect = self.stride == 1 and in_channels == out_channels

    def forward(self, x):
        if self.use_res_connect:
            return x + self.block(x)
        return self.block(x)


class MultiHeadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, attn_dropout=0.0, bias=True):
        super().__init__()
        assert embed_dim % num_heads == 0
        self.qkv_proj = nn.Linear(in_features=embed_dim, out_features=3 * embed_dim, bias=bias)
        self.attn_dropout = nn.Dropout(p=attn_dropout)
        self.out_proj = nn.Linear(in_features=embed_dim, out_features=embed_dim, bias=bias)
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim ** -0.5
        self.softmax = nn.Softmax(dim=-1)
        self.num_heads = num_heads
        self.embed_dim = embed_dim

    def forward(self, x_q):
        b_sz, n_patches, in_channels = x_q.shape
        # [N, P, C] --> [N, P, 3, h, C]
        qkv = self.qkv_proj(x_q).reshape(b_sz, n_patches, 3, self.num_heads, -1)
        # [N, P, 3, h, C] --> [N, h, 3, P, C]
        qkv = qkv.transpose(1, 3).contiguous()
        query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        query = query * self.scaling
        key = key.transpose(-1, -2)
        attn = torch.matmul(query, key)
        attn = self.softmax(attn)
        attn = self.attn_dropout(attn)
        out = torch.matmul(attn, value)
        out = out.transpose(1, 2).reshape(b_sz, n_patches, -1)
        out = self.out_proj(out)
        return out


class TransformerEncoder(nn.Module):
    def __init__(self, embed_dim, ffn_latent_dim, num_heads=2, attn_dropout=0.0, dropout=0.1, ffn_dropout=0.0):
        super().__init__()
        self.pre_norm_mha = nn.Sequential(
            nn.LayerNorm(embed_dim),
            MultiHeadAttention(embed_dim, num_heads, attn_dropout=attn_dropout),
            nn.Dropout(p=dropout),
        )
        self.pre_norm_ffn = nn.Sequential(
            nn.LayerNorm(embed_dim),
            nn.Linear(embed_dim, ffn_latent_dim),
            nn.SiLU(),
            nn.Dropout(p=ffn_dropout),
            nn.Linear(ffn_latent_dim, embed_dim),
            nn.Dropout(p=dropout),
        )

    def forward(self, x):
        res = x
        x = self.pre_norm_mha(x)
        x = x + res
        x = x + self.pre_norm_ffn(x)
        return x


class MobileViTBlock(nn.Module):
    def __init__(self, in_channels, transformer_dim, ffn_dim, n_transformer_blocks=1, head_dim=8,
                 dropout=0.1, patch_h=2, patch_w=2, conv_ksize=3):
        super().__init__()
        conv_3x3_in = ConvLayer(in_channels, in_channels, kernel_size=conv_ksize)
        conv_1x1_in = ConvLayer(in_channels, transformer_dim, kernel_size=1, use_norm=False, use_act=False)
        conv_1x1_out = ConvLayer(transformer_dim, in_channels, kernel_size=1)
        conv_3x3_out = ConvLayer(2 * in_channels, in_channels, kernel_size=conv_ksize)
        self.local_rep = nn.Sequential()
        self.local_rep.add_module(name="conv_3x3", module=conv_3x3_in)
        self.local_rep.add_module(name="conv_1x1", module=conv_1x1_in)
        num_heads = transformer_dim // head_dim
        global_rep = [TransformerEncoder(transformer_dim, ffn_dim, num_heads=num_heads, dropout=dropout)
                      for _ in range(n_transformer_blocks)]
        global_rep.append(nn.LayerNorm(transformer_dim))
        self.global_rep = nn.Sequential(*global_rep)
        self.conv_proj = conv_1x1_out
        self.fusion = conv_3x3_out
        self.patch_h = patch_h
        self.patch_w = patch_w
        self.patch_area = self.patch_w * self.patch_h
        self.cnn_in_dim = in_channels
        self.cnn_out_dim = transformer_dim

    def unfolding(self, feature_map):
        patch_w, patch_h = self.patch_w, self.patch_h
        patch_area = int(patch_w * patch_h)
        batch_size, in_channels, orig_h, orig_w = feature_map.shape

        new_h = int(math.ceil(orig_h / self.patch_h) * self.patch_h)
        new_w = int(math.ceil(orig_w / self.patch_w) * self.patch_w)

        interpolate = False
        if new_w != orig_w or new_h != orig_h:
            # Note: Padding can be done, but then it needs to be handled in attention function.
            feature_map = F.interpolate(feature_map, size=(new_h, new_w), mode="bilinear", align_corners=False)
            interpolate = True

        # number of patches along width and height
        num_patch_w = new_w // patch_w  # n_w
        num_patch_h = new_h // patch_h  # n_h
        num_patches = num_patch_h * num_patch_w  # N

        # [B, C, H, W] --> [B * C * n_h, p_h, n_w, p_w]
        reshaped_fm = feature_map.reshape(batch_size * in_channels * num_patch_h, patch_h, num_patch_w, patch_w)
        # [B * C * n_h, p_h, n_w, p_w] --> [B * C * n_h, n_w, p_h, p_w]
        transposed_fm = reshaped_fm.transpose(1, 2)
        # [B * C * n_h, n_w, p_h, p_w] --> [B, C, N, P] where P = p_h * p_w and N = n_h * n_w
        reshaped_fm = transposed_fm.reshape(batch_size, in_channels, num_patches, patch_area)
        # [B, C, N, P] --> [B, P, N, C]
        transposed_fm = reshaped_fm.transpose(1, 3)
        # [B, P, N, C] --> [BP, N, C]
        patches = transposed_fm.reshape(batch_size * patch_area, num_patches, -1)

        info_dict = {
            "orig_size": (orig_h, orig_w),
            "batch_size": batch_size,
            "interpolate": interpolate,
            "total_patches": num_patches,
            "num_patches_w": num_patch_w,
            "num_patches_h": num_patch_h,
        }
        return patches, info_dict

    def folding(self, patches, info_dict):
        n_dim = patches.dim()
        assert n_dim == 3, f"Tensor should be of shape BPxNxC. Got: {patches.shape}"
        # [BP, N, C] --> [B, P, N, C]
        patches = patches.contiguous().view(info_dict["batch_size"], self.patch_area, info_dict["total_patches"], -1)

        batch_size, pixels, num_patches, channels = patches.size()
        num_patch_h = info_dict["num_patches_h"]
        num_patch_w = info_dict["num_patches_w"]

        # [B, P, N, C] --> [B, C, N, P]
        patches = patches.transpose(1, 3)

        # [B, C, N, P] --> [B*C*n_h, n_w, p_h, p_w]
        feature_map = patches.reshape(batch_size * channels * num_patch_h, num_patch_w, self.patch_h, self.patch_w)
        # [B*C*n_h, n_w, p_h, p_w] --> [B*C*n_h, p_h, n_w, p_w]
        feature_map = feature_map.transpose(1, 2)
        # [B*C*n_h, p_h, n_w, p_w] --> [B, C, H, W]
        feature_map = feature_map.reshape(batch_size, channels, num_patch_h * self.patch_h, num_patch_w * self.patch_w)
        if info_dict["interpolate"]:
            feature_map = F.interpolate(feature_map, size=info_dict["orig_size"], mode="bilinear", align_corners=False)
        return feature_map

    # MobileViTv2's routes (ml-cvnets mobilevit_block.py, MobileViTBlockv2)
    def unfolding_pytorch(self, feature_map):
        batch_size, in_channels, img_h, img_w = feature_map.shape
        # [B, C, H, W] --> [B, C, P, N]
        patches = F.unfold(feature_map, kernel_size=(self.patch_h, self.patch_w), stride=(self.patch_h, self.patch_w))
        patches = patches.reshape(batch_size, in_channels, self.patch_h * self.patch_w, -1)
        return patches, (img_h, img_w)

    def folding_pytorch(self, patches, output_size):
        batch_size, in_dim, patch_size, n_patches = patches.shape
        # [B, C, P, N]
        patches = patches.reshape(batch_size, in_dim * patch_size, n_patches)
        feature_map = F.fold(patches, output_size=output_size, kernel_size=(self.patch_h, self.patch_w),
                             stride=(self.patch_h, self.patch_w))
        return feature_map

    def forward(self, x):
        res = x
        fm = self.local_rep(x)
        # convert feature map to patches
        patches, info_dict = self.unfolding(fm)
        # learn global representations
        for transformer_layer in self.global_rep:
            patches = transformer_layer(patches)
        # [B x Patch x Patches x C] --> [B x C x Patches x Patch]
        fm = self.folding(patches=patches, info_dict=info_dict)
        fm = self.conv_proj(fm)
        fm = self.fusion(torch.cat((res, fm), dim=1))
        return fm


class MobileViT(nn.Module):
    def __init__(self, num_classes=NUM_CLASSES):
        super().__init__()
        self.conv_1 = ConvLayer(3, 8, kernel_size=3, stride=2)
        self.layer_1 = nn.Sequential(InvertedResidual(8, 8, stride=1, expand_ratio=2))
        self.layer_2 = nn.Sequential(
            InvertedResidual(8, 16, stride=2, expand_ratio=2),
            InvertedResidual(16, 16, stride=1, expand_ratio=2),
        )
        self.layer_3 = nn.Sequential(MobileViTBlock(16, transformer_dim=16, ffn_dim=32, n_transformer_blocks=1,
                                                    head_dim=8, dropout=0.1, patch_h=2, patch_w=2))
        self.conv_1x1_exp = ConvLayer(16, 32, kernel_size=1)
        self.classifier = nn.Sequential()
        self.classifier.add_module(name="global_pool", module=nn.AdaptiveAvgPool2d(1))
        self.classifier.add_module(name="flatten", module=nn.Flatten())
        self.classifier.add_module(name="dropout", module=nn.Dropout(p=0.1, inplace=True))
        self.classifier.add_module(name="fc", module=nn.Linear(32, num_classes, bias=True))
        self.reset_parameters()

    def reset_parameters(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.conv_1(x)
        x = self.layer_1(x)
        x = self.layer_2(x)
        x = self.layer_3(x)
        x = self.conv_1x1_exp(x)
        return self.classifier(x)


# ------------------------------------------------------------------------------------ unfold / fold agreement
block = MobileViTBlock(6, transformer_dim=8, ffn_dim=16, head_dim=4, patch_h=2, patch_w=3)
B, C, H, W = 2, 6, 8, 9
x = torch.randn(B, C, H, W)
P, N = block.patch_area, (H // 2) * (W // 3)

patches, info = block.unfolding(x)
patches_pt, out_size = block.unfolding_pytorch(x)
# [B, C, P, N] --> [B, P, N, C] --> [BP, N, C]
as_v1 = patches_pt.permute(0, 2, 3, 1).reshape(B * P, N, C)
unfold_agree = torch.equal(patches, as_v1)
folded = block.folding(patches, info)
folded_pt = block.folding_pytorch(patches_pt, out_size)
fold_agree = torch.equal(folded, folded_pt)
roundtrip_x = torch.equal(folded, x) and torch.equal(folded_pt, x)

p = torch.randn(B * P, N, C)
back, _ = block.unfolding(block.folding(p, info))
p_pt = torch.randn(B, C, P, N)
back_pt, _ = block.unfolding_pytorch(block.folding_pytorch(p_pt, (H, W)))
roundtrip_p = torch.equal(back, p) and torch.equal(back_pt, p_pt)
print(f"patches {tuple(patches.shape)} vs unfold {tuple(patches_pt.shape)}: unfold agree {unfold_agree}, "
      f"fold agree {fold_agree}")
print(f"fold(unfold(x)) == x: {roundtrip_x}, unfold(fold(p)) == p: {roundtrip_p}")

# gradients through either route
xg = torch.randn(B, C, H, W, requires_grad=True)
weights = torch.randn(B * P, N, C)
pv1, _ = block.unfolding(xg)
(g_v1,) = torch.autograd.grad((pv1.tanh() * weights).sum(), xg)
pv2, _ = block.unfolding_pytorch(xg)
pv2 = pv2.permute(0, 2, 3, 1).reshape(B * P, N, C)
(g_v2,) = torch.autograd.grad((pv2.tanh() * weights).sum(), xg)
grad_agree = torch.allclose(g_v1, g_v2, atol=1e-6)

# a size the patches do not divide goes through bilinear interpolation both ways
odd = torch.randn(1, 6, 7, 7)
odd_patches, odd_info = block.unfolding(odd)
odd_back = block.folding(odd_patches, odd_info)
resized = F.interpolate(odd, size=(8, 9), mode="bilinear", align_corners=False)
odd_ok = (odd_info["interpolate"] and tuple(odd_back.shape) == (1, 6, 7, 7)
          and torch.allclose(odd_patches, block.unfolding(resized)[0]))
print(f"grad agree {grad_agree}, 7x7 interpolated {odd_info['interpolate']} -> {tuple(odd_back.shape)} ok {odd_ok}")
routes_ok = int(unfold_agree and fold_agree and roundtrip_x and roundtrip_p and grad_agree and odd_ok)

# --------------------------------------------------------------------------------------------------- training
x_train, y_train = make_images(320)
x_test, y_test = make_images(160)
mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
std = x_train.std(dim=(0, 2, 3), keepdim=True)
x_train = (x_train - mean) / std
x_test = (x_test - mean) / std

model = MobileViT()
n_params = sum(p.numel() for p in model.parameters())
print(f"MobileViT parameters: {n_params}")
EPOCHS = 8
BATCH = 32
optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.01)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)


@torch.no_grad()
def evaluate(xs, ys):
    model.eval()
    logits = model(xs)
    return (logits.argmax(dim=1) == ys).float().mean().item()


for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(x_train))
    total, count = 0.0, 0
    for i in range(0, len(x_train), BATCH):
        idx = perm[i:i + BATCH]
        logits = model(x_train[idx])
        loss = criterion(logits, y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
        count += len(idx)
    scheduler.step()
    if epoch % 2 == 1:
        print(f"epoch {epoch + 1}: loss {total / count:.4f} test acc {evaluate(x_test, y_test):.4f}")

train_loss = total / count
test_acc = evaluate(x_test, y_test)
print(f"FINAL test_acc={test_acc:.4f} train_loss={train_loss:.4f} routes_ok={routes_ok}")
