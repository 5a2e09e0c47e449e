"""MaxViT (Tu et al., ECCV 2022) in the layout of timm's maxxvit.py / google-research/maxvit, at toy size.

Synthetic 16x16 RGB images of four classes (horizontal stripes, vertical stripes, a checkerboard and a
centred blob, random phase, colour and noise) are classified by a stem (strided ``nn.Conv2d`` +
``nn.BatchNorm2d``) and two MaxViT blocks. Each block is timm's ``MaxxVitBlock``: an ``MbConvBlock``
(pre-``BatchNorm2d``, 1x1 expansion, depthwise 3x3, ``F.gelu(approximate='tanh')``, squeeze-excitation
by ``x.mean((2, 3), keepdim=True)`` and a sigmoid gate, 1x1 projection, ``DropPath`` by
``x.new_empty(shape).bernoulli_(keep_prob)`` + ``div_(keep_prob)``), then ``x.permute(0, 2, 3, 1)`` to
channels-last, a ``PartitionAttentionCl`` on local windows (``window_partition``/``window_reverse``) and
one on the dilated grid (``grid_partition``/``grid_reverse``), all by ``view``/``permute``/``contiguous``.
Attention is ``AttentionCl`` (``qkv(x).view(B, -1, heads, dim_head * 3).transpose(1, 2).chunk(3, dim=3)``)
with ``RelPosBias``: a ``relative_position_bias_table`` parameter indexed by a non-persistent
``relative_position_index`` buffer built by ``torch.stack(torch.meshgrid(..., indexing='ij')).flatten(1)``,
``coords[:, :, None] - coords[:, None, :]`` and in-place offsets; ``LayerScale``; an ``Mlp``. Training by
AdamW with ``CosineAnnealingLR``.

Checked: ``window_reverse(window_partition(x)) == x`` and ``grid_reverse(grid_partition(x)) == x``
exactly, that a window is the contiguous block ``x[:, i*p:(i+1)*p, j*p:(j+1)*p]`` and a grid cell the
strided ``x[:, i::H//g, j::W//g]``, the relative position index against a Python loop, the manual
softmax attention against ``F.scaled_dot_product_attention(attn_mask=bias)``, and held-out accuracy.
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
rng = np.random.RandomState(seed)

NUM_CLASSES = 4
IMG = 16


def make_images(n):
    ys = np.arange(IMG)[:, None] * np.ones((1, IMG))
    xs = np.ones((IMG, 1)) * np.arange(IMG)[None, :]
    images = np.zeros((n, 3, IMG, IMG), dtype=np.float32)
    labels = rng.randint(0, NUM_CLASSES, size=n)
    for i, c in enumerate(labels):
        period = rng.choice([4, 6])
        phase = rng.uniform(0, 2 * math.pi)
        if c == 0:
            pattern = np.sin(2 * math.pi * ys / period + phase)
        elif c == 1:
            pattern = np.sin(2 * math.pi * xs / period + phase)
        elif c == 2:
            pattern = np.sign(np.sin(2 * math.pi * ys / period + phase) * np.sin(2 * math.pi * xs / period + phase))
        else:
            cy, cx = rng.uniform(5, 11, size=2)
            pattern = 2 * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 8.0) - 0.5
        colour = rng.uniform(0.5, 1.5, size=(3, 1, 1))
        images[i] = colour * pattern[None] + 0.3 * rng.randn(3, IMG, IMG)
    return torch.from_numpy(images), torch.from_numpy(labels).long()


# --------------------------------------------------------------------------------- partition helpers (timm)
def window_partition(x, window_size):
    B, H, W, C = x.shape
    x = x.view(B, H // window_size[0], window_size[0], W // window_size[1], window_size[1], C)
    windows = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size[0], window_size[1], C)
    return windows


def window_reverse(windows, window_size, img_size):
    H, W = img_size
    C = windows.shape[-1]
    x = windows.view(-1, H // window_size[0], W // window_size[1], window_size[0], window_size[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, H, W, C)
    return x


def grid_partition(x, grid_size):
    B, H, W, C = x.shape
    x = x.view(B, grid_size[0], H // grid_size[0], grid_size[1], W // grid_size[1], C)
    windows = x.permute(0, 2, 4, 1, 3, 5).contiguous().view(-1, grid_size[0], grid_size[1], C)
    return windows


def grid_reverse(windows, grid_size, img_size):
    H, W = img_size
    C = windows.shape[-1]
    x = windows.view(-1, H // grid_size[0], W // grid_size[1], grid_size[0], grid_size[1], C)
    x = x.permute(0, 3, 1, 4, 2, 5).contiguous().view(-1, H, W, C)
    return x


def gen_relative_position_index(q_size):
    coords = torch.stack(torch.meshgrid(torch.arange(q_size[0]), torch.arange(q_size[1]), indexing="ij")).flatten(1)
    relative_coords = coords[:, :, None] - coords[:, None, :]  # 2, Wh*Ww, Wh*Ww
    relative_coords = relative_coords.permute(1, 2, 0)  # Wh*Ww, Wh*Ww, 2
    relative_coords[:, :, 0] += q_size[0] - 1  # shift to start from 0
    relative_coords[:, :, 1] += q_size[1] - 1
    relative_coords[:, :, 0] *= 2 * q_size[1] - 1
    return relative_coords.sum(-1)  # Wh*Ww, Wh*Ww


# ------------------------------------------------------------------------------------------------ modules
def drop_path(x, drop_prob: float = 0.0, training: bool = False, scale_by_keep: bool = True):
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # work with diff dim tensors, not just 2D ConvNets
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True):
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self):
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"


class GELUTanh(nn.Module):
    def forward(self, input):
        return F.gelu(input, approximate="tanh")


class SEModule(nn.Module):
    def __init__(self, channels, rd_ratio=0.25, act_layer=nn.SiLU):
        super().__init__()
        rd_channels = max(1, int(channels * rd_ratio))
        self.fc1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=True)
        self.act = act_layer(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=True)

    def forward(self, x):
        x_se = x.mean((2, 3), keepdim=True)
        x_se = self.fc1(x_se)
        x_se = self.act(x_se)
        x_se = self.fc2(x_se)
        return x * x_se.sigmoid()


class MbConvBlock(nn.Module):
    def __init__(self, in_chs, out_chs, expand_ratio=4.0, drop_path=0.0):
        super().__init__()
        mid_chs = int(out_chs * expand_ratio)
        self.shortcut = nn.Identity()
        self.pre_norm = nn.BatchNorm2d(in_chs)
        self.conv1_1x1 = nn.Conv2d(in_chs, mid_chs, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(mid_chs)
        self.act1 = GELUTanh()
        self.conv2_kxk = nn.Conv2d(mid_chs, mid_chs, 3, padding=1, groups=mid_chs, bias=False)
        self.norm2 = nn.BatchNorm2d(mid_chs)
        self.act2 = GELUTanh()
        self.se = SEModule(mid_chs, rd_ratio=0.25 / expand_ratio * 4)
        self.conv3_1x1 = nn.Conv2d(mid_chs, out_chs, 1, bias=True)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def init_weights(self):
        nn.init.zeros_(self.conv3_1x1.weight)  # timm's zero_init_last

    def forward(self, x):
        shortcut = self.shortcut(x)
        x = self.pre_norm(x)
        x = self.act1(self.norm1(self.conv1_1x1(x)))
        x = self.act2(self.norm2(self.conv2_kxk(x)))
        x = self.se(x)
        x = self.conv3_1x1(x)
        x = self.drop_path(x) + shortcut
        return x


class RelPosBias(nn.Module):
    def __init__(self, window_size, num_heads):
        super().__init__()
        self.window_size = window_size
        self.window_area = window_size[0] * window_size[1]
        self.bias_shape = (self.window_area,) * 2 + (num_heads,)
        num_relative_distance = (2 * window_size[0] - 1) * (2 * window_size[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(num_relative_distance, num_heads))
        self.register_buffer("relative_position_index", gen_relative_position_index(self.window_size).view(-1), persistent=False)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def get_bias(self) -> torch.Tensor:
        relative_position_bias = self.relative_position_bias_table[self.relative_position_index]
        relative_position_bias = relative_position_bias.view(self.bias_shape).permute(2, 0, 1)  # nH, Wh*Ww, Wh*Ww
        return relative_position_bias.unsqueeze(0).contiguous()

    def forward(self, attn, shared_rel_pos=None):
        return attn + self.get_bias()


class AttentionCl(nn.Module):
    def __init__(self, dim, dim_head=8, partition_size=(4, 4), fused_attn=False):
        super().__init__()
        self.num_heads = dim // dim_head
        self.dim_head = dim_head
        self.scale = dim_head**-0.5
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.rel_pos = RelPosBias(partition_size, self.num_heads)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim, bias=True)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x, shared_rel_pos=None):
        B = x.shape[0]
        restore_shape = x.shape[:-1]
        q, k, v = self.qkv(x).view(B, -1, self.num_heads, self.dim_head * 3).transpose(1, 2).chunk(3, dim=3)
        if self.fused_attn:
            attn_bias = self.rel_pos.get_bias()
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            q = q * self.scale
            attn = q @ k.transpose(-2, -1)
            attn = self.rel_pos(attn, shared_rel_pos=shared_rel_pos)
            attn = attn.softmax(dim=-1)
            attn = self.attn_drop(attn)
            x = attn @ v
        x = x.transpose(1, 2).reshape(restore_shape + (-1,))
        x = self.proj(x)
        x = self.proj_drop(x)
        return x


class LayerScale(nn.Module):
    def __init__(self, dim, init_values=1e-5, inplace=False):
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x.mul_(self.gamma) if self.inplace else x * self.gamma


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = GELUTanh()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class PartitionAttentionCl(nn.Module):
    def __init__(self, dim, partition_type="block", partition_size=(4, 4), drop_path=0.0):
        super().__init__()
        norm_layer = partial(nn.LayerNorm, eps=1e-5)
        self.partition_block = partition_type == "block"
        self.partition_size = partition_size
        self.norm1 = norm_layer(dim)
        self.attn = AttentionCl(dim, partition_size=partition_size)
        self.ls1 = LayerScale(dim, init_values=0.1)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=dim * 2)
        self.ls2 = LayerScale(dim, init_values=0.1)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def _partition_attn(self, x):
        img_size = x.shape[1:3]
        if self.partition_block:
            partitioned = window_partition(x, self.partition_size)
        else:
            partitioned = grid_partition(x, self.partition_size)
        partitioned = self.attn(partitioned)
        if self.partition_block:
            x = window_reverse(partitioned, self.partition_size, img_size)
        else:
            x = grid_reverse(partitioned, self.partition_size, img_size)
        return x

    def forward(self, x):
        x = x + self.drop_path1(self.ls1(self._partition_attn(self.norm1(x))))
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return x


class MaxxVitBlock(nn.Module):
    def __init__(self, dim, dim_out, partition_size=(4, 4), drop_path=0.0):
        super().__init__()
        self.conv = MbConvBlock(dim, dim_out, drop_path=drop_path)
        self.attn_block = PartitionAttentionCl(dim_out, "block", partition_size, drop_path=drop_path)
        self.attn_grid = PartitionAttentionCl(dim_out, "grid", partition_size, drop_path=drop_path)

    def init_weights(self):
        self.conv.init_weights()

    def forward(self, x):
        # NCHW format
        x = self.conv(x)
        x = x.permute(0, 2, 3, 1)  # to NHWC (channels-last)
        x = self.attn_block(x)
        x = self.attn_grid(x)
        x = x.permute(0, 3, 1, 2)  # back to NCHW
        return x


class MaxVit(nn.Module):
    def __init__(self, in_chans=3, num_classes=NUM_CLASSES, embed_dim=16, depth=2, drop_path_rate=0.1):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, embed_dim, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(embed_dim),
            GELUTanh(),
        )
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]
        self.stages = nn.Sequential(*[MaxxVitBlock(embed_dim, embed_dim, (4, 4), drop_path=dpr[i]) for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        for block in self.stages:
            block.init_weights()

    def forward_features(self, x):
        return self.stages(self.stem(x))

    def forward_head(self, x):
        x = x.mean((2, 3))
        return self.head(self.norm(x))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


# ------------------------------------------------------------------------------------- partition identities
probe = torch.randn(2, 8, 12, 5)
p = (4, 4)
win = window_partition(probe, p)
grid = grid_partition(probe, p)
print(f"window_partition {tuple(probe.shape)} -> {tuple(win.shape)}, grid_partition -> {tuple(grid.shape)}")
roundtrip_ok = torch.equal(window_reverse(win, p, probe.shape[1:3]), probe) and torch.equal(grid_reverse(grid, p, probe.shape[1:3]), probe)
window_ok = torch.equal(win[1 * 6 + 1 * 3 + 2], probe[1, 4:8, 8:12])  # batch 1, window row 1, column 2
grid_ok = torch.equal(grid[0 * 6 + 1 * 3 + 2], probe[0, 1::2, 2::3])  # batch 0, cell (1, 2) of a 2x3 stride
rpi = gen_relative_position_index((3, 4))
loop = torch.zeros(12, 12, dtype=torch.long)
for a in range(12):
    for b in range(12):
        dy, dx = a // 4 - b // 4, a % 4 - b % 4
        loop[a, b] = (dy + 2) * 7 + (dx + 3)
rpi_ok = torch.equal(rpi, loop) and int(rpi.max()) == 5 * 7 - 1
print(f"reverse(partition(x)) == x: {roundtrip_ok}, window block: {window_ok}, grid stride: {grid_ok}, rel index: {rpi_ok}")

attn = AttentionCl(16, partition_size=(4, 4))
nn.init.normal_(attn.rel_pos.relative_position_bias_table, std=1.0)
tokens = torch.randn(6, 4, 4, 16)
with torch.no_grad():
    manual = attn(tokens)
    attn.fused_attn = True
    fused = attn(tokens)
sdpa_diff = (manual - fused).abs().max().item()
print(f"manual softmax attention vs scaled_dot_product_attention: max diff {sdpa_diff:.2e}")

# --------------------------------------------------------------------------------------------------- training
train_x, train_y = make_images(384)
val_x, val_y = make_images(128)
model = MaxVit()
n_params = sum(p.numel() for p in model.parameters())
n_buffers = sum(1 for name, _ in model.named_buffers() if name.endswith("relative_position_index"))
print(f"MaxVit: {n_params} parameters, {n_buffers} relative_position_index buffers, state_dict has {len(model.state_dict())} entries")
decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "relative_position_bias_table" not in n]
no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1 or "relative_position_bias_table" in n]
optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=3e-3)
epochs, batch_size = 6, 32
steps_per_epoch = len(train_x) // batch_size
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(val_x)
    model.train()
    return F.cross_entropy(logits, val_y).item(), (logits.argmax(1) == val_y).float().mean().item()


first_val_loss, _ = evaluate()
for epoch in range(epochs):
    perm = torch.randperm(len(train_x))
    total = 0.0
    for i in range(steps_per_epoch):
        idx = perm[i * batch_size : (i + 1) * batch_size]
        loss = criterion(model(train_x[idx]), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
    val_loss, val_acc = evaluate()
    print(f"epoch {epoch}: train loss {total / steps_per_epoch:.4f}, val loss {val_loss:.4f}, val acc {val_acc:.4f}")

partition_ok = int(roundtrip_ok and window_ok and grid_ok and rpi_ok and sdpa_diff < 1e-5)
print(f"FINAL val_acc={val_acc:.4f} val_loss={val_loss:.4f} loss_drop={first_val_loss - val_loss:.4f} partition_ok={partition_ok}")
