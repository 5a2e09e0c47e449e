"""MelGAN (Kumar et al. 2019) at toy size: a waveform generator from a low-rate log-"mel" of synthetic tones.

In the style of descriptinc/melgan-neurips (`mel2wav/modules.py`, `scripts/train.py`): `WNConv1d` /
`WNConvTranspose1d` wrapping `torch.nn.utils.weight_norm` (the deprecated hook version, its `weight_g`/`weight_v`),
`weights_init` by `m.__class__.__name__.find("Conv")` and `m.weight.data.normal_(0.0, 0.02)`, an `Audio2Mel` front
end (`F.pad(audio, (p, p), "reflect").squeeze(1)`, `torch.stft(..., center=False, return_complex=True)`,
`registered` `mel_basis`/`window` buffers, `torch.log10(torch.clamp(mel, min=1e-5))`), the `Generator`
(`nn.ReflectionPad1d(3)`, transposed-conv upsampling with `kernel_size=r * 2, stride=r, padding=r // 2 + r % 2,
output_padding=r % 2`, `ResnetBlock`s with dilations 1/3/9 behind `nn.ReflectionPad1d(dilation)` and a 1x1
shortcut, `nn.LeakyReLU(0.2)`, `nn.Tanh()`), `NLayerDiscriminator` in an `nn.ModuleDict` (`"layer_%d" % n` keys,
grouped strided convs `groups=nf_prev // 4`, `nn.LeakyReLU(0.2, True)`) on
`torch.nn.utils.parametrizations.weight_norm`, the multi-scale `Discriminator` downsampling by
`nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)`, hinge losses `F.relu(1 + scale[-1]).mean()` /
`F.relu(1 - scale[-1]).mean()`, generator `-scale[-1].mean()` + feature matching `F.l1_loss(D_fake[i][j],
D_real[i][j].detach())` weighted by `4.0 / (n_layers_D + 1)` and `1.0 / num_D`, two `Adam(betas=(0.5, 0.9))`,
`netD.zero_grad()`, the spectral `s_error` under `torch.no_grad()`, plus the mel-spectrogram L1 term of the later
MelGAN variants (multi-band MelGAN, HiFi-GAN) backpropagated through `torch.stft`; initial generator and discriminator
snapshots by `{k: v.clone() for k, v in state_dict().items()}` (`weight_g`/`weight_v` and
`parametrizations.weight.original0` keys) reloaded into fresh modules, feature-matching distances of the initial and
the trained generator under the initial and the trained discriminator.
Check: weight_norm's effective weight equals `g * v / v.norm(dim=(1, 2), keepdim=True)` (Conv1d, both
implementations) and `dim=(0, 2)`-norms for the transposed conv's input-channel dim, and the pooled scales equal an
explicit average over the valid samples.
"""
# ruff: noqa: UP031, B007  (the repository's spelling: "layer_%d" % n, for key, layer in self.model.items())

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import weight_norm
from torch.nn.utils.parametrizations import weight_norm as param_weight_norm

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

sr = 2048
seg_len = 256
n_fft, hop_length, win_length, n_mel = 64, 16, 64, 12
ratios = [4, 4]
ngf, n_residual_layers = 8, 3
num_D, ndf, n_layers_D, downsamp_factor = 2, 8, 2, 4
lambda_feat = 10.0
lambda_mel = 5.0
batch_size = 8
steps = 70


def WNConv1d(*args, **kwargs):
    return weight_norm(nn.Conv1d(*args, **kwargs))


def WNConvTranspose1d(*args, **kwargs):
    return weight_norm(nn.ConvTranspose1d(*args, **kwargs))


def DWNConv1d(*args, **kwargs):
    return param_weight_norm(nn.Conv1d(*args, **kwargs))


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find("BatchNorm2d") != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


def linear_filterbank(n_freqs, n_filters):
    """Triangular filters evenly spaced on a log-frequency axis (a stand-in for librosa's mel basis)."""
    edges = np.geomspace(2.0, n_freqs - 1, n_filters + 2)
    bins = np.arange(n_freqs)
    basis = np.zeros((n_filters, n_freqs), np.float32)
    for m in range(n_filters):
        lo, c, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (bins - lo) / (c - lo)
        down = (hi - bins) / (hi - c)
        basis[m] = np.maximum(0, np.minimum(up, down))
    return basis


class Audio2Mel(nn.Module):
    def __init__(self, n_fft=1024, hop_length=256, win_length=1024, n_mel_channels=80):
        super().__init__()
        window = torch.hann_window(win_length).float()
        mel_basis = torch.from_numpy(linear_filterbank(n_fft // 2 + 1, n_mel_channels)).float()
        self.register_buffer("mel_basis", mel_basis)
        self.register_buffer("window", window)
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length

    def forward(self, audio):
        p = (self.n_fft - self.hop_length) // 2
        audio = F.pad(audio, (p, p), "reflect").squeeze(1)
        fft = torch.stft(audio, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                         window=self.window, center=False, return_complex=True)
        magnitude = torch.sqrt(fft.real ** 2 + fft.imag ** 2)
        mel_output = torch.matmul(self.mel_basis, magnitude)
        log_mel_spec = torch.log10(torch.clamp(mel_output, min=1e-5))
        return log_mel_spec


class ResnetBlock(nn.Module):
    def __init__(self, dim, dilation=1):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.ReflectionPad1d(dilation),
            WNConv1d(dim, dim, kernel_size=3, dilation=dilation),
            nn.LeakyReLU(0.2),
            WNConv1d(dim, dim, kernel_size=1),
        )
        self.shortcut = WNConv1d(dim, dim, kernel_size=1)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class Generator(nn.Module):
    def __init__(self, input_size, ngf, n_residual_layers):
        super().__init__()
        self.hop_length = np.prod(ratios)
        mult = int(2 ** len(ratios))
        model = [
            nn.ReflectionPad1d(3),
            WNConv1d(input_size, mult * ngf, kernel_size=7, padding=0),
        ]
        for i, r in enumerate(ratios):
            model += [
                nn.LeakyReLU(0.2),
                WNConvTranspose1d(mult * ngf, mult * ngf // 2, kernel_size=r * 2, stride=r,
                                  padding=r // 2 + r % 2, output_padding=r % 2),
            ]
            for j in range(n_residual_layers):
                model += [ResnetBlock(mult * ngf // 2, dilation=3 ** j)]
            mult //= 2
        model += [
            nn.LeakyReLU(0.2),
            nn.ReflectionPad1d(3),
            WNConv1d(ngf, 1, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*model)
        self.apply(weights_init)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, ndf, n_layers, downsampling_factor):
        super().__init__()
        model = nn.ModuleDict()
        model["layer_0"] = nn.Sequential(
            nn.ReflectionPad1d(7),
            DWNConv1d(1, ndf, kernel_size=15),
            nn.LeakyReLU(0.2, True),
        )
        nf = ndf
        stride = downsampling_factor
        for n in range(1, n_layers + 1):
            nf_prev = nf
            nf = min(nf * stride, 32)
            model["layer_%d" % n] = nn.Sequential(
                DWNConv1d(nf_prev, nf, kernel_size=stride * 10 + 1, stride=stride, padding=stride * 5,
                          groups=nf_prev // 4),
                nn.LeakyReLU(0.2, True),
            )
        nf = min(nf * 2, 32)
        model["layer_%d" % (n_layers + 1)] = nn.Sequential(
            DWNConv1d(nf_prev, nf, kernel_size=5, stride=1, padding=2),
            nn.LeakyReLU(0.2, True),
        )
        model["layer_%d" % (n_layers + 2)] = DWNConv1d(nf, 1, kernel_size=3, stride=1, padding=1)
        self.model = model

    def forward(self, x):
        results = []
        for key, layer in self.model.items():
            x = layer(x)
            results.append(x)
        return results


class Discriminator(nn.Module):
    def __init__(self, num_D, ndf, n_layers, downsampling_factor):
        super().__init__()
        self.model = nn.ModuleDict()
        for i in range(num_D):
            self.model[f"disc_{i}"] = NLayerDiscriminator(ndf, n_layers, downsampling_factor)
        self.downsample = nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)
        self.apply(weights_init)

    def forward(self, x):
        results = []
        for key, disc in self.model.items():
            results.append(disc(x))
            x = self.downsample(x)
        return results


# --- data: tones whose pitch and loudness glide, the "mel" computed from them
def make_clips(n):
    t = np.arange(seg_len) / sr
    clips = np.zeros((n, 1, seg_len), np.float32)
    for i in range(n):
        f0 = rng.uniform(80, 400)
        glide = rng.uniform(-0.3, 0.3)
        freq = f0 * (1 + glide * t / t[-1])
        phase = 2 * np.pi * np.cumsum(freq) / sr + rng.uniform(0, 2 * np.pi)
        env = 0.3 + 0.3 * np.sin(2 * np.pi * rng.uniform(1, 4) * t + rng.uniform(0, 2 * np.pi)) ** 2
        clips[i, 0] = env * (np.sin(phase) + 0.4 * np.sin(2 * phase + 0.5))
    return torch.from_numpy(clips)


fft = Audio2Mel(n_fft=n_fft, hop_length=hop_length, win_length=win_length, n_mel_channels=n_mel)
netG = Generator(n_mel, ngf, n_residual_layers)
netD = Discriminator(num_D, ndf, n_layers_D, downsamp_factor)
train_audio = make_clips(64)
test_audio = make_clips(16)
print(netG.model[1])
print(netD.model["disc_0"].model["layer_1"])
print(f"hop {int(netG.hop_length)} mel frames {fft(test_audio[:1]).shape[-1]} "
      f"G params {sum(p.numel() for p in netG.parameters())} D params {sum(p.numel() for p in netD.parameters())}")

# --- check: weight norm's effective weights, and the count_include_pad=False average
with torch.no_grad():
    netG(fft(test_audio[:1]))  # the deprecated weight_norm recomputes .weight in a pre-forward hook
    conv = netG.model[1]
    wn_err = (conv.weight - conv.weight_g * conv.weight_v / conv.weight_v.norm(dim=(1, 2), keepdim=True)).abs().max()
    tconv = netG.model[3]
    wn_err = max(wn_err, (tconv.weight - tconv.weight_g * tconv.weight_v
                          / tconv.weight_v.norm(dim=(1, 2), keepdim=True)).abs().max())
    grouped = netD.model["disc_0"].model["layer_1"][0]
    g = grouped.parametrizations.weight.original0
    v = grouped.parametrizations.weight.original1
    wn_err = max(wn_err, (grouped.weight - g * v / v.norm(dim=(1, 2), keepdim=True)).abs().max()).item()
    x = torch.randn(3, 1, 11)
    pooled = netD.downsample(x)
    xp = F.pad(x, (1, 1))
    ones = F.pad(torch.ones_like(x), (1, 1))
    explicit = xp.unfold(-1, 4, 2).sum(-1) / ones.unfold(-1, 4, 2).sum(-1)
    pool_err = (pooled - explicit).abs().max().item()
print(f"weight norm err {wn_err:.2e}, g shape {tuple(conv.weight_g.shape)}, pool err {pool_err:.2e}")

init_state = {k: v.clone() for k, v in netG.state_dict().items()}
init_state_D = {k: v.clone() for k, v in netD.state_dict().items()}
print(f"G state_dict keys {len(init_state)}, weight_v {'model.1.weight_v' in init_state}, "
      f"weight {'model.1.weight' in init_state}, D original0 "
      f"{'model.disc_0.model.layer_1.0.parametrizations.weight.original0' in init_state_D}")
optG = torch.optim.Adam(netG.parameters(), lr=1e-3, betas=(0.5, 0.9))
optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.9))

with torch.no_grad():
    s_test = fft(test_audio)
    s_error_init = F.l1_loss(s_test, fft(netG(s_test))).item()

feat_log, s_err_log, d_log = [], [], []
feat_weights = 4.0 / (n_layers_D + 1)
D_weights = 1.0 / num_D
wt = D_weights * feat_weights
for step in range(steps):
    idx = torch.randint(0, train_audio.shape[0], (batch_size,))
    x_t = train_audio[idx]
    s_t = fft(x_t).detach()
    x_pred_t = netG(s_t)
    with torch.no_grad():
        s_pred_t = fft(x_pred_t.detach())
        s_error = F.l1_loss(s_t, s_pred_t).item()

    D_fake_det = netD(x_pred_t.detach())
    D_real = netD(x_t)
    loss_D = 0
    for scale in D_fake_det:
        loss_D += F.relu(1 + scale[-1]).mean()
    for scale in D_real:
        loss_D += F.relu(1 - scale[-1]).mean()
    netD.zero_grad()
    loss_D.backward()
    optD.step()

    D_fake = netD(x_pred_t)
    loss_G = 0
    for scale in D_fake:
        loss_G += -scale[-1].mean()
    loss_feat = 0
    for i in range(num_D):
        for j in range(len(D_fake[i]) - 1):
            loss_feat += wt * F.l1_loss(D_fake[i][j], D_real[i][j].detach())
    loss_mel = F.l1_loss(fft(x_pred_t), s_t)
    netG.zero_grad()
    (loss_G + lambda_feat * loss_feat + lambda_mel * loss_mel).backward()
    optG.step()

    feat_log.append(loss_feat.item())
    s_err_log.append(s_error)
    d_log.append(loss_D.item())
    if (step + 1) % 35 == 0:
        print(f"step {step + 1} D {np.mean(d_log[-35:]):.3f} G {loss_G.item():.3f} "
              f"feat {np.mean(feat_log[-35:]):.4f} s_error {np.mean(s_err_log[-35:]):.4f}")

netG.eval()
with torch.no_grad():
    pred = netG(s_test)
    s_error_final = F.l1_loss(s_test, fft(pred)).item()
    wave_len_ok = pred.shape[-1] == test_audio.shape[-1]
    peak = pred.abs().max().item()

def feature_matching(D, fake, real):
    with torch.no_grad():
        D_fake, D_real = D(fake), D(real)
        total = 0.0
        for i in range(num_D):
            for j in range(len(D_fake[i]) - 1):
                total += wt * F.l1_loss(D_fake[i][j], D_real[i][j]).item()
    return total


netG_init = Generator(n_mel, ngf, n_residual_layers)
netG_init.load_state_dict(init_state)
netG_init.eval()
with torch.no_grad():
    init_pred = netG_init(s_test)
netD_init = Discriminator(num_D, ndf, n_layers_D, downsamp_factor)
netD_init.load_state_dict(init_state_D)
feat_first = feature_matching(netD_init, init_pred, test_audio)
feat_last = feature_matching(netD_init, pred, test_audio)
feat_trained_D = feature_matching(netD, pred, test_audio) / feature_matching(netD, init_pred, test_audio)
print(f"output length matches {wave_len_ok}, peak {peak:.3f}")
print(f"FINAL feat_first={feat_first:.4f} feat_last={feat_last:.4f} feat_ratio={feat_last / feat_first:.4f} "
      f"s_error_init={s_error_init:.4f} s_error={s_error_final:.4f} "
      f"s_ratio={s_error_final / s_error_init:.4f} d_loss={np.mean(d_log[-20:]):.4f} "
      f"feat_ratio_trained_D={feat_trained_D:.4f} wn_err={wn_err:.2e} pool_err={pool_err:.2e}")
