"""Informer (Zhou et al., AAAI 2021) in the zhouhaoyi/Informer2020 layout, forecasting a synthetic
multivariate series (sums of sines with trends and noise on four channels).

``DataEmbedding`` = ``TokenEmbedding`` (``nn.Conv1d(c_in, d_model, 3, padding=padding,
padding_mode='circular')``, padding chosen by ``torch.__version__ >= '1.5.0'``, weights by
``nn.init.kaiming_normal_(mode='fan_in', nonlinearity='leaky_relu')``) + a fixed sinusoidal
``PositionalEmbedding`` registered with ``register_buffer`` + a ``timeF`` linear embedding of the time
marks. ProbSparse self-attention as the reference writes it: ``_prob_QK`` samples keys by
``torch.randint``, gathers ``K_sample`` from ``K.unsqueeze(-3).expand(...)``, scores them by
``torch.matmul(Q.unsqueeze(-2), K_sample.transpose(-2, -1)).squeeze()``, keeps the top queries of
the sparsity measure ``max(-1)[0] - torch.div(sum(-1), L_K)`` by ``.topk(n_top, sorted=False)[1]``,
reads them by ``Q[torch.arange(B)[:, None, None], torch.arange(H)[None, :, None], M_top, :]``; the
initial context is ``V.mean(dim=-2)...expand(...).clone()`` (encoder) or ``V.cumsum(dim=-2)`` under a
``ProbMask`` from ``torch.ones(...).triu(1)`` with ``masked_fill_(mask, -np.inf)`` (decoder), and
``_update_context`` writes the selected rows by advanced-index assignment. The encoder distils with
``ConvLayer`` (circular ``Conv1d`` + ``BatchNorm1d`` + ``ELU`` + ``MaxPool1d(3, stride=2,
padding=1)``); the decoder reads a start token plus a zero placeholder, with ``FullAttention``
(``torch.einsum``) as cross-attention. ``nn.MSELoss``, ``optim.Adam``, the reference's
``adjust_learning_rate`` halving ``param_group['lr']`` per epoch, and ``EarlyStopping`` on the
validation loss restoring the best ``state_dict``.

Checks: the test MSE against the last-value (persistence) forecast it must beat, and ProbSparse
attention with ``n_top = L_Q`` (every query active) ``torch.allclose`` to full attention, masked and
unmasked.
"""

# ruff: noqa: UP008, B007, UP030, UP032  (Informer2020's own spelling: super(Class, self), `for i, (...) in enumerate(train_loader)`, its str.format epoch line)

import copy
import math
import os
from math import sqrt

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim
from torch.utils.data import DataLoader, Dataset

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

SEQ_LEN, LABEL_LEN, PRED_LEN = 48, 24, 12
ENC_IN = DEC_IN = C_OUT = 4
D_MODEL, N_HEADS, D_FF = 32, 4, 64


# ----------------------------------------------------------------------------- masking.py
class TriangularCausalMask:
    def __init__(self, B, L, device="cpu"):
        mask_shape = [B, 1, L, L]
        with torch.no_grad():
            self._mask = torch.triu(torch.ones(mask_shape, dtype=torch.bool), diagonal=1).to(device)

    @property
    def mask(self):
        return self._mask


class ProbMask:
    def __init__(self, B, H, L, index, scores, device="cpu"):
        _mask = torch.ones(L, scores.shape[-1], dtype=torch.bool).to(device).triu(1)
        _mask_ex = _mask[None, None, :].expand(B, H, L, scores.shape[-1])
        indicator = _mask_ex[torch.arange(B)[:, None, None], torch.arange(H)[None, :, None], index, :].to(device)
        self._mask = indicator.view(scores.shape).to(device)

    @property
    def mask(self):
        return self._mask


# ----------------------------------------------------------------------------- attn.py
class FullAttention(nn.Module):
    def __init__(self, mask_flag=True, factor=5, scale=None, attention_dropout=0.1, output_attention=False):
        super(FullAttention, self).__init__()
        self.scale = scale
        self.mask_flag = mask_flag
        self.output_attention = output_attention
        self.dropout = nn.Dropout(attention_dropout)

    def forward(self, queries, keys, values, attn_mask):
        B, L, H, E = queries.shape
        _, S, _, D = values.shape
        scale = self.scale or 1.0 / sqrt(E)

        scores = torch.einsum("blhe,bshe->bhls", queries, keys)
        if self.mask_flag:
            if attn_mask is None:
                attn_mask = TriangularCausalMask(B, L, device=queries.device)
            scores.masked_fill_(attn_mask.mask, -np.inf)

        A = self.dropout(torch.softmax(scale * scores, dim=-1))
        V = torch.einsum("bhls,bshd->blhd", A, values)

        if self.output_attention:
            return (V.contiguous(), A)
        else:
            return (V.contiguous(), None)


class ProbAttention(nn.Module):
    def __init__(self, mask_flag=True, factor=5, scale=None, attention_dropout=0.1, output_attention=False):
        super(ProbAttention, self).__init__()
        self.factor = factor
        self.scale = scale
        self.mask_flag = mask_flag
        self.output_attention = output_attention
        self.dropout = nn.Dropout(attention_dropout)

    def _prob_QK(self, Q, K, sample_k, n_top):  # n_top: c*ln(L_q)
        # Q [B, H, L, D]
        B, H, L_K, E = K.shape
        _, _, L_Q, _ = Q.shape

        # calculate the sampled Q_K
        K_expand = K.unsqueeze(-3).expand(B, H, L_Q, L_K, E)
        index_sample = torch.randint(L_K, (L_Q, sample_k))  # real U = U_part(factor*ln(L_k))*L_q
        K_sample = K_expand[:, :, torch.arange(L_Q).unsqueeze(1), index_sample, :]
        Q_K_sample = torch.matmul(Q.unsqueeze(-2), K_sample.transpose(-2, -1)).squeeze()

        # find the Top_k query with sparisty measurement
        M = Q_K_sample.max(-1)[0] - torch.div(Q_K_sample.sum(-1), L_K)
        M_top = M.topk(n_top, sorted=False)[1]

        # use the reduced Q to calculate Q_K
        Q_reduce = Q[torch.arange(B)[:, None, None], torch.arange(H)[None, :, None], M_top, :]  # factor*ln(L_q)
        Q_K = torch.matmul(Q_reduce, K.transpose(-2, -1))  # factor*ln(L_q)*L_k

        return Q_K, M_top

    def _get_initial_context(self, V, L_Q):
        B, H, L_V, D = V.shape
        if not self.mask_flag:
            V_sum = V.mean(dim=-2)
            contex = V_sum.unsqueeze(-2).expand(B, H, L_Q, V_sum.shape[-1]).clone()
        else:  # use mask
            assert L_Q == L_V  # requires that L_Q == L_V, i.e. for self-attention only
            contex = V.cumsum(dim=-2)
        return contex

    def _update_context(self, context_in, V, scores, index, L_Q, attn_mask):
        B, H, L_V, D = V.shape

        if self.mask_flag:
            attn_mask = ProbMask(B, H, L_Q, index, scores, device=V.device)
            scores.masked_fill_(attn_mask.mask, -np.inf)

        attn = torch.softmax(scores, dim=-1)  # nn.Softmax(dim=-1)(scores)

        context_in[torch.arange(B)[:, None, None], torch.arange(H)[None, :, None], index, :] = torch.matmul(
            attn, V
        ).type_as(context_in)
        if self.output_attention:
            attns = (torch.ones([B, H, L_V, L_V]) / L_V).type_as(attn).to(attn.device)
            attns[torch.arange(B)[:, None, None], torch.arange(H)[None, :, None], index, :] = attn
            return (context_in, attns)
        else:
            return (context_in, None)

    def forward(self, queries, keys, values, attn_mask):
        B, L_Q, H, D = queries.shape
        _, L_K, _, _ = keys.shape

        queries = queries.transpose(2, 1)
        keys = keys.transpose(2, 1)
        values = values.transpose(2, 1)

        U_part = self.factor * np.ceil(np.log(L_K)).astype("int").item()  # c*ln(L_k)
        u = self.factor * np.ceil(np.log(L_Q)).astype("int").item()  # c*ln(L_q)

        U_part = U_part if U_part < L_K else L_K
        u = u if u < L_Q else L_Q

        scores_top, index = self._prob_QK(queries, keys, sample_k=U_part, n_top=u)

        # add scale factor
        scale = self.scale or 1.0 / sqrt(D)
        if scale is not None:
            scores_top = scores_top * scale
        # get the context
        context = self._get_initial_context(values, L_Q)
        # update the context with selected top_k queries
        context, attn = self._update_context(context, values, scores_top, index, L_Q, attn_mask)

        return context.transpose(2, 1).contiguous(), attn


class AttentionLayer(nn.Module):
    def __init__(self, attention, d_model, n_heads, d_keys=None, d_values=None, mix=False):
        super(AttentionLayer, self).__init__()

        d_keys = d_keys or (d_model // n_heads)
        d_values = d_values or (d_model // n_heads)

        self.inner_attention = attention
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_model, d_keys * n_heads)
        self.value_projection = nn.Linear(d_model, d_values * n_heads)
        self.out_projection = nn.Linear(d_values * n_heads, d_model)
        self.n_heads = n_heads
        self.mix = mix

    def forward(self, queries, keys, values, attn_mask):
        B, L, _ = queries.shape
        _, S, _ = keys.shape
        H = self.n_heads

        queries = self.query_projection(queries).view(B, L, H, -1)
        keys = self.key_projection(keys).view(B, S, H, -1)
        values = self.value_projection(values).view(B, S, H, -1)

        out, attn = self.inner_attention(queries, keys, values, attn_mask)
        if self.mix:
            out = out.transpose(2, 1).contiguous()
        out = out.view(B, L, -1)

        return self.out_projection(out), attn


# ----------------------------------------------------------------------------- embed.py
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
        self.register_buffer("pe", pe)

    def forward(self, x):
        return self.pe[:, : x.size(1)]


class TokenEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super(TokenEmbedding, self).__init__()
        padding = 1 if torch.__version__ >= "1.5.0" else 2
        self.tokenConv = nn.Conv1d(
            in_channels=c_in, out_channels=d_model, kernel_size=3, padding=padding, padding_mode="circular"
        )
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x):
        x = self.tokenConv(x.permute(0, 2, 1)).transpose(1, 2)
        return x


class TimeFeatureEmbedding(nn.Module):
    def __init__(self, d_model, embed_type="timeF", freq="h"):
        super(TimeFeatureEmbedding, self).__init__()
        freq_map = {"h": 4, "t": 5, "s": 6, "m": 1, "a": 1, "w": 2, "d": 3, "b": 3}
        d_inp = freq_map[freq]
        self.embed = nn.Linear(d_inp, d_model)

    def forward(self, x):
        return self.embed(x)


class DataEmbedding(nn.Module):
    def __init__(self, c_in, d_model, embed_type="timeF", freq="h", dropout=0.1):
        super(DataEmbedding, self).__init__()
        self.value_embedding = TokenEmbedding(c_in=c_in, d_model=d_model)
        self.position_embedding = PositionalEmbedding(d_model=d_model)
        self.temporal_embedding = TimeFeatureEmbedding(d_model=d_model, embed_type=embed_type, freq=freq)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x, x_mark):
        x = self.value_embedding(x) + self.position_embedding(x) + self.temporal_embedding(x_mark)
        return self.dropout(x)


# ----------------------------------------------------------------------------- encoder.py / decoder.py
class ConvLayer(nn.Module):
    def __init__(self, c_in):
        super(ConvLayer, self).__init__()
        padding = 1 if torch.__version__ >= "1.5.0" else 2
        self.downConv = nn.Conv1d(
            in_channels=c_in, out_channels=c_in, kernel_size=3, padding=padding, padding_mode="circular"
        )
        self.norm = nn.BatchNorm1d(c_in)
        self.activation = nn.ELU()
        self.maxPool = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)

    def forward(self, x):
        x = self.downConv(x.permute(0, 2, 1))
        x = self.norm(x)
        x = self.activation(x)
        x = self.maxPool(x)
        x = x.transpose(1, 2)
        return x


class EncoderLayer(nn.Module):
    def __init__(self, attention, d_model, d_ff=None, dropout=0.1, activation="relu"):
        super(EncoderLayer, self).__init__()
        d_ff = d_ff or 4 * d_model
        self.attention = attention
        self.conv1 = nn.Conv1d(in_channels=d_model, out_channels=d_ff, kernel_size=1)
        self.conv2 = nn.Conv1d(in_channels=d_ff, out_channels=d_model, kernel_size=1)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, x, attn_mask=None):
        new_x, attn = self.attention(x, x, x, attn_mask=attn_mask)
        x = x + self.dropout(new_x)

        y = x = self.norm1(x)
        y = self.dropout(self.activation(self.conv1(y.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))

        return self.norm2(x + y), attn


class Encoder(nn.Module):
    def __init__(self, attn_layers, conv_layers=None, norm_layer=None):
        super(Encoder, self).__init__()
        self.attn_layers = nn.ModuleList(attn_layers)
        self.conv_layers = nn.ModuleList(conv_layers) if conv_layers is not None else None
        self.norm = norm_layer

    def forward(self, x, attn_mask=None):
        # x [B, L, D]
        attns = []
        if self.conv_layers is not None:
            for attn_layer, conv_layer in zip(self.attn_layers, self.conv_layers):
                x, attn = attn_layer(x, attn_mask=attn_mask)
                x = conv_layer(x)
                attns.append(attn)
            x, attn = self.attn_layers[-1](x, attn_mask=attn_mask)
            attns.append(attn)
        else:
            for attn_layer in self.attn_layers:
                x, attn = attn_layer(x, attn_mask=attn_mask)
                attns.append(attn)

        if self.norm is not None:
            x = self.norm(x)

        return x, attns


class DecoderLayer(nn.Module):
    def __init__(self, self_attention, cross_attention, d_model, d_ff=None, dropout=0.1, activation="relu"):
        super(DecoderLayer, self).__init__()
        d_ff = d_ff or 4 * d_model
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.conv1 = nn.Conv1d(in_channels=d_model, out_channels=d_ff, kernel_size=1)
        self.conv2 = nn.Conv1d(in_channels=d_ff, out_channels=d_model, kernel_size=1)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, x, cross, x_mask=None, cross_mask=None):
        x = x + self.dropout(self.self_attention(x, x, x, attn_mask=x_mask)[0])
        x = self.norm1(x)

        x = x + self.dropout(self.cross_attention(x, cross, cross, attn_mask=cross_mask)[0])

        y = x = self.norm2(x)
        y = self.dropout(self.activation(self.conv1(y.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))

        return self.norm3(x + y)


class Decoder(nn.Module):
    def __init__(self, layers, norm_layer=None):
        super(Decoder, self).__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm_layer

    def forward(self, x, cross, x_mask=None, cross_mask=None):
        for layer in self.layers:
            x = layer(x, cross, x_mask=x_mask, cross_mask=cross_mask)

        if self.norm is not None:
            x = self.norm(x)

        return x


# ----------------------------------------------------------------------------- model.py
class Informer(nn.Module):
    def __init__(self, enc_in, dec_in, c_out, seq_len, label_len, out_len, factor=5, d_model=512, n_heads=8,
                 e_layers=3, d_layers=2, d_ff=512, dropout=0.0, attn="prob", embed="timeF", freq="h",
                 activation="gelu", output_attention=False, distil=True, mix=True):
        super(Informer, self).__init__()
        self.pred_len = out_len
        self.attn = attn
        self.output_attention = output_attention

        # Encoding
        self.enc_embedding = DataEmbedding(enc_in, d_model, embed, freq, dropout)
        self.dec_embedding = DataEmbedding(dec_in, d_model, embed, freq, dropout)
        # Attention
        Attn = ProbAttention if attn == "prob" else FullAttention
        # Encoder
        self.encoder = Encoder(
            [
                EncoderLayer(
                    AttentionLayer(Attn(False, factor, attention_dropout=dropout, output_attention=output_attention),
                                   d_model, n_heads, mix=False),
                    d_model,
                    d_ff,
                    dropout=dropout,
                    activation=activation,
                )
                for l in range(e_layers)
            ],
            [ConvLayer(d_model) for l in range(e_layers - 1)] if distil else None,
            norm_layer=torch.nn.LayerNorm(d_model),
        )
        # Decoder
        self.decoder = Decoder(
            [
                DecoderLayer(
                    AttentionLayer(Attn(True, factor, attention_dropout=dropout, output_attention=False),
                                   d_model, n_heads, mix=mix),
                    AttentionLayer(FullAttention(False, factor, attention_dropout=dropout, output_attention=False),
                                   d_model, n_heads, mix=False),
                    d_model,
                    d_ff,
                    dropout=dropout,
                    activation=activation,
                )
                for l in range(d_layers)
            ],
            norm_layer=torch.nn.LayerNorm(d_model),
        )
        self.projection = nn.Linear(d_model, c_out, bias=True)

    def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec, enc_self_mask=None, dec_self_mask=None,
                dec_enc_mask=None):
        enc_out = self.enc_embedding(x_enc, x_mark_enc)
        enc_out, attns = self.encoder(enc_out, attn_mask=enc_self_mask)

        dec_out = self.dec_embedding(x_dec, x_mark_dec)
        dec_out = self.decoder(dec_out, enc_out, x_mask=dec_self_mask, cross_mask=dec_enc_mask)
        dec_out = self.projection(dec_out)

        if self.output_attention:
            return dec_out[:, -self.pred_len:, :], attns
        else:
            return dec_out[:, -self.pred_len:, :]  # [B, L, D]


# ----------------------------------------------------------------------------- data_loader.py / tools.py
def make_series(n_steps, n_channels, rng):
    t = np.arange(n_steps, dtype=np.float64)
    data = np.zeros((n_steps, n_channels))
    for c in range(n_channels):
        for period in (24.0, 24.0 * 7 / 3, 12.0):
            amplitude = rng.uniform(0.5, 2.0)
            data[:, c] += amplitude * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        data[:, c] += rng.uniform(-1.5, 1.5) * t / n_steps + rng.normal(0, 0.25, n_steps)
    # a shared component couples the channels
    data[:, 1:] += 0.5 * data[:, :1]
    return data


def time_features(n_steps):
    # freq 'h': HourOfDay, DayOfWeek, DayOfMonth, DayOfYear, each scaled to [-0.5, 0.5]
    hours = np.arange(n_steps)
    return np.stack(
        [(hours % 24) / 23.0 - 0.5, (hours // 24 % 7) / 6.0 - 0.5, (hours // 24 % 30) / 29.0 - 0.5,
         (hours // 24 % 365) / 364.0 - 0.5],
        axis=1,
    )


class StandardScaler:
    def __init__(self):
        self.mean = 0.0
        self.std = 1.0

    def fit(self, data):
        self.mean = data.mean(0)
        self.std = data.std(0)

    def transform(self, data):
        mean = torch.from_numpy(self.mean).type_as(data).to(data.device) if torch.is_tensor(data) else self.mean
        std = torch.from_numpy(self.std).type_as(data).to(data.device) if torch.is_tensor(data) else self.std
        return (data - mean) / std


class Dataset_Custom(Dataset):
    def __init__(self, data, stamp, flag="train", size=None):
        self.seq_len, self.label_len, self.pred_len = size
        type_map = {"train": 0, "val": 1, "test": 2}
        self.set_type = type_map[flag]
        num_train = int(len(data) * 0.7)
        num_test = int(len(data) * 0.2)
        num_vali = len(data) - num_train - num_test
        border1s = [0, num_train - self.seq_len, len(data) - num_test - self.seq_len]
        border2s = [num_train, num_train + num_vali, len(data)]
        border1 = border1s[self.set_type]
        border2 = border2s[self.set_type]

        self.scaler = StandardScaler()
        self.scaler.fit(data[border1s[0]:border2s[0]])
        scaled = self.scaler.transform(data)
        self.data_x = scaled[border1:border2].astype(np.float32)
        self.data_y = scaled[border1:border2].astype(np.float32)
        self.data_stamp = stamp[border1:border2].astype(np.float32)

    def __getitem__(self, index):
        s_begin = index
        s_end = s_begin + self.seq_len
        r_begin = s_end - self.label_len
        r_end = r_begin + self.label_len + self.pred_len

        seq_x = self.data_x[s_begin:s_end]
        seq_y = self.data_y[r_begin:r_end]
        seq_x_mark = self.data_stamp[s_begin:s_end]
        seq_y_mark = self.data_stamp[r_begin:r_end]
        return seq_x, seq_y, seq_x_mark, seq_y_mark

    def __len__(self):
        return len(self.data_x) - self.seq_len - self.pred_len + 1


def adjust_learning_rate(optimizer, epoch, learning_rate, lradj="type1"):
    if lradj == "type1":
        lr_adjust = {epoch: learning_rate * (0.5 ** ((epoch - 1) // 1))}
    elif lradj == "type2":
        lr_adjust = {2: 5e-5, 4: 1e-5, 6: 5e-6, 8: 1e-6, 10: 5e-7, 15: 1e-7, 20: 5e-8}
    if epoch in lr_adjust.keys():
        lr = lr_adjust[epoch]
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr


class EarlyStopping:
    def __init__(self, patience=7, delta=0):
        self.patience = patience
        self.counter = 0
        self.best_score = None
        self.early_stop = False
        self.val_loss_min = np.inf
        self.delta = delta
        self.best_state = None

    def __call__(self, val_loss, model):
        score = -val_loss
        if self.best_score is None:
            self.best_score = score
            self.save_checkpoint(val_loss, model)
        elif score < self.best_score + self.delta:
            self.counter += 1
            if self.counter >= self.patience:
                self.early_stop = True
        else:
            self.best_score = score
            self.save_checkpoint(val_loss, model)
            self.counter = 0

    def save_checkpoint(self, val_loss, model):
        self.best_state = copy.deepcopy(model.state_dict())
        self.val_loss_min = val_loss


# ----------------------------------------------------------------------------- exp_informer.py
rng = np.random.default_rng(seed)
raw = make_series(700, ENC_IN, rng)
stamp = time_features(len(raw))
size = [SEQ_LEN, LABEL_LEN, PRED_LEN]
train_data = Dataset_Custom(raw, stamp, "train", size)
vali_data = Dataset_Custom(raw, stamp, "val", size)
test_data = Dataset_Custom(raw, stamp, "test", size)
train_loader = DataLoader(train_data, batch_size=32, shuffle=True, drop_last=True)
vali_loader = DataLoader(vali_data, batch_size=32, shuffle=False, drop_last=True)
test_loader = DataLoader(test_data, batch_size=32, shuffle=False, drop_last=True)
print(f"train {len(train_data)} val {len(vali_data)} test {len(test_data)} windows, "
      f"{len(train_loader)} batches per epoch")

model = Informer(ENC_IN, DEC_IN, C_OUT, SEQ_LEN, LABEL_LEN, PRED_LEN, factor=5, d_model=D_MODEL,
                 n_heads=N_HEADS, e_layers=2, d_layers=1, d_ff=D_FF, dropout=0.05).float()
print(f"Informer with {sum(p.numel() for p in model.parameters())} parameters, "
      f"pe buffer {tuple(model.enc_embedding.position_embedding.pe.shape)}")


def _process_one_batch(batch_x, batch_y, batch_x_mark, batch_y_mark):
    batch_x = batch_x.float()
    batch_y = batch_y.float()
    batch_x_mark = batch_x_mark.float()
    batch_y_mark = batch_y_mark.float()

    # decoder input: the start token (label_len known steps) then zeros for the horizon
    dec_inp = torch.zeros([batch_y.shape[0], PRED_LEN, batch_y.shape[-1]]).float()
    dec_inp = torch.cat([batch_y[:, :LABEL_LEN, :], dec_inp], dim=1).float()
    outputs = model(batch_x, batch_x_mark, dec_inp, batch_y_mark)
    batch_y = batch_y[:, -PRED_LEN:, 0:]
    return outputs, batch_y


def vali(loader, criterion):
    model.eval()
    total_loss = []
    with torch.no_grad():
        for batch_x, batch_y, batch_x_mark, batch_y_mark in loader:
            pred, true = _process_one_batch(batch_x, batch_y, batch_x_mark, batch_y_mark)
            loss = criterion(pred.detach().cpu(), true.detach().cpu())
            total_loss.append(loss)
    total_loss = np.average(total_loss)
    model.train()
    return total_loss


LEARNING_RATE, TRAIN_EPOCHS = 3e-3, 5
model_optim = optim.Adam(model.parameters(), lr=LEARNING_RATE)
criterion = nn.MSELoss()
early_stopping = EarlyStopping(patience=2)
for epoch in range(TRAIN_EPOCHS):
    train_loss = []
    model.train()
    for i, (batch_x, batch_y, batch_x_mark, batch_y_mark) in enumerate(train_loader):
        model_optim.zero_grad()
        pred, true = _process_one_batch(batch_x, batch_y, batch_x_mark, batch_y_mark)
        loss = criterion(pred, true)
        train_loss.append(loss.item())
        loss.backward()
        model_optim.step()

    train_loss = np.average(train_loss)
    vali_loss = vali(vali_loader, criterion)
    # patience 2 cannot stop before the third epoch, so these lines print on every seed
    if epoch < 3:
        print("Epoch: {0}, Steps: {1} | Train Loss: {2:.7f} Vali Loss: {3:.7f}".format(
            epoch + 1, len(train_loader), train_loss, vali_loss))
    early_stopping(vali_loss, model)
    if early_stopping.early_stop:
        break
    adjust_learning_rate(model_optim, epoch + 2, LEARNING_RATE)

model.load_state_dict(early_stopping.best_state)
print(f"best vali loss {early_stopping.val_loss_min:.6f}, lr now {model_optim.param_groups[0]['lr']:.2e}")

# test: the model against the persistence forecast (repeat the last observed value)
model.eval()
preds, trues, naive = [], [], []
with torch.no_grad():
    for batch_x, batch_y, batch_x_mark, batch_y_mark in test_loader:
        pred, true = _process_one_batch(batch_x, batch_y, batch_x_mark, batch_y_mark)
        preds.append(pred.detach().cpu().numpy())
        trues.append(true.detach().cpu().numpy())
        naive.append(batch_x[:, -1:, :].expand(-1, PRED_LEN, -1).numpy())
preds, trues, naive = np.concatenate(preds), np.concatenate(trues), np.concatenate(naive)
print("test shape:", preds.shape, trues.shape)
mse = float(np.mean((preds - trues) ** 2))
mae = float(np.mean(np.abs(preds - trues)))
naive_mse = float(np.mean((naive - trues) ** 2))
print(f"mse:{mse:.4f}, mae:{mae:.4f}, persistence mse:{naive_mse:.4f}")
assert mse < naive_mse, "Informer must beat the persistence forecast"

# ProbSparse with every query active (n_top = L_Q) is exactly full attention
B, L, H, E = 3, 20, 2, 8
q, k, v = torch.randn(B, L, H, E), torch.randn(B, L, H, E), torch.randn(B, L, H, E)
agree = []
for mask_flag in (False, True):
    prob = ProbAttention(mask_flag, factor=L, attention_dropout=0.0).eval()
    full = FullAttention(mask_flag, attention_dropout=0.0).eval()
    out_prob, _ = prob(q, k, v, None)
    out_full, _ = full(q, k, v, None)
    agree.append(torch.allclose(out_prob, out_full, atol=1e-5))
    print(f"mask {mask_flag}: ProbSparse(n_top=L_Q) equals full attention {agree[-1]}")
print(f"FINAL test_mse={mse:.4f} ratio_to_persistence={mse / naive_mse:.4f} probsparse_equals_full={int(all(agree))}")
