"""Vision Transformers Need Registers (Darcet et al., ICLR 2024) in facebookresearch/dinov2's layout.

A tiny ``DinoVisionTransformer`` with ``num_register_tokens``: ``PatchEmbed`` by a strided ``nn.Conv2d`` +
``flatten(2).transpose(1, 2)``, a cls token ``nn.Parameter(torch.zeros(1, 1, D))`` and
``self.register_tokens = nn.Parameter(torch.zeros(1, R, D)) if R else None``, initialised by
``init_weights`` (``trunc_normal_`` on ``pos_embed``, ``normal_(std=1e-6)`` on the cls and register
tokens, ``named_apply``-style ``trunc_normal_`` on every ``nn.Linear``). ``prepare_tokens_with_masks``
adds the position embedding to ``cat((cls, patches))`` and then splices the registers in with
``torch.cat((x[:, :1], self.register_tokens.expand(x.shape[0], -1, -1), x[:, 1:]), dim=1)`` (against the
paper's ``torch.cat((cls.expand(B, -1, -1), reg.expand(B, -1, -1), x), dim=1)``: must agree).
``forward_features`` returns dinov2's dict (``x_norm_clstoken``, ``x_norm_regtokens``,
``x_norm_patchtokens``) sliced by ``x[:, 1 + R:]``, and the linear head reads the cls token
``torch.cat``-ed with the mean patch token. Blocks are dinov2's pre-norm ``Attention`` (``qkv`` by
``reshape(B, N, 3, H, C // H).permute(2, 0, 3, 1, 4)``, ``q * self.scale @ k.transpose(-2, -1)``, an
``nn.Softmax(dim=-1)`` module whose maps a ``register_forward_hook`` reads), ``LayerScale`` and ``Mlp``.
Training: AdamW on a synthetic 4-way shape-in-noise task, ``torch.no_grad()`` evaluation.

Checked: with ``num_register_tokens=0`` the model equals a plain ViT (no register code at all) loaded
with the same ``state_dict`` (``torch.allclose``); the output ignores the register positions (a
forward hook on the last norm rewrites them and the logits stay ``torch.equal``, while rewriting a
patch token changes them); the hooked attention rows sum to one; test accuracy rises with training.
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

IMG, PATCH, CLASSES = 16, 4, 4


def make_images(n):
    images = 0.3 * rng.randn(n, 1, IMG, IMG).astype(np.float32)
    labels = rng.randint(0, CLASSES, size=n)
    for image, label in zip(images, labels):
        r, c = rng.randint(1, IMG - 7, size=2)
        if label == 0:
            image[0, r + 3, c:c + 6] += 2.5
        elif label == 1:
            image[0, r:r + 6, c + 3] += 2.5
        elif label == 2:
            image[0, np.arange(6) + r, np.arange(6) + c] += 2.5
        else:
            image[0, np.arange(6) + r, 5 - np.arange(6) + c] += 2.5
    return torch.from_numpy(images), torch.from_numpy(labels)


class PatchEmbed(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.patches_resolution = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.patches_resolution[0] * self.patches_resolution[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x):
        _, _, H, W = x.shape
        assert H % self.patch_size[0] == 0, f"Input image height {H} is not a multiple of patch height {self.patch_size[0]}"
        x = self.proj(x)  # B C H W
        x = x.flatten(2).transpose(1, 2)  # B HW C
        return x


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0, bias=True):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop(x)
        x = self.fc2(x)
        x = self.drop(x)
        return x


class LayerScale(nn.Module):
    def __init__(self, dim, init_values=1e-5, inplace=False):
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x.mul_(self.gamma) if self.inplace else x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, proj_bias=True, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.softmax = nn.Softmax(dim=-1)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        attn = self.softmax(attn)
        attn = self.attn_drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=True, init_values=None, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.ls1 = LayerScale(dim, init_values=init_values) if init_values else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values=init_values) if init_values else nn.Identity()

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        x = x + self.ls2(self.mlp(self.norm2(x)))
        return x


def init_weights_vit_timm(module, name=""):
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def named_apply(fn, module, name="", depth_first=True, include_root=False):
    if not depth_first and include_root:
        fn(module=module, name=name)
    for child_name, child_module in module.named_children():
        child_name = ".".join((name, child_name)) if name else child_name
        named_apply(fn=fn, module=child_module, name=child_name, depth_first=depth_first, include_root=True)
    if depth_first and include_root:
        fn(module=module, name=name)
    return module


class DinoVisionTransformer(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, depth=12, num_heads=12,
                 mlp_ratio=4.0, qkv_bias=True, init_values=None, num_register_tokens=0, num_classes=0):
        super().__init__()
        norm_layer = nn.LayerNorm
        self.num_features = self.embed_dim = embed_dim
        self.num_tokens = 1
        self.n_blocks = depth
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.num_register_tokens = num_register_tokens

        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        num_patches = self.patch_embed.num_patches

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + self.num_tokens, embed_dim))
        assert num_register_tokens >= 0
        self.register_tokens = (
            nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim)) if num_register_tokens else None
        )
        self.blocks = nn.ModuleList([
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                  init_values=init_values, norm_layer=norm_layer)
            for _ in range(depth)
        ])
        self.norm = norm_layer(embed_dim)
        self.head = nn.Linear(2 * embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights()

    def init_weights(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)
        named_apply(init_weights_vit_timm, self)

    def prepare_tokens_with_masks(self, x, masks=None):
        B, nc, w, h = x.shape
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + self.pos_embed
        if self.register_tokens is not None:
            x = torch.cat(
                (
                    x[:, :1],
                    self.register_tokens.expand(x.shape[0], -1, -1),
                    x[:, 1:],
                ),
                dim=1,
            )
        return x

    def forward_features(self, x, masks=None):
        x = self.prepare_tokens_with_masks(x, masks)
        for blk in self.blocks:
            x = blk(x)
        x_norm = self.norm(x)
        return {
            "x_norm_clstoken": x_norm[:, 0],
            "x_norm_regtokens": x_norm[:, 1:self.num_register_tokens + 1],
            "x_norm_patchtokens": x_norm[:, self.num_register_tokens + 1:],
            "x_prenorm": x,
            "masks": masks,
        }

    def forward(self, x):
        ret = self.forward_features(x)
        cls_token = ret["x_norm_clstoken"]
        patch_tokens = ret["x_norm_patchtokens"]
        linear_input = torch.cat([cls_token, patch_tokens.mean(dim=1)], dim=1)
        return self.head(linear_input)


class PlainViT(nn.Module):
    """The same network with no register code at all (the pre-registers dinov2)."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio=4.0, qkv_bias=True,
                 init_values=None, num_classes=0):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, init_values) for _ in range(depth)
        ])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(2 * embed_dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return self.head(torch.cat([x[:, 0], x[:, 1:].mean(dim=1)], dim=1))


def vit_tiny(**kwargs):
    return DinoVisionTransformer(img_size=IMG, patch_size=PATCH, in_chans=1, embed_dim=32, depth=2, num_heads=4,
                                 mlp_ratio=2.0, init_values=1.0, num_classes=CLASSES, **kwargs)


R = 4
train_x, train_y = make_images(768)
test_x, test_y = make_images(256)

# -- R = 0 is the plain ViT ---------------------------------------------------------------------------
model0 = vit_tiny(num_register_tokens=0)
plain = PlainViT(IMG, PATCH, 1, 32, 2, 4, mlp_ratio=2.0, init_values=1.0, num_classes=CLASSES)
missing, unexpected = plain.load_state_dict(model0.state_dict())
model0.eval()
plain.eval()
with torch.no_grad():
    out0 = model0(test_x[:32])
    out_plain = plain(test_x[:32])
plain_diff = (out0 - out_plain).abs().max().item()
print(f"R=0 register_tokens is None: {model0.register_tokens is None}  keys missing/unexpected: "
      f"{len(missing)}/{len(unexpected)}  max|dino - plain| {plain_diff:.2e}  allclose {torch.allclose(out0, out_plain)}")

# -- the model with registers ----------------------------------------------------------------------
model = vit_tiny(num_register_tokens=R)
n_params = sum(p.numel() for p in model.parameters())
print(f"registers {model.register_tokens.shape[1]}  register_tokens shape {tuple(model.register_tokens.shape)}  "
      f"parameters {n_params}")

# the paper's splice (registers after cls, position embedding on cls + patches only) agrees
with torch.no_grad():
    B = 8
    patches = model.patch_embed(test_x[:B])
    cls = model.cls_token + model.pos_embed[:, :1]
    reg = model.register_tokens
    x_paper = torch.cat((cls.expand(B, -1, -1), reg.expand(B, -1, -1), patches + model.pos_embed[:, 1:]), dim=1)
    x_dino = model.prepare_tokens_with_masks(test_x[:B])
splice_diff = (x_paper - x_dino).abs().max().item()
print(f"tokens {tuple(x_dino.shape)}  max|paper splice - dinov2 splice| {splice_diff:.2e}")

attn_maps = []


def save_attention(module, inputs, output):
    attn_maps.append(output.detach())


hooks = [blk.attn.softmax.register_forward_hook(save_attention) for blk in model.blocks]


def evaluate(net, x, y):
    net.eval()
    with torch.no_grad():
        logits = net(x)
        acc = (logits.argmax(dim=1) == y).float().mean().item()
    net.train()
    return acc


attn_maps.clear()
acc_before = evaluate(model, test_x, test_y)
print(f"attention maps {len(attn_maps)} of shape {tuple(attn_maps[0].shape)}")

optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
batch_size = 64
epochs = 12
for epoch in range(epochs):
    model.train()
    perm = torch.randperm(train_x.shape[0])
    total, count = 0.0, 0
    for i in range(0, train_x.shape[0], batch_size):
        idx = perm[i:i + batch_size]
        attn_maps.clear()
        logits = model(train_x[idx])
        loss = F.cross_entropy(logits, train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * idx.numel()
        count += idx.numel()
    if epoch % 2 == 1:
        print(f"epoch {epoch + 1}  train loss {total / count:.4f}  test acc {evaluate(model, test_x, test_y):.4f}")

attn_maps.clear()
acc_after = evaluate(model, test_x, test_y)
last = attn_maps[-1]
row_err = (last.sum(dim=-1) - 1).abs().max().item()
cls_to_reg = last[:, :, 0, 1:1 + R].sum(dim=-1).mean().item()
cls_to_patch = last[:, :, 0, 1 + R:].sum(dim=-1).mean().item()
print(f"attention rows sum to 1 (max err {row_err:.2e})  cls->registers {cls_to_reg:.4f}  cls->patches {cls_to_patch:.4f}")
for h in hooks:
    h.remove()

# -- the output ignores the register positions after the head slice -----------------------------------
model.eval()


def rewrite(positions):
    def hook(module, inputs, output):
        output = output.clone()
        output[:, positions] = 5.0 * torch.randn_like(output[:, positions])
        return output
    return hook


with torch.no_grad():
    ref = model(test_x[:64])
    ret = model.forward_features(test_x[:64])
    handle = model.norm.register_forward_hook(rewrite(slice(1, 1 + R)))
    out_reg = model(test_x[:64])
    handle.remove()
    handle = model.norm.register_forward_hook(rewrite(slice(1 + R, 2 + R)))
    out_patch = model(test_x[:64])
    handle.remove()
reg_unchanged = torch.equal(ref, out_reg)
patch_change = (ref - out_patch).abs().max().item()
print(f"regtokens {tuple(ret['x_norm_regtokens'].shape)} patchtokens {tuple(ret['x_norm_patchtokens'].shape)}  "
      f"registers rewritten: logits equal {reg_unchanged}  patch rewritten: max change {patch_change:.4f}")

print(f"test acc before {acc_before:.4f} after {acc_after:.4f}")
checks = (plain_diff < 1e-5) + (splice_diff < 1e-6) + reg_unchanged + (patch_change > 1e-3) + (row_err < 1e-5)
print(f"FINAL acc={acc_after:.4f} acc_gain={acc_after - acc_before:.4f} checks={int(checks)} "
      f"plain_diff={plain_diff:.6f} cls_to_reg={cls_to_reg:.4f} log_params={math.log(n_params):.4f}")
