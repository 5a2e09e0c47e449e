"""Autoformer (thuml/Autoformer, layers/Autoformer_EncDec.py and AutoCorrelation.py) and DLinear, on seasonal series.

``moving_avg`` padding both ends by ``x[:, 0:1, :].repeat(1, (k - 1) // 2, 1)`` and averaging by
``nn.AvgPool1d(kernel_size=k, stride=1, padding=0)`` on ``permute(0, 2, 1)``, ``series_decomp``,
``my_Layernorm`` (LayerNorm minus its mean over time), ``AutoCorrelation`` (``torch.fft.rfft(
q.permute(0, 2, 3, 1).contiguous(), dim=-1)``, ``q_fft * torch.conj(k_fft)``, ``torch.fft.irfft``;
checked against the circular correlation by ``torch.roll``), ``time_delay_agg_training`` (``torch.topk(
torch.mean(mean_value, dim=0), top_k, dim=-1)[1]``, ``torch.stack``, ``torch.softmax``, ``torch.roll(values,
-int(index[i]), -1)``) and ``time_delay_agg_inference`` (``values.repeat(1, 1, 1, 2)`` + ``torch.gather``;
the two agree on one series), ``AutoCorrelationLayer``, the encoder/decoder layers with 1x1
``nn.Conv1d`` feed-forwards and the trend ``projection`` by a ``padding_mode='circular'`` ``Conv1d``,
the token embedding with ``kaiming_normal_(mode='fan_in', nonlinearity='leaky_relu')``, the forecaster's
``seasonal_init``/``trend_init`` from ``torch.cat`` of the label window with zeros and the mean; MSE +
Adam; and DLinear (``nn.Linear`` over time on the decomposed parts, weights ``(1 / seq_len) *
torch.ones``), against a repeat-the-last-value baseline.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SEQ_LEN, LABEL_LEN, PRED_LEN, C = 48, 24, 12, 3


class my_Layernorm(nn.Module):
    """
    Special designed layernorm for the seasonal part
    """

    def __init__(self, channels):
        super().__init__()
        self.layernorm = nn.LayerNorm(channels)

    def forward(self, x):
        x_hat = self.layernorm(x)
        bias = torch.mean(x_hat, dim=1).unsqueeze(1).repeat(1, x.shape[1], 1)
        return x_hat - bias


class moving_avg(nn.Module):
    """
    Moving average block to highlight the trend of time series
    """

    def __init__(self, kernel_size, stride):
        super().__init__()
        self.kernel_size = kernel_size
        self.avg = nn.AvgPool1d(kernel_size=kernel_size, stride=stride, padding=0)

    def forward(self, x):
        # padding on the both ends of time series
        front = x[:, 0:1, :].repeat(1, (self.kernel_size - 1) // 2, 1)
        end = x[:, -1:, :].repeat(1, (self.kernel_size - 1) // 2, 1)
        x = torch.cat([front, x, end], dim=1)
        x = self.avg(x.permute(0, 2, 1))
        x = x.permute(0, 2, 1)
        return x


class series_decomp(nn.Module):
    """
    Series decomposition block
    """

    def __init__(self, kernel_size):
        super().__init__()
        self.moving_avg = moving_avg(kernel_size, stride=1)

    def forward(self, x):
        moving_mean = self.moving_avg(x)
        res = x - moving_mean
        return res, moving_mean


class AutoCorrelation(nn.Module):
    """
    AutoCorrelation Mechanism with the following two phases:
    (1) period-based dependencies discovery
    (2) time delay aggregation
    This block can replace the self-attention family mechanism seamlessly.
    """

    def __init__(self, mask_flag=True, factor=1, scale=None, attention_dropout=0.1, output_attention=False):
        super().__init__()
        self.factor = factor
        self.scale = scale
        self.mask_flag = mask_flag
        self.output_attention = output_attention
        self.dropout = nn.Dropout(attention_dropout)

    def time_delay_agg_training(self, values, corr):
        """
        SpeedUp version of Autocorrelation (a batch-normalization style design)
        This is for the training phase.
        """
        head = values.shape[1]
        channel = values.shape[2]
        length = values.shape[3]
        # find top k
        top_k = int(self.factor * math.log(length))
        mean_value = torch.mean(torch.mean(corr, dim=1), dim=1)
        index = torch.topk(torch.mean(mean_value, dim=0), top_k, dim=-1)[1]
        weights = torch.stack([mean_value[:, index[i]] for i in range(top_k)], dim=-1)
        # update corr
        tmp_corr = torch.softmax(weights, dim=-1)
        # aggregation
        tmp_values = values
        delays_agg = torch.zeros_like(values).float()
        for i in range(top_k):
            pattern = torch.roll(tmp_values, -int(index[i]), -1)
            delays_agg = delays_agg + pattern * \
                (tmp_corr[:, i].unsqueeze(1).unsqueeze(1).unsqueeze(1).repeat(1, head, channel, length))
        return delays_agg

    def time_delay_agg_inference(self, values, corr):
        """
        SpeedUp version of Autocorrelation (a batch-normalization style design)
        This is for the inference phase.
        """
        batch = values.shape[0]
        head = values.shape[1]
        channel = values.shape[2]
        length = values.shape[3]
        # index init
        init_index = torch.arange(length).unsqueeze(0).unsqueeze(0).unsqueeze(0).repeat(batch, head, channel, 1)
        # find top k
        top_k = int(self.factor * math.log(length))
        mean_value = torch.mean(torch.mean(corr, dim=1), dim=1)
        weights, delay = torch.topk(mean_value, top_k, dim=-1)
        # update corr
        tmp_corr = torch.softmax(weights, dim=-1)
        # aggregation
        tmp_values = values.repeat(1, 1, 1, 2)
        delays_agg = torch.zeros_like(values).float()
        for i in range(top_k):
            tmp_delay = init_index + delay[:, i].unsqueeze(1).unsqueeze(1).unsqueeze(1).repeat(1, head, channel, length)
            pattern = torch.gather(tmp_values, dim=-1, index=tmp_delay)
            delays_agg = delays_agg + pattern * \
                (tmp_corr[:, i].unsqueeze(1).unsqueeze(1).unsqueeze(1).repeat(1, head, channel, length))
        return delays_agg

    def forward(self, queries, keys, values, attn_mask):
        B, L, H, E = queries.shape
        _, S, _, D = values.shape
        if L > S:
            zeros = torch.zeros_like(queries[:, :(L - S), :]).float()
            values = torch.cat([values, zeros], dim=1)
            keys = torch.cat([keys, zeros], dim=1)
        else:
            values = values[:, :L, :, :]
            keys = keys[:, :L, :, :]

        # period-based dependencies
        q_fft = torch.fft.rfft(queries.permute(0, 2, 3, 1).contiguous(), dim=-1)
        k_fft = torch.fft.rfft(keys.permute(0, 2, 3, 1).contiguous(), dim=-1)
        res = q_fft * torch.conj(k_fft)
        corr = torch.fft.irfft(res, dim=-1)

        # time delay agg
        if self.training:
            V = self.time_delay_agg_training(values.permute(0, 2, 3, 1).contiguous(), corr).permute(0, 3, 1, 2)
        else:
            V = self.time_delay_agg_inference(values.permute(0, 2, 3, 1).contiguous(), corr).permute(0, 3, 1, 2)

        if self.output_attention:
            return (V.contiguous(), corr.permute(0, 3, 1, 2))
        else:
            return (V.contiguous(), None)


class AutoCorrelationLayer(nn.Module):
    def __init__(self, correlation, d_model, n_heads, d_keys=None, d_values=None):
        super().__init__()

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

        out, attn = self.inner_correlation(
            queries,
            keys,
            values,
            attn_mask
        )
        out = out.view(B, L, -1)

        return self.out_projection(out), attn


class EncoderLayer(nn.Module):
    """
    Autoformer encoder layer with the progressive decomposition architecture
    """

    def __init__(self, attention, d_model, d_ff=None, moving_avg=25, dropout=0.1, activation="relu"):
        super().__init__()
        d_ff = d_ff or 4 * d_model
        self.attention = attention
        self.conv1 = nn.Conv1d(in_channels=d_model, out_channels=d_ff, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(in_channels=d_ff, out_channels=d_model, kernel_size=1, bias=False)
        self.decomp1 = series_decomp(moving_avg)
        self.decomp2 = series_decomp(moving_avg)
        self.dropout = nn.Dropout(dropout)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, x, attn_mask=None):
        new_x, attn = self.attention(
            x, x, x,
            attn_mask=attn_mask
        )
        x = x + self.dropout(new_x)
        x, _ = self.decomp1(x)
        y = x
        y = self.dropout(self.activation(self.conv1(y.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        res, _ = self.decomp2(x + y)
        return res, attn


class Encoder(nn.Module):
    def __init__(self, attn_layers, norm_layer=None):
        super().__init__()
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
    """
    Autoformer decoder layer with the progressive decomposition architecture
    """

    def __init__(self, self_attention, cross_attention, d_model, c_out, d_ff=None,
                 moving_avg=25, dropout=0.1, activation="relu"):
        super().__init__()
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
        x = x + self.dropout(self.self_attention(
            x, x, x,
            attn_mask=x_mask
        )[0])
        x, trend1 = self.decomp1(x)
        x = x + self.dropout(self.cross_attention(
            x, cross, cross,
            attn_mask=cross_mask
        )[0])
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
        super().__init__()
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
        super().__init__()
        padding = 1 if torch.__version__ >= '1.5.0' else 2
        self.tokenConv = nn.Conv1d(in_channels=c_in, out_channels=d_model,
                                   kernel_size=3, padding=padding, padding_mode='circular', bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='leaky_relu')

    def forward(self, x):
        x = self.tokenConv(x.permute(0, 2, 1)).transpose(1, 2)
        return x


class DataEmbedding_wo_pos(nn.Module):
    def __init__(self, c_in, d_model, dropout=0.1):
        super().__init__()
        self.value_embedding = TokenEmbedding(c_in=c_in, d_model=d_model)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x, x_mark=None):
        x = self.value_embedding(x)
        return self.dropout(x)


class Autoformer(nn.Module):
    def __init__(self, seq_len, label_len, pred_len, enc_in, d_model=16, n_heads=2, d_ff=32, moving_avg=13,
                 factor=1, dropout=0.05):
        super().__init__()
        self.seq_len = seq_len
        self.label_len = label_len
        self.pred_len = pred_len
        self.decomp = series_decomp(moving_avg)
        self.enc_embedding = DataEmbedding_wo_pos(enc_in, d_model, dropout)
        self.dec_embedding = DataEmbedding_wo_pos(enc_in, d_model, dropout)
        self.encoder = Encoder(
            [EncoderLayer(AutoCorrelationLayer(AutoCorrelation(False, factor, attention_dropout=dropout),
                                               d_model, n_heads),
                          d_model, d_ff, moving_avg=moving_avg, dropout=dropout, activation="gelu")],
            norm_layer=my_Layernorm(d_model),
        )
        self.decoder = Decoder(
            [DecoderLayer(AutoCorrelationLayer(AutoCorrelation(True, factor, attention_dropout=dropout),
                                               d_model, n_heads),
                          AutoCorrelationLayer(AutoCorrelation(False, factor, attention_dropout=dropout),
                                               d_model, n_heads),
                          d_model, enc_in, d_ff, moving_avg=moving_avg, dropout=dropout, activation="gelu")],
            norm_layer=my_Layernorm(d_model),
            projection=nn.Linear(d_model, enc_in, bias=True),
        )

    def forward(self, x_enc, x_mark_enc=None, x_dec=None, x_mark_dec=None):
        # decomp init
        mean = torch.mean(x_enc, dim=1).unsqueeze(1).repeat(1, self.pred_len, 1)
        zeros = torch.zeros([x_dec.shape[0], self.pred_len, x_dec.shape[2]], device=x_enc.device)
        seasonal_init, trend_init = self.decomp(x_enc)
        # decoder input
        trend_init = torch.cat([trend_init[:, -self.label_len:, :], mean], dim=1)
        seasonal_init = torch.cat([seasonal_init[:, -self.label_len:, :], zeros], dim=1)
        # enc
        enc_out = self.enc_embedding(x_enc, x_mark_enc)
        enc_out, attns = self.encoder(enc_out, attn_mask=None)
        # dec
        dec_out = self.dec_embedding(seasonal_init, x_mark_dec)
        seasonal_part, trend_part = self.decoder(dec_out, enc_out, x_mask=None, cross_mask=None, trend=trend_init)
        # final
        dec_out = trend_part + seasonal_part
        return dec_out[:, -self.pred_len:, :]


class DLinear(nn.Module):
    """
    Paper link: https://arxiv.org/pdf/2205.13504.pdf
    """

    def __init__(self, seq_len, pred_len, moving_avg=13):
        super().__init__()
        self.seq_len = seq_len
        self.pred_len = pred_len
        self.decompsition = series_decomp(moving_avg)
        self.Linear_Seasonal = nn.Linear(self.seq_len, self.pred_len)
        self.Linear_Trend = nn.Linear(self.seq_len, self.pred_len)
        self.Linear_Seasonal.weight = nn.Parameter((1 / self.seq_len) * torch.ones([self.pred_len, self.seq_len]))
        self.Linear_Trend.weight = nn.Parameter((1 / self.seq_len) * torch.ones([self.pred_len, self.seq_len]))

    def forward(self, x):
        seasonal_init, trend_init = self.decompsition(x)
        seasonal_init, trend_init = seasonal_init.permute(0, 2, 1), trend_init.permute(0, 2, 1)
        seasonal_output = self.Linear_Seasonal(seasonal_init)
        trend_output = self.Linear_Trend(trend_init)
        x = seasonal_output + trend_output
        return x.permute(0, 2, 1)


# ---- data: three seasonal channels with a slow trend, standardised on the training split ----
n_points = 640
tt = np.arange(n_points, dtype=np.float64)
phases = rng.uniform(0, 2 * np.pi, size=C)
series = np.stack([
    np.sin(2 * np.pi * tt / 12 + phases[c]) + 0.5 * np.sin(2 * np.pi * tt / 6 + 2 * phases[c])
    + 0.004 * (c + 1) * tt + 0.15 * rng.standard_normal(n_points)
    for c in range(C)
], axis=1).astype(np.float32)
border = 480
mean_, std_ = series[:border].mean(0), series[:border].std(0)
data = torch.from_numpy((series - mean_) / std_)


def windows(lo, hi):
    starts = np.arange(lo, hi - SEQ_LEN - PRED_LEN + 1)
    x = torch.stack([data[s:s + SEQ_LEN] for s in starts])
    y = torch.stack([data[s + SEQ_LEN - LABEL_LEN:s + SEQ_LEN + PRED_LEN] for s in starts])
    return x, y


train_x, train_y = windows(0, border)
test_x, test_y = windows(border - SEQ_LEN, n_points)
print("windows:", tuple(train_x.shape), tuple(train_y.shape), tuple(test_x.shape))

# the pieces on their own
decomp = series_decomp(13)
seasonal, trend = decomp(train_x[:4])
print("decomposition sums back:", torch.allclose(seasonal + trend, train_x[:4], atol=1e-6),
      "trend shape:", tuple(trend.shape))
q = torch.randn(2, 4, 2, 8)
k = torch.randn(2, 4, 2, 8)
corr = torch.fft.irfft(torch.fft.rfft(q, dim=-1) * torch.conj(torch.fft.rfft(k, dim=-1)), dim=-1)
direct = torch.stack([(q * torch.roll(k, tau, -1)).sum(-1) for tau in range(8)], dim=-1)
print("FFT correlation == circular correlation:", torch.allclose(corr, direct, atol=1e-5))
ac = AutoCorrelation(False, 1)
v1 = torch.randn(1, 2, 3, 16)
c1 = torch.randn(1, 2, 3, 16)
print("training == inference aggregation on one series:",
      torch.allclose(ac.time_delay_agg_training(v1, c1), ac.time_delay_agg_inference(v1, c1), atol=1e-6))
ln = my_Layernorm(16)
print("my_Layernorm mean over time is zero:", bool(ln(torch.randn(2, 10, 16)).mean(1).abs().max() < 1e-5))


def train(model, forward, epochs, lr, batch_size=32):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.MSELoss()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(train_x))
        train_loss = []
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            batch_x, batch_y = train_x[idx], train_y[idx]
            optimizer.zero_grad()
            outputs = forward(batch_x, batch_y)
            loss = criterion(outputs, batch_y[:, -PRED_LEN:, :])
            train_loss.append(loss.item())
            loss.backward()
            optimizer.step()
        test_loss = evaluate(model, forward)
        print(f"{type(model).__name__} epoch {epoch + 1}: train {np.average(train_loss):.4f} test {test_loss:.4f}")
    return test_loss


def evaluate(model, forward):
    model.eval()
    with torch.no_grad():
        preds = forward(test_x, test_y)
        return F.mse_loss(preds, test_y[:, -PRED_LEN:, :]).item()


def autoformer_forward(batch_x, batch_y):
    # decoder input
    dec_inp = torch.zeros_like(batch_y[:, -PRED_LEN:, :]).float()
    dec_inp = torch.cat([batch_y[:, :LABEL_LEN, :], dec_inp], dim=1).float()
    return autoformer(batch_x, None, dec_inp, None)


autoformer = Autoformer(SEQ_LEN, LABEL_LEN, PRED_LEN, C)
print("autoformer parameters:", sum(p.numel() for p in autoformer.parameters()))
autoformer_mse = train(autoformer, autoformer_forward, epochs=3, lr=3e-3)

dlinear = DLinear(SEQ_LEN, PRED_LEN)
dlinear_mse = train(dlinear, lambda x, y: dlinear(x), epochs=6, lr=1e-2)

naive_mse = F.mse_loss(test_x[:, -1:, :].repeat(1, PRED_LEN, 1), test_y[:, -PRED_LEN:, :]).item()
print(f"test mse: autoformer {autoformer_mse:.4f} dlinear {dlinear_mse:.4f} repeat-last {naive_mse:.4f}")
print(f"FINAL autoformer_mse={autoformer_mse:.4f} dlinear_mse={dlinear_mse:.4f} naive_mse={naive_mse:.4f}")
