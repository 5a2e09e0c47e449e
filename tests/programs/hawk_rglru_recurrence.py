"""Hawk (De et al. 2024, "Griffin: Mixing Gated Linear Recurrences with Local Attention"; the PyTorch
port in google-deepmind/recurrentgemma's ``modules.py``/``layers.py``) as a tiny LM on packed copy
documents.

The residual block of recurrentgemma: ``RMSNorm`` (``torch.mean(torch.square(x), axis=-1,
keepdims=True)``, ``x * torch.rsqrt(var + eps)``, ``scale + 1``), the recurrent block (a
``gelu(approximate="tanh")`` branch times the x branch: linear, a causal temporal Conv1D by
``F.pad(x, (w - 1, 0))`` + ``F.conv1d(..., groups=width)``, then the RG-LRU), a GeLU-gated MLP by an
einsum over a ``(2, width, hidden)`` weight. The RG-LRU: ``BlockDiagonalLinear`` gates
(``torch.einsum("... h i, h i j -> ... h j", x, self.w) + self.b``), ``log_a = -8.0 * gate_a *
F.softplus(a_param)``, ``a = torch.exp(log_a)``, the normaliser ``sqrt(1 - exp(2 * log_a))`` through a
``SqrtBoundDerivative`` autograd.Function (clipped derivative), replaced by 1 at document starts via
``reset = segment_pos == 0`` (``torch.where``, and recurrentgemma's ``reset + ~reset * multiplier``),
``a * ~reset[..., None]``, and the linear scan ``h_t = a_t * h_{t-1} + x_t`` as recurrentgemma's
Python loop writing ``y[:, t] = h_t``; the a-param init by the in-place chain
``uniform_(min_rad ** 2, max_rad ** 2).log_().mul_(0.5)`` then ``neg_().exp_().sub_(1.0).log_()``;
embeddings scaled by ``sqrt(width)`` and tied to the logits, ``tanh`` logit soft-capping.

The task: documents ``a1..an SEP a1..an`` (n from 3 to 6) packed into rows of 24 tokens, with
``segment_pos`` restarting at each document; loss and accuracy on the copied half.
Checks: the loop scan equals a parallel scan (``torch.cumsum`` of ``log_a`` into a masked
``exp(L_t - L_s)`` decay matrix, ``torch.where`` before ``exp``) in values and gradients, and a
blocked scan (chunks carried by a state); the conv1d equals recurrentgemma's loop over temporal
shifts; token-by-token decoding with the conv and RG-LRU caches equals the full forward.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

VOCAB, SEP, FIRST_SYMBOL = 12, 1, 2
SEQ_LEN, WIDTH, NUM_BLOCKS, CONV_WIDTH = 24, 32, 2, 4


class SqrtBoundDerivative(torch.autograd.Function):
    """sqrt whose derivative is clipped at max_gradient (recurrentgemma's bfloat16 guard)."""

    @staticmethod
    def forward(ctx, x, max_gradient):
        ctx.save_for_backward(x)
        ctx.max_gradient = max_gradient
        return torch.sqrt(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        clipped_x_times_4 = torch.clip(4.0 * x, min=1 / (ctx.max_gradient ** 2))
        return grad_output / torch.sqrt(clipped_x_times_4), None


def rnn_param_init(tensor, min_rad, max_rad, eps=1e-8):
    """a = sigmoid-free radius in [min_rad, max_rad]; stored through the inverse softplus."""
    with torch.no_grad():
        tensor.uniform_(min_rad ** 2 + eps, max_rad ** 2 + eps)
        tensor.log_().mul_(0.5)
        return tensor.neg_().exp_().sub_(1.0).log_()


def rnn_scan(x, a, reset, h0=None):
    """recurrentgemma's linear-mode scan: a Python loop writing y[:, t]."""
    a = a * ~reset[..., None]
    h_t = h0 if h0 is not None else torch.zeros(x[:, 0].shape, dtype=torch.float32, device=x.device)
    y = torch.zeros_like(x)
    for t in range(x.shape[1]):
        h_t = a[:, t].type(torch.float32) * h_t + x[:, t].type(torch.float32)
        y[:, t] = h_t.type(x.dtype)
    return y, h_t


def parallel_scan(x, log_a, segment_ids):
    """h_t = sum_{s<=t, same document} exp(L_t - L_s) x_s with L = cumsum(log a)."""
    T = x.shape[1]
    L = torch.cumsum(log_a, dim=1)  # B, T, D
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    same_doc = segment_ids[:, :, None] == segment_ids[:, None, :]  # B, T, S
    mask = (causal & same_doc)[..., None]
    diff = L[:, :, None, :] - L[:, None, :, :]  # B, T, S, D
    decay = torch.exp(torch.where(mask, diff, torch.tensor(float("-inf"))))
    return torch.einsum("btsd,bsd->btd", decay, x)


def blocked_scan(x, a, reset, chunk=8):
    """The scan in chunks: within a chunk by cumulative products, across chunks by a carried state."""
    a = a * ~reset[..., None]
    outputs, h = [], torch.zeros_like(x[:, 0])
    for start in range(0, x.shape[1], chunk):
        xa, aa = x[:, start:start + chunk], a[:, start:start + chunk]
        A = torch.cumprod(aa, dim=1)  # decay from the chunk start to t
        ys = []
        for t in range(xa.shape[1]):
            # contributions of x_s, s <= t, within the chunk: prod a_{s+1..t}
            ratio = torch.cumprod(aa[:, 1:t + 1].flip(1), dim=1).flip(1) if t > 0 else xa[:, :0]
            weights = torch.cat([ratio, torch.ones_like(xa[:, :1])], dim=1)
            ys.append((weights * xa[:, :t + 1]).sum(1) + A[:, t] * h)
        chunk_y = torch.stack(ys, dim=1)
        outputs.append(chunk_y)
        h = chunk_y[:, -1]
    return torch.cat(outputs, dim=1)


class RMSNorm(nn.Module):
    def __init__(self, width, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.zeros(width))

    def forward(self, x):
        var = torch.mean(torch.square(x), axis=-1, keepdims=True)
        normed_x = x * torch.rsqrt(var + self.eps)
        scale = torch.reshape(self.scale, [1 for _ in range(x.ndim - 1)] + [-1])
        return normed_x * (scale + 1)


class BlockDiagonalLinear(nn.Module):
    def __init__(self, width, num_blocks):
        super().__init__()
        self.num_blocks = num_blocks
        self.block_width = width // num_blocks
        self.w = nn.Parameter(torch.empty([num_blocks, self.block_width, self.block_width]))
        self.b = nn.Parameter(torch.zeros([num_blocks, self.block_width]))
        nn.init.normal_(self.w, std=math.sqrt(1.0 / self.block_width))

    def forward(self, x):
        x = x.view(*x.shape[:-1], self.num_blocks, self.block_width)
        y = torch.einsum("... h i, h i j -> ... h j", x, self.w) + self.b
        return y.flatten(-2)


class RGLRU(nn.Module):
    def __init__(self, width, num_heads):
        super().__init__()
        self.a_param = nn.Parameter(torch.empty([width]))
        self.input_gate = BlockDiagonalLinear(width, num_heads)
        self.a_gate = BlockDiagonalLinear(width, num_heads)
        rnn_param_init(self.a_param, min_rad=0.9, max_rad=0.999)

    def gates(self, x, segment_pos):
        reset = segment_pos == 0
        gate_x = torch.sigmoid(self.input_gate(x))
        gate_a = torch.sigmoid(self.a_gate(x))
        log_a = -8.0 * gate_a * F.softplus(self.a_param)
        a = torch.exp(log_a)
        a_square = torch.exp(2 * log_a)
        multiplier = SqrtBoundDerivative.apply(1 - a_square, 1000)
        multiplier = reset[..., None] + ~reset[..., None] * multiplier
        normalized_x = x * gate_x * multiplier.type(x.dtype)
        return normalized_x, a, log_a, reset

    def forward(self, x, segment_pos, prev_h=None):
        normalized_x, a, _, reset = self.gates(x, segment_pos)
        return rnn_scan(normalized_x, a, reset, prev_h)


class RecurrentBlock(nn.Module):
    def __init__(self, width, num_heads=4, conv1d_temporal_width=CONV_WIDTH):
        super().__init__()
        self.width = width
        self.temporal_width = conv1d_temporal_width
        self.linear_y = nn.Linear(width, width)
        self.linear_x = nn.Linear(width, width)
        self.linear_out = nn.Linear(width, width)
        self.conv_1d = nn.Conv1d(width, width, conv1d_temporal_width, groups=width)
        self.rg_lru = RGLRU(width, num_heads)

    def conv(self, x):
        x = F.pad(x.transpose(1, 2), (self.temporal_width - 1, 0))
        return F.conv1d(x, self.conv_1d.weight, self.conv_1d.bias, groups=self.width).transpose(1, 2)

    def forward(self, x, segment_pos, cache=None):
        y = F.gelu(self.linear_y(x), approximate="tanh")
        x = self.linear_x(x)
        if cache is None:
            conv_state = x[:, -(self.temporal_width - 1):]
            x = self.conv(x)
            x, h = self.rg_lru(x, segment_pos)
        else:
            window = torch.cat([cache["conv"], x], dim=1)  # B, w, D
            conv_state = window[:, 1:]
            w = self.conv_1d.weight.squeeze(1).t()  # w, D
            x = (window * w[None]).sum(1, keepdim=True) + self.conv_1d.bias
            x, h = self.rg_lru(x, segment_pos, cache["h"])
        return self.linear_out(x * y), {"conv": conv_state, "h": h}


class MLPBlock(nn.Module):
    def __init__(self, width, expanded_width):
        super().__init__()
        self.ffw_up_w = nn.Parameter(torch.randn(2, width, expanded_width) / math.sqrt(width))
        self.ffw_up_b = nn.Parameter(torch.zeros(2, 1, 1, expanded_width))
        self.ffw_down = nn.Linear(expanded_width, width)

    def forward(self, x):
        out = torch.einsum("...td,cdh->c...th", x, self.ffw_up_w) + self.ffw_up_b
        gate_value = F.gelu(out[0], approximate="tanh")
        return self.ffw_down(gate_value * out[1])


class ResidualBlock(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.temporal_pre_norm = RMSNorm(width)
        self.temporal_block = RecurrentBlock(width)
        self.channel_pre_norm = RMSNorm(width)
        self.mlp_block = MLPBlock(width, 3 * width)

    def forward(self, raw_x, segment_pos, cache=None):
        x, new_cache = self.temporal_block(self.temporal_pre_norm(raw_x), segment_pos, cache)
        residual = x + raw_x
        x = self.mlp_block(self.channel_pre_norm(residual))
        return x + residual, new_cache


class Hawk(nn.Module):
    def __init__(self, vocab_size=VOCAB, width=WIDTH, num_blocks=NUM_BLOCKS, logits_soft_cap=30.0):
        super().__init__()
        self.width = width
        self.logits_soft_cap = logits_soft_cap
        self.input_embedding = nn.Parameter(torch.randn(vocab_size, width) / math.sqrt(width))
        self.blocks = nn.ModuleList([ResidualBlock(width) for _ in range(num_blocks)])
        self.final_norm = RMSNorm(width)

    def forward(self, tokens, segment_pos, cache=None):
        x = self.input_embedding[(tokens,)] * math.sqrt(self.width)
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, block_cache = block(x, segment_pos, None if cache is None else cache[i])
            new_cache.append(block_cache)
        logits = self.final_norm(x) @ self.input_embedding.T
        c = self.logits_soft_cap
        return nn.functional.tanh(logits / c) * c, new_cache


def make_batch(n, rng):
    """Rows of packed copy documents: tokens, targets (-100 outside the copies), segment_pos."""
    tokens = np.zeros((n, SEQ_LEN + 1), dtype=np.int64)
    targets = np.full((n, SEQ_LEN + 1), -100, dtype=np.int64)
    segment_pos = np.zeros((n, SEQ_LEN + 1), dtype=np.int64)
    for r in range(n):
        t = 0
        while t < SEQ_LEN + 1:
            k = int(rng.integers(3, 7))
            symbols = rng.integers(FIRST_SYMBOL, VOCAB, size=k)
            doc = np.concatenate([symbols, [SEP], symbols])
            doc = doc[:SEQ_LEN + 1 - t]
            tokens[r, t:t + len(doc)] = doc
            segment_pos[r, t:t + len(doc)] = np.arange(len(doc))
            copy_start = t + k + 1
            targets[r, copy_start:t + len(doc)] = doc[k + 1:]
            t += len(doc)
    inputs = torch.from_numpy(tokens[:, :-1])
    # predicting token t+1 from position t: a target counts when t+1 is a copied symbol of the same document
    labels = torch.from_numpy(targets[:, 1:])
    return inputs, labels, torch.from_numpy(segment_pos[:, :-1])


rng = np.random.default_rng(seed)
model = Hawk()
print(f"Hawk parameters: {sum(p.numel() for p in model.parameters())}")

# --- the loop scan against the parallel and the blocked scans
lru = model.blocks[0].temporal_block.rg_lru
x_probe = torch.randn(3, 20, WIDTH, requires_grad=True)
_, _, seg_probe = make_batch(3, rng)
seg_probe = seg_probe[:, :20]
normalized_x, a, log_a, reset = lru.gates(x_probe, seg_probe)
y_loop, h_last = rnn_scan(normalized_x, a, reset)
segment_ids = torch.cumsum(reset.long(), dim=1)
y_par = parallel_scan(normalized_x, log_a, segment_ids)
y_blk = blocked_scan(normalized_x, a, reset, chunk=8)
w_probe = torch.randn_like(y_loop)
grads = [torch.autograd.grad((y * w_probe).sum(), (x_probe, lru.a_param), retain_graph=True) for y in (y_loop, y_par, y_blk)]
scan_err = max((y_loop - y_par).abs().max().item(), (y_loop - y_blk).abs().max().item(),
               (h_last - y_loop[:, -1]).abs().max().item())
scan_grad_err = max((g0 - g1).abs().max().item() for other in grads[1:] for g0, g1 in zip(grads[0], other))
print(f"scan {tuple(y_loop.shape)}: loop vs parallel vs blocked err {scan_err:.2e}, grad err {scan_grad_err:.2e}")

# --- the causal conv1d against recurrentgemma's loop over temporal shifts
block = model.blocks[0].temporal_block
with torch.no_grad():
    xc = torch.randn(2, 10, WIDTH)
    conv_out = block.conv(xc)
    w = block.conv_1d.weight.squeeze(1).t()  # temporal_width, D
    loop_out = 0.0
    for shift in range(CONV_WIDTH):
        x_window = F.pad(xc[:, :xc.shape[1] - shift], (0, 0, shift, 0))
        loop_out = loop_out + x_window * w[CONV_WIDTH - shift - 1][None, None, :]
    loop_out = loop_out + block.conv_1d.bias[None, None]
conv_err = (conv_out - loop_out).abs().max().item()
print(f"conv1d {tuple(conv_out.shape)} vs loop over shifts: err {conv_err:.2e}")

# --- training
test_inputs, test_labels, test_pos = make_batch(128, rng)
optimizer = torch.optim.AdamW(model.parameters(), lr=6e-3, weight_decay=0.01, betas=(0.9, 0.98))
STEPS, BATCH = 160, 32
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=6e-3, total_steps=STEPS, pct_start=0.1)


@torch.no_grad()
def evaluate():
    model.eval()
    logits, _ = model(test_inputs, test_pos)
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), test_labels.reshape(-1), ignore_index=-100).item()
    hit = (logits.argmax(-1) == test_labels)[test_labels != -100]
    model.train()
    return loss, hit.float().mean().item()


loss_start, acc_start = evaluate()
for step in range(STEPS):
    inputs, labels, segment_pos = make_batch(BATCH, rng)  # fresh documents every step
    logits, _ = model(inputs, segment_pos)
    loss = F.cross_entropy(logits.view(-1, VOCAB), labels.reshape(-1), ignore_index=-100)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    if step % 40 == 0 or step == STEPS - 1:
        print(f"step {step} loss {loss.item():.4f}")

loss_end, acc_end = evaluate()

# --- decoding token by token with the caches equals the full forward
with torch.no_grad():
    model.eval()
    prompt, pos = test_inputs[:4, :12], test_pos[:4, :12]
    full_logits, _ = model(prompt, pos)
    cache = [{"conv": torch.zeros(4, CONV_WIDTH - 1, WIDTH), "h": torch.zeros(4, WIDTH)} for _ in model.blocks]
    step_logits = []
    for t in range(prompt.shape[1]):
        logits_t, cache = model(prompt[:, t:t + 1], pos[:, t:t + 1], cache)
        step_logits.append(logits_t)
    decode_err = (torch.cat(step_logits, dim=1) - full_logits).abs().max().item()
print(f"cached decoding of {prompt.shape[1]} tokens vs full forward: err {decode_err:.2e}")
check_err = max(scan_err, scan_grad_err, conv_err, decode_err)
print(f"copy loss {loss_start:.4f} -> {loss_end:.4f}, copy accuracy {acc_start:.4f} -> {acc_end:.4f}")
print(f"FINAL loss={loss_end:.4f} acc={acc_end:.4f} check_err={check_err:.3e}")
