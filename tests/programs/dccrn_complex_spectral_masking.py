"""DCCRN speech enhancement (huyanxin/DeepComplexCRN) at tiny sizes on noisy synthetic sines.

The model as ``dc_crn.py`` writes it, with ``torch.stft(..., return_complex=True)`` and a
``torch.hann_window`` in place of the repo's ConvSTFT: real and imaginary parts by
``torch.view_as_real`` (checked against ``.real``/``.imag``), the DC bin dropped and stacked as
``torch.stack([real, imag], 1)``; ``ComplexConv2d``/``ComplexConvTranspose2d`` as two real convs
(``real2real - imag2imag``, ``real2imag + imag2real``, ``torch.chunk(inputs, 2, 1)``) with causal
``F.pad`` on time, ``nn.PReLU``, ``complex_cat`` skip concatenation, ``out[..., 1:]`` trimming and a
``NavieComplexLSTM`` bottleneck; the "E" complex ratio mask (``torch.tanh`` magnitude, phase by
``torch.atan2``), ``torch.polar`` and ``torch.istft(..., length=...)`` back to the waveform; the
SI-SNR loss with DC removal and projection. Checks: the two-real-conv complex conv equals a
``torch.complex64`` conv of complex tensors, ``istft(stft(x))`` reconstructs ``x``, and SI-SNR
on held-out noisy sines improves with training.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

SAMPLE_RATE = 8000
LENGTH = 512
WIN_LEN, WIN_INC, FFT_LEN = 64, 16, 64


def make_batch(n):
    t = np.arange(LENGTH) / SAMPLE_RATE
    clean = np.zeros((n, LENGTH))
    for i in range(n):
        for _ in range(rng.randint(2, 4)):
            freq = rng.uniform(200, 3000)
            envelope = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(2, 10) * t + rng.uniform(0, 6.28))
            clean[i] += rng.uniform(0.3, 1.0) * envelope * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.28))
    noise = rng.randn(n, LENGTH)
    snr_db = rng.uniform(-2, 5, size=(n, 1))
    scale = np.sqrt((clean ** 2).mean(1, keepdims=True) / (noise ** 2).mean(1, keepdims=True) / 10 ** (snr_db / 10))
    noisy = clean + scale * noise
    return torch.from_numpy(noisy.astype(np.float32)), torch.from_numpy(clean.astype(np.float32))


class ComplexConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=(1, 1), stride=(1, 1), padding=(0, 0),
                 dilation=1, groups=1, causal=True, complex_axis=1):
        super().__init__()
        self.in_channels = in_channels // 2
        self.out_channels = out_channels // 2
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.causal = causal
        self.groups = groups
        self.dilation = dilation
        self.complex_axis = complex_axis
        self.real_conv = nn.Conv2d(self.in_channels, self.out_channels, kernel_size, self.stride,
                                   padding=[self.padding[0], 0], dilation=self.dilation, groups=self.groups)
        self.imag_conv = nn.Conv2d(self.in_channels, self.out_channels, kernel_size, self.stride,
                                   padding=[self.padding[0], 0], dilation=self.dilation, groups=self.groups)
        nn.init.normal_(self.real_conv.weight.data, std=0.05)
        nn.init.normal_(self.imag_conv.weight.data, std=0.05)
        nn.init.constant_(self.real_conv.bias, 0.)
        nn.init.constant_(self.imag_conv.bias, 0.)

    def forward(self, inputs):
        if self.padding[1] != 0 and self.causal:
            inputs = F.pad(inputs, [self.padding[1], 0, 0, 0])
        else:
            inputs = F.pad(inputs, [self.padding[1], self.padding[1], 0, 0])
        real, imag = torch.chunk(inputs, 2, self.complex_axis)
        real2real = self.real_conv(real)
        imag2imag = self.imag_conv(imag)
        real2imag = self.imag_conv(real)
        imag2real = self.real_conv(imag)
        real = real2real - imag2imag
        imag = real2imag + imag2real
        out = torch.cat([real, imag], self.complex_axis)
        return out


class ComplexConvTranspose2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=(1, 1), stride=(1, 1), padding=(0, 0),
                 output_padding=(0, 0), causal=False, complex_axis=1, groups=1):
        super().__init__()
        self.in_channels = in_channels // 2
        self.out_channels = out_channels // 2
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.output_padding = output_padding
        self.groups = groups
        self.real_conv = nn.ConvTranspose2d(self.in_channels, self.out_channels, kernel_size, self.stride,
                                            padding=self.padding, output_padding=output_padding, groups=self.groups)
        self.imag_conv = nn.ConvTranspose2d(self.in_channels, self.out_channels, kernel_size, self.stride,
                                            padding=self.padding, output_padding=output_padding, groups=self.groups)
        self.complex_axis = complex_axis
        nn.init.normal_(self.real_conv.weight, std=0.05)
        nn.init.normal_(self.imag_conv.weight, std=0.05)
        nn.init.constant_(self.real_conv.bias, 0.)
        nn.init.constant_(self.imag_conv.bias, 0.)

    def forward(self, inputs):
        real, imag = torch.chunk(inputs, 2, self.complex_axis)
        real2real = self.real_conv(real)
        imag2imag = self.imag_conv(imag)
        real2imag = self.imag_conv(real)
        imag2real = self.real_conv(imag)
        real = real2real - imag2imag
        imag = real2imag + imag2real
        out = torch.cat([real, imag], self.complex_axis)
        return out


class NavieComplexLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, projection_dim=None, bidirectional=False, batch_first=False):
        super().__init__()
        self.input_dim = input_size // 2
        self.rnn_units = hidden_size // 2
        self.real_lstm = nn.LSTM(self.input_dim, self.rnn_units, num_layers=1,
                                 bidirectional=bidirectional, batch_first=False)
        self.imag_lstm = nn.LSTM(self.input_dim, self.rnn_units, num_layers=1,
                                 bidirectional=bidirectional, batch_first=False)
        bidirectional = 2 if bidirectional else 1
        if projection_dim is not None:
            self.projection_dim = projection_dim // 2
            self.r_trans = nn.Linear(self.rnn_units * bidirectional, self.projection_dim)
            self.i_trans = nn.Linear(self.rnn_units * bidirectional, self.projection_dim)
        else:
            self.projection_dim = None

    def forward(self, inputs):
        if isinstance(inputs, list):
            real, imag = inputs
        elif isinstance(inputs, torch.Tensor):
            real, imag = torch.chunk(inputs, -1)
        r2r_out = self.real_lstm(real)[0]
        r2i_out = self.imag_lstm(real)[0]
        i2r_out = self.real_lstm(imag)[0]
        i2i_out = self.imag_lstm(imag)[0]
        real_out = r2r_out - i2i_out
        imag_out = i2r_out + r2i_out
        if self.projection_dim is not None:
            real_out = self.r_trans(real_out)
            imag_out = self.i_trans(imag_out)
        return [real_out, imag_out]


def complex_cat(inputs, axis):
    real, imag = [], []
    for data in inputs:
        r, i = torch.chunk(data, 2, axis)
        real.append(r)
        imag.append(i)
    real = torch.cat(real, axis)
    imag = torch.cat(imag, axis)
    outputs = torch.cat([real, imag], axis)
    return outputs


def remove_dc(data):
    mean = torch.mean(data, -1, keepdim=True)
    data = data - mean
    return data


def l2_norm(s1, s2):
    norm = torch.sum(s1 * s2, -1, keepdim=True)
    return norm


def si_snr(s1, s2, eps=1e-8):
    s1_s2_norm = l2_norm(s1, s2)
    s2_s2_norm = l2_norm(s2, s2)
    s_target = s1_s2_norm / (s2_s2_norm + eps) * s2
    e_nosie = s1 - s_target
    target_norm = l2_norm(s_target, s_target)
    noise_norm = l2_norm(e_nosie, e_nosie)
    snr = 10 * torch.log10((target_norm) / (noise_norm + eps) + eps)
    return torch.mean(snr)


class DCCRN(nn.Module):
    def __init__(self, rnn_units=32, win_len=WIN_LEN, win_inc=WIN_INC, fft_len=FFT_LEN,
                 masking_mode='E', kernel_size=5, kernel_num=(8, 16, 16)):
        super().__init__()
        self.win_len = win_len
        self.win_inc = win_inc
        self.fft_len = fft_len
        self.rnn_units = rnn_units
        self.kernel_size = kernel_size
        self.kernel_num = [2] + list(kernel_num)
        self.masking_mode = masking_mode
        self.register_buffer("window", torch.hann_window(win_len), persistent=False)

        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for idx in range(len(self.kernel_num) - 1):
            self.encoder.append(
                nn.Sequential(
                    ComplexConv2d(self.kernel_num[idx], self.kernel_num[idx + 1],
                                  kernel_size=(self.kernel_size, 2), stride=(2, 1), padding=(2, 1)),
                    nn.PReLU(),
                )
            )
        hidden_dim = self.fft_len // (2 ** (len(self.kernel_num)))
        self.enhance = NavieComplexLSTM(
            input_size=hidden_dim * self.kernel_num[-1],
            hidden_size=self.rnn_units,
            projection_dim=hidden_dim * self.kernel_num[-1],
        )
        for idx in range(len(self.kernel_num) - 1, 0, -1):
            if idx != 1:
                self.decoder.append(
                    nn.Sequential(
                        ComplexConvTranspose2d(self.kernel_num[idx] * 2, self.kernel_num[idx - 1],
                                               kernel_size=(self.kernel_size, 2), stride=(2, 1),
                                               padding=(2, 0), output_padding=(1, 0)),
                        nn.PReLU(),
                    )
                )
            else:
                self.decoder.append(
                    nn.Sequential(
                        ComplexConvTranspose2d(self.kernel_num[idx] * 2, self.kernel_num[idx - 1],
                                               kernel_size=(self.kernel_size, 2), stride=(2, 1),
                                               padding=(2, 0), output_padding=(1, 0)),
                    )
                )

    def stft(self, inputs):
        return torch.stft(inputs, self.fft_len, hop_length=self.win_inc, win_length=self.win_len,
                          window=self.window, return_complex=True)

    def istft(self, specs, length):
        return torch.istft(specs, self.fft_len, hop_length=self.win_inc, win_length=self.win_len,
                           window=self.window, length=length)

    def forward(self, inputs):
        specs = self.stft(inputs)
        ri = torch.view_as_real(specs)
        real = ri[..., 0]
        imag = ri[..., 1]
        spec_mags = torch.sqrt(real ** 2 + imag ** 2 + 1e-8)
        spec_phase = torch.atan2(imag, real)
        cspecs = torch.stack([real, imag], 1)
        cspecs = cspecs[:, :, 1:]
        out = cspecs
        encoder_out = []
        for layer in self.encoder:
            out = layer(out)
            encoder_out.append(out)

        batch_size, channels, dims, lengths = out.size()
        out = out.permute(3, 0, 1, 2)
        r_rnn_in = out[:, :, :channels // 2]
        i_rnn_in = out[:, :, channels // 2:]
        r_rnn_in = torch.reshape(r_rnn_in, [lengths, batch_size, channels // 2 * dims])
        i_rnn_in = torch.reshape(i_rnn_in, [lengths, batch_size, channels // 2 * dims])
        r_rnn_in, i_rnn_in = self.enhance([r_rnn_in, i_rnn_in])
        r_rnn_in = torch.reshape(r_rnn_in, [lengths, batch_size, channels // 2, dims])
        i_rnn_in = torch.reshape(i_rnn_in, [lengths, batch_size, channels // 2, dims])
        out = torch.cat([r_rnn_in, i_rnn_in], 2)
        out = out.permute(1, 2, 3, 0)

        for idx in range(len(self.decoder)):
            out = complex_cat([out, encoder_out[-1 - idx]], 1)
            out = self.decoder[idx](out)
            out = out[..., 1:]
        mask_real = out[:, 0]
        mask_imag = out[:, 1]
        mask_real = F.pad(mask_real, [0, 0, 1, 0])
        mask_imag = F.pad(mask_imag, [0, 0, 1, 0])

        if self.masking_mode == 'E':
            mask_mags = (mask_real ** 2 + mask_imag ** 2) ** 0.5
            real_phase = mask_real / (mask_mags + 1e-8)
            imag_phase = mask_imag / (mask_mags + 1e-8)
            mask_phase = torch.atan2(imag_phase, real_phase)
            mask_mags = torch.tanh(mask_mags)
            est_mags = mask_mags * spec_mags
            est_phase = spec_phase + mask_phase
            est_specs = torch.polar(est_mags, est_phase)
        out_wav = self.istft(est_specs, inputs.size(-1))
        out_wav = torch.clamp_(out_wav, -1, 1) if not self.training else out_wav
        return est_specs, out_wav

    def loss(self, inputs, labels, loss_mode='SI-SNR'):
        if loss_mode == 'SI-SNR':
            return -(si_snr(remove_dc(inputs), remove_dc(labels)))


# --- check 1: the two-real-conv complex conv against a complex64 conv of complex tensors
cconv = ComplexConv2d(4, 6, kernel_size=(5, 2), stride=(2, 1), padding=(2, 1))
with torch.no_grad():
    cconv.real_conv.bias.normal_(0, 0.1)
    cconv.imag_conv.bias.normal_(0, 0.1)
x_ri = torch.randn(3, 4, 16, 10)
two_real = cconv(x_ri)
xr, xi = torch.chunk(F.pad(x_ri, [1, 0, 0, 0]), 2, 1)
x_c = torch.complex(xr, xi)
w_c = torch.complex(cconv.real_conv.weight, cconv.imag_conv.weight)
br, bi = cconv.real_conv.bias, cconv.imag_conv.bias
b_c = torch.complex(br - bi, br + bi)
ref = F.conv2d(x_c, w_c, b_c, stride=(2, 1), padding=(2, 0))
conv_err = (torch.cat([ref.real, ref.imag], 1) - two_real).abs().max().item()
tconv = ComplexConvTranspose2d(4, 6, kernel_size=(5, 2), stride=(2, 1), padding=(2, 0), output_padding=(1, 0))
two_real_t = tconv(x_ri)
xr, xi = torch.chunk(x_ri, 2, 1)
ref_t = F.conv_transpose2d(torch.complex(xr, xi), torch.complex(tconv.real_conv.weight, tconv.imag_conv.weight),
                           torch.complex(tconv.real_conv.bias - tconv.imag_conv.bias,
                                         tconv.real_conv.bias + tconv.imag_conv.bias),
                           stride=(2, 1), padding=(2, 0), output_padding=(1, 0))
tconv_err = (torch.cat([ref_t.real, ref_t.imag], 1) - two_real_t).abs().max().item()
print(f"complex conv vs complex64 conv: {ref.dtype} {tuple(ref.shape)} max err {conv_err:.2e}, "
      f"transposed {tuple(ref_t.shape)} max err {tconv_err:.2e}")

# --- check 2: istft(stft(x)) reconstructs x; view_as_real agrees with .real/.imag
train_noisy, train_clean = make_batch(48)
test_noisy, test_clean = make_batch(16)
model = DCCRN()
specs = model.stft(test_noisy)
ri = torch.view_as_real(specs)
split_err = max((ri[..., 0] - specs.real).abs().max().item(), (ri[..., 1] - specs.imag).abs().max().item())
recon = model.istft(specs, LENGTH)
recon_err = (recon - test_noisy).abs().max().item()
print(f"stft {tuple(specs.shape)} {specs.dtype}, view_as_real {tuple(ri.shape)} split err {split_err:.1e}, "
      f"istft round trip max err {recon_err:.2e}")
polar_err = (torch.polar(specs.abs(), specs.angle()) - specs).abs().max().item()
print(f"polar(abs, angle) max err {polar_err:.2e}")

print("parameters", sum(p.numel() for p in model.parameters()))


def evaluate():
    model.eval()
    with torch.no_grad():
        _, est = model(test_noisy)
        return si_snr(remove_dc(est), remove_dc(test_clean)).item()


noisy_snr = si_snr(remove_dc(test_noisy), remove_dc(test_clean)).item()
start_snr = evaluate()
print(f"test SI-SNR: noisy input {noisy_snr:.2f} dB, untrained model {start_snr:.2f} dB")

optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
batch_size = 8
for epoch in range(6):
    model.train()
    perm = torch.randperm(len(train_noisy))
    running = 0.0
    for start in range(0, len(train_noisy), batch_size):
        idx = perm[start:start + batch_size]
        _, est = model(train_noisy[idx])
        loss = model.loss(est, train_clean[idx])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        running += loss.item() * len(idx)
    test_snr = evaluate()
    print(f"epoch {epoch} train loss {running / len(train_noisy):.3f} test SI-SNR {test_snr:.2f} dB")

print(f"FINAL conv_err={max(conv_err, tconv_err):.6f} recon_err={recon_err:.6f} "
      f"noisy_sisnr={noisy_snr:.4f} sisnr={test_snr:.4f} gain={test_snr - noisy_snr:.4f}")
