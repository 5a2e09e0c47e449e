"""Graph WaveNet (nnzhan/Graph-WaveNet ``model.py``, ``util.py``, ``engine.py``) at tiny sizes on a synthetic
traffic-like graph signal: diffusion on a random road graph plus a daily sinusoid, made with NumPy.

As the repo writes it: ``nconv`` by ``torch.einsum('ncvl,vw->ncwl', (x, A))`` and ``.contiguous()`` (checked
against the ``torch.matmul`` form), ``gcn`` diffusing to order 2 over the supports (the random-walk
transition matrices of both directions from ``util.asym_adj``, plus the adaptive adjacency
``F.softmax(F.relu(torch.mm(self.nodevec1, self.nodevec2)), dim=1)``), ``torch.cat(out, dim=1)`` into a 1x1
``Conv2d`` mlp with ``F.dropout``; the gated dilated TCN (``Conv2d(kernel_size=(1, 2), dilation=d)``,
``torch.tanh(filter) * torch.sigmoid(gate)``), skip convolutions cut by ``skip[:, :, :, -s.size(3):]``,
residuals cut by ``residual[:, :, :, -x.size(3):]``, ``BatchNorm2d``, the receptive field by
``nn.functional.pad(input, (self.receptive_field - in_len, 0, 0, 0))``; ``util.StandardScaler``,
``masked_mae``/``masked_mape``/``masked_rmse`` with ``torch.where(torch.isnan(mask), torch.zeros_like(mask),
mask)`` and ``mask /= torch.mean((mask))``, ``engine.trainer`` (``input.transpose(1, 3)``, ``nn.functional.pad``
by one step, ``torch.unsqueeze(real_val, dim=1)``, ``scaler.inverse_transform``, Adam with weight decay,
``torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)``). Checks: the einsum nconv equals the
matmul form, the adaptive adjacency's rows sum to 1, and the model beats the last-value baseline on held-out
MAE.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)


# data: a random road graph, a daily sinusoid per node diffused along its edges, and noise

NUM_NODES, SEQ_LEN, HORIZON, STEPS_PER_DAY = 12, 6, 3, 48


def make_series(num_steps=1100):
    adj = (rng.rand(NUM_NODES, NUM_NODES) < 0.2).astype(np.float32)
    np.fill_diagonal(adj, 0)
    for i in range(NUM_NODES - 1):  # a road through all nodes, one way
        adj[i, i + 1] = 1.0
    phase = rng.uniform(0, 2 * np.pi, NUM_NODES)
    base = rng.uniform(40, 60, NUM_NODES)
    t = np.arange(num_steps)[:, None]
    drive = base + 15 * np.sin(2 * np.pi * t / STEPS_PER_DAY + phase)
    speed = np.zeros((num_steps, NUM_NODES), np.float32)
    speed[0] = drive[0]
    transition = adj / np.maximum(adj.sum(0, keepdims=True), 1)
    for k in range(1, num_steps):
        shock = rng.randn(NUM_NODES) * 4.0 * (rng.rand(NUM_NODES) < 0.1)
        upstream = speed[k - 1] @ transition
        speed[k] = 0.5 * speed[k - 1] + 0.3 * upstream + 0.2 * drive[k] + shock + rng.randn(NUM_NODES)
    speed[rng.rand(*speed.shape) < 0.02] = 0.0  # missing readings, as 0 in METR-LA
    time_of_day = (np.arange(num_steps) % STEPS_PER_DAY) / STEPS_PER_DAY
    return adj, speed, time_of_day


adj_mx, speed, time_of_day = make_series()


def windows(start, stop):
    xs, ys = [], []
    for i in range(start, stop - SEQ_LEN - HORIZON):
        x = np.stack([speed[i:i + SEQ_LEN], np.repeat(time_of_day[i:i + SEQ_LEN, None], NUM_NODES, 1)], -1)
        xs.append(x)
        ys.append(speed[i + SEQ_LEN:i + SEQ_LEN + HORIZON, :, None])  # (horizon, nodes, 1)
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


x_train, y_train = windows(0, 800)
x_test, y_test = windows(800, 1100)


# util.py

class StandardScaler:
    """
    Standard the input
    """

    def __init__(self, mean, std):
        self.mean = mean
        self.std = std

    def transform(self, data):
        return (data - self.mean) / self.std

    def inverse_transform(self, data):
        return (data * self.std) + self.mean


def asym_adj(adj):
    rowsum = np.array(adj.sum(1)).flatten()
    d_inv = np.power(rowsum, -1).flatten()
    d_inv[np.isinf(d_inv)] = 0.
    d_mat = np.diag(d_inv)
    return d_mat.dot(adj).astype(np.float32)


def masked_mse(preds, labels, null_val=np.nan):
    if np.isnan(null_val):
        mask = ~torch.isnan(labels)
    else:
        mask = (labels != null_val)
    mask = mask.float()
    mask /= torch.mean(mask)
    mask = torch.where(torch.isnan(mask), torch.zeros_like(mask), mask)
    loss = (preds - labels) ** 2
    loss = loss * mask
    loss = torch.where(torch.isnan(loss), torch.zeros_like(loss), loss)
    return torch.mean(loss)


def masked_rmse(preds, labels, null_val=np.nan):
    return torch.sqrt(masked_mse(preds=preds, labels=labels, null_val=null_val))


def masked_mae(preds, labels, null_val=np.nan):
    if np.isnan(null_val):
        mask = ~torch.isnan(labels)
    else:
        mask = (labels != null_val)
    mask = mask.float()
    mask /= torch.mean(mask)
    mask = torch.where(torch.isnan(mask), torch.zeros_like(mask), mask)
    loss = torch.abs(preds - labels)
    loss = loss * mask
    loss = torch.where(torch.isnan(loss), torch.zeros_like(loss), loss)
    return torch.mean(loss)


def masked_mape(preds, labels, null_val=np.nan):
    if np.isnan(null_val):
        mask = ~torch.isnan(labels)
    else:
        mask = (labels != null_val)
    mask = mask.float()
    mask /= torch.mean(mask)
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


# model.py

class nconv(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, A):
        x = torch.einsum('ncvl,vw->ncwl', (x, A))
        return x.contiguous()


class linear(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.mlp = torch.nn.Conv2d(c_in, c_out, kernel_size=(1, 1), padding=(0, 0), stride=(1, 1), bias=True)

    def forward(self, x):
        return self.mlp(x)


class gcn(nn.Module):
    def __init__(self, c_in, c_out, dropout, support_len=3, order=2):
        super().__init__()
        self.nconv = nconv()
        c_in = (order * support_len + 1) * c_in
        self.mlp = linear(c_in, c_out)
        self.dropout = dropout
        self.order = order

    def forward(self, x, support):
        out = [x]
        for a in support:
            x1 = self.nconv(x, a)
            out.append(x1)
            for k in range(2, self.order + 1):  # noqa: B007 (the repo's loop)
                x2 = self.nconv(x1, a)
                out.append(x2)
                x1 = x2

        h = torch.cat(out, dim=1)
        h = self.mlp(h)
        h = F.dropout(h, self.dropout, training=self.training)
        return h


class gwnet(nn.Module):
    def __init__(self, device, num_nodes, dropout=0.3, supports=None, gcn_bool=True, addaptadj=True, aptinit=None,
                 in_dim=2, out_dim=12, residual_channels=16, dilation_channels=16, skip_channels=32,
                 end_channels=64, kernel_size=2, blocks=2, layers=2):
        super().__init__()
        self.dropout = dropout
        self.blocks = blocks
        self.layers = layers
        self.gcn_bool = gcn_bool
        self.addaptadj = addaptadj

        self.filter_convs = nn.ModuleList()
        self.gate_convs = nn.ModuleList()
        self.residual_convs = nn.ModuleList()
        self.skip_convs = nn.ModuleList()
        self.bn = nn.ModuleList()
        self.gconv = nn.ModuleList()

        self.start_conv = nn.Conv2d(in_channels=in_dim, out_channels=residual_channels, kernel_size=(1, 1))
        self.supports = supports

        receptive_field = 1

        self.supports_len = 0
        if supports is not None:
            self.supports_len += len(supports)

        if gcn_bool and addaptadj:
            if aptinit is None:
                if supports is None:
                    self.supports = []
                self.nodevec1 = nn.Parameter(torch.randn(num_nodes, 10).to(device), requires_grad=True).to(device)
                self.nodevec2 = nn.Parameter(torch.randn(10, num_nodes).to(device), requires_grad=True).to(device)
                self.supports_len += 1

        for b in range(blocks):  # noqa: B007 (the repo's loop)
            additional_scope = kernel_size - 1
            new_dilation = 1
            for i in range(layers):  # noqa: B007 (the repo's loop)
                # dilated convolutions
                self.filter_convs.append(nn.Conv2d(in_channels=residual_channels, out_channels=dilation_channels,
                                                   kernel_size=(1, kernel_size), dilation=new_dilation))
                self.gate_convs.append(nn.Conv2d(in_channels=residual_channels, out_channels=dilation_channels,
                                                 kernel_size=(1, kernel_size), dilation=new_dilation))
                # 1x1 convolution for residual connection
                self.residual_convs.append(nn.Conv2d(in_channels=dilation_channels, out_channels=residual_channels,
                                                     kernel_size=(1, 1)))
                # 1x1 convolution for skip connection
                self.skip_convs.append(nn.Conv2d(in_channels=dilation_channels, out_channels=skip_channels,
                                                 kernel_size=(1, 1)))
                self.bn.append(nn.BatchNorm2d(residual_channels))
                new_dilation *= 2
                receptive_field += additional_scope
                additional_scope *= 2
                if self.gcn_bool:
                    self.gconv.append(gcn(dilation_channels, residual_channels, dropout, support_len=self.supports_len))

        self.end_conv_1 = nn.Conv2d(in_channels=skip_channels, out_channels=end_channels, kernel_size=(1, 1), bias=True)
        self.end_conv_2 = nn.Conv2d(in_channels=end_channels, out_channels=out_dim, kernel_size=(1, 1), bias=True)
        self.receptive_field = receptive_field

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

        # calculate the current adaptive adj matrix once per iteration
        new_supports = None
        if self.gcn_bool and self.addaptadj and self.supports is not None:
            adp = self.adaptive_adjacency()
            new_supports = self.supports + [adp]

        # WaveNet layers
        for i in range(self.blocks * self.layers):
            residual = x
            # dilated convolution
            filter = self.filter_convs[i](residual)
            filter = torch.tanh(filter)
            gate = self.gate_convs[i](residual)
            gate = torch.sigmoid(gate)
            x = filter * gate

            # parametrized skip connection
            s = x
            s = self.skip_convs[i](s)
            try:
                skip = skip[:, :, :, -s.size(3):]
            except Exception:
                skip = 0
            skip = s + skip

            if self.gcn_bool and self.supports is not None:
                if self.addaptadj:
                    x = self.gconv[i](x, new_supports)
                else:
                    x = self.gconv[i](x, self.supports)
            else:
                x = self.residual_convs[i](x)

            x = x + residual[:, :, :, -x.size(3):]
            x = self.bn[i](x)

        x = F.relu(skip)
        x = F.relu(self.end_conv_1(x))
        x = self.end_conv_2(x)
        return x


# engine.py

class trainer:
    def __init__(self, scaler, in_dim, seq_length, num_nodes, nhid, dropout, lrate, wdecay, device, supports,
                 gcn_bool, addaptadj, aptinit):
        self.model = gwnet(device, num_nodes, dropout, supports=supports, gcn_bool=gcn_bool, addaptadj=addaptadj,
                           aptinit=aptinit, in_dim=in_dim, out_dim=seq_length, residual_channels=nhid,
                           dilation_channels=nhid, skip_channels=nhid * 2, end_channels=nhid * 4)
        self.model.to(device)
        self.optimizer = optim.Adam(self.model.parameters(), lr=lrate, weight_decay=wdecay)
        self.loss = masked_mae
        self.scaler = scaler
        self.clip = 5

    def train(self, input, real_val):
        self.model.train()
        self.optimizer.zero_grad()
        input = nn.functional.pad(input, (1, 0, 0, 0))
        output = self.model(input)
        output = output.transpose(1, 3)
        # output = [batch_size,12,num_nodes,1]
        real = torch.unsqueeze(real_val, dim=1)
        predict = self.scaler.inverse_transform(output)

        loss = self.loss(predict, real, 0.0)
        loss.backward()
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        mape = masked_mape(predict, real, 0.0).item()
        rmse = masked_rmse(predict, real, 0.0).item()
        return loss.item(), mape, rmse

    def eval(self, input, real_val):
        self.model.eval()
        input = nn.functional.pad(input, (1, 0, 0, 0))
        output = self.model(input)
        output = output.transpose(1, 3)
        real = torch.unsqueeze(real_val, dim=1)
        predict = self.scaler.inverse_transform(output)
        loss = self.loss(predict, real, 0.0)
        mape = masked_mape(predict, real, 0.0).item()
        rmse = masked_rmse(predict, real, 0.0).item()
        return loss.item(), mape, rmse


device = torch.device('cpu')
scaler = StandardScaler(mean=x_train[..., 0].mean(), std=x_train[..., 0].std())
x_train[..., 0] = scaler.transform(x_train[..., 0])
x_test_scaled = x_test.copy()
x_test_scaled[..., 0] = scaler.transform(x_test[..., 0])
supports = [torch.tensor(i).to(device) for i in [asym_adj(adj_mx), asym_adj(np.transpose(adj_mx))]]
print(f"windows: train {x_train.shape} test {x_test.shape}  supports {len(supports)} x {tuple(supports[0].shape)}")

engine = trainer(scaler, 2, HORIZON, NUM_NODES, 16, 0.3, 3e-3, 1e-4, device, supports, True, True, None)
print(f"receptive field {engine.model.receptive_field}  parameters "
      f"{sum(p.nelement() for p in engine.model.parameters())}")

# nconv's einsum is the matmul form: (n, c, l, v) @ (v, w) moved back to (n, c, w, l)
probe = torch.randn(4, 16, NUM_NODES, 7)
A = supports[0]
by_einsum = engine.model.gconv[0].nconv(probe, A)
by_matmul = torch.matmul(probe.transpose(2, 3), A).transpose(2, 3)
nconv_err = (by_einsum - by_matmul).abs().max().item()
assert by_einsum.is_contiguous() and by_einsum.shape == (4, 16, NUM_NODES, 7)
assert torch.allclose(by_einsum, by_matmul, atol=1e-5), nconv_err
print(f"nconv: einsum == matmul form, max err {nconv_err:.1e}")

trainx_all = torch.Tensor(x_train).to(device)
trainy_all = torch.Tensor(y_train).to(device)
testx = torch.Tensor(x_test_scaled).to(device).transpose(1, 3)
testy = torch.Tensor(y_test).to(device).transpose(1, 3)
batch_size, epochs = 64, 4
for epoch in range(1, epochs + 1):
    train_loss, train_mape, train_rmse = [], [], []
    perm = torch.randperm(len(trainx_all))
    for it in range(len(perm) // batch_size):
        idx = perm[it * batch_size:(it + 1) * batch_size]
        trainx = trainx_all[idx].transpose(1, 3)  # (B, in_dim, nodes, seq)
        trainy = trainy_all[idx].transpose(1, 3)  # (B, 1, nodes, horizon)
        metrics = engine.train(trainx, trainy[:, 0, :, :])
        train_loss.append(metrics[0])
        train_mape.append(metrics[1])
        train_rmse.append(metrics[2])
    with torch.no_grad():
        valid_loss, valid_mape, valid_rmse = engine.eval(testx, testy[:, 0, :, :])
    log = 'Epoch: {:03d}, Train Loss: {:.4f}, Train MAPE: {:.4f}, Train RMSE: {:.4f}, Valid Loss: {:.4f}, ' \
          'Valid MAPE: {:.4f}, Valid RMSE: {:.4f}'
    print(log.format(epoch, np.mean(train_loss), np.mean(train_mape), np.mean(train_rmse), valid_loss, valid_mape,
                     valid_rmse), flush=True)

adp = engine.model.adaptive_adjacency()
row_err = (adp.sum(1) - 1).abs().max().item()
assert adp.shape == (NUM_NODES, NUM_NODES) and (adp >= 0).all()
assert row_err < 1e-5, row_err

# test: per-horizon metrics against the last observed value
engine.model.eval()
with torch.no_grad():
    preds = engine.model(testx).transpose(1, 3)  # 6 steps in, padded to the receptive field inside
yhat = preds.squeeze()  # (B, nodes, horizon)
realy = torch.Tensor(y_test).transpose(1, 3)[:, 0, :, :]
last_value = torch.Tensor(x_test[:, -1, :, :1]).expand_as(realy)
for i in range(HORIZON):
    pred = scaler.inverse_transform(yhat[:, :, i])
    mae, mape, rmse = metric(pred, realy[:, :, i])
    base_mae, _, _ = metric(last_value[:, :, i], realy[:, :, i])
    print(f"Horizon {i + 1}: MAE {mae:.4f} MAPE {mape:.4f} RMSE {rmse:.4f}  last-value MAE {base_mae:.4f}")
model_mae = metric(scaler.inverse_transform(yhat), realy)[0]
baseline_mae = metric(last_value, realy)[0]
assert model_mae < baseline_mae, (model_mae, baseline_mae)
print(f"FINAL test_mae={model_mae:.4f} baseline_ratio={model_mae / baseline_mae:.4f} "
      f"adp_row_err={row_err:.6f} nconv_err={nconv_err:.6f}")
