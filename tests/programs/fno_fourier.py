"""The Fourier Neural Operator as zongyi-li/fourier_neural_operator writes it (fourier_1d.py, fourier_2d.py,
utilities3.py), learning the solution operator of the periodic heat equation u_t = nu u_xx on synthetic data.

``SpectralConv1d``/``SpectralConv2d`` with complex weights ``nn.Parameter(self.scale * torch.rand(in, out,
modes, dtype=torch.cfloat))``, ``torch.fft.rfft``/``rfft2`` of the input, ``compl_mul1d`` by
``torch.einsum("bix,iox->box", ...)`` (and ``"bixy,ioxy->boxy"``) on complex tensors, an output buffer
``torch.zeros(batchsize, out_channels, x.size(-1)//2 + 1, dtype=torch.cfloat)`` filled by slice assignment
(the 2-d one at ``[:, :, :modes1, :modes2]`` and ``[:, :, -modes1:, :modes2]``), ``torch.fft.irfft(out_ft,
n=x.size(-1))`` and ``irfft2(out_ft, s=(x.size(-2), x.size(-1)))``; ``FNO1d``/``FNO2d`` lifting by
``nn.Linear`` on ``torch.cat((x, grid), dim=-1)`` with ``get_grid`` by ``np.linspace`` (1-d) and
``torch.linspace(...).reshape(...).repeat([...])`` (2-d), ``permute``, 1x1 ``nn.Conv1d``/``Conv2d`` skips,
``F.gelu``, ``F.pad`` for the non-periodic 2-d domain cut back by ``x[..., :-self.padding, :-self.padding]``;
utilities3's ``LpLoss`` (relative L2 by ``torch.norm(x.reshape(n, -1) - y.reshape(n, -1), self.p, 1)``),
``UnitGaussianNormalizer`` and ``count_params`` (``p.size() + (2,)`` for complex parameters); Adam with
weight decay on complex parameters, ``StepLR``, a ``DataLoader`` over ``TensorDataset``, and the
``F.mse_loss(out.view(batch_size, -1), ...)`` beside the L2 loss, as the training loop prints them.
The exact solution is computed by NumPy's FFT: each Fourier mode decays by exp(-nu k^2 T).
"""

import operator
import os
from functools import reduce

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import Adam

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ----------------------------------------------------------------- utilities3.py
class LpLoss(object):  # noqa: UP004  (the repository's spelling)
    def __init__(self, d=2, p=2, size_average=True, reduction=True):
        super(LpLoss, self).__init__()  # noqa: UP008

        # Dimension and Lp-norm type are postive
        assert d > 0 and p > 0

        self.d = d
        self.p = p
        self.reduction = reduction
        self.size_average = size_average

    def abs(self, x, y):
        num_examples = x.size()[0]

        # Assume uniform mesh
        h = 1.0 / (x.size()[1] - 1.0)

        all_norms = (h**(self.d / self.p)) * torch.norm(x.view(num_examples, -1) - y.view(num_examples, -1), self.p, 1)

        if self.reduction:
            if self.size_average:
                return torch.mean(all_norms)
            else:
                return torch.sum(all_norms)

        return all_norms

    def rel(self, x, y):
        num_examples = x.size()[0]

        diff_norms = torch.norm(x.reshape(num_examples, -1) - y.reshape(num_examples, -1), self.p, 1)
        y_norms = torch.norm(y.reshape(num_examples, -1), self.p, 1)

        if self.reduction:
            if self.size_average:
                return torch.mean(diff_norms / y_norms)
            else:
                return torch.sum(diff_norms / y_norms)

        return diff_norms / y_norms

    def __call__(self, x, y):
        return self.rel(x, y)


class UnitGaussianNormalizer(object):  # noqa: UP004
    def __init__(self, x, eps=0.00001):
        super(UnitGaussianNormalizer, self).__init__()  # noqa: UP008

        # x could be in shape of ntrain*n or ntrain*T*n or ntrain*n*T
        self.mean = torch.mean(x, 0)
        self.std = torch.std(x, 0)
        self.eps = eps

    def encode(self, x):
        x = (x - self.mean) / (self.std + self.eps)
        return x

    def decode(self, x, sample_idx=None):
        std = self.std + self.eps  # n
        mean = self.mean
        # x is in shape of batch*n or T*batch*n
        x = (x * std) + mean
        return x


def count_params(model):
    c = 0
    for p in list(model.parameters()):
        c += reduce(operator.mul, list(p.size() + (2,) if p.is_complex() else p.size()))
    return c


# ----------------------------------------------------------------- fourier_1d.py
class SpectralConv1d(nn.Module):
    def __init__(self, in_channels, out_channels, modes1):
        super(SpectralConv1d, self).__init__()  # noqa: UP008

        """
        1D Fourier layer. It does FFT, linear transform, and Inverse FFT.
        """

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes1 = modes1  # Number of Fourier modes to multiply, at most floor(N/2) + 1

        self.scale = (1 / (in_channels * out_channels))
        self.weights1 = nn.Parameter(self.scale * torch.rand(in_channels, out_channels, self.modes1, dtype=torch.cfloat))

    # Complex multiplication
    def compl_mul1d(self, input, weights):
        # (batch, in_channel, x ), (in_channel, out_channel, x) -> (batch, out_channel, x)
        return torch.einsum("bix,iox->box", input, weights)

    def forward(self, x):
        batchsize = x.shape[0]
        # Compute Fourier coeffcients up to factor of e^(- something constant)
        x_ft = torch.fft.rfft(x)

        # Multiply relevant Fourier modes
        out_ft = torch.zeros(batchsize, self.out_channels, x.size(-1) // 2 + 1, device=x.device, dtype=torch.cfloat)
        out_ft[:, :, :self.modes1] = self.compl_mul1d(x_ft[:, :, :self.modes1], self.weights1)

        # Return to physical space
        x = torch.fft.irfft(out_ft, n=x.size(-1))
        return x


class FNO1d(nn.Module):
    def __init__(self, modes, width):
        super(FNO1d, self).__init__()  # noqa: UP008

        self.modes1 = modes
        self.width = width
        self.padding = 2  # pad the domain if input is non-periodic
        self.fc0 = nn.Linear(2, self.width)  # input channel is 2: (a(x), x)

        self.conv0 = SpectralConv1d(self.width, self.width, self.modes1)
        self.conv1 = SpectralConv1d(self.width, self.width, self.modes1)
        self.conv2 = SpectralConv1d(self.width, self.width, self.modes1)
        self.w0 = nn.Conv1d(self.width, self.width, 1)
        self.w1 = nn.Conv1d(self.width, self.width, 1)
        self.w2 = nn.Conv1d(self.width, self.width, 1)

        self.fc1 = nn.Linear(self.width, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x):
        grid = self.get_grid(x.shape, x.device)
        x = torch.cat((x, grid), dim=-1)
        x = self.fc0(x)
        x = x.permute(0, 2, 1)
        # x = F.pad(x, [0,self.padding]) # pad the domain if input is non-periodic

        x1 = self.conv0(x)
        x2 = self.w0(x)
        x = x1 + x2
        x = F.gelu(x)

        x1 = self.conv1(x)
        x2 = self.w1(x)
        x = x1 + x2
        x = F.gelu(x)

        x1 = self.conv2(x)
        x2 = self.w2(x)
        x = x1 + x2

        # x = x[..., :-self.padding] # pad the domain if input is non-periodic
        x = x.permute(0, 2, 1)
        x = self.fc1(x)
        x = F.gelu(x)
        x = self.fc2(x)
        return x

    def get_grid(self, shape, device):
        batchsize, size_x = shape[0], shape[1]
        gridx = torch.tensor(np.linspace(0, 1, size_x), dtype=torch.float)
        gridx = gridx.reshape(1, size_x, 1).repeat([batchsize, 1, 1])
        return gridx.to(device)


# ----------------------------------------------------------------- fourier_2d.py
class SpectralConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, modes1, modes2):
        super(SpectralConv2d, self).__init__()  # noqa: UP008

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes1 = modes1  # Number of Fourier modes to multiply, at most floor(N/2) + 1
        self.modes2 = modes2

        self.scale = (1 / (in_channels * out_channels))
        self.weights1 = nn.Parameter(
            self.scale * torch.rand(in_channels, out_channels, self.modes1, self.modes2, dtype=torch.cfloat))
        self.weights2 = nn.Parameter(
            self.scale * torch.rand(in_channels, out_channels, self.modes1, self.modes2, dtype=torch.cfloat))

    # Complex multiplication
    def compl_mul2d(self, input, weights):
        # (batch, in_channel, x,y ), (in_channel, out_channel, x,y) -> (batch, out_channel, x,y)
        return torch.einsum("bixy,ioxy->boxy", input, weights)

    def forward(self, x):
        batchsize = x.shape[0]
        # Compute Fourier coeffcients up to factor of e^(- something constant)
        x_ft = torch.fft.rfft2(x)

        # Multiply relevant Fourier modes
        out_ft = torch.zeros(batchsize, self.out_channels, x.size(-2), x.size(-1) // 2 + 1, dtype=torch.cfloat,
                             device=x.device)
        out_ft[:, :, :self.modes1, :self.modes2] = \
            self.compl_mul2d(x_ft[:, :, :self.modes1, :self.modes2], self.weights1)
        out_ft[:, :, -self.modes1:, :self.modes2] = \
            self.compl_mul2d(x_ft[:, :, -self.modes1:, :self.modes2], self.weights2)

        # Return to physical space
        x = torch.fft.irfft2(out_ft, s=(x.size(-2), x.size(-1)))
        return x


class FNO2d(nn.Module):
    def __init__(self, modes1, modes2, width):
        super(FNO2d, self).__init__()  # noqa: UP008

        self.modes1 = modes1
        self.modes2 = modes2
        self.width = width
        self.padding = 2  # pad the domain if input is non-periodic
        self.fc0 = nn.Linear(3, self.width)  # input channel is 3: (a(x, y), x, y)

        self.conv0 = SpectralConv2d(self.width, self.width, self.modes1, self.modes2)
        self.conv1 = SpectralConv2d(self.width, self.width, self.modes1, self.modes2)
        self.w0 = nn.Conv2d(self.width, self.width, 1)
        self.w1 = nn.Conv2d(self.width, self.width, 1)

        self.fc1 = nn.Linear(self.width, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x):
        grid = self.get_grid(x.shape, x.device)
        x = torch.cat((x, grid), dim=-1)
        x = self.fc0(x)
        x = x.permute(0, 3, 1, 2)
        x = F.pad(x, [0, self.padding, 0, self.padding])

        x1 = self.conv0(x)
        x2 = self.w0(x)
        x = x1 + x2
        x = F.gelu(x)

        x1 = self.conv1(x)
        x2 = self.w1(x)
        x = x1 + x2

        x = x[..., :-self.padding, :-self.padding]
        x = x.permute(0, 2, 3, 1)
        x = self.fc1(x)
        x = F.gelu(x)
        x = self.fc2(x)
        return x

    def get_grid(self, shape, device):
        batchsize, size_x, size_y = shape[0], shape[1], shape[2]
        gridx = torch.linspace(0, 1, size_x, dtype=torch.float)
        gridx = gridx.reshape(1, size_x, 1, 1).repeat([batchsize, 1, size_y, 1])
        gridy = torch.linspace(0, 1, size_y, dtype=torch.float)
        gridy = gridy.reshape(1, 1, size_y, 1).repeat([batchsize, size_x, 1, 1])
        return torch.cat((gridx, gridy), dim=-1).to(device)


# ----------------------------------------------------------------- data: the heat equation, solved exactly
NU, T_END = 0.02, 1.0


def heat_1d(n, s):
    # a(x) = a random Fourier series with decaying spectrum; u(x, T) damps mode k by exp(-nu (2 pi k)^2 T)
    k = np.fft.rfftfreq(s, d=1.0 / s)
    coeffs = (np.random.randn(n, k.size) + 1j * np.random.randn(n, k.size)) / (1 + k) ** 2
    coeffs[:, 0] = 0
    coeffs[:, 9:] = 0
    a = np.fft.irfft(coeffs, n=s) * s / 4
    u = np.fft.irfft(np.fft.rfft(a) * np.exp(-NU * (2 * np.pi * k) ** 2 * T_END), n=s)
    return torch.from_numpy(a.astype(np.float32)), torch.from_numpy(u.astype(np.float32))


def heat_2d(n, s):
    kx = np.fft.fftfreq(s, d=1.0 / s)[:, None]
    ky = np.fft.rfftfreq(s, d=1.0 / s)[None, :]
    kk = np.sqrt(kx ** 2 + ky ** 2)
    coeffs = (np.random.randn(n, s, s // 2 + 1) + 1j * np.random.randn(n, s, s // 2 + 1)) / (1 + kk) ** 2.5
    coeffs[:, 0, 0] = 0
    a = np.fft.irfft2(coeffs, s=(s, s)) * s
    u = np.fft.irfft2(np.fft.rfft2(a) * np.exp(-NU * (2 * np.pi) ** 2 * (kx ** 2 + ky ** 2) * T_END), s=(s, s))
    return torch.from_numpy(a.astype(np.float32)), torch.from_numpy(u.astype(np.float32))


# ----------------------------------------------------------------- 1-d training, as fourier_1d.py
ntrain, ntest = 96, 32
s = 64
batch_size = 16
learning_rate = 0.005
epochs = 20
step_size = 8
gamma = 0.5
modes = 8
width = 16

x_data, y_data = heat_1d(ntrain + ntest, s)
x_train, y_train = x_data[:ntrain, :], y_data[:ntrain, :]
x_test, y_test = x_data[-ntest:, :], y_data[-ntest:, :]
x_train = x_train.reshape(ntrain, s, 1)
x_test = x_test.reshape(ntest, s, 1)

train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train), batch_size=batch_size,
                                           shuffle=True)
test_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_test, y_test), batch_size=batch_size,
                                          shuffle=False)

model = FNO1d(modes, width)
print(f"FNO1d: {count_params(model)} real parameters, weights1 {tuple(model.conv0.weights1.shape)} "
      f"{model.conv0.weights1.dtype}")

optimizer = Adam(model.parameters(), lr=learning_rate, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)

myloss = LpLoss(size_average=False)
for ep in range(epochs):
    model.train()
    train_mse = 0
    train_l2 = 0
    for x, y in train_loader:
        optimizer.zero_grad()
        out = model(x)

        mse = F.mse_loss(out.view(batch_size, -1), y.view(batch_size, -1), reduction='mean')
        l2 = myloss(out.view(batch_size, -1), y.view(batch_size, -1))
        l2.backward()  # use the l2 relative loss

        optimizer.step()
        train_mse += mse.item()
        train_l2 += l2.item()

    scheduler.step()
    model.eval()
    test_l2 = 0.0
    with torch.no_grad():
        for x, y in test_loader:
            out = model(x)
            test_l2 += myloss(out.view(batch_size, -1), y.view(batch_size, -1)).item()

    train_mse /= len(train_loader)
    train_l2 /= ntrain
    test_l2 /= ntest

    if ep % 5 == 4:
        print(ep, f"{train_mse:.6f}", f"{train_l2:.5f}", f"{test_l2:.5f}", f"lr {scheduler.get_last_lr()[0]:.6f}")
test_l2_1d, train_l2_1d = test_l2, train_l2

# resolution invariance: the same operator evaluated on a grid twice as fine
x_fine, y_fine = heat_1d(ntest, 2 * s)
with torch.no_grad():
    fine_l2 = myloss(model(x_fine.reshape(ntest, 2 * s, 1)).view(ntest, -1), y_fine.view(ntest, -1)).item() / ntest
    abs_l2 = LpLoss(size_average=True).abs(model(x_test).view(ntest, -1), y_test.view(ntest, -1)).item()
print(f"1-d: test rel L2 {test_l2_1d:.5f} at s={s}, {fine_l2:.5f} at s={2 * s} (zero-shot), abs L2 {abs_l2:.5f}")

# the spectral layer's gradient reaches the complex weights as a complex tensor
g = model.conv0.weights1.grad
print(f"weights1.grad {g.dtype} {tuple(g.shape)}, |grad| finite {bool(torch.isfinite(g.abs()).all())}")

# ----------------------------------------------------------------- 2-d training, as fourier_2d.py (Darcy flow)
ntrain2, ntest2, s2 = 48, 16, 16
batch_size2 = 8
a2, u2 = heat_2d(ntrain2 + ntest2, s2)
x_train2, y_train2 = a2[:ntrain2], u2[:ntrain2]
x_test2, y_test2 = a2[-ntest2:], u2[-ntest2:]
x_normalizer = UnitGaussianNormalizer(x_train2)
x_train2 = x_normalizer.encode(x_train2)
x_test2 = x_normalizer.encode(x_test2)
y_normalizer = UnitGaussianNormalizer(y_train2)
y_train2 = y_normalizer.encode(y_train2)
x_train2 = x_train2.reshape(ntrain2, s2, s2, 1)
x_test2 = x_test2.reshape(ntest2, s2, s2, 1)
train_loader2 = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train2, y_train2),
                                            batch_size=batch_size2, shuffle=True)
test_loader2 = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_test2, y_test2),
                                           batch_size=batch_size2, shuffle=False)

model2 = FNO2d(4, 4, 8)
print(f"FNO2d: {count_params(model2)} real parameters")
optimizer2 = Adam(model2.parameters(), lr=0.005, weight_decay=1e-4)
scheduler2 = torch.optim.lr_scheduler.StepLR(optimizer2, step_size=5, gamma=0.5)
for ep in range(10):
    model2.train()
    train_l2 = 0
    for x, y in train_loader2:
        optimizer2.zero_grad()
        out = model2(x).reshape(batch_size2, s2, s2)
        out = y_normalizer.decode(out)
        y = y_normalizer.decode(y)
        loss = myloss(out.view(batch_size2, -1), y.view(batch_size2, -1))
        loss.backward()
        optimizer2.step()
        train_l2 += loss.item()
    scheduler2.step()
    model2.eval()
    test_l2 = 0.0
    with torch.no_grad():
        for x, y in test_loader2:
            out = model2(x).reshape(batch_size2, s2, s2)
            out = y_normalizer.decode(out)
            test_l2 += myloss(out.view(batch_size2, -1), y.view(batch_size2, -1)).item()
    if ep % 5 == 4:
        print(ep, f"{train_l2 / ntrain2:.5f}", f"{test_l2 / ntest2:.5f}")
test_l2_2d = test_l2 / ntest2

print(f"FINAL test_l2_1d={test_l2_1d:.5f} fine_l2_1d={fine_l2:.5f} test_l2_2d={test_l2_2d:.5f} "
      f"train_l2_1d={train_l2_1d:.5f}")
