"""ControlNet as lllyasviel/ControlNet writes it (cldm/cldm.py, ldm/modules/diffusionmodules/
openaimodel.py and util.py), on a toy conditional denoiser at 16x16: a small UNet of ``ResBlock``s
(``GroupNorm`` + ``SiLU`` + ``Conv2d``, the time embedding added by ``[..., None, None]``, the last
conv ``zero_module``-d) inside ``TimestepEmbedSequential``, a strided-conv ``Downsample`` and a
nearest ``F.interpolate`` ``Upsample``, ``timestep_embedding`` (``torch.exp(-math.log(max_period)
* torch.arange(start=0, end=half, dtype=torch.float32) / half)``, ``torch.cat([torch.cos(args),
torch.sin(args)], dim=-1)``); the UNet is first trained unconditionally, then locked
(``copy.deepcopy``, ``requires_grad_(False)``, ``.eval()``) as ``ControlledUnetModel``, whose
encoder runs under ``torch.no_grad()`` and whose decoder adds the control residuals
(``h += control.pop()``, ``torch.cat([h, hs.pop() + control.pop()], dim=1)``); the ``ControlNet``
is a trainable copy of the encoder loaded by ``load_state_dict(..., strict=False)`` (its missing
keys are the new parts only), an ``input_hint_block`` taking the condition image (the edges of a
toy shape), ``zero_module(nn.Conv2d(c, c, 1, padding=0))`` zero convolutions (``for p in
module.parameters(): p.detach().zero_()``) per encoder block and after the middle block;
DDPM noise-prediction loss with ``torch.randint`` timesteps, ``sqrt_alphas_cumprod`` tables
indexed by ``t`` and ``randn_like`` noise, ``AdamW(filter(lambda p: p.requires_grad, ...))``.

Checks: before training the controlled model's output equals the locked model's exactly, and the
first backward reaches only the zero convolutions' own weights (every other control gradient is
exactly zero); the locked weights are unchanged after training (``torch.equal`` against a saved
``state_dict``), the zero convolutions' weights moved, the loss falls and the control beats the
locked model on held-out noise.
"""
# ruff: noqa: B007  (the repository's own spelling: `for i, module in enumerate(...)`, `for step in range(...)`)

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


# --- ldm/modules/diffusionmodules/util.py ----------------------------------------------------
def zero_module(module):
    """Zero out the parameters of a module and return it."""
    for p in module.parameters():
        p.detach().zero_()
    return module


def timestep_embedding(timesteps, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half).to(
        device=timesteps.device
    )
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return embedding


def normalization(channels):
    return nn.GroupNorm(4, channels)


# --- openaimodel.py ----------------------------------------------------------------------------
class TimestepBlock(nn.Module):
    pass


class TimestepEmbedSequential(nn.Sequential, TimestepBlock):
    def forward(self, x, emb):
        for layer in self:
            if isinstance(layer, TimestepBlock):
                x = layer(x, emb)
            else:
                x = layer(x)
        return x


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x)


class ResBlock(TimestepBlock):
    def __init__(self, channels, emb_channels, out_channels=None):
        super().__init__()
        self.out_channels = out_channels or channels
        self.in_layers = nn.Sequential(
            normalization(channels), nn.SiLU(), nn.Conv2d(channels, self.out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, self.out_channels))
        self.out_layers = nn.Sequential(
            normalization(self.out_channels),
            nn.SiLU(),
            zero_module(nn.Conv2d(self.out_channels, self.out_channels, 3, padding=1)),
        )
        if self.out_channels == channels:
            self.skip_connection = nn.Identity()
        else:
            self.skip_connection = nn.Conv2d(channels, self.out_channels, 1)

    def forward(self, x, emb):
        h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)
        while len(emb_out.shape) < len(h.shape):
            emb_out = emb_out[..., None]
        h = h + emb_out
        h = self.out_layers(h)
        return self.skip_connection(x) + h


class UNetModel(nn.Module):
    def __init__(self, in_channels=1, model_channels=8, out_channels=1):
        super().__init__()
        ch = model_channels
        self.model_channels = ch
        time_embed_dim = ch * 2
        self.time_embed = nn.Sequential(
            nn.Linear(ch, time_embed_dim), nn.SiLU(), nn.Linear(time_embed_dim, time_embed_dim)
        )
        self.input_blocks = nn.ModuleList(
            [
                TimestepEmbedSequential(nn.Conv2d(in_channels, ch, 3, padding=1)),
                TimestepEmbedSequential(ResBlock(ch, time_embed_dim)),
                TimestepEmbedSequential(Downsample(ch)),
                TimestepEmbedSequential(ResBlock(ch, time_embed_dim, 2 * ch)),
            ]
        )
        self.middle_block = TimestepEmbedSequential(
            ResBlock(2 * ch, time_embed_dim), ResBlock(2 * ch, time_embed_dim)
        )
        self.output_blocks = nn.ModuleList(
            [
                TimestepEmbedSequential(ResBlock(4 * ch, time_embed_dim, 2 * ch)),
                TimestepEmbedSequential(ResBlock(3 * ch, time_embed_dim, 2 * ch), Upsample(2 * ch)),
                TimestepEmbedSequential(ResBlock(3 * ch, time_embed_dim, ch)),
                TimestepEmbedSequential(ResBlock(2 * ch, time_embed_dim, ch)),
            ]
        )
        self.out = nn.Sequential(
            normalization(ch), nn.SiLU(), zero_module(nn.Conv2d(ch, out_channels, 3, padding=1))
        )

    def forward(self, x, timesteps):
        hs = []
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        h = x
        for module in self.input_blocks:
            h = module(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for module in self.output_blocks:
            h = torch.cat([h, hs.pop()], dim=1)
            h = module(h, emb)
        return self.out(h)


# --- cldm/cldm.py ------------------------------------------------------------------------------
class ControlledUnetModel(UNetModel):
    def forward(self, x, timesteps=None, control=None, only_mid_control=False):
        hs = []
        with torch.no_grad():
            t_emb = timestep_embedding(timesteps, self.model_channels)
            emb = self.time_embed(t_emb)
            h = x
            for module in self.input_blocks:
                h = module(h, emb)
                hs.append(h)
            h = self.middle_block(h, emb)

        if control is not None:
            h += control.pop()

        for i, module in enumerate(self.output_blocks):
            if only_mid_control or control is None:
                h = torch.cat([h, hs.pop()], dim=1)
            else:
                h = torch.cat([h, hs.pop() + control.pop()], dim=1)
            h = module(h, emb)

        return self.out(h)


class ControlNet(nn.Module):
    def __init__(self, in_channels=1, hint_channels=1, model_channels=8):
        super().__init__()
        ch = model_channels
        self.model_channels = ch
        time_embed_dim = ch * 2
        self.time_embed = nn.Sequential(
            nn.Linear(ch, time_embed_dim), nn.SiLU(), nn.Linear(time_embed_dim, time_embed_dim)
        )
        self.input_hint_block = TimestepEmbedSequential(
            nn.Conv2d(hint_channels, 4, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(4, 4, 3, padding=1),
            nn.SiLU(),
            zero_module(nn.Conv2d(4, ch, 3, padding=1)),
        )
        self.input_blocks = nn.ModuleList(
            [
                TimestepEmbedSequential(nn.Conv2d(in_channels, ch, 3, padding=1)),
                TimestepEmbedSequential(ResBlock(ch, time_embed_dim)),
                TimestepEmbedSequential(Downsample(ch)),
                TimestepEmbedSequential(ResBlock(ch, time_embed_dim, 2 * ch)),
            ]
        )
        self.zero_convs = nn.ModuleList([self.make_zero_conv(c) for c in (ch, ch, ch, 2 * ch)])
        self.middle_block = TimestepEmbedSequential(
            ResBlock(2 * ch, time_embed_dim), ResBlock(2 * ch, time_embed_dim)
        )
        self.middle_block_out = self.make_zero_conv(2 * ch)

    def make_zero_conv(self, channels):
        return TimestepEmbedSequential(zero_module(nn.Conv2d(channels, channels, 1, padding=0)))

    def forward(self, x, hint, timesteps):
        t_emb = timestep_embedding(timesteps, self.model_channels)
        emb = self.time_embed(t_emb)

        guided_hint = self.input_hint_block(hint, emb)

        outs = []

        h = x
        for module, zero_conv in zip(self.input_blocks, self.zero_convs):
            if guided_hint is not None:
                h = module(h, emb)
                h += guided_hint
                guided_hint = None
            else:
                h = module(h, emb)
            outs.append(zero_conv(h, emb))

        h = self.middle_block(h, emb)
        outs.append(self.middle_block_out(h, emb))

        return outs


# --- toy data: filled squares and discs, conditioned on their edges ------------------------------
rng = np.random.RandomState(0)
S = 16


def make_shapes(n):
    yy, xx = np.mgrid[0:S, 0:S]
    imgs = np.empty((n, 1, S, S), np.float32)
    for i in range(n):
        cy, cx = rng.uniform(4, S - 4, size=2)
        r = rng.uniform(2.5, 4.5)
        if rng.rand() < 0.5:
            inside = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
        else:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        imgs[i, 0] = np.where(inside, 1.0, -1.0)
    # the condition image: where a pixel differs from a 4-neighbour
    pad = np.pad(imgs, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    edges = np.zeros_like(imgs)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edges = np.maximum(edges, np.abs(pad[:, :, dy : dy + S, dx : dx + S] - imgs) / 2)
    return torch.from_numpy(imgs), torch.from_numpy(edges.astype(np.float32))


x_train, hint_train = make_shapes(512)
x_val, hint_val = make_shapes(64)
print(f"images {tuple(x_train.shape)} hints {tuple(hint_train.shape)} edge pixels {hint_train.mean().item():.3f}")

T = 100
betas = torch.linspace(1e-4, 0.1, T)
alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
sqrt_alphas_cumprod = torch.sqrt(alphas_cumprod)
sqrt_one_minus_alphas_cumprod = torch.sqrt(1.0 - alphas_cumprod)


def q_sample(x_start, t, noise):
    return (
        sqrt_alphas_cumprod[t].view(-1, 1, 1, 1) * x_start
        + sqrt_one_minus_alphas_cumprod[t].view(-1, 1, 1, 1) * noise
    )


# --- stage 1: the "pretrained" unconditional UNet ------------------------------------------------
unet = UNetModel()
opt = torch.optim.AdamW(unet.parameters(), lr=2e-3, weight_decay=0.0)
batch = 16
for step in range(60):
    idx = torch.randint(0, x_train.shape[0], (batch,))
    x0 = x_train[idx]
    t = torch.randint(0, T, (batch,), dtype=torch.long)
    noise = torch.randn_like(x0)
    loss = F.mse_loss(unet(q_sample(x0, t, noise), t), noise)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"pretrain: 60 steps, last loss {loss.item():.4f}")

# --- stage 2: lock it, attach a ControlNet -------------------------------------------------------
locked = ControlledUnetModel()
locked.load_state_dict(copy.deepcopy(unet.state_dict()))
locked.requires_grad_(False)
locked.eval()
locked_state = copy.deepcopy(locked.state_dict())

control_model = ControlNet()
result = control_model.load_state_dict(unet.state_dict(), strict=False)
missing_prefixes = sorted({k.split(".")[0] for k in result.missing_keys})
unexpected_prefixes = sorted({k.split(".")[0] for k in result.unexpected_keys})
print(f"ControlNet from UNet: missing {missing_prefixes} unexpected {unexpected_prefixes}")
assert missing_prefixes == ["input_hint_block", "middle_block_out", "zero_convs"]
assert unexpected_prefixes == ["out", "output_blocks"]
assert torch.equal(control_model.input_blocks[3][0].in_layers[2].weight, unet.input_blocks[3][0].in_layers[2].weight)

params = list(filter(lambda p: p.requires_grad, list(locked.parameters()) + list(control_model.parameters())))
n_trainable = sum(p.numel() for p in params)
n_locked = sum(p.numel() for p in locked.parameters())
print(f"trainable {n_trainable} locked {n_locked}")
assert all(not p.requires_grad for p in locked.parameters())
optimizer = torch.optim.AdamW(params, lr=2e-3)


def controlled(x_noisy, hint, t):
    control = control_model(x_noisy, hint, t)
    return locked(x_noisy, t, control=control)


g = torch.Generator().manual_seed(1234)
t_val = torch.randint(0, T, (x_val.shape[0],), generator=g)
noise_val = torch.randn(x_val.shape, generator=g)
x_noisy_val = q_sample(x_val, t_val, noise_val)


def val_losses():
    with torch.no_grad():
        c = F.mse_loss(controlled(x_noisy_val, hint_val, t_val), noise_val).item()
        u = F.mse_loss(locked(x_noisy_val, t_val), noise_val).item()
    return c, u


# zero convolutions: at the start, the controlled model is the locked model, bit for bit
with torch.no_grad():
    out_c = controlled(x_noisy_val, hint_val, t_val)
    out_u = locked(x_noisy_val, t_val)
step0_equal = torch.equal(out_c, out_u)
print(f"step 0: controlled == locked: {step0_equal} max diff {(out_c - out_u).abs().max().item():.1e}")
assert step0_equal

zero_conv_params = {id(p) for m in list(control_model.zero_convs) + [control_model.middle_block_out] for p in m.parameters()}
losses = []
for step in range(1, 121):
    idx = torch.randint(0, x_train.shape[0], (batch,))
    x0, hint = x_train[idx], hint_train[idx]
    t = torch.randint(0, T, (batch,), dtype=torch.long)
    noise = torch.randn_like(x0)
    eps = controlled(q_sample(x0, t, noise), hint, t)
    loss = F.mse_loss(eps, noise)
    optimizer.zero_grad()
    loss.backward()
    if step == 1:
        nonzero_zc = sum(int(p.grad.abs().sum().item() > 0) for p in params if id(p) in zero_conv_params)
        nonzero_other = sum(int(p.grad.abs().sum().item() > 0) for p in params if id(p) not in zero_conv_params)
        print(f"step 1 grads: zero convs nonzero {nonzero_zc} of {len(zero_conv_params)}, others nonzero {nonzero_other}")
        assert nonzero_other == 0 and nonzero_zc > 0
    optimizer.step()
    losses.append(loss.item())
    if step % 40 == 0:
        c, u = val_losses()
        print(f"step {step} train loss {np.mean(losses[-40:]):.4f} val controlled {c:.4f} locked {u:.4f}")

for k, v in locked.state_dict().items():
    assert torch.equal(v, locked_state[k]), k
locked_unchanged = all(torch.equal(v, locked_state[k]) for k, v in locked.state_dict().items())
zero_conv_norm = sum(
    m[0].weight.norm().item() for m in list(control_model.zero_convs) + [control_model.middle_block_out]
)
print(f"locked weights unchanged: {locked_unchanged}, zero-conv weight norm {zero_conv_norm:.4f}")
assert locked_unchanged and zero_conv_norm > 0

c, u = val_losses()
loss_first, loss_last = np.mean(losses[:20]), np.mean(losses[-20:])
print(f"train loss {loss_first:.4f} -> {loss_last:.4f}; val controlled {c:.4f} vs locked {u:.4f}")
assert c < u
print(
    f"FINAL loss={loss_last:.4f} val_loss={c:.4f} control_gain={u - c:.4f} val_ratio={c / u:.4f} "
    f"zero_conv_norm={zero_conv_norm:.4f}"
)
