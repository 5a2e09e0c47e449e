"""BERT4Rec (Sun et al., CIKM 2019; FeiSun/BERT4Rec and jaywonchung/BERT4Rec-VAE-Pytorch) on synthetic sessions.

Users' item sequences follow planted transitions (each item has a favourite successor taken with
probability 0.7, otherwise a random item). The model is BERT4Rec's: item and learned position embeddings,
``nn.TransformerEncoder(nn.TransformerEncoderLayer(..., batch_first=True))`` with GELU, driven by
``src_key_padding_mask=(tokens == 0)``, and an output layer over ``num_items + 1`` ids. Training batches are
built by cloze masking in tensors: ``torch.rand(tokens.shape) < mask_prob`` on non-padding positions,
80% of them replaced by the mask token, 10% by a random item (``torch.randint``), 10% kept, labels 0
elsewhere, and ``F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=0)``; Adam with
``StepLR``. Evaluation is the BERT4Rec-VAE protocol: the last item held out, the mask token appended to the
history, 1 positive + 50 sampled negatives scored by ``scores.gather(1, candidates)``, the rank as
``(scores > pos_score).sum(1)``, Recall@10 and NDCG@10 with ``1 / torch.log2(rank + 2)``.

Checked: Recall@10 and NDCG@10 rising with training, and the encoder's output on a left-padded batch under
``src_key_padding_mask`` (eval mode) equal at the real positions to the same sequences run unpadded.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

NUM_ITEMS = 80
MAX_LEN = 16
MASK_PROB = 0.2
MASK_TOKEN = NUM_ITEMS + 1
NUM_NEGATIVES = 50

successor = rng.permutation(NUM_ITEMS) + 1


def make_user():
    length = rng.randint(8, 21)
    seq = [rng.randint(1, NUM_ITEMS + 1)]
    while len(seq) < length:
        seq.append(successor[seq[-1] - 1] if rng.rand() < 0.7 else rng.randint(1, NUM_ITEMS + 1))
    return seq


users = [make_user() for _ in range(300)]
train_seqs = [u[:-1] for u in users]
answers = [u[-1] for u in users]


def pad_left(seq):
    seq = seq[-MAX_LEN:]
    return [0] * (MAX_LEN - len(seq)) + seq


class BERT4Rec(nn.Module):
    def __init__(self, num_items, hidden=32, n_layers=2, heads=2, dropout=0.1):
        super().__init__()
        vocab_size = num_items + 2
        self.token = nn.Embedding(vocab_size, hidden, padding_idx=0)
        self.position = nn.Embedding(MAX_LEN, hidden)
        self.dropout = nn.Dropout(p=dropout)
        self.norm = nn.LayerNorm(hidden)
        layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=hidden * 4, dropout=dropout,
                                           activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers)
        self.out = nn.Linear(hidden, num_items + 1)

    def embed(self, x):
        positions = torch.arange(x.size(1)).unsqueeze(0).expand_as(x)
        return self.dropout(self.norm(self.token(x) + self.position(positions)))

    def forward(self, x):
        mask = x == 0
        h = self.encoder(self.embed(x), src_key_padding_mask=mask)
        return self.out(h)


def cloze(tokens):
    prob = torch.rand(tokens.shape)
    masked = (prob < MASK_PROB) & (tokens != 0)
    labels = torch.where(masked, tokens, torch.zeros_like(tokens))
    choice = torch.rand(tokens.shape)
    inputs = tokens.clone()
    inputs[masked & (choice < 0.8)] = MASK_TOKEN
    random_items = torch.randint(1, NUM_ITEMS + 1, tokens.shape)
    swap = masked & (choice >= 0.8) & (choice < 0.9)
    inputs[swap] = random_items[swap]
    return inputs, labels


eval_tokens = torch.LongTensor([pad_left(s + [MASK_TOKEN]) for s in train_seqs])
negatives = []
for a in answers:
    pool = np.setdiff1d(np.arange(1, NUM_ITEMS + 1), [a])
    negatives.append(rng.choice(pool, NUM_NEGATIVES, replace=False))
candidates = torch.from_numpy(np.concatenate([np.array(answers)[:, None], np.stack(negatives)], 1)).long()


@torch.no_grad()
def evaluate(model, k=10):
    model.eval()
    scores = model(eval_tokens)[:, -1, :]
    scores = scores.gather(1, candidates)
    pos_score = scores[:, :1]
    rank = (scores[:, 1:] > pos_score).sum(1)
    hit = (rank < k).float()
    recall = hit.mean().item()
    ndcg = (hit * (1 / torch.log2(rank.float() + 2))).mean().item()
    model.train()
    return recall, ndcg


model = BERT4Rec(NUM_ITEMS)
print(f"parameters: {sum(p.numel() for p in model.parameters())}")

# padding-mask check: left-padded batch vs each sequence alone
model.eval()
with torch.no_grad():
    batch = eval_tokens[:6]
    emb = model.embed(batch)
    full = model.encoder(emb, src_key_padding_mask=batch == 0)
    pad_err = 0.0
    for row in range(batch.size(0)):
        real = batch[row] != 0
        alone = model.encoder(emb[row][real][None])[0]
        pad_err = max(pad_err, (full[row][real] - alone).abs().max().item())
model.train()
print(f"padding mask vs unpadded: {pad_err:.2e}")

recall0, ndcg0 = evaluate(model)
print(f"before training: Recall@10 {recall0:.4f} NDCG@10 {ndcg0:.4f}")

optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
train_tokens = torch.LongTensor([pad_left(s) for s in train_seqs])
V = NUM_ITEMS + 1
BATCH = 32
for epoch in range(20):
    perm = torch.randperm(len(train_tokens))
    total = 0.0
    for b in range(0, len(perm), BATCH):
        seqs = train_tokens[perm[b:b + BATCH]]
        inputs, labels = cloze(seqs)
        logits = model(inputs)
        loss = F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    scheduler.step()
    if epoch % 5 == 4:
        recall, ndcg = evaluate(model)
        print(f"epoch {epoch + 1}: loss {total / ((len(perm) + BATCH - 1) // BATCH):.4f} "
              f"Recall@10 {recall:.4f} NDCG@10 {ndcg:.4f}")

recall, ndcg = evaluate(model)
print(f"FINAL recall10={recall:.4f} ndcg10={ndcg:.4f} recall_gain={recall - recall0:.4f} pad_err={pad_err:.6f}")
