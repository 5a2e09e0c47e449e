"""DiT (Peebles & Xie, facebookresearch/DiT models.py) at toy size: a class-conditional diffusion transformer
with adaLN-Zero blocks, trained for a few hundred steps on 8x8 two-channel "latents" drawn from three class
templates.

The model is the repository's: ``TimestepEmbedder.timestep_embedding`` (``torch.exp(-math.log(max_period) *
torch.arange(start=0, end=half, dtype=torch.float32) / half)``, ``torch.cat([torch.cos(args), torch.sin(args)],
dim=-1)``, the odd-``dim`` zero column), ``LabelEmbedder`` with classifier-free-guidance dropout (``torch.rand(
labels.shape[0]) < self.dropout_prob``, ``torch.where(drop_ids, self.num_classes, labels)``, ``force_drop_ids``),
``modulate(x, shift, scale)``, ``DiTBlock`` with ``adaLN_modulation(c).chunk(6, dim=1)`` gating timm-style
``Attention`` (``qkv.reshape(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4)``, ``unbind(0)``) and ``Mlp`` with
``nn.GELU(approximate="tanh")``, ``FinalLayer``, patchify by timm's ``PatchEmbed`` (a stride-p ``Conv2d`` then
``flatten(2).transpose(1, 2)``), ``unpatchify`` by ``x.reshape(shape=...)`` + ``torch.einsum('nhwpqc->nchpwq',
x)``, the fixed NumPy 2-D sin-cos position embedding copied in by ``self.pos_embed.data.copy_(torch.from_numpy(
pos_embed).float().unsqueeze(0))`` into an ``nn.Parameter(..., requires_grad=False)``, ``initialize_weights``
(``self.apply(_basic_init)`` with ``xavier_uniform_``, ``xavier_uniform_(w.view([w.shape[0], -1]))`` on the
patch conv, adaLN-Zero ``nn.init.constant_(block.adaLN_modulation[-1].weight, 0)``), ``learn_sigma`` output
channels and ``forward_with_cfg``. The diffusion is a linear-beta DDPM (``q_sample`` by gathered
``sqrt_alphas_cumprod``) trained on the epsilon half of the output with AdamW(lr=1e-4 as in train.py, raised for
the toy) and an EMA copy updated by ``update_ema`` (``ema_params[name].mul_(decay).add_(param.data, alpha=1 -
decay)``); sampling is deterministic DDIM with guidance.

Checked: the freshly initialised model's output is exactly zero (adaLN-Zero), the einsum unpatchify equals a
``permute`` route, the CFG forward equals the conditional and unconditional forwards combined by hand, the
frozen position embedding is unchanged by training, the loss falls, and guided samples land nearest to their
class template.
"""

import math
import os
from collections import OrderedDict
from copy import deepcopy

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

INPUT_SIZE, PATCH, IN_CH, HIDDEN, DEPTH, HEADS, NUM_CLASSES = 8, 2, 2, 48, 2, 4, 3
DIFFUSION_STEPS = 100
TRAIN_STEPS, BATCH = 300, 48


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


# ------------------------------------------------------------------ timm pieces DiT imports
class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, embed_dim, bias=True):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, x):
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2)  # NCHW -> NLC


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        x = attn @ v
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


# ------------------------------------------------------------------ embedding layers
class TimestepEmbedder(nn.Module):
    """Embeds scalar timesteps into vector representations."""

    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True),
        )
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(
            -math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half
        ).to(device=t.device)
        args = t[:, None].float() * freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
        return embedding

    def forward(self, t):
        t_freq = self.timestep_embedding(t, self.frequency_embedding_size)
        return self.mlp(t_freq)


class LabelEmbedder(nn.Module):
    """Embeds class labels; drops labels to the null class for classifier-free guidance."""

    def __init__(self, num_classes, hidden_size, dropout_prob):
        super().__init__()
        use_cfg_embedding = dropout_prob > 0
        self.embedding_table = nn.Embedding(num_classes + use_cfg_embedding, hidden_size)
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob

    def token_drop(self, labels, force_drop_ids=None):
        if force_drop_ids is None:
            drop_ids = torch.rand(labels.shape[0], device=labels.device) < self.dropout_prob
        else:
            drop_ids = force_drop_ids == 1
        labels = torch.where(drop_ids, self.num_classes, labels)
        return labels

    def forward(self, labels, train, force_drop_ids=None):
        use_dropout = self.dropout_prob > 0
        if (train and use_dropout) or (force_drop_ids is not None):
            labels = self.token_drop(labels, force_drop_ids)
        return self.embedding_table(labels)


# ------------------------------------------------------------------ core DiT model
class DiTBlock(nn.Module):
    def __init__(self, hidden_size, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads=num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        mlp_hidden_dim = int(hidden_size * mlp_ratio)
        approx_gelu = lambda: nn.GELU(approximate="tanh")  # noqa: E731  (the repository's spelling)
        self.mlp = Mlp(in_features=hidden_size, hidden_features=mlp_hidden_dim, act_layer=approx_gelu, drop=0)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size, bias=True))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, hidden_size, patch_size, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size, bias=True))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        x = modulate(self.norm_final(x), shift, scale)
        return self.linear(x)


class DiT(nn.Module):
    def __init__(self, input_size=32, patch_size=2, in_channels=4, hidden_size=1152, depth=28, num_heads=16,
                 mlp_ratio=4.0, class_dropout_prob=0.1, num_classes=1000, learn_sigma=True):
        super().__init__()
        self.learn_sigma = learn_sigma
        self.in_channels = in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.patch_size = patch_size
        self.num_heads = num_heads

        self.x_embedder = PatchEmbed(input_size, patch_size, in_channels, hidden_size, bias=True)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size, class_dropout_prob)
        num_patches = self.x_embedder.num_patches
        # Will use fixed sin-cos embedding:
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, hidden_size), requires_grad=False)

        self.blocks = nn.ModuleList([DiTBlock(hidden_size, num_heads, mlp_ratio=mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        self.initialize_weights()

    def initialize_weights(self):
        # Initialize transformer layers:
        def _basic_init(module):
            if isinstance(module, nn.Linear):
                torch.nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)
        self.apply(_basic_init)

        # Initialize (and freeze) pos_embed by sin-cos embedding:
        pos_embed = get_2d_sincos_pos_embed(self.pos_embed.shape[-1], int(self.x_embedder.num_patches ** 0.5))
        self.pos_embed.data.copy_(torch.from_numpy(pos_embed).float().unsqueeze(0))

        # Initialize patch_embed like nn.Linear (instead of nn.Conv2d):
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.constant_(self.x_embedder.proj.bias, 0)

        # Initialize label embedding table:
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)

        # Initialize timestep embedding MLP:
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)

        # Zero-out adaLN modulation layers in DiT blocks:
        for block in self.blocks:
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)

        # Zero-out output layers:
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].weight, 0)
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].bias, 0)
        nn.init.constant_(self.final_layer.linear.weight, 0)
        nn.init.constant_(self.final_layer.linear.bias, 0)

    def unpatchify(self, x):
        """x: (N, T, patch_size**2 * C) -> imgs: (N, C, H, W)"""
        c = self.out_channels
        p = self.x_embedder.patch_size[0]
        h = w = int(x.shape[1] ** 0.5)
        assert h * w == x.shape[1]

        x = x.reshape(shape=(x.shape[0], h, w, p, p, c))
        x = torch.einsum('nhwpqc->nchpwq', x)
        imgs = x.reshape(shape=(x.shape[0], c, h * p, h * p))
        return imgs

    def forward(self, x, t, y):
        x = self.x_embedder(x) + self.pos_embed  # (N, T, D), where T = H * W / patch_size ** 2
        t = self.t_embedder(t)                   # (N, D)
        y = self.y_embedder(y, self.training)    # (N, D)
        c = t + y                                # (N, D)
        for block in self.blocks:
            x = block(x, c)                      # (N, T, D)
        x = self.final_layer(x, c)               # (N, T, patch_size ** 2 * out_channels)
        x = self.unpatchify(x)                   # (N, out_channels, H, W)
        return x

    def forward_with_cfg(self, x, t, y, cfg_scale):
        """Forward pass that batches the unconditional forward pass for classifier-free guidance."""
        half = x[: len(x) // 2]
        combined = torch.cat([half, half], dim=0)
        model_out = self.forward(combined, t, y)
        eps, rest = model_out[:, :self.in_channels], model_out[:, self.in_channels:]
        cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond_eps + cfg_scale * (cond_eps - uncond_eps)
        eps = torch.cat([half_eps, half_eps], dim=0)
        return torch.cat([eps, rest], dim=1)


# ------------------------------------------------------------------ sine/cosine positional embedding (MAE)
def get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=False, extra_tokens=0):
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0)
    grid = grid.reshape([2, 1, grid_size, grid_size])
    pos_embed = get_2d_sincos_pos_embed_from_grid(embed_dim, grid)
    if cls_token and extra_tokens > 0:
        pos_embed = np.concatenate([np.zeros([extra_tokens, embed_dim]), pos_embed], axis=0)
    return pos_embed


def get_2d_sincos_pos_embed_from_grid(embed_dim, grid):
    assert embed_dim % 2 == 0
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])  # (H*W, D/2)
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])  # (H*W, D/2)
    return np.concatenate([emb_h, emb_w], axis=1)  # (H*W, D)


def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    assert embed_dim % 2 == 0
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.
    omega = 1. / 10000 ** omega  # (D/2,)
    pos = pos.reshape(-1)  # (M,)
    out = np.einsum('m,d->md', pos, omega)  # (M, D/2), outer product
    emb_sin = np.sin(out)
    emb_cos = np.cos(out)
    return np.concatenate([emb_sin, emb_cos], axis=1)  # (M, D)


# ------------------------------------------------------------------ train.py helpers
@torch.no_grad()
def update_ema(ema_model, model, decay=0.9999):
    ema_params = OrderedDict(ema_model.named_parameters())
    model_params = OrderedDict(model.named_parameters())
    for name, param in model_params.items():
        ema_params[name].mul_(decay).add_(param.data, alpha=1 - decay)


def requires_grad(model, flag=True):
    for p in model.parameters():
        p.requires_grad = flag


# ------------------------------------------------------------------ a linear-beta DDPM
betas = np.linspace(1e-4, 0.08, DIFFUSION_STEPS, dtype=np.float64)
alphas_cumprod = np.cumprod(1.0 - betas, axis=0)
sqrt_alphas_cumprod = torch.from_numpy(np.sqrt(alphas_cumprod)).float()
sqrt_one_minus_alphas_cumprod = torch.from_numpy(np.sqrt(1.0 - alphas_cumprod)).float()


def _extract_into_tensor(arr, timesteps, broadcast_shape):
    res = arr[timesteps].float()
    while len(res.shape) < len(broadcast_shape):
        res = res[..., None]
    return res + torch.zeros(broadcast_shape, device=timesteps.device)


def q_sample(x_start, t, noise):
    return (_extract_into_tensor(sqrt_alphas_cumprod, t, x_start.shape) * x_start
            + _extract_into_tensor(sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise)


def training_losses(model, x_start, t, y):
    noise = torch.randn_like(x_start)
    x_t = q_sample(x_start, t, noise)
    model_output = model(x_t, t, y)
    eps, _ = torch.split(model_output, IN_CH, dim=1)
    return {"loss": ((noise - eps) ** 2).mean(dim=list(range(1, len(noise.shape))))}


# ------------------------------------------------------------------ data: three class templates
rng = np.random.RandomState(1234)
templates = np.zeros((NUM_CLASSES, IN_CH, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
yy, xx = np.meshgrid(np.arange(INPUT_SIZE), np.arange(INPUT_SIZE), indexing="ij")
templates[0, 0] = np.where(xx < INPUT_SIZE // 2, 1.0, -1.0)
templates[0, 1] = -templates[0, 0]
templates[1, 0] = np.where(yy < INPUT_SIZE // 2, 1.0, -1.0)
templates[1, 1] = np.where((xx + yy) % 2 == 0, 0.8, -0.8)
templates[2, 0] = np.where((xx - 3.5) ** 2 + (yy - 3.5) ** 2 < 7, 1.0, -1.0)
templates[2, 1] = templates[2, 0]
templates = torch.from_numpy(templates)


def sample_batch(n):
    y = torch.randint(0, NUM_CLASSES, (n,))
    x = templates[y] + 0.15 * torch.randn(n, IN_CH, INPUT_SIZE, INPUT_SIZE)
    return x, y


# ------------------------------------------------------------------ model, and the checks at initialisation
model = DiT(input_size=INPUT_SIZE, patch_size=PATCH, in_channels=IN_CH, hidden_size=HIDDEN, depth=DEPTH,
            num_heads=HEADS, num_classes=NUM_CLASSES, class_dropout_prob=0.1)
ema = deepcopy(model)
requires_grad(ema, False)
print(f"DiT Parameters: {sum(p.numel() for p in model.parameters()):,}")
print(f"pos_embed {tuple(model.pos_embed.shape)} requires_grad={model.pos_embed.requires_grad}")
pos_embed_before = model.pos_embed.detach().clone()

t_emb = TimestepEmbedder.timestep_embedding(torch.tensor([0, 5, 99]), 7)
print(f"odd-dim timestep embedding {tuple(t_emb.shape)}, last column zero: {bool((t_emb[:, -1] == 0).all())}")

x0, y0 = sample_batch(8)
t0 = torch.randint(0, DIFFUSION_STEPS, (8,))
with torch.no_grad():
    out0 = model(x0, t0, y0)
zero_init = bool((out0 == 0).all())
print(f"zero-initialised output {tuple(out0.shape)}: all exactly 0: {zero_init}, max |out| = {out0.abs().max().item()}")

tokens = torch.randn(4, (INPUT_SIZE // PATCH) ** 2, PATCH * PATCH * model.out_channels)
g = INPUT_SIZE // PATCH
by_permute = tokens.reshape(4, g, g, PATCH, PATCH, model.out_channels).permute(0, 5, 1, 3, 2, 4)
by_permute = by_permute.reshape(4, model.out_channels, INPUT_SIZE, INPUT_SIZE)
unpatch_ok = torch.equal(model.unpatchify(tokens), by_permute)
print(f"unpatchify einsum == permute: {unpatch_ok}")

# ------------------------------------------------------------------ training (train.py's loop)
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0)
update_ema(ema, model, decay=0)  # Ensure EMA is initialized with synced weights
model.train()
ema.eval()
running_loss, log_steps, losses = 0.0, 0, []
for train_steps in range(1, TRAIN_STEPS + 1):
    x, y = sample_batch(BATCH)
    t = torch.randint(0, DIFFUSION_STEPS, (x.shape[0],))
    loss_dict = training_losses(model, x, t, y)
    loss = loss_dict["loss"].mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    update_ema(ema, model, decay=0.99)
    running_loss += loss.item()
    log_steps += 1
    if train_steps % 50 == 0:
        avg_loss = torch.tensor(running_loss / log_steps)
        losses.append(avg_loss.item())
        print(f"(step={train_steps:07d}) Train Loss: {avg_loss:.4f}")
        running_loss, log_steps = 0.0, 0

model.eval()
pos_frozen = torch.equal(model.pos_embed, pos_embed_before) and torch.allclose(ema.pos_embed, pos_embed_before)
print(f"pos_embed unchanged by training: {pos_frozen}")

# ------------------------------------------------------------------ CFG forward == two forwards combined
cfg_scale = 4.0  # sample.py default
n = 6
z = torch.randn(n, IN_CH, INPUT_SIZE, INPUT_SIZE)
y = torch.arange(n) % NUM_CLASSES
t = torch.randint(0, DIFFUSION_STEPS, (n,))
with torch.no_grad():
    z2 = torch.cat([z, z], 0)
    y_null = torch.tensor([NUM_CLASSES] * n)
    y2 = torch.cat([y, y_null], 0)
    t2 = torch.cat([t, t], 0)
    guided = ema.forward_with_cfg(z2, t2, y2, cfg_scale)
    cond = ema(z, t, y)
    uncond = ema(z, t, y_null)
    dropped = ema.y_embedder(y, False, force_drop_ids=torch.ones(n, dtype=torch.long))
    forced_null = torch.equal(dropped, ema.y_embedder.embedding_table(y_null))
    by_hand = uncond[:, :IN_CH] + cfg_scale * (cond[:, :IN_CH] - uncond[:, :IN_CH])
cfg_diff = max((guided[:n, :IN_CH] - by_hand).abs().max().item(), (guided[n:, :IN_CH] - by_hand).abs().max().item(),
               (guided[n:, IN_CH:] - uncond[:, IN_CH:]).abs().max().item())
print(f"forward_with_cfg vs cond/uncond forwards: max |diff| = {cfg_diff:.2e}; force_drop_ids -> null class: {forced_null}")


# ------------------------------------------------------------------ guided DDIM sampling
@torch.no_grad()
def ddim_sample(net, labels, steps=20, scale=cfg_scale):
    m = labels.shape[0]
    x = torch.randn(m, IN_CH, INPUT_SIZE, INPUT_SIZE)
    x = torch.cat([x, x], 0)
    y_all = torch.cat([labels, torch.tensor([NUM_CLASSES] * m)], 0)
    ts = np.linspace(DIFFUSION_STEPS - 1, 0, steps).round().astype(np.int64)
    for i, step in enumerate(ts):
        t_batch = torch.full((2 * m,), int(step), dtype=torch.long)
        eps = net.forward_with_cfg(x, t_batch, y_all, scale)[:, :IN_CH]
        a_t = float(alphas_cumprod[step])
        a_prev = float(alphas_cumprod[ts[i + 1]]) if i + 1 < len(ts) else 1.0
        pred_x0 = ((x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)).clamp(-1, 1)  # clip_denoised=True
        x = math.sqrt(a_prev) * pred_x0 + math.sqrt(1 - a_prev) * eps
    return x[:m]


labels = torch.arange(24) % NUM_CLASSES
samples = ddim_sample(ema, labels)
dist = ((samples[:, None] - templates[None]) ** 2).flatten(2).mean(-1)
sample_acc = (dist.argmin(1) == labels).float().mean().item()
sample_mse = dist.gather(1, labels[:, None]).mean().item()
print(f"guided DDIM samples {tuple(samples.shape)}: nearest template == label {sample_acc:.3f}, mse to own template {sample_mse:.4f}")

print(f"FINAL zero_init={int(zero_init)} unpatchify_ok={int(unpatch_ok)} pos_frozen={int(pos_frozen)} "
      f"first_loss={losses[0]:.4f} last_loss={losses[-1]:.4f} cfg_ok={int(cfg_diff < 1e-4 and forced_null)} "
      f"sample_acc={sample_acc:.4f} sample_mse={sample_mse:.4f}")
