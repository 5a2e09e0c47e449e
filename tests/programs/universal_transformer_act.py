"""Universal Transformer with Adaptive Computation Time (Dehghani et al. 2019; Graves 2016), in the layout
of andreamad8/Universal-Transformer-Pytorch (``ACT_basic``, ``_gen_timing_signal``, the shared
``EncoderLayer``), on a tiny per-position task.

One ``EncoderLayer`` (pre-norm multi-head attention + position-wise feed-forward, the repository's
``LayerNorm`` with ``x.std(-1, keepdim=True)``) is applied again and again by ``ACT_basic``: per step the
timing signal and the step signal (both from ``_gen_timing_signal``, NumPy sin/cos ``torch.from_numpy``-ed)
are added, the halting probability ``torch.sigmoid(self.p(state)).squeeze(-1)`` is masked by
``still_running = (halting_probability < 1.0).float()``, ``new_halted`` and the remainders are formed,
``n_updates`` counted, and the new state blended in by ``update_weights = p * still_running + new_halted *
remainders`` while ``((halting_probability < threshold) & (n_updates < max_hop)).byte().any()``. The loss
adds the ponder cost ``act_loss_weight * torch.mean(remainders + n_updates)``; Adam trains it.

The task: each position's target is ``(x[t] + x[t - 1]) % K`` (the first position: ``x[0]``).

Checked: ``n_updates``, the remainders and the weighted state against a per-position Python loop over
the recorded per-step halting probabilities and states (Graves' algorithm written with floats), that the
ponder cost's gradient reaches the halting unit (``autograd.grad``) and equals a float64 central finite
difference along a random direction, accuracy, and the mean ponder time after training.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

VOCAB, SEQ_LEN, HIDDEN, HEADS, MAX_HOP = 5, 8, 32, 4, 6
ACT_LOSS_WEIGHT = 0.01


def _gen_timing_signal(length, channels, min_timescale=1.0, max_timescale=1.0e4):
    """Generates a [1, length, channels] timing signal consisting of sinusoids (the tensor2tensor one)."""
    position = np.arange(length)
    num_timescales = channels // 2
    log_timescale_increment = (math.log(float(max_timescale) / float(min_timescale)) / (float(num_timescales) - 1))
    inv_timescales = min_timescale * np.exp(np.arange(num_timescales).astype(np.float64) * -log_timescale_increment)
    scaled_time = np.expand_dims(position, 1) * np.expand_dims(inv_timescales, 0)
    signal = np.concatenate([np.sin(scaled_time), np.cos(scaled_time)], axis=1)
    signal = np.pad(signal, [[0, 0], [0, channels % 2]], "constant", constant_values=[0.0, 0.0])
    signal = signal.reshape([1, length, channels])
    return torch.from_numpy(signal).type(torch.FloatTensor)


class LayerNorm(nn.Module):
    # Borrowed from jekbradbury
    def __init__(self, features, eps=1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(features))
        self.beta = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.gamma * (x - mean) / (std + self.eps) + self.beta


class MultiHeadAttention(nn.Module):
    def __init__(self, input_depth, total_key_depth, total_value_depth, output_depth, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.query_scale = (total_key_depth // num_heads) ** -0.5
        self.query_linear = nn.Linear(input_depth, total_key_depth, bias=False)
        self.key_linear = nn.Linear(input_depth, total_key_depth, bias=False)
        self.value_linear = nn.Linear(input_depth, total_value_depth, bias=False)
        self.output_linear = nn.Linear(total_value_depth, output_depth, bias=False)

    def _split_heads(self, x):
        shape = x.shape
        return x.view(shape[0], shape[1], self.num_heads, shape[2] // self.num_heads).permute(0, 2, 1, 3)

    def _merge_heads(self, x):
        shape = x.shape
        return x.permute(0, 2, 1, 3).contiguous().view(shape[0], shape[2], shape[3] * self.num_heads)

    def forward(self, queries, keys, values):
        queries = self._split_heads(self.query_linear(queries)) * self.query_scale
        keys = self._split_heads(self.key_linear(keys))
        values = self._split_heads(self.value_linear(values))
        logits = torch.matmul(queries, keys.permute(0, 1, 3, 2))
        weights = nn.functional.softmax(logits, dim=-1)
        contexts = self._merge_heads(torch.matmul(weights, values))
        return self.output_linear(contexts)


class PositionwiseFeedForward(nn.Module):
    def __init__(self, input_depth, filter_size, output_depth):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(input_depth, filter_size), nn.Linear(filter_size, output_depth)])
        self.relu = nn.ReLU()

    def forward(self, inputs):
        x = inputs
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.relu(x)
        return x


class EncoderLayer(nn.Module):
    def __init__(self, hidden_size, total_key_depth, total_value_depth, filter_size, num_heads):
        super().__init__()
        self.multi_head_attention = MultiHeadAttention(hidden_size, total_key_depth, total_value_depth,
                                                       hidden_size, num_heads)
        self.positionwise_feed_forward = PositionwiseFeedForward(hidden_size, filter_size, hidden_size)
        self.layer_norm_mha = LayerNorm(hidden_size)
        self.layer_norm_ffn = LayerNorm(hidden_size)

    def forward(self, inputs):
        x = inputs
        x_norm = self.layer_norm_mha(x)
        y = self.multi_head_attention(x_norm, x_norm, x_norm)
        x = x + y
        x_norm = self.layer_norm_ffn(x)
        y = self.positionwise_feed_forward(x_norm)
        return y + x


class ACT_basic(nn.Module):  # noqa: N801  (the repository's name)
    def __init__(self, hidden_size):
        super().__init__()
        self.sigma = nn.Sigmoid()
        self.p = nn.Linear(hidden_size, 1)
        self.p.bias.data.fill_(1)
        self.threshold = 1 - 0.1
        self.record = None

    def forward(self, state, inputs, fn, time_enc, pos_enc, max_hop):
        # [B, S]
        halting_probability = torch.zeros(inputs.shape[0], inputs.shape[1])
        remainders = torch.zeros(inputs.shape[0], inputs.shape[1])
        n_updates = torch.zeros(inputs.shape[0], inputs.shape[1])
        # [B, S, HDD]
        previous_state = torch.zeros_like(inputs)
        step = 0
        while ((halting_probability < self.threshold) & (n_updates < max_hop)).byte().any():
            # Add timing signal
            state = state + time_enc[:, :inputs.shape[1], :].type_as(inputs.data)
            state = state + pos_enc[:, step, :].unsqueeze(1).repeat(1, inputs.shape[1], 1).type_as(inputs.data)

            p = self.sigma(self.p(state)).squeeze(-1)
            # Mask for inputs which have not halted yet
            still_running = (halting_probability < 1.0).float()
            # Mask of inputs which halted at this step
            new_halted = (halting_probability + p * still_running > self.threshold).float() * still_running
            # Mask of inputs which haven't halted, and didn't halt this step
            still_running = (halting_probability + p * still_running <= self.threshold).float() * still_running
            # Add the halting probability for this step to the halting probabilities of those still running
            halting_probability = halting_probability + p * still_running
            # Compute remainders for the inputs which halted at this step
            remainders = remainders + new_halted * (1 - halting_probability)
            # Add the remainders to those inputs which halted at this step
            halting_probability = halting_probability + new_halted * remainders
            # Increment n_updates for all inputs which are still running
            n_updates = n_updates + still_running + new_halted
            # 0 when the input has already halted, p when it has not, the remainder when it halted now
            update_weights = p * still_running + new_halted * remainders

            state = fn(state)
            if self.record is not None:
                self.record.append((p.detach().clone(), state.detach().clone()))

            # update running part in the weighted state and keep the rest
            previous_state = (state * update_weights.unsqueeze(-1)) + (previous_state * (1 - update_weights.unsqueeze(-1)))
            step += 1
        return previous_state, (remainders, n_updates)


class Encoder(nn.Module):
    def __init__(self, vocab, hidden_size, num_heads, max_length, max_hop):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden_size)
        self.timing_signal = _gen_timing_signal(max_length, hidden_size)
        self.position_signal = _gen_timing_signal(max_hop, hidden_size)
        self.max_hop = max_hop
        self.embedding_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.enc = EncoderLayer(hidden_size, hidden_size, hidden_size, 2 * hidden_size, num_heads)
        self.layer_norm = LayerNorm(hidden_size)
        self.act_fn = ACT_basic(hidden_size)
        self.out = nn.Linear(hidden_size, vocab)

    def forward(self, inputs):
        x = self.embedding_proj(self.embedding(inputs))
        x, (remainders, n_updates) = self.act_fn(x, x, self.enc, self.timing_signal, self.position_signal,
                                                 self.max_hop)
        return self.out(self.layer_norm(x)), (remainders, n_updates)


def make_batch(n):
    x = torch.randint(0, VOCAB, (n, SEQ_LEN))
    y = x.clone()
    y[:, 1:] = (x[:, 1:] + x[:, :-1]) % VOCAB
    return x, y


model = Encoder(VOCAB, HIDDEN, HEADS, SEQ_LEN, MAX_HOP)

# ------------------------------------------- the vectorised ACT against a per-position Python loop
def act_against_loop(encoder, inputs):
    """Run the encoder's ACT recording each step's halting probabilities and states, then replay
    Graves' algorithm per position with Python floats; the largest differences."""
    encoder.act_fn.record = []
    with torch.no_grad():
        embedded = encoder.embedding_proj(encoder.embedding(inputs))
        weighted, (remainders, n_updates) = encoder.act_fn(embedded, embedded, encoder.enc, encoder.timing_signal,
                                                           encoder.position_signal, MAX_HOP)
    record, encoder.act_fn.record = encoder.act_fn.record, None
    threshold = encoder.act_fn.threshold
    loop_updates = torch.zeros_like(n_updates)
    loop_remainders = torch.zeros_like(remainders)
    loop_state = torch.zeros_like(weighted)
    for b in range(inputs.size(0)):
        for s in range(inputs.size(1)):
            cumulative, halted, count, remainder = 0.0, False, 0, 0.0
            state = torch.zeros(HIDDEN)
            for p_step, state_step in record:
                p = p_step[b, s].item()
                if halted:
                    weight = 0.0
                elif cumulative + p > threshold:
                    remainder = 1.0 - cumulative
                    weight, halted, count = remainder, True, count + 1
                else:
                    cumulative += p
                    weight, count = p, count + 1
                state = state_step[b, s] * weight + state * (1 - weight)
            loop_updates[b, s], loop_remainders[b, s], loop_state[b, s] = count, remainder, state
    return (len(record), n_updates, torch.equal(loop_updates, n_updates),
            (loop_remainders - remainders).abs().max().item(), (loop_state - weighted).abs().max().item())


x_check, _ = make_batch(4)
# the repository's start (bias 1: every position halts at its second step) and a copy whose halting
# unit varies (positions halt after 1 to MAX_HOP steps, some at MAX_HOP without halting)
varied = copy.deepcopy(model)
nn.init.normal_(varied.act_fn.p.weight, std=0.4)
varied.act_fn.p.bias.data.fill_(-1.5)
updates_equal, remainder_diff, state_diff = True, 0.0, 0.0
for name, encoder in (("initial", model), ("varied", varied)):
    steps, n_updates, equal, r_diff, s_diff = act_against_loop(encoder, x_check)
    updates_equal, remainder_diff, state_diff = updates_equal and equal, max(remainder_diff, r_diff), max(state_diff, s_diff)
    print(f"{name} halting: {steps} ACT steps, mean n_updates {n_updates.mean().item():.3f}; n_updates equal to "
          f"the loop {equal}, remainders {r_diff:.2e}, weighted state {s_diff:.2e}")

# --------------------------------------------------- the ponder cost's gradient reaches the halting unit
_, (remainders, n_updates) = model(x_check)
ponder_cost = torch.mean(remainders + n_updates)
grad_w, grad_b = torch.autograd.grad(ponder_cost, [model.act_fn.p.weight, model.act_fn.p.bias])
direction = torch.randn_like(grad_w)
model.double()
model.timing_signal, model.position_signal = model.timing_signal.double(), model.position_signal.double()
eps = 1e-6
with torch.no_grad():
    costs = []
    for sign in (1, -1):
        model.act_fn.p.weight.add_(sign * eps * direction.double())
        _, (r, n) = model(x_check)
        costs.append(torch.mean(r + n).item())
        model.act_fn.p.weight.sub_(sign * eps * direction.double())
    finite_difference = (costs[0] - costs[1]) / (2 * eps)
analytic = (grad_w.double() * direction.double()).sum().item()
ponder_fd_err = abs(finite_difference - analytic) / max(abs(analytic), 1e-8)
print(f"ponder cost {ponder_cost.item():.4f}: gradient norm {grad_w.norm().item():.4f} (bias {grad_b.item():.4f}), "
      f"finite difference relative error {ponder_fd_err:.2e}")
model.float()
model.timing_signal, model.position_signal = model.timing_signal.float(), model.position_signal.float()

# ---------------------------------------------------------------------------------------- training
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for step in range(1, 201):
    x, y = make_batch(32)
    logits, (remainders, n_updates) = model(x)
    loss = F.cross_entropy(logits.view(-1, VOCAB), y.view(-1))
    loss = loss + ACT_LOSS_WEIGHT * torch.mean(remainders + n_updates)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step}: loss {loss.item():.4f}, mean n_updates {n_updates.mean().item():.3f}")

model.eval()
with torch.no_grad():
    x, y = make_batch(256)
    logits, (remainders, n_updates) = model(x)
    accuracy = (logits.argmax(-1) == y).float().mean().item()
    ponder = (remainders + n_updates).mean().item()
print(f"accuracy {accuracy:.4f}, ponder time {ponder:.3f}, n_updates {n_updates.min().item():.0f}"
      f"..{n_updates.max().item():.0f}")
print(f"FINAL accuracy={accuracy:.4f} ponder={ponder:.4f} updates_equal={float(updates_equal):.0f} "
      f"remainder_diff={remainder_diff:.6f} state_diff={state_diff:.6f} ponder_fd_err={ponder_fd_err:.6f} "
      f"ponder_grad_norm={grad_w.norm().item():.4f}")
