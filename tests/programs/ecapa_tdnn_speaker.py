"""ECAPA-TDNN (Desplanques et al., Interspeech 2020) in speechbrain's ``ECAPA_TDNN`` layout, on synthetic speakers.

Each synthetic speaker is a fundamental frequency and a harmonic envelope; utterances jitter both and
add noise. Features are speechbrain's ``Fbank`` by hand: ``torch.stft`` with a Hamming window,
``.abs().pow(2)``, a triangular mel matrix from ``torch.linspace``, ``10 * torch.log10(torch.clamp(x,
min=1e-10))`` and sentence mean normalisation. The model keeps the reference's pieces at toy width:
``TDNNBlock`` (``Conv1d`` with reflect padding, ReLU, ``BatchNorm1d``), ``Res2NetBlock`` over
``torch.chunk(x, scale, dim=1)`` with dilated convs fed ``x_i + y_i``, ``SEBlock``
(``x.mean(dim=2, keepdim=True)``, two 1x1 convs, sigmoid), ``SERes2NetBlock`` with a residual,
multi-layer feature aggregation ``torch.cat(xl[1:], dim=1)``, ``AttentiveStatisticsPooling`` with
global context (``mask / total`` weights, ``_compute_statistics`` with ``.clamp(eps)`` under the sqrt,
``repeat(1, 1, L)``, ``masked_fill(mask == 0, float("-inf"))``, ``F.softmax(attn, dim=2)``),
``asp_bn`` and a 1x1 ``fc``; the head is speechbrain's cosine ``Classifier`` (``F.linear(F.normalize(x),
F.normalize(self.weight))``) with ``AdditiveAngularMargin`` (``clamp``, ``sqrt(1 - cos^2)``,
``torch.where(cosine > th, phi, cosine - mm)``, scale 30) inside ``LogSoftmaxWrapper``
(``F.kl_div(log_softmax, one_hot, reduction="sum") / targets.sum()``), Adam.

Checked: training accuracy rising, and on held-out utterances cosine scores of same-speaker pairs
above different-speaker ones, with an equal error rate from the sorted scores.
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

SR, N_SAMPLES, N_FFT, HOP, N_MELS = 8000, 2000, 256, 80, 24
SPEAKERS, PER_SPEAKER = 8, 16


# ----------------------------------------------------------------------------------- data
speaker_f0 = rng.uniform(110, 260, SPEAKERS)
speaker_env = rng.uniform(0.1, 1.0, (SPEAKERS, 10))


def utterance(spk):
    t = np.arange(N_SAMPLES) / SR
    f0 = speaker_f0[spk] * (1 + 0.03 * rng.randn())
    env = speaker_env[spk] * (1 + 0.15 * rng.randn(10))
    wav = sum(env[h] * np.sin(2 * np.pi * f0 * (h + 1) * t + rng.uniform(0, 2 * np.pi)) for h in range(10))
    wav = wav * (0.5 + rng.rand()) + 0.3 * rng.randn(N_SAMPLES)
    return wav.astype(np.float32)


def make_set(per_speaker):
    wavs, labels = [], []
    for spk in range(SPEAKERS):
        for _ in range(per_speaker):
            wavs.append(utterance(spk))
            labels.append(spk)
    return torch.from_numpy(np.stack(wavs)), torch.tensor(labels)


# ----------------------------------------------------------------------------------- features
def hz_to_mel(hz):
    return 2595 * math.log10(1 + hz / 700)


def mel_matrix(n_mels, n_fft, sample_rate, f_min=0.0, f_max=None):
    f_max = f_max or sample_rate / 2
    mel = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    all_freqs = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1)
    band = hz[1:] - hz[:-1]
    left, right = hz[:-2].unsqueeze(0), hz[2:].unsqueeze(0)
    f = all_freqs.unsqueeze(1)
    up = (f - left) / band[:-1].unsqueeze(0)
    down = (right - f) / band[1:].unsqueeze(0)
    return torch.max(torch.zeros(1), torch.min(up, down))  # (n_freqs, n_mels)


class Fbank(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hamming_window(N_FFT), persistent=False)
        self.register_buffer("fbank_matrix", mel_matrix(N_MELS, N_FFT, SR), persistent=False)

    def forward(self, wav):
        stft = torch.stft(wav, N_FFT, hop_length=HOP, window=self.window, return_complex=True)
        spectral = stft.abs().pow(2).transpose(1, 2)  # (batch, time, freq)
        fbanks = torch.matmul(spectral, self.fbank_matrix)
        fbanks = 10 * torch.log10(torch.clamp(fbanks, min=1e-10))
        return fbanks - fbanks.mean(dim=1, keepdim=True)  # InputNormalization(norm_type="sentence")


# ----------------------------------------------------------------------------------- ECAPA_TDNN.py
def length_to_mask(length, max_len=None, dtype=None, device=None):
    if max_len is None:
        max_len = length.max().long().item()
    mask = torch.arange(max_len, device=length.device, dtype=length.dtype).expand(len(length), max_len) < length.unsqueeze(1)
    if dtype is None:
        dtype = length.dtype
    return torch.as_tensor(mask, dtype=dtype, device=device)


class TDNNBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, dilation, activation=nn.ReLU, groups=1):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, groups=groups,
                              padding=dilation * (kernel_size - 1) // 2, padding_mode="reflect")
        self.activation = activation()
        self.norm = nn.BatchNorm1d(out_channels)

    def forward(self, x):
        return self.norm(self.activation(self.conv(x)))


class Res2NetBlock(nn.Module):
    def __init__(self, in_channels, out_channels, scale=8, kernel_size=3, dilation=1):
        super().__init__()
        assert in_channels % scale == 0
        assert out_channels % scale == 0
        in_channel = in_channels // scale
        hidden_channel = out_channels // scale
        self.blocks = nn.ModuleList([TDNNBlock(in_channel, hidden_channel, kernel_size=kernel_size, dilation=dilation)
                                     for i in range(scale - 1)])
        self.scale = scale

    def forward(self, x):
        y = []
        for i, x_i in enumerate(torch.chunk(x, self.scale, dim=1)):
            if i == 0:
                y_i = x_i
            elif i == 1:
                y_i = self.blocks[i - 1](x_i)
            else:
                y_i = self.blocks[i - 1](x_i + y_i)
            y.append(y_i)
        y = torch.cat(y, dim=1)
        return y


class SEBlock(nn.Module):
    def __init__(self, in_channels, se_channels, out_channels):
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, se_channels, kernel_size=1)
        self.relu = torch.nn.ReLU(inplace=True)
        self.conv2 = nn.Conv1d(se_channels, out_channels, kernel_size=1)
        self.sigmoid = torch.nn.Sigmoid()

    def forward(self, x, lengths=None):
        s = x.mean(dim=2, keepdim=True)
        s = self.relu(self.conv1(s))
        s = self.sigmoid(self.conv2(s))
        return s * x


class AttentiveStatisticsPooling(nn.Module):
    def __init__(self, channels, attention_channels=128, global_context=True):
        super().__init__()
        self.eps = 1e-12
        self.global_context = global_context
        if global_context:
            self.tdnn = TDNNBlock(channels * 3, attention_channels, 1, 1)
        else:
            self.tdnn = TDNNBlock(channels, attention_channels, 1, 1)
        self.tanh = nn.Tanh()
        self.conv = nn.Conv1d(attention_channels, channels, kernel_size=1)

    def forward(self, x, lengths=None):
        L = x.shape[-1]

        def _compute_statistics(x, m, dim=2, eps=self.eps):
            mean = (m * x).sum(dim)
            std = torch.sqrt((m * (x - mean.unsqueeze(dim)).pow(2)).sum(dim).clamp(eps))
            return mean, std

        if lengths is None:
            lengths = torch.ones(x.shape[0], device=x.device)
        mask = length_to_mask(lengths * L, max_len=L, device=x.device)
        mask = mask.unsqueeze(1)
        if self.global_context:
            total = mask.sum(dim=2, keepdim=True).float()
            mean, std = _compute_statistics(x, mask / total)
            mean = mean.unsqueeze(2).repeat(1, 1, L)
            std = std.unsqueeze(2).repeat(1, 1, L)
            attn = torch.cat([x, mean, std], dim=1)
        else:
            attn = x
        attn = self.conv(self.tanh(self.tdnn(attn)))
        attn = attn.masked_fill(mask == 0, float("-inf"))
        attn = F.softmax(attn, dim=2)
        mean, std = _compute_statistics(x, attn)
        pooled_stats = torch.cat((mean, std), dim=1)
        pooled_stats = pooled_stats.unsqueeze(2)
        return pooled_stats


class SERes2NetBlock(nn.Module):
    def __init__(self, in_channels, out_channels, res2net_scale=8, se_channels=128, kernel_size=1, dilation=1):
        super().__init__()
        self.out_channels = out_channels
        self.tdnn1 = TDNNBlock(in_channels, out_channels, kernel_size=1, dilation=1)
        self.res2net_block = Res2NetBlock(out_channels, out_channels, res2net_scale, kernel_size, dilation)
        self.tdnn2 = TDNNBlock(out_channels, out_channels, kernel_size=1, dilation=1)
        self.se_block = SEBlock(out_channels, se_channels, out_channels)
        self.shortcut = None
        if in_channels != out_channels:
            self.shortcut = nn.Conv1d(in_channels, out_channels, kernel_size=1)

    def forward(self, x, lengths=None):
        residual = x
        if self.shortcut:
            residual = self.shortcut(x)
        x = self.tdnn1(x)
        x = self.res2net_block(x)
        x = self.tdnn2(x)
        x = self.se_block(x, lengths)
        return x + residual


class ECAPA_TDNN(nn.Module):
    def __init__(self, input_size, lin_neurons=32, channels=(32, 32, 32, 32, 96), kernel_sizes=(5, 3, 3, 3, 1),
                 dilations=(1, 2, 3, 4, 1), attention_channels=16, res2net_scale=4, se_channels=16, global_context=True):
        super().__init__()
        assert len(channels) == len(kernel_sizes)
        assert len(channels) == len(dilations)
        self.channels = channels
        self.blocks = nn.ModuleList()
        self.blocks.append(TDNNBlock(input_size, channels[0], kernel_sizes[0], dilations[0]))
        for i in range(1, len(channels) - 1):
            self.blocks.append(SERes2NetBlock(channels[i - 1], channels[i], res2net_scale=res2net_scale,
                                              se_channels=se_channels, kernel_size=kernel_sizes[i], dilation=dilations[i]))
        self.mfa = TDNNBlock(channels[-2] * (len(channels) - 2), channels[-1], kernel_sizes[-1], dilations[-1])
        self.asp = AttentiveStatisticsPooling(channels[-1], attention_channels=attention_channels, global_context=global_context)
        self.asp_bn = nn.BatchNorm1d(channels[-1] * 2)
        self.fc = nn.Conv1d(channels[-1] * 2, lin_neurons, kernel_size=1)

    def forward(self, x, lengths=None):
        x = x.transpose(1, 2)
        xl = []
        for layer in self.blocks:
            try:
                x = layer(x, lengths=lengths)
            except TypeError:
                x = layer(x)
            xl.append(x)
        x = torch.cat(xl[1:], dim=1)
        x = self.mfa(x)
        x = self.asp(x, lengths=lengths)
        x = self.asp_bn(x)
        x = self.fc(x)
        x = x.transpose(1, 2)
        return x


class Classifier(nn.Module):
    def __init__(self, input_size, out_neurons=SPEAKERS):
        super().__init__()
        self.weight = nn.Parameter(torch.FloatTensor(out_neurons, input_size))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x):
        x = F.linear(F.normalize(x.squeeze(1)), F.normalize(self.weight))
        return x.unsqueeze(1)


class AdditiveAngularMargin(nn.Module):
    def __init__(self, margin=0.0, scale=1.0, easy_margin=False):
        super().__init__()
        self.margin = margin
        self.scale = scale
        self.easy_margin = easy_margin
        self.cos_m = math.cos(self.margin)
        self.sin_m = math.sin(self.margin)
        self.th = math.cos(math.pi - self.margin)
        self.mm = math.sin(math.pi - self.margin) * self.margin

    def forward(self, outputs, targets):
        cosine = outputs.float()
        cosine = torch.clamp(cosine, -1 + 1e-7, 1 - 1e-7)
        sine = torch.sqrt(1.0 - torch.pow(cosine, 2))
        phi = cosine * self.cos_m - sine * self.sin_m
        if self.easy_margin:
            phi = torch.where(cosine > 0, phi, cosine)
        else:
            phi = torch.where(cosine > self.th, phi, cosine - self.mm)
        outputs = (targets * phi) + ((1.0 - targets) * cosine)
        return self.scale * outputs


class LogSoftmaxWrapper(nn.Module):
    def __init__(self, loss_fn):
        super().__init__()
        self.loss_fn = loss_fn
        self.criterion = torch.nn.KLDivLoss(reduction="sum")

    def forward(self, outputs, targets, length=None):
        outputs = outputs.squeeze(1)
        targets = targets.squeeze(1)
        targets = F.one_hot(targets.long(), outputs.shape[1]).float()
        predictions = self.loss_fn(outputs, targets)
        predictions = F.log_softmax(predictions, dim=1)
        loss = self.criterion(predictions, targets) / targets.sum()
        return loss


def compute_eer(positive_scores, negative_scores):
    thresholds, _ = torch.sort(torch.cat([positive_scores, negative_scores]))
    frr = (positive_scores.unsqueeze(1) < thresholds.unsqueeze(0)).float().mean(0)
    far = (negative_scores.unsqueeze(1) >= thresholds.unsqueeze(0)).float().mean(0)
    idx = torch.argmin(torch.abs(far - frr))
    return ((far[idx] + frr[idx]) / 2).item()


# ----------------------------------------------------------------------------------- training
compute_features = Fbank()
train_wavs, train_labels = make_set(PER_SPEAKER)
test_wavs, test_labels = make_set(4)
with torch.no_grad():
    train_feats, test_feats = compute_features(train_wavs), compute_features(test_wavs)
print(f"features: train {tuple(train_feats.shape)} test {tuple(test_feats.shape)}")

embedding_model = ECAPA_TDNN(N_MELS)
classifier = Classifier(32)
compute_cost = LogSoftmaxWrapper(AdditiveAngularMargin(margin=0.2, scale=30))
params = list(embedding_model.parameters()) + list(classifier.parameters())
optimizer = torch.optim.Adam(params, lr=0.003, weight_decay=2e-6)
print(f"parameters: {sum(p.numel() for p in params)}")

epochs, batch_size = 6, 32
accs = []
for epoch in range(1, epochs + 1):
    embedding_model.train()
    perm = torch.randperm(len(train_feats))
    total, correct, loss_sum = 0, 0, 0.0
    for i in range(0, len(perm), batch_size):
        idx = perm[i:i + batch_size]
        feats, spkid = train_feats[idx], train_labels[idx].unsqueeze(1)
        embeddings = embedding_model(feats)
        outputs = classifier(embeddings)
        loss = compute_cost(outputs, spkid)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(idx)
        correct += (outputs.squeeze(1).argmax(1) == spkid.squeeze(1)).sum().item()
        total += len(idx)
    accs.append(correct / total)
    print(f"epoch {epoch}: loss {loss_sum / total:.4f} train acc {correct / total:.4f}")

embedding_model.eval()
with torch.no_grad():
    emb = F.normalize(embedding_model(test_feats).squeeze(1), dim=1)
scores = emb @ emb.t()
same = test_labels.unsqueeze(0) == test_labels.unsqueeze(1)
upper = torch.triu(torch.ones_like(same), diagonal=1)
pos, neg = scores[same & upper], scores[~same & upper]
eer = compute_eer(pos, neg)
print(f"trials: {pos.numel()} target, {neg.numel()} nontarget; mean score {pos.mean().item():.4f} vs {neg.mean().item():.4f}")
separated = int(pos.mean().item() > neg.mean().item() and accs[-1] > accs[0])
print(f"FINAL acc_first={accs[0]:.4f} acc_last={accs[-1]:.4f} eer={eer:.4f} "
      f"score_gap={(pos.mean() - neg.mean()).item():.4f} separated={separated}")
