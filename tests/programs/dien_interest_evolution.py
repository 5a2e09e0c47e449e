"""DIN and DIEN (Zhou et al., KDD 2018 / AAAI 2019) in the layout of shenweichen/DeepCTR-Torch and the
PyTorch ports of zhougr1993/DeepInterestNetwork, on synthetic click logs.

Each user has a behaviour history (item ids with categories, variable length, padded with 0) whose
interest drifts from one category to another; the click label of a candidate item depends mostly on
whether its category matches the user's *recent* interest, so the order of the history matters.

DIN: the ``LocalActivationUnit`` (``queries.expand(-1, keys_len, -1)``, ``torch.cat([q, k, q - k, q * k],
dim=-1)`` into an MLP with ``Dice``), ``AttentionSequencePoolingLayer`` with the keys-length mask by
``torch.arange(...).repeat(batch, 1) < keys_length.view(-1, 1)``, padded scores by ``torch.where`` with
``-2 ** 32 + 1`` then ``F.softmax`` (weight_normalization) or ``masked_fill(~mask, 0)`` (raw weights).
``Dice``: ``nn.BatchNorm1d(affine=False)`` and a ``torch.sigmoid`` gate with a learned ``alpha``, 2-d and
3-d inputs (``transpose(1, 2)``).

DIEN: the interest extractor ``nn.GRU(batch_first=True)`` over ``pack_padded_sequence(...,
enforce_sorted=False)`` + ``pad_packed_sequence(total_length=...)``, the auxiliary loss of ``h_t`` against
the next clicked behaviour and a sampled negative (``F.binary_cross_entropy`` weighted by the step
mask), the attention over extracted interests, and interest evolution by an ``AUGRUCell`` (attention
scales the update gate) written as a cell loop that freezes finished sequences.

Checked: the packed GRU's last hidden state equals per-sequence unpadded runs, the AUGRU loop with
attention 1 (and the update-gate rows negated) equals ``nn.GRU`` on the packed sequence, and GAUC by
user (impression-weighted, users with one label class skipped) computed in torch equals NumPy's.
"""

# ruff: noqa: UP008  (the ports' own spelling: super(Class, self))

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

N_USERS, N_CATE, ITEMS_PER_CATE = 120, 6, 8
N_ITEMS = N_CATE * ITEMS_PER_CATE
MAX_LEN, EMB = 10, 8
IMPRESSIONS = 12


# ----------------------------------------------------------------------------------- data
def item_cate(item):
    return (item - 1) // ITEMS_PER_CATE + 1  # 0 stays the padding id


def make_logs(rng):
    rows = []
    for uid in range(N_USERS):
        start, end = rng.choice(N_CATE, 2, replace=False) + 1
        length = rng.randint(3, MAX_LEN + 1)
        switch = rng.randint(1, length)
        cates = [start if t < switch else end for t in range(length)]
        noisy = rng.rand(length) < 0.15
        cates = [rng.randint(1, N_CATE + 1) if n else c for c, n in zip(cates, noisy)]
        hist = [(c - 1) * ITEMS_PER_CATE + rng.randint(1, ITEMS_PER_CATE + 1) for c in cates]
        for _ in range(IMPRESSIONS):
            cand_cate = end if rng.rand() < 0.4 else (start if rng.rand() < 0.3 else rng.randint(1, N_CATE + 1))
            cand = (cand_cate - 1) * ITEMS_PER_CATE + rng.randint(1, ITEMS_PER_CATE + 1)
            p = 0.85 if cand_cate == end else (0.35 if cand_cate == start else 0.1)
            rows.append((uid, hist, length, cand, int(rng.rand() < p)))
    return rows


def to_tensors(rows, rng):
    n = len(rows)
    hist = np.zeros((n, MAX_LEN), dtype=np.int64)
    neg = np.zeros((n, MAX_LEN), dtype=np.int64)
    for i, (_, h, length, _, _) in enumerate(rows):
        hist[i, :length] = h
        for t in range(length):  # negative: a random item of another category
            while True:
                j = rng.randint(1, N_ITEMS + 1)
                if item_cate(j) != item_cate(h[t]):
                    neg[i, t] = j
                    break
    return {
        "uid": torch.tensor([r[0] for r in rows]),
        "hist_item": torch.from_numpy(hist),
        "hist_cate": torch.from_numpy(np.where(hist > 0, item_cate(hist), 0)),
        "neg_item": torch.from_numpy(neg),
        "neg_cate": torch.from_numpy(np.where(neg > 0, item_cate(neg), 0)),
        "seq_length": torch.tensor([r[2] for r in rows]),
        "item": torch.tensor([r[3] for r in rows]),
        "cate": torch.tensor([item_cate(r[3]) for r in rows]),
        "label": torch.tensor([r[4] for r in rows], dtype=torch.float32),
    }


rng = np.random.RandomState(seed)
data = to_tensors(make_logs(rng), rng)
n_total = data["label"].numel()
perm = torch.randperm(n_total)
split = int(0.75 * n_total)
train_idx, test_idx = perm[:split], perm[split:]
print(f"{n_total} impressions, {N_USERS} users, ctr {data['label'].mean().item():.3f}, "
      f"mean history {data['seq_length'].float().mean().item():.2f}")


# ----------------------------------------------------------------------------------- layers
class Dice(nn.Module):
    """DeepCTR-Torch's Dice: p(s) = sigmoid(BN(s)), f(s) = alpha (1 - p) s + p s."""

    def __init__(self, emb_size, dim=2, epsilon=1e-8):
        super(Dice, self).__init__()
        assert dim == 2 or dim == 3
        self.bn = nn.BatchNorm1d(emb_size, eps=epsilon, affine=False)
        self.sigmoid = nn.Sigmoid()
        self.dim = dim
        self.alpha = nn.Parameter(torch.zeros((emb_size,)) if dim == 2 else torch.zeros((emb_size, 1)))

    def forward(self, x):
        assert x.dim() == self.dim
        if self.dim == 2:
            x_p = self.sigmoid(self.bn(x))
            out = self.alpha * (1 - x_p) * x + x_p * x
        else:
            x = torch.transpose(x, 1, 2)
            x_p = torch.sigmoid(self.bn(x))
            out = self.alpha * (1 - x_p) * x + x_p * x
            out = torch.transpose(out, 1, 2)
        return out


class DNN(nn.Module):
    def __init__(self, inputs_dim, hidden_units, activation="relu", dice_dim=2):
        super(DNN, self).__init__()
        hidden_units = [inputs_dim] + list(hidden_units)
        self.linears = nn.ModuleList([nn.Linear(hidden_units[i], hidden_units[i + 1]) for i in range(len(hidden_units) - 1)])
        if activation == "dice":
            self.activation_layers = nn.ModuleList([Dice(hidden_units[i + 1], dim=dice_dim) for i in range(len(hidden_units) - 1)])
        else:
            self.activation_layers = nn.ModuleList([nn.ReLU(inplace=True) for _ in range(len(hidden_units) - 1)])
        for name, tensor in self.linears.named_parameters():
            if "weight" in name:
                nn.init.normal_(tensor, mean=0, std=0.1)

    def forward(self, inputs):
        deep_input = inputs
        for fc, act in zip(self.linears, self.activation_layers):
            deep_input = act(fc(deep_input))
        return deep_input


class LocalActivationUnit(nn.Module):
    def __init__(self, hidden_units=(16, 8), embedding_dim=4, activation="dice"):
        super(LocalActivationUnit, self).__init__()
        self.dnn = DNN(inputs_dim=4 * embedding_dim, hidden_units=hidden_units, activation=activation, dice_dim=3)
        self.dense = nn.Linear(hidden_units[-1], 1)

    def forward(self, query, user_behavior):
        # query: B x 1 x E, user_behavior: B x T x E
        user_behavior_len = user_behavior.size(1)
        queries = query.expand(-1, user_behavior_len, -1)
        attention_input = torch.cat([queries, user_behavior, queries - user_behavior, queries * user_behavior], dim=-1)
        attention_output = self.dnn(attention_input)
        return self.dense(attention_output)  # B x T x 1


class AttentionSequencePoolingLayer(nn.Module):
    def __init__(self, att_hidden_units=(16, 8), embedding_dim=4, weight_normalization=False, return_score=False):
        super(AttentionSequencePoolingLayer, self).__init__()
        self.return_score = return_score
        self.weight_normalization = weight_normalization
        self.local_att = LocalActivationUnit(hidden_units=att_hidden_units, embedding_dim=embedding_dim)

    def forward(self, query, keys, keys_length):
        batch_size, max_length, _ = keys.size()
        keys_masks = torch.arange(max_length, device=keys_length.device, dtype=keys_length.dtype).repeat(batch_size, 1)
        keys_masks = keys_masks < keys_length.view(-1, 1)
        keys_masks = keys_masks.unsqueeze(1)  # B x 1 x T
        attention_score = self.local_att(query, keys)
        outputs = torch.transpose(attention_score, 1, 2)  # B x 1 x T
        if self.weight_normalization:
            paddings = torch.ones_like(outputs) * (-2 ** 32 + 1)
            outputs = torch.where(keys_masks, outputs, paddings)
            outputs = F.softmax(outputs, dim=-1)
        else:
            outputs = outputs.masked_fill(~keys_masks, 0)
        if self.return_score:
            return outputs
        return torch.matmul(outputs, keys)  # B x 1 x E


class AUGRUCell(nn.Module):
    """DeepCTR-Torch's AUGRUCell: the attention score scales the update gate."""

    def __init__(self, input_size, hidden_size, bias=True):
        super(AUGRUCell, self).__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.Tensor(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.Tensor(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.Tensor(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.Tensor(3 * hidden_size))
        stdv = 1.0 / hidden_size ** 0.5
        for weight in self.parameters():
            nn.init.uniform_(weight, -stdv, stdv)

    def forward(self, inputs, hx, att_score):
        gi = F.linear(inputs, self.weight_ih, self.bias_ih)
        gh = F.linear(hx, self.weight_hh, self.bias_hh)
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        reset_gate = torch.sigmoid(i_r + h_r)
        update_gate = torch.sigmoid(i_z + h_z)
        new_state = torch.tanh(i_n + reset_gate * h_n)
        att_score = att_score.view(-1, 1)
        update_gate = att_score * update_gate
        hy = (1. - update_gate) * hx + update_gate * new_state
        return hy


def augru_loop(cell, inputs, att_scores, lengths):
    """Step the cell over time; finished sequences keep their state (DeepCTR's DynamicGRU, unrolled)."""
    batch = inputs.size(0)
    hx = torch.zeros(batch, cell.hidden_size)
    outputs = []
    for t in range(inputs.size(1)):
        new_h = cell(inputs[:, t], hx, att_scores[:, t])
        alive = (t < lengths).unsqueeze(1)
        hx = torch.where(alive, new_h, hx)
        outputs.append(hx)
    return torch.stack(outputs, 1), hx


# ----------------------------------------------------------------------------------- models
class Embeddings(nn.Module):
    def __init__(self):
        super(Embeddings, self).__init__()
        self.item_emb = nn.Embedding(N_ITEMS + 1, EMB, padding_idx=0)
        self.cate_emb = nn.Embedding(N_CATE + 1, EMB, padding_idx=0)
        for emb in (self.item_emb, self.cate_emb):
            nn.init.normal_(emb.weight, std=0.1)
            with torch.no_grad():
                emb.weight[0].fill_(0)

    def forward(self, item, cate):
        return torch.cat([self.item_emb(item), self.cate_emb(cate)], dim=-1)


class DIN(nn.Module):
    def __init__(self, weight_normalization=True):
        super(DIN, self).__init__()
        self.embedding = Embeddings()
        self.attention = AttentionSequencePoolingLayer(att_hidden_units=(16, 8), embedding_dim=2 * EMB,
                                                       weight_normalization=weight_normalization)
        self.dnn = DNN(4 * EMB, (32, 16), activation="dice")
        self.dnn_linear = nn.Linear(16, 1, bias=False)

    def forward(self, batch):
        query = self.embedding(batch["item"], batch["cate"]).unsqueeze(1)
        keys = self.embedding(batch["hist_item"], batch["hist_cate"])
        hist = self.attention(query, keys, batch["seq_length"])
        deep_input = torch.cat([query, hist], dim=-1).squeeze(1)
        return self.dnn_linear(self.dnn(deep_input)).squeeze(-1), torch.zeros(())


class InterestExtractor(nn.Module):
    def __init__(self, input_size):
        super(InterestExtractor, self).__init__()
        self.gru = nn.GRU(input_size=input_size, hidden_size=input_size, batch_first=True)
        self.auxiliary_net = DNN(input_size * 2, (16, 8), activation="relu")
        self.auxiliary_linear = nn.Linear(8, 1)

    def forward(self, keys, keys_length, neg_keys):
        max_length = keys.size(1)
        packed_keys = pack_padded_sequence(keys, lengths=keys_length.cpu(), batch_first=True, enforce_sorted=False)
        packed_interests, _ = self.gru(packed_keys)
        interests, _ = pad_packed_sequence(packed_interests, batch_first=True, padding_value=0.0, total_length=max_length)
        aux_loss = self._cal_auxiliary_loss(interests[:, :-1, :], keys[:, 1:, :], neg_keys[:, 1:, :], keys_length - 1)
        return interests, aux_loss

    def _cal_auxiliary_loss(self, states, click_seq, noclick_seq, keys_length):
        batch_size, max_seq_length, embedding_size = states.size()
        mask_shape = (batch_size, max_seq_length)
        mask = (torch.arange(max_seq_length).repeat(batch_size, 1) < keys_length.view(-1, 1)).float()
        click_input = torch.cat([states, click_seq], dim=-1)
        noclick_input = torch.cat([states, noclick_seq], dim=-1)
        click_p = torch.sigmoid(self.auxiliary_linear(self.auxiliary_net(click_input.view(-1, 2 * embedding_size)))).view(mask_shape)
        noclick_p = torch.sigmoid(self.auxiliary_linear(self.auxiliary_net(noclick_input.view(-1, 2 * embedding_size)))).view(mask_shape)
        click_target = torch.ones(mask_shape)
        noclick_target = torch.zeros(mask_shape)
        loss = F.binary_cross_entropy(torch.cat([click_p, noclick_p], dim=0),
                                      torch.cat([click_target, noclick_target], dim=0),
                                      weight=torch.cat([mask, mask], dim=0), reduction="sum")
        return loss / (2 * mask.sum())


class DIEN(nn.Module):
    def __init__(self):
        super(DIEN, self).__init__()
        self.embedding = Embeddings()
        self.interest_extractor = InterestExtractor(2 * EMB)
        self.attention = AttentionSequencePoolingLayer(att_hidden_units=(16, 8), embedding_dim=2 * EMB,
                                                       weight_normalization=True, return_score=True)
        self.evolution = AUGRUCell(2 * EMB, 2 * EMB)
        self.dnn = DNN(4 * EMB, (32, 16), activation="dice")
        self.dnn_linear = nn.Linear(16, 1, bias=False)

    def forward(self, batch):
        query = self.embedding(batch["item"], batch["cate"]).unsqueeze(1)
        keys = self.embedding(batch["hist_item"], batch["hist_cate"])
        neg_keys = self.embedding(batch["neg_item"], batch["neg_cate"])
        lengths = batch["seq_length"]
        interests, aux_loss = self.interest_extractor(keys, lengths, neg_keys)
        scores = self.attention(query, interests, lengths).squeeze(1)  # B x T
        _, final_interest = augru_loop(self.evolution, interests, scores, lengths)
        deep_input = torch.cat([query.squeeze(1), final_interest], dim=-1)
        return self.dnn_linear(self.dnn(deep_input)).squeeze(-1), aux_loss


# ----------------------------------------------------------------------------------- metrics
def auc_torch(y, p):
    # mid-ranks: tied scores share the mean of their positions
    _, inverse, counts = torch.unique(p, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).to(p.dtype)
    ranks = (ends - (counts.to(p.dtype) - 1) / 2)[inverse]
    n_pos = y.sum()
    n_neg = y.numel() - n_pos
    return (ranks[y > 0].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def gauc_torch(uid, y, p):
    users, inverse = torch.unique(uid, return_inverse=True)
    total, weight = torch.zeros((), dtype=torch.float64), 0
    for k in range(users.numel()):
        sel = inverse == k
        yu = y[sel]
        if yu.min() == yu.max():
            continue
        total = total + sel.sum() * auc_torch(yu, p[sel].double())
        weight += int(sel.sum())
    return (total / weight).item()


def gauc_numpy(uid, y, p):
    total, weight = 0.0, 0
    for u in np.unique(uid):
        sel = uid == u
        yu, pu = y[sel], p[sel]
        if yu.min() == yu.max():
            continue
        pos, neg = pu[yu > 0], pu[yu == 0]
        auc = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
        total += sel.sum() * auc
        weight += sel.sum()
    return total / weight


# ----------------------------------------------------------------------------------- checks
with torch.no_grad():
    ext = InterestExtractor(2 * EMB)
    keys = torch.randn(6, MAX_LEN, 2 * EMB)
    lens = torch.tensor([3, 10, 5, 1, 7, 4])
    packed_out, h_n = ext.gru(pack_padded_sequence(keys, lens, batch_first=True, enforce_sorted=False))
    padded, out_lens = pad_packed_sequence(packed_out, batch_first=True)
    per_seq = torch.stack([ext.gru(keys[i:i + 1, :lens[i]])[1][0, 0] for i in range(6)])
    packed_ok = torch.allclose(h_n[0], per_seq, atol=1e-6) and torch.equal(out_lens, lens)
    packed_ok = packed_ok and torch.allclose(padded[torch.arange(6), lens - 1], per_seq, atol=1e-6)

    cell = AUGRUCell(2 * EMB, 2 * EMB)
    g = ext.gru
    H = 2 * EMB
    flip = torch.ones(3 * H, 1)
    flip[H:2 * H] = -1  # DeepCTR's h = (1-u) h + u n with u = sigmoid(-z) equals torch's (1-z) n + z h
    cell.weight_ih.copy_(g.weight_ih_l0 * flip)
    cell.weight_hh.copy_(g.weight_hh_l0 * flip)
    cell.bias_ih.copy_(g.bias_ih_l0 * flip.squeeze(1))
    cell.bias_hh.copy_(g.bias_hh_l0 * flip.squeeze(1))
    loop_out, loop_h = augru_loop(cell, keys, torch.ones(6, MAX_LEN), lens)
    mask = (torch.arange(MAX_LEN)[None, :] < lens[:, None]).unsqueeze(-1)
    augru_ok = torch.allclose(loop_h, h_n[0], atol=1e-5) and torch.allclose(loop_out * mask, padded * mask[:, :padded.size(1)], atol=1e-5) \
        if padded.size(1) == MAX_LEN else False

    dice = Dice(5, dim=3)
    dice.alpha.fill_(0.25)
    x = torch.randn(4, 7, 5)
    mean = x.mean(dim=(0, 1))
    var = x.var(dim=(0, 1), unbiased=False)
    p = torch.sigmoid((x - mean) / torch.sqrt(var + 1e-8))
    dice_ok = torch.allclose(dice(x), 0.25 * (1 - p) * x + p * x, atol=1e-5)
print(f"packed GRU == per-sequence runs: {packed_ok}; AUGRU(att=1) == nn.GRU: {augru_ok}; Dice 3-d == formula: {dice_ok}")


# ----------------------------------------------------------------------------------- training
def take(idx):
    return {k: v[idx] for k, v in data.items()}


def evaluate(model):
    model.eval()
    with torch.no_grad():
        batch = take(test_idx)
        logits, _ = model(batch)
        prob = torch.sigmoid(logits)
    model.train()
    uid, y = batch["uid"], batch["label"]
    g_t = gauc_torch(uid, y, prob)
    g_n = gauc_numpy(uid.numpy(), y.numpy(), prob.numpy().astype(np.float64))
    return auc_torch(y, prob.double()).item(), g_t, g_n


def train(model, name, epochs=10, batch_size=128, alpha=1.0):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_func = F.binary_cross_entropy_with_logits
    for epoch in range(epochs):
        order = train_idx[torch.randperm(train_idx.numel())]
        total, total_aux, steps = 0.0, 0.0, 0
        for start in range(0, order.numel(), batch_size):
            batch = take(order[start:start + batch_size])
            if batch["label"].numel() < 2:
                continue
            logits, aux_loss = model(batch)
            loss = loss_func(logits, batch["label"])
            optimizer.zero_grad()
            (loss + alpha * aux_loss).backward()
            optimizer.step()
            total += loss.item()
            total_aux += aux_loss.item()
            steps += 1
        if epoch % 3 == 2:
            auc, g_t, _ = evaluate(model)
            print(f"{name} epoch {epoch + 1} loss {total / steps:.4f} aux {total_aux / steps:.4f} test auc {auc:.4f} gauc {g_t:.4f}")
    return evaluate(model)


din = DIN(weight_normalization=False)
din_auc, din_gauc, din_gauc_np = train(din, "DIN")
dien = DIEN()
dien_auc, dien_gauc, dien_gauc_np = train(dien, "DIEN")
gauc_agree = abs(din_gauc - din_gauc_np) < 1e-9 and abs(dien_gauc - dien_gauc_np) < 1e-9
print(f"GAUC torch vs numpy: DIN {din_gauc:.6f}/{din_gauc_np:.6f}, DIEN {dien_gauc:.6f}/{dien_gauc_np:.6f}")

print(f"FINAL din_auc={din_auc:.4f} din_gauc={din_gauc:.4f} dien_auc={dien_auc:.4f} dien_gauc={dien_gauc:.4f} "
      f"gauc_agree={int(gauc_agree)} checks={int(packed_ok and augru_ok and dice_ok)}")
