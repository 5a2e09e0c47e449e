"""Demucs v2 (facebookresearch/demucs, ``demucs/model.py`` + ``utils.py``) at tiny sizes, separating two
synthetic mono sources (a low harmonic tone and a bright pulse train) from their sum.

The model as the repo writes it: an encoder of ``nn.Conv1d(in, ch, kernel_size, stride)`` + ``nn.ReLU()``
+ a 1x1 ``nn.Conv1d(ch, 2 * ch, 1)`` rewrite + ``nn.GLU(dim=1)``; a decoder built by
``self.decoder.insert(0, nn.Sequential(...))`` of a context ``Conv1d`` + GLU and ``nn.ConvTranspose1d``;
the ``BLSTM`` bottleneck (``x.permute(2, 0, 1)``, ``nn.LSTM(bidirectional=True, num_layers=2)``, a
``Linear(2 * dim, dim)``, ``permute(1, 2, 0)``); skips ``center_trim``-med to the decoder's length and
added; input normalised by the mono mixture's mean/std (``mix.mean(dim=1, keepdim=True)``,
``mono.std(dim=-1, keepdim=True)``, ``(x - mean) / (1e-5 + std)``, undone at the end);
``rescale_module`` / ``rescale_conv`` at init (``conv.weight.std().detach()``, ``weight.data /= scale``);
``valid_length`` arithmetic with ``math.ceil`` and ``apply_model``'s ``F.pad(mix, (delta // 2, delta -
delta // 2))`` then ``center_trim(out, length)``; the output ``x.view(x.size(0), len(self.sources),
self.audio_channels, x.size(-1))``.

Training: ``F.l1_loss`` on the sources ``center_trim``-med to the estimates plus a multi-resolution STFT
loss (ParallelWaveGAN's ``stft_loss.py`` as Demucs v3 uses it: ``torch.stft(x, fft_size, hop_size,
win_length, window, return_complex=True)`` with a ``torch.hann_window`` buffer (weighted 0.01), magnitude by
``torch.sqrt(torch.clamp(real ** 2 + imag ** 2, min=1e-7)).transpose(2, 1)``, spectral convergence by
``torch.norm(y_mag - x_mag, p="fro") / torch.norm(y_mag, p="fro")`` and the log-magnitude L1), Adam.

Checked: ``valid_length`` gives an input length whose output the encoder/decoder arithmetic predicts
(and at least as long as the signal), ``center_trim`` restoring the signal's length; the SDR of the
separated sources on held-out mixtures against the mixture-as-estimate baseline.
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

SAMPLERATE = 2000
LENGTH = 400


# ------------------------------------------------------------------------------------------ utils
def center_trim(tensor, reference):
    """
    Center trim `tensor` with respect to `reference`, along the last dimension.
    `reference` can also be a number, representing the length to trim to.
    If the size difference != 0 mod 2, the extra sample is removed on the right side.
    """
    if hasattr(reference, "size"):
        reference = reference.size(-1)
    delta = tensor.size(-1) - reference
    if delta < 0:
        raise ValueError("tensor must be larger than reference. " f"Delta is {delta}.")
    if delta:
        tensor = tensor[..., delta // 2:-(delta - delta // 2)]
    return tensor


def sdr(references, estimates):
    """Signal-to-distortion ratio in dB per source, averaged over the batch (the museval-free v2 form)."""
    delta = 1e-7
    num = torch.sum(torch.square(references), dim=(2, 3))
    den = torch.sum(torch.square(references - estimates), dim=(2, 3))
    num += delta
    den += delta
    scores = 10 * torch.log10(num / den)
    return scores.mean(0)


# ------------------------------------------------------------------------------------------ model
class BLSTM(nn.Module):
    def __init__(self, dim, layers=1):
        super().__init__()
        self.lstm = nn.LSTM(bidirectional=True, num_layers=layers, hidden_size=dim, input_size=dim)
        self.linear = nn.Linear(2 * dim, dim)

    def forward(self, x):
        x = x.permute(2, 0, 1)
        x = self.lstm(x)[0]
        x = self.linear(x)
        x = x.permute(1, 2, 0)
        return x


def rescale_conv(conv, reference):
    std = conv.weight.std().detach()
    scale = (std / reference) ** 0.5
    conv.weight.data /= scale
    if conv.bias is not None:
        conv.bias.data /= scale


def rescale_module(module, reference):
    for sub in module.modules():
        if isinstance(sub, (nn.Conv1d, nn.ConvTranspose1d)):
            rescale_conv(sub, reference)


class Demucs(nn.Module):
    def __init__(self, sources, audio_channels=1, channels=8, depth=3, rewrite=True, glu=True, rescale=0.1,
                 kernel_size=8, stride=4, growth=2., lstm_layers=2, context=3, normalize=True):
        super().__init__()
        self.audio_channels = audio_channels
        self.sources = sources
        self.kernel_size = kernel_size
        self.context = context
        self.stride = stride
        self.depth = depth
        self.channels = channels
        self.normalize = normalize

        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()

        if glu:
            activation = nn.GLU(dim=1)
            ch_scale = 2
        else:
            activation = nn.ReLU()
            ch_scale = 1
        in_channels = audio_channels
        for index in range(depth):
            encode = []
            encode += [nn.Conv1d(in_channels, channels, kernel_size, stride), nn.ReLU()]
            if rewrite:
                encode += [nn.Conv1d(channels, ch_scale * channels, 1), activation]
            self.encoder.append(nn.Sequential(*encode))

            decode = []
            if index > 0:
                out_channels = in_channels
            else:
                out_channels = len(self.sources) * audio_channels
            if rewrite:
                decode += [nn.Conv1d(channels, ch_scale * channels, context), activation]
            decode += [nn.ConvTranspose1d(channels, out_channels, kernel_size, stride)]
            if index > 0:
                decode.append(nn.ReLU())
            self.decoder.insert(0, nn.Sequential(*decode))
            in_channels = channels
            channels = int(growth * channels)

        channels = in_channels

        if lstm_layers:
            self.lstm = BLSTM(channels, lstm_layers)
        else:
            self.lstm = None

        if rescale:
            rescale_module(self, reference=rescale)

    def valid_length(self, length):
        """
        Return the nearest valid length to use with the model so that
        there is no time steps left over in a convolutions, e.g. for all
        layers, size of the input - kernel_size % stride = 0.

        If the mixture has a valid length, the estimated sources
        will have exactly the same length when context = 1. If context > 1,
        the two signals can be center trimmed to match.

        For training, extracts should have a valid length.For evaluation
        on full tracks we recommend passing `pad = True` to :method:`forward`.
        """
        for _ in range(self.depth):
            length = math.ceil((length - self.kernel_size) / self.stride) + 1
            length = max(1, length)
            length += self.context - 1
        for _ in range(self.depth):
            length = (length - 1) * self.stride + self.kernel_size

        return int(length)

    def forward(self, mix):
        x = mix

        if self.normalize:
            mono = mix.mean(dim=1, keepdim=True)
            mean = mono.mean(dim=-1, keepdim=True)
            std = mono.std(dim=-1, keepdim=True)
        else:
            mean = 0
            std = 1

        x = (x - mean) / (1e-5 + std)

        saved = []
        for encode in self.encoder:
            x = encode(x)
            saved.append(x)
        if self.lstm:
            x = self.lstm(x)
        for decode in self.decoder:
            skip = center_trim(saved.pop(-1), x)
            x = x + skip
            x = decode(x)

        x = x * std + mean
        x = x.view(x.size(0), len(self.sources), self.audio_channels, x.size(-1))
        return x


def output_length(model, length):
    """The output length traced layer by layer: valid convs down, context convs and transposed convs up."""
    for _ in range(model.depth):
        length = (length - model.kernel_size) // model.stride + 1
    for _ in range(model.depth):
        length = length - (model.context - 1)
        length = (length - 1) * model.stride + model.kernel_size
    return length


def apply_model(model, mix):
    """Pad the mixture to a valid length, separate, and trim back (demucs.utils.apply_model, shifts=0)."""
    channels, length = mix.size()
    valid_length = model.valid_length(length)
    delta = valid_length - length
    padded = F.pad(mix, (delta // 2, delta - delta // 2))
    with torch.no_grad():
        out = model(padded.unsqueeze(0))[0]
    return center_trim(out, length)


# ------------------------------------------------------------------------------------ STFT loss
def stft(x, fft_size, hop_size, win_length, window):
    x_stft = torch.stft(x, fft_size, hop_size, win_length, window, return_complex=True)
    real = x_stft.real
    imag = x_stft.imag
    return torch.sqrt(torch.clamp(real ** 2 + imag ** 2, min=1e-7)).transpose(2, 1)


class STFTLoss(nn.Module):
    def __init__(self, fft_size=1024, shift_size=120, win_length=600, window="hann_window"):
        super().__init__()
        self.fft_size = fft_size
        self.shift_size = shift_size
        self.win_length = win_length
        self.register_buffer("window", getattr(torch, window)(win_length))

    def forward(self, x, y):
        x_mag = stft(x, self.fft_size, self.shift_size, self.win_length, self.window)
        y_mag = stft(y, self.fft_size, self.shift_size, self.win_length, self.window)
        sc_loss = torch.norm(y_mag - x_mag, p="fro") / torch.norm(y_mag, p="fro")
        mag_loss = F.l1_loss(torch.log(y_mag), torch.log(x_mag))
        return sc_loss, mag_loss


class MultiResolutionSTFTLoss(nn.Module):
    def __init__(self, fft_sizes=(64, 128, 32), hop_sizes=(16, 32, 8), win_lengths=(48, 96, 24),
                 window="hann_window"):
        super().__init__()
        assert len(fft_sizes) == len(hop_sizes) == len(win_lengths)
        self.stft_losses = nn.ModuleList()
        for fs, ss, wl in zip(fft_sizes, hop_sizes, win_lengths):
            self.stft_losses += [STFTLoss(fs, ss, wl, window)]

    def forward(self, x, y):
        sc_loss = 0.0
        mag_loss = 0.0
        for f in self.stft_losses:
            sc_l, mag_l = f(x, y)
            sc_loss += sc_l
            mag_loss += mag_l
        sc_loss /= len(self.stft_losses)
        mag_loss /= len(self.stft_losses)
        return sc_loss, mag_loss


# ----------------------------------------------------------------------------------------- data
def make_sources(n, length):
    t = np.arange(length) / SAMPLERATE
    tones = np.zeros((n, length))
    pulses = np.zeros((n, length))
    for i in range(n):
        f0 = rng.uniform(30, 60)
        for h in (1, 2, 3):
            tones[i] += rng.uniform(0.3, 1.0) / h * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi))
        period = rng.randint(40, 70)
        offset = rng.randint(0, period)
        clicks = np.zeros(length)
        clicks[offset::period] = 1.0
        kernel = np.exp(-np.arange(12) / 3.0) * np.sin(2 * np.pi * rng.uniform(400, 600) * np.arange(12) / SAMPLERATE)
        pulses[i] = rng.uniform(1.0, 2.0) * np.convolve(clicks, kernel)[:length] * 3
    sources = np.stack([tones, pulses], axis=1)[:, :, None, :]  # (n, sources, channels, time)
    return torch.from_numpy(sources.astype(np.float32))


model = Demucs(sources=["tone", "pulse"])
print(f"parameters {sum(p.numel() for p in model.parameters())}")

valid = model.valid_length(LENGTH)
predicted = output_length(model, valid)
with torch.no_grad():
    probe = model(torch.zeros(1, 1, valid))
print(f"valid_length({LENGTH}) = {valid}, predicted output {predicted}, model output {probe.size(-1)}")
length_ok = probe.size(-1) == predicted and predicted >= LENGTH
try:
    center_trim(torch.zeros(3), 5)
except ValueError as err:
    print("center_trim:", err)

train_sources = make_sources(64, valid)
test_sources = make_sources(16, LENGTH)
mrstft = MultiResolutionSTFTLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
batch_size = 16
for epoch in range(1, 31):
    perm = torch.randperm(train_sources.size(0))
    total = 0.0
    for i in range(0, train_sources.size(0), batch_size):
        sources = train_sources[perm[i:i + batch_size]]
        mix = sources.sum(dim=1)
        estimates = model(mix)
        sources = center_trim(sources, estimates)
        l1 = F.l1_loss(estimates, sources)
        sc_loss, mag_loss = mrstft(estimates.flatten(0, 2), sources.flatten(0, 2))
        loss = l1 + 0.01 * (sc_loss + mag_loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    if epoch % 10 == 0:
        print(f"epoch {epoch}: train loss {total / (train_sources.size(0) // batch_size):.4f}")

model.eval()
estimates = torch.stack([apply_model(model, s.sum(0)) for s in test_sources])
print(f"separated {tuple(estimates.shape)} from mixtures of length {LENGTH}")
mixtures = test_sources.sum(dim=1, keepdim=True).expand_as(test_sources)
sdr_model = sdr(test_sources, estimates)
sdr_mix = sdr(test_sources, mixtures)
for name, s_model, s_mix in zip(model.sources, sdr_model.tolist(), sdr_mix.tolist()):
    print(f"{name:5s}: SDR {s_model:6.2f} dB (mixture baseline {s_mix:6.2f} dB)")
improvement = (sdr_model - sdr_mix).mean().item()
print(f"FINAL sdr_tone={sdr_model[0].item():.3f} sdr_pulse={sdr_model[1].item():.3f} "
      f"sdr_improvement={improvement:.3f} length_ok={float(length_ok and estimates.size(-1) == LENGTH):.0f}")
