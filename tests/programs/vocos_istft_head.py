"""Vocos (Siuzdenko 2023) as a tiny mel-to-waveform vocoder on synthetic harmonic signals.

In the style of gemelo-ai/vocos (`models.py`, `heads.py`, `spectral_ops.py`, `modules.py`): a
`VocosBackbone` of an embedding `nn.Conv1d(input_channels, dim, 7, padding=3)`, LayerNorm over channels by
`x.transpose(1, 2)`, `ConvNeXtBlock`s (depthwise `nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)`,
`nn.LayerNorm(dim, eps=1e-6)`, pointwise `nn.Linear` + `nn.GELU`, a layer-scale `gamma` parameter, residual),
`self.apply(self._init_weights)` with `trunc_normal_(std=0.02)` + `constant_(bias, 0)`; the `ISTFTHead`
(`self.out(x).transpose(1, 2)`, `x.chunk(2, dim=1)`, `mag = torch.exp(mag)`, `torch.clip(mag, max=1e2)`,
`S = mag * (x + 1j * y)` from `torch.cos(p)`/`torch.sin(p)`, against `torch.polar`) into the "same"-padding
`ISTFT` written by hand: `torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward")`, the window multiply,
overlap-add by `torch.nn.functional.fold(..., output_size=(1, output_size), kernel_size=(1, win_length),
stride=(1, hop_length))[:, 0, 0, pad:-pad]`, the window envelope by the same fold of
`self.window.square().expand(1, T, -1).transpose(1, 2)`, `.squeeze()[pad:-pad]`, and the division; its
"center" branch is `torch.istft(..., center=True)`. Features: `MelSpectrogramFeatures` with "same" padding
(`F.pad(audio, (pad // 2, pad // 2), mode="reflect")`, `torch.stft(..., center=False, return_complex=True)`,
`.abs()`, an HTK mel filterbank by hand, `safe_log` by `torch.log(torch.clip(x, min=clip_val))`); losses the
`MelSpecReconstructionLoss` (`F.l1_loss` of log-mels) and a multi-resolution log-magnitude STFT loss; AdamW
with betas (0.8, 0.9) and a cosine `LambdaLR`, `clip_grad_norm_`.
Checks: the hand-written overlap-add with the centre's padding equals `torch.istft(center=True)` of a
`torch.stft(center=True)` spectrogram, the "same" ISTFT inverts a "same" STFT (round trip), and
`torch.polar(mag, p)` equals the cos/sin construction.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

SAMPLE_RATE = 4000
LENGTH = 512
N_FFT, HOP = 64, 16
N_MELS = 20
n_train, n_test = 64, 16
batch_size = 16
steps = 160


def make_signals(n):
    t = np.arange(LENGTH) / SAMPLE_RATE
    out = np.zeros((n, LENGTH), np.float64)
    for i in range(n):
        f0 = rng.uniform(150, 450)
        decay = rng.uniform(0.5, 4.0)
        env = np.exp(-decay * t) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 6) * t) ** 2)
        for h in range(1, 4):
            out[i] += rng.uniform(0.2, 0.5) / h * env * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
        out[i] += 0.005 * rng.normal(size=LENGTH)
    return torch.from_numpy(out.astype(np.float32))


audio_train = make_signals(n_train)
audio_test = make_signals(n_test)


def safe_log(x: torch.Tensor, clip_val: float = 1e-7) -> torch.Tensor:
    return torch.log(torch.clip(x, min=clip_val))


def hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate):
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up_slopes = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down_slopes, up_slopes))


class MelSpectrogramFeatures(nn.Module):
    def __init__(self, sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, padding="same"):
        super().__init__()
        self.padding = padding
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(n_fft))
        self.register_buffer("fb", melscale_fbanks(n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate))

    def mel(self, audio):
        if self.padding == "same":
            pad = self.n_fft - self.hop_length
            audio = F.pad(audio, (pad // 2, pad // 2), mode="reflect")
        spec = torch.stft(audio, self.n_fft, hop_length=self.hop_length, win_length=self.n_fft,
                          window=self.window, center=self.padding == "center", return_complex=True)
        mag = spec.abs()
        return torch.matmul(mag.transpose(1, 2), self.fb).transpose(1, 2)

    def forward(self, audio):
        return safe_log(self.mel(audio))


class ISTFT(nn.Module):
    def __init__(self, n_fft: int, hop_length: int, win_length: int, padding: str = "same"):
        super().__init__()
        if padding not in ["center", "same"]:
            raise ValueError("Padding must be 'center' or 'same'.")
        self.padding = padding
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        window = torch.hann_window(win_length)
        self.register_buffer("window", window)

    def overlap_add(self, spec: torch.Tensor, pad: int) -> torch.Tensor:
        assert spec.dim() == 3, "Expected a 3D tensor as input"
        B, N, T = spec.shape

        # Inverse FFT
        ifft = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward")
        ifft = ifft * self.window[None, :, None]

        # Overlap and Add
        output_size = (T - 1) * self.hop_length + self.win_length
        y = torch.nn.functional.fold(
            ifft, output_size=(1, output_size), kernel_size=(1, self.win_length), stride=(1, self.hop_length),
        )[:, 0, 0, pad:-pad]

        # Window envelope
        window_sq = self.window.square().expand(1, T, -1).transpose(1, 2)
        window_envelope = torch.nn.functional.fold(
            window_sq, output_size=(1, output_size), kernel_size=(1, self.win_length), stride=(1, self.hop_length),
        ).squeeze()[pad:-pad]

        # Normalize
        assert (window_envelope > 1e-11).all()
        y = y / window_envelope
        return y

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if self.padding == "center":
            # Fallback to pytorch native implementation
            return torch.istft(spec, self.n_fft, self.hop_length, self.win_length, self.window, center=True)
        pad = (self.win_length - self.hop_length) // 2
        return self.overlap_add(spec, pad)


class ISTFTHead(nn.Module):
    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str = "same"):
        super().__init__()
        out_dim = n_fft + 2
        self.out = torch.nn.Linear(dim, out_dim)
        self.istft = ISTFT(n_fft=n_fft, hop_length=hop_length, win_length=n_fft, padding=padding)

    def spectrum(self, x):
        x = self.out(x).transpose(1, 2)
        mag, p = x.chunk(2, dim=1)
        mag = torch.exp(mag)
        mag = torch.clip(mag, max=1e2)  # safeguard to prevent excessively large magnitudes
        # wrapping happens here. These two lines produce real and imaginary value
        x = torch.cos(p)
        y = torch.sin(p)
        S = mag * (x + 1j * y)
        return S, mag, p

    def forward(self, x):
        S, _, _ = self.spectrum(x)
        return self.istft(S)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)  # depthwise conv
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)  # pointwise/1x1 convs, implemented with linear layers
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(dim), requires_grad=True)
            if layer_scale_init_value > 0
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self.dwconv(x)
        x = x.transpose(1, 2)  # (B, C, T) -> (B, T, C)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.pwconv2(x)
        if self.gamma is not None:
            x = self.gamma * x
        x = x.transpose(1, 2)  # (B, T, C) -> (B, C, T)
        x = residual + x
        return x


class VocosBackbone(nn.Module):
    def __init__(self, input_channels, dim, intermediate_dim, num_layers, layer_scale_init_value=None):
        super().__init__()
        self.input_channels = input_channels
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        layer_scale_init_value = layer_scale_init_value or 1 / num_layers
        self.convnext = nn.ModuleList(
            [ConvNeXtBlock(dim=dim, intermediate_dim=intermediate_dim, layer_scale_init_value=layer_scale_init_value)
             for _ in range(num_layers)]
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = self.norm(x.transpose(1, 2))
        x = x.transpose(1, 2)
        for conv_block in self.convnext:
            x = conv_block(x)
        x = self.final_layer_norm(x.transpose(1, 2))
        return x


class Vocos(nn.Module):
    def __init__(self):
        super().__init__()
        self.feature_extractor = MelSpectrogramFeatures()
        self.backbone = VocosBackbone(input_channels=N_MELS, dim=32, intermediate_dim=64, num_layers=3)
        self.head = ISTFTHead(dim=32, n_fft=N_FFT, hop_length=HOP, padding="same")

    def forward(self, audio_input):
        features = self.feature_extractor(audio_input)
        return self.decode(features)

    def decode(self, features_input):
        x = self.backbone(features_input)
        return self.head(x)


class MelSpecReconstructionLoss(nn.Module):
    def __init__(self, feature_extractor):
        super().__init__()
        self.features = feature_extractor

    def forward(self, y_hat, y):
        mel_hat = self.features(y_hat)
        mel = self.features(y)
        return F.l1_loss(mel, mel_hat)


def multi_resolution_stft_loss(y_hat, y, resolutions=((32, 8), (64, 16), (128, 32))):
    loss = 0.0
    for n_fft, hop in resolutions:
        window = torch.hann_window(n_fft)
        s_hat = torch.stft(y_hat, n_fft, hop_length=hop, window=window, return_complex=True).abs()
        s = torch.stft(y, n_fft, hop_length=hop, window=window, return_complex=True).abs()
        loss = loss + F.l1_loss(safe_log(s_hat, 1e-5), safe_log(s, 1e-5))
    return loss / len(resolutions)


vocos = Vocos()
print(vocos.backbone.convnext[0].dwconv)
print(vocos.head.istft.window.shape, vocos.feature_extractor.fb.shape)
n_params = sum(p.numel() for p in vocos.parameters())
print(f"parameters {n_params} frames {LENGTH // HOP}")

# --- check: the hand-written overlap-add with the centre's padding is torch.istft(center=True)
with torch.no_grad():
    istft = vocos.head.istft
    x = audio_test[:4]
    spec_c = torch.stft(x, N_FFT, hop_length=HOP, win_length=N_FFT, window=istft.window, center=True,
                        return_complex=True)
    ref = torch.istft(spec_c, N_FFT, HOP, N_FFT, istft.window, center=True)
    hand = istft.overlap_add(spec_c, N_FFT // 2)
    center_err = (hand - ref).abs().max().item()
    center_branch = ISTFT(N_FFT, HOP, N_FFT, padding="center")(spec_c)
    center_err = max(center_err, (center_branch - ref).abs().max().item())
    roundtrip_center = (ref - x).abs().max().item()
    # "same" padding: reflect-pad by (win - hop) / 2 each side, no centring; the head's ISTFT inverts it
    pad = N_FFT - HOP
    xp = F.pad(x, (pad // 2, pad // 2), mode="reflect")
    spec_s = torch.stft(xp, N_FFT, hop_length=HOP, win_length=N_FFT, window=istft.window, center=False,
                        return_complex=True)
    y_same = istft(spec_s)
    roundtrip_same = (y_same - x).abs().max().item()
    # polar form
    S, mag, p = vocos.head.spectrum(vocos.backbone(vocos.feature_extractor(x)))
    polar_err = (torch.polar(mag, p) - S).abs().max().item()
print(f"istft center: hand vs torch {center_err:.2e}, round trip {roundtrip_center:.2e}; "
      f"same round trip {roundtrip_same:.2e} frames {spec_s.shape[-1]}; polar {polar_err:.2e}")
print(f"spectrum {tuple(S.shape)} {S.dtype} audio {tuple(y_same.shape)}")

mel_loss = MelSpecReconstructionLoss(vocos.feature_extractor)
opt = torch.optim.AdamW(vocos.parameters(), lr=2e-3, betas=(0.8, 0.9))


def lr_lambda(step):
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps))


sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)


@torch.no_grad()
def evaluate():
    vocos.eval()
    y_hat = vocos(audio_test)
    m = mel_loss(y_hat, audio_test).item()
    s = multi_resolution_stft_loss(y_hat, audio_test).item()
    vocos.train()
    return m, s


init_mel, init_stft = evaluate()
print(f"init mel loss {init_mel:.4f} stft loss {init_stft:.4f}")
history = []
for step in range(steps):
    idx = torch.randint(0, n_train, (batch_size,))
    y = audio_train[idx]
    y_hat = vocos(y)
    loss_mel = mel_loss(y_hat, y)
    loss_stft = multi_resolution_stft_loss(y_hat, y)
    loss = loss_mel + loss_stft
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(vocos.parameters(), 1.0)
    opt.step()
    sched.step()
    history.append(loss.item())
    if (step + 1) % 40 == 0:
        print(f"step {step + 1} loss {np.mean(history[-40:]):.4f} mel {loss_mel.item():.4f} "
              f"lr {sched.get_last_lr()[0]:.5f}")

final_mel, final_stft = evaluate()
gamma = torch.stack([blk.gamma.detach().abs().mean() for blk in vocos.backbone.convnext]).mean().item()
print(f"FINAL loss_first={np.mean(history[:20]):.4f} loss_last={np.mean(history[-20:]):.4f} "
      f"init_mel={init_mel:.4f} test_mel={final_mel:.4f} test_stft={final_stft:.4f} gamma={gamma:.4f} "
      f"center_err={center_err:.2e} same_roundtrip={roundtrip_same:.2e} polar_err={polar_err:.2e}")
