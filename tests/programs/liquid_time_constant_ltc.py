"""Liquid time-constant networks (Hasani et al., raminmh/liquid_time_constant_networks; mlech26l's ncps
``LTCCell``) on irregularly sampled damped oscillations, against an ``nn.LSTM``.

The cell's parameters ``gleak``, ``vleak``, ``cm``, ``sigma``, ``mu``, ``w``, ``erev`` and their sensory
versions as ``nn.Parameter(torch.Tensor(...).uniform_(a, b))``; a random sparse wiring (an AutoNCP-like
adjacency with ``±1`` reversal signs) held as buffers; the fused semi-implicit Euler solver unfolded 6
times per step with sigmoid synapses ``torch.sigmoid(sigma * (v_pre.unsqueeze(-1) - mu))``, the
``w_activation * erev`` numerator, ``torch.sum(..., dim=1)`` and ``v = (cm_t * v + gleak * vleak + num)
/ (cm_t + gleak + den + eps)`` with ``cm_t = cm / (ts / unfolds)`` from each sample's elapsed time;
affine ``input_map``/``output_map``; the sequence loop collecting ``torch.stack(outputs, dim=1)``; the
constraint step after each update, ``torch.nn.ReLU()(p.data)`` and ``p.data.clamp_(min=0)``. Checks:
with constant input the unfolded solver settles on a fixed point (the same one for any elapsed time)
that solves the steady-state equation, the masked synapses' gradients are exactly zero, losses fall.
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_UNITS = 12
N_MOTOR = 1
SENSORY = 2          # the signal and the gap to the next sample
SEQ_LEN = 20
BATCH = 32
STEPS = 90
ODE_UNFOLDS = 6


# ---------------------------------------------------------------- data: irregular damped oscillations
def make_sequences(n):
    gaps = rng.uniform(0.05, 0.35, size=(n, SEQ_LEN + 1))
    times = np.cumsum(gaps, axis=1)
    decay = rng.uniform(0.1, 0.6, size=(n, 1))
    omega = rng.uniform(2.0, 5.0, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    x = np.exp(-decay * times) * np.cos(omega * times + phase)
    inputs = np.stack([x[:, :-1], gaps[:, 1:]], -1)      # the value now, and how far ahead to predict
    targets = x[:, 1:, None]
    elapsed = gaps[:, :-1]                                 # the time since the previous sample
    as_t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return as_t(inputs), as_t(elapsed), as_t(targets)


train_x, train_ts, train_y = make_sequences(512)
test_x, test_ts, test_y = make_sequences(128)


# ---------------------------------------------------------------- wiring
class RandomWiring:
    """AutoNCP-like: a random sparse adjacency whose nonzeros are reversal-potential signs."""

    def __init__(self, units, sensory, density=0.5, excitatory=0.7):
        self.units = units
        adj = (rng.random((units, units)) < density).astype(np.float32)
        sign = np.where(rng.random((units, units)) < excitatory, 1.0, -1.0).astype(np.float32)
        self.adjacency_matrix = adj * sign
        s_adj = (rng.random((sensory, units)) < density).astype(np.float32)
        s_adj[:, :N_MOTOR] = 0.0                         # motor neurons listen to other neurons only
        s_adj[0, N_MOTOR:] = 1.0                           # the signal reaches every other neuron
        s_sign = np.where(rng.random((sensory, units)) < excitatory, 1.0, -1.0).astype(np.float32)
        self.sensory_adjacency_matrix = s_adj * s_sign

    def erev_initializer(self):
        return np.copy(self.adjacency_matrix)

    def sensory_erev_initializer(self):
        return np.copy(self.sensory_adjacency_matrix)


class LTCCell(nn.Module):
    def __init__(self, wiring, in_features, ode_unfolds=ODE_UNFOLDS, epsilon=1e-8):
        super().__init__()
        self.state_size = wiring.units
        self.sensory_size = in_features
        self.motor_size = N_MOTOR
        self._ode_unfolds = ode_unfolds
        self._epsilon = epsilon
        self._clip = torch.nn.ReLU()
        n, s = self.state_size, self.sensory_size

        self.gleak = nn.Parameter(torch.Tensor(n).uniform_(0.001, 1.0))
        self.vleak = nn.Parameter(torch.Tensor(n).uniform_(-0.2, 0.2))
        self.cm = nn.Parameter(torch.Tensor(n).uniform_(0.4, 0.6))
        self.sigma = nn.Parameter(torch.Tensor(n, n).uniform_(3, 8))
        self.mu = nn.Parameter(torch.Tensor(n, n).uniform_(0.3, 0.8))
        self.w = nn.Parameter(torch.Tensor(n, n).uniform_(0.001, 1.0))
        self.sensory_sigma = nn.Parameter(torch.Tensor(s, n).uniform_(3, 8))
        self.sensory_mu = nn.Parameter(torch.Tensor(s, n).uniform_(0.3, 0.8))
        self.sensory_w = nn.Parameter(torch.Tensor(s, n).uniform_(0.001, 1.0))
        self.register_buffer("erev", torch.Tensor(wiring.erev_initializer()))
        self.register_buffer("sensory_erev", torch.Tensor(wiring.sensory_erev_initializer()))
        self.register_buffer("sparsity_mask", torch.Tensor(np.abs(wiring.adjacency_matrix)))
        self.register_buffer("sensory_sparsity_mask", torch.Tensor(np.abs(wiring.sensory_adjacency_matrix)))

        self.input_w = nn.Parameter(torch.ones((s,)))
        self.input_b = nn.Parameter(torch.zeros((s,)))
        self.output_w = nn.Parameter(torch.ones((self.motor_size,)))
        self.output_b = nn.Parameter(torch.zeros((self.motor_size,)))

    def _sigmoid(self, v_pre, mu, sigma):
        v_pre = torch.unsqueeze(v_pre, -1)  # For broadcasting
        mues = v_pre - mu
        x = sigma * mues
        return torch.sigmoid(x)

    def _ode_solver(self, inputs, state, elapsed_time):
        v_pre = state

        # The sensory synapses see a constant input during the unfolding: compute them once
        sensory_w_activation = self.sensory_w * self._sigmoid(inputs, self.sensory_mu, self.sensory_sigma)
        sensory_w_activation = sensory_w_activation * self.sensory_sparsity_mask
        sensory_rev_activation = sensory_w_activation * self.sensory_erev
        w_numerator_sensory = torch.sum(sensory_rev_activation, dim=1)
        w_denominator_sensory = torch.sum(sensory_w_activation, dim=1)

        cm_t = self.cm / (elapsed_time / self._ode_unfolds)

        for _t in range(self._ode_unfolds):
            w_activation = self.w * self._sigmoid(v_pre, self.mu, self.sigma)
            w_activation = w_activation * self.sparsity_mask
            rev_activation = w_activation * self.erev

            w_numerator = torch.sum(rev_activation, dim=1) + w_numerator_sensory
            w_denominator = torch.sum(w_activation, dim=1) + w_denominator_sensory

            numerator = cm_t * v_pre + self.gleak * self.vleak + w_numerator
            denominator = cm_t + self.gleak + w_denominator
            v_pre = numerator / (denominator + self._epsilon)
        return v_pre

    def _map_inputs(self, inputs):
        return inputs * self.input_w + self.input_b

    def _map_outputs(self, state):
        output = state[:, 0:self.motor_size]
        return output * self.output_w + self.output_b

    def apply_weight_constraints(self):
        self.w.data = self._clip(self.w.data)
        self.sensory_w.data = self._clip(self.sensory_w.data)
        self.cm.data.clamp_(min=0)
        self.gleak.data.clamp_(min=0)

    def forward(self, inputs, states, elapsed_time=1.0):
        inputs = self._map_inputs(inputs)
        next_state = self._ode_solver(inputs, states, elapsed_time)
        return self._map_outputs(next_state), next_state


class LTC(nn.Module):
    def __init__(self, in_features, wiring):
        super().__init__()
        self.rnn_cell = LTCCell(wiring, in_features)

    def forward(self, input, timespans):
        batch_size, seq_len = input.size(0), input.size(1)
        h_state = torch.zeros((batch_size, self.rnn_cell.state_size))
        outputs = []
        for t in range(seq_len):
            ts = timespans[:, t].view(-1, 1)
            h_out, h_state = self.rnn_cell(input[:, t], h_state, ts)
            outputs.append(h_out)
        return torch.stack(outputs, dim=1)


class LSTMBaseline(nn.Module):
    def __init__(self, in_features, hidden=16):
        super().__init__()
        self.lstm = nn.LSTM(in_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out)


wiring = RandomWiring(N_UNITS, SENSORY)
ltc = LTC(SENSORY, wiring)
lstm = LSTMBaseline(SENSORY)
print(f"ltc: units={N_UNITS} synapses={int(wiring.adjacency_matrix.astype(bool).sum())} "
      f"params={sum(p.numel() for p in ltc.parameters())}  lstm params={sum(p.numel() for p in lstm.parameters())}")
ltc_opt = torch.optim.Adam(ltc.parameters(), lr=0.02)
lstm_opt = torch.optim.Adam(lstm.parameters(), lr=0.01)
loss_fn = nn.MSELoss()
cell = ltc.rnn_cell
masked = cell.sparsity_mask == 0
s_masked = cell.sensory_sparsity_mask == 0

with torch.no_grad():
    ltc_first = loss_fn(ltc(test_x, test_ts), test_y).item()
    lstm_first = loss_fn(lstm(test_x), test_y).item()

masked_grad = 0.0
for step in range(STEPS):
    idx = torch.randint(0, train_x.size(0), (BATCH,))
    x, ts, y = train_x[idx], train_ts[idx], train_y[idx]

    ltc_opt.zero_grad()
    loss = loss_fn(ltc(x, ts), y)
    loss.backward()
    for grad in (cell.w.grad[masked], cell.mu.grad[masked], cell.sigma.grad[masked],
                 cell.sensory_w.grad[s_masked], cell.sensory_mu.grad[s_masked]):
        masked_grad = max(masked_grad, grad.abs().max().item())
    ltc_opt.step()
    cell.apply_weight_constraints()

    lstm_opt.zero_grad()
    lstm_loss = loss_fn(lstm(x), y)
    lstm_loss.backward()
    lstm_opt.step()
    if (step + 1) % 30 == 0:
        print(f"step {step + 1:3d} ltc_loss={loss.item():.5f} lstm_loss={lstm_loss.item():.5f}")

assert masked_grad == 0.0
assert bool((cell.w >= 0).all()) and bool((cell.cm >= 0).all()) and bool((cell.gleak >= 0).all())

with torch.no_grad():
    ltc_last = loss_fn(ltc(test_x, test_ts), test_y).item()
    lstm_last = loss_fn(lstm(test_x), test_y).item()
print(f"test mse: ltc {ltc_first:.5f} -> {ltc_last:.5f}  lstm {lstm_first:.5f} -> {lstm_last:.5f}")
assert ltc_last < ltc_first and lstm_last < lstm_first


# ---------------------------------------------------------------- the fixed point of the unfolded solver
@torch.no_grad()
def settle(elapsed, rounds=300):
    inputs = cell._map_inputs(torch.tensor([[0.3, 0.2], [-0.5, 0.1]]))
    v = torch.zeros(2, N_UNITS)
    for _ in range(rounds):
        v_next = cell._ode_solver(inputs, v, torch.full((2, 1), elapsed))
        step_change = (v_next - v).abs().max().item()
        v = v_next
    return inputs, v, step_change


inputs, v_fast, change_fast = settle(0.5)
_, v_slow, change_slow = settle(2.0)
with torch.no_grad():
    # steady state of dv/dt: gleak (vleak - v_i) + sum_j w_ji(v) (erev_ji - v_i) = 0, whatever cm and dt are
    act = cell.w * cell._sigmoid(v_fast, cell.mu, cell.sigma) * cell.sparsity_mask
    s_act = cell.sensory_w * cell._sigmoid(inputs, cell.sensory_mu, cell.sensory_sigma) * cell.sensory_sparsity_mask
    flow = (cell.gleak * (cell.vleak - v_fast) + (act * (cell.erev - v_fast.unsqueeze(1))).sum(1)
            + (s_act * (cell.sensory_erev - v_fast.unsqueeze(1))).sum(1))
residual = flow.abs().max().item()
fp_gap = (v_fast - v_slow).abs().max().item()
print(f"fixed point: last_change={max(change_fast, change_slow):.2e} residual={residual:.2e} dt_gap={fp_gap:.2e}")
assert residual < 1e-3 and fp_gap < 1e-3

print(f"FINAL ltc_mse={ltc_last:.5f} lstm_mse={lstm_last:.5f} fp_residual={residual:.3e} "
      f"masked_grad={masked_grad:.1e}")
