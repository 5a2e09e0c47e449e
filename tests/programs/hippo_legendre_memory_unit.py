"""The Legendre Memory Unit (Voelker et al., NeurIPS 2019; HiPPO-LegT) in the layout of the PyTorch ports
(hrshtv/pytorch-lmu's ``LMUCell`` and ``LMUFFT``, Chilkuri & Eliasmith's parallel training), on a delayed
recall task.

The memory's continuous system comes from the Legendre formulas: ``Q = np.arange(order)``, ``R = (2 * Q +
1) / theta``, ``A = R * np.where(i < j, -1, (-1.0) ** (i - j + 1))`` over ``np.meshgrid(Q, Q,
indexing="ij")`` and ``B = R * (-1.0) ** Q``. It is discretised by zero-order hold as
``torch.linalg.matrix_exp`` of the block matrix ``[[A, B], [0, 0]] * dt`` (the top blocks of the result are
``Ad`` and ``Bd``), in float64, then stored as float32 buffers. The recurrent cell steps ``m_t = Ad m_{t-1}
+ Bd u_t`` with ``u_t = ReLU(W_u x_t)`` and ``h_t = ReLU(W_h [m_t, x_t])``; the parallel mode builds the
impulse response ``H[:, k] = Ad^k Bd`` by a loop, ``torch.fft.rfft(H, n=2 * T, dim=-1)`` once, and the
memory of a whole sequence as ``torch.fft.irfft(fft_u * fft_H.unsqueeze(0), n=2 * T, dim=-1)[:, :, :T]``.

The task: a smoothed random signal (white noise through a moving average by ``F.conv1d``) must be
reproduced ``delay`` steps later; the LMU is trained in parallel mode by Adam on ``F.mse_loss``.

Checked: ``matrix_exp`` equals a truncated Taylor series with scaling and squaring in float64; the
discrete system's state after one unit step input equals the float64 recurrence; the recurrent mode and the
FFT mode give the same memory and the same outputs (before and after training, ``torch.allclose``); the
trained model's recall error falls well below the untrained one's and below a memoryless baseline that
can only copy the current input.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import fft

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

ORDER, THETA, DELAY, SEQ_LEN = 12, 16.0, 10, 64
HIDDEN, BATCH, STEPS = 16, 32, 200


def make_signal(batch, length):
    noise = torch.randn(batch, 1, length + 8)
    kernel = torch.ones(1, 1, 9) / 3.0
    return F.conv1d(noise, kernel).transpose(1, 2)  # (batch, length, 1)


def make_batch(batch):
    x = make_signal(batch, SEQ_LEN + DELAY)
    return x[:, DELAY:], x[:, :-DELAY]  # target y_t = x_{t - delay}


# ----------------------------------------------------------------------------------- state space
def state_space_matrices(memory_size, theta):
    Q = np.arange(memory_size, dtype=np.float64).reshape(-1, 1)
    R = (2 * Q + 1) / theta
    i, j = np.meshgrid(Q, Q, indexing="ij")
    A = R * np.where(i < j, -1, (-1.0) ** (i - j + 1))
    B = R * ((-1.0) ** Q)
    return torch.from_numpy(A), torch.from_numpy(B)


def zoh(A, B, dt=1.0):
    n, m = A.shape[0], B.shape[1]
    M = torch.zeros(n + m, n + m, dtype=A.dtype)
    M[:n, :n] = A
    M[:n, n:] = B
    E = torch.linalg.matrix_exp(M * dt)
    return E[:n, :n], E[:n, n:]


def expm_series(M, terms=30, squarings=6):
    X = M / 2 ** squarings
    result = torch.eye(M.shape[0], dtype=M.dtype)
    term = torch.eye(M.shape[0], dtype=M.dtype)
    for k in range(1, terms):
        term = term @ X / k
        result = result + term
    for _ in range(squarings):
        result = result @ result
    return result


A_c, B_c = state_space_matrices(ORDER, THETA)
Ad64, Bd64 = zoh(A_c, B_c)
block = torch.zeros(ORDER + 1, ORDER + 1, dtype=torch.float64)
block[:ORDER, :ORDER], block[:ORDER, ORDER:] = A_c, B_c
expm_err = (torch.linalg.matrix_exp(block) - expm_series(block)).abs().max().item()
bottom_ok = torch.equal(torch.linalg.matrix_exp(block)[ORDER:, ORDER:], torch.ones(1, 1, dtype=torch.float64))
print(f"A {tuple(A_c.shape)}, B {tuple(B_c.shape)}, ||A||_2 {torch.linalg.matrix_norm(A_c, ord=2).item():.4f}")
print(f"matrix_exp vs scaled Taylor series (float64): max diff {expm_err:.2e}; bottom block identity: {bottom_ok}")

# exact response to a unit step held for one step: int_0^1 e^{A s} ds B
step_state = Bd64[:, 0]
quad = torch.zeros(ORDER, dtype=torch.float64)
n_quad = 400
for q in range(n_quad):  # midpoint rule on the continuous system
    s = (q + 0.5) / n_quad
    quad = quad + torch.linalg.matrix_exp(A_c * s) @ B_c[:, 0] / n_quad
step_err = (step_state - quad).abs().max().item()
print(f"ZOH Bd vs midpoint quadrature of exp(A s) B: max diff {step_err:.2e}")


# ----------------------------------------------------------------------------------- models
class LMUCell(nn.Module):
    """Recurrent mode: one step at a time."""

    def __init__(self, input_size, hidden_size, memory_size):
        super().__init__()
        self.hidden_size, self.memory_size = hidden_size, memory_size
        self.W_u = nn.Linear(input_size, 1)
        self.W_h = nn.Linear(memory_size + input_size, hidden_size)
        self.register_buffer("A", Ad64.float())
        self.register_buffer("B", Bd64.float())

    def forward(self, x, state):
        m = state
        u = F.relu(self.W_u(x))  # (batch, 1)
        m = m @ self.A.T + u @ self.B.T
        h = F.relu(self.W_h(torch.cat((m, x), dim=-1)))
        return h, m


class LMUFFT(nn.Module):
    """Parallel mode: the memory of the whole sequence by an FFT convolution."""

    def __init__(self, input_size, hidden_size, memory_size, seq_len):
        super().__init__()
        self.hidden_size, self.memory_size, self.seq_len = hidden_size, memory_size, seq_len
        self.W_u = nn.Linear(input_size, 1)
        self.f_u = nn.ReLU()
        self.W_h = nn.Linear(memory_size + input_size, hidden_size)
        self.f_h = nn.ReLU()
        self.register_buffer("A", Ad64.float())
        self.register_buffer("B", Bd64.float())
        H, fft_H = self.impulse()
        self.register_buffer("H", H)
        self.register_buffer("fft_H", fft_H)

    def impulse(self):
        H = []
        A_i = torch.eye(self.memory_size)
        for _ in range(self.seq_len):
            H.append(A_i @ self.B)
            A_i = self.A @ A_i
        H = torch.cat(H, dim=-1)  # (memory_size, seq_len)
        fft_H = fft.rfft(H, n=2 * self.seq_len, dim=-1)
        return H, fft_H

    def memory(self, x):
        batch_size, seq_len, input_size = x.shape
        u = self.f_u(self.W_u(x))  # (batch, seq_len, 1)
        fft_input = u.permute(0, 2, 1)  # (batch, 1, seq_len)
        fft_u = fft.rfft(fft_input, n=2 * seq_len, dim=-1)
        temp = fft_u * self.fft_H.unsqueeze(0)  # (batch, memory_size, seq_len + 1)
        m = fft.irfft(temp, n=2 * seq_len, dim=-1)
        m = m[:, :, :seq_len]
        return m.permute(0, 2, 1)  # (batch, seq_len, memory_size)

    def forward(self, x):
        m = self.memory(x)
        input_h = torch.cat((m, x), dim=-1)
        h = self.f_h(self.W_h(input_h))
        h_n = h[:, -1, :]
        return h, h_n


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lmu = LMUFFT(1, HIDDEN, ORDER, SEQ_LEN)
        self.classifier = nn.Linear(HIDDEN, 1)

    def forward(self, x):
        h, _ = self.lmu(x)
        return self.classifier(h)


@torch.no_grad()
def recurrent_run(model, x):
    cell = LMUCell(1, HIDDEN, ORDER)
    cell.load_state_dict({k: v for k, v in model.lmu.state_dict().items() if k in ("W_u.weight", "W_u.bias",
                                                                                      "W_h.weight", "W_h.bias",
                                                                                      "A", "B")})
    m = torch.zeros(x.shape[0], ORDER)
    outs, mems = [], []
    for t in range(x.shape[1]):
        h, m = cell(x[:, t], m)
        outs.append(model.classifier(h))
        mems.append(m)
    return torch.stack(outs, dim=1), torch.stack(mems, dim=1)


@torch.no_grad()
def modes_agree(model, x):
    y_fft = model(x)
    m_fft = model.lmu.memory(x)
    y_rec, m_rec = recurrent_run(model, x)
    return (m_fft - m_rec).abs().max().item(), (y_fft - y_rec).abs().max().item()


model = Model()
x_val, y_val = make_batch(64)
with torch.no_grad():
    val_before = F.mse_loss(model(x_val), y_val).item()
    baseline = F.mse_loss(x_val, y_val).item()  # copying the current input
    zero_pred = y_val.pow(2).mean().item()
m_diff0, y_diff0 = modes_agree(model, x_val)
print(f"untrained: recall mse {val_before:.4f}; copy-the-input baseline {baseline:.4f}; predict-zero {zero_pred:.4f}")
print(f"recurrent vs FFT mode before training: memory max diff {m_diff0:.1e}, output max diff {y_diff0:.1e}")

optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(1, STEPS + 1):
    x, y = make_batch(BATCH)
    loss = F.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        with torch.no_grad():
            val = F.mse_loss(model(x_val), y_val).item()
        print(f"step {step}: train mse {loss.item():.4f} val mse {val:.4f}")

with torch.no_grad():
    val_after = F.mse_loss(model(x_val), y_val).item()
m_diff1, y_diff1 = modes_agree(model, x_val)
print(f"recurrent vs FFT mode after training: memory max diff {m_diff1:.1e}, output max diff {y_diff1:.1e}")
checks = int(expm_err < 1e-10 and bottom_ok and step_err < 1e-5 and max(m_diff0, m_diff1) < 1e-4
             and max(y_diff0, y_diff1) < 1e-4)
print(f"FINAL val_before={val_before:.4f} val_after={val_after:.4f} baseline={baseline:.4f} "
      f"ratio={val_after / baseline:.4f} checks_ok={checks}")
