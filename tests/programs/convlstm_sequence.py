"""ConvLSTM (Shi et al., 2015) predicting the next frames of bouncing squares.

The encoder is ndrplz/ConvLSTM_pytorch's ``ConvLSTM``: a ``ConvLSTMCell`` that convolves
``torch.cat([input_tensor, h_cur], dim=1)`` into four gates cut by ``torch.split(combined_conv,
self.hidden_dim, dim=1)``, ``init_hidden`` by ``torch.zeros(..., device=self.conv.weight.device)``,
``_check_kernel_size_consistency``/``_extend_for_multilayer`` on its arguments, layers stepped over
``input_tensor[:, t, :, :, :]`` of a ``batch_first`` (b, t, c, h, w) clip into
``torch.stack(output_inner, dim=1)``, ``return_all_layers``. The forecaster is the paper's: two
cells with peephole weights (``nn.Parameter(torch.zeros(1, hidden, h, w))``) whose gates come from
``torch.chunk(..., 4, dim=1)``, started from the encoder's last states, a 1x1 conv over
``torch.cat`` of both layers' hidden states giving pixel logits, each step fed the true previous
frame with a probability decaying per epoch (``if torch.rand(()) < teacher_forcing``) or its own
``torch.sigmoid`` prediction; ``torch.stack(outputs, dim=1)`` frames against
``nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0))`` (a 0-d weight for the sparse lit pixels).
Held-out sequences are scored by MSE per future step and by pytorch-ssim's SSIM (a Gaussian window
from ``torch.Tensor([exp(...) ...])``, ``_1D_window.mm(_1D_window.t())``, ``Variable(...expand(channel,
1, k, k).contiguous())``, ``F.conv2d(..., groups=channel)``), against the copy-the-last-frame baseline.
"""

import os
from math import exp

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Variable

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

SIZE, SQUARE = 12, 4
T_IN, T_OUT = 5, 4


def bouncing_squares(n, length=T_IN + T_OUT):
    clips = np.zeros((n, length, 1, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        y, x = rng.uniform(0, SIZE - SQUARE, size=2)
        vy, vx = rng.choice([-1.0, 1.0], size=2)
        for t in range(length):
            clips[i, t, 0, int(round(y)):int(round(y)) + SQUARE, int(round(x)):int(round(x)) + SQUARE] = 1.0
            y, x = y + vy, x + vx
            if not 0 <= y <= SIZE - SQUARE:
                vy = -vy
                y = float(np.clip(y, 0, SIZE - SQUARE))
            if not 0 <= x <= SIZE - SQUARE:
                vx = -vx
                x = float(np.clip(x, 0, SIZE - SQUARE))
    return torch.from_numpy(clips)


class ConvLSTMCell(nn.Module):
    def __init__(self, input_dim, hidden_dim, kernel_size, bias):
        super().__init__()
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.kernel_size = kernel_size
        self.padding = kernel_size[0] // 2, kernel_size[1] // 2
        self.bias = bias
        self.conv = nn.Conv2d(in_channels=self.input_dim + self.hidden_dim,
                              out_channels=4 * self.hidden_dim,
                              kernel_size=self.kernel_size,
                              padding=self.padding,
                              bias=self.bias)

    def forward(self, input_tensor, cur_state):
        h_cur, c_cur = cur_state
        combined = torch.cat([input_tensor, h_cur], dim=1)
        combined_conv = self.conv(combined)
        cc_i, cc_f, cc_o, cc_g = torch.split(combined_conv, self.hidden_dim, dim=1)
        i = torch.sigmoid(cc_i)
        f = torch.sigmoid(cc_f)
        o = torch.sigmoid(cc_o)
        g = torch.tanh(cc_g)
        c_next = f * c_cur + i * g
        h_next = o * torch.tanh(c_next)
        return h_next, c_next

    def init_hidden(self, batch_size, image_size):
        height, width = image_size
        return (torch.zeros(batch_size, self.hidden_dim, height, width, device=self.conv.weight.device),
                torch.zeros(batch_size, self.hidden_dim, height, width, device=self.conv.weight.device))


class ConvLSTM(nn.Module):
    def __init__(self, input_dim, hidden_dim, kernel_size, num_layers,
                 batch_first=False, bias=True, return_all_layers=False):
        super().__init__()
        self._check_kernel_size_consistency(kernel_size)
        kernel_size = self._extend_for_multilayer(kernel_size, num_layers)
        hidden_dim = self._extend_for_multilayer(hidden_dim, num_layers)
        if not len(kernel_size) == len(hidden_dim) == num_layers:
            raise ValueError("Inconsistent list length.")
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.kernel_size = kernel_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.bias = bias
        self.return_all_layers = return_all_layers
        cell_list = []
        for i in range(0, self.num_layers):
            cur_input_dim = self.input_dim if i == 0 else self.hidden_dim[i - 1]
            cell_list.append(ConvLSTMCell(input_dim=cur_input_dim, hidden_dim=self.hidden_dim[i],
                                          kernel_size=self.kernel_size[i], bias=self.bias))
        self.cell_list = nn.ModuleList(cell_list)

    def forward(self, input_tensor, hidden_state=None):
        if not self.batch_first:
            # (t, b, c, h, w) -> (b, t, c, h, w)
            input_tensor = input_tensor.permute(1, 0, 2, 3, 4)
        b, _, _, h, w = input_tensor.size()
        if hidden_state is not None:
            raise NotImplementedError()
        hidden_state = self._init_hidden(batch_size=b, image_size=(h, w))
        layer_output_list = []
        last_state_list = []
        seq_len = input_tensor.size(1)
        cur_layer_input = input_tensor
        for layer_idx in range(self.num_layers):
            h, c = hidden_state[layer_idx]
            output_inner = []
            for t in range(seq_len):
                h, c = self.cell_list[layer_idx](input_tensor=cur_layer_input[:, t, :, :, :], cur_state=[h, c])
                output_inner.append(h)
            layer_output = torch.stack(output_inner, dim=1)
            cur_layer_input = layer_output
            layer_output_list.append(layer_output)
            last_state_list.append([h, c])
        if not self.return_all_layers:
            layer_output_list = layer_output_list[-1:]
            last_state_list = last_state_list[-1:]
        return layer_output_list, last_state_list

    def _init_hidden(self, batch_size, image_size):
        return [self.cell_list[i].init_hidden(batch_size, image_size) for i in range(self.num_layers)]

    @staticmethod
    def _check_kernel_size_consistency(kernel_size):
        if not (isinstance(kernel_size, tuple) or
                (isinstance(kernel_size, list) and all(isinstance(elem, tuple) for elem in kernel_size))):
            raise ValueError("`kernel_size` must be tuple or list of tuples")

    @staticmethod
    def _extend_for_multilayer(param, num_layers):
        if not isinstance(param, list):
            param = [param] * num_layers
        return param


class PeepholeConvLSTMCell(nn.Module):
    """Shi et al.'s cell: the input, forget and output gates also see the cell state (Hadamard)."""

    def __init__(self, input_dim, hidden_dim, kernel_size, frame_size):
        super().__init__()
        self.conv = nn.Conv2d(input_dim + hidden_dim, 4 * hidden_dim, kernel_size, padding=kernel_size // 2)
        self.W_ci = nn.Parameter(torch.zeros(1, hidden_dim, *frame_size))
        self.W_cf = nn.Parameter(torch.zeros(1, hidden_dim, *frame_size))
        self.W_co = nn.Parameter(torch.zeros(1, hidden_dim, *frame_size))

    def forward(self, x, state):
        h_prev, c_prev = state
        i_conv, f_conv, c_conv, o_conv = torch.chunk(self.conv(torch.cat([x, h_prev], dim=1)), 4, dim=1)
        input_gate = torch.sigmoid(i_conv + self.W_ci * c_prev)
        forget_gate = torch.sigmoid(f_conv + self.W_cf * c_prev)
        c = forget_gate * c_prev + input_gate * torch.tanh(c_conv)
        output_gate = torch.sigmoid(o_conv + self.W_co * c)
        return output_gate * torch.tanh(c), c


class EncoderForecaster(nn.Module):
    def __init__(self, hidden=(8, 8)):
        super().__init__()
        self.encoder = ConvLSTM(1, list(hidden), (3, 3), num_layers=2, batch_first=True, return_all_layers=True)
        self.forecaster = nn.ModuleList([
            PeepholeConvLSTMCell(1, hidden[0], 3, (SIZE, SIZE)),
            PeepholeConvLSTMCell(hidden[0], hidden[1], 3, (SIZE, SIZE)),
        ])
        self.head = nn.Conv2d(sum(hidden), 1, kernel_size=1)

    def forward(self, inputs, future=T_OUT, targets=None, teacher_forcing=0.0):
        _, states = self.encoder(inputs)
        states = [tuple(s) for s in states]
        frame = inputs[:, -1]
        outputs = []
        for t in range(future):
            x = frame
            new_states = []
            for cell, state in zip(self.forecaster, states):
                x, c = cell(x, state)
                new_states.append((x, c))
            states = new_states
            logits = self.head(torch.cat([h for h, _ in states], dim=1))
            outputs.append(logits)
            if targets is not None and torch.rand(()) < teacher_forcing:
                frame = targets[:, t]
            else:
                frame = torch.sigmoid(logits)
        return torch.stack(outputs, dim=1)


def gaussian(window_size, sigma):
    gauss = torch.Tensor([exp(-(x - window_size // 2) ** 2 / float(2 * sigma ** 2)) for x in range(window_size)])
    return gauss / gauss.sum()


def create_window(window_size, channel):
    _1D_window = gaussian(window_size, 1.5).unsqueeze(1)
    _2D_window = _1D_window.mm(_1D_window.t()).float().unsqueeze(0).unsqueeze(0)
    return Variable(_2D_window.expand(channel, 1, window_size, window_size).contiguous())


def ssim(img1, img2, window_size=7):
    channel = img1.size(1)
    window = create_window(window_size, channel).type_as(img1)
    mu1 = F.conv2d(img1, window, padding=window_size // 2, groups=channel)
    mu2 = F.conv2d(img2, window, padding=window_size // 2, groups=channel)
    mu1_sq, mu2_sq, mu1_mu2 = mu1.pow(2), mu2.pow(2), mu1 * mu2
    sigma1_sq = F.conv2d(img1 * img1, window, padding=window_size // 2, groups=channel) - mu1_sq
    sigma2_sq = F.conv2d(img2 * img2, window, padding=window_size // 2, groups=channel) - mu2_sq
    sigma12 = F.conv2d(img1 * img2, window, padding=window_size // 2, groups=channel) - mu1_mu2
    C1, C2 = 0.01 ** 2, 0.03 ** 2
    ssim_map = ((2 * mu1_mu2 + C1) * (2 * sigma12 + C2)) / ((mu1_sq + mu2_sq + C1) * (sigma1_sq + sigma2_sq + C2))
    return ssim_map.mean()


train_clips = bouncing_squares(64)
test_clips = bouncing_squares(32)
print(f"clips {tuple(train_clips.shape)} lit fraction {train_clips.mean().item():.3f}")

model = EncoderForecaster()
layer_outputs, last_states = model.encoder(train_clips[:2, :T_IN])
print("encoder layers", len(layer_outputs), "output", tuple(layer_outputs[-1].shape), "state", tuple(last_states[0][1].shape))
try:
    ConvLSTM(1, 8, 3, num_layers=2)
except ValueError as err:
    print("kernel_size check:", err)
print("parameters", sum(p.numel() for p in model.parameters()))

criterion = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
EPOCHS, BATCH = 10, 8
for epoch in range(EPOCHS):
    model.train()
    teacher_forcing = 0.7 ** epoch
    order = torch.randperm(len(train_clips))
    total, steps = 0.0, 0
    for start in range(0, len(train_clips), BATCH):
        clip = train_clips[order[start:start + BATCH]]
        inputs, targets = clip[:, :T_IN], clip[:, T_IN:]
        logits = model(inputs, targets=targets, teacher_forcing=teacher_forcing)
        loss = criterion(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
        steps += 1
    scheduler.step()
    print(f"epoch {epoch} bce {total / steps:.4f} teacher forcing {teacher_forcing:.3f} lr {scheduler.get_last_lr()[0]:.5f}")

model.eval()
with torch.no_grad():
    inputs, targets = test_clips[:, :T_IN], test_clips[:, T_IN:]
    logits = model(inputs)
    test_bce = criterion(logits, targets).item()
    pred = torch.sigmoid(logits)
    mse_per_step = ((pred - targets) ** 2).mean(dim=(0, 2, 3, 4))
    copy_last = inputs[:, -1:].expand_as(targets)
    baseline_mse = F.mse_loss(copy_last, targets).item()
    ssim_model = sum(ssim(pred[:, t], targets[:, t]).item() for t in range(T_OUT)) / T_OUT
    ssim_copy = sum(ssim(copy_last[:, t], targets[:, t]).item() for t in range(T_OUT)) / T_OUT
    ssim_self = ssim(targets[:, 0], targets[:, 0]).item()
print("test MSE per step", [f"{v:.4f}" for v in mse_per_step.tolist()])
print(f"copy-last-frame MSE {baseline_mse:.4f} SSIM {ssim_copy:.4f}; SSIM of a frame with itself {ssim_self:.4f}")
print(f"FINAL test_bce={test_bce:.4f} test_mse={mse_per_step.mean().item():.4f} ssim={ssim_model:.4f} "
      f"copy_mse={baseline_mse:.4f} copy_ssim={ssim_copy:.4f}")
