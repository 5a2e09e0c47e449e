"""HiFi-GAN (jik876/hifi-gan ``models.py``, ``meldataset.py``, ``train.py``) at tiny sizes on
synthetic two-tone "speech": the V1 ``Generator`` (``weight_norm(Conv1d)`` pre/post convs,
``weight_norm(ConvTranspose1d(..., padding=(k - u) // 2))`` upsamples, ``ResBlock1`` with dilated
``Conv1d``s padded by ``get_padding(k, d) = int((k*d - d)/2)``, ``init_weights`` through ``apply``
as ``m.weight.data.normal_(0, 0.01)`` when ``classname.find("Conv") != -1``,
``F.leaky_relu(x, LRELU_SLOPE)``, multi-receptive-field fusion ``xs += ...; x = xs / self.num_kernels``,
``torch.tanh``), the ``MultiPeriodDiscriminator`` of ``DiscriminatorP``s (``F.pad(x, (0, n_pad),
"reflect")``, ``x.view(b, c, t // self.period, self.period)``, ``Conv2d((k, 1), (s, 1),
padding=(get_padding(5, 1), 0))``, ``spectral_norm`` on the first period, ``torch.flatten(x, 1, -1)``,
feature maps in a list), ``feature_loss``, the LSGAN ``discriminator_loss``/``generator_loss``,
``mel_spectrogram`` by reflect ``F.pad`` + ``torch.stft(center=False, return_complex=True)`` +
``torch.view_as_real`` magnitude + a mel matrix (against an ``unfold`` + ``torch.fft.rfft`` route:
must agree), ``F.l1_loss(...) * 45``, ``AdamW(betas=[0.8, 0.99])`` + ``ExponentialLR``, and
``remove_weight_norm`` on every layer at the end (output identical before and after).
"""
# ruff: noqa: UP008, UP032, B007  (hifi-gan's own spelling: super(Cls, self), str.format, unused loop indices)

import itertools
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import AvgPool1d, Conv1d, Conv2d, ConvTranspose1d  # noqa: F401
from torch.nn.utils import remove_weight_norm, spectral_norm, weight_norm

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

LRELU_SLOPE = 0.1


class AttrDict(dict):
    def __init__(self, *args, **kwargs):
        super(AttrDict, self).__init__(*args, **kwargs)
        self.__dict__ = self


h = AttrDict({
    "resblock": "1", "num_gpus": 0, "batch_size": 4, "learning_rate": 0.002, "adam_b1": 0.8,
    "adam_b2": 0.99, "lr_decay": 0.95, "upsample_rates": [4, 4], "upsample_kernel_sizes": [8, 8],
    "upsample_initial_channel": 32, "resblock_kernel_sizes": [3, 5],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]], "segment_size": 256, "num_mels": 16,
    "n_fft": 64, "hop_size": 16, "win_size": 64, "sampling_rate": 4000, "fmin": 0, "fmax": 2000,
})


def init_weights(m, mean=0.0, std=0.01):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(mean, std)


def get_padding(kernel_size, dilation=1):
    return int((kernel_size * dilation - dilation) / 2)


class ResBlock1(torch.nn.Module):
    def __init__(self, h, channels, kernel_size=3, dilation=(1, 3, 5)):
        super(ResBlock1, self).__init__()
        self.h = h
        self.convs1 = nn.ModuleList([
            weight_norm(Conv1d(channels, channels, kernel_size, 1, dilation=dilation[0],
                               padding=get_padding(kernel_size, dilation[0]))),
            weight_norm(Conv1d(channels, channels, kernel_size, 1, dilation=dilation[1],
                               padding=get_padding(kernel_size, dilation[1]))),
            weight_norm(Conv1d(channels, channels, kernel_size, 1, dilation=dilation[2],
                               padding=get_padding(kernel_size, dilation[2])))
        ])
        self.convs1.apply(init_weights)

        self.convs2 = nn.ModuleList([
            weight_norm(Conv1d(channels, channels, kernel_size, 1, dilation=1,
                               padding=get_padding(kernel_size, 1))),
            weight_norm(Conv1d(channels, channels, kernel_size, 1, dilation=1,
                               padding=get_padding(kernel_size, 1))),
            weight_norm(Conv1d(channels, channels, kernel_size, 1, dilation=1,
                               padding=get_padding(kernel_size, 1)))
        ])
        self.convs2.apply(init_weights)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = F.leaky_relu(x, LRELU_SLOPE)
            xt = c1(xt)
            xt = F.leaky_relu(xt, LRELU_SLOPE)
            xt = c2(xt)
            x = xt + x
        return x

    def remove_weight_norm(self):
        for l in self.convs1:
            remove_weight_norm(l)
        for l in self.convs2:
            remove_weight_norm(l)


class Generator(torch.nn.Module):
    def __init__(self, h):
        super(Generator, self).__init__()
        self.h = h
        self.num_kernels = len(h.resblock_kernel_sizes)
        self.num_upsamples = len(h.upsample_rates)
        self.conv_pre = weight_norm(Conv1d(h.num_mels, h.upsample_initial_channel, 7, 1, padding=3))
        resblock = ResBlock1

        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(h.upsample_rates, h.upsample_kernel_sizes)):
            self.ups.append(weight_norm(
                ConvTranspose1d(h.upsample_initial_channel // (2 ** i), h.upsample_initial_channel // (2 ** (i + 1)),
                                k, u, padding=(k - u) // 2)))

        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            ch = h.upsample_initial_channel // (2 ** (i + 1))
            for j, (k, d) in enumerate(zip(h.resblock_kernel_sizes, h.resblock_dilation_sizes)):
                self.resblocks.append(resblock(h, ch, k, d))

        self.conv_post = weight_norm(Conv1d(ch, 1, 7, 1, padding=3))
        self.ups.apply(init_weights)
        self.conv_post.apply(init_weights)

    def forward(self, x):
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            x = F.leaky_relu(x, LRELU_SLOPE)
            x = self.ups[i](x)
            xs = None
            for j in range(self.num_kernels):
                if xs is None:
                    xs = self.resblocks[i * self.num_kernels + j](x)
                else:
                    xs += self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = F.leaky_relu(x)
        x = self.conv_post(x)
        x = torch.tanh(x)

        return x

    def remove_weight_norm(self):
        print('Removing weight norm...')
        for l in self.ups:
            remove_weight_norm(l)
        for l in self.resblocks:
            l.remove_weight_norm()
        remove_weight_norm(self.conv_pre)
        remove_weight_norm(self.conv_post)


class DiscriminatorP(torch.nn.Module):
    def __init__(self, period, kernel_size=5, stride=3, use_spectral_norm=False):
        super(DiscriminatorP, self).__init__()
        self.period = period
        norm_f = weight_norm if use_spectral_norm == False else spectral_norm  # noqa: E712
        self.convs = nn.ModuleList([
            norm_f(Conv2d(1, 8, (kernel_size, 1), (stride, 1), padding=(get_padding(5, 1), 0))),
            norm_f(Conv2d(8, 16, (kernel_size, 1), (stride, 1), padding=(get_padding(5, 1), 0))),
            norm_f(Conv2d(16, 16, (kernel_size, 1), 1, padding=(2, 0))),
        ])
        self.conv_post = norm_f(Conv2d(16, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x):
        fmap = []

        # 1d to 2d
        b, c, t = x.shape
        if t % self.period != 0:  # pad first
            n_pad = self.period - (t % self.period)
            x = F.pad(x, (0, n_pad), "reflect")
            t = t + n_pad
        x = x.view(b, c, t // self.period, self.period)

        for l in self.convs:
            x = l(x)
            x = F.leaky_relu(x, LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        x = torch.flatten(x, 1, -1)

        return x, fmap


class MultiPeriodDiscriminator(torch.nn.Module):
    def __init__(self):
        super(MultiPeriodDiscriminator, self).__init__()
        self.discriminators = nn.ModuleList([
            DiscriminatorP(2, use_spectral_norm=True),
            DiscriminatorP(3),
            DiscriminatorP(5),
            DiscriminatorP(7),
        ])

    def forward(self, y, y_hat):
        y_d_rs = []
        y_d_gs = []
        fmap_rs = []
        fmap_gs = []
        for i, d in enumerate(self.discriminators):
            y_d_r, fmap_r = d(y)
            y_d_g, fmap_g = d(y_hat)
            y_d_rs.append(y_d_r)
            fmap_rs.append(fmap_r)
            y_d_gs.append(y_d_g)
            fmap_gs.append(fmap_g)

        return y_d_rs, y_d_gs, fmap_rs, fmap_gs


def feature_loss(fmap_r, fmap_g):
    loss = 0
    for dr, dg in zip(fmap_r, fmap_g):
        for rl, gl in zip(dr, dg):
            loss += torch.mean(torch.abs(rl - gl))

    return loss * 2


def discriminator_loss(disc_real_outputs, disc_generated_outputs):
    loss = 0
    r_losses = []
    g_losses = []
    for dr, dg in zip(disc_real_outputs, disc_generated_outputs):
        r_loss = torch.mean((1 - dr) ** 2)
        g_loss = torch.mean(dg ** 2)
        loss += (r_loss + g_loss)
        r_losses.append(r_loss.item())
        g_losses.append(g_loss.item())

    return loss, r_losses, g_losses


def generator_loss(disc_outputs):
    loss = 0
    gen_losses = []
    for dg in disc_outputs:
        l = torch.mean((1 - dg) ** 2)  # noqa: E741
        gen_losses.append(l)
        loss += l

    return loss, gen_losses


# ----------------------------------------------------------------------------- meldataset.py


def librosa_mel_fn(sr, n_fft, n_mels, fmin, fmax):
    """The HTK-scale triangular filterbank with Slaney area normalisation, in NumPy."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    return (weights * enorm[:, None]).astype(np.float32)


def dynamic_range_compression_torch(x, C=1, clip_val=1e-5):
    return torch.log(torch.clamp(x, min=clip_val) * C)


def spectral_normalize_torch(magnitudes):
    output = dynamic_range_compression_torch(magnitudes)
    return output


mel_basis = {}
hann_window = {}


def mel_spectrogram(y, n_fft, num_mels, sampling_rate, hop_size, win_size, fmin, fmax, center=False):
    global mel_basis, hann_window
    if str(fmax) + '_' + str(y.device) not in mel_basis:
        mel = librosa_mel_fn(sampling_rate, n_fft, num_mels, fmin, fmax)
        mel_basis[str(fmax) + '_' + str(y.device)] = torch.from_numpy(mel).float().to(y.device)
        hann_window[str(y.device)] = torch.hann_window(win_size).to(y.device)

    y = torch.nn.functional.pad(y.unsqueeze(1), (int((n_fft - hop_size) / 2), int((n_fft - hop_size) / 2)),
                                mode='reflect')
    y = y.squeeze(1)

    spec = torch.stft(y, n_fft, hop_length=hop_size, win_length=win_size, window=hann_window[str(y.device)],
                      center=center, pad_mode='reflect', normalized=False, onesided=True, return_complex=True)
    spec = torch.view_as_real(spec)

    spec = torch.sqrt(spec.pow(2).sum(-1) + (1e-9))

    spec = torch.matmul(mel_basis[str(fmax) + '_' + str(y.device)], spec)
    spec = spectral_normalize_torch(spec)

    return spec


def mel_by_frames(y, n_fft, hop_size, fmax):
    """The same log-mel by framing with ``unfold`` and ``torch.fft.rfft`` (a check of the stft route)."""
    pad = (n_fft - hop_size) // 2
    y = F.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    frames = y.unfold(-1, n_fft, hop_size) * hann_window[str(y.device)]
    mag = torch.fft.rfft(frames, dim=-1).abs().transpose(1, 2)
    return torch.log(torch.clamp(mel_basis[str(fmax) + '_' + str(y.device)] @ mag, min=1e-5))


def make_audio(n):
    t = np.arange(h.segment_size) / h.sampling_rate
    f0 = rng.uniform(150, 500, (n, 1))
    f1 = f0 * rng.uniform(1.8, 2.6, (n, 1))
    env = np.exp(-rng.uniform(0.5, 4.0, (n, 1)) * t / t[-1])
    audio = 0.5 * env * (np.sin(2 * math.pi * f0 * t) + 0.5 * np.sin(2 * math.pi * f1 * t + rng.uniform(0, 6, (n, 1))))
    return torch.from_numpy((audio + 0.01 * rng.randn(n, h.segment_size)).astype(np.float32))


audio = make_audio(24)
mels = mel_spectrogram(audio, h.n_fft, h.num_mels, h.sampling_rate, h.hop_size, h.win_size, h.fmin, h.fmax)
mel_err = (mels - mel_by_frames(audio, h.n_fft, h.hop_size, h.fmax)).abs().max().item()
print(f"mel {tuple(mels.shape)} stft vs unfold+rfft max err {mel_err:.2e}")

generator = Generator(h)
mpd = MultiPeriodDiscriminator()
# init_weights wrote the weight_norm'ed `weight` attribute, which the pre-hook recomputes from g and v
conv = generator.ups[0]
names = sorted(n for n, _ in conv.named_parameters())
print(f"weight_norm parameters {names}, weight_g {tuple(conv.weight_g.shape)}")
generator(mels[:1])
wn_err = (conv.weight - conv.weight_g * conv.weight_v / conv.weight_v.norm(dim=(1, 2), keepdim=True)).abs().max().item()
print(f"generator parameters {sum(p.numel() for p in generator.parameters())}, "
      f"discriminator parameters {sum(p.numel() for p in mpd.parameters())}")

optim_g = torch.optim.AdamW(generator.parameters(), h.learning_rate, betas=[h.adam_b1, h.adam_b2])
optim_d = torch.optim.AdamW(itertools.chain(mpd.parameters()), h.learning_rate, betas=[h.adam_b1, h.adam_b2])
scheduler_g = torch.optim.lr_scheduler.ExponentialLR(optim_g, gamma=h.lr_decay, last_epoch=-1)
scheduler_d = torch.optim.lr_scheduler.ExponentialLR(optim_d, gamma=h.lr_decay, last_epoch=-1)

generator.train()
mpd.train()
mel_first = None
for epoch in range(6):
    perm = torch.randperm(audio.shape[0])
    mel_sum, steps = 0.0, 0
    for i in range(0, audio.shape[0], h.batch_size):
        idx = perm[i:i + h.batch_size]
        x, y = mels[idx], audio[idx].unsqueeze(1)
        y_mel = x
        y_g_hat = generator(x)
        y_g_hat_mel = mel_spectrogram(y_g_hat.squeeze(1), h.n_fft, h.num_mels, h.sampling_rate, h.hop_size,
                                      h.win_size, h.fmin, h.fmax)

        optim_d.zero_grad()

        # MPD
        y_df_hat_r, y_df_hat_g, _, _ = mpd(y, y_g_hat.detach())
        loss_disc_f, losses_disc_f_r, losses_disc_f_g = discriminator_loss(y_df_hat_r, y_df_hat_g)
        loss_disc_all = loss_disc_f
        loss_disc_all.backward()
        optim_d.step()

        # Generator
        optim_g.zero_grad()

        # L1 Mel-Spectrogram Loss
        loss_mel = F.l1_loss(y_mel, y_g_hat_mel) * 45

        y_df_hat_r, y_df_hat_g, fmap_f_r, fmap_f_g = mpd(y, y_g_hat)
        loss_fm_f = feature_loss(fmap_f_r, fmap_f_g)
        loss_gen_f, losses_gen_f = generator_loss(y_df_hat_g)
        loss_gen_all = loss_gen_f + loss_fm_f + loss_mel

        loss_gen_all.backward()
        optim_g.step()
        mel_sum += loss_mel.item() / 45
        steps += 1
        mel_first = loss_mel.item() / 45 if mel_first is None else mel_first
    scheduler_g.step()
    scheduler_d.step()
    print('Epoch: {:d}, Gen Loss Total : {:4.3f}, Disc Loss : {:4.3f}, Mel-Spec. Error : {:4.3f}, lr {:.5f}'.format(
        epoch, loss_gen_all.item(), loss_disc_all.item(), mel_sum / steps, scheduler_g.get_last_lr()[0]))

print(f"discriminator scores per period {[round(o.mean().item(), 3) for o in y_df_hat_r]}")
sn_conv = mpd.discriminators[0].convs[1]
sigma = torch.linalg.matrix_norm(sn_conv.weight.detach().flatten(1), ord=2).item()
print(f"spectral-normed conv largest singular value {sigma:.4f}")

generator.eval()
with torch.no_grad():
    before = generator(mels)
    generator.remove_weight_norm()
    after = generator(mels)
    val_mel = F.l1_loss(mel_spectrogram(after.squeeze(1), h.n_fft, h.num_mels, h.sampling_rate, h.hop_size,
                                        h.win_size, h.fmin, h.fmax), mels).item()
left = [n for n, _ in generator.named_parameters() if n.endswith(("weight_g", "weight_v"))]
remove_err = (before - after).abs().max().item()
print(f"after remove_weight_norm: {len(left)} weight_g/weight_v left, output max diff {remove_err:.2e}, "
      f"shape {tuple(after.shape)}")
print(f"FINAL mel_first={mel_first:.4f} val_mel={val_mel:.4f} mel_err={mel_err:.6f} wn_err={wn_err:.6f} "
      f"sigma={sigma:.4f} remove_err={remove_err:.6f} out_abs={after.abs().mean().item():.4f}")
