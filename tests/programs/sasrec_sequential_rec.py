"""SASRec (Kang & McAuley 2018, "Self-Attentive Sequential Recommendation") as pmixer/SASRec.pytorch
writes it, on synthetic user histories with a hidden Markov-chain item structure.

``nn.Embedding(item_num + 1, d, padding_idx=0)`` scaled by ``embedding_dim ** 0.5``, learned
positional embeddings on positions zeroed where the left-padded history is padding
(``np.tile`` of ``np.arange`` times ``log_seqs != 0``), a timeline mask
``~(seqs == 0).unsqueeze(-1)`` multiplied in, causal self-attention through
``nn.MultiheadAttention(batch_first=True)`` with a boolean ``attn_mask`` from
``torch.triu(torch.ones(..., dtype=torch.bool), diagonal=1)``, pre-norm ``nn.LayerNorm(eps=1e-8)``,
the point-wise feed-forward net as two ``nn.Conv1d(kernel_size=1)`` on ``transpose(-1, -2)`` with
``outputs += inputs``; the reference's init loop of ``xavier_normal_`` in ``try``/``except`` (1-d
parameters refuse it), padding rows zeroed by ``weight.data[0, :] = 0``. Training: positive and
sampled negative logits by ``(log_feats * embs).sum(dim=-1)``, ``BCEWithLogitsLoss`` on
``torch.where(pos != 0)`` indices, L2 by ``torch.norm`` on the item embedding,
``Adam(betas=(0.9, 0.98))``. Evaluation under ``torch.no_grad()``/``model.eval()``: each user's
held-out next item against 100 sampled negatives, ``item_embs.matmul(final_feat.unsqueeze(-1))``,
ranks by ``torch.argsort(torch.argsort(-logits))``, HR@10 and NDCG@10 against a popularity
baseline that the model must beat; the masked first positions must not change the last
position's output (causality checked by ``torch.allclose``).
"""

import os

import numpy as np
import torch
import torch.nn as nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)
rng = np.random.default_rng(seed)

ITEM_NUM, USER_NUM, MAXLEN, HIDDEN, BLOCKS, HEADS = 80, 320, 16, 32, 2, 2

# the hidden structure: each item leads to one of three successors most of the time
successors = np.stack([rng.choice(np.arange(1, ITEM_NUM + 1), size=3, replace=False)
                       for _ in range(ITEM_NUM + 1)])
popularity_bias = rng.dirichlet(np.full(ITEM_NUM, 0.7))


def user_history():
    length = int(rng.integers(8, 24))
    seq = [int(rng.choice(np.arange(1, ITEM_NUM + 1), p=popularity_bias))]
    while len(seq) < length:
        if rng.random() < 0.8:
            seq.append(int(successors[seq[-1], rng.integers(0, 3)]))
        else:
            seq.append(int(rng.choice(np.arange(1, ITEM_NUM + 1), p=popularity_bias)))
    return seq


User = {u: user_history() for u in range(1, USER_NUM + 1)}
user_train = {u: s[:-2] for u, s in User.items()}
user_valid = {u: [s[-2]] for u, s in User.items()}
user_test = {u: [s[-1]] for u, s in User.items()}
print(f"users {USER_NUM} items {ITEM_NUM} interactions {sum(len(s) for s in User.values())}")


def random_neq(left, right, s):
    t = np.random.randint(left, right)
    while t in s:
        t = np.random.randint(left, right)
    return t


def sample(user):
    seq = np.zeros([MAXLEN], dtype=np.int32)
    pos = np.zeros([MAXLEN], dtype=np.int32)
    neg = np.zeros([MAXLEN], dtype=np.int32)
    nxt = user_train[user][-1]
    idx = MAXLEN - 1
    ts = set(user_train[user])
    for i in reversed(user_train[user][:-1]):
        seq[idx] = i
        pos[idx] = nxt
        if nxt != 0:
            neg[idx] = random_neq(1, ITEM_NUM + 1, ts)
        nxt = i
        idx -= 1
        if idx == -1:
            break
    return user, seq, pos, neg


class PointWiseFeedForward(nn.Module):
    def __init__(self, hidden_units, dropout_rate):
        super().__init__()
        self.conv1 = nn.Conv1d(hidden_units, hidden_units, kernel_size=1)
        self.dropout1 = nn.Dropout(p=dropout_rate)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv1d(hidden_units, hidden_units, kernel_size=1)
        self.dropout2 = nn.Dropout(p=dropout_rate)

    def forward(self, inputs):
        outputs = self.dropout2(self.conv2(self.relu(self.dropout1(self.conv1(inputs.transpose(-1, -2))))))
        outputs = outputs.transpose(-1, -2)  # as Conv1D requires (N, C, Length)
        outputs += inputs
        return outputs


class SASRec(nn.Module):
    def __init__(self, user_num, item_num, hidden_units, maxlen, num_blocks, num_heads, dropout_rate):
        super().__init__()
        self.user_num = user_num
        self.item_num = item_num
        self.item_emb = nn.Embedding(self.item_num + 1, hidden_units, padding_idx=0)
        self.pos_emb = nn.Embedding(maxlen + 1, hidden_units, padding_idx=0)
        self.emb_dropout = nn.Dropout(p=dropout_rate)

        self.attention_layernorms = nn.ModuleList()
        self.attention_layers = nn.ModuleList()
        self.forward_layernorms = nn.ModuleList()
        self.forward_layers = nn.ModuleList()
        self.last_layernorm = nn.LayerNorm(hidden_units, eps=1e-8)

        for _ in range(num_blocks):
            self.attention_layernorms.append(nn.LayerNorm(hidden_units, eps=1e-8))
            self.attention_layers.append(nn.MultiheadAttention(hidden_units, num_heads, dropout_rate,
                                                               batch_first=True))
            self.forward_layernorms.append(nn.LayerNorm(hidden_units, eps=1e-8))
            self.forward_layers.append(PointWiseFeedForward(hidden_units, dropout_rate))

    def log2feats(self, log_seqs):
        seqs = self.item_emb(torch.LongTensor(log_seqs))
        seqs *= self.item_emb.embedding_dim ** 0.5
        poss = np.tile(np.arange(1, log_seqs.shape[1] + 1), [log_seqs.shape[0], 1])
        poss *= (log_seqs != 0)
        seqs += self.pos_emb(torch.LongTensor(poss))
        seqs = self.emb_dropout(seqs)

        timeline_mask = torch.BoolTensor(log_seqs == 0)
        seqs *= ~timeline_mask.unsqueeze(-1)  # broadcast in last dim

        tl = seqs.shape[1]  # time dim len for enforce causality
        attention_mask = torch.triu(torch.ones((tl, tl), dtype=torch.bool), diagonal=1)

        for i in range(len(self.attention_layers)):
            Q = self.attention_layernorms[i](seqs)
            mha_outputs, _ = self.attention_layers[i](Q, seqs, seqs, attn_mask=attention_mask)
            seqs = Q + mha_outputs
            seqs = self.forward_layernorms[i](seqs)
            seqs = self.forward_layers[i](seqs)
            seqs *= ~timeline_mask.unsqueeze(-1)

        return self.last_layernorm(seqs)  # (U, T, C) -> (U, -1, C)

    def forward(self, user_ids, log_seqs, pos_seqs, neg_seqs):
        log_feats = self.log2feats(log_seqs)
        pos_embs = self.item_emb(torch.LongTensor(pos_seqs))
        neg_embs = self.item_emb(torch.LongTensor(neg_seqs))
        pos_logits = (log_feats * pos_embs).sum(dim=-1)
        neg_logits = (log_feats * neg_embs).sum(dim=-1)
        return pos_logits, neg_logits

    def predict(self, user_ids, log_seqs, item_indices):  # for inference
        log_feats = self.log2feats(log_seqs)
        final_feat = log_feats[:, -1, :]  # only use last QKV classifier
        item_embs = self.item_emb(torch.LongTensor(item_indices))  # (U, I, C)
        logits = item_embs.matmul(final_feat.unsqueeze(-1)).squeeze(-1)
        return logits  # (U, I)


def evaluation_batch(split):
    """Left-padded histories, the held-out item first, then 100 sampled negatives, per user."""
    eval_rng = np.random.default_rng(seed + (7 if split == "test" else 11))
    users = list(range(1, USER_NUM + 1))
    seqs = np.zeros([USER_NUM, MAXLEN], dtype=np.int64)
    items = np.zeros([USER_NUM, 101], dtype=np.int64)
    for row, u in enumerate(users):
        history = user_train[u] + (user_valid[u] if split == "test" else [])
        history = history[-MAXLEN:]
        seqs[row, MAXLEN - len(history):] = history
        rated = set(user_train[u]) | {0}
        target = (user_test if split == "test" else user_valid)[u][0]
        items[row, 0] = target
        for j in range(1, 101):
            t = int(eval_rng.integers(1, ITEM_NUM + 1))
            while t in rated:
                t = int(eval_rng.integers(1, ITEM_NUM + 1))
            items[row, j] = t
    return np.array(users), seqs, items


def hr_ndcg(logits):
    rank = torch.argsort(torch.argsort(-logits, dim=1), dim=1)[:, 0]
    hit = rank < 10
    ndcg = torch.where(hit, 1.0 / torch.log2(rank.double() + 2), torch.zeros((), dtype=torch.float64))
    return ndcg.mean().item(), hit.float().mean().item()


model = SASRec(USER_NUM, ITEM_NUM, HIDDEN, MAXLEN, BLOCKS, HEADS, dropout_rate=0.2)
skipped = []
for name, param in model.named_parameters():
    try:
        torch.nn.init.xavier_normal_(param.data)
    except Exception:
        skipped.append(name)  # just ignore those failed init layers
model.pos_emb.weight.data[0, :] = 0
model.item_emb.weight.data[0, :] = 0
print(f"xavier_normal_ refused {len(skipped)} one-dimensional parameters of "
      f"{len(list(model.parameters()))}")

bce_criterion = nn.BCEWithLogitsLoss()
adam_optimizer = torch.optim.Adam(model.parameters(), lr=0.003, betas=(0.9, 0.98))
L2_EMB, BATCH = 1e-4, 64
num_batch = USER_NUM // BATCH
valid_users, valid_seqs, valid_items = evaluation_batch("valid")

for epoch in range(1, 25 + 1):
    model.train()
    perm = np.random.permutation(np.arange(1, USER_NUM + 1))
    for step in range(num_batch):
        u, seq, pos, neg = zip(*[sample(int(x)) for x in perm[step * BATCH:(step + 1) * BATCH]])
        u, seq, pos, neg = np.array(u), np.array(seq), np.array(pos), np.array(neg)
        pos_logits, neg_logits = model(u, seq, pos, neg)
        pos_labels, neg_labels = torch.ones(pos_logits.shape), torch.zeros(neg_logits.shape)
        adam_optimizer.zero_grad()
        indices = torch.where(torch.from_numpy(pos) != 0)
        loss = bce_criterion(pos_logits[indices], pos_labels[indices])
        loss += bce_criterion(neg_logits[indices], neg_labels[indices])
        for param in model.item_emb.parameters():
            loss += L2_EMB * torch.norm(param)
        loss.backward()
        adam_optimizer.step()
    if epoch % 5 == 0:
        model.eval()
        with torch.no_grad():
            ndcg, hr = hr_ndcg(model.predict(valid_users, valid_seqs, valid_items))
        print(f"epoch:{epoch}, loss in epoch: {loss.item():.4f}, valid (NDCG@10: {ndcg:.4f}, HR@10: {hr:.4f})")

model.eval()
test_users, test_seqs, test_items = evaluation_batch("test")
with torch.no_grad():
    logits = model.predict(test_users, test_seqs, test_items)
    ndcg, hr = hr_ndcg(logits)
    # the padding rows stay zero under padding_idx, and a change to an early item must not reach
    # the positions before it
    pad_rows_zero = bool(model.item_emb.weight[0].abs().sum() == 0)
    feats = model.log2feats(test_seqs)
    altered = test_seqs.copy()
    altered[:, -1] = np.where(altered[:, -1] == 1, 2, 1)
    causal = torch.allclose(feats[:, :-1], model.log2feats(altered)[:, :-1], atol=1e-5)

counts = np.bincount(np.concatenate([np.array(s) for s in user_train.values()]), minlength=ITEM_NUM + 1)
pop_logits = torch.from_numpy(counts.astype(np.float64))[torch.from_numpy(test_items)]
pop_ndcg, pop_hr = hr_ndcg(pop_logits)
print(f"test: SASRec NDCG@10 {ndcg:.4f} HR@10 {hr:.4f} | popularity NDCG@10 {pop_ndcg:.4f} HR@10 {pop_hr:.4f}")
print(f"padding row zero: {pad_rows_zero}, causal: {causal}")
assert ndcg > pop_ndcg and hr > pop_hr, "SASRec must beat the popularity baseline"
print(f"FINAL ndcg10={ndcg:.4f} hr10={hr:.4f} pop_hr10={pop_hr:.4f} checks={int(pad_rows_zero and causal)}")
