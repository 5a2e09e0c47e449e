"""ColBERT (Khattab & Zaharia 2020, "ColBERT: Efficient and Effective Passage Search via Contextualized
Late Interaction over BERT"; stanford-futuredata/ColBERT ``colbert/modeling/colbert.py`` and its
tokenizers/training loop) on synthetic queries and passages.

A small BERT-style encoder (word + position + token-type ``nn.Embedding``s, ``LayerNorm``, an
``nn.TransformerEncoder(batch_first=True, activation="gelu")`` with ``src_key_padding_mask``) shared by
queries and documents, a bias-free ``nn.Linear(dim, 16)`` projection then
``torch.nn.functional.normalize(p=2, dim=2)``. Queries are marked ``[CLS] [Q] ...`` and augmented:
their padding replaced by ``[MASK]`` (``ids[ids == PAD] = MASK``) with a full attention mask, so the
masks attend and are attended. Documents are marked ``[CLS] [D] ...`` and padded; ColBERT's ``mask``
(a list comprehension over ``input_ids.cpu().tolist()`` against the punctuation ``skiplist`` and
padding) zeroes their embeddings by ``D = D * mask.unsqueeze(2).float()``. Scoring is MaxSim,
``(Q @ D.permute(0, 2, 1)).max(2).values.sum(1)``; training uses in-batch negatives (every query
against every document by ``torch.einsum('qid,pjd->qpij', Q, D).max(-1).values.sum(-1)``) with
``nn.CrossEntropyLoss`` on ``torch.arange(bsize)`` labels, AdamW with a linear-warm-up-then-decay
``LambdaLR`` and ``clip_grad_norm_``. Relevant documents share topic tokens with their query.
Reports the loss and MRR@10 (each query ranks its document among 32, by ``torch.topk``) before and
after training.

Check: the batched MaxSim (and the einsum all-pairs matrix's diagonal) equals a per-pair Python loop
over ``q @ d.t()``; the padded-document score equals the score of the document with its masked
tokens dropped (``d[mask[idx]]``, ColBERT's ``keep_dims=False`` path).
"""

import os
import string

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.RandomState(seed)

PAD, CLS, SEP, MASK, Q_MARKER, D_MARKER = 0, 1, 2, 3, 4, 5
PUNCT = list(range(6, 6 + 6))  # tokens standing for string.punctuation symbols
FIRST_WORD = 12
VOCAB = 76
N_TOPICS = 16
QUERY_MAXLEN, DOC_MAXLEN = 8, 16
DIM, PROJ = 32, 16

# each topic owns four words; a query holds two or three of its topic's words, its document most of
# them among filler words and punctuation
topic_words = FIRST_WORD + np.arange(N_TOPICS * 4).reshape(N_TOPICS, 4)
skiplist = {w: True for symbol, w in zip(string.punctuation, PUNCT) for w in [symbol, w]}


def make_pairs(n):
    queries, docs = [], []
    for _ in range(n):
        t = rng.randint(N_TOPICS)
        words = rng.permutation(topic_words[t])
        q = list(words[:rng.randint(2, 4)])
        filler = list(rng.randint(FIRST_WORD, VOCAB, size=rng.randint(3, 7)))
        d = list(words[:3]) + filler + list(rng.choice(PUNCT, size=rng.randint(1, 4)))
        rng.shuffle(d)
        queries.append(q)
        docs.append(d[:DOC_MAXLEN - 3])
    return queries, docs


def tensorize_queries(batch):
    """QueryTokenizer.tensorize: [CLS] [Q] q ... [SEP], padding turned into [MASK] (query augmentation)."""
    ids = torch.full((len(batch), QUERY_MAXLEN), PAD, dtype=torch.long)
    for i, q in enumerate(batch):
        toks = [CLS, Q_MARKER] + [int(x) for x in q] + [SEP]
        ids[i, :len(toks)] = torch.tensor(toks)
    mask = torch.ones_like(ids)
    ids[ids == PAD] = MASK
    return ids, mask


def tensorize_docs(batch):
    ids = torch.full((len(batch), DOC_MAXLEN), PAD, dtype=torch.long)
    for i, d in enumerate(batch):
        toks = [CLS, D_MARKER] + [int(x) for x in d] + [SEP]
        ids[i, :len(toks)] = torch.tensor(toks)
    mask = (ids != PAD).long()
    return ids, mask


class TinyBert(nn.Module):
    def __init__(self, vocab, dim, max_len=32, layers=2, heads=4):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim, padding_idx=PAD)
        self.position_embeddings = nn.Embedding(max_len, dim)
        self.token_type_embeddings = nn.Embedding(2, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.1,
                                           activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, input_ids, attention_mask):
        position_ids = torch.arange(input_ids.size(1), dtype=torch.long).unsqueeze(0).expand_as(input_ids)
        token_type_ids = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids) \
            + self.token_type_embeddings(token_type_ids)
        x = self.dropout(self.LayerNorm(x))
        return (self.encoder(x, src_key_padding_mask=attention_mask == 0),)


class ColBERT(nn.Module):
    def __init__(self, dim=PROJ, similarity_metric="cosine"):
        super().__init__()
        self.bert = TinyBert(VOCAB, DIM)
        self.linear = nn.Linear(DIM, dim, bias=False)
        self.skiplist = skiplist
        self.pad_token = PAD
        self.similarity_metric = similarity_metric

    def forward(self, Q, D):
        return self.score(self.query(*Q), self.doc(*D))

    def query(self, input_ids, attention_mask):
        Q = self.bert(input_ids, attention_mask=attention_mask)[0]
        Q = self.linear(Q)
        return torch.nn.functional.normalize(Q, p=2, dim=2)

    def doc(self, input_ids, attention_mask, keep_dims=True):
        D = self.bert(input_ids, attention_mask=attention_mask)[0]
        D = self.linear(D)
        mask = torch.tensor(self.mask(input_ids), device=D.device).unsqueeze(2).float()
        D = D * mask
        D = torch.nn.functional.normalize(D, p=2, dim=2)
        if not keep_dims:
            D, mask = D.cpu().to(dtype=torch.float32), mask.cpu().bool().squeeze(-1)
            D = [d[mask[idx]] for idx, d in enumerate(D)]
        return D

    def score(self, Q, D):
        if self.similarity_metric == "cosine":
            return (Q @ D.permute(0, 2, 1)).max(2).values.sum(1)
        assert self.similarity_metric == "l2"
        return (-1.0 * ((Q.unsqueeze(2) - D.unsqueeze(1)) ** 2).sum(-1)).max(-1).values.sum(-1)

    def mask(self, input_ids):
        mask = [[(x not in self.skiplist) and (x != self.pad_token) for x in d] for d in input_ids.cpu().tolist()]
        return mask

    def in_batch_scores(self, Q, D):
        return torch.einsum("qid,pjd->qpij", Q, D).max(-1).values.sum(-1)


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps):
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(0.0, float(num_training_steps - current_step)
                   / float(max(1, num_training_steps - num_warmup_steps)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


@torch.no_grad()
def evaluate(model, queries, docs, depth=10):
    model.eval()
    Q = model.query(*tensorize_queries(queries))
    D = model.doc(*tensorize_docs(docs))
    scores = model.in_batch_scores(Q, D)  # (queries, docs)
    loss = F.cross_entropy(scores, torch.arange(len(queries))).item()
    top = torch.topk(scores, k=depth, dim=1).indices
    hits = top == torch.arange(len(queries)).unsqueeze(1)
    ranks = torch.arange(1, depth + 1, dtype=torch.float32).expand_as(hits)
    rr = torch.where(hits, 1.0 / ranks, torch.zeros_like(ranks)).sum(1)
    model.train()
    return loss, rr.mean().item(), hits.any(1).float().mean().item()


model = ColBERT()
eval_q, eval_d = make_pairs(32)
train_q, train_d = make_pairs(768)
bsize, epochs = 32, 3
steps = epochs * len(train_q) // bsize

# --- check: batched MaxSim and the einsum matrix against a loop over pairs; padded vs dropped tokens
model.eval()
with torch.no_grad():
    Qc = model.query(*tensorize_queries(eval_q[:6]))
    d_ids, d_mask = tensorize_docs(eval_d[:6])
    Dc = model.doc(d_ids, d_mask)
    Dl = model.doc(d_ids, d_mask, keep_dims=False)
    batched = model.score(Qc, Dc)
    pairs = model.in_batch_scores(Qc, Dc)
    looped = torch.stack([(Qc[i] @ Dc[i].t()).max(1).values.sum() for i in range(6)])
    dropped = torch.stack([(Qc[i] @ Dl[i].t()).max(1).values.sum() for i in range(6)])
    loop_all = torch.tensor([[(Qc[i] @ Dc[j].t()).max(1).values.sum().item() for j in range(6)] for i in range(6)])
model.train()
maxsim_err = max((batched - looped).abs().max().item(), (torch.diagonal(pairs) - looped).abs().max().item(),
                 (pairs - loop_all).abs().max().item())
drop_err = (batched - dropped).abs().max().item()
kept = [len(d) for d in Dl]
print(f"maxsim batched vs loop err {maxsim_err:.2e}, padded vs dropped err {drop_err:.2e}, "
      f"kept tokens {sum(kept)} of {d_ids.numel()}")

optimizer = torch.optim.AdamW(filter(lambda p: p.requires_grad, model.parameters()), lr=3e-3, eps=1e-8)
scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=steps // 10, num_training_steps=steps)
criterion = nn.CrossEntropyLoss()
labels = torch.arange(bsize, dtype=torch.long)

loss_before, mrr_before, recall_before = evaluate(model, eval_q, eval_d)
print(f"before: loss {loss_before:.4f} MRR@10 {mrr_before:.4f} recall@10 {recall_before:.4f}")
step = 0
for epoch in range(epochs):
    order = rng.permutation(len(train_q))
    train_loss = 0.0
    for b in range(0, len(order), bsize):
        idx = order[b:b + bsize]
        Q = model.query(*tensorize_queries([train_q[i] for i in idx]))
        D = model.doc(*tensorize_docs([train_d[i] for i in idx]))
        scores = model.in_batch_scores(Q, D)
        loss = criterion(scores, labels[:scores.size(0)])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        train_loss += loss.item()
        step += 1
    loss_e, mrr_e, _ = evaluate(model, eval_q, eval_d)
    print(f"epoch {epoch} step {step} lr {scheduler.get_last_lr()[0]:.2e} train loss "
          f"{train_loss / (len(order) // bsize):.4f} eval loss {loss_e:.4f} MRR@10 {mrr_e:.4f}")

loss_after, mrr_after, recall_after = evaluate(model, eval_q, eval_d)
print(f"after: loss {loss_after:.4f} MRR@10 {mrr_after:.4f} recall@10 {recall_after:.4f}")
print(f"FINAL mrr_before={mrr_before:.4f} mrr_after={mrr_after:.4f} recall_after={recall_after:.4f} "
      f"loss_before={loss_before:.4f} loss_after={loss_after:.4f} loss_drop={loss_before - loss_after:.4f} "
      f"maxsim_err={maxsim_err:.2e} drop_err={drop_err:.2e}")
