"""timm's stochastic depth and layer scale (timm/layers/drop.py, timm/models/vision_transformer.py)
in a tiny MLP-Mixer (timm/models/mlp_mixer.py) trained on small images, then checked in eval mode.

``drop_path(x, drop_prob, training, scale_by_keep)`` as timm writes it: ``shape = (x.shape[0],) + (1,)
* (x.ndim - 1)``, ``random_tensor = x.new_empty(shape).bernoulli_(keep_prob)``,
``random_tensor.div_(keep_prob)``, ``x * random_tensor``; ``DropPath`` with ``extra_repr`` (``f'drop_prob=
{round(self.drop_prob,3):0.3f}'``) and ``nn.Identity()`` where the rate is 0; ``LayerScale``
(``self.gamma = nn.Parameter(init_values * torch.ones(dim))``, ``x.mul_(self.gamma) if self.inplace
else x * self.gamma``, the in-place form on an MLP's output inside the graph); the stochastic-depth
decay rule ``dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]``; ``MixerBlock``
with token mixing by ``self.norm1(x).transpose(1, 2)``, ``partial(nn.LayerNorm, eps=1e-6)``,
``to_2tuple`` MLP ratios, ``PatchEmbed`` by a strided ``nn.Conv2d`` + ``flatten(2).transpose(1, 2)``;
``model.eval()`` making two forwards equal, ``model.train()`` making them differ, and drop_path's
expectation, its kept samples (0 or ``1 / keep_prob``) and ``scale_by_keep=False``.

The data: 4 classes of 1x16x16 stripe/check patterns with noise, made with NumPy.
"""
# ruff: noqa: UP008  (timm's own super(DropPath, self))

import collections.abc
import os
from functools import partial
from itertools import repeat

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


# --- timm/layers/helpers.py ------------------------------------------------------------------------------
def _ntuple(n):
    def parse(x):
        if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
            return tuple(x)
        return tuple(repeat(x, n))
    return parse


to_2tuple = _ntuple(2)


# --- timm/layers/drop.py -----------------------------------------------------------------------------------
def drop_path(x, drop_prob: float = 0., training: bool = False, scale_by_keep: bool = True):
    """Drop paths (Stochastic Depth) per sample (when applied in main path of residual blocks).
    """
    if drop_prob == 0. or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # work with diff dim tensors, not just 2D ConvNets
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    """Drop paths (Stochastic Depth) per sample  (when applied in main path of residual blocks).
    """
    def __init__(self, drop_prob: float = 0., scale_by_keep: bool = True):
        super(DropPath, self).__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self):
        return f'drop_prob={round(self.drop_prob,3):0.3f}'


# --- timm/models/vision_transformer.py, timm/layers/mlp.py ---------------------------------------------------
class LayerScale(nn.Module):
    def __init__(self, dim, init_values=1e-5, inplace=False):
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x.mul_(self.gamma) if self.inplace else x * self.gamma


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop1(x)
        x = self.fc2(x)
        x = self.drop2(x)
        return x


class PatchEmbed(nn.Module):
    def __init__(self, img_size=16, patch_size=4, in_chans=1, embed_dim=32):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # BCHW -> BNC


# --- timm/models/mlp_mixer.py, with the ViT block's layer scale -------------------------------------------
class MixerBlock(nn.Module):
    def __init__(self, dim, seq_len, mlp_ratio=(0.5, 4.0), mlp_layer=Mlp, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                 act_layer=nn.GELU, drop=0., drop_path=0., init_values=None):
        super().__init__()
        tokens_dim, channels_dim = [int(x * dim) for x in to_2tuple(mlp_ratio)]
        self.norm1 = norm_layer(dim)
        self.mlp_tokens = mlp_layer(seq_len, tokens_dim, act_layer=act_layer, drop=drop)
        self.ls1 = LayerScale(dim, init_values=init_values) if init_values else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp_channels = mlp_layer(dim, channels_dim, act_layer=act_layer, drop=drop)
        self.ls2 = LayerScale(dim, init_values=init_values, inplace=True) if init_values else nn.Identity()

    def forward(self, x):
        x = x + self.drop_path(self.ls1(self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)))
        x = x + self.drop_path(self.ls2(self.mlp_channels(self.norm2(x))))
        return x


class MlpMixer(nn.Module):
    def __init__(self, num_classes=4, img_size=16, in_chans=1, patch_size=4, num_blocks=4, embed_dim=32,
                 mlp_ratio=(0.5, 4.0), drop_path_rate=0., init_values=None):
        super().__init__()
        self.stem = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, num_blocks)]  # stochastic depth decay rule
        self.blocks = nn.Sequential(*[
            MixerBlock(embed_dim, self.stem.num_patches, mlp_ratio, drop_path=dpr[i], init_values=init_values)
            for i in range(num_blocks)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.blocks(x)
        x = self.norm(x)
        return self.head(x.mean(dim=1))


# --- drop_path on its own -------------------------------------------------------------------------------------
ones = torch.ones(4000, 3, 2)
dropped = drop_path(ones, 0.25, training=True)
kept = dropped[:, 0, 0]
print("drop_path values", sorted(set(round(v, 4) for v in kept.unique().tolist())),
      "whole samples", torch.equal(dropped.amax((1, 2)), dropped.amin((1, 2))))
print(f"drop_path kept fraction {(kept > 0).float().mean().item():.2f} mean {dropped.mean().item():.2f}")
unscaled = drop_path(ones, 0.25, training=True, scale_by_keep=False)
print("scale_by_keep=False values", sorted(set(unscaled.unique().tolist())))
print("eval passes through", drop_path(ones, 0.25, training=False) is ones, "all dropped",
      drop_path(ones[:8], 1.0, training=True).abs().sum().item())
layer_scale = LayerScale(3, init_values=0.1, inplace=True)
inputs = torch.randn(2, 3)
output = layer_scale(inputs)
print("inplace LayerScale returns its input", output is inputs, output.shape)

# --- the data ---------------------------------------------------------------------------------------------
rng = np.random.RandomState(0)
grid = np.arange(16)
patterns = np.stack([
    np.tile(np.sin(grid * 0.8)[None, :], (16, 1)),  # vertical stripes
    np.tile(np.sin(grid * 0.8)[:, None], (1, 16)),  # horizontal stripes
    np.sign(np.sin(grid * 0.8)[:, None] * np.sin(grid * 0.8)[None, :]),  # checks
    np.sin((grid[:, None] + grid[None, :]) * 0.6),  # diagonal stripes
]).astype(np.float32)
labels_np = rng.randint(0, 4, size=384)
shifts = rng.randint(0, 8, size=384)
images_np = np.stack([np.roll(patterns[c], s, axis=1) for c, s in zip(labels_np, shifts)])[:, None]
images_np = images_np + 1.2 * rng.randn(*images_np.shape).astype(np.float32)
x_all, y_all = torch.from_numpy(images_np.astype(np.float32)), torch.from_numpy(labels_np).long()
x_train, y_train, x_val, y_val = x_all[:320], y_all[:320], x_all[320:], y_all[320:]

# --- the model --------------------------------------------------------------------------------------------
model = MlpMixer(num_classes=4, num_blocks=4, embed_dim=32, drop_path_rate=0.2, init_values=0.1)
print([type(block.drop_path).__name__ for block in model.blocks])
print(model.blocks[2].drop_path, model.blocks[3].drop_path)
print("gamma", tuple(model.blocks[1].ls1.gamma.shape), model.blocks[1].ls2.inplace,
      sum(p.numel() for p in model.parameters()))

decay, no_decay = [], []
for name, param in model.named_parameters():
    (no_decay if param.ndim <= 1 or name.endswith(".gamma") else decay).append(param)
optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.}],
                              lr=3e-3)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=8 * 10)

EPOCHS, BATCH = 8, 32
for epoch in range(EPOCHS):
    model.train()
    order = torch.randperm(len(x_train))
    total, correct = 0.0, 0
    for step in range(len(x_train) // BATCH):
        index = order[step * BATCH:(step + 1) * BATCH]
        logits = model(x_train[index])
        loss = F.cross_entropy(logits, y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
        correct += (logits.argmax(-1) == y_train[index]).sum().item()
    if epoch % 2 == 1:
        print(f"epoch {epoch} train_loss {total / (len(x_train) // BATCH):.4f} "
              f"train_acc {correct / len(x_train):.3f}")

# eval mode: no path is dropped, so two forwards agree; train mode draws new paths each time
model.eval()
with torch.no_grad():
    first, second = model(x_val), model(x_val)
    val_loss = F.cross_entropy(first, y_val).item()
    val_acc = (first.argmax(-1) == y_val).float().mean().item()
model.train()
with torch.no_grad():
    train_first, train_second = model(x_val), model(x_val)
print("eval deterministic", torch.equal(first, second), "train differs", not torch.equal(train_first, train_second))
gammas = [block.ls2.gamma.abs().mean().item() for block in model.blocks]
print("layer scale |gamma| per block", [f"{g:.3f}" for g in gammas])

print(f"FINAL val_loss={val_loss:.4f} val_acc={val_acc:.4f} train_loss={total / (len(x_train) // BATCH):.4f} "
      f"kept_fraction={(kept > 0).float().mean().item():.4f} mean_gamma={sum(gammas) / len(gammas):.4f}")
