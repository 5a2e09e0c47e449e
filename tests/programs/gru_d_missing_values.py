"""GRU-D (Che et al., Scientific Reports 2018) in the layout of the common PyTorch ports (zhiyongc/GRU-D),
on a synthetic irregularly-observed multivariate series classification task.

Each series has four channels sampled at irregular timestamps (``torch.cumsum`` of random gaps); each
channel is observed through its own random missing mask, and the label depends both on the values (a
drift in channel 0) and on the missingness pattern (channel 2 is measured more often for positives), so
the mask itself is informative. The inputs are built as the paper defines them: ``Delta`` (time since the
last observation) by a loop over time, ``X_last_obsv`` by a loop and again by ``torch.cummax`` of observed
indices + ``torch.gather`` (the two must be equal), and the empirical mean over observed entries.

The cell is hand-written as an ``nn.Module``: ``nn.Linear`` gates on ``torch.cat((x, h, mask), 1)``, an
input decay through ``FilterLinear`` (a diagonal-masked linear layer with ``register_buffer`` of an
identity mask and ``F.linear(input, self.filter_square_matrix.mul(self.weight), self.bias)``), the decays
``torch.exp(-torch.max(self.zeros, self.gamma_x_l(delta)))``, the imputation ``x = mask * x + (1 - mask) *
(delta_x * x_last_obsv + (1 - delta_x) * x_mean)``, ``F.sigmoid``/``F.tanh`` gates, and a ``for`` loop over
time with ``torch.squeeze`` slices and the outputs ``unsqueeze(1)``-ed and ``torch.cat``-ed. Training uses
``nn.BCEWithLogitsLoss(pos_weight=...)``, Adam with ``lr_scheduler.StepLR`` and ``clip_grad_norm_``;
evaluation runs under ``torch.no_grad()`` with ROC-AUC computed by hand from ``argsort`` ranks. The
baseline is a plain ``nn.GRU(batch_first=True)`` on zero-imputed input concatenated with the mask.

Checked: both test AUCs, and that the GRU-D cell with an all-ones mask and zero deltas (decay biases
zeroed) reduces to a standard GRU built from the same weights by ``F.linear`` (Cho et al.'s, reset gate
before the candidate's matmul) and, once the candidate's hidden weights are zeroed (where torch's
reset-after-matmul convention coincides), to ``nn.GRUCell`` loaded with those weights (``torch.allclose``).
"""

# ruff: noqa: UP008  (the ports' own spelling: super(Class, self))

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parameter import Parameter

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

N_SAMPLES, T, D = 560, 16, 4
HIDDEN = 24


# ----------------------------------------------------------------------------------- data
def make_dataset(n):
    labels = (torch.rand(n) < 0.35).float()
    gaps = 0.5 + torch.rand(n, T)
    timestamps = torch.cumsum(gaps, dim=1)
    timestamps = timestamps - timestamps[:, :1]
    phase = torch.rand(n, 1, D) * 2 * math.pi
    freq = 0.3 + 0.2 * torch.rand(n, 1, D)
    X = torch.sin(freq * timestamps.unsqueeze(-1) + phase)
    drift = (0.05 * (2 * labels - 1) + 0.06 * torch.randn(n)).view(n, 1)
    X[:, :, 0] += drift * timestamps
    X = X + 0.3 * torch.randn(n, T, D)
    obs_rate = torch.tensor([0.6, 0.5, 0.35, 0.7]).repeat(n, 1)
    obs_rate[:, 2] += 0.2 * labels + 0.1 * torch.randn(n)
    Mask = (torch.rand(n, T, D) < obs_rate.clamp(0.05, 0.95).unsqueeze(1)).float()
    Mask[:, 0, :] = torch.where(Mask[:, 0, :].sum(1, keepdim=True) > 0, Mask[:, 0, :], torch.ones(D))
    return X, Mask, timestamps, labels


def compute_delta(Mask, timestamps):
    # the paper's definition: s_t - s_{t-1} + delta_{t-1} if the value was missing at t-1
    n = Mask.size(0)
    Delta = torch.zeros(n, T, D)
    for t in range(1, T):
        step = (timestamps[:, t] - timestamps[:, t - 1]).unsqueeze(1)
        Delta[:, t] = step + (1 - Mask[:, t - 1]) * Delta[:, t - 1]
    return Delta


def last_observed_loop(X, Mask, x_mean):
    X_last = torch.zeros_like(X)
    last = x_mean.expand(X.size(0), D).clone()
    for t in range(T):
        last = torch.where(Mask[:, t] > 0, X[:, t], last)
        X_last[:, t] = last
    return X_last


def last_observed_cummax(X, Mask, x_mean):
    idx = torch.arange(T).view(1, T, 1).expand_as(Mask)
    observed_idx = torch.where(Mask.bool(), idx, torch.full_like(idx, -1))
    last_idx = torch.cummax(observed_idx, dim=1).values
    gathered = torch.gather(X, 1, last_idx.clamp(min=0))
    return torch.where(last_idx >= 0, gathered, x_mean.expand_as(X))


X, Mask, timestamps, labels = make_dataset(N_SAMPLES)
Delta = compute_delta(Mask, timestamps)
x_mean = (X * Mask).sum(dim=(0, 1)) / Mask.sum(dim=(0, 1))
X_last_obsv = last_observed_loop(X, Mask, x_mean)
same_last = torch.equal(X_last_obsv, last_observed_cummax(X, Mask, x_mean))
X = torch.where(Mask.bool(), X, torch.zeros_like(X))  # missing entries are unknown to the model
print(f"data: {N_SAMPLES} series, T={T}, D={D}, observed {Mask.mean().item():.3f}, positives {labels.mean().item():.3f}")
print(f"last-observation loop == cummax/gather: {same_last}")
delta_scale = Delta.max()
Delta = Delta / delta_scale

inputs = torch.stack([X, X_last_obsv, Mask, Delta], dim=1)  # (N, 4, T, D) as the ports pack them
n_train = 400
train_in, test_in = inputs[:n_train], inputs[n_train:]
train_y, test_y = labels[:n_train], labels[n_train:]


# ----------------------------------------------------------------------------------- model
class FilterLinear(nn.Module):
    def __init__(self, in_features, out_features, filter_square_matrix, bias=True):
        super(FilterLinear, self).__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer("filter_square_matrix", filter_square_matrix)
        self.weight = Parameter(torch.Tensor(out_features, in_features))
        if bias:
            self.bias = Parameter(torch.Tensor(out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.weight.size(1))
        self.weight.data.uniform_(-stdv, stdv)
        if self.bias is not None:
            self.bias.data.uniform_(-stdv, stdv)

    def forward(self, input):
        return F.linear(input, self.filter_square_matrix.mul(self.weight), self.bias)

    def __repr__(self):
        return self.__class__.__name__ + "(in_features=" + str(self.in_features) + ", out_features=" + str(self.out_features) + ", bias=" + str(self.bias is not None) + ")"


class GRUD(nn.Module):
    def __init__(self, input_size, hidden_size, X_mean):
        super(GRUD, self).__init__()
        self.hidden_size = hidden_size
        self.delta_size = input_size
        self.mask_size = input_size
        self.identity = torch.eye(input_size)
        self.register_buffer("zeros", torch.zeros(input_size))
        self.register_buffer("X_mean", X_mean.clone())
        self.zl = nn.Linear(input_size + hidden_size + self.mask_size, hidden_size)
        self.rl = nn.Linear(input_size + hidden_size + self.mask_size, hidden_size)
        self.hl = nn.Linear(input_size + hidden_size + self.mask_size, hidden_size)
        self.gamma_x_l = FilterLinear(self.delta_size, self.delta_size, self.identity)
        self.gamma_h_l = nn.Linear(self.delta_size, self.hidden_size)

    def step(self, x, x_last_obsv, x_mean, h, mask, delta):
        delta_x = torch.exp(-torch.max(self.zeros, self.gamma_x_l(delta)))
        delta_h = torch.exp(-torch.max(torch.zeros_like(h), self.gamma_h_l(delta)))
        x = mask * x + (1 - mask) * (delta_x * x_last_obsv + (1 - delta_x) * x_mean)
        h = delta_h * h
        combined = torch.cat((x, h, mask), 1)
        z = F.sigmoid(self.zl(combined))
        r = F.sigmoid(self.rl(combined))
        combined_r = torch.cat((x, r * h, mask), 1)
        h_tilde = F.tanh(self.hl(combined_r))
        h = (1 - z) * h + z * h_tilde
        return h

    def forward(self, input):
        batch_size = input.size(0)
        step_size = input.size(2)
        Hidden_State = self.initHidden(batch_size)
        X = torch.squeeze(input[:, 0, :, :])
        X_last_obsv = torch.squeeze(input[:, 1, :, :])
        Mask = torch.squeeze(input[:, 2, :, :])
        Delta = torch.squeeze(input[:, 3, :, :])
        outputs = None
        for i in range(step_size):
            Hidden_State = self.step(
                torch.squeeze(X[:, i : i + 1, :], 1),
                torch.squeeze(X_last_obsv[:, i : i + 1, :], 1),
                self.X_mean.unsqueeze(0),
                Hidden_State,
                torch.squeeze(Mask[:, i : i + 1, :], 1),
                torch.squeeze(Delta[:, i : i + 1, :], 1),
            )
            if outputs is None:
                outputs = Hidden_State.unsqueeze(1)
            else:
                outputs = torch.cat((outputs, Hidden_State.unsqueeze(1)), 1)
        return outputs

    def initHidden(self, batch_size):
        return torch.zeros(batch_size, self.hidden_size)


class GRUDClassifier(nn.Module):
    def __init__(self, input_size, hidden_size, X_mean):
        super().__init__()
        self.grud = GRUD(input_size, hidden_size, X_mean)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, input):
        outputs = self.grud(input)
        return self.fc(outputs[:, -1, :]).squeeze(-1)


class GRUBaseline(nn.Module):
    """Zero-imputed values beside the mask, read by a plain nn.GRU."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.gru = nn.GRU(2 * input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, input):
        x = torch.cat([input[:, 0] * input[:, 2], input[:, 2]], dim=-1)
        _, h_n = self.gru(x)
        return self.fc(h_n[-1]).view(-1)


def roc_auc(scores, y):
    # Mann-Whitney: the average rank of positives among all scores
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    return ((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def train(model, name, epochs=10, batch_size=32):
    pos_weight = torch.tensor([(1 - train_y.mean()) / train_y.mean()])
    criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    first_loss = None
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n_train)
        running, batches = 0.0, 0
        for i in range(0, n_train, batch_size):
            idx = perm[i : i + batch_size]
            optimizer.zero_grad()
            loss = criterion(model(train_in[idx]), train_y[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            running += loss.item()
            batches += 1
        scheduler.step()
        if first_loss is None:
            first_loss = running / batches
        if epoch % 3 == 2 or epoch == epochs - 1:
            model.eval()
            with torch.no_grad():
                auc = roc_auc(torch.sigmoid(model(test_in)), test_y)
            print(f"{name} epoch {epoch + 1:2d} loss {running / batches:.4f} lr {scheduler.get_last_lr()[0]:.5f} test auc {auc:.4f}")
    return first_loss, running / batches, auc


grud = GRUDClassifier(D, HIDDEN, x_mean)
print(grud.grud.gamma_x_l)
grud_first, grud_last, grud_auc = train(grud, "GRU-D")
gru = GRUBaseline(D, HIDDEN)
gru_first, gru_last, gru_auc = train(gru, "GRU")
print(f"GRU-D loss {grud_first:.4f} -> {grud_last:.4f}, GRU loss {gru_first:.4f} -> {gru_last:.4f}")

# ----------------------------------------------------------------------------------- GRU-D == GRU
# With every value observed and no time elapsed, the decays are exp(-max(0, bias)); zero those biases
# and GRU-D is Cho et al.'s GRU (reset gate applied to h before the candidate's matmul) whose mask
# columns fold into the input bias. nn.GRUCell applies the reset gate after that matmul, so it agrees
# exactly once the candidate's hidden weights are zero; its update gate is GRU-D's negated.
cell = GRUD(D, HIDDEN, x_mean)
with torch.no_grad():
    cell.gamma_x_l.bias.zero_()
    cell.gamma_h_l.bias.zero_()
ref = nn.GRUCell(D, HIDDEN)


def split(linear):
    w = linear.weight
    return w[:, :D], w[:, D : D + HIDDEN], w[:, D + HIDDEN :].sum(1) + linear.bias


def cho_gru(seq, r_x, r_h, r_b, z_x, z_h, z_b, n_x, n_h, n_b):
    h = torch.zeros(seq.size(0), HIDDEN)
    outs = []
    for x in seq.unbind(1):
        r = torch.sigmoid(F.linear(x, r_x, r_b) + F.linear(h, r_h))
        z = torch.sigmoid(F.linear(x, z_x, z_b) + F.linear(h, z_h))
        n = torch.tanh(F.linear(x, n_x, n_b) + F.linear(r * h, n_h))
        h = (1 - z) * h + z * n
        outs.append(h)
    return torch.stack(outs, dim=1)


def grucell_run(seq):
    h = torch.zeros(seq.size(0), HIDDEN)
    outs = []
    for t in range(seq.size(1)):
        h = ref(seq[:, t], h)
        outs.append(h)
    return torch.stack(outs, dim=1)


with torch.no_grad():
    seq = torch.randn(8, T, D)
    full = torch.stack([seq, seq, torch.ones_like(seq), torch.zeros_like(seq)], dim=1)
    weights = split(cell.rl) + split(cell.zl) + split(cell.hl)
    same_as_cho = torch.allclose(cell(full), cho_gru(seq, *weights), atol=1e-6)
    cell.hl.weight[:, D : D + HIDDEN] = 0
    r_x, r_h, r_b, z_x, z_h, z_b, n_x, n_h, n_b = split(cell.rl) + split(cell.zl) + split(cell.hl)
    ref.weight_ih.copy_(torch.cat([r_x, -z_x, n_x], 0))
    ref.weight_hh.copy_(torch.cat([r_h, -z_h, n_h], 0))
    ref.bias_ih.copy_(torch.cat([r_b, -z_b, n_b], 0))
    ref.bias_hh.zero_()
    grud_out = cell(full)
    same_as_grucell = torch.allclose(grud_out, grucell_run(seq), atol=1e-6)
reduces = same_as_cho and same_as_grucell
print(f"GRU-D outputs {tuple(grud_out.shape)} with full mask == Cho GRU: {same_as_cho}, == nn.GRUCell: {same_as_grucell}")

print(f"FINAL grud_auc={grud_auc:.4f} gru_auc={gru_auc:.4f} reduces_to_grucell={int(reduces and same_last)}")
