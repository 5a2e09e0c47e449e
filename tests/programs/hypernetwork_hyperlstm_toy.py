"""HyperNetworks (Ha, Dai & Le, ICLR 2017) in the layout of g1910/HyperNetworks (static, for convolutions)
and labml's annotated HyperLSTM (dynamic), at toy sizes.

Static: ``HyperNetwork`` maps a learned embedding ``z`` to a ``(out_size, in_size, f, f)`` kernel by two
affine maps (``torch.matmul(z, self.w2) + self.b2``, ``.view(self.in_size, self.z_dim)``, ``torch.matmul(h_in,
self.w1) + self.b1``, ``.view(...)``), with parameters from ``torch.fmod(torch.randn(...), 2)``. ``Embedding``
holds a grid of ``z`` vectors in an ``nn.ParameterList`` and tiles the generated blocks into a larger kernel by
``torch.cat`` over the grid, so a 16->16 layer is four 8->8 blocks. A small residual classifier runs
``F.conv2d(x, w, padding=1)`` with the generated kernels on synthetic 8x8 oriented-stripe images.

Checked: the generated weights' gradient routes to the embeddings and the hypernetwork: the loss is taken once
through the hypernetwork and once through a direct-parameter network holding the same weights as leaves, and
the hypernetwork's parameter gradients equal ``torch.autograd.grad(weights, params, grad_outputs=leaf grads)``.
Then the hypernetwork classifier is trained (Adam) and its accuracy reported.

Dynamic: a ``HyperLSTMCell`` whose small hyper ``nn.LSTMCell`` reads ``torch.cat((h, x))`` and emits ``z``
vectors (``chunk(4, dim=-1)``), scaled per gate into weight-scaling vectors ``d = W_z z``, with ``d_h *
torch.einsum('ij,bj->bi', self.w_h[i], h) + d_x * torch.einsum(...) + b`` and per-gate ``nn.LayerNorm``; it
and an ``nn.LSTM`` of similar size are trained on the adding problem (two marked positions in a sequence).
"""

# ruff: noqa: UP008, UP034  (the repo's own spelling: super(Class, self), torch.randn((a, b)))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import Parameter

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ----------------------------------------------------------------------------------- static hypernetwork
class HyperNetwork(nn.Module):
    def __init__(self, f_size=3, z_dim=16, out_size=8, in_size=8):
        super(HyperNetwork, self).__init__()
        self.z_dim = z_dim
        self.f_size = f_size
        self.out_size = out_size
        self.in_size = in_size

        self.w1 = Parameter(torch.fmod(torch.randn((self.z_dim, self.out_size * self.f_size * self.f_size)), 2) * 0.1)
        self.b1 = Parameter(torch.fmod(torch.randn((self.out_size * self.f_size * self.f_size)), 2) * 0.1)

        self.w2 = Parameter(torch.fmod(torch.randn((self.z_dim, self.in_size * self.z_dim)), 2) * 0.1)
        self.b2 = Parameter(torch.fmod(torch.randn((self.in_size * self.z_dim)), 2) * 0.1)

    def forward(self, z):
        h_in = torch.matmul(z, self.w2) + self.b2
        h_in = h_in.view(self.in_size, self.z_dim)

        h_final = torch.matmul(h_in, self.w1) + self.b1
        kernel = h_final.view(self.out_size, self.in_size, self.f_size, self.f_size)

        return kernel


class Embedding(nn.Module):
    def __init__(self, z_num, z_dim):
        super(Embedding, self).__init__()

        self.z_list = nn.ParameterList()
        self.z_num = z_num
        self.z_dim = z_dim

        h, k = self.z_num

        for _ in range(h * k):
            self.z_list.append(Parameter(torch.fmod(torch.randn(self.z_dim), 2)))

    def forward(self, hyper_net):
        ww = []
        h, k = self.z_num
        for i in range(h):
            w = []
            for j in range(k):
                w.append(hyper_net(self.z_list[i * k + j]))
            ww.append(torch.cat(w, dim=1))
        return torch.cat(ww, dim=0)


class ResNetBlock(nn.Module):
    def __init__(self, in_size=8, out_size=8):
        super(ResNetBlock, self).__init__()
        self.bn1 = nn.BatchNorm2d(out_size)
        self.bn2 = nn.BatchNorm2d(out_size)
        self.reslayer = in_size != out_size

    def forward(self, x, conv1_w, conv2_w):
        residual = x
        out = F.relu(self.bn1(F.conv2d(x, conv1_w, padding=1)))
        out = self.bn2(F.conv2d(out, conv2_w, padding=1))
        if self.reslayer:
            diff = out.size(1) - x.size(1)
            residual = torch.cat((residual, torch.zeros(x.size(0), diff, x.size(2), x.size(3))), 1)
        out = out + residual
        return F.relu(out)


class PrimaryNetwork(nn.Module):
    def __init__(self, z_dim=16):
        super(PrimaryNetwork, self).__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.z_dim = z_dim
        self.hope = HyperNetwork(z_dim=self.z_dim)

        self.zs_size = [[1, 1], [1, 1], [2, 1], [2, 2]]
        self.filter_size = [[8, 8], [8, 16], [16, 16]]
        self.res_net = nn.ModuleList()
        for i in range(2):
            self.res_net.append(ResNetBlock(self.filter_size[i][0], self.filter_size[i][1]))

        self.zs = nn.ModuleList()
        for i in range(4):
            self.zs.append(Embedding(self.zs_size[i], self.z_dim))

        self.global_avg = nn.AdaptiveAvgPool2d(1)
        self.final = nn.Linear(16, 2)

    def generated_weights(self):
        return [self.zs[i](self.hope) for i in range(4)]

    def forward(self, x, weights=None):
        if weights is None:
            weights = self.generated_weights()
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(2):
            x = self.res_net[i](x, weights[2 * i], weights[2 * i + 1])
        x = self.global_avg(x)
        x = self.final(x.view(-1, 16))
        return x


def stripes(n):
    x = np.random.randn(n, 1, 8, 8).astype(np.float32) * 0.6
    y = np.random.randint(0, 2, size=n)
    phase = np.random.randint(0, 2, size=n)
    idx = np.arange(8)
    for i in range(n):
        pattern = ((idx + phase[i]) % 2).astype(np.float32) * 2 - 1
        x[i, 0] += pattern[:, None] if y[i] else pattern[None, :]
    return torch.from_numpy(x), torch.from_numpy(y)


net = PrimaryNetwork()
weights = net.generated_weights()
print("generated kernels:", [tuple(w.shape) for w in weights])
xb, yb = stripes(32)

# gradients through the hypernetwork
net.zero_grad()
F.cross_entropy(net(xb), yb).backward()
hyper_params = list(net.hope.parameters()) + [z for emb in net.zs for z in emb.z_list]
through_hyper = [p.grad.clone() for p in hyper_params]

# the direct-parameter network: the same kernels as leaves
net.zero_grad()
leaves = [w.detach().clone().requires_grad_(True) for w in weights]
loss_direct = F.cross_entropy(net(xb, leaves), yb)
loss_direct.backward()
routed = torch.autograd.grad(weights, hyper_params, grad_outputs=[w.grad for w in leaves])
max_diff = max((a - b).abs().max().item() for a, b in zip(through_hyper, routed))
agree = all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(through_hyper, routed))
print(f"hypernetwork gradients equal the routed direct-network gradients: {agree} (max diff {max_diff:.1e})")
assert agree
n_hyper = sum(p.numel() for p in hyper_params)
n_direct = sum(w.numel() for w in weights)
print(f"hyper parameters {n_hyper} for {n_direct} kernel weights")

optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
x_train, y_train = stripes(512)
x_test, y_test = stripes(256)
for epoch in range(4):
    net.train()
    perm = torch.randperm(512)
    total = 0.0
    for start in range(0, 512, 64):
        idx = perm[start:start + 64]
        optimizer.zero_grad()
        loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
        total += loss.item()
    net.eval()
    with torch.no_grad():
        acc = (net(x_test).argmax(1) == y_test).float().mean().item()
    print(f"hyper-cnn epoch {epoch} loss {total / 8:.4f} test acc {acc:.3f}")
hyper_acc = acc


# ----------------------------------------------------------------------------------- HyperLSTM
class HyperLSTMCell(nn.Module):
    def __init__(self, input_size, hidden_size, hyper_size, n_z):
        super().__init__()
        self.hyper = nn.LSTMCell(hidden_size + input_size, hyper_size)

        self.z_h = nn.Linear(hyper_size, 4 * n_z)
        self.z_x = nn.Linear(hyper_size, 4 * n_z)
        self.z_b = nn.Linear(hyper_size, 4 * n_z, bias=False)

        d_h = [nn.Linear(n_z, hidden_size, bias=False) for _ in range(4)]
        self.d_h = nn.ModuleList(d_h)
        d_x = [nn.Linear(n_z, hidden_size, bias=False) for _ in range(4)]
        self.d_x = nn.ModuleList(d_x)
        d_b = [nn.Linear(n_z, hidden_size) for _ in range(4)]
        self.d_b = nn.ModuleList(d_b)

        self.w_h = nn.Parameter(torch.randn(4, hidden_size, hidden_size) / hidden_size ** 0.5)
        self.w_x = nn.Parameter(torch.randn(4, hidden_size, input_size) / input_size ** 0.5)

        self.layer_norm = nn.ModuleList([nn.LayerNorm(hidden_size) for _ in range(4)])
        self.layer_norm_c = nn.LayerNorm(hidden_size)

    def forward(self, x, h, c, h_hat, c_hat):
        x_hat = torch.cat((h, x), dim=-1)
        h_hat, c_hat = self.hyper(x_hat, (h_hat, c_hat))

        z_h = self.z_h(h_hat).chunk(4, dim=-1)
        z_x = self.z_x(h_hat).chunk(4, dim=-1)
        z_b = self.z_b(h_hat).chunk(4, dim=-1)

        ifgo = []
        for i in range(4):
            d_h = self.d_h[i](z_h[i])
            d_x = self.d_x[i](z_x[i])
            y = d_h * torch.einsum("ij,bj->bi", self.w_h[i], h) + \
                d_x * torch.einsum("ij,bj->bi", self.w_x[i], x) + \
                self.d_b[i](z_b[i])
            ifgo.append(self.layer_norm[i](y))

        i, f, g, o = ifgo
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_next = torch.sigmoid(o) * torch.tanh(self.layer_norm_c(c_next))
        return h_next, c_next, h_hat, c_hat


class HyperLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, hyper_size, n_z):
        super().__init__()
        self.hidden_size, self.hyper_size = hidden_size, hyper_size
        self.cell = HyperLSTMCell(input_size, hidden_size, hyper_size, n_z)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        n_steps, batch_size = x.shape[:2]
        h = x.new_zeros(batch_size, self.hidden_size)
        c = x.new_zeros(batch_size, self.hidden_size)
        h_hat = x.new_zeros(batch_size, self.hyper_size)
        c_hat = x.new_zeros(batch_size, self.hyper_size)
        for t in range(n_steps):
            h, c, h_hat, c_hat = self.cell(x[t], h, c, h_hat, c_hat)
        return self.head(h).squeeze(-1)


class PlainLSTM(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[-1]).squeeze(-1)


def adding_problem(n, T=6):
    values = np.random.rand(T, n).astype(np.float32)
    marks = np.zeros((T, n), dtype=np.float32)
    for b in range(n):
        i, j = np.random.choice(T, 2, replace=False)
        marks[i, b] = marks[j, b] = 1.0
    x = torch.from_numpy(np.stack([values, marks], axis=-1))
    y = torch.from_numpy((values * marks).sum(0))
    return x, y


x_seq, y_seq = adding_problem(256)
x_seq_test, y_seq_test = adding_problem(256)
baseline_mse = ((y_seq_test - y_seq.mean()) ** 2).mean().item()
results = {}
for name, model in (("hyperlstm", HyperLSTM(2, 16, 8, 4)), ("lstm", PlainLSTM(2, 20))):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        idx = torch.randint(0, 256, (32,))
        optimizer.zero_grad()
        loss = F.mse_loss(model(x_seq[:, idx]), y_seq[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    with torch.no_grad():
        results[name] = F.mse_loss(model(x_seq_test), y_seq_test).item()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"adding problem {name}: {n_params} parameters, test mse {results[name]:.4f} "
          f"(predict-the-mean {baseline_mse:.4f})")

print(f"FINAL hyper_acc={hyper_acc:.4f} grad_diff={max_diff:.2e} hyperlstm_mse={results['hyperlstm']:.4f} "
      f"lstm_mse={results['lstm']:.4f} mean_mse={baseline_mse:.4f}")
