"""PatchTST (yuqinie98/PatchTST, supervised) and DLinear (cure-lab/LTSF-Linear) on a synthetic multivariate series.

The series has three channels on very different scales, each a sum of seasonal sines, a slow trend and noise.
Windows of ``seq_len`` steps forecast the next ``pred_len`` steps; the first 70% of time trains, the rest tests.

``RevIN`` is the repo's layer: statistics over time by ``torch.mean(x, dim=dim2reduce, keepdim=True).detach()``
and ``torch.sqrt(torch.var(x, dim=dim2reduce, keepdim=True, unbiased=False) + self.eps).detach()``, an affine
weight/bias, and ``_denormalize`` dividing by ``affine_weight + eps * eps``. ``PatchTST_backbone`` pads by
``nn.ReplicationPad1d((0, stride))``, patches by ``z.unfold(dimension=-1, size=patch_len, step=stride)``,
projects patches with ``W_P``, adds a learned ``W_pos``, runs channel-independently on ``torch.reshape(x,
(bs * n_vars, patch_num, d_model))`` through ``TSTEncoderLayer``s whose norms are
``nn.Sequential(Transpose(1, 2), nn.BatchNorm1d(d_model), Transpose(1, 2))`` around an
``nn.MultiheadAttention(batch_first=True)``, and ends in ``Flatten_Head`` (``nn.Flatten(start_dim=-2)`` +
``nn.Linear(nf, target_window)``). A second PatchTST encodes with ``nn.TransformerEncoder`` of
``nn.TransformerEncoderLayer(batch_first=True)`` (LayerNorm) instead. DLinear decomposes by ``moving_avg``
(front/end rows ``repeat``-ed, ``nn.AvgPool1d(kernel_size, stride=1, padding=0)`` over ``permute(0, 2, 1)``)
and maps seasonal and trend parts with ``individual`` per-channel ``nn.ModuleList``s of ``nn.Linear`` written
into ``torch.zeros`` outputs by channel.

Checked: the moving average against ``F.conv1d`` with a ``1/k`` kernel on the replicated series; RevIN's
``norm`` then ``denorm`` returning the input; the patches equal to the padded series' slices; and every
model's test MSE/MAE below the last-value forecast's (``x[:, -1:, :].repeat(1, pred_len, 1)``).
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
T_TOTAL, C = 900, 3
t = np.arange(T_TOTAL)
series = np.stack([
    10.0 * np.sin(2 * np.pi * t / 24) + 0.01 * t + rng.normal(0, 1.0, T_TOTAL),
    0.5 * np.sin(2 * np.pi * t / 12 + 1.0) + 0.3 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 0.05, T_TOTAL) + 3.0,
    100.0 * np.cos(2 * np.pi * t / 36) - 0.05 * t + rng.normal(0, 5.0, T_TOTAL),
], axis=1).astype(np.float32)
seq_len, pred_len = 48, 12


def windows(arr):
    n = len(arr) - seq_len - pred_len + 1
    x = np.stack([arr[i:i + seq_len] for i in range(n)])
    y = np.stack([arr[i + seq_len:i + seq_len + pred_len] for i in range(n)])
    return torch.from_numpy(x), torch.from_numpy(y)


split = int(0.7 * T_TOTAL)
x_train, y_train = windows(series[:split])
x_test, y_test = windows(series[split - seq_len:])
print(f"train windows {tuple(x_train.shape)} -> {tuple(y_train.shape)}, test windows {tuple(x_test.shape)}")


# ---------------------------------------------------------------------------------------------
# RevIN
# ---------------------------------------------------------------------------------------------
class RevIN(nn.Module):
    def __init__(self, num_features: int, eps=1e-5, affine=True, subtract_last=False):
        """
        :param num_features: the number of features or channels
        :param eps: a value added for numerical stability
        :param affine: if True, RevIN has learnable affine parameters
        """
        super(RevIN, self).__init__()  # noqa: UP008
        self.num_features = num_features
        self.eps = eps
        self.affine = affine
        self.subtract_last = subtract_last
        if self.affine:
            self._init_params()

    def forward(self, x, mode: str):
        if mode == 'norm':
            self._get_statistics(x)
            x = self._normalize(x)
        elif mode == 'denorm':
            x = self._denormalize(x)
        else:
            raise NotImplementedError
        return x

    def _init_params(self):
        # initialize RevIN params: (C,)
        self.affine_weight = nn.Parameter(torch.ones(self.num_features))
        self.affine_bias = nn.Parameter(torch.zeros(self.num_features))

    def _get_statistics(self, x):
        dim2reduce = tuple(range(1, x.ndim - 1))
        if self.subtract_last:
            self.last = x[:, -1, :].unsqueeze(1)
        else:
            self.mean = torch.mean(x, dim=dim2reduce, keepdim=True).detach()
        self.stdev = torch.sqrt(torch.var(x, dim=dim2reduce, keepdim=True, unbiased=False) + self.eps).detach()

    def _normalize(self, x):
        if self.subtract_last:
            x = x - self.last
        else:
            x = x - self.mean
        x = x / self.stdev
        if self.affine:
            x = x * self.affine_weight
            x = x + self.affine_bias
        return x

    def _denormalize(self, x):
        if self.affine:
            x = x - self.affine_bias
            x = x / (self.affine_weight + self.eps * self.eps)
        x = x * self.stdev
        if self.subtract_last:
            x = x + self.last
        else:
            x = x + self.mean
        return x


# ---------------------------------------------------------------------------------------------
# PatchTST
# ---------------------------------------------------------------------------------------------
class Transpose(nn.Module):
    def __init__(self, *dims, contiguous=False):
        super().__init__()
        self.dims, self.contiguous = dims, contiguous

    def forward(self, x):
        if self.contiguous:
            return x.transpose(*self.dims).contiguous()
        else:
            return x.transpose(*self.dims)


class TSTEncoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff=64, dropout=0.0, attn_dropout=0.0, pre_norm=False):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=attn_dropout, batch_first=True)
        # Add & Norm
        self.dropout_attn = nn.Dropout(dropout)
        self.norm_attn = nn.Sequential(Transpose(1, 2), nn.BatchNorm1d(d_model), Transpose(1, 2))
        # Position-wise Feed-Forward
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff, bias=True), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(d_ff, d_model, bias=True))
        self.dropout_ffn = nn.Dropout(dropout)
        self.norm_ffn = nn.Sequential(Transpose(1, 2), nn.BatchNorm1d(d_model), Transpose(1, 2))
        self.pre_norm = pre_norm

    def forward(self, src):
        # Multi-Head attention sublayer
        if self.pre_norm:
            src = self.norm_attn(src)
        src2, attn = self.self_attn(src, src, src)
        src = src + self.dropout_attn(src2)  # Add: residual connection with residual dropout
        if not self.pre_norm:
            src = self.norm_attn(src)
        # Feed-forward sublayer
        if self.pre_norm:
            src = self.norm_ffn(src)
        src2 = self.ff(src)
        src = src + self.dropout_ffn(src2)
        if not self.pre_norm:
            src = self.norm_ffn(src)
        return src


class TSTiEncoder(nn.Module):  # i means channel-independent
    def __init__(self, patch_num, patch_len, n_layers=2, d_model=16, n_heads=4, d_ff=64, dropout=0.0,
                 use_torch_layer=False):
        super().__init__()
        self.patch_num = patch_num
        self.patch_len = patch_len
        self.W_P = nn.Linear(patch_len, d_model)  # Eq 1: projection of feature vectors onto a d-dim vector space
        W_pos = torch.empty((patch_num, d_model))
        nn.init.uniform_(W_pos, -0.02, 0.02)
        self.W_pos = nn.Parameter(W_pos, requires_grad=True)
        self.dropout = nn.Dropout(dropout)
        if use_torch_layer:
            layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=d_ff, dropout=dropout,
                                               activation="gelu", batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers=n_layers, enable_nested_tensor=False)
        else:
            self.encoder = nn.Sequential(*[TSTEncoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers)])

    def forward(self, x):  # x: [bs x nvars x patch_len x patch_num]
        n_vars = x.shape[1]
        # Input encoding
        x = x.permute(0, 1, 3, 2)  # x: [bs x nvars x patch_num x patch_len]
        x = self.W_P(x)  # x: [bs x nvars x patch_num x d_model]
        u = torch.reshape(x, (x.shape[0] * x.shape[1], x.shape[2], x.shape[3]))  # u: [bs * nvars x patch_num x d_model]
        u = self.dropout(u + self.W_pos)  # u: [bs * nvars x patch_num x d_model]
        # Encoder
        z = self.encoder(u)  # z: [bs * nvars x patch_num x d_model]
        z = torch.reshape(z, (-1, n_vars, z.shape[-2], z.shape[-1]))  # z: [bs x nvars x patch_num x d_model]
        z = z.permute(0, 1, 3, 2)  # z: [bs x nvars x d_model x patch_num]
        return z


class Flatten_Head(nn.Module):
    def __init__(self, n_vars, nf, target_window, head_dropout=0):
        super().__init__()
        self.n_vars = n_vars
        self.flatten = nn.Flatten(start_dim=-2)
        self.linear = nn.Linear(nf, target_window)
        self.dropout = nn.Dropout(head_dropout)

    def forward(self, x):  # x: [bs x nvars x d_model x patch_num]
        x = self.flatten(x)
        x = self.linear(x)
        x = self.dropout(x)
        return x


class PatchTST_backbone(nn.Module):
    def __init__(self, c_in, context_window, target_window, patch_len, stride, d_model=16, n_heads=4,
                 n_layers=2, revin=True, affine=True, subtract_last=False, padding_patch='end',
                 use_torch_layer=False):
        super().__init__()
        # RevIn
        self.revin = revin
        if self.revin:
            self.revin_layer = RevIN(c_in, affine=affine, subtract_last=subtract_last)
        # Patching
        self.patch_len = patch_len
        self.stride = stride
        self.padding_patch = padding_patch
        patch_num = int((context_window - patch_len) / stride + 1)
        if padding_patch == 'end':  # can be modified to general case
            self.padding_patch_layer = nn.ReplicationPad1d((0, stride))
            patch_num += 1
        self.patch_num = patch_num
        # Backbone
        self.backbone = TSTiEncoder(patch_num=patch_num, patch_len=patch_len, n_layers=n_layers, d_model=d_model,
                                    n_heads=n_heads, d_ff=4 * d_model, use_torch_layer=use_torch_layer)
        # Head
        self.head_nf = d_model * patch_num
        self.head = Flatten_Head(c_in, self.head_nf, target_window)

    def patchify(self, z):  # z: [bs x nvars x seq_len]
        if self.padding_patch == 'end':
            z = self.padding_patch_layer(z)
        z = z.unfold(dimension=-1, size=self.patch_len, step=self.stride)  # z: [bs x nvars x patch_num x patch_len]
        return z

    def forward(self, z):  # z: [bs x nvars x seq_len]
        # norm
        if self.revin:
            z = z.permute(0, 2, 1)
            z = self.revin_layer(z, 'norm')
            z = z.permute(0, 2, 1)
        # do patching
        z = self.patchify(z)
        z = z.permute(0, 1, 3, 2)  # z: [bs x nvars x patch_len x patch_num]
        # model
        z = self.backbone(z)  # z: [bs x nvars x d_model x patch_num]
        z = self.head(z)  # z: [bs x nvars x target_window]
        # denorm
        if self.revin:
            z = z.permute(0, 2, 1)
            z = self.revin_layer(z, 'denorm')
            z = z.permute(0, 2, 1)
        return z


class PatchTST(nn.Module):
    def __init__(self, use_torch_layer=False):
        super().__init__()
        self.model = PatchTST_backbone(c_in=C, context_window=seq_len, target_window=pred_len, patch_len=8,
                                       stride=4, use_torch_layer=use_torch_layer)

    def forward(self, x):  # x: [Batch, Input length, Channel]
        x = x.permute(0, 2, 1)  # x: [Batch, Channel, Input length]
        x = self.model(x)
        x = x.permute(0, 2, 1)  # x: [Batch, Input length, Channel]
        return x


# ---------------------------------------------------------------------------------------------
# DLinear
# ---------------------------------------------------------------------------------------------
class moving_avg(nn.Module):
    """
    Moving average block to highlight the trend of time series
    """

    def __init__(self, kernel_size, stride):
        super(moving_avg, self).__init__()  # noqa: UP008
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
        super(series_decomp, self).__init__()  # noqa: UP008
        self.moving_avg = moving_avg(kernel_size, stride=1)

    def forward(self, x):
        moving_mean = self.moving_avg(x)
        res = x - moving_mean
        return res, moving_mean


class DLinear(nn.Module):
    """
    Decomposition-Linear
    """

    def __init__(self, individual=True, kernel_size=25):
        super(DLinear, self).__init__()  # noqa: UP008
        self.seq_len = seq_len
        self.pred_len = pred_len
        self.decompsition = series_decomp(kernel_size)
        self.individual = individual
        self.channels = C
        if self.individual:
            self.Linear_Seasonal = nn.ModuleList()
            self.Linear_Trend = nn.ModuleList()
            for i in range(self.channels):  # noqa: B007  (the repo's loop)
                self.Linear_Seasonal.append(nn.Linear(self.seq_len, self.pred_len))
                self.Linear_Trend.append(nn.Linear(self.seq_len, self.pred_len))
        else:
            self.Linear_Seasonal = nn.Linear(self.seq_len, self.pred_len)
            self.Linear_Trend = nn.Linear(self.seq_len, self.pred_len)

    def forward(self, x):
        # x: [Batch, Input length, Channel]
        seasonal_init, trend_init = self.decompsition(x)
        seasonal_init, trend_init = seasonal_init.permute(0, 2, 1), trend_init.permute(0, 2, 1)
        if self.individual:
            seasonal_output = torch.zeros([seasonal_init.size(0), seasonal_init.size(1), self.pred_len],
                                          dtype=seasonal_init.dtype).to(seasonal_init.device)
            trend_output = torch.zeros([trend_init.size(0), trend_init.size(1), self.pred_len],
                                       dtype=trend_init.dtype).to(trend_init.device)
            for i in range(self.channels):
                seasonal_output[:, i, :] = self.Linear_Seasonal[i](seasonal_init[:, i, :])
                trend_output[:, i, :] = self.Linear_Trend[i](trend_init[:, i, :])
        else:
            seasonal_output = self.Linear_Seasonal(seasonal_init)
            trend_output = self.Linear_Trend(trend_init)

        x = seasonal_output + trend_output
        return x.permute(0, 2, 1)  # to [Batch, Output length, Channel]


# ---------------------------------------------------------------------------------------------
# checks of the pieces
# ---------------------------------------------------------------------------------------------
xb = x_train[:5]
k = 25
ma = moving_avg(k, stride=1)(xb)
padded = torch.cat([xb[:, :1].repeat(1, (k - 1) // 2, 1), xb, xb[:, -1:].repeat(1, (k - 1) // 2, 1)], dim=1)
conv = F.conv1d(padded.permute(0, 2, 1).reshape(-1, 1, padded.size(1)), torch.full((1, 1, k), 1.0 / k))
conv = conv.reshape(xb.size(0), C, -1).permute(0, 2, 1)
ma_ok = ma.shape == xb.shape and torch.allclose(ma, conv, rtol=1e-4, atol=1e-3)
print(f"moving_avg {tuple(ma.shape)} == conv1d with 1/k kernel: {ma_ok}")

revin = RevIN(C)
with torch.no_grad():
    revin.affine_weight.uniform_(0.5, 1.5)
    revin.affine_bias.uniform_(-0.5, 0.5)
    normed = revin(xb, 'norm')
    back = revin(normed, 'denorm')
revin_ok = torch.allclose(back, xb, rtol=1e-4, atol=1e-3) and normed.std(dim=1, unbiased=False).max().item() < 2.0
print(f"RevIN norm -> denorm round trip: {revin_ok}")

probe = PatchTST().model
patches = probe.patchify(xb.permute(0, 2, 1))
padded = torch.cat([xb.permute(0, 2, 1), xb.permute(0, 2, 1)[..., -1:].repeat(1, 1, probe.stride)], dim=-1)
manual = torch.stack([padded[..., i * probe.stride:i * probe.stride + probe.patch_len] for i in range(probe.patch_num)], dim=2)
patch_ok = patches.shape == (5, C, probe.patch_num, probe.patch_len) and torch.equal(patches, manual)
print(f"patches {tuple(patches.shape)} == slices of the replicated series: {patch_ok}")


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def train(model, epochs, lr, bs=32):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    criterion = nn.MSELoss()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=g)
        for i in range(0, len(perm), bs):
            idx = perm[i:i + bs]
            optimizer.zero_grad()
            loss = criterion(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
    return model


@torch.no_grad()
def evaluate(pred_fn):
    # metrics on per-channel standardised values, so the large channel does not dominate
    scale = torch.from_numpy(series[:split].std(0))
    pred = pred_fn(x_test)
    err = (pred - y_test) / scale
    return (err ** 2).mean().item(), err.abs().mean().item()


last_mse, last_mae = evaluate(lambda x: x[:, -1:, :].repeat(1, pred_len, 1))
print(f"last value:    mse {last_mse:.4f} mae {last_mae:.4f}")

results = {}
for name, make, epochs, lr in (
    ("dlinear_ind", lambda: DLinear(individual=True), 20, 3e-3),
    ("dlinear", lambda: DLinear(individual=False), 20, 3e-3),
    ("patchtst", lambda: PatchTST(), 4, 2e-3),
    ("patchtst_torchlayer", lambda: PatchTST(use_torch_layer=True), 4, 2e-3),
):
    torch.manual_seed(seed)
    model = train(make(), epochs, lr)
    model.eval()
    mse, mae = evaluate(model)
    results[name] = (mse, mae)
    print(f"{name + ':':<21}mse {mse:.4f} mae {mae:.4f} beats last value: {mse < last_mse and mae < last_mae}")

beats = all(mse < last_mse and mae < last_mae for mse, mae in results.values())
print("FINAL " + " ".join(f"{n}_mse={m:.4f}" for n, (m, _) in results.items())
      + f" last_mse={last_mse:.4f} all_beat_last={int(beats)} ma_ok={int(ma_ok)} revin_ok={int(revin_ok)} patch_ok={int(patch_ok)}")
