"""Traffic forecasting as STGCN (hazdzz/STGCN) and Graph WaveNet (nnzhan/Graph-WaveNet) write it, at
tiny sizes on a synthetic ring road (a congestion signal diffusing over a fixed graph of sensors, one
sensor off the road, a few missing readings stored as 0): the symmetric normalised Laplacian with
``d.pow(-0.5)`` and ``isinf`` zeroed for the isolated sensor, rescaled by ``torch.linalg.eigvalsh``'s
largest eigenvalue, ``D^-1/2 (A + I) D^-1/2`` by ``torch.diag``, Chebyshev graph convolution
(``T_k = 2 L T_{k-1} - T_{k-2}`` by ``torch.einsum('nm,bcmt->bcnt', ...)``, against the polynomial
matrices ``2 L @ L - I`` applied at once), the gated temporal conv (``nn.Conv2d(c, 2c, (1, Kt))``,
``torch.chunk`` into P, Q, ``(P + x_in) * torch.sigmoid(Q)``), ``nn.LayerNorm([N, C])`` on
``permute(0, 3, 2, 1)``, Graph WaveNet's adaptive adjacency ``F.softmax(F.relu(torch.mm(nodevec1,
nodevec2)), dim=1)`` with dilated ``tanh``/``sigmoid`` gated convolutions, ``nconv`` by ``einsum
('ncvl,vw->ncwl')`` and skip connections, the ``StandardScaler``, ``masked_mae``/``masked_rmse``/
``masked_mape`` with ``null_val=0.0`` (``mask /= torch.mean(mask)``, ``torch.where(torch.isnan(loss),
torch.zeros_like(loss), loss)``), Adam + ``clip_grad_norm_``, and MAE/RMSE/MAPE per horizon against
the last-value baseline.
"""
# ruff: noqa: B007, UP034  (the repositories' own spelling: unused loop indices, torch.mean((mask)))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

# ---- a ring road of 12 sensors, two chords and one sensor off the road ----
N_ROAD, N = 12, 13
A = np.zeros((N, N), dtype=np.float32)
for i in range(N_ROAD):
    A[i, (i + 1) % N_ROAD] = A[(i + 1) % N_ROAD, i] = 1.0
for a, b in ((0, 6), (3, 9)):
    A[a, b] = A[b, a] = 1.0

T_TOTAL, N_HIS, N_PRED = 640, 12, 3
P_road = A / np.maximum(A.sum(1, keepdims=True), 1)
state = np.zeros(N)
series = np.zeros((T_TOTAL, N), dtype=np.float32)
phase = rng.uniform(0, 2 * np.pi)
for t in range(T_TOTAL):
    inject = np.zeros(N)
    inject[0] = 1.5 * max(0.0, math.sin(2 * math.pi * t / 24 + phase)) + 0.2 * rng.rand()
    inject[N_ROAD] = 0.5 + 0.5 * math.sin(2 * math.pi * t / 12) + 0.1 * rng.randn()
    state = 0.55 * state + 0.4 * P_road @ state + inject
    series[t] = 60.0 - 6.0 * state + 0.5 * rng.randn(N)
series[rng.rand(T_TOTAL, N) < 0.03] = 0.0  # missing readings
print(f"sensors {N} steps {T_TOTAL} edges {int(A.sum()) // 2} missing {(series == 0).mean():.4f}")

# windows (B, C=1, N, T) in, (B, N_PRED, N) out
starts = np.arange(T_TOTAL - N_HIS - N_PRED + 1)
X = np.stack([series[s:s + N_HIS].T[None] for s in starts])
Y = np.stack([series[s + N_HIS:s + N_HIS + N_PRED] for s in starts])
n_train, n_val = int(0.6 * len(starts)), int(0.15 * len(starts))


class StandardScaler:
    def __init__(self, mean, std):
        self.mean = mean
        self.std = std

    def transform(self, data):
        return (data - self.mean) / self.std

    def inverse_transform(self, data):
        return (data * self.std) + self.mean


train_vals = X[:n_train][X[:n_train] != 0]
scaler = StandardScaler(mean=float(train_vals.mean()), std=float(train_vals.std()))
x_all = torch.from_numpy(scaler.transform(X)).float()
y_all = torch.from_numpy(Y)
splits = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(n_train + n_val, None)}
print(f"samples train {n_train} val {n_val} test {len(starts) - n_train - n_val}")


# ---- graph matrices ----
def calc_gso(adj, gso_type):
    adj = torch.as_tensor(adj)
    n = adj.shape[0]
    if gso_type == "sym_renorm_adj":
        adj = adj + torch.eye(n)
    row_sum = adj.sum(dim=1)
    d_inv_sqrt = row_sum.pow(-0.5)
    d_inv_sqrt[torch.isinf(d_inv_sqrt)] = 0.0
    d_mat_inv_sqrt = torch.diag(d_inv_sqrt)
    sym_norm_adj = d_mat_inv_sqrt @ adj @ d_mat_inv_sqrt
    if gso_type == "sym_norm_lap":
        return torch.eye(n) - sym_norm_adj
    return sym_norm_adj


def calc_chebynet_gso(gso):
    eigval_max = torch.linalg.eigvalsh(gso).max()
    # if the gso is symmetric or random walk normalized Laplacian, the eigenvalue_max <= 2
    if eigval_max >= 2:
        gso = gso - torch.eye(gso.shape[0])
    else:
        gso = 2 * gso / eigval_max - torch.eye(gso.shape[0])
    return gso


lap = calc_gso(A, "sym_norm_lap")
cheb_gso = calc_chebynet_gso(lap)
renorm_adj = calc_gso(A, "sym_renorm_adj")
print(f"isolated sensor degree {A[N_ROAD].sum():.0f} laplacian diagonal there {lap[N_ROAD, N_ROAD].item():.4f}")
print(f"renormalised adjacency row sums min {renorm_adj.sum(1).min().item():.4f} max {renorm_adj.sum(1).max().item():.4f}")


# ---- STGCN ----
class Align(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.align_conv = nn.Conv2d(c_in, c_out, kernel_size=(1, 1))

    def forward(self, x):
        if self.c_in > self.c_out:
            return self.align_conv(x)
        if self.c_in < self.c_out:
            batch_size, _, n_vertex, timestep = x.shape
            return torch.cat([x, torch.zeros([batch_size, self.c_out - self.c_in, n_vertex, timestep])], dim=1)
        return x


class TemporalConvLayer(nn.Module):
    """GLU gated causal convolution over time on (B, C, N, T)."""

    def __init__(self, Kt, c_in, c_out):
        super().__init__()
        self.Kt = Kt
        self.align = Align(c_in, c_out)
        self.causal_conv = nn.Conv2d(c_in, 2 * c_out, kernel_size=(1, Kt))

    def forward(self, x):
        x_in = self.align(x)[:, :, :, self.Kt - 1:]
        x_causal_conv = self.causal_conv(x)
        x_p, x_q = torch.chunk(x_causal_conv, 2, dim=1)
        return torch.mul((x_p + x_in), torch.sigmoid(x_q))


class ChebGraphConv(nn.Module):
    def __init__(self, c_in, c_out, Ks, gso):
        super().__init__()
        self.Ks = Ks
        self.register_buffer("gso", gso)
        self.weight = nn.Parameter(torch.FloatTensor(Ks, c_in, c_out))
        self.bias = nn.Parameter(torch.FloatTensor(c_out))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(self.weight)
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(self.bias, -bound, bound)

    def polynomials(self, x):
        x_0 = x
        x_list = [x_0]
        if self.Ks > 1:
            x_1 = torch.einsum("nm,bcmt->bcnt", self.gso, x)
            x_list.append(x_1)
            for k in range(2, self.Ks):
                x_list.append(2 * torch.einsum("nm,bcmt->bcnt", self.gso, x_list[k - 1]) - x_list[k - 2])
        return torch.stack(x_list, dim=2)  # (B, C, K, N, T)

    def forward(self, x):
        x = self.polynomials(x)
        return torch.einsum("bcknt,kco->bont", x, self.weight) + self.bias.view(1, -1, 1, 1)


class STConvBlock(nn.Module):
    # T: Gated Temporal Convolution Layer (GLU), G: Graph Convolution Layer (ChebGraphConv),
    # T, N: Layer Normalization, D: Dropout.
    def __init__(self, Kt, Ks, n_vertex, last_block_channel, channels, gso, droprate):
        super().__init__()
        self.tmp_conv1 = TemporalConvLayer(Kt, last_block_channel, channels[0])
        self.graph_conv = ChebGraphConv(channels[0], channels[1], Ks, gso)
        self.tmp_conv2 = TemporalConvLayer(Kt, channels[1], channels[2])
        self.tc2_ln = nn.LayerNorm([n_vertex, channels[2]])
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p=droprate)

    def forward(self, x):
        x = self.tmp_conv1(x)
        x = self.relu(self.graph_conv(x))
        x = self.tmp_conv2(x)
        x = self.tc2_ln(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
        return self.dropout(x)


class STGCNChebGraphConv(nn.Module):
    def __init__(self, Kt=3, Ks=3, n_his=N_HIS, n_pred=N_PRED, gso=cheb_gso):
        super().__init__()
        self.st_block = STConvBlock(Kt, Ks, N, 1, [16, 8, 16], gso, droprate=0.1)
        Ko = n_his - 2 * (Kt - 1)
        self.output = nn.Sequential(nn.Conv2d(16, 32, kernel_size=(1, Ko)), nn.ReLU(), nn.Conv2d(32, n_pred, 1))

    def forward(self, x):
        x = self.st_block(x)
        return self.output(x).squeeze(-1)  # (B, n_pred, N)


# ---- Graph WaveNet ----
class nconv(nn.Module):
    def forward(self, x, A):
        x = torch.einsum("ncvl,vw->ncwl", (x, A))
        return x.contiguous()


class gcn(nn.Module):
    def __init__(self, c_in, c_out, dropout, support_len=2, order=2):
        super().__init__()
        self.nconv = nconv()
        c_in = (order * support_len + 1) * c_in
        self.mlp = nn.Conv2d(c_in, c_out, kernel_size=(1, 1))
        self.dropout = dropout
        self.order = order

    def forward(self, x, support):
        out = [x]
        for a in support:
            x1 = self.nconv(x, a)
            out.append(x1)
            for k in range(2, self.order + 1):
                x2 = self.nconv(x1, a)
                out.append(x2)
                x1 = x2
        h = torch.cat(out, dim=1)
        h = self.mlp(h)
        return F.dropout(h, self.dropout, training=self.training)


class GWNet(nn.Module):
    def __init__(self, supports, dropout=0.1, residual_channels=8, dilation_channels=8, skip_channels=16,
                 end_channels=32, blocks=2, layers=2):
        super().__init__()
        self.supports = supports
        self.nodevec1 = nn.Parameter(torch.randn(N, 6), requires_grad=True)
        self.nodevec2 = nn.Parameter(torch.randn(6, N), requires_grad=True)
        self.start_conv = nn.Conv2d(1, residual_channels, kernel_size=(1, 1))
        self.filter_convs, self.gate_convs = nn.ModuleList(), nn.ModuleList()
        self.skip_convs, self.gconv, self.bn = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.receptive_field = 1
        for b in range(blocks):
            additional_scope = 1
            new_dilation = 1
            for i in range(layers):
                self.filter_convs.append(nn.Conv2d(residual_channels, dilation_channels, (1, 2), dilation=new_dilation))
                self.gate_convs.append(nn.Conv2d(residual_channels, dilation_channels, (1, 2), dilation=new_dilation))
                self.skip_convs.append(nn.Conv2d(dilation_channels, skip_channels, kernel_size=(1, 1)))
                self.bn.append(nn.BatchNorm2d(residual_channels))
                self.gconv.append(gcn(dilation_channels, residual_channels, dropout, support_len=len(supports) + 1))
                new_dilation *= 2
                self.receptive_field += additional_scope
                additional_scope *= 2
        self.end_conv_1 = nn.Conv2d(skip_channels, end_channels, kernel_size=(1, 1))
        self.end_conv_2 = nn.Conv2d(end_channels, N_PRED, kernel_size=(1, 1))

    def adaptive_adjacency(self):
        return F.softmax(F.relu(torch.mm(self.nodevec1, self.nodevec2)), dim=1)

    def forward(self, input):
        in_len = input.size(3)
        if in_len < self.receptive_field:
            x = nn.functional.pad(input, (self.receptive_field - in_len, 0, 0, 0))
        else:
            x = input
        x = self.start_conv(x)
        skip = 0
        new_supports = self.supports + [self.adaptive_adjacency()]
        for i in range(len(self.filter_convs)):
            residual = x
            filter = torch.tanh(self.filter_convs[i](residual))
            gate = torch.sigmoid(self.gate_convs[i](residual))
            x = filter * gate
            s = self.skip_convs[i](x)
            try:
                skip = skip[:, :, :, -s.size(3):]
            except TypeError:
                skip = 0
            skip = s + skip
            x = self.gconv[i](x, new_supports)
            x = x + residual[:, :, :, -x.size(3):]
            x = self.bn[i](x)
        x = F.relu(skip)
        x = F.relu(self.end_conv_1(x[:, :, :, -1:]))
        return self.end_conv_2(x).squeeze(-1)  # (B, n_pred, N)


# ---- masked metrics (Graph WaveNet's util.py) ----
def masked_mae(preds, labels, null_val=np.nan):
    if np.isnan(null_val):
        mask = ~torch.isnan(labels)
    else:
        mask = (labels != null_val)
    mask = mask.float()
    mask /= torch.mean((mask))
    mask = torch.where(torch.isnan(mask), torch.zeros_like(mask), mask)
    loss = torch.abs(preds - labels)
    loss = loss * mask
    loss = torch.where(torch.isnan(loss), torch.zeros_like(loss), loss)
    return torch.mean(loss)


def masked_mse(preds, labels, null_val=np.nan):
    if np.isnan(null_val):
        mask = ~torch.isnan(labels)
    else:
        mask = (labels != null_val)
    mask = mask.float()
    mask /= torch.mean((mask))
    mask = torch.where(torch.isnan(mask), torch.zeros_like(mask), mask)
    loss = (preds - labels) ** 2
    loss = loss * mask
    loss = torch.where(torch.isnan(loss), torch.zeros_like(loss), loss)
    return torch.mean(loss)


def masked_rmse(preds, labels, null_val=np.nan):
    return torch.sqrt(masked_mse(preds=preds, labels=labels, null_val=null_val))


def masked_mape(preds, labels, null_val=np.nan):
    if np.isnan(null_val):
        mask = ~torch.isnan(labels)
    else:
        mask = (labels != null_val)
    mask = mask.float()
    mask /= torch.mean((mask))
    mask = torch.where(torch.isnan(mask), torch.zeros_like(mask), mask)
    loss = torch.abs(preds - labels) / labels
    loss = loss * mask
    loss = torch.where(torch.isnan(loss), torch.zeros_like(loss), loss)
    return torch.mean(loss)


def metric(pred, real):
    mae = masked_mae(pred, real, 0.0).item()
    mape = masked_mape(pred, real, 0.0).item()
    rmse = masked_rmse(pred, real, 0.0).item()
    return mae, mape, rmse


# ---- checks of the graph convolutions against other routes ----
cheb = ChebGraphConv(2, 3, 3, cheb_gso)
x_check = torch.randn(4, 2, N, 5)
eye = torch.eye(N)
polys = [eye, cheb_gso, 2 * cheb_gso @ cheb_gso - eye]
direct = torch.stack([torch.einsum("nm,bcmt->bcnt", p, x_check) for p in polys], dim=2)
cheb_diff = (cheb.polynomials(x_check) - direct).abs().max().item()
gw = GWNet([renorm_adj])
adp = gw.adaptive_adjacency()
nc = nconv()(x_check, renorm_adj)
nc_ref = torch.matmul(x_check.transpose(2, 3), renorm_adj).transpose(2, 3)
nconv_diff = (nc - nc_ref).abs().max().item()
print(f"Chebyshev recursion vs polynomial matrices {cheb_diff:.2e} nconv vs matmul {nconv_diff:.2e}")
print(f"adaptive adjacency {tuple(adp.shape)} rows sum to one {torch.allclose(adp.sum(1), torch.ones(N))} "
      f"receptive field {gw.receptive_field}")
probe = masked_mae(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), 0.0)
print(f"masked_mae on an all-missing batch {probe.item():.1f}")


# ---- training ----
def evaluate(model, split):
    model.eval()
    with torch.no_grad():
        preds = scaler.inverse_transform(model(x_all[splits[split]]))
    model.train()
    real = y_all[splits[split]]
    return [metric(preds[:, h], real[:, h]) for h in range(N_PRED)]


results = {}
for name, build in (("stgcn", STGCNChebGraphConv), ("gwnet", lambda: GWNet([renorm_adj]))):
    torch.manual_seed(seed + 1)
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=0.0001)
    for epoch in range(1, 9):
        perm = torch.randperm(n_train)
        train_loss = []
        for start in range(0, n_train, 32):
            idx = perm[start:start + 32]
            optimizer.zero_grad()
            output = model(x_all[idx])
            predict = scaler.inverse_transform(output)
            loss = masked_mae(predict, y_all[idx], 0.0)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5)
            optimizer.step()
            train_loss.append(loss.item())
        if epoch % 4 == 0:
            val_mae = np.mean([m[0] for m in evaluate(model, "val")])
            print(f"{name} epoch {epoch} train mae {np.mean(train_loss):.4f} valid mae {val_mae:.4f}")
    results[name] = evaluate(model, "test")
    for h, (mae, mape, rmse) in enumerate(results[name]):
        print(f"{name} horizon {h + 1} test MAE {mae:.4f} MAPE {mape:.4f} RMSE {rmse:.4f}")

# last-value baseline: the last non-missing input reading of each sensor
x_raw = torch.from_numpy(X[splits["test"]][:, 0])  # (B, N, T)
last = x_raw[..., -1].clone()
for t in range(2, N_HIS + 1):
    last = torch.where(last == 0, x_raw[..., -t], last)
baseline = [metric(last, y_all[splits["test"]][:, h]) for h in range(N_PRED)]
for h, (mae, mape, rmse) in enumerate(baseline):
    print(f"last value horizon {h + 1} test MAE {mae:.4f} MAPE {mape:.4f} RMSE {rmse:.4f}")

stgcn_mae = np.mean([m[0] for m in results["stgcn"]])
gwnet_mae = np.mean([m[0] for m in results["gwnet"]])
base_mae = np.mean([m[0] for m in baseline])
print(f"FINAL stgcn_mae={stgcn_mae:.4f} gwnet_mae={gwnet_mae:.4f} baseline_mae={base_mae:.4f} "
      f"stgcn_rmse3={results['stgcn'][-1][2]:.4f} gwnet_mape3={results['gwnet'][-1][1]:.4f} "
      f"stgcn_ratio={stgcn_mae / base_mae:.4f} gwnet_ratio={gwnet_mae / base_mae:.4f} "
      f"cheb_diff={cheb_diff:.6f} nconv_diff={nconv_diff:.6f}")
