"""FastSpeech 2 (Ren et al., ICLR 2021) in the layout of ming024/FastSpeech2, at toy size, on a synthetic
text-to-"mel" task: each phoneme has its own spectral template, a typical duration, a pitch and an energy;
an utterance's mel frames are the templates repeated by the durations (pitch and energy shift them) plus
noise.

From the repo: ``utils/tools.py``'s ``get_mask_from_lengths`` (``torch.arange(0, max_len).unsqueeze(0)
.expand(batch_size, -1)`` ``>=`` ``lengths.unsqueeze(1).expand(-1, max_len)``) and ``pad`` (``F.pad(batch,
(0, 0, 0, max_len - batch.size(0)), "constant", 0.0)`` + ``torch.stack``); ``model/modules.py``'s
``LengthRegulator`` (``expand``: ``vec.expand(max(int(expand_size), 0), -1)`` per phoneme, ``torch.cat``,
``torch.LongTensor(mel_len)``), ``VariancePredictor`` (an ``OrderedDict`` ``nn.Sequential`` of the repo's
``Conv`` wrapper, a ``Conv1d`` on ``x.contiguous().transpose(1, 2)``, with ReLU, ``LayerNorm``, ``Dropout``;
``Linear`` + ``squeeze(-1)`` + ``masked_fill(mask, 0.0)``), ``VarianceAdaptor`` with phoneme-level pitch and
energy quantised by ``torch.bucketize(target, self.pitch_bins)`` over bins ``nn.Parameter(torch.exp(
torch.linspace(np.log(pitch_min), np.log(pitch_max), n_bins - 1)), requires_grad=False)`` (energy: linear
bins) into ``nn.Embedding``, and inference durations ``torch.clamp((torch.round(torch.exp(
log_duration_prediction) - 1) * d_control), min=0)``; ``model/loss.py``'s ``FastSpeech2Loss`` (``~src_masks``,
``torch.log(duration_targets.float() + 1)``, ``masked_select``, L1 mel + postnet mel, MSE pitch/energy/
log-duration); a ``PostNet`` of ``Conv1d`` + ``BatchNorm1d`` with ``torch.tanh`` and ``F.dropout(...,
self.training)``; the encoder/decoder are small conv blocks with sinusoid position tables; Adam with the
repo's ``ScheduledOptim`` warm-up (``np.power(d_model, -0.5) * np.min([...])``) and ``clip_grad_norm_``.

Checked: the length regulator equals ``torch.repeat_interleave(x, durations, dim=0)`` (forward, padded to
the batch max, and the gradient w.r.t. the encoder output), ``mel_len`` equals ``durations.sum(1)``, the mask
equals the ``<``-comparison form inverted, ``bucketize`` equals counting the bins below each value; training
lowers the mel loss well below the untrained model's, and the inferred durations beat a constant guess.
"""

import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
np.random.seed(seed)
torch.manual_seed(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

model_config = {
    "transformer": {"encoder_hidden": 32, "decoder_hidden": 32, "max_seq_len": 200},
    "variance_predictor": {"filter_size": 32, "kernel_size": 3, "dropout": 0.2},
    "variance_embedding": {"pitch_quantization": "log", "energy_quantization": "linear", "n_bins": 16},
    "n_mel_channels": 8,
    "postnet": {"postnet_embedding_dim": 16, "postnet_kernel_size": 5, "postnet_n_convolutions": 3},
}
stats = {"pitch": (80.0, 400.0), "energy": (0.0, 2.0)}
N_PHONEMES = 12


# ----------------------------------------------------------------------------------- data
data_rng = np.random.RandomState(0)  # one corpus; the seed moves init, batching and dropout
templates = data_rng.randn(N_PHONEMES, model_config["n_mel_channels"]).astype(np.float32)
base_duration = data_rng.randint(1, 5, size=N_PHONEMES)
base_pitch = np.exp(data_rng.uniform(np.log(100), np.log(300), size=N_PHONEMES))
base_energy = data_rng.uniform(0.3, 1.7, size=N_PHONEMES)


def make_utterance(rng):
    n = rng.randint(4, 9)
    texts = rng.randint(1, N_PHONEMES, size=n)  # 0 is padding
    jitter = np.where(rng.rand(n) < 0.15, rng.choice([-1, 1], size=n), 0)
    durations = np.maximum(base_duration[texts] + jitter, 0)
    pitch = base_pitch[texts] * np.exp(0.05 * rng.randn(n))
    energy = base_energy[texts] + 0.05 * rng.randn(n)
    frames = templates[texts] + 0.3 * np.log(pitch / 150.0)[:, None] + 0.4 * energy[:, None]
    mel = np.repeat(frames, durations, axis=0) + 0.05 * rng.randn(int(durations.sum()), templates.shape[1])
    return texts, durations, pitch.astype(np.float32), energy.astype(np.float32), mel.astype(np.float32)


train_set = [make_utterance(data_rng) for _ in range(64)]
val_set = [make_utterance(data_rng) for _ in range(24)]


def pad_1D(inputs, PAD=0):
    max_len = max(len(x) for x in inputs)
    return np.stack([np.pad(x, (0, max_len - x.shape[0]), mode="constant", constant_values=PAD) for x in inputs])


def pad_2D(inputs):
    max_len = max(np.shape(x)[0] for x in inputs)
    return np.stack([np.pad(x, ((0, max_len - np.shape(x)[0]), (0, 0)), mode="constant") for x in inputs])


def collate(items):
    texts, durations, pitches, energies, mels = zip(*items)
    text_lens = np.array([t.shape[0] for t in texts])
    mel_lens = np.array([m.shape[0] for m in mels])
    return (torch.from_numpy(pad_1D(texts)).long(), torch.from_numpy(text_lens).long(), int(max(text_lens)),
            torch.from_numpy(pad_2D(mels)).float(), torch.from_numpy(mel_lens).long(), int(max(mel_lens)),
            torch.from_numpy(pad_1D(pitches)).float(), torch.from_numpy(pad_1D(energies)).float(),
            torch.from_numpy(pad_1D(durations)).long())


# ----------------------------------------------------------------------------------- utils/tools.py
def get_mask_from_lengths(lengths, max_len=None):
    batch_size = lengths.shape[0]
    if max_len is None:
        max_len = torch.max(lengths).item()

    ids = torch.arange(0, max_len).unsqueeze(0).expand(batch_size, -1).to(device)
    mask = ids >= lengths.unsqueeze(1).expand(-1, max_len)

    return mask


def pad(input_ele, mel_max_length=None):
    if mel_max_length:
        max_len = mel_max_length
    else:
        max_len = max([input_ele[i].size(0) for i in range(len(input_ele))])

    out_list = list()
    for i, batch in enumerate(input_ele):  # noqa: B007  (the repo's loop)
        if len(batch.shape) == 1:
            one_batch_padded = F.pad(batch, (0, max_len - batch.size(0)), "constant", 0.0)
        elif len(batch.shape) == 2:
            one_batch_padded = F.pad(batch, (0, 0, 0, max_len - batch.size(0)), "constant", 0.0)
        out_list.append(one_batch_padded)
    out_padded = torch.stack(out_list)
    return out_padded


def get_sinusoid_encoding_table(n_position, d_hid, padding_idx=None):
    def cal_angle(position, hid_idx):
        return position / np.power(10000, 2 * (hid_idx // 2) / d_hid)

    def get_posi_angle_vec(position):
        return [cal_angle(position, hid_j) for hid_j in range(d_hid)]

    sinusoid_table = np.array([get_posi_angle_vec(pos_i) for pos_i in range(n_position)])
    sinusoid_table[:, 0::2] = np.sin(sinusoid_table[:, 0::2])
    sinusoid_table[:, 1::2] = np.cos(sinusoid_table[:, 1::2])
    if padding_idx is not None:
        sinusoid_table[padding_idx] = 0.0
    return torch.FloatTensor(sinusoid_table)


# ----------------------------------------------------------------------------------- model/modules.py
class Conv(nn.Module):
    """Convolution Module"""

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding=0, dilation=1, bias=True,
                 w_init="linear"):
        super(Conv, self).__init__()  # noqa: UP008  (the repo's spelling)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                              padding=padding, dilation=dilation, bias=bias)

    def forward(self, x):
        x = x.contiguous().transpose(1, 2)
        x = self.conv(x)
        x = x.contiguous().transpose(1, 2)
        return x


class VariancePredictor(nn.Module):
    """Duration, Pitch and Energy Predictor"""

    def __init__(self, model_config):
        super(VariancePredictor, self).__init__()  # noqa: UP008
        self.input_size = model_config["transformer"]["encoder_hidden"]
        self.filter_size = model_config["variance_predictor"]["filter_size"]
        self.kernel = model_config["variance_predictor"]["kernel_size"]
        self.conv_output_size = model_config["variance_predictor"]["filter_size"]
        self.dropout = model_config["variance_predictor"]["dropout"]

        self.conv_layer = nn.Sequential(
            OrderedDict(
                [
                    ("conv1d_1", Conv(self.input_size, self.filter_size, kernel_size=self.kernel,
                                      padding=(self.kernel - 1) // 2)),
                    ("relu_1", nn.ReLU()),
                    ("layer_norm_1", nn.LayerNorm(self.filter_size)),
                    ("dropout_1", nn.Dropout(self.dropout)),
                    ("conv1d_2", Conv(self.filter_size, self.filter_size, kernel_size=self.kernel, padding=1)),
                    ("relu_2", nn.ReLU()),
                    ("layer_norm_2", nn.LayerNorm(self.filter_size)),
                    ("dropout_2", nn.Dropout(self.dropout)),
                ]
            )
        )
        self.linear_layer = nn.Linear(self.conv_output_size, 1)

    def forward(self, encoder_output, mask):
        out = self.conv_layer(encoder_output)
        out = self.linear_layer(out)
        out = out.squeeze(-1)

        if mask is not None:
            out = out.masked_fill(mask, 0.0)

        return out


class LengthRegulator(nn.Module):
    """Length Regulator"""

    def __init__(self):
        super(LengthRegulator, self).__init__()  # noqa: UP008

    def LR(self, x, duration, max_len):
        output = list()
        mel_len = list()
        for batch, expand_target in zip(x, duration):
            expanded = self.expand(batch, expand_target)
            output.append(expanded)
            mel_len.append(expanded.shape[0])

        if max_len is not None:
            output = pad(output, max_len)
        else:
            output = pad(output)

        return output, torch.LongTensor(mel_len).to(device)

    def expand(self, batch, predicted):
        out = list()

        for i, vec in enumerate(batch):
            expand_size = predicted[i].item()
            out.append(vec.expand(max(int(expand_size), 0), -1))
        out = torch.cat(out, 0)

        return out

    def forward(self, x, duration, max_len):
        output, mel_len = self.LR(x, duration, max_len)
        return output, mel_len


class VarianceAdaptor(nn.Module):
    """Variance Adaptor"""

    def __init__(self, model_config):
        super(VarianceAdaptor, self).__init__()  # noqa: UP008
        self.duration_predictor = VariancePredictor(model_config)
        self.length_regulator = LengthRegulator()
        self.pitch_predictor = VariancePredictor(model_config)
        self.energy_predictor = VariancePredictor(model_config)

        pitch_quantization = model_config["variance_embedding"]["pitch_quantization"]
        energy_quantization = model_config["variance_embedding"]["energy_quantization"]
        n_bins = model_config["variance_embedding"]["n_bins"]
        pitch_min, pitch_max = stats["pitch"]
        energy_min, energy_max = stats["energy"]

        if pitch_quantization == "log":
            self.pitch_bins = nn.Parameter(
                torch.exp(torch.linspace(np.log(pitch_min), np.log(pitch_max), n_bins - 1)),
                requires_grad=False,
            )
        else:
            self.pitch_bins = nn.Parameter(torch.linspace(pitch_min, pitch_max, n_bins - 1), requires_grad=False)
        if energy_quantization == "log":
            self.energy_bins = nn.Parameter(
                torch.exp(torch.linspace(np.log(energy_min), np.log(energy_max), n_bins - 1)),
                requires_grad=False,
            )
        else:
            self.energy_bins = nn.Parameter(torch.linspace(energy_min, energy_max, n_bins - 1), requires_grad=False)

        self.pitch_embedding = nn.Embedding(n_bins, model_config["transformer"]["encoder_hidden"])
        self.energy_embedding = nn.Embedding(n_bins, model_config["transformer"]["encoder_hidden"])

    def get_pitch_embedding(self, x, target, mask, control):
        prediction = self.pitch_predictor(x, mask)
        if target is not None:
            embedding = self.pitch_embedding(torch.bucketize(target, self.pitch_bins))
        else:
            prediction = prediction * control
            embedding = self.pitch_embedding(torch.bucketize(prediction, self.pitch_bins))
        return prediction, embedding

    def get_energy_embedding(self, x, target, mask, control):
        prediction = self.energy_predictor(x, mask)
        if target is not None:
            embedding = self.energy_embedding(torch.bucketize(target, self.energy_bins))
        else:
            prediction = prediction * control
            embedding = self.energy_embedding(torch.bucketize(prediction, self.energy_bins))
        return prediction, embedding

    def forward(self, x, src_mask, mel_mask=None, max_len=None, pitch_target=None, energy_target=None,
                duration_target=None, p_control=1.0, e_control=1.0, d_control=1.0):
        log_duration_prediction = self.duration_predictor(x, src_mask)
        pitch_prediction, pitch_embedding = self.get_pitch_embedding(x, pitch_target, src_mask, p_control)
        x = x + pitch_embedding
        energy_prediction, energy_embedding = self.get_energy_embedding(x, energy_target, src_mask, e_control)
        x = x + energy_embedding

        if duration_target is not None:
            x, mel_len = self.length_regulator(x, duration_target, max_len)
            duration_rounded = duration_target
        else:
            duration_rounded = torch.clamp(
                (torch.round(torch.exp(log_duration_prediction) - 1) * d_control),
                min=0,
            )
            x, mel_len = self.length_regulator(x, duration_rounded, max_len)
            mel_mask = get_mask_from_lengths(mel_len)

        return (x, pitch_prediction, energy_prediction, log_duration_prediction, duration_rounded, mel_len,
                mel_mask)


# ----------------------------------------------------------------------------------- encoder/decoder/postnet
class ConvBlock(nn.Module):
    """A stand-in for the FFT blocks: position-wise conv feed-forward with a residual, masked."""

    def __init__(self, d_model, d_inner=64, kernel_size=(3, 1), dropout=0.1):
        super().__init__()
        self.w_1 = nn.Conv1d(d_model, d_inner, kernel_size=kernel_size[0], padding=(kernel_size[0] - 1) // 2)
        self.w_2 = nn.Conv1d(d_inner, d_model, kernel_size=kernel_size[1], padding=(kernel_size[1] - 1) // 2)
        self.layer_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask):
        residual = x
        output = x.transpose(1, 2)
        output = self.w_2(F.relu(self.w_1(output)))
        output = output.transpose(1, 2)
        output = self.dropout(output)
        output = self.layer_norm(output + residual)
        return output.masked_fill(mask.unsqueeze(-1), 0)


class Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        d_model = config["transformer"]["encoder_hidden"]
        n_position = config["transformer"]["max_seq_len"] + 1
        self.src_word_emb = nn.Embedding(N_PHONEMES, d_model, padding_idx=0)
        self.position_enc = nn.Parameter(get_sinusoid_encoding_table(n_position, d_model).unsqueeze(0),
                                         requires_grad=False)
        self.layer_stack = nn.ModuleList([ConvBlock(d_model) for _ in range(2)])

    def forward(self, src_seq, mask):
        batch_size, max_len = src_seq.shape[0], src_seq.shape[1]
        enc_output = self.src_word_emb(src_seq) + self.position_enc[:, :max_len, :].expand(batch_size, -1, -1)
        for enc_layer in self.layer_stack:
            enc_output = enc_layer(enc_output, mask=mask)
        return enc_output


class Decoder(Encoder):
    def __init__(self, config):
        super().__init__(config)
        del self.src_word_emb

    def forward(self, enc_seq, mask):
        batch_size, max_len = enc_seq.shape[0], enc_seq.shape[1]
        dec_output = enc_seq + self.position_enc[:, :max_len, :].expand(batch_size, -1, -1)
        for dec_layer in self.layer_stack:
            dec_output = dec_layer(dec_output, mask=mask)
        return dec_output, mask


class ConvNorm(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding=None, dilation=1, bias=True,
                 w_init_gain="linear"):
        super(ConvNorm, self).__init__()  # noqa: UP008
        if padding is None:
            assert kernel_size % 2 == 1
            padding = int(dilation * (kernel_size - 1) / 2)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
                              dilation=dilation, bias=bias)

    def forward(self, signal):
        return self.conv(signal)


class PostNet(nn.Module):
    """PostNet: Five 1-d convolution with 512 channels and kernel size 5 (here three, 16 channels)"""

    def __init__(self, n_mel_channels=80, postnet_embedding_dim=512, postnet_kernel_size=5, postnet_n_convolutions=5):
        super(PostNet, self).__init__()  # noqa: UP008
        self.convolutions = nn.ModuleList()
        self.convolutions.append(nn.Sequential(
            ConvNorm(n_mel_channels, postnet_embedding_dim, kernel_size=postnet_kernel_size, stride=1,
                     padding=int((postnet_kernel_size - 1) / 2), dilation=1, w_init_gain="tanh"),
            nn.BatchNorm1d(postnet_embedding_dim)))
        for _ in range(1, postnet_n_convolutions - 1):
            self.convolutions.append(nn.Sequential(
                ConvNorm(postnet_embedding_dim, postnet_embedding_dim, kernel_size=postnet_kernel_size, stride=1,
                         padding=int((postnet_kernel_size - 1) / 2), dilation=1, w_init_gain="tanh"),
                nn.BatchNorm1d(postnet_embedding_dim)))
        self.convolutions.append(nn.Sequential(
            ConvNorm(postnet_embedding_dim, n_mel_channels, kernel_size=postnet_kernel_size, stride=1,
                     padding=int((postnet_kernel_size - 1) / 2), dilation=1, w_init_gain="linear"),
            nn.BatchNorm1d(n_mel_channels)))

    def forward(self, x):
        x = x.contiguous().transpose(1, 2)
        for i in range(len(self.convolutions) - 1):
            x = F.dropout(torch.tanh(self.convolutions[i](x)), 0.5, self.training)
        x = F.dropout(self.convolutions[-1](x), 0.5, self.training)
        x = x.contiguous().transpose(1, 2)
        return x


class FastSpeech2(nn.Module):
    """FastSpeech2"""

    def __init__(self, model_config):
        super(FastSpeech2, self).__init__()  # noqa: UP008
        self.encoder = Encoder(model_config)
        self.variance_adaptor = VarianceAdaptor(model_config)
        self.decoder = Decoder(model_config)
        self.mel_linear = nn.Linear(model_config["transformer"]["decoder_hidden"], model_config["n_mel_channels"])
        self.postnet = PostNet(model_config["n_mel_channels"], **model_config["postnet"])

    def forward(self, texts, src_lens, max_src_len, mels=None, mel_lens=None, max_mel_len=None, p_targets=None,
                e_targets=None, d_targets=None, p_control=1.0, e_control=1.0, d_control=1.0):
        src_masks = get_mask_from_lengths(src_lens, max_src_len)
        mel_masks = get_mask_from_lengths(mel_lens, max_mel_len) if mel_lens is not None else None

        output = self.encoder(texts, src_masks)
        (output, p_predictions, e_predictions, log_d_predictions, d_rounded, mel_lens, mel_masks) = \
            self.variance_adaptor(output, src_masks, mel_masks, max_mel_len, p_targets, e_targets, d_targets,
                                  p_control, e_control, d_control)
        output, mel_masks = self.decoder(output, mel_masks)
        output = self.mel_linear(output)
        postnet_output = self.postnet(output) + output
        return (output, postnet_output, p_predictions, e_predictions, log_d_predictions, d_rounded, src_masks,
                mel_masks, src_lens, mel_lens)


# ----------------------------------------------------------------------------------- model/loss.py
class FastSpeech2Loss(nn.Module):
    """FastSpeech2 Loss"""

    def __init__(self):
        super(FastSpeech2Loss, self).__init__()  # noqa: UP008
        self.mse_loss = nn.MSELoss()
        self.mae_loss = nn.L1Loss()

    def forward(self, inputs, predictions):
        (mel_targets, _, _, pitch_targets, energy_targets, duration_targets) = inputs[3:]
        (mel_predictions, postnet_mel_predictions, pitch_predictions, energy_predictions, log_duration_predictions,
         _, src_masks, mel_masks, _, _) = predictions
        src_masks = ~src_masks
        mel_masks = ~mel_masks
        log_duration_targets = torch.log(duration_targets.float() + 1)
        mel_targets = mel_targets[:, : mel_masks.shape[1], :]
        mel_masks = mel_masks[:, :mel_masks.shape[1]]

        log_duration_targets.requires_grad = False
        pitch_targets.requires_grad = False
        energy_targets.requires_grad = False
        mel_targets.requires_grad = False

        pitch_predictions = pitch_predictions.masked_select(src_masks)
        pitch_targets = torch.log(pitch_targets.masked_select(src_masks) / 150.0)
        energy_predictions = energy_predictions.masked_select(src_masks)
        energy_targets = energy_targets.masked_select(src_masks)

        log_duration_predictions = log_duration_predictions.masked_select(src_masks)
        log_duration_targets = log_duration_targets.masked_select(src_masks)

        mel_predictions = mel_predictions.masked_select(mel_masks.unsqueeze(-1))
        postnet_mel_predictions = postnet_mel_predictions.masked_select(mel_masks.unsqueeze(-1))
        mel_targets = mel_targets.masked_select(mel_masks.unsqueeze(-1))

        mel_loss = self.mae_loss(mel_predictions, mel_targets)
        postnet_mel_loss = self.mae_loss(postnet_mel_predictions, mel_targets)

        pitch_loss = self.mse_loss(pitch_predictions, pitch_targets)
        energy_loss = self.mse_loss(energy_predictions, energy_targets)
        duration_loss = self.mse_loss(log_duration_predictions, log_duration_targets)

        total_loss = mel_loss + postnet_mel_loss + duration_loss + pitch_loss + energy_loss

        return (total_loss, mel_loss, postnet_mel_loss, pitch_loss, energy_loss, duration_loss)


class ScheduledOptim:
    """A simple wrapper class for learning rate scheduling"""

    def __init__(self, model, d_model, n_warm_up_step=20, current_step=0):
        self._optimizer = torch.optim.Adam(model.parameters(), betas=(0.9, 0.98), eps=1e-9, weight_decay=0.0)
        self.n_warmup_steps = n_warm_up_step
        self.current_step = current_step
        self.init_lr = np.power(d_model, -0.5)

    def step_and_update_lr(self):
        self._update_learning_rate()
        self._optimizer.step()

    def zero_grad(self):
        self._optimizer.zero_grad()

    def _get_lr_scale(self):
        return np.min([np.power(self.current_step, -0.5), np.power(self.n_warmup_steps, -1.5) * self.current_step])

    def _update_learning_rate(self):
        self.current_step += 1
        lr = self.init_lr * self._get_lr_scale() * 0.3
        for param_group in self._optimizer.param_groups:
            param_group["lr"] = lr


# ----------------------------------------------------------------------------------- checks
batch = collate(train_set[:8])
texts, src_lens, max_src_len, mels, mel_lens, max_mel_len, pitches, energies, durations = batch
src_masks = get_mask_from_lengths(src_lens, max_src_len)
seq_mask = torch.arange(max_src_len, dtype=torch.float32)[None, :] < src_lens[:, None]
print("mask equals the < form inverted:", torch.equal(src_masks, ~seq_mask), src_masks.dtype, tuple(src_masks.shape))

lr_module = LengthRegulator()
enc = torch.randn(8, max_src_len, 6, requires_grad=True)
regulated, mel_len = lr_module(enc, durations, max_mel_len)
reference = pad([torch.repeat_interleave(enc[b, :src_lens[b]], durations[b, :src_lens[b]], dim=0) for b in range(8)],
                max_mel_len)
print("length regulator == repeat_interleave:", torch.equal(regulated, reference), tuple(regulated.shape))
print("mel_len == durations.sum(1):", torch.equal(mel_len, durations.sum(1)), torch.equal(mel_len, mel_lens))
w = torch.randn(regulated.shape)
g1, = torch.autograd.grad((regulated * w).sum(), enc)
g2, = torch.autograd.grad((reference * w).sum(), enc)
print("length regulator gradient == repeat_interleave gradient:", torch.allclose(g1, g2, atol=1e-6))
g_sum = torch.zeros(8, max_src_len, 6)
for b in range(8):
    frames_of = torch.repeat_interleave(torch.arange(max_src_len), durations[b])
    g_sum[b].index_add_(0, frames_of, w[b, :frames_of.numel()])
print("gradient == frame weights summed per phoneme:", torch.allclose(g1, g_sum, atol=1e-5))
unpadded, _ = lr_module(enc, durations, None)
print("unpadded max length:", unpadded.shape[1] == int(mel_len.max()))

adaptor_probe = VarianceAdaptor(model_config)
bins = adaptor_probe.pitch_bins
buckets = torch.bucketize(pitches, bins)
print("bucketize == bins below:", torch.equal(buckets, (pitches.unsqueeze(-1) > bins).sum(-1)),
      "right=True == bins at or below:",
      torch.equal(torch.bucketize(pitches, bins, right=True), (pitches.unsqueeze(-1) >= bins).sum(-1)),
      buckets.dtype, "range ok:", int(buckets.min()) >= 0 and int(buckets.max()) < 16)
print("log bins increasing:", bool((bins[1:] > bins[:-1]).all()), "requires_grad:", bins.requires_grad)

# ----------------------------------------------------------------------------------- training
model = FastSpeech2(model_config).to(device)
Loss = FastSpeech2Loss().to(device)
optimizer = ScheduledOptim(model, model_config["transformer"]["encoder_hidden"])
grad_clip_thresh = 1.0


def evaluate(model, dataset):
    model.eval()
    with torch.no_grad():
        batch = collate(dataset)
        output = model(*batch[:6], p_targets=batch[6], e_targets=batch[7], d_targets=batch[8])
        losses = Loss(batch, output)
    model.train()
    return [loss.item() for loss in losses]


untrained = evaluate(model, val_set)
step = 0
for epoch in range(1, 21):
    order = torch.randperm(len(train_set)).tolist()
    for s in range(0, len(order), 16):
        batch = collate([train_set[k] for k in order[s:s + 16]])
        output = model(*batch[:6], p_targets=batch[6], e_targets=batch[7], d_targets=batch[8])
        losses = Loss(batch, output)
        total_loss = losses[0]
        total_loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip_thresh)
        optimizer.step_and_update_lr()
        optimizer.zero_grad()
        step += 1
    if epoch % 10 == 0:
        val = evaluate(model, val_set)
        message = ("Step {}, Total Loss: {:.4f}, Mel Loss: {:.4f}, Mel PostNet Loss: {:.4f}, Pitch Loss: {:.4f}, "
                   "Energy Loss: {:.4f}, Duration Loss: {:.4f}").format(step, *val)
        print(message)

val = evaluate(model, val_set)

# inference: durations, pitch and energy predicted
model.eval()
with torch.no_grad():
    texts, src_lens, max_src_len, mels, mel_lens, max_mel_len, pitches, energies, durations = collate(val_set)
    output = model(texts, src_lens, max_src_len)
    d_rounded, src_masks, pred_mel_lens = output[5], output[6], output[9]
    valid = ~src_masks
    exact = (d_rounded.long() == durations)[valid].float().mean().item()
    baseline = (torch.zeros_like(durations) + durations[valid].float().mean().round().long() == durations)[valid]
    baseline_exact = baseline.float().mean().item()
    length_error = ((pred_mel_lens - mel_lens).abs().float() / mel_lens.float()).mean().item()
    print("d_rounded dtype:", d_rounded.dtype, "min >= 0:", bool(d_rounded.min() >= 0),
          "mel mask matches lengths:", torch.equal((~output[7]).sum(1), pred_mel_lens))
    slow = model(texts, src_lens, max_src_len, d_control=2.0)
    print("d_control=2.0 lengthens:", bool((slow[9] >= pred_mel_lens).all()))
print(f"mel loss {untrained[1]:.4f} -> {val[1]:.4f}; durations exact {exact:.3f} (constant guess {baseline_exact:.3f})")
print("trained mel loss under half the untrained:", val[1] < 0.5 * untrained[1],
      "durations beat the constant guess:", exact > baseline_exact)
print(f"FINAL mel_loss={val[1]:.4f} postnet_loss={val[2]:.4f} duration_loss={val[5]:.4f} pitch_loss={val[3]:.4f} "
      f"energy_loss={val[4]:.4f} duration_exact={exact:.4f} length_error={length_error:.4f}")
