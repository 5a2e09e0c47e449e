"""FEDformer (Zhou et al. 2022) on synthetic seasonal + trend series, long-horizon forecasting.

In the style of MAZiqing/FEDformer (`layers/FourierCorrelation.py`, `layers/Autoformer_EncDec.py`,
`layers/Embed.py`, `models/FEDformer.py`, `utils/tools.py`): `moving_avg` by front/end replicate padding
`x[:, 0:1, :].repeat(1, (kernel_size - 1) // 2, 1)` / `x[:, -1:, :]` + `torch.cat` + `nn.AvgPool1d(kernel_size,
stride=1, padding=0)` on `permute(0, 2, 1)`, `series_decomp`, `get_frequency_modes` seeded by `np.random.shuffle`,
the `FourierBlock` with `nn.Parameter(scale * torch.rand(8, in // 8, out // 8, modes, dtype=torch.cfloat))`,
`torch.fft.rfft(x, dim=-1)` -> per-mode `torch.einsum("bhi,hio->bho", ...)` written into
`out_ft = torch.zeros(B, H, E, L // 2 + 1, dtype=torch.cfloat)` -> `torch.fft.irfft(out_ft, n=x.size(-1))`,
`FourierCrossAttention` (gathered modes, `einsum("bhex,bhey->bhxy")`, complex `.tanh()`, `einsum("bhex,heox->bhox")`,
scattered back and divided by the channel counts), `AutoCorrelationLayer` with its `out.view(B, L, -1)`,
`TokenEmbedding` (`Conv1d(padding_mode='circular', bias=False)` + `kaiming_normal_(mode='fan_in',
nonlinearity='leaky_relu')`) + `TimeFeatureEmbedding`, `my_Layernorm`, encoder/decoder layers with 1x1 `Conv1d`
feed-forwards and `F.gelu`, the decoder's trend accumulation through a circular `Conv1d` projection, the model's
`mean.repeat` + `F.pad(seasonal_init[:, -label_len:, :], (0, 0, 0, pred_len))` decoder input, `nn.MSELoss`,
Adam with the repository's `adjust_learning_rate` type1 halving, early stopping on validation loss with
`torch.save`/`load_state_dict` of the best checkpoint; test MSE/MAE against a naive last-value forecast.
Check: the per-mode einsum equals an explicit loop of complex matrix products, and the moving average equals
a NumPy replicate-padded convolution.
"""
# ruff: noqa: UP008, UP030, UP032  (the repository's spelling: super(Class, self), '{0}'.format)

import math
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
rng = np.random.RandomState(seed)

seq_len, label_len, pred_len = 48, 24, 24
enc_in = dec_in = c_out = 3
d_model, n_heads, d_ff = 32, 8, 32
modes = 8
moving_avg_k = 13
batch_size = 16
train_epochs = 5
learning_rate = 2e-3


# --- data: 3 channels of daily + half-daily seasonality on a drifting trend, hourly steps
def make_series(T):
    t = np.arange(T)
    chans = []
    for _ in range(enc_in):
        amp1, amp2 = rng.uniform(0.6, 1.2), rng.uniform(0.2, 0.5)
        ph1, ph2 = rng.uniform(0, 2 * np.pi, 2)
        trend = np.cumsum(rng.normal(0, 0.02, T)) + rng.uniform(-1, 1) * t / T
        chans.append(amp1 * np.sin(2 * np.pi * t / 24 + ph1) + amp2 * np.sin(2 * np.pi * t / 12 + ph2) + trend
                     + rng.normal(0, 0.1, T))
    data = np.stack(chans, 1).astype(np.float32)
    marks = np.stack([(t % 24) / 23.0 - 0.5, ((t // 24) % 7) / 6.0 - 0.5], 1).astype(np.float32)
    return data, marks


data, marks = make_series(1400)
n_train, n_val = 900, 200
mean_, std_ = data[:n_train].mean(0), data[:n_train].std(0)
data = (data - mean_) / std_


def windows(lo, hi, stride):
    xs, ys, xm, ym = [], [], [], []
    for s in range(lo, hi - seq_len - pred_len + 1, stride):
        r_begin = s + seq_len - label_len
        xs.append(data[s:s + seq_len])
        ys.append(data[r_begin:s + seq_len + pred_len])
        xm.append(marks[s:s + seq_len])
        ym.append(marks[r_begin:s + seq_len + pred_len])
    return [torch.from_numpy(np.stack(a)) for a in (xs, ys, xm, ym)]


train_set = windows(0, n_train, 4)
val_set = windows(n_train - seq_len, n_train + n_val, 6)
test_set = windows(n_train + n_val - seq_len, len(data), 6)


def get_frequency_modes(seq_len, modes=64, mode_select_method='random'):
    modes = min(modes, seq_len // 2)
    if mode_select_method == 'random':
        index = list(range(0, seq_len // 2))
        np.random.shuffle(index)
        index = index[:modes]
    else:
        index = list(range(0, modes))
    index.sort()
    return index


class FourierBlock(nn.Module):
    def __init__(self, in_channels, out_channels, seq_len, modes=0, mode_select_method='random'):
        super(FourierBlock, self).__init__()
        self.index = get_frequency_modes(seq_len, modes=modes, mode_select_method=mode_select_method)
        print('modes={}, index={}'.format(modes, self.index))
        self.scale = (1 / (in_channels * out_channels))
        self.weights1 = nn.Parameter(
            self.scale * torch.rand(8, in_channels // 8, out_channels // 8, len(self.index), dtype=torch.cfloat))

    def compl_mul1d(self, input, weights):
        # (batch, in_channel, x ), (in_channel, out_channel, x) -> (batch, out_channel, x)
        return torch.einsum("bhi,hio->bho", input, weights)

    def forward(self, q, k, v, mask):
        B, L, H, E = q.shape
        x = q.permute(0, 2, 3, 1)
        x_ft = torch.fft.rfft(x, dim=-1)
        out_ft = torch.zeros(B, H, E, L // 2 + 1, device=x.device, dtype=torch.cfloat)
        for wi, i in enumerate(self.index):
            out_ft[:, :, :, wi] = self.compl_mul1d(x_ft[:, :, :, i], self.weights1[:, :, :, wi])
        x = torch.fft.irfft(out_ft, n=x.size(-1))
        return (x, None)


class FourierCrossAttention(nn.Module):
    def __init__(self, in_channels, out_channels, seq_len_q, seq_len_kv, modes=64, mode_select_method='random',
                 activation='tanh', policy=0):
        super(FourierCrossAttention, self).__init__()
        self.activation = activation
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.index_q = get_frequency_modes(seq_len_q, modes=modes, mode_select_method=mode_select_method)
        self.index_kv = get_frequency_modes(seq_len_kv, modes=modes, mode_select_method=mode_select_method)
        print('modes_q={}, index_q={}'.format(len(self.index_q), self.index_q))
        self.scale = (1 / (in_channels * out_channels))
        self.weights1 = nn.Parameter(
            self.scale * torch.rand(8, in_channels // 8, out_channels // 8, len(self.index_q), dtype=torch.cfloat))

    def forward(self, q, k, v, mask):
        B, L, H, E = q.shape
        xq = q.permute(0, 2, 3, 1)
        xk = k.permute(0, 2, 3, 1)
        xq_ft_ = torch.zeros(B, H, E, len(self.index_q), device=xq.device, dtype=torch.cfloat)
        xq_ft = torch.fft.rfft(xq, dim=-1)
        for i, j in enumerate(self.index_q):
            xq_ft_[:, :, :, i] = xq_ft[:, :, :, j]
        xk_ft_ = torch.zeros(B, H, E, len(self.index_kv), device=xq.device, dtype=torch.cfloat)
        xk_ft = torch.fft.rfft(xk, dim=-1)
        for i, j in enumerate(self.index_kv):
            xk_ft_[:, :, :, i] = xk_ft[:, :, :, j]
        xqk_ft = (torch.einsum("bhex,bhey->bhxy", xq_ft_, xk_ft_))
        if self.activation == 'tanh':
            xqk_ft = xqk_ft.tanh()
        elif self.activation == 'softmax':
            xqk_ft = torch.softmax(abs(xqk_ft), dim=-1)
            xqk_ft = torch.complex(xqk_ft, torch.zeros_like(xqk_ft))
        xqkv_ft = torch.einsum("bhxy,bhey->bhex", xqk_ft, xk_ft_)
        xqkvw = torch.einsum("bhex,heox->bhox", xqkv_ft, self.weights1)
        out_ft = torch.zeros(B, H, E, L // 2 + 1, device=xq.device, dtype=torch.cfloat)
        for i, j in enumerate(self.index_q):
            out_ft[:, :, :, j] = xqkvw[:, :, :, i]
        out = torch.fft.irfft(out_ft / self.in_channels / self.out_channels, n=xq.size(-1))
        return (out, None)


class AutoCorrelationLayer(nn.Module):
    def __init__(self, correlation, d_model, n_heads, d_keys=None, d_values=None):
        super(AutoCorrelationLayer, self).__init__()
        d_keys = d_keys or (d_model // n_heads)
        d_values = d_values or (d_model // n_heads)
        self.inner_correlation = correlation
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_model, d_keys * n_heads)
        self.value_projection = nn.Linear(d_model, d_values * n_heads)
        self.out_projection = nn.Linear(d_values * n_heads, d_model)
        self.n_heads = n_heads

    def forward(self, queries, keys, values, attn_mask):
        B, L, _ = queries.shape
        _, S, _ = keys.shape
        H = self.n_heads
        queries = self.query_projection(queries).view(B, L, H, -1)
        keys = self.key_projection(keys).view(B, S, H, -1)
        values = self.value_projection(values).view(B, S, H, -1)
        out, attn = self.inner_correlation(queries, keys, values, attn_mask)
        out = out.view(B, L, -1)
        return self.out_projection(out), attn


class my_Layernorm(nn.Module):
    def __init__(self, channels):
        super(my_Layernorm, self).__init__()
        self.layernorm = nn.LayerNorm(channels)

    def forward(self, x):
        x_hat = self.layernorm(x)
        bias = torch.mean(x_hat, dim=1).unsqueeze(1).repeat(1, x.shape[1], 1)
        return x_hat - bias


class moving_avg(nn.Module):
    def __init__(self, kernel_size, stride):
        super(moving_avg, self).__init__()
        self.kernel_size = kernel_size
        self.avg = nn.AvgPool1d(kernel_size=kernel_size, stride=stride, padding=0)

    def forward(self, x):
        front = x[:, 0:1, :].repeat(1, (self.kernel_size - 1) // 2, 1)
        end = x[:, -1:, :].repeat(1, (self.kernel_size - 1) // 2, 1)
        x = torch.cat([front, x, end], dim=1)
        x = self.avg(x.permute(0, 2, 1))
        x = x.permute(0, 2, 1)
        return x


class series_decomp(nn.Module):
    def __init__(self, kernel_size):
        super(series_decomp, self).__init__()
        self.moving_avg = moving_avg(kernel_size, stride=1)

    def forward(self, x):
        moving_mean = self.moving_avg(x)
        res = x - moving_mean
        return res, moving_mean


class EncoderLayer(nn.Module):
    def __init__(self, attention, d_model, d_ff=None, moving_avg=25, dropout=0.1, activation="relu"):
        super(EncoderLayer, self).__init__()
        d_ff = d_ff or 4 * d_model
        self.attention = attention
        self.conv1 = nn.Conv1d(in_channels=d_model, out_channels=d_ff, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(in_channels=d_ff, out_channels=d_model, kernel_size=1, bias=False)
        self.decomp1 = series_decomp(moving_avg)
        self.decomp2 = series_decomp(moving_avg)
        self.dropout = nn.Dropout(dropout)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, x, attn_mask=None):
        new_x, attn = self.attention(x, x, x, attn_mask=attn_mask)
        x = x + self.dropout(new_x)
        x, _ = self.decomp1(x)
        y = x
        y = self.dropout(self.activation(self.conv1(y.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        res, _ = self.decomp2(x + y)
        return res, attn


class Encoder(nn.Module):
    def __init__(self, attn_layers, norm_layer=None):
        super(Encoder, self).__init__()
        self.attn_layers = nn.ModuleList(attn_layers)
        self.norm = norm_layer

    def forward(self, x, attn_mask=None):
        attns = []
        for attn_layer in self.attn_layers:
            x, attn = attn_layer(x, attn_mask=attn_mask)
            attns.append(attn)
        if self.norm is not None:
            x = self.norm(x)
        return x, attns


class DecoderLayer(nn.Module):
    def __init__(self, self_attention, cross_attention, d_model, c_out, d_ff=None, moving_avg=25, dropout=0.1,
                 activation="relu"):
        super(DecoderLayer, self).__init__()
        d_ff = d_ff or 4 * d_model
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.conv1 = nn.Conv1d(in_channels=d_model, out_channels=d_ff, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(in_channels=d_ff, out_channels=d_model, kernel_size=1, bias=False)
        self.decomp1 = series_decomp(moving_avg)
        self.decomp2 = series_decomp(moving_avg)
        self.decomp3 = series_decomp(moving_avg)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Conv1d(in_channels=d_model, out_channels=c_out, kernel_size=3, stride=1, padding=1,
                                    padding_mode='circular', bias=False)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, x, cross, x_mask=None, cross_mask=None):
        x = x + self.dropout(self.self_attention(x, x, x, attn_mask=x_mask)[0])
        x, trend1 = self.decomp1(x)
        x = x + self.dropout(self.cross_attention(x, cross, cross, attn_mask=cross_mask)[0])
        x, trend2 = self.decomp2(x)
        y = x
        y = self.dropout(self.activation(self.conv1(y.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        x, trend3 = self.decomp3(x + y)
        residual_trend = trend1 + trend2 + trend3
        residual_trend = self.projection(residual_trend.permute(0, 2, 1)).transpose(1, 2)
        return x, residual_trend


class Decoder(nn.Module):
    def __init__(self, layers, norm_layer=None, projection=None):
        super(Decoder, self).__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm_layer
        self.projection = projection

    def forward(self, x, cross, x_mask=None, cross_mask=None, trend=None):
        for layer in self.layers:
            x, residual_trend = layer(x, cross, x_mask=x_mask, cross_mask=cross_mask)
            trend = trend + residual_trend
        if self.norm is not None:
            x = self.norm(x)
        if self.projection is not None:
            x = self.projection(x)
        return x, trend


class TokenEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super(TokenEmbedding, self).__init__()
        padding = 1 if torch.__version__ >= '1.5.0' else 2
        self.tokenConv = nn.Conv1d(in_channels=c_in, out_channels=d_model, kernel_size=3, padding=padding,
                                   padding_mode='circular', bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='leaky_relu')

    def forward(self, x):
        x = self.tokenConv(x.permute(0, 2, 1)).transpose(1, 2)
        return x


class TimeFeatureEmbedding(nn.Module):
    def __init__(self, d_model, d_inp=2):
        super(TimeFeatureEmbedding, self).__init__()
        self.embed = nn.Linear(d_inp, d_model, bias=False)

    def forward(self, x):
        return self.embed(x)


class DataEmbedding_wo_pos(nn.Module):
    def __init__(self, c_in, d_model, dropout=0.1):
        super(DataEmbedding_wo_pos, self).__init__()
        self.value_embedding = TokenEmbedding(c_in=c_in, d_model=d_model)
        self.temporal_embedding = TimeFeatureEmbedding(d_model=d_model)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x, x_mark):
        x = self.value_embedding(x) + self.temporal_embedding(x_mark)
        return self.dropout(x)


class FEDformer(nn.Module):
    def __init__(self):
        super(FEDformer, self).__init__()
        self.seq_len, self.label_len, self.pred_len = seq_len, label_len, pred_len
        self.decomp = series_decomp(moving_avg_k)
        self.enc_embedding = DataEmbedding_wo_pos(enc_in, d_model, 0.05)
        self.dec_embedding = DataEmbedding_wo_pos(dec_in, d_model, 0.05)
        encoder_self_att = FourierBlock(in_channels=d_model, out_channels=d_model, seq_len=self.seq_len, modes=modes)
        decoder_self_att = FourierBlock(in_channels=d_model, out_channels=d_model,
                                        seq_len=self.seq_len // 2 + self.pred_len, modes=modes)
        decoder_cross_att = FourierCrossAttention(in_channels=d_model, out_channels=d_model,
                                                  seq_len_q=self.seq_len // 2 + self.pred_len,
                                                  seq_len_kv=self.seq_len, modes=modes)
        self.encoder = Encoder(
            [EncoderLayer(AutoCorrelationLayer(encoder_self_att, d_model, n_heads), d_model, d_ff,
                          moving_avg=moving_avg_k, dropout=0.05, activation='gelu')],
            norm_layer=my_Layernorm(d_model))
        self.decoder = Decoder(
            [DecoderLayer(AutoCorrelationLayer(decoder_self_att, d_model, n_heads),
                          AutoCorrelationLayer(decoder_cross_att, d_model, n_heads), d_model, c_out, d_ff,
                          moving_avg=moving_avg_k, dropout=0.05, activation='gelu')],
            norm_layer=my_Layernorm(d_model),
            projection=nn.Linear(d_model, c_out, bias=True))

    def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec):
        mean = torch.mean(x_enc, dim=1).unsqueeze(1).repeat(1, self.pred_len, 1)
        seasonal_init, trend_init = self.decomp(x_enc)
        trend_init = torch.cat([trend_init[:, -self.label_len:, :], mean], dim=1)
        seasonal_init = F.pad(seasonal_init[:, -self.label_len:, :], (0, 0, 0, self.pred_len))
        enc_out = self.enc_embedding(x_enc, x_mark_enc)
        enc_out, attns = self.encoder(enc_out)
        dec_out = self.dec_embedding(seasonal_init, x_mark_dec)
        seasonal_part, trend_part = self.decoder(dec_out, enc_out, trend=trend_init)
        dec_out = trend_part + seasonal_part
        return dec_out[:, -self.pred_len:, :]


model = FEDformer()
print(f"parameters {sum(p.numel() for p in model.parameters())}, complex "
      f"{sum(p.numel() for p in model.parameters() if p.is_complex())}")

# --- check 1: the per-mode einsum equals an explicit loop of complex matrix products
with torch.no_grad():
    block = model.encoder.attn_layers[0].attention.inner_correlation
    q = torch.randn(2, seq_len, n_heads, d_model // n_heads)
    fast, _ = block(q, q, q, None)
    x_ft = torch.fft.rfft(q.permute(0, 2, 3, 1), dim=-1)
    out_ft = torch.zeros(2, n_heads, d_model // n_heads, seq_len // 2 + 1, dtype=torch.cfloat)
    for wi, i in enumerate(block.index):
        for b in range(2):
            for h in range(n_heads):
                out_ft[b, h, :, wi] = x_ft[b, h, :, i] @ block.weights1[h, :, :, wi]
    slow = torch.fft.irfft(out_ft, n=seq_len)
    einsum_err = (fast - slow).abs().max().item()
    w = block.weights1
    parts_ok = bool(torch.equal(torch.view_as_real(w)[..., 0], w.real)) and w.dtype == torch.complex64

# --- check 2: the moving average is a replicate-padded box filter
with torch.no_grad():
    xs = torch.randn(2, 30, 3)
    _, trend = model.decomp(xs)
    pad = (moving_avg_k - 1) // 2
    xp = np.pad(xs.numpy().astype(np.float64), ((0, 0), (pad, pad), (0, 0)), mode="edge")
    box = np.stack([xp[:, i:i + moving_avg_k].mean(1) for i in range(30)], 1)
    decomp_err = float(np.abs(trend.numpy() - box).max())
print(f"einsum vs loop err {einsum_err:.2e}, decomposition err {decomp_err:.2e}, cfloat parts {parts_ok}")


def adjust_learning_rate(optimizer, epoch, learning_rate):
    lr_adjust = {epoch: learning_rate * (0.5 ** ((epoch - 1) // 1))}
    if epoch in lr_adjust.keys():
        lr = lr_adjust[epoch]
        for param_group in optimizer.param_groups:
            param_group['lr'] = lr
        print('Updating learning rate to {}'.format(lr))


def forward_batch(batch_x, batch_y, batch_x_mark, batch_y_mark):
    dec_inp = torch.zeros_like(batch_y[:, -pred_len:, :]).float()
    dec_inp = torch.cat([batch_y[:, :label_len, :], dec_inp], dim=1).float()
    outputs = model(batch_x, batch_x_mark, dec_inp, batch_y_mark)
    return outputs, batch_y[:, -pred_len:, :]


def vali(dataset, criterion):
    model.eval()
    total_loss, total_mae, n = 0.0, 0.0, 0
    with torch.no_grad():
        for s in range(0, dataset[0].shape[0], 32):
            outputs, true = forward_batch(*[d[s:s + 32] for d in dataset])
            total_loss += criterion(outputs, true).item() * true.shape[0]
            total_mae += (outputs - true).abs().mean().item() * true.shape[0]
            n += true.shape[0]
    model.train()
    return total_loss / n, total_mae / n


model_optim = torch.optim.Adam(model.parameters(), lr=learning_rate)
criterion = nn.MSELoss()
n_windows = train_set[0].shape[0]
epoch_losses = []
best_val = math.inf
with tempfile.TemporaryDirectory() as ckpt_dir:
    path = os.path.join(ckpt_dir, 'checkpoint.pth')
    for epoch in range(train_epochs):
        model.train()
        train_loss = []
        perm = torch.randperm(n_windows)
        for s in range(0, n_windows - batch_size + 1, batch_size):
            idx = perm[s:s + batch_size]
            model_optim.zero_grad()
            outputs, batch_y = forward_batch(*[d[idx] for d in train_set])
            loss = criterion(outputs, batch_y)
            train_loss.append(loss.item())
            loss.backward()
            model_optim.step()
        train_loss = np.average(train_loss)
        vali_loss, _ = vali(val_set, criterion)
        epoch_losses.append(train_loss)
        print("Epoch: {0} | Train Loss: {1:.7f} Vali Loss: {2:.7f}".format(epoch + 1, train_loss, vali_loss))
        if vali_loss < best_val:
            best_val = vali_loss
            torch.save(model.state_dict(), path)
        adjust_learning_rate(model_optim, epoch + 2, learning_rate)
    model.load_state_dict(torch.load(path))

test_mse, test_mae = vali(test_set, criterion)
batch_x, batch_y = test_set[0], test_set[1][:, -pred_len:, :]
naive = batch_x[:, -1:, :].repeat(1, pred_len, 1)
naive_mse = F.mse_loss(naive, batch_y).item()
grad_norm = model.encoder.attn_layers[0].attention.inner_correlation.weights1.abs().mean().item()
print('mse:{:.4f}, mae:{:.4f}, naive mse:{:.4f}'.format(test_mse, test_mae, naive_mse))
print(f"FINAL loss_first={epoch_losses[0]:.4f} loss_last={epoch_losses[-1]:.4f} best_val={best_val:.4f} "
      f"test_mse={test_mse:.4f} test_mae={test_mae:.4f} naive_mse={naive_mse:.4f} "
      f"mse_ratio={test_mse / naive_mse:.4f} weight_abs={grad_norm:.5f} einsum_err={einsum_err:.2e} "
      f"decomp_err={decomp_err:.2e}")
