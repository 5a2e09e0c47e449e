"""TimesNet (Wu et al., ICLR 2023) as thuml/Time-Series-Library writes it, forecasting synthetic seasonal series.

From ``models/TimesNet.py``: ``FFT_for_Period`` (``torch.fft.rfft(x, dim=1)``, ``abs(xf).mean(0).mean(-1)``,
``frequency_list[0] = 0``, ``torch.topk``, ``.detach().cpu().numpy()`` periods), ``TimesBlock`` folding the
series into 2-D by each period (zero padding by ``torch.cat``, ``reshape`` + ``permute(0, 3, 1, 2)``),
``Inception_Block_V1`` from ``layers/Conv_Blocks.py`` (``nn.Conv2d`` kernels 1, 3, 5 averaged by
``torch.stack(res_list, dim=-1).mean(-1)``, ``kaiming_normal_(mode='fan_out', nonlinearity='relu')``), the
adaptive aggregation ``F.softmax(period_weight, dim=1).unsqueeze(1).unsqueeze(1).repeat(1, T, N, 1)``; from
``layers/Embed.py``: ``TokenEmbedding`` (``nn.Conv1d(padding_mode='circular')`` with the
``torch.__version__ >= '1.5.0'`` padding test and ``kaiming_normal_(mode='fan_in',
nonlinearity='leaky_relu')``), ``PositionalEmbedding`` (a ``register_buffer`` of sin/cos), and
``TimeFeatureEmbedding``; the forecast path's series normalisation (``means``, ``stdev = torch.sqrt(
torch.var(x, dim=1, keepdim=True, unbiased=False) + 1e-5)``), ``predict_linear`` over time and the
de-normalisation by ``repeat``.

The data are three channels of two planted seasonalities (periods 12 and 8) with a slow trend and noise.
Checked: ``FFT_for_Period`` on raw input windows finds the planted periods; the trained TimesNet's test MSE is
below the naive (repeat the last value) baseline's; the seasonal-naive (repeat the last 24 steps) MSE is printed beside it.
"""

# ruff: noqa: UP008, UP034, B007  (the library's own spelling: super(Class, self), its parentheses and loop variables)

import argparse
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ----------------------------------------------------------------------------------- layers/Embed.py
class PositionalEmbedding(nn.Module):
    def __init__(self, d_model, max_len=5000):
        super(PositionalEmbedding, self).__init__()
        # Compute the positional encodings once in log space.
        pe = torch.zeros(max_len, d_model).float()
        pe.require_grad = False

        position = torch.arange(0, max_len).float().unsqueeze(1)
        div_term = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()

        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)

        pe = pe.unsqueeze(0)
        self.register_buffer('pe', pe)

    def forward(self, x):
        return self.pe[:, :x.size(1)]


class TokenEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super(TokenEmbedding, self).__init__()
        padding = 1 if torch.__version__ >= '1.5.0' else 2
        self.tokenConv = nn.Conv1d(in_channels=c_in, out_channels=d_model,
                                   kernel_size=3, padding=padding, padding_mode='circular', bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_in', nonlinearity='leaky_relu')

    def forward(self, x):
        x = self.tokenConv(x.permute(0, 2, 1)).transpose(1, 2)
        return x


class TimeFeatureEmbedding(nn.Module):
    def __init__(self, d_model, embed_type='timeF', freq='h'):
        super(TimeFeatureEmbedding, self).__init__()

        freq_map = {'h': 4, 't': 5, 's': 6, 'm': 1, 'a': 1, 'w': 2, 'd': 3, 'b': 3}
        d_inp = freq_map[freq]
        self.embed = nn.Linear(d_inp, d_model, bias=False)

    def forward(self, x):
        return self.embed(x)


class DataEmbedding(nn.Module):
    def __init__(self, c_in, d_model, embed_type='fixed', freq='h', dropout=0.1):
        super(DataEmbedding, self).__init__()

        self.value_embedding = TokenEmbedding(c_in=c_in, d_model=d_model)
        self.position_embedding = PositionalEmbedding(d_model=d_model)
        self.temporal_embedding = TimeFeatureEmbedding(d_model=d_model, embed_type=embed_type, freq=freq)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x, x_mark):
        if x_mark is None:
            x = self.value_embedding(x) + self.position_embedding(x)
        else:
            x = self.value_embedding(
                x) + self.temporal_embedding(x_mark) + self.position_embedding(x)
        return self.dropout(x)


# ----------------------------------------------------------------------------------- layers/Conv_Blocks.py
class Inception_Block_V1(nn.Module):
    def __init__(self, in_channels, out_channels, num_kernels=6, init_weight=True):
        super(Inception_Block_V1, self).__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_kernels = num_kernels
        kernels = []
        for i in range(self.num_kernels):
            kernels.append(nn.Conv2d(in_channels, out_channels, kernel_size=2 * i + 1, padding=i))
        self.kernels = nn.ModuleList(kernels)
        if init_weight:
            self._initialize_weights()

    def _initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        res_list = []
        for i in range(self.num_kernels):
            res_list.append(self.kernels[i](x))
        res = torch.stack(res_list, dim=-1).mean(-1)
        return res


# ----------------------------------------------------------------------------------- models/TimesNet.py
def FFT_for_Period(x, k=2):
    # [B, T, C]
    xf = torch.fft.rfft(x, dim=1)
    # find period by amplitudes
    frequency_list = abs(xf).mean(0).mean(-1)
    frequency_list[0] = 0
    _, top_list = torch.topk(frequency_list, k)
    top_list = top_list.detach().cpu().numpy()
    period = x.shape[1] // top_list
    return period, abs(xf).mean(-1)[:, top_list]


class TimesBlock(nn.Module):
    def __init__(self, configs):
        super(TimesBlock, self).__init__()
        self.seq_len = configs.seq_len
        self.pred_len = configs.pred_len
        self.k = configs.top_k
        # parameter-efficient design
        self.conv = nn.Sequential(
            Inception_Block_V1(configs.d_model, configs.d_ff,
                               num_kernels=configs.num_kernels),
            nn.GELU(),
            Inception_Block_V1(configs.d_ff, configs.d_model,
                               num_kernels=configs.num_kernels)
        )

    def forward(self, x):
        B, T, N = x.size()
        period_list, period_weight = FFT_for_Period(x, self.k)

        res = []
        for i in range(self.k):
            period = period_list[i]
            # padding
            if (self.seq_len + self.pred_len) % period != 0:
                length = (((self.seq_len + self.pred_len) // period) + 1) * period
                padding = torch.zeros([x.shape[0], (length - (self.seq_len + self.pred_len)), x.shape[2]]).to(x.device)
                out = torch.cat([x, padding], dim=1)
            else:
                length = (self.seq_len + self.pred_len)
                out = x
            # reshape
            out = out.reshape(B, length // period, period,
                              N).permute(0, 3, 1, 2).contiguous()
            # 2D conv: from 1d Variation to 2d Variation
            out = self.conv(out)
            # reshape back
            out = out.permute(0, 2, 3, 1).reshape(B, -1, N)
            res.append(out[:, :(self.seq_len + self.pred_len), :])
        res = torch.stack(res, dim=-1)
        # adaptive aggregation
        period_weight = F.softmax(period_weight, dim=1)
        period_weight = period_weight.unsqueeze(
            1).unsqueeze(1).repeat(1, T, N, 1)
        res = torch.sum(res * period_weight, -1)
        # residual connection
        res = res + x
        return res


class Model(nn.Module):
    """
    Paper link: https://openreview.net/pdf?id=ju_Uqw384Oq
    """

    def __init__(self, configs):
        super(Model, self).__init__()
        self.configs = configs
        self.task_name = configs.task_name
        self.seq_len = configs.seq_len
        self.label_len = configs.label_len
        self.pred_len = configs.pred_len
        self.model = nn.ModuleList([TimesBlock(configs)
                                    for _ in range(configs.e_layers)])
        self.enc_embedding = DataEmbedding(configs.enc_in, configs.d_model, configs.embed, configs.freq,
                                           configs.dropout)
        self.layer = configs.e_layers
        self.layer_norm = nn.LayerNorm(configs.d_model)
        if self.task_name == 'long_term_forecast' or self.task_name == 'short_term_forecast':
            self.predict_linear = nn.Linear(
                self.seq_len, self.pred_len + self.seq_len)
            self.projection = nn.Linear(
                configs.d_model, configs.c_out, bias=True)

    def forecast(self, x_enc, x_mark_enc, x_dec, x_mark_dec):
        # Normalization from Non-stationary Transformer
        means = x_enc.mean(1, keepdim=True).detach()
        x_enc = x_enc.sub(means)
        stdev = torch.sqrt(
            torch.var(x_enc, dim=1, keepdim=True, unbiased=False) + 1e-5)
        x_enc = x_enc.div(stdev)

        # embedding
        enc_out = self.enc_embedding(x_enc, x_mark_enc)  # [B,T,C]
        enc_out = self.predict_linear(enc_out.permute(0, 2, 1)).permute(
            0, 2, 1)  # align temporal dimension
        # TimesNet
        for i in range(self.layer):
            enc_out = self.layer_norm(self.model[i](enc_out))
        # project back
        dec_out = self.projection(enc_out)

        # De-Normalization from Non-stationary Transformer
        dec_out = dec_out.mul(
            (stdev[:, 0, :].unsqueeze(1).repeat(
                1, self.pred_len + self.seq_len, 1)))
        dec_out = dec_out.add(
            (means[:, 0, :].unsqueeze(1).repeat(
                1, self.pred_len + self.seq_len, 1)))
        return dec_out

    def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec, mask=None):
        if self.task_name == 'long_term_forecast' or self.task_name == 'short_term_forecast':
            dec_out = self.forecast(x_enc, x_mark_enc, x_dec, x_mark_dec)
            return dec_out[:, -self.pred_len:, :]  # [B, L, D]
        return None


# ----------------------------------------------------------------------------------- data
parser = argparse.ArgumentParser(description='TimesNet')
parser.add_argument('--task_name', type=str, default='long_term_forecast')
parser.add_argument('--seq_len', type=int, default=48)
parser.add_argument('--label_len', type=int, default=24)
parser.add_argument('--pred_len', type=int, default=24)
parser.add_argument('--enc_in', type=int, default=3)
parser.add_argument('--c_out', type=int, default=3)
parser.add_argument('--d_model', type=int, default=16)
parser.add_argument('--d_ff', type=int, default=16)
parser.add_argument('--e_layers', type=int, default=2)
parser.add_argument('--top_k', type=int, default=2)
parser.add_argument('--num_kernels', type=int, default=3)
parser.add_argument('--embed', type=str, default='timeF')
parser.add_argument('--freq', type=str, default='h')
parser.add_argument('--dropout', type=float, default=0.1)
parser.add_argument('--batch_size', type=int, default=16)
parser.add_argument('--learning_rate', type=float, default=0.005)
parser.add_argument('--train_epochs', type=int, default=3)
args = parser.parse_args([])

rng = np.random.RandomState(seed)
TOTAL = 720
t = np.arange(TOTAL)
amplitudes = 1.0 + rng.rand(3)
series = np.stack([
    amplitudes[c] * np.sin(2 * np.pi * t / 12 + rng.rand() * 6)
    + 0.6 * np.sin(2 * np.pi * t / 8 + rng.rand() * 6)
    + 0.002 * (c + 1) * t
    + 0.15 * rng.randn(TOTAL)
    for c in range(3)
], axis=1).astype(np.float32)
# time features as utils/timefeatures.py's HourOfDay, DayOfWeek, DayOfMonth, DayOfYear: scaled to [-0.5, 0.5]
hours = t % 24
days = t // 24
stamp = np.stack([hours / 23.0 - 0.5, (days % 7) / 6.0 - 0.5, (days % 30) / 29.0 - 0.5,
                  (days % 365) / 364.0 - 0.5], axis=1).astype(np.float32)


class Dataset_Custom(Dataset):
    def __init__(self, data, data_stamp, seq_len, label_len, pred_len):
        self.data_x = data
        self.data_y = data
        self.data_stamp = data_stamp
        self.seq_len, self.label_len, self.pred_len = seq_len, label_len, pred_len

    def __getitem__(self, index):
        s_begin = index
        s_end = s_begin + self.seq_len
        r_begin = s_end - self.label_len
        r_end = r_begin + self.label_len + self.pred_len
        return (self.data_x[s_begin:s_end], self.data_y[r_begin:r_end],
                self.data_stamp[s_begin:s_end], self.data_stamp[r_begin:r_end])

    def __len__(self):
        return len(self.data_x) - self.seq_len - self.pred_len + 1


border = 540
train_set = Dataset_Custom(series[:border], stamp[:border], args.seq_len, args.label_len, args.pred_len)
test_set = Dataset_Custom(series[border - args.seq_len:], stamp[border - args.seq_len:], args.seq_len,
                          args.label_len, args.pred_len)
train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
test_loader = DataLoader(test_set, batch_size=32, shuffle=False, drop_last=False)
print(f"train windows {len(train_set)} test windows {len(test_set)}")

# the FFT period finder on raw input windows recovers the planted periods
raw_x = torch.stack([torch.from_numpy(train_set[i][0]) for i in range(0, 200, 10)])
periods, weights = FFT_for_Period(raw_x, k=2)
print(f"periods found on raw windows {sorted(int(p) for p in periods)} weights shape {tuple(weights.shape)}")

# ----------------------------------------------------------------------------------- exp_long_term_forecasting
model = Model(args).float()
model_optim = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
criterion = nn.MSELoss()
print(f"parameters {sum(p.numel() for p in model.parameters() if p.requires_grad)}")


def make_dec_inp(batch_y):
    dec_inp = torch.zeros_like(batch_y[:, -args.pred_len:, :]).float()
    return torch.cat([batch_y[:, :args.label_len, :], dec_inp], dim=1).float()


for epoch in range(args.train_epochs):
    model.train()
    train_loss = []
    for i, (batch_x, batch_y, batch_x_mark, batch_y_mark) in enumerate(train_loader):
        model_optim.zero_grad()
        batch_x = batch_x.float()
        batch_y = batch_y.float()
        outputs = model(batch_x, batch_x_mark, make_dec_inp(batch_y), batch_y_mark)
        f_dim = 0
        outputs = outputs[:, -args.pred_len:, f_dim:]
        batch_y = batch_y[:, -args.pred_len:, f_dim:]
        loss = criterion(outputs, batch_y)
        train_loss.append(loss.item())
        loss.backward()
        model_optim.step()
    print(f"Epoch: {epoch + 1} | Train Loss: {np.average(train_loss):.4f}")

model.eval()
preds, trues, naive, seasonal = [], [], [], []
with torch.no_grad():
    for batch_x, batch_y, batch_x_mark, batch_y_mark in test_loader:
        outputs = model(batch_x, batch_x_mark, make_dec_inp(batch_y), batch_y_mark)
        outputs = outputs[:, -args.pred_len:, :].detach().cpu().numpy()
        batch_y = batch_y[:, -args.pred_len:, :].detach().cpu().numpy()
        preds.append(outputs)
        trues.append(batch_y)
        naive.append(np.repeat(batch_x[:, -1:, :].numpy(), args.pred_len, axis=1))
        seasonal.append(batch_x[:, -args.pred_len:, :].numpy())
preds, trues = np.concatenate(preds), np.concatenate(trues)
mse = float(np.mean((preds - trues) ** 2))
mae = float(np.mean(np.abs(preds - trues)))
naive_mse = float(np.mean((np.concatenate(naive) - trues) ** 2))
seasonal_mse = float(np.mean((np.concatenate(seasonal) - trues) ** 2))
print(f"test shape {preds.shape} mse {mse:.4f} mae {mae:.4f} naive mse {naive_mse:.4f} "
      f"seasonal naive mse {seasonal_mse:.4f}")
assert mse < naive_mse
print(f"FINAL mse={mse:.4f} mae={mae:.4f} naive_mse={naive_mse:.4f} seasonal_mse={seasonal_mse:.4f}")
