"""A Neural Turing Machine on the copy task, laid out as loudinthecloud/pytorch-ntm writes it.

An ``nn.LSTM`` controller stepped one time step at a time (``self.lstm(x.unsqueeze(0), state)``) with
learned initial states (``nn.Parameter(torch.randn(layers, 1, hidden) * 0.05)``) and a memory reset
from a ``register_buffer`` bias by ``clone().repeat(batch, 1, 1)``. Each head reads its parameters
off one ``nn.Linear`` split by ``np.cumsum`` column ranges, and addresses memory as the paper does:
content by ``F.cosine_similarity(memory + 1e-16, key.unsqueeze(1) + 1e-16, dim=-1)`` with a
``F.softplus`` key strength and ``F.softmax``, the ``torch.sigmoid`` interpolation gate against the
previous weighting, the circular shift by a grouped ``F.conv1d`` over a ``torch.cat`` wrap-around
(which must agree with pytorch-ntm's per-example ``F.conv1d`` loop and with a sum of
``torch.roll``-ed weightings), and sharpening ``w ** gamma / (w ** gamma).sum(-1, keepdim=True)``.
Reads by ``torch.matmul(w.unsqueeze(1), memory)``; writes erase and add by outer products
``torch.matmul(w.unsqueeze(-1), e.unsqueeze(1))`` (equal to ``torch.outer``/``torch.ger`` per example).
The outputs are written into ``y_out = torch.zeros(...)`` by ``y_out[i], _ = net()``; training by
``nn.BCELoss``, ``nn.utils.clip_grad_value_``, ``RMSprop(momentum=0.9, alpha=0.95)``; evaluation by
the bit errors of ``(y_out > 0.5).float()``.

The data: random binary sequences from ``np.random.binomial`` with a delimiter channel.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

SEQ_WIDTH, MIN_LEN, MAX_LEN = 4, 1, 4
N, M = 12, 8
CONTROLLER_SIZE, BATCH, EVAL_BATCH = 48, 16, 128


def dataloader(num_batches, batch_size, seq_width, min_len, max_len):
    for batch_num in range(num_batches):
        seq_len = np.random.randint(min_len, max_len + 1)
        seq = np.random.binomial(1, 0.5, (seq_len, batch_size, seq_width))
        seq = torch.from_numpy(seq)
        inp = torch.zeros(seq_len + 1, batch_size, seq_width + 1)
        inp[:seq_len, :, :seq_width] = seq
        inp[seq_len, :, seq_width] = 1.0  # delimiter
        outp = seq.clone()
        yield batch_num + 1, inp.float(), outp.float()


def _split_cols(mat, lengths):
    assert mat.size()[1] == sum(lengths), "Lengths must be summed to num columns"
    ends = np.cumsum([0] + lengths)
    return [mat[:, s:e] for s, e in zip(ends[:-1], ends[1:])]


def circular_convolve(w, s):
    """pytorch-ntm's _convolve: one example, a shift distribution of 3."""
    assert s.size(0) == 3
    t = torch.cat([w[-1:], w, w[:1]])
    return F.conv1d(t.view(1, 1, -1), s.view(1, 1, -1)).view(-1)


def batched_circular_convolve(w, s):
    """All examples at once: one group per example."""
    batch = w.size(0)
    t = torch.cat([w[:, -1:], w, w[:, :1]], dim=1)
    return F.conv1d(t.unsqueeze(0), s.unsqueeze(1), groups=batch).squeeze(0)


def rolled_shift(w, s):
    return s[:, 0:1] * torch.roll(w, 1, dims=1) + s[:, 1:2] * w + s[:, 2:3] * torch.roll(w, -1, dims=1)


class NTMMemory(nn.Module):
    def __init__(self, n, m):
        super().__init__()
        self.N, self.M = n, m
        self.register_buffer("mem_bias", torch.Tensor(n, m))
        stdev = 1 / np.sqrt(n + m)
        nn.init.uniform_(self.mem_bias, -stdev, stdev)

    def reset(self, batch_size):
        self.batch_size = batch_size
        self.memory = self.mem_bias.clone().repeat(batch_size, 1, 1)

    def size(self):
        return self.N, self.M

    def read(self, w):
        return torch.matmul(w.unsqueeze(1), self.memory).squeeze(1)

    def write(self, w, e, a):
        self.prev_mem = self.memory
        erase = torch.matmul(w.unsqueeze(-1), e.unsqueeze(1))
        add = torch.matmul(w.unsqueeze(-1), a.unsqueeze(1))
        self.memory = self.prev_mem * (1 - erase) + add

    def address(self, k, beta, g, s, gamma, w_prev):
        wc = self._similarity(k, beta)
        wg = self._interpolate(w_prev, wc, g)
        w_hat = self._shift(wg, s)
        return self._sharpen(w_hat, gamma)

    def _similarity(self, k, beta):
        k = k.view(self.batch_size, 1, -1)
        return F.softmax(beta * F.cosine_similarity(self.memory + 1e-16, k + 1e-16, dim=-1), dim=1)

    def _interpolate(self, w_prev, wc, g):
        return g * wc + (1 - g) * w_prev

    def _shift(self, wg, s):
        return batched_circular_convolve(wg, s)

    def _sharpen(self, w_hat, gamma):
        w = w_hat ** gamma
        return torch.div(w, torch.sum(w, dim=1).view(-1, 1) + 1e-16)


class NTMHeadBase(nn.Module):
    def __init__(self, memory, controller_size):
        super().__init__()
        self.memory = memory
        self.N, self.M = memory.size()
        self.controller_size = controller_size

    def create_new_state(self, batch_size):
        return torch.zeros(batch_size, self.N)

    def _address_memory(self, k, beta, g, s, gamma, w_prev):
        k = k.clone()
        beta = F.softplus(beta)
        g = torch.sigmoid(g)
        s = F.softmax(s, dim=1)
        gamma = 1 + F.softplus(gamma)
        return self.memory.address(k, beta, g, s, gamma, w_prev)


class NTMReadHead(NTMHeadBase):
    def __init__(self, memory, controller_size):
        super().__init__(memory, controller_size)
        self.read_lengths = [self.M, 1, 1, 3, 1]
        self.fc_read = nn.Linear(controller_size, sum(self.read_lengths))
        nn.init.xavier_uniform_(self.fc_read.weight, gain=1.4)
        nn.init.normal_(self.fc_read.bias, std=0.01)

    def forward(self, embeddings, w_prev):
        o = self.fc_read(embeddings)
        k, beta, g, s, gamma = _split_cols(o, self.read_lengths)
        w = self._address_memory(k, beta, g, s, gamma, w_prev)
        return self.memory.read(w), w


class NTMWriteHead(NTMHeadBase):
    def __init__(self, memory, controller_size):
        super().__init__(memory, controller_size)
        self.write_lengths = [self.M, 1, 1, 3, 1, self.M, self.M]
        self.fc_write = nn.Linear(controller_size, sum(self.write_lengths))
        nn.init.xavier_uniform_(self.fc_write.weight, gain=1.4)
        nn.init.normal_(self.fc_write.bias, std=0.01)

    def forward(self, embeddings, w_prev):
        o = self.fc_write(embeddings)
        k, beta, g, s, gamma, e, a = _split_cols(o, self.write_lengths)
        e = torch.sigmoid(e)
        w = self._address_memory(k, beta, g, s, gamma, w_prev)
        self.memory.write(w, e, a)
        return w


class LSTMController(nn.Module):
    def __init__(self, num_inputs, num_outputs, num_layers):
        super().__init__()
        self.num_outputs, self.num_layers = num_outputs, num_layers
        self.lstm = nn.LSTM(input_size=num_inputs, hidden_size=num_outputs, num_layers=num_layers)
        self.lstm_h_bias = nn.Parameter(torch.randn(num_layers, 1, num_outputs) * 0.05)
        self.lstm_c_bias = nn.Parameter(torch.randn(num_layers, 1, num_outputs) * 0.05)
        for p in self.lstm.parameters():
            if p.dim() == 1:
                nn.init.constant_(p, 0)
            else:
                stdev = 5 / np.sqrt(num_inputs + num_outputs)
                nn.init.uniform_(p, -stdev, stdev)

    def create_new_state(self, batch_size):
        lstm_h = self.lstm_h_bias.clone().repeat(1, batch_size, 1)
        lstm_c = self.lstm_c_bias.clone().repeat(1, batch_size, 1)
        return lstm_h, lstm_c

    def forward(self, x, prev_state):
        x = x.unsqueeze(0)
        outp, state = self.lstm(x, prev_state)
        return outp.squeeze(0), state


class EncapsulatedNTM(nn.Module):
    def __init__(self, num_inputs, num_outputs, controller_size, controller_layers, n, m):
        super().__init__()
        self.num_inputs, self.num_outputs = num_inputs, num_outputs
        self.memory = NTMMemory(n, m)
        self.controller = LSTMController(num_inputs + m, controller_size, controller_layers)
        self.heads = nn.ModuleList([NTMReadHead(self.memory, controller_size),
                                    NTMWriteHead(self.memory, controller_size)])
        self.register_buffer("init_r0", torch.randn(1, m) * 0.01)
        self.fc = nn.Linear(controller_size + m, num_outputs)
        nn.init.xavier_uniform_(self.fc.weight, gain=1)
        nn.init.normal_(self.fc.bias, std=0.01)

    def init_sequence(self, batch_size):
        self.batch_size = batch_size
        self.memory.reset(batch_size)
        init_r = [self.init_r0.clone().repeat(batch_size, 1)]
        controller_state = self.controller.create_new_state(batch_size)
        heads_state = [head.create_new_state(batch_size) for head in self.heads]
        self.previous_state = (init_r, controller_state, heads_state)

    def forward(self, x=None):
        if x is None:
            x = torch.zeros(self.batch_size, self.num_inputs)
        prev_reads, prev_controller_state, prev_heads_states = self.previous_state
        inp = torch.cat([x] + prev_reads, dim=1)
        controller_outp, controller_state = self.controller(inp, prev_controller_state)
        reads, heads_states = [], []
        for head, prev_head_state in zip(self.heads, prev_heads_states):
            if isinstance(head, NTMReadHead):
                r, head_state = head(controller_outp, prev_head_state)
                reads += [r]
            else:
                head_state = head(controller_outp, prev_head_state)
            heads_states += [head_state]
        out = torch.sigmoid(self.fc(torch.cat([controller_outp] + reads, dim=1)))
        self.previous_state = (reads, controller_state, heads_states)
        return out, self.previous_state

    def calculate_num_params(self):
        return sum(p.numel() for p in self.parameters())


def run_sequence(net, X, Y):
    net.init_sequence(X.size(1))
    for i in range(X.size(0)):
        net(X[i])
    y_out = torch.zeros(Y.size())
    for i in range(Y.size(0)):
        y_out[i], _ = net()
    return y_out


# the three circular shifts agree
w = F.softmax(torch.randn(5, N), dim=1)
s = F.softmax(torch.randn(5, 3), dim=1)
looped = torch.stack([circular_convolve(w[b], s[b]) for b in range(5)])
print(f"shift: grouped conv1d = per-example conv1d {torch.allclose(batched_circular_convolve(w, s), looped, atol=1e-6)} "
      f"= torch.roll {torch.allclose(rolled_shift(w, s), looped, atol=1e-6)}")
e, a = torch.rand(5, M), torch.randn(5, M)
batched = torch.matmul(w.unsqueeze(-1), e.unsqueeze(1))
print(f"erase outer products: matmul = torch.outer {torch.allclose(batched[2], torch.outer(w[2], e[2]))} "
      f"= torch.ger {torch.allclose(batched[3], torch.ger(w[3], e[3]))}")

net = EncapsulatedNTM(SEQ_WIDTH + 1, SEQ_WIDTH, CONTROLLER_SIZE, 1, N, M)
print(f"NTM parameters {net.calculate_num_params()} buffers {[name for name, _ in net.named_buffers()]}")
criterion = nn.BCELoss()
optimizer = optim.RMSprop(net.parameters(), momentum=0.9, alpha=0.95, lr=3e-3)

NUM_BATCHES = 200
losses, costs = [], []
for batch_num, X, Y in dataloader(NUM_BATCHES, BATCH, SEQ_WIDTH, MIN_LEN, MAX_LEN):
    optimizer.zero_grad()
    y_out = run_sequence(net, X, Y)
    loss = criterion(y_out, Y)
    loss.backward()
    nn.utils.clip_grad_value_(net.parameters(), 10)
    optimizer.step()
    y_out_binarized = (y_out.clone().data > 0.5).float()
    cost = torch.sum(torch.abs(y_out_binarized - Y.data))
    losses.append(loss.item())
    costs.append(cost.item() / BATCH)
    if batch_num % 40 == 0:
        print(f"batch {batch_num} loss {np.mean(losses[-40:]):.4f} bit errors per sequence {np.mean(costs[-40:]):.3f}")

# evaluation on fresh sequences of each length
net.eval()
errors = {}
with torch.no_grad():
    for length in range(MIN_LEN, MAX_LEN + 1):
        _, X, Y = next(dataloader(1, EVAL_BATCH, SEQ_WIDTH, length, length))
        y_out = run_sequence(net, X, Y)
        errors[length] = torch.sum(torch.abs((y_out > 0.5).float() - Y)).item() / EVAL_BATCH
        read_w = net.previous_state[2][0]
    print("bit errors per sequence by length", {k: round(v, 3) for k, v in errors.items()})
    print(f"read weighting sums to one {torch.allclose(read_w.sum(1), torch.ones(EVAL_BATCH), atol=1e-4)} "
          f"memory {tuple(net.memory.memory.shape)}")
    _, X, Y = next(dataloader(1, EVAL_BATCH, SEQ_WIDTH, MAX_LEN, MAX_LEN))
    test_loss = criterion(run_sequence(net, X, Y), Y).item()
print(f"FINAL train_loss={np.mean(losses[-40:]):.4f} train_bit_errors={np.mean(costs[-40:]):.4f} "
      f"test_loss={test_loss:.4f} bit_errors_len2={errors[2]:.4f} bit_errors_len{MAX_LEN}={errors[MAX_LEN]:.4f} "
      f"bit_errors_mean={sum(errors.values()) / len(errors):.4f}")
