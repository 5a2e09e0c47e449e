"""CopyNet / pointer-softmax copying in the layout of OpenNMT-py's ``CopyGenerator`` and the
pointer-generator ports, on a synthetic copy task whose sources hold out-of-vocabulary words.

Each source sentence mixes in-vocabulary tokens and OOV tokens; the OOVs are numbered per example
(``src_map``: the first unseen word of an example becomes ``V``, the next ``V + 1``, ...), the
encoder sees them as ``<unk>``, and the target (the source copied, then ``</s>``) is written in the
extended vocabulary. A GRU encoder and a GRU decoder with Bahdanau attention (``v^T tanh(W_h h +
W_s s)``) are trained by teacher forcing; the output distribution is ``F.softmax(logits) * (1 -
p_copy)`` padded by ``torch.cat`` with zeros for the extended ids, plus the copy attention
``torch.zeros(...).scatter_add_(1, src_map, attn * p_copy)``; the loss is
``-torch.log(probs.gather(1, target) + 1e-20)`` masked where the target is ``<pad>`` (an
``ignore_index`` by hand). Checked: the scatter route equals OpenNMT's ``torch.bmm`` of the
attention with the one-hot ``src_map``, the distribution sums to one, and the token accuracy (and the
accuracy on OOV tokens, which only copying can get) rises.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

PAD, BOS, EOS, UNK = 0, 1, 2, 3
V = 16  # in-vocabulary ids 4..15
N_OOV_WORDS = 40  # distinct OOV surface words, ids 100.. in the "raw" corpus
SRC_LEN, BATCH, STEPS, EMB, HID = 6, 32, 150, 24, 48


def make_batch(rng, n=BATCH):
    raw = rng.integers(4, V, size=(n, SRC_LEN))
    oov = rng.random((n, SRC_LEN)) < 0.3
    raw = np.where(oov, 100 + rng.integers(0, N_OOV_WORDS, size=(n, SRC_LEN)), raw)
    src = np.where(raw >= 100, UNK, raw)
    src_map = np.zeros_like(raw)
    tgt = np.full((n, SRC_LEN + 1), PAD)
    max_oov = 0
    for b in range(n):
        oov_vocab = {}
        for t in range(SRC_LEN):
            w = raw[b, t]
            if w >= 100:
                if w not in oov_vocab:
                    oov_vocab[w] = V + len(oov_vocab)
                src_map[b, t] = oov_vocab[w]
            else:
                src_map[b, t] = w
        max_oov = max(max_oov, len(oov_vocab))
        # variable-length targets: drop a random tail so <pad> appears
        keep = rng.integers(SRC_LEN - 2, SRC_LEN + 1)
        tgt[b, :keep] = src_map[b, :keep]
        tgt[b, keep] = EOS
    return (torch.from_numpy(src), torch.from_numpy(src_map), torch.from_numpy(tgt), max_oov)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V, EMB, padding_idx=PAD)
        self.rnn = nn.GRU(EMB, HID, batch_first=True)

    def forward(self, src):
        outputs, hidden = self.rnn(self.embedding(src))
        return outputs, hidden


class BahdanauAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_h = nn.Linear(HID, HID, bias=False)
        self.W_s = nn.Linear(HID, HID)
        self.v = nn.Linear(HID, 1, bias=False)

    def forward(self, query, memory_bank):
        scores = self.v(torch.tanh(self.W_h(memory_bank) + self.W_s(query).unsqueeze(1))).squeeze(-1)
        attn = F.softmax(scores, dim=-1)
        context = torch.bmm(attn.unsqueeze(1), memory_bank).squeeze(1)
        return context, attn


class CopyGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2 * HID, V)
        self.linear_copy = nn.Linear(2 * HID, 1)

    def forward(self, hidden, attn, src_map, max_oov, use_bmm=False):
        logits = self.linear(hidden)
        logits[:, PAD] = -float("inf")
        prob = F.softmax(logits, 1)
        p_copy = torch.sigmoid(self.linear_copy(hidden))
        out_prob = torch.mul(prob, 1 - p_copy)
        out_prob = torch.cat([out_prob, out_prob.new_zeros(out_prob.size(0), max_oov)], 1)
        mul_attn = torch.mul(attn, p_copy)
        if use_bmm:
            one_hot = F.one_hot(src_map, V + max_oov).float()
            copy_prob = torch.bmm(mul_attn.unsqueeze(1), one_hot).squeeze(1)
        else:
            copy_prob = torch.zeros(out_prob.size(0), V + max_oov).scatter_add_(1, src_map, mul_attn)
        return out_prob + copy_prob, p_copy


class CopyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.tgt_embedding = nn.Embedding(V, EMB, padding_idx=PAD)
        self.decoder = nn.GRUCell(EMB + HID, HID)
        self.attention = BahdanauAttention()
        self.generator = CopyGenerator()

    def forward(self, src, src_map, tgt, max_oov, use_bmm=False):
        memory_bank, hidden = self.encoder(src)
        h = hidden.squeeze(0)
        context = memory_bank.new_zeros(src.size(0), HID)
        dec_in = torch.full((src.size(0),), BOS, dtype=torch.long)
        all_probs = []
        for t in range(tgt.size(1)):
            h = self.decoder(torch.cat([self.tgt_embedding(dec_in), context], 1), h)
            context, attn = self.attention(h, memory_bank)
            probs, _ = self.generator(torch.cat([h, context], 1), attn, src_map, max_oov, use_bmm)
            all_probs.append(probs)
            # teacher forcing: extended ids fed back as <unk>
            y = tgt[:, t]
            dec_in = y.masked_fill(y >= V, UNK)
        return torch.stack(all_probs, 1)


def copy_loss(probs, tgt):
    flat = probs.view(-1, probs.size(-1))
    target = tgt.reshape(-1, 1)
    loss = -torch.log(flat.gather(1, target) + 1e-20).squeeze(1)
    non_pad = target.squeeze(1).ne(PAD)
    return loss.masked_select(non_pad).sum() / non_pad.sum()


def accuracy(probs, tgt):
    pred = probs.argmax(-1)
    non_pad = tgt.ne(PAD)
    oov = tgt >= V
    acc = (pred.eq(tgt) & non_pad).sum().item() / non_pad.sum().item()
    oov_acc = (pred.eq(tgt) & oov).sum().item() / max(oov.sum().item(), 1)
    return acc, oov_acc


rng = np.random.default_rng(seed)
model = CopyNet()
for p in model.parameters():
    p.data.uniform_(-0.1, 0.1)
print(f"CopyNet parameters: {sum(p.numel() for p in model.parameters())}")

test = make_batch(rng, 128)
with torch.no_grad():
    p_scatter = model(*test)
    p_bmm = model(*test, use_bmm=True)
    routes_agree = torch.allclose(p_scatter, p_bmm, atol=1e-6)
    sums_to_one = torch.allclose(p_scatter.sum(-1), torch.ones(p_scatter.shape[:2]), atol=1e-5)
    acc0, oov_acc0 = accuracy(p_scatter, test[2])
print(f"extended vocab {V}+{test[3]}: scatter_add_ == bmm(one_hot): {routes_agree}, sums to 1: {sums_to_one}")
print(f"before training: acc {acc0:.4f} oov acc {oov_acc0:.4f}")

optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for step in range(STEPS):
    src, src_map, tgt, max_oov = make_batch(rng)
    probs = model(src, src_map, tgt, max_oov)
    loss = copy_loss(probs, tgt)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    if step % 50 == 0 or step == STEPS - 1:
        print(f"step {step:3d} loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    probs = model(*test)
    test_loss = copy_loss(probs, test[2]).item()
    acc, oov_acc = accuracy(probs, test[2])
print(f"after training: loss {test_loss:.4f} acc {acc:.4f} oov acc {oov_acc:.4f}")
print(f"FINAL test_loss={test_loss:.4f} acc={acc:.4f} oov_acc={oov_acc:.4f} acc_gain={acc - acc0:.4f} "
      f"routes_agree={int(routes_agree and sums_to_one)}")
