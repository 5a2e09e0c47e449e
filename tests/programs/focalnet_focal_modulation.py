"""FocalNet (microsoft/FocalNet) focal modulation blocks on a toy 3-class texture task.

``FocalModulation`` as in the repository: ``nn.Linear(dim, 2 * dim + focal_level + 1)`` then
``permute(0, 3, 1, 2).contiguous()`` and ``torch.split(x, (C, C, focal_level + 1), 1)`` into
query, context and gates; hierarchical context by depthwise ``Conv2d(groups=dim)`` + ``GELU`` at
growing kernel sizes, gated aggregation, the global context by two keepdim means, the ``h``
1x1-conv modulator and ``q * modulator``. Patch embedding by a strided conv, ``LayerNorm`` on
channels-last tokens, timm's ``DropPath`` (``x.new_empty(shape).bernoulli_(keep)``), layer
scale, AdamW with no weight decay on norms/biases + a cosine schedule, ``torch.no_grad()`` eval.
Checks: accuracy well above chance, the modulator of a constant image is spatially constant.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def drop_path(x, drop_prob: float = 0.0, training: bool = False, scale_by_keep: bool = True):
    """Drop paths (stochastic depth) per sample, as timm writes it."""
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # work with diff dim tensors, not just 2D ConvNets
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self):
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
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


class FocalModulation(nn.Module):
    def __init__(self, dim, focal_window, focal_level, focal_factor=2, bias=True, proj_drop=0.0,
                 normalize_modulator=False):
        super().__init__()
        self.dim = dim
        self.focal_window = focal_window
        self.focal_level = focal_level
        self.focal_factor = focal_factor
        self.normalize_modulator = normalize_modulator

        self.f = nn.Linear(dim, 2 * dim + (self.focal_level + 1), bias=bias)
        self.h = nn.Conv2d(dim, dim, kernel_size=1, stride=1, bias=bias)

        self.act = nn.GELU()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.focal_layers = nn.ModuleList()

        self.kernel_sizes = []
        for k in range(self.focal_level):
            kernel_size = self.focal_factor * k + self.focal_window
            self.focal_layers.append(
                nn.Sequential(
                    nn.Conv2d(dim, dim, kernel_size=kernel_size, stride=1,
                              groups=dim, padding=kernel_size // 2, bias=False),
                    nn.GELU(),
                )
            )
            self.kernel_sizes.append(kernel_size)

    def forward(self, x):
        """
        Args:
            x: input features with shape of (B, H, W, C)
        """
        C = x.shape[-1]

        # pre linear projection
        x = self.f(x).permute(0, 3, 1, 2).contiguous()
        q, ctx, self.gates = torch.split(x, (C, C, self.focal_level + 1), 1)

        # context aggreation
        ctx_all = 0
        for l in range(self.focal_level):
            ctx = self.focal_layers[l](ctx)
            ctx_all = ctx_all + ctx * self.gates[:, l:l + 1]
        ctx_global = self.act(ctx.mean(2, keepdim=True).mean(3, keepdim=True))
        ctx_all = ctx_all + ctx_global * self.gates[:, self.focal_level:]

        # normalize context
        if self.normalize_modulator:
            ctx_all = ctx_all / (self.focal_level + 1)

        # focal modulation
        self.modulator = self.h(ctx_all)
        x_out = q * self.modulator
        x_out = x_out.permute(0, 2, 3, 1).contiguous()

        # post linear porjection
        x_out = self.proj(x_out)
        x_out = self.proj_drop(x_out)
        return x_out

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class FocalNetBlock(nn.Module):
    def __init__(self, dim, mlp_ratio=4.0, drop=0.0, drop_path=0.0, act_layer=nn.GELU,
                 norm_layer=nn.LayerNorm, focal_level=1, focal_window=3, use_layerscale=False,
                 layerscale_value=1e-4, normalize_modulator=False):
        super().__init__()
        self.dim = dim
        self.mlp_ratio = mlp_ratio

        self.norm1 = norm_layer(dim)
        self.modulation = FocalModulation(dim, proj_drop=drop, focal_window=focal_window,
                                          focal_level=focal_level, normalize_modulator=normalize_modulator)

        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = Mlp(in_features=dim, hidden_features=mlp_hidden_dim, act_layer=act_layer, drop=drop)

        self.gamma_1 = 1.0
        self.gamma_2 = 1.0
        if use_layerscale:
            self.gamma_1 = nn.Parameter(layerscale_value * torch.ones(dim), requires_grad=True)
            self.gamma_2 = nn.Parameter(layerscale_value * torch.ones(dim), requires_grad=True)

        self.H = None
        self.W = None

    def forward(self, x):
        H, W = self.H, self.W
        B, L, C = x.shape
        shortcut = x

        # Focal Modulation
        x = self.norm1(x)
        x = x.view(B, H, W, C)
        x = self.modulation(x).view(B, H * W, C)

        # FFN
        x = shortcut + self.drop_path(self.gamma_1 * x)
        x = x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))
        return x


class PatchEmbed(nn.Module):
    def __init__(self, img_size=32, patch_size=4, in_chans=3, embed_dim=32, norm_layer=None):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.patches_resolution = [img_size // patch_size, img_size // patch_size]
        self.num_patches = self.patches_resolution[0] * self.patches_resolution[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = norm_layer(embed_dim) if norm_layer is not None else None

    def forward(self, x):
        B, C, H, W = x.shape
        x = self.proj(x)
        H, W = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)  # B Ph*Pw C
        if self.norm is not None:
            x = self.norm(x)
        return x, H, W


class FocalNet(nn.Module):
    def __init__(self, img_size=32, patch_size=4, in_chans=3, num_classes=3, embed_dim=24, depth=2,
                 mlp_ratio=2.0, drop_path_rate=0.1, focal_level=2, focal_window=3, use_layerscale=True):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim, norm_layer=nn.LayerNorm)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]  # stochastic depth decay rule
        self.blocks = nn.ModuleList([
            FocalNetBlock(embed_dim, mlp_ratio=mlp_ratio, drop_path=dpr[i], focal_level=focal_level,
                          focal_window=focal_window, use_layerscale=use_layerscale, layerscale_value=0.1)
            for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def no_weight_decay_keywords(self):
        return {"gamma", "norm"}

    def forward_features(self, x):
        x, H, W = self.patch_embed(x)
        for blk in self.blocks:
            blk.H, blk.W = H, W
            x = blk(x)
        x = self.norm(x)  # B L C
        x = self.avgpool(x.transpose(1, 2))  # B C 1
        x = torch.flatten(x, 1)
        return x

    def forward(self, x):
        return self.head(self.forward_features(x))


def make_textures(n, rng):
    """Class 0: horizontal stripes, 1: vertical stripes, 2: checkerboard; random period/phase/colour."""
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float32)
    images = np.zeros((n, 3, 32, 32), np.float32)
    labels = rng.randint(0, 3, size=n)
    for i, c in enumerate(labels):
        period = rng.uniform(5, 10)
        py, px = rng.uniform(0, period, size=2)
        h = np.sin(2 * np.pi * (ys + py) / period)
        v = np.sin(2 * np.pi * (xs + px) / period)
        pattern = [h, v, h * v * 2][c]
        colour = rng.uniform(0.3, 1.0, size=(3, 1, 1))
        images[i] = colour * pattern[None] + 0.4 * rng.randn(3, 32, 32)
    return torch.from_numpy(images), torch.from_numpy(labels).long()


rng = np.random.RandomState(1234)
x_train, y_train = make_textures(192, rng)
x_test, y_test = make_textures(96, rng)

model = FocalNet()
skip_keywords = model.no_weight_decay_keywords()
decay, no_decay = [], []
for name, param in model.named_parameters():
    if len(param.shape) == 1 or name.endswith(".bias") or any(k in name for k in skip_keywords):
        no_decay.append(param)
    else:
        decay.append(param)
optimizer = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
                              lr=6e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
epochs, batch_size = 10, 32
steps_per_epoch = math.ceil(len(x_train) / batch_size)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch, eta_min=1e-5)
criterion = nn.CrossEntropyLoss()
n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"number of params: {n_params}, kernel sizes {model.blocks[0].modulation.kernel_sizes}, "
      f"decay/no-decay tensors {len(decay)}/{len(no_decay)}")


@torch.no_grad()
def validate(model):
    model.eval()
    logits = model(x_test)
    loss = criterion(logits, y_test).item()
    acc = (logits.argmax(1) == y_test).float().mean().item()
    return loss, acc


first_loss = None
for epoch in range(epochs):
    model.train()
    perm = torch.randperm(len(x_train))
    total = 0.0
    for i in range(steps_per_epoch):
        idx = perm[i * batch_size:(i + 1) * batch_size]
        outputs = model(x_train[idx])
        loss = criterion(outputs, y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
    train_loss = total / steps_per_epoch
    if first_loss is None:
        first_loss = train_loss
    val_loss, val_acc = validate(model)
    print(f"Epoch {epoch}: lr {scheduler.get_last_lr()[0]:.6f} train loss {train_loss:.4f} "
          f"val loss {val_loss:.4f} acc {val_acc:.4f}")

# A constant image has a spatially constant modulator away from the zero-padded border of the
# depthwise convs; the global context and the gates are constant everywhere.
with torch.no_grad():
    model.eval()
    const = torch.full((2, 3, 32, 32), 0.7)
    const[1] = -0.3
    model(const)
    modulator = model.blocks[0].modulation.modulator
    gates = model.blocks[0].modulation.gates
    assert modulator.shape == (2, 24, 8, 8) and gates.shape == (2, 3, 8, 8)
    reach = sum(k // 2 for k in model.blocks[0].modulation.kernel_sizes)
    inner = modulator[:, :, reach:8 - reach, reach:8 - reach]
    const_err = (inner - inner[:, :, :1, :1]).abs().max().item() / modulator.abs().max().item()
    gate_err = (gates - gates[:, :, :1, :1]).abs().max().item()
    print(f"constant image: modulator {tuple(modulator.shape)}, inner relative spread {const_err:.2e}, "
          f"gate spread {gate_err:.2e}")
    assert const_err < 1e-4 and gate_err < 1e-4

drop = DropPath(0.5)
drop.train()
samples = drop(torch.ones(4000, 2, 2))
kept = (samples[:, 0, 0] > 0).float().mean().item()
assert set(samples.unique().tolist()) <= {0.0, 2.0}
print(f"DropPath(0.5): kept fraction {kept:.3f}, {drop}")

print(f"FINAL acc={val_acc:.4f} val_loss={val_loss:.4f} loss_drop={first_loss - train_loss:.4f} "
      f"const_err={const_err + gate_err:.6f}")
