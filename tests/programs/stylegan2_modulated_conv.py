"""rosinality/stylegan2-pytorch pieces at tiny sizes, trained as a GAN on 8x8 synthetic blobs.

``EqualLinear``/``EqualConv2d`` (equalised learning rate: ``weight * self.scale`` at run time,
``lr_mul``), ``PixelNorm`` (``input * torch.rsqrt(torch.mean(input ** 2, dim=1, keepdim=True) + 1e-8)``),
``ModulatedConv2d`` with demodulation (``style.view(batch, 1, in_channel, 1, 1)``, ``torch.rsqrt(
weight.pow(2).sum([2, 3, 4]) + 1e-8)``, the grouped conv ``F.conv2d(input.view(1, batch * in_channel,
height, width), weight.view(batch * out, in, k, k), padding=..., groups=batch)``) checked against a
per-sample loop, ``NoiseInjection`` by ``image.new_empty(batch, 1, height, width).normal_()``,
``fused_leaky_relu`` as ``F.leaky_relu(input + bias, 0.2) * math.sqrt(2)``, a PixelNorm + EqualLinear
mapping network, ``F.interpolate`` upsampling, the non-saturating losses ``F.softplus(-fake_pred).mean()``,
the R1 penalty by ``autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)``, lazy
regularisation, path-length regularisation (``torch.randn_like(fake_img) / math.sqrt(h * w)``,
``autograd.grad(outputs=(fake_img * noise).sum(), inputs=latents, create_graph=True)``, the running
``mean_path_length``), ``accumulate`` (an EMA generator through ``dict(model.named_parameters())``),
``requires_grad(model, flag)``, and Adam with the lazy-regularisation ``betas=(0 ** c, 0.99 ** c)``.
"""

import math
import os
from copy import deepcopy

import numpy as np
import torch
from torch import autograd, nn
from torch.nn import functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, STYLE_DIM, BATCH = 8, 16, 16


def real_images(n):
    """Soft Gaussian blobs at random centres in 2 channels: channel 1 is the blob, channel 2 its negative."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    centres = rng.uniform(2, SIZE - 3, size=(n, 2))
    blob = np.exp(-((yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2) / 3.0)
    images = np.stack([blob * 2 - 1, 1 - blob * 2], axis=1)
    return torch.from_numpy(images.astype(np.float32))


def fused_leaky_relu(input, bias, negative_slope=0.2, scale=2 ** 0.5):
    rest_dim = [1] * (input.ndim - bias.ndim - 1)
    return F.leaky_relu(input + bias.view(1, bias.shape[0], *rest_dim), negative_slope=negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel, bias=True, negative_slope=0.2, scale=2 ** 0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, input):
        return fused_leaky_relu(input, self.bias, self.negative_slope, self.scale)


class PixelNorm(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, input):
        return input * torch.rsqrt(torch.mean(input ** 2, dim=1, keepdim=True) + 1e-8)


class EqualConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.stride = stride
        self.padding = padding
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channel))
        else:
            self.bias = None

    def forward(self, input):
        out = F.conv2d(input, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)
        return out

    def __repr__(self):
        return (
            f"{self.__class__.__name__}({self.weight.shape[1]}, {self.weight.shape[0]},"
            f" {self.weight.shape[2]}, stride={self.stride}, padding={self.padding})"
        )


class EqualLinear(nn.Module):
    def __init__(self, in_dim, out_dim, bias=True, bias_init=0, lr_mul=1, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init))
        else:
            self.bias = None
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, input):
        if self.activation:
            out = F.linear(input, self.weight * self.scale)
            out = fused_leaky_relu(out, self.bias * self.lr_mul)
        else:
            out = F.linear(input, self.weight * self.scale, bias=self.bias * self.lr_mul)
        return out

    def __repr__(self):
        return f"{self.__class__.__name__}({self.weight.shape[1]}, {self.weight.shape[0]})"


class ModulatedConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True, upsample=False):
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        fan_in = in_channel * kernel_size ** 2
        self.scale = 1 / math.sqrt(fan_in)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate

    def forward(self, input, style):
        batch, in_channel, height, width = input.shape

        style = self.modulation(style).view(batch, 1, in_channel, 1, 1)
        weight = self.scale * self.weight * style

        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)

        weight = weight.view(batch * self.out_channel, in_channel, self.kernel_size, self.kernel_size)

        if self.upsample:
            input = F.interpolate(input, scale_factor=2, mode="bilinear", align_corners=False)
            height, width = input.shape[2:]

        input = input.view(1, batch * in_channel, height, width)
        out = F.conv2d(input, weight, padding=self.padding, groups=batch)
        _, _, height, width = out.shape
        out = out.view(batch, self.out_channel, height, width)
        return out


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image, noise=None):
        if noise is None:
            batch, _, height, width = image.shape
            noise = image.new_empty(batch, 1, height, width).normal_()
        return image + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channel, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, input):
        batch = input.shape[0]
        out = self.input.repeat(batch, 1, 1, 1)
        return out


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False, demodulate=True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
                                    demodulate=demodulate)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, input, style, noise=None):
        out = self.conv(input, style)
        out = self.noise(out, noise=noise)
        out = self.activate(out)
        return out


class ToRGB(nn.Module):
    def __init__(self, in_channel, style_dim, upsample=True):
        super().__init__()
        self.upsample = upsample
        self.conv = ModulatedConv2d(in_channel, 2, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 2, 1, 1))

    def forward(self, input, style, skip=None):
        out = self.conv(input, style)
        out = out + self.bias
        if skip is not None:
            if self.upsample:
                skip = F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
            out = out + skip
        return out


class Generator(nn.Module):
    def __init__(self, style_dim=STYLE_DIM, n_mlp=3, channel=16, lr_mlp=0.01):
        super().__init__()
        self.style_dim = style_dim
        layers = [PixelNorm()]
        for i in range(n_mlp):  # noqa: B007  (the repository's own loop)
            layers.append(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu"))
        self.style = nn.Sequential(*layers)

        self.input = ConstantInput(channel)
        self.conv1 = StyledConv(channel, channel, 3, style_dim)
        self.to_rgb1 = ToRGB(channel, style_dim, upsample=False)
        self.conv_up = StyledConv(channel, channel, 3, style_dim, upsample=True)
        self.conv2 = StyledConv(channel, channel, 3, style_dim)
        self.to_rgb2 = ToRGB(channel, style_dim)

    def mean_latent(self, n_latent):
        latent_in = torch.randn(n_latent, self.style_dim, device=self.input.input.device)
        latent = self.style(latent_in).mean(0, keepdim=True)
        return latent

    def forward(self, styles, return_latents=False, truncation=1, truncation_latent=None):
        latent = self.style(styles)
        if truncation < 1:
            latent = truncation_latent + truncation * (latent - truncation_latent)
        out = self.input(latent)
        out = self.conv1(out, latent)
        skip = self.to_rgb1(out, latent)
        out = self.conv_up(out, latent)
        out = self.conv2(out, latent)
        image = self.to_rgb2(out, latent, skip)
        if return_latents:
            return image, latent
        return image, None


class Discriminator(nn.Module):
    def __init__(self, channel=16):
        super().__init__()
        self.convs = nn.Sequential(
            EqualConv2d(2, channel, 1), FusedLeakyReLU(channel),
            EqualConv2d(channel, channel, 3, padding=1), FusedLeakyReLU(channel),
            EqualConv2d(channel, channel, 3, stride=2, padding=1), FusedLeakyReLU(channel),
        )
        self.final_linear = nn.Sequential(
            EqualLinear(channel * 4 * 4, channel, activation="fused_lrelu"),
            EqualLinear(channel, 1),
        )

    def forward(self, input):
        out = self.convs(input)
        batch = out.shape[0]
        out = out.view(batch, -1)
        return self.final_linear(out)


def requires_grad(model, flag=True):
    for p in model.parameters():
        p.requires_grad = flag


def accumulate(model1, model2, decay=0.999):
    par1 = dict(model1.named_parameters())
    par2 = dict(model2.named_parameters())
    for k in par1.keys():
        par1[k].data.mul_(decay).add_(par2[k].data, alpha=1 - decay)


def d_logistic_loss(real_pred, fake_pred):
    real_loss = F.softplus(-real_pred)
    fake_loss = F.softplus(fake_pred)
    return real_loss.mean() + fake_loss.mean()


def d_r1_loss(real_pred, real_img):
    grad_real, = autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)
    grad_penalty = grad_real.pow(2).reshape(grad_real.shape[0], -1).sum(1).mean()
    return grad_penalty


def g_nonsaturating_loss(fake_pred):
    loss = F.softplus(-fake_pred).mean()
    return loss


def g_path_regularize(fake_img, latents, mean_path_length, decay=0.01):
    noise = torch.randn_like(fake_img) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
    grad, = autograd.grad(outputs=(fake_img * noise).sum(), inputs=latents, create_graph=True)
    path_lengths = torch.sqrt(grad.pow(2).sum(1))
    path_mean = mean_path_length + decay * (path_lengths.mean() - mean_path_length)
    path_penalty = (path_lengths - path_mean).pow(2).mean()
    return path_penalty, path_mean.detach(), path_lengths


# the grouped modulated conv against one conv per sample with its own demodulated weight
probe_conv = ModulatedConv2d(4, 6, 3, STYLE_DIM)
probe_x, probe_s = torch.randn(3, 4, 5, 5), torch.randn(3, STYLE_DIM)
grouped = probe_conv(probe_x, probe_s)
per_sample = []
for b in range(3):
    s = probe_conv.modulation(probe_s[b:b + 1]).view(1, 4, 1, 1)
    w = probe_conv.scale * probe_conv.weight[0] * s
    w = w * torch.rsqrt(w.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)
    per_sample.append(F.conv2d(probe_x[b:b + 1], w, padding=1))
per_sample = torch.cat(per_sample)
print(f"grouped modulated conv {tuple(grouped.shape)} equals the per-sample loop: "
      f"{torch.allclose(grouped, per_sample, atol=1e-5)}")

generator = Generator()
discriminator = Discriminator()
g_ema = deepcopy(generator)
g_ema.eval()
accumulate(g_ema, generator, 0)
print(f"generator {sum(p.numel() for p in generator.parameters())} parameters, "
      f"discriminator {discriminator.final_linear[0]}, {discriminator.convs[2]}")

g_reg_every, d_reg_every, r1, path_regularize = 4, 4, 1.0, 0.5
g_reg_ratio = g_reg_every / (g_reg_every + 1)
d_reg_ratio = d_reg_every / (d_reg_every + 1)
g_optim = torch.optim.Adam(generator.parameters(), lr=0.004 * g_reg_ratio,
                           betas=(0 ** g_reg_ratio, 0.99 ** g_reg_ratio))
d_optim = torch.optim.Adam(discriminator.parameters(), lr=0.004 * d_reg_ratio,
                           betas=(0 ** d_reg_ratio, 0.99 ** d_reg_ratio))

mean_path_length = 0
accum = 0.5 ** (32 / (10 * 1000))
ITERS = 80
for idx in range(ITERS):
    i = idx + 1
    real_img = real_images(BATCH)

    requires_grad(generator, False)
    requires_grad(discriminator, True)
    noise = torch.randn(BATCH, STYLE_DIM)
    fake_img, _ = generator(noise)
    fake_pred = discriminator(fake_img)
    real_pred = discriminator(real_img)
    d_loss = d_logistic_loss(real_pred, fake_pred)
    discriminator.zero_grad()
    d_loss.backward()
    d_optim.step()

    if i % d_reg_every == 0:
        real_img.requires_grad = True
        real_pred = discriminator(real_img)
        r1_loss = d_r1_loss(real_pred, real_img)
        discriminator.zero_grad()
        (r1 / 2 * r1_loss * d_reg_every + 0 * real_pred[0]).backward()
        d_optim.step()

    requires_grad(generator, True)
    requires_grad(discriminator, False)
    noise = torch.randn(BATCH, STYLE_DIM)
    fake_img, _ = generator(noise)
    fake_pred = discriminator(fake_img)
    g_loss = g_nonsaturating_loss(fake_pred)
    generator.zero_grad()
    g_loss.backward()
    g_optim.step()

    if i % g_reg_every == 0:
        path_batch_size = max(1, BATCH // 2)
        noise = torch.randn(path_batch_size, STYLE_DIM)
        fake_img, latents = generator(noise, return_latents=True)
        path_loss, mean_path_length, path_lengths = g_path_regularize(fake_img, latents, mean_path_length)
        generator.zero_grad()
        weighted_path_loss = path_regularize * g_reg_every * path_loss
        weighted_path_loss += 0 * fake_img[0, 0, 0, 0]
        weighted_path_loss.backward()
        g_optim.step()

    accumulate(g_ema, generator, accum)

    if i % 20 == 0:
        print(f"iter {i}: d {d_loss.item():.4f}; g {g_loss.item():.4f}; r1 {r1_loss.item():.4f}; "
              f"path {path_loss.item():.4f}; mean path {mean_path_length.item():.4f}")

with torch.no_grad():
    g_ema.eval()
    mean_latent = g_ema.mean_latent(256)
    sample, _ = g_ema(torch.randn(64, STYLE_DIM), truncation=0.7, truncation_latent=mean_latent)
    real = real_images(64)
    # how blob-like the samples are: channel 2 should be the negative of channel 1
    anti = (sample[:, 0] + sample[:, 1]).abs().mean().item()
    mean_gap = (sample.mean((0, 2, 3)) - real.mean((0, 2, 3))).abs().mean().item()
    d_real = discriminator(real).mean().item()
    d_fake = discriminator(sample).mean().item()
print(f"samples {tuple(sample.shape)}: channel sum {anti:.4f}, mean gap {mean_gap:.4f}, "
      f"D real {d_real:.4f} fake {d_fake:.4f}")
print(f"FINAL d_loss={d_loss.item():.4f} g_loss={g_loss.item():.4f} r1={r1_loss.item():.4f} "
      f"mean_path={mean_path_length.item():.4f} channel_sum={anti:.4f} mean_gap={mean_gap:.4f}")
