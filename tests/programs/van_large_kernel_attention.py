"""Visual Attention Network (Visual-Attention-Network/VAN-Classification ``van.py``) on synthetic blob images.

Images are 3x32x32 noise with one bright Gaussian blob of random size and colour whose quadrant is
the class. The network keeps the reference's structure at toy width (four
stages, ``embed_dims=[16, 24, 32, 48]``, one block each): ``OverlapPatchEmbed`` (stride-4 7x7 conv, then
stride-2 3x3, padding ``patch_size // 2`` via timm's ``to_2tuple``, + ``nn.BatchNorm2d``), ``Block`` with
``BatchNorm2d`` norms, the spatial ``Attention`` (1x1 ``proj_1``, ``nn.GELU``, ``LKA``, 1x1 ``proj_2``,
``shorcut = x.clone()``), ``LKA`` (depthwise 5x5 ``conv0``, depthwise 7x7 ``conv_spatial`` with
``dilation=3, padding=9``, 1x1 ``conv1``, ``u * attn``), the ``Mlp`` of 1x1 convs around ``DWConv``,
``layer_scale_1``/``layer_scale_2`` parameters (``1e-2 * torch.ones((dim))``) applied through
``.unsqueeze(-1).unsqueeze(-1)``, timm's ``DropPath`` (``x.new_empty(shape).bernoulli_(keep_prob)``,
``div_(keep_prob)``) on a ``torch.linspace`` decay rule, the per-stage ``nn.LayerNorm`` on
``x.flatten(2).transpose(1, 2)`` and back by ``reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()``,
``setattr``/``getattr`` stage modules, ``self.apply(self._init_weights)`` (``trunc_normal_``,
fan-out normal init divided by ``groups``), ``@torch.jit.ignore`` ``no_weight_decay``, AdamW with
decay/no-decay groups and ``CosineAnnealingLR``.

Checked: the receptive field of one centre output pixel of ``LKA``'s attention branch (the non-zero
entries of ``torch.autograd.grad`` of that pixel with respect to the input) is exactly the 23x23 square
that 5x5 followed by 7x7 at dilation 3 predicts, and away from the borders the two depthwise convs equal
one dense 23x23 depthwise conv whose kernel is their composition; ``DropPath`` keeps or drops whole
samples and is the identity in eval mode; the training loss falls and held-out accuracy rises.
"""

# ruff: noqa: UP034  (the reference's own spelling: torch.ones((dim)))

import collections.abc
import math
import os
from itertools import repeat

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

CLASSES = 4
SIZE = 32


def make_blobs(n):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    images = 0.4 * rng.randn(n, 3, SIZE, SIZE).astype(np.float32)
    labels = rng.randint(0, CLASSES, size=n)
    for i in range(n):
        cy = rng.uniform(4, SIZE / 2 - 2) + SIZE / 2 * (labels[i] // 2)
        cx = rng.uniform(4, SIZE / 2 - 2) + SIZE / 2 * (labels[i] % 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2.5, 4.0) ** 2))
        images[i] += rng.uniform(0.5, 1.5, size=(3, 1, 1)) * blob
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


# ------------------------------------------------------------------------------------------ timm helpers
def _ntuple(n):
    def parse(x):
        if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
            return tuple(x)
        return tuple(repeat(x, n))
    return parse


to_2tuple = _ntuple(2)


def drop_path(x, drop_prob: float = 0., training: bool = False, scale_by_keep: bool = True):
    """Drop paths (Stochastic Depth) per sample (when applied in main path of residual blocks)."""
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
        super(DropPath, self).__init__()  # noqa: UP008
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self):
        return f'drop_prob={round(self.drop_prob, 3):0.3f}'


def trunc_normal_(tensor, mean=0., std=1., a=-2., b=2.):
    return nn.init.trunc_normal_(tensor, mean, std, a, b)


def _init_weights(m):
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


# ------------------------------------------------------------------------------------------ van.py
class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Conv2d(in_features, hidden_features, 1)
        self.dwconv = DWConv(hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(hidden_features, out_features, 1)
        self.drop = nn.Dropout(drop)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        _init_weights(m)

    def forward(self, x):
        x = self.fc1(x)
        x = self.dwconv(x)
        x = self.act(x)
        x = self.drop(x)
        x = self.fc2(x)
        x = self.drop(x)
        return x


class LKA(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv_spatial = nn.Conv2d(dim, dim, 7, stride=1, padding=9, groups=dim, dilation=3)
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        u = x.clone()
        attn = self.conv0(x)
        attn = self.conv_spatial(attn)
        attn = self.conv1(attn)

        return u * attn


class Attention(nn.Module):
    def __init__(self, d_model):
        super().__init__()

        self.proj_1 = nn.Conv2d(d_model, d_model, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = LKA(d_model)
        self.proj_2 = nn.Conv2d(d_model, d_model, 1)

    def forward(self, x):
        shorcut = x.clone()
        x = self.proj_1(x)
        x = self.activation(x)
        x = self.spatial_gating_unit(x)
        x = self.proj_2(x)
        x = x + shorcut
        return x


class Block(nn.Module):
    def __init__(self, dim, mlp_ratio=4., drop=0., drop_path=0., act_layer=nn.GELU):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = Attention(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

        self.norm2 = nn.BatchNorm2d(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = Mlp(in_features=dim, hidden_features=mlp_hidden_dim, act_layer=act_layer, drop=drop)
        layer_scale_init_value = 1e-2
        self.layer_scale_1 = nn.Parameter(
            layer_scale_init_value * torch.ones((dim)), requires_grad=True)
        self.layer_scale_2 = nn.Parameter(
            layer_scale_init_value * torch.ones((dim)), requires_grad=True)

        self.apply(self._init_weights)

    def _init_weights(self, m):
        _init_weights(m)

    def forward(self, x):
        x = x + self.drop_path(self.layer_scale_1.unsqueeze(-1).unsqueeze(-1) * self.attn(self.norm1(x)))
        x = x + self.drop_path(self.layer_scale_2.unsqueeze(-1).unsqueeze(-1) * self.mlp(self.norm2(x)))
        return x


class OverlapPatchEmbed(nn.Module):
    """ Image to Patch Embedding
    """

    def __init__(self, img_size=224, patch_size=7, stride=4, in_chans=3, embed_dim=768):
        super().__init__()
        patch_size = to_2tuple(patch_size)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=stride,
                              padding=(patch_size[0] // 2, patch_size[1] // 2))
        self.norm = nn.BatchNorm2d(embed_dim)

        self.apply(self._init_weights)

    def _init_weights(self, m):
        _init_weights(m)

    def forward(self, x):
        x = self.proj(x)
        _, _, H, W = x.shape
        x = self.norm(x)
        return x, H, W


class VAN(nn.Module):
    def __init__(self, img_size=224, in_chans=3, num_classes=1000, embed_dims=[64, 128, 256, 512],  # noqa: B006
                 mlp_ratios=[4, 4, 4, 4], drop_rate=0., drop_path_rate=0., norm_layer=nn.LayerNorm,  # noqa: B006
                 depths=[3, 4, 6, 3], num_stages=4, flag=False):  # noqa: B006
        super().__init__()
        if flag == False:  # noqa: E712
            self.num_classes = num_classes
        self.depths = depths
        self.num_stages = num_stages

        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]  # stochastic depth decay rule
        cur = 0

        for i in range(num_stages):
            patch_embed = OverlapPatchEmbed(img_size=img_size if i == 0 else img_size // (2 ** (i + 1)),
                                            patch_size=7 if i == 0 else 3,
                                            stride=4 if i == 0 else 2,
                                            in_chans=in_chans if i == 0 else embed_dims[i - 1],
                                            embed_dim=embed_dims[i])

            block = nn.ModuleList([Block(
                dim=embed_dims[i], mlp_ratio=mlp_ratios[i], drop=drop_rate, drop_path=dpr[cur + j])
                for j in range(depths[i])])
            norm = norm_layer(embed_dims[i])
            cur += depths[i]

            setattr(self, f"patch_embed{i + 1}", patch_embed)
            setattr(self, f"block{i + 1}", block)
            setattr(self, f"norm{i + 1}", norm)

        # classification head
        self.head = nn.Linear(embed_dims[3], num_classes) if num_classes > 0 else nn.Identity()

        self.apply(self._init_weights)

    def _init_weights(self, m):
        _init_weights(m)

    def freeze_patch_emb(self):
        self.patch_embed1.requires_grad = False

    @torch.jit.ignore
    def no_weight_decay(self):
        return {'pos_embed1', 'pos_embed2', 'pos_embed3', 'pos_embed4', 'cls_token'}  # has pos_embed may be better

    def get_classifier(self):
        return self.head

    def forward_features(self, x):
        B = x.shape[0]

        for i in range(self.num_stages):
            patch_embed = getattr(self, f"patch_embed{i + 1}")
            block = getattr(self, f"block{i + 1}")
            norm = getattr(self, f"norm{i + 1}")
            x, H, W = patch_embed(x)
            for blk in block:
                x = blk(x)
            x = x.flatten(2).transpose(1, 2)
            x = norm(x)
            if i != self.num_stages - 1:
                x = x.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()

        return x.mean(dim=1)

    def forward(self, x):
        x = self.forward_features(x)
        x = self.head(x)

        return x


class DWConv(nn.Module):
    def __init__(self, dim=768):
        super(DWConv, self).__init__()  # noqa: UP008
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x):
        x = self.dwconv(x)
        return x


# ------------------------------------------------------------------------------------------ LKA receptive field
dim, side = 4, 31
lka = LKA(dim)
for conv in (lka.conv0, lka.conv_spatial, lka.conv1):
    nn.init.normal_(conv.weight)
    nn.init.normal_(conv.bias)
image = torch.randn(1, dim, side, side, requires_grad=True)
attn = lka.conv1(lka.conv_spatial(lka.conv0(image)))
centre = side // 2
(grad,) = torch.autograd.grad(attn[0, :, centre, centre].sum(), image)
support = grad.abs().sum(1)[0] != 0
rows = torch.nonzero(support.any(1)).flatten()
cols = torch.nonzero(support.any(0)).flatten()
field = (rows.max() - rows.min() + 1).item(), (cols.max() - cols.min() + 1).item()
predicted = (5 - 1) + 3 * (7 - 1) + 1
square_ok = field == (predicted, predicted) and support.sum().item() == predicted * predicted
u_times_attn = lka(image)
(grad_u,) = torch.autograd.grad(u_times_attn[0, :, centre, centre].sum(), image)
gated_ok = torch.equal(grad_u.abs().sum(1)[0] != 0, support)
print(f"LKA receptive field of pixel ({centre}, {centre}): {field[0]}x{field[1]}, "
      f"{support.sum().item()} non-zeros (predicted {predicted}x{predicted}), u * attn the same: {gated_ok}")

with torch.no_grad():
    w0 = lka.conv0.weight  # (dim, 1, 5, 5)
    w1 = lka.conv_spatial.weight  # (dim, 1, 7, 7) at dilation 3
    dilated = torch.zeros(dim, 1, 19, 19)
    dilated[:, :, ::3, ::3] = w1
    # composing two cross-correlations: the 23x23 kernel is the 19x19 one correlated with the flipped 5x5
    composed = F.conv2d(F.pad(dilated, (4, 4, 4, 4)).transpose(0, 1), torch.flip(w0, [2, 3]), groups=dim)
    composed = composed.transpose(0, 1)
    bias = lka.conv_spatial.bias + lka.conv0.bias * w1.sum((1, 2, 3))
    dense = F.conv2d(image, composed, bias, padding=11, groups=dim)
    two_step = lka.conv_spatial(lka.conv0(image))
    inner = slice(11, side - 11)
    compose_err = (dense[..., inner, inner] - two_step[..., inner, inner]).abs().max().item()
print(f"composed kernel {tuple(composed.shape)}: interior max |dense - two convs| {compose_err:.2e}")

# ------------------------------------------------------------------------------------------ DropPath
dp = DropPath(0.5)
ones = torch.ones(64, 3, 4, 4)
kept = dp(ones)
per_sample = kept.flatten(1)
whole_samples = bool(((per_sample == 0).all(1) | (per_sample == 2).all(1)).all())
dp.eval()
eval_identity = dp(ones) is ones
print(f"DropPath(0.5): whole samples kept (x2) or dropped: {whole_samples}, "
      f"kept {int((per_sample[:, 0] != 0).sum())}/64, eval identity: {eval_identity}, {dp}")

# ------------------------------------------------------------------------------------------ training
train_x, train_y = make_blobs(256)
val_x, val_y = make_blobs(128)
model = VAN(img_size=SIZE, num_classes=CLASSES, embed_dims=[16, 24, 32, 48], mlp_ratios=[4, 4, 2, 2],
            drop_path_rate=0.1, depths=[1, 1, 1, 1])
print(f"parameters: {sum(p.numel() for p in model.parameters())}, drop paths: "
      f"{[round(b[0].drop_path.drop_prob, 3) for b in (model.block2, model.block3, model.block4)]}")

skip = model.no_weight_decay()
decay, no_decay = [], []
for name, param in model.named_parameters():
    if not param.requires_grad:
        continue
    if len(param.shape) == 1 or name.endswith(".bias") or name in skip:
        no_decay.append(param)
    else:
        decay.append(param)
optimizer = torch.optim.AdamW([{'params': no_decay, 'weight_decay': 0.},
                               {'params': decay, 'weight_decay': 0.05}], lr=3e-3)
epochs, batch_size = 6, 32
steps = epochs * (len(train_x) // batch_size)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
criterion = nn.CrossEntropyLoss()
print(f"param groups: {len(no_decay)} no-decay, {len(decay)} decay")


@torch.no_grad()
def evaluate():
    model.eval()
    logits = model(val_x)
    model.train()
    return criterion(logits, val_y).item(), (logits.argmax(1) == val_y).float().mean().item()


loss_start, acc_start = evaluate()
first_epoch_loss = None
for epoch in range(epochs):
    perm = torch.randperm(len(train_x))
    total, loss_sum = 0, 0.0
    for i in range(len(train_x) // batch_size):
        idx = perm[i * batch_size:(i + 1) * batch_size]
        loss = criterion(model(train_x[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * idx.numel()
        total += idx.numel()
    val_loss, val_acc = evaluate()
    if first_epoch_loss is None:
        first_epoch_loss = loss_sum / total
    print(f"epoch {epoch + 1}/{epochs}: train loss {loss_sum / total:.4f} val loss {val_loss:.4f} val acc {val_acc:.4f}")
last_epoch_loss = loss_sum / total
checks_ok = int(square_ok and gated_ok and compose_err < 1e-3 and whole_samples and eval_identity)
print(f"FINAL loss_first={first_epoch_loss:.4f} loss_last={last_epoch_loss:.4f} acc_start={acc_start:.4f} "
      f"acc_end={val_acc:.4f} field={support.sum().item()} checks_ok={checks_ok}")
