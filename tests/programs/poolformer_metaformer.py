"""PoolFormer / MetaFormer (Yu et al. 2022) as a tiny classifier of synthetic textured images.

In the style of sail-sg/poolformer (`models/poolformer.py`) and timm: the `Pooling` token mixer
`self.pool(x) - x` with `nn.AvgPool2d(pool_size, stride=1, padding=pool_size // 2, count_include_pad=False)`,
`GroupNorm(1, num_channels)` as the channel-and-space LayerNorm, an `Mlp` of 1x1 `nn.Conv2d`s with
`nn.GELU` and `nn.Dropout`, `PoolFormerBlock` with layer scale
`self.layer_scale_1.unsqueeze(-1).unsqueeze(-1) * self.token_mixer(self.norm1(x))`, timm's `drop_path`
(`x.new_empty(shape).bernoulli_(keep_prob)`, `random_tensor.div_(keep_prob)`) with a linearly rising
`dpr` by `torch.linspace`, `basic_blocks` of `nn.Sequential(*blocks)`, overlapping `PatchEmbed` convs
(7x7 stride 4 padding 2 at the stem, 3x3 stride 2 padding 1 between stages), `self.apply(self._init_weights)`
with `trunc_normal_(m.weight, std=.02)` and `nn.init.constant_(m.bias, 0)`, the head on
`self.norm(x).mean([-2, -1])`, AdamW with a no-weight-decay parameter group (norms, biases, layer scales by
`p.ndim <= 1` and name), a cosine schedule with linear warm-up by `LambdaLR`, `clip_grad_norm_`,
`CrossEntropyLoss(label_smoothing=0.1)`, an `eval()` accuracy under `torch.no_grad()`.
Check: the pooling token mixer equals an explicit `F.unfold` average that excludes the padding
(a window sum divided by the unfolded ones-mask count).
"""
# ruff: noqa: UP034, B007  (the repository's spelling: torch.ones((dim)), for idx, block in enumerate(self.network))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

num_classes = 4
img_size = 24
n_train, n_test = 256, 128
batch_size = 32
epochs = 8
warmup_epochs = 1


# --- data: four texture classes (stripe orientation / checker / blob) with noise and random phase
def make_images(n):
    ys = rng.randint(0, num_classes, n)
    yy, xx = np.meshgrid(np.arange(img_size), np.arange(img_size), indexing="ij")
    imgs = np.zeros((n, 3, img_size, img_size), np.float32)
    for i, y in enumerate(ys):
        phase = rng.uniform(0, 2 * np.pi)
        freq = rng.uniform(0.5, 0.8)
        if y == 0:
            pat = np.sin(freq * xx + phase)
        elif y == 1:
            pat = np.sin(freq * yy + phase)
        elif y == 2:
            pat = np.sin(freq * xx + phase) * np.sin(freq * yy + phase)
        else:
            cy, cx = rng.uniform(6, 18, 2)
            pat = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40.0) * 2 - 0.5
        colour = rng.uniform(0.5, 1.0, 3)
        imgs[i] = colour[:, None, None] * pat[None] + rng.normal(0, 0.4, (3, img_size, img_size))
    return torch.from_numpy(imgs), torch.from_numpy(ys.astype(np.int64))


x_train, y_train = make_images(n_train)
x_test, y_test = make_images(n_test)


def drop_path(x, drop_prob: float = 0.0, training: bool = False):
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)


class PatchEmbed(nn.Module):
    """Patch embedding by an overlapping strided conv: [B, C, H, W] -> [B, C', H/stride, W/stride]."""

    def __init__(self, patch_size=16, stride=16, padding=0, in_chans=3, embed_dim=768, norm_layer=None):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=stride, padding=padding)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def forward(self, x):
        x = self.proj(x)
        x = self.norm(x)
        return x


class GroupNorm(nn.GroupNorm):
    """Group Normalization with 1 group: [B, C, H, W] normalised over C, H, W."""

    def __init__(self, num_channels, **kwargs):
        super().__init__(1, num_channels, **kwargs)


class Pooling(nn.Module):
    def __init__(self, pool_size=3):
        super().__init__()
        self.pool = nn.AvgPool2d(pool_size, stride=1, padding=pool_size // 2, count_include_pad=False)

    def forward(self, x):
        return self.pool(x) - x


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Conv2d(in_features, hidden_features, 1)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(hidden_features, out_features, 1)
        self.drop = nn.Dropout(drop)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop(x)
        x = self.fc2(x)
        x = self.drop(x)
        return x


class PoolFormerBlock(nn.Module):
    def __init__(self, dim, pool_size=3, mlp_ratio=4.0, act_layer=nn.GELU, norm_layer=GroupNorm, drop=0.0,
                 drop_path=0.0, use_layer_scale=True, layer_scale_init_value=1e-5):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.token_mixer = Pooling(pool_size=pool_size)
        self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = Mlp(in_features=dim, hidden_features=mlp_hidden_dim, act_layer=act_layer, drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.use_layer_scale = use_layer_scale
        if use_layer_scale:
            self.layer_scale_1 = nn.Parameter(layer_scale_init_value * torch.ones((dim)), requires_grad=True)
            self.layer_scale_2 = nn.Parameter(layer_scale_init_value * torch.ones((dim)), requires_grad=True)

    def forward(self, x):
        if self.use_layer_scale:
            x = x + self.drop_path(self.layer_scale_1.unsqueeze(-1).unsqueeze(-1) * self.token_mixer(self.norm1(x)))
            x = x + self.drop_path(self.layer_scale_2.unsqueeze(-1).unsqueeze(-1) * self.mlp(self.norm2(x)))
        else:
            x = x + self.drop_path(self.token_mixer(self.norm1(x)))
            x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


def basic_blocks(dim, index, layers, pool_size=3, mlp_ratio=4.0, act_layer=nn.GELU, norm_layer=GroupNorm,
                 drop_rate=0.0, drop_path_rate=0.0, use_layer_scale=True, layer_scale_init_value=1e-5):
    blocks = []
    for block_idx in range(layers[index]):
        block_dpr = drop_path_rate * (block_idx + sum(layers[:index])) / (sum(layers) - 1)
        blocks.append(PoolFormerBlock(dim, pool_size=pool_size, mlp_ratio=mlp_ratio, act_layer=act_layer,
                                      norm_layer=norm_layer, drop=drop_rate, drop_path=block_dpr,
                                      use_layer_scale=use_layer_scale, layer_scale_init_value=layer_scale_init_value))
    blocks = nn.Sequential(*blocks)
    return blocks


class PoolFormer(nn.Module):
    def __init__(self, layers, embed_dims=None, mlp_ratios=None, downsamples=None, pool_size=3,
                 norm_layer=GroupNorm, act_layer=nn.GELU, num_classes=1000, in_patch_size=7, in_stride=4,
                 in_pad=2, down_patch_size=3, down_stride=2, down_pad=1, drop_rate=0.0, drop_path_rate=0.0,
                 use_layer_scale=True, layer_scale_init_value=1e-5):
        super().__init__()
        self.num_classes = num_classes
        self.patch_embed = PatchEmbed(patch_size=in_patch_size, stride=in_stride, padding=in_pad,
                                      in_chans=3, embed_dim=embed_dims[0])
        network = []
        for i in range(len(layers)):
            stage = basic_blocks(embed_dims[i], i, layers, pool_size=pool_size, mlp_ratio=mlp_ratios[i],
                                 act_layer=act_layer, norm_layer=norm_layer, drop_rate=drop_rate,
                                 drop_path_rate=drop_path_rate, use_layer_scale=use_layer_scale,
                                 layer_scale_init_value=layer_scale_init_value)
            network.append(stage)
            if i >= len(layers) - 1:
                break
            if downsamples[i] or embed_dims[i] != embed_dims[i + 1]:
                network.append(PatchEmbed(patch_size=down_patch_size, stride=down_stride, padding=down_pad,
                                          in_chans=embed_dims[i], embed_dim=embed_dims[i + 1]))
        self.network = nn.ModuleList(network)
        self.norm = norm_layer(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self.cls_init_weights)

    def cls_init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward_embeddings(self, x):
        x = self.patch_embed(x)
        return x

    def forward_tokens(self, x):
        for idx, block in enumerate(self.network):
            x = block(x)
        return x

    def forward(self, x):
        x = self.forward_embeddings(x)
        x = self.forward_tokens(x)
        x = self.norm(x)
        cls_out = self.head(x.mean([-2, -1]))
        return cls_out


model = PoolFormer([2, 2, 2], embed_dims=[16, 24, 32], mlp_ratios=[4, 4, 4], downsamples=[True, True, True],
                   num_classes=num_classes, drop_path_rate=0.1, layer_scale_init_value=1e-2)
print(model.network[0][0].token_mixer.pool)
print(model.network[0][0].norm1)
n_params = sum(p.numel() for p in model.parameters())
dprs = [blk.drop_path.drop_prob if isinstance(blk.drop_path, DropPath) else 0.0
        for stage in model.network if isinstance(stage, nn.Sequential) for blk in stage]
print(f"parameters {n_params} blocks {len(dprs)} drop path max {max(dprs):.3f}")
ref_dpr = torch.linspace(0, 0.1, len(dprs))
dpr_err = (torch.tensor(dprs) - ref_dpr).abs().max().item()

# --- check: AvgPool2d(count_include_pad=False) - x equals an unfold window average over valid pixels
with torch.no_grad():
    xc = torch.randn(2, 5, 9, 7)
    mixer = Pooling(pool_size=3)
    pooled = mixer(xc)
    k, p = 3, 1
    B, C, H, W = xc.shape
    sums = F.unfold(xc, kernel_size=k, padding=p).view(B, C, k * k, H * W).sum(2).view(B, C, H, W)
    counts = F.unfold(torch.ones(1, 1, H, W), kernel_size=k, padding=p).sum(1).view(1, 1, H, W)
    explicit = sums / counts - xc
    pool_err = (pooled - explicit).abs().max().item()
    incl = F.avg_pool2d(xc, 3, 1, 1, count_include_pad=True)
    corner_gap = (incl - (pooled + xc))[..., 0, 0].abs().mean().item()
    pool5 = Pooling(pool_size=5)(xc)
    k5 = 5
    sums5 = F.unfold(xc, kernel_size=k5, padding=2).view(B, C, k5 * k5, H * W).sum(2).view(B, C, H, W)
    counts5 = F.unfold(torch.ones(1, 1, H, W), kernel_size=k5, padding=2).sum(1).view(1, 1, H, W)
    pool_err = max(pool_err, (pool5 - (sums5 / counts5 - xc)).abs().max().item())
print(f"pool mixer vs unfold err {pool_err:.2e}, corner count_include_pad gap {corner_gap:.3f}, "
      f"corner count {int(counts[0, 0, 0, 0])}")

# --- check: drop_path keeps whole samples and rescales by 1/keep_prob
dp = DropPath(0.5)
dp.train()
ones = torch.ones(64, 3, 2, 2)
dropped = dp(ones)
per_sample = dropped.view(64, -1)
dp_consistent = bool(((per_sample == 0).all(1) | (per_sample == 2).all(1)).all())
dp.eval()
dp_eval_same = bool(torch.equal(dp(ones), ones))
print(f"drop path whole-sample {dp_consistent}, eval identity {dp_eval_same}")

# --- AdamW with a no-decay group, as timm's param_groups_weight_decay
decay, no_decay = [], []
for name, param in model.named_parameters():
    if not param.requires_grad:
        continue
    if param.ndim <= 1 or name.endswith(".bias") or "layer_scale" in name:
        no_decay.append(param)
    else:
        decay.append(param)
optimizer = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0},
                               {"params": decay, "weight_decay": 0.05}], lr=4e-3, betas=(0.9, 0.999))
print(f"param groups decay {len(decay)} no_decay {len(no_decay)}")

steps_per_epoch = n_train // batch_size
total_steps = epochs * steps_per_epoch
warmup_steps = warmup_epochs * steps_per_epoch


def lr_lambda(step):
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)


def evaluate():
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        acc = (logits.argmax(1) == y_test).float().mean().item()
        loss = F.cross_entropy(logits, y_test).item()
    return loss, acc


init_loss, init_acc = evaluate()
losses = []
for epoch in range(epochs):
    model.train()
    perm = torch.randperm(n_train)
    running = 0.0
    for i in range(steps_per_epoch):
        idx = perm[i * batch_size:(i + 1) * batch_size]
        out = model(x_train[idx])
        loss = criterion(out, y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        scheduler.step()
        running += loss.item()
    losses.append(running / steps_per_epoch)
    if epoch % 2 == 1:
        test_loss, test_acc = evaluate()
        print(f"epoch {epoch + 1} train loss {losses[-1]:.4f} test loss {test_loss:.4f} acc {test_acc:.3f} "
              f"lr {scheduler.get_last_lr()[0]:.5f}")

final_loss, final_acc = evaluate()
ls_mean = torch.stack([blk.layer_scale_1.detach().abs().mean() for stage in model.network
                       if isinstance(stage, nn.Sequential) for blk in stage]).mean().item()
print(f"FINAL loss_first={losses[0]:.4f} loss_last={losses[-1]:.4f} init_test_loss={init_loss:.4f} "
      f"test_loss={final_loss:.4f} test_acc={final_acc:.4f} layer_scale={ls_mean:.4f} "
      f"pool_err={pool_err:.2e} dpr_err={dpr_err:.2e}")
