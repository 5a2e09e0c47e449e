"""Music Transformer (Huang et al., ICLR 2019) with relative global attention and the memory-efficient
"skewing" trick, in the layout of the common PyTorch write-ups (jaketae's ``RelativeGlobalAttention``,
jason9693/MusicTransformer-pytorch's label-smoothed loss and ``CustomSchedule``), on a synthetic
event-vocabulary corpus.

The corpus is MIDI-like: NOTE_ON(p), TIME_SHIFT(d), NOTE_OFF(p) events (and optional rests) for a melody
whose pitch follows a NumPy random walk, so predicting a NOTE_OFF means copying the pitch two events back:
a relative-position job. ``RelativeGlobalAttention`` holds ``Er = nn.Parameter(torch.randn(max_len,
d_head))``, computes ``QEr = torch.matmul(q, Er_t)`` with ``Er_t = self.Er[start:, :].transpose(0, 1)``,
and skews it by ``F.pad(QEr, (1, 0))`` + ``reshape(batch, heads, num_cols, num_rows)[:, :, 1:, :]``; logits
``(QK_t + Srel) / math.sqrt(d_head)`` get the causal mask from ``torch.triu(torch.ones(L, L),
diagonal=1).bool()`` by ``masked_fill(mask, float('-inf'))``. The model is post-norm decoder layers with
``nn.Embedding`` scaled by ``math.sqrt(d_model)``, ``nn.Dropout`` and a ``nn.Linear`` head. Training uses
``nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1)``, Adam(betas=(0.9, 0.98), eps=1e-9) under the
transformer schedule ``d ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)`` as a ``LambdaLR``; sampling is
``torch.multinomial(F.softmax(logits / temperature, -1), 1)`` autoregressively under ``torch.no_grad()``.

Checked: held-out loss and NOTE_OFF pitch accuracy; the fraction of sampled NOTE_OFFs that close the
sounding note; that the skewed relative logits equal Shaw et al.'s direct ones, ``q . Er[rel_index]``
gathered per (i, j) by ``torch.einsum``, on the causal part; and that jason9693's ``SmoothCrossEntropyLoss``
(one-hot smoothed targets, ``logsumexp``) equals ``label_smoothing=0.1``.
"""

import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

# ------------------------------------------------------------------------------------ event vocabulary
RANGE_NOTE_ON, RANGE_NOTE_OFF, RANGE_TIME_SHIFT = 12, 12, 8
START_IDX = {"note_on": 0, "note_off": RANGE_NOTE_ON, "time_shift": RANGE_NOTE_ON + RANGE_NOTE_OFF}
PAD = RANGE_NOTE_ON + RANGE_NOTE_OFF + RANGE_TIME_SHIFT
VOCAB = PAD + 1
SEQ = 48


def encode_midi(n_notes):
    events, pitch = [], rng.randint(0, RANGE_NOTE_ON)
    for _ in range(n_notes):
        pitch = int(np.clip(pitch + rng.choice([-2, -1, 1, 2]), 0, RANGE_NOTE_ON - 1))
        events.append(START_IDX["note_on"] + pitch)
        events.append(START_IDX["time_shift"] + rng.randint(0, RANGE_TIME_SHIFT))
        events.append(START_IDX["note_off"] + pitch)
        if rng.rand() < 0.3:
            events.append(START_IDX["time_shift"] + rng.randint(0, RANGE_TIME_SHIFT))
    return events


def make_set(n):
    data = np.full((n, SEQ + 1), PAD, dtype=np.int64)
    for i in range(n):
        ev = encode_midi(20)
        length = min(len(ev), SEQ + 1 - rng.randint(0, 6))  # some pieces end early (padding)
        data[i, :length] = ev[:length]
    return torch.from_numpy(data)


train_data = make_set(160)
test_data = make_set(48)


# ---------------------------------------------------------------------------------------------- model
class RelativeGlobalAttention(nn.Module):
    def __init__(self, d_model, num_heads, max_len=64, dropout=0.1):
        super().__init__()
        d_head, remainder = divmod(d_model, num_heads)
        if remainder:
            raise ValueError("incompatible `d_model` and `num_heads`")
        self.max_len = max_len
        self.d_model = d_model
        self.num_heads = num_heads
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.query = nn.Linear(d_model, d_model)
        self.fc = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.Er = nn.Parameter(torch.randn(max_len, d_head))

    def forward(self, x, mask):
        # x.shape == (batch_size, seq_len, d_model)
        batch_size, seq_len, _ = x.shape
        if seq_len > self.max_len:
            raise ValueError("sequence length exceeds model capacity")
        k_t = self.key(x).reshape(batch_size, seq_len, self.num_heads, -1).permute(0, 2, 3, 1)
        v = self.value(x).reshape(batch_size, seq_len, self.num_heads, -1).transpose(1, 2)
        q = self.query(x).reshape(batch_size, seq_len, self.num_heads, -1).transpose(1, 2)
        start = self.max_len - seq_len
        Er_t = self.Er[start:, :].transpose(0, 1)
        QEr = torch.matmul(q, Er_t)
        Srel = self.skew(QEr)
        QK_t = torch.matmul(q, k_t)
        attn = (QK_t + Srel) / math.sqrt(q.size(-1))
        attn = attn.masked_fill(mask, float("-inf"))
        attn = F.softmax(attn, dim=-1)
        out = torch.matmul(attn, v)
        out = out.transpose(1, 2).reshape(batch_size, seq_len, -1)
        return self.dropout(self.fc(out))

    def skew(self, QEr):
        # QEr.shape = (batch_size, num_heads, seq_len, seq_len)
        padded = F.pad(QEr, (1, 0))
        batch_size, num_heads, num_rows, num_cols = padded.shape
        reshaped = padded.reshape(batch_size, num_heads, num_cols, num_rows)
        return reshaped[:, :, 1:, :]


class DecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, max_len, dropout=0.1):
        super().__init__()
        self.rga = RelativeGlobalAttention(d_model, num_heads, max_len, dropout)
        self.FFN_pre = nn.Linear(d_model, d_ff)
        self.FFN_suf = nn.Linear(d_ff, d_model)
        self.layernorm1 = nn.LayerNorm(d_model, eps=1e-6)
        self.layernorm2 = nn.LayerNorm(d_model, eps=1e-6)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask):
        attn_out = self.rga(x, mask)
        out1 = self.layernorm1(attn_out + x)
        ffn_out = self.FFN_suf(F.relu(self.FFN_pre(out1)))
        return self.layernorm2(out1 + self.dropout(ffn_out))


class MusicTransformer(nn.Module):
    def __init__(self, embedding_dim=32, vocab_size=VOCAB, num_layer=2, num_heads=4, max_seq=64, dropout=0.1):
        super().__init__()
        self.d_model = embedding_dim
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.dropout = nn.Dropout(dropout)
        self.enc_layers = nn.ModuleList([DecoderLayer(embedding_dim, num_heads, 2 * embedding_dim, max_seq, dropout) for _ in range(num_layer)])
        self.fc = nn.Linear(embedding_dim, vocab_size)

    def forward(self, x):
        L = x.size(1)
        look_ahead_mask = torch.triu(torch.ones(L, L), diagonal=1).bool()
        x = self.embedding(x) * math.sqrt(self.d_model)
        x = self.dropout(x)
        for layer in self.enc_layers:
            x = layer(x, look_ahead_mask)
        return self.fc(x)

    @torch.no_grad()
    def generate(self, prior, length, temperature=1.0):
        result = prior
        for _ in range(length):
            logits = self(result[:, -SEQ:])[:, -1, :] / temperature
            probs = F.softmax(logits, -1)
            result = torch.cat((result, torch.multinomial(probs, 1)), dim=-1)
        return result


class SmoothCrossEntropyLoss(nn.Module):
    """jason9693's label-smoothed loss: smoothed one-hot targets, padding rows zeroed, mean over tokens."""

    def __init__(self, label_smoothing, vocab_size, ignore_index=-100):
        super().__init__()
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.vocab_size = vocab_size

    def forward(self, input, target):
        mask = (target == self.ignore_index).unsqueeze(-1)
        q = F.one_hot(target.long(), self.vocab_size).type(torch.float32)
        u = 1.0 / self.vocab_size
        q_prime = (1.0 - self.label_smoothing) * q + self.label_smoothing * u
        q_prime = q_prime.masked_fill(mask, 0)
        ce = -torch.sum(q_prime * (input - input.logsumexp(dim=-1, keepdim=True)), dim=-1)
        lengths = torch.sum(target != self.ignore_index)
        return ce.sum() / lengths


# -------------------------------------------------------------------------------------------- training
d_model, warmup = 32, 40
model = MusicTransformer(embedding_dim=d_model)
optimizer = torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.9, 0.98), eps=1e-9)  # lr scales the schedule
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda step: d_model ** -0.5 * min((step + 1) ** -0.5, (step + 1) * warmup ** -1.5)
)
criterion = nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1)
batch_size, epochs = 16, 14
for epoch in range(epochs):
    model.train()
    perm = torch.randperm(len(train_data))
    total, n = 0.0, 0
    for i in range(0, len(perm), batch_size):
        batch = train_data[perm[i : i + batch_size]]
        x, y = batch[:, :-1], batch[:, 1:]
        logits = model(x)
        loss = criterion(logits.reshape(-1, VOCAB), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
        n += 1
    if epoch % 4 == 0 or epoch == epochs - 1:
        print(f"epoch {epoch} lr {scheduler.get_last_lr()[0]:.6f} train loss {total / n:.4f}")

# ------------------------------------------------------------------------------------------ evaluation
model.eval()
with torch.no_grad():
    x, y = test_data[:, :-1], test_data[:, 1:]
    logits = model(x)
    test_loss = criterion(logits.reshape(-1, VOCAB), y.reshape(-1)).item()
    hand_loss = SmoothCrossEntropyLoss(0.1, VOCAB, ignore_index=PAD)(logits, y).item()
    is_off = (y >= START_IDX["note_off"]) & (y < START_IDX["time_shift"])
    off_acc = (logits.argmax(-1)[is_off] == y[is_off]).float().mean().item()
smooth_ok = math.isclose(test_loss, hand_loss, rel_tol=1e-5)
print(f"test loss {test_loss:.4f} (hand smoothed CE {hand_loss:.4f}), note_off pitch accuracy {off_acc:.4f}")

# skewed relative logits == Shaw et al.'s direct gather
rga = model.enc_layers[0].rga
with torch.no_grad():
    h = model.embedding(x[:4]) * math.sqrt(d_model)
    L = h.size(1)
    q = rga.query(h).reshape(4, L, rga.num_heads, -1).transpose(1, 2)
    Er = rga.Er[rga.max_len - L :]
    Srel = rga.skew(torch.matmul(q, Er.transpose(-2, -1)))
    rel_index = (torch.arange(L)[None, :] - torch.arange(L)[:, None] + L - 1).clamp(max=L - 1)
    direct = torch.einsum("bhid,ijd->bhij", q, Er[rel_index])
    causal = ~torch.triu(torch.ones(L, L), diagonal=1).bool()
    skew_ok = torch.allclose(Srel[..., causal], direct[..., causal], atol=1e-5)
print(f"skewed Srel == direct Er[rel_index] on the causal part: {skew_ok}")

# sampling
prior = test_data[:8, :6]
sample = model.generate(prior, 36, temperature=0.8)
closed, offs = 0, 0
for seq in sample[:, 6:].tolist():
    sounding = None
    for ev in seq:
        if ev < START_IDX["note_off"]:
            sounding = ev
        elif ev < START_IDX["time_shift"]:
            offs += 1
            closed += sounding is not None and ev - RANGE_NOTE_ON == sounding
            sounding = None
print(f"sampled {sample.shape[0]} x {sample.shape[1] - prior.shape[1]} events, note_offs closing the sounding note {closed}/{offs}")
print(f"FINAL test_loss={test_loss:.4f} off_acc={off_acc:.4f} sample_closed={closed / max(offs, 1):.4f} checks_ok={int(skew_ok and smooth_ok)}")
