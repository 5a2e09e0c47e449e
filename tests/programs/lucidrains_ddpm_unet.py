"""lucidrains/denoising-diffusion-pytorch's ``Unet`` and ``GaussianDiffusion`` at a tiny size, trained on
8x8 synthetic images of bars and sampled with DDIM.

The repository's pieces as written there, einops' ``rearrange``/``repeat``/``reduce`` done by
``reshape``/``permute``/``mean``: ``exists``/``default`` helpers, ``SinusoidalPosEmb``
(``torch.exp(torch.arange(half_dim) * -emb)``, ``x[:, None] * emb[None, :]``, ``torch.cat((emb.sin(),
emb.cos()), dim=-1)``), ``RMSNorm`` as ``F.normalize(x, dim=1) * self.g * self.scale``, ``Block`` and
``ResnetBlock`` with the time embedding's scale-shift (``time_emb.chunk(2, dim=1)``, ``x * (scale + 1)
+ shift``), ``LinearAttention`` with memory key/values (``q.softmax(dim=-2)``, ``k.softmax(dim=-1)``,
``torch.einsum('b h d n, b h e n -> b h d e', k, v)``), full ``Attention`` in the middle,
``Downsample`` as the pixel-unshuffle rearrange + 1x1 conv, ``Upsample`` by ``nn.Upsample(scale_factor=2,
mode='nearest')``, the skip list ``h.append``/``h.pop()`` with ``torch.cat(dim=1)`` and ``r = x.clone()``;
``cosine_beta_schedule`` in float64 (``torch.linspace(..., dtype=torch.float64)``, ``torch.clip``), the
``register_buffer = lambda name, val: self.register_buffer(name, val.to(torch.float32))`` tables,
``extract(a, t, x_shape)`` by ``a.gather(-1, t)``, ``pred_v`` objective with the SNR loss weight,
``p_losses`` (``F.mse_loss(reduction='none')`` reduced per sample), and ``@torch.inference_mode()``
``ddim_sample`` over ``torch.linspace(-1, T - 1, steps=S + 1).int().tolist()`` pairs with ``clamp``-ed
``x_start``; Adam with ``clip_grad_norm_``.
"""

import math
import os
from collections import namedtuple
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

ModelPrediction = namedtuple('ModelPrediction', ['pred_noise', 'pred_x_start'])


def exists(x):
    return x is not None


def default(val, d):
    if exists(val):
        return val
    return d() if callable(d) else d


def identity(t, *args, **kwargs):
    return t


def normalize_to_neg_one_to_one(img):
    return img * 2 - 1


def unnormalize_to_zero_to_one(t):
    return (t + 1) * 0.5


class Upsample(nn.Sequential):
    def __init__(self, dim, dim_out=None):
        super().__init__(
            nn.Upsample(scale_factor=2, mode='nearest'),
            nn.Conv2d(dim, default(dim_out, dim), 3, padding=1),
        )


class SpaceToDepth(nn.Module):
    """einops' Rearrange('b c (h p1) (w p2) -> b (c p1 p2) h w', p1=2, p2=2)."""

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.reshape(b, c, h // 2, 2, w // 2, 2)
        return x.permute(0, 1, 3, 5, 2, 4).reshape(b, c * 4, h // 2, w // 2)


def Downsample(dim, dim_out=None):
    return nn.Sequential(
        SpaceToDepth(),
        nn.Conv2d(dim * 4, default(dim_out, dim), 1),
    )


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.scale = dim ** 0.5
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.g * self.scale


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim, theta=10000):
        super().__init__()
        self.dim = dim
        self.theta = theta

    def forward(self, x):
        device = x.device
        half_dim = self.dim // 2
        emb = math.log(self.theta) / (half_dim - 1)
        emb = torch.exp(torch.arange(half_dim, device=device) * -emb)
        emb = x[:, None] * emb[None, :]
        emb = torch.cat((emb.sin(), emb.cos()), dim=-1)
        return emb


class Block(nn.Module):
    def __init__(self, dim, dim_out, dropout=0.):
        super().__init__()
        self.proj = nn.Conv2d(dim, dim_out, 3, padding=1)
        self.norm = RMSNorm(dim_out)
        self.act = nn.SiLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, scale_shift=None):
        x = self.proj(x)
        x = self.norm(x)

        if exists(scale_shift):
            scale, shift = scale_shift
            x = x * (scale + 1) + shift

        x = self.act(x)
        return self.dropout(x)


class ResnetBlock(nn.Module):
    def __init__(self, dim, dim_out, *, time_emb_dim=None, dropout=0.):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.SiLU(),
            nn.Linear(time_emb_dim, dim_out * 2)
        ) if exists(time_emb_dim) else None

        self.block1 = Block(dim, dim_out, dropout=dropout)
        self.block2 = Block(dim_out, dim_out)
        self.res_conv = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x, time_emb=None):
        scale_shift = None
        if exists(self.mlp) and exists(time_emb):
            time_emb = self.mlp(time_emb)
            time_emb = time_emb[:, :, None, None]  # rearrange(time_emb, 'b c -> b c 1 1')
            scale_shift = time_emb.chunk(2, dim=1)

        h = self.block1(x, scale_shift=scale_shift)
        h = self.block2(h)
        return h + self.res_conv(x)


class LinearAttention(nn.Module):
    def __init__(self, dim, heads=4, dim_head=32, num_mem_kv=4):
        super().__init__()
        self.scale = dim_head ** -0.5
        self.heads = heads
        hidden_dim = dim_head * heads

        self.norm = RMSNorm(dim)
        self.mem_kv = nn.Parameter(torch.randn(2, heads, dim_head, num_mem_kv))
        self.to_qkv = nn.Conv2d(dim, hidden_dim * 3, 1, bias=False)
        self.to_out = nn.Sequential(
            nn.Conv2d(hidden_dim, dim, 1),
            RMSNorm(dim)
        )

    def forward(self, x):
        b, c, h, w = x.shape
        x = self.norm(x)
        qkv = self.to_qkv(x).chunk(3, dim=1)
        q, k, v = map(lambda t: t.reshape(b, self.heads, -1, h * w), qkv)

        mk, mv = map(lambda t: t.unsqueeze(0).repeat(b, 1, 1, 1), self.mem_kv)
        k, v = map(partial(torch.cat, dim=-1), ((mk, k), (mv, v)))

        q = q.softmax(dim=-2)
        k = k.softmax(dim=-1)

        q = q * self.scale

        context = torch.einsum('b h d n, b h e n -> b h d e', k, v)

        out = torch.einsum('b h d e, b h d n -> b h e n', context, q)
        out = out.reshape(b, -1, h, w)  # 'b h c (x y) -> b (h c) x y'
        return self.to_out(out)


class Attention(nn.Module):
    def __init__(self, dim, heads=4, dim_head=32, num_mem_kv=4):
        super().__init__()
        self.heads = heads
        self.scale = dim_head ** -0.5
        hidden_dim = dim_head * heads

        self.norm = RMSNorm(dim)
        self.mem_kv = nn.Parameter(torch.randn(2, heads, num_mem_kv, dim_head))
        self.to_qkv = nn.Conv2d(dim, hidden_dim * 3, 1, bias=False)
        self.to_out = nn.Conv2d(hidden_dim, dim, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        x = self.norm(x)
        qkv = self.to_qkv(x).chunk(3, dim=1)
        # 'b (h c) x y -> b h (x y) c'
        q, k, v = map(lambda t: t.reshape(b, self.heads, -1, h * w).transpose(-1, -2), qkv)

        mk, mv = map(lambda t: t.unsqueeze(0).expand(b, -1, -1, -1), self.mem_kv)
        k, v = map(partial(torch.cat, dim=-2), ((mk, k), (mv, v)))

        sim = torch.einsum('b h i d, b h j d -> b h i j', q, k) * self.scale
        attn = sim.softmax(dim=-1)
        out = torch.einsum('b h i j, b h j d -> b h i d', attn, v)

        out = out.permute(0, 1, 3, 2).reshape(b, -1, h, w)  # 'b h (x y) d -> b (h d) x y'
        return self.to_out(out)


class Unet(nn.Module):
    def __init__(self, dim, init_dim=None, out_dim=None, dim_mults=(1, 2), channels=1,
                 attn_dim_head=8, attn_heads=2, dropout=0.):
        super().__init__()

        self.channels = channels
        input_channels = channels

        init_dim = default(init_dim, dim)
        self.init_conv = nn.Conv2d(input_channels, init_dim, 7, padding=3)

        dims = [init_dim, *map(lambda m: dim * m, dim_mults)]
        in_out = list(zip(dims[:-1], dims[1:]))

        time_dim = dim * 4
        sinu_pos_emb = SinusoidalPosEmb(dim)
        fourier_dim = dim

        self.time_mlp = nn.Sequential(
            sinu_pos_emb,
            nn.Linear(fourier_dim, time_dim),
            nn.GELU(),
            nn.Linear(time_dim, time_dim)
        )

        resnet_block = partial(ResnetBlock, time_emb_dim=time_dim, dropout=dropout)

        self.downs = nn.ModuleList([])
        self.ups = nn.ModuleList([])
        num_resolutions = len(in_out)

        for ind, (dim_in, dim_out) in enumerate(in_out):
            is_last = ind >= (num_resolutions - 1)

            self.downs.append(nn.ModuleList([
                resnet_block(dim_in, dim_in),
                resnet_block(dim_in, dim_in),
                LinearAttention(dim_in, dim_head=attn_dim_head, heads=attn_heads),
                Downsample(dim_in, dim_out) if not is_last else nn.Conv2d(dim_in, dim_out, 3, padding=1)
            ]))

        mid_dim = dims[-1]
        self.mid_block1 = resnet_block(mid_dim, mid_dim)
        self.mid_attn = Attention(mid_dim, heads=attn_heads, dim_head=attn_dim_head)
        self.mid_block2 = resnet_block(mid_dim, mid_dim)

        for ind, (dim_in, dim_out) in enumerate(reversed(in_out)):
            is_last = ind == (len(in_out) - 1)

            self.ups.append(nn.ModuleList([
                resnet_block(dim_out + dim_in, dim_out),
                resnet_block(dim_out + dim_in, dim_out),
                LinearAttention(dim_out, dim_head=attn_dim_head, heads=attn_heads),
                Upsample(dim_out, dim_in) if not is_last else nn.Conv2d(dim_out, dim_in, 3, padding=1)
            ]))

        self.out_dim = default(out_dim, channels)

        self.final_res_block = resnet_block(init_dim * 2, init_dim)
        self.final_conv = nn.Conv2d(init_dim, self.out_dim, 1)

    @property
    def downsample_factor(self):
        return 2 ** (len(self.downs) - 1)

    def forward(self, x, time):
        assert all([d % self.downsample_factor == 0 for d in x.shape[-2:]]), \
            f'your input dimensions {x.shape[-2:]} need to be divisible by {self.downsample_factor}'

        x = self.init_conv(x)
        r = x.clone()

        t = self.time_mlp(time)

        h = []

        for block1, block2, attn, downsample in self.downs:
            x = block1(x, t)
            h.append(x)

            x = block2(x, t)
            x = attn(x) + x
            h.append(x)

            x = downsample(x)

        x = self.mid_block1(x, t)
        x = self.mid_attn(x) + x
        x = self.mid_block2(x, t)

        for block1, block2, attn, upsample in self.ups:
            x = torch.cat((x, h.pop()), dim=1)
            x = block1(x, t)

            x = torch.cat((x, h.pop()), dim=1)
            x = block2(x, t)
            x = attn(x) + x

            x = upsample(x)

        x = torch.cat((x, r), dim=1)

        x = self.final_res_block(x, t)
        return self.final_conv(x)


def extract(a, t, x_shape):
    b, *_ = t.shape
    out = a.gather(-1, t)
    return out.reshape(b, *((1,) * (len(x_shape) - 1)))


def cosine_beta_schedule(timesteps, s=0.008):
    steps = timesteps + 1
    t = torch.linspace(0, timesteps, steps, dtype=torch.float64) / timesteps
    alphas_cumprod = torch.cos((t + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
    return torch.clip(betas, 0, 0.999)


class GaussianDiffusion(nn.Module):
    def __init__(self, model, *, image_size, timesteps=100, sampling_timesteps=None, objective='pred_v',
                 ddim_sampling_eta=0., min_snr_loss_weight=True, min_snr_gamma=5):
        super().__init__()
        self.model = model
        self.channels = self.model.channels
        self.image_size = image_size
        self.objective = objective

        betas = cosine_beta_schedule(timesteps)

        alphas = 1. - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.)

        timesteps, = betas.shape
        self.num_timesteps = int(timesteps)

        self.sampling_timesteps = default(sampling_timesteps, timesteps)
        assert self.sampling_timesteps <= timesteps
        self.ddim_sampling_eta = ddim_sampling_eta

        def register_buffer(name, val):
            return self.register_buffer(name, val.to(torch.float32))

        register_buffer('betas', betas)
        register_buffer('alphas_cumprod', alphas_cumprod)
        register_buffer('alphas_cumprod_prev', alphas_cumprod_prev)

        register_buffer('sqrt_alphas_cumprod', torch.sqrt(alphas_cumprod))
        register_buffer('sqrt_one_minus_alphas_cumprod', torch.sqrt(1. - alphas_cumprod))
        register_buffer('log_one_minus_alphas_cumprod', torch.log(1. - alphas_cumprod))
        register_buffer('sqrt_recip_alphas_cumprod', torch.sqrt(1. / alphas_cumprod))
        register_buffer('sqrt_recipm1_alphas_cumprod', torch.sqrt(1. / alphas_cumprod - 1))

        posterior_variance = betas * (1. - alphas_cumprod_prev) / (1. - alphas_cumprod)
        register_buffer('posterior_variance', posterior_variance)
        register_buffer('posterior_log_variance_clipped', torch.log(posterior_variance.clamp(min=1e-20)))

        snr = alphas_cumprod / (1 - alphas_cumprod)
        maybe_clipped_snr = snr.clone()
        if min_snr_loss_weight:
            maybe_clipped_snr.clamp_(max=min_snr_gamma)

        if objective == 'pred_noise':
            register_buffer('loss_weight', maybe_clipped_snr / snr)
        elif objective == 'pred_x0':
            register_buffer('loss_weight', maybe_clipped_snr)
        elif objective == 'pred_v':
            register_buffer('loss_weight', maybe_clipped_snr / (snr + 1))

        self.normalize = normalize_to_neg_one_to_one
        self.unnormalize = unnormalize_to_zero_to_one

    @property
    def device(self):
        return self.betas.device

    def predict_start_from_noise(self, x_t, t, noise):
        return (
            extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t -
            extract(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape) * noise
        )

    def predict_noise_from_start(self, x_t, t, x0):
        return (
            (extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t - x0) /
            extract(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape)
        )

    def predict_v(self, x_start, t, noise):
        return (
            extract(self.sqrt_alphas_cumprod, t, x_start.shape) * noise -
            extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * x_start
        )

    def predict_start_from_v(self, x_t, t, v):
        return (
            extract(self.sqrt_alphas_cumprod, t, x_t.shape) * x_t -
            extract(self.sqrt_one_minus_alphas_cumprod, t, x_t.shape) * v
        )

    def model_predictions(self, x, t, clip_x_start=False):
        model_output = self.model(x, t)
        maybe_clip = partial(torch.clamp, min=-1., max=1.) if clip_x_start else identity

        if self.objective == 'pred_noise':
            pred_noise = model_output
            x_start = self.predict_start_from_noise(x, t, pred_noise)
            x_start = maybe_clip(x_start)
        elif self.objective == 'pred_x0':
            x_start = model_output
            x_start = maybe_clip(x_start)
            pred_noise = self.predict_noise_from_start(x, t, x_start)
        elif self.objective == 'pred_v':
            v = model_output
            x_start = self.predict_start_from_v(x, t, v)
            x_start = maybe_clip(x_start)
            pred_noise = self.predict_noise_from_start(x, t, x_start)

        return ModelPrediction(pred_noise, x_start)

    @torch.inference_mode()
    def ddim_sample(self, shape, return_all_timesteps=False):
        batch, device, total_timesteps, sampling_timesteps, eta = (
            shape[0], self.device, self.num_timesteps, self.sampling_timesteps, self.ddim_sampling_eta)

        times = torch.linspace(-1, total_timesteps - 1, steps=sampling_timesteps + 1)
        times = list(reversed(times.int().tolist()))
        time_pairs = list(zip(times[:-1], times[1:]))

        img = torch.randn(shape, device=device)
        imgs = [img]

        for time, time_next in time_pairs:
            time_cond = torch.full((batch,), time, device=device, dtype=torch.long)
            pred_noise, x_start, *_ = self.model_predictions(img, time_cond, clip_x_start=True)

            if time_next < 0:
                img = x_start
                imgs.append(img)
                continue

            alpha = self.alphas_cumprod[time]
            alpha_next = self.alphas_cumprod[time_next]

            sigma = eta * ((1 - alpha / alpha_next) * (1 - alpha_next) / (1 - alpha)).sqrt()
            c = (1 - alpha_next - sigma ** 2).sqrt()

            noise = torch.randn_like(img)

            img = x_start * alpha_next.sqrt() + c * pred_noise + sigma * noise
            imgs.append(img)

        ret = img if not return_all_timesteps else torch.stack(imgs, dim=1)
        ret = self.unnormalize(ret)
        return ret, len(time_pairs)

    def q_sample(self, x_start, t, noise=None):
        noise = default(noise, lambda: torch.randn_like(x_start))
        return (
            extract(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start +
            extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise
        )

    def p_losses(self, x_start, t, noise=None):
        noise = default(noise, lambda: torch.randn_like(x_start))
        x = self.q_sample(x_start=x_start, t=t, noise=noise)
        model_out = self.model(x, t)

        if self.objective == 'pred_noise':
            target = noise
        elif self.objective == 'pred_x0':
            target = x_start
        elif self.objective == 'pred_v':
            target = self.predict_v(x_start, t, noise)

        loss = F.mse_loss(model_out, target, reduction='none')
        loss = loss.reshape(loss.shape[0], -1).mean(dim=1)  # reduce(loss, 'b ... -> b', 'mean')

        loss = loss * extract(self.loss_weight, t, loss.shape)
        return loss.mean()

    def forward(self, img, *args, **kwargs):
        b, c, h, w, device, img_size, = *img.shape, img.device, self.image_size  # noqa: F841  (the repository's unpacking)
        assert h == img_size and w == img_size, f'height and width of image must be {img_size}'
        t = torch.randint(0, self.num_timesteps, (b,), device=device).long()

        img = self.normalize(img)
        return self.p_losses(img, t, *args, **kwargs)


IMAGE = 8


def make_bars(n):
    """One bright bar, horizontal or vertical, two pixels wide, on a dark 8x8 image."""
    images = np.zeros((n, 1, IMAGE, IMAGE), dtype=np.float32)
    vertical = rng.random(n) < 0.5
    where = rng.integers(0, IMAGE - 1, size=n)
    for i in range(n):
        if vertical[i]:
            images[i, 0, :, where[i]:where[i] + 2] = 1.0
        else:
            images[i, 0, where[i]:where[i] + 2, :] = 1.0
    return torch.from_numpy(images)


def bar_score(images):
    """How bar-like each image is: the brightest row pair or column pair against the rest."""
    x = images[:, 0]
    rows = x.mean(dim=2)
    cols = x.mean(dim=1)
    pair_rows = (rows[:, :-1] + rows[:, 1:]) / 2
    pair_cols = (cols[:, :-1] + cols[:, 1:]) / 2
    best = torch.maximum(pair_rows.max(dim=1).values, pair_cols.max(dim=1).values)
    return best - x.mean(dim=(1, 2))


train_images = make_bars(256)
val_images = make_bars(64)

model = Unet(dim=8, dim_mults=(1, 2), channels=1)
diffusion = GaussianDiffusion(model, image_size=IMAGE, timesteps=100, sampling_timesteps=10)
n_params = sum(p.numel() for p in model.parameters())
print(f"unet parameters {n_params}, buffers {len(list(diffusion.buffers()))}, "
      f"timesteps {diffusion.num_timesteps}")

opt = torch.optim.Adam(diffusion.parameters(), lr=2e-3, betas=(0.9, 0.99))
BATCH = 32
STEPS = 150
running = []
for step in range(1, STEPS + 1):
    idx = torch.randint(0, len(train_images), (BATCH,))
    loss = diffusion(train_images[idx])
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(diffusion.parameters(), 1.0)
    opt.step()
    running.append(loss.item())
    if step % 50 == 0:
        print(f"step {step}: loss {sum(running[-50:]) / 50:.4f}")

# validation loss at fixed timesteps and fixed noise, so both halves see the same draws
g = torch.Generator().manual_seed(1234)
val_t = torch.randint(0, diffusion.num_timesteps, (len(val_images),), generator=g)
val_noise = torch.randn(val_images.shape, generator=g)
with torch.no_grad():
    val_loss = diffusion.p_losses(diffusion.normalize(val_images), val_t, noise=val_noise).item()

samples, n_steps = diffusion.ddim_sample((16, 1, IMAGE, IMAGE))
in_range = ((samples >= 0) & (samples <= 1)).float().mean().item()
sample_bar = bar_score(samples).mean().item()
data_bar = bar_score(val_images).mean().item()
print(f"ddim {n_steps} steps: samples {tuple(samples.shape)}, inference tensor {samples.is_inference()}")
print(f"FINAL train_loss={sum(running[-50:]) / 50:.4f} val_loss={val_loss:.4f} in_range={in_range:.4f} "
      f"sample_bar={sample_bar:.4f} data_bar={data_bar:.4f}")
