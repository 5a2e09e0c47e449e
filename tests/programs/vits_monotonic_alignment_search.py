"""Glow-TTS / VITS monotonic alignment search (jaywalnut310/glow-tts, jaywalnut310/vits) at toy size.

``commons.sequence_mask`` by ``torch.arange(max_length).unsqueeze(0) < length.unsqueeze(1)``, masks by
``torch.unsqueeze(commons.sequence_mask(x_lengths, x.size(2)), 1).to(x.dtype)``, ``attn_mask =
torch.unsqueeze(x_mask, -1) * torch.unsqueeze(y_mask, 2)``; the log-likelihood matrix built from four terms
both as Glow-TTS writes it (``x_s_sq_r = torch.exp(-2 * x_logs)``, ``torch.sum(-0.5 * math.log(2 * math.pi) -
x_logs, [1]).unsqueeze(-1)``, ``torch.matmul(x_s_sq_r.transpose(1,2), -0.5 * (z ** 2))``, ...) and as VITS
writes it (``neg_cent2 = torch.matmul(-0.5 * (z_p ** 2).transpose(1, 2), s_p_sq_r)``, ``keepdim=True``),
checked against a direct broadcast of the Gaussian log-density; ``maximum_path`` as Glow-TTS's vectorised DP
in torch ops under ``torch.no_grad()`` (``F.pad(v, [1, 0], value=-inf)[:, :-1]``, ``torch.where``, a
``direction`` table written by ``direction[:, :, j] = max_mask``, backtracking by ``path[index_range, index, j] =
1``) checked against the Cython ``maximum_path_each`` loop in NumPy; ``commons.generate_path`` by
``torch.cumsum(duration, 1)`` and ``path - F.pad(path, convert_pad_shape([[0, 0], [1, 0], [0, 0]]))[:, :-1]``
(must rebuild the searched path from its durations); the prior expanded by ``torch.matmul(attn.squeeze(1),
m_p.transpose(1, 2))``, Glow-TTS's ``mle_loss`` and ``duration_loss`` with ``logw_ = torch.log(1e-6 +
torch.sum(attn, -1)) * x_mask``, a ``DurationPredictor`` (conv + channel ``LayerNorm`` + dropout) on
``x.detach()``, Adam; inference by ``w_ceil = torch.ceil(torch.exp(logw) * x_mask * length_scale)`` and
``torch.clamp_min(torch.sum(w_ceil, [1, 2]), 1).long()``. Synthetic "speech": each token id has a fixed mean
frame and duration; the searched alignment must find the true durations once the encoder has learned.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

N_VOCAB, HIDDEN, OUT_CHANNELS, FILTER = 10, 32, 4, 32
TOKEN_MEANS = rng.standard_normal((N_VOCAB, OUT_CHANNELS)).astype(np.float32) * 1.5
TOKEN_DURATIONS = 1 + (np.arange(N_VOCAB) * 7) % 4  # 1..4 frames per token


# ---- commons.py ----
def sequence_mask(length, max_length=None):
    if max_length is None:
        max_length = length.max()
    x = torch.arange(max_length, dtype=length.dtype, device=length.device)
    return x.unsqueeze(0) < length.unsqueeze(1)


def convert_pad_shape(pad_shape):
    l = pad_shape[::-1]  # noqa: E741 (the repository's name)
    pad_shape = [item for sublist in l for item in sublist]
    return pad_shape


def generate_path(duration, mask):
    """
    duration: [b, t_x]
    mask: [b, t_x, t_y]
    """
    device = duration.device

    b, t_x, t_y = mask.shape
    cum_duration = torch.cumsum(duration, 1)
    path = torch.zeros(b, t_x, t_y, dtype=mask.dtype).to(device=device)

    cum_duration_flat = cum_duration.view(b * t_x)
    path = sequence_mask(cum_duration_flat, t_y).to(mask.dtype)
    path = path.view(b, t_x, t_y)
    path = path - F.pad(path, convert_pad_shape([[0, 0], [1, 0], [0, 0]]))[:, :-1]
    path = path * mask
    return path


@torch.no_grad()
def maximum_path(value, mask, max_neg_val=-np.inf):
    """Glow-TTS's vectorised search, written with torch ops.
    value: [b, t_x, t_y]
    mask: [b, t_x, t_y]
    """
    value = value * mask
    device = value.device
    dtype = value.dtype
    b, t_x, t_y = value.shape
    direction = torch.zeros(value.shape, dtype=torch.int64, device=device)
    v = torch.zeros((b, t_x), dtype=torch.float32, device=device)
    x_range = torch.arange(t_x, dtype=torch.float32, device=device).view(1, -1)
    for j in range(t_y):
        v0 = F.pad(v, [1, 0], mode="constant", value=max_neg_val)[:, :-1]
        v1 = v
        max_mask = v1 >= v0
        v_max = torch.where(max_mask, v1, v0)
        direction[:, :, j] = max_mask

        index_mask = x_range <= j
        v = torch.where(index_mask, v_max + value[:, :, j], max_neg_val)
    direction = torch.where(mask.bool(), direction, 1)

    path = torch.zeros(value.shape, dtype=torch.float32, device=device)
    index = mask[:, :, 0].sum(1).long() - 1
    index_range = torch.arange(b, device=device)
    for j in reversed(range(t_y)):
        path[index_range, index, j] = 1
        index = index + direction[index_range, index, j] - 1
    path = path * mask
    return path.to(dtype=dtype)


def maximum_path_each_numpy(value, t_y, t_x, max_neg_val=-1e9):
    """monotonic_align/core.pyx's maximum_path_each on one item: value is [t_y, t_x], float64 here."""
    value = value.copy()
    path = np.zeros(value.shape, dtype=np.int32)
    index = t_x - 1
    for y in range(t_y):
        for x in range(max(0, t_x + y - t_y), min(t_x, y + 1)):
            v_cur = max_neg_val if x == y else value[y - 1, x]
            if x == 0:
                v_prev = 0.0 if y == 0 else max_neg_val
            else:
                v_prev = value[y - 1, x - 1]
            value[y, x] += max(v_prev, v_cur)
    for y in range(t_y - 1, -1, -1):
        path[y, index] = 1
        if index != 0 and (index == y or value[y - 1, index] < value[y - 1, index - 1]):
            index = index - 1
    return path


# ---- modules.py / models.py ----
class LayerNorm(nn.Module):
    def __init__(self, channels, eps=1e-4):
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        n_dims = len(x.shape)
        mean = torch.mean(x, 1, keepdim=True)
        variance = torch.mean((x - mean) ** 2, 1, keepdim=True)
        x = (x - mean) * torch.rsqrt(variance + self.eps)
        shape = [1, -1] + [1] * (n_dims - 2)
        x = x * self.gamma.view(*shape) + self.beta.view(*shape)
        return x


class DurationPredictor(nn.Module):
    def __init__(self, in_channels, filter_channels, kernel_size, p_dropout):
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_1 = LayerNorm(filter_channels)
        self.conv_2 = nn.Conv1d(filter_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_2 = LayerNorm(filter_channels)
        self.proj = nn.Conv1d(filter_channels, 1, 1)

    def forward(self, x, x_mask):
        x = self.conv_1(x * x_mask)
        x = torch.relu(x)
        x = self.norm_1(x)
        x = self.drop(x)
        x = self.conv_2(x * x_mask)
        x = torch.relu(x)
        x = self.norm_2(x)
        x = self.drop(x)
        x = self.proj(x * x_mask)
        return x * x_mask


class TextEncoder(nn.Module):
    def __init__(self, n_vocab, out_channels, hidden_channels, filter_channels, kernel_size=3, p_dropout=0.1):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.emb = nn.Embedding(n_vocab, hidden_channels)
        nn.init.normal_(self.emb.weight, 0.0, hidden_channels ** -0.5)
        self.convs = nn.ModuleList([nn.Conv1d(hidden_channels, hidden_channels, kernel_size, padding=kernel_size // 2)
                                    for _ in range(2)])
        self.norms = nn.ModuleList([LayerNorm(hidden_channels) for _ in range(2)])
        self.proj_m = nn.Conv1d(hidden_channels, out_channels, 1)
        self.proj_s = nn.Conv1d(hidden_channels, out_channels, 1)
        self.proj_w = DurationPredictor(hidden_channels, filter_channels, kernel_size, p_dropout)

    def forward(self, x, x_lengths):
        x = self.emb(x) * math.sqrt(self.hidden_channels)  # [b, t, h]
        x = torch.transpose(x, 1, -1)  # [b, h, t]
        x_mask = torch.unsqueeze(sequence_mask(x_lengths, x.size(2)), 1).to(x.dtype)
        for conv, norm in zip(self.convs, self.norms):
            x = norm(x + torch.relu(conv(x * x_mask)))
        x = x * x_mask
        x_m = self.proj_m(x) * x_mask
        x_logs = self.proj_s(x) * x_mask
        logw = self.proj_w(x.detach(), x_mask)
        return x_m, x_logs, logw, x_mask


def glow_tts_logp(z, x_m, x_logs):
    """models.py FlowGenerator.forward: [b, t_x, t_y]."""
    x_s_sq_r = torch.exp(-2 * x_logs)
    logp1 = torch.sum(-0.5 * math.log(2 * math.pi) - x_logs, [1]).unsqueeze(-1)  # [b, t, 1]
    logp2 = torch.matmul(x_s_sq_r.transpose(1, 2), -0.5 * (z ** 2))  # [b, t, d] x [b, d, t'] = [b, t, t']
    logp3 = torch.matmul((x_m * x_s_sq_r).transpose(1, 2), z)  # [b, t, d] x [b, d, t'] = [b, t, t']
    logp4 = torch.sum(-0.5 * (x_m ** 2) * x_s_sq_r, [1]).unsqueeze(-1)  # [b, t, 1]
    return logp1 + logp2 + logp3 + logp4  # [b, t, t']


def vits_neg_cent(z_p, m_p, logs_p):
    """VITS SynthesizerTrn.forward: [b, t_t, t_s]."""
    s_p_sq_r = torch.exp(-2 * logs_p)  # [b, d, t]
    neg_cent1 = torch.sum(-0.5 * math.log(2 * math.pi) - logs_p, [1], keepdim=True)  # [b, 1, t_s]
    neg_cent2 = torch.matmul(-0.5 * (z_p ** 2).transpose(1, 2), s_p_sq_r)  # [b, t_t, d] x [b, d, t_s]
    neg_cent3 = torch.matmul(z_p.transpose(1, 2), (m_p * s_p_sq_r))  # [b, t_t, d] x [b, d, t_s]
    neg_cent4 = torch.sum(-0.5 * (m_p ** 2) * s_p_sq_r, [1], keepdim=True)  # [b, 1, t_s]
    return neg_cent1 + neg_cent2 + neg_cent3 + neg_cent4


def direct_logp(z, x_m, x_logs):
    """The Gaussian log-density summed over channels, by broadcasting [b, d, t_x, 1] against [b, d, 1, t_y]."""
    m = x_m.unsqueeze(-1)
    logs = x_logs.unsqueeze(-1)
    zz = z.unsqueeze(2)
    return torch.sum(-0.5 * math.log(2 * math.pi) - logs - 0.5 * (zz - m) ** 2 * torch.exp(-2 * logs), 1)


def mle_loss(z, m, logs, logdet, mask):
    l = torch.sum(logs) + 0.5 * torch.sum(torch.exp(-2 * logs) * ((z - m) ** 2))  # noqa: E741
    l = l - torch.sum(logdet)  # noqa: E741
    l = l / torch.sum(torch.ones_like(z) * mask)  # noqa: E741
    l = l + 0.5 * math.log(2 * math.pi)  # noqa: E741
    return l


def duration_loss(logw, logw_, lengths):
    l = torch.sum((logw - logw_) ** 2) / torch.sum(lengths)  # noqa: E741
    return l


def make_batch(b):
    """Token sequences with lengths 4..8, frames = the token's mean repeated for its duration + noise."""
    x_lengths = rng.integers(4, 9, size=b)
    t_x = int(x_lengths.max())
    x = np.zeros((b, t_x), dtype=np.int64)
    durations = np.zeros((b, t_x), dtype=np.int64)
    for i, n in enumerate(x_lengths):
        x[i, :n] = rng.integers(0, N_VOCAB, size=n)
        durations[i, :n] = TOKEN_DURATIONS[x[i, :n]]
    y_lengths = durations.sum(1)
    t_y = int(y_lengths.max())
    y = np.zeros((b, OUT_CHANNELS, t_y), dtype=np.float32)
    for i in range(b):
        frames = np.repeat(TOKEN_MEANS[x[i, :x_lengths[i]]], durations[i, :x_lengths[i]], axis=0)
        y[i, :, :len(frames)] = frames.T + 0.3 * rng.standard_normal(frames.T.shape)
    return (torch.from_numpy(x), torch.from_numpy(x_lengths), torch.from_numpy(y), torch.from_numpy(y_lengths),
            torch.from_numpy(durations))


def align(model, x, x_lengths, y, y_lengths):
    x_m, x_logs, logw, x_mask = model(x, x_lengths)
    y_max_length = y.size(2)
    z_mask = torch.unsqueeze(sequence_mask(y_lengths, y_max_length), 1).to(x_mask.dtype)
    attn_mask = torch.unsqueeze(x_mask, -1) * torch.unsqueeze(z_mask, 2)
    z = y * z_mask  # the flow is the identity here: z is the acoustic frames
    with torch.no_grad():
        logp = glow_tts_logp(z, x_m, x_logs)
        attn = maximum_path(logp, attn_mask.squeeze(1)).unsqueeze(1).detach()
    return x_m, x_logs, logw, x_mask, z, z_mask, attn_mask, logp, attn


def numpy_agreement(logp, x_lengths, y_lengths, attn):
    """Fraction of items whose torch-ops path equals the Cython loop's on the same (float64) values."""
    same = 0
    for i in range(logp.shape[0]):
        tx, ty = int(x_lengths[i]), int(y_lengths[i])
        ref = maximum_path_each_numpy(logp[i, :tx, :ty].double().numpy().T, ty, tx)
        same += int(np.array_equal(ref.T, attn[i, 0, :tx, :ty].numpy().astype(np.int32)))
    return same / logp.shape[0]


model = TextEncoder(N_VOCAB, OUT_CHANNELS, HIDDEN, FILTER)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.98), eps=1e-9)

# ---- the log-likelihood matrix three ways, and the search against NumPy, before training ----
x, x_lengths, y, y_lengths, durations = make_batch(6)
x_m, x_logs, logw, x_mask, z, z_mask, attn_mask, logp, attn = align(model, x, x_lengths, y, y_lengths)
neg_cent = vits_neg_cent(z, x_m, x_logs).transpose(1, 2)
direct = direct_logp(z, x_m, x_logs)
logp_diff = max((logp - direct).abs().max().item(), (neg_cent - direct).abs().max().item()) / direct.abs().max().item()
agree_before = numpy_agreement(logp, x_lengths, y_lengths, attn)
print(f"logp shape {tuple(logp.shape)} four-term vs direct rel diff {logp_diff:.2e}")
print(f"untrained: maximum_path equals the Cython loop on {agree_before:.4f} of items")

# generate_path from the searched durations rebuilds the path; every frame has exactly one token
w = attn.squeeze(1).sum(2)
rebuilt = generate_path(w, attn_mask.squeeze(1))
path_diff = (rebuilt - attn.squeeze(1)).abs().max().item()
one_per_frame = bool(torch.equal(attn.squeeze(1).sum(1), z_mask.squeeze(1)))
print(f"generate_path(attn.sum(2)) vs attn max diff {path_diff:.1f} one token per frame {one_per_frame}")
print(f"sequence_mask {sequence_mask(torch.tensor([1, 3]), 4).int().tolist()} "
      f"convert_pad_shape {convert_pad_shape([[0, 0], [1, 0], [0, 0]])}")

# ---- training ----
model.train()
for step in range(150):
    x, x_lengths, y, y_lengths, durations = make_batch(8)
    x_m, x_logs, logw, x_mask, z, z_mask, attn_mask, logp, attn = align(model, x, x_lengths, y, y_lengths)
    z_m = torch.matmul(attn.squeeze(1).transpose(1, 2), x_m.transpose(1, 2)).transpose(1, 2)  # [b, t', t], [b, t, d]
    z_logs = torch.matmul(attn.squeeze(1).transpose(1, 2), x_logs.transpose(1, 2)).transpose(1, 2)
    logw_ = torch.log(1e-6 + torch.sum(attn, -1)) * x_mask
    l_mle = mle_loss(z, z_m, z_logs, torch.zeros(z.size(0)), z_mask)
    l_length = duration_loss(logw, logw_, x_lengths)
    loss = l_mle + l_length
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    if step % 30 == 0 or step == 149:
        print(f"step {step} mle {l_mle.item():.4f} dur {l_length.item():.4f}")

# ---- evaluation ----
model.eval()
with torch.no_grad():
    x, x_lengths, y, y_lengths, durations = make_batch(16)
    x_m, x_logs, logw, x_mask, z, z_mask, attn_mask, logp, attn = align(model, x, x_lengths, y, y_lengths)
    searched = attn.squeeze(1).sum(2).long()
    token_mask = x_mask.squeeze(1).bool()
    align_acc = (searched == durations)[token_mask].float().mean().item()
    agree_after = numpy_agreement(logp, x_lengths, y_lengths, attn)
    z_m = torch.matmul(attn.squeeze(1).transpose(1, 2), x_m.transpose(1, 2)).transpose(1, 2)
    z_logs = torch.matmul(attn.squeeze(1).transpose(1, 2), x_logs.transpose(1, 2)).transpose(1, 2)
    eval_mle = mle_loss(z, z_m, z_logs, torch.zeros(z.size(0)), z_mask).item()

    # inference: durations from the predictor, the path built from them
    length_scale = 1.0
    w = torch.exp(logw) * x_mask * length_scale
    w_ceil = torch.ceil(w)
    y_lengths_pred = torch.clamp_min(torch.sum(w_ceil, [1, 2]), 1).long()
    y_mask = torch.unsqueeze(sequence_mask(y_lengths_pred, None), 1).to(x_mask.dtype)
    attn_mask_pred = torch.unsqueeze(x_mask, -1) * torch.unsqueeze(y_mask, 2)
    attn_pred = generate_path(w_ceil.squeeze(1), attn_mask_pred.squeeze(1)).unsqueeze(1)
    y_pred = torch.matmul(attn_pred.squeeze(1).transpose(1, 2), x_m.transpose(1, 2)).transpose(1, 2)
    dur_acc = (torch.round(torch.exp(logw)).squeeze(1).long() == durations)[token_mask].float().mean().item()
    len_err = (y_lengths_pred - y_lengths).abs().float().mean().item()
    mean_err = (x_m.transpose(1, 2)[token_mask] - torch.from_numpy(TOKEN_MEANS)[x[token_mask]]).abs().mean().item()
print(f"eval: mle {eval_mle:.4f} searched durations correct {align_acc:.4f} "
      f"maximum_path equals the Cython loop on {agree_after:.4f} of items")
print(f"predicted durations correct {dur_acc:.4f} mean |y_len_pred - y_len| {len_err:.4f} "
      f"y_pred shape[1] {y_pred.shape[1]} token mean error {mean_err:.4f}")

checks_ok = int(logp_diff < 1e-4 and agree_before == 1.0 and agree_after == 1.0 and path_diff == 0.0 and one_per_frame)
print(f"FINAL mle={eval_mle:.4f} align_acc={align_acc:.4f} dur_acc={dur_acc:.4f} len_err={len_err:.4f} "
      f"mean_err={mean_err:.4f} checks_ok={checks_ok}")
