"""Latent diffusion's first stage (CompVis/stable-diffusion ``AutoencoderKL``) at a tiny size.

``ldm/modules/diffusionmodules/model.py``'s pieces: ``Normalize`` as ``GroupNorm`` (4 groups here for 32,
``eps=1e-6``), ``nonlinearity`` as ``x * torch.sigmoid(x)``, ``ResnetBlock`` with a 1x1 ``nin_shortcut``,
the mid ``AttnBlock`` (1x1 q/k/v convs, ``q.reshape(b, c, h * w).permute(0, 2, 1)``, ``torch.bmm``,
``w_ * (int(c) ** (-0.5))``, ``F.softmax(w_, dim=2)``; checked against ``F.scaled_dot_product_attention``),
``Downsample`` by ``F.pad(x, (0, 1, 0, 1), mode="constant", value=0)`` + a stride-2 3x3 conv,
``Upsample`` by ``F.interpolate(x, scale_factor=2.0, mode="nearest")`` + conv, ``Encoder`` with
``double_z`` and ``Decoder``; ``DiagonalGaussianDistribution`` (``torch.chunk(parameters, 2, dim=1)``,
``torch.clamp(self.logvar, -30.0, 20.0)``, ``sample``, ``kl()``, ``nll()``, ``mode()``; ``kl``/``nll``
checked against ``torch.distributions``); ``LPIPSWithDiscriminator`` without LPIPS: L1 reconstruction over
a learned ``logvar``, KL weight, ``NLayerDiscriminator`` (PatchGAN, ``weights_init``) with
``hinge_d_loss``, ``adopt_weight`` switching the GAN terms on after ``disc_start`` steps, and
``calculate_adaptive_weight`` by ``torch.autograd.grad(..., self.last_layer[0], retain_graph=True)``
norms. Checks: reconstruction error falling, the KL finite, the sampled latent's standardised noise.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


def nonlinearity(x):
    # swish
    return x * torch.sigmoid(x)


def Normalize(in_channels, num_groups=4):
    return torch.nn.GroupNorm(num_groups=num_groups, num_channels=in_channels, eps=1e-6, affine=True)


class Upsample(nn.Module):
    def __init__(self, in_channels, with_conv):
        super().__init__()
        self.with_conv = with_conv
        if self.with_conv:
            self.conv = torch.nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x):
        x = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.with_conv:
            x = self.conv(x)
        return x


class Downsample(nn.Module):
    def __init__(self, in_channels, with_conv):
        super().__init__()
        self.with_conv = with_conv
        if self.with_conv:
            # no asymmetric padding in torch conv, must do it ourselves
            self.conv = torch.nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x):
        if self.with_conv:
            pad = (0, 1, 0, 1)
            x = torch.nn.functional.pad(x, pad, mode="constant", value=0)
            x = self.conv(x)
        else:
            x = torch.nn.functional.avg_pool2d(x, kernel_size=2, stride=2)
        return x


class ResnetBlock(nn.Module):
    def __init__(self, *, in_channels, out_channels=None, conv_shortcut=False, dropout=0.0):
        super().__init__()
        self.in_channels = in_channels
        out_channels = in_channels if out_channels is None else out_channels
        self.out_channels = out_channels
        self.use_conv_shortcut = conv_shortcut

        self.norm1 = Normalize(in_channels)
        self.conv1 = torch.nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.norm2 = Normalize(out_channels)
        self.dropout = torch.nn.Dropout(dropout)
        self.conv2 = torch.nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if self.in_channels != self.out_channels:
            if self.use_conv_shortcut:
                self.conv_shortcut = torch.nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
            else:
                self.nin_shortcut = torch.nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        h = x
        h = self.norm1(h)
        h = nonlinearity(h)
        h = self.conv1(h)
        h = self.norm2(h)
        h = nonlinearity(h)
        h = self.dropout(h)
        h = self.conv2(h)
        if self.in_channels != self.out_channels:
            if self.use_conv_shortcut:
                x = self.conv_shortcut(x)
            else:
                x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.in_channels = in_channels
        self.norm = Normalize(in_channels)
        self.q = torch.nn.Conv2d(in_channels, in_channels, kernel_size=1, stride=1, padding=0)
        self.k = torch.nn.Conv2d(in_channels, in_channels, kernel_size=1, stride=1, padding=0)
        self.v = torch.nn.Conv2d(in_channels, in_channels, kernel_size=1, stride=1, padding=0)
        self.proj_out = torch.nn.Conv2d(in_channels, in_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        h_ = x
        h_ = self.norm(h_)
        q = self.q(h_)
        k = self.k(h_)
        v = self.v(h_)

        # compute attention
        b, c, h, w = q.shape
        q = q.reshape(b, c, h * w)
        q = q.permute(0, 2, 1)   # b,hw,c
        k = k.reshape(b, c, h * w)  # b,c,hw
        w_ = torch.bmm(q, k)     # b,hw,hw    w[b,i,j]=sum_c q[b,i,c]k[b,c,j]
        w_ = w_ * (int(c) ** (-0.5))
        w_ = torch.nn.functional.softmax(w_, dim=2)

        # attend to values
        v = v.reshape(b, c, h * w)
        w_ = w_.permute(0, 2, 1)   # b,hw,hw (first hw of k, second of q)
        h_ = torch.bmm(v, w_)     # b, c,hw (hw of q) h_[b,c,j] = sum_i v[b,c,i] w_[b,i,j]
        h_ = h_.reshape(b, c, h, w)

        h_ = self.proj_out(h_)

        return x + h_


class Encoder(nn.Module):
    def __init__(self, *, ch, ch_mult=(1, 2), num_res_blocks, attn_resolutions, dropout=0.0, resamp_with_conv=True,
                 in_channels, resolution, z_channels, double_z=True, **ignore_kwargs):
        super().__init__()
        self.ch = ch
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        self.resolution = resolution
        self.in_channels = in_channels

        # downsampling
        self.conv_in = torch.nn.Conv2d(in_channels, self.ch, kernel_size=3, stride=1, padding=1)

        curr_res = resolution
        in_ch_mult = (1,) + tuple(ch_mult)
        self.in_ch_mult = in_ch_mult
        self.down = nn.ModuleList()
        for i_level in range(self.num_resolutions):
            block = nn.ModuleList()
            attn = nn.ModuleList()
            block_in = ch * in_ch_mult[i_level]
            block_out = ch * ch_mult[i_level]
            for i_block in range(self.num_res_blocks):  # noqa: B007  (as written)
                block.append(ResnetBlock(in_channels=block_in, out_channels=block_out, dropout=dropout))
                block_in = block_out
                if curr_res in attn_resolutions:
                    attn.append(AttnBlock(block_in))
            down = nn.Module()
            down.block = block
            down.attn = attn
            if i_level != self.num_resolutions - 1:
                down.downsample = Downsample(block_in, resamp_with_conv)
                curr_res = curr_res // 2
            self.down.append(down)

        # middle
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(in_channels=block_in, out_channels=block_in, dropout=dropout)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(in_channels=block_in, out_channels=block_in, dropout=dropout)

        # end
        self.norm_out = Normalize(block_in)
        self.conv_out = torch.nn.Conv2d(block_in, 2 * z_channels if double_z else z_channels,
                                        kernel_size=3, stride=1, padding=1)

    def forward(self, x):
        # downsampling
        hs = [self.conv_in(x)]
        for i_level in range(self.num_resolutions):
            for i_block in range(self.num_res_blocks):
                h = self.down[i_level].block[i_block](hs[-1])
                if len(self.down[i_level].attn) > 0:
                    h = self.down[i_level].attn[i_block](h)
                hs.append(h)
            if i_level != self.num_resolutions - 1:
                hs.append(self.down[i_level].downsample(hs[-1]))

        # middle
        h = hs[-1]
        h = self.mid.block_1(h)
        h = self.mid.attn_1(h)
        h = self.mid.block_2(h)

        # end
        h = self.norm_out(h)
        h = nonlinearity(h)
        h = self.conv_out(h)
        return h


class Decoder(nn.Module):
    def __init__(self, *, ch, out_ch, ch_mult=(1, 2), num_res_blocks, attn_resolutions, dropout=0.0,
                 resamp_with_conv=True, in_channels, resolution, z_channels, **ignorekwargs):
        super().__init__()
        self.ch = ch
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        self.resolution = resolution
        self.in_channels = in_channels

        # compute in_ch_mult, block_in and curr_res at lowest res
        block_in = ch * ch_mult[self.num_resolutions - 1]
        curr_res = resolution // 2 ** (self.num_resolutions - 1)
        self.z_shape = (1, z_channels, curr_res, curr_res)
        print("Working with z of shape {} = {} dimensions.".format(self.z_shape, np.prod(self.z_shape)))  # noqa: UP032  (as written)

        # z to block_in
        self.conv_in = torch.nn.Conv2d(z_channels, block_in, kernel_size=3, stride=1, padding=1)

        # middle
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(in_channels=block_in, out_channels=block_in, dropout=dropout)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(in_channels=block_in, out_channels=block_in, dropout=dropout)

        # upsampling
        self.up = nn.ModuleList()
        for i_level in reversed(range(self.num_resolutions)):
            block = nn.ModuleList()
            attn = nn.ModuleList()
            block_out = ch * ch_mult[i_level]
            for i_block in range(self.num_res_blocks + 1):  # noqa: B007  (as written)
                block.append(ResnetBlock(in_channels=block_in, out_channels=block_out, dropout=dropout))
                block_in = block_out
                if curr_res in attn_resolutions:
                    attn.append(AttnBlock(block_in))
            up = nn.Module()
            up.block = block
            up.attn = attn
            if i_level != 0:
                up.upsample = Upsample(block_in, resamp_with_conv)
                curr_res = curr_res * 2
            self.up.insert(0, up)  # prepend to get consistent order

        # end
        self.norm_out = Normalize(block_in)
        self.conv_out = torch.nn.Conv2d(block_in, out_ch, kernel_size=3, stride=1, padding=1)

    def forward(self, z):
        self.last_z_shape = z.shape

        # z to block_in
        h = self.conv_in(z)

        # middle
        h = self.mid.block_1(h)
        h = self.mid.attn_1(h)
        h = self.mid.block_2(h)

        # upsampling
        for i_level in reversed(range(self.num_resolutions)):
            for i_block in range(self.num_res_blocks + 1):
                h = self.up[i_level].block[i_block](h)
                if len(self.up[i_level].attn) > 0:
                    h = self.up[i_level].attn[i_block](h)
            if i_level != 0:
                h = self.up[i_level].upsample(h)

        h = self.norm_out(h)
        h = nonlinearity(h)
        h = self.conv_out(h)
        return h


class DiagonalGaussianDistribution(object):  # noqa: UP004  (as written)
    def __init__(self, parameters, deterministic=False):
        self.parameters = parameters
        self.mean, self.logvar = torch.chunk(parameters, 2, dim=1)
        self.logvar = torch.clamp(self.logvar, -30.0, 20.0)
        self.deterministic = deterministic
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)
        if self.deterministic:
            self.var = self.std = torch.zeros_like(self.mean).to(device=self.parameters.device)

    def sample(self):
        x = self.mean + self.std * torch.randn(self.mean.shape).to(device=self.parameters.device)
        return x

    def kl(self, other=None):
        if self.deterministic:
            return torch.Tensor([0.])
        else:
            if other is None:
                return 0.5 * torch.sum(torch.pow(self.mean, 2)
                                       + self.var - 1.0 - self.logvar,
                                       dim=[1, 2, 3])
            else:
                return 0.5 * torch.sum(
                    torch.pow(self.mean - other.mean, 2) / other.var
                    + self.var / other.var - 1.0 - self.logvar + other.logvar,
                    dim=[1, 2, 3])

    def nll(self, sample, dims=[1, 2, 3]):  # noqa: B006  (the repository's signature)
        if self.deterministic:
            return torch.Tensor([0.])
        logtwopi = np.log(2.0 * np.pi)
        return 0.5 * torch.sum(
            logtwopi + self.logvar + torch.pow(sample - self.mean, 2) / self.var,
            dim=dims)

    def mode(self):
        return self.mean


class AutoencoderKL(nn.Module):
    def __init__(self, ddconfig, embed_dim):
        super().__init__()
        self.encoder = Encoder(**ddconfig)
        self.decoder = Decoder(**ddconfig)
        assert ddconfig["double_z"]
        self.quant_conv = torch.nn.Conv2d(2 * ddconfig["z_channels"], 2 * embed_dim, 1)
        self.post_quant_conv = torch.nn.Conv2d(embed_dim, ddconfig["z_channels"], 1)
        self.embed_dim = embed_dim

    def encode(self, x):
        h = self.encoder(x)
        moments = self.quant_conv(h)
        posterior = DiagonalGaussianDistribution(moments)
        return posterior

    def decode(self, z):
        z = self.post_quant_conv(z)
        dec = self.decoder(z)
        return dec

    def forward(self, input, sample_posterior=True):
        posterior = self.encode(input)
        if sample_posterior:
            z = posterior.sample()
        else:
            z = posterior.mode()
        dec = self.decode(z)
        return dec, posterior

    def get_last_layer(self):
        return self.decoder.conv_out.weight


# ---- the discriminator and the loss (taming-transformers' pieces, LPIPS left out) ----
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class NLayerDiscriminator(nn.Module):
    """Defines a PatchGAN discriminator as in Pix2Pix"""

    def __init__(self, input_nc=3, ndf=8, n_layers=2):
        super().__init__()
        norm_layer = nn.BatchNorm2d
        use_bias = norm_layer != nn.BatchNorm2d
        kw = 4
        padw = 1
        sequence = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        nf_mult_prev = 1
        for n in range(1, n_layers):  # gradually increase the number of filters
            nf_mult_prev = nf_mult
            nf_mult = min(2 ** n, 8)
            sequence += [
                nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw, bias=use_bias),
                norm_layer(ndf * nf_mult),
                nn.LeakyReLU(0.2, True)
            ]
        sequence += [
            nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]  # output 1 channel prediction map
        self.main = nn.Sequential(*sequence)

    def forward(self, input):
        return self.main(input)


def adopt_weight(weight, global_step, threshold=0, value=0.):
    if global_step < threshold:
        weight = value
    return weight


def hinge_d_loss(logits_real, logits_fake):
    loss_real = torch.mean(F.relu(1. - logits_real))
    loss_fake = torch.mean(F.relu(1. + logits_fake))
    d_loss = 0.5 * (loss_real + loss_fake)
    return d_loss


class LPIPSWithDiscriminator(nn.Module):
    def __init__(self, disc_start, logvar_init=0.0, kl_weight=1.0, disc_factor=1.0, disc_weight=1.0):
        super().__init__()
        self.kl_weight = kl_weight
        self.logvar = nn.Parameter(torch.ones(size=()) * logvar_init)
        self.discriminator = NLayerDiscriminator(input_nc=3, ndf=8, n_layers=2).apply(weights_init)
        self.discriminator_iter_start = disc_start
        self.disc_loss = hinge_d_loss
        self.disc_factor = disc_factor
        self.discriminator_weight = disc_weight

    def calculate_adaptive_weight(self, nll_loss, g_loss, last_layer=None):
        nll_grads = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
        g_grads = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
        d_weight = torch.norm(nll_grads) / (torch.norm(g_grads) + 1e-4)
        d_weight = torch.clamp(d_weight, 0.0, 1e4).detach()
        d_weight = d_weight * self.discriminator_weight
        return d_weight

    def forward(self, inputs, reconstructions, posteriors, optimizer_idx, global_step, last_layer=None, split="train"):
        rec_loss = torch.abs(inputs.contiguous() - reconstructions.contiguous())
        nll_loss = rec_loss / torch.exp(self.logvar) + self.logvar
        nll_loss = torch.sum(nll_loss) / nll_loss.shape[0]
        kl_loss = posteriors.kl()
        kl_loss = torch.sum(kl_loss) / kl_loss.shape[0]

        # now the GAN part
        if optimizer_idx == 0:
            # generator update
            logits_fake = self.discriminator(reconstructions.contiguous())
            g_loss = -torch.mean(logits_fake)
            if self.disc_factor > 0.0:
                try:
                    d_weight = self.calculate_adaptive_weight(nll_loss, g_loss, last_layer=last_layer)
                except RuntimeError:
                    assert not self.training
                    d_weight = torch.tensor(0.0)
            else:
                d_weight = torch.tensor(0.0)
            disc_factor = adopt_weight(self.disc_factor, global_step, threshold=self.discriminator_iter_start)
            loss = nll_loss + self.kl_weight * kl_loss + d_weight * disc_factor * g_loss
            log = {"{}/total_loss".format(split): loss.clone().detach().mean(),  # noqa: UP032
                   "{}/kl_loss".format(split): kl_loss.detach().mean(),  # noqa: UP032
                   "{}/rec_loss".format(split): rec_loss.detach().mean(),  # noqa: UP032
                   "{}/d_weight".format(split): d_weight.detach(),  # noqa: UP032
                   "{}/g_loss".format(split): g_loss.detach().mean()}  # noqa: UP032
            return loss, log

        if optimizer_idx == 1:
            # second pass for discriminator update
            logits_real = self.discriminator(inputs.contiguous().detach())
            logits_fake = self.discriminator(reconstructions.contiguous().detach())
            disc_factor = adopt_weight(self.disc_factor, global_step, threshold=self.discriminator_iter_start)
            d_loss = disc_factor * self.disc_loss(logits_real, logits_fake)
            log = {"{}/disc_loss".format(split): d_loss.clone().detach().mean(),  # noqa: UP032
                   "{}/logits_real".format(split): logits_real.detach().mean(),  # noqa: UP032
                   "{}/logits_fake".format(split): logits_fake.detach().mean()}  # noqa: UP032
            return d_loss, log


# ---- data: 16x16 RGB images of a few coloured rectangles on a tinted background ----
rng = np.random.RandomState(seed)
N, RES = 24, 16
images = np.zeros((N, 3, RES, RES), dtype=np.float32)
for i in range(N):
    images[i] += rng.uniform(-0.6, -0.2, size=(3, 1, 1))
    for _ in range(2):
        y0, x0 = rng.randint(0, RES - 5, size=2)
        hh, ww = rng.randint(3, 7, size=2)
        images[i, :, y0:y0 + hh, x0:x0 + ww] = rng.uniform(-1, 1, size=(3, 1, 1))
data = torch.from_numpy(images)

ddconfig = dict(double_z=True, z_channels=2, resolution=RES, in_channels=3, out_ch=3, ch=16, ch_mult=(1, 2),
                num_res_blocks=1, attn_resolutions=[], dropout=0.0)
model = AutoencoderKL(ddconfig, embed_dim=2)
loss_fn = LPIPSWithDiscriminator(disc_start=30, kl_weight=1e-4, disc_weight=0.5)

# the attention block equals scaled_dot_product_attention on (b, hw, c) tokens
attn = model.encoder.mid.attn_1
with torch.no_grad():
    x = torch.randn(2, 32, 8, 8)
    h_ = attn.norm(x)
    q, k, v = (t.reshape(2, 32, 64).permute(0, 2, 1) for t in (attn.q(h_), attn.k(h_), attn.v(h_)))
    sdpa = F.scaled_dot_product_attention(q, k, v).permute(0, 2, 1).reshape(2, 32, 8, 8)
    attn_gap = (attn(x) - (x + attn.proj_out(sdpa))).abs().max().item()
    down = model.encoder.down[0].downsample(torch.randn(1, 16, 16, 16))
    up = model.decoder.up[1].upsample(torch.randn(1, 32, 8, 8))
print(f"AttnBlock matches scaled_dot_product_attention: {attn_gap < 1e-4}; Downsample {tuple(down.shape)}, "
      f"Upsample {tuple(up.shape)}")

# the posterior's kl() and nll() against torch.distributions
with torch.no_grad():
    posterior = model.encode(data[:4])
    z = posterior.sample()
    q_dist = torch.distributions.Normal(posterior.mean, posterior.std)
    p_dist = torch.distributions.Normal(torch.zeros_like(posterior.mean), torch.ones_like(posterior.std))
    kl_gap = (posterior.kl() - torch.distributions.kl_divergence(q_dist, p_dist).sum(dim=[1, 2, 3])).abs().max().item()
    nll_gap = (posterior.nll(z) + q_dist.log_prob(z).sum(dim=[1, 2, 3])).abs().max().item()
    other = model.encode(data[4:8])
    kl_pair = posterior.kl(other)
    kl_pair_ref = torch.distributions.kl_divergence(q_dist, torch.distributions.Normal(other.mean, other.std)).sum(dim=[1, 2, 3])
    kl_pair_gap = ((kl_pair - kl_pair_ref).abs() / (kl_pair_ref.abs() + 1)).max().item()
    clamped = DiagonalGaussianDistribution(torch.cat([torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), -50.0)], dim=1))
print(f"latent {tuple(z.shape)}; kl, nll and pairwise kl match torch.distributions: "
      f"{kl_gap < 1e-3 and nll_gap < 1e-3 and kl_pair_gap < 1e-4}; logvar clamped to {clamped.logvar.min().item():.1f}")

opt_ae = torch.optim.Adam(list(model.encoder.parameters()) + list(model.decoder.parameters())
                          + list(model.quant_conv.parameters()) + list(model.post_quant_conv.parameters())
                          + [loss_fn.logvar], lr=2e-3, betas=(0.5, 0.9))
opt_disc = torch.optim.Adam(loss_fn.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.9))

STEPS, BATCH = 45, 8
rec_hist, d_losses, d_weights = [], [], []
for global_step in range(STEPS):
    idx = torch.randint(0, N, (BATCH,))
    inputs = data[idx]
    reconstructions, posterior = model(inputs)
    # generator / autoencoder step
    aeloss, log_dict_ae = loss_fn(inputs, reconstructions, posterior, 0, global_step,
                                  last_layer=model.get_last_layer(), split="train")
    opt_ae.zero_grad()
    aeloss.backward()
    opt_ae.step()
    # discriminator step
    discloss, log_dict_disc = loss_fn(inputs, reconstructions, posterior, 1, global_step,
                                      last_layer=model.get_last_layer(), split="train")
    opt_disc.zero_grad()
    discloss.backward()
    opt_disc.step()
    rec_hist.append(log_dict_ae["train/rec_loss"].item())
    if global_step >= loss_fn.discriminator_iter_start:
        d_losses.append(log_dict_disc["train/disc_loss"].item())
        d_weights.append(log_dict_ae["train/d_weight"].item())
    if (global_step + 1) % 15 == 0:
        print(f"step {global_step + 1}: rec {np.mean(rec_hist[-15:]):.4f}, "
              f"kl {log_dict_ae['train/kl_loss'].item():.2f}, disc {log_dict_disc['train/disc_loss'].item():.4f}, "
              f"logvar {loss_fn.logvar.item():.3f}")

# the validation pass: eval mode, the posterior's mode and samples
model.eval()
loss_fn.eval()
with torch.no_grad():
    rec_mode, post = model(data, sample_posterior=False)
    rec_err = (rec_mode - data).abs().mean().item()
    kl_val = post.kl().mean().item()
    samples = torch.stack([post.sample() for _ in range(20)])
    eps = (samples - post.mean) / post.std
    eps_std = eps.std().item()
    eps_mean = eps.mean().item()
    latent_std = post.mean.std().item()
print(f"eval: L1 {rec_err:.4f}, kl finite {math.isfinite(kl_val)}, standardised noise mean {eps_mean:.3f} std {eps_std:.3f}")
rec_start, rec_end = np.mean(rec_hist[:5]), np.mean(rec_hist[-5:])
rec_fell = float(rec_end < 0.9 * rec_start and rec_err < 0.9 * rec_start)
print(f"reconstruction error fell by 10%: {bool(rec_fell)}")
print(f"FINAL rec_fell={rec_fell:.0f} rec_start={rec_start:.4f} rec_end={rec_end:.4f} eval_l1={rec_err:.4f} "
      f"kl={kl_val:.3f} eps_std={eps_std:.4f} latent_std={latent_std:.4f} d_loss={np.mean(d_losses):.4f} "
      f"d_weight={np.mean(d_weights):.4f}")
